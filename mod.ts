/**
 * Long-tailed recognition with the Equalization Loss family, on the CPU and on CUDA GPUs.
 *
 * This entry point holds what training with these losses needs:
 * - Losses (`eqlLoss`, `seqlLoss`, `sigmoidCrossEntropy`, `softmaxCrossEntropy`, `focalLoss`,
 *   class-balanced weights, logit adjustment, smooth-L1), each one fused device operation that
 *   returns the mean loss and the gradient with respect to the logits (also in `@eql/eql/losses`).
 * - Tensors (`tensor`, `zeros`), the CPU device (OpenBLAS or TypeScript GEMM, native or
 *   TypeScript kernels) and `autoDevice()` / `chooseDevice()`, which open the CUDA device when a
 *   GPU is usable and load its module only then.
 * - Layers and models with explicit forward/backward (`resnet32`, `resnet`, `boxHead`), SGD and
 *   learning-rate schedules, safetensors checkpoints with PyTorch names (also in `@eql/eql/nn`).
 * - Long-tail statistics: category frequencies, the EQL threshold for a tail ratio, LVIS and
 *   many/medium/few groups, samplers, accuracy by group.
 *
 * The other entry points: `@eql/eql/data` (CIFAR, CIFAR-LT, augmentation, loaders, download, the
 * classifier training loop), `@eql/eql/detection` (long-tailed proposals, LVIS AP, box coding,
 * gradient statistics), `@eql/eql/plot` (SVG charts) and `@eql/eql/cuda` (the CUDA device).
 *
 * @example
 * ```ts
 * import { eqlLoss, tensor } from "@eql/eql";
 * const logits = tensor(new Float32Array(2 * 3), [2, 3]);
 * const labels = new Int32Array([0, 3]); // 3 = background
 * const { loss, grad } = eqlLoss(logits, labels, { frequencies: [0.5, 1e-4, 1e-3] });
 * console.log(loss, grad.shape);
 * grad.dispose();
 * ```
 *
 * @module
 */

// Tensors, the CPU device and the device choice (the CUDA device is `@eql/eql/cuda`)
export * from "./src/_core.ts";
export { CpuBuffer, CpuDevice, cpuDevice, type CpuDeviceOptions } from "./src/device/cpu.ts";
export type { GemmBackend, GemmChoice } from "./src/device/cpu/gemm.ts";
export { CpuKernelsUnavailableError } from "./ffi/cpu_kernels.ts";
export type { CpuKernelsChoice, CpuVariant, CpuVariantChoice } from "./ffi/cpu_kernels.ts";
export { autoDevice, chooseDevice, cudaAvailable } from "./src/device/auto.ts";
export type { AutoDeviceOptions, CudaAvailability, DeviceChoice } from "./src/device/auto.ts";
export { LibraryNotFoundError } from "./ffi/discovery.ts";
export type { NativePermission } from "./ffi/permissions.ts";

// Losses
export * from "./losses.ts";

// Layers, models, optimisation, checkpoints
export * from "./nn.ts";

// Long-tail statistics and metrics
export * from "./src/longtail/mod.ts";
export { AccuracyMeter, type ClassificationReport } from "./src/metrics.ts";
