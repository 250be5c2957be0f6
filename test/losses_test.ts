// The public losses: values and gradients against naive float64 loops, and the identities the
// EQL paper states (λ = 0, γ = 0, γ = 1, background rows, E(r), image-level labels).

import assert from "node:assert/strict";
import {
  classBalancedWeights,
  eqlLoss,
  focalLoss,
  type LossResult,
  SeqlCriterion,
  seqlLoss,
  sigmoidCrossEntropy,
  smoothL1Loss,
  softmaxCrossEntropy,
  suppressionWeights,
} from "../src/losses/mod.ts";
import { CpuDevice } from "../src/device/cpu.ts";
import type { DeviceBuffer, DType } from "../src/device/device.ts";
import { type Tensor, tensor } from "../src/tensor.ts";
import { maskDraw } from "../src/device/mask.ts";
import {
  assertClose,
  finiteDiff,
  randomLabels,
  refBceGrad,
  refMask,
  refSigmoidRows,
  refSmoothL1Rows,
  refSoftmax,
  rng,
  scaled,
  total,
  uniform,
} from "./loss_reference.ts";

/** Takes the result apart and frees the gradient. */
function take(r: LossResult): { loss: number; grad: Float32Array } {
  const grad = r.grad.toArray() as Float32Array;
  r.grad.dispose();
  return { loss: r.loss, grad };
}

function logits(z: Float32Array, n: number, c: number): Tensor {
  return tensor(z, [n, c]);
}

/** Frequencies whose classes 1, 3 and 4 are below 1.76e-3. */
const FREQ = [0.2, 1e-4, 0.01, 1.7e-3, 0, 0.5];
const TAIL = FREQ.map((f) => (f < 1.76e-3 ? 1 : 0));

Deno.test("sigmoidCrossEntropy: loss and gradient match the float64 loop, background included", () => {
  const rand = rng(11);
  const n = 8, c = 6;
  const z = uniform(rand, n * c, -5, 5);
  const labels = randomLabels(rand, n, c);
  labels[2] = c;
  using x = logits(z, n, c);
  const r = take(sigmoidCrossEntropy(x, labels));
  assertClose([r.loss], [total(refSigmoidRows(z, labels, n, c)) / n], 1e-6, 0, "loss");
  assertClose(r.grad, scaled(refBceGrad(z, labels, n, c), 1 / n), 1e-6, 1e-12, "grad");
  const classWeight = [0.5, 2, 1, 3, 0.25, 1];
  const w = take(sigmoidCrossEntropy(x, labels, { classWeight }));
  const o = { classWeight };
  assertClose([w.loss], [total(refSigmoidRows(z, labels, n, c, o)) / n], 1e-6, 0, "loss cw");
  assertClose(w.grad, scaled(refBceGrad(z, labels, n, c, o), 1 / n), 1e-6, 1e-12, "grad cw");
});

Deno.test("eqlLoss: loss and gradient match the paper's formula and finite differences", () => {
  const rand = rng(12);
  const n = 10, c = 6;
  const z = uniform(rand, n * c, -4, 4);
  const labels = randomLabels(rand, n, c);
  labels[0] = c;
  using x = logits(z, n, c);
  const r = take(eqlLoss(x, labels, { frequencies: FREQ, lambda: 1.76e-3 }));
  const o = { suppress: TAIL };
  assertClose([r.loss], [total(refSigmoidRows(z, labels, n, c, o)) / n], 1e-6, 0, "loss");
  assertClose(r.grad, scaled(refBceGrad(z, labels, n, c, o), 1 / n), 1e-6, 1e-12, "grad");
  const fd = finiteDiff((v) => total(refSigmoidRows(v, labels, n, c, o)) / n, z);
  assertClose(r.grad, fd, 1e-5, 1e-8, "grad vs FD");
  // Foreground rows carry exactly zero gradient on tail non-target classes.
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < c; j++) {
      const ignored = labels[i] < c && j !== labels[i] && TAIL[j] === 1;
      assert.equal(r.grad[i * c + j] === 0, ignored, `row ${i} class ${j}`);
    }
  }
});

