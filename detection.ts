/**
 * The detection side: LVIS-v0.5-like long-tailed proposal sets (generated or read from a
 * features file), the box-regression loss and box coding, AP as the LVIS API computes it with the
 * rare/common/frequent summary, and the per-category gradient statistics of the EQL paper's
 * Figure 1. The box head itself (`BoxHead`) and the classification losses are in `@eql/eql`.
 *
 * @example
 * ```ts
 * import { collateProposals, LongTailProposals, ProposalEvaluator } from "@eql/eql/detection";
 * const data = new LongTailProposals({ seed: 1 });
 * const batch = collateProposals(data.val, [0]);
 * const evaluator = new ProposalEvaluator({ numCategories: data.numCategories });
 * const c = data.numCategories;
 * const scores = new Float32Array(batch.labels.length * c).fill(0.5); // an uninformed classifier
 * evaluator.add(scores, batch.labels);
 * console.log(evaluator.perCategoryAP().length); // 1230
 * ```
 *
 * @module
 */

export {
  collateProposals,
  type LongTailProposalOptions,
  LongTailProposals,
  LVIS_V05_TRAIN_IMAGES,
  type ProposalBatch,
  type ProposalImage,
  type ProposalSource,
} from "./src/data/proposals.ts";
export {
  ProposalFile,
  readProposalFeatures,
  writeProposalFeatures,
} from "./src/data/proposals_reader.ts";
export { boxRegressionLoss, type BoxRegressionOptions } from "./src/losses/box.ts";
export { BOX_WEIGHTS, decodeBoxes, encodeBoxes } from "./src/detection/boxes.ts";
export { type ApInterpolation, averagePrecision, recallThresholds } from "./src/detection/ap.ts";
export {
  type ApSummary,
  type FrequencyGroup,
  ProposalEvaluator,
  type ProposalEvaluatorOptions,
  summarizeAP,
} from "./src/detection/evaluate.ts";
export { GradientStats } from "./src/detection/gradients.ts";
// Types the signatures above mention (their home is `@eql/eql`).
export type { LvisGroup } from "./src/longtail/groups.ts";
export type { GradientOutput, Labels, LossResult } from "./src/losses/mod.ts";
export * from "./src/_core.ts";
