// Normalises the two label layouts the long-tail utilities accept: one class per image
// (classification) or a list of categories per image (detection / LVIS).

import { checkArrayLike, checkLabel } from "./_validate.ts";

/**
 * Labels of a dataset: one class index per image, or one list of category indices per image
 * (categories repeated within an image count once).
 */
export type ImageLabels = ArrayLike<number> | readonly ArrayLike<number>[];

/** True when the labels are per-image category lists. */
function isMultiLabel(labels: ImageLabels): labels is readonly ArrayLike<number>[] {
  return labels.length > 0 && typeof labels[0] !== "number";
}

/**
 * The distinct categories of every image, validated against `numClasses`.
 * Single-label input gives one-element lists.
 */
export function categoryLists(
  name: string,
  labels: ImageLabels,
  numClasses: number,
): Int32Array[] {
  checkArrayLike(name, labels);
  const out: Int32Array[] = new Array(labels.length);
  if (!isMultiLabel(labels)) {
    const single = labels as ArrayLike<number>;
    for (let i = 0; i < single.length; i++) {
      checkLabel(name, i, single[i], numClasses);
      out[i] = Int32Array.of(single[i]);
    }
    return out;
  }
  const seen = new Int32Array(numClasses).fill(-1);
  for (let i = 0; i < labels.length; i++) {
    const cats = labels[i];
    checkArrayLike(`${name}[${i}]`, cats);
    const distinct: number[] = [];
    for (let q = 0; q < cats.length; q++) {
      const c = cats[q];
      checkLabel(`${name}[${i}]`, q, c, numClasses);
      if (seen[c] !== i) {
        seen[c] = i;
        distinct.push(c);
      }
    }
    out[i] = Int32Array.from(distinct);
  }
  return out;
}