Deno.test("eqlLoss: the default λ is 1.76e-3 with a strict threshold", () => {
  const n = 2, c = 3;
  using x = logits(new Float32Array([0.3, -0.2, 1, 0.5, 0.1, -1]), n, c);
  const labels = new Int32Array([0, 1]);
  const frequencies = [0.5, 1.76e-3, 1.75e-3]; // only class 2 is below λ
  const r = take(eqlLoss(x, labels, { frequencies }));
  const z = x.toArray() as Float32Array;
  const o = { suppress: [0, 0, 1] };
  assertClose([r.loss], [total(refSigmoidRows(z, labels, n, c, o)) / n], 1e-6, 0, "loss");
  assert.equal(r.grad[2], 0);
  assert.equal(r.grad[5], 0);
  assert.notEqual(r.grad[1], 0);
});

Deno.test("eqlLoss: λ = 0 gives sigmoidCrossEntropy exactly", () => {
  const rand = rng(13);
  const n = 9, c = 6;
  using x = logits(uniform(rand, n * c, -6, 6), n, c);
  const labels = randomLabels(rand, n, c);
  const e = take(eqlLoss(x, labels, { frequencies: FREQ, lambda: 0 }));
  const s = take(sigmoidCrossEntropy(x, labels));
  assert.equal(e.loss, s.loss);
  assert.deepEqual(e.grad, s.grad);
});

Deno.test("eqlLoss: background rows are unaffected; with E(r) off their tail negatives are ignored", () => {
  const rand = rng(14);
  const n = 8, c = 6;
  const z = uniform(rand, n * c, -4, 4);
  const labels = new Int32Array([c, 0, c, 3, 5, c, 1, c]);
  using x = logits(z, n, c);
  const plain = take(sigmoidCrossEntropy(x, labels));
  const eql = take(eqlLoss(x, labels, { frequencies: FREQ }));
  const off = take(eqlLoss(x, labels, { frequencies: FREQ, useBackgroundExemption: false }));
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < c; j++) {
      const q = i * c + j;
      if (labels[i] === c) {
        assert.equal(eql.grad[q], plain.grad[q], `E(r) on: background row ${i} class ${j}`);
        assert.equal(off.grad[q] === 0, TAIL[j] === 1, `E(r) off: row ${i} class ${j}`);
        if (TAIL[j] === 0) assert.equal(off.grad[q], plain.grad[q]);
      } else {
        assert.equal(off.grad[q], eql.grad[q], `foreground row ${i} class ${j}`);
      }
    }
  }
  const o = { suppress: TAIL, exempt: false };
  assertClose([off.loss], [total(refSigmoidRows(z, labels, n, c, o)) / n], 1e-6, 0, "loss");
  assertClose(off.grad, scaled(refBceGrad(z, labels, n, c, o), 1 / n), 1e-6, 1e-12, "grad");
});

Deno.test("suppressionWeights: threshold, exponential and Gompertz curves, clamped to [0, 1]", () => {
  const f = [0, 5e-4, 1e-3, 2.5e-3, 0.01, 1];
  assert.deepEqual([...suppressionWeights(f, { lambda: 1e-3 })], [1, 1, 0, 0, 0, 0]);
  // Exponential (a = 400, n = 2): 1 − (400 f)^2.
  const exp = [1, 1 - 0.04, 1 - 0.16, 0, 0, 0].map(Math.fround);
  assert.deepEqual([...suppressionWeights(f, { weightFunction: { kind: "exponential" } })], exp);
  const exp2 = suppressionWeights(f, { weightFunction: { kind: "exponential", a: 100, n: 1 } });
  assert.deepEqual([...exp2], [1, 0.95, 0.9, 0.75, 0, 0].map(Math.fround));
  // Gompertz (a = 1, b = 80, c = 3000): 1 − exp(−80·exp(−3000 f)).
  const gomp = f.map((v) => Math.fround(1 - Math.exp(-80 * Math.exp(-3000 * v))));
  assert.deepEqual([...suppressionWeights(f, { weightFunction: { kind: "gompertz" } })], gomp);
  assert.ok(gomp[0] === 1 && gomp[2] > 0.9 && gomp[3] < 0.1 && gomp[4] < 1e-10, "Gompertz shape");
  // a = 2 pushes 1 − a·exp(…) below 0 for frequent classes: clamped to 0, never negative.
  const clamped = suppressionWeights(f, { weightFunction: { kind: "gompertz", a: 2 } });
  assert.deepEqual(
    [...clamped],
    f.map((v) => Math.fround(Math.max(0, 1 - 2 * Math.exp(-80 * Math.exp(-3000 * v))))),
  );
  assert.equal(clamped[5], 0);
});

