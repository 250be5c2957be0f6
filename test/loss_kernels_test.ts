// The CPU loss kernels against naive float64 loops and central finite differences.

import assert from "node:assert/strict";
import {
  sigmoidLoss,
  type SigmoidLossArrays,
  smoothL1Loss,
  softmaxLoss,
  type SoftmaxLossArrays,
} from "../src/device/cpu/losses.ts";
import { gammaThreshold, maskDraw } from "../src/device/mask.ts";
import { CpuDevice } from "../src/device/cpu.ts";
import {
  assertClose,
  finiteDiff,
  randomLabels,
  refBceGrad,
  refMask,
  type RefSigmoidOptions,
  refSigmoidRows,
  refSmoothL1Rows,
  refSoftmax,
  type RefSoftmaxOptions,
  rng,
  scaled,
  total,
  uniform,
} from "./loss_reference.ts";

function runSigmoid(
  z: Float32Array,
  labels: Int32Array,
  n: number,
  c: number,
  p: Partial<SigmoidLossArrays> = {},
): { rows: Float32Array; grad: Float32Array } {
  const rows = new Float32Array(n), grad = new Float32Array(n * c);
  sigmoidLoss(z, labels, grad, rows, {
    n,
    c,
    scale: 1,
    backgroundExempt: true,
    focalGamma: 0,
    focalAlpha: -1,
    ...p,
  });
  return { rows, grad };
}

function runSoftmax(
  z: Float32Array,
  labels: Int32Array,
  n: number,
  c: number,
  p: Partial<SoftmaxLossArrays> = {},
): { rows: Float32Array; grad: Float32Array } {
  const rows = new Float32Array(n), grad = new Float32Array(n * c);
  softmaxLoss(z, labels, grad, rows, {
    n,
    c,
    scale: 1,
    gammaThreshold: 0,
    seed: 0,
    counter: 0,
    ...p,
  });
  return { rows, grad };
}

Deno.test("sigmoidLoss: plain BCE rows and gradient (with scale) match the float64 loop", () => {
  const rand = rng(1);
  const n = 9, c = 6, scale = 0.37;
  const z = uniform(rand, n * c, -6, 6);
  const labels = randomLabels(rand, n, c); // includes background rows (label c)
  labels[0] = c;
  const { rows, grad } = runSigmoid(z, labels, n, c, { scale });
  assertClose(rows, refSigmoidRows(z, labels, n, c), 1e-6, 0, "rows");
  assertClose(grad, scaled(refBceGrad(z, labels, n, c), scale), 1e-6, 1e-12, "grad");
});

Deno.test("sigmoidLoss: EQL weights, class weights, E(r) on/off and keep mask match the loop", () => {
  const rand = rng(2);
  const n = 12, c = 7;
  const z = uniform(rand, n * c, -4, 4);
  const labels = randomLabels(rand, n, c);
  labels[1] = c;
  labels[2] = c;
  const suppress = new Float32Array([0, 1, 0.25, 1, 0, 0.75, 1]);
  const classWeight = new Float32Array([1.5, 0.5, 2, 1, 0.25, 3, 0.75]);
  const imageOfRow = new Int32Array(n).map((_, i) => i % 3);
  const keep = [[1, 5], [], [3, 6, 2]];
  const keepMask = new Int32Array(3 * c);
  keep.forEach((set, m) => set.forEach((k) => keepMask[m * c + k] = 1));
  for (const exempt of [true, false]) {
    for (const withKeep of [false, true]) {
      const o: RefSigmoidOptions = {
        suppress,
        exempt,
        classWeight,
        ...(withKeep ? { imageOfRow, keep } : {}),
      };
      const { rows, grad } = runSigmoid(z, labels, n, c, {
        suppress,
        backgroundExempt: exempt,
        classWeight,
        ...(withKeep ? { imageOfRow, keepMask } : {}),
        scale: 0.5,
      });
      const what = `exempt=${exempt} keep=${withKeep}`;
      assertClose(rows, refSigmoidRows(z, labels, n, c, o), 1e-6, 1e-12, `${what} rows`);
      assertClose(grad, scaled(refBceGrad(z, labels, n, c, o), 0.5), 1e-6, 1e-12, `${what} grad`);
    }
  }
});

