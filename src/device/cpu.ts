/**
 * The CPU device: buffers are typed arrays, GEMM goes through OpenBLAS (`ffi/openblas.ts`) with a
 * blocked TypeScript GEMM as the fallback, and every other operation runs in the native CPU
 * kernels (`ffi/cpu_kernels.ts`) or as plain loops, both in `src/device/cpu/`. Operations run
 * synchronously.
 *
 * Which kernels (and which build of them), which GEMM and how many threads are options of each
 * device (`new CpuDevice({ kernels, variant, gemm, threads })`); the `EQL_CPU_KERNELS`,
 * `EQL_CPU_VARIANT`, `EQL_GEMM` and `EQL_CPU_THREADS` environment variables supply the defaults.
 * Every entry point runs its check from `_validate.ts` first; the kernels then work on typed
 * arrays they can trust.
 *
 * @module
 */

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
  describe,
} from "./_validate.ts";
import type { CpuBackend } from "./cpu/backend.ts";
import { formatCount } from "../progress.ts";
import * as ew from "./cpu/elementwise.ts";
import {
  type GemmBackend,
  gemmBackend,
  type GemmChoice,
  gemmDescription,
  sgemmFor,
} from "./cpu/gemm.ts";
import * as conv from "./cpu/conv.ts";
import * as bn from "./cpu/batchnorm.ts";
import * as loss from "./cpu/losses.ts";
import {
  cpuKernels,
  type CpuKernelsChoice,
  cpuKernelsVariant,
  cpuThreadCount,
  type CpuVariant,
  MAX_CPU_THREADS,
  setCpuThreads,
} from "../../ffi/cpu_kernels.ts";
import { type CpuVariantChoice, resolveVariant } from "../../ffi/cpu_kernels/variant.ts";

/**
 * Freed buffers of at least this many bytes return their memory at once (see `CpuBuffer.release`):
 * the activations of a ResNet's first two stages at batch 128 (4–8 MiB each), not the per-step
 * loss gradients of a box head (2.5 MB for 512 proposals × 1231 logits).
 */
const RETURN_AT_ONCE_BYTES = 4 * 1024 * 1024;

/** What a freed buffer holds: one empty array of each type, shared (a new one costs a microsecond). */
const EMPTY_F32 = new Float32Array(0);
const EMPTY_I32 = new Int32Array(0);

/**
 * A CPU buffer: a typed array plus its dtype. Created by {@linkcode CpuDevice.alloc}.
 *
 * @example
 * ```ts
 * import { CpuBuffer, cpuDevice } from "@eql/eql";
 * const buf = cpuDevice().alloc("f32", 4) as CpuBuffer;
 * console.log(buf.length, buf.data); // 4 Float32Array(4) [0, 0, 0, 0]
 * ```
 */
export class CpuBuffer implements DeviceBuffer {
  /** The owning device. */
  readonly device: CpuDevice;
  /** Element type. */
  readonly dtype: DType;
  /** The storage; released (emptied) on free. */
  data: Float32Array | Int32Array;
  #freed = false;

  /** Allocates `length` zeros of `dtype` for `device`. */
  constructor(device: CpuDevice, dtype: DType, length: number) {
    this.device = device;
    this.dtype = dtype;
    this.data = dtype === "f32" ? new Float32Array(length) : new Int32Array(length);
  }

  /** Number of elements. */
  get length(): number {
    return this.data.length;
  }

  /** True once freed. */
  get freed(): boolean {
    return this.#freed;
  }

