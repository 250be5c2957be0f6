/**
 * `BoxHead`: the Fast R-CNN "2fc" box head with its predictor, as in Detectron2's
 * `FastRCNNConvFCHead` + `FastRCNNOutputLayers` and the official EQL code:
 *
 *     x [N, in] → fc1 → ReLU → fc2 → ReLU → h [N, hidden]
 *     h → cls_score → logits [N, C]          (sigmoid losses: C logits, no background column)
 *                                           (or the cosine classifier τ·ĥ·Ŵᵀ + b of Seesaw)
 *     h → bbox_pred → deltas [N, 4·C] or [N, 4] (class-specific or class-agnostic regression)
 *
 * `x` is one flat vector per proposal (e.g. 256·7·7 = 12544 values of RoI-pooled features).
 * Initialisation: fc1 and fc2 draw N(0, 1/in) weights (the variance of Detectron2's
 * `c2_xavier_fill`) and zero biases; cls_score draws N(0, 0.01²) weights and the bias
 * `−log((1 − π)/π)` with prior π = 0.001 (official EQL code); bbox_pred N(0, 0.001²) and zero bias.
 * With `classifier: "normalized"` cls_score is a {@linkcode NormalizedLinear} (temperature τ,
 * default 20; N(0, 0.01²) weights and a zero bias, as mmdetection's Seesaw heads use, or the prior
 * bias when `priorProbability` is given, for a sigmoid loss).
 *
 * Kept for backward: each sub-layer keeps what it needs (the linear layers their inputs, the
 * ReLUs their outputs); the head itself keeps the summed gradient of `h`.
 *
 * @module
 */

import type { Device } from "../device/device.ts";
import { cpuDevice } from "../device/cpu.ts";
import type { Tensor } from "../tensor.ts";
import { Random } from "../random.ts";
import type { Parameter, StateTensor } from "./layer.ts";
import { checkGradient, checkInput, reuse } from "./_check.ts";
import { Linear } from "./linear.ts";
import { NormalizedLinear } from "./normalized_linear.ts";
import { ReLU } from "./relu.ts";

/** Options of {@linkcode BoxHead}. */
export interface BoxHeadOptions {
  /** Width of each proposal's input feature vector (e.g. 256·7·7 = 12544). */
  inFeatures: number;
  /** Number of categories C (logits; no background column). */
  numClasses: number;
  /** Width of the two hidden layers (default 1024). */
  hidden?: number;
  /** One box per proposal instead of one per class (default false, as Detectron2). */
  classAgnosticBox?: boolean;
  /**
   * The classifier: `"linear"` (default; the official EQL code's) or `"normalized"`, the cosine
   * classifier `τ·(h/‖h‖)·(W_j/‖W_j‖)ᵀ + b` of the Seesaw Loss heads.
   */
  classifier?: "linear" | "normalized";
  /** Temperature τ > 0 of the normalized classifier (default 20); only with `"normalized"`. */
  temperature?: number;
  /**
   * Prior probability π of the classifier's initial bias `−log((1 − π)/π)`. Default: 0.001 for the
   * linear classifier; for the normalized one a zero bias (mmdetection's), unless π is given.
   */
  priorProbability?: number;
  /** Where the tensors live (default: the CPU device). */
  device?: Device;
  /** Seed of the initial weights (default 0). */
  seed?: number;
}

/** What {@linkcode BoxHead.forward} returns (owned by the head). */
export interface BoxHeadOutput {
  /** `[N, C]` classification logits. */
  logits: Tensor<"f32">;
  /** `[N, 4·C]` (class-specific) or `[N, 4]` (class-agnostic) box deltas. */
  boxDeltas: Tensor<"f32">;
}

/**
 * The two-layer fully connected box head with a sigmoid classifier and a box regressor.
 *
 * @example
 * ```ts
 * import { BoxHead } from "@eql/eql";
 * import { zeros } from "@eql/eql";
 * const head = new BoxHead({ inFeatures: 64, numClasses: 10, hidden: 32 });
 * const { logits, boxDeltas } = head.forward(zeros([8, 64]), true);
 * logits.shape; // [8, 10]
 * boxDeltas.shape; // [8, 40]
 * ```
 */
