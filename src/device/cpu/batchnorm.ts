/**
 * CPU batch normalisation over NCHW data (`[n, c, hw]`, statistics per channel over `n·hw` values),
 * PyTorch semantics: training normalises with the biased batch variance, saves the mean and
 * `invStd = 1/sqrt(var + eps)` for backward, and moves the running statistics towards the batch
 * ones by `momentum`, using the unbiased variance for `runningVar`; inference uses the running
 * statistics.
 *
 * Each kernel reads every value once to gather per-channel sums (float64 accumulators, shifted by
 * the channel's first value so that a large mean cannot swamp the variance) and once more to write
 * its output as one fused multiply-add per value, `y = a·x + b` (backward:
 * `dx = a·dy + b·x + c`), with the per-channel coefficients folded beforehand in float64.
 * Planes are walked contiguously with two accumulator pairs to hide the float64 add latency.
 * When the native CPU kernels are available (`ffi/cpu_kernels.ts`) the same algorithm runs there,
 * vectorised and multi-threaded; validation stays here, so the errors are the same.
 *
 * @module
 */

import type { BatchNormShape } from "../device.ts";
import { cpuKernels } from "../../../ffi/cpu_kernels.ts";

export type { BatchNormShape } from "../device.ts";

/** The fused tail of a residual block's batch norm: `y = max(bn(x) + residual, 0)`. */
export interface ReluTail {
  /** Added before the ReLU, `[n, c, hw]` (optional). */
  residual?: Float32Array;
}

/** What the backward of a {@linkcode ReluTail} forward needs and gives. */
export interface ReluTailGradient {
  /** The forward's output (after the ReLU), whose sign masks `dy`. */
  y: Float32Array;
  /** Receives the masked `dy`, the residual's gradient (optional). */
  dResidual?: Float32Array;
}

/** Backward sums go plane by plane in memory order below this plane size, channel by channel above. */
const SMALL_PLANE = 8;

let sumWs = new Float64Array(0);

/** Four float64 accumulator rows of `c` values each (grow-only, zeroed). */
function sums(c: number): Float64Array {
  if (sumWs.length < 4 * c) sumWs = new Float64Array(4 * c);
  const out = sumWs.subarray(0, 4 * c);
  out.fill(0);
  return out;
}

function checkShape(op: string, s: BatchNormShape): void {
  for (const k of ["n", "c", "hw"] as const) {
    const v = s[k];
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`${op}: shape.${k} must be an integer >= 1, got ${v}`);
    }
  }
}

function checkLength(op: string, name: string, buf: Float32Array, expected: number, dims: string) {
  if (buf.length !== expected) {
    throw new RangeError(
      `${op}: ${name} must hold ${dims} = ${expected} elements, got ${buf.length}`,
    );
  }
}

function outOfMemory(op: string): Error {
  return new Error(`${op}: the native kernel could not allocate its per-channel scratch`);
}

function checkScalar(op: string, name: string, v: number, min: number, max: number): void {
  if (!Number.isFinite(v) || v < min || v > max) {
    throw new RangeError(`${op}: ${name} must be a finite number in [${min}, ${max}], got ${v}`);
  }
}

/**
 * Per-channel `Σ (x − k)` and `Σ (x − k)²` with `k = x[0, c, 0]` into `acc[c]` and `acc[c + C]`
 * (which start at zero). Walks memory in order, one plane at a time.
 */
function gatherMoments(x: Float32Array, s: BatchNormShape, acc: Float64Array): void {
  const { n, c: C, hw } = s;
  for (let b = 0, p = 0; b < n; b++) {
    for (let c = 0; c < C; c++, p += hw) {
      const k = x[c * hw];
      // Two independent accumulator pairs hide the latency of the float64 adds.
      let s1a = 0, s2a = 0, s1b = 0, s2b = 0;
      const end = p + hw;
      let i = p;
      for (; i + 1 < end; i += 2) {
        const u = x[i] - k, v = x[i + 1] - k;
        s1a += u;
        s2a += u * u;
        s1b += v;
        s2b += v * v;
      }
      if (i < end) {
        const u = x[i] - k;
        s1a += u;
        s2a += u * u;
      }
      acc[c] += s1a + s1b;
      acc[c + C] += s2a + s2b;
    }
  }
}

/** `y = a[c]·x + b[c]` per channel. */
function affine(
  x: Float32Array,
  y: Float32Array,
  a: Float64Array,
  aOff: number,
  bOff: number,
  s: BatchNormShape,
): void {
  const { n, c: C, hw } = s;
  const chw = C * hw;
  for (let b = 0; b < n; b++) {
    for (let c = 0; c < C; c++) {
      const ka = a[aOff + c], kb = a[bOff + c];
      const e = b * chw + (c + 1) * hw;
      let i = e - hw;
      for (; i + 3 < e; i += 4) {
        y[i] = ka * x[i] + kb;
        y[i + 1] = ka * x[i + 1] + kb;
        y[i + 2] = ka * x[i + 2] + kb;
        y[i + 3] = ka * x[i + 3] + kb;
      }
      for (; i < e; i++) y[i] = ka * x[i] + kb;
    }
  }
}

