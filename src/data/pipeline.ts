/**
 * Augmentation pipelines described as plain data, so the same description runs on the main
 * thread and in a worker, and the code that turns a list of image indices into a normalised,
 * augmented batch.
 *
 * A pipeline is a list of transforms. The uint8 transforms (`crop`, `flip`, `autoaugment`) run
 * in list order on each image; the image is then normalised to float32; `cutout` entries, which
 * must come last, then zero a square of the normalised image (zero = the mean colour), as in
 * DeVries & Taylor's code. All randomness of one batch comes from one {@linkcode Random} seeded
 * with the batch seed, consumed image by image in batch order and, within an image, transform by
 * transform.
 *
 * @module
 */

import { Random } from "../random.ts";
import { cutout, randomCrop, randomHorizontalFlip } from "./augment.ts";
import { autoAugment, CIFAR10_POLICY } from "./autoaugment.ts";
import { typeName } from "./dataset.ts";
import { normalizeInto } from "./normalize.ts";

/** One augmentation step, as data. */
export type Transform =
  | {
    /** Random crop after zero padding. */
    kind: "crop";
    /** Zero pixels added on each side (default 4). */
    padding?: number;
  }
  | {
    /** Random horizontal flip. */
    kind: "flip";
    /** Chance of flipping (default 0.5). */
    probability?: number;
  }
  | {
    /** AutoAugment with a learned policy. */
    kind: "autoaugment";
    /** Which policy (only the CIFAR-10 policy, the default, is provided). */
    policy?: "cifar10";
  }
  | {
    /** Cutout on the normalised image (zeros). Must come after every uint8 transform. */
    kind: "cutout";
    /** Side of the square hole (default 16). */
    size?: number;
  };

/**
 * The standard CIFAR augmentation: pad 4 and crop, then flip with probability ½.
 *
 * @example
 * ```ts
 * import { STANDARD_AUGMENTATION } from "@eql/eql/data";
 * STANDARD_AUGMENTATION; // [{ kind: "crop", padding: 4 }, { kind: "flip", probability: 0.5 }]
 * ```
 */
export const STANDARD_AUGMENTATION: readonly Transform[] = Object.freeze([
  Object.freeze({ kind: "crop", padding: 4 } as const),
  Object.freeze({ kind: "flip", probability: 0.5 } as const),
]);

/**
 * The recipe of the EQL paper's CIFAR experiments: crop and flip, the AutoAugment CIFAR-10
 * policy, then Cutout with a 16×16 hole.
 *
 * @example
 * ```ts
 * import { AUTOAUGMENT_CUTOUT } from "@eql/eql/data";
 * AUTOAUGMENT_CUTOUT.map((t) => t.kind); // ["crop", "flip", "autoaugment", "cutout"]
 * ```
 */
export const AUTOAUGMENT_CUTOUT: readonly Transform[] = Object.freeze([
  ...STANDARD_AUGMENTATION,
  Object.freeze({ kind: "autoaugment", policy: "cifar10" } as const),
  Object.freeze({ kind: "cutout", size: 16 } as const),
]);

/**
 * Validates a pipeline: known kinds, valid options, cutouts only at the end.
 *
 * @param transforms The pipeline.
 * @param name Name of the argument, for error messages.
 * @throws {RangeError} On an unknown kind, a bad option, or a uint8 transform after a cutout.
 *
 * @example
 * ```ts
 * import { checkTransforms } from "./pipeline.ts";
 * checkTransforms([{ kind: "crop" }, { kind: "cutout", size: 8 }]); // fine
 * ```
 */
