/**
 * `NormalizedLinear`: the cosine classifier of the Seesaw box head (mmdetection's `NormedLinear`),
 * `y = τ · (x_i / (‖x_i‖ + ε)) · (W_j / (‖W_j‖ + ε))ᵀ + b` over `[N, in]` with `W` `[out, in]`,
 * temperature τ = 20 and ε = 1e-6 as there, weights N(0, 0.01²) and a zero bias by default.
 *
 * Where the work runs: the two products (forward, and the input and weight gradients of the
 * normalised operands) are GEMMs on the layer's device; the row normalisations and their backward
 * run on the host, because the device contract has no op that computes row norms. Each step
 * therefore copies x, W and the two normalised-operand gradients between host and device (O(N·in +
 * out·in) values), which is small next to the GEMMs for a box head.
 *
 * Kept for backward: the normalised input and weights (on the device, for the GEMMs) and, on the
 * host, the raw rows and their `1/(‖·‖ + ε)` factors.
 *
 * Backward of `u = v / (‖v‖ + ε)` for a row v with r = ‖v‖, k = 1/(r + ε):
 * `∂L/∂v = k·(g − u·(v·g)/r)` where g = ∂L/∂u (just `k·g` for a zero row).
 *
 * @module
 */

import type { Device } from "../device/device.ts";
import { cpuDevice } from "../device/cpu.ts";
import { type Tensor, tensor, zeros } from "../tensor.ts";
import type { Layer, Parameter, StateTensor } from "./layer.ts";
import { checkGradient, checkInput, reuse } from "./_check.ts";
import { gemmShape, writeBiasGradient } from "./_dense.ts";
import { normal } from "./init.ts";
import { Random } from "../random.ts";

/** Options of {@linkcode NormalizedLinear}. */
export interface NormalizedLinearOptions {
  /** Temperature τ > 0 (default 20, mmdetection's Seesaw head). */
  temperature?: number;
  /** Added to each norm before dividing (default 1e-6, as mmdetection). */
  eps?: number;
  /** Whether the layer has a bias (default true). */
  bias?: boolean;
  /** The bias's initial value, a finite number (default 0, as mmdetection). */
  biasInit?: number;
  /** Standard deviation of the initial weights (default 0.01). */
  weightStd?: number;
  /** Where the tensors live (default: the CPU device). */
  device?: Device;
  /** Random source for the initial weights (default: a source seeded with `seed`). */
  random?: Random;
  /** Seed used when no `random` is given (default 0). */
  seed?: number;
}

/** Rows of `v` [rows, d] scaled by `1/(‖row‖ + eps)`; returns the scaled rows and the norms. */
function normalizeRows(
  v: Float32Array,
  rows: number,
  d: number,
  eps: number,
): { unit: Float32Array; norm: Float64Array } {
  const unit = new Float32Array(rows * d), norm = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    let s = 0;
    for (let k = 0; k < d; k++) s += v[i * d + k] * v[i * d + k];
    const r = Math.sqrt(s);
    norm[i] = r;
    const inv = 1 / (r + eps);
    for (let k = 0; k < d; k++) unit[i * d + k] = v[i * d + k] * inv;
  }
  return { unit, norm };
}

/** `∂L/∂v` of `u = v/(‖v‖ + eps)` row by row, given `g = ∂L/∂u`. */
function normalizeRowsBackward(
  v: Float32Array,
  norm: Float64Array,
  g: Float32Array,
  rows: number,
  d: number,
  eps: number,
): Float32Array {
  const out = new Float32Array(rows * d);
  for (let i = 0; i < rows; i++) {
    const r = norm[i], k = 1 / (r + eps);
    let dot = 0;
    for (let j = 0; j < d; j++) dot += v[i * d + j] * g[i * d + j];
    // u·(v·g)/r = v·k·(v·g)/r; a zero row has no second term.
    const c = r > 0 ? (k * dot) / r : 0;
    for (let j = 0; j < d; j++) out[i * d + j] = k * (g[i * d + j] - v[i * d + j] * c);
  }
  return out;
}

