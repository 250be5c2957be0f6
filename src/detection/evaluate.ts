/**
 * Proposal-level detection evaluation in the manner of LVIS (lvis-api `LVISResults` and
 * `LVISEval` with their defaults): every (proposal, category) pair with its score is a candidate
 * detection, and a proposal labelled j is a ground-truth instance of category j that exactly one
 * candidate matches, its own (proposal, j) pair. The features' labels stand in for LVIS's IoU
 * matching, so there are no IoU thresholds, no area ranges and no crowd regions.
 *
 * What the evaluation reproduces, in order:
 *
 * 1. Score threshold (detectron2's `SCORE_THRESH_TEST`, 1e-4 in the LVIS configs): a candidate
 *    is kept only when its score is strictly above `scoreThreshold`, compared in float32 as a
 *    float32 score tensor is compared with a Python float.
 * 2. Per-image cap (`LVISResults(max_dets=300)`): each image keeps its `maxDetsPerImage`
 *    highest-scoring candidates over all categories, so that categories whose scores are
 *    suppressed lose their detections to confident categories. The candidates of an image are
 *    listed proposal-major ((proposal 0, category 0), (0, 1), …, (1, 0), …) and ties at the cut
 *    keep the earlier ones, as Python's stable `sorted` keeps the earlier results.
 * 3. Federated filtering (`LVISEval._prepare` and `evaluate_img`), only with `federated: true`:
 *    a category's detections in an image are dropped unless the category is in the image's
 *    positive set (some proposal of the image is labelled with it) or its negative set
 *    (`negativeCategories`: verified absent); and in an image where the category is listed in
 *    `notExhaustiveCategories` its unmatched detections (proposals labelled otherwise) are
 *    ignored, its matched ones still count. An ignored detection in LVIS stays in the ranking
 *    as neither true nor false positive, which leaves every recall threshold's sample unchanged,
 *    so it is dropped here. The cap of step 2 counts the candidates before this filtering, as
 *    LVIS does.
 * 4. Per category, the kept detections of all images, in the order the images were added and
 *    within an image in proposal order, give the category's AP against every proposal labelled
 *    with it, kept or not, with {@linkcode averagePrecision}: by default (`"coco101"`) LVIS's
 *    stable ranking, 101 exact recall thresholds and monotone precision. A category without
 *    positives has no AP (NaN), as LVIS leaves it out of its means.
 *
 * Images are added one at a time, so the full score matrix of an evaluation set never has to be
 * held in memory.
 *
 * @module
 */

import { type ApInterpolation, averagePrecision } from "./ap.ts";
import type { LvisGroup } from "../longtail/groups.ts";

// Federated evaluation: what becomes of a category's detections in one image.
const NOT_EVALUATED = 0, EVALUATED = 1, MATCHED_ONLY = 2;

/** Options of a {@linkcode ProposalEvaluator}. */
export interface ProposalEvaluatorOptions {
  /** Number of categories C; labels run over 0..C with C meaning background. */
  numCategories: number;
  /** Detections kept per image, highest scores first (default 300 as in LVIS; `Infinity`: all). */
  maxDetsPerImage?: number;
  /**
   * Candidates are kept only when their score is strictly above this, compared in float32,
   * before the per-image cap (default 1e-4 as detectron2's LVIS configs; `-Infinity`: all).
   */
  scoreThreshold?: number;
  /** Summary of each precision–recall curve (default `"coco101"`: LVIS's AP). */
  interpolation?: ApInterpolation;
  /**
   * Evaluate a category only in images where it is present or verified absent, and ignore its
   * unmatched detections where it is not exhaustively annotated (LVIS; default false).
   */
  federated?: boolean;
}

/** Mean AP over all categories and over the LVIS frequency groups. */
export interface ApSummary {
  /** Mean AP over every category that has at least one positive. */
  ap: number;
  /** Mean AP over the rare categories (NaN when none has a positive). */
  apRare: number;
  /** Mean AP over the common categories. */
  apCommon: number;
  /** Mean AP over the frequent categories. */
  apFrequent: number;
}

/** A category's frequency group, as LVIS names them. */
export type FrequencyGroup = LvisGroup;

