/**
 * `Linear`: a fully connected layer `y = x · Wᵀ + b` over `[N, in]`, with `W` `[out, in]` and
 * `b` `[out]` like PyTorch's `nn.Linear`.
 *
 * Kept for backward: a reference to the input `x` (for `∂L/∂W = dyᵀ · x`). The bias gradient is
 * a GEMM of `dyᵀ` with a vector of ones (`∂L/∂b = dyᵀ · 1`), which keeps the op set small.
 *
 * Initialisation (chosen per layer through the options):
 * - weight `"kaiming"` (default): `N(0, 2 / in)`, what the common CIFAR ResNet code applies to
 *   its classifier; `{ std }`: `N(0, std²)` (e.g. 0.01 for a detector's classification head).
 * - bias `"uniform"` (default): PyTorch's `U(−1/√in, 1/√in)`; a number: that constant (e.g.
 *   `−log((1 − π)/π)` for a sigmoid head with prior π).
 *
 * @module
 */

import type { Device } from "../device/device.ts";
import { cpuDevice } from "../device/cpu.ts";
import { type Tensor, tensor, zeros } from "../tensor.ts";
import type { Layer, Parameter, StateTensor } from "./layer.ts";
import { checkGradient, checkInput, reuse } from "./_check.ts";
import { gemmShape, writeBiasGradient } from "./_dense.ts";
import { kaimingNormal, normal, uniform } from "./init.ts";
import { Random } from "../random.ts";

/** Options of {@linkcode Linear}. */
export interface LinearOptions {
  /** Whether the layer has a bias (default true). */
  bias?: boolean;
  /** Weight initialisation: `"kaiming"` (default) or a normal with the given standard deviation. */
  weightInit?: "kaiming" | { std: number };
  /** Bias initialisation: `"uniform"` (default, PyTorch's) or a constant. */
  biasInit?: "uniform" | number;
  /** Where the tensors live (default: the CPU device). */
  device?: Device;
  /** Random source for the initial values (default: a source seeded with `seed`). */
  random?: Random;
  /** Seed used when no `random` is given (default 0). */
  seed?: number;
}

/**
 * Fully connected layer.
 *
 * @example
 * ```ts
 * import { Linear } from "@eql/eql";
 * import { zeros } from "@eql/eql";
 * const fc = new Linear(64, 10, { seed: 3 });
 * fc.forward(zeros([8, 64]), true).shape; // [8, 10]
 * ```
 */
export class Linear implements Layer {
  /** Input features. */
  readonly inFeatures: number;
  /** Output features. */
  readonly outFeatures: number;
  /** The device holding the tensors. */
  readonly device: Device;
  #weight: Parameter;
  #bias?: Parameter;
  #ones?: Tensor<"f32">;
  #x?: Tensor<"f32">;
  #y?: Tensor<"f32">;
  #dx?: Tensor<"f32">;

