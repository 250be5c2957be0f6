/**
 * Typed bindings to the CUDA driver API (`libcuda.so.1`), the status check that turns a
 * `CUresult` into a {@linkcode CudaError}, and the enum values the device uses.
 *
 * The versioned symbols (`cuMemAlloc_v2`, ...) are bound by their exported names: `cuda.h` maps
 * the plain names onto them with `#define`, and the plain exports keep an older ABI. `CUdeviceptr`
 * is `"u64"` (pass a bigint), `size_t` is `"usize"` (bigint), handles are `"pointer"`, and
 * out-parameters are `"buffer"` (a `BigUint64Array(1)` or `Int32Array(1)`).
 *
 * The library is found by `ffi/nvidia_paths.ts` (override: `EQL_CUDA_DRIVER_PATH`).
 *
 * @module
 */

import { NvidiaError } from "./nvidia_error.ts";
import { openNvidiaLibrary } from "./nvidia_paths.ts";

/** Driver API symbol table. Every result is a `CUresult` (0 = success) unless noted. */
export const CUDA_SYMBOLS = {
  // CUresult cuInit(unsigned int Flags)
  cuInit: { parameters: ["u32"], result: "i32" },
  // CUresult cuDriverGetVersion(int *driverVersion)
  cuDriverGetVersion: { parameters: ["buffer"], result: "i32" },
  // CUresult cuDeviceGet(CUdevice *device, int ordinal)
  cuDeviceGet: { parameters: ["buffer", "i32"], result: "i32" },
  // CUresult cuDeviceGetCount(int *count)
  cuDeviceGetCount: { parameters: ["buffer"], result: "i32" },
  // CUresult cuDeviceGetName(char *name, int len, CUdevice dev)
  cuDeviceGetName: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  // CUresult cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev)
  cuDeviceGetAttribute: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  // CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
  cuDeviceTotalMem_v2: { parameters: ["buffer", "i32"], result: "i32" },
  // CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev)
  cuDevicePrimaryCtxRetain: { parameters: ["buffer", "i32"], result: "i32" },
  // CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev)
  cuDevicePrimaryCtxRelease_v2: { parameters: ["i32"], result: "i32" },
  // CUresult cuCtxSetCurrent(CUcontext ctx)
  cuCtxSetCurrent: { parameters: ["pointer"], result: "i32" },
  // CUresult cuCtxSynchronize(void)
  cuCtxSynchronize: { parameters: [], result: "i32" },
  // CUresult cuGetErrorName(CUresult error, const char **pStr)
  cuGetErrorName: { parameters: ["i32", "buffer"], result: "i32" },
  // CUresult cuGetErrorString(CUresult error, const char **pStr)
  cuGetErrorString: { parameters: ["i32", "buffer"], result: "i32" },
  // CUresult cuModuleLoadData(CUmodule *module, const void *image)
  cuModuleLoadData: { parameters: ["buffer", "buffer"], result: "i32" },
  // CUresult cuModuleLoadDataEx(CUmodule *module, const void *image, unsigned int numOptions,
  //                             CUjit_option *options, void **optionValues)
  cuModuleLoadDataEx: {
    parameters: ["buffer", "buffer", "u32", "buffer", "buffer"],
    result: "i32",
  },
  // CUresult cuModuleGetFunction(CUfunction *hfunc, CUmodule hmod, const char *name)
  cuModuleGetFunction: { parameters: ["buffer", "pointer", "buffer"], result: "i32" },
  // CUresult cuModuleUnload(CUmodule hmod)
  cuModuleUnload: { parameters: ["pointer"], result: "i32" },
  // CUresult cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
  //   unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,
  //   unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,
  //   void **kernelParams, void **extra)
  cuLaunchKernel: {
    parameters: [
      "pointer",
      "u32",
      "u32",
      "u32",
      "u32",
      "u32",
      "u32",
      "u32",
      "pointer",
      "pointer",
      "pointer",
    ],
    result: "i32",
  },
  // CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize)
  cuMemAlloc_v2: { parameters: ["buffer", "usize"], result: "i32" },
  // CUresult cuMemFree_v2(CUdeviceptr dptr)
  cuMemFree_v2: { parameters: ["u64"], result: "i32" },
  // CUresult cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream hStream)
  cuMemAllocAsync: { parameters: ["buffer", "usize", "pointer"], result: "i32" },
  // CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream hStream)
  cuMemFreeAsync: { parameters: ["u64", "pointer"], result: "i32" },
  // CUresult cuMemGetInfo_v2(size_t *free, size_t *total)
  cuMemGetInfo_v2: { parameters: ["buffer", "buffer"], result: "i32" },
  // CUresult cuMemcpyHtoD_v2(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount)
  cuMemcpyHtoD_v2: { parameters: ["u64", "buffer", "usize"], result: "i32" },
  // CUresult cuMemcpyDtoH_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount)
  cuMemcpyDtoH_v2: { parameters: ["buffer", "u64", "usize"], result: "i32" },
  // CUresult cuMemcpyDtoD_v2(CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount)
  cuMemcpyDtoD_v2: { parameters: ["u64", "u64", "usize"], result: "i32" },
  // CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount,
  //                               CUstream hStream)
  cuMemcpyHtoDAsync_v2: { parameters: ["u64", "buffer", "usize", "pointer"], result: "i32" },
  // CUresult cuMemcpyDtoHAsync_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount,
  //                               CUstream hStream)
  cuMemcpyDtoHAsync_v2: { parameters: ["buffer", "u64", "usize", "pointer"], result: "i32" },
  // CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dstDevice, CUdeviceptr srcDevice,
  //                               size_t ByteCount, CUstream hStream)
  cuMemcpyDtoDAsync_v2: { parameters: ["u64", "u64", "usize", "pointer"], result: "i32" },
  // CUresult cuMemsetD8_v2(CUdeviceptr dstDevice, unsigned char uc, size_t N)
  cuMemsetD8_v2: { parameters: ["u64", "u8", "usize"], result: "i32" },
  // CUresult cuMemsetD32_v2(CUdeviceptr dstDevice, unsigned int ui, size_t N)
  cuMemsetD32_v2: { parameters: ["u64", "u32", "usize"], result: "i32" },
  // CUresult cuMemsetD32Async(CUdeviceptr dstDevice, unsigned int ui, size_t N, CUstream hStream)
  cuMemsetD32Async: { parameters: ["u64", "u32", "usize", "pointer"], result: "i32" },
  // CUresult cuMemHostAlloc(void **pp, size_t bytesize, unsigned int Flags)
  cuMemHostAlloc: { parameters: ["buffer", "usize", "u32"], result: "i32" },
  // CUresult cuMemFreeHost(void *p)
  cuMemFreeHost: { parameters: ["pointer"], result: "i32" },
  // CUresult cuStreamCreate(CUstream *phStream, unsigned int Flags)
  cuStreamCreate: { parameters: ["buffer", "u32"], result: "i32" },
  // CUresult cuStreamDestroy_v2(CUstream hStream)
  cuStreamDestroy_v2: { parameters: ["pointer"], result: "i32" },
  // CUresult cuStreamSynchronize(CUstream hStream)
  cuStreamSynchronize: { parameters: ["pointer"], result: "i32" },
  // CUresult cuEventCreate(CUevent *phEvent, unsigned int Flags)
  cuEventCreate: { parameters: ["buffer", "u32"], result: "i32" },
  // CUresult cuEventRecord(CUevent hEvent, CUstream hStream)
  cuEventRecord: { parameters: ["pointer", "pointer"], result: "i32" },
  // CUresult cuEventSynchronize(CUevent hEvent)
  cuEventSynchronize: { parameters: ["pointer"], result: "i32" },
  // CUresult cuEventElapsedTime_v2(float *pMilliseconds, CUevent hStart, CUevent hEnd)
  // (CUDA 12.8 and later drivers)
  cuEventElapsedTime_v2: {
    parameters: ["buffer", "pointer", "pointer"],
    result: "i32",
    optional: true,
  },
  // CUresult cuEventElapsedTime(float *pMilliseconds, CUevent hStart, CUevent hEnd)
  cuEventElapsedTime: { parameters: ["buffer", "pointer", "pointer"], result: "i32" },
  // CUresult cuEventDestroy_v2(CUevent hEvent)
  cuEventDestroy_v2: { parameters: ["pointer"], result: "i32" },
  // CUresult cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode)
  cuStreamBeginCapture_v2: { parameters: ["pointer", "i32"], result: "i32" },
  // CUresult cuStreamEndCapture(CUstream hStream, CUgraph *phGraph)
  cuStreamEndCapture: { parameters: ["pointer", "buffer"], result: "i32" },
  // CUresult cuGraphInstantiateWithFlags(CUgraphExec *phGraphExec, CUgraph hGraph,
  //                                      unsigned long long flags)
  cuGraphInstantiateWithFlags: { parameters: ["buffer", "pointer", "u64"], result: "i32" },
  // CUresult cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream)
  cuGraphLaunch: { parameters: ["pointer", "pointer"], result: "i32" },
  // CUresult cuGraphExecDestroy(CUgraphExec hGraphExec)
  cuGraphExecDestroy: { parameters: ["pointer"], result: "i32" },
  // CUresult cuGraphDestroy(CUgraph hGraph)
  cuGraphDestroy: { parameters: ["pointer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The opened driver library's symbols. */
export type CudaSymbols = Deno.DynamicLibrary<typeof CUDA_SYMBOLS>["symbols"];

/** Driver API enum values used by the device. */
export const CU = {
  SUCCESS: 0,
  ERROR_INVALID_VALUE: 1,
  ERROR_OUT_OF_MEMORY: 2,
  ERROR_NOT_INITIALIZED: 3,
  ERROR_STUB_LIBRARY: 34,
  ERROR_INSUFFICIENT_DRIVER: 35,
  ERROR_NO_DEVICE: 100,
  ERROR_INVALID_PTX: 218,
  ERROR_UNSUPPORTED_PTX_VERSION: 222,
  ERROR_NOT_FOUND: 500,
  STREAM_NON_BLOCKING: 1,
  EVENT_DEFAULT: 0,
  EVENT_DISABLE_TIMING: 2,
  ATTRIBUTE_MULTIPROCESSOR_COUNT: 16,
  ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: 75,
  ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: 76,
  ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: 97,
} as const;

// Names of the codes most likely to be met before the library can name them itself.
const KNOWN_NAMES: Record<number, string> = {
  1: "CUDA_ERROR_INVALID_VALUE",
  2: "CUDA_ERROR_OUT_OF_MEMORY",
  3: "CUDA_ERROR_NOT_INITIALIZED",
  4: "CUDA_ERROR_DEINITIALIZED",
  34: "CUDA_ERROR_STUB_LIBRARY",
  35: "CUDA_ERROR_INSUFFICIENT_DRIVER",
  100: "CUDA_ERROR_NO_DEVICE",
  101: "CUDA_ERROR_INVALID_DEVICE",
  200: "CUDA_ERROR_INVALID_IMAGE",
  201: "CUDA_ERROR_INVALID_CONTEXT",
  218: "CUDA_ERROR_INVALID_PTX",
  222: "CUDA_ERROR_UNSUPPORTED_PTX_VERSION",
  400: "CUDA_ERROR_INVALID_HANDLE",
  500: "CUDA_ERROR_NOT_FOUND",
  700: "CUDA_ERROR_ILLEGAL_ADDRESS",
  701: "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES",
  719: "CUDA_ERROR_LAUNCH_FAILED",
  999: "CUDA_ERROR_UNKNOWN",
};

/**
 * A failed driver API call: the `CUresult`, the driver's own name and description of it, and the
 * call that failed (see {@linkcode NvidiaError}).
 *
 * @example
 * ```ts
 * import { CudaError } from "@eql/eql/cuda";
 * const e = new CudaError("cuInit", 100, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected");
 * e.message; // "cuInit failed: CUDA_ERROR_NO_DEVICE (100): no CUDA-capable device is detected"
 * ```
 */
export class CudaError extends NvidiaError {}

let lib: Deno.DynamicLibrary<typeof CUDA_SYMBOLS> | undefined;

/**
 * The driver library, opened on first use and kept for the life of the process.
 *
 * @returns Its symbols.
 * @throws {LibraryNotFoundError} When `libcuda.so.1` cannot be found.
 *
 * @example
 * ```ts ignore
 * import { cuda, checkCuda } from "./cuda.ts";
 * checkCuda(cuda().cuInit(0), "cuInit");
 * ```
 */
export function cuda(): CudaSymbols {
  lib ??= openNvidiaLibrary("driver", CUDA_SYMBOLS);
  return lib.symbols;
}

/**
 * Reads a NUL-terminated C string through a pointer stored in an out-parameter slot.
 *
 * @param slot The `BigUint64Array(1)` the library wrote a `const char*` into.
 * @returns The string, or "" for a null pointer.
 */
export function cStringAt(slot: BigUint64Array): string {
  const p = Deno.UnsafePointer.create(slot[0]);
  return p === null ? "" : Deno.UnsafePointerView.getCString(p);
}

/**
 * Turns a `CUresult` into a description of it, using the driver's own names where it can.
 *
 * @param code The status.
 * @returns The name and the description.
 */
export function describeCuResult(code: number): { name: string; description: string } {
  const slot = new BigUint64Array(1);
  let name = KNOWN_NAMES[code] ?? `CUresult ${code}`;
  let description = "(no description available)";
  if (lib) {
    if (lib.symbols.cuGetErrorName(code, slot) === 0 && slot[0] !== 0n) name = cStringAt(slot);
    slot[0] = 0n;
    if (lib.symbols.cuGetErrorString(code, slot) === 0 && slot[0] !== 0n) {
      description = cStringAt(slot);
    }
  }
  return { name, description };
}

/**
 * Throws a {@linkcode CudaError} unless `status` is `CUDA_SUCCESS`: the one check of every driver
 * result.
 *
 * @param status The `CUresult` a call returned.
 * @param call The call, for the message (add arguments that help, e.g. sizes).
 * @throws {CudaError} When `status` is not 0.
 *
 * @example
 * ```ts
 * import { checkCuda } from "./cuda.ts";
 * checkCuda(0, "cuInit"); // returns quietly
 * ```
 */
export function checkCuda(status: number, call: string): void {
  if (status === 0) return;
  const { name, description } = describeCuResult(status);
  throw new CudaError(call, status, name, description);
}

/**
 * Reads a handle (`CUcontext`, `CUstream`, ...) that a call wrote into an out-parameter slot.
 *
 * @param slot The `BigUint64Array(1)` passed as the out-parameter.
 * @param what What the handle is, for the error when the library left it null.
 * @returns The handle as a pointer object.
 * @throws {Error} When the slot holds a null pointer.
 */
export function handleFrom(slot: BigUint64Array, what: string): Deno.PointerObject {
  const p = Deno.UnsafePointer.create(slot[0]);
  if (p === null) throw new Error(`${what}: the library returned a null handle`);
  return p;
}
