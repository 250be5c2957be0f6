/**
 * Classification metrics for long-tailed evaluation: top-1 and top-k accuracy, per-class
 * accuracy, and the mean accuracy of the many / medium / few-shot class groups.
 *
 * Scores are host arrays `[N, C]` (logits or probabilities: only their order matters). Ties are
 * broken towards the lower class index, as `argmax` does in PyTorch and NumPy.
 *
 * @module
 */

/** Accumulated predictions of one evaluation pass. */
export interface ClassificationReport {
  /** Fraction of samples whose top-scoring class is the label. */
  top1: number;
  /** Fraction of samples whose label is among the 5 top-scoring classes. */
  top5: number;
  /** Per-class top-1 accuracy (NaN for a class with no test sample). */
  perClass: number[];
  /** Test samples per class. */
  support: number[];
  /** Mean per-class accuracy over the many-shot classes (NaN when the group is empty). */
  many: number;
  /** Mean per-class accuracy over the medium-shot classes. */
  medium: number;
  /** Mean per-class accuracy over the few-shot classes. */
  few: number;
}

/**
 * Collects predictions batch by batch and summarises them.
 *
 * @example
 * ```ts
 * import { AccuracyMeter } from "@eql/eql";
 * const meter = new AccuracyMeter(3);
 * meter.add(new Float32Array([0.1, 0.7, 0.2, 0.9, 0.05, 0.05]), new Int32Array([1, 2]));
 * meter.top1(); // 0.5
 * ```
 */
export class AccuracyMeter {
  #numClasses: number;
  #k: number;
  #correct1: Float64Array;
  #correctK = 0;
  #count: Float64Array;

  /**
   * Starts an empty meter.
   *
   * @param numClasses Number of classes C.
   * @param k The k of top-k accuracy (5 by default; capped at C for tiny problems).
   */
  constructor(numClasses: number, k = 5) {
    if (!Number.isInteger(numClasses) || numClasses < 1) {
      throw new RangeError(`numClasses must be a positive integer, got ${numClasses}`);
    }
    if (!Number.isInteger(k) || k < 1) {
      throw new RangeError(`k must be a positive integer, got ${k}`);
    }
    this.#numClasses = numClasses;
    this.#k = Math.min(k, numClasses);
    this.#correct1 = new Float64Array(numClasses);
    this.#count = new Float64Array(numClasses);
  }

  /**
   * Adds a batch.
   *
   * @param scores Row-major `[N, C]` scores.
   * @param labels `N` labels in `0..C−1`.
   */
  add(scores: Float32Array, labels: Int32Array): void {
    const c = this.#numClasses;
    if (scores.length !== labels.length * c) {
      throw new RangeError(
        `scores must hold labels.length × numClasses = ${
          labels.length * c
        } values, got ${scores.length}`,
      );
    }
    for (let i = 0; i < labels.length; i++) {
      const y = labels[i];
      if (!Number.isInteger(y) || y < 0 || y >= c) {
        throw new RangeError(`labels[${i}] must be in 0..${c - 1}, got ${y}`);
      }
      const row = i * c;
      const target = scores[row + y];
      // Rank of the label: classes scoring higher, or equal with a lower index, come first.
      let ahead = 0;
      for (let j = 0; j < c; j++) {
        const s = scores[row + j];
        if (s > target || (s === target && j < y)) ahead++;
      }
      this.#count[y]++;
      if (ahead === 0) this.#correct1[y]++;
      if (ahead < this.#k) this.#correctK++;
    }
  }

  /** Samples seen so far. */
  get total(): number {
    let t = 0;
    for (const v of this.#count) t += v;
    return t;
  }

  /** Overall top-1 accuracy. */
  top1(): number {
    let c = 0;
    for (const v of this.#correct1) c += v;
    return c / this.total;
  }

  /** Overall top-k accuracy. */
  topK(): number {
    return this.#correctK / this.total;
  }

  /**
   * Summarises the pass.
   *
   * @param trainCounts Training images per class, for the many/medium/few groups.
   * @param thresholds Group bounds: many `> many`, few `< few`, medium otherwise (100 and 20).
   * @returns Overall, per-class and per-group accuracy.
   */
  report(
    trainCounts: ArrayLike<number>,
    thresholds: { many: number; few: number } = { many: 100, few: 20 },
  ): ClassificationReport {
    const c = this.#numClasses;
    if (trainCounts.length !== c) {
      throw new RangeError(`trainCounts must have ${c} entries, got ${trainCounts.length}`);
    }
    const perClass: number[] = [];
    const support: number[] = [];
    const sums = { many: [0, 0], medium: [0, 0], few: [0, 0] };
    for (let j = 0; j < c; j++) {
      const acc = this.#count[j] > 0 ? this.#correct1[j] / this.#count[j] : NaN;
      perClass.push(acc);
      support.push(this.#count[j]);
      if (Number.isNaN(acc)) continue;
      const n = trainCounts[j];
      const group = n > thresholds.many ? sums.many : n < thresholds.few ? sums.few : sums.medium;
      group[0] += acc;
      group[1]++;
    }
    const mean = ([s, k]: number[]): number => (k > 0 ? s / k : NaN);
    return {
      top1: this.top1(),
      top5: this.topK(),
      perClass,
      support,
      many: mean(sums.many),
      medium: mean(sums.medium),
      few: mean(sums.few),
    };
  }
}