Deno.test("sigmoidLoss: focal rows match the loop and the gradient matches finite differences", () => {
  const rand = rng(3);
  const n = 6, c = 5;
  const z = uniform(rand, n * c, -5, 5);
  const labels = randomLabels(rand, n, c);
  labels[3] = c;
  const suppress = new Float32Array([0, 1, 0.5, 0, 1]);
  for (const gamma of [0, 0.5, 1, 2, 3.7]) {
    for (const alpha of [-1, 0, 0.25, 1]) {
      const o: RefSigmoidOptions = { gamma, alpha: alpha < 0 ? undefined : alpha, suppress };
      const { rows, grad } = runSigmoid(z, labels, n, c, {
        focalGamma: gamma,
        focalAlpha: alpha,
        suppress,
        scale: 1 / n,
      });
      const what = `gamma=${gamma} alpha=${alpha}`;
      assertClose(rows, refSigmoidRows(z, labels, n, c, o), 1e-6, 1e-12, `${what} rows`);
      const fd = finiteDiff((x) => total(refSigmoidRows(x, labels, n, c, o)) / n, z);
      assertClose(grad, fd, 1e-5, 1e-8, `${what} grad vs FD`);
    }
  }
});

Deno.test("sigmoidLoss: focal with γ = 0 and α off gives the BCE path's numbers", () => {
  const rand = rng(4);
  const n = 5, c = 4;
  const z = uniform(rand, n * c, -8, 8);
  const labels = randomLabels(rand, n, c);
  const plain = runSigmoid(z, labels, n, c);
  // γ = 0 with α = 0.5 runs the focal path; twice its values are plain BCE.
  const half = runSigmoid(z, labels, n, c, { focalGamma: 0, focalAlpha: 0.5 });
  assertClose(scaled(half.rows, 2), plain.rows, 2.5e-7, 0, "rows");
  assertClose(scaled(half.grad, 2), plain.grad, 2.5e-7, 0, "grad");
});

Deno.test("sigmoidLoss: extreme and equal logits give finite, correct losses and gradients", () => {
  const n = 4, c = 4;
  const z = new Float32Array([
    ...[1e4, -1e4, 1e4, -1e4],
    ...[0, 0, 0, 0],
    ...[-1e4, 1e4, 30, -30],
    ...[30, -30, 7, 7],
  ]);
  const labels = new Int32Array([0, 2, 1, 0]);
  for (const [gamma, alpha] of [[0, -1], [2, 0.25]]) {
    const { rows, grad } = runSigmoid(z, labels, n, c, { focalGamma: gamma, focalAlpha: alpha });
    for (const v of [...rows, ...grad]) assert.ok(Number.isFinite(v), `finite, got ${v}`);
    const o = { gamma, alpha: alpha < 0 ? undefined : alpha };
    assertClose(rows, refSigmoidRows(z, labels, n, c, o), 1e-6, 1e-30, `rows γ=${gamma}`);
  }
  const { rows, grad } = runSigmoid(z, labels, n, c);
  // Row 0: targets right with margin 1e4 except column 2 (z = 1e4, y = 0): loss 1e4, grad 1.
  assert.equal(rows[0], 1e4);
  assertClose(grad.subarray(0, 4), [0, 0, 1, 0], 0, 0, "row 0 grad");
  assertClose(grad, refBceGrad(z, labels, n, c), 1e-6, 1e-30, "grad");
  // σ(−30) ≈ 9.4e-14 keeps full precision, for a non-target at −30 and a target at +30.
  const tiny = 1 / (1 + Math.exp(30));
  assertClose([grad[10], grad[11], grad[12], grad[13]], [1 - tiny, tiny, -tiny, tiny], 1e-6, 0);
});

Deno.test("sigmoidLoss: a non-finite logit poisons only its row's loss", () => {
  const n = 3, c = 3;
  for (const bad of [NaN, Infinity, -Infinity]) {
    const z = new Float32Array(n * c).fill(0.5);
    z[1 * c + 2] = bad;
    // Column 2 is fully suppressed for row 1, so its weight is 0 there.
    const { rows } = runSigmoid(z, new Int32Array([0, 0, 3]), n, c, {
      suppress: new Float32Array([0, 0, 1]),
    });
    assert.ok(Number.isFinite(rows[0]) && Number.isFinite(rows[2]), `other rows, ${bad}`);
    assert.ok(Number.isNaN(rows[1]), `row 1 with ${bad}: ${rows[1]}`);
  }
});

Deno.test("sigmoidLoss: rejects labels outside 0..C and rows outside the keep mask", () => {
  const z = new Float32Array(4);
  assert.throws(() => runSigmoid(z, new Int32Array([0, 3]), 2, 2), {
    name: "RangeError",
    message: "labels[1] must lie in 0..2, got 3",
  });
  const keep = { imageOfRow: new Int32Array([0, 1]), keepMask: new Int32Array(2) };
  assert.throws(() => runSigmoid(z, new Int32Array([0, 1]), 2, 2, keep), {
    name: "RangeError",
    message: /imageOfRow\[1\] must select an image of keepMask \(1 images\), got 1/,
  });
});

