/**
 * The CUDA device: the device contract on one NVIDIA GPU through the driver API, cuBLAS and cuDNN
 * (typed bindings in `ffi/`), with the project's own kernels (`ffi/kernels/`, launched through
 * `src/device/cuda/kernels.ts`) for everything the libraries do not cover.
 *
 * The work is split as in tinygrad's CUDA runtime:
 * - `cuda/context.ts`: driver, primary context, the one non-blocking stream that every operation
 *   (cuBLAS and cuDNN included) is queued on, the library handles and the PTX module;
 * - `cuda/buffers.ts`: the buffer class and the transfers, over the caching allocator of
 *   `cuda/allocator.ts` (new buffers are zero-filled on the stream);
 * - this file: the op dispatch. GEMM is `cublasSgemm_v2` (`cuda/gemm.ts`; FP32 unless the device
 *   was created with `tf32: true`), convolution and batch norm are cuDNN (`cuda/conv.ts`,
 *   `cuda/batchnorm.ts`), the residual block's batch-norm tail (residual add and ReLU) and
 *   everything else are the project's kernels.
 *
 * Every entry point runs its check from `_validate.ts` before anything is queued (a bad pointer or
 * size on the GPU would poison the context); native failures are `CudaError`, `CublasError` or
 * `CudnnError`. Operations are asynchronous: errors of queued work surface at the next waiting
 * call (`download`, `sync`).
 *
 * @module
 */

import { PTX } from "../../ffi/kernels/ptx.ts";
import {
  type BatchNormGrads,
  type BatchNormParams,
  type BatchNormShape,
  type Conv2dShape,
  type Device,
  type DeviceBuffer,
  type DType,
  type Eqlv2LossParams,
  type GemmShape,
  mapLossArrays,
  type PoolShape,
  type SeesawLossParams,
  type SgdArgs,
  type ShortcutShape,
  type SigmoidLossParams,
  type SmoothL1Shape,
  type SoftmaxLossParams,
} from "./device.ts";
import {
  checkBatchNormBackward,
  checkBatchNormForward,
  checkBuffer,
  checkConv2d,
  checkElementwise,
  checkEqlv2Loss,
  checkGemm,
  checkHostArray,
  checkInt,
  checkPool,
  checkRange,
  checkSeesawLoss,
  checkSgd,
  checkShortcut,
  checkSigmoidLoss,
  checkSmoothL1,
  checkSoftmaxLoss,
} from "./_validate.ts";
import type { KernelArg, KernelLauncher } from "./cuda/launch.ts";
import type { AllocatorStats } from "./cuda/allocator.ts";
import { CudaContext, type CudaMemoryInfo, runAll } from "./cuda/context.ts";
import { type CudaBuffer, CudaMemory, devicePointer as ptr, fillWord } from "./cuda/buffers.ts";
import { CublasGemm } from "./cuda/gemm.ts";
import { CudnnConvolutions } from "./cuda/conv.ts";
import { type BatchNormPointers, CudnnBatchNorm } from "./cuda/batchnorm.ts";
import { CudaTimer } from "./cuda/timer.ts";
import * as k from "./cuda/kernels.ts";

export type {
  BatchNormGrads,
  BatchNormParams,
  BatchNormShape,
  Conv2dShape,
  Device,
  DeviceBuffer,
  DType,
  Eqlv2LossParams,
  GemmShape,
  PoolShape,
  SeesawLossParams,
  SgdArgs,
  ShortcutShape,
  SigmoidLossParams,
  SmoothL1Shape,
  SoftmaxLossParams,
} from "./device.ts";
export type { KernelArg, KernelLauncher } from "./cuda/launch.ts";
export type { AllocatorStats } from "./cuda/allocator.ts";
export type { CudaMemoryInfo } from "./cuda/context.ts";
export type { CudaTimer } from "./cuda/timer.ts";
export { CudaBuffer } from "./cuda/buffers.ts";

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

/** The per-channel buffers as device pointers. */
function bnPointers(p: BatchNormParams): BatchNormPointers {
  return {
    gamma: ptr(p.gamma),
    beta: ptr(p.beta),
    runningMean: ptr(p.runningMean),
    runningVar: ptr(p.runningVar),
    saveMean: ptr(p.saveMean),
    saveInvStd: ptr(p.saveInvStd),
  };
}