Deno.test("eqlLoss: exponential and Gompertz weights give the paper's w_ij", () => {
  const rand = rng(15);
  const n = 7, c = 6;
  const z = uniform(rand, n * c, -3, 3);
  const labels = randomLabels(rand, n, c);
  labels[1] = c;
  const frequencies = [0, 1e-4, 8e-4, 1.5e-3, 3e-3, 0.2];
  using x = logits(z, n, c);
  for (
    const wf of [
      { kind: "exponential" as const, a: 400, n: 2 },
      { kind: "gompertz" as const, a: 1, b: 80, c: 3000 },
    ]
  ) {
    const curve = frequencies.map((f) => {
      const y = wf.kind === "exponential"
        ? 1 - Math.pow(wf.a * f, wf.n)
        : 1 - wf.a * Math.exp(-wf.b * Math.exp(-wf.c * f));
      return Math.fround(Math.min(1, Math.max(0, y)));
    });
    assert.ok(curve.some((v) => v > 0 && v < 1), `${wf.kind} has fractional weights`);
    const r = take(eqlLoss(x, labels, { frequencies, weightFunction: wf, lambda: 0 }));
    const o = { suppress: curve };
    const what = wf.kind;
    assertClose([r.loss], [total(refSigmoidRows(z, labels, n, c, o)) / n], 1e-6, 0, what);
    assertClose(r.grad, scaled(refBceGrad(z, labels, n, c, o), 1 / n), 1e-6, 1e-12, what);
  }
});

Deno.test("eqlLoss: image-level labels restore exactly the listed categories of each image", () => {
  const rand = rng(16);
  const n = 9, c = 6;
  const z = uniform(rand, n * c, -3, 3);
  const labels = new Int32Array([0, 1, c, 2, c, 5, 3, c, 0]);
  const imageOfRow = new Int32Array([0, 0, 0, 1, 1, 1, 2, 2, 2]);
  const positive = [[0, 1], [2, 5], []];
  const negative = [[3], [], [4, 1]];
  using x = logits(z, n, c);
  for (const exempt of [true, false]) {
    const base = { frequencies: FREQ, useBackgroundExemption: exempt };
    const without = take(eqlLoss(x, labels, base));
    const withIl = take(
      eqlLoss(x, labels, { ...base, imageLevel: { imageOfRow, positive, negative } }),
    );
    const plain = take(sigmoidCrossEntropy(x, labels));
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const keep = [...positive[imageOfRow[i]], ...negative[imageOfRow[i]]];
      for (let j = 0; j < c; j++) {
        const q = i * c + j;
        const suppressed = (labels[i] < c || !exempt) && j !== labels[i] && TAIL[j] === 1;
        if (suppressed && keep.includes(j)) {
          assert.equal(without.grad[q], 0);
          assert.equal(withIl.grad[q], plain.grad[q], `restored row ${i} class ${j}`);
          changed++;
        } else {
          assert.equal(withIl.grad[q], without.grad[q], `untouched row ${i} class ${j}`);
        }
      }
    }
    assert.equal(changed, exempt ? 7 : 11, `E(r) ${exempt}: restored entries`);
    const keep = [[0, 1, 3], [2, 5], [4, 1]];
    const o = { suppress: TAIL, exempt, imageOfRow, keep };
    assertClose([withIl.loss], [total(refSigmoidRows(z, labels, n, c, o)) / n], 1e-6, 0, "loss");
  }
});

Deno.test("focalLoss: loss and gradient match the float64 loop and finite differences", () => {
  const rand = rng(17);
  const n = 8, c = 5;
  const z = uniform(rand, n * c, -5, 5);
  const labels = randomLabels(rand, n, c);
  labels[4] = c;
  using x = logits(z, n, c);
  for (const [alpha, gamma] of [[0.25, 2], [undefined, 2], [0.5, 0.5], [0.9, 0]] as const) {
    const r = take(focalLoss(x, labels, { alpha: alpha ?? null, gamma }));
    const o = { alpha, gamma };
    const what = `α=${alpha} γ=${gamma}`;
    assertClose([r.loss], [total(refSigmoidRows(z, labels, n, c, o)) / n], 1e-6, 0, what);
    const fd = finiteDiff((v) => total(refSigmoidRows(v, labels, n, c, o)) / n, z);
    assertClose(r.grad, fd, 1e-5, 1e-8, `${what} grad vs FD`);
  }
  // Defaults are α = 0.25, γ = 2.
  const d = take(focalLoss(x, labels));
  const e = take(focalLoss(x, labels, { alpha: 0.25, gamma: 2 }));
  assert.equal(d.loss, e.loss);
  assert.deepEqual(d.grad, e.grad);
});