export class BoxHead {
  /** Input width. */
  readonly inFeatures: number;
  /** Number of categories C. */
  readonly numClasses: number;
  /** Hidden width. */
  readonly hidden: number;
  /** Whether the regressor predicts one box per proposal. */
  readonly classAgnosticBox: boolean;
  /** The device holding the tensors. */
  readonly device: Device;
  /** First hidden layer. */
  readonly fc1: Linear;
  /** Second hidden layer. */
  readonly fc2: Linear;
  /** The classifier (`[C, hidden]` weight): linear, or normalized with a temperature. */
  readonly clsScore: Linear | NormalizedLinear;
  /** The box regressor. */
  readonly bboxPred: Linear;
  #relu1: ReLU;
  #relu2: ReLU;
  #h?: Tensor<"f32">;
  #out?: BoxHeadOutput;
  #dh?: Tensor<"f32">;

  /**
   * Builds the head with freshly initialised weights.
   *
   * @param options Sizes, prior, device and seed.
   * @throws {RangeError} When a size is not a positive integer or π is not in (0, 1).
   */
  constructor(options: BoxHeadOptions) {
    if (options === null || typeof options !== "object") {
      throw new TypeError(`options must be an object, got ${String(options)}`);
    }
    const { inFeatures, numClasses } = options;
    const hidden = options.hidden ?? 1024;
    for (
      const [name, v] of [["inFeatures", inFeatures], ["numClasses", numClasses], [
        "hidden",
        hidden,
      ]] as const
    ) {
      if (!Number.isInteger(v) || v < 1) {
        throw new RangeError(`BoxHead: ${name} must be an integer ≥ 1, got ${String(v)}`);
      }
    }
    const classifier = options.classifier ?? "linear";
    if (classifier !== "linear" && classifier !== "normalized") {
      throw new RangeError(
        `BoxHead: classifier must be "linear" or "normalized", got ${JSON.stringify(classifier)}`,
      );
    }
    if (classifier === "linear" && options.temperature !== undefined) {
      throw new RangeError(
        `BoxHead: temperature applies to classifier "normalized" only, got temperature ${options.temperature} with the linear classifier`,
      );
    }
    const prior = options.priorProbability ?? (classifier === "linear" ? 0.001 : undefined);
    if (prior !== undefined && !(prior > 0 && prior < 1)) {
      throw new RangeError(`BoxHead: priorProbability must lie in (0, 1), got ${prior}`);
    }
    const biasInit = prior === undefined ? 0 : -Math.log((1 - prior) / prior);
    this.inFeatures = inFeatures;
    this.numClasses = numClasses;
    this.hidden = hidden;
    this.classAgnosticBox = options.classAgnosticBox ?? false;
    const device = this.device = options.device ?? cpuDevice();
    const random = new Random(options.seed ?? 0);
    this.fc1 = new Linear(inFeatures, hidden, {
      device,
      random,
      weightInit: { std: 1 / Math.sqrt(inFeatures) },
      biasInit: 0,
    });
    this.fc2 = new Linear(hidden, hidden, {
      device,
      random,
      weightInit: { std: 1 / Math.sqrt(hidden) },
      biasInit: 0,
    });
    this.clsScore = classifier === "normalized"
      ? new NormalizedLinear(hidden, numClasses, {
        device,
        random,
        temperature: options.temperature,
        weightStd: 0.01,
        biasInit,
      })
      : new Linear(hidden, numClasses, {
        device,
        random,
        weightInit: { std: 0.01 },
        biasInit,
      });
    this.bboxPred = new Linear(hidden, this.classAgnosticBox ? 4 : 4 * numClasses, {
      device,
      random,
      weightInit: { std: 0.001 },
      biasInit: 0,
    });
    this.#relu1 = new ReLU(device);
    this.#relu2 = new ReLU(device);
  }

