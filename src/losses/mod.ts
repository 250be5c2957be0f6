/**
 * The loss functions: sigmoid and softmax cross-entropy, the Equalization Loss (sigmoid, for
 * detectors) and its softmax form (for classification), focal loss, class-balanced weights,
 * logit adjustment and smooth-L1. Every loss has the shape
 * `(logits, labels, options) => { loss, grad }`: it validates its arguments, runs one fused
 * device op (logits in, per-row loss and gradient out) on the logits' device, and returns the
 * mean loss as a number and `∂loss/∂logits` as a tensor the caller owns.
 *
 * Column layouts: the sigmoid losses (`sigmoidCrossEntropy`, `eqlLoss`, `focalLoss`) take C
 * logits and labels in 0..C, where C means background (an all-zero target); the softmax losses
 * (`softmaxCrossEntropy`, `seqlLoss`) take C logits and labels in 0..C−1.
 *
 * @example
 * ```ts
 * import { eqlLoss } from "@eql/eql";
 * import { tensor } from "@eql/eql";
 * const logits = tensor(new Float32Array(2 * 3), [2, 3]);
 * const { loss, grad } = eqlLoss(logits, new Int32Array([0, 3]), {
 *   frequencies: [0.5, 1e-4, 1e-3],
 * });
 * console.log(loss, grad.toArray());
 * grad.dispose();
 * ```
 *
 * @module
 */

export type { GradientOutput, LossResult } from "./fused.ts";
export type { Labels } from "./validate.ts";
export { sigmoidCrossEntropy, type SigmoidCrossEntropyOptions } from "./sigmoid_cross_entropy.ts";
export { softmaxCrossEntropy, type SoftmaxCrossEntropyOptions } from "./softmax_cross_entropy.ts";
export { eqlLoss, type EqlOptions, type EqlSuppressionOptions } from "./eql.ts";
export {
  DEFAULT_SEQL_GAMMA,
  DEFAULT_SEQL_LAMBDA,
  SeqlCriterion,
  seqlLoss,
  type SeqlOptions,
} from "./seql.ts";
export { focalLoss, type FocalOptions } from "./focal.ts";
export { classBalancedWeights } from "./class_balanced.ts";
export type { LogitAdjustment } from "./logit_adjustment.ts";
export type { ImageLevelLabels } from "./image_level.ts";
export {
  DEFAULT_EQL_LAMBDA,
  type ExponentialWeight,
  type GompertzWeight,
  type SuppressionOptions,
  suppressionWeights,
  type WeightFunction,
} from "./suppression.ts";
export { smoothL1Loss, type SmoothL1Options } from "./smooth_l1.ts";
export {
  EQLV2_DEFAULTS,
  Eqlv2Criterion,
  type Eqlv2Options,
  eqlv2Scores,
  type Eqlv2Weights,
} from "./eqlv2.ts";
export { SEESAW_DEFAULTS, SeesawCriterion, type SeesawOptions, seesawScores } from "./seesaw.ts";
export type { CriterionState } from "./criterion_state.ts";
