/**
 * Typed bindings to cuBLAS 13 (`libcublas.so.13`, which loads `libcublasLt.so.13` from its own
 * folder), the status check that turns a `cublasStatus_t` into a {@linkcode CublasError}, and the
 * enum values the device uses.
 *
 * The `_v2` names are bound: the unsuffixed `cublasSgemm` is the legacy handle-less API with a
 * different signature. Device pointers (`float*` in device memory) are `"u64"` (pass a bigint);
 * `alpha` / `beta` are host pointers (`"buffer"`: a `Float32Array(1)`) in the default
 * `CUBLAS_POINTER_MODE_HOST`.
 *
 * The library is found by `ffi/nvidia_paths.ts` (override: `EQL_CUBLAS_PATH`).
 *
 * @module
 */

import { NvidiaError } from "./nvidia_error.ts";
import { openNvidiaLibrary } from "./nvidia_paths.ts";

/** cuBLAS symbol table. Every result is a `cublasStatus_t` (0 = success) unless noted. */
export const CUBLAS_SYMBOLS = {
  // cublasStatus_t cublasCreate_v2(cublasHandle_t* handle)
  cublasCreate_v2: { parameters: ["buffer"], result: "i32" },
  // cublasStatus_t cublasDestroy_v2(cublasHandle_t handle)
  cublasDestroy_v2: { parameters: ["pointer"], result: "i32" },
  // cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t streamId)
  cublasSetStream_v2: { parameters: ["pointer", "pointer"], result: "i32" },
  // cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode)
  cublasSetMathMode: { parameters: ["pointer", "i32"], result: "i32" },
  // cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t handle, void* workspace,
  //                                      size_t workspaceSizeInBytes)   (workspace: device memory)
  cublasSetWorkspace_v2: { parameters: ["pointer", "u64", "usize"], result: "i32" },
  // cublasStatus_t cublasSetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t mode)
  cublasSetPointerMode_v2: { parameters: ["pointer", "i32"], result: "i32" },
  // cublasStatus_t cublasSgemm_v2(cublasHandle_t handle, cublasOperation_t transa,
  //   cublasOperation_t transb, int m, int n, int k, const float* alpha (host),
  //   const float* A, int lda, const float* B, int ldb, const float* beta (host),
  //   float* C, int ldc)
  cublasSgemm_v2: {
    parameters: [
      "pointer", // cublasHandle_t handle
      "i32", // cublasOperation_t transa
      "i32", // cublasOperation_t transb
      "i32", // int m
      "i32", // int n
      "i32", // int k
      "buffer", // const float* alpha (host)
      "u64", // const float* A (device)
      "i32", // int lda
      "u64", // const float* B (device)
      "i32", // int ldb
      "buffer", // const float* beta (host)
      "u64", // float* C (device)
      "i32", // int ldc
    ],
    result: "i32",
  },
  // cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa,
  //   cublasOperation_t transb, int m, int n, int k, const float* alpha, const float* A, int lda,
  //   long long int strideA, const float* B, int ldb, long long int strideB, const float* beta,
  //   float* C, int ldc, long long int strideC, int batchCount)
  cublasSgemmStridedBatched: {
    parameters: [
      "pointer", // cublasHandle_t handle
      "i32", // cublasOperation_t transa
      "i32", // cublasOperation_t transb
      "i32", // int m
      "i32", // int n
      "i32", // int k
      "buffer", // const float* alpha (host)
      "u64", // const float* A (device)
      "i32", // int lda
      "i64", // long long int strideA
      "u64", // const float* B (device)
      "i32", // int ldb
      "i64", // long long int strideB
      "buffer", // const float* beta (host)
      "u64", // float* C (device)
      "i32", // int ldc
      "i64", // long long int strideC
      "i32", // int batchCount
    ],
    result: "i32",
  },
  // cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa,
  //   cublasOperation_t transb, int m, int n, int k, const void* alpha, const void* A,
  //   cudaDataType Atype, int lda, const void* B, cudaDataType Btype, int ldb, const void* beta,
  //   void* C, cudaDataType Ctype, int ldc, cublasComputeType_t computeType,
  //   cublasGemmAlgo_t algo)
  cublasGemmEx: {
    parameters: [
      "pointer", // cublasHandle_t handle
      "i32", // cublasOperation_t transa
      "i32", // cublasOperation_t transb
      "i32", // int m
      "i32", // int n
      "i32", // int k
      "buffer", // const void* alpha (host, of the compute type's scale type)
      "u64", // const void* A (device)
      "i32", // cudaDataType Atype
      "i32", // int lda
      "u64", // const void* B (device)
      "i32", // cudaDataType Btype
      "i32", // int ldb
      "buffer", // const void* beta (host)
      "u64", // void* C (device)
      "i32", // cudaDataType Ctype
      "i32", // int ldc
      "i32", // cublasComputeType_t computeType
      "i32", // cublasGemmAlgo_t algo
    ],
    result: "i32",
  },
  // const char* cublasGetStatusString(cublasStatus_t status)
  cublasGetStatusString: { parameters: ["i32"], result: "pointer" },
  // const char* cublasGetStatusName(cublasStatus_t status)
  cublasGetStatusName: { parameters: ["i32"], result: "pointer", optional: true },
  // cublasStatus_t cublasGetProperty(libraryPropertyType type, int* value)
  cublasGetProperty: { parameters: ["i32", "buffer"], result: "i32", optional: true },
} as const satisfies Deno.ForeignLibraryInterface;