  /**
   * Marks the buffer freed. A large buffer's storage goes back at once (its array buffer is
   * detached), so that a disposed model's activations do not stay resident, waiting for a
   * garbage collection, while the next model allocates its own. Smaller buffers are left to the
   * collector: returning each at once costs a fresh zeroed mapping at the next allocation, which
   * halved the box head's training speed, whose loss gradients come and go at every step.
   */
  release(): void {
    if (this.#freed) throw new Error("The buffer has already been freed");
    this.#freed = true;
    if (this.data.byteLength >= RETURN_AT_ONCE_BYTES) (this.data.buffer as ArrayBuffer).transfer(0);
    this.data = this.dtype === "f32" ? EMPTY_F32 : EMPTY_I32;
  }
}

/** The choices of a CPU device; each absent one comes from its environment variable. */
export interface CpuDeviceOptions {
  /**
   * `native` (the compiled CPU kernels, an error when they cannot be built), `typescript`, or
   * `auto` (native when they build, else TypeScript with a notice). Default: `EQL_CPU_KERNELS`,
   * else `auto`.
   */
  kernels?: CpuKernelsChoice;
  /**
   * The build of the native kernels: `avx512` (16-float vectors), `avx2` (8-float vectors,
   * blocking for 16 registers), `portable` (the compiler's baseline instructions), or `auto` (the
   * one that fits the CPU). A variant the CPU cannot run is an error naming the missing CPU
   * flags. Default: `EQL_CPU_VARIANT`, else `auto`.
   */
  variant?: CpuVariantChoice;
  /**
   * `openblas` (an error when it cannot be loaded), `typescript`, or `auto` (OpenBLAS when it
   * loads). Default: `EQL_GEMM`, else `auto`.
   */
  gemm?: GemmChoice;
  /**
   * Threads of the native kernels, 1 to 256 (each variant's pool is process-wide; the device sets
   * it before each native kernel when another device changed it). Default: `EQL_CPU_THREADS`, else the
   * number of logical CPUs. OpenBLAS keeps its own thread count.
   */
  threads?: number;
}

function checkChoice(name: string, v: unknown, allowed: readonly string[]): void {
  if (v !== undefined && !allowed.includes(v as string)) {
    throw new RangeError(
      `CpuDevice: options.${name} must be ${
        allowed.map((a) => `"${a}"`).join(", ").replace(/, ([^,]*)$/, " or $1")
      }, got ${describe(v)}`,
    );
  }
}

/** The typed array of a buffer that the op's check has validated (so it is a live CpuBuffer). */
function data(buf: DeviceBuffer): Float32Array | Int32Array {
  return (buf as CpuBuffer).data;
}

/** {@linkcode data} of a validated f32 buffer. */
function f32(buf: DeviceBuffer): Float32Array {
  return data(buf) as Float32Array;
}

/** {@linkcode data} of a validated i32 buffer. */
function i32(buf: DeviceBuffer): Int32Array {
  return data(buf) as Int32Array;
}

/**
 * The CPU implementation of the device contract.
 *
 * @example
 * ```ts
 * import { CpuDevice, cpuDevice } from "@eql/eql";
 * console.log(cpuDevice().description);
 * // e.g. "CPU (kernels: native avx512, threads: 8, GEMM: openblas (OpenBLAS 0.3.21, Cooperlake core))"
 * const plain = new CpuDevice({ kernels: "typescript", gemm: "typescript" });
 * console.log(plain.description); // "CPU (kernels: typescript, GEMM: typescript)"
 * ```
 */
export class CpuDevice implements Device {
  /** Always `"cpu"`. */
  readonly kind = "cpu" as const;
  /** Buffers are typed arrays: the garbage collector frees them. */
  readonly collectsGarbage = true;
  /** The kernels in effect. */
  readonly kernels: "native" | "typescript";
  /** The GEMM backend in effect. */
  readonly gemmBackend: GemmBackend;
  /** Threads of the native kernels (0 with the TypeScript kernels). */
  readonly threads: number;
  /** The build of the native kernels in use (`undefined` with the TypeScript kernels). */
  readonly variant: CpuVariant | undefined;
  #backend: CpuBackend;

  /**
   * A CPU device with the given choices (see {@linkcode CpuDeviceOptions}), resolved now.
   *
   * @param options Kernels, GEMM backend and threads; absent ones come from the environment.
   * @throws {RangeError} When an option (or the `EQL_*` variable supplying its default) holds an
   *   invalid value.
   * @throws {Error} When `kernels: "native"` is asked for and the kernels cannot be built.
   * @throws {LibraryNotFoundError} When `gemm: "openblas"` is asked for and OpenBLAS cannot be
   *   loaded.
   */
  constructor(options: CpuDeviceOptions = {}) {
    if (options === null || typeof options !== "object") {
      throw new TypeError(`CpuDevice: options must be an object, got ${describe(options)}`);
    }
    checkChoice("kernels", options.kernels, ["auto", "native", "typescript"]);
    checkChoice("gemm", options.gemm, ["auto", "openblas", "typescript"]);
    checkChoice("variant", options.variant, ["auto", "avx512", "avx2", "portable"]);
    if (options.threads !== undefined) {
      checkInt("CpuDevice", "options.threads", options.threads, 1, MAX_CPU_THREADS);
    }
    // An absent variant stays absent, so that the environment's defaults resolve as one.
    const variant = options.variant === undefined
      ? undefined
      : resolveVariant(options.variant, undefined, "CpuDevice: options.variant");
    const native = cpuKernels(options.kernels, variant);
    this.gemmBackend = gemmBackend(options.gemm);
    this.kernels = native === null ? "typescript" : "native";
    this.threads = native === null ? 0 : options.threads ?? cpuThreadCount();
    this.variant = native === null ? undefined : cpuKernelsVariant(native);
    this.#backend = { native, gemm: sgemmFor(this.gemmBackend) };
  }

