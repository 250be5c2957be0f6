/**
 * The standard CIFAR augmentations: random crop with zero padding, horizontal flip and Cutout
 * (DeVries & Taylor, 2017), on CHW images of any size. Every random choice comes from a
 * {@linkcode Random} passed in, so a seed fixes the result.
 *
 * Random draws, in order: crop draws the top offset then the left offset, each uniform over
 * `0..2·padding`; flip draws one uniform and flips when it is below the probability; Cutout draws
 * the centre row then the centre column, uniform over the image.
 *
 * @module
 */

import type { Random } from "../random.ts";
import { typeName } from "./dataset.ts";

function checkSize(height: number, width: number, op: string): void {
  if (!Number.isInteger(height) || height < 1) {
    throw new RangeError(`${op}: height must be a positive integer, got ${height}`);
  }
  if (!Number.isInteger(width) || width < 1) {
    throw new RangeError(`${op}: width must be a positive integer, got ${width}`);
  }
}

function checkImage(
  image: Uint8Array | Float32Array,
  name: string,
  height: number,
  width: number,
  op: string,
): void {
  const size = 3 * height * width;
  if (!(image instanceof Uint8Array || image instanceof Float32Array) || image.length !== size) {
    throw new RangeError(
      `${op}: ${name} must be a Uint8Array or Float32Array of 3 * ${height} * ${width} = ${size} ` +
        `values, got ${typeName(image)} of length ${(image as { length?: number })?.length}`,
    );
  }
}

/**
 * Crops a `height × width` window from the image padded by `padding` zero pixels on every side,
 * with its top-left corner at (`top`, `left`) in padded coordinates: output `(y, x)` is input
 * `(y + top − padding, x + left − padding)`, or 0 outside the input.
 *
 * @param src Source image, CHW.
 * @param dst Destination image of the same size; must not be `src`.
 * @param height Image height.
 * @param width Image width.
 * @param padding Zero padding on each side, a non-negative integer.
 * @param top Window row offset in `0..2·padding`.
 * @param left Window column offset in `0..2·padding`.
 *
 * @example
 * ```ts
 * import { crop } from "./augment.ts";
 * const src = new Uint8Array(3 * 2 * 2).fill(7);
 * const dst = new Uint8Array(12);
 * crop(src, dst, 2, 2, 1, 0, 0); // shift down-right by one: top row and left column are 0
 * dst.subarray(0, 4); // Uint8Array [0, 0, 0, 7]
 * ```
 */
export function crop(
  src: Uint8Array,
  dst: Uint8Array,
  height: number,
  width: number,
  padding: number,
  top: number,
  left: number,
): void {
  checkSize(height, width, "crop");
  checkImage(src, "src", height, width, "crop");
  checkImage(dst, "dst", height, width, "crop");
  if (src === dst) throw new RangeError("crop: dst must be a different array from src");
  if (!Number.isInteger(padding) || padding < 0) {
    throw new RangeError(`crop: padding must be a non-negative integer, got ${padding}`);
  }
  for (const [name, v] of [["top", top], ["left", left]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 2 * padding) {
      throw new RangeError(`crop: ${name} must be an integer in 0..${2 * padding}, got ${v}`);
    }
  }
  const dy = top - padding;
  const dx = left - padding;
  const plane = height * width;
  // Columns of the output that read inside the input.
  const x0 = Math.max(0, -dx);
  const x1 = Math.min(width, width - dx);
  for (let ch = 0; ch < 3; ch++) {
    const o = ch * plane;
    for (let y = 0; y < height; y++) {
      const row = o + y * width;
      const sy = y + dy;
      if (sy < 0 || sy >= height || x1 <= x0) {
        dst.fill(0, row, row + width);
        continue;
      }
      const srow = o + sy * width;
      if (x0 > 0) dst.fill(0, row, row + x0);
      dst.set(src.subarray(srow + x0 + dx, srow + x1 + dx), row + x0);
      if (x1 < width) dst.fill(0, row + x1, row + width);
    }
  }
}

