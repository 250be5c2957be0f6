/**
 * The AutoAugment CIFAR-10 policy (Cubuk et al., "AutoAugment: Learning Augmentation Policies
 * from Data", CVPR 2019): 25 sub-policies of two `(operation, probability, magnitude)` steps.
 * For each image one sub-policy is drawn uniformly; each of its steps is applied with its
 * probability.
 *
 * Magnitude levels 0..9 map to parameters as in the common PyTorch reimplementations:
 *
 * | operation | parameter at level m | signed |
 * |---|---|---|
 * | ShearX, ShearY | shear `0.3·m/9` | yes |
 * | TranslateX, TranslateY | `(150/331)·size·m/9` pixels (size = width, height) | yes |
 * | Rotate | `30·m/9` degrees | yes |
 * | Color, Contrast, Brightness, Sharpness | factor `1 ± 0.9·m/9` (0.1..1.9) | yes |
 * | Solarize | threshold `256 − 256·m/9` | no |
 * | Posterize | `round(8 − 4·m/9)` bits (8..4) | no |
 * | AutoContrast, Equalize, Invert | none | no |
 *
 * Random draws per image, in order: the sub-policy index (`integer(0, 25)`); then for each step
 * one uniform, and when it is below the step's probability and the operation is signed, one more
 * uniform choosing the sign (negative when below 0.5). Operation semantics are documented in
 * `image_ops.ts` (PIL conventions, nearest sampling, fill 128 for affine operations).
 *
 * @module
 */

import type { Random } from "../random.ts";
import {
  autoContrast,
  brightness,
  color,
  contrast,
  equalize,
  invert,
  posterize,
  rotate,
  sharpness,
  shearX,
  shearY,
  solarize,
  translateX,
  translateY,
} from "./image_ops.ts";

/** Names of the AutoAugment operations. */
export type AutoAugmentOp =
  | "ShearX"
  | "ShearY"
  | "TranslateX"
  | "TranslateY"
  | "Rotate"
  | "AutoContrast"
  | "Invert"
  | "Equalize"
  | "Solarize"
  | "Posterize"
  | "Contrast"
  | "Color"
  | "Brightness"
  | "Sharpness";

/** One step of a sub-policy. */
export interface AutoAugmentStep {
  /** The operation. */
  op: AutoAugmentOp;
  /** Chance of applying it, in [0, 1]. */
  probability: number;
  /** Magnitude level, an integer in 0..9. */
  magnitude: number;
}

/** A sub-policy: two steps applied in order. */
export type SubPolicy = readonly [AutoAugmentStep, AutoAugmentStep];

function sub(
  op1: AutoAugmentOp,
  p1: number,
  m1: number,
  op2: AutoAugmentOp,
  p2: number,
  m2: number,
): SubPolicy {
  return Object.freeze([
    Object.freeze({ op: op1, probability: p1, magnitude: m1 }),
    Object.freeze({ op: op2, probability: p2, magnitude: m2 }),
  ]) as SubPolicy;
}

/**
 * The 25 sub-policies found on reduced CIFAR-10 (Cubuk et al., appendix table).
 *
 * @example
 * ```ts
 * import { CIFAR10_POLICY } from "@eql/eql/data";
 * CIFAR10_POLICY.length; // 25
 * CIFAR10_POLICY[0]; // [{ op: "Invert", probability: 0.1, magnitude: 7 }, { op: "Contrast", ... }]
 * ```
 */
