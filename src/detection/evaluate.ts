/**
 * Proposal-level detection evaluation in the manner of LVIS: every (proposal, category) pair with
 * its score is a candidate detection; each image keeps only its `maxDetsPerImage` highest-scoring
 * candidates (LVIS keeps 300), so that categories whose scores are suppressed lose their
 * detections to confident categories; then each category's kept detections, pooled over images
 * and ranked by score, give its average precision against every proposal labelled with it.
 *
 * Optionally the evaluation is federated like LVIS: a category's detections in an image count
 * only when the category is present in the image or listed in the image's negative set (verified
 * absent); elsewhere they are neither true nor false positives.
 *
 * Images are added one at a time, so the full score matrix of an evaluation set never has to be
 * held in memory.
 *
 * @module
 */

import { type ApInterpolation, averagePrecision } from "./ap.ts";
import type { LvisGroup } from "../longtail/groups.ts";

/** Options of a {@linkcode ProposalEvaluator}. */
export interface ProposalEvaluatorOptions {
  /** Number of categories C; labels run over 0..C with C meaning background. */
  numCategories: number;
  /** Detections kept per image, highest scores first (default 300 as in LVIS; `Infinity`: all). */
  maxDetsPerImage?: number;
  /** Candidates scoring below this are dropped before the per-image cap (default 0: none). */
  minScore?: number;
  /** Summary of each precision–recall curve (default `"coco101"`). */
  interpolation?: ApInterpolation;
  /** Count a category's detections only in images where it is present or verified absent. */
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
 * import { ProposalEvaluator } from "./evaluate.ts";
 * const ev = new ProposalEvaluator({ numCategories: 2 });
 * // one image, three proposals: category 0, category 1, background (label 2)
 * ev.add(new Float32Array([0.9, 0.1, 0.2, 0.8, 0.3, 0.05]), new Int32Array([0, 1, 2]));
 * ev.perCategoryAP(); // Float64Array [1, 1]
 * ```
 */
export class ProposalEvaluator {
  #c: number;
  #maxDets: number;
  #minScore: number;
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
   * @throws {RangeError} On a non-positive category count, a cap below 1 or an unknown
   *   interpolation.
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
    const minScore = options.minScore ?? 0;
    if (Number.isNaN(minScore)) throw new RangeError(`minScore must be a number, got NaN`);
    const interpolation = options.interpolation ?? "coco101";
    if (interpolation !== "step" && interpolation !== "coco101") {
      throw new RangeError(
        `interpolation must be "step" or "coco101", got ${JSON.stringify(interpolation)}`,
      );
    }
    this.#c = c;
    this.#maxDets = maxDets;
    this.#minScore = minScore;
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
   * @param negativeCategories Categories verified absent from the image (federated evaluation
   *   only; required there, ignored otherwise).
   * @throws {RangeError} When the sizes disagree, a label is out of range, a score is not finite,
   *   or a negative category is out of range or present in the image.
   */
  add(
    scores: Float32Array,
    labels: Int32Array,
    negativeCategories?: ArrayLike<number>,
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
    // Which categories are evaluated in this image (federated) — present ones always.
    let evaluated: Uint8Array | undefined;
    if (this.#federated) {
      if (negativeCategories === undefined) {
        throw new TypeError("negativeCategories must be given when the evaluation is federated");
      }
      evaluated = new Uint8Array(c);
      for (let i = 0; i < p; i++) if (labels[i] < c) evaluated[labels[i]] = 1;
      for (let k = 0; k < negativeCategories.length; k++) {
        const j = negativeCategories[k];
        if (!Number.isInteger(j) || j < 0 || j >= c) {
          throw new RangeError(`negativeCategories[${k}] must lie in 0..${c - 1}, got ${j}`);
        }
        if (evaluated[j] === 1 && labels.includes(j)) {
          throw new RangeError(
            `negativeCategories[${k}] = ${j} is listed as absent but the image has a proposal labelled ${j}`,
          );
        }
        evaluated[j] = 1;
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
      if (evaluated !== undefined && evaluated[j] === 0) continue;
      this.#scores[j].push(scores[flat]);
      this.#hits[j].push(labels[i] === j ? 1 : 0);
    }
    this.#images++;
  }

  /**
   * Flat indices of the kept candidates: those scoring at least `minScore`, at most
   * `maxDetsPerImage` of them, highest first; among equal scores at the cut the lower flat index
   * (proposal-major) wins.
   */
  #select(scores: Float32Array): Int32Array {
    const min = this.#minScore, n = scores.length;
    if (this.#maxDets >= n) {
      const out: number[] = [];
      for (let k = 0; k < n; k++) if (scores[k] >= min) out.push(k);
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
      if (s < min) continue;
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
 * import { summarizeAP } from "./evaluate.ts";
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