Deno.test("focalLoss: γ = 0 with α off equals sigmoidCrossEntropy", () => {
  const rand = rng(18);
  const n = 6, c = 4;
  using x = logits(uniform(rand, n * c, -6, 6), n, c);
  const labels = randomLabels(rand, n, c);
  const f = take(focalLoss(x, labels, { alpha: null, gamma: 0 }));
  const s = take(sigmoidCrossEntropy(x, labels));
  assert.equal(f.loss, s.loss);
  assert.deepEqual(f.grad, s.grad);
});

Deno.test("focalLoss: with EQL suppression and class weights matches the loop", () => {
  const rand = rng(19);
  const n = 9, c = 6;
  const z = uniform(rand, n * c, -4, 4);
  const labels = randomLabels(rand, n, c);
  labels[3] = c;
  const classWeight = classBalancedWeights([50, 3, 20, 4, 1, 200], 0.99);
  using x = logits(z, n, c);
  const r = take(focalLoss(x, labels, { classWeight, eql: { frequencies: FREQ } }));
  const o = { alpha: 0.25, gamma: 2, suppress: TAIL, classWeight };
  assertClose([r.loss], [total(refSigmoidRows(z, labels, n, c, o)) / n], 1e-6, 0, "loss");
  const fd = finiteDiff((v) => total(refSigmoidRows(v, labels, n, c, o)) / n, z);
  assertClose(r.grad, fd, 1e-5, 1e-8, "grad vs FD");
});

Deno.test("classBalancedWeights: hand-checked values that sum to C", () => {
  // β = 0.5, counts [1, 2]: raw 0.5/0.5 = 1 and 0.5/0.75 = 2/3, normalised to sum 2.
  assert.deepEqual([...classBalancedWeights([1, 2], 0.5)], [1.2, 0.8].map(Math.fround));
  // β = 0.9, counts [1, 1, 10]: raw 1, 1, 0.1/(1 − 0.9^10); normalised to sum 3.
  const r3 = 0.1 / (1 - Math.pow(0.9, 10));
  const s = 2 + r3;
  assertClose(classBalancedWeights([1, 1, 10], 0.9), [3 / s, 3 / s, (3 * r3) / s], 1e-7, 0);
  assert.deepEqual([...classBalancedWeights([5, 500, 7], 0)], [1, 1, 1]);
  for (const beta of [0.9, 0.99, 0.999, 0.9999]) {
    const w = classBalancedWeights(new Int32Array([500, 200, 40, 9, 2]), beta);
    assertClose([total(w)], [5], 1e-6, 0, `β=${beta} sum`);
    for (let j = 1; j < 5; j++) assert.ok(w[j] >= w[j - 1], `β=${beta}: rarer weighs no less`);
    assert.ok(w[4] > w[0], `β=${beta}: the rarest weighs more than the most common`);
  }
});

Deno.test("softmaxCrossEntropy: loss and gradient match the loop, with class weights too", () => {
  const rand = rng(20);
  const n = 10, c = 7;
  const z = uniform(rand, n * c, -5, 5);
  const labels = randomLabels(rand, n, c - 1);
  using x = logits(z, n, c);
  const classWeight = classBalancedWeights([100, 50, 20, 10, 5, 2, 1], 0.999);
  for (const o of [{}, { classWeight }]) {
    const r = take(softmaxCrossEntropy(x, labels, o));
    const ref = refSoftmax(z, labels, n, c, o);
    assertClose([r.loss], [total(ref.rows) / n], 1e-6, 0, "loss");
    assertClose(r.grad, scaled(ref.grad, 1 / n), 1e-6, 1e-12, "grad");
    const fd = finiteDiff((v) => total(refSoftmax(v, labels, n, c, o).rows) / n, z);
    assertClose(r.grad, fd, 1e-5, 1e-8, "grad vs FD");
  }
});

