// The CPU loss kernels, native (`ffi/cpu_kernels/losses.c`) and TypeScript side by side in this
// process: both against naive float64 loops (every option combination) and central finite
// differences; native against TypeScript within a stated bound; the softmax-EQL mask as the same
// set of classes on both; rows with non-finite logits; native results that do not depend on the
// thread count; the CPU device dispatching to the kernels its choice names; and the accuracy of the
// native `exp` and `log1p` over the whole float range.
//
// Bounds, in float32 ulps of the value compared against (the ulp of a subnormal is 2^-149):
// - native vs TypeScript: every row loss and gradient value within NATIVE_VS_TS_ULPS (observed
//   in that test: sigmoid family rows 5 ulps and gradients 8, the focal ones; softmax family rows
//   1 ulp and gradients 2); smooth-L1 bit for bit.
// - either vs the float64 loops: relative 1e-6 (about 17 ulps), plus 1e-37 absolute for values
//   that underflow.
// - the native exp within EXP_ULPS (1.25; 0.94 observed with fused multiply-adds), also of the
//   exact difference of two floats, log1p within LOG1P_ULPS (1; 0.92 observed), exactly
//   0 / +Inf / NaN in the saturation and special cases.

import assert from "node:assert/strict";
import {
  sigmoidLoss,
  type SigmoidLossArrays,
  smoothL1Loss,
  softmaxLoss,
  type SoftmaxLossArrays,
} from "../src/device/cpu/losses.ts";
import type { CpuBackend } from "../src/device/cpu/backend.ts";
import { sgemmTypeScript } from "../src/device/cpu/gemm.ts";
import { gammaThreshold, maskDraw } from "../src/device/mask.ts";
import { CpuDevice } from "../src/device/cpu.ts";
import type { Device, DeviceBuffer } from "../src/device/device.ts";
import { cpuKernels } from "../ffi/cpu_kernels.ts";
import {
  assertClose,
  finiteDiff,
  randomLabels,
  refBceGrad,
  refMask,
  type RefSigmoidOptions,
  refSigmoidRows,
  refSigmoidWeight,
  refSmoothL1Rows,
  refSoftmax,
  type RefSoftmaxOptions,
  rng,
  scaled,
  total,
  uniform,
} from "./loss_reference.ts";

const NATIVE_VS_TS_ULPS = 8;
const EXP_ULPS = 1.25;
const LOG1P_ULPS = 1;
const FLT_MAX = 3.4028234663852886e38;

const TYPESCRIPT: CpuBackend = { native: null, gemm: sgemmTypeScript };

function loadNative(): CpuBackend | null {
  try {
    return { native: cpuKernels("native"), gemm: sgemmTypeScript };
  } catch (e) {
    console.log(`loss_kernels_test.ts: native kernels skipped: ${(e as Error).message}`);
    return null;
  }
}
const NATIVE = loadNative();
const ignore = NATIVE === null;

/** The TypeScript kernels and, where they build, the native ones. */
const BACKENDS: [string, CpuBackend][] = NATIVE === null
  ? [["typescript", TYPESCRIPT]]
  : [["native", NATIVE], ["typescript", TYPESCRIPT]];

function runSigmoid(
  k: CpuBackend,
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
  }, k);
  return { rows, grad };
}

function runSoftmax(
  k: CpuBackend,
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
  }, k);
  return { rows, grad };
}

// ── float64 helpers ──────────────────────────────────────────────────────────────────────────

const f64 = new Float64Array(1);
const f64Words = new Uint32Array(f64.buffer);

/** The float32 ulp at |x| (2^-149 below the normal range). */
function ulpOf(x: number): number {
  const a = Math.abs(x);
  if (a < 2 ** -126) return 2 ** -149;
  f64[0] = a;
  return 2 ** (((f64Words[1] >>> 20) & 0x7ff) - 1023 - 23);
}

/**
 * The error of a float32 result `y` against the exact value `ref`, in float32 ulps of `ref`:
 * NaN must give NaN, a value beyond FLT_MAX must give the infinity of its sign.
 */
function ulpError(y: number, ref: number): number {
  if (Number.isNaN(ref)) return Number.isNaN(y) ? 0 : Infinity;
  if (Math.abs(ref) > FLT_MAX) return y === Math.sign(ref) * Infinity ? 0 : Infinity;
  if (!Number.isFinite(y)) return Infinity;
  return Math.abs(y - ref) / ulpOf(ref);
}

/** Asserts that every value of `actual` lies within `ulps` float32 ulps of `expected`. */
function assertUlps(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  ulps: number,
  what: string,
): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const e = ulpError(actual[i], expected[i]);
    if (!(e <= ulps)) {
      assert.fail(`${what}[${i}]: got ${actual[i]}, expected ${expected[i]} (${e} ulps > ${ulps})`);
    }
  }
}

/** Asserts the same bits (NaN payloads included). */
function assertBits(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) {
    if (x[i] !== y[i]) assert.fail(`${what}[${i}]: ${a[i]} and ${b[i]} differ in their bits`);
  }
}

/** `log σ(t)` without overflow. */
function logSigmoid(t: number): number {
  return t >= 0 ? -Math.log1p(Math.exp(-t)) : t - Math.log1p(Math.exp(t));
}

/**
 * The float64 gradient of the sigmoid-family row losses for any focal γ and α: with
 * `t = ±z` (target / non-target), `p = σ(t)`, `q = 1 − p`, it is `s·w·α_t·q^γ·(γ·p·log p − q)`
 * with `s = ±1`, the derivative of `−w·α_t·q^γ·log p`.
 */
function refSigmoidGrad(
  z: ArrayLike<number>,
  labels: ArrayLike<number>,
  n: number,
  c: number,
  o: RefSigmoidOptions,
): Float64Array {
  const g = new Float64Array(n * c);
  const gamma = o.gamma ?? 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < c; j++) {
      const y = j === labels[i] ? 1 : 0;
      const t = y === 1 ? z[i * c + j] : -z[i * c + j];
      const p = 1 / (1 + Math.exp(-t)), q = 1 / (1 + Math.exp(t));
      const at = o.alpha === undefined ? 1 : y === 1 ? o.alpha : 1 - o.alpha;
      const w = refSigmoidWeight(labels[i], i, j, c, o);
      g[i * c + j] = (y === 1 ? 1 : -1) * w * at * Math.pow(q, gamma) *
        (gamma * p * logSigmoid(t) - q);
    }
  }
  return g;
}

/** Logits from [−range, range) with a few large ones mixed in. */
function logitsWithExtremes(rand: () => number, len: number, range: number): Float32Array {
  const z = uniform(rand, len, -range, range);
  const extremes = [0, -0, 40, -40, 100, -100, 1e4, -1e4, 88.8, -104];
  for (let q = 0; q < len; q += 7) z[q] = extremes[Math.floor(rand() * extremes.length)];
  return z;
}

