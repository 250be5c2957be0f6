/**
 * Typed bindings to the cuDNN 9 legacy C API (`libcudnn.so.9`, which loads
 * `libcudnn_{graph,ops,cnn,...}.so.9` from its own folder): descriptors, convolution forward /
 * backward-data / backward-filter with their `_v7` algorithm queries and workspace sizes, and
 * batch normalisation. Plus the status check that turns a `cudnnStatus_t` into a
 * {@linkcode CudnnError}, and the enum values the device uses.
 *
 * Device pointers are `"u64"` (bigint); `alpha` / `beta` are host pointers to a float
 * (`"buffer"`: a `Float32Array(1)`); descriptors and the handle are `"pointer"`.
 *
 * The library is found by `ffi/nvidia_paths.ts` (override: `EQL_CUDNN_PATH`).
 *
 * @module
 */

import { NvidiaError } from "./nvidia_error.ts";
import { openNvidiaLibrary } from "./nvidia_paths.ts";
import { cublas } from "./cublas.ts";

/** cuDNN symbol table. Every result is a `cudnnStatus_t` (0 = success) unless noted. */
export const CUDNN_SYMBOLS = {
  // size_t cudnnGetVersion(void)
  cudnnGetVersion: { parameters: [], result: "usize" },
  // const char* cudnnGetErrorString(cudnnStatus_t status)
  cudnnGetErrorString: { parameters: ["i32"], result: "pointer" },
  // void cudnnGetLastErrorString(char* message, size_t max_size)   (cuDNN 9)
  cudnnGetLastErrorString: { parameters: ["buffer", "usize"], result: "void", optional: true },
  // cudnnStatus_t cudnnCreate(cudnnHandle_t *handle)
  cudnnCreate: { parameters: ["buffer"], result: "i32" },
  // cudnnStatus_t cudnnDestroy(cudnnHandle_t handle)
  cudnnDestroy: { parameters: ["pointer"], result: "i32" },
  // cudnnStatus_t cudnnSetStream(cudnnHandle_t handle, cudaStream_t streamId)
  cudnnSetStream: { parameters: ["pointer", "pointer"], result: "i32" },
  // cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t *tensorDesc)
  cudnnCreateTensorDescriptor: { parameters: ["buffer"], result: "i32" },
  // cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t tensorDesc,
  //   cudnnTensorFormat_t format, cudnnDataType_t dataType, int n, int c, int h, int w)
  cudnnSetTensor4dDescriptor: {
    parameters: ["pointer", "i32", "i32", "i32", "i32", "i32", "i32"],
    result: "i32",
  },
  // cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t tensorDesc)
  cudnnDestroyTensorDescriptor: { parameters: ["pointer"], result: "i32" },
  // cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *filterDesc)
  cudnnCreateFilterDescriptor: { parameters: ["buffer"], result: "i32" },
  // cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t filterDesc,
  //   cudnnDataType_t dataType, cudnnTensorFormat_t format, int k, int c, int h, int w)
  cudnnSetFilter4dDescriptor: {
    parameters: ["pointer", "i32", "i32", "i32", "i32", "i32", "i32"],
    result: "i32",
  },
  // cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t filterDesc)
  cudnnDestroyFilterDescriptor: { parameters: ["pointer"], result: "i32" },
  // cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t *convDesc)
  cudnnCreateConvolutionDescriptor: { parameters: ["buffer"], result: "i32" },
  // cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t convDesc,
  //   int pad_h, int pad_w, int u, int v, int dilation_h, int dilation_w,
  //   cudnnConvolutionMode_t mode, cudnnDataType_t computeType)
  cudnnSetConvolution2dDescriptor: {
    parameters: ["pointer", "i32", "i32", "i32", "i32", "i32", "i32", "i32", "i32"],
    result: "i32",
  },
  // cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t convDesc,
  //   cudnnMathType_t mathType)
  cudnnSetConvolutionMathType: { parameters: ["pointer", "i32"], result: "i32" },
  // cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t convDesc)
  cudnnDestroyConvolutionDescriptor: { parameters: ["pointer"], result: "i32" },
  // cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t handle,
  //   const cudnnTensorDescriptor_t srcDesc, const cudnnFilterDescriptor_t filterDesc,
  //   const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t destDesc,
  //   const int requestedAlgoCount, int *returnedAlgoCount,
  //   cudnnConvolutionFwdAlgoPerf_t *perfResults)
  cudnnGetConvolutionForwardAlgorithm_v7: {
    parameters: ["pointer", "pointer", "pointer", "pointer", "pointer", "i32", "buffer", "buffer"],
    result: "i32",
  },
  // cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t handle,
  //   const cudnnTensorDescriptor_t xDesc, const cudnnFilterDescriptor_t wDesc,
  //   const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t yDesc,
  //   cudnnConvolutionFwdAlgo_t algo, size_t *sizeInBytes)
  cudnnGetConvolutionForwardWorkspaceSize: {
    parameters: ["pointer", "pointer", "pointer", "pointer", "pointer", "i32", "buffer"],
    result: "i32",
  },
  // cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t handle, const void *alpha,
  //   const cudnnTensorDescriptor_t xDesc, const void *x, const cudnnFilterDescriptor_t wDesc,
  //   const void *w, const cudnnConvolutionDescriptor_t convDesc, cudnnConvolutionFwdAlgo_t algo,
  //   void *workSpace, size_t workSpaceSizeInBytes, const void *beta,
  //   const cudnnTensorDescriptor_t yDesc, void *y)
  cudnnConvolutionForward: {
    parameters: [
      "pointer", // cudnnHandle_t handle
      "buffer", // const void *alpha (host float)
      "pointer", // const cudnnTensorDescriptor_t xDesc
      "u64", // const void *x (device)
      "pointer", // const cudnnFilterDescriptor_t wDesc
      "u64", // const void *w (device)
      "pointer", // const cudnnConvolutionDescriptor_t convDesc
      "i32", // cudnnConvolutionFwdAlgo_t algo
      "u64", // void *workSpace (device)
      "usize", // size_t workSpaceSizeInBytes
      "buffer", // const void *beta (host float)
      "pointer", // const cudnnTensorDescriptor_t yDesc
      "u64", // void *y (device)
    ],
    result: "i32",
  },
  // cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle_t handle,
  //   const cudnnFilterDescriptor_t filterDesc, const cudnnTensorDescriptor_t diffDesc,
  //   const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t gradDesc,
  //   const int requestedAlgoCount, int *returnedAlgoCount,
  //   cudnnConvolutionBwdDataAlgoPerf_t *perfResults)
  cudnnGetConvolutionBackwardDataAlgorithm_v7: {
    parameters: ["pointer", "pointer", "pointer", "pointer", "pointer", "i32", "buffer", "buffer"],
    result: "i32",
  },
  // cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle_t handle,
  //   const cudnnFilterDescriptor_t wDesc, const cudnnTensorDescriptor_t dyDesc,
  //   const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t dxDesc,
  //   cudnnConvolutionBwdDataAlgo_t algo, size_t *sizeInBytes)
  cudnnGetConvolutionBackwardDataWorkspaceSize: {
    parameters: ["pointer", "pointer", "pointer", "pointer", "pointer", "i32", "buffer"],
    result: "i32",
  },
  // cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t handle, const void *alpha,
  //   const cudnnFilterDescriptor_t wDesc, const void *w, const cudnnTensorDescriptor_t dyDesc,
  //   const void *dy, const cudnnConvolutionDescriptor_t convDesc,
  //   cudnnConvolutionBwdDataAlgo_t algo, void *workSpace, size_t workSpaceSizeInBytes,
  //   const void *beta, const cudnnTensorDescriptor_t dxDesc, void *dx)
  cudnnConvolutionBackwardData: {
    parameters: [
      "pointer", // cudnnHandle_t handle
      "buffer", // const void *alpha (host float)
      "pointer", // const cudnnFilterDescriptor_t wDesc
      "u64", // const void *w (device)
      "pointer", // const cudnnTensorDescriptor_t dyDesc
      "u64", // const void *dy (device)
      "pointer", // const cudnnConvolutionDescriptor_t convDesc
      "i32", // cudnnConvolutionBwdDataAlgo_t algo
      "u64", // void *workSpace (device)
      "usize", // size_t workSpaceSizeInBytes
      "buffer", // const void *beta (host float)
      "pointer", // const cudnnTensorDescriptor_t dxDesc
      "u64", // void *dx (device)
    ],
    result: "i32",
  },
  // cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle_t handle,
  //   const cudnnTensorDescriptor_t srcDesc, const cudnnTensorDescriptor_t diffDesc,
  //   const cudnnConvolutionDescriptor_t convDesc, const cudnnFilterDescriptor_t gradDesc,
  //   const int requestedAlgoCount, int *returnedAlgoCount,
  //   cudnnConvolutionBwdFilterAlgoPerf_t *perfResults)
  cudnnGetConvolutionBackwardFilterAlgorithm_v7: {
    parameters: ["pointer", "pointer", "pointer", "pointer", "pointer", "i32", "buffer", "buffer"],
    result: "i32",
  },
  // cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle_t handle,
  //   const cudnnTensorDescriptor_t xDesc, const cudnnTensorDescriptor_t dyDesc,
  //   const cudnnConvolutionDescriptor_t convDesc, const cudnnFilterDescriptor_t gradDesc,
  //   cudnnConvolutionBwdFilterAlgo_t algo, size_t *sizeInBytes)
  cudnnGetConvolutionBackwardFilterWorkspaceSize: {
    parameters: ["pointer", "pointer", "pointer", "pointer", "pointer", "i32", "buffer"],
    result: "i32",
  },
  // cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t handle, const void *alpha,
  //   const cudnnTensorDescriptor_t xDesc, const void *x, const cudnnTensorDescriptor_t dyDesc,
  //   const void *dy, const cudnnConvolutionDescriptor_t convDesc,
  //   cudnnConvolutionBwdFilterAlgo_t algo, void *workSpace, size_t workSpaceSizeInBytes,
  //   const void *beta, const cudnnFilterDescriptor_t dwDesc, void *dw)
  cudnnConvolutionBackwardFilter: {
    parameters: [
      "pointer", // cudnnHandle_t handle
      "buffer", // const void *alpha (host float)
      "pointer", // const cudnnTensorDescriptor_t xDesc
      "u64", // const void *x (device)
      "pointer", // const cudnnTensorDescriptor_t dyDesc
      "u64", // const void *dy (device)
      "pointer", // const cudnnConvolutionDescriptor_t convDesc
      "i32", // cudnnConvolutionBwdFilterAlgo_t algo
      "u64", // void *workSpace (device)
      "usize", // size_t workSpaceSizeInBytes
      "buffer", // const void *beta (host float)
      "pointer", // const cudnnFilterDescriptor_t dwDesc
      "u64", // void *dw (device)
    ],
    result: "i32",
  },
  // cudnnStatus_t cudnnDeriveBNTensorDescriptor(cudnnTensorDescriptor_t derivedBnDesc,
  //   const cudnnTensorDescriptor_t xDesc, cudnnBatchNormMode_t mode)
  cudnnDeriveBNTensorDescriptor: { parameters: ["pointer", "pointer", "i32"], result: "i32" },
  // cudnnStatus_t cudnnBatchNormalizationForwardTraining(cudnnHandle_t handle,
  //   cudnnBatchNormMode_t mode, const void *alpha, const void *beta,
  //   const cudnnTensorDescriptor_t xDesc, const void *x, const cudnnTensorDescriptor_t yDesc,
  //   void *y, const cudnnTensorDescriptor_t bnScaleBiasMeanVarDesc, const void *bnScale,
  //   const void *bnBias, double exponentialAverageFactor, void *resultRunningMean,
  //   void *resultRunningVariance, double epsilon, void *resultSaveMean,
  //   void *resultSaveInvVariance)
  cudnnBatchNormalizationForwardTraining: {
    parameters: [
      "pointer", // cudnnHandle_t handle
      "i32", // cudnnBatchNormMode_t mode
      "buffer", // const void *alpha (host float)
      "buffer", // const void *beta (host float)
      "pointer", // const cudnnTensorDescriptor_t xDesc
      "u64", // const void *x (device)
      "pointer", // const cudnnTensorDescriptor_t yDesc
      "u64", // void *y (device)
      "pointer", // const cudnnTensorDescriptor_t bnScaleBiasMeanVarDesc
      "u64", // const void *bnScale (device)
      "u64", // const void *bnBias (device)
      "f64", // double exponentialAverageFactor
      "u64", // void *resultRunningMean (device)
      "u64", // void *resultRunningVariance (device)
      "f64", // double epsilon
      "u64", // void *resultSaveMean (device)
      "u64", // void *resultSaveInvVariance (device)
    ],
    result: "i32",
  },
  // cudnnStatus_t cudnnBatchNormalizationForwardInference(cudnnHandle_t handle,
  //   cudnnBatchNormMode_t mode, const void *alpha, const void *beta,
  //   const cudnnTensorDescriptor_t xDesc, const void *x, const cudnnTensorDescriptor_t yDesc,
  //   void *y, const cudnnTensorDescriptor_t bnScaleBiasMeanVarDesc, const void *bnScale,
  //   const void *bnBias, const void *estimatedMean, const void *estimatedVariance,
  //   double epsilon)
  cudnnBatchNormalizationForwardInference: {
    parameters: [
      "pointer", // cudnnHandle_t handle
      "i32", // cudnnBatchNormMode_t mode
      "buffer", // const void *alpha (host float)
      "buffer", // const void *beta (host float)
      "pointer", // const cudnnTensorDescriptor_t xDesc
      "u64", // const void *x (device)
      "pointer", // const cudnnTensorDescriptor_t yDesc
      "u64", // void *y (device)
      "pointer", // const cudnnTensorDescriptor_t bnScaleBiasMeanVarDesc
      "u64", // const void *bnScale (device)
      "u64", // const void *bnBias (device)
      "u64", // const void *estimatedMean (device)
      "u64", // const void *estimatedVariance (device)
      "f64", // double epsilon
    ],
    result: "i32",
  },
  // cudnnStatus_t cudnnBatchNormalizationBackward(cudnnHandle_t handle,
  //   cudnnBatchNormMode_t mode, const void *alphaDataDiff, const void *betaDataDiff,
  //   const void *alphaParamDiff, const void *betaParamDiff,
  //   const cudnnTensorDescriptor_t xDesc, const void *x, const cudnnTensorDescriptor_t dyDesc,
  //   const void *dy, const cudnnTensorDescriptor_t dxDesc, void *dx,
  //   const cudnnTensorDescriptor_t dBnScaleBiasDesc, const void *bnScale, void *dBnScaleResult,
  //   void *dBnBiasResult, double epsilon, const void *savedMean,
  //   const void *savedInvVariance)
  cudnnBatchNormalizationBackward: {
    parameters: [
      "pointer", // cudnnHandle_t handle
      "i32", // cudnnBatchNormMode_t mode
      "buffer", // const void *alphaDataDiff (host float)
      "buffer", // const void *betaDataDiff (host float)
      "buffer", // const void *alphaParamDiff (host float)
      "buffer", // const void *betaParamDiff (host float)
      "pointer", // const cudnnTensorDescriptor_t xDesc
      "u64", // const void *x (device)
      "pointer", // const cudnnTensorDescriptor_t dyDesc
      "u64", // const void *dy (device)
      "pointer", // const cudnnTensorDescriptor_t dxDesc
      "u64", // void *dx (device)
      "pointer", // const cudnnTensorDescriptor_t dBnScaleBiasDesc
      "u64", // const void *bnScale (device)
      "u64", // void *dBnScaleResult (device)
      "u64", // void *dBnBiasResult (device)
      "f64", // double epsilon
      "u64", // const void *savedMean (device)
      "u64", // const void *savedInvVariance (device)
    ],
    result: "i32",
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** The opened cuDNN library's symbols. */
export type CudnnSymbols = Deno.DynamicLibrary<typeof CUDNN_SYMBOLS>["symbols"];

/** cuDNN enum values used by the device. */
export const CUDNN = {
  STATUS_SUCCESS: 0,
  STATUS_NOT_SUPPORTED: 3000,
  TENSOR_NCHW: 0,
  DATA_FLOAT: 0,
  DEFAULT_MATH: 0,
  TENSOR_OP_MATH: 1,
  TENSOR_OP_MATH_ALLOW_CONVERSION: 2,
  FMA_MATH: 3,
  CROSS_CORRELATION: 1,
  BATCHNORM_SPATIAL: 1,
  NON_DETERMINISTIC: 0,
  DETERMINISTIC: 1,
  /** Algorithm counts of the three convolution directions (the enums' `_COUNT` members). */
  FWD_ALGO_COUNT: 8,
  BWD_DATA_ALGO_COUNT: 6,
  BWD_FILTER_ALGO_COUNT: 7,
  /** Size of `cudnnConvolution{Fwd,BwdData,BwdFilter}AlgoPerf_t` in bytes. */
  ALGO_PERF_BYTES: 48,
} as const;

/** One entry of a `cudnnConvolution*AlgoPerf_t` array. */
export interface AlgoPerf {
  /** The algorithm enum value. */
  algo: number;
  /** Whether it can run (`cudnnStatus_t`, 0 = yes). */
  status: number;
  /** Estimated or measured time in ms (negative when unknown). */
  time: number;
  /** Workspace in bytes. */
  memory: number;
  /** `CUDNN_DETERMINISTIC` (1) or `CUDNN_NON_DETERMINISTIC` (0). */
  determinism: number;
  /** The `cudnnMathType_t` it runs with. */
  mathType: number;
}

/**
 * Decodes the 48-byte perf structs `{int algo; int status; float time; (4 bytes padding);
 * size_t memory; int determinism; int mathType; int reserved[3]}`.
 *
 * @param bytes The array cuDNN filled.
 * @param count How many entries it returned.
 * @returns The entries, in cuDNN's order (best first).
 *
 * @example
 * ```ts
 * import { decodeAlgoPerf } from "./cudnn.ts";
 * decodeAlgoPerf(new Uint8Array(48), 1)[0].algo; // 0
 * ```
 */
export function decodeAlgoPerf(bytes: Uint8Array, count: number): AlgoPerf[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: AlgoPerf[] = [];
  for (let i = 0; i < count; i++) {
    const o = i * CUDNN.ALGO_PERF_BYTES;
    out.push({
      algo: view.getInt32(o, true),
      status: view.getInt32(o + 4, true),
      time: view.getFloat32(o + 8, true),
      memory: Number(view.getBigUint64(o + 16, true)),
      determinism: view.getInt32(o + 24, true),
      mathType: view.getInt32(o + 28, true),
    });
  }
  return out;
}

/**
 * A failed cuDNN call: the status, cuDNN's name for it (`cudnnGetErrorString`), as description the
 * detail cuDNN 9 recorded for the last error (`cudnnGetLastErrorString`, "" when none), and the
 * call (see {@linkcode NvidiaError}).
 *
 * @example
 * ```ts
 * import { CudnnError } from "@eql/eql/cuda";
 * const e = new CudnnError("cudnnCreate", 1001, "CUDNN_STATUS_NOT_INITIALIZED", "");
 * e.message; // "cudnnCreate failed: CUDNN_STATUS_NOT_INITIALIZED (1001)"
 * ```
 */
export class CudnnError extends NvidiaError {}

let lib: Deno.DynamicLibrary<typeof CUDNN_SYMBOLS> | undefined;
let nvrtc: Deno.DynamicLibrary<Record<string, never>> | undefined;

/**
 * Loads what cuDNN's engines load by name at run time (cuBLAS, NVRTC), so that the loader finds
 * them already in the process when they are not on cuDNN's own search path (pip wheels live in
 * separate folders). Both are optional for cuDNN itself: a failure here is not an error.
 */
function preloadDependencies(): void {
  try {
    cublas();
  } catch {
    // cuDNN reports it if an engine needs it.
  }
  try {
    nvrtc ??= openNvidiaLibrary("nvrtc", {});
  } catch {
    // Without NVRTC, cuDNN skips its run-time compiled engines.
  }
}

/**
 * cuDNN, opened on first use and kept for the life of the process.
 *
 * @returns Its symbols.
 * @throws {LibraryNotFoundError} When `libcudnn.so.9` cannot be found or loaded.
 *
 * @example
 * ```ts ignore
 * import { cudnn } from "./cudnn.ts";
 * cudnn().cudnnGetVersion(); // e.g. 92400n
 * ```
 */
export function cudnn(): CudnnSymbols {
  if (!lib) {
    preloadDependencies();
    lib = openNvidiaLibrary("cudnn", CUDNN_SYMBOLS);
  }
  return lib.symbols;
}

const detailBuffer = new Uint8Array(1024);

/**
 * Throws a {@linkcode CudnnError} unless `status` is `CUDNN_STATUS_SUCCESS`.
 *
 * @param status The status a call returned.
 * @param call The call, for the message.
 * @throws {CudnnError} When `status` is not 0.
 *
 * @example
 * ```ts
 * import { checkCudnn } from "./cudnn.ts";
 * checkCudnn(0, "cudnnCreate"); // returns quietly
 * ```
 */
export function checkCudnn(status: number, call: string): void {
  if (status === 0) return;
  let name = `cudnnStatus_t ${status}`;
  let detail = "";
  if (lib) {
    const p = lib.symbols.cudnnGetErrorString(status);
    if (p !== null) name = Deno.UnsafePointerView.getCString(p);
    const last = lib.symbols.cudnnGetLastErrorString;
    if (last) {
      detailBuffer.fill(0);
      last(detailBuffer, BigInt(detailBuffer.length));
      const end = detailBuffer.indexOf(0);
      detail = new TextDecoder().decode(detailBuffer.subarray(0, end < 0 ? undefined : end))
        .trim();
    }
  }
  throw new CudnnError(call, status, name, detail);
}

/**
 * The cuDNN version as "major.minor.patch" (cuDNN 9 encodes it as major·10000 + minor·100 + patch).
 *
 * @returns The version string.
 *
 * @example
 * ```ts ignore
 * import { cudnnVersion } from "./cudnn.ts";
 * cudnnVersion(); // e.g. "9.24.0"
 * ```
 */
export function cudnnVersion(): string {
  const v = Number(cudnn().cudnnGetVersion());
  return `${Math.floor(v / 10000)}.${Math.floor(v / 100) % 100}.${v % 100}`;
}
