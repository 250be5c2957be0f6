import assert from "node:assert/strict";
import { AccuracyMeter } from "../src/metrics.ts";

Deno.test("top-1 and top-k count ranks, ties go to the lower index", () => {
  const m = new AccuracyMeter(4, 2);
  // row 0: label 1 top; row 1: label 3 second; row 2: label 0 tied with class 2 -> wins (lower index)
  // row 3: label 2 tied with 0 -> loses top-1 but within top-2
  m.add(
    new Float32Array([
      0.1,
      0.9,
      0.0,
      0.0,
      0.5,
      0.1,
      0.0,
      0.4,
      0.3,
      0.1,
      0.3,
      0.2,
      0.3,
      0.1,
      0.3,
      0.2,
    ]),
    new Int32Array([1, 3, 0, 2]),
  );
  assert.equal(m.total, 4);
  assert.equal(m.top1(), 2 / 4);
  assert.equal(m.topK(), 4 / 4);
});

Deno.test("report splits classes into many / medium / few by training counts", () => {
  const m = new AccuracyMeter(3, 1);
  // class 0: 2/2 right, class 1: 1/2, class 2: 0/1
  m.add(
    new Float32Array([1, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 1, 0, 0]),
    new Int32Array([0, 0, 1, 1, 2]),
  );
  const r = m.report([500, 50, 5]);
  assert.deepEqual(r.perClass, [1, 0.5, 0]);
  assert.deepEqual(r.support, [2, 2, 1]);
  assert.equal(r.many, 1);
  assert.equal(r.medium, 0.5);
  assert.equal(r.few, 0);
  assert.equal(r.top1, 3 / 5);
  const custom = m.report([500, 50, 5], { many: 40, few: 10 });
  assert.equal(custom.many, 0.75);
  assert.ok(Number.isNaN(custom.medium));
});

Deno.test("bad input names the argument", () => {
  assert.throws(() => new AccuracyMeter(0), /numClasses must be a positive integer, got 0/);
  const m = new AccuracyMeter(2);
  assert.throws(
    () => m.add(new Float32Array(3), new Int32Array(2)),
    /scores must hold .* 4 values, got 3/,
  );
  assert.throws(
    () => m.add(new Float32Array(4), new Int32Array([0, 2])),
    /labels\[1\] must be in 0..1, got 2/,
  );
  assert.throws(() => m.report([1]), /trainCounts must have 2 entries, got 1/);
});
