/**
 * The softmax Equalization Loss (SEQL, Tan et al., CVPR 2020, eq. 9–11) for image
 * classification. Each row ignores some tail classes other than its target: their logits act as
 * −∞ in the softmax, so they get no probability and no gradient.
 *
 * β granularity: the paper's text draws `β ~ Bernoulli(γ)` once per sample; this implementation
 * follows the authors' reference snippet (eql.detectron2 issue #9) and draws it per (sample,
 * class): each tail non-target class k of row i is ignored independently with probability γ.
 * The draws are a pure function of (seed, counter, row, class) (`src/device/mask.ts`), identical
 * on the CPU and the GPU; change `counter` every step (or use {@linkcode SeqlCriterion}) to get
 * fresh masks.
 *
 * @module
 */

import { gammaThreshold } from "../device/mask.ts";
import type { Tensor } from "../tensor.ts";
import { type GradientOutput, type LossResult, runSoftmaxLoss } from "./fused.ts";
import { type LogitAdjustment, logitAdjustmentBias } from "./logit_adjustment.ts";
import { checkedSuppression, resolveWeightFunction } from "./suppression.ts";
import {
  checkClassWeight,
  checkLabels,
  checkLogits,
  checkOptions,
  checkU32,
  checkUnit,
  type Labels,
} from "./validate.ts";

/** Options of {@linkcode seqlLoss}. */
export interface SeqlOptions extends GradientOutput {
  /** Per-class frequency `f_k` in [0, 1] (training images of k / all training images), length C. */
  frequencies: ArrayLike<number>;
  /** Threshold λ ≥ 0: class k is a tail class when `f_k < λ` (default 3.0e-3, the CIFAR setting). */
  lambda?: number;
  /** Probability γ in [0, 1] that a tail non-target class is ignored (default 0.95, CIFAR). */
  gamma?: number;
  /** Mask seed, an unsigned 32-bit integer (default 0). */
  seed?: number;
  /** Mask counter, an unsigned 32-bit integer (default 0): use a new one every step. */
  counter?: number;
  /** Per-class weight by the row's label (length C, ≥ 0). */
  classWeight?: ArrayLike<number>;
  /** Add `τ·log(prior_j)` to the logits first. */
  logitAdjustment?: LogitAdjustment;
}

/** The CIFAR-LT λ of the paper (Table 8), as a frequency. */
export const DEFAULT_SEQL_LAMBDA = 3.0e-3;
/** The CIFAR-LT γ of the paper (Table 8). */
export const DEFAULT_SEQL_GAMMA = 0.95;

/**
 * Softmax EQL: `p̃_j = exp(z_j) / Σ_k w̃_k·exp(z_k)`, `L = −Σ_i log p̃_{i,y_i} / N`, with
 * `w̃_k = 1 − β_ik·T_λ(f_k)·(1 − y_ik)` and `β_ik ~ Bernoulli(γ)` drawn per (row, class) from
 * (seed, counter). γ = 0 or λ = 0 gives {@linkcode softmaxCrossEntropy} exactly; γ = 1 ignores
 * every tail non-target class. The target class is never ignored.
 *
 * @param logits [N, C] f32 tensor.
 * @param labels N labels in 0..C−1, an Int32Array or an i32 tensor.
 * @param options Frequencies, λ, γ and the mask's seed and counter.
 * @returns The mean loss and the gradient (owned by the caller).
 *
 * @example
 * ```ts
 * import { seqlLoss } from "@eql/eql";
 * import { tensor } from "@eql/eql";
 * const logits = tensor([1, 0, 0, 0, 1, 0], [2, 3]);
 * const frequencies = [0.6, 0.399, 0.001]; // class 2 is a tail class
 * const { loss, grad } = seqlLoss(logits, new Int32Array([0, 1]), {
 *   frequencies, lambda: 3e-3, gamma: 1, seed: 1, counter: 0,
 * });
 * grad.toArray()[2]; // 0: the tail class is ignored for the class-0 row
 * grad.dispose();
 * ```
 */
export function seqlLoss(logits: Tensor, labels: Labels, options: SeqlOptions): LossResult {
  return seql("seqlLoss", logits, labels, options);
}

function seql(fn: string, logits: Tensor, labels: Labels, options: SeqlOptions): LossResult {
  const { n, c } = checkLogits(fn, logits);
  const checked = checkLabels(fn, labels, n, c - 1, false);
  const o = checkOptions<SeqlOptions>(fn, options);
  const lambda = o.lambda === undefined ? DEFAULT_SEQL_LAMBDA : o.lambda;
  const curve = resolveWeightFunction(fn, lambda, "threshold");
  const suppress = checkedSuppression(fn, curve, o.frequencies, c);
  const gamma = o.gamma === undefined ? DEFAULT_SEQL_GAMMA : checkUnit(fn, "gamma", o.gamma);
  return runSoftmaxLoss(fn, logits, checked, {
    suppress,
    gammaThreshold: gammaThreshold(gamma),
    seed: o.seed === undefined ? 0 : checkU32(fn, "seed", o.seed),
    counter: o.counter === undefined ? 0 : checkU32(fn, "counter", o.counter),
    classWeight: o.classWeight === undefined ? undefined : checkClassWeight(fn, o.classWeight, c),
    logitBias: o.logitAdjustment === undefined
      ? undefined
      : logitAdjustmentBias(fn, o.logitAdjustment, c),
  }, o.gradInto);
}

/**
 * Softmax EQL with its mask counter kept for you: every call uses the current counter and then
 * advances it by one (wrapping at 2^32), so each training step gets a fresh, reproducible mask.
 *
 * @example
 * ```ts
 * import { SeqlCriterion } from "@eql/eql";
 * import { tensor } from "@eql/eql";
 * const criterion = new SeqlCriterion({ frequencies: [0.6, 0.399, 0.001], seed: 7 });
 * const logits = tensor([1, 0, 0], [1, 3]);
 * const { loss, grad } = criterion.compute(logits, new Int32Array([0])); // counter 0
 * criterion.counter; // 1
 * grad.dispose();
 * ```
 */
export class SeqlCriterion {
  #options: SeqlOptions;
  #counter: number;

  /**
   * Keeps the options and starts the counter.
   *
   * @param options As for {@linkcode seqlLoss}; `counter` is the first counter (default 0).
   */
  constructor(options: SeqlOptions) {
    const o = checkOptions<SeqlOptions>("SeqlCriterion", options);
    this.#counter = o.counter === undefined ? 0 : checkU32("SeqlCriterion", "counter", o.counter);
    this.#options = { ...options };
  }

  /** The counter the next call will use. */
  get counter(): number {
    return this.#counter;
  }

  /**
   * Computes the loss with the current counter, then advances it.
   *
   * @param logits [N, C] f32 tensor.
   * @param labels N labels in 0..C−1.
   * @returns The mean loss and the gradient (owned by the caller).
   */
  compute(logits: Tensor, labels: Labels): LossResult {
    const r = seql("SeqlCriterion.compute", logits, labels, {
      ...this.#options,
      counter: this.#counter,
    });
    this.#counter = (this.#counter + 1) >>> 0;
    return r;
  }
}