/**
 * Batch-norm training forward. Writes `y`, `saveMean`, `saveInvStd` and updates `runningMean`
 * and `runningVar` in place.
 *
 * @param x Input `[n, c, hw]`.
 * @param y Output `[n, c, hw]` (may be `x`).
 * @param gamma Scale `[c]`.
 * @param beta Shift `[c]`.
 * @param runningMean Running mean `[c]`, updated.
 * @param runningVar Running (unbiased) variance `[c]`, updated.
 * @param saveMean Batch mean `[c]`, written.
 * @param saveInvStd `1/sqrt(batch var + eps)` `[c]`, written.
 * @param shape Geometry; `n·hw` must be at least 2.
 * @param momentum Weight of the batch statistics in the running update, in [0, 1].
 * @param eps Added to the variance, >= 0.
 * @param relu When given, the output becomes `max(bn(x) + relu.residual, 0)`, bit for bit what
 *   `add` and `reluForward` give afterwards, in the same pass with the native kernels.
 * @throws {RangeError} When a buffer's length does not match the shape, `n·hw < 2`, or a scalar
 *   is out of range.
 *
 * @example
 * ```ts
 * import { batchNormForwardTraining } from "./batchnorm.ts";
 * const x = new Float32Array([1, 3]), y = new Float32Array(2);
 * const rm = new Float32Array([0]), rv = new Float32Array([1]);
 * const mean = new Float32Array(1), invStd = new Float32Array(1);
 * batchNormForwardTraining(x, y, new Float32Array([1]), new Float32Array([0]), rm, rv, mean,
 *   invStd, { n: 2, c: 1, hw: 1 }, 0.1, 0);
 * // y = [-1, 1], mean = [2], invStd = [1], rm = [0.2], rv = [0.9 + 0.1·2] = [1.1]
 * batchNormForwardTraining(x, y, new Float32Array([1]), new Float32Array([0]), rm, rv, mean,
 *   invStd, { n: 2, c: 1, hw: 1 }, 0.1, 0, { residual: new Float32Array([0.5, 0.5]) });
 * // y = max([-1, 1] + 0.5, 0) = [0, 1.5]
 * ```
 */
export function batchNormForwardTraining(
  x: Float32Array,
  y: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  runningMean: Float32Array,
  runningVar: Float32Array,
  saveMean: Float32Array,
  saveInvStd: Float32Array,
  shape: BatchNormShape,
  momentum: number,
  eps: number,
  relu?: ReluTail,
): void {
  const op = "batchNormForwardTraining";
  checkShape(op, shape);
  const { n, c: C, hw } = shape;
  const len = n * C * hw, m = n * hw;
  checkLength(op, "x", x, len, "n·c·hw");
  checkLength(op, "y", y, len, "n·c·hw");
  for (
    const [name, buf] of [
      ["gamma", gamma],
      ["beta", beta],
      ["runningMean", runningMean],
      ["runningVar", runningVar],
      ["saveMean", saveMean],
      ["saveInvStd", saveInvStd],
    ] as const
  ) checkLength(op, name, buf, C, "c");
  if (m < 2) {
    throw new RangeError(`${op}: training needs at least 2 values per channel, got n·hw = ${m}`);
  }
  checkScalar(op, "momentum", momentum, 0, 1);
  checkScalar(op, "eps", eps, 0, Infinity);
  const residual = relu?.residual;
  if (residual) checkLength(op, "relu.residual", residual, len, "n·c·hw");
  const native = cpuKernels();
  if (native !== null) {
    const rc = native.symbols.eql_bn_forward_training(
      x,
      y,
      residual ?? null,
      relu ? 1 : 0,
      gamma,
      beta,
      runningMean,
      runningVar,
      saveMean,
      saveInvStd,
      n,
      C,
      hw,
      momentum,
      eps,
    );
    if (rc !== 0) throw outOfMemory(op);
    return;
  }
  const acc = sums(C);
  gatherMoments(x, shape, acc);
  for (let c = 0; c < C; c++) {
    const k = x[c * hw];
    const d = acc[c] / m;
    const mean = k + d;
    const variance = Math.max(0, acc[c + C] / m - d * d);
    const invStd = 1 / Math.sqrt(variance + eps);
    saveMean[c] = mean;
    saveInvStd[c] = invStd;
    runningMean[c] = (1 - momentum) * runningMean[c] + momentum * mean;
    runningVar[c] = (1 - momentum) * runningVar[c] + momentum * variance * m / (m - 1);
    const a = gamma[c] * invStd;
    acc[2 * C + c] = a;
    acc[3 * C + c] = beta[c] - mean * a;
  }
  affine(x, y, acc, 2 * C, 3 * C, shape);
  if (!relu) return;
  if (residual) { for (let i = 0; i < len; i++) y[i] += residual[i]; }
  const yi = new Int32Array(y.buffer, y.byteOffset, len);
  for (let i = 0; i < len; i++) {
    const v = yi[i];
    yi[i] = v & ~(v >> 31); // the ReLU on the bit pattern, as reluForward
  }
}

