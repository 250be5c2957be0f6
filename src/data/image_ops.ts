/**
 * The fourteen image operations of AutoAugment (Cubuk et al., CVPR 2019), written for uint8 RGB
 * images in CHW layout (three planes of `height × width`, row-major) of any size.
 *
 * Each operation takes the actual parameter (shear factor, pixels, degrees, threshold, bits or
 * enhancement factor), not a magnitude level; `autoaugment.ts` maps levels to parameters.
 * Semantics follow PIL, which the reference CIFAR implementations call:
 *
 * - Affine operations (shear, translate, rotate) map every output pixel centre `(x+½, y+½)` through
 *   the inverse affine matrix `(a, b, c, d, e, f)` to the source point `(a·x'+b·y'+c, d·x'+e·y'+f)`
 *   and take the nearest pixel (`floor`); points outside the image get the fill value
 *   ({@linkcode AFFINE_FILL} = 128 in every channel, the grey of the common CIFAR code).
 *   Rotation is counter-clockwise about the image centre `(w/2, h/2)`.
 * - Point operations use PIL's lookup tables: autocontrast maps each channel's `[lo, hi]` to
 *   `[0, 255]` with `floor((v − lo)·255 / (hi − lo))` (unchanged when `hi = lo`); equalize is
 *   PIL's per-channel histogram equalisation (`step = (N − count of the highest value) div 256`,
 *   unchanged when `step = 0`); solarize inverts values `≥ threshold`; posterize keeps the top
 *   `bits` bits.
 * - Enhancements blend a degenerate image `D` with the input `I` as PIL does:
 *   `out = trunc(clamp(D + f·(I − D), 0, 255))` in single precision. `D` is black (brightness),
 *   the luma image (colour), a uniform image at the rounded mean luma (contrast), or the image
 *   smoothed by the 3×3 kernel `[1 1 1; 1 5 1; 1 1 1] / 13` with the one-pixel border left as is
 *   (sharpness; the smoothed values are rounded to the nearest integer). Luma is
 *   `(19595·R + 38470·G + 7471·B + 32768) >> 16`, PIL's fixed-point ITU-R 601-2 conversion.
 *
 * Every operation writes `dst` and leaves `src` untouched. Point operations may be given the same
 * array as `src` and `dst`; geometric ones and sharpness may not.
 *
 * @module
 */

import { typeName } from "./dataset.ts";

/** Grey value written where an affine operation samples outside the image. */
export const AFFINE_FILL = 128;

/** An operation on a uint8 CHW RGB image: reads `src`, writes `dst` (both `3·height·width`). */
export type ImageOp = (
  src: Uint8Array,
  dst: Uint8Array,
  height: number,
  width: number,
  value: number,
) => void;

function checkImage(
  src: Uint8Array,
  dst: Uint8Array,
  height: number,
  width: number,
  op: string,
  distinct: boolean,
): void {
  if (!Number.isInteger(height) || height < 1) {
    throw new RangeError(`${op}: height must be a positive integer, got ${height}`);
  }
  if (!Number.isInteger(width) || width < 1) {
    throw new RangeError(`${op}: width must be a positive integer, got ${width}`);
  }
  const size = 3 * height * width;
  if (!(src instanceof Uint8Array) || src.length !== size) {
    throw new RangeError(
      `${op}: src must be a Uint8Array of 3 * ${height} * ${width} = ${size} bytes, got ` +
        `${typeName(src)} of length ${(src as { length?: number })?.length}`,
    );
  }
  if (!(dst instanceof Uint8Array) || dst.length !== size) {
    throw new RangeError(
      `${op}: dst must be a Uint8Array of 3 * ${height} * ${width} = ${size} bytes, got ` +
        `${typeName(dst)} of length ${(dst as { length?: number })?.length}`,
    );
  }
  if (distinct && src.buffer === dst.buffer && src.byteOffset === dst.byteOffset) {
    throw new RangeError(`${op}: dst must be a different array from src`);
  }
}

function checkFinite(value: number, op: string, what: string): void {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new RangeError(`${op}: ${what} must be a finite number, got ${value}`);
  }
}

