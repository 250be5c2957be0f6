/**
 * CPU 2-D convolution (cross-correlation, NCHW input, KCRS weights, no bias): the choice of
 * algorithm for each pass. In order of preference:
 *
 * - the native **direct 3×3** kernel (`conv_direct.ts`) when the backend has the CPU kernels and
 *   the geometry suits it (every 3×3 convolution of the CIFAR ResNets);
 * - a plain per-sample GEMM for a **1×1** stride-1 unpadded convolution (`conv_pointwise.ts`);
 * - the **shifted-plane** lowering for stride 1 with "same"-like padding (`conv_shifted.ts`);
 * - **im2col** for everything else (`conv_im2col.ts`).
 *
 * Nothing here checks its arguments: the device validated the geometry and the three buffers
 * (`src/device/_validate.ts`: sizes, the output-size formula, lengths, an output distinct from
 * the inputs) before calling.
 *
 * @module
 */

import type { Conv2dShape } from "../device.ts";
import { type CpuBackend, defaultCpuBackend } from "./backend.ts";
import {
  directApplies,
  directBackwardData,
  directBackwardFilter,
  directForward,
} from "./conv_direct.ts";
import { im2colBackwardData, im2colBackwardFilter, im2colForward } from "./conv_im2col.ts";
import {
  isPointwise,
  pointwiseBackwardData,
  pointwiseBackwardFilter,
  pointwiseForward,
} from "./conv_pointwise.ts";
import {
  planesApply,
  planesApplyToBackwardData,
  planesBackwardData,
  planesBackwardFilter,
  planesForward,
} from "./conv_shifted.ts";

/**
 * Convolution forward: `y[n,k,i,j] = Σ_{c,r,s} x[n, c, i·sH + r − pH, j·sW + s − pW] · w[k,c,r,s]`
 * with zero padding. Overwrites `y`.
 *
 * @param x Input `[n, cIn, h, w]`.
 * @param w Weights `[cOut, cIn, kH, kW]`.
 * @param y Output `[n, cOut, outH, outW]`.
 * @param s Geometry.
 * @param backend The kernels to run (default: the environment's).
 * @throws {Error} When the native kernel cannot allocate its scratch memory.
 *
 * @example
 * ```ts
 * import { conv2dForward } from "./conv.ts";
 * const s = { n: 1, cIn: 1, h: 2, w: 2, cOut: 1, kH: 1, kW: 1, strideH: 1, strideW: 1,
 *   padH: 0, padW: 0, outH: 2, outW: 2 };
 * const y = new Float32Array(4);
 * conv2dForward(new Float32Array([1, 2, 3, 4]), new Float32Array([2]), y, s); // y = [2, 4, 6, 8]
 * ```
 */
export function conv2dForward(
  x: Float32Array,
  w: Float32Array,
  y: Float32Array,
  s: Conv2dShape,
  backend: CpuBackend = defaultCpuBackend(),
): void {
  const native = backend.native;
  if (native !== null && directApplies(s, "forward")) directForward(native, x, w, y, s);
  else if (isPointwise(s)) pointwiseForward(backend.gemm, x, w, y, s);
  else if (planesApply(s)) planesForward(backend, x, w, y, s);
  else im2colForward(backend.gemm, x, w, y, s);
}

/**
 * Convolution backward with respect to the input: `dx = ∂L/∂x` given `dy = ∂L/∂y`. Overwrites
 * `dx`.
 *
 * @param w Weights `[cOut, cIn, kH, kW]`.
 * @param dy Output gradient `[n, cOut, outH, outW]`.
 * @param dx Input gradient `[n, cIn, h, w]` (written).
 * @param s Geometry.
 * @param backend The kernels to run (default: the environment's).
 * @throws {Error} When the native kernel cannot allocate its scratch memory.
 *
 * @example
 * ```ts
 * import { conv2dBackwardData } from "./conv.ts";
 * const s = { n: 1, cIn: 1, h: 2, w: 2, cOut: 1, kH: 1, kW: 1, strideH: 1, strideW: 1,
 *   padH: 0, padW: 0, outH: 2, outW: 2 };
 * const dx = new Float32Array(4);
 * conv2dBackwardData(new Float32Array([2]), new Float32Array([1, 1, 1, 1]), dx, s); // all 2
 * ```
 */
export function conv2dBackwardData(
  w: Float32Array,
  dy: Float32Array,
  dx: Float32Array,
  s: Conv2dShape,
  backend: CpuBackend = defaultCpuBackend(),
): void {
  const native = backend.native;
  if (native !== null && directApplies(s, "data")) directBackwardData(native, w, dy, dx, s);
  else if (isPointwise(s)) pointwiseBackwardData(backend.gemm, w, dy, dx, s);
  else if (planesApplyToBackwardData(s)) planesBackwardData(backend, w, dy, dx, s);
  else im2colBackwardData(backend.gemm, w, dy, dx, s);
}

/**
 * Convolution backward with respect to the weights: `dw = ∂L/∂w` given the forward input and
 * `dy`. Overwrites `dw`.
 *
 * @param x Input `[n, cIn, h, w]`.
 * @param dy Output gradient `[n, cOut, outH, outW]`.
 * @param dw Weight gradient `[cOut, cIn, kH, kW]` (written).
 * @param s Geometry.
 * @param backend The kernels to run (default: the environment's).
 * @throws {Error} When the native kernel cannot allocate its scratch memory.
 *
 * @example
 * ```ts
 * import { conv2dBackwardFilter } from "./conv.ts";
 * const s = { n: 1, cIn: 1, h: 2, w: 2, cOut: 1, kH: 1, kW: 1, strideH: 1, strideW: 1,
 *   padH: 0, padW: 0, outH: 2, outW: 2 };
 * const dw = new Float32Array(1);
 * conv2dBackwardFilter(new Float32Array([1, 2, 3, 4]), new Float32Array([1, 1, 1, 1]), dw, s);
 * // dw = [10]
 * ```
 */
export function conv2dBackwardFilter(
  x: Float32Array,
  dy: Float32Array,
  dw: Float32Array,
  s: Conv2dShape,
  backend: CpuBackend = defaultCpuBackend(),
): void {
  const native = backend.native;
  if (native !== null && directApplies(s, "filter")) directBackwardFilter(native, x, dy, dw, s);
  else if (isPointwise(s)) pointwiseBackwardFilter(backend.gemm, x, dy, dw, s);
  else if (planesApply(s)) planesBackwardFilter(backend, x, dy, dw, s);
  else im2colBackwardFilter(backend.gemm, x, dy, dw, s);
}
