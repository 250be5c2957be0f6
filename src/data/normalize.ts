/**
 * Per-channel normalisation of uint8 CHW images to Float32 NCHW: `(v / 255 − mean[c]) / std[c]`,
 * the `ToTensor` + `Normalize` pair of the PyTorch CIFAR recipes. Each channel's 256 possible
 * outputs are computed once in double precision and rounded to float32, so every value is the
 * correctly rounded result of the formula.
 *
 * @module
 */

import { typeName } from "./dataset.ts";

/** Channel means and standard deviations on the [0, 1] scale, red, green, blue. */
export interface Normalization {
  /** Mean of each channel. */
  mean: readonly [number, number, number];
  /** Standard deviation of each channel (> 0). */
  std: readonly [number, number, number];
}

/**
 * CIFAR-10 training-set pixel statistics (over all 50,000 × 1024 pixels).
 *
 * @example
 * ```ts
 * import { CIFAR10_NORMALIZATION } from "@eql/eql/data";
 * CIFAR10_NORMALIZATION.mean; // [0.4914, 0.4822, 0.4465]
 * ```
 */
export const CIFAR10_NORMALIZATION: Normalization = Object.freeze({
  mean: Object.freeze([0.4914, 0.4822, 0.4465]) as readonly [number, number, number],
  std: Object.freeze([0.2470, 0.2435, 0.2616]) as readonly [number, number, number],
});

/**
 * CIFAR-100 training-set pixel statistics (over all 50,000 × 1024 pixels).
 *
 * Many long-tail code bases (LDAM-DRW and those derived from it) normalise both datasets with
 * mean (0.4914, 0.4822, 0.4465) and std (0.2023, 0.1994, 0.2010), the mean per-image std of
 * CIFAR-10; pass those explicitly to reproduce them exactly.
 *
 * @example
 * ```ts
 * import { CIFAR100_NORMALIZATION } from "@eql/eql/data";
 * CIFAR100_NORMALIZATION.std; // [0.2673, 0.2564, 0.2762]
 * ```
 */
export const CIFAR100_NORMALIZATION: Normalization = Object.freeze({
  mean: Object.freeze([0.5071, 0.4865, 0.4409]) as readonly [number, number, number],
  std: Object.freeze([0.2673, 0.2564, 0.2762]) as readonly [number, number, number],
});

/**
 * Validates a normalisation and builds its lookup table: 3 × 256 float32 values.
 *
 * @param normalization Channel means and standard deviations.
 * @returns `table[c * 256 + v]` = `(v / 255 − mean[c]) / std[c]`.
 * @throws {RangeError} When a mean is not finite or a std is not a positive finite number.
 *
 * @example
 * ```ts
 * import { normalizationTable } from "./normalize.ts";
 * const table = normalizationTable({ mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
 * table[255]; // 1
 * ```
 */
export function normalizationTable(normalization: Normalization): Float32Array {
  const { mean, std } = normalization ?? ({} as Normalization);
  if (!mean || mean.length !== 3) {
    throw new RangeError(
      `normalization.mean must have 3 entries, got ${mean ? mean.length : typeName(mean)}`,
    );
  }
  if (!std || std.length !== 3) {
    throw new RangeError(
      `normalization.std must have 3 entries, got ${std ? std.length : typeName(std)}`,
    );
  }
  const table = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    if (typeof mean[c] !== "number" || !Number.isFinite(mean[c])) {
      throw new RangeError(`normalization.mean[${c}] must be a finite number, got ${mean[c]}`);
    }
    if (typeof std[c] !== "number" || !Number.isFinite(std[c]) || std[c] <= 0) {
      throw new RangeError(`normalization.std[${c}] must be a positive number, got ${std[c]}`);
    }
    for (let v = 0; v < 256; v++) table[c * 256 + v] = (v / 255 - mean[c]) / std[c];
  }
  return table;
}

/**
 * Normalises one uint8 CHW image into a float32 buffer at an offset.
 *
 * @param src The image, `3·pixels` bytes.
 * @param dst Destination buffer.
 * @param offset Where in `dst` the image starts.
 * @param table Lookup table from {@linkcode normalizationTable}.
 *
 * @example
 * ```ts
 * import { normalizeInto, normalizationTable } from "./normalize.ts";
 * const table = normalizationTable({ mean: [0, 0, 0], std: [1, 1, 1] });
 * const out = new Float32Array(3);
 * normalizeInto(new Uint8Array([0, 51, 255]), out, 0, table);
 * out; // Float32Array [0, 0.2, 1]
 * ```
 */
export function normalizeInto(
  src: Uint8Array,
  dst: Float32Array,
  offset: number,
  table: Float32Array,
): void {
  if (src.length % 3 !== 0) {
    throw new RangeError(`src must hold 3 channel planes, got ${src.length} bytes`);
  }
  if (!Number.isInteger(offset) || offset < 0 || offset + src.length > dst.length) {
    throw new RangeError(
      `offset must leave room for ${src.length} values in dst of length ${dst.length}, got ${offset}`,
    );
  }
  const plane = src.length / 3;
  for (let c = 0; c < 3; c++) {
    const t = c * 256;
    const o = c * plane;
    for (let i = 0; i < plane; i++) dst[offset + o + i] = table[t + src[o + i]];
  }
}

/**
 * Normalises a whole array of uint8 CHW images into a new Float32 NCHW array.
 *
 * @param images `N` images of `3·height·width` bytes, back to back.
 * @param normalization Channel means and standard deviations.
 * @param height Image height (default 32).
 * @param width Image width (default 32).
 * @returns Float32 values, same layout and length.
 *
 * @example
 * ```ts
 * import { CIFAR10_NORMALIZATION, normalizeImages } from "@eql/eql/data";
 * const x = normalizeImages(new Uint8Array(2 * 3 * 32 * 32), CIFAR10_NORMALIZATION);
 * x.length; // 6144
 * ```
 */
export function normalizeImages(
  images: Uint8Array,
  normalization: Normalization,
  height = 32,
  width = 32,
): Float32Array {
  if (!(images instanceof Uint8Array)) {
    throw new TypeError(`images must be a Uint8Array, got ${typeName(images)}`);
  }
  if (!Number.isInteger(height) || height < 1 || !Number.isInteger(width) || width < 1) {
    throw new RangeError(`height and width must be positive integers, got ${height} × ${width}`);
  }
  const per = 3 * height * width;
  if (images.length % per !== 0) {
    throw new RangeError(
      `images must hold whole images of 3 * ${height} * ${width} = ${per} bytes, got ` +
        `${images.length} bytes`,
    );
  }
  const table = normalizationTable(normalization);
  const out = new Float32Array(images.length);
  for (let at = 0; at < images.length; at += per) {
    normalizeInto(images.subarray(at, at + per), out, at, table);
  }
  return out;
}
