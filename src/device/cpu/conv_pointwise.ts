/**
 * The 1×1, stride-1, unpadded convolution: for each sample it is one GEMM between the weights
 * `[cOut, cIn]` and the sample's channels-by-pixels matrix, so no lowering is needed.
 *
 * @module
 */

import type { Conv2dShape } from "../device.ts";
import type { Sgemm } from "./gemm.ts";

/**
 * Whether `s` is a 1×1 convolution with stride 1 and no padding.
 *
 * @param s The geometry.
 * @returns Whether the per-sample GEMMs here compute it.
 *
 * @example
 * ```ts
 * import { isPointwise } from "./conv_pointwise.ts";
 * isPointwise({ n: 1, cIn: 2, h: 4, w: 4, cOut: 3, kH: 1, kW: 1, strideH: 1, strideW: 1,
 *   padH: 0, padW: 0, outH: 4, outW: 4 }); // true
 * ```
 */
export function isPointwise(s: Conv2dShape): boolean {
  return s.kH === 1 && s.kW === 1 && s.strideH === 1 && s.strideW === 1 && s.padH === 0 &&
    s.padW === 0;
}

/**
 * Forward: `y[b] = w · x[b]` per sample.
 *
 * @param gemm The matrix product.
 * @param x Input `[n, cIn, h, w]`.
 * @param w Weights `[cOut, cIn]`.
 * @param y Output `[n, cOut, h, w]`, overwritten.
 * @param s The geometry ({@linkcode isPointwise}).
 *
 * @example
 * ```ts
 * import { pointwiseForward } from "./conv_pointwise.ts";
 * import { sgemmTypeScript } from "./gemm.ts";
 * const s = { n: 1, cIn: 1, h: 1, w: 2, cOut: 1, kH: 1, kW: 1, strideH: 1, strideW: 1,
 *   padH: 0, padW: 0, outH: 1, outW: 2 };
 * const y = new Float32Array(2);
 * pointwiseForward(sgemmTypeScript, new Float32Array([1, 2]), new Float32Array([3]), y, s);
 * // y = [3, 6]
 * ```
 */
export function pointwiseForward(
  gemm: Sgemm,
  x: Float32Array,
  w: Float32Array,
  y: Float32Array,
  s: Conv2dShape,
): void {
  const hw = s.h * s.w, xs = s.cIn * hw, ys = s.cOut * hw;
  for (let b = 0; b < s.n; b++) {
    const xb = x.subarray(b * xs, (b + 1) * xs), yb = y.subarray(b * ys, (b + 1) * ys);
    gemm(false, false, s.cOut, hw, s.cIn, 1, w, xb, 0, yb);
  }
}

/**
 * Backward-data: `dx[b] = wᵀ · dy[b]` per sample.
 *
 * @param gemm The matrix product.
 * @param w Weights `[cOut, cIn]`.
 * @param dy Output gradient `[n, cOut, h, w]`.
 * @param dx Input gradient `[n, cIn, h, w]`, overwritten.
 * @param s The geometry ({@linkcode isPointwise}).
 *
 * @example
 * ```ts
 * import { pointwiseBackwardData } from "./conv_pointwise.ts";
 * import { sgemmTypeScript } from "./gemm.ts";
 * const s = { n: 1, cIn: 1, h: 1, w: 2, cOut: 1, kH: 1, kW: 1, strideH: 1, strideW: 1,
 *   padH: 0, padW: 0, outH: 1, outW: 2 };
 * const dx = new Float32Array(2);
 * pointwiseBackwardData(sgemmTypeScript, new Float32Array([3]), new Float32Array([1, 2]), dx, s);
 * // dx = [3, 6]
 * ```
 */
export function pointwiseBackwardData(
  gemm: Sgemm,
  w: Float32Array,
  dy: Float32Array,
  dx: Float32Array,
  s: Conv2dShape,
): void {
  const hw = s.h * s.w, xs = s.cIn * hw, ys = s.cOut * hw;
  for (let b = 0; b < s.n; b++) {
    const dyb = dy.subarray(b * ys, (b + 1) * ys), dxb = dx.subarray(b * xs, (b + 1) * xs);
    gemm(true, false, s.cIn, hw, s.cOut, 1, w, dyb, 0, dxb);
  }
}

/**
 * Backward-filter: `dw = Σ_b dy[b] · x[b]ᵀ`.
 *
 * @param gemm The matrix product.
 * @param x Input `[n, cIn, h, w]`.
 * @param dy Output gradient `[n, cOut, h, w]`.
 * @param dw Weight gradient `[cOut, cIn]`, overwritten.
 * @param s The geometry ({@linkcode isPointwise}).
 *
 * @example
 * ```ts
 * import { pointwiseBackwardFilter } from "./conv_pointwise.ts";
 * import { sgemmTypeScript } from "./gemm.ts";
 * const s = { n: 1, cIn: 1, h: 1, w: 2, cOut: 1, kH: 1, kW: 1, strideH: 1, strideW: 1,
 *   padH: 0, padW: 0, outH: 1, outW: 2 };
 * const dw = new Float32Array(1);
 * pointwiseBackwardFilter(sgemmTypeScript, new Float32Array([1, 2]), new Float32Array([1, 1]),
 *   dw, s); // dw = [3]
 * ```
 */
export function pointwiseBackwardFilter(
  gemm: Sgemm,
  x: Float32Array,
  dy: Float32Array,
  dw: Float32Array,
  s: Conv2dShape,
): void {
  const hw = s.h * s.w, xs = s.cIn * hw, ys = s.cOut * hw;
  for (let b = 0; b < s.n; b++) {
    const dyb = dy.subarray(b * ys, (b + 1) * ys), xb = x.subarray(b * xs, (b + 1) * xs);
    gemm(false, true, s.cOut, s.cIn, hw, 1, dyb, xb, b === 0 ? 0 : 1, dw);
  }
}
