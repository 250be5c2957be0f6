/**
 * Batch normalisation through cuDNN (`CUDNN_BATCHNORM_SPATIAL`: statistics per channel over
 * N·H·W). The data is described as NCHW `[n, c, hw, 1]`, which covers both the convolutional case
 * and the `[N, C]` features of a fully connected layer (hw = 1); the per-channel descriptor is
 * derived from it with `cudnnDeriveBNTensorDescriptor`. Descriptors are kept per shape.
 *
 * cuDNN matches the device contract: `exponentialAverageFactor` is the momentum
 * (`running = (1 − m)·running + m·batch`), the running variance is updated with the unbiased batch
 * variance, and `resultSaveInvVariance` is `1/sqrt(var + eps)` with the biased variance.
 *
 * @module
 */

import { checkCudnn, CUDNN, type CudnnSymbols } from "../../../ffi/cudnn.ts";
import { handleFrom } from "../../../ffi/cuda.ts";
import type { BatchNormShape } from "../device.ts";

interface BnPlan {
  x: Deno.PointerObject;
  stats: Deno.PointerObject;
}

/**
 * cuDNN batch-norm calls with cached descriptors.
 *
 * @example
 * ```ts ignore
 * const bn = new CudnnBatchNorm(cudnn(), handle);
 * bn.forwardTraining(x, y, gamma, beta, rm, rv, sm, si, { n: 8, c: 16, hw: 1024 }, 0.1, 1e-5);
 * ```
 */
export class CudnnBatchNorm {
  #dnn: CudnnSymbols;
  #handle: Deno.PointerObject;
  #plans = new Map<string, BnPlan>();
  #one = new Float32Array([1]);
  #zero = new Float32Array([0]);
  #slot = new BigUint64Array(1);
  // The epsilon each saveInvStd buffer was computed with, for the matching backward call.
  #epsOf = new Map<bigint, number>();

  /**
   * Wraps a cuDNN handle; descriptors are created on first use.
   *
   * @param dnn The cuDNN symbols.
   * @param handle A cuDNN handle bound to the device's stream.
   */
  constructor(dnn: CudnnSymbols, handle: Deno.PointerObject) {
    this.#dnn = dnn;
    this.#handle = handle;
  }

