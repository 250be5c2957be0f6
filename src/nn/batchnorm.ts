/**
 * `BatchNorm2d`: per-channel batch normalisation over `[N, C, H, W]` (statistics over N·H·W
 * values) or `[N, C]` (over N values), `y = γ · (x − μ) / √(σ² + ε) + β`, like PyTorch's
 * `nn.BatchNorm2d` / `nn.BatchNorm1d`.
 *
 * Training mode normalises with the batch mean and biased batch variance and updates the running
 * statistics, `running = (1 − momentum)·running + momentum·batch` (the running variance from the
 * unbiased batch variance), and counts the batches in `numBatchesTracked`. Evaluation mode
 * normalises with the running statistics.
 *
 * With `relu: true` the layer is "batch norm, plus an optional residual, then ReLU",
 * `y = max(bn(x) + residual, 0)` (the tail of a residual block). The tail is part of the device's
 * batch-norm ops (`shape.relu`, the residual and `dResidual`), so the layer makes one call per
 * pass whatever the device; a device without a fused kernel composes the tail itself.
 *
 * Kept for backward: a reference to the input `x`, the output (for the ReLU's mask) and the
 * per-channel batch mean and inverse standard deviation saved by the training forward.
 *
 * Initial values as in PyTorch: γ = 1, β = 0, running mean 0, running variance 1.
 *
 * @module
 */

import type { BatchNormGrads, BatchNormParams, BatchNormShape, Device } from "../device/device.ts";
import { cpuDevice } from "../device/cpu.ts";
import { type Tensor, tensor, zeros } from "../tensor.ts";
import type { Parameter, StateTensor } from "./layer.ts";
import type { Counter, CountingLayer } from "./named.ts";
import { checkGradient, checkInput, reuse } from "./_check.ts";

/** Options of {@linkcode BatchNorm2d}. */
export interface BatchNormOptions {
  /** Weight of the current batch in the running statistics (default 0.1). */
  momentum?: number;
  /** Added to the variance before the square root (default 1e-5). */
  eps?: number;
  /** Where the tensors live (default: the CPU device). */
  device?: Device;
  /** Follow the normalisation with a ReLU, and accept a residual added before it (default false). */
  relu?: boolean;
}

/**
 * Batch normalisation with learnable scale and shift.
 *
 * @example
 * ```ts
 * import { BatchNorm2d } from "@eql/eql";
 * import { tensor } from "@eql/eql";
 * const bn = new BatchNorm2d(2);
 * const y = bn.forward(tensor([1, 2, 3, 4], [2, 2]), true);
 * y.shape; // [2, 2]
 * bn.numBatchesTracked; // 1
 * ```
 */
export class BatchNorm2d implements CountingLayer {
  /** Channels. */
  readonly channels: number;
  /** Running-statistics momentum. */
  readonly momentum: number;
  /** Variance epsilon. */
  readonly eps: number;
  /** The device holding the tensors. */
  readonly device: Device;
  /** Whether a ReLU follows the normalisation (and the residual). */
  readonly relu: boolean;
  #gamma: Parameter;
  #beta: Parameter;
  #runningMean: Tensor<"f32">;
  #runningVar: Tensor<"f32">;
  #saveMean: Tensor<"f32">;
  #saveInvStd: Tensor<"f32">;
  #batches = 0;
  #x?: Tensor<"f32">;
  #y?: Tensor<"f32">;
  #dx?: Tensor<"f32">;
  /** The residual's gradient (the ReLU-masked output gradient), after a forward with a residual. */
  #dResidual?: Tensor<"f32">;
  #shape?: BatchNormShape;
  #trained = false;
  #withResidual = false;
  #backwardDone = false;