// ── sigmoid family ───────────────────────────────────────────────────────────────────────────

Deno.test("sigmoidLoss: plain BCE rows and gradient (with scale) match the float64 loop", () => {
  for (const [name, k] of BACKENDS) {
    const rand = rng(1);
    const n = 9, c = 6, scale = 0.37;
    const z = uniform(rand, n * c, -6, 6);
    const labels = randomLabels(rand, n, c); // includes background rows (label c)
    labels[0] = c;
    const { rows, grad } = runSigmoid(k, z, labels, n, c, { scale });
    assertClose(rows, refSigmoidRows(z, labels, n, c), 1e-6, 0, `${name} rows`);
    assertClose(grad, scaled(refBceGrad(z, labels, n, c), scale), 1e-6, 1e-12, `${name} grad`);
  }
});

Deno.test("sigmoidLoss: EQL weights, class weights, E(r) on/off and keep mask match the loop", () => {
  for (const [name, k] of BACKENDS) {
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
    keep.forEach((set, m) => set.forEach((j) => keepMask[m * c + j] = 1));
    for (const exempt of [true, false]) {
      for (const withKeep of [false, true]) {
        const o: RefSigmoidOptions = {
          suppress,
          exempt,
          classWeight,
          ...(withKeep ? { imageOfRow, keep } : {}),
        };
        const { rows, grad } = runSigmoid(k, z, labels, n, c, {
          suppress,
          backgroundExempt: exempt,
          classWeight,
          ...(withKeep ? { imageOfRow, keepMask } : {}),
          scale: 0.5,
        });
        const what = `${name} exempt=${exempt} keep=${withKeep}`;
        assertClose(rows, refSigmoidRows(z, labels, n, c, o), 1e-6, 1e-12, `${what} rows`);
        assertClose(grad, scaled(refBceGrad(z, labels, n, c, o), 0.5), 1e-6, 1e-12, `${what} grad`);
      }
    }
  }
});

Deno.test("sigmoidLoss: focal rows match the loop and the gradient matches finite differences", () => {
  for (const [name, k] of BACKENDS) {
    const rand = rng(3);
    const n = 6, c = 5;
    const z = uniform(rand, n * c, -5, 5);
    const labels = randomLabels(rand, n, c);
    labels[3] = c;
    const suppress = new Float32Array([0, 1, 0.5, 0, 1]);
    for (const gamma of [0, 0.5, 1, 2, 3.7]) {
      for (const alpha of [-1, 0, 0.25, 1]) {
        const o: RefSigmoidOptions = { gamma, alpha: alpha < 0 ? undefined : alpha, suppress };
        const { rows, grad } = runSigmoid(k, z, labels, n, c, {
          focalGamma: gamma,
          focalAlpha: alpha,
          suppress,
          scale: 1 / n,
        });
        const what = `${name} gamma=${gamma} alpha=${alpha}`;
        assertClose(rows, refSigmoidRows(z, labels, n, c, o), 1e-6, 1e-12, `${what} rows`);
        const fd = finiteDiff((x) => total(refSigmoidRows(x, labels, n, c, o)) / n, z);
        assertClose(grad, fd, 1e-5, 1e-8, `${what} grad vs FD`);
      }
    }
  }
});

Deno.test("sigmoidLoss: every option combination matches the float64 loops, rows and gradient", () => {
  const rand = rng(21);
  const n = 14, c = 9;
  const z = logitsWithExtremes(rand, n * c, 12);
  const labels = randomLabels(rand, n, c);
  labels[0] = c;
  labels[5] = c;
  const threshold = new Float32Array(c).map(() => (rand() < 0.5 ? 1 : 0));
  const decay = uniform(rand, c, 0, 1);
  decay[0] = 0;
  decay[1] = 1;
  const classWeight = uniform(rand, c, 0.2, 3);
  const imageOfRow = new Int32Array(n).map((_, i) => i % 4);
  const keep = [[0, 3], [], [1, 2, 8], [5]];
  const keepMask = new Int32Array(4 * c);
  keep.forEach((set, m) => set.forEach((j) => keepMask[m * c + j] = 1));
  const focal: [number, number][] = [[0, -1], [2, 0.25], [0.5, -1], [0, 0.75], [3.7, 1], [1, 0]];
  let combos = 0;
  for (const [name, k] of BACKENDS) {
    for (const suppress of [undefined, threshold, decay]) {
      for (const exempt of [true, false]) {
        for (const withKeep of [false, true]) {
          for (const cw of [undefined, classWeight]) {
            for (const [gamma, alpha] of focal) {
              const o: RefSigmoidOptions = {
                suppress,
                exempt,
                classWeight: cw,
                gamma,
                alpha: alpha < 0 ? undefined : alpha,
                ...(withKeep ? { imageOfRow, keep } : {}),
              };
              const scale = 1 / n;
              const { rows, grad } = runSigmoid(k, z, labels, n, c, {
                scale,
                suppress,
                backgroundExempt: exempt,
                classWeight: cw,
                focalGamma: gamma,
                focalAlpha: alpha,
                ...(withKeep ? { imageOfRow, keepMask } : {}),
              });
              const what =
                `${name} suppress=${suppress === threshold ? "T" : suppress && "decay"} ` +
                `exempt=${exempt} keep=${withKeep} cw=${!!cw} γ=${gamma} α=${alpha}`;
              assertClose(rows, refSigmoidRows(z, labels, n, c, o), 1e-6, 1e-37, `${what} rows`);
              const g = scaled(refSigmoidGrad(z, labels, n, c, o), scale);
              assertClose(grad, g, 1e-6, 1e-37, `${what} grad`);
              combos++;
            }
          }
        }
      }
    }
  }
  assert.equal(combos, BACKENDS.length * 3 * 2 * 2 * 2 * focal.length);
});

Deno.test("sigmoidLoss: focal with γ = 0 and α off gives the BCE path's numbers", () => {
  for (const [name, k] of BACKENDS) {
    const rand = rng(4);
    const n = 5, c = 4;
    const z = uniform(rand, n * c, -8, 8);
    const labels = randomLabels(rand, n, c);
    const plain = runSigmoid(k, z, labels, n, c);
    // γ = 0 with α = 0.5 runs the focal path; twice its values are plain BCE.
    const half = runSigmoid(k, z, labels, n, c, { focalGamma: 0, focalAlpha: 0.5 });
    assertClose(scaled(half.rows, 2), plain.rows, 2.5e-7, 0, `${name} rows`);
    assertClose(scaled(half.grad, 2), plain.grad, 2.5e-7, 0, `${name} grad`);
  }
});

