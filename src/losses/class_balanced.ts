/**
 * Class-balanced weights (Cui et al., CVPR 2019): weight each class by the inverse of its
 * "effective number of samples" `(1 − β^n) / (1 − β)`.
 *
 * @module
 */

import { checkClassVector, describe } from "./validate.ts";

/**
 * Per-class weights `(1 − β) / (1 − β^{n_j})`, normalised so that they sum to C, ready for the
 * `classWeight` option of {@linkcode softmaxCrossEntropy}, {@linkcode sigmoidCrossEntropy},
 * {@linkcode focalLoss}, {@linkcode eqlLoss} and {@linkcode seqlLoss}. β = 0 gives equal weights;
 * β → 1 approaches inverse class frequency. The paper tries β ∈ {0.9, 0.99, 0.999, 0.9999}.
 *
 * @param counts Training samples per class, finite and > 0, length C ≥ 1.
 * @param beta β in [0, 1).
 * @returns C weights summing to C.
 *
 * @example
 * ```ts
 * import { classBalancedWeights } from "@eql/eql";
 * classBalancedWeights([1, 2], 0.5); // Float32Array [1.2, 0.8]
 * ```
 */
export function classBalancedWeights(counts: ArrayLike<number>, beta: number): Float32Array {
  const fn = "classBalancedWeights";
  if (counts === null || typeof counts !== "object" || typeof counts.length !== "number") {
    throw new TypeError(`${fn}: counts must be an array or typed array, got ${describe(counts)}`);
  }
  if (counts.length < 1) {
    throw new RangeError(`${fn}: counts must hold at least one class, got an empty array`);
  }
  const n = checkClassVector(fn, "counts", counts, counts.length, 0, Infinity, true);
  if (typeof beta !== "number" || !(beta >= 0 && beta < 1)) {
    throw new RangeError(`${fn}: beta must be a number in [0, 1), got ${describe(beta)}`);
  }
  const c = n.length;
  const raw = new Float64Array(c);
  let sum = 0;
  for (let j = 0; j < c; j++) {
    // 1 − β^n = −expm1(n·log β) keeps its precision when β^n is close to 1.
    const effective = beta === 0 ? 1 : -Math.expm1(n[j] * Math.log(beta));
    raw[j] = (1 - beta) / effective;
    sum += raw[j];
  }
  const out = new Float32Array(c);
  for (let j = 0; j < c; j++) out[j] = (raw[j] * c) / sum;
  return out;
}