  /**
   * Creates the layer.
   *
   * @param channels Number of channels C (≥ 1).
   * @param options Momentum, epsilon and device.
   */
  constructor(channels: number, options: BatchNormOptions = {}) {
    if (!Number.isInteger(channels) || channels < 1) {
      throw new RangeError(`channels must be an integer ≥ 1, got ${channels}`);
    }
    const momentum = options.momentum ?? 0.1, eps = options.eps ?? 1e-5;
    if (!(momentum >= 0 && momentum <= 1)) {
      throw new RangeError(`momentum must be in [0, 1], got ${momentum}`);
    }
    if (!(eps > 0) || !Number.isFinite(eps)) {
      throw new RangeError(`eps must be a finite number > 0, got ${eps}`);
    }
    this.channels = channels;
    this.momentum = momentum;
    this.eps = eps;
    this.relu = options.relu ?? false;
    const dev = this.device = options.device ?? cpuDevice();
    const ones = new Float32Array(channels).fill(1);
    this.#gamma = {
      name: "weight",
      value: tensor(ones, [channels], dev),
      grad: zeros([channels], dev),
      decay: false,
    };
    this.#beta = {
      name: "bias",
      value: zeros([channels], dev),
      grad: zeros([channels], dev),
      decay: false,
    };
    this.#runningMean = zeros([channels], dev);
    this.#runningVar = tensor(ones, [channels], dev);
    this.#saveMean = zeros([channels], dev);
    this.#saveInvStd = zeros([channels], dev);
  }

  /** Scale γ `[C]` (PyTorch name "weight"). */
  get weight(): Parameter {
    return this.#gamma;
  }

  /** Shift β `[C]` (PyTorch name "bias"). */
  get bias(): Parameter {
    return this.#beta;
  }

  /** Running mean `[C]`. */
  get runningMean(): Tensor<"f32"> {
    return this.#runningMean;
  }

  /** Running (unbiased) variance `[C]`. */
  get runningVar(): Tensor<"f32"> {
    return this.#runningVar;
  }

  /** Number of training-mode forward passes so far (PyTorch's `num_batches_tracked`). */
  get numBatchesTracked(): number {
    return this.#batches;
  }

  set numBatchesTracked(value: number) {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(`numBatchesTracked must be a non-negative safe integer, got ${value}`);
    }
    this.#batches = value;
  }

  /**
   * Normalises `x` `[N, C, H, W]` or `[N, C]` (then adds `residual` and applies the ReLU when
   * the layer has `relu: true`).
   *
   * @param x Input (kept until backward in training mode).
   * @param training Batch statistics (and running-statistics update) when true, running
   *   statistics when false.
   * @param residual Added before the ReLU, same shape as `x` (only with `relu: true`).
   * @returns The output, same shape as `x`, owned by the layer.
   */
  forward(x: Tensor<"f32">, training: boolean, residual?: Tensor<"f32">): Tensor<"f32"> {
    checkInput(
      "BatchNorm2d.forward: x",
      x,
      this.device,
      { ranks: [2, 4], layout: "[N, C, H, W] or [N, C]" },
      this.channels,
    );
    if (residual !== undefined) {
      if (!this.relu) {
        throw new RangeError("BatchNorm2d.forward: a residual needs a layer built with relu: true");
      }
      checkGradient("BatchNorm2d.forward: residual", residual, this.device, x);
    }
    const n = x.shape[0], hw = x.shape.length === 4 ? x.shape[2] * x.shape[3] : 1;
    const shape: BatchNormShape = {
      n,
      c: this.channels,
      hw,
      eps: this.eps,
      momentum: this.momentum,
      relu: this.relu,
    };
    const y = this.#y = reuse(this.#y, x.shape, this.device, "BatchNorm2d.forward: y");
    const params = this.#params();
    if (training) {
      // A single value per channel has no variance to normalise by (PyTorch refuses it too).
      if (n * hw < 2) {
        throw new RangeError(
          `BatchNorm2d.forward: training needs more than one value per channel, got x of shape [${
            x.shape.join(", ")
          }]`,
        );
      }
      this.device.batchNormForwardTraining(x.buffer, y.buffer, params, shape, residual?.buffer);
      this.#batches++;
      this.#x = x;
      this.#shape = shape;
      this.#trained = true;
      this.#withResidual = residual !== undefined;
      this.#backwardDone = false;
    } else {
      this.device.batchNormForwardInference(x.buffer, y.buffer, params, shape, residual?.buffer);
      this.#trained = false;
    }
    return y;
  }

  /** The per-channel buffers in the device's record. */
  #params(): BatchNormParams {
    return {
      gamma: this.#gamma.value.buffer,
      beta: this.#beta.value.buffer,
      runningMean: this.#runningMean.buffer,
      runningVar: this.#runningVar.buffer,
      saveMean: this.#saveMean.buffer,
      saveInvStd: this.#saveInvStd.buffer,
    };
  }

  /**
   * Writes the γ and β gradients and returns the input gradient of the last training forward
   * (and, after a forward with a residual, the residual's gradient: `residualGradient`).
   *
   * @param dy Gradient of the loss with respect to the last output.
   * @returns `∂L/∂x`, owned by the layer.
   */
  backward(dy: Tensor<"f32">): Tensor<"f32"> {
    checkGradient("BatchNorm2d.backward: dy", dy, this.device, this.#trained ? this.#y : undefined);
    const x = this.#x!, y = this.#y!, d = this.device;
    const dx = this.#dx = reuse(this.#dx, x.shape, d, "BatchNorm2d.backward: dx");
    const grads: BatchNormGrads = {
      dx: dx.buffer,
      dGamma: this.#gamma.grad.buffer,
      dBeta: this.#beta.grad.buffer,
    };
    if (this.#withResidual) {
      const dResidual = this.#dResidual = reuse(
        this.#dResidual,
        x.shape,
        d,
        "BatchNorm2d.backward: residual gradient",
      );
      grads.dResidual = dResidual.buffer;
    }
    this.#backwardDone = true;
    d.batchNormBackward(x.buffer, y.buffer, dy.buffer, grads, this.#params(), this.#shape!);
    return dx;
  }

  /**
   * The gradient with respect to the residual of the last training forward, written by the
   * last `backward`: `dy · [y > 0]`. Owned by the layer.
   *
   * @throws {Error} When the last forward had no residual or no backward has run since.
   */
  get residualGradient(): Tensor<"f32"> {
    if (!this.#withResidual || !this.#backwardDone || this.#dResidual === undefined) {
      throw new Error(
        "BatchNorm2d.residualGradient needs a training forward with a residual and a backward",
      );
    }
    return this.#dResidual;
  }

  /**
   * The trainable parameters.
   *
   * @returns `[weight, bias]` (γ, β).
   */
  parameters(): Parameter[] {
    return [this.#gamma, this.#beta];
  }

  /**
   * The non-trainable state tensors saved in checkpoints.
   *
   * @returns `[running_mean, running_var]`.
   */
  stateTensors(): StateTensor[] {
    return [
      { name: "running_mean", value: this.#runningMean },
      { name: "running_var", value: this.#runningVar },
    ];
  }

  /**
   * The integer counters saved in checkpoints.
   *
   * @returns `[num_batches_tracked]`.
   */
  counters(): Counter[] {
    return [{
      name: "num_batches_tracked",
      get: () => this.numBatchesTracked,
      set: (v: number) => {
        this.numBatchesTracked = v;
      },
    }];
  }

  /** Frees every tensor the layer owns. */
  dispose(): void {
    for (
      const t of [
        this.#gamma.value,
        this.#gamma.grad,
        this.#beta.value,
        this.#beta.grad,
        this.#runningMean,
        this.#runningVar,
        this.#saveMean,
        this.#saveInvStd,
        this.#y,
        this.#dx,
        this.#dResidual,
      ]
    ) t?.dispose();
    this.#x = undefined;
  }
}