Deno.test("sigmoidLoss: extreme and equal logits give finite, correct losses and gradients", () => {
  for (const [name, k] of BACKENDS) {
    const n = 4, c = 4;
    const z = new Float32Array([
      ...[1e4, -1e4, 1e4, -1e4],
      ...[0, 0, 0, 0],
      ...[-1e4, 1e4, 30, -30],
      ...[30, -30, 7, 7],
    ]);
    const labels = new Int32Array([0, 2, 1, 0]);
    for (const [gamma, alpha] of [[0, -1], [2, 0.25]]) {
      const { rows, grad } = runSigmoid(k, z, labels, n, c, {
        focalGamma: gamma,
        focalAlpha: alpha,
      });
      for (const v of [...rows, ...grad]) assert.ok(Number.isFinite(v), `${name} finite, got ${v}`);
      const o = { gamma, alpha: alpha < 0 ? undefined : alpha };
      assertClose(rows, refSigmoidRows(z, labels, n, c, o), 1e-6, 1e-30, `${name} rows γ=${gamma}`);
    }
    const { rows, grad } = runSigmoid(k, z, labels, n, c);
    // Row 0: targets right with margin 1e4 except column 2 (z = 1e4, y = 0): loss 1e4, grad 1.
    assert.equal(rows[0], 1e4, name);
    assertClose(grad.subarray(0, 4), [0, 0, 1, 0], 0, 0, `${name} row 0 grad`);
    assertClose(grad, refBceGrad(z, labels, n, c), 1e-6, 1e-30, `${name} grad`);
    // σ(−30) ≈ 9.4e-14 keeps full precision, for a non-target at −30 and a target at +30.
    const tiny = 1 / (1 + Math.exp(30));
    const got = [grad[10], grad[11], grad[12], grad[13]];
    assertClose(got, [1 - tiny, tiny, -tiny, tiny], 1e-6, 0, name);
  }
});

Deno.test("sigmoidLoss: a non-finite logit poisons only its row's loss", () => {
  for (const [name, k] of BACKENDS) {
    const n = 3, c = 3;
    for (const bad of [NaN, Infinity, -Infinity]) {
      // Column 2 is fully suppressed for row 1 (weight 0); column 0 is its target.
      for (const col of [0, 1, 2]) {
        for (const [gamma, alpha] of [[0, -1], [2, 0.25]]) {
          const z = new Float32Array(n * c).fill(0.5);
          z[1 * c + col] = bad;
          const { rows } = runSigmoid(k, z, new Int32Array([0, 0, 3]), n, c, {
            suppress: new Float32Array([0, 0, 1]),
            focalGamma: gamma,
            focalAlpha: alpha,
          });
          const what = `${name}: ${bad} in column ${col}, γ=${gamma}`;
          assert.ok(Number.isFinite(rows[0]) && Number.isFinite(rows[2]), `${what}: other rows`);
          assert.ok(Number.isNaN(rows[1]), `${what}: row 1 is ${rows[1]}`);
        }
      }
    }
    // A background row exempt from suppression, and a kept class.
    const z = new Float32Array(2 * c).fill(-1);
    z[2] = NaN;
    z[c + 1] = -Infinity;
    const { rows } = runSigmoid(k, z, new Int32Array([3, 1]), 2, c, {
      suppress: new Float32Array([1, 1, 1]),
      imageOfRow: new Int32Array([0, 0]),
      keepMask: new Int32Array([0, 1, 1]),
    });
    assert.ok(Number.isNaN(rows[0]) && Number.isNaN(rows[1]), `${name}: ${rows}`);
  }
});

Deno.test("sigmoidLoss: rejects labels outside 0..C and rows outside the keep mask", () => {
  for (const [name, k] of BACKENDS) {
    const z = new Float32Array(4);
    assert.throws(() => runSigmoid(k, z, new Int32Array([0, 3]), 2, 2), {
      name: "RangeError",
      message: "labels[1] must lie in 0..2, got 3",
    }, name);
    assert.throws(() => runSigmoid(k, z, new Int32Array([0, -1]), 2, 2), {
      name: "RangeError",
      message: "labels[1] must lie in 0..2, got -1",
    }, name);
    const keep = { imageOfRow: new Int32Array([0, 1]), keepMask: new Int32Array(2) };
    assert.throws(() => runSigmoid(k, z, new Int32Array([0, 1]), 2, 2, keep), {
      name: "RangeError",
      message: /imageOfRow\[1\] must select an image of keepMask \(1 images\), got 1/,
    }, name);
  }
});

Deno.test({
  name: "sigmoidLoss and softmaxLoss, native: a bad label is reported before anything is written",
  ignore,
  fn() {
    const rows = new Float32Array([7, 7]), grad = new Float32Array(4).fill(7);
    const sig = { n: 2, c: 2, scale: 1, backgroundExempt: true, focalGamma: 0, focalAlpha: -1 };
    const z = new Float32Array(4);
    assert.throws(() => sigmoidLoss(z, new Int32Array([0, 5]), grad, rows, sig, NATIVE!), {
      message: "labels[1] must lie in 0..2, got 5",
    });
    const soft = { n: 2, c: 2, scale: 1, gammaThreshold: 0, seed: 0, counter: 0 };
    assert.throws(() => softmaxLoss(z, new Int32Array([0, 2]), grad, rows, soft, NATIVE!), {
      message: "labels[1] must lie in 0..1, got 2",
    });
    assert.deepEqual([...rows, ...grad], [7, 7, 7, 7, 7, 7]);
  },
});

// ── softmax family ───────────────────────────────────────────────────────────────────────────

Deno.test("softmaxLoss: plain, class-weighted and biased rows and gradients match the loop", () => {
  for (const [name, k] of BACKENDS) {
    const rand = rng(5);
    const n = 10, c = 7, scale = 0.25;
    const z = uniform(rand, n * c, -5, 5);
    const labels = randomLabels(rand, n, c - 1);
    const classWeight = uniform(rand, c, 0.1, 3);
    const bias = uniform(rand, c, -2, 1);
    for (const o of [{}, { classWeight }, { bias }, { classWeight, bias }] as RefSoftmaxOptions[]) {
      const { rows, grad } = runSoftmax(k, z, labels, n, c, {
        scale,
        classWeight: o.classWeight as Float32Array | undefined,
        logitBias: o.bias as Float32Array | undefined,
      });
      const ref = refSoftmax(z, labels, n, c, o);
      const what = `${name} ${Object.keys(o).join("+") || "plain"}`;
      assertClose(rows, ref.rows, 1e-6, 1e-12, `${what} rows`);
      assertClose(grad, scaled(ref.grad, scale), 1e-6, 1e-12, `${what} grad`);
      const fd = finiteDiff((x) => total(refSoftmax(x, labels, n, c, o).rows) * scale, z);
      assertClose(grad, fd, 1e-5, 1e-8, `${what} grad vs FD`);
    }
  }
});