Deno.test("softmaxCrossEntropy: logit adjustment adds τ·log(prior) to the logits", () => {
  const rand = rng(21);
  const n = 6, c = 4;
  const z = uniform(rand, n * c, -3, 3);
  const labels = randomLabels(rand, n, c - 1);
  const priors = [400, 80, 15, 2];
  using x = logits(z, n, c);
  for (const tau of [1, 0.5]) {
    const bias = priors.map((p) => Math.fround(tau * Math.log(p)));
    const r = take(softmaxCrossEntropy(x, labels, { logitAdjustment: { priors, tau } }));
    const ref = refSoftmax(z, labels, n, c, { bias });
    assertClose([r.loss], [total(ref.rows) / n], 1e-6, 0, `τ=${tau} loss`);
    assertClose(r.grad, scaled(ref.grad, 1 / n), 1e-6, 1e-12, `τ=${tau} grad`);
  }
  // Priors are only defined up to a factor: counts and frequencies give the same loss.
  const counts = take(softmaxCrossEntropy(x, labels, { logitAdjustment: { priors } }));
  const freqs = take(
    softmaxCrossEntropy(x, labels, { logitAdjustment: { priors: priors.map((p) => p / 497) } }),
  );
  assertClose([freqs.loss], [counts.loss], 1e-6, 0, "scale-free loss");
  assertClose(freqs.grad, counts.grad, 1e-5, 1e-9, "scale-free grad");
});

Deno.test("seqlLoss: loss and gradient match the loop with the per-(row, class) mask", () => {
  const rand = rng(22);
  const n = 16, c = 6;
  const z = uniform(rand, n * c, -3, 3);
  const labels = randomLabels(rand, n, c - 1);
  const frequencies = [0.4, 1e-3, 0.2, 2e-3, 2.9e-3, 0.3];
  const suppress = frequencies.map((f) => (f < 3e-3 ? 1 : 0));
  using x = logits(z, n, c);
  const o = { suppress, gamma: 0.6, seed: 42, counter: 3 };
  const r = take(seqlLoss(x, labels, { frequencies, gamma: 0.6, seed: 42, counter: 3 }));
  const mask = refMask(labels, n, c, o);
  let masked = 0;
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < c; k++) {
      const expected = k !== labels[i] && suppress[k] === 1 &&
        maskDraw(42, 3, i, k) < Math.floor(0.6 * 2 ** 24);
      assert.equal(mask[i * c + k] === 1, expected);
      assert.equal(r.grad[i * c + k] === 0, expected, `row ${i} class ${k}`);
      if (expected) masked++;
    }
  }
  assert.ok(masked > 5 && masked < 40, `a mix of masked and kept tail classes (${masked})`);
  const ref = refSoftmax(z, labels, n, c, o, mask);
  assertClose([r.loss], [total(ref.rows) / n], 1e-6, 0, "loss");
  assertClose(r.grad, scaled(ref.grad, 1 / n), 1e-6, 1e-12, "grad");
  const fd = finiteDiff((v) => total(refSoftmax(v, labels, n, c, o, mask).rows) / n, z);
  assertClose(r.grad, fd, 1e-5, 1e-8, "grad vs FD");
});

Deno.test("seqlLoss: γ = 0 (or λ = 0) gives softmaxCrossEntropy exactly", () => {
  const rand = rng(23);
  const n = 12, c = 5;
  using x = logits(uniform(rand, n * c, -5, 5), n, c);
  const labels = randomLabels(rand, n, c - 1);
  const frequencies = [1e-4, 1e-3, 0.5, 2e-3, 0.1];
  const s = take(softmaxCrossEntropy(x, labels));
  for (const o of [{ gamma: 0 }, { lambda: 0, gamma: 1 }]) {
    const q = take(seqlLoss(x, labels, { frequencies, seed: 9, ...o }));
    assert.equal(q.loss, s.loss);
    assert.deepEqual(q.grad, s.grad);
  }
});