/**
 * Random crop with zero padding (the CIFAR "pad 4, crop 32" augmentation): draws the window
 * offset, top then left, uniformly from `0..2·padding`.
 *
 * @param src Source image, CHW.
 * @param dst Destination image; must not be `src`.
 * @param height Image height.
 * @param width Image width.
 * @param padding Zero padding on each side (4 for CIFAR).
 * @param rng Source of the two offsets.
 * @returns The offsets drawn.
 *
 * @example
 * ```ts
 * import { randomCrop } from "@eql/eql/data";
 * import { Random } from "@eql/eql";
 * const dst = new Uint8Array(3 * 32 * 32);
 * randomCrop(new Uint8Array(3 * 32 * 32), dst, 32, 32, 4, new Random(0));
 * ```
 */
export function randomCrop(
  src: Uint8Array,
  dst: Uint8Array,
  height: number,
  width: number,
  padding: number,
  rng: Random,
): { top: number; left: number } {
  if (!Number.isInteger(padding) || padding < 0) {
    throw new RangeError(`randomCrop: padding must be a non-negative integer, got ${padding}`);
  }
  const top = rng.integer(0, 2 * padding + 1);
  const left = rng.integer(0, 2 * padding + 1);
  crop(src, dst, height, width, padding, top, left);
  return { top, left };
}

/**
 * Mirrors the image left to right. `dst` may be `src` (flipped in place).
 *
 * @param src Source image, CHW.
 * @param dst Destination image of the same size.
 * @param height Image height.
 * @param width Image width.
 *
 * @example
 * ```ts
 * import { horizontalFlip } from "./augment.ts";
 * const img = new Uint8Array([1, 2, 3, 4, 5, 6]); // 3 channels of 1×2
 * horizontalFlip(img, img, 1, 2);
 * img; // Uint8Array [2, 1, 4, 3, 6, 5]
 * ```
 */
export function horizontalFlip(
  src: Uint8Array,
  dst: Uint8Array,
  height: number,
  width: number,
): void {
  checkSize(height, width, "horizontalFlip");
  checkImage(src, "src", height, width, "horizontalFlip");
  checkImage(dst, "dst", height, width, "horizontalFlip");
  if (src !== dst) dst.set(src);
  const rows = 3 * height;
  for (let r = 0; r < rows; r++) {
    let i = r * width;
    let j = i + width - 1;
    while (i < j) {
      const t = dst[i];
      dst[i] = dst[j];
      dst[j] = t;
      i++;
      j--;
    }
  }
}

/**
 * Flips the image left to right with the given probability; otherwise copies it.
 *
 * @param src Source image, CHW.
 * @param dst Destination image (may be `src`).
 * @param height Image height.
 * @param width Image width.
 * @param rng Source of the one uniform draw.
 * @param probability Chance of flipping, in [0, 1] (default 0.5).
 * @returns Whether the image was flipped.
 *
 * @example
 * ```ts
 * import { randomHorizontalFlip } from "@eql/eql/data";
 * import { Random } from "@eql/eql";
 * const img = new Uint8Array(3 * 32 * 32);
 * randomHorizontalFlip(img, img, 32, 32, new Random(1));
 * ```
 */
export function randomHorizontalFlip(
  src: Uint8Array,
  dst: Uint8Array,
  height: number,
  width: number,
  rng: Random,
  probability = 0.5,
): boolean {
  if (typeof probability !== "number" || !(probability >= 0 && probability <= 1)) {
    throw new RangeError(`randomHorizontalFlip: probability must be in [0, 1], got ${probability}`);
  }
  const flip = rng.uniform() < probability;
  if (flip) horizontalFlip(src, dst, height, width);
  else if (src !== dst) {
    checkImage(src, "src", height, width, "randomHorizontalFlip");
    checkImage(dst, "dst", height, width, "randomHorizontalFlip");
    dst.set(src);
  }
  return flip;
}