  /**
   * Creates the layer.
   *
   * @param inFeatures Input features (≥ 1).
   * @param outFeatures Output features (≥ 1).
   * @param options Bias, initialisation and device.
   */
  constructor(inFeatures: number, outFeatures: number, options: LinearOptions = {}) {
    for (const [name, v] of [["inFeatures", inFeatures], ["outFeatures", outFeatures]] as const) {
      if (!Number.isInteger(v) || v < 1) {
        throw new RangeError(`${name} must be an integer ≥ 1, got ${v}`);
      }
    }
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    const dev = this.device = options.device ?? cpuDevice();
    const random = options.random ?? new Random(options.seed ?? 0);
    const wInit = options.weightInit ?? "kaiming";
    let w: Float32Array;
    if (wInit === "kaiming") {
      w = kaimingNormal(random, outFeatures * inFeatures, inFeatures);
    } else if (
      typeof wInit === "object" && wInit !== null && Number.isFinite(wInit.std) && wInit.std >= 0
    ) {
      w = normal(random, outFeatures * inFeatures, wInit.std);
    } else {
      throw new RangeError(
        `weightInit must be "kaiming" or { std } with a finite std ≥ 0, got ${
          JSON.stringify(wInit)
        }`,
      );
    }
    this.#weight = {
      name: "weight",
      value: tensor(w, [outFeatures, inFeatures], dev),
      grad: zeros([outFeatures, inFeatures], dev),
      decay: true,
    };
    if (options.bias ?? true) {
      const bInit = options.biasInit ?? "uniform";
      let b: Float32Array;
      if (bInit === "uniform") b = uniform(random, outFeatures, 1 / Math.sqrt(inFeatures));
      else if (typeof bInit === "number" && Number.isFinite(bInit)) {
        b = new Float32Array(outFeatures).fill(bInit);
      } else {
        throw new RangeError(`biasInit must be "uniform" or a finite number, got ${String(bInit)}`);
      }
      this.#bias = {
        name: "bias",
        value: tensor(b, [outFeatures], dev),
        grad: zeros([outFeatures], dev),
        decay: false,
      };
    }
  }

  /** The weight parameter `[out, in]`. */
  get weight(): Parameter {
    return this.#weight;
  }

  /** The bias parameter `[out]`, if any. */
  get bias(): Parameter | undefined {
    return this.#bias;
  }

  /**
   * Runs the forward pass.
   *
   * @param x Input `[N, in]` (kept until backward).
   * @param _training Unused.
   * @returns `x · Wᵀ + b` `[N, out]`, owned by the layer.
   */
  forward(x: Tensor<"f32">, _training: boolean): Tensor<"f32"> {
    checkInput(
      "Linear.forward: x",
      x,
      this.device,
      { ranks: [2], layout: "[N, features]" },
      this.inFeatures,
    );
    const n = x.shape[0];
    this.#y = reuse(this.#y, [n, this.outFeatures], this.device, "Linear.forward: y");
    this.device.gemm(
      x.buffer,
      this.#weight.value.buffer,
      this.#y.buffer,
      gemmShape(false, true, n, this.outFeatures, this.inFeatures),
      this.#bias?.value.buffer,
    );
    this.#x = x;
    return this.#y;
  }

  /**
   * Writes the weight and bias gradients and returns the input gradient.
   *
   * @param dy Gradient `[N, out]` with respect to the last output.
   * @returns `dy · W` `[N, in]`, owned by the layer.
   */
  backward(dy: Tensor<"f32">): Tensor<"f32"> {
    checkGradient("Linear.backward: dy", dy, this.device, this.#x && this.#y);
    const x = this.#x!, n = x.shape[0], out = this.outFeatures, inF = this.inFeatures;
    const d = this.device;
    d.gemm(dy.buffer, x.buffer, this.#weight.grad.buffer, gemmShape(true, false, out, inF, n));
    if (this.#bias) this.#ones = writeBiasGradient(d, dy, this.#bias.grad, this.#ones);
    this.#dx = reuse(this.#dx, x.shape, d, "Linear.backward: dx");
    d.gemm(
      dy.buffer,
      this.#weight.value.buffer,
      this.#dx.buffer,
      gemmShape(false, false, n, inF, out),
    );
    return this.#dx;
  }

  /**
   * The trainable parameters.
   *
   * @returns `[weight, bias]` (or `[weight]` without bias).
   */
  parameters(): Parameter[] {
    return this.#bias ? [this.#weight, this.#bias] : [this.#weight];
  }

  /**
   * The non-trainable state tensors saved in checkpoints.
   *
   * @returns None.
   */
  stateTensors(): StateTensor[] {
    return [];
  }

  /** Frees every tensor the layer owns. */
  dispose(): void {
    for (
      const t of [
        this.#weight.value,
        this.#weight.grad,
        this.#bias?.value,
        this.#bias?.grad,
        this.#ones,
        this.#y,
        this.#dx,
      ]
    ) t?.dispose();
    this.#x = undefined;
  }
}
