/**
 * `Conv2d`: a 2-D cross-correlation without bias over NCHW input,
 * `y[n, k, i, j] = Σ_c Σ_r Σ_s w[k, c, r, s] · x[n, c, i·stride + r − pad, j·stride + s − pad]`,
 * with weights `[out, in, kH, kW]` like PyTorch's `nn.Conv2d(..., bias=False)`.
 *
 * Kept for backward: a reference to the input `x` (needed for the weight gradient); the input must
 * therefore stay alive until `backward` has run (layer outputs do, by the ownership rule).
 *
 * Initialisation: Kaiming normal with fan-in and gain √2, `w ~ N(0, 2 / (in·kH·kW))`, as
 * `torch.nn.init.kaiming_normal_` does by default and as the common CIFAR ResNet code applies it.
 *
 * @module
 */

import { type Conv2dShape, convOutputSize, type Device } from "../device/device.ts";
import { cpuDevice } from "../device/cpu.ts";
import { type Tensor, tensor, zeros } from "../tensor.ts";
import type { Layer, Parameter, StateTensor } from "./layer.ts";
import { checkGradient, checkInput, reuse } from "./_check.ts";
import { kaimingNormal } from "./init.ts";
import { Random } from "../random.ts";

/** Options of {@linkcode Conv2d}. */
export interface Conv2dOptions {
  /** Stride in both directions (default 1). */
  stride?: number;
  /** Zero padding on every side (default 0). */
  padding?: number;
  /** Where the weights live (default: the CPU device). */
  device?: Device;
  /** Random source for the initial weights (default: a source seeded with `seed`). */
  random?: Random;
  /** Seed used when no `random` is given (default 0). */
  seed?: number;
}

function positiveInt(name: string, v: number, min: number): number {
  if (!Number.isInteger(v) || v < min) {
    throw new RangeError(`${name} must be an integer ≥ ${min}, got ${v}`);
  }
  return v;
}

/**
 * 2-D convolution without bias.
 *
 * @example
 * ```ts
 * import { Conv2d } from "@eql/eql";
 * import { zeros } from "@eql/eql";
 * const conv = new Conv2d(3, 16, 3, { padding: 1, seed: 1 });
 * const y = conv.forward(zeros([2, 3, 32, 32]), true);
 * y.shape; // [2, 16, 32, 32]
 * ```
 */
export class Conv2d implements Layer {
  /** Input channels. */
  readonly inChannels: number;
  /** Output channels. */
  readonly outChannels: number;
  /** Square kernel size. */
  readonly kernelSize: number;
  /** Stride. */
  readonly stride: number;
  /** Zero padding. */
  readonly padding: number;
  /** The device holding the weights. */
  readonly device: Device;
  #weight: Parameter;
  #x?: Tensor<"f32">;
  #y?: Tensor<"f32">;
  #dx?: Tensor<"f32">;
  #shape?: Conv2dShape;

  /**
   * Creates the layer.
   *
   * @param inChannels Input channels (≥ 1).
   * @param outChannels Output channels (≥ 1).
   * @param kernelSize Square kernel extent (≥ 1).
   * @param options Stride, padding, device and initialisation.
   */
  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: number,
    options: Conv2dOptions = {},
  ) {
    this.inChannels = positiveInt("inChannels", inChannels, 1);
    this.outChannels = positiveInt("outChannels", outChannels, 1);
    this.kernelSize = positiveInt("kernelSize", kernelSize, 1);
    this.stride = positiveInt("stride", options.stride ?? 1, 1);
    this.padding = positiveInt("padding", options.padding ?? 0, 0);
    this.device = options.device ?? cpuDevice();
    const random = options.random ?? new Random(options.seed ?? 0);
    const fanIn = inChannels * kernelSize * kernelSize;
    const shape = [outChannels, inChannels, kernelSize, kernelSize];
    this.#weight = {
      name: "weight",
      value: tensor(kaimingNormal(random, outChannels * fanIn, fanIn), shape, this.device),
      grad: zeros(shape, this.device),
      decay: true,
    };
  }

  /** The weight parameter `[out, in, k, k]`. */
  get weight(): Parameter {
    return this.#weight;
  }

  /**
   * Convolves `x` `[N, in, H, W]`.
   *
   * @param x Input batch (kept until backward).
   * @param _training Unused: a convolution behaves the same in both modes.
   * @returns The output `[N, out, outH, outW]`, owned by the layer.
   */
  forward(x: Tensor<"f32">, _training: boolean): Tensor<"f32"> {
    checkInput(
      "Conv2d.forward: x",
      x,
      this.device,
      { ranks: [4], layout: "[N, C, H, W]" },
      this.inChannels,
    );
    const [n, , h, w] = x.shape;
    const k = this.kernelSize, s = this.stride, p = this.padding;
    if (h + 2 * p < k || w + 2 * p < k) {
      throw new RangeError(
        `Conv2d.forward: x must be at least ${k - 2 * p}×${k - 2 * p} pixels for a ${k}×${k} ` +
          `kernel with padding ${p}, got ${h}×${w}`,
      );
    }
    const shape: Conv2dShape = {
      n,
      cIn: this.inChannels,
      h,
      w,
      cOut: this.outChannels,
      kH: k,
      kW: k,
      strideH: s,
      strideW: s,
      padH: p,
      padW: p,
      outH: convOutputSize(h, k, s, p),
      outW: convOutputSize(w, k, s, p),
    };
    this.#y = reuse(
      this.#y,
      [n, this.outChannels, shape.outH, shape.outW],
      this.device,
      "Conv2d.forward: y",
    );
    this.device.conv2dForward(x.buffer, this.#weight.value.buffer, this.#y.buffer, shape);
    this.#x = x;
    this.#shape = shape;
    return this.#y;
  }

  /**
   * Writes the weight gradient and returns the input gradient.
   *
   * @param dy Gradient of the loss with respect to the last output.
   * @returns `∂L/∂x`, owned by the layer.
   */
  backward(dy: Tensor<"f32">): Tensor<"f32"> {
    this.#backwardWeight("Conv2d.backward: dy", dy);
    const x = this.#x!, shape = this.#shape!;
    this.#dx = reuse(this.#dx, x.shape, this.device, "Conv2d.backward: dx");
    this.device.conv2dBackwardData(this.#weight.value.buffer, dy.buffer, this.#dx.buffer, shape);
    return this.#dx;
  }

  /**
   * Writes the weight gradient only, skipping the input gradient: for a first layer, whose input
   * (the images) needs none. A third of the layer's backward work is saved.
   *
   * @param dy Gradient of the loss with respect to the last output.
   */
  backwardParameters(dy: Tensor<"f32">): void {
    this.#backwardWeight("Conv2d.backwardParameters: dy", dy);
  }

  #backwardWeight(name: string, dy: Tensor<"f32">): void {
    checkGradient(name, dy, this.device, this.#x && this.#y);
    this.device.conv2dBackwardFilter(
      this.#x!.buffer,
      dy.buffer,
      this.#weight.grad.buffer,
      this.#shape!,
    );
  }

  /**
   * The trainable parameters.
   *
   * @returns `[weight]`.
   */
  parameters(): Parameter[] {
    return [this.#weight];
  }

  /**
   * The non-trainable state tensors saved in checkpoints.
   *
   * @returns No state: a convolution has none.
   */
  stateTensors(): StateTensor[] {
    return [];
  }

  /** Frees the weights, their gradient and the owned outputs. */
  dispose(): void {
    this.#weight.value.dispose();
    this.#weight.grad.dispose();
    this.#y?.dispose();
    this.#dx?.dispose();
    this.#x = undefined;
  }
}