/**
 * Resamples an image through an inverse affine map with nearest-neighbour sampling.
 *
 * @param src Source image, CHW uint8.
 * @param dst Destination image of the same size; must not be `src`.
 * @param height Image height.
 * @param width Image width.
 * @param matrix `(a, b, c, d, e, f)`: output pixel centre `(x, y)` reads source point
 * `(a·x + b·y + c, d·x + e·y + f)`, PIL's `Image.AFFINE` convention.
 * @param fill Value for points outside the source (default {@linkcode AFFINE_FILL}).
 *
 * @example
 * ```ts
 * import { affine } from "./image_ops.ts";
 * const src = new Uint8Array([1, 2, 3, 4, 5, 6]); // 3 channels of 1×2
 * const dst = new Uint8Array(6);
 * affine(src, dst, 1, 2, [1, 0, 1, 0, 1, 0]); // read one pixel to the right
 * dst; // Uint8Array [2, 128, 4, 128, 6, 128]
 * ```
 */
export function affine(
  src: Uint8Array,
  dst: Uint8Array,
  height: number,
  width: number,
  matrix: readonly [number, number, number, number, number, number],
  fill: number = AFFINE_FILL,
): void {
  checkImage(src, dst, height, width, "affine", true);
  for (const m of matrix) checkFinite(m, "affine", "every matrix entry");
  if (!Number.isInteger(fill) || fill < 0 || fill > 255) {
    throw new RangeError(`affine: fill must be an integer in 0..255, got ${fill}`);
  }
  const [a, b, c, d, e, f] = matrix;
  const plane = height * width;
  for (let y = 0; y < height; y++) {
    const yc = y + 0.5;
    for (let x = 0; x < width; x++) {
      const xc = x + 0.5;
      const sx = a * xc + b * yc + c;
      const sy = d * xc + e * yc + f;
      const o = y * width + x;
      // Negative coordinates are outside even when floor would not reach -1 (PIL's COORD).
      if (sx < 0 || sy < 0) {
        dst[o] = fill;
        dst[o + plane] = fill;
        dst[o + 2 * plane] = fill;
        continue;
      }
      const ix = Math.floor(sx);
      const iy = Math.floor(sy);
      if (ix >= width || iy >= height) {
        dst[o] = fill;
        dst[o + plane] = fill;
        dst[o + 2 * plane] = fill;
        continue;
      }
      const i = iy * width + ix;
      dst[o] = src[i];
      dst[o + plane] = src[i + plane];
      dst[o + 2 * plane] = src[i + 2 * plane];
    }
  }
}

/**
 * Horizontal shear: output `(x, y)` reads source `(x + shear·y, y)` (PIL convention).
 *
 * @param src Source image, CHW uint8.
 * @param dst Destination image.
 * @param height Image height.
 * @param width Image width.
 * @param shear Shear factor; AutoAugment uses ±[0, 0.3].
 *
 * @example
 * ```ts
 * import { shearX } from "./image_ops.ts";
 * const dst = new Uint8Array(3 * 2 * 2);
 * shearX(new Uint8Array(12).fill(9), dst, 2, 2, 0.3);
 * ```
 */
export function shearX(
  src: Uint8Array,
  dst: Uint8Array,
  height: number,
  width: number,
  shear: number,
): void {
  checkFinite(shear, "shearX", "shear");
  affine(src, dst, height, width, [1, shear, 0, 0, 1, 0]);
}

/**
 * Vertical shear: output `(x, y)` reads source `(x, y + shear·x)` (PIL convention).
 *
 * @param src Source image, CHW uint8.
 * @param dst Destination image.
 * @param height Image height.
 * @param width Image width.
 * @param shear Shear factor; AutoAugment uses ±[0, 0.3].
 *
 * @example
 * ```ts
 * import { shearY } from "./image_ops.ts";
 * const dst = new Uint8Array(3 * 2 * 2);
 * shearY(new Uint8Array(12).fill(9), dst, 2, 2, -0.3);
 * ```
 */
export function shearY(
  src: Uint8Array,
  dst: Uint8Array,
  height: number,
  width: number,
  shear: number,
): void {
  checkFinite(shear, "shearY", "shear");
  affine(src, dst, height, width, [1, 0, 0, shear, 1, 0]);
}

/**
 * Horizontal translation: output `(x, y)` reads source `(x + pixels, y)`, so a positive value
 * moves the content left. Fractional offsets are allowed (nearest sampling of pixel centres).
 *
 * @param src Source image, CHW uint8.
 * @param dst Destination image.
 * @param height Image height.
 * @param width Image width.
 * @param pixels Offset in pixels; AutoAugment uses ±[0, 150/331·width].
 *
 * @example
 * ```ts
 * import { translateX } from "./image_ops.ts";
 * const dst = new Uint8Array(3 * 2 * 2);
 * translateX(new Uint8Array(12).fill(9), dst, 2, 2, 1);
 * ```
 */
