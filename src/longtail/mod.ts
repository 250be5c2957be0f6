/**
 * Long-tail utilities: category frequencies, the EQL threshold and tail ratio, frequency groups
 * (LVIS rare / common / frequent, many / medium / few-shot), CIFAR-LT class counts and the
 * class-aware and repeat-factor samplers.
 *
 * @example
 * ```ts
 * import { cifarLtCounts, categoryFrequencies, lambdaForTailRatio, shotSplit } from "@eql/eql";
 * const counts = cifarLtCounts("cifar100", 100);
 * const total = counts.reduce((a, b) => a + b, 0); // 10,847
 * const freqs = categoryFrequencies(counts, total);
 * const { lambda } = lambdaForTailRatio(freqs, 0.05);
 * const split = shotSplit(counts); // 35 many, 35 medium, 30 few
 * ```
 *
 * @module
 */

export {
  categoryFrequencies,
  classCounts,
  frequenciesFromLabels,
  imageCounts,
  type ImageLabels,
} from "./frequency.ts";
export { type LambdaChoice, lambdaForTailRatio, tailIndicator, tailRatio } from "./tail_ratio.ts";
export {
  type LvisBounds,
  type LvisGroup,
  type LvisGroups,
  lvisGroups,
  lvisLambdas,
  type ShotBounds,
  type ShotGroup,
  type ShotSplit,
  shotSplit,
} from "./groups.ts";
export { cifarLtCounts, longTailCounts, type LongTailProfile, longTailSubset } from "./cifar_lt.ts";
export {
  type ClassAwareOptions,
  classAwareSampling,
  type RepeatFactorOptions,
  repeatFactors,
  repeatFactorSampling,
} from "./samplers.ts";
