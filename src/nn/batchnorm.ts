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
 * Kept for backward: a reference to the input `x` and the per-channel batch mean and inverse
 * standard deviation saved by the training forward.
 *
 * Initial values as in PyTorch: γ = 1, β = 0, running mean 0, running variance 1.
 *
 * @module
 */

import type { BatchNormShape, Device } from "../device/device.ts";
import { cpuDevice } from "../device/cpu.ts";
import { type Tensor, tensor, zeros } from "../tensor.ts";
import type { Parameter, StateTensor } from "./layer.ts";
import type { Counter, CountingLayer } from "./named.ts";
import { checkGradient, checkInput, reuse } from "./check.ts";

/** Options of {@linkcode BatchNorm2d}. */
export interface BatchNormOptions {
  /** Weight of the current batch in the running statistics (default 0.1). */
  momentum?: number;
  /** Added to the variance before the square root (default 1e-5). */
  eps?: number;
  /** Where the tensors live (default: the CPU device). */
  device?: Device;
}

/**
 * Batch normalisation with learnable scale and shift.
 *
 * @example
 * ```ts
 * import { BatchNorm2d } from "./batchnorm.ts";
 * import { tensor } from "../tensor.ts";
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
  #shape?: BatchNormShape;
  #trained = false;

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
   * Normalises `x` `[N, C, H, W]` or `[N, C]`.
   *
   * @param x Input (kept until backward in training mode).
   * @param training Batch statistics (and running-statistics update) when true, running
   *   statistics when false.
   * @returns The output, same shape as `x`, owned by the layer.
   */
  forward(x: Tensor<"f32">, training: boolean): Tensor<"f32"> {
    checkInput(
      "BatchNorm2d.forward: x",
      x,
      this.device,
      { ranks: [2, 4], layout: "[N, C, H, W] or [N, C]" },
      this.channels,
    );
    const n = x.shape[0], hw = x.shape.length === 4 ? x.shape[2] * x.shape[3] : 1;
    const shape: BatchNormShape = { n, c: this.channels, hw };
    this.#y = reuse(this.#y, x.shape, this.device);
    const d = this.device;
    if (training) {
      // A single value per channel has no variance to normalise by (PyTorch refuses it too).
      if (n * hw < 2) {
        throw new RangeError(
          `BatchNorm2d.forward: training needs more than one value per channel, got x of shape [${
            x.shape.join(", ")
          }]`,
        );
      }
      d.batchNormForwardTraining(
        x.buffer,
        this.#y.buffer,
        this.#gamma.value.buffer,
        this.#beta.value.buffer,
        this.#runningMean.buffer,
        this.#runningVar.buffer,
        this.#saveMean.buffer,
        this.#saveInvStd.buffer,
        shape,
        this.momentum,
        this.eps,
      );
      this.#batches++;
      this.#x = x;
      this.#shape = shape;
      this.#trained = true;
    } else {
      d.batchNormForwardInference(
        x.buffer,
        this.#y.buffer,
        this.#gamma.value.buffer,
        this.#beta.value.buffer,
        this.#runningMean.buffer,
        this.#runningVar.buffer,
        shape,
        this.eps,
      );
      this.#trained = false;
    }
    return this.#y;
  }

  /**
   * Writes the γ and β gradients and returns the input gradient of the last training forward.
   *
   * @param dy Gradient of the loss with respect to the last output.
   * @returns `∂L/∂x`, owned by the layer.
   */
  backward(dy: Tensor<"f32">): Tensor<"f32"> {
    checkGradient("BatchNorm2d.backward: dy", dy, this.device, this.#trained ? this.#y : undefined);
    const x = this.#x!;
    this.#dx = reuse(this.#dx, x.shape, this.device);
    this.device.batchNormBackward(
      x.buffer,
      dy.buffer,
      this.#dx.buffer,
      this.#gamma.value.buffer,
      this.#gamma.grad.buffer,
      this.#beta.grad.buffer,
      this.#saveMean.buffer,
      this.#saveInvStd.buffer,
      this.#shape!,
    );
    return this.#dx;
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
      ]
    ) t?.dispose();
    this.#x = undefined;
  }
}
