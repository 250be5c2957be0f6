/**
 * LVIS image-level labels for the EQL (paper §4.2): a category listed in an image's positive set
 * (annotated there) or its negative set (verified absent) is never suppressed for that image's
 * proposals. The official code leaves this out, so it is an option, off by default.
 *
 * @module
 */

import { describe } from "./validate.ts";

/**
 * Which image each row comes from, and each image's verified category sets.
 *
 * @example
 * ```ts
 * import type { ImageLevelLabels } from "./image_level.ts";
 * const imageLevel: ImageLevelLabels = {
 *   imageOfRow: new Int32Array([0, 0, 1]),
 *   positive: [[2], [0]],
 *   negative: [[5, 7], []],
 * };
 * ```
 */
export interface ImageLevelLabels {
  /** Image index (0..images−1) of every row, length N. */
  imageOfRow: Int32Array | readonly number[];
  /** Per image: the categories annotated in it (LVIS positive set). */
  positive: ReadonlyArray<ArrayLike<number>>;
  /** Per image: the categories verified absent from it (LVIS `neg_category_ids`). */
  negative: ReadonlyArray<ArrayLike<number>>;
}

/**
 * Validates the image-level labels and builds the device inputs.
 *
 * @param fn Loss name for messages.
 * @param value The option as given.
 * @param n Rows.
 * @param c Classes.
 * @returns The image of each row and the [images·C] keep mask (1 = never suppressed).
 */
export function buildKeepMask(
  fn: string,
  value: unknown,
  n: number,
  c: number,
): { imageOfRow: Int32Array; keepMask: Int32Array } {
  if (value === null || typeof value !== "object") {
    throw new TypeError(
      `${fn}: imageLevel must be an object { imageOfRow, positive, negative }, got ${
        describe(value)
      }`,
    );
  }
  const { imageOfRow, positive, negative } = value as Partial<ImageLevelLabels>;
  if (!Array.isArray(positive) || !Array.isArray(negative)) {
    throw new TypeError(
      `${fn}: imageLevel.positive and imageLevel.negative must be arrays with one category list per image, got ${
        describe(positive)
      } and ${describe(negative)}`,
    );
  }
  const images = positive.length;
  if (negative.length !== images) {
    throw new RangeError(
      `${fn}: imageLevel.negative must list ${images} images like imageLevel.positive, got ${negative.length}`,
    );
  }
  if (!(imageOfRow instanceof Int32Array) && !Array.isArray(imageOfRow)) {
    throw new TypeError(
      `${fn}: imageLevel.imageOfRow must be an Int32Array or a number array, got ${
        describe(imageOfRow)
      }`,
    );
  }
  if (imageOfRow.length !== n) {
    throw new RangeError(
      `${fn}: imageLevel.imageOfRow must have one entry per logits row (${n}), got ${imageOfRow.length}`,
    );
  }
  const rows = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = imageOfRow[i];
    if (!Number.isInteger(v) || v < 0 || v >= images) {
      throw new RangeError(
        `${fn}: imageLevel.imageOfRow[${i}] must be an image index in 0..${images - 1}, got ${
          describe(v)
        }`,
      );
    }
    rows[i] = v;
  }
  const keepMask = new Int32Array(images * c);
  for (const [name, sets] of [["positive", positive], ["negative", negative]] as const) {
    for (let m = 0; m < images; m++) {
      const list = sets[m];
      if (list === null || typeof list !== "object" || typeof list.length !== "number") {
        throw new TypeError(
          `${fn}: imageLevel.${name}[${m}] must be an array of category indices, got ${
            describe(list)
          }`,
        );
      }
      for (let t = 0; t < list.length; t++) {
        const k = list[t];
        if (!Number.isInteger(k) || k < 0 || k >= c) {
          throw new RangeError(
            `${fn}: imageLevel.${name}[${m}][${t}] must be a category in 0..${c - 1}, got ${
              describe(k)
            }`,
          );
        }
        keepMask[m * c + k] = 1;
      }
    }
  }
  return { imageOfRow: rows, keepMask };
}
