/**
 * The CUDA device: the device contract on one NVIDIA GPU through the driver API, cuBLAS, cuDNN and
 * the project's PTX kernels, with its memory statistics, GPU timers and error classes. Importing
 * this entry point loads the PTX module (about 600 KB of source); `autoDevice()` of `@eql/eql`
 * imports it only when a GPU is usable or `EQL_DEVICE=cuda` asks for one.
 *
 * @example
 * ```ts ignore
 * import { cudaAvailable, cudaDevice } from "@eql/eql/cuda";
 * import { eqlLoss, tensor } from "@eql/eql";
 * const { ok, reason } = cudaAvailable();
 * if (!ok) throw new Error(reason);
 * const gpu = cudaDevice();
 * const logits = tensor(new Float32Array(2 * 3), [2, 3], gpu);
 * using result = eqlLoss(logits, new Int32Array([0, 3]), { frequencies: [0.5, 1e-4, 1e-3] });
 * console.log(result.loss, gpu.memoryStats());
 * ```
 *
 * @module
 */

export {
  type AllocatorStats,
  type ConvolutionAlgorithm,
  type ConvolutionAlgorithms,
  CudaBuffer,
  CudaDevice,
  cudaDevice,
  type CudaDeviceOptions,
  type CudaMemoryInfo,
  type CudaTimer,
} from "./src/device/cuda.ts";
export { type CudaAvailability, cudaAvailable } from "./src/device/auto.ts";
export { NvidiaError } from "./ffi/nvidia_error.ts";
export { CudaError } from "./ffi/cuda.ts";
export { CublasError } from "./ffi/cublas.ts";
export { CudnnError } from "./ffi/cudnn.ts";
export * from "./src/_core.ts";
