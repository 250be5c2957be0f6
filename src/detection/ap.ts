/**
 * Average precision of one ranked list of scored detections.
 *
 * Two summaries of the precision–recall curve are offered:
 *
 * - `"coco101"` (the default): average precision exactly as the LVIS API (`lvis/eval.py`,
 *   `LVISEval.accumulate`) and pycocotools (`COCOeval.accumulate`) compute it for one category:
 *   1. The detections are ranked by score, highest first, with a stable sort: detections with
 *      equal scores keep their input order (numpy's `argsort(-score, kind="mergesort")`) and
 *      enter the ranking one at a time, so the result depends on how ties are ordered, as it
 *      does in LVIS.
 *   2. After the k-th detection, with TP and FP the cumulative true and false positives,
 *      precision is `TP / (FP + TP + ε)` with ε = 2⁻⁵² (numpy's `np.spacing(1)`) and recall is
 *      `TP / numPositives`, where `numPositives` counts every ground-truth positive, including
 *      those that never appear among the detections.
 *   3. Precision is made monotone from the right: each value becomes the largest precision at
 *      its rank or below it.
 *   4. The curve is sampled at the 101 recall thresholds `np.linspace(0, 1, 101)` as numpy holds
 *      them in float64 (see {@linkcode recallThresholds}: ten of them lie one unit in the last
 *      place above t/100): the sample at threshold r is the precision at the first rank whose
 *      recall is at least r (numpy's `searchsorted(recall, thresholds, side="left")`), and 0 when
 *      no rank reaches r.
 *   5. AP is the mean of the 101 samples.
 *
 *   A detection ranked first and correct therefore has precision 1/(1 + 2⁻⁵²) = 1 − 2⁻⁵², and a
 *   category whose only positive is detected first has AP 1 − 2⁻⁵², as in LVIS.
 *
 * - `"step"`: scikit-learn's `average_precision_score`, `AP = Σ_k (R_k − R_{k−1}) · P_k` over the
 *   distinct scores in decreasing order, with `P_k = TP / (TP + FP)` and `R_k = TP / numPositives`
 *   among the detections scoring at least the k-th distinct score. Equal scores enter together,
 *   as one threshold, so this summary does not depend on the order of tied detections. It equals
 *   scikit-learn's value when `numPositives` is the number of positives listed.
 *
 * @module
 */

/** How the precision–recall curve is summarised: see the module documentation. */
export type ApInterpolation = "step" | "coco101";

/** numpy's `np.spacing(1)`: the distance from 1 to the next float64, 2⁻⁵². */
const EPS = 2 ** -52;

/**
 * `np.linspace(0, 1, 101)` as numpy computes it: `step = (stop − start) / (num − 1)`, element i
 * is `i·step + start` (two float64 roundings), and the last element is set to `stop`.
 */
const RECALL_THRESHOLDS: Float64Array = (() => {
  const start = 0, stop = 1, num = 101;
  const step = (stop - start) / (num - 1);
  const out = new Float64Array(num);
  for (let i = 0; i < num; i++) out[i] = i * step + start;
  out[num - 1] = stop;
  return out;
})();

/**
 * The 101 recall thresholds of the `"coco101"` summary, exactly as `np.linspace(0, 1, 101)` holds
 * them in float64 (the LVIS API's and pycocotools' `recThrs`). Entries 35, 41, 47, 57, 69, 70, 82,
 * 83, 94 and 95 are one unit in the last place above the float64 nearest t/100 (for example
 * 0.35000000000000003), so a recall of exactly 35/100 does not reach threshold 35.
 *
 * @returns A fresh copy of the 101 thresholds.
 *
 * @example
 * ```ts
 * import { recallThresholds } from "@eql/eql/detection";
 * recallThresholds()[35]; // 0.35000000000000003
 * ```
 */
export function recallThresholds(): Float64Array {
  return RECALL_THRESHOLDS.slice();
}

/**
 * Average precision of detections ranked by score.
 *
 * @param scores Score of each detection (any finite real numbers; only their order matters), in
 *   input order: ties keep this order under `"coco101"`.
 * @param isPositive For each detection, whether it is a true positive (non-zero) or not (zero).
 * @param numPositives Number of ground-truth positives (at least the number of true positives
 *   among the detections); 0 gives NaN, since AP is undefined without positives.
 * @param interpolation `"coco101"` (default, LVIS) or `"step"` (scikit-learn), see the module
 *   documentation.
 * @returns The average precision in [0, 1], or NaN when `numPositives` is 0.
 * @throws {RangeError} When the lengths differ, a score is not finite, `numPositives` is not a
 *   non-negative integer at least as large as the true positives listed, or the interpolation is
 *   unknown.
 *
 * @example
 * ```ts
 * import { averagePrecision } from "@eql/eql/detection";
 * // ranking: positive, negative, positive → P = 1 at R = 0.5, 2/3 at R = 1
 * averagePrecision([0.9, 0.8, 0.7], new Uint8Array([1, 0, 1]), 2, "step"); // 0.8333…
 * // LVIS: 51 recall thresholds up to 0.5 sample P ≈ 1, the other 50 sample 2/3
 * averagePrecision([0.9, 0.8, 0.7], new Uint8Array([1, 0, 1]), 2); // 0.83498…
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

  // Highest score first; equal scores in input order (a stable sort).
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => scores[b] - scores[a] || a - b);

  return interpolation === "step"
    ? stepAP(scores, isPositive, numPositives, order)
    : lvisAP(isPositive, numPositives, order);
}

/** LVIS / COCO: one curve point per detection, monotone precision sampled at the 101 thresholds. */
function lvisAP(
  isPositive: ArrayLike<number | boolean>,
  numPositives: number,
  order: Int32Array,
): number {
  const n = order.length;
  const precision = new Float64Array(n), recall = new Float64Array(n);
  let tp = 0, fp = 0;
  for (let k = 0; k < n; k++) {
    if (isPositive[order[k]]) tp++;
    else fp++;
    precision[k] = tp / (fp + tp + EPS);
    recall[k] = tp / numPositives;
  }
  for (let k = n - 1; k > 0; k--) {
    if (precision[k] > precision[k - 1]) precision[k - 1] = precision[k];
  }
  // Recall never decreases along the ranking, so one pointer finds, for each threshold in
  // increasing order, the first rank whose recall is at least the threshold.
  let sum = 0, k = 0;
  for (let t = 0; t < RECALL_THRESHOLDS.length; t++) {
    const r = RECALL_THRESHOLDS[t];
    while (k < n && recall[k] < r) k++;
    if (k === n) break; // this threshold and every later one are not reached: samples of 0
    sum += precision[k];
  }
  return sum / RECALL_THRESHOLDS.length;
}

/** scikit-learn: one curve point per distinct score, Σ (R_k − R_{k−1}) · P_k. */
function stepAP(
  scores: ArrayLike<number>,
  isPositive: ArrayLike<number | boolean>,
  numPositives: number,
  order: Int32Array,
): number {
  const n = order.length;
  let tp = 0, fp = 0, ap = 0, prevRecall = 0;
  for (let k = 0; k < n;) {
    const s = scores[order[k]];
    while (k < n && scores[order[k]] === s) {
      if (isPositive[order[k]]) tp++;
      else fp++;
      k++;
    }
    const recall = tp / numPositives;
    ap += (recall - prevRecall) * (tp / (tp + fp));
    prevRecall = recall;
  }
  return ap;
}