export const CIFAR10_POLICY: readonly SubPolicy[] = Object.freeze([
  sub("Invert", 0.1, 7, "Contrast", 0.2, 6),
  sub("Rotate", 0.7, 2, "TranslateX", 0.3, 9),
  sub("Sharpness", 0.8, 1, "Sharpness", 0.9, 3),
  sub("ShearY", 0.5, 8, "TranslateY", 0.7, 9),
  sub("AutoContrast", 0.5, 8, "Equalize", 0.9, 2),
  sub("ShearY", 0.2, 7, "Posterize", 0.3, 7),
  sub("Color", 0.4, 3, "Brightness", 0.6, 7),
  sub("Sharpness", 0.3, 9, "Brightness", 0.7, 9),
  sub("Equalize", 0.6, 5, "Equalize", 0.5, 1),
  sub("Contrast", 0.6, 7, "Sharpness", 0.6, 5),
  sub("Color", 0.7, 7, "TranslateX", 0.5, 8),
  sub("Equalize", 0.3, 7, "AutoContrast", 0.4, 8),
  sub("TranslateY", 0.4, 3, "Sharpness", 0.2, 6),
  sub("Brightness", 0.9, 6, "Color", 0.2, 8),
  sub("Solarize", 0.5, 2, "Invert", 0.0, 3),
  sub("Equalize", 0.2, 0, "AutoContrast", 0.6, 0),
  sub("Equalize", 0.2, 8, "Equalize", 0.6, 4),
  sub("Color", 0.9, 9, "Equalize", 0.6, 6),
  sub("AutoContrast", 0.8, 4, "Solarize", 0.2, 8),
  sub("Brightness", 0.1, 3, "Color", 0.7, 0),
  sub("Solarize", 0.4, 5, "AutoContrast", 0.9, 3),
  sub("TranslateY", 0.9, 9, "TranslateY", 0.7, 9),
  sub("AutoContrast", 0.9, 2, "Solarize", 0.8, 3),
  sub("Equalize", 0.8, 8, "Invert", 0.1, 3),
  sub("TranslateY", 0.7, 9, "AutoContrast", 0.9, 1),
]);

const SIGNED: ReadonlySet<AutoAugmentOp> = new Set<AutoAugmentOp>([
  "ShearX",
  "ShearY",
  "TranslateX",
  "TranslateY",
  "Rotate",
  "Color",
  "Contrast",
  "Brightness",
  "Sharpness",
]);

const ENHANCE: ReadonlySet<AutoAugmentOp> = new Set<AutoAugmentOp>([
  "Color",
  "Contrast",
  "Brightness",
  "Sharpness",
]);

/**
 * Whether the operation's parameter gets a random sign.
 *
 * @param op The operation.
 * @returns True for shear, translate, rotate and the four enhancements.
 *
 * @example
 * ```ts
 * import { isSigned } from "./autoaugment.ts";
 * isSigned("Rotate"); // true
 * isSigned("Solarize"); // false
 * ```
 */
export function isSigned(op: AutoAugmentOp): boolean {
  return SIGNED.has(op);
}

/**
 * The parameter an operation gets at a magnitude level, before the random sign. For the
 * enhancements it is the deviation from 1 (`0.9·m/9`); {@linkcode applyAutoAugmentOp} turns it
 * into the factor `1 ± deviation`.
 *
 * @param op The operation.
 * @param magnitude Level, an integer in 0..9.
 * @param height Image height (for TranslateY).
 * @param width Image width (for TranslateX).
 * @returns The unsigned parameter (0 for operations without one).
 * @throws {RangeError} For an unknown operation or a level outside 0..9.
 *
 * @example
 * ```ts
 * import { autoAugmentParameter } from "./autoaugment.ts";
 * autoAugmentParameter("Rotate", 9, 32, 32); // 30
 * autoAugmentParameter("Posterize", 9, 32, 32); // 4
 * ```
 */
export function autoAugmentParameter(
  op: AutoAugmentOp,
  magnitude: number,
  height: number,
  width: number,
): number {
  if (!Number.isInteger(magnitude) || magnitude < 0 || magnitude > 9) {
    throw new RangeError(`magnitude must be an integer in 0..9, got ${magnitude}`);
  }
  const t = magnitude / 9;
  switch (op) {
    case "ShearX":
    case "ShearY":
      return 0.3 * t;
    case "TranslateX":
      return (150 / 331) * width * t;
    case "TranslateY":
      return (150 / 331) * height * t;
    case "Rotate":
      return 30 * t;
    case "Color":
    case "Contrast":
    case "Brightness":
    case "Sharpness":
      return 0.9 * t;
    case "Solarize":
      return 256 - 256 * t;
    case "Posterize":
      return Math.round(8 - 4 * t);
    case "AutoContrast":
    case "Equalize":
    case "Invert":
      return 0;
    default:
      throw new RangeError(`op must be an AutoAugment operation name, got ${JSON.stringify(op)}`);
  }
}

/**
 * Applies one operation with an explicit parameter and sign.
 *
 * @param op The operation.
 * @param src Source image, CHW uint8.
 * @param dst Destination image; must not be `src`.
 * @param height Image height.
 * @param width Image width.
 * @param parameter Unsigned parameter from {@linkcode autoAugmentParameter}.
 * @param sign +1 or −1; ignored by unsigned operations.
 *
 * @example
 * ```ts
 * import { applyAutoAugmentOp } from "./autoaugment.ts";
 * const src = new Uint8Array([100, 100, 100]);
 * const dst = new Uint8Array(3);
 * applyAutoAugmentOp("Brightness", src, dst, 1, 1, 0.5, -1); // factor 0.5
 * dst; // Uint8Array [50, 50, 50]
 * ```
 */