  #plan(s: BatchNormShape): BnPlan {
    const key = `${s.n},${s.c},${s.hw}`;
    const cached = this.#plans.get(key);
    if (cached) return cached;
    const d = this.#dnn;
    checkCudnn(d.cudnnCreateTensorDescriptor(this.#slot), "cudnnCreateTensorDescriptor");
    const x = handleFrom(this.#slot, "cudnnCreateTensorDescriptor");
    checkCudnn(d.cudnnCreateTensorDescriptor(this.#slot), "cudnnCreateTensorDescriptor");
    const stats = handleFrom(this.#slot, "cudnnCreateTensorDescriptor");
    const plan = { x, stats };
    try {
      checkCudnn(
        d.cudnnSetTensor4dDescriptor(x, CUDNN.TENSOR_NCHW, CUDNN.DATA_FLOAT, s.n, s.c, s.hw, 1),
        `cudnnSetTensor4dDescriptor(x [${s.n}, ${s.c}, ${s.hw}, 1])`,
      );
      checkCudnn(
        d.cudnnDeriveBNTensorDescriptor(stats, x, CUDNN.BATCHNORM_SPATIAL),
        `cudnnDeriveBNTensorDescriptor(c = ${s.c})`,
      );
    } catch (e) {
      this.#destroy(plan);
      throw e;
    }
    this.#plans.set(key, plan);
    return plan;
  }

  /**
   * Training forward (see `Device.batchNormForwardTraining`).
   *
   * @param x Input [n, c, hw].
   * @param y Output [n, c, hw].
   * @param gamma Scale [c].
   * @param beta Shift [c].
   * @param runningMean Running mean [c] (updated).
   * @param runningVar Running variance [c] (updated).
   * @param saveMean Batch mean [c] (written).
   * @param saveInvStd `1/sqrt(var + eps)` [c] (written).
   * @param shape The geometry.
   * @param momentum Weight of the batch statistics in the running update.
   * @param eps Added to the variance.
   */
  forwardTraining(
    x: bigint,
    y: bigint,
    gamma: bigint,
    beta: bigint,
    runningMean: bigint,
    runningVar: bigint,
    saveMean: bigint,
    saveInvStd: bigint,
    shape: BatchNormShape,
    momentum: number,
    eps: number,
  ): void {
    const p = this.#plan(shape);
    checkCudnn(
      this.#dnn.cudnnBatchNormalizationForwardTraining(
        this.#handle,
        CUDNN.BATCHNORM_SPATIAL,
        this.#one,
        this.#zero,
        p.x,
        x,
        p.x,
        y,
        p.stats,
        gamma,
        beta,
        momentum,
        runningMean,
        runningVar,
        eps,
        saveMean,
        saveInvStd,
      ),
      `cudnnBatchNormalizationForwardTraining(n ${shape.n}, c ${shape.c}, hw ${shape.hw}, momentum ${momentum}, eps ${eps})`,
    );
    this.#epsOf.set(saveInvStd, eps);
  }

  /**
   * Inference forward with the running statistics.
   *
   * @param x Input.
   * @param y Output.
   * @param gamma Scale.
   * @param beta Shift.
   * @param runningMean Running mean.
   * @param runningVar Running variance.
   * @param shape The geometry.
   * @param eps Added to the variance.
   */
  forwardInference(
    x: bigint,
    y: bigint,
    gamma: bigint,
    beta: bigint,
    runningMean: bigint,
    runningVar: bigint,
    shape: BatchNormShape,
    eps: number,
  ): void {
    const p = this.#plan(shape);
    checkCudnn(
      this.#dnn.cudnnBatchNormalizationForwardInference(
        this.#handle,
        CUDNN.BATCHNORM_SPATIAL,
        this.#one,
        this.#zero,
        p.x,
        x,
        p.x,
        y,
        p.stats,
        gamma,
        beta,
        runningMean,
        runningVar,
        eps,
      ),
      `cudnnBatchNormalizationForwardInference(n ${shape.n}, c ${shape.c}, hw ${shape.hw}, eps ${eps})`,
    );
  }

  /**
   * Backward of the training forward: overwrites dx, dGamma and dBeta, using the saved batch
   * statistics (cuDNN is given the epsilon the forward used, remembered per `saveInvStd` buffer).
   *
   * @param x Forward input.
   * @param dy Gradient of the output.
   * @param dx Gradient of the input (written).
   * @param gamma Scale.
   * @param dGamma Gradient of the scale (written).
   * @param dBeta Gradient of the shift (written).
   * @param saveMean Batch mean from the forward.
   * @param saveInvStd Inverse standard deviation from the forward.
   * @param shape The geometry.
   */
  backward(
    x: bigint,
    dy: bigint,
    dx: bigint,
    gamma: bigint,
    dGamma: bigint,
    dBeta: bigint,
    saveMean: bigint,
    saveInvStd: bigint,
    shape: BatchNormShape,
  ): void {
    const p = this.#plan(shape);
    const eps = this.#epsOf.get(saveInvStd) ?? 1e-5;
    checkCudnn(
      this.#dnn.cudnnBatchNormalizationBackward(
        this.#handle,
        CUDNN.BATCHNORM_SPATIAL,
        this.#one,
        this.#zero,
        this.#one,
        this.#zero,
        p.x,
        x,
        p.x,
        dy,
        p.x,
        dx,
        p.stats,
        gamma,
        dGamma,
        dBeta,
        eps,
        saveMean,
        saveInvStd,
      ),
      `cudnnBatchNormalizationBackward(n ${shape.n}, c ${shape.c}, hw ${shape.hw})`,
    );
  }

  /** Forgets the epsilon recorded for a freed buffer address. */
  forget(address: bigint): void {
    this.#epsOf.delete(address);
  }

  #destroy(p: BnPlan): void {
    checkCudnn(this.#dnn.cudnnDestroyTensorDescriptor(p.x), "cudnnDestroyTensorDescriptor");
    checkCudnn(this.#dnn.cudnnDestroyTensorDescriptor(p.stats), "cudnnDestroyTensorDescriptor");
  }

  /** Destroys every descriptor. */
  dispose(): void {
    for (const p of this.#plans.values()) this.#destroy(p);
    this.#plans.clear();
    this.#epsOf.clear();
  }
}
