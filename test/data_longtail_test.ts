import assert from "node:assert/strict";
import { Random } from "../src/random.ts";
import { longTailedIndices, makeLongTailed, subsetDataset } from "../src/data/long_tailed.ts";
import type { ImageDataset } from "../src/data/dataset.ts";

/** A balanced label array in the shuffled order of a real release. */
function balancedLabels(numClasses: number, perClass: number, seed: number): Int32Array {
  const labels = new Int32Array(numClasses * perClass);
  for (let i = 0; i < labels.length; i++) labels[i] = i % numClasses;
  return new Random(seed).shuffle(labels);
}

const REFERENCE = [
  // [dataset, C, n_max, IF, total, tail count]
  ["CIFAR-100-LT", 100, 500, 200, 9502, 2],
  ["CIFAR-100-LT", 100, 500, 100, 10847, 5],
  ["CIFAR-100-LT", 100, 500, 50, 12608, 10],
  ["CIFAR-100-LT", 100, 500, 10, 19573, 50],
  ["CIFAR-10-LT", 10, 5000, 200, 11203, 25],
  ["CIFAR-10-LT", 10, 5000, 100, 12406, 50],
  ["CIFAR-10-LT", 10, 5000, 50, 13996, 100],
  ["CIFAR-10-LT", 10, 5000, 10, 20431, 500],
] as const;

Deno.test("long tail: totals equal the CIFAR-LT reference table", () => {
  for (const [name, c, nMax, factor, total, tail] of REFERENCE) {
    const labels = balancedLabels(c, nMax, 1);
    const kept = longTailedIndices(labels, c, { imbalanceFactor: factor, seed: 0 });
    assert.equal(kept.length, total, `${name} IF=${factor}`);
    const counts = new Int32Array(c);
    for (const i of kept) counts[labels[i]]++;
    assert.equal(counts[0], nMax, `${name} IF=${factor} head`);
    assert.equal(counts[c - 1], tail, `${name} IF=${factor} tail`);
    // Each class keeps floor(n_max · IF^(−i/(C−1))), computed here independently.
    for (let i = 0; i < c; i++) {
      assert.equal(counts[i], Math.floor(nMax * Math.pow(factor, -i / (c - 1))), `class ${i}`);
    }
    // No image twice.
    assert.equal(new Set(kept).size, kept.length);
  }
});

Deno.test("long tail: the selection is seeded, documented and reproducible", () => {
  const labels = balancedLabels(10, 50, 2);
  const a = longTailedIndices(labels, 10, { imbalanceFactor: 10, seed: 7 });
  const b = longTailedIndices(labels, 10, { imbalanceFactor: 10, seed: 7 });
  const c = longTailedIndices(labels, 10, { imbalanceFactor: 10, seed: 8 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  // The documented procedure: one generator; per class in order, shuffle that class's indices
  // (dataset order) and keep the first n_i; the subset is listed in dataset order.
  const r = new Random(7);
  const counts = Array.from({ length: 10 }, (_, i) => Math.floor(50 * Math.pow(10, -i / 9)));
  const want: number[] = [];
  for (let k = 0; k < 10; k++) {
    const idx: number[] = [];
    labels.forEach((l, i) => l === k && idx.push(i));
    r.shuffle(idx);
    want.push(...idx.slice(0, counts[k]));
  }
  assert.deepEqual(Array.from(a), want.sort((x, y) => x - y));
});

Deno.test("long tail: makeLongTailed copies the chosen images with their labels", () => {
  const n = 40;
  const labels = balancedLabels(4, 10, 3);
  const images = new Uint8Array(n * 3072);
  for (let i = 0; i < n; i++) images.fill(i, i * 3072, (i + 1) * 3072);
  const dataset: ImageDataset = { images, labels, classNames: ["a", "b", "c", "d"], numClasses: 4 };
  const { dataset: lt, indices } = makeLongTailed(dataset, { imbalanceFactor: 5, seed: 1 });
  assert.equal(lt.labels.length, indices.length);
  assert.deepEqual(lt.classNames, dataset.classNames);
  indices.forEach((i, k) => {
    assert.equal(lt.labels[k], labels[i]);
    assert.equal(lt.images[k * 3072], i);
    assert.equal(lt.images[k * 3072 + 3071], i);
  });
  // [10, floor(10·5^(−1/3)) = 5, floor(10·5^(−2/3)) = 3, 2]
  const counts = [0, 0, 0, 0];
  for (const l of lt.labels) counts[l]++;
  assert.deepEqual(counts, [10, 5, 3, 2]);
  assert.deepEqual(Array.from(subsetDataset(dataset, Int32Array.of(3, 3)).labels), [
    labels[3],
    labels[3],
  ]);
});

Deno.test("long tail: bad arguments are reported", () => {
  const labels = balancedLabels(3, 4, 0);
  assert.throws(
    () => longTailedIndices(labels, 3, { imbalanceFactor: 0.5 }),
    /imbalanceFactor must be a finite number ≥ 1, got 0\.5/,
  );
  assert.throws(
    () => longTailedIndices(labels, 3, { imbalanceFactor: 2, maxPerClass: 5 }),
    /class 0 must have at least 5 images for imbalance factor 2 with maxPerClass 5, got 4/,
  );
  assert.throws(
    () => longTailedIndices(Int32Array.of(0, 3), 3, { imbalanceFactor: 2 }),
    /labels\[1\]/,
  );
  // IF = 1 keeps everything.
  assert.equal(longTailedIndices(labels, 3, { imbalanceFactor: 1 }).length, 12);
});
