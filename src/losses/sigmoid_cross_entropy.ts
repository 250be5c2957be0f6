/**
 * Sigmoid (binary) cross-entropy over C class logits with one label per row, the detector layout
 * of the EQL paper: label C means background, whose target is all zeros.
 *
 * @module
 */

import type { Tensor } from "../tensor.ts";
import { type GradientOutput, type LossResult, runSigmoidLoss } from "./fused.ts";
import {
  checkClassWeight,
  checkLabels,
  checkLogits,
  checkOptions,
  type Labels,
} from "./validate.ts";

/** Options of {@linkcode sigmoidCrossEntropy}. */
export interface SigmoidCrossEntropyOptions extends GradientOutput {
  /**
   * Per-class weight (length C, finite, ≥ 0) multiplying every element of a row by the row's
   * label, e.g. {@linkcode classBalancedWeights}; background rows get 1.
   */
  classWeight?: ArrayLike<number>;
}

/**
 * Sigmoid cross-entropy: `L = Σ_i Σ_j BCE(z_ij, y_ij) / N` with `y_i` the one-hot of the label
 * over C + 1 columns, the background column dropped. The gradient is `(σ(z) − y) / N`.
 *
 * @param logits [N, C] f32 tensor.
 * @param labels N labels in 0..C (C = background), an Int32Array or an i32 tensor.
 * @param options Optional per-class weights.
 * @returns The mean loss and the gradient (owned by the caller).
 *
 * @example
 * ```ts
 * import { sigmoidCrossEntropy } from "@eql/eql";
 * import { tensor } from "@eql/eql";
 * const logits = tensor([0, 0, 0, 0], [2, 2]);
 * const { loss, grad } = sigmoidCrossEntropy(logits, new Int32Array([1, 2])); // 2 = background
 * loss; // 2·log 2
 * grad.toArray(); // [0.25, −0.25, 0.25, 0.25]
 * grad.dispose();
 * ```
 */
export function sigmoidCrossEntropy(
  logits: Tensor,
  labels: Labels,
  options?: SigmoidCrossEntropyOptions,
): LossResult {
  const fn = "sigmoidCrossEntropy";
  const { n, c } = checkLogits(fn, logits);
  const checked = checkLabels(fn, labels, n, c, true);
  const o = checkOptions<SigmoidCrossEntropyOptions>(fn, options);
  return runSigmoidLoss(fn, logits, checked, {
    backgroundExempt: true,
    classWeight: o.classWeight === undefined ? undefined : checkClassWeight(fn, o.classWeight, c),
    focalGamma: 0,
    focalAlpha: -1,
  }, o.gradInto);
}
