/**
 * The in-memory image classification dataset shared by the readers, the long-tail sampler, the
 * synthetic generator and the batch loader.
 *
 * @module
 */

import { classCounts } from "../longtail/frequency.ts";

/**
 * Images with integer labels. Images are uint8, channel-major (CHW) and stored back to back:
 * image `i` is `images.subarray(i * 3 * h * w, (i + 1) * 3 * h * w)` with `h = w = 32` for CIFAR.
 */
export interface ImageDataset {
  /** Pixels, `[N, 3, H, W]` flattened, values 0..255. */
  images: Uint8Array;
  /** Class of each image, `0 <= label < numClasses`. */
  labels: Int32Array;
  /** Human-readable class names, `numClasses` of them. */
  classNames: string[];
  /** Number of classes. */
  numClasses: number;
}

/**
 * Checks that a dataset's arrays agree with each other and with the image size.
 *
 * @param dataset The dataset to check.
 * @param height Image height in pixels.
 * @param width Image width in pixels.
 * @param name Name of the argument, for error messages.
 * @returns The number of images.
 * @throws {RangeError} On any inconsistency.
 *
 * @example
 * ```ts
 * import { checkDataset } from "@eql/eql/data";
 * checkDataset({
 *   images: new Uint8Array(2 * 3 * 4 * 4),
 *   labels: new Int32Array([0, 1]),
 *   classNames: ["a", "b"],
 *   numClasses: 2,
 * }, 4, 4); // 2
 * ```
 */
export function checkDataset(
  dataset: ImageDataset,
  height = 32,
  width = 32,
  name = "dataset",
): number {
  const { images, labels, classNames, numClasses } = dataset;
  if (!(images instanceof Uint8Array)) {
    throw new TypeError(`${name}.images must be a Uint8Array, got ${typeName(images)}`);
  }
  if (!(labels instanceof Int32Array)) {
    throw new TypeError(`${name}.labels must be an Int32Array, got ${typeName(labels)}`);
  }
  const per = 3 * height * width;
  if (images.length !== labels.length * per) {
    throw new RangeError(
      `${name}.images must hold labels.length * 3 * ${height} * ${width} = ` +
        `${labels.length * per} bytes, got ${images.length}`,
    );
  }
  if (classNames.length !== numClasses) {
    throw new RangeError(
      `${name}.classNames must have numClasses = ${numClasses} entries, got ${classNames.length}`,
    );
  }
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new RangeError(`${name}.numClasses must be a positive integer, got ${numClasses}`);
  }
  classCounts(labels, numClasses);
  return labels.length;
}

/**
 * Describes a value's type for error messages.
 *
 * @param value Anything.
 * @returns The constructor name for objects, `typeof` otherwise.
 *
 * @example
 * ```ts
 * import { typeName } from "./dataset.ts";
 * typeName(new Float32Array(1)); // "Float32Array"
 * ```
 */
export function typeName(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") return (value as object).constructor?.name ?? "object";
  return typeof value;
}
