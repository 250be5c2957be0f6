/**
 * The CUDA device: the device contract on one NVIDIA GPU through the driver API, cuBLAS and cuDNN
 * (typed bindings in `ffi/`), with the project's own kernels (`ffi/kernels/`, launched through
 * `src/device/cuda/kernels.ts`) for everything the libraries do not cover.
 *
 * - Context: `cuInit`, the device's primary context (retained and made current; cuBLAS and cuDNN
 *   use the primary context too) and one non-blocking stream that every operation, cuBLAS and
 *   cuDNN included, is queued on. Operations are asynchronous; `download` and `sync` wait.
 * - Memory: a caching allocator over `cuMemAlloc_v2` (`src/device/cuda/allocator.ts`); new buffers
 *   are zero-filled on the stream; `dispose()` returns everything to the driver.
 * - GEMM: `cublasSgemm_v2` with the row-major mapping of `src/device/cuda/gemm.ts`; FP32 unless
 *   the device was created with `tf32: true`.
 * - Convolution and batch-norm: cuDNN (`src/device/cuda/conv.ts`, `src/device/cuda/batchnorm.ts`).
 * - Everything else: the project's kernels.
 *
 * Every argument is checked before anything is queued (a bad pointer or size on the GPU would
 * poison the context); native failures are `CudaError`, `CublasError` or `CudnnError`. Errors of
 * queued work surface at the next waiting call (`download`, `sync`).
 *
 * @module
 */

import { checkCuda, CU, cuda, type CudaSymbols, handleFrom } from "../../ffi/cuda.ts";
import {
  checkCublas,
  CUBLAS,
  cublas,
  type CublasSymbols,
  cublasVersion,
} from "../../ffi/cublas.ts";
import { checkCudnn, cudnn, type CudnnSymbols, cudnnVersion } from "../../ffi/cudnn.ts";
import { PTX } from "../../ffi/kernels/ptx.ts";
import type {
  BatchNormShape,
  Conv2dShape,
  Device,
  DeviceBuffer,
  DType,
  SgdParams,
  SigmoidLossParams,
  SoftmaxLossParams,
} from "./device.ts";
import type { KernelArg, KernelLauncher } from "./cuda/launch.ts";
import { type AllocatorStats, CachingAllocator } from "./cuda/allocator.ts";
import { PtxLauncher } from "./cuda/launcher.ts";
import { CublasGemm } from "./cuda/gemm.ts";
import { CudnnConvolutions } from "./cuda/conv.ts";
import { CudnnBatchNorm } from "./cuda/batchnorm.ts";
import { CudaTimer } from "./cuda/timer.ts";
import * as k from "./cuda/kernels.ts";

export type {
  BatchNormShape,
  Conv2dShape,
  Device,
  DeviceBuffer,
  DType,
  SgdParams,
  SigmoidLossParams,
  SoftmaxLossParams,
} from "./device.ts";
export type { KernelArg, KernelLauncher } from "./cuda/launch.ts";
export type { AllocatorStats } from "./cuda/allocator.ts";
export type { CudaTimer } from "./cuda/timer.ts";

/** Largest element count one buffer or operation may address (int32 sizes in cuDNN/cuBLAS). */
const MAX_ELEMENTS = 2 ** 31 - 1;

/** Options of {@linkcode CudaDevice}. */
export interface CudaDeviceOptions {
  /** Which GPU (default 0). */
  ordinal?: number;
  /**
   * Let GEMM and convolutions use TF32 tensor cores (about 1e-3 relative error; default false:
   * plain FP32).
   */
  tf32?: boolean;
  /** Largest workspace a cuDNN convolution algorithm may use, in bytes (default 1 GiB). */
  maxWorkspaceBytes?: number;
  /** PTX to load instead of the project's generated module (for tests of the loader). */
  ptx?: string;
}

/** Free and total memory of the GPU, in bytes, as the driver reports them. */
export interface CudaMemoryInfo {
  /** Free bytes on the GPU (all processes). */
  free: number;
  /** Total bytes on the GPU. */
  total: number;
}

/** A CUDA buffer: device memory holding `length` elements of `dtype`. */
export class CudaBuffer implements DeviceBuffer {
  /** The owning device. */
  readonly device: CudaDevice;
  /** Element type. */
  readonly dtype: DType;
  /** Number of elements. */
  readonly length: number;
  #ptr: bigint;
  #freed = false;

  /**
   * Wraps an allocation (made by {@linkcode CudaDevice.alloc}).
   *
   * @param device The owner.
   * @param dtype Element type.
   * @param length Elements.
   * @param ptr Device address (0n for an empty buffer).
   */
  constructor(device: CudaDevice, dtype: DType, length: number, ptr: bigint) {
    this.device = device;
    this.dtype = dtype;
    this.length = length;
    this.#ptr = ptr;
  }