Deno.test("softmaxLoss: every option combination matches the float64 loops", () => {
  const rand = rng(22);
  const n = 24, c = 11;
  const z = logitsWithExtremes(rand, n * c, 15);
  const labels = randomLabels(rand, n, c - 1);
  const tail = new Float32Array(c).map(() => (rand() < 0.6 ? 1 : 0));
  const classWeight = uniform(rand, c, 0.2, 3);
  const bias = uniform(rand, c, -4, 2);
  for (const [name, k] of BACKENDS) {
    for (const suppress of [undefined, tail]) {
      for (const gamma of [0, 0.25, 0.9, 1]) {
        for (const [seed, counter] of [[0, 0], [0xffffffff, 123456789]]) {
          for (const cw of [undefined, classWeight]) {
            for (const b of [undefined, bias]) {
              const o: RefSoftmaxOptions = {
                suppress,
                gamma,
                seed,
                counter,
                classWeight: cw,
                bias: b,
              };
              const scale = 0.5;
              const { rows, grad } = runSoftmax(k, z, labels, n, c, {
                scale,
                suppress,
                gammaThreshold: gammaThreshold(gamma),
                seed,
                counter,
                classWeight: cw,
                logitBias: b,
              });
              const what = `${name} suppress=${!!suppress} γ=${gamma} seed=${seed} cw=${!!cw} ` +
                `bias=${!!b}`;
              const ref = refSoftmax(z, labels, n, c, o);
              assertClose(rows, ref.rows, 1e-6, 1e-37, `${what} rows`);
              assertClose(grad, scaled(ref.grad, scale), 1e-6, 1e-37, `${what} grad`);
            }
          }
        }
      }
    }
  }
});

Deno.test("softmaxLoss: the mask is maskDraw(seed, counter, row, class) < floor(γ·2^24)", () => {
  for (const [name, k] of BACKENDS) {
    const rand = rng(6);
    const n = 40, c = 9;
    const z = uniform(rand, n * c, -3, 3);
    const labels = randomLabels(rand, n, c - 1);
    const suppress = new Float32Array([0, 1, 1, 0, 1, 1, 0, 1, 1]);
    for (const [gamma, seed, counter] of [[0.5, 7, 0], [0.5, 7, 1], [0.9, 0xffffffff, 12345]]) {
      const o = { suppress, gamma, seed, counter };
      const { rows, grad } = runSoftmax(k, z, labels, n, c, {
        suppress,
        gammaThreshold: gammaThreshold(gamma),
        seed,
        counter,
      });
      const mask = refMask(labels, n, c, o);
      let masked = 0;
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < c; j++) {
          const expected = j !== labels[i] && suppress[j] === 1 &&
            maskDraw(seed, counter, i, j) < Math.floor(gamma * 16777216);
          assert.equal(mask[i * c + j] === 1, expected);
          // Unmasked probabilities of logits in [−3, 3] are far from 0, so 0 means masked.
          assert.equal(grad[i * c + j] === 0, expected, `${name} row ${i} class ${j}`);
          if (expected) masked++;
        }
      }
      assert.ok(masked > 0 && masked < n * 6, `some but not all candidates masked (${masked})`);
      const ref = refSoftmax(z, labels, n, c, o, mask);
      assertClose(rows, ref.rows, 1e-6, 1e-12, `${name} rows`);
      assertClose(grad, ref.grad, 1e-6, 1e-12, `${name} grad`);
      const fd = finiteDiff((x) => total(refSoftmax(x, labels, n, c, o, mask).rows), z);
      assertClose(grad, fd, 1e-5, 1e-8, `${name} grad vs FD`);
    }
  }
});

/** Which gradient values are exactly 0 (with logits in a bounded range: the masked classes). */
function zeros(grad: Float32Array): Uint8Array {
  return Uint8Array.from(grad, (g) => (g === 0 ? 1 : 0));
}

Deno.test({
  name: "softmaxLoss: native and TypeScript mask the same classes, rows and classes past 2^16 too",
  ignore,
  fn() {
    const rand = rng(23);
    const shapes: [number, number][] = [[70000, 3], [2, 70000], [500, 41]];
    for (const [n, c] of shapes) {
      const z = uniform(rand, n * c, -2, 2);
      const labels = randomLabels(rand, n, c - 1);
      const suppress = new Float32Array(c).map(() => (rand() < 0.7 ? 1 : 0));
      for (const [gamma, seed, counter] of [[0.5, 1, 2], [0.95, 0xfffffffe, 0xffffffff]]) {
        const p = { suppress, gammaThreshold: gammaThreshold(gamma), seed, counter };
        const native = runSoftmax(NATIVE!, z, labels, n, c, p);
        const ts = runSoftmax(TYPESCRIPT, z, labels, n, c, p);
        const a = zeros(native.grad), b = zeros(ts.grad);
        let masked = 0;
        for (let q = 0; q < n * c; q++) {
          if (a[q] !== b[q]) assert.fail(`${n}x${c} γ=${gamma}: element ${q} masked on one only`);
          masked += a[q];
        }
        // Spot-check the set against maskDraw itself.
        for (let t = 0; t < 2000; t++) {
          const q = Math.floor(rand() * n * c), i = Math.floor(q / c), j = q % c;
          const want = j !== labels[i] && suppress[j] === 1 &&
            maskDraw(seed, counter, i, j) < gammaThreshold(gamma);
          assert.equal(a[q] === 1, want, `${n}x${c} row ${i} class ${j}`);
        }
        assert.ok(masked > 0, `${n}x${c}: something is masked`);
      }
    }
  },
});

Deno.test("softmaxLoss: γ = 1 masks every tail non-target class, γ = 0 none", () => {
  for (const [name, k] of BACKENDS) {
    const rand = rng(7);
    const n = 8, c = 5;
    const z = uniform(rand, n * c, -2, 2);
    const labels = new Int32Array([0, 1, 2, 3, 4, 1, 3, 0]);
    const suppress = new Float32Array([0, 1, 0, 1, 1]);
    const all = runSoftmax(k, z, labels, n, c, { suppress, gammaThreshold: gammaThreshold(1) });
    const none = runSoftmax(k, z, labels, n, c, { suppress, gammaThreshold: gammaThreshold(0) });
    const plain = runSoftmax(k, z, labels, n, c);
    assert.deepEqual(none.rows, plain.rows, name);
    assert.deepEqual(none.grad, plain.grad, name);
    const mask = new Uint8Array(n * c);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < c; j++) mask[i * c + j] = j !== labels[i] && suppress[j] === 1 ? 1 : 0;
    }
    const ref = refSoftmax(z, labels, n, c, {}, mask);
    assertClose(all.rows, ref.rows, 1e-6, 1e-12, `${name} rows`);
    assertClose(all.grad, ref.grad, 1e-6, 1e-12, `${name} grad`);
    for (let q = 0; q < n * c; q++) assert.equal(all.grad[q] === 0, mask[q] === 1, name);
  }
});

