/**
 * The seam between the CUDA device and its custom kernels: the device implements
 * `KernelLauncher` (module loading, the preallocated argument block, `cuLaunchKernel`), and
 * `kernels.ts` describes each kernel's grid and argument list in terms of it.
 *
 * @module
 */

/** One kernel argument: a device pointer (`0n` for an absent optional buffer) or a scalar. */
export type KernelArg =
  | { ptr: bigint }
  | { f32: number }
  | { i32: number }
  | { u32: number };

/** Launches a kernel of the project's PTX module by its (extern "C") name. */
export interface KernelLauncher {
  /**
   * Queues `name<<<grid, block, sharedBytes, stream>>>(...args)` on the device's stream.
   *
   * @param name The kernel's symbol in the PTX module.
   * @param grid Grid size (x, y, z).
   * @param block Block size (x, y, z).
   * @param sharedBytes Dynamic shared memory in bytes.
   * @param args Arguments in the kernel's parameter order.
   */
  launch(
    name: string,
    grid: readonly [number, number, number],
    block: readonly [number, number, number],
    sharedBytes: number,
    args: readonly KernelArg[],
  ): void;
}