  /** The device address (0n for an empty buffer). */
  get ptr(): bigint {
    if (this.#freed) throw new Error("The buffer has been freed");
    return this.#ptr;
  }

  /** True once freed. */
  get freed(): boolean {
    return this.#freed;
  }

  /** Marks the buffer freed and returns its address (for the allocator). */
  release(): bigint {
    if (this.#freed) throw new Error("The buffer has already been freed");
    this.#freed = true;
    const p = this.#ptr;
    this.#ptr = 0n;
    return p;
  }
}

function count(name: string, v: number, min = 0): number {
  if (!Number.isInteger(v) || v < min || v > MAX_ELEMENTS) {
    throw new RangeError(
      `${name} must be an integer in [${min}, ${MAX_ELEMENTS}], got ${v}`,
    );
  }
  return v;
}

function product(name: string, ...dims: number[]): number {
  let p = 1;
  for (const d of dims) p *= d;
  if (p > MAX_ELEMENTS) {
    throw new RangeError(`${name} has ${p} elements, more than the ${MAX_ELEMENTS} supported`);
  }
  return p;
}

function finite(name: string, v: number): number {
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new RangeError(`${name} must be a finite number, got ${v}`);
  }
  return v;
}

function u32(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new RangeError(`${name} must be an integer in [0, 4294967295], got ${v}`);
  }
  return v;
}

// The context current on this thread (by address), so that a device switches only when another
// GPU's device ran last.
let currentContext = 0n;

const f32Bits = new Float32Array(1);
const f32BitsU32 = new Uint32Array(f32Bits.buffer);

/**
 * The CUDA implementation of the device contract (and the kernel launcher of its PTX module).
 *
 * @example
 * ```ts ignore
 * import { CudaDevice } from "./cuda.ts";
 * const dev = new CudaDevice();
 * const a = dev.alloc("f32", 4);
 * dev.upload(a, new Float32Array([1, -2, 3, -4]));
 * dev.reluForward(a, a, 4);
 * const out = new Float32Array(4);
 * dev.download(a, out); // [1, 0, 3, 0]
 * dev.dispose();
 * ```
 */
export class CudaDevice implements Device, KernelLauncher {
  /** Always `"cuda"`. */
  readonly kind = "cuda" as const;
  /** Device memory: freed by `free`, or by a forgotten tensor's finalizer. */
  readonly collectsGarbage = false;
  /** The GPU ordinal. */
  readonly ordinal: number;
  /** Whether TF32 tensor cores are allowed in GEMM and convolutions. */
  readonly tf32: boolean;
  /** The GPU's name, e.g. "NVIDIA H100 80GB HBM3". */
  readonly name: string;
  /** Compute capability, e.g. [9, 0]. */
  readonly computeCapability: readonly [number, number];
  /** Number of streaming multiprocessors. */
  readonly multiprocessors: number;

  #cu: CudaSymbols;
  #blas?: CublasSymbols;
  #dnn?: CudnnSymbols;
  #dev: number;
  #ctxRetained = false;
  #ctx?: Deno.PointerObject;
  #ctxAddress = 0n;
  #stream?: Deno.PointerObject;
  #blasHandle?: Deno.PointerObject;
  #dnnHandle?: Deno.PointerObject;
  #allocator?: CachingAllocator;
  #launcher?: PtxLauncher;
  #gemm?: CublasGemm;
  #conv?: CudnnConvolutions;
  #bn?: CudnnBatchNorm;
  #versions = "";
  #disposed = false;
  #slot = new BigUint64Array(1);
  #int = new Int32Array(1);

