/**
 * The implementations one CPU device runs: the native kernel library (or none, for the TypeScript
 * loops) and its GEMM. Every kernel in this folder that has a native path or multiplies matrices
 * takes one, so two devices with different choices can run side by side in one process.
 *
 * @module
 */

import { type CpuKernelLibrary, cpuKernels } from "../../../ffi/cpu_kernels.ts";
import { type Sgemm, sgemm } from "./gemm.ts";

/** The kernel implementations of a CPU device. */
export interface CpuBackend {
  /** The native kernels, or `null` to run the TypeScript loops. */
  readonly native: CpuKernelLibrary | null;
  /** The matrix product (OpenBLAS or TypeScript). */
  readonly gemm: Sgemm;
}

let fallback: CpuBackend | undefined;

/**
 * The environment's defaults (`EQL_CPU_KERNELS`, `EQL_GEMM`), for callers of the kernels that are
 * not a device; the GEMM backend is resolved on its first product.
 *
 * @returns The default backend.
 * @throws {RangeError} When an `EQL_*` variable holds an invalid value.
 *
 * @example
 * ```ts
 * import { defaultCpuBackend } from "./backend.ts";
 * console.log(defaultCpuBackend().native === null ? "typescript" : "native");
 * ```
 */
export function defaultCpuBackend(): CpuBackend {
  return fallback ??= { native: cpuKernels(), gemm: sgemm };
}
