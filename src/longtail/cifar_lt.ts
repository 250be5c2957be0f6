/**
 * Long-tailed subsets of balanced datasets, as in CIFAR-10-LT / CIFAR-100-LT (Cui et al., CVPR
 * 2019; the LDAM-DRW reimplementation): class i of C keeps
 * `n_i = floor(n_max · IF^(−i/(C−1)))` training images, class 0 being the head.
 *
 * @module
 */

import type { Random } from "../random.ts";
import { checkArrayLike, checkCounts, checkInteger, checkLabel, checkNumber } from "./_validate.ts";

/** Parameters of an exponential long-tail profile. */
export interface LongTailProfile {
  /** Number of classes C ≥ 1. */
  numClasses: number;
  /** Images kept for the head class 0 (CIFAR-10: 5000, CIFAR-100: 500). */
  maxPerClass: number;
  /** Imbalance factor IF = n_max / n_min ≥ 1 (before truncation), e.g. 10, 50, 100, 200. */
  imbalanceFactor: number;
}

/**
 * Per-class image counts of an exponential long tail: `n_i = floor(n_max · IF^(−i/(C−1)))`.
 *
 * Computed as `n_max · (1/IF)^(i/(C−1))` in double precision (the LDAM-DRW formula). A value
 * within a relative 1e-9 of an integer is taken as that integer: the exact tail size
 * `n_max / IF` is often an integer that rounding could otherwise push just below. This reproduces
 * the published totals, e.g. CIFAR-100-LT 9,502 / 10,847 / 12,608 / 19,573 and CIFAR-10-LT
 * 11,203 / 12,406 / 13,996 / 20,431 images for IF = 200 / 100 / 50 / 10.
 *
 * @param profile Number of classes, head size and imbalance factor.
 * @returns `n_i` for every class, non-increasing.
 * @throws {RangeError} When a parameter is out of range.
 *
 * @example
 * ```ts
 * import { longTailCounts } from "@eql/eql";
 * const counts = longTailCounts({ numClasses: 100, maxPerClass: 500, imbalanceFactor: 100 });
 * // counts[0] = 500, counts[99] = 5, total 10,847
 * ```
 */
export function longTailCounts(profile: LongTailProfile): Int32Array {
  const { numClasses, maxPerClass, imbalanceFactor } = profile;
  checkInteger("numClasses", numClasses, 1);
  checkInteger("maxPerClass", maxPerClass, 1);
  checkNumber("imbalanceFactor", imbalanceFactor, 1);
  const out = new Int32Array(numClasses);
  const ratio = 1 / imbalanceFactor;
  for (let i = 0; i < numClasses; i++) {
    const x = numClasses === 1 ? maxPerClass : maxPerClass * Math.pow(ratio, i / (numClasses - 1));
    const r = Math.round(x);
    out[i] = Math.abs(x - r) <= 1e-9 * x ? r : Math.floor(x);
  }
  return out;
}

/**
 * The CIFAR-LT counts: `longTailCounts` with C = 10, n_max = 5000 (CIFAR-10) or C = 100,
 * n_max = 500 (CIFAR-100).
 *
 * @param dataset `"cifar10"` or `"cifar100"`.
 * @param imbalanceFactor IF ≥ 1 (the literature uses 10, 50, 100, 200).
 * @returns Training images per class.
 * @throws {RangeError} When the dataset name or the imbalance factor is invalid.
 *
 * @example
 * ```ts
 * import { cifarLtCounts } from "@eql/eql";
 * cifarLtCounts("cifar10", 100); // Int32Array [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
 * ```
 */
export function cifarLtCounts(
  dataset: "cifar10" | "cifar100",
  imbalanceFactor: number,
): Int32Array {
  if (dataset === "cifar10") {
    return longTailCounts({ numClasses: 10, maxPerClass: 5000, imbalanceFactor });
  }
  if (dataset === "cifar100") {
    return longTailCounts({ numClasses: 100, maxPerClass: 500, imbalanceFactor });
  }
  throw new RangeError(`dataset must be "cifar10" or "cifar100", got ${JSON.stringify(dataset)}`);
}

/**
 * Picks which images form the long-tailed subset: for each class, its image indices are shuffled
 * with `rng` and the first `counts[c]` kept. The result is sorted ascending, so the subset keeps
 * the dataset's order; the same seed always gives the same subset.
 *
 * @param labels Class of every image of the balanced dataset.
 * @param counts Images to keep per class (e.g. from {@linkcode longTailCounts}).
 * @param rng Seeded generator.
 * @returns Indices into `labels` of the kept images.
 * @throws {RangeError} When a label is out of range or a class has fewer images than requested.
 *
 * @example
 * ```ts
 * import { longTailSubset } from "@eql/eql";
 * import { Random } from "@eql/eql";
 * const labels = new Int32Array([0, 1, 0, 1, 0, 1]);
 * const keep = longTailSubset(labels, [3, 1], new Random(0)); // all class-0 images, one of class 1
 * ```
 */
export function longTailSubset(
  labels: ArrayLike<number>,
  counts: ArrayLike<number>,
  rng: Random,
): Int32Array {
  checkArrayLike("labels", labels);
  checkCounts("counts", counts);
  const numClasses = counts.length;
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  for (let i = 0; i < labels.length; i++) {
    checkLabel("labels", i, labels[i], numClasses);
    byClass[labels[i]].push(i);
  }
  const kept: number[] = [];
  for (let c = 0; c < numClasses; c++) {
    if (byClass[c].length < counts[c]) {
      throw new RangeError(
        `counts[${c}] must be ≤ the ${byClass[c].length} images of class ${c}, got ${counts[c]}`,
      );
    }
    const order = rng.shuffle(byClass[c]);
    for (let q = 0; q < counts[c]; q++) kept.push(order[q]);
  }
  return Int32Array.from(kept).sort();
}
