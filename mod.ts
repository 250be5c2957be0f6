/**
 * Long-tailed recognition with the Equalization Loss family, on the CPU and on CUDA GPUs.
 *
 * @example
 * ```ts
 * import { eqlLoss, tensor } from "@eql/eql";
 * const logits = tensor(new Float32Array(2 * 3), [2, 3]);
 * const labels = new Int32Array([0, 3]); // 3 = background
 * const { loss, grad } = eqlLoss(logits, labels, { frequencies: new Float32Array([0.5, 1e-4, 1e-3]) });
 * console.log(loss, grad.shape);
 * ```
 *
 * @module
 */

export { Tensor, tensor, zeros } from "./src/tensor.ts";
export type { Device, DeviceBuffer, DType } from "./src/device/device.ts";
export { CpuDevice, cpuDevice } from "./src/device/cpu.ts";
