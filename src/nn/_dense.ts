/**
 * What the dense layers (`Linear`, `NormalizedLinear`) share: the GEMM record of a plain product
 * and the bias gradient as one GEMM against a column of ones. Internal to `src/nn/`.
 *
 * @module
 */

import type { Device, GemmShape } from "../device/device.ts";
import { type Tensor, tensor } from "../tensor.ts";

/** The record of `C = alpha · op(A) · op(B)` (beta 0). */
export function gemmShape(
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  alpha = 1,
): GemmShape {
  return { transA, transB, m, n, k, alpha, beta: 0 };
}

/**
 * Writes the bias gradient `Σ_i dy[i, :]` (`[out]`) as `dyᵀ · 1`, reusing `ones` (`[n, 1]`) when
 * it has n rows.
 *
 * @returns The column of ones to keep for the next call.
 */
export function writeBiasGradient(
  device: Device,
  dy: Tensor<"f32">,
  biasGrad: Tensor<"f32">,
  ones: Tensor<"f32"> | undefined,
): Tensor<"f32"> {
  const [n, out] = dy.shape;
  if (ones?.size !== n) {
    ones?.dispose();
    ones = tensor(new Float32Array(n).fill(1), [n, 1], device);
  }
  device.gemm(dy.buffer, ones.buffer, biasGrad.buffer, gemmShape(true, false, out, 1, n));
  return ones;
}
