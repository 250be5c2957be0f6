/**
 * The CUDA device's context: the driver (`cuInit`), one GPU and its primary context (retained and
 * made current; cuBLAS and cuDNN use the primary context too), the one non-blocking stream that
 * every operation is queued on, the cuBLAS and cuDNN handles bound to that stream, and the
 * project's PTX module (`_launcher.ts`). It owns no device memory: buffers live in `buffers.ts`.
 *
 * Every driver result goes through `checkCuda`; a failure while opening releases what was already
 * taken before the error propagates.
 *
 * @module
 */

import { checkCuda, CU, cuda, type CudaSymbols, handleFrom } from "../../../ffi/cuda.ts";
import {
  checkCublas,
  CUBLAS,
  cublas,
  type CublasSymbols,
  cublasVersion,
} from "../../../ffi/cublas.ts";
import { checkCudnn, cudnn, type CudnnSymbols, cudnnVersion } from "../../../ffi/cudnn.ts";
import { PtxLauncher } from "./_launcher.ts";

/** What {@linkcode CudaContext} opens. */
export interface CudaContextOptions {
  /** Which GPU. */
  ordinal: number;
  /** Let cuBLAS use TF32 tensor cores. */
  tf32: boolean;
  /** The PTX module to load. */
  ptx: string;
}

/** Free and total memory of the GPU, in bytes, as the driver reports them. */
export interface CudaMemoryInfo {
  /** Free bytes on the GPU (all processes). */
  free: number;
  /** Total bytes on the GPU. */
  total: number;
}

// The context current on this thread (by address), so that a device switches only when another
// GPU's device ran last.
let currentContext = 0n;

/**
 * Runs every step even when some throw, then throws the first error (teardown).
 *
 * @param steps The steps, in order; `undefined` entries are skipped.
 * @throws The first error a step threw.
 *
 * @example
 * ```ts
 * import { runAll } from "./context.ts";
 * const done: number[] = [];
 * try {
 *   runAll([() => done.push(1), () => { throw new Error("x"); }, () => done.push(3)]);
 * } catch {
 *   // done: [1, 3]
 * }
 * ```
 */
export function runAll(steps: readonly ((() => unknown) | undefined)[]): void {
  const errors: unknown[] = [];
  for (const step of steps) {
    if (!step) continue;
    try {
      step();
    } catch (e) {
      errors.push(e);
    }
  }
  if (errors.length > 0) throw errors[0];
}

/**
 * One GPU's driver context, stream, library handles and kernel module.
 *
 * @example
 * ```ts ignore
 * import { CudaContext } from "./context.ts";
 * import { PTX } from "../../../ffi/kernels/ptx.ts";
 * const ctx = new CudaContext({ ordinal: 0, tf32: false, ptx: PTX });
 * ctx.enter();
 * ctx.waitStream();
 * ctx.dispose();
 * ```
 */
export class CudaContext {
  /** The driver's symbols. */
  readonly cu: CudaSymbols;
  /** The GPU ordinal. */
  readonly ordinal: number;
  /** The GPU's name, e.g. "NVIDIA H100 80GB HBM3". */
  readonly name: string;
  /** Compute capability, e.g. [9, 0]. */
  readonly computeCapability: readonly [number, number];
  /** Number of streaming multiprocessors. */
  readonly multiprocessors: number;
  /** The library versions, e.g. "cuBLAS 13.1.0, cuDNN 9.14.0". */
  readonly versions: string;

  #dev: number;
  #ctxRetained = false;
  #ctx?: Deno.PointerObject;
  #ctxAddress = 0n;
  #stream?: Deno.PointerObject;
  #blas?: CublasSymbols;
  #blasHandle?: Deno.PointerObject;
  #dnn?: CudnnSymbols;
  #dnnHandle?: Deno.PointerObject;
  #launcher?: PtxLauncher;
  #disposed = false;
  #slot = new BigUint64Array(1);
  #int = new Int32Array(1);