Deno.test("seqlLoss: γ = 1 ignores every tail non-target class", () => {
  const rand = rng(24);
  const n = 10, c = 5;
  const z = uniform(rand, n * c, -3, 3);
  const labels = new Int32Array([0, 1, 2, 3, 4, 0, 1, 2, 3, 4]);
  const frequencies = [0.5, 1e-3, 0.2, 2e-4, 0.1]; // tail: 1 and 3 (λ = 3e-3)
  using x = logits(z, n, c);
  const r = take(seqlLoss(x, labels, { frequencies, gamma: 1, seed: 5, counter: 77 }));
  const mask = new Uint8Array(n * c);
  for (let i = 0; i < n; i++) {
    for (const k of [1, 3]) if (k !== labels[i]) mask[i * c + k] = 1;
  }
  for (let q = 0; q < n * c; q++) assert.equal(r.grad[q] === 0, mask[q] === 1, `entry ${q}`);
  const ref = refSoftmax(z, labels, n, c, {}, mask);
  assertClose([r.loss], [total(ref.rows) / n], 1e-6, 0, "loss");
  assertClose(r.grad, scaled(ref.grad, 1 / n), 1e-6, 1e-12, "grad");
});

Deno.test("seqlLoss: the mask repeats for the same (seed, counter) and changes with the counter", () => {
  const rand = rng(25);
  const n = 32, c = 8;
  using x = logits(uniform(rand, n * c, -2, 2), n, c);
  const labels = randomLabels(rand, n, c - 1);
  const frequencies = [0.3, 1e-3, 1e-3, 0.1, 2e-3, 1e-4, 0.2, 5e-4];
  const opts = { frequencies, gamma: 0.5, seed: 1234 };
  const zeros = (g: Float32Array) => g.map((v) => (v === 0 ? 1 : 0));
  const a = take(seqlLoss(x, labels, { ...opts, counter: 10 }));
  const b = take(seqlLoss(x, labels, { ...opts, counter: 10 }));
  const c2 = take(seqlLoss(x, labels, { ...opts, counter: 11 }));
  const d = take(seqlLoss(x, labels, { ...opts, counter: 10, seed: 1235 }));
  assert.equal(a.loss, b.loss);
  assert.deepEqual(a.grad, b.grad);
  assert.notDeepEqual(zeros(a.grad), zeros(c2.grad));
  assert.notDeepEqual(zeros(a.grad), zeros(d.grad));
  assert.notEqual(a.loss, c2.loss);
});

Deno.test("SeqlCriterion: uses counter k on its k-th call and advances it", () => {
  const rand = rng(26);
  const n = 12, c = 6;
  using x = logits(uniform(rand, n * c, -2, 2), n, c);
  const labels = randomLabels(rand, n, c - 1);
  const frequencies = [0.3, 1e-3, 1e-3, 0.1, 2e-3, 1e-4];
  const criterion = new SeqlCriterion({ frequencies, seed: 3, counter: 0xfffffffe });
  for (const counter of [0xfffffffe, 0xffffffff, 0, 1]) {
    assert.equal(criterion.counter, counter);
    const got = take(criterion.compute(x, labels));
    const want = take(seqlLoss(x, labels, { frequencies, seed: 3, counter }));
    assert.equal(got.loss, want.loss);
    assert.deepEqual(got.grad, want.grad);
  }
  assert.equal(criterion.counter, 2);
});

Deno.test("losses: logits of ±1e4 and rows of equal logits give finite, correct results", () => {
  const n = 3, c = 4;
  const z = new Float32Array([1e4, -1e4, 1e4, -1e4, 5, 5, 5, 5, -1e4, 1e4, -1e4, 1e4]);
  const sig = new Int32Array([0, 4, 1]);
  const soft = new Int32Array([0, 2, 1]);
  const frequencies = [0.5, 1e-4, 1e-4, 0.2];
  using x = logits(z, n, c);
  const runs: [string, LossResult, Float64Array][] = [
    ["sigmoidCrossEntropy", sigmoidCrossEntropy(x, sig), refSigmoidRows(z, sig, n, c)],
    [
      "eqlLoss",
      eqlLoss(x, sig, { frequencies }),
      refSigmoidRows(z, sig, n, c, { suppress: [0, 1, 1, 0] }),
    ],
    ["focalLoss", focalLoss(x, sig), refSigmoidRows(z, sig, n, c, { alpha: 0.25, gamma: 2 })],
    ["softmaxCrossEntropy", softmaxCrossEntropy(x, soft), refSoftmax(z, soft, n, c).rows],
    [
      "seqlLoss",
      seqlLoss(x, soft, { frequencies, gamma: 1 }),
      refSoftmax(z, soft, n, c, { suppress: [0, 1, 1, 0], gamma: 1 }).rows,
    ],
  ];
  for (const [name, result, rows] of runs) {
    const r = take(result);
    assert.ok(Number.isFinite(r.loss), `${name}: loss ${r.loss}`);
    for (const g of r.grad) assert.ok(Number.isFinite(g), `${name}: grad ${g}`);
    assertClose([r.loss], [total(rows) / n], 1e-6, 0, name);
  }
});

