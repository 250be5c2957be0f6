import assert from "node:assert/strict";
import {
  collateProposals,
  type LongTailProposalOptions,
  LongTailProposals,
  LVIS_V05_TRAIN_IMAGES,
  type ProposalSource,
} from "../src/data/proposals.ts";
import { readProposalFeatures, writeProposalFeatures } from "../src/data/proposals_reader.ts";
import { DatasetError } from "../src/data/errors.ts";
import { encodeSafetensors, type SafetensorsTensor } from "../src/checkpoint.ts";
import { encodeBoxes } from "../src/detection/boxes.ts";

const full = new LongTailProposals({ seed: 0 });

/** Checks the invariants of every image of a split against its category counts. */
function checkSplit(split: ProposalSource, counts: Int32Array, p: number, fg: number): void {
  const c = split.numCategories;
  const seen = new Int32Array(c), negSeen = new Int32Array(c);
  for (let m = 0; m < split.numImages; m++) {
    const im = split.image(m);
    assert.equal(im.labels.length, p);
    assert.equal(im.features.length, p * split.featureWidth);
    assert.equal(im.boxTargets.length, p * 4);
    const present = new Set<number>();
    let nFg = 0;
    for (let i = 0; i < p; i++) {
      const y = im.labels[i];
      assert.ok(y >= 0 && y <= c);
      if (y < c) {
        nFg++;
        present.add(y);
      } else {
        assert.deepEqual(Array.from(im.boxTargets.subarray(4 * i, 4 * i + 4)), [0, 0, 0, 0]);
      }
    }
    assert.equal(nFg, fg, `image ${m}: foreground proposals`);
    assert.deepEqual(
      Array.from(im.positive),
      [...present].sort((a, b) => a - b),
      `image ${m}: positive set`,
    );
    for (const j of im.positive) seen[j]++;
    for (const j of im.negative) {
      assert.ok(!present.has(j), `image ${m}: category ${j} both present and verified absent`);
      negSeen[j]++;
    }
  }
  for (let j = 0; j < c; j++) {
    assert.equal(seen[j], counts[j], `category ${j}: images containing it`);
    assert.equal(
      negSeen[j],
      Math.min(counts[j], split.numImages - counts[j]),
      `category ${j}: negative images`,
    );
  }
}

Deno.test("LongTailProposals: LVIS v0.5 group sizes and image-count ranges", () => {
  assert.equal(full.numCategories, 1230);
  const count = { rare: 0, common: 0, frequent: 0 };
  full.groups.forEach((g, j) => {
    count[g]++;
    const n = full.imageCounts[j];
    if (g === "rare") assert.ok(n >= 1 && n <= 10);
    else if (g === "common") assert.ok(n >= 11 && n <= 100);
    else assert.ok(n >= 101 && n <= 400);
  });
  assert.deepEqual(count, { rare: 454, common: 461, frequent: 315 });
  // Groups are shuffled over the indices, not in blocks.
  assert.notEqual(new Set(full.groups.slice(0, 50)).size, 1);
  // Frequencies on LVIS v0.5's scale: the paper's λ selects the categories with ≤ 99 images.
  const f = full.frequencies();
  full.imageCounts.forEach((n, j) => {
    assert.equal(f[j], n / LVIS_V05_TRAIN_IMAGES);
    assert.equal(f[j] < 1.76e-3, n <= 99);
  });
  assert.equal(full.frequencies(1000)[5], full.imageCounts[5] / 1000);
  // Validation counts: 2 % of the training counts, every category at least once.
  full.valImageCounts.forEach((m, j) => {
    assert.equal(m, Math.max(1, Math.round(full.imageCounts[j] * 0.02)));
  });
  const half = new LongTailProposals({ seed: 0, featureWidth: 2, valShare: 0.5, valImages: 3000 });
  half.valImageCounts.forEach((m, j) => {
    assert.equal(m, Math.max(1, Math.round(half.imageCounts[j] * 0.5)));
  });
});

Deno.test("LongTailProposals: 512 proposals per image at 1:3, sparse validation images, sets consistent with the counts", () => {
  // The full-size default (1000 training and 200 validation images of 512 proposals) with a
  // narrow width to stay fast.
  const data = new LongTailProposals({ seed: 0, featureWidth: 4 });
  assert.deepEqual(data.imageCounts, full.imageCounts);
  checkSplit(data.train, data.imageCounts, 512, 128);
  checkSplit(data.val, data.valImageCounts, 512, 128);
  // Validation images hold about as many categories as an LVIS image, training images many more.
  let valCats = 0, trainCats = 0;
  for (let m = 0; m < data.val.numImages; m++) valCats += data.val.image(m).positive.length;
  for (let m = 0; m < 50; m++) trainCats += data.train.image(m).positive.length;
  assert.ok(valCats / data.val.numImages <= 16 && valCats / data.val.numImages >= 8);
  assert.ok(trainCats / 50 > 50);
  // The label-only view agrees with the drawn images.
  for (const m of [0, 17, 999]) {
    assert.deepEqual(data.train.positiveCategories!(m), data.train.image(m).positive);
  }
  assert.deepEqual(data.val.positiveCategories!(5), data.val.image(5).positive);
  assert.throws(() => data.train.positiveCategories!(1000), /index must be an image index/);
});