/** A loss record's arrays as device pointers. */
function lossPointers<R>(params: object): R {
  return mapLossArrays<R>(params, (buf) => ptr(buf as DeviceBuffer));
}

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

  #ctx: CudaContext;
  #mem: CudaMemory;
  #gemm: CublasGemm;
  #conv: CudnnConvolutions;
  #bn: CudnnBatchNorm;

  /**
   * Opens the GPU: driver, primary context, stream, cuBLAS, cuDNN and the kernel module.
   *
   * @param options Ordinal, TF32, workspace limit.
   * @throws {LibraryNotFoundError} When the driver, cuBLAS or cuDNN cannot be loaded.
   * @throws {CudaError} When there is no GPU (`CUDA_ERROR_NO_DEVICE`) or the driver refuses a step.
   * @throws {CublasError} / {CudnnError} When a library handle cannot be created.
   */
  constructor(options: CudaDeviceOptions = {}) {
    const op = "CudaDevice";
    const ordinal = options.ordinal ?? 0;
    checkInt(op, "options.ordinal", ordinal);
    const tf32 = options.tf32 ?? false;
    if (typeof tf32 !== "boolean") {
      throw new TypeError(`${op}: options.tf32 must be a boolean, got ${String(tf32)}`);
    }
    const maxWorkspaceBytes = options.maxWorkspaceBytes ?? 2 ** 30;
    checkInt(op, "options.maxWorkspaceBytes", maxWorkspaceBytes, 0, Number.MAX_SAFE_INTEGER);
    this.ordinal = ordinal;
    this.tf32 = tf32;

    const ctx = this.#ctx = new CudaContext({ ordinal, tf32, ptx: options.ptx ?? PTX });
    this.name = ctx.name;
    this.computeCapability = ctx.computeCapability;
    this.multiprocessors = ctx.multiprocessors;
    const mem = this.#mem = new CudaMemory(ctx);
    this.#gemm = new CublasGemm(
      ctx.blas,
      ctx.blasHandle,
      mem.allocator,
      (p, n) => ctx.memset(p, fillWord("f32", 1), n),
    );
    this.#conv = new CudnnConvolutions(ctx.dnn, ctx.dnnHandle, mem.allocator, {
      tf32,
      maxWorkspaceBytes,
    });
    this.#bn = new CudnnBatchNorm(ctx.dnn, ctx.dnnHandle);
  }

  /** The GPU, its compute capability and the library versions. */
  get description(): string {
    const [maj, min] = this.computeCapability;
    return `CUDA ${this.name} (sm_${maj}${min}, ${this.multiprocessors} SMs, ${this.#ctx.versions}${
      this.tf32 ? ", TF32" : ", FP32"
    })`;
  }

  /** True once `dispose()` has run. */
  get disposed(): boolean {
    return this.#ctx.disposed;
  }

  // ── memory ────────────────────────────────────────────────────────────────────────────────

  alloc(dtype: DType, length: number): DeviceBuffer {
    checkInt("alloc", "length", length);
    if (dtype !== "f32" && dtype !== "i32") {
      throw new TypeError(`alloc: dtype must be "f32" or "i32", got ${String(dtype)}`);
    }
    this.#ctx.enter();
    return this.#mem.alloc(this, dtype, length);
  }

  free(buffer: DeviceBuffer): void {
    checkBuffer("free", "buffer", buffer, this, (buffer as DeviceBuffer | null)?.dtype ?? "f32", 0);
    this.#mem.free(buffer as CudaBuffer);
  }

  upload(buffer: DeviceBuffer, data: Float32Array | Int32Array, offset = 0): void {
    checkRange("upload", "buffer", buffer, this, offset, 0);
    checkHostArray("upload", "data", data, buffer);
    checkRange("upload", "buffer", buffer, this, offset, data.length);
    this.#ctx.enter();
    this.#mem.upload(buffer as CudaBuffer, data, offset);
  }

  download(buffer: DeviceBuffer, out: Float32Array | Int32Array, offset = 0): void {
    checkRange("download", "buffer", buffer, this, offset, 0);
    checkHostArray("download", "out", out, buffer);
    checkRange("download", "buffer", buffer, this, offset, out.length);
    this.#ctx.enter();
    this.#mem.download(buffer as CudaBuffer, out, offset);
  }

  copy(dst: DeviceBuffer, src: DeviceBuffer, length: number, dstOffset = 0, srcOffset = 0): void {
    checkRange("copy", "dst", dst, this, dstOffset, length);
    checkRange("copy", "src", src, this, srcOffset, length);
    if (dst.dtype !== src.dtype) {
      throw new TypeError(
        `copy: src must be an ${dst.dtype} buffer like dst, got an ${src.dtype} one`,
      );
    }
    this.#ctx.enter();
    this.#mem.copy(dst as CudaBuffer, src as CudaBuffer, length, dstOffset, srcOffset);
  }

  fill(buffer: DeviceBuffer, value: number, length: number, offset = 0): void {
    checkRange("fill", "buffer", buffer, this, offset, length);
    if (buffer.dtype === "i32") checkInt("fill", "value", value, -(2 ** 31), 2 ** 31 - 1);
    else if (typeof value !== "number") {
      throw new TypeError(`fill: value must be a number, got ${typeof value}`);
    }
    this.#ctx.enter();
    this.#mem.fill(buffer as CudaBuffer, value, length, offset);
  }

  sync(): void {
    this.#ctx.enter();
    this.#ctx.waitStream();
  }

  /**
   * Releases everything: device memory (every buffer, live or cached), descriptors, the kernel
   * module, the library handles, the stream and the context reference. Safe to call twice.
   */
  dispose(): void {
    this.#ctx.dispose(() =>
      runAll([
        () => this.#gemm.dispose(),
        () => this.#conv.dispose(),
        () => this.#bn.dispose(),
        () => this.#mem.releaseAll(),
      ])
    );
  }

  /**
   * Free and total GPU memory as the driver sees it (all processes).
   *
   * @returns Bytes free and total.
   */
  memoryInfo(): CudaMemoryInfo {
    this.#ctx.enter();
    return this.#ctx.memoryInfo();
  }

  /**
   * The caching allocator's counters.
   *
   * @returns Live, cached and reserved bytes and blocks, and call counts.
   */
  memoryStats(): AllocatorStats {
    this.#ctx.enter();
    return this.#mem.stats();
  }

  /** Returns every cached (free) block to the driver. */
  emptyCache(): void {
    this.#ctx.enter();
    this.#mem.emptyCache();
  }

  /**
   * A GPU timer on this device's stream (CUDA events).
   *
   * @returns A timer; dispose it when done.
   */
  createTimer(): CudaTimer {
    this.#ctx.enter();
    return new CudaTimer(this.#ctx.cu, this.#ctx.stream);
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
    this.#ctx.enter();
    return this.#conv.algorithms(shape);
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
    this.#ctx.enter();
    this.#ctx.launcher.launch(name, grid, block, sharedBytes, args);
  }

  // ── dense algebra ─────────────────────────────────────────────────────────────────────────

  gemm(
    a: DeviceBuffer,
    b: DeviceBuffer,
    c: DeviceBuffer,
    shape: GemmShape,
    bias?: DeviceBuffer,
  ): void {
    checkGemm(this, a, b, c, shape, bias);
    this.#ctx.enter();
    this.#gemm.gemm(shape, ptr(a), ptr(b), ptr(c), bias ? ptr(bias) : 0n);
  }

  // ── convolution ───────────────────────────────────────────────────────────────────────────

  conv2dForward(x: DeviceBuffer, w: DeviceBuffer, y: DeviceBuffer, shape: Conv2dShape): void {
    checkConv2d("conv2dForward", this, x, w, y, shape);
    this.#ctx.enter();
    this.#conv.forward(ptr(x), ptr(w), ptr(y), shape);
  }

  conv2dBackwardData(
    w: DeviceBuffer,
    dy: DeviceBuffer,
    dx: DeviceBuffer,
    shape: Conv2dShape,
  ): void {
    checkConv2d("conv2dBackwardData", this, w, dy, dx, shape);
    this.#ctx.enter();
    this.#conv.backwardData(ptr(w), ptr(dy), ptr(dx), shape);
  }

  conv2dBackwardFilter(
    x: DeviceBuffer,
    dy: DeviceBuffer,
    dw: DeviceBuffer,
    shape: Conv2dShape,
  ): void {
    checkConv2d("conv2dBackwardFilter", this, x, dy, dw, shape);
    this.#ctx.enter();
    this.#conv.backwardFilter(ptr(x), ptr(dy), ptr(dw), shape);
  }

  // ── batch normalisation, with the residual block's tail ──────────────────────────────────
  // cuDNN computes the statistics and the plain normalisation; the tail (residual add, ReLU) is
  // one pass of the `batch_norm_tail` kernel, which recomputes the normalisation from the saved
  // (training) or running (inference) statistics, adds the residual and applies the ReLU.

  batchNormForwardTraining(
    x: DeviceBuffer,
    y: DeviceBuffer,
    params: BatchNormParams,
    shape: BatchNormShape,
    residual?: DeviceBuffer,
  ): void {
    checkBatchNormForward("batchNormForwardTraining", this, x, y, params, shape, residual);
    this.#ctx.enter();
    const p = bnPointers(params);
    if (!shape.relu && residual === undefined) {
      this.#bn.forwardTraining(ptr(x), ptr(y), p, shape);
      return;
    }
    // cuDNN must write its normalised output somewhere; where y is x or the residual, into a
    // scratch block, so that the tail still reads them intact.
    const length = shape.n * shape.c * shape.hw;
    const scratch = y === x || y === residual ? this.#mem.scratch(length) : 0n;
    try {
      this.#bn.forwardTraining(ptr(x), scratch || ptr(y), p, shape);
      k.batchNormTail(
        this,
        ptr(x),
        residual ? ptr(residual) : 0n,
        ptr(y),
        p.gamma,
        p.beta,
        p.saveMean,
        p.saveInvStd,
        shape,
        "batch",
      );
    } finally {
      if (scratch) this.#mem.releaseScratch(scratch);
    }
  }

  batchNormForwardInference(
    x: DeviceBuffer,
    y: DeviceBuffer,
    params: BatchNormParams,
    shape: BatchNormShape,
    residual?: DeviceBuffer,
  ): void {
    checkBatchNormForward("batchNormForwardInference", this, x, y, params, shape, residual);
    this.#ctx.enter();
    if (!shape.relu && residual === undefined) {
      this.#bn.forwardInference(ptr(x), ptr(y), bnPointers(params), shape);
      return;
    }
    k.batchNormTail(
      this,
      ptr(x),
      residual ? ptr(residual) : 0n,
      ptr(y),
      ptr(params.gamma),
      ptr(params.beta),
      ptr(params.runningMean),
      ptr(params.runningVar),
      shape,
      "running",
    );
  }

  batchNormBackward(
    x: DeviceBuffer,
    y: DeviceBuffer,
    dy: DeviceBuffer,
    grads: BatchNormGrads,
    params: BatchNormParams,
    shape: BatchNormShape,
  ): void {
    checkBatchNormBackward(this, x, y, dy, grads, params, shape);
    this.#ctx.enter();
    const length = shape.n * shape.c * shape.hw;
    // g: the gradient of the batch norm's own output. With a ReLU, g = dy·(y > 0), written where
    // it is wanted anyway (dResidual) or into a scratch block; without, g is dy itself.
    let g = ptr(dy), scratch = 0n;
    if (shape.relu) {
      g = grads.dResidual ? ptr(grads.dResidual) : (scratch = this.#mem.scratch(length));
      k.reluBackward(this, ptr(y), ptr(dy), g, length);
    } else if (grads.dResidual) {
      this.#mem.copyRaw(ptr(grads.dResidual), g, length);
    }
    try {
      this.#bn.backward(
        ptr(x),
        g,
        ptr(grads.dx),
        ptr(grads.dGamma),
        ptr(grads.dBeta),
        bnPointers(params),
        shape,
      );
    } finally {
      if (scratch) this.#mem.releaseScratch(scratch);
    }
  }

  // ── element-wise and small ops ────────────────────────────────────────────────────────────

  reluForward(x: DeviceBuffer, y: DeviceBuffer, length: number): void {
    checkElementwise("reluForward", this, [["x", x], ["y", y]], length);
    this.#ctx.enter();
    k.reluForward(this, ptr(x), ptr(y), length);
  }

  reluBackward(y: DeviceBuffer, dy: DeviceBuffer, dx: DeviceBuffer, length: number): void {
    checkElementwise("reluBackward", this, [["y", y], ["dy", dy], ["dx", dx]], length);
    this.#ctx.enter();
    k.reluBackward(this, ptr(y), ptr(dy), ptr(dx), length);
  }

  add(a: DeviceBuffer, b: DeviceBuffer, out: DeviceBuffer, length: number): void {
    checkElementwise("add", this, [["a", a], ["b", b], ["out", out]], length);
    this.#ctx.enter();
    k.add(this, ptr(a), ptr(b), ptr(out), length);
  }

  globalAvgPoolForward(x: DeviceBuffer, y: DeviceBuffer, shape: PoolShape): void {
    checkPool("globalAvgPoolForward", this, ["x", x], ["y", y], shape);
    this.#ctx.enter();
    k.globalAvgPoolForward(this, ptr(x), ptr(y), shape);
  }

  globalAvgPoolBackward(dy: DeviceBuffer, dx: DeviceBuffer, shape: PoolShape): void {
    checkPool("globalAvgPoolBackward", this, ["dx", dx], ["dy", dy], shape);
    this.#ctx.enter();
    k.globalAvgPoolBackward(this, ptr(dy), ptr(dx), shape);
  }

  shortcutForward(x: DeviceBuffer, y: DeviceBuffer, shape: ShortcutShape): void {
    checkShortcut("shortcutForward", this, ["x", x], ["y", y], shape);
    this.#ctx.enter();
    k.shortcutForward(this, ptr(x), ptr(y), shape);
  }

  shortcutBackward(dy: DeviceBuffer, dx: DeviceBuffer, shape: ShortcutShape): void {
    checkShortcut("shortcutBackward", this, ["dx", dx], ["dy", dy], shape);
    this.#ctx.enter();
    k.shortcutBackward(this, ptr(dy), ptr(dx), shape);
  }

  // ── fused losses ─────────────────────────────────────────────────────────────────────────

  sigmoidLoss(
    logits: DeviceBuffer,
    labels: DeviceBuffer,
    grad: DeviceBuffer,
    rowLoss: DeviceBuffer,
    params: SigmoidLossParams,
  ): void {
    checkSigmoidLoss(this, logits, labels, grad, rowLoss, params);
    this.#ctx.enter();
    const p = lossPointers<k.SigmoidLossKernelParams>(params);
    k.sigmoidLoss(this, ptr(logits), ptr(labels), ptr(grad), ptr(rowLoss), p);
  }

  softmaxLoss(
    logits: DeviceBuffer,
    labels: DeviceBuffer,
    grad: DeviceBuffer,
    rowLoss: DeviceBuffer,
    params: SoftmaxLossParams,
  ): void {
    checkSoftmaxLoss(this, logits, labels, grad, rowLoss, params);
    this.#ctx.enter();
    const p = lossPointers<k.SoftmaxLossKernelParams>(params);
    k.softmaxLoss(this, ptr(logits), ptr(labels), ptr(grad), ptr(rowLoss), p);
  }

  eqlv2Loss(
    logits: DeviceBuffer,
    labels: DeviceBuffer,
    grad: DeviceBuffer,
    rowLoss: DeviceBuffer,
    gradStats: DeviceBuffer,
    params: Eqlv2LossParams,
  ): void {
    checkEqlv2Loss(this, logits, labels, grad, rowLoss, gradStats, params);
    this.#ctx.enter();
    const p = lossPointers<k.Eqlv2LossKernelParams>(params);
    k.eqlv2Loss(this, ptr(logits), ptr(labels), ptr(grad), ptr(rowLoss), ptr(gradStats), p);
  }

  seesawLoss(
    logits: DeviceBuffer,
    labels: DeviceBuffer,
    grad: DeviceBuffer,
    rowLoss: DeviceBuffer,
    params: SeesawLossParams,
  ): void {
    checkSeesawLoss(this, logits, labels, grad, rowLoss, params);
    this.#ctx.enter();
    const p = lossPointers<k.SeesawLossKernelParams>(params);
    k.seesawLoss(this, ptr(logits), ptr(labels), ptr(grad), ptr(rowLoss), p);
  }

  smoothL1Loss(
    pred: DeviceBuffer,
    target: DeviceBuffer,
    rowWeight: DeviceBuffer,
    grad: DeviceBuffer,
    rowLoss: DeviceBuffer,
    shape: SmoothL1Shape,
  ): void {
    checkSmoothL1(this, pred, target, rowWeight, grad, rowLoss, shape);
    this.#ctx.enter();
    k.smoothL1Loss(
      this,
      ptr(pred),
      ptr(target),
      ptr(rowWeight),
      ptr(grad),
      ptr(rowLoss),
      shape,
    );
  }

  // ── optimisation ─────────────────────────────────────────────────────────────────────────

  sgdUpdate(
    param: DeviceBuffer,
    grad: DeviceBuffer,
    momentumBuf: DeviceBuffer,
    args: SgdArgs,
  ): void {
    checkSgd(this, param, grad, momentumBuf, args);
    this.#ctx.enter();
    k.sgdUpdate(this, ptr(param), ptr(grad), ptr(momentumBuf), args);
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