Deno.test("softmaxLoss: extreme and equal logits give finite, correct results", () => {
  for (const [name, k] of BACKENDS) {
    const c = 4;
    const z = new Float32Array([1e4, -1e4, 1e4, -1e4, 0, 0, 0, 0, -1e4, 1e4, 3, -3, 7, 7, 7, 7]);
    const labels = new Int32Array([0, 2, 0, 3]);
    const { rows, grad } = runSoftmax(k, z, labels, 4, c);
    for (const v of [...rows, ...grad]) assert.ok(Number.isFinite(v), `${name} finite, got ${v}`);
    const ref = refSoftmax(z, labels, 4, c);
    assertClose(rows, ref.rows, 1e-6, 1e-12, `${name} rows`);
    assertClose(grad, ref.grad, 1e-6, 1e-12, `${name} grad`);
    assert.equal(rows[0], Math.fround(Math.log(2)), name);
    assert.equal(rows[2], 2e4, name);
    assertClose([rows[1], rows[3]], [Math.log(4), Math.log(4)], 1e-7, 0, name);
  }
});

Deno.test("softmaxLoss: a confident row keeps a tiny loss and gradient instead of rounding to 0", () => {
  for (const [name, k] of BACKENDS) {
    const z = new Float32Array([40, 0, 0]);
    const { rows, grad } = runSoftmax(k, z, new Int32Array([0]), 1, 3);
    const e = Math.exp(-40), others = 2 * e; // 1 + others rounds to 1 in float64
    assertClose(rows, [others], 1e-6, 0, `${name} rows`);
    assertClose(grad, [-others, e, e], 1e-6, 0, `${name} grad`);
  }
});

Deno.test("softmaxLoss: the maximum is taken over unmasked classes only", () => {
  for (const [name, k] of BACKENDS) {
    // A masked class with a huge logit must not shift the others' exponentials to 0.
    const z = new Float32Array([0.5, 1e4, -0.5, 0]);
    const labels = new Int32Array([0]);
    const { rows, grad } = runSoftmax(k, z, labels, 1, 4, {
      suppress: new Float32Array([0, 1, 0, 0]),
      gammaThreshold: gammaThreshold(1),
    });
    const ref = refSoftmax(z, labels, 1, 4, {}, new Uint8Array([0, 1, 0, 0]));
    assertClose(rows, ref.rows, 1e-6, 0, `${name} rows`);
    assertClose(grad, ref.grad, 1e-6, 0, `${name} grad`);
  }
});

Deno.test("softmaxLoss: a non-finite logit poisons its row's loss, masked classes included", () => {
  for (const [name, k] of BACKENDS) {
    const n = 3, c = 3;
    for (const bad of [NaN, Infinity, -Infinity]) {
      // Class 2 is masked for every row at γ = 1; class 0 is row 1's target, class 1 neither.
      for (const col of [0, 1, 2]) {
        for (const logitBias of [undefined, new Float32Array([0.5, -1, 2])]) {
          const z = new Float32Array(n * c).fill(0.25);
          z[1 * c + col] = bad;
          const { rows } = runSoftmax(k, z, new Int32Array([0, 0, 1]), n, c, {
            suppress: new Float32Array([0, 0, 1]),
            gammaThreshold: gammaThreshold(1),
            logitBias,
          });
          const what = `${name}: ${bad} in class ${col}, bias ${!!logitBias}`;
          assert.ok(Number.isFinite(rows[0]) && Number.isFinite(rows[2]), `${what}: other rows`);
          assert.ok(Number.isNaN(rows[1]), `${what}: row 1 is ${rows[1]}`);
        }
      }
    }
  }
});

Deno.test("softmaxLoss: rejects labels outside 0..C−1", () => {
  for (const [name, k] of BACKENDS) {
    assert.throws(() => runSoftmax(k, new Float32Array(4), new Int32Array([2, 0]), 2, 2), {
      name: "RangeError",
      message: "labels[0] must lie in 0..1, got 2",
    }, name);
  }
});

// ── smooth-L1 ────────────────────────────────────────────────────────────────────────────────

Deno.test("smoothL1Loss: rows match the loop and the gradient matches finite differences", () => {
  for (const [name, k] of BACKENDS) {
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
      smoothL1Loss(pred, target, weight, grad, rows, { n, d, beta, scale }, k);
      const ref = refSmoothL1Rows(pred, target, weight, n, d, beta);
      assertClose(rows, ref, 1e-6, 1e-12, `${name} rows`);
      const fd = finiteDiff(
        (x) => total(refSmoothL1Rows(x, target, weight, n, d, beta)) * scale,
        pred,
      );
      assertClose(grad, fd, 1e-5, 1e-8, `${name} beta=${beta} grad vs FD`);
    }
  }
});

Deno.test({
  name: "smoothL1Loss: native and TypeScript give the same bits",
  ignore,
  fn() {
    const rand = rng(24);
    const n = 3000, d = 4;
    const pred = uniform(rand, n * d, -5, 5), target = uniform(rand, n * d, -5, 5);
    pred[3] = NaN;
    pred[7] = Infinity;
    target[9] = pred[9];
    const weight = uniform(rand, n, 0, 2);
    weight[5] = 0;
    for (const beta of [0, 1 / 9, 1, 3]) {
      const out = [NATIVE!, TYPESCRIPT].map((k) => {
        const rows = new Float32Array(n), grad = new Float32Array(n * d);
        smoothL1Loss(pred, target, weight, grad, rows, { n, d, beta, scale: 1 / 7 }, k);
        return { rows, grad };
      });
      assertBits(out[0].rows, out[1].rows, `beta=${beta} rows`);
      assertBits(out[0].grad, out[1].grad, `beta=${beta} grad`);
    }
  },
});

// ── native against TypeScript ────────────────────────────────────────────────────────────────