Deno.test("the CPU device checks the loss records before the kernels run", () => {
  const dev = new CpuDevice({ kernels: "typescript" });
  const f = (len: number) => dev.alloc("f32", len), i = (len: number) => dev.alloc("i32", len);
  const sigmoid = { n: 2, c: 2, scale: 1, backgroundExempt: true, focalGamma: 0, focalAlpha: -1 };
  assert.throws(() => dev.sigmoidLoss(f(4), i(2), f(4), f(2), { ...sigmoid, keepMask: i(2) }), {
    name: "RangeError",
    message: "sigmoidLoss: params.imageOfRow and params.keepMask must be given together",
  });
  assert.throws(() => dev.sigmoidLoss(f(3), i(2), f(4), f(2), sigmoid), {
    name: "RangeError",
    message: "sigmoidLoss: logits must hold at least 4 elements, got 3",
  });
  assert.throws(() => dev.sigmoidLoss(f(4), i(2), f(4), f(2), { ...sigmoid, suppress: i(2) }), {
    name: "TypeError",
    message: "sigmoidLoss: params.suppress must be an f32 buffer, got an i32 one",
  });
  const softmax = { n: 2, c: 2, scale: 1, gammaThreshold: 0, seed: 0, counter: 0 };
  assert.throws(() => dev.softmaxLoss(f(4), i(2), f(4), f(2), { ...softmax, logitBias: f(1) }), {
    name: "RangeError",
    message: "softmaxLoss: params.logitBias must hold at least 2 elements, got 1",
  });
  assert.throws(
    () => dev.smoothL1Loss(f(8), f(8), f(2), f(8), f(2), { n: 2, d: 4, beta: -1, scale: 1 }),
    {
      name: "RangeError",
      message: /smoothL1Loss: shape\.beta must be a finite number in \[0, .*got -1/,
    },
  );
});

Deno.test("the CPU device's losses convert every optional array (sigmoid and softmax)", () => {
  const dev = new CpuDevice({ kernels: "typescript" });
  const up = <T extends Float32Array | Int32Array>(data: T) => {
    const b = dev.alloc(data instanceof Float32Array ? "f32" : "i32", data.length);
    dev.upload(b, data);
    return b;
  };
  const read = (b: ReturnType<typeof up>) => {
    const out = new Float32Array(b.length);
    dev.download(b, out);
    return out;
  };
  const rand = rng(9);
  const n = 4, c = 5;
  const z = uniform(rand, n * c, -3, 3);
  const labels = new Int32Array([0, 5, 2, 4]);
  const host = {
    n,
    c,
    scale: 0.5,
    suppress: uniform(rand, c, 0, 1),
    backgroundExempt: false,
    classWeight: uniform(rand, c, 0.5, 1.5),
    focalGamma: 0,
    focalAlpha: -1,
    imageOfRow: new Int32Array([0, 0, 1, 1]),
    keepMask: new Int32Array([1, 0, 0, 1, 0, 0, 0, 1, 0, 0]),
  };
  const grad = up(new Float32Array(n * c)), rows = up(new Float32Array(n));
  dev.sigmoidLoss(up(z), up(labels), grad, rows, {
    ...host,
    suppress: up(host.suppress),
    classWeight: up(host.classWeight),
    imageOfRow: up(host.imageOfRow),
    keepMask: up(host.keepMask),
  });
  const want = runSigmoid(z, labels, n, c, host);
  assert.deepEqual(read(rows), want.rows);
  assert.deepEqual(read(grad), want.grad);

  const softLabels = new Int32Array([0, 4, 2, 1]);
  const soft = {
    n,
    c,
    scale: 0.5,
    suppress: new Float32Array([0, 1, 1, 0, 1]),
    gammaThreshold: gammaThreshold(0.5),
    seed: 3,
    counter: 2,
    classWeight: uniform(rand, c, 0.5, 1.5),
    logitBias: uniform(rand, c, -1, 1),
  };
  dev.softmaxLoss(up(z), up(softLabels), grad, rows, {
    ...soft,
    suppress: up(soft.suppress),
    classWeight: up(soft.classWeight),
    logitBias: up(soft.logitBias),
  });
  const wantSoft = runSoftmax(z, softLabels, n, c, soft);
  assert.deepEqual(read(rows), wantSoft.rows);
  assert.deepEqual(read(grad), wantSoft.grad);
});

Deno.test("softmaxLoss: plain, class-weighted and biased rows and gradients match the loop", () => {
  const rand = rng(5);
  const n = 10, c = 7, scale = 0.25;
  const z = uniform(rand, n * c, -5, 5);
  const labels = randomLabels(rand, n, c - 1);
  const classWeight = uniform(rand, c, 0.1, 3);
  const bias = uniform(rand, c, -2, 1);
  for (const o of [{}, { classWeight }, { bias }, { classWeight, bias }] as RefSoftmaxOptions[]) {
    const { rows, grad } = runSoftmax(z, labels, n, c, {
      scale,
      classWeight: o.classWeight as Float32Array | undefined,
      logitBias: o.bias as Float32Array | undefined,
    });
    const ref = refSoftmax(z, labels, n, c, o);
    const what = Object.keys(o).join("+") || "plain";
    assertClose(rows, ref.rows, 1e-6, 1e-12, `${what} rows`);
    assertClose(grad, scaled(ref.grad, scale), 1e-6, 1e-12, `${what} grad`);
    const fd = finiteDiff((x) => total(refSoftmax(x, labels, n, c, o).rows) * scale, z);
    assertClose(grad, fd, 1e-5, 1e-8, `${what} grad vs FD`);
  }
});

Deno.test("softmaxLoss: the mask is maskDraw(seed, counter, row, class) < floor(γ·2^24)", () => {
  const rand = rng(6);
  const n = 40, c = 9;
  const z = uniform(rand, n * c, -3, 3);
  const labels = randomLabels(rand, n, c - 1);
  const suppress = new Float32Array([0, 1, 1, 0, 1, 1, 0, 1, 1]);
  for (const [gamma, seed, counter] of [[0.5, 7, 0], [0.5, 7, 1], [0.9, 0xffffffff, 12345]]) {
    const o = { suppress, gamma, seed, counter };
    const { rows, grad } = runSoftmax(z, labels, n, c, {
      suppress,
      gammaThreshold: gammaThreshold(gamma),
      seed,
      counter,
    });
    const mask = refMask(labels, n, c, o);
    let masked = 0;
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < c; k++) {
        const expected = k !== labels[i] && suppress[k] === 1 &&
          maskDraw(seed, counter, i, k) < Math.floor(gamma * 16777216);
        assert.equal(mask[i * c + k] === 1, expected);
        // Unmasked probabilities of logits in [−3, 3] are far from 0, so 0 means masked.
        assert.equal(grad[i * c + k] === 0, expected, `row ${i} class ${k}`);
        if (expected) masked++;
      }
    }
    assert.ok(masked > 0 && masked < n * 6, `some but not all candidates masked (${masked})`);
    const ref = refSoftmax(z, labels, n, c, o, mask);
    assertClose(rows, ref.rows, 1e-6, 1e-12, "rows");
    assertClose(grad, ref.grad, 1e-6, 1e-12, "grad");
    const fd = finiteDiff((x) => total(refSoftmax(x, labels, n, c, o, mask).rows), z);
    assertClose(grad, fd, 1e-5, 1e-8, "grad vs FD");
  }
});