Deno.test("LongTailProposals: seeded, order-independent, configurable ratio", () => {
  const a = new LongTailProposals({ seed: 7, featureWidth: 16 });
  const b = new LongTailProposals({ seed: 7, featureWidth: 16 });
  const late = b.train.image(900);
  assert.deepEqual(a.train.image(900), late); // drawn first in a, after nothing else in b
  assert.deepEqual(a.train.image(3), b.train.image(3));
  assert.deepEqual(a.val.image(3), b.val.image(3));
  const c = new LongTailProposals({ seed: 8, featureWidth: 16 });
  assert.notDeepEqual(c.imageCounts, a.imageCounts);
  assert.notDeepEqual(c.train.image(3).features, a.train.image(3).features);
  // Train and val draw from different streams.
  assert.notDeepEqual(a.train.image(0).features, a.val.image(0).features);
  const small = new LongTailProposals({
    seed: 1,
    groupSizes: [10, 10, 4],
    trainImages: 120,
    valImages: 30,
    valShare: 0.2,
    frequentMaxImages: 110,
    proposalsPerImage: 40,
    foregroundFraction: 0.5,
    featureWidth: 3,
  });
  assert.equal(small.numCategories, 24);
  checkSplit(small.train, small.imageCounts, 40, 20);
});

Deno.test("LongTailProposals: foreground features carry their category and box target", () => {
  // A noiseless set: a foreground row minus q·μ_j is exactly a_t·Aᵀt, so rows of one category
  // are closer to each other than to other categories' rows on average.
  const data = new LongTailProposals({ seed: 2, featureWidth: 64, noise: 0.5 });
  const im = data.train.image(0);
  const d = 64, c = data.numCategories;
  const rows = new Map<number, number[]>();
  im.labels.forEach((y, i) => {
    if (y < c) rows.set(y, [...(rows.get(y) ?? []), i]);
  });
  const cos = (i: number, k: number): number => {
    let ab = 0, aa = 0, bb = 0;
    for (let t = 0; t < d; t++) {
      const x = im.features[i * d + t], y = im.features[k * d + t];
      ab += x * y;
      aa += x * x;
      bb += y * y;
    }
    return ab / Math.sqrt(aa * bb);
  };
  let same = 0, sameN = 0, other = 0, otherN = 0;
  const fgRows = [...rows.values()].flat();
  for (const [, list] of rows) {
    for (const i of list) {
      for (const k of list) if (k !== i) (same += cos(i, k), sameN++);
      for (const k of fgRows.slice(0, 40)) {
        if (im.labels[k] !== im.labels[i]) (other += cos(i, k), otherN++);
      }
    }
  }
  assert.ok(sameN > 0 && otherN > 0);
  assert.ok(same / sameN > other / otherN + 0.2, `same ${same / sameN} vs other ${other / otherN}`);
});

Deno.test("LongTailProposals: bad options", () => {
  assert.throws(
    () => new LongTailProposals({ featureWidth: 0 }),
    /featureWidth must be an integer ≥ 1, got 0/,
  );
  assert.throws(() => new LongTailProposals({ seed: -1 }), /seed/);
  assert.throws(
    () => new LongTailProposals({ imageSize: 3 } as unknown as LongTailProposalOptions),
    /options.imageSize is not a known option/,
  );
  assert.throws(() => new LongTailProposals({ foregroundFraction: 1 }), /foregroundFraction/);
  assert.throws(
    () => new LongTailProposals({ valShare: 0 }),
    /valShare must lie in \(0, 1\], got 0/,
  );
  assert.throws(
    () => new LongTailProposals({ valProposalsPerImage: 1 }),
    /valProposalsPerImage must be an integer ≥ 2, got 1/,
  );
  assert.throws(
    () => new LongTailProposals({ valProposalsPerImage: 4, foregroundFraction: 0.1 }),
    /valProposalsPerImage · foregroundFraction must round to 1..3 foreground proposals, got 0/,
  );
  assert.throws(() => new LongTailProposals({ valImages: 10 }), /pairs but 10 images hold/);
  const small = new LongTailProposals({ seed: 0, featureWidth: 1, valProposalsPerImage: 64 });
  assert.equal(small.val.image(0).labels.length, 64);
  assert.throws(
    () => new LongTailProposals({ frequentMaxImages: 2000 }),
    /frequentMaxImages must be at most trainImages \(1000\)/,
  );
  assert.throws(
    () => new LongTailProposals({ trainImages: 500, frequentMaxImages: 500 }),
    /pairs but 500 images hold at most 64000/,
  );
  assert.throws(
    () => new LongTailProposals({ groupSizes: [1, 2] as unknown as [number, number, number] }),
    /groupSizes/,
  );
  assert.throws(() => full.train.image(1000), /index must be an image index in 0..999, got 1000/);
  assert.throws(() => collateProposals(full.train, []), /indices must name at least one image/);
});