export function translateX(
  src: Uint8Array,
  dst: Uint8Array,
  height: number,
  width: number,
  pixels: number,
): void {
  checkFinite(pixels, "translateX", "pixels");
  affine(src, dst, height, width, [1, 0, pixels, 0, 1, 0]);
}

/**
 * Vertical translation: output `(x, y)` reads source `(x, y + pixels)`, so a positive value moves
 * the content up.
 *
 * @param src Source image, CHW uint8.
 * @param dst Destination image.
 * @param height Image height.
 * @param width Image width.
 * @param pixels Offset in pixels; AutoAugment uses ±[0, 150/331·height].
 *
 * @example
 * ```ts
 * import { translateY } from "./image_ops.ts";
 * const dst = new Uint8Array(3 * 2 * 2);
 * translateY(new Uint8Array(12).fill(9), dst, 2, 2, -1);
 * ```
 */
export function translateY(
  src: Uint8Array,
  dst: Uint8Array,
  height: number,
  width: number,
  pixels: number,
): void {
  checkFinite(pixels, "translateY", "pixels");
  affine(src, dst, height, width, [1, 0, 0, 0, 1, pixels]);
}

/**
 * Counter-clockwise rotation about the image centre `(width/2, height/2)`, as PIL's
 * `Image.rotate(degrees)` without `expand` (matrix entries rounded to 15 decimals as PIL does,
 * so multiples of 90° are exact).
 *
 * @param src Source image, CHW uint8.
 * @param dst Destination image.
 * @param height Image height.
 * @param width Image width.
 * @param degrees Angle; AutoAugment uses ±[0, 30].
 *
 * @example
 * ```ts
 * import { rotate } from "./image_ops.ts";
 * const dst = new Uint8Array(3 * 2 * 2);
 * rotate(new Uint8Array(12).fill(9), dst, 2, 2, 90);
 * ```
 */
export function rotate(
  src: Uint8Array,
  dst: Uint8Array,
  height: number,
  width: number,
  degrees: number,
): void {
  checkFinite(degrees, "rotate", "degrees");
  const angle = -((degrees % 360) * Math.PI) / 180;
  const r15 = (v: number): number => Math.round(v * 1e15) / 1e15;
  const a = r15(Math.cos(angle));
  const b = r15(Math.sin(angle));
  const d = -b;
  const e = a;
  const cx = width / 2;
  const cy = height / 2;
  // Source = R·(out − centre) + centre.
  const c = a * -cx + b * -cy + cx;
  const f = d * -cx + e * -cy + cy;
  affine(src, dst, height, width, [a, b, c, d, e, f]);
}

function applyLut(src: Uint8Array, dst: Uint8Array, plane: number, luts: Uint8Array[]): void {
  for (let ch = 0; ch < 3; ch++) {
    const lut = luts[ch];
    const o = ch * plane;
    for (let i = 0; i < plane; i++) dst[o + i] = lut[src[o + i]];
  }
}

/**
 * Stretches each channel so that its darkest value becomes 0 and its brightest 255 (PIL's
 * `ImageOps.autocontrast` with no cutoff). A constant channel is left unchanged.
 *
 * @param src Source image, CHW uint8.
 * @param dst Destination image (may be `src`).
 * @param height Image height.
 * @param width Image width.
 *
 * @example
 * ```ts
 * import { autoContrast } from "./image_ops.ts";
 * const img = new Uint8Array([10, 20, 5, 5, 0, 255]); // 3 channels of 1×2
 * autoContrast(img, img, 1, 2);
 * img; // Uint8Array [0, 255, 5, 5, 0, 255]
 * ```
 */
