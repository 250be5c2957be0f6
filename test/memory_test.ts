// What keeps a real-data run's memory down: image sets on shared memory that loaders use without
// copying, archive members released as they are decoded, and device buffers returned on free.
import assert from "node:assert/strict";
import { loadCifar } from "../src/data/cifar.ts";
import { BatchLoader } from "../src/data/loader.ts";
import { makeLongTailed } from "../src/data/long_tailed.ts";
import { releaseBytes, sharedBytes } from "../src/data/shared_memory.ts";
import { readTarStream, type TarEntry } from "../src/data/_tar.ts";
import { type CpuBuffer, cpuDevice } from "../src/device/cpu.ts";
import { makeTar, tinyCifar10, writeFolder, writeTarball } from "./data_fixtures.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("cifar: splits own exactly their images, on shared memory, from a folder or a tarball", async () => {
  await withTempDir(async (dir) => {
    const files = tinyCifar10(3);
    await writeFolder(`${dir}/f`, "cifar-10-batches-bin", files);
    await writeTarball(dir, "cifar-10-binary.tar.gz", "cifar-10-batches-bin", files);
    for (const dataPath of [`${dir}/f`, `${dir}/cifar-10-binary.tar.gz`]) {
      const { train, test } = await loadCifar("cifar10", { dataPath });
      for (const [name, images] of [["train", train.images], ["test", test.images]] as const) {
        assert.ok(images.buffer instanceof SharedArrayBuffer, `${dataPath} ${name}: shared`);
        // A view into a larger buffer would keep a file's or the archive's bytes alive.
        assert.equal(images.buffer.byteLength, images.length, `${dataPath} ${name}: own buffer`);
      }
      assert.equal(train.images.length, 15 * 3072);
      assert.equal(test.images.length, 3 * 3072);
    }
  });
});

Deno.test("long-tailed subset: images on their own shared buffer", () => {
  const n = 40;
  const dataset = {
    images: new Uint8Array(n * 3072),
    labels: Int32Array.from({ length: n }, (_, i) => i % 2),
    classNames: ["a", "b"],
    numClasses: 2,
  };
  const { dataset: lt } = makeLongTailed(dataset, { imbalanceFactor: 4 });
  assert.ok(lt.images.buffer instanceof SharedArrayBuffer);
  assert.equal(lt.images.buffer.byteLength, lt.labels.length * 3072);
});

Deno.test("tar: onEntry receives each member when it completes and the result keeps none", async () => {
  const tar = makeTar([
    { name: "a.bin", data: new Uint8Array(700).fill(1) },
    { name: "b.bin", data: new Uint8Array(300).fill(2) },
  ]);
  const seen: { name: string; bytes: number; chunksRead: number }[] = [];
  let chunksRead = 0;
  async function* chunks(): AsyncGenerator<Uint8Array> {
    for (let at = 0; at < tar.length; at += 512) {
      chunksRead++;
      yield tar.subarray(at, at + 512);
    }
  }
  const result = await readTarStream(chunks(), {
    onEntry: (e: TarEntry) => seen.push({ name: e.name, bytes: e.data.length, chunksRead }),
  });
  assert.deepEqual(result, []);
  // a.bin: header + 2 data blocks; b.bin: header + 1 data block. Each is handed over at its last
  // data block, before the rest of the archive is read.
  assert.deepEqual(seen, [
    { name: "a.bin", bytes: 700, chunksRead: 3 },
    { name: "b.bin", bytes: 300, chunksRead: 5 },
  ]);
});

Deno.test("releaseBytes detaches a whole plain buffer and leaves views and shared memory alone", () => {
  const whole = new Uint8Array(1024);
  assert.equal(releaseBytes(whole), true);
  assert.equal(whole.length, 0);
  assert.equal(whole.buffer.detached, true);
  const backing = new Uint8Array(16);
  assert.equal(releaseBytes(backing.subarray(4)), false);
  assert.equal(backing.length, 16);
  const shared = sharedBytes(8);
  assert.equal(releaseBytes(shared), false);
  assert.equal(shared.length, 8);
});

Deno.test("loader: shared images are read in place by the workers, not copied", async () => {
  const n = 4;
  const images = sharedBytes(n * 3072);
  const labels = new Int32Array(n);
  using loader = new BatchLoader({ images, labels }, {
    batchSize: n,
    normalization: { mean: [0, 0, 0], std: [1, 1, 1] },
    shuffle: false,
    workers: 1,
  });
  const first = (await Array.fromAsync(loader.epoch(0)))[0];
  assert.equal(first.x[0], 0);
  // The workers already hold the images; a write to the caller's array shows in the next epoch
  // only if they read that same memory.
  images[0] = 255;
  const second = (await Array.fromAsync(loader.epoch(1)))[0];
  assert.equal(second.x[0], 1);
});

Deno.test("cpu device: a freed large buffer's memory is returned at once, a small one's is left to the collector", () => {
  const device = cpuDevice();
  try {
    const large = device.alloc("f32", 1 << 20) as CpuBuffer; // 4 MiB
    const largeStorage = large.data;
    device.free(large);
    assert.equal(largeStorage.buffer.byteLength, 0);
    assert.equal((largeStorage.buffer as ArrayBuffer).detached, true);
    assert.equal(large.freed, true);
    const small = device.alloc("f32", (1 << 20) - 1) as CpuBuffer;
    const smallStorage = small.data;
    device.free(small);
    assert.equal((smallStorage.buffer as ArrayBuffer).detached, false);
    assert.equal(small.freed, true);
    assert.equal(small.length, 0);
  } finally {
    device.dispose();
  }
});