Deno.test("collateProposals: rows image by image with their image index", () => {
  const data = new LongTailProposals({ seed: 3, featureWidth: 5 });
  const b = collateProposals(data.train, [4, 1]);
  const i4 = data.train.image(4), i1 = data.train.image(1);
  assert.equal(b.labels.length, 1024);
  assert.deepEqual(b.features.subarray(0, 512 * 5), i4.features);
  assert.deepEqual(b.features.subarray(512 * 5), i1.features);
  assert.deepEqual(b.labels.subarray(512), i1.labels);
  assert.deepEqual(b.boxTargets.subarray(0, 2048), i4.boxTargets);
  assert.equal(b.imageOfRow[511], 0);
  assert.equal(b.imageOfRow[512], 1);
  assert.deepEqual(b.positive, [i4.positive, i1.positive]);
  assert.deepEqual(b.negative, [i4.negative, i1.negative]);
});

const tmp = await Deno.makeTempDir();

Deno.test("proposal files: a written set reads back image by image", async () => {
  const data = new LongTailProposals({
    seed: 5,
    groupSizes: [10, 10, 4],
    trainImages: 120,
    valImages: 12,
    frequentMaxImages: 110,
    proposalsPerImage: 64,
    featureWidth: 6,
  });
  const path = `${tmp}/val.safetensors`;
  await writeProposalFeatures(path, data.val, {
    imageCounts: data.imageCounts,
    numTrainImages: 120,
  });
  const file = await readProposalFeatures(path);
  assert.equal(file.numImages, 12);
  assert.equal(file.numCategories, 24);
  assert.equal(file.featureWidth, 6);
  assert.deepEqual(file.imageCounts, data.imageCounts);
  assert.equal(file.numTrainImages, 120);
  for (let m = 0; m < 12; m++) assert.deepEqual(file.image(m), data.val.image(m));
  assert.throws(() => file.image(12), /index must be an image index in 0..11/);
});

/** Writes tensors and metadata as a safetensors file and returns its path. */
async function fileOf(
  name: string,
  tensors: Record<string, SafetensorsTensor>,
  metadata: Record<string, string> = { num_categories: "3" },
): Promise<string> {
  const path = `${tmp}/${name}.safetensors`;
  await Deno.writeFile(path, encodeSafetensors(new Map(Object.entries(tensors)), metadata));
  return path;
}

Deno.test("proposal files: boxes and gt_boxes are encoded for foreground rows; ids group rows", async () => {
  const boxes = new Float32Array([0, 0, 10, 10, 5, 5, 25, 15, 0, 0, 1, 1, 2, 2, 4, 8]);
  const gts = new Float32Array([1, 0, 11, 20, 5, 5, 25, 15, 0, 0, 0, 0, 2, 2, 6, 8]);
  const path = await fileOf("boxes", {
    features: { dtype: "F32", shape: [4, 2], data: new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]) },
    labels: { dtype: "I32", shape: [4], data: new Int32Array([0, 2, 3, 1]) },
    image_ids: { dtype: "I32", shape: [4], data: new Int32Array([9, 4, 9, 9]) },
    boxes: { dtype: "F32", shape: [4, 4], data: boxes },
    gt_boxes: { dtype: "F32", shape: [4, 4], data: gts },
    neg_category_ids: { dtype: "I32", shape: [2, 2], data: new Int32Array([9, 2, 4, 0]) },
    pos_category_ids: { dtype: "I32", shape: [1, 2], data: new Int32Array([4, 1]) },
  });
  const file = await readProposalFeatures(path);
  assert.deepEqual(Array.from(file.imageIds), [4, 9]);
  const a = file.image(0), b = file.image(1);
  assert.deepEqual(Array.from(a.labels), [2]);
  assert.deepEqual(Array.from(a.features), [3, 4]);
  assert.deepEqual(Array.from(a.positive), [1, 2]);
  assert.deepEqual(Array.from(a.negative), [0]);
  assert.deepEqual(Array.from(b.labels), [0, 3, 1]);
  assert.deepEqual(Array.from(b.positive), [0, 1]);
  assert.deepEqual(Array.from(b.negative), [2]);
  const want = encodeBoxes(
    boxes,
    new Float32Array([1, 0, 11, 20, 5, 5, 25, 15, 0, 0, 1, 1, 2, 2, 6, 8]),
  );
  assert.deepEqual(Array.from(a.boxTargets), Array.from(want.subarray(4, 8)));
  assert.deepEqual(Array.from(b.boxTargets.subarray(0, 4)), Array.from(want.subarray(0, 4)));
  assert.deepEqual(Array.from(b.boxTargets.subarray(4, 8)), [0, 0, 0, 0]); // background, degenerate gt
  assert.deepEqual(Array.from(b.boxTargets.subarray(8)), Array.from(want.subarray(12, 16)));
});

