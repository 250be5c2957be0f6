/**
 * CPU batch normalisation over NCHW data (`[n, c, hw]`, statistics per channel over `n·hw` values),
 * PyTorch semantics: training normalises with the biased batch variance, saves the mean and
 * `invStd = 1/sqrt(var + eps)` for backward, and moves the running statistics towards the batch
 * ones by `momentum`, using the unbiased variance for `runningVar`; inference uses the running
 * statistics. Both forwards take the tail of a residual block: `y = bn(x) (+ residual) (then
 * max(·, 0) when shape.relu)`, bit for bit what `add` and `reluForward` give afterwards.
 *
 * Each kernel reads every value once to gather per-channel sums (float64 accumulators, shifted by
 * the channel's first value so that a large mean cannot swamp the variance) and once more to write
 * its output as one fused multiply-add per value, `y = a·x + b` (backward:
 * `dx = a·dy + b·x + c`), with the per-channel coefficients folded beforehand in float64.
 * Planes are walked contiguously with two accumulator pairs to hide the float64 add latency.
 * When the backend has the native CPU kernels (`ffi/cpu_kernels.ts`) the same algorithm runs
 * there, vectorised and multi-threaded.
 *
 * Nothing here checks its arguments: the device validated the shape record and every buffer
 * (`src/device/_validate.ts`) before calling, and the native kernels trust those lengths.
 *
 * @module
 */

import type { BatchNormShape } from "../device.ts";
import { type CpuBackend, defaultCpuBackend } from "./backend.ts";
import { Workspace } from "./workspace.ts";

/** Backward sums go plane by plane in memory order below this plane size, channel by channel above. */
const SMALL_PLANE = 8;

const scratch = new Workspace(Float64Array);

/** Four float64 accumulator rows of `c` values each (zeroed). */
function sums(c: number): Float64Array {
  return scratch.take(4 * c).fill(0);
}

