/**
 * Softmax cross-entropy over C classes, with optional per-class weights and logit adjustment.
 *
 * @module
 */

import type { Tensor } from "../tensor.ts";
import { type GradientOutput, type LossResult, runSoftmaxLoss } from "./fused.ts";
import { type LogitAdjustment, logitAdjustmentBias } from "./logit_adjustment.ts";
import {
  checkClassWeight,
  checkLabels,
  checkLogits,
  checkOptions,
  type Labels,
} from "./validate.ts";

/** Options of {@linkcode softmaxCrossEntropy}. */
export interface SoftmaxCrossEntropyOptions extends GradientOutput {
  /**
   * Per-class weight (length C, finite, ≥ 0): row i's loss and gradient are multiplied by
   * `classWeight[label_i]`. The sum is still divided by N (as Cui et al. do), not by the sum of
   * the weights (as PyTorch's weighted `cross_entropy` does).
   */
  classWeight?: ArrayLike<number>;
  /** Add `τ·log(prior_j)` to the logits first (logit adjustment / balanced softmax). */
  logitAdjustment?: LogitAdjustment;
}

/**
 * Softmax cross-entropy: `L = Σ_i cw_{y_i}·(logsumexp(z_i + b) − z_{i,y_i} − b_{y_i}) / N` with
 * `b` the logit-adjustment offsets (0 without the option) and `cw` the class weights (1 without
 * them); `∂L/∂z_ik = cw_{y_i}·(softmax(z_i + b)_k − [k = y_i]) / N`. Computed with the maximum
 * subtracted, so large logits do not overflow.
 *
 * @param logits [N, C] f32 tensor.
 * @param labels N labels in 0..C−1, an Int32Array or an i32 tensor.
 * @param options Class weights and logit adjustment.
 * @returns The mean loss and the gradient (owned by the caller).
 *
 * @example
 * ```ts
 * import { softmaxCrossEntropy } from "@eql/eql";
 * import { tensor } from "@eql/eql";
 * const logits = tensor([0, 0, 0, 0], [2, 2]);
 * const { loss, grad } = softmaxCrossEntropy(logits, new Int32Array([0, 1]));
 * loss; // log 2
 * grad.toArray(); // [−0.25, 0.25, 0.25, −0.25]
 * grad.dispose();
 * // Balanced softmax: the class priors from the training counts.
 * softmaxCrossEntropy(logits, new Int32Array([0, 1]), {
 *   logitAdjustment: { priors: [100, 10], tau: 1 },
 * }).grad.dispose();
 * ```
 */
export function softmaxCrossEntropy(
  logits: Tensor,
  labels: Labels,
  options?: SoftmaxCrossEntropyOptions,
): LossResult {
  const fn = "softmaxCrossEntropy";
  const { n, c } = checkLogits(fn, logits);
  const checked = checkLabels(fn, labels, n, c - 1, false);
  const o = checkOptions<SoftmaxCrossEntropyOptions>(fn, options);
  return runSoftmaxLoss(fn, logits, checked, {
    gammaThreshold: 0,
    seed: 0,
    counter: 0,
    classWeight: o.classWeight === undefined ? undefined : checkClassWeight(fn, o.classWeight, c),
    logitBias: o.logitAdjustment === undefined
      ? undefined
      : logitAdjustmentBias(fn, o.logitAdjustment, c),
  }, o.gradInto);
}