  /**
   * Opens the GPU: driver, primary context, stream, cuBLAS, cuDNN and the kernel module.
   *
   * @param options Ordinal, TF32, workspace limit.
   * @throws {LibraryNotFoundError} When the driver, cuBLAS or cuDNN cannot be loaded.
   * @throws {CudaError} When there is no GPU (`CUDA_ERROR_NO_DEVICE`) or the driver refuses a step.
   * @throws {CublasError} / {CudnnError} When a library handle cannot be created.
   */
  constructor(options: CudaDeviceOptions = {}) {
    const ordinal = options.ordinal ?? 0;
    count("ordinal", ordinal);
    this.ordinal = ordinal;
    this.tf32 = options.tf32 ?? false;
    if (typeof this.tf32 !== "boolean") {
      throw new TypeError(`tf32 must be a boolean, got ${String(options.tf32)}`);
    }
    const maxWorkspaceBytes = options.maxWorkspaceBytes ?? 2 ** 30;
    if (!Number.isSafeInteger(maxWorkspaceBytes) || maxWorkspaceBytes < 0) {
      throw new RangeError(
        `maxWorkspaceBytes must be a non-negative integer, got ${maxWorkspaceBytes}`,
      );
    }

    const cu = this.#cu = cuda();
    checkCuda(cu.cuInit(0), "cuInit");
    checkCuda(cu.cuDeviceGetCount(this.#int), "cuDeviceGetCount");
    const devices = this.#int[0];
    if (devices === 0) {
      checkCuda(CU.ERROR_NO_DEVICE, "cuDeviceGetCount (0 devices)");
    }
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
      const allocator = this.#allocator = new CachingAllocator(cu, () => this.#waitStream());

      // cuBLAS before cuDNN: cuDNN finds the already loaded cuBLAS by its SONAME.
      const blas = this.#blas = cublas();
      checkCublas(blas.cublasCreate_v2(this.#slot), "cublasCreate_v2");
      const blasHandle = this.#blasHandle = handleFrom(this.#slot, "cublasCreate_v2");
      checkCublas(blas.cublasSetStream_v2(blasHandle, stream), "cublasSetStream_v2");
      const math = this.tf32 ? CUBLAS.TF32_TENSOR_OP_MATH : CUBLAS.DEFAULT_MATH;
      checkCublas(blas.cublasSetMathMode(blasHandle, math), `cublasSetMathMode(${math})`);

      const dnn = this.#dnn = cudnn();
      checkCudnn(dnn.cudnnCreate(this.#slot), "cudnnCreate");
      const dnnHandle = this.#dnnHandle = handleFrom(this.#slot, "cudnnCreate");
      checkCudnn(dnn.cudnnSetStream(dnnHandle, stream), "cudnnSetStream");

      this.#launcher = new PtxLauncher(cu, options.ptx ?? PTX, stream);
      this.#gemm = new CublasGemm(
        blas,
        blasHandle,
        allocator,
        (p, n) => this.#memset(p, 0x3f800000, n),
      );
      this.#conv = new CudnnConvolutions(dnn, dnnHandle, allocator, {
        tf32: this.tf32,
        maxWorkspaceBytes,
      });
      this.#bn = new CudnnBatchNorm(dnn, dnnHandle);
      this.#versions = `cuBLAS ${cublasVersion() ?? "13"}, cuDNN ${cudnnVersion()}`;
    } catch (e) {
      this.#teardown();
      throw e;
    }
  }

  #attribute(attr: number): number {
    checkCuda(
      this.#cu.cuDeviceGetAttribute(this.#int, attr, this.#dev),
      `cuDeviceGetAttribute(${attr})`,
    );
    return this.#int[0];
  }

  /** The GPU, its compute capability and the library versions. */
  get description(): string {
    const [maj, min] = this.computeCapability;
    return `CUDA ${this.name} (sm_${maj}${min}, ${this.multiprocessors} SMs, ${this.#versions}${
      this.tf32 ? ", TF32" : ", FP32"
    })`;
  }

  /** True once `dispose()` has run. */
  get disposed(): boolean {
    return this.#disposed;
  }

  #live(): void {
    if (this.#disposed) throw new Error("The CUDA device has been disposed");
    if (currentContext !== this.#ctxAddress) {
      checkCuda(this.#cu.cuCtxSetCurrent(this.#ctx!), "cuCtxSetCurrent");
      currentContext = this.#ctxAddress;
    }
  }

  #waitStream(): void {
    checkCuda(this.#cu.cuStreamSynchronize(this.#stream!), "cuStreamSynchronize");
  }

  #memset(ptr: bigint, word: number, words: number): void {
    if (words === 0) return;
    checkCuda(
      this.#cu.cuMemsetD32Async(ptr, word, BigInt(words), this.#stream!),
      `cuMemsetD32Async(${words} words)`,
    );
  }

  #mine(buf: DeviceBuffer, name: string): CudaBuffer {
    if (!(buf instanceof CudaBuffer) || buf.device !== this) {
      const kind = (buf as { device?: { kind?: string } } | null)?.device?.kind ?? typeof buf;
      throw new TypeError(
        `${name} must be a buffer of this CUDA device, got one of ${kind}${
          buf instanceof CudaBuffer ? " (another CUDA device)" : ""
        }`,
      );
    }
    return buf;
  }

