/**
 * Frequency groups of categories: the LVIS rare / common / frequent split (by the number of
 * training images: ≤ 10, 11–100, > 100) with the EQL thresholds that select exactly those
 * groups, and the many / medium / few-shot split used for long-tailed classification
 * (> 100, 20–100, < 20 training images).
 *
 * @module
 */

import { checkCounts, checkInteger } from "./_validate.ts";

/** LVIS frequency group of a category. */
export type LvisGroup = "rare" | "common" | "frequent";

/** Upper bounds (inclusive, in training images) of the LVIS rare and common groups. */
export interface LvisBounds {
  /** Largest image count of a rare category (LVIS: 10). */
  rareMax?: number;
  /** Largest image count of a common category (LVIS: 100). */
  commonMax?: number;
}

/** Categories sorted into the LVIS groups. */
export interface LvisGroups {
  /** The group of every category. */
  group: LvisGroup[];
  /** Indices of the rare categories (count ≤ rareMax). */
  rare: number[];
  /** Indices of the common categories (rareMax < count ≤ commonMax). */
  common: number[];
  /** Indices of the frequent categories (count > commonMax). */
  frequent: number[];
}

function lvisBounds(options: LvisBounds): { rareMax: number; commonMax: number } {
  const rareMax = options.rareMax ?? 10, commonMax = options.commonMax ?? 100;
  checkInteger("rareMax", rareMax, 0);
  checkInteger("commonMax", commonMax, 0);
  if (commonMax < rareMax) {
    throw new RangeError(`commonMax must be ≥ rareMax (${rareMax}), got ${commonMax}`);
  }
  return { rareMax, commonMax };
}

/**
 * Sorts categories into LVIS rare / common / frequent groups by their training image counts.
 *
 * @param imageCounts Training images per category.
 * @param options Group bounds (defaults: rare ≤ 10, common ≤ 100).
 * @returns The group of every category and the index list of each group.
 * @throws {RangeError} When a count is not a non-negative integer or the bounds are invalid.
 *
 * @example
 * ```ts
 * import { lvisGroups } from "@eql/eql";
 * const g = lvisGroups([3, 10, 11, 100, 101]);
 * // g.rare = [0, 1], g.common = [2, 3], g.frequent = [4]
 * ```
 */
export function lvisGroups(imageCounts: ArrayLike<number>, options: LvisBounds = {}): LvisGroups {
  const { rareMax, commonMax } = lvisBounds(options);
  checkCounts("imageCounts", imageCounts);
  const out: LvisGroups = { group: [], rare: [], common: [], frequent: [] };
  for (let j = 0; j < imageCounts.length; j++) {
    const n = imageCounts[j];
    const g: LvisGroup = n <= rareMax ? "rare" : n <= commonMax ? "common" : "frequent";
    out.group.push(g);
    out[g].push(j);
  }
  return out;
}

/**
 * The EQL thresholds that make exactly the rare (`rare`) or the rare + common (`common`)
 * categories the tail, for a dataset of `numImages` images.
 *
 * Frequencies are multiples of `1/numImages`, so `T_λ(f) = [f < λ]` selects the categories with
 * at most `B` images for every λ in `(B/numImages, (B+1)/numImages]`. This returns the midpoint
 * `λ = (B + 0.5) / numImages` (B = rareMax or commonMax), which stays on the right side of both
 * ends even after the frequencies are rounded to float32. For LVIS v0.5 (56,740 images) that is
 * λ_c = 100.5/56740 ≈ 1.7712e-3 — the 0.00177 of the official EQL code. (The paper's printed
 * 1.76e-3 lies just below 100/56740 ≈ 1.7624e-3, so it would leave out categories with exactly
 * 100 images.)
 *
 * @param numImages Number of training images.
 * @param options Group bounds (defaults: rare ≤ 10, common ≤ 100).
 * @returns `{ rare: λ_r, common: λ_c }`.
 * @throws {RangeError} When `numImages` is not a positive integer or the bounds are invalid.
 *
 * @example
 * ```ts
 * import { lvisLambdas } from "@eql/eql";
 * const { rare, common } = lvisLambdas(56740); // ≈ 1.851e-4, ≈ 1.7712e-3
 * ```
 */
export function lvisLambdas(
  numImages: number,
  options: LvisBounds = {},
): { rare: number; common: number } {
  checkInteger("numImages", numImages, 1, Number.MAX_SAFE_INTEGER);
  const { rareMax, commonMax } = lvisBounds(options);
  return { rare: (rareMax + 0.5) / numImages, common: (commonMax + 0.5) / numImages };
}

/** Few-shot group of a class. */
export type ShotGroup = "many" | "medium" | "few";

/** Bounds of the many / medium / few-shot split, in training images. */
export interface ShotBounds {
  /** A class with more than this many images is many-shot (default 100). */
  many?: number;
  /** A class with fewer than this many images is few-shot (default 20). */
  few?: number;
}

/** Classes sorted into many / medium / few-shot groups. */
export interface ShotSplit {
  /** The group of every class. */
  group: ShotGroup[];
  /** Indices of classes with count > many. */
  many: number[];
  /** Indices of classes with few ≤ count ≤ many. */
  medium: number[];
  /** Indices of classes with count < few. */
  few: number[];
}

/**
 * The many / medium / few-shot split (BALMS / OLTR convention): many-shot > 100, medium-shot
 * 20–100, few-shot < 20 training images, bounds configurable.
 *
 * @param trainCounts Training images per class.
 * @param options Bounds (defaults: many > 100, few < 20).
 * @returns The group of every class and the index list of each group.
 * @throws {RangeError} When a count or bound is not a non-negative integer or `few > many + 1`.
 *
 * @example
 * ```ts
 * import { shotSplit } from "@eql/eql";
 * const s = shotSplit([500, 101, 100, 20, 19, 2]);
 * // s.many = [0, 1], s.medium = [2, 3], s.few = [4, 5]
 * ```
 */
export function shotSplit(trainCounts: ArrayLike<number>, options: ShotBounds = {}): ShotSplit {
  const many = options.many ?? 100, few = options.few ?? 20;
  checkInteger("many", many, 0);
  checkInteger("few", few, 0);
  if (few > many + 1) {
    throw new RangeError(
      `few must be ≤ many + 1 (${many + 1}) so the groups do not overlap, got ${few}`,
    );
  }
  checkCounts("trainCounts", trainCounts);
  const out: ShotSplit = { group: [], many: [], medium: [], few: [] };
  for (let j = 0; j < trainCounts.length; j++) {
    const n = trainCounts[j];
    const g: ShotGroup = n > many ? "many" : n < few ? "few" : "medium";
    out.group.push(g);
    out[g].push(j);
  }
  return out;
}