Deno.test("softmaxLoss: γ = 1 masks every tail non-target class, γ = 0 none", () => {
  const rand = rng(7);
  const n = 8, c = 5;
  const z = uniform(rand, n * c, -2, 2);
  const labels = new Int32Array([0, 1, 2, 3, 4, 1, 3, 0]);
  const suppress = new Float32Array([0, 1, 0, 1, 1]);
  const all = runSoftmax(z, labels, n, c, { suppress, gammaThreshold: gammaThreshold(1) });
  const none = runSoftmax(z, labels, n, c, { suppress, gammaThreshold: gammaThreshold(0) });
  const plain = runSoftmax(z, labels, n, c);
  assert.deepEqual(none.rows, plain.rows);
  assert.deepEqual(none.grad, plain.grad);
  const mask = new Uint8Array(n * c);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < c; k++) mask[i * c + k] = k !== labels[i] && suppress[k] === 1 ? 1 : 0;
  }
  const ref = refSoftmax(z, labels, n, c, {}, mask);
  assertClose(all.rows, ref.rows, 1e-6, 1e-12, "rows");
  assertClose(all.grad, ref.grad, 1e-6, 1e-12, "grad");
  for (let q = 0; q < n * c; q++) assert.equal(all.grad[q] === 0, mask[q] === 1);
});