function outOfMemory(op: string): Error {
  return new Error(`${op}: the native kernel could not allocate its per-channel scratch`);
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

/**
 * `y = a[c]·x + b[c]` per channel, then the tail: `+ residual` (rounded to float32 first, as a
 * separate add would see it) and the ReLU on the bit pattern, as `reluForward`. Each plane is
 * finished before the next, reading `x` and `residual` before writing `y`, so y may be either.
 */
function apply(
  x: Float32Array,
  y: Float32Array,
  a: Float64Array,
  aOff: number,
  bOff: number,
  s: BatchNormShape,
  residual: Float32Array | undefined,
): void {
  const { n, c: C, hw, relu } = s;
  const chw = C * hw;
  const yi = relu ? new Int32Array(y.buffer, y.byteOffset, n * chw) : undefined;
  for (let b = 0; b < n; b++) {
    for (let c = 0; c < C; c++) {
      const ka = a[aOff + c], kb = a[bOff + c];
      const start = b * chw + c * hw, e = start + hw;
      let i = start;
      if (residual !== undefined) {
        for (; i < e; i++) y[i] = Math.fround(ka * x[i] + kb) + residual[i];
      } else {
        for (; i + 3 < e; i += 4) {
          y[i] = ka * x[i] + kb;
          y[i + 1] = ka * x[i + 1] + kb;
          y[i + 2] = ka * x[i + 2] + kb;
          y[i + 3] = ka * x[i + 3] + kb;
        }
        for (; i < e; i++) y[i] = ka * x[i] + kb;
      }
      if (yi !== undefined) {
        for (i = start; i < e; i++) {
          const v = yi[i];
          yi[i] = v & ~(v >> 31);
        }
      }
    }
  }
}

/**
 * Batch-norm training forward with the residual block's tail. Writes `y`, `saveMean`,
 * `saveInvStd` and updates `runningMean` and `runningVar` in place.
 *
 * @param x Input `[n, c, hw]`.
 * @param y Output `[n, c, hw]` (may be `x` or `residual`).
 * @param gamma Scale `[c]`.
 * @param beta Shift `[c]`.
 * @param runningMean Running mean `[c]`, updated.
 * @param runningVar Running (unbiased) variance `[c]`, updated.
 * @param saveMean Batch mean `[c]`, written.
 * @param saveInvStd `1/sqrt(batch var + eps)` `[c]`, written.
 * @param shape Geometry, `eps`, `momentum` and `relu`; `n·hw` is at least 2.
 * @param residual Added after the normalisation (before the ReLU), `[n, c, hw]`.
 * @param backend The kernels to run (default: the environment's).
 * @throws {Error} When the native kernel cannot allocate its scratch memory.
 *
 * @example
 * ```ts
 * import { batchNormForwardTraining } from "./batchnorm.ts";
 * const x = new Float32Array([1, 3]), y = new Float32Array(2);
 * const rm = new Float32Array([0]), rv = new Float32Array([1]);
 * const mean = new Float32Array(1), invStd = new Float32Array(1);
 * const shape = { n: 2, c: 1, hw: 1, eps: 0, momentum: 0.1, relu: false };
 * batchNormForwardTraining(x, y, new Float32Array([1]), new Float32Array([0]), rm, rv, mean,
 *   invStd, shape);
 * // y = [-1, 1], mean = [2], invStd = [1], rm = [0.2], rv = [0.9 + 0.1·2] = [1.1]
 * batchNormForwardTraining(x, y, new Float32Array([1]), new Float32Array([0]), rm, rv, mean,
 *   invStd, { ...shape, relu: true }, new Float32Array([0.5, 0.5]));
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
  residual?: Float32Array,
  backend: CpuBackend = defaultCpuBackend(),
): void {
  const { n, c: C, hw, eps, momentum, relu } = shape;
  const len = n * C * hw, m = n * hw;
  const native = backend.native;
  // The native kernel adds the residual only with the ReLU; without it the add runs after, which
  // needs the residual intact, so a residual that is also y takes the TypeScript path.
  if (native !== null && (relu || residual !== y)) {
    const rc = native.symbols.eql_bn_forward_training(
      x,
      y,
      relu ? residual ?? null : null,
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
    if (rc !== 0) throw outOfMemory("batchNormForwardTraining");
    if (!relu && residual !== undefined) native.symbols.eql_add(y, residual, y, BigInt(len));
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
  apply(x, y, acc, 2 * C, 3 * C, shape, residual);
}

/**
 * Batch-norm inference forward, `y = gamma·(x − runningMean)/sqrt(runningVar + eps) + beta`,
 * with the same tail as the training forward.
 *
 * @param x Input `[n, c, hw]`.
 * @param y Output `[n, c, hw]` (may be `x` or `residual`).
 * @param gamma Scale `[c]`.
 * @param beta Shift `[c]`.
 * @param runningMean Running mean `[c]`.
 * @param runningVar Running variance `[c]`.
 * @param shape Geometry, `eps` and `relu` (`momentum` is not used).
 * @param residual Added after the normalisation (before the ReLU), `[n, c, hw]`.
 * @param backend The kernels to run (default: the environment's).
 * @throws {Error} When the native kernel cannot allocate its scratch memory.
 *
 * @example
 * ```ts
 * import { batchNormForwardInference } from "./batchnorm.ts";
 * const y = new Float32Array(2);
 * batchNormForwardInference(new Float32Array([1, 3]), y, new Float32Array([2]),
 *   new Float32Array([1]), new Float32Array([1]), new Float32Array([4]),
 *   { n: 2, c: 1, hw: 1, eps: 0, momentum: 0.1, relu: false });
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
  residual?: Float32Array,
  backend: CpuBackend = defaultCpuBackend(),
): void {
  const { n, c: C, hw, eps, relu } = shape;
  const native = backend.native;
  // The native kernel has no tail: add and ReLU follow it, reading y (so the residual must not
  // be y, which takes the TypeScript path).
  if (native !== null && residual !== y) {
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
    if (rc !== 0) throw outOfMemory("batchNormForwardInference");
    const len = BigInt(n * C * hw);
    if (residual !== undefined) native.symbols.eql_add(y, residual, y, len);
    if (relu) native.symbols.eql_relu_forward(y, y, len);
    return;
  }
  const acc = sums(C);
  for (let c = 0; c < C; c++) {
    const a = gamma[c] / Math.sqrt(runningVar[c] + eps);
    acc[c] = a;
    acc[C + c] = beta[c] - runningMean[c] * a;
  }
  apply(x, y, acc, 0, C, shape, residual);
}

/**
 * Batch-norm backward of the training forward. With the ReLU tail (`shape.relu`) the gradient
 * first becomes `g = dy · (y > 0)` from the forward's output `y` (else `g = dy`), and
 * `dResidual`, when given, receives `g`. Then, with `x̂ = (x − mean)·invStd` and `m = n·hw`:
 * `dBeta = Σ g`, `dGamma = Σ g·x̂`, `dx = gamma·invStd·(g − dBeta/m − x̂·dGamma/m)`.
 * Overwrites `dx`, `dGamma`, `dBeta` (and `dResidual`); bit for bit `reluBackward` followed by
 * the plain backward.
 *
 * @param x Forward input `[n, c, hw]`.
 * @param y Forward output `[n, c, hw]` (read only with `shape.relu`).
 * @param dy Output gradient `[n, c, hw]`.
 * @param dx Input gradient `[n, c, hw]` (may be `dy`).
 * @param gamma Scale `[c]`.
 * @param dGamma Scale gradient `[c]`, written.
 * @param dBeta Shift gradient `[c]`, written.
 * @param saveMean Batch mean from the forward `[c]`.
 * @param saveInvStd Batch `1/sqrt(var + eps)` from the forward `[c]`.
 * @param shape Geometry and `relu`.
 * @param dResidual Receives the residual's gradient `g`, `[n, c, hw]`.
 * @param backend The kernels to run (default: the environment's).
 * @throws {Error} When the native kernel cannot allocate its scratch memory.
 *
 * @example
 * ```ts
 * import { batchNormBackward } from "./batchnorm.ts";
 * const dx = new Float32Array(2), dGamma = new Float32Array(1), dBeta = new Float32Array(1);
 * const x = new Float32Array([1, 3]);
 * batchNormBackward(x, x, new Float32Array([1, -1]), dx, new Float32Array([1]), dGamma, dBeta,
 *   new Float32Array([2]), new Float32Array([1]),
 *   { n: 2, c: 1, hw: 1, eps: 0, momentum: 0.1, relu: false });
 * // dBeta = [0], dGamma = [-2], dx = [0, 0]
 * ```
 */
export function batchNormBackward(
  x: Float32Array,
  y: Float32Array,
  dy: Float32Array,
  dx: Float32Array,
  gamma: Float32Array,
  dGamma: Float32Array,
  dBeta: Float32Array,
  saveMean: Float32Array,
  saveInvStd: Float32Array,
  shape: BatchNormShape,
  dResidual?: Float32Array,
  backend: CpuBackend = defaultCpuBackend(),
): void {
  const { n, c: C, hw, relu } = shape, m = n * hw, chw = C * hw, len = n * chw;
  // Without the ReLU the residual's gradient is dy itself.
  if (!relu && dResidual !== undefined) dResidual.set(dy.subarray(0, len));
  const native = backend.native;
  if (native !== null) {
    const rc = native.symbols.eql_bn_backward(
      x,
      relu ? y : null,
      dy,
      dx,
      relu ? dResidual ?? null : null,
      gamma,
      dGamma,
      dBeta,
      saveMean,
      saveInvStd,
      n,
      C,
      hw,
    );
    if (rc !== 0) throw outOfMemory("batchNormBackward");
    return;
  }
  if (relu) {
    // The masked gradient goes where it is wanted (or into dx, which is written last anyway).
    const g = dResidual ?? dx;
    const yi = new Int32Array(y.buffer, y.byteOffset, len);
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