  #own(buf: DeviceBuffer, name: string): CudaBuffer {
    const b = this.#mine(buf, name);
    if (b.freed) throw new Error(`${name} has been freed`);
    return b;
  }

  /** Checks dtype and size; returns the device address. */
  #ptr(buf: DeviceBuffer, name: string, dtype: DType, need: number): bigint {
    const b = this.#own(buf, name);
    if (b.dtype !== dtype) {
      throw new TypeError(`${name} must be an ${dtype} buffer, got ${b.dtype}`);
    }
    if (b.length < need) {
      throw new RangeError(`${name} must hold at least ${need} elements, got ${b.length}`);
    }
    return b.ptr;
  }

  #opt(buf: DeviceBuffer | undefined, name: string, dtype: DType, need: number): bigint {
    return buf === undefined ? 0n : this.#ptr(buf, name, dtype, need);
  }

  // ── memory ────────────────────────────────────────────────────────────────────────────────

  alloc(dtype: DType, length: number): DeviceBuffer {
    this.#live();
    if (dtype !== "f32" && dtype !== "i32") {
      throw new TypeError(`dtype must be "f32" or "i32", got ${String(dtype)}`);
    }
    count("length", length);
    if (length === 0) return new CudaBuffer(this, dtype, 0, 0n);
    const ptr = this.#allocator!.alloc(length * 4);
    this.#memset(ptr, 0, length);
    return new CudaBuffer(this, dtype, length, ptr);
  }

  free(buffer: DeviceBuffer): void {
    const b = this.#mine(buffer, "buffer");
    if (b.freed) throw new Error("The buffer has already been freed");
    const ptr = b.release();
    // After dispose() the memory already went back to the driver with everything else.
    if (this.#disposed || ptr === 0n) return;
    this.#bn!.forget(ptr);
    this.#allocator!.free(ptr);
  }

  upload(buffer: DeviceBuffer, data: Float32Array | Int32Array, offset = 0): void {
    this.#live();
    const b = this.#own(buffer, "buffer");
    if (!(b.dtype === "f32" ? data instanceof Float32Array : data instanceof Int32Array)) {
      throw new TypeError(
        `upload: a ${b.dtype} buffer needs ${
          b.dtype === "f32" ? "a Float32Array" : "an Int32Array"
        }`,
      );
    }
    this.#range("upload", b, offset, data.length);
    if (data.length === 0) return;
    checkCuda(
      this.#cu.cuMemcpyHtoDAsync_v2(
        b.ptr + BigInt(offset * 4),
        data,
        BigInt(data.length * 4),
        this.#stream!,
      ),
      `cuMemcpyHtoDAsync_v2(${data.length * 4} bytes)`,
    );
    // The source is pageable memory the caller may change right after: wait for the copy.
    this.#waitStream();
  }

  download(buffer: DeviceBuffer, out: Float32Array | Int32Array, offset = 0): void {
    this.#live();
    const b = this.#own(buffer, "buffer");
    if (!(b.dtype === "f32" ? out instanceof Float32Array : out instanceof Int32Array)) {
      throw new TypeError(
        `download: a ${b.dtype} buffer needs ${
          b.dtype === "f32" ? "a Float32Array" : "an Int32Array"
        }`,
      );
    }
    this.#range("download", b, offset, out.length);
    if (out.length > 0) {
      checkCuda(
        this.#cu.cuMemcpyDtoHAsync_v2(
          out,
          b.ptr + BigInt(offset * 4),
          BigInt(out.length * 4),
          this.#stream!,
        ),
        `cuMemcpyDtoHAsync_v2(${out.length * 4} bytes)`,
      );
    }
    this.#waitStream();
  }

  #range(what: string, b: CudaBuffer, offset: number, length: number): void {
    if (!Number.isInteger(offset) || offset < 0 || offset + length > b.length) {
      throw new RangeError(
        `${what}: range [${offset}, ${
          offset + length
        }) must lie inside the buffer of ${b.length} elements`,
      );
    }
  }

  copy(dst: DeviceBuffer, src: DeviceBuffer, length: number, dstOffset = 0, srcOffset = 0): void {
    this.#live();
    const d = this.#own(dst, "dst"), s = this.#own(src, "src");
    if (d.dtype !== s.dtype) throw new TypeError(`copy: dst is ${d.dtype} but src is ${s.dtype}`);
    count("length", length);
    this.#range("copy dst", d, dstOffset, length);
    this.#range("copy src", s, srcOffset, length);
    if (length === 0) return;
    checkCuda(
      this.#cu.cuMemcpyDtoDAsync_v2(
        d.ptr + BigInt(dstOffset * 4),
        s.ptr + BigInt(srcOffset * 4),
        BigInt(length * 4),
        this.#stream!,
      ),
      `cuMemcpyDtoDAsync_v2(${length * 4} bytes)`,
    );
  }

  fill(buffer: DeviceBuffer, value: number, length: number, offset = 0): void {
    this.#live();
    const b = this.#own(buffer, "buffer");
    count("length", length);
    this.#range("fill", b, offset, length);
    let word: number;
    if (b.dtype === "f32") {
      if (typeof value !== "number") throw new TypeError(`value must be a number, got ${value}`);
      f32Bits[0] = value;
      word = f32BitsU32[0];
    } else {
      if (!Number.isInteger(value) || value < -(2 ** 31) || value >= 2 ** 31) {
        throw new RangeError(`value must be an i32 integer for an i32 buffer, got ${value}`);
      }
      word = value >>> 0;
    }
    if (length === 0) return;
    this.#memset(b.ptr + BigInt(offset * 4), word, length);
  }

  sync(): void {
    this.#live();
    this.#waitStream();
  }

  /**
   * Releases everything: device memory (every buffer, live or cached), descriptors, the kernel
   * module, the library handles, the stream and the context reference. Safe to call twice.
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#teardown();
  }

  #teardown(): void {
    const cu = this.#cu;
    if (this.#ctx && currentContext !== this.#ctxAddress) {
      try {
        checkCuda(cu.cuCtxSetCurrent(this.#ctx), "cuCtxSetCurrent");
        currentContext = this.#ctxAddress;
      } catch {
        // Teardown goes on; the calls below report what fails.
      }
    }
    const errors: unknown[] = [];
    const step = (f: () => void) => {
      try {
        f();
      } catch (e) {
        errors.push(e);
      }
    };
    if (this.#stream) step(() => this.#waitStream());
    if (this.#gemm) step(() => this.#gemm!.dispose());
    if (this.#conv) step(() => this.#conv!.dispose());
    if (this.#bn) step(() => this.#bn!.dispose());
    if (this.#launcher) step(() => this.#launcher!.dispose());
    if (this.#allocator) step(() => this.#allocator!.releaseAll());
    if (this.#dnnHandle) {
      step(() => checkCudnn(this.#dnn!.cudnnDestroy(this.#dnnHandle!), "cudnnDestroy"));
    }
    if (this.#blasHandle) {
      step(() => checkCublas(this.#blas!.cublasDestroy_v2(this.#blasHandle!), "cublasDestroy_v2"));
    }
    if (this.#stream) {
      step(() => checkCuda(cu.cuStreamDestroy_v2(this.#stream!), "cuStreamDestroy_v2"));
    }
    if (this.#ctxRetained) {
      step(() =>
        checkCuda(cu.cuDevicePrimaryCtxRelease_v2(this.#dev), "cuDevicePrimaryCtxRelease_v2")
      );
    }
    this.#gemm =
      this.#conv =
      this.#bn =
      this.#launcher =
        undefined;
    this.#dnnHandle = this.#blasHandle = this.#stream = undefined;
    this.#ctxRetained = false;
    this.#ctx = undefined;
    if (errors.length > 0) throw errors[0];
  }

  /**
   * Free and total GPU memory as the driver sees it (all processes).
   *
   * @returns Bytes free and total.
   */
  memoryInfo(): CudaMemoryInfo {
    this.#live();
    const free = new BigUint64Array(1), total = new BigUint64Array(1);
    checkCuda(this.#cu.cuMemGetInfo_v2(free, total), "cuMemGetInfo_v2");
    return { free: Number(free[0]), total: Number(total[0]) };
  }

  /**
   * The caching allocator's counters.
   *
   * @returns Live, cached and reserved bytes and blocks, and call counts.
   */
  memoryStats(): AllocatorStats {
    this.#live();
    return this.#allocator!.stats();
  }

  /** Returns every cached (free) block to the driver. */
  emptyCache(): void {
    this.#live();
    this.#allocator!.emptyCache();
  }

  /**
   * A GPU timer on this device's stream (CUDA events).
   *
   * @returns A timer; dispose it when done.
   */
  createTimer(): CudaTimer {
    this.#live();
    return new CudaTimer(this.#cu, this.#stream!);
  }

  /**
   * The cuDNN algorithms chosen for a convolution geometry (those that have run).
   *
   * @param shape The geometry.
   * @returns Algorithm and workspace per direction.
   */
  convolutionAlgorithms(
    shape: Conv2dShape,
  ): ReturnType<CudnnConvolutions["algorithms"]> {
    this.#live();
    return this.#conv!.algorithms(shape);
  }

  /**
   * Queues a kernel of the project's PTX module on the device's stream.
   *
   * @param name Kernel symbol.
   * @param grid Grid size.
   * @param block Block size.
   * @param sharedBytes Dynamic shared memory.
   * @param args Arguments in parameter order.
   */
  launch(
    name: string,
    grid: readonly [number, number, number],
    block: readonly [number, number, number],
    sharedBytes: number,
    args: readonly KernelArg[],
  ): void {
    this.#live();
    this.#launcher!.launch(name, grid, block, sharedBytes, args);
  }

  // ── dense algebra ─────────────────────────────────────────────────────────────────────────

  gemm(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    alpha: number,
    a: DeviceBuffer,
    b: DeviceBuffer,
    beta: number,
    c: DeviceBuffer,
    bias?: DeviceBuffer,
  ): void {
    this.#live();
    count("m", m);
    count("n", n);
    count("k", k);
    finite("alpha", alpha);
    finite("beta", beta);
    const pa = this.#ptr(a, "a", "f32", product("a", m, k));
    const pb = this.#ptr(b, "b", "f32", product("b", k, n));
    const pc = this.#ptr(c, "c", "f32", product("c", m, n));
    const pBias = this.#opt(bias, "bias", "f32", n);
    this.#gemm!.gemm(transA, transB, m, n, k, alpha, pa, pb, beta, pc, pBias);
  }

  // ── convolution ───────────────────────────────────────────────────────────────────────────

  #conv2d(s: Conv2dShape): Conv2dShape {
    if (typeof s !== "object" || s === null) throw new TypeError("shape must be a Conv2dShape");
    for (const key of ["n", "cIn", "h", "w", "cOut", "kH", "kW", "strideH", "strideW"] as const) {
      count(`shape.${key}`, s[key], 1);
    }
    count("shape.padH", s.padH);
    count("shape.padW", s.padW);
    const outH = Math.floor((s.h + 2 * s.padH - s.kH) / s.strideH) + 1;
    const outW = Math.floor((s.w + 2 * s.padW - s.kW) / s.strideW) + 1;
    if (s.outH !== outH || s.outW !== outW || outH < 1 || outW < 1) {
      throw new RangeError(
        `shape.outH × shape.outW must be ${outH} × ${outW} (≥ 1) for this geometry, got ${s.outH} × ${s.outW}`,
      );
    }
    product("x", s.n, s.cIn, s.h, s.w);
    product("y", s.n, s.cOut, outH, outW);
    return s;
  }

  /** Element counts of a convolution's input, weights and output. */
  #convSizes(s: Conv2dShape): { x: number; w: number; y: number } {
    return {
      x: s.n * s.cIn * s.h * s.w,
      w: s.cOut * s.cIn * s.kH * s.kW,
      y: s.n * s.cOut * s.outH * s.outW,
    };
  }

  conv2dForward(x: DeviceBuffer, w: DeviceBuffer, y: DeviceBuffer, shape: Conv2dShape): void {
    this.#live();
    const s = this.#conv2d(shape), size = this.#convSizes(s);
    this.#conv!.forward(
      this.#ptr(x, "x", "f32", size.x),
      this.#ptr(w, "w", "f32", size.w),
      this.#ptr(y, "y", "f32", size.y),
      s,
    );
  }

  conv2dBackwardData(
    w: DeviceBuffer,
    dy: DeviceBuffer,
    dx: DeviceBuffer,
    shape: Conv2dShape,
  ): void {
    this.#live();
    const s = this.#conv2d(shape), size = this.#convSizes(s);
    this.#conv!.backwardData(
      this.#ptr(w, "w", "f32", size.w),
      this.#ptr(dy, "dy", "f32", size.y),
      this.#ptr(dx, "dx", "f32", size.x),
      s,
    );
  }

  conv2dBackwardFilter(
    x: DeviceBuffer,
    dy: DeviceBuffer,
    dw: DeviceBuffer,
    shape: Conv2dShape,
  ): void {
    this.#live();
    const s = this.#conv2d(shape), size = this.#convSizes(s);
    this.#conv!.backwardFilter(
      this.#ptr(x, "x", "f32", size.x),
      this.#ptr(dy, "dy", "f32", size.y),
      this.#ptr(dw, "dw", "f32", size.w),
      s,
    );
  }

  // ── batch normalisation ───────────────────────────────────────────────────────────────────

  #bnShape(s: BatchNormShape): BatchNormShape {
    if (typeof s !== "object" || s === null) throw new TypeError("shape must be a BatchNormShape");
    count("shape.n", s.n, 1);
    count("shape.c", s.c, 1);
    count("shape.hw", s.hw, 1);
    product("x", s.n, s.c, s.hw);
    return s;
  }

  #eps(eps: number): number {
    // cuDNN 8+ accepts any epsilon above CUDNN_BN_MIN_EPSILON (0.0); zero would divide by zero.
    if (typeof eps !== "number" || !(eps > 0) || !Number.isFinite(eps)) {
      throw new RangeError(`eps must be a finite number > 0, got ${eps}`);
    }
    return eps;
  }

  batchNormForwardTraining(
    x: DeviceBuffer,
    y: DeviceBuffer,
    gamma: DeviceBuffer,
    beta: DeviceBuffer,
    runningMean: DeviceBuffer,
    runningVar: DeviceBuffer,
    saveMean: DeviceBuffer,
    saveInvStd: DeviceBuffer,
    shape: BatchNormShape,
    momentum: number,
    eps: number,
  ): void {
    this.#live();
    const s = this.#bnShape(shape);
    if (s.n * s.hw < 2) {
      throw new RangeError(
        `batch-norm training needs more than one value per channel (n·hw ≥ 2), got n = ${s.n}, hw = ${s.hw}`,
      );
    }
    if (typeof momentum !== "number" || !(momentum >= 0 && momentum <= 1)) {
      throw new RangeError(`momentum must be a number in [0, 1], got ${momentum}`);
    }
    this.#eps(eps);
    const size = s.n * s.c * s.hw;
    this.#bn!.forwardTraining(
      this.#ptr(x, "x", "f32", size),
      this.#ptr(y, "y", "f32", size),
      this.#ptr(gamma, "gamma", "f32", s.c),
      this.#ptr(beta, "beta", "f32", s.c),
      this.#ptr(runningMean, "runningMean", "f32", s.c),
      this.#ptr(runningVar, "runningVar", "f32", s.c),
      this.#ptr(saveMean, "saveMean", "f32", s.c),
      this.#ptr(saveInvStd, "saveInvStd", "f32", s.c),
      s,
      momentum,
      eps,
    );
  }

  batchNormForwardInference(
    x: DeviceBuffer,
    y: DeviceBuffer,
    gamma: DeviceBuffer,
    beta: DeviceBuffer,
    runningMean: DeviceBuffer,
    runningVar: DeviceBuffer,
    shape: BatchNormShape,
    eps: number,
  ): void {
    this.#live();
    const s = this.#bnShape(shape);
    this.#eps(eps);
    const size = s.n * s.c * s.hw;
    this.#bn!.forwardInference(
      this.#ptr(x, "x", "f32", size),
      this.#ptr(y, "y", "f32", size),
      this.#ptr(gamma, "gamma", "f32", s.c),
      this.#ptr(beta, "beta", "f32", s.c),
      this.#ptr(runningMean, "runningMean", "f32", s.c),
      this.#ptr(runningVar, "runningVar", "f32", s.c),
      s,
      eps,
    );
  }

  batchNormBackward(
    x: DeviceBuffer,
    dy: DeviceBuffer,
    dx: DeviceBuffer,
    gamma: DeviceBuffer,
    dGamma: DeviceBuffer,
    dBeta: DeviceBuffer,
    saveMean: DeviceBuffer,
    saveInvStd: DeviceBuffer,
    shape: BatchNormShape,
  ): void {
    this.#live();
    const s = this.#bnShape(shape);
    const size = s.n * s.c * s.hw;
    this.#bn!.backward(
      this.#ptr(x, "x", "f32", size),
      this.#ptr(dy, "dy", "f32", size),
      this.#ptr(dx, "dx", "f32", size),
      this.#ptr(gamma, "gamma", "f32", s.c),
      this.#ptr(dGamma, "dGamma", "f32", s.c),
      this.#ptr(dBeta, "dBeta", "f32", s.c),
      this.#ptr(saveMean, "saveMean", "f32", s.c),
      this.#ptr(saveInvStd, "saveInvStd", "f32", s.c),
      s,
    );
  }

  // ── element-wise and small ops ────────────────────────────────────────────────────────────

  reluForward(x: DeviceBuffer, y: DeviceBuffer, length: number): void {
    this.#live();
    count("length", length);
    const px = this.#ptr(x, "x", "f32", length), py = this.#ptr(y, "y", "f32", length);
    if (length > 0) k.reluForward(this, px, py, length);
  }

  reluBackward(y: DeviceBuffer, dy: DeviceBuffer, dx: DeviceBuffer, length: number): void {
    this.#live();
    count("length", length);
    const py = this.#ptr(y, "y", "f32", length);
    const pdy = this.#ptr(dy, "dy", "f32", length), pdx = this.#ptr(dx, "dx", "f32", length);
    if (length > 0) k.reluBackward(this, py, pdy, pdx, length);
  }

  add(a: DeviceBuffer, b: DeviceBuffer, out: DeviceBuffer, length: number): void {
    this.#live();
    count("length", length);
    const pa = this.#ptr(a, "a", "f32", length), pb = this.#ptr(b, "b", "f32", length);
    const po = this.#ptr(out, "out", "f32", length);
    if (length > 0) k.add(this, pa, pb, po, length);
  }

  globalAvgPoolForward(x: DeviceBuffer, y: DeviceBuffer, n: number, c: number, hw: number): void {
    this.#live();
    count("n", n);
    count("c", c);
    count("hw", hw, 1);
    const px = this.#ptr(x, "x", "f32", product("x", n, c, hw));
    const py = this.#ptr(y, "y", "f32", n * c);
    if (n * c > 0) k.globalAvgPoolForward(this, px, py, n, c, hw);
  }

  globalAvgPoolBackward(
    dy: DeviceBuffer,
    dx: DeviceBuffer,
    n: number,
    c: number,
    hw: number,
  ): void {
    this.#live();
    count("n", n);
    count("c", c);
    count("hw", hw, 1);
    const pdy = this.#ptr(dy, "dy", "f32", n * c);
    const pdx = this.#ptr(dx, "dx", "f32", product("dx", n, c, hw));
    if (n * c > 0) k.globalAvgPoolBackward(this, pdy, pdx, n, c, hw);
  }

  #shortcutDims(n: number, cIn: number, h: number, w: number, cOut: number): number {
    count("n", n);
    count("cIn", cIn, 1);
    count("h", h);
    count("w", w);
    count("cOut", cOut);
    if (cOut < cIn) throw new RangeError(`cOut must be ≥ cIn (${cIn}), got ${cOut}`);
    product("x", n, cIn, h, w);
    return product("y", n, cOut, Math.ceil(h / 2), Math.ceil(w / 2));
  }

  shortcutForward(
    x: DeviceBuffer,
    y: DeviceBuffer,
    n: number,
    cIn: number,
    h: number,
    w: number,
    cOut: number,
  ): void {
    this.#live();
    const ySize = this.#shortcutDims(n, cIn, h, w, cOut);
    const px = this.#ptr(x, "x", "f32", n * cIn * h * w);
    const py = this.#ptr(y, "y", "f32", ySize);
    if (ySize > 0) k.shortcutForward(this, px, py, n, cIn, h, w, cOut);
  }

  shortcutBackward(
    dy: DeviceBuffer,
    dx: DeviceBuffer,
    n: number,
    cIn: number,
    h: number,
    w: number,
    cOut: number,
  ): void {
    this.#live();
    const ySize = this.#shortcutDims(n, cIn, h, w, cOut);
    const pdy = this.#ptr(dy, "dy", "f32", ySize);
    const pdx = this.#ptr(dx, "dx", "f32", n * cIn * h * w);
    if (n * cIn * h * w > 0) k.shortcutBackward(this, pdy, pdx, n, cIn, h, w, cOut);
  }

  // ── fused losses ─────────────────────────────────────────────────────────────────────────

  sigmoidLoss(
    logits: DeviceBuffer,
    labels: DeviceBuffer,
    grad: DeviceBuffer,
    rowLoss: DeviceBuffer,
    p: SigmoidLossParams,
  ): void {
    this.#live();
    const n = count("params.n", p.n), c = count("params.c", p.c);
    const nc = product("logits", n, c);
    finite("params.scale", p.scale);
    finite("params.focalGamma", p.focalGamma);
    finite("params.focalAlpha", p.focalAlpha);
    if (typeof p.backgroundExempt !== "boolean") {
      throw new TypeError(`params.backgroundExempt must be a boolean, got ${p.backgroundExempt}`);
    }
    if ((p.keepMask === undefined) !== (p.imageOfRow === undefined)) {
      throw new TypeError("params.keepMask and params.imageOfRow must be given together");
    }
    const pl = this.#ptr(logits, "logits", "f32", nc);
    const py = this.#ptr(labels, "labels", "i32", n);
    const pg = this.#ptr(grad, "grad", "f32", nc);
    if (grad === logits && nc > 0) {
      throw new TypeError(
        "grad must be a different buffer from logits (the kernel reads logits while writing grad)",
      );
    }
    const pr = this.#ptr(rowLoss, "rowLoss", "f32", n);
    const suppress = this.#opt(p.suppress, "params.suppress", "f32", c);
    const classWeight = this.#opt(p.classWeight, "params.classWeight", "f32", c);
    const imageOfRow = this.#opt(p.imageOfRow, "params.imageOfRow", "i32", n);
    const keepMask = this.#opt(p.keepMask, "params.keepMask", "i32", c);
    if (n === 0) return;
    k.sigmoidLoss(this, pl, py, pg, pr, {
      n,
      c,
      scale: p.scale,
      suppress,
      backgroundExempt: p.backgroundExempt,
      classWeight,
      focalGamma: p.focalGamma,
      focalAlpha: p.focalAlpha,
      imageOfRow,
      keepMask,
    });
  }

  softmaxLoss(
    logits: DeviceBuffer,
    labels: DeviceBuffer,
    grad: DeviceBuffer,
    rowLoss: DeviceBuffer,
    p: SoftmaxLossParams,
  ): void {
    this.#live();
    const n = count("params.n", p.n), c = count("params.c", p.c, 1);
    const nc = product("logits", n, c);
    finite("params.scale", p.scale);
    if (!Number.isInteger(p.gammaThreshold) || p.gammaThreshold < 0 || p.gammaThreshold > 2 ** 24) {
      throw new RangeError(
        `params.gammaThreshold must be an integer in [0, 16777216], got ${p.gammaThreshold}`,
      );
    }
    u32("params.seed", p.seed);
    u32("params.counter", p.counter);
    const pl = this.#ptr(logits, "logits", "f32", nc);
    const py = this.#ptr(labels, "labels", "i32", n);
    const pg = this.#ptr(grad, "grad", "f32", nc);
    if (grad === logits && nc > 0) {
      throw new TypeError(
        "grad must be a different buffer from logits (the kernel reads logits while writing grad)",
      );
    }
    const pr = this.#ptr(rowLoss, "rowLoss", "f32", n);
    const suppress = this.#opt(p.suppress, "params.suppress", "f32", c);
    const classWeight = this.#opt(p.classWeight, "params.classWeight", "f32", c);
    const logitBias = this.#opt(p.logitBias, "params.logitBias", "f32", c);
    if (n === 0) return;
    k.softmaxLoss(this, pl, py, pg, pr, {
      n,
      c,
      scale: p.scale,
      suppress,
      gammaThreshold: p.gammaThreshold,
      seed: p.seed,
      counter: p.counter,
      classWeight,
      logitBias,
    });
  }

  smoothL1Loss(
    pred: DeviceBuffer,
    target: DeviceBuffer,
    rowWeight: DeviceBuffer,
    grad: DeviceBuffer,
    rowLoss: DeviceBuffer,
    n: number,
    d: number,
    beta: number,
    scale: number,
  ): void {
    this.#live();
    count("n", n);
    count("d", d);
    const nd = product("pred", n, d);
    if (typeof beta !== "number" || !(beta >= 0) || !Number.isFinite(beta)) {
      throw new RangeError(`beta must be a finite number ≥ 0, got ${beta}`);
    }
    finite("scale", scale);
    const pp = this.#ptr(pred, "pred", "f32", nd);
    const pt = this.#ptr(target, "target", "f32", nd);
    const pw = this.#ptr(rowWeight, "rowWeight", "f32", n);
    const pg = this.#ptr(grad, "grad", "f32", nd);
    const pr = this.#ptr(rowLoss, "rowLoss", "f32", n);
    if (n > 0) k.smoothL1Loss(this, pp, pt, pw, pg, pr, n, d, beta, scale);
  }

  // ── optimisation ─────────────────────────────────────────────────────────────────────────

  sgdUpdate(
    param: DeviceBuffer,
    grad: DeviceBuffer,
    momentumBuf: DeviceBuffer,
    length: number,
    params: SgdParams,
  ): void {
    this.#live();
    count("length", length);
    finite("params.lr", params.lr);
    finite("params.momentum", params.momentum);
    finite("params.weightDecay", params.weightDecay);
    if (typeof params.nesterov !== "boolean") {
      throw new TypeError(`params.nesterov must be a boolean, got ${params.nesterov}`);
    }
    const pp = this.#ptr(param, "param", "f32", length);
    const pg = this.#ptr(grad, "grad", "f32", length);
    const pm = this.#ptr(momentumBuf, "momentumBuf", "f32", length);
    if (length > 0) {
      k.sgdUpdate(this, pp, pg, pm, length, {
        lr: params.lr,
        momentum: params.momentum,
        weightDecay: params.weightDecay,
        nesterov: params.nesterov,
      });
    }
  }
}

let shared: CudaDevice | undefined;

/**
 * The process-wide CUDA device on GPU 0 (created on first use, again after a `dispose()`).
 *
 * @param options Used when the device is created.
 * @returns The shared `CudaDevice`.
 * @throws {LibraryNotFoundError} / {CudaError} When no usable GPU is present.
 *
 * @example
 * ```ts ignore
 * import { cudaDevice } from "./cuda.ts";
 * cudaDevice().kind; // "cuda"
 * ```
 */
export function cudaDevice(options?: CudaDeviceOptions): CudaDevice {
  if (!shared || shared.disposed) shared = new CudaDevice(options);
  return shared;
}
