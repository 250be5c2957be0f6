/**
 * Average precision of one ranked list of scored detections.
 *
 * Detections are sorted by score, highest first. Detections with equal scores enter the ranking
 * together, as one threshold: the result never depends on how ties happen to be ordered. After
 * each distinct score the cumulative true positives TP and false positives FP give the precision
 * `P = TP / (TP + FP)` and the recall `R = TP / numPositives`, where `numPositives` counts every
 * ground-truth positive, including those that never appear among the detections (a detector that
 * misses them loses recall).
 *
 * Two summaries of the precision–recall curve are offered:
 *
 * - `"step"`: `AP = Σ_k (R_k − R_{k−1}) · P_k` over the distinct scores (the non-interpolated
 *   average precision, as scikit-learn's `average_precision_score`).
 * - `"coco101"`: the precision envelope `p̂(r) = max { P_k : R_k ≥ r }` (0 when no threshold reaches
 *   recall r) averaged over the 101 recall points r = 0, 0.01, …, 1 (COCO and LVIS).
 *
 * @module
 */

/** How the precision–recall curve is summarised. */
export type ApInterpolation = "step" | "coco101";

/**
 * Average precision of detections ranked by score.
 *
 * @param scores Score of each detection (any finite real numbers; only their order matters).
 * @param isPositive For each detection, whether it is a true positive (non-zero) or not (zero).
 * @param numPositives Number of ground-truth positives (at least the number of true positives
 *   among the detections); 0 gives NaN, since AP is undefined without positives.
 * @param interpolation `"coco101"` (default) or `"step"`, see the module documentation.
 * @returns The average precision in [0, 1], or NaN when `numPositives` is 0.
 * @throws {RangeError} When the lengths differ, a score is not finite, or `numPositives` is not
 *   a non-negative integer at least as large as the true positives listed.
 *
 * @example
 * ```ts
 * import { averagePrecision } from "./ap.ts";
 * // ranking: positive, negative, positive → P = 1 at R = 0.5, 2/3 at R = 1
 * averagePrecision([0.9, 0.8, 0.7], new Uint8Array([1, 0, 1]), 2, "step"); // 0.8333…
 * ```
 */
export function averagePrecision(
  scores: ArrayLike<number>,
  isPositive: ArrayLike<number | boolean>,
  numPositives: number,
  interpolation: ApInterpolation = "coco101",
): number {
  const n = scores.length;
  if (isPositive.length !== n) {
    throw new RangeError(
      `isPositive must have one entry per score (${n}), got ${isPositive.length}`,
    );
  }
  if (interpolation !== "step" && interpolation !== "coco101") {
    throw new RangeError(
      `interpolation must be "step" or "coco101", got ${JSON.stringify(interpolation)}`,
    );
  }
  let listed = 0;
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(scores[i])) {
      throw new RangeError(`scores[${i}] must be finite, got ${scores[i]}`);
    }
    if (isPositive[i]) listed++;
  }
  if (!Number.isInteger(numPositives) || numPositives < listed) {
    throw new RangeError(
      `numPositives must be an integer of at least ${listed} (the true positives listed), got ${numPositives}`,
    );
  }
  if (numPositives === 0) return NaN;

  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => scores[b] - scores[a]);

  // One point of the curve per distinct score.
  const precision: number[] = [];
  const recall: number[] = [];
  let tp = 0, fp = 0;
  for (let k = 0; k < n;) {
    const s = scores[order[k]];
    while (k < n && scores[order[k]] === s) {
      if (isPositive[order[k]]) tp++;
      else fp++;
      k++;
    }
    precision.push(tp / (tp + fp));
    recall.push(tp / numPositives);
  }

  if (interpolation === "step") {
    let ap = 0, prevRecall = 0;
    for (let k = 0; k < precision.length; k++) {
      ap += (recall[k] - prevRecall) * precision[k];
      prevRecall = recall[k];
    }
    return ap;
  }

  // Envelope from the right: the best precision at any recall at least as large.
  for (let k = precision.length - 2; k >= 0; k--) {
    if (precision[k + 1] > precision[k]) precision[k] = precision[k + 1];
  }
  let sum = 0, k = 0;
  for (let t = 0; t <= 100; t++) {
    const r = t / 100;
    // Recall points are compared with a small tolerance so that e.g. 0.29 (= 29/100 computed as a
    // quotient) is reached by a curve whose recall is exactly 29/100.
    while (k < recall.length && recall[k] < r - 1e-12) k++;
    if (k === recall.length) break;
    sum += precision[k];
  }
  return sum / 101;
}