export function autoContrast(
  src: Uint8Array,
  dst: Uint8Array,
  height: number,
  width: number,
): void {
  checkImage(src, dst, height, width, "autoContrast", false);
  const plane = height * width;
  const luts: Uint8Array[] = [];
  for (let ch = 0; ch < 3; ch++) {
    let lo = 255;
    let hi = 0;
    const o = ch * plane;
    for (let i = 0; i < plane; i++) {
      const v = src[o + i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    const lut = new Uint8Array(256);
    for (let v = 0; v < 256; v++) {
      if (hi <= lo) lut[v] = v;
      else if (v <= lo) lut[v] = 0;
      else if (v >= hi) lut[v] = 255;
      else lut[v] = Math.floor(((v - lo) * 255) / (hi - lo));
    }
    luts.push(lut);
  }
  applyLut(src, dst, plane, luts);
}

/**
 * Inverts every value: `255 − v`.
 *
 * @param src Source image, CHW uint8.
 * @param dst Destination image (may be `src`).
 * @param height Image height.
 * @param width Image width.
 *
 * @example
 * ```ts
 * import { invert } from "./image_ops.ts";
 * const img = new Uint8Array([0, 255, 100]);
 * invert(img, img, 1, 1);
 * img; // Uint8Array [255, 0, 155]
 * ```
 */
export function invert(src: Uint8Array, dst: Uint8Array, height: number, width: number): void {
  checkImage(src, dst, height, width, "invert", false);
  for (let i = 0; i < src.length; i++) dst[i] = 255 - src[i];
}

/**
 * Histogram equalisation of each channel (PIL's `ImageOps.equalize`): with `N` pixels, `h` the
 * histogram and `last` the count of the highest value present, `step = floor((N − last) / 256)`;
 * value `v` maps to `min(255, floor((Σ_{u<v} h[u] + floor(step/2)) / step))`. A channel with one
 * value, or with `step = 0`, is left unchanged.
 *
 * @param src Source image, CHW uint8.
 * @param dst Destination image (may be `src`).
 * @param height Image height.
 * @param width Image width.
 *
 * @example
 * ```ts
 * import { equalize } from "./image_ops.ts";
 * const dst = new Uint8Array(3 * 32 * 32);
 * equalize(new Uint8Array(3 * 32 * 32).map((_, i) => i % 7), dst, 32, 32);
 * ```
 */
export function equalize(src: Uint8Array, dst: Uint8Array, height: number, width: number): void {
  checkImage(src, dst, height, width, "equalize", false);
  const plane = height * width;
  const luts: Uint8Array[] = [];
  const hist = new Int32Array(256);
  for (let ch = 0; ch < 3; ch++) {
    hist.fill(0);
    const o = ch * plane;
    for (let i = 0; i < plane; i++) hist[src[o + i]]++;
    let highest = -1;
    let distinct = 0;
    for (let v = 0; v < 256; v++) {
      if (hist[v] > 0) {
        highest = v;
        distinct++;
      }
    }
    const lut = new Uint8Array(256);
    const step = distinct <= 1 ? 0 : Math.floor((plane - hist[highest]) / 256);
    if (step === 0) {
      for (let v = 0; v < 256; v++) lut[v] = v;
    } else {
      let n = Math.floor(step / 2);
      for (let v = 0; v < 256; v++) {
        lut[v] = Math.min(255, Math.floor(n / step));
        n += hist[v];
      }
    }
    luts.push(lut);
  }
  applyLut(src, dst, plane, luts);
}

/**
 * Inverts every value at or above the threshold (PIL's `ImageOps.solarize`); 256 leaves the image
 * unchanged, 0 inverts everything.
 *
 * @param src Source image, CHW uint8.
 * @param dst Destination image (may be `src`).
 * @param height Image height.
 * @param width Image width.
 * @param threshold In 0..256; AutoAugment uses 256 → 0 as the magnitude grows.
 *
 * @example
 * ```ts
 * import { solarize } from "./image_ops.ts";
 * const img = new Uint8Array([10, 128, 200]);
 * solarize(img, img, 1, 1, 128);
 * img; // Uint8Array [10, 127, 55]
 * ```
 */
export function solarize(
  src: Uint8Array,
  dst: Uint8Array,
  height: number,
  width: number,
  threshold: number,
): void {
  checkImage(src, dst, height, width, "solarize", false);
  if (typeof threshold !== "number" || !(threshold >= 0 && threshold <= 256)) {
    throw new RangeError(`solarize: threshold must be in 0..256, got ${threshold}`);
  }
  const lut = lutScratch;
  for (let v = 0; v < 256; v++) lut[v] = v >= threshold ? 255 - v : v;
  mapValues(src, dst, lut);
}

/**
 * Keeps the `bits` most significant bits of every value (PIL's `ImageOps.posterize`).
 *
 * @param src Source image, CHW uint8.
 * @param dst Destination image (may be `src`).
 * @param height Image height.
 * @param width Image width.
 * @param bits Integer in 1..8; AutoAugment uses 8 → 4 as the magnitude grows.
 *
 * @example
 * ```ts
 * import { posterize } from "./image_ops.ts";
 * const img = new Uint8Array([255, 100, 15]);
 * posterize(img, img, 1, 1, 4);
 * img; // Uint8Array [240, 96, 0]
 * ```
 */
export function posterize(
  src: Uint8Array,
  dst: Uint8Array,
  height: number,
  width: number,
  bits: number,
): void {
  checkImage(src, dst, height, width, "posterize", false);
  if (!Number.isInteger(bits) || bits < 1 || bits > 8) {
    throw new RangeError(`posterize: bits must be an integer in 1..8, got ${bits}`);
  }
  const mask = (0xff << (8 - bits)) & 0xff;
  for (let i = 0; i < src.length; i++) dst[i] = src[i] & mask;
}

/** PIL's fixed-point luma of one RGB pixel. */
function luma(r: number, g: number, b: number): number {
  return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
}

function checkFactor(factor: number, op: string): void {
  if (typeof factor !== "number" || !Number.isFinite(factor) || factor < 0) {
    throw new RangeError(`${op}: factor must be a finite number >= 0, got ${factor}`);
  }
}

/** `trunc(clamp(deg + f·(img − deg)))` in single precision, as PIL's `Image.blend`. */
function blendValue(deg: number, img: number, f32: number): number {
  const v = Math.fround(deg + Math.fround(f32 * (img - deg)));
  if (v <= 0) return 0;
  if (v >= 255) return 255;
  return Math.trunc(v);
}

// The enhancements look their results up instead of blending per pixel: a value depends only on
// the degenerate value, the input value and the factor, all bytes but the factor. The tables are
// filled by `blendValue` itself, so the results are the same bits.

/** Reused table of the one-dimensional point operations (filled before each use). */
const lutScratch = new Uint8Array(256);

/** `blendValue(deg, v, f32)` for v = 0..255, in {@linkcode lutScratch}. */
function blendLut(deg: number, f32: number): Uint8Array {
  for (let v = 0; v < 256; v++) lutScratch[v] = blendValue(deg, v, f32);
  return lutScratch;
}

/** Most factors whose two-dimensional blend tables are kept (AutoAugment uses 19). */
const BLEND_TABLES_KEPT = 32;
const blendTables = new Map<number, Uint8Array>();

/**
 * `blendValue(deg, v, f32)` at `(deg << 8) | v`, for the colour and sharpness blends, whose
 * degenerate value changes from pixel to pixel. Built once per factor (65,536 blends, about what
 * 20 images would cost) and kept, the oldest dropped past {@linkcode BLEND_TABLES_KEPT}.
 */
function blendTable(f32: number): Uint8Array {
  let table = blendTables.get(f32);
  if (table !== undefined) return table;
  table = new Uint8Array(256 * 256);
  for (let deg = 0; deg < 256; deg++) {
    for (let v = 0; v < 256; v++) table[(deg << 8) | v] = blendValue(deg, v, f32);
  }
  if (blendTables.size >= BLEND_TABLES_KEPT) {
    blendTables.delete(blendTables.keys().next().value!);
  }
  blendTables.set(f32, table);
  return table;
}

/** `dst[i] = lut[src[i]]` over a whole image. */
function mapValues(src: Uint8Array, dst: Uint8Array, lut: Uint8Array): void {
  for (let i = 0; i < src.length; i++) dst[i] = lut[src[i]];
}

/**
 * Scales brightness: blends with a black image, `out = trunc(clamp(f·v))`.
 *
 * @param src Source image, CHW uint8.
 * @param dst Destination image (may be `src`).
 * @param height Image height.
 * @param width Image width.
 * @param factor Enhancement factor ≥ 0 (1 = unchanged); AutoAugment uses 0.1..1.9.
 *
 * @example
 * ```ts
 * import { brightness } from "./image_ops.ts";
 * const img = new Uint8Array([100, 200, 3]);
 * brightness(img, img, 1, 1, 1.5);
 * img; // Uint8Array [150, 255, 4]
 * ```
 */
export function brightness(
  src: Uint8Array,
  dst: Uint8Array,
  height: number,
  width: number,
  factor: number,
): void {
  checkImage(src, dst, height, width, "brightness", false);
  checkFactor(factor, "brightness");
  mapValues(src, dst, blendLut(0, Math.fround(factor)));
}

/**
 * Scales saturation: blends with the image's luma (greyscale) version.
 *
 * @param src Source image, CHW uint8.
 * @param dst Destination image (may be `src`).
 * @param height Image height.
 * @param width Image width.
 * @param factor Enhancement factor ≥ 0 (0 = greyscale, 1 = unchanged); AutoAugment uses 0.1..1.9.
 *
 * @example
 * ```ts
 * import { color } from "./image_ops.ts";
 * const img = new Uint8Array([255, 0, 0]); // one red pixel
 * color(img, img, 1, 1, 0);
 * img; // Uint8Array [76, 76, 76]
 * ```
 */
export function color(
  src: Uint8Array,
  dst: Uint8Array,
  height: number,
  width: number,
  factor: number,
): void {
  checkImage(src, dst, height, width, "color", false);
  checkFactor(factor, "color");
  const table = blendTable(Math.fround(factor));
  const plane = height * width;
  for (let i = 0; i < plane; i++) {
    const r = src[i];
    const g = src[i + plane];
    const b = src[i + 2 * plane];
    const row = luma(r, g, b) << 8;
    dst[i] = table[row | r];
    dst[i + plane] = table[row | g];
    dst[i + 2 * plane] = table[row | b];
  }
}

/**
 * Scales contrast: blends with a uniform image at the mean luma, rounded half up.
 *
 * @param src Source image, CHW uint8.
 * @param dst Destination image (may be `src`).
 * @param height Image height.
 * @param width Image width.
 * @param factor Enhancement factor ≥ 0 (0 = flat grey, 1 = unchanged); AutoAugment uses 0.1..1.9.
 *
 * @example
 * ```ts
 * import { contrast } from "./image_ops.ts";
 * const img = new Uint8Array([0, 100, 0, 100, 0, 100]); // grey 0 and grey 100, mean 50
 * contrast(img, img, 1, 2, 0.5);
 * img; // Uint8Array [25, 75, 25, 75, 25, 75]
 * ```
 */
export function contrast(
  src: Uint8Array,
  dst: Uint8Array,
  height: number,
  width: number,
  factor: number,
): void {
  checkImage(src, dst, height, width, "contrast", false);
  checkFactor(factor, "contrast");
  const plane = height * width;
  let sum = 0;
  for (let i = 0; i < plane; i++) sum += luma(src[i], src[i + plane], src[i + 2 * plane]);
  const mean = Math.floor(sum / plane + 0.5);
  mapValues(src, dst, blendLut(mean, Math.fround(factor)));
}

/**
 * Scales sharpness: blends with the image smoothed by `[1 1 1; 1 5 1; 1 1 1] / 13` (rounded),
 * whose one-pixel border is the input itself; images under 3×3 are left unchanged.
 *
 * @param src Source image, CHW uint8.
 * @param dst Destination image; must not be `src`.
 * @param height Image height.
 * @param width Image width.
 * @param factor Enhancement factor ≥ 0 (0 = smoothed, 1 = unchanged, 2 = sharpened); AutoAugment
 * uses 0.1..1.9.
 *
 * @example
 * ```ts
 * import { sharpness } from "./image_ops.ts";
 * const dst = new Uint8Array(3 * 3 * 3);
 * sharpness(new Uint8Array(27).fill(50), dst, 3, 3, 1.9); // flat image: unchanged
 * ```
 */
export function sharpness(
  src: Uint8Array,
  dst: Uint8Array,
  height: number,
  width: number,
  factor: number,
): void {
  checkImage(src, dst, height, width, "sharpness", true);
  checkFactor(factor, "sharpness");
  const table = blendTable(Math.fround(factor));
  const plane = height * width;
  for (let ch = 0; ch < 3; ch++) {
    const o = ch * plane;
    // The one-pixel border is the input itself (the whole image when it is under 3×3).
    for (let x = 0; x < width; x++) {
      dst[o + x] = src[o + x];
      dst[o + (height - 1) * width + x] = src[o + (height - 1) * width + x];
    }
    for (let y = 1; y < height - 1; y++) {
      const row = o + y * width;
      dst[row] = src[row];
      dst[row + width - 1] = src[row + width - 1];
      for (let i = row + 1; i < row + width - 1; i++) {
        const v = src[i];
        const up = i - width;
        const down = i + width;
        const s = src[up - 1] + src[up] + src[up + 1] + src[i - 1] + 5 * v + src[i + 1] +
          src[down - 1] + src[down] + src[down + 1];
        // round(s / 13) half up, exactly in integers
        const smooth = Math.floor((2 * s + 13) / 26);
        dst[i] = table[(smooth << 8) | v];
      }
    }
  }
}
