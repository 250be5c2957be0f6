/**
 * The one error type of the NVIDIA bindings: a native call that returned a failure status. The
 * driver API, cuBLAS and cuDNN each subclass it (`CudaError`, `CublasError`, `CudnnError`) only to
 * be told apart; every one carries the call that failed, the status code, the library's own name
 * for it and the library's description of it, and builds its message the same way.
 *
 * @module
 */

/**
 * A failed call into an NVIDIA library.
 *
 * @example
 * ```ts
 * import { NvidiaError } from "@eql/eql/cuda";
 * const e = new NvidiaError("cuInit", 100, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected");
 * e.message; // "cuInit failed: CUDA_ERROR_NO_DEVICE (100): no CUDA-capable device is detected"
 * ```
 */
export class NvidiaError extends Error {
  /** The call that failed, with any detail worth reporting, e.g. "cuMemAlloc_v2(4096 bytes)". */
  readonly call: string;
  /** The status the call returned. */
  readonly code: number;
  /** The library's name for the status, e.g. "CUDA_ERROR_OUT_OF_MEMORY". */
  readonly errorName: string;
  /** The library's description of the status ("" when it gives none). */
  readonly description: string;

  /**
   * Builds the error; `name` is the subclass's name.
   *
   * @param call The call that failed.
   * @param code The status.
   * @param errorName The library's name for it.
   * @param description The library's description of it (may be empty).
   */
  constructor(call: string, code: number, errorName: string, description: string) {
    super(`${call} failed: ${errorName} (${code})${description ? `: ${description}` : ""}`);
    this.name = new.target.name;
    this.call = call;
    this.code = code;
    this.errorName = errorName;
    this.description = description;
  }
}