/**
 * The normalised (cosine) linear classifier with temperature.
 *
 * @example
 * ```ts
 * import { NormalizedLinear } from "@eql/eql";
 * import { tensor } from "@eql/eql";
 * const head = new NormalizedLinear(4, 3, { seed: 1 }); // e.g. C = 1 class + the objectness pair
 * const y = head.forward(tensor(new Float32Array(8).fill(1), [2, 4]), true);
 * y.shape; // [2, 3]; every value lies in [−20, 20]
 * const dx = head.backward(tensor(new Float32Array(6).fill(1), [2, 3]));
 * dx.shape; // [2, 4]
 * ```
 */
export class NormalizedLinear implements Layer {
  /** Input features. */
  readonly inFeatures: number;
  /** Output features. */
  readonly outFeatures: number;
  /** Temperature τ. */
  readonly temperature: number;
  /** ε added to each norm. */
  readonly eps: number;
  /** The device holding the tensors. */
  readonly device: Device;
  #weight: Parameter;
  #bias?: Parameter;
  #ones?: Tensor<"f32">;
  #xUnit?: Tensor<"f32">;
  #wUnit?: Tensor<"f32">;
  #saved?: { x: Float32Array; xNorm: Float64Array; w: Float32Array; wNorm: Float64Array };
  #y?: Tensor<"f32">;
  #dxUnit?: Tensor<"f32">;
  #dwUnit?: Tensor<"f32">;
  #dx?: Tensor<"f32">;