  /**
   * Runs the head.
   *
   * @param x `[N, inFeatures]` proposal features on the head's device.
   * @param training Whether backward will follow (kept for symmetry with layers; the head has no
   *   train-time behaviour of its own).
   * @returns Logits and box deltas, owned by the head until its next forward.
   * @throws {TypeError | RangeError} When `x` is not an f32 `[N, inFeatures]` tensor of the
   *   head's device.
   */
  forward(x: Tensor<"f32">, training: boolean): BoxHeadOutput {
    checkInput(
      "BoxHead.forward: x",
      x,
      this.device,
      { ranks: [2], layout: "[N, inFeatures]" },
      this.inFeatures,
    );
    const h = this.#relu2.forward(
      this.fc2.forward(this.#relu1.forward(this.fc1.forward(x, training), training), training),
      training,
    );
    this.#h = h;
    this.#out = {
      logits: this.clsScore.forward(h, training),
      boxDeltas: this.bboxPred.forward(h, training),
    };
    return this.#out;
  }

  /**
   * The classifier's input `h` `[N, hidden]` from the last forward (for gradient analysis).
   *
   * @throws {Error} Before the first forward.
   */
  get features(): Tensor<"f32"> {
    if (this.#h === undefined) throw new Error("BoxHead.features needs a forward first");
    return this.#h;
  }

  /**
   * Writes every parameter gradient and returns the gradient of the input.
   *
   * @param dLogits `[N, C]` gradient with respect to the logits.
   * @param dBoxDeltas Gradient with respect to the box deltas (same shape as them); absent: no
   *   box loss.
   * @returns `∂L/∂x` `[N, inFeatures]`, owned by the head.
   * @throws {Error} Before a forward.
   * @throws {TypeError | RangeError} When a gradient's shape or device does not match.
   */
  backward(dLogits: Tensor<"f32">, dBoxDeltas?: Tensor<"f32">): Tensor<"f32"> {
    const out = this.#out;
    checkGradient("BoxHead.backward: dLogits", dLogits, this.device, out?.logits);
    const dhCls = this.clsScore.backward(dLogits);
    let dh = dhCls;
    if (dBoxDeltas !== undefined) {
      checkGradient("BoxHead.backward: dBoxDeltas", dBoxDeltas, this.device, out!.boxDeltas);
      const dhBox = this.bboxPred.backward(dBoxDeltas);
      this.#dh = reuse(this.#dh, dhCls.shape, this.device, "BoxHead.backward: hidden gradient");
      this.device.add(dhCls.buffer, dhBox.buffer, this.#dh.buffer, dhCls.size);
      dh = this.#dh;
    } else {
      // No box loss: the regressor's parameters get zero gradients.
      for (const p of this.bboxPred.parameters()) this.device.fill(p.grad.buffer, 0, p.grad.size);
    }
    return this.fc1.backward(this.#relu1.backward(this.fc2.backward(this.#relu2.backward(dh))));
  }

  /**
   * The trainable parameters.
   *
   * @returns The parameters, named as Detectron2 does under `roi_heads`:
   *   `box_head.fc1.*`, `box_head.fc2.*`, `box_predictor.cls_score.*`, `box_predictor.bbox_pred.*`.
   */
  parameters(): Parameter[] {
    const named = (prefix: string, layer: Linear | NormalizedLinear): Parameter[] =>
      layer.parameters().map((p) => ({ ...p, name: `${prefix}.${p.name}` }));
    return [
      ...named("box_head.fc1", this.fc1),
      ...named("box_head.fc2", this.fc2),
      ...named("box_predictor.cls_score", this.clsScore),
      ...named("box_predictor.bbox_pred", this.bboxPred),
    ];
  }

  /**
   * The non-trainable state.
   *
   * @returns None (the head has no running statistics).
   */
  stateTensors(): StateTensor[] {
    return [];
  }

  /** Frees every tensor the head owns. */
  dispose(): void {
    for (const l of [this.fc1, this.fc2, this.clsScore, this.bboxPred, this.#relu1, this.#relu2]) {
      l.dispose();
    }
    this.#dh?.dispose();
    this.#h = undefined;
    this.#out = undefined;
  }
}

/**
 * Builds a {@linkcode BoxHead} (the factory form, like `resnet32`).
 *
 * @param options Sizes, prior, device and seed.
 * @returns The head with freshly initialised weights.
 *
 * @example
 * ```ts
 * import { boxHead } from "@eql/eql";
 * const head = boxHead({ inFeatures: 256 * 7 * 7, numClasses: 1230 });
 * head.parameters().length; // 8
 * ```
 */
export function boxHead(options: BoxHeadOptions): BoxHead {
  return new BoxHead(options);
}
