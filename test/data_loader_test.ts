import assert from "node:assert/strict";
import { type Batch, BatchLoader, evalBatches, type LoaderOptions } from "../src/data/loader.ts";
import {
  CIFAR10_NORMALIZATION,
  normalizationTable,
  normalizeImages,
} from "../src/data/normalize.ts";
import { assembleBatch, AUTOAUGMENT_CUTOUT, STANDARD_AUGMENTATION } from "../src/data/pipeline.ts";
import { Random } from "../src/random.ts";

const PER = 3 * 32 * 32;

function dataset(n: number, seed = 0): { images: Uint8Array; labels: Int32Array } {
  const r = new Random(seed);
  const images = Uint8Array.from({ length: n * PER }, () => r.integer(0, 256));
  const labels = Int32Array.from({ length: n }, (_, i) => i % 7);
  return { images, labels };
}

async function collect(loader: BatchLoader, epoch: number): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const batch of loader.epoch(epoch)) out.push(batch);
  return out;
}

const base: LoaderOptions = {
  batchSize: 8,
  normalization: CIFAR10_NORMALIZATION,
  transforms: AUTOAUGMENT_CUTOUT,
  seed: 42,
};

Deno.test("loader: workers and the in-thread fallback give identical batches", async () => {
  const data = dataset(37);
  const results: Batch[][][] = [];
  for (const workers of [0, 1, 2]) {
    using loader = new BatchLoader(data, {
      ...base,
      workers,
      prefetch: workers === 2 ? 3 : undefined,
    });
    results.push([await collect(loader, 0), await collect(loader, 1)]);
  }
  assert.equal(results[0][0].length, 5);
  assert.deepEqual(results[1], results[0]);
  assert.deepEqual(results[2], results[0]);
  // Different epochs differ.
  assert.notDeepEqual(results[0][0][0].x, results[0][1][0].x);
});

Deno.test("loader: each epoch serves every image once, in the plan's order", async () => {
  const data = dataset(30, 1);
  using loader = new BatchLoader(data, { ...base, transforms: STANDARD_AUGMENTATION, workers: 0 });
  assert.equal(loader.batchesPerEpoch, 4);
  assert.equal(loader.length, 30);
  const plan = loader.epochPlan(2);
  assert.deepEqual(
    Array.from(plan.order).sort((a, b) => a - b),
    Array.from({ length: 30 }, (_, i) => i),
  );
  assert.equal(plan.seeds.length, 4);
  const batches = await collect(loader, 2);
  assert.deepEqual(batches.map((b) => b.size), [8, 8, 8, 6]);
  const table = normalizationTable(CIFAR10_NORMALIZATION);
  batches.forEach((batch, k) => {
    const indices = plan.order.slice(k * 8, Math.min(30, (k + 1) * 8));
    assert.deepEqual(Array.from(batch.labels), Array.from(indices, (i) => data.labels[i]));
    const want = assembleBatch(
      data.images,
      data.labels,
      indices,
      STANDARD_AUGMENTATION,
      table,
      32,
      32,
      plan.seeds[k],
    );
    assert.deepEqual(batch, want);
  });
  // An epoch depends only on (seed, epoch): a fresh loader reproduces epoch 2 directly.
  using fresh = new BatchLoader(data, { ...base, transforms: STANDARD_AUGMENTATION, workers: 0 });
  assert.deepEqual(await collect(fresh, 2), batches);
  assert.notDeepEqual(loader.epochPlan(3).order, plan.order);
  // A different seed gives a different order.
  using other = new BatchLoader(data, { ...base, seed: 43, workers: 0 });
  assert.notDeepEqual(other.epochPlan(2).order, plan.order);
});

Deno.test("loader: dropLast, no shuffle, no augmentation", async () => {
  const data = dataset(21, 2);
  using loader = new BatchLoader(data, {
    batchSize: 5,
    normalization: CIFAR10_NORMALIZATION,
    shuffle: false,
    dropLast: true,
    workers: 1,
  });
  assert.equal(loader.batchesPerEpoch, 4);
  const batches = await collect(loader, 0);
  assert.deepEqual(batches.map((b) => b.size), [5, 5, 5, 5]);
  const all = normalizeImages(data.images, CIFAR10_NORMALIZATION);
  batches.forEach((b, k) => {
    assert.deepEqual(b.x, all.subarray(k * 5 * PER, (k + 1) * 5 * PER));
    assert.deepEqual(Array.from(b.labels), Array.from(data.labels.subarray(k * 5, k * 5 + 5)));
  });
});

Deno.test("loader: stopping early and closing leave nothing running", async () => {
  const data = dataset(64, 3);
  const loader = new BatchLoader(data, { ...base, workers: 2, prefetch: 4 });
  let seen = 0;
  for await (const batch of loader.epoch(0)) {
    assert.equal(batch.size, 8);
    if (++seen === 2) break;
  }
  // The next epoch still works after an abandoned one.
  assert.equal((await collect(loader, 1)).length, 8);
  loader.close();
  loader.close();
  await assert.rejects(collect(loader, 2), /the batch loader is closed/);
});