/**
 * Batch-norm inference forward: `y = gamma·(x − runningMean)/sqrt(runningVar + eps) + beta`.
 *
 * @param x Input `[n, c, hw]`.
 * @param y Output `[n, c, hw]` (may be `x`).
 * @param gamma Scale `[c]`.
 * @param beta Shift `[c]`.
 * @param runningMean Running mean `[c]`.
 * @param runningVar Running variance `[c]`.
 * @param shape Geometry.
 * @param eps Added to the variance, >= 0.
 * @throws {RangeError} When a buffer's length does not match the shape or `eps` is out of range.
 *
 * @example
 * ```ts
 * import { batchNormForwardInference } from "./batchnorm.ts";
 * const y = new Float32Array(2);
 * batchNormForwardInference(new Float32Array([1, 3]), y, new Float32Array([2]),
 *   new Float32Array([1]), new Float32Array([1]), new Float32Array([4]), { n: 2, c: 1, hw: 1 }, 0);
 * // y = [1, 3]
 * ```
 */
export function batchNormForwardInference(
  x: Float32Array,
  y: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  runningMean: Float32Array,
  runningVar: Float32Array,
  shape: BatchNormShape,
  eps: number,
): void {
  const op = "batchNormForwardInference";
  checkShape(op, shape);
  const { n, c: C, hw } = shape;
  const len = n * C * hw;
  checkLength(op, "x", x, len, "n·c·hw");
  checkLength(op, "y", y, len, "n·c·hw");
  for (
    const [name, buf] of [
      ["gamma", gamma],
      ["beta", beta],
      ["runningMean", runningMean],
      ["runningVar", runningVar],
    ] as const
  ) checkLength(op, name, buf, C, "c");
  checkScalar(op, "eps", eps, 0, Infinity);

  const native = cpuKernels();
  if (native !== null) {
    const rc = native.symbols.eql_bn_forward_inference(
      x,
      y,
      gamma,
      beta,
      runningMean,
      runningVar,
      n,
      C,
      hw,
      eps,
    );
    if (rc !== 0) throw outOfMemory(op);
    return;
  }
  const acc = sums(C);
  for (let c = 0; c < C; c++) {
    const a = gamma[c] / Math.sqrt(runningVar[c] + eps);
    acc[c] = a;
    acc[C + c] = beta[c] - runningMean[c] * a;
  }
  affine(x, y, acc, 0, C, shape);
}

/**
 * Batch-norm backward of the training forward. With `x̂ = (x − mean)·invStd` and `m = n·hw`:
 * `dBeta = Σ dy`, `dGamma = Σ dy·x̂`, `dx = gamma·invStd·(dy − dBeta/m − x̂·dGamma/m)`.
 * Overwrites `dx`, `dGamma` and `dBeta`.
 *
 * @param x Forward input `[n, c, hw]`.
 * @param dy Output gradient `[n, c, hw]`.
 * @param dx Input gradient `[n, c, hw]` (may be `dy`).
 * @param gamma Scale `[c]`.
 * @param dGamma Scale gradient `[c]`, written.
 * @param dBeta Shift gradient `[c]`, written.
 * @param saveMean Batch mean from the forward `[c]`.
 * @param saveInvStd Batch `1/sqrt(var + eps)` from the forward `[c]`.
 * @param shape Geometry.
 * @param relu For a forward with a {@linkcode ReluTail}: its output `y` masks `dy` (`dy` counts
 *   only where `y > 0`), and `dResidual`, when given, receives the masked `dy`; bit for bit
 *   `reluBackward` followed by this backward.
 * @throws {RangeError} When a buffer's length does not match the shape.
 *
 * @example
 * ```ts
 * import { batchNormBackward } from "./batchnorm.ts";
 * const dx = new Float32Array(2), dGamma = new Float32Array(1), dBeta = new Float32Array(1);
 * batchNormBackward(new Float32Array([1, 3]), new Float32Array([1, -1]), dx, new Float32Array([1]),
 *   dGamma, dBeta, new Float32Array([2]), new Float32Array([1]), { n: 2, c: 1, hw: 1 });
 * // dBeta = [0], dGamma = [-2], dx = [0, 0]
 * ```
 */
