/**
 * The EQL threshold function and the tail ratio (Tan et al., CVPR 2020, eq. 7–8).
 *
 * `T_λ(f) = 1` when `f < λ` (strict) and 0 otherwise. The tail ratio is the share of
 * category-image occurrences that belong to tail categories:
 * `TR(λ) = Σ_j T_λ(f_j)·N_j / Σ_j N_j`. Since every `N_j = f_j · numImages` shares the same
 * denominator, it is computed from the frequencies alone: `Σ_{f_j<λ} f_j / Σ_j f_j`.
 * The paper recommends a λ whose tail ratio is 2–10 %.
 *
 * @module
 */

import { checkFrequencies, checkNumber } from "./_validate.ts";

function positiveTotal(frequencies: ArrayLike<number>): number {
  const total = checkFrequencies("frequencies", frequencies);
  if (!(total > 0)) {
    throw new RangeError(
      `frequencies must contain at least one positive value, got ${frequencies.length} zeros`,
    );
  }
  return total;
}

/**
 * The tail indicator `T_λ(f_j)` per category, ready to be the EQL suppression vector.
 *
 * @param frequencies Category frequencies in [0, 1].
 * @param lambda Threshold λ ≥ 0 (0 selects nothing).
 * @returns 1 where `f_j < λ`, else 0.
 * @throws {RangeError} When a frequency is outside [0, 1] or λ is negative or not finite.
 *
 * @example
 * ```ts
 * import { tailIndicator } from "@eql/eql";
 * tailIndicator([0.001, 0.002, 0.5], 0.002); // Float32Array [1, 0, 0]
 * ```
 */
export function tailIndicator(frequencies: ArrayLike<number>, lambda: number): Float32Array {
  checkNumber("lambda", lambda, 0);
  checkFrequencies("frequencies", frequencies);
  const out = new Float32Array(frequencies.length);
  for (let j = 0; j < frequencies.length; j++) out[j] = frequencies[j] < lambda ? 1 : 0;
  return out;
}

/**
 * The tail ratio `TR(λ)` (paper eq. 8).
 *
 * @param frequencies Category frequencies in [0, 1], at least one positive.
 * @param lambda Threshold λ ≥ 0.
 * @returns The fraction in [0, 1] of category occurrences whose category has `f < λ`.
 * @throws {RangeError} When a frequency is outside [0, 1], all are zero, or λ is invalid.
 *
 * @example
 * ```ts
 * import { tailRatio } from "@eql/eql";
 * tailRatio([0.01, 0.03, 0.96], 0.05); // 0.04
 * ```
 */
export function tailRatio(frequencies: ArrayLike<number>, lambda: number): number {
  checkNumber("lambda", lambda, 0);
  const total = positiveTotal(frequencies);
  let tail = 0;
  for (let j = 0; j < frequencies.length; j++) {
    if (frequencies[j] < lambda) tail += frequencies[j];
  }
  return tail / total;
}

/** The λ chosen by {@linkcode lambdaForTailRatio} and what it selects. */
export interface LambdaChoice {
  /** The chosen threshold. */
  lambda: number;
  /** The tail ratio it gives (≥ the target). */
  tailRatio: number;
  /** Number of categories with `f < lambda`. */
  numTail: number;
  /** Every λ in `(low, high]` selects the same categories (`low` is −∞ → use 0 for none). */
  low: number;
  /** Upper end of that interval (`Infinity` when every category is selected). */
  high: number;
}

/**
 * The threshold whose tail ratio first reaches `target`.
 *
 * `TR` is a step function of λ: with the distinct frequencies sorted, `d_1 < … < d_K`, every λ in
 * `(d_i, d_{i+1}]` selects exactly the categories with `f ≤ d_i`. The function finds the
 * smallest such set whose tail ratio is ≥ `target` and returns the midpoint
 * `λ = (d_i + d_{i+1}) / 2` of its interval — a value strictly between two observed
 * frequencies, so rounding a frequency (e.g. to float32) cannot move a category across it.
 * Special cases: a target of 0 gives λ = 0, which selects nothing; a target only met by
 * selecting every category gives `λ = 2·d_K`. The reported ratio uses sums in sorted order.
 *
 * @param frequencies Category frequencies in [0, 1], at least one positive.
 * @param target Desired tail ratio in [0, 1] (the paper suggests 0.02–0.10).
 * @returns The chosen λ, its tail ratio, the number of tail categories and its λ interval.
 * @throws {RangeError} When `target` is outside [0, 1] or the frequencies are invalid.
 *
 * @example
 * ```ts
 * import { lambdaForTailRatio } from "@eql/eql";
 * // Tail ratios of the prefixes: {0.01} → 1 %, {0.01, 0.03} → 4 %, all → 100 %.
 * const choice = lambdaForTailRatio([0.01, 0.03, 0.96], 0.02);
 * // choice.lambda = 0.495 (midway between 0.03 and 0.96), choice.tailRatio = 0.04
 * ```
 */
export function lambdaForTailRatio(frequencies: ArrayLike<number>, target: number): LambdaChoice {
  if (typeof target !== "number" || !(target >= 0 && target <= 1)) {
    throw new RangeError(`target must be a tail ratio in [0, 1], got ${target}`);
  }
  positiveTotal(frequencies);
  const sorted = Float64Array.from(frequencies).sort();
  const distinct: number[] = [];
  const cumulative: number[] = []; // occurrences (as frequency mass) with f ≤ distinct[i]
  const countUpTo: number[] = []; // categories with f ≤ distinct[i]
  let mass = 0;
  for (let q = 0; q < sorted.length; q++) {
    mass += sorted[q];
    if (q + 1 === sorted.length || sorted[q + 1] !== sorted[q]) {
      distinct.push(sorted[q]);
      cumulative.push(mass);
      countUpTo.push(q + 1);
    }
  }
  if (target === 0) {
    return { lambda: 0, tailRatio: 0, numTail: 0, low: -Infinity, high: distinct[0] };
  }
  // Sums in sorted order for every prefix, so the full set gives exactly 1.
  const k = distinct.length, total = cumulative[k - 1];
  for (let i = 0; i < k; i++) {
    const ratio = cumulative[i] / total;
    if (ratio >= target) {
      const high = i + 1 < k ? distinct[i + 1] : Infinity;
      const lambda = i + 1 < k ? (distinct[i] + distinct[i + 1]) / 2 : 2 * distinct[i];
      return { lambda, tailRatio: ratio, numTail: countUpTo[i], low: distinct[i], high };
    }
  }
  // Unreachable: selecting every category gives ratio 1 ≥ target.
  throw new RangeError(`target ${target} could not be reached`);
}