Deno.test("loader: SharedArrayBuffer-backed images give the same batches", async () => {
  const data = dataset(10, 4);
  const shared = new Uint8Array(new SharedArrayBuffer(data.images.length));
  shared.set(data.images);
  using a = new BatchLoader({ images: shared, labels: data.labels }, { ...base, workers: 1 });
  using b = new BatchLoader(data, { ...base, workers: 0 });
  assert.deepEqual(await collect(a, 0), await collect(b, 0));
});

Deno.test("loader: bad options are reported", () => {
  const data = dataset(4, 5);
  assert.throws(
    () => new BatchLoader(data, { ...base, batchSize: 0 }),
    /options\.batchSize must be an integer >= 1, got 0/,
  );
  assert.throws(
    () => new BatchLoader(data, { ...base, workers: -1 }),
    /options\.workers must be an integer >= 0, got -1/,
  );
  assert.throws(
    () => new BatchLoader({ images: data.images.subarray(1), labels: data.labels }, base),
    /data\.images must hold data\.labels\.length \* 3 \* 32 \* 32 = 12288 bytes, got 12287/,
  );
  assert.throws(
    () => new BatchLoader(data, { ...base, transforms: [{ kind: "cutout" }, { kind: "crop" }] }),
    /options\.transforms\[1\] \("crop"\) comes after a cutout/,
  );
  assert.throws(
    () => new BatchLoader(data, { ...base, normalization: { mean: [0, 0, 0], std: [1, 1, -1] } }),
    /normalization\.std\[2\] must be a positive number, got -1/,
  );
  using loader = new BatchLoader(data, { ...base, workers: 0 });
  assert.throws(() => loader.epochPlan(-1), /epoch must be an integer >= 0, got -1/);
});

Deno.test("evalBatches: in order, normalised, last batch partial", () => {
  const data = dataset(11, 6);
  const batches = [...evalBatches(data, { batchSize: 4, normalization: CIFAR10_NORMALIZATION })];
  assert.deepEqual(batches.map((b) => b.size), [4, 4, 3]);
  const all = normalizeImages(data.images, CIFAR10_NORMALIZATION);
  batches.forEach((b, k) => {
    assert.deepEqual(b.x, all.subarray(k * 4 * PER, Math.min(11, (k + 1) * 4) * PER));
    assert.deepEqual(Array.from(b.labels), Array.from(data.labels.subarray(k * 4, (k + 1) * 4)));
  });
  assert.throws(
    () => [...evalBatches(data, { batchSize: 0, normalization: CIFAR10_NORMALIZATION })],
    /options\.batchSize must be an integer >= 1, got 0/,
  );
});

Deno.test("loader: a batch larger than the data with dropLast is an error naming both", () => {
  assert.throws(
    () => new BatchLoader(dataset(5), { ...base, batchSize: 6, dropLast: true }),
    /options\.batchSize must be at most the number of images \(5\).*got 6/,
  );
  // Without dropLast the one short batch is served.
  using loader = new BatchLoader(dataset(5), { ...base, batchSize: 6, workers: 0 });
  assert.equal(loader.batchesPerEpoch, 1);
});

Deno.test("loader: idle workers stop and start again, serving the same batches", async () => {
  const data = dataset(20);
  using reference = new BatchLoader(data, { ...base, workers: 0 });
  const expected = await collect(reference, 1);
  using loader = new BatchLoader(data, { ...base, workers: 2, idleTimeout: 50 });
  await collect(loader, 0);
  await new Promise((resolve) => setTimeout(resolve, 300)); // the workers stop meanwhile
  const again = await collect(loader, 1);
  assert.deepEqual(again, expected);
});

Deno.test("loader: a loader with workers that is never closed does not keep the process alive", async () => {
  const script = `
    import { BatchLoader } from ${
    JSON.stringify(new URL("../src/data/loader.ts", import.meta.url).href)
  };
    import { CIFAR10_NORMALIZATION } from ${
    JSON.stringify(new URL("../src/data/normalize.ts", import.meta.url).href)
  };
    const n = 9;
    const data = { images: new Uint8Array(n * 3 * 32 * 32), labels: new Int32Array(n) };
    const loader = new BatchLoader(data, {
      batchSize: 4, normalization: CIFAR10_NORMALIZATION, workers: 2, idleTimeout: 100,
    });
    let batches = 0;
    for await (const _ of loader.epoch(0)) batches++;
    console.log("batches", batches); // and no close()
  `;
  // A process held alive by its workers never ends on its own: the signal stops it, and it fails.
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", script],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(30_000),
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.success, true, `the process ended with ${out.code} ${out.signal}: ${text}`);
  assert.match(text, /batches 3/);
});