export function batchNormBackward(
  x: Float32Array,
  dy: Float32Array,
  dx: Float32Array,
  gamma: Float32Array,
  dGamma: Float32Array,
  dBeta: Float32Array,
  saveMean: Float32Array,
  saveInvStd: Float32Array,
  shape: BatchNormShape,
  relu?: ReluTailGradient,
): void {
  const op = "batchNormBackward";
  checkShape(op, shape);
  const { n, c: C, hw } = shape, m = n * hw, chw = C * hw, len = n * chw;
  checkLength(op, "x", x, len, "n·c·hw");
  checkLength(op, "dy", dy, len, "n·c·hw");
  checkLength(op, "dx", dx, len, "n·c·hw");
  for (
    const [name, buf] of [
      ["gamma", gamma],
      ["dGamma", dGamma],
      ["dBeta", dBeta],
      ["saveMean", saveMean],
      ["saveInvStd", saveInvStd],
    ] as const
  ) checkLength(op, name, buf, C, "c");
  if (relu) checkLength(op, "relu.y", relu.y, len, "n·c·hw");
  if (relu?.dResidual) checkLength(op, "relu.dResidual", relu.dResidual, len, "n·c·hw");
  const native = cpuKernels();
  if (native !== null) {
    const rc = native.symbols.eql_bn_backward(
      x,
      relu?.y ?? null,
      dy,
      dx,
      relu?.dResidual ?? null,
      gamma,
      dGamma,
      dBeta,
      saveMean,
      saveInvStd,
      n,
      C,
      hw,
    );
    if (rc !== 0) throw outOfMemory(op);
    return;
  }
  if (relu) {
    // The masked gradient goes where it is wanted (or into dx, which is written last anyway).
    const g = relu.dResidual ?? dx;
    const yi = new Int32Array(relu.y.buffer, relu.y.byteOffset, len);
    const dyi = new Int32Array(dy.buffer, dy.byteOffset, len);
    const gi = new Int32Array(g.buffer, g.byteOffset, len);
    for (let i = 0; i < len; i++) gi[i] = dyi[i] & ((-yi[i]) >> 31);
    dy = g;
  }
  // Σ dy and Σ dy·(x − mean) per channel.
  const acc = sums(C);
  if (hw < SMALL_PLANE) {
    for (let b = 0; b < n; b++) {
      for (let c = 0; c < C; c++) {
        const mean = saveMean[c];
        let s1 = 0, s2 = 0;
        for (let i = b * chw + c * hw, e = i + hw; i < e; i++) {
          const g = dy[i];
          s1 += g;
          s2 += g * (x[i] - mean);
        }
        acc[c] += s1;
        acc[c + C] += s2;
      }
    }
  } else {
    for (let c = 0; c < C; c++) {
      const mean = saveMean[c];
      let s1a = 0, s2a = 0, s1b = 0, s2b = 0;
      for (let b = 0; b < n; b++) {
        const start = b * chw + c * hw, end = start + hw;
        let i = start;
        for (; i + 1 < end; i += 2) {
          const g = dy[i], h = dy[i + 1];
          s1a += g;
          s2a += g * (x[i] - mean);
          s1b += h;
          s2b += h * (x[i + 1] - mean);
        }
        if (i < end) {
          const g = dy[i];
          s1a += g;
          s2a += g * (x[i] - mean);
        }
      }
      acc[c] = s1a + s1b;
      acc[c + C] = s2a + s2b;
    }
  }

  // dx = a·dy + b·x + k per channel, all three folded in float64.
  const coef = acc; // rows 2 and 3 hold a and b; k goes back into row 0 once it has been read
  for (let c = 0; c < C; c++) {
    const invStd = saveInvStd[c], mean = saveMean[c];
    const sumDy = acc[c], sumDyXc = acc[c + C];
    dBeta[c] = sumDy;
    dGamma[c] = sumDyXc * invStd;
    const a = gamma[c] * invStd;
    const b = -a * invStd * invStd * sumDyXc / m;
    coef[2 * C + c] = a;
    coef[3 * C + c] = b;
    coef[c] = -a * sumDy / m - b * mean;
  }
  for (let b = 0; b < n; b++) {
    for (let c = 0; c < C; c++) {
      const ka = coef[2 * C + c], kb = coef[3 * C + c], kc = coef[c];
      const e = b * chw + (c + 1) * hw;
      let i = e - hw;
      for (; i + 1 < e; i += 2) {
        dx[i] = ka * dy[i] + kb * x[i] + kc;
        dx[i + 1] = ka * dy[i + 1] + kb * x[i + 1] + kc;
      }
      if (i < e) dx[i] = ka * dy[i] + kb * x[i] + kc;
    }
  }
}
