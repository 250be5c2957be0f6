/**
 * Category counts and frequencies. The frequency of category j is
 * `f_j = imageCount_j / numImages`: the fraction of training images that contain it (EQL paper,
 * LVIS); for single-label classification that is the class's share of the training set.
 *
 * @module
 */

import { categoryLists, type ImageLabels } from "./_labels.ts";
import { checkArrayLike, checkCounts, checkInteger, checkLabel } from "./_validate.ts";

export type { ImageLabels } from "./_labels.ts";

/**
 * Training samples per class for single-label data.
 *
 * @param labels One class index per sample, each in `[0, numClasses)`.
 * @param numClasses Number of classes.
 * @returns `counts[j]` = number of samples labelled j.
 * @throws {RangeError} When a label is out of range or `numClasses` is not a positive integer.
 *
 * @example
 * ```ts
 * import { classCounts } from "@eql/eql";
 * classCounts([0, 2, 2, 1, 2], 3); // Int32Array [1, 1, 3]
 * ```
 */
export function classCounts(labels: ArrayLike<number>, numClasses: number): Int32Array {
  checkInteger("numClasses", numClasses, 1);
  checkArrayLike("labels", labels);
  const counts = new Int32Array(numClasses);
  for (let i = 0; i < labels.length; i++) {
    checkLabel("labels", i, labels[i], numClasses);
    counts[labels[i]]++;
  }
  return counts;
}

/**
 * Images containing each category (an image with several boxes of one category counts once).
 *
 * @param labels One class per image, or one list of categories per image.
 * @param numClasses Number of categories.
 * @returns `counts[j]` = number of images in which category j appears.
 * @throws {RangeError} When a category is out of range or `numClasses` is not a positive integer.
 *
 * @example
 * ```ts
 * import { imageCounts } from "@eql/eql";
 * imageCounts([[0, 1, 1], [1], [2, 0]], 3); // Int32Array [2, 2, 1]
 * ```
 */
export function imageCounts(labels: ImageLabels, numClasses: number): Int32Array {
  checkInteger("numClasses", numClasses, 1);
  const counts = new Int32Array(numClasses);
  for (const cats of categoryLists("labels", labels, numClasses)) {
    for (const c of cats) counts[c]++;
  }
  return counts;
}

/**
 * Category frequencies from image counts: `f_j = counts[j] / numImages`.
 *
 * @param counts Images per category (non-negative integers, each ≤ `numImages`).
 * @param numImages Number of training images (LVIS: images with at least one annotation).
 * @returns The frequencies, each in [0, 1].
 * @throws {RangeError} When a count is negative, not an integer or above `numImages`.
 *
 * @example
 * ```ts
 * import { categoryFrequencies } from "@eql/eql";
 * categoryFrequencies([1, 100, 2000], 56740); // Float64Array [1.76e-5, 1.76e-3, 3.52e-2]
 * ```
 */
export function categoryFrequencies(counts: ArrayLike<number>, numImages: number): Float64Array {
  checkInteger("numImages", numImages, 1, Number.MAX_SAFE_INTEGER);
  checkCounts("counts", counts);
  const out = new Float64Array(counts.length);
  for (let j = 0; j < counts.length; j++) {
    if (counts[j] > numImages) {
      throw new RangeError(
        `counts[${j}] must not exceed numImages (${numImages}), got ${counts[j]}`,
      );
    }
    out[j] = counts[j] / numImages;
  }
  return out;
}

/**
 * Category frequencies straight from the labels: image counts divided by the number of images.
 *
 * @param labels One class per image, or one list of categories per image.
 * @param numClasses Number of categories.
 * @returns `f_j` for every category (all zero for an empty dataset is an error).
 * @throws {RangeError} When there are no images or a label is out of range.
 *
 * @example
 * ```ts
 * import { frequenciesFromLabels } from "@eql/eql";
 * frequenciesFromLabels([0, 0, 0, 1], 2); // Float64Array [0.75, 0.25]
 * ```
 */
export function frequenciesFromLabels(labels: ImageLabels, numClasses: number): Float64Array {
  checkArrayLike("labels", labels);
  if (labels.length === 0) {
    throw new RangeError("labels must contain at least one image, got an empty list");
  }
  return categoryFrequencies(imageCounts(labels, numClasses), labels.length);
}
