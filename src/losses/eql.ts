/**
 * The sigmoid Equalization Loss (Tan et al., CVPR 2020, eq. 6–8) for detectors: C class logits,
 * label C = background. A foreground proposal ignores the negative gradients of rare categories:
 * `w_ij = 1 − E(r_i)·T_λ(f_j)·(1 − y_ij)` and `L = Σ_ij w_ij·BCE(z_ij, y_ij) / N`.
 *
 * @module
 */

import type { Tensor } from "../tensor.ts";
import {
  type GradientOutput,
  type LossResult,
  runSigmoidLoss,
  type SigmoidInputs,
} from "./fused.ts";
import { buildKeepMask, type ImageLevelLabels } from "./image_level.ts";
import { checkedSuppression, resolveWeightFunction, type WeightFunction } from "./suppression.ts";
import {
  checkBoolean,
  checkClassWeight,
  checkLabels,
  checkLogits,
  checkOptions,
  type Labels,
} from "./validate.ts";

/**
 * The EQL part of a sigmoid loss's options: which categories are suppressed, how strongly, and
 * for which rows.
 */
export interface EqlSuppressionOptions {
  /** Per-class frequency `f_j` in [0, 1] (images containing j / number of images), length C. */
  frequencies: ArrayLike<number>;
  /**
   * Threshold λ ≥ 0 of `T_λ(f) = [f < λ]` (default 1.76e-3, the paper's LVIS v0.5 value; the
   * official code uses 0.00177, and 0.0011 for LVIS v1). Ignored by the decay curves.
   */
  lambda?: number;
  /**
   * The paper's `E(r)` (default true): background rows are never suppressed. False suppresses
   * the rare categories' negatives in background rows too (paper Table 4).
   */
  useBackgroundExemption?: boolean;
  /** `"threshold"` (default) or an exponential / Gompertz decay of the frequency (Table 3). */
  weightFunction?: WeightFunction;
  /** LVIS image-level labels: categories verified for an image are never suppressed (off by default). */
  imageLevel?: ImageLevelLabels;
}

/** Options of {@linkcode eqlLoss}. */
export interface EqlOptions extends EqlSuppressionOptions, GradientOutput {
  /** Per-class weight by the row's label (length C, ≥ 0); background rows get 1. */
  classWeight?: ArrayLike<number>;
}

/**
 * Validates EQL suppression options and turns them into the sigmoid op's inputs.
 *
 * @param fn Loss name for messages.
 * @param o The options.
 * @param n Rows.
 * @param c Classes.
 * @returns Suppression, E(r) flag, and the image-level keep mask if asked for.
 */
export function eqlInputs(
  fn: string,
  o: Partial<EqlSuppressionOptions>,
  n: number,
  c: number,
): Pick<SigmoidInputs, "suppress" | "backgroundExempt" | "imageOfRow" | "keepMask"> {
  const curve = resolveWeightFunction(fn, o.lambda, o.weightFunction);
  const suppress = checkedSuppression(fn, curve, o.frequencies, c);
  const backgroundExempt = o.useBackgroundExemption === undefined
    ? true
    : checkBoolean(fn, "useBackgroundExemption", o.useBackgroundExemption);
  const keep = o.imageLevel === undefined ? undefined : buildKeepMask(fn, o.imageLevel, n, c);
  return {
    suppress,
    backgroundExempt,
    imageOfRow: keep?.imageOfRow,
    keepMask: keep?.keepMask,
  };
}

/**
 * The sigmoid Equalization Loss. Logits are [N, C] with no background column; a row's label is
 * in 0..C, C meaning background (all-zero target). For element (i, j):
 * `w_ij = 1 − E(r_i)·s_j·(1 − y_ij)` where `s_j = T_λ(f_j) = [f_j < λ]` (or the chosen decay
 * curve) and `E(r_i) = 1` for foreground rows (for every row when the exemption is off); where
 * `imageLevel` lists j for the row's image, `w_ij = 1`. `L = Σ_ij w_ij·BCE(z_ij, y_ij) / N` and
 * `∂L/∂z_ij = w_ij·(σ(z_ij) − y_ij) / N`. With λ = 0 it is {@linkcode sigmoidCrossEntropy}.
 *
 * @param logits [N, C] f32 tensor.
 * @param labels N labels in 0..C (C = background), an Int32Array or an i32 tensor.
 * @param options Frequencies and the EQL settings.
 * @returns The mean loss and the gradient (owned by the caller).
 *
 * @example
 * ```ts
 * import { eqlLoss } from "@eql/eql";
 * import { tensor } from "@eql/eql";
 * const logits = tensor(new Float32Array(2 * 3), [2, 3]);
 * const labels = new Int32Array([0, 3]); // 3 = background
 * const frequencies = new Float32Array([0.5, 1e-4, 1e-3]); // classes 1 and 2 are rare
 * const { loss, grad } = eqlLoss(logits, labels, { frequencies, lambda: 1.76e-3 });
 * loss; // (log 2 + 3·log 2) / 2: the first row ignores classes 1 and 2
 * grad.toArray(); // [−0.25, 0, 0, 0.25, 0.25, 0.25]
 * grad.dispose();
 * ```
 */
export function eqlLoss(logits: Tensor, labels: Labels, options: EqlOptions): LossResult {
  const fn = "eqlLoss";
  const { n, c } = checkLogits(fn, logits);
  const checked = checkLabels(fn, labels, n, c, true);
  const o = checkOptions<EqlOptions>(fn, options);
  return runSigmoidLoss(fn, logits, checked, {
    ...eqlInputs(fn, o, n, c),
    classWeight: o.classWeight === undefined ? undefined : checkClassWeight(fn, o.classWeight, c),
    focalGamma: 0,
    focalAlpha: -1,
  }, o.gradInto);
}
