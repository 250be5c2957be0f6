/**
 * Logit adjustment (Menon et al., ICLR 2021) and balanced softmax (Ren et al., NeurIPS 2020):
 * during training, add `τ·log(prior_j)` to every row's logit j before the softmax, so that the
 * loss stops favouring the head classes. τ = 1 with class counts as priors is balanced softmax.
 *
 * @module
 */

import { checkClassVector, describe } from "./validate.ts";

/**
 * The logit-adjustment option of the softmax losses.
 *
 * @example
 * ```ts
 * import type { LogitAdjustment } from "./logit_adjustment.ts";
 * // Balanced softmax from training-set counts (only ratios matter).
 * const adjust: LogitAdjustment = { priors: [500, 50, 5], tau: 1 };
 * ```
 */
export interface LogitAdjustment {
  /**
   * Per-class prior, length C, finite and > 0: class frequencies or plain counts (a common
   * factor only shifts every logit equally, which the softmax ignores).
   */
  priors: ArrayLike<number>;
  /** Temperature τ, finite (default 1). */
  tau?: number;
}

/**
 * Validates the option and returns the offsets `τ·log(prior_j)`.
 *
 * @param fn Loss name for messages.
 * @param value The option as given.
 * @param c Classes.
 * @returns The per-class logit offsets.
 */
export function logitAdjustmentBias(fn: string, value: unknown, c: number): Float32Array {
  if (value === null || typeof value !== "object") {
    throw new TypeError(
      `${fn}: logitAdjustment must be an object { priors, tau }, got ${describe(value)}`,
    );
  }
  const { priors, tau } = value as Partial<LogitAdjustment>;
  const p = checkClassVector(fn, "logitAdjustment.priors", priors, c, 0, Infinity, true);
  const t = tau === undefined ? 1 : tau;
  if (typeof t !== "number" || !Number.isFinite(t)) {
    throw new RangeError(`${fn}: logitAdjustment.tau must be a finite number, got ${describe(t)}`);
  }
  const bias = new Float32Array(c);
  for (let j = 0; j < c; j++) {
    bias[j] = t * Math.log(p[j]);
    if (!Number.isFinite(bias[j])) {
      throw new RangeError(
        `${fn}: logitAdjustment offset τ·log(priors[${j}]) must fit in float32, got ${
          t * Math.log(p[j])
        }`,
      );
    }
  }
  return bias;
}
