/**
 * Long-tailed subsets of image datasets with the exponential profile of Cui et al.
 * ("Class-Balanced Loss Based on Effective Number of Samples", CVPR 2019), used for CIFAR-10-LT
 * and CIFAR-100-LT: class `i` of `C` keeps `floor(n_max · IF^(−i/(C−1)))` images, where `n_max`
 * is the per-class count of the balanced dataset and `IF` the imbalance factor (class 0 is the
 * head). The counts come from `longTailCounts` and the choice of images from `longTailSubset`
 * (both in `src/longtail/cifar_lt.ts`). Test sets stay balanced; only the training split is
 * subsampled.
 *
 * Which images are kept: one {@linkcode Random} seeded with `seed` visits the classes in order
 * 0, 1, …, C−1; for each it shuffles that class's image indices (in dataset order) and keeps
 * the first `n_i`, the procedure of the LDAM-DRW code (which seeds numpy with 0). The subset
 * keeps the dataset's order.
 *
 * @module
 */

import { longTailCounts, longTailSubset } from "../longtail/cifar_lt.ts";
import { classCounts } from "../longtail/frequency.ts";
import { Random } from "../random.ts";
import { checkDataset, type ImageDataset } from "./dataset.ts";
import { sharedBytes } from "./shared_memory.ts";

/** Options for {@linkcode longTailedIndices} and {@linkcode makeLongTailed}. */
export interface LongTailOptions {
  /** `IF` ≥ 1 (CIFAR-LT uses 200, 100, 50, 10). */
  imbalanceFactor: number;
  /** Seed of the per-class shuffles (default 0). */
  seed?: number;
  /** Head-class count `n_max` (default: the largest class count of the dataset). */
  maxPerClass?: number;
}

/**
 * Chooses the images of a long-tailed subset.
 *
 * @param labels Class of each image of the (balanced) dataset.
 * @param numClasses Number of classes.
 * @param options Imbalance factor, seed and head count.
 * @returns Indices of the kept images, ascending.
 * @throws {RangeError} When a class has fewer images than the profile asks of it.
 *
 * @example
 * ```ts
 * import { longTailedIndices } from "@eql/eql/data";
 * const labels = new Int32Array([0, 0, 0, 0, 1, 1, 1, 1]);
 * longTailedIndices(labels, 2, { imbalanceFactor: 4, seed: 1 }).length; // 4 + 1
 * ```
 */
export function longTailedIndices(
  labels: Int32Array,
  numClasses: number,
  options: LongTailOptions,
): Int32Array {
  const counts = classCounts(labels, numClasses);
  let nMax = options?.maxPerClass;
  if (nMax === undefined) nMax = counts.reduce((m, c) => Math.max(m, c), 0);
  const keep = longTailCounts({
    numClasses,
    maxPerClass: nMax,
    imbalanceFactor: options?.imbalanceFactor,
  });
  for (let c = 0; c < numClasses; c++) {
    if (counts[c] < keep[c]) {
      throw new RangeError(
        `class ${c} must have at least ${keep[c]} images for imbalance factor ` +
          `${options.imbalanceFactor} with maxPerClass ${nMax}, got ${counts[c]}`,
      );
    }
  }
  return longTailSubset(labels, keep, new Random(options.seed ?? 0));
}

/**
 * Copies the chosen images of a dataset into a new dataset, its images on a `SharedArrayBuffer`.
 *
 * @param dataset Source dataset (CHW uint8 images).
 * @param indices Which images, in the order wanted.
 * @param height Image height (default 32).
 * @param width Image width (default 32).
 * @returns The subset, with the same class names.
 *
 * @example
 * ```ts
 * import { subsetDataset } from "@eql/eql/data";
 * const d = { images: new Uint8Array(2 * 3072), labels: new Int32Array([0, 1]), classNames: ["a", "b"], numClasses: 2 };
 * subsetDataset(d, new Int32Array([1])).labels; // Int32Array [1]
 * ```
 */
export function subsetDataset(
  dataset: ImageDataset,
  indices: Int32Array,
  height = 32,
  width = 32,
): ImageDataset {
  const n = checkDataset(dataset, height, width);
  const per = 3 * height * width;
  // Shared memory, so that every batch loader over the subset reads it without a copy.
  const images = sharedBytes(indices.length * per);
  const labels = new Int32Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (!Number.isInteger(i) || i < 0 || i >= n) {
      throw new RangeError(`indices[${k}] must be an image index in 0..${n - 1}, got ${i}`);
    }
    images.set(dataset.images.subarray(i * per, (i + 1) * per), k * per);
    labels[k] = dataset.labels[i];
  }
  return {
    images,
    labels,
    classNames: [...dataset.classNames],
    numClasses: dataset.numClasses,
  };
}

/**
 * The long-tailed version of a balanced training set (CIFAR-10-LT, CIFAR-100-LT).
 *
 * @param dataset The balanced training split.
 * @param options Imbalance factor, seed and head count.
 * @returns The subset and the indices it was taken from.
 *
 * @example
 * ```ts ignore
 * import { loadCifar } from "@eql/eql/data";
 * import { makeLongTailed } from "@eql/eql/data";
 * const { train } = await loadCifar("cifar100");
 * const lt = makeLongTailed(train, { imbalanceFactor: 100, seed: 0 });
 * lt.dataset.labels.length; // 10847
 * ```
 */
export function makeLongTailed(
  dataset: ImageDataset,
  options: LongTailOptions,
): { dataset: ImageDataset; indices: Int32Array } {
  checkDataset(dataset);
  const indices = longTailedIndices(dataset.labels, dataset.numClasses, options);
  return { dataset: subsetDataset(dataset, indices), indices };
}
