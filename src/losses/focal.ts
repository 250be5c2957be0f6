/**
 * Sigmoid focal loss (Lin et al., ICCV 2017): `−α_t·(1 − p_t)^γ·log p_t` per element, in the
 * detector layout (C logits, label C = background), optionally with class weights and with the
 * EQL's suppression of rare categories' negatives.
 *
 * @module
 */

import type { Tensor } from "../tensor.ts";
import { eqlInputs, type EqlSuppressionOptions } from "./eql.ts";
import { type GradientOutput, type LossResult, runSigmoidLoss } from "./fused.ts";
import {
  checkClassWeight,
  checkLabels,
  checkLogits,
  checkNonNegative,
  checkOptions,
  checkUnit,
  describe,
  type Labels,
} from "./validate.ts";

/** Options of {@linkcode focalLoss}. */
export interface FocalOptions extends GradientOutput {
  /** Balance α in [0, 1] for targets (1 − α for the rest); default 0.25; `null` turns it off. */
  alpha?: number | null;
  /** Modulating exponent γ ≥ 0 (default 2; 0 gives α-balanced cross-entropy). */
  gamma?: number;
  /** Per-class weight by the row's label (length C, ≥ 0); background rows get 1. */
  classWeight?: ArrayLike<number>;
  /** EQL suppression on top of the focal term: `w_ij` multiplies each element. */
  eql?: EqlSuppressionOptions;
}

/**
 * Sigmoid focal loss. With `p_t = σ(z)` for the target column and `1 − σ(z)` for the others and
 * `α_t = α` / `1 − α` likewise: `L = Σ_ij w_ij·α_t·(1 − p_t)^γ·(−log p_t) / N`, whose gradient is
 * `w_ij·α_t·s·(1 − p_t)^γ·(γ·p_t·log p_t − (1 − p_t)) / N` with `s = +1` for the target and −1
 * otherwise. `w_ij` is the class weight, times the EQL weight when `eql` is given. The sum is
 * divided by the number of rows N (not by the number of foreground rows, as RetinaNet does:
 * scale the result if you want that).
 *
 * @param logits [N, C] f32 tensor.
 * @param labels N labels in 0..C (C = background), an Int32Array or an i32 tensor.
 * @param options α, γ, class weights and EQL suppression.
 * @returns The mean loss and the gradient (owned by the caller).
 *
 * @example
 * ```ts
 * import { focalLoss } from "@eql/eql";
 * import { tensor } from "@eql/eql";
 * const logits = tensor([2, -1, 0.5, -3], [2, 2]);
 * const { loss, grad } = focalLoss(logits, new Int32Array([0, 2]), { alpha: 0.25, gamma: 2 });
 * console.log(loss, grad.toArray());
 * grad.dispose();
 * ```
 */
export function focalLoss(logits: Tensor, labels: Labels, options?: FocalOptions): LossResult {
  const fn = "focalLoss";
  const { n, c } = checkLogits(fn, logits);
  const checked = checkLabels(fn, labels, n, c, true);
  const o = checkOptions<FocalOptions>(fn, options);
  const alpha = o.alpha === undefined
    ? 0.25
    : o.alpha === null
    ? -1
    : checkUnit(fn, "alpha", o.alpha);
  const gamma = o.gamma === undefined ? 2 : checkNonNegative(fn, "gamma", o.gamma);
  if (o.eql !== undefined && (o.eql === null || typeof o.eql !== "object")) {
    throw new TypeError(`${fn}: eql must be an object of EQL options, got ${describe(o.eql)}`);
  }
  const eql = o.eql === undefined ? { backgroundExempt: true } : eqlInputs(fn, o.eql, n, c);
  return runSigmoidLoss(fn, logits, checked, {
    ...eql,
    classWeight: o.classWeight === undefined ? undefined : checkClassWeight(fn, o.classWeight, c),
    focalGamma: gamma,
    focalAlpha: alpha,
  }, o.gradInto);
}