/**
 * Accumulates scored proposals image by image and computes per-category AP.
 *
 * @example
 * ```ts
 * import { ProposalEvaluator } from "@eql/eql/detection";
 * const ev = new ProposalEvaluator({ numCategories: 2 });
 * // one image, three proposals: category 0, category 1, background (label 2)
 * ev.add(new Float32Array([0.9, 0.1, 0.2, 0.8, 0.3, 0.05]), new Int32Array([0, 1, 2]));
 * // Each category's positive is ranked first: AP 1, less the ε of LVIS's TP / (TP + FP + ε).
 * ev.perCategoryAP(); // Float64Array [0.9999999999999999, 0.9999999999999999]
 * ```
 */
export class ProposalEvaluator {
  #c: number;
  #maxDets: number;
  #scoreThreshold: number;
  #interpolation: ApInterpolation;
  #federated: boolean;
  #scores: number[][];
  #hits: number[][];
  #numPositives: Float64Array;
  #positiveScoreSum: Float64Array;
  #images = 0;
  // Heap scratch (score, flat index) of the per-image selection.
  #heapScore = new Float64Array(0);
  #heapIndex = new Int32Array(0);

  /**
   * Creates an empty evaluator.
   *
   * @param options See {@linkcode ProposalEvaluatorOptions}.
   * @throws {RangeError} On a non-positive category count, a cap below 1, a score threshold
   *   that is NaN or an unknown interpolation.
   */
  constructor(options: ProposalEvaluatorOptions) {
    const c = options.numCategories;
    if (!Number.isInteger(c) || c < 1) {
      throw new RangeError(`numCategories must be a positive integer, got ${c}`);
    }
    const maxDets = options.maxDetsPerImage ?? 300;
    if (!(maxDets === Infinity || (Number.isInteger(maxDets) && maxDets >= 1))) {
      throw new RangeError(
        `maxDetsPerImage must be a positive integer or Infinity, got ${maxDets}`,
      );
    }
    const scoreThreshold = options.scoreThreshold ?? 1e-4;
    if (typeof scoreThreshold !== "number" || Number.isNaN(scoreThreshold)) {
      throw new RangeError(`scoreThreshold must be a number, got ${String(scoreThreshold)}`);
    }
    const interpolation = options.interpolation ?? "coco101";
    if (interpolation !== "step" && interpolation !== "coco101") {
      throw new RangeError(
        `interpolation must be "step" or "coco101", got ${JSON.stringify(interpolation)}`,
      );
    }
    this.#c = c;
    this.#maxDets = maxDets;
    // Scores are float32: comparing them with the threshold rounded to float32 is the float32
    // comparison `scores > threshold` of a PyTorch float32 tensor.
    this.#scoreThreshold = Math.fround(scoreThreshold);
    this.#interpolation = interpolation;
    this.#federated = options.federated ?? false;
    this.#scores = Array.from({ length: c }, () => []);
    this.#hits = Array.from({ length: c }, () => []);
    this.#numPositives = new Float64Array(c);
    this.#positiveScoreSum = new Float64Array(c);
  }

  /** Number of categories C. */
  get numCategories(): number {
    return this.#c;
  }

  /** Number of images added so far. */
  get numImages(): number {
    return this.#images;
  }