  /** Names the kernels (with their variant and threads) and the GEMM backend in effect. */
  get description(): string {
    const kernels = this.variant === undefined ? this.kernels : `${this.kernels} ${this.variant}`;
    const threads = this.threads > 0 ? `, threads: ${this.threads}` : "";
    return `CPU (kernels: ${kernels}${threads}, GEMM: ${gemmDescription(this.gemmBackend)})`;
  }

  /** The backend, with its kernel library's pool set to this device's thread count. */
  #run(): CpuBackend {
    const native = this.#backend.native;
    if (native !== null) setCpuThreads(this.threads, native);
    return this.#backend;
  }

  alloc(dtype: DType, length: number): DeviceBuffer {
    if (dtype !== "f32" && dtype !== "i32") {
      throw new TypeError(`alloc: dtype must be "f32" or "i32", got ${describe(dtype)}`);
    }
    checkInt("alloc", "length", length, 0, Number.MAX_SAFE_INTEGER);
    try {
      return new CpuBuffer(this, dtype, length);
    } catch (e) {
      // V8 says only "Array buffer allocation failed" (or "Invalid typed array length").
      throw new RangeError(
        `cannot allocate ${length} ${dtype} elements (${
          formatCount(4 * length, "B")
        }) on the CPU device: ${(e as Error).message}`,
        { cause: e },
      );
    }
  }

  free(buffer: DeviceBuffer): void {
    checkRange("free", "buffer", buffer, this, 0, 0);
    (buffer as CpuBuffer).release();
  }

  upload(buffer: DeviceBuffer, data: Float32Array | Int32Array, offset = 0): void {
    checkRange("upload", "buffer", buffer, this, offset, 0);
    checkHostArray("upload", "data", data, buffer);
    checkRange("upload", "buffer", buffer, this, offset, data.length);
    (buffer as CpuBuffer).data.set(data, offset);
  }

  download(buffer: DeviceBuffer, out: Float32Array | Int32Array, offset = 0): void {
    checkRange("download", "buffer", buffer, this, offset, 0);
    checkHostArray("download", "out", out, buffer);
    checkRange("download", "buffer", buffer, this, offset, out.length);
    const data = (buffer as CpuBuffer).data;
    // A whole buffer needs no view of it (making one costs about a microsecond in Deno).
    if (offset === 0 && out.length === data.length) out.set(data);
    else out.set(data.subarray(offset, offset + out.length));
  }

  copy(dst: DeviceBuffer, src: DeviceBuffer, length: number, dstOffset = 0, srcOffset = 0): void {
    checkRange("copy", "dst", dst, this, dstOffset, length);
    checkRange("copy", "src", src, this, srcOffset, length);
    if (dst.dtype !== src.dtype) {
      throw new TypeError(
        `copy: dst and src must have the same dtype, got dst ${dst.dtype} and src ${src.dtype}`,
      );
    }
    const from = (src as CpuBuffer).data.subarray(srcOffset, srcOffset + length);
    (dst as CpuBuffer).data.set(from, dstOffset);
  }

  fill(buffer: DeviceBuffer, value: number, length: number, offset = 0): void {
    checkRange("fill", "buffer", buffer, this, offset, length);
    if (typeof value !== "number") {
      throw new TypeError(`fill: value must be a number, got ${describe(value)}`);
    }
    (buffer as CpuBuffer).data.fill(value, offset, offset + length);
  }

  sync(): void {}

  dispose(): void {}