Deno.test("losses: labels may be an i32 tensor", () => {
  const rand = rng(27);
  const n = 5, c = 4;
  using x = logits(uniform(rand, n * c, -2, 2), n, c);
  const labels = new Int32Array([0, 4, 2, 3, 1]);
  using t = tensor(labels, [n]);
  const a = take(eqlLoss(x, t, { frequencies: [0.5, 1e-4, 0.2, 0.1] }));
  const b = take(eqlLoss(x, labels, { frequencies: [0.5, 1e-4, 0.2, 0.1] }));
  assert.equal(a.loss, b.loss);
  assert.deepEqual(a.grad, b.grad);
  assert.equal(t.disposed, false, "the caller's labels tensor is left alone");
});

Deno.test("smoothL1Loss: value and gradient with row weights and a normaliser", () => {
  const rand = rng(28);
  const n = 6, d = 4;
  const pred = uniform(rand, n * d, -2, 2), target = uniform(rand, n * d, -2, 2);
  const rowWeight = [1, 0, 1, 1, 0, 1];
  using p = tensor(pred, [n, d]);
  using t = tensor(target, [n, d]);
  const r = take(smoothL1Loss(p, t, { beta: 0.5, rowWeight, normalizer: 512 }));
  const rows = refSmoothL1Rows(pred, target, rowWeight, n, d, 0.5);
  assertClose([r.loss], [total(rows) / 512], 1e-6, 0, "loss");
  const fd = finiteDiff((v) => total(refSmoothL1Rows(v, target, rowWeight, n, d, 0.5)) / 512, pred);
  assertClose(r.grad, fd, 1e-5, 1e-9, "grad vs FD");
  const m = take(smoothL1Loss(p, t));
  const ones = new Float64Array(n).fill(1);
  assertClose([m.loss], [total(refSmoothL1Rows(pred, target, ones, n, d, 1)) / n], 1e-6, 0);
});

/** A CPU device that counts live buffers. */
class CountingDevice extends CpuDevice {
  live = 0;
  override alloc(dtype: DType, length: number): DeviceBuffer {
    this.live++;
    return super.alloc(dtype, length);
  }
  override free(buffer: DeviceBuffer): void {
    this.live--;
    super.free(buffer);
  }
}

Deno.test("losses: every temporary buffer is freed, on success and on failure", () => {
  const dev = new CountingDevice();
  const n = 4, c = 3;
  const z = new Float32Array([0.1, 0.2, 0.3, 1, 2, 3, -1, 0, 1, 0.5, 0.5, 0.5]);
  using x = tensor(z, [n, c], dev);
  using t = tensor(new Int32Array([0, 1, 2, 3]), [n], dev);
  using bad = tensor(z.map((v, q) => (q === 7 ? NaN : v)), [n, c], dev);
  const before = dev.live;
  const il = { imageOfRow: [0, 0, 1, 1], positive: [[1], [2]], negative: [[], [0]] };
  const frequencies = [0.5, 1e-4, 1e-4];
  const calls: (() => LossResult)[] = [
    () => eqlLoss(x, t, { frequencies, imageLevel: il, classWeight: [1, 2, 3] }),
    () => focalLoss(x, t, { eql: { frequencies } }),
    () => sigmoidCrossEntropy(x, new Int32Array([0, 1, 2, 3])),
    () => seqlLoss(x, new Int32Array([0, 1, 2, 0]), { frequencies, classWeight: [1, 1, 2] }),
    () =>
      softmaxCrossEntropy(x, new Int32Array([0, 1, 2, 0]), {
        logitAdjustment: { priors: [1, 2, 3] },
      }),
  ];
  for (const call of calls) {
    const r = call();
    assert.equal(dev.live, before + 1, "only the gradient stays");
    r.grad.dispose();
    assert.equal(dev.live, before);
  }
  assert.throws(() => eqlLoss(bad, t, { frequencies }), RangeError);
  assert.throws(() => seqlLoss(bad, new Int32Array(4), { frequencies }), RangeError);
  assert.equal(dev.live, before, "nothing leaks when the loss reports bad logits");
});