Deno.test({
  name: `native and TypeScript losses agree within ${NATIVE_VS_TS_ULPS} float32 ulps`,
  ignore,
  fn() {
    const rand = rng(25);
    const n = 48, c = 130;
    for (const range of [3, 20, 120]) {
      const z = logitsWithExtremes(rand, n * c, range);
      const det = randomLabels(rand, n, c);
      const cls = randomLabels(rand, n, c - 1);
      const suppress = uniform(rand, c, 0, 1);
      const tail = new Float32Array(c).map(() => (rand() < 0.5 ? 1 : 0));
      const classWeight = uniform(rand, c, 0.1, 4);
      const imageOfRow = new Int32Array(n).map((_, i) => i % 5);
      const keepMask = new Int32Array(5 * c).map(() => (rand() < 0.1 ? 1 : 0));
      const sigmoidCases: Partial<SigmoidLossArrays>[] = [
        {},
        { suppress: tail },
        { suppress, classWeight, imageOfRow, keepMask, backgroundExempt: false },
        { suppress, focalGamma: 2, focalAlpha: 0.25 },
        { suppress: tail, classWeight, focalGamma: 0.7, focalAlpha: -1 },
        { focalGamma: 5, focalAlpha: 0.9 },
      ];
      for (const p of sigmoidCases) {
        const q = { ...p, scale: 1 / n };
        const a = runSigmoid(NATIVE!, z, det, n, c, q), b = runSigmoid(TYPESCRIPT, z, det, n, c, q);
        const what = `sigmoid range ${range} ${Object.keys(p).join("+") || "plain"}`;
        assertUlps(a.rows, b.rows, NATIVE_VS_TS_ULPS, `${what} rows`);
        assertUlps(a.grad, b.grad, NATIVE_VS_TS_ULPS, `${what} grad`);
      }
      const softmaxCases: Partial<SoftmaxLossArrays>[] = [
        {},
        { suppress: tail, gammaThreshold: gammaThreshold(0.9), seed: 5, counter: 6 },
        { classWeight, logitBias: uniform(rand, c, -3, 3) },
        {
          suppress: tail,
          gammaThreshold: gammaThreshold(0.5),
          seed: 9,
          counter: 1,
          classWeight,
          logitBias: uniform(rand, c, -1, 1),
        },
      ];
      for (const p of softmaxCases) {
        const q = { ...p, scale: 1 / n };
        const a = runSoftmax(NATIVE!, z, cls, n, c, q), b = runSoftmax(TYPESCRIPT, z, cls, n, c, q);
        const what = `softmax range ${range} ${Object.keys(p).join("+") || "plain"}`;
        assertUlps(a.rows, b.rows, NATIVE_VS_TS_ULPS, `${what} rows`);
        assertUlps(a.grad, b.grad, NATIVE_VS_TS_ULPS, `${what} grad`);
      }
    }
  },
});

// ── the CPU device ───────────────────────────────────────────────────────────────────────────

/** Host arrays on a device: uploads, runs, downloads. */
class OnDevice {
  constructor(readonly dev: Device) {}
  up(data: Float32Array | Int32Array): DeviceBuffer {
    const b = this.dev.alloc(data instanceof Float32Array ? "f32" : "i32", data.length);
    this.dev.upload(b, data);
    return b;
  }
  read(b: DeviceBuffer): Float32Array {
    const out = new Float32Array(b.length);
    this.dev.download(b, out);
    return out;
  }
  sigmoid(z: Float32Array, labels: Int32Array, p: SigmoidLossArrays): Float32Array[] {
    const grad = this.dev.alloc("f32", p.n * p.c), rows = this.dev.alloc("f32", p.n);
    const opt = (a?: Float32Array | Int32Array) => (a === undefined ? undefined : this.up(a));
    this.dev.sigmoidLoss(this.up(z), this.up(labels), grad, rows, {
      ...p,
      suppress: opt(p.suppress),
      classWeight: opt(p.classWeight),
      imageOfRow: opt(p.imageOfRow),
      keepMask: opt(p.keepMask),
    });
    return [this.read(rows), this.read(grad)];
  }
  softmax(z: Float32Array, labels: Int32Array, p: SoftmaxLossArrays): Float32Array[] {
    const grad = this.dev.alloc("f32", p.n * p.c), rows = this.dev.alloc("f32", p.n);
    const opt = (a?: Float32Array) => (a === undefined ? undefined : this.up(a));
    this.dev.softmaxLoss(this.up(z), this.up(labels), grad, rows, {
      ...p,
      suppress: opt(p.suppress),
      classWeight: opt(p.classWeight),
      logitBias: opt(p.logitBias),
    });
    return [this.read(rows), this.read(grad)];
  }
  smoothL1(pred: Float32Array, target: Float32Array, w: Float32Array, n: number, d: number) {
    const grad = this.dev.alloc("f32", n * d), rows = this.dev.alloc("f32", n);
    const shape = { n, d, beta: 0.5, scale: 0.25 };
    this.dev.smoothL1Loss(this.up(pred), this.up(target), this.up(w), grad, rows, shape);
    return [this.read(rows), this.read(grad)];
  }
}

Deno.test("the CPU device checks the loss records before the kernels run", () => {
  for (const kernels of ["native", "typescript"] as const) {
    if (kernels === "native" && ignore) continue;
    const dev = new CpuDevice({ kernels });
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
  }
});

Deno.test("the CPU device runs the loss kernels its choice names, every optional array converted", () => {
  const rand = rng(9);
  const n = 40, c = 25;
  const z = uniform(rand, n * c, -3, 3);
  const labels = randomLabels(rand, n, c);
  const sig: SigmoidLossArrays = {
    n,
    c,
    scale: 0.5,
    suppress: uniform(rand, c, 0, 1),
    backgroundExempt: false,
    classWeight: uniform(rand, c, 0.5, 1.5),
    focalGamma: 0,
    focalAlpha: -1,
    imageOfRow: new Int32Array(n).map((_, i) => i % 2),
    keepMask: new Int32Array(2 * c).map(() => (rand() < 0.3 ? 1 : 0)),
  };
  const softLabels = randomLabels(rand, n, c - 1);
  const soft: SoftmaxLossArrays = {
    n,
    c,
    scale: 0.5,
    suppress: new Float32Array(c).map(() => (rand() < 0.5 ? 1 : 0)),
    gammaThreshold: gammaThreshold(0.5),
    seed: 3,
    counter: 2,
    classWeight: uniform(rand, c, 0.5, 1.5),
    logitBias: uniform(rand, c, -1, 1),
  };
  const pred = uniform(rand, n * 4, -2, 2), target = uniform(rand, n * 4, -2, 2);
  const weight = uniform(rand, n, 0, 1);
  const results: Float32Array[][] = [];
  for (const [name, k] of BACKENDS) {
    const on = new OnDevice(new CpuDevice({ kernels: name as "native" | "typescript" }));
    const s = on.sigmoid(z, labels, sig), direct = runSigmoid(k, z, labels, n, c, sig);
    assertBits(s[0], direct.rows, `${name} sigmoid rows`);
    assertBits(s[1], direct.grad, `${name} sigmoid grad`);
    const m = on.softmax(z, softLabels, soft),
      directSoft = runSoftmax(k, z, softLabels, n, c, soft);
    assertBits(m[0], directSoft.rows, `${name} softmax rows`);
    assertBits(m[1], directSoft.grad, `${name} softmax grad`);
    const l = on.smoothL1(pred, target, weight, n, 4);
    const rows = new Float32Array(n), grad = new Float32Array(n * 4);
    smoothL1Loss(pred, target, weight, grad, rows, { n, d: 4, beta: 0.5, scale: 0.25 }, k);
    assertBits(l[0], rows, `${name} smooth-L1 rows`);
    assertBits(l[1], grad, `${name} smooth-L1 grad`);
    results.push([...s, ...m]);
  }
  if (results.length === 2) {
    // Two implementations of the same loss: some last bits differ somewhere.
    const differs = results[0].some((a, i) => a.some((v, q) => v !== results[1][i][q]));
    assert.ok(differs, "the native device ran the native kernels");
  }
});

