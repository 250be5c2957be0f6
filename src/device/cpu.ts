/**
 * The CPU device: buffers are typed arrays, GEMM goes through OpenBLAS (`ffi/openblas.ts`) with a
 * blocked TypeScript GEMM as the fallback, and every other operation is a plain loop in
 * `src/device/cpu/`. Operations run synchronously.
 *
 * @module
 */

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
import * as ew from "./cpu/elementwise.ts";
import { gemmBackend, sgemm } from "./cpu/gemm.ts";
import * as conv from "./cpu/conv.ts";
import * as bn from "./cpu/batchnorm.ts";
import * as loss from "./cpu/losses.ts";
import { cpuKernels } from "../../ffi/cpu_kernels.ts";

/** A CPU buffer: a typed array plus its dtype. */
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

  /** Marks the buffer freed and drops its storage. */
  release(): void {
    if (this.#freed) throw new Error("The buffer has already been freed");
    this.#freed = true;
    this.data = this.dtype === "f32" ? new Float32Array(0) : new Int32Array(0);
  }
}

/** A byte count in the largest binary unit that keeps it at or above 1. */
function formatBytes(bytes: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes, u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${bytes} bytes` : `${v.toFixed(1)} ${units[u]}`;
}

function checkRange(name: string, buf: DeviceBuffer, offset: number, length: number): void {
  if (!Number.isInteger(offset) || offset < 0 || offset + length > buf.length) {
    throw new RangeError(
      `${name}: range [${offset}, ${
        offset + length
      }) must lie inside the buffer of ${buf.length} elements`,
    );
  }
}

/**
 * The CPU implementation of the device contract.
 *
 * @example
 * ```ts
 * import { cpuDevice } from "./cpu.ts";
 * const dev = cpuDevice();
 * console.log(dev.description); // e.g. "CPU (kernels: native, GEMM: openblas)"
 * ```
 */
export class CpuDevice implements Device {
  /** Always `"cpu"`. */
  readonly kind = "cpu" as const;
  /** Buffers are typed arrays: the garbage collector frees them. */
  readonly collectsGarbage = true;

  /** Names the kernels (native or TypeScript) and the GEMM backend in use. */
  get description(): string {
    return `CPU (kernels: ${
      cpuKernels() === null ? "typescript" : "native"
    }, GEMM: ${gemmBackend()})`;
  }

  #f(buf: DeviceBuffer, name: string): Float32Array {
    const b = this.#own(buf, name);
    if (b.dtype !== "f32") throw new TypeError(`${name} must be an f32 buffer, got ${b.dtype}`);
    return b.data as Float32Array;
  }

  #i(buf: DeviceBuffer, name: string): Int32Array {
    const b = this.#own(buf, name);
    if (b.dtype !== "i32") throw new TypeError(`${name} must be an i32 buffer, got ${b.dtype}`);
    return b.data as Int32Array;
  }

  #own(buf: DeviceBuffer, name: string): CpuBuffer {
    if (!(buf instanceof CpuBuffer) || buf.device !== this) {
      throw new TypeError(
        `${name} must be a buffer of the CPU device, got one of ${buf.device.kind}`,
      );
    }
    if (buf.freed) throw new Error(`${name} has been freed`);
    return buf;
  }

  alloc(dtype: DType, length: number): DeviceBuffer {
    if (dtype !== "f32" && dtype !== "i32") {
      throw new TypeError(`dtype must be "f32" or "i32", got ${String(dtype)}`);
    }
    if (!Number.isInteger(length) || length < 0) {
      throw new RangeError(`length must be a non-negative integer, got ${length}`);
    }
    try {
      return new CpuBuffer(this, dtype, length);
    } catch (e) {
      // V8 says only "Array buffer allocation failed" (or "Invalid typed array length").
      throw new RangeError(
        `cannot allocate ${length} ${dtype} elements (${
          formatBytes(4 * length)
        }) on the CPU device: ${(e as Error).message}`,
        { cause: e },
      );
    }
  }

  free(buffer: DeviceBuffer): void {
    this.#own(buffer, "buffer").release();
  }

  upload(buffer: DeviceBuffer, data: Float32Array | Int32Array, offset = 0): void {
    const b = this.#own(buffer, "buffer");
    checkRange("upload", b, offset, data.length);
    if ((b.dtype === "f32") !== (data instanceof Float32Array)) {
      throw new TypeError(
        `upload: a ${b.dtype} buffer needs ${
          b.dtype === "f32" ? "a Float32Array" : "an Int32Array"
        }`,
      );
    }
    b.data.set(data, offset);
  }

  download(buffer: DeviceBuffer, out: Float32Array | Int32Array, offset = 0): void {
    const b = this.#own(buffer, "buffer");
    checkRange("download", b, offset, out.length);
    if ((b.dtype === "f32") !== (out instanceof Float32Array)) {
      throw new TypeError(
        `download: a ${b.dtype} buffer needs ${
          b.dtype === "f32" ? "a Float32Array" : "an Int32Array"
        }`,
      );
    }
    out.set(b.data.subarray(offset, offset + out.length));
  }

  copy(dst: DeviceBuffer, src: DeviceBuffer, length: number, dstOffset = 0, srcOffset = 0): void {
    const d = this.#own(dst, "dst"), s = this.#own(src, "src");
    if (d.dtype !== s.dtype) throw new TypeError(`copy: dst is ${d.dtype} but src is ${s.dtype}`);
    checkRange("copy dst", d, dstOffset, length);
    checkRange("copy src", s, srcOffset, length);
    d.data.set(s.data.subarray(srcOffset, srcOffset + length), dstOffset);
  }

  fill(buffer: DeviceBuffer, value: number, length: number, offset = 0): void {
    const b = this.#own(buffer, "buffer");
    checkRange("fill", b, offset, length);
    b.data.fill(value, offset, offset + length);
  }

  sync(): void {}

  dispose(): void {}

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
    sgemm(
      transA,
      transB,
      m,
      n,
      k,
      alpha,
      this.#f(a, "a"),
      this.#f(b, "b"),
      beta,
      this.#f(c, "c"),
      bias ? this.#f(bias, "bias") : undefined,
    );
  }

  conv2dForward(x: DeviceBuffer, w: DeviceBuffer, y: DeviceBuffer, shape: Conv2dShape): void {
    conv.conv2dForward(this.#f(x, "x"), this.#f(w, "w"), this.#f(y, "y"), shape);
  }

  conv2dBackwardData(
    w: DeviceBuffer,
    dy: DeviceBuffer,
    dx: DeviceBuffer,
    shape: Conv2dShape,
  ): void {
    conv.conv2dBackwardData(this.#f(w, "w"), this.#f(dy, "dy"), this.#f(dx, "dx"), shape);
  }

  conv2dBackwardFilter(
    x: DeviceBuffer,
    dy: DeviceBuffer,
    dw: DeviceBuffer,
    shape: Conv2dShape,
  ): void {
    conv.conv2dBackwardFilter(this.#f(x, "x"), this.#f(dy, "dy"), this.#f(dw, "dw"), shape);
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
    this.#forwardTraining(
      false,
      x,
      y,
      undefined,
      gamma,
      beta,
      runningMean,
      runningVar,
      saveMean,
      saveInvStd,
      shape,
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
    bn.batchNormForwardInference(
      this.#f(x, "x"),
      this.#f(y, "y"),
      this.#f(gamma, "gamma"),
      this.#f(beta, "beta"),
      this.#f(runningMean, "runningMean"),
      this.#f(runningVar, "runningVar"),
      shape,
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
    this.#backward(
      x,
      undefined,
      dy,
      dx,
      undefined,
      gamma,
      dGamma,
      dBeta,
      saveMean,
      saveInvStd,
      shape,
    );
  }

  batchNormReluForwardTraining(
    x: DeviceBuffer,
    y: DeviceBuffer,
    residual: DeviceBuffer | undefined,
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
    this.#forwardTraining(
      true,
      x,
      y,
      residual,
      gamma,
      beta,
      runningMean,
      runningVar,
      saveMean,
      saveInvStd,
      shape,
      momentum,
      eps,
    );
  }

  batchNormReluBackward(
    x: DeviceBuffer,
    y: DeviceBuffer,
    dy: DeviceBuffer,
    dx: DeviceBuffer,
    dResidual: DeviceBuffer | undefined,
    gamma: DeviceBuffer,
    dGamma: DeviceBuffer,
    dBeta: DeviceBuffer,
    saveMean: DeviceBuffer,
    saveInvStd: DeviceBuffer,
    shape: BatchNormShape,
  ): void {
    this.#backward(x, y, dy, dx, dResidual, gamma, dGamma, dBeta, saveMean, saveInvStd, shape);
  }

  /** The batch-norm training forward, with the ReLU tail (and residual) when `relu` is set. */
  #forwardTraining(
    relu: boolean,
    x: DeviceBuffer,
    y: DeviceBuffer,
    residual: DeviceBuffer | undefined,
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
    bn.batchNormForwardTraining(
      this.#f(x, "x"),
      this.#f(y, "y"),
      this.#f(gamma, "gamma"),
      this.#f(beta, "beta"),
      this.#f(runningMean, "runningMean"),
      this.#f(runningVar, "runningVar"),
      this.#f(saveMean, "saveMean"),
      this.#f(saveInvStd, "saveInvStd"),
      shape,
      momentum,
      eps,
      relu ? { residual: residual && this.#f(residual, "residual") } : undefined,
    );
  }

  /** The batch-norm backward, undoing a ReLU tail first when its output `y` is given. */
  #backward(
    x: DeviceBuffer,
    y: DeviceBuffer | undefined,
    dy: DeviceBuffer,
    dx: DeviceBuffer,
    dResidual: DeviceBuffer | undefined,
    gamma: DeviceBuffer,
    dGamma: DeviceBuffer,
    dBeta: DeviceBuffer,
    saveMean: DeviceBuffer,
    saveInvStd: DeviceBuffer,
    shape: BatchNormShape,
  ): void {
    bn.batchNormBackward(
      this.#f(x, "x"),
      this.#f(dy, "dy"),
      this.#f(dx, "dx"),
      this.#f(gamma, "gamma"),
      this.#f(dGamma, "dGamma"),
      this.#f(dBeta, "dBeta"),
      this.#f(saveMean, "saveMean"),
      this.#f(saveInvStd, "saveInvStd"),
      shape,
      y && { y: this.#f(y, "y"), dResidual: dResidual && this.#f(dResidual, "dResidual") },
    );
  }

  reluForward(x: DeviceBuffer, y: DeviceBuffer, length: number): void {
    ew.reluForward(this.#f(x, "x"), this.#f(y, "y"), length);
  }

  reluBackward(y: DeviceBuffer, dy: DeviceBuffer, dx: DeviceBuffer, length: number): void {
    ew.reluBackward(this.#f(y, "y"), this.#f(dy, "dy"), this.#f(dx, "dx"), length);
  }

  add(a: DeviceBuffer, b: DeviceBuffer, out: DeviceBuffer, length: number): void {
    ew.add(this.#f(a, "a"), this.#f(b, "b"), this.#f(out, "out"), length);
  }

  globalAvgPoolForward(x: DeviceBuffer, y: DeviceBuffer, n: number, c: number, hw: number): void {
    ew.globalAvgPoolForward(this.#f(x, "x"), this.#f(y, "y"), n, c, hw);
  }

  globalAvgPoolBackward(
    dy: DeviceBuffer,
    dx: DeviceBuffer,
    n: number,
    c: number,
    hw: number,
  ): void {
    ew.globalAvgPoolBackward(this.#f(dy, "dy"), this.#f(dx, "dx"), n, c, hw);
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
    ew.shortcutForward(this.#f(x, "x"), this.#f(y, "y"), n, cIn, h, w, cOut);
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
    ew.shortcutBackward(this.#f(dy, "dy"), this.#f(dx, "dx"), n, cIn, h, w, cOut);
  }

  sigmoidLoss(
    logits: DeviceBuffer,
    labels: DeviceBuffer,
    grad: DeviceBuffer,
    rowLoss: DeviceBuffer,
    p: SigmoidLossParams,
  ): void {
    loss.sigmoidLoss(
      this.#f(logits, "logits"),
      this.#i(labels, "labels"),
      this.#f(grad, "grad"),
      this.#f(rowLoss, "rowLoss"),
      {
        n: p.n,
        c: p.c,
        scale: p.scale,
        suppress: p.suppress ? this.#f(p.suppress, "suppress") : undefined,
        backgroundExempt: p.backgroundExempt,
        classWeight: p.classWeight ? this.#f(p.classWeight, "classWeight") : undefined,
        focalGamma: p.focalGamma,
        focalAlpha: p.focalAlpha,
        imageOfRow: p.imageOfRow ? this.#i(p.imageOfRow, "imageOfRow") : undefined,
        keepMask: p.keepMask ? this.#i(p.keepMask, "keepMask") : undefined,
      },
    );
  }

  softmaxLoss(
    logits: DeviceBuffer,
    labels: DeviceBuffer,
    grad: DeviceBuffer,
    rowLoss: DeviceBuffer,
    p: SoftmaxLossParams,
  ): void {
    loss.softmaxLoss(
      this.#f(logits, "logits"),
      this.#i(labels, "labels"),
      this.#f(grad, "grad"),
      this.#f(rowLoss, "rowLoss"),
      {
        n: p.n,
        c: p.c,
        scale: p.scale,
        suppress: p.suppress ? this.#f(p.suppress, "suppress") : undefined,
        gammaThreshold: p.gammaThreshold,
        seed: p.seed,
        counter: p.counter,
        classWeight: p.classWeight ? this.#f(p.classWeight, "classWeight") : undefined,
        logitBias: p.logitBias ? this.#f(p.logitBias, "logitBias") : undefined,
      },
    );
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
    loss.smoothL1Loss(
      this.#f(pred, "pred"),
      this.#f(target, "target"),
      this.#f(rowWeight, "rowWeight"),
      this.#f(grad, "grad"),
      this.#f(rowLoss, "rowLoss"),
      n,
      d,
      beta,
      scale,
    );
  }

  sgdUpdate(
    param: DeviceBuffer,
    grad: DeviceBuffer,
    momentumBuf: DeviceBuffer,
    length: number,
    params: SgdParams,
  ): void {
    ew.sgdUpdate(
      this.#f(param, "param"),
      this.#f(grad, "grad"),
      this.#f(momentumBuf, "momentumBuf"),
      length,
      params,
    );
  }
}

let shared: CpuDevice | undefined;

/**
 * The process-wide CPU device (created on first use).
 *
 * @returns The shared `CpuDevice`.
 *
 * @example
 * ```ts
 * import { cpuDevice } from "./cpu.ts";
 * cpuDevice().kind; // "cpu"
 * ```
 */
export function cpuDevice(): CpuDevice {
  return shared ??= new CpuDevice();
}