Deno.test("softmaxLoss: extreme and equal logits give finite, correct results", () => {
  const c = 4;
  const z = new Float32Array([1e4, -1e4, 1e4, -1e4, 0, 0, 0, 0, -1e4, 1e4, 3, -3, 7, 7, 7, 7]);
  const labels = new Int32Array([0, 2, 0, 3]);
  const { rows, grad } = runSoftmax(z, labels, 4, c);
  for (const v of [...rows, ...grad]) assert.ok(Number.isFinite(v), `finite, got ${v}`);
  const ref = refSoftmax(z, labels, 4, c);
  assertClose(rows, ref.rows, 1e-6, 1e-12, "rows");
  assertClose(grad, ref.grad, 1e-6, 1e-12, "grad");
  assert.equal(rows[0], Math.fround(Math.log(2)));
  assert.equal(rows[2], 2e4);
  assertClose([rows[1], rows[3]], [Math.log(4), Math.log(4)], 1e-7, 0);
});

Deno.test("softmaxLoss: a confident row keeps a tiny loss and gradient instead of rounding to 0", () => {
  const z = new Float32Array([40, 0, 0]);
  const { rows, grad } = runSoftmax(z, new Int32Array([0]), 1, 3);
  const e = Math.exp(-40), others = 2 * e; // 1 + others rounds to 1 in float64
  assertClose(rows, [others], 1e-6, 0, "rows");
  assertClose(grad, [-others, e, e], 1e-6, 0, "grad");
});

Deno.test("softmaxLoss: the maximum is taken over unmasked classes only", () => {
  // A masked class with a huge logit must not shift the others' exponentials to 0.
  const z = new Float32Array([0.5, 1e4, -0.5, 0]);
  const labels = new Int32Array([0]);
  const { rows, grad } = runSoftmax(z, labels, 1, 4, {
    suppress: new Float32Array([0, 1, 0, 0]),
    gammaThreshold: gammaThreshold(1),
  });
  const ref = refSoftmax(z, labels, 1, 4, {}, new Uint8Array([0, 1, 0, 0]));
  assertClose(rows, ref.rows, 1e-6, 0, "rows");
  assertClose(grad, ref.grad, 1e-6, 0, "grad");
});

Deno.test("softmaxLoss: a non-finite logit poisons its row's loss, masked classes included", () => {
  const n = 3, c = 3;
  for (const bad of [NaN, Infinity, -Infinity]) {
    const z = new Float32Array(n * c).fill(0.25);
    z[1 * c + 2] = bad; // class 2 is masked for every row at γ = 1
    const { rows } = runSoftmax(z, new Int32Array([0, 1, 0]), n, c, {
      suppress: new Float32Array([0, 0, 1]),
      gammaThreshold: gammaThreshold(1),
    });
    assert.ok(Number.isFinite(rows[0]) && Number.isFinite(rows[2]), `other rows, ${bad}`);
    assert.ok(Number.isNaN(rows[1]), `row 1 with ${bad}: ${rows[1]}`);
  }
});

Deno.test("softmaxLoss: rejects labels outside 0..C−1", () => {
  assert.throws(() => runSoftmax(new Float32Array(4), new Int32Array([2, 0]), 2, 2), {
    name: "RangeError",
    message: "labels[0] must lie in 0..1, got 2",
  });
});

Deno.test("smoothL1Loss: rows match the loop and the gradient matches finite differences", () => {
  const rand = rng(8);
  const n = 7, d = 4, scale = 0.2;
  const pred = uniform(rand, n * d, -3, 3);
  const target = uniform(rand, n * d, -3, 3);
  const weight = new Float32Array([1, 0, 2, 1, 0.5, 0, 1]);
  for (const beta of [0, 0.5, 1, 10]) {
    // Keep every difference away from the kinks at 0 and ±β so that FD is meaningful.
    for (let q = 0; q < n * d; q++) {
      const diff = pred[q] - target[q];
      if (Math.abs(Math.abs(diff) - beta) < 1e-3 || Math.abs(diff) < 1e-3) pred[q] += 0.01;
    }
    const rows = new Float32Array(n), grad = new Float32Array(n * d);
    smoothL1Loss(pred, target, weight, grad, rows, { n, d, beta, scale });
    assertClose(rows, refSmoothL1Rows(pred, target, weight, n, d, beta), 1e-6, 1e-12, "rows");
    const fd = finiteDiff(
      (x) => total(refSmoothL1Rows(x, target, weight, n, d, beta)) * scale,
      pred,
    );
    assertClose(grad, fd, 1e-5, 1e-8, `beta=${beta} grad vs FD`);
  }
});