/**
 * Runs `compute` on native devices with 1, 2 and 5 threads, each in turn and then in the reverse
 * order (so every device finds the pool set by another), and checks that every output is bit for
 * bit the same each time.
 */
function sameOnAnyThreadCount(compute: (on: OnDevice) => Float32Array[]): void {
  const devices = [1, 2, 5].map((threads) => new CpuDevice({ kernels: "native", threads }));
  const results = [...devices, ...devices.reverse()].map((d) => compute(new OnDevice(d)));
  for (const other of results.slice(1)) {
    other.forEach((a, i) => assertBits(a, results[0][i], `output ${i}`));
  }
}

Deno.test({
  name: "the native losses give the same bits on 1, 2 and 5 threads",
  ignore,
  fn() {
    const rand = rng(26);
    const n = 301, c = 1230;
    const z = logitsWithExtremes(rand, n * c, 10);
    z[5 * c + 3] = NaN;
    const det = randomLabels(rand, n, c), cls = randomLabels(rand, n, c - 1);
    const base = { n, c, scale: 1 / n, backgroundExempt: true, focalGamma: 0, focalAlpha: -1 };
    const suppress = uniform(rand, c, 0, 1);
    const tail = new Float32Array(c).map(() => (rand() < 0.5 ? 1 : 0));
    const classWeight = uniform(rand, c, 0.5, 2);
    const imageOfRow = new Int32Array(n).map((_, i) => i % 7);
    const keepMask = new Int32Array(7 * c).map(() => (rand() < 0.05 ? 1 : 0));
    const pred = uniform(rand, 40000 * 4, -2, 2), target = uniform(rand, 40000 * 4, -2, 2);
    const weight = uniform(rand, 40000, 0, 1);
    sameOnAnyThreadCount((on) => [
      ...on.sigmoid(z, det, { ...base, suppress: tail }),
      ...on.sigmoid(z, det, { ...base, suppress, classWeight, imageOfRow, keepMask }),
      ...on.sigmoid(z, det, { ...base, suppress, focalGamma: 2, focalAlpha: 0.25 }),
      ...on.softmax(z, cls, { n, c, scale: 1 / n, gammaThreshold: 0, seed: 0, counter: 0 }),
      ...on.softmax(z, cls, {
        n,
        c,
        scale: 1 / n,
        suppress: tail,
        gammaThreshold: gammaThreshold(0.9),
        seed: 4,
        counter: 8,
        classWeight,
        logitBias: uniform(rng(27), c, -1, 1),
      }),
      ...on.smoothL1(pred, target, weight, 40000, 4),
    ]);
  },
});

// ── the native exp and log1p ─────────────────────────────────────────────────────────────────

/** Every `stride`-th float32 bit pattern from `from` up to (not including) `to`. */
function floatsByBits(from: number, to: number, stride: number): Float32Array {
  const bits = new Uint32Array(Math.ceil((to - from) / stride));
  for (let i = 0; i < bits.length; i++) bits[i] = from + i * stride;
  return new Float32Array(bits.buffer);
}

/** `count` floats on an even grid over [lo, hi]. */
function grid(lo: number, hi: number, count: number): Float32Array {
  return Float32Array.from({ length: count }, (_, i) => lo + ((hi - lo) * i) / (count - 1));
}

/** The float32 neighbours of x, `count` ulps either side. */
function around(x: number, count: number): Float32Array {
  const centre = new Float32Array([x]), bits = new Uint32Array(centre.buffer)[0];
  const out = new Uint32Array(2 * count + 1);
  for (let i = -count; i <= count; i++) out[i + count] = bits + i;
  return new Float32Array(out.buffer);
}

/** The largest error of a native float32 function over `x`, and where it is. */
function sweep(
  fn: (x: Float32Array | Float64Array, y: Float32Array, n: bigint) => void,
  reference: (x: number) => number,
  x: Float32Array | Float64Array,
): { worst: number; at: number } {
  const y = new Float32Array(x.length);
  fn(x, y, BigInt(x.length));
  let worst = 0, at = NaN;
  for (let i = 0; i < x.length; i++) {
    const e = ulpError(y[i], reference(x[i]));
    if (e > worst || Number.isNaN(e)) {
      worst = e;
      at = x[i];
    }
  }
  return { worst, at };
}

Deno.test({
  name: `native exp: within ${EXP_ULPS} ulp of float64 over the float range, exact saturation`,
  ignore,
  fn() {
    const s = NATIVE!.native!.symbols;
    const inputs: [string, Float32Array][] = [
      ["every 1021st float", floatsByBits(0, 2 ** 32, 1021)],
      ["grid over [-110, 90]", grid(-110, 90, 2_000_001)],
      ["around ln(FLT_MAX)", around(88.72283935546875, 5000)],
      ["around the subnormal boundary", around(-87.33654475, 5000)],
      ["around exp(x) = 2^-150", around(-103.97208142, 5000)],
      ["around 0", around(0, 5000)],
      ["specials", new Float32Array([0, -0, 3000, -3000, Infinity, -Infinity, NaN, FLT_MAX])],
    ];
    for (const [what, x] of inputs) {
      const r = sweep(s.eql_exp_f32, Math.exp, x);
      assert.ok(r.worst <= EXP_ULPS, `exp_f32 ${what}: ${r.worst} ulps at ${r.at}`);
    }
    const d = new Float64Array(2_000_000);
    const rand = rng(28);
    for (let i = 0; i < d.length; i++) d[i] = -120 + 215 * rand();
    d.set([0, -0, 3000, -3000, Infinity, -Infinity, NaN, 1e300, -1e300, 1e-300, 88.72283905206835]);
    const r = sweep(s.eql_exp_f64, Math.exp, d);
    assert.ok(r.worst <= EXP_ULPS, `exp_f64: ${r.worst} ulps at ${r.at}`);
    // Saturation, exactly.
    const x = new Float32Array([88.7229, 89, 1e4, 3000, -104, -110, -3000, -Infinity, Infinity]);
    const y = new Float32Array(x.length);
    s.eql_exp_f32(x, y, BigInt(x.length));
    assert.deepEqual([...y], [Infinity, Infinity, Infinity, Infinity, 0, 0, 0, 0, Infinity]);
    const nan = new Float32Array(1);
    s.eql_exp_f32(new Float32Array([NaN]), nan, 1n);
    assert.ok(Number.isNaN(nan[0]));
  },
});