/** The rectangle a Cutout hole covers: rows `y0 ≤ y < y1`, columns `x0 ≤ x < x1`. */
export interface CutoutBox {
  /** First row. */
  y0: number;
  /** One past the last row. */
  y1: number;
  /** First column. */
  x0: number;
  /** One past the last column. */
  x1: number;
}

/**
 * The Cutout hole for a given centre: a `size × size` square from `centre − floor(size/2)` to
 * `centre + floor(size/2)` (exclusive), clipped at the borders, as in DeVries & Taylor's code.
 *
 * @param height Image height.
 * @param width Image width.
 * @param size Side of the hole (16 for CIFAR-10 in the paper).
 * @param cy Centre row, in `0..height-1`.
 * @param cx Centre column, in `0..width-1`.
 * @returns The clipped rectangle.
 *
 * @example
 * ```ts
 * import { cutoutBox } from "./augment.ts";
 * cutoutBox(32, 32, 16, 2, 30); // { y0: 0, y1: 10, x0: 22, x1: 32 }
 * ```
 */
export function cutoutBox(
  height: number,
  width: number,
  size: number,
  cy: number,
  cx: number,
): CutoutBox {
  checkSize(height, width, "cutoutBox");
  if (!Number.isInteger(size) || size < 0) {
    throw new RangeError(`cutoutBox: size must be a non-negative integer, got ${size}`);
  }
  if (!Number.isInteger(cy) || cy < 0 || cy >= height) {
    throw new RangeError(`cutoutBox: cy must be an integer in 0..${height - 1}, got ${cy}`);
  }
  if (!Number.isInteger(cx) || cx < 0 || cx >= width) {
    throw new RangeError(`cutoutBox: cx must be an integer in 0..${width - 1}, got ${cx}`);
  }
  const half = Math.floor(size / 2);
  return {
    y0: Math.max(0, cy - half),
    y1: Math.min(height, cy + half),
    x0: Math.max(0, cx - half),
    x1: Math.min(width, cx + half),
  };
}

/**
 * Cutout: fills one `size × size` square, whose centre is drawn uniformly over the image (row,
 * then column) and which is clipped at the borders, with `fill` in every channel. It works on
 * uint8 images and on normalised Float32 images. DeVries & Taylor apply it after normalisation
 * with zeros, i.e. the dataset mean colour; the batch pipeline does the same. On uint8 images it
 * writes the constant given as `fill` (one value for all channels, e.g. 0 or 128).
 *
 * @param image Image to modify in place, CHW.
 * @param height Image height.
 * @param width Image width.
 * @param size Side of the hole.
 * @param rng Source of the centre.
 * @param fill Value written into the hole (default 0).
 * @returns The rectangle that was filled.
 *
 * @example
 * ```ts
 * import { cutout } from "@eql/eql/data";
 * import { Random } from "@eql/eql";
 * const x = new Float32Array(3 * 32 * 32).fill(1);
 * const box = cutout(x, 32, 32, 16, new Random(3)); // zeros inside box
 * ```
 */
export function cutout(
  image: Uint8Array | Float32Array,
  height: number,
  width: number,
  size: number,
  rng: Random,
  fill = 0,
): CutoutBox {
  checkSize(height, width, "cutout");
  checkImage(image, "image", height, width, "cutout");
  if (typeof fill !== "number" || !Number.isFinite(fill)) {
    throw new RangeError(`cutout: fill must be a finite number, got ${fill}`);
  }
  if (image instanceof Uint8Array && (!Number.isInteger(fill) || fill < 0 || fill > 255)) {
    throw new RangeError(
      `cutout: fill must be an integer in 0..255 for a uint8 image, got ${fill}`,
    );
  }
  const cy = rng.integer(0, height);
  const cx = rng.integer(0, width);
  const box = cutoutBox(height, width, size, cy, cx);
  const plane = height * width;
  if (box.x1 > box.x0) {
    for (let ch = 0; ch < 3; ch++) {
      for (let y = box.y0; y < box.y1; y++) {
        const row = ch * plane + y * width;
        image.fill(fill, row + box.x0, row + box.x1);
      }
    }
  }
  return box;
}