  /**
   * Adds the proposals of one image.
   *
   * @param scores Row-major `[P, C]` scores (probabilities, e.g. σ of the logits), finite.
   * @param labels `[P]` labels in 0..C, C meaning background.
   * @param negativeCategories Categories verified absent from the image, LVIS's
   *   `neg_category_ids` (federated evaluation only; required there, ignored otherwise).
   * @param notExhaustiveCategories Categories of the image whose instances are not all annotated,
   *   LVIS's `not_exhaustive_category_ids`: their unmatched detections in this image are ignored
   *   (federated evaluation only; optional, ignored otherwise).
   * @throws {RangeError} When the sizes disagree, a label is out of range, a score is not finite,
   *   a negative category is out of range or present in the image, or a not-exhaustive category
   *   is out of range or also listed as absent.
   * @throws {TypeError} When the scores or labels have the wrong type, or the evaluation is
   *   federated and `negativeCategories` is missing.
   */
  add(
    scores: Float32Array,
    labels: Int32Array,
    negativeCategories?: ArrayLike<number>,
    notExhaustiveCategories?: ArrayLike<number>,
  ): void {
    const c = this.#c, p = labels.length;
    if (!(scores instanceof Float32Array)) {
      throw new TypeError(
        `scores must be a Float32Array, got ${Object.prototype.toString.call(scores)}`,
      );
    }
    if (!(labels instanceof Int32Array)) {
      throw new TypeError(
        `labels must be an Int32Array, got ${Object.prototype.toString.call(labels)}`,
      );
    }
    if (scores.length !== p * c) {
      throw new RangeError(
        `scores must hold P·C = ${p}·${c} = ${p * c} values for ${p} labels, got ${scores.length}`,
      );
    }
    for (let i = 0; i < p; i++) {
      const y = labels[i];
      if (!Number.isInteger(y) || y < 0 || y > c) {
        throw new RangeError(`labels[${i}] must lie in 0..${c} (${c} is background), got ${y}`);
      }
    }
    for (let k = 0; k < scores.length; k++) {
      if (!Number.isFinite(scores[k])) {
        throw new RangeError(
          `scores[${Math.floor(k / c)}, ${k % c}] must be finite, got ${scores[k]}`,
        );
      }
    }
    // Federated: per category, NOT_EVALUATED (dropped), EVALUATED (positive or negative set) or
    // MATCHED_ONLY (not exhaustively annotated: unmatched detections ignored).
    let status: Uint8Array | undefined;
    if (this.#federated) {
      if (negativeCategories === undefined) {
        throw new TypeError("negativeCategories must be given when the evaluation is federated");
      }
      status = new Uint8Array(c); // NOT_EVALUATED
      const present = new Uint8Array(c), negative = new Uint8Array(c);
      for (let i = 0; i < p; i++) if (labels[i] < c) present[labels[i]] = 1;
      for (let k = 0; k < negativeCategories.length; k++) {
        const j = negativeCategories[k];
        if (!Number.isInteger(j) || j < 0 || j >= c) {
          throw new RangeError(`negativeCategories[${k}] must lie in 0..${c - 1}, got ${j}`);
        }
        if (present[j] === 1) {
          throw new RangeError(
            `negativeCategories[${k}] = ${j} is listed as absent but the image has a proposal labelled ${j}`,
          );
        }
        negative[j] = 1;
      }
      for (let j = 0; j < c; j++) if (present[j] === 1 || negative[j] === 1) status[j] = EVALUATED;
      if (notExhaustiveCategories !== undefined) {
        for (let k = 0; k < notExhaustiveCategories.length; k++) {
          const j = notExhaustiveCategories[k];
          if (!Number.isInteger(j) || j < 0 || j >= c) {
            throw new RangeError(
              `notExhaustiveCategories[${k}] must lie in 0..${c - 1}, got ${j}`,
            );
          }
          if (negative[j] === 1) {
            throw new RangeError(
              `notExhaustiveCategories[${k}] = ${j} is also listed in negativeCategories (verified absent)`,
            );
          }
          if (status[j] === EVALUATED) status[j] = MATCHED_ONLY;
        }
      }
    }

    for (let i = 0; i < p; i++) {
      const y = labels[i];
      if (y < c) {
        this.#numPositives[y]++;
        this.#positiveScoreSum[y] += scores[i * c + y];
      }
    }

    const kept = this.#select(scores);
    for (let t = 0; t < kept.length; t++) {
      const flat = kept[t];
      const i = Math.floor(flat / c), j = flat - i * c;
      const hit = labels[i] === j;
      if (status !== undefined) {
        if (status[j] === NOT_EVALUATED || (status[j] === MATCHED_ONLY && !hit)) continue;
      }
      this.#scores[j].push(scores[flat]);
      this.#hits[j].push(hit ? 1 : 0);
    }
    this.#images++;
  }