Deno.test({
  name: `native log1p: within ${LOG1P_ULPS} ulp of float64 over [-1, FLT_MAX], exact specials`,
  ignore,
  fn() {
    const s = NATIVE!.native!.symbols;
    const minusOne = 0xbf800000;
    const inputs: [string, Float32Array][] = [
      ["every 1021st non-negative float", floatsByBits(0, 0x7f800001, 1021)],
      ["every 211th float in [-1, 0]", floatsByBits(0x80000000, minusOne + 1, 211)],
      ["just above -1", floatsByBits(minusOne - 200000, minusOne + 1, 1)],
      ["grid over [-1, 4]", grid(-1, 4, 1_000_001)],
      ["around sqrt(2) - 1", around(Math.SQRT2 - 1, 5000)],
      ["around sqrt(1/2) - 1", around(Math.SQRT1_2 - 1, 5000)],
      ["around 1", around(1, 5000)],
      ["around 0", around(0, 5000)],
      ["specials", new Float32Array([0, -0, 1e-45, -1e-45, 3000, FLT_MAX, Infinity, NaN, -1])],
    ];
    for (const [what, x] of inputs) {
      const r = sweep(s.eql_log1p_f32, Math.log1p, x);
      assert.ok(r.worst <= LOG1P_ULPS, `log1p ${what}: ${r.worst} ulps at ${r.at}`);
    }
    const x = new Float32Array([-1, -2, -3000, -Infinity, Infinity, -0, 0, 1e-45]);
    const y = new Float32Array(x.length);
    s.eql_log1p_f32(x, y, BigInt(x.length));
    assert.equal(y[0], -Infinity);
    assert.ok(Number.isNaN(y[1]) && Number.isNaN(y[2]) && Number.isNaN(y[3]), `${y}`);
    assert.equal(y[4], Infinity);
    assert.ok(Object.is(y[5], -0) && Object.is(y[6], 0), "the sign of zero is kept");
    assert.equal(y[7], Math.fround(1e-45));
  },
});

Deno.test({
  name:
    `native exp of a difference: within ${EXP_ULPS} ulp of float64 exp(a − b), exact saturation`,
  ignore,
  fn() {
    const s = NATIVE!.native!.symbols;
    const rand = rng(29);
    // Pairs (a, b) whose exact difference a − b covers [-120, 95] on a fine grid and near the
    // saturation points, for anchors a of every size, so that a − b rounds in float (the
    // softmax's z − max) and only the exact difference gives the right result.
    const diffs: [string, Float32Array][] = [
      ["grid over [-120, 95]", grid(-120, 95, 1_000_001)],
      ["around exp = FLT_MAX", around(88.72283935546875, 3000)],
      ["around the subnormal boundary", around(-87.33654475, 3000)],
      ["around exp = 2^-150", around(-103.97208142, 3000)],
      ["around 0", around(0, 3000)],
    ];
    const anchors = [0, 1, -1, 3.7, 100, -100, 3000, -3000, 1e6, -4e7];
    for (const [what, d] of diffs) {
      const a = new Float32Array(d.length), b = new Float32Array(d.length);
      for (let i = 0; i < d.length; i++) {
        const anchor = anchors[i % anchors.length] * (1 + rand());
        a[i] = anchor;
        b[i] = a[i] - d[i];
      }
      const y = new Float32Array(d.length);
      s.eql_exp_diff_f32(a, b, y, BigInt(d.length));
      let worst = 0, at = "";
      for (let i = 0; i < d.length; i++) {
        const e = ulpError(y[i], Math.exp(a[i] - b[i])); // a − b is exact in float64
        if (!(e <= worst)) worst = e, at = `a = ${a[i]}, b = ${b[i]}`;
      }
      assert.ok(worst <= EXP_ULPS, `exp_diff ${what}: ${worst} ulps at ${at}`);
    }
    // Saturation, infinities and NaN, exactly.
    const cases: [number, number, number][] = [
      [0, 3000, 0],
      [0, -3000, Infinity],
      [3000, -3000, Infinity],
      [-3000, 3000, 0],
      [FLT_MAX, -FLT_MAX, Infinity],
      [-FLT_MAX, FLT_MAX, 0],
      [0, 104, 0],
      [0, 110, 0],
      [89, 0, Infinity],
      [Infinity, 0, Infinity],
      [-Infinity, 0, 0],
      [0, Infinity, 0],
      [5, -Infinity, Infinity],
      [Infinity, Infinity, NaN],
      [NaN, 0, NaN],
      [0, NaN, NaN],
      [1, 1, 1],
      [-2.5e30, -2.5e30, 1],
    ];
    const a = new Float32Array(cases.map((c) => c[0])),
      b = new Float32Array(cases.map((c) => c[1]));
    const y = new Float32Array(cases.length);
    s.eql_exp_diff_f32(a, b, y, BigInt(cases.length));
    cases.forEach(([x, z, want], i) => {
      assert.ok(Object.is(y[i], want), `exp(${x} − ${z}) = ${y[i]}, expected ${want}`);
    });
  },
});

Deno.test({
  name: "native log1p on [0, 1] as the sigmoid losses use it: the same bits as the general one",
  ignore,
  fn() {
    const s = NATIVE!.native!.symbols;
    const one = 0x3f800000;
    const x = floatsByBits(0, one + 1, 101);
    const extra = new Float32Array([0, 1e-45, 1, Math.SQRT2 - 1, 2 ** -24, 1 - 2 ** -24, NaN]);
    for (const [what, v] of [["every 101st float in [0, 1]", x], ["specials", extra]] as const) {
      const unit = new Float32Array(v.length), general = new Float32Array(v.length);
      s.eql_log1p_unit_f32(v, unit, BigInt(v.length));
      s.eql_log1p_f32(v, general, BigInt(v.length));
      assertBits(unit, general, `log1p unit vs general, ${what}`);
    }
  },
});