/** The opened cuBLAS library's symbols. */
export type CublasSymbols = Deno.DynamicLibrary<typeof CUBLAS_SYMBOLS>["symbols"];

/** cuBLAS and CUDA data-type enum values used by the device. */
export const CUBLAS = {
  STATUS_SUCCESS: 0,
  OP_N: 0,
  OP_T: 1,
  DEFAULT_MATH: 0,
  PEDANTIC_MATH: 2,
  TF32_TENSOR_OP_MATH: 3,
  POINTER_MODE_HOST: 0,
  R_32F: 0,
  R_16F: 2,
  R_16BF: 14,
  COMPUTE_32F: 68,
  COMPUTE_32F_FAST_TF32: 77,
  GEMM_DEFAULT: -1,
  PROPERTY_MAJOR: 0,
  PROPERTY_MINOR: 1,
  PROPERTY_PATCH: 2,
} as const;

const STATUS_NAMES: Record<number, string> = {
  0: "CUBLAS_STATUS_SUCCESS",
  1: "CUBLAS_STATUS_NOT_INITIALIZED",
  3: "CUBLAS_STATUS_ALLOC_FAILED",
  7: "CUBLAS_STATUS_INVALID_VALUE",
  8: "CUBLAS_STATUS_ARCH_MISMATCH",
  11: "CUBLAS_STATUS_MAPPING_ERROR",
  13: "CUBLAS_STATUS_EXECUTION_FAILED",
  14: "CUBLAS_STATUS_INTERNAL_ERROR",
  15: "CUBLAS_STATUS_NOT_SUPPORTED",
  16: "CUBLAS_STATUS_LICENSE_ERROR",
};

/**
 * A failed cuBLAS call: the status, its name, cuBLAS's description and the call (see
 * {@linkcode NvidiaError}).
 *
 * @example
 * ```ts
 * import { CublasError } from "@eql/eql/cuda";
 * const e = new CublasError("cublasSgemm_v2", 7, "CUBLAS_STATUS_INVALID_VALUE", "an invalid value was used as an argument");
 * e.code; // 7
 * ```
 */
export class CublasError extends NvidiaError {}

let lib: Deno.DynamicLibrary<typeof CUBLAS_SYMBOLS> | undefined;

/**
 * cuBLAS, opened on first use and kept for the life of the process.
 *
 * @returns Its symbols.
 * @throws {LibraryNotFoundError} When `libcublas.so.13` cannot be found or loaded.
 *
 * @example
 * ```ts ignore
 * import { cublas, checkCublas } from "./cublas.ts";
 * const slot = new BigUint64Array(1);
 * checkCublas(cublas().cublasCreate_v2(slot), "cublasCreate_v2");
 * ```
 */
export function cublas(): CublasSymbols {
  lib ??= openNvidiaLibrary("cublas", CUBLAS_SYMBOLS);
  return lib.symbols;
}

function cString(p: Deno.PointerValue): string {
  return p === null ? "" : Deno.UnsafePointerView.getCString(p);
}

/**
 * Throws a {@linkcode CublasError} unless `status` is `CUBLAS_STATUS_SUCCESS`.
 *
 * @param status The status a call returned.
 * @param call The call, for the message.
 * @throws {CublasError} When `status` is not 0.
 *
 * @example
 * ```ts
 * import { checkCublas } from "./cublas.ts";
 * checkCublas(0, "cublasCreate_v2"); // returns quietly
 * ```
 */
export function checkCublas(status: number, call: string): void {
  if (status === 0) return;
  let name = STATUS_NAMES[status] ?? `cublasStatus_t ${status}`;
  let description = "(no description available)";
  if (lib) {
    const n = lib.symbols.cublasGetStatusName
      ? cString(lib.symbols.cublasGetStatusName(status))
      : "";
    if (n) name = n;
    description = cString(lib.symbols.cublasGetStatusString(status)) || description;
  }
  throw new CublasError(call, status, name, description);
}

/**
 * The cuBLAS version as "major.minor.patch", or undefined when the library cannot say.
 *
 * @returns The version string.
 *
 * @example
 * ```ts ignore
 * import { cublasVersion } from "./cublas.ts";
 * cublasVersion(); // e.g. "13.1.0"
 * ```
 */
export function cublasVersion(): string | undefined {
  const get = cublas().cublasGetProperty;
  if (!get) return undefined;
  const v = new Int32Array(1);
  const parts: number[] = [];
  for (const p of [CUBLAS.PROPERTY_MAJOR, CUBLAS.PROPERTY_MINOR, CUBLAS.PROPERTY_PATCH]) {
    if (get(p, v) !== 0) return undefined;
    parts.push(v[0]);
  }
  return parts.join(".");
}
