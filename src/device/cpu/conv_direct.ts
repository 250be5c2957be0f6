/**
 * The native direct 3×3 convolution (`ffi/cpu_kernels/conv_direct.c`): for the 3×3 pad-1
 * convolutions of stride 1 or 2 with suitable sizes (see {@linkcode directApplies}; every one of
 * the CIFAR ResNets) it computes the three passes straight from a zero-bordered copy of each
 * sample, with no packed matrices at all.
 *
 * @module
 */

import type { CpuKernelLibrary } from "../../../ffi/cpu_kernels.ts";
import type { Conv2dShape } from "../device.ts";

/** Which pass: forward, backward-data or backward-filter. */
export type ConvPass = "forward" | "data" | "filter";

/**
 * Whether the native direct 3×3 kernel takes this convolution: padding 1, stride 1 or 2 (with an
 * even input size), output rows of a multiple of 8 pixels and outputs per channel a multiple of
 * 16; output channels in blocks of 8 for the forward (and for backward-data, whose outputs are the
 * input channels). Backward-filter goes direct up to 64×64 channels; wider layers give the GEMM
 * lowering M and N large enough to win (on a 2-core Zen 4, direct 4.7 ms against 6.2 ms at 64×64
 * channels on 8×8, but 16–19 % slower at 128×128 and 256×256).
 *
 * @param s The geometry.
 * @param op The pass.
 * @returns Whether the direct kernel runs it.
 *
 * @example
 * ```ts
 * import { directApplies } from "./conv_direct.ts";
 * directApplies({ n: 1, cIn: 16, h: 32, w: 32, cOut: 16, kH: 3, kW: 3, strideH: 1,
 *   strideW: 1, padH: 1, padW: 1, outH: 32, outW: 32 }, "forward"); // true
 * ```
 */
export function directApplies(s: Conv2dShape, op: ConvPass): boolean {
  const stride = s.strideH;
  if (
    s.kH !== 3 || s.kW !== 3 || s.padH !== 1 || s.padW !== 1 || s.strideW !== stride ||
    (stride !== 1 && (stride !== 2 || s.h % 2 !== 0 || s.w % 2 !== 0)) ||
    s.outW % 8 !== 0 || (s.outH * s.outW) % 16 !== 0
  ) return false;
  if (op === "forward") return s.cOut % 8 === 0;
  if (op === "data") return s.cIn % 8 === 0;
  return s.cIn * s.cOut <= 64 * 64;
}

/** Runs a direct-kernel entry point, turning its out-of-memory status into an error. */
function direct(
  op: string,
  run: (n: bigint, cIn: bigint, h: bigint, w: bigint, cOut: bigint, stride: bigint) => number,
  s: Conv2dShape,
): void {
  const big = BigInt;
  const rc = run(big(s.n), big(s.cIn), big(s.h), big(s.w), big(s.cOut), big(s.strideH));
  if (rc !== 0) throw new Error(`${op}: the native kernel could not allocate its scratch memory`);
}

/**
 * Forward pass by the direct kernel (the geometry must pass {@linkcode directApplies}).
 *
 * @param native The kernel library.
 * @param x Input `[n, cIn, h, w]`.
 * @param w Weights `[cOut, cIn, 3, 3]`.
 * @param y Output `[n, cOut, outH, outW]`, overwritten.
 * @param s The geometry.
 * @throws {Error} When the kernel cannot allocate its scratch memory.
 *
 * @example
 * ```ts ignore
 * import { cpuKernels } from "../../../ffi/cpu_kernels.ts";
 * import { directForward } from "./conv_direct.ts";
 * const s = { n: 1, cIn: 8, h: 4, w: 8, cOut: 8, kH: 3, kW: 3, strideH: 1, strideW: 1,
 *   padH: 1, padW: 1, outH: 4, outW: 8 };
 * directForward(cpuKernels()!, new Float32Array(256), new Float32Array(576), new Float32Array(256), s);
 * ```
 */
export function directForward(
  native: CpuKernelLibrary,
  x: Float32Array,
  w: Float32Array,
  y: Float32Array,
  s: Conv2dShape,
): void {
  direct("conv2dForward", (...d) => native.symbols.eql_conv3x3_forward(x, w, y, ...d), s);
}

/**
 * Backward-data pass by the direct kernel (the geometry must pass {@linkcode directApplies}).
 *
 * @param native The kernel library.
 * @param w Weights `[cOut, cIn, 3, 3]`.
 * @param dy Output gradient `[n, cOut, outH, outW]`.
 * @param dx Input gradient `[n, cIn, h, w]`, overwritten.
 * @param s The geometry.
 * @throws {Error} When the kernel cannot allocate its scratch memory.
 *
 * @example
 * ```ts ignore
 * import { cpuKernels } from "../../../ffi/cpu_kernels.ts";
 * import { directBackwardData } from "./conv_direct.ts";
 * const s = { n: 1, cIn: 8, h: 4, w: 8, cOut: 8, kH: 3, kW: 3, strideH: 1, strideW: 1,
 *   padH: 1, padW: 1, outH: 4, outW: 8 };
 * directBackwardData(cpuKernels()!, new Float32Array(576), new Float32Array(256),
 *   new Float32Array(256), s);
 * ```
 */
export function directBackwardData(
  native: CpuKernelLibrary,
  w: Float32Array,
  dy: Float32Array,
  dx: Float32Array,
  s: Conv2dShape,
): void {
  const run = s.strideH === 1
    ? native.symbols.eql_conv3x3_backward_data
    : native.symbols.eql_conv3x3_s2_backward_data;
  direct("conv2dBackwardData", (n, cIn, h, w_, cOut) => run(w, dy, dx, n, cIn, h, w_, cOut), s);
}

/**
 * Backward-filter pass by the direct kernel (the geometry must pass {@linkcode directApplies}).
 *
 * @param native The kernel library.
 * @param x Input `[n, cIn, h, w]`.
 * @param dy Output gradient `[n, cOut, outH, outW]`.
 * @param dw Weight gradient `[cOut, cIn, 3, 3]`, overwritten.
 * @param s The geometry.
 * @throws {Error} When the kernel cannot allocate its scratch memory.
 *
 * @example
 * ```ts ignore
 * import { cpuKernels } from "../../../ffi/cpu_kernels.ts";
 * import { directBackwardFilter } from "./conv_direct.ts";
 * const s = { n: 1, cIn: 8, h: 4, w: 8, cOut: 8, kH: 3, kW: 3, strideH: 1, strideW: 1,
 *   padH: 1, padW: 1, outH: 4, outW: 8 };
 * directBackwardFilter(cpuKernels()!, new Float32Array(256), new Float32Array(256),
 *   new Float32Array(576), s);
 * ```
 */
export function directBackwardFilter(
  native: CpuKernelLibrary,
  x: Float32Array,
  dy: Float32Array,
  dw: Float32Array,
  s: Conv2dShape,
): void {
  direct(
    "conv2dBackwardFilter",
    (...d) => native.symbols.eql_conv3x3_backward_filter(x, dy, dw, ...d),
    s,
  );
}