  /**
   * Flat indices of the kept candidates: those scoring above `scoreThreshold`, at most
   * `maxDetsPerImage` of them, highest first; among equal scores at the cut the lower flat index
   * (proposal-major) wins.
   */
  #select(scores: Float32Array): Int32Array {
    const threshold = this.#scoreThreshold, n = scores.length;
    if (this.#maxDets >= n) {
      const out: number[] = [];
      for (let k = 0; k < n; k++) if (scores[k] > threshold) out.push(k);
      return Int32Array.from(out);
    }
    const cap = this.#maxDets;
    if (this.#heapScore.length < cap) {
      this.#heapScore = new Float64Array(cap);
      this.#heapIndex = new Int32Array(cap);
    }
    // A min-heap of the best `cap` so far, ordered by (score, −index): its root is the candidate
    // that the next better one displaces. Indices arrive in increasing order, so a candidate equal
    // in score to the root never displaces it.
    const hs = this.#heapScore, hi = this.#heapIndex;
    let size = 0;
    const worse = (a: number, b: number): boolean =>
      hs[a] < hs[b] || (hs[a] === hs[b] && hi[a] > hi[b]);
    const siftDown = (start: number): void => {
      let i = start;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < size && worse(l, m)) m = l;
        if (r < size && worse(r, m)) m = r;
        if (m === i) return;
        const s = hs[i], x = hi[i];
        hs[i] = hs[m];
        hi[i] = hi[m];
        hs[m] = s;
        hi[m] = x;
        i = m;
      }
    };
    for (let k = 0; k < n; k++) {
      const s = scores[k];
      if (!(s > threshold)) continue;
      if (size < cap) {
        // Sift up.
        let i = size++;
        hs[i] = s;
        hi[i] = k;
        while (i > 0) {
          const parent = (i - 1) >> 1;
          if (!worse(i, parent)) break;
          const ps = hs[parent], px = hi[parent];
          hs[parent] = hs[i];
          hi[parent] = hi[i];
          hs[i] = ps;
          hi[i] = px;
          i = parent;
        }
      } else if (s > hs[0]) {
        hs[0] = s;
        hi[0] = k;
        siftDown(0);
      }
    }
    return hi.slice(0, size).sort();
  }

  /**
   * Number of positive proposals per category over the images added.
   *
   * @returns `[C]` counts.
   */
  numPositives(): Float64Array {
    return this.#numPositives.slice();
  }

  /**
   * Average precision of every category.
   *
   * @returns `[C]` APs in [0, 1]; NaN for a category without positive proposals.
   */
  perCategoryAP(): Float64Array {
    const out = new Float64Array(this.#c);
    for (let j = 0; j < this.#c; j++) {
      out[j] = averagePrecision(
        this.#scores[j],
        this.#hits[j],
        this.#numPositives[j],
        this.#interpolation,
      );
    }
    return out;
  }

  /**
   * Mean score that each category's positive proposals received for that category, over all of
   * them (kept or not): the average predicted probability of positives (EQL paper, Figure 2).
   *
   * @returns `[C]` means; NaN for a category without positive proposals.
   */
  positiveProbability(): Float64Array {
    const out = new Float64Array(this.#c);
    for (let j = 0; j < this.#c; j++) {
      out[j] = this.#numPositives[j] > 0 ? this.#positiveScoreSum[j] / this.#numPositives[j] : NaN;
    }
    return out;
  }
}

/**
 * Averages per-category APs over all categories and over the rare, common and frequent groups,
 * skipping categories whose AP is NaN (no positives).
 *
 * @param ap `[C]` per-category APs.
 * @param groups `[C]` the group of each category.
 * @returns The four means (NaN for a group with no category to average).
 * @throws {RangeError} When the lengths differ or a group name is unknown.
 *
 * @example
 * ```ts
 * import { summarizeAP } from "@eql/eql/detection";
 * summarizeAP(new Float64Array([0.2, 0.4, NaN]), ["rare", "frequent", "common"]);
 * // { ap: 0.3, apRare: 0.2, apCommon: NaN, apFrequent: 0.4 }
 * ```
 */
export function summarizeAP(ap: ArrayLike<number>, groups: ArrayLike<FrequencyGroup>): ApSummary {
  if (groups.length !== ap.length) {
    throw new RangeError(
      `groups must name a group for each of the ${ap.length} categories, got ${groups.length}`,
    );
  }
  const sum = { all: 0, rare: 0, common: 0, frequent: 0 };
  const count = { all: 0, rare: 0, common: 0, frequent: 0 };
  for (let j = 0; j < ap.length; j++) {
    const g = groups[j];
    if (g !== "rare" && g !== "common" && g !== "frequent") {
      throw new RangeError(
        `groups[${j}] must be "rare", "common" or "frequent", got ${JSON.stringify(g)}`,
      );
    }
    if (Number.isNaN(ap[j])) continue;
    sum.all += ap[j];
    count.all++;
    sum[g] += ap[j];
    count[g]++;
  }
  const mean = (k: keyof typeof sum): number => count[k] > 0 ? sum[k] / count[k] : NaN;
  return {
    ap: mean("all"),
    apRare: mean("rare"),
    apCommon: mean("common"),
    apFrequent: mean("frequent"),
  };
}
