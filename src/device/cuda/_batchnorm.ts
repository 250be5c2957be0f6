/**
 * Batch normalisation through cuDNN (`CUDNN_BATCHNORM_SPATIAL`: statistics per channel over
 * N·H·W). The data is described as NCHW `[n, c, hw, 1]`, which covers both the convolutional case
 * and the `[N, C]` features of a fully connected layer (hw = 1); the per-channel descriptor is
 * derived from it with `cudnnDeriveBNTensorDescriptor`. Descriptors are kept per shape.
 *
 * cuDNN matches the device contract: `exponentialAverageFactor` is the momentum
 * (`running = (1 − m)·running + m·batch`), the running variance is updated with the unbiased batch
 * variance, and `resultSaveInvVariance` is `1/sqrt(var + eps)` with the biased variance. The
 * residual-add and ReLU tail of `BatchNormShape` is not cuDNN's: the device runs it as the
 * project's `batch_norm_tail` kernel.
 *
 * @module
 */

import { checkCudnn, CUDNN, type CudnnSymbols } from "../../../ffi/cudnn.ts";
import { handleFrom } from "../../../ffi/cuda.ts";
import type { BatchNormParams, BatchNormShape } from "../device.ts";

/** The per-channel buffers of a batch norm as device pointers. */
export type BatchNormPointers = { readonly [K in keyof BatchNormParams]: bigint };

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
 * bn.forwardTraining(x, y, pointers, { n: 8, c: 16, hw: 1024, eps: 1e-5, momentum: 0.1, relu: false });
 * ```
 */
export class CudnnBatchNorm {
  #dnn: CudnnSymbols;
  #handle: Deno.PointerObject;
  #plans = new Map<string, BnPlan>();
  #one = new Float32Array([1]);
  #zero = new Float32Array([0]);
  #slot = new BigUint64Array(1);

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
   * Training forward (see `Device.batchNormForwardTraining`, without the tail): writes y, the
   * saved mean and inverse standard deviation, and updates the running statistics.
   *
   * @param x Input [n, c, hw].
   * @param y Output [n, c, hw].
   * @param p The per-channel buffers.
   * @param shape The geometry, eps and momentum.
   */
  forwardTraining(x: bigint, y: bigint, p: BatchNormPointers, shape: BatchNormShape): void {
    const plan = this.#plan(shape);
    checkCudnn(
      this.#dnn.cudnnBatchNormalizationForwardTraining(
        this.#handle,
        CUDNN.BATCHNORM_SPATIAL,
        this.#one,
        this.#zero,
        plan.x,
        x,
        plan.x,
        y,
        plan.stats,
        p.gamma,
        p.beta,
        shape.momentum,
        p.runningMean,
        p.runningVar,
        shape.eps,
        p.saveMean,
        p.saveInvStd,
      ),
      `cudnnBatchNormalizationForwardTraining(n ${shape.n}, c ${shape.c}, hw ${shape.hw}, momentum ${shape.momentum}, eps ${shape.eps})`,
    );
  }

  /**
   * Inference forward with the running statistics (without the tail).
   *
   * @param x Input.
   * @param y Output.
   * @param p The per-channel buffers (gamma, beta and the running statistics are read).
   * @param shape The geometry and eps.
   */
  forwardInference(x: bigint, y: bigint, p: BatchNormPointers, shape: BatchNormShape): void {
    const plan = this.#plan(shape);
    checkCudnn(
      this.#dnn.cudnnBatchNormalizationForwardInference(
        this.#handle,
        CUDNN.BATCHNORM_SPATIAL,
        this.#one,
        this.#zero,
        plan.x,
        x,
        plan.x,
        y,
        plan.stats,
        p.gamma,
        p.beta,
        p.runningMean,
        p.runningVar,
        shape.eps,
      ),
      `cudnnBatchNormalizationForwardInference(n ${shape.n}, c ${shape.c}, hw ${shape.hw}, eps ${shape.eps})`,
    );
  }

  /**
   * Backward of the training forward: overwrites dx, dGamma and dBeta from the gradient `dy` of
   * the normalised output, using the saved batch statistics.
   *
   * @param x Forward input.
   * @param dy Gradient of the batch norm's output.
   * @param dx Gradient of the input (written).
   * @param dGamma Gradient of the scale (written).
   * @param dBeta Gradient of the shift (written).
   * @param p The per-channel buffers (gamma and the saved statistics are read).
   * @param shape The geometry and eps.
   */
  backward(
    x: bigint,
    dy: bigint,
    dx: bigint,
    dGamma: bigint,
    dBeta: bigint,
    p: BatchNormPointers,
    shape: BatchNormShape,
  ): void {
    const plan = this.#plan(shape);
    checkCudnn(
      this.#dnn.cudnnBatchNormalizationBackward(
        this.#handle,
        CUDNN.BATCHNORM_SPATIAL,
        this.#one,
        this.#zero,
        this.#one,
        this.#zero,
        plan.x,
        x,
        plan.x,
        dy,
        plan.x,
        dx,
        plan.stats,
        p.gamma,
        dGamma,
        dBeta,
        shape.eps,
        p.saveMean,
        p.saveInvStd,
      ),
      `cudnnBatchNormalizationBackward(n ${shape.n}, c ${shape.c}, hw ${shape.hw})`,
    );
  }

  #destroy(p: BnPlan): void {
    checkCudnn(this.#dnn.cudnnDestroyTensorDescriptor(p.x), "cudnnDestroyTensorDescriptor");
    checkCudnn(this.#dnn.cudnnDestroyTensorDescriptor(p.stats), "cudnnDestroyTensorDescriptor");
  }

  /** Destroys every descriptor. */
  dispose(): void {
    for (const p of this.#plans.values()) this.#destroy(p);
    this.#plans.clear();
  }
}