export function checkTransforms(transforms: readonly Transform[], name = "transforms"): void {
  if (!Array.isArray(transforms)) {
    throw new TypeError(`${name} must be an array, got ${typeName(transforms)}`);
  }
  let sawCutout = false;
  transforms.forEach((t, i) => {
    const at = `${name}[${i}]`;
    switch (t?.kind) {
      case "crop":
        if (t.padding !== undefined && (!Number.isInteger(t.padding) || t.padding < 0)) {
          throw new RangeError(`${at}.padding must be a non-negative integer, got ${t.padding}`);
        }
        break;
      case "flip":
        if (
          t.probability !== undefined &&
          (typeof t.probability !== "number" || !(t.probability >= 0 && t.probability <= 1))
        ) {
          throw new RangeError(`${at}.probability must be in [0, 1], got ${t.probability}`);
        }
        break;
      case "autoaugment":
        if (t.policy !== undefined && t.policy !== "cifar10") {
          throw new RangeError(`${at}.policy must be "cifar10", got ${JSON.stringify(t.policy)}`);
        }
        break;
      case "cutout":
        if (t.size !== undefined && (!Number.isInteger(t.size) || t.size < 0)) {
          throw new RangeError(`${at}.size must be a non-negative integer, got ${t.size}`);
        }
        sawCutout = true;
        return;
      default:
        throw new RangeError(
          `${at}.kind must be "crop", "flip", "autoaugment" or "cutout", got ` +
            `${JSON.stringify((t as { kind?: unknown })?.kind)}`,
        );
    }
    if (sawCutout) {
      throw new RangeError(
        `${at} ("${t.kind}") comes after a cutout; cutout works on the normalised image and ` +
          `must come after every other transform`,
      );
    }
  });
}

/** A batch ready for the model. */
export interface Batch {
  /** Images, float32 `[size, 3, height, width]` flattened. */
  x: Float32Array;
  /** Labels, `[size]`. */
  labels: Int32Array;
  /** Number of images in the batch. */
  size: number;
}

/**
 * Builds one batch: copies the chosen images, augments them (when `seed` is not null),
 * normalises them and applies any cutout.
 *
 * @param images The dataset's uint8 CHW images.
 * @param labels The dataset's labels.
 * @param indices Which images, in batch order.
 * @param transforms The pipeline (ignored when `seed` is null).
 * @param table Normalisation table from `normalizationTable`.
 * @param height Image height.
 * @param width Image width.
 * @param seed Seed of the batch's random generator, or null for no augmentation.
 * @returns The batch.
 *
 * @example
 * ```ts
 * import { assembleBatch, STANDARD_AUGMENTATION } from "@eql/eql/data";
 * import { CIFAR10_NORMALIZATION } from "@eql/eql/data";
 * import { normalizationTable } from "./normalize.ts";
 * const images = new Uint8Array(4 * 3 * 32 * 32);
 * const labels = new Int32Array([0, 1, 2, 3]);
 * const table = normalizationTable(CIFAR10_NORMALIZATION);
 * const batch = assembleBatch(images, labels, new Int32Array([3, 1]), STANDARD_AUGMENTATION, table, 32, 32, 7);
 * batch.labels; // Int32Array [3, 1]
 * ```
 */
export function assembleBatch(
  images: Uint8Array,
  labels: Int32Array,
  indices: Int32Array,
  transforms: readonly Transform[],
  table: Float32Array,
  height: number,
  width: number,
  seed: number | null,
): Batch {
  const per = 3 * height * width;
  const n = labels.length;
  const size = indices.length;
  const x = new Float32Array(size * per);
  const out = new Int32Array(size);
  const rng = seed === null ? null : new Random(seed);
  let a = new Uint8Array(per);
  let b = new Uint8Array(per);
  for (let k = 0; k < size; k++) {
    const i = indices[k];
    if (!Number.isInteger(i) || i < 0 || i >= n) {
      throw new RangeError(`indices[${k}] must be an image index in 0..${n - 1}, got ${i}`);
    }
    out[k] = labels[i];
    a.set(images.subarray(i * per, (i + 1) * per));
    if (rng !== null) {
      for (const t of transforms) {
        if (t.kind === "crop") {
          randomCrop(a, b, height, width, t.padding ?? 4, rng);
          [a, b] = [b, a];
        } else if (t.kind === "flip") {
          randomHorizontalFlip(a, a, height, width, rng, t.probability ?? 0.5);
        } else if (t.kind === "autoaugment") {
          autoAugment(a, height, width, rng, b, CIFAR10_POLICY);
        }
      }
    }
    normalizeInto(a, x, k * per, table);
    if (rng !== null) {
      for (const t of transforms) {
        if (t.kind === "cutout") {
          cutout(x.subarray(k * per, (k + 1) * per), height, width, t.size ?? 16, rng, 0);
        }
      }
    }
  }
  return { x, labels: out, size };
}