export function applyAutoAugmentOp(
  op: AutoAugmentOp,
  src: Uint8Array,
  dst: Uint8Array,
  height: number,
  width: number,
  parameter: number,
  sign: 1 | -1 = 1,
): void {
  if (sign !== 1 && sign !== -1) throw new RangeError(`sign must be 1 or -1, got ${sign}`);
  const v = ENHANCE.has(op) ? 1 + sign * parameter : sign * parameter;
  switch (op) {
    case "ShearX":
      return shearX(src, dst, height, width, v);
    case "ShearY":
      return shearY(src, dst, height, width, v);
    case "TranslateX":
      return translateX(src, dst, height, width, v);
    case "TranslateY":
      return translateY(src, dst, height, width, v);
    case "Rotate":
      return rotate(src, dst, height, width, v);
    case "AutoContrast":
      return autoContrast(src, dst, height, width);
    case "Invert":
      return invert(src, dst, height, width);
    case "Equalize":
      return equalize(src, dst, height, width);
    case "Solarize":
      return solarize(src, dst, height, width, parameter);
    case "Posterize":
      return posterize(src, dst, height, width, parameter);
    case "Contrast":
      return contrast(src, dst, height, width, v);
    case "Color":
      return color(src, dst, height, width, v);
    case "Brightness":
      return brightness(src, dst, height, width, v);
    case "Sharpness":
      return sharpness(src, dst, height, width, v);
    default:
      throw new RangeError(`op must be an AutoAugment operation name, got ${JSON.stringify(op)}`);
  }
}

/** What {@linkcode autoAugment} did to one image. */
export interface AutoAugmentTrace {
  /** Index of the sub-policy drawn, 0..24. */
  subPolicy: number;
  /** For each step: whether it ran and with which sign (0 when it did not run or is unsigned). */
  steps: { applied: boolean; sign: -1 | 0 | 1 }[];
}

/**
 * Applies a randomly drawn sub-policy of an AutoAugment policy to one image.
 *
 * @param image The image, CHW uint8; replaced by the result.
 * @param height Image height.
 * @param width Image width.
 * @param rng Source of every random choice (see the module documentation for the order).
 * @param scratch A buffer of the image's size used as the other side of each operation
 * (allocated when omitted; pass one to avoid allocation in loops).
 * @param policy The sub-policies (default {@linkcode CIFAR10_POLICY}).
 * @returns Which sub-policy and steps were applied.
 *
 * @example
 * ```ts
 * import { autoAugment } from "@eql/eql/data";
 * import { Random } from "@eql/eql";
 * const img = new Uint8Array(3 * 32 * 32).fill(90);
 * const trace = autoAugment(img, 32, 32, new Random(0));
 * ```
 */
export function autoAugment(
  image: Uint8Array,
  height: number,
  width: number,
  rng: Random,
  scratch: Uint8Array = new Uint8Array(image.length),
  policy: readonly SubPolicy[] = CIFAR10_POLICY,
): AutoAugmentTrace {
  if (policy.length === 0) throw new RangeError("policy must hold at least one sub-policy");
  if (!(scratch instanceof Uint8Array) || scratch.length !== image.length || scratch === image) {
    throw new RangeError(
      `scratch must be a separate Uint8Array of image.length = ${image.length} bytes, got ` +
        `length ${(scratch as { length?: number })?.length}`,
    );
  }
  const subPolicy = rng.integer(0, policy.length);
  const steps: AutoAugmentTrace["steps"] = [];
  for (const step of policy[subPolicy]) {
    const applied = rng.uniform() < step.probability;
    let sign: -1 | 0 | 1 = 0;
    if (applied) {
      if (SIGNED.has(step.op)) sign = rng.uniform() < 0.5 ? -1 : 1;
      const parameter = autoAugmentParameter(step.op, step.magnitude, height, width);
      applyAutoAugmentOp(step.op, image, scratch, height, width, parameter, sign === -1 ? -1 : 1);
      image.set(scratch);
    }
    steps.push({ applied, sign });
  }
  return { subPolicy, steps };
}