Deno.test("proposal files: bad files name the file and the problem", async () => {
  const ok = {
    features: { dtype: "F32", shape: [2, 3], data: new Float32Array(6) },
    labels: { dtype: "I32", shape: [2], data: new Int32Array([0, 3]) },
    image_ids: { dtype: "I32", shape: [2], data: new Int32Array([0, 0]) },
    box_targets: { dtype: "F32", shape: [2, 4], data: new Float32Array(8) },
  } satisfies Record<string, SafetensorsTensor>;
  const expect = async (
    name: string,
    tensors: Record<string, SafetensorsTensor>,
    pattern: RegExp,
    meta?: Record<string, string>,
  ) => {
    const path = await fileOf(name, tensors, meta);
    await assert.rejects(readProposalFeatures(path), (e: unknown) => {
      assert.ok(e instanceof DatasetError, `${name}: ${e}`);
      assert.ok(e.message.startsWith(path), e.message);
      assert.match(e.message, pattern);
      return true;
    });
  };
  await expect("labels_range", {
    ...ok,
    labels: { dtype: "I32", shape: [2], data: new Int32Array([0, 4]) },
  }, /labels\[1\] is 4, expected 0..3 \(3 = background\)/);
  await expect("width", {
    ...ok,
    features: { dtype: "F32", shape: [3, 2], data: new Float32Array(6) },
  }, /tensor "labels" must have shape \[3\], got \[2\]/);
  await expect("boxes_shape", {
    ...ok,
    box_targets: { dtype: "F32", shape: [2, 5], data: new Float32Array(10) },
  }, /tensor "box_targets" must have shape \[2, 4\], got \[2, 5\]/);
  const { box_targets: _, ...noBoxes } = ok;
  await expect("no_boxes", noBoxes, /missing tensor "boxes"/);
  await expect("gt_only", {
    ...noBoxes,
    gt_boxes: { dtype: "F32", shape: [2, 4], data: new Float32Array(8) },
  }, /missing tensor "boxes"/);
  await expect(
    "bad_box",
    {
      ...noBoxes,
      boxes: { dtype: "F32", shape: [2, 4], data: new Float32Array([0, 0, 0, 5, 0, 0, 1, 1]) },
      gt_boxes: { dtype: "F32", shape: [2, 4], data: new Float32Array([0, 0, 1, 1, 0, 0, 1, 1]) },
    },
    /boxes\[0\] must have a positive finite width and height/,
  );
  await expect(
    "dtype",
    { ...ok, labels: { dtype: "F32", shape: [2], data: new Float32Array(2) } },
    /tensor "labels" must be I32/,
  );
  await expect("meta", ok, /missing metadata "num_categories"/, {});
  await expect("meta_bad", ok, /metadata "num_categories" must be a positive integer/, {
    num_categories: "x",
  });
  await expect("neg_bad", {
    ...ok,
    neg_category_ids: { dtype: "I32", shape: [1, 2], data: new Int32Array([5, 1]) },
  }, /neg_category_ids\[0\] names image 5/);
  await expect("neg_pos", {
    ...ok,
    neg_category_ids: { dtype: "I32", shape: [1, 2], data: new Int32Array([0, 0]) },
  }, /lists category 0 as verified absent but it is annotated/);
  const nan = new Float32Array(6);
  nan[4] = NaN;
  await expect(
    "nan",
    { ...ok, features: { dtype: "F32", shape: [2, 3], data: nan } },
    /features\[1, 1\] is NaN/,
  );
  // Not a safetensors file at all, and a missing file.
  const junk = `${tmp}/junk.safetensors`;
  await Deno.writeFile(junk, new Uint8Array([1, 2, 3]));
  await assert.rejects(
    readProposalFeatures(junk),
    (e: unknown) => e instanceof DatasetError && /truncated/.test(e.message),
  );
  await assert.rejects(readProposalFeatures(`${tmp}/missing.safetensors`));
});

Deno.test("cleanup", async () => {
  await Deno.remove(tmp, { recursive: true });
});