  /**
   * Opens the GPU: driver, primary context, stream, cuBLAS, cuDNN and the kernel module.
   *
   * @param options Ordinal, TF32 and the PTX.
   * @throws {LibraryNotFoundError} When the driver, cuBLAS or cuDNN cannot be loaded.
   * @throws {CudaError} When there is no GPU (`CUDA_ERROR_NO_DEVICE`) or the driver refuses a step.
   * @throws {CublasError} / {CudnnError} When a library handle cannot be created.
   */
  constructor(options: CudaContextOptions) {
    const { ordinal, tf32, ptx } = options;
    this.ordinal = ordinal;
    const cu = this.cu = cuda();
    checkCuda(cu.cuInit(0), "cuInit");
    checkCuda(cu.cuDeviceGetCount(this.#int), "cuDeviceGetCount");
    const devices = this.#int[0];
    if (devices === 0) checkCuda(CU.ERROR_NO_DEVICE, "cuDeviceGetCount (0 devices)");
    if (ordinal >= devices) {
      throw new RangeError(
        `ordinal must be below the number of GPUs (${devices}), got ${ordinal}`,
      );
    }
    checkCuda(cu.cuDeviceGet(this.#int, ordinal), `cuDeviceGet(${ordinal})`);
    this.#dev = this.#int[0];
    const nameBytes = new Uint8Array(256);
    checkCuda(cu.cuDeviceGetName(nameBytes, nameBytes.length, this.#dev), "cuDeviceGetName");
    this.name = new TextDecoder().decode(nameBytes.subarray(0, nameBytes.indexOf(0)));
    this.computeCapability = [
      this.#attribute(CU.ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR),
      this.#attribute(CU.ATTRIBUTE_COMPUTE_CAPABILITY_MINOR),
    ];
    this.multiprocessors = this.#attribute(CU.ATTRIBUTE_MULTIPROCESSOR_COUNT);

    try {
      checkCuda(
        cu.cuDevicePrimaryCtxRetain(this.#slot, this.#dev),
        `cuDevicePrimaryCtxRetain(${ordinal})`,
      );
      this.#ctxRetained = true;
      const ctx = this.#ctx = handleFrom(this.#slot, "cuDevicePrimaryCtxRetain");
      this.#ctxAddress = Deno.UnsafePointer.value(ctx);
      checkCuda(cu.cuCtxSetCurrent(ctx), "cuCtxSetCurrent");
      currentContext = this.#ctxAddress;
      checkCuda(cu.cuStreamCreate(this.#slot, CU.STREAM_NON_BLOCKING), "cuStreamCreate");
      const stream = this.#stream = handleFrom(this.#slot, "cuStreamCreate");

      // cuBLAS before cuDNN: cuDNN finds the already loaded cuBLAS by its SONAME.
      const blas = this.#blas = cublas();
      checkCublas(blas.cublasCreate_v2(this.#slot), "cublasCreate_v2");
      const blasHandle = this.#blasHandle = handleFrom(this.#slot, "cublasCreate_v2");
      checkCublas(blas.cublasSetStream_v2(blasHandle, stream), "cublasSetStream_v2");
      const math = tf32 ? CUBLAS.TF32_TENSOR_OP_MATH : CUBLAS.DEFAULT_MATH;
      checkCublas(blas.cublasSetMathMode(blasHandle, math), `cublasSetMathMode(${math})`);

      const dnn = this.#dnn = cudnn();
      checkCudnn(dnn.cudnnCreate(this.#slot), "cudnnCreate");
      const dnnHandle = this.#dnnHandle = handleFrom(this.#slot, "cudnnCreate");
      checkCudnn(dnn.cudnnSetStream(dnnHandle, stream), "cudnnSetStream");

      this.#launcher = new PtxLauncher(cu, ptx, stream);
      this.versions = `cuBLAS ${cublasVersion() ?? "13"}, cuDNN ${cudnnVersion()}`;
    } catch (e) {
      this.#disposed = true;
      this.#teardown();
      throw e;
    }
  }

  #attribute(attr: number): number {
    checkCuda(
      this.cu.cuDeviceGetAttribute(this.#int, attr, this.#dev),
      `cuDeviceGetAttribute(${attr})`,
    );
    return this.#int[0];
  }

  /** True once `dispose()` has run. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /** The stream every operation is queued on. */
  get stream(): Deno.PointerObject {
    return this.#stream!;
  }

  /** cuBLAS's symbols. */
  get blas(): CublasSymbols {
    return this.#blas!;
  }

  /** The cuBLAS handle (bound to the stream). */
  get blasHandle(): Deno.PointerObject {
    return this.#blasHandle!;
  }

  /** cuDNN's symbols. */
  get dnn(): CudnnSymbols {
    return this.#dnn!;
  }

  /** The cuDNN handle (bound to the stream). */
  get dnnHandle(): Deno.PointerObject {
    return this.#dnnHandle!;
  }

  /** The project's PTX module, launching on the stream. */
  get launcher(): PtxLauncher {
    return this.#launcher!;
  }

  /**
   * Makes this context current on the calling thread (when another device's was).
   *
   * @throws {Error} When the context has been disposed.
   */
  enter(): void {
    if (this.#disposed) throw new Error("The CUDA device has been disposed");
    if (currentContext !== this.#ctxAddress) {
      checkCuda(this.cu.cuCtxSetCurrent(this.#ctx!), "cuCtxSetCurrent");
      currentContext = this.#ctxAddress;
    }
  }

  /** Waits until every operation queued on the stream has finished. */
  waitStream(): void {
    checkCuda(this.cu.cuStreamSynchronize(this.#stream!), "cuStreamSynchronize");
  }

  /**
   * Queues a fill of `words` 32-bit words at `ptr` with `word`.
   *
   * @param ptr Device address.
   * @param word The bit pattern.
   * @param words How many words (0: nothing is queued).
   */
  memset(ptr: bigint, word: number, words: number): void {
    if (words === 0) return;
    checkCuda(
      this.cu.cuMemsetD32Async(ptr, word, BigInt(words), this.#stream!),
      `cuMemsetD32Async(${words} words)`,
    );
  }

  /**
   * Free and total GPU memory as the driver sees it (all processes).
   *
   * @returns Bytes free and total.
   */
  memoryInfo(): CudaMemoryInfo {
    const free = new BigUint64Array(1), total = new BigUint64Array(1);
    checkCuda(this.cu.cuMemGetInfo_v2(free, total), "cuMemGetInfo_v2");
    return { free: Number(free[0]), total: Number(total[0]) };
  }

  /**
   * Releases everything: after waiting for the stream, `releaseFirst` (the owner's memory and
   * descriptors), then the kernel module, the library handles, the stream and the context
   * reference. Safe to call twice.
   *
   * @param releaseFirst What must go while the context and stream still exist.
   */
  dispose(releaseFirst?: () => void): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#teardown(releaseFirst);
  }

  #teardown(releaseFirst?: () => void): void {
    const cu = this.cu;
    if (this.#ctx && currentContext !== this.#ctxAddress) {
      try {
        checkCuda(cu.cuCtxSetCurrent(this.#ctx), "cuCtxSetCurrent");
        currentContext = this.#ctxAddress;
      } catch {
        // Teardown goes on; the calls below report what fails.
      }
    }
    const stream = this.#stream, launcher = this.#launcher;
    const blasHandle = this.#blasHandle, dnnHandle = this.#dnnHandle;
    const retained = this.#ctxRetained;
    try {
      runAll([
        stream && (() => this.#waitOn(stream)),
        releaseFirst,
        launcher && (() => launcher.dispose()),
        dnnHandle && (() => checkCudnn(this.#dnn!.cudnnDestroy(dnnHandle), "cudnnDestroy")),
        blasHandle &&
        (() => checkCublas(this.#blas!.cublasDestroy_v2(blasHandle), "cublasDestroy_v2")),
        stream && (() => checkCuda(cu.cuStreamDestroy_v2(stream), "cuStreamDestroy_v2")),
        retained
          ? () =>
            checkCuda(cu.cuDevicePrimaryCtxRelease_v2(this.#dev), "cuDevicePrimaryCtxRelease_v2")
          : undefined,
      ]);
    } finally {
      this.#launcher =
        this.#dnnHandle =
        this.#blasHandle =
        this.#stream =
          undefined;
      this.#ctxRetained = false;
      this.#ctx = undefined;
    }
  }

  #waitOn(stream: Deno.PointerObject): void {
    checkCuda(this.cu.cuStreamSynchronize(stream), "cuStreamSynchronize");
  }
}
