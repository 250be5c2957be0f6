import assert from "node:assert/strict";
import { syntheticLongTailed } from "../src/data/synthetic.ts";

const PER = 3 * 32 * 32;

function countsOf(labels: Int32Array, c: number): number[] {
  const counts = new Array(c).fill(0);
  for (const l of labels) counts[l]++;
  return counts;
}

Deno.test("synthetic: counts follow the long-tail profile; test set balanced", () => {
  const { train, test, prototypes } = syntheticLongTailed({
    numClasses: 10,
    maxPerClass: 200,
    imbalanceFactor: 50,
    testPerClass: 30,
    seed: 4,
  });
  // floor(200 · 50^(−i/9)), worked out independently.
  assert.deepEqual(countsOf(train.labels, 10), [200, 129, 83, 54, 35, 22, 14, 9, 6, 4]);
  assert.deepEqual(countsOf(test.labels, 10), new Array(10).fill(30));
  assert.equal(train.images.length, train.labels.length * PER);
  assert.equal(test.images.length, 300 * PER);
  assert.equal(prototypes.length, 10 * PER);
  assert.equal(train.numClasses, 10);
  assert.equal(train.classNames.length, 10);
  // Not degenerate: pixels use a good part of the range.
  let lo = 255, hi = 0;
  for (const v of train.images) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  assert.ok(hi - lo > 150, `pixel range ${lo}..${hi}`);
});

Deno.test("synthetic: deterministic under a seed; the test set ignores the training counts", () => {
  const a = syntheticLongTailed({ maxPerClass: 40, imbalanceFactor: 10, testPerClass: 5, seed: 9 });
  const b = syntheticLongTailed({ maxPerClass: 40, imbalanceFactor: 10, testPerClass: 5, seed: 9 });
  const c = syntheticLongTailed({
    maxPerClass: 40,
    imbalanceFactor: 10,
    testPerClass: 5,
    seed: 10,
  });
  const d = syntheticLongTailed({ maxPerClass: 40, imbalanceFactor: 1, testPerClass: 5, seed: 9 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.train.images, c.train.images);
  assert.deepEqual(a.test, d.test);
  assert.deepEqual(a.prototypes, d.prototypes);
});

Deno.test("synthetic: classes are separable by nearest prototype, but not trivially", () => {
  const classes = 10;
  const { test, prototypes } = syntheticLongTailed({
    numClasses: classes,
    maxPerClass: 10,
    imbalanceFactor: 1,
    testPerClass: 40,
    seed: 1,
  });
  let correct = 0;
  for (let i = 0; i < test.labels.length; i++) {
    let best = -1, bestDistance = Infinity;
    for (let c = 0; c < classes; c++) {
      let d = 0;
      for (let p = 0; p < PER; p++) {
        const e = test.images[i * PER + p] - prototypes[c * PER + p];
        d += e * e;
      }
      if (d < bestDistance) {
        bestDistance = d;
        best = c;
      }
    }
    if (best === test.labels[i]) correct++;
  }
  const accuracy = correct / test.labels.length;
  // Chance is 0.1. Well above it keeps the task learnable; below 1 keeps it a task.
  assert.ok(accuracy > 0.5, `nearest-prototype accuracy ${accuracy}`);
  assert.ok(accuracy < 0.99, `nearest-prototype accuracy ${accuracy}`);
});

Deno.test("synthetic: options are validated", () => {
  assert.throws(
    () => syntheticLongTailed({ numClasses: 0 }),
    /numClasses must be a positive integer, got 0/,
  );
  assert.throws(
    () => syntheticLongTailed({ noise: 300 }),
    /noise must be a number in \[0, 255\], got 300/,
  );
  assert.throws(
    () => syntheticLongTailed({ imbalanceFactor: 0 }),
    /imbalanceFactor must be a finite number ≥ 1/,
  );
  assert.throws(
    () => syntheticLongTailed({ shift: -1 }),
    /shift must be a non-negative integer, got -1/,
  );
});