  /**
   * Creates the layer.
   *
   * @param inFeatures Input features (≥ 1).
   * @param outFeatures Output features (≥ 1).
   * @param options Temperature, ε, bias, initialisation and device.
   */
  constructor(inFeatures: number, outFeatures: number, options: NormalizedLinearOptions = {}) {
    for (const [name, v] of [["inFeatures", inFeatures], ["outFeatures", outFeatures]] as const) {
      if (!Number.isInteger(v) || v < 1) {
        throw new RangeError(`NormalizedLinear: ${name} must be an integer ≥ 1, got ${v}`);
      }
    }
    const positive = (name: string, v: unknown, dflt: number, zeroOk = false): number => {
      if (v === undefined) return dflt;
      if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || (!zeroOk && v === 0)) {
        throw new RangeError(
          `NormalizedLinear: ${name} must be a finite number ${zeroOk ? "≥" : ">"} 0, got ${
            String(v)
          }`,
        );
      }
      return v;
    };
    this.temperature = positive("temperature", options.temperature, 20);
    this.eps = positive("eps", options.eps, 1e-6, true);
    const std = positive("weightStd", options.weightStd, 0.01, true);
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    const dev = this.device = options.device ?? cpuDevice();
    const random = options.random ?? new Random(options.seed ?? 0);
    this.#weight = {
      name: "weight",
      value: tensor(normal(random, outFeatures * inFeatures, std), [outFeatures, inFeatures], dev),
      grad: zeros([outFeatures, inFeatures], dev),
      decay: true,
    };
    const biasInit = options.biasInit ?? 0;
    if (typeof biasInit !== "number" || !Number.isFinite(biasInit)) {
      throw new RangeError(`NormalizedLinear: biasInit must be a finite number, got ${biasInit}`);
    }
    if (options.bias === false && options.biasInit !== undefined) {
      throw new RangeError("NormalizedLinear: biasInit needs the bias (bias is false)");
    }
    if (options.bias ?? true) {
      this.#bias = {
        name: "bias",
        value: tensor(new Float32Array(outFeatures).fill(biasInit), [outFeatures], dev),
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
   * The normalised input `x̂ = x/(‖x‖ + ε)` `[N, in]` of the last forward (for gradient
   * analysis: the logits are `τ·x̂·Ŵᵀ + b`, so `τ·x̂_i` plays the part of a plain linear layer's
   * input).
   *
   * @throws {Error} Before the first forward.
   */
  get normalizedInput(): Tensor<"f32"> {
    if (this.#xUnit === undefined) {
      throw new Error("NormalizedLinear.normalizedInput needs a forward first");
    }
    return this.#xUnit;
  }

  /**
   * `∂L/∂Ŵ = τ·dyᵀ·x̂` `[out, in]` of the last backward: the gradient with respect to the
   * normalised weight rows, before the normalisation's own backward turns it into the weight
   * gradient.
   *
   * @throws {Error} Before the first backward.
   */
  get normalizedWeightGrad(): Tensor<"f32"> {
    if (this.#dwUnit === undefined) {
      throw new Error("NormalizedLinear.normalizedWeightGrad needs a backward first");
    }
    return this.#dwUnit;
  }

  /**
   * Runs the forward pass.
   *
   * @param x Input `[N, in]`.
   * @param _training Unused.
   * @returns `τ·x̂·Ŵᵀ + b` `[N, out]`, owned by the layer.
   */
  forward(x: Tensor<"f32">, _training: boolean): Tensor<"f32"> {
    checkInput(
      "NormalizedLinear.forward: x",
      x,
      this.device,
      { ranks: [2], layout: "[N, features]" },
      this.inFeatures,
    );
    const n = x.shape[0], inF = this.inFeatures, out = this.outFeatures, d = this.device;
    const xHost = x.toArray() as Float32Array;
    const wHost = this.#weight.value.toArray() as Float32Array;
    const xs = normalizeRows(xHost, n, inF, this.eps);
    const ws = normalizeRows(wHost, out, inF, this.eps);
    this.#xUnit = reuse(this.#xUnit, [n, inF], d, "NormalizedLinear.forward: x̂");
    this.#wUnit = reuse(this.#wUnit, [out, inF], d, "NormalizedLinear.forward: Ŵ");
    d.upload(this.#xUnit.buffer, xs.unit);
    d.upload(this.#wUnit.buffer, ws.unit);
    this.#saved = { x: xHost, xNorm: xs.norm, w: wHost, wNorm: ws.norm };
    this.#y = reuse(this.#y, [n, out], d, "NormalizedLinear.forward: y");
    d.gemm(
      this.#xUnit.buffer,
      this.#wUnit.buffer,
      this.#y.buffer,
      gemmShape(false, true, n, out, inF, this.temperature),
      this.#bias?.value.buffer,
    );
    return this.#y;
  }

  /**
   * Writes the weight and bias gradients and returns the input gradient.
   *
   * @param dy Gradient `[N, out]` with respect to the last output.
   * @returns `∂L/∂x` `[N, in]`, owned by the layer.
   */
  backward(dy: Tensor<"f32">): Tensor<"f32"> {
    checkGradient("NormalizedLinear.backward: dy", dy, this.device, this.#saved && this.#y);
    const s = this.#saved!, d = this.device, tau = this.temperature;
    const n = dy.shape[0], out = this.outFeatures, inF = this.inFeatures;
    // ∂L/∂x̂ = τ·dy·Ŵ and ∂L/∂Ŵ = τ·dyᵀ·x̂ on the device.
    this.#dxUnit = reuse(this.#dxUnit, [n, inF], d, "NormalizedLinear.backward: dx̂");
    this.#dwUnit = reuse(this.#dwUnit, [out, inF], d, "NormalizedLinear.backward: dŴ");
    d.gemm(
      dy.buffer,
      this.#wUnit!.buffer,
      this.#dxUnit.buffer,
      gemmShape(false, false, n, inF, out, tau),
    );
    d.gemm(
      dy.buffer,
      this.#xUnit!.buffer,
      this.#dwUnit.buffer,
      gemmShape(true, false, out, inF, n, tau),
    );
    if (this.#bias) this.#ones = writeBiasGradient(d, dy, this.#bias.grad, this.#ones);
    // The normalisations' backward on the host.
    const gx = this.#dxUnit.toArray() as Float32Array;
    const gw = this.#dwUnit.toArray() as Float32Array;
    d.upload(this.#weight.grad.buffer, normalizeRowsBackward(s.w, s.wNorm, gw, out, inF, this.eps));
    this.#dx = reuse(this.#dx, [n, inF], d, "NormalizedLinear.backward: dx");
    d.upload(this.#dx.buffer, normalizeRowsBackward(s.x, s.xNorm, gx, n, inF, this.eps));
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
        this.#xUnit,
        this.#wUnit,
        this.#y,
        this.#dxUnit,
        this.#dwUnit,
        this.#dx,
      ]
    ) t?.dispose();
    this.#saved = undefined;
  }
}