  gemm(a: DeviceBuffer, b: DeviceBuffer, c: DeviceBuffer, s: GemmShape, bias?: DeviceBuffer): void {
    checkGemm(this, a, b, c, s, bias);
    this.#backend.gemm(
      s.transA,
      s.transB,
      s.m,
      s.n,
      s.k,
      s.alpha,
      f32(a),
      f32(b),
      s.beta,
      f32(c),
      bias && f32(bias),
    );
  }

  conv2dForward(x: DeviceBuffer, w: DeviceBuffer, y: DeviceBuffer, shape: Conv2dShape): void {
    checkConv2d("conv2dForward", this, x, w, y, shape);
    conv.conv2dForward(f32(x), f32(w), f32(y), shape, this.#run());
  }

  conv2dBackwardData(
    w: DeviceBuffer,
    dy: DeviceBuffer,
    dx: DeviceBuffer,
    shape: Conv2dShape,
  ): void {
    checkConv2d("conv2dBackwardData", this, w, dy, dx, shape);
    conv.conv2dBackwardData(f32(w), f32(dy), f32(dx), shape, this.#run());
  }

  conv2dBackwardFilter(
    x: DeviceBuffer,
    dy: DeviceBuffer,
    dw: DeviceBuffer,
    shape: Conv2dShape,
  ): void {
    checkConv2d("conv2dBackwardFilter", this, x, dy, dw, shape);
    conv.conv2dBackwardFilter(f32(x), f32(dy), f32(dw), shape, this.#run());
  }

  batchNormForwardTraining(
    x: DeviceBuffer,
    y: DeviceBuffer,
    p: BatchNormParams,
    shape: BatchNormShape,
    residual?: DeviceBuffer,
  ): void {
    checkBatchNormForward("batchNormForwardTraining", this, x, y, p, shape, residual);
    bn.batchNormForwardTraining(
      f32(x),
      f32(y),
      f32(p.gamma),
      f32(p.beta),
      f32(p.runningMean),
      f32(p.runningVar),
      f32(p.saveMean),
      f32(p.saveInvStd),
      shape,
      residual && f32(residual),
      this.#run(),
    );
  }

  batchNormForwardInference(
    x: DeviceBuffer,
    y: DeviceBuffer,
    p: BatchNormParams,
    shape: BatchNormShape,
    residual?: DeviceBuffer,
  ): void {
    checkBatchNormForward("batchNormForwardInference", this, x, y, p, shape, residual);
    bn.batchNormForwardInference(
      f32(x),
      f32(y),
      f32(p.gamma),
      f32(p.beta),
      f32(p.runningMean),
      f32(p.runningVar),
      shape,
      residual && f32(residual),
      this.#run(),
    );
  }

  batchNormBackward(
    x: DeviceBuffer,
    y: DeviceBuffer,
    dy: DeviceBuffer,
    g: BatchNormGrads,
    p: BatchNormParams,
    shape: BatchNormShape,
  ): void {
    checkBatchNormBackward(this, x, y, dy, g, p, shape);
    bn.batchNormBackward(
      f32(x),
      f32(y),
      f32(dy),
      f32(g.dx),
      f32(p.gamma),
      f32(g.dGamma),
      f32(g.dBeta),
      f32(p.saveMean),
      f32(p.saveInvStd),
      shape,
      g.dResidual && f32(g.dResidual),
      this.#run(),
    );
  }

  reluForward(x: DeviceBuffer, y: DeviceBuffer, length: number): void {
    checkElementwise("reluForward", this, [["x", x], ["y", y]], length);
    ew.reluForward(f32(x), f32(y), length, this.#run());
  }

  reluBackward(y: DeviceBuffer, dy: DeviceBuffer, dx: DeviceBuffer, length: number): void {
    checkElementwise("reluBackward", this, [["y", y], ["dy", dy], ["dx", dx]], length);
    ew.reluBackward(f32(y), f32(dy), f32(dx), length, this.#run());
  }

  add(a: DeviceBuffer, b: DeviceBuffer, out: DeviceBuffer, length: number): void {
    checkElementwise("add", this, [["a", a], ["b", b], ["out", out]], length);
    ew.add(f32(a), f32(b), f32(out), length, this.#run());
  }

  globalAvgPoolForward(x: DeviceBuffer, y: DeviceBuffer, shape: PoolShape): void {
    checkPool("globalAvgPoolForward", this, ["x", x], ["y", y], shape);
    ew.globalAvgPoolForward(f32(x), f32(y), shape);
  }

  globalAvgPoolBackward(dy: DeviceBuffer, dx: DeviceBuffer, shape: PoolShape): void {
    checkPool("globalAvgPoolBackward", this, ["dx", dx], ["dy", dy], shape);
    ew.globalAvgPoolBackward(f32(dy), f32(dx), shape);
  }

  shortcutForward(x: DeviceBuffer, y: DeviceBuffer, shape: ShortcutShape): void {
    checkShortcut("shortcutForward", this, ["x", x], ["y", y], shape);
    ew.shortcutForward(f32(x), f32(y), shape);
  }

  shortcutBackward(dy: DeviceBuffer, dx: DeviceBuffer, shape: ShortcutShape): void {
    checkShortcut("shortcutBackward", this, ["dx", dx], ["dy", dy], shape);
    ew.shortcutBackward(f32(dy), f32(dx), shape);
  }

  sigmoidLoss(
    logits: DeviceBuffer,
    labels: DeviceBuffer,
    grad: DeviceBuffer,
    rowLoss: DeviceBuffer,
    p: SigmoidLossParams,
  ): void {
    checkSigmoidLoss(this, logits, labels, grad, rowLoss, p);
    const arrays = mapLossArrays<loss.SigmoidLossArrays>(p, (b) => data(b as DeviceBuffer));
    loss.sigmoidLoss(f32(logits), i32(labels), f32(grad), f32(rowLoss), arrays, this.#run());
  }

  softmaxLoss(
    logits: DeviceBuffer,
    labels: DeviceBuffer,
    grad: DeviceBuffer,
    rowLoss: DeviceBuffer,
    p: SoftmaxLossParams,
  ): void {
    checkSoftmaxLoss(this, logits, labels, grad, rowLoss, p);
    const arrays = mapLossArrays<loss.SoftmaxLossArrays>(p, (b) => data(b as DeviceBuffer));
    loss.softmaxLoss(f32(logits), i32(labels), f32(grad), f32(rowLoss), arrays, this.#run());
  }

  eqlv2Loss(
    logits: DeviceBuffer,
    labels: DeviceBuffer,
    grad: DeviceBuffer,
    rowLoss: DeviceBuffer,
    gradStats: DeviceBuffer,
    p: Eqlv2LossParams,
  ): void {
    checkEqlv2Loss(this, logits, labels, grad, rowLoss, gradStats, p);
    const arrays = mapLossArrays<loss.Eqlv2LossArrays>(p, (b) => data(b as DeviceBuffer));
    loss.eqlv2Loss(
      f32(logits),
      i32(labels),
      f32(grad),
      f32(rowLoss),
      f32(gradStats),
      arrays,
      this.#run(),
    );
  }

  seesawLoss(
    logits: DeviceBuffer,
    labels: DeviceBuffer,
    grad: DeviceBuffer,
    rowLoss: DeviceBuffer,
    p: SeesawLossParams,
  ): void {
    checkSeesawLoss(this, logits, labels, grad, rowLoss, p);
    const arrays = mapLossArrays<loss.SeesawLossArrays>(p, (b) => data(b as DeviceBuffer));
    loss.seesawLoss(f32(logits), i32(labels), f32(grad), f32(rowLoss), arrays, this.#run());
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
    loss.smoothL1Loss(
      f32(pred),
      f32(target),
      f32(rowWeight),
      f32(grad),
      f32(rowLoss),
      shape,
      this.#run(),
    );
  }

  sgdUpdate(
    param: DeviceBuffer,
    grad: DeviceBuffer,
    momentumBuf: DeviceBuffer,
    args: SgdArgs,
  ): void {
    checkSgd(this, param, grad, momentumBuf, args);
    ew.sgdUpdate(f32(param), f32(grad), f32(momentumBuf), args, this.#run());
  }
}

let shared: CpuDevice | undefined;

/**
 * The shared CPU device (created on first use, with the environment's defaults) when called
 * without options; a new device with those choices when given options.
 *
 * @param options Kernels, GEMM backend and threads (see {@linkcode CpuDeviceOptions}).
 * @returns The shared `CpuDevice`, or a new one.
 *
 * @example
 * ```ts
 * import { cpuDevice } from "@eql/eql";
 * cpuDevice().kind; // "cpu"
 * cpuDevice() === cpuDevice(); // true
 * cpuDevice({ kernels: "typescript" }).kernels; // "typescript"
 * ```
 */
export function cpuDevice(options?: CpuDeviceOptions): CpuDevice {
  if (options !== undefined) return new CpuDevice(options);
  return shared ??= new CpuDevice();
}
