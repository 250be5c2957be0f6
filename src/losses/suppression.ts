/**
 * The per-class suppression strength of the Equalization Loss: how strongly a category's
 * negative gradients are ignored, as a function of its frequency `f_j`. The paper's threshold
 * `T_λ(f) = [f < λ]` and the two smooth curves of its Table 3 (exponential and Gompertz decay),
 * each clamped to [0, 1].
 *
 * @module
 */

import {
  checkFrequencies,
  checkFrequencyValues,
  checkNonNegative,
  checkPositive,
  describe,
} from "./validate.ts";

/** Exponential decay `y(f) = 1 − (a·f)^n`, clamped to [0, 1] (paper Table 3; best a = 400, n = 2). */
export interface ExponentialWeight {
  /** Selects this curve. */
  kind: "exponential";
  /** Scale a ≥ 0 (default 400). */
  a?: number;
  /** Exponent n > 0 (default 2). */
  n?: number;
}

/**
 * Gompertz decay `y(f) = 1 − a·exp(−b·exp(−c·f))`, clamped to [0, 1] (paper Table 3; best a = 1,
 * b = 80, c = 3000).
 */
export interface GompertzWeight {
  /** Selects this curve. */
  kind: "gompertz";
  /** Asymptote a ≥ 0 (default 1). */
  a?: number;
  /** Displacement b ≥ 0 (default 80). */
  b?: number;
  /** Growth rate c ≥ 0 (default 3000). */
  c?: number;
}

/**
 * Which function of the frequency replaces `T_λ(f)` in the EQL weight: `"threshold"` (the
 * paper's default, uses λ) or one of the smooth decay curves (which ignore λ).
 */
export type WeightFunction = "threshold" | ExponentialWeight | GompertzWeight;

/** Options of {@linkcode suppressionWeights}. */
export interface SuppressionOptions {
  /** Frequency threshold λ ≥ 0 of `T_λ` (default 1.76e-3, the paper's LVIS v0.5 value). */
  lambda?: number;
  /** The curve (default `"threshold"`). */
  weightFunction?: WeightFunction;
}

/** The paper's λ for LVIS v0.5. */
export const DEFAULT_EQL_LAMBDA = 1.76e-3;

/** Validated curve with every parameter filled in. */
export type ResolvedWeightFunction =
  | { kind: "threshold"; lambda: number }
  | { kind: "exponential"; a: number; n: number }
  | { kind: "gompertz"; a: number; b: number; c: number };

/**
 * Validates the curve and λ and fills in the defaults.
 *
 * @param fn Loss name for messages.
 * @param lambda λ as given (may be undefined).
 * @param weightFunction The curve as given (may be undefined).
 * @returns The resolved curve.
 */
export function resolveWeightFunction(
  fn: string,
  lambda: unknown,
  weightFunction: unknown,
): ResolvedWeightFunction {
  const lam = lambda === undefined ? DEFAULT_EQL_LAMBDA : checkNonNegative(fn, "lambda", lambda);
  if (weightFunction === undefined || weightFunction === "threshold") {
    return { kind: "threshold", lambda: lam };
  }
  const kind = typeof weightFunction === "object" && weightFunction !== null
    ? (weightFunction as { kind?: unknown }).kind
    : undefined;
  if (kind === "exponential") {
    const w = weightFunction as ExponentialWeight;
    return {
      kind,
      a: w.a === undefined ? 400 : checkNonNegative(fn, "weightFunction.a", w.a),
      n: w.n === undefined ? 2 : checkPositive(fn, "weightFunction.n", w.n),
    };
  }
  if (kind === "gompertz") {
    const w = weightFunction as GompertzWeight;
    return {
      kind,
      a: w.a === undefined ? 1 : checkNonNegative(fn, "weightFunction.a", w.a),
      b: w.b === undefined ? 80 : checkNonNegative(fn, "weightFunction.b", w.b),
      c: w.c === undefined ? 3000 : checkNonNegative(fn, "weightFunction.c", w.c),
    };
  }
  throw new TypeError(
    `${fn}: weightFunction must be "threshold", { kind: "exponential", a, n } or ` +
      `{ kind: "gompertz", a, b, c }, got ${
        kind === undefined ? describe(weightFunction) : `kind ${describe(kind)}`
      }`,
  );
}

/** The curve at one frequency, clamped to [0, 1]. */
export function weightAt(curve: ResolvedWeightFunction, f: number): number {
  let y: number;
  switch (curve.kind) {
    case "threshold":
      return f < curve.lambda ? 1 : 0;
    case "exponential":
      y = 1 - Math.pow(curve.a * f, curve.n);
      break;
    case "gompertz":
      y = 1 - curve.a * Math.exp(-curve.b * Math.exp(-curve.c * f));
      break;
  }
  return y < 0 ? 0 : y > 1 ? 1 : y;
}

/**
 * Per-class suppression strengths for the EQL weight `w_ij = 1 − E(r)·s_j·(1 − y_ij)`: with the
 * threshold curve `s_j = T_λ(f_j) = [f_j < λ]` (strict), otherwise the chosen decay curve of
 * `f_j`, clamped to [0, 1].
 *
 * @param frequencies Per-class frequency `f_j` in [0, 1] (image count / number of images).
 * @param options λ and the curve.
 * @returns One strength in [0, 1] per class.
 *
 * @example
 * ```ts
 * import { suppressionWeights } from "@eql/eql";
 * suppressionWeights([0.5, 1e-4, 1e-3], { lambda: 1.76e-3 }); // Float32Array [0, 1, 1]
 * suppressionWeights([0, 0.001, 0.01], { weightFunction: { kind: "exponential" } });
 * // Float32Array [1, 0.84, 0]
 * ```
 */
export function suppressionWeights(
  frequencies: ArrayLike<number>,
  options: SuppressionOptions = {},
): Float32Array {
  const fn = "suppressionWeights";
  if (frequencies === null || typeof frequencies !== "object") {
    throw new TypeError(
      `${fn}: frequencies must be an array or typed array, got ${describe(frequencies)}`,
    );
  }
  const f = checkFrequencies(fn, frequencies, frequencies.length);
  const curve = resolveWeightFunction(fn, options.lambda, options.weightFunction);
  return suppressionFrom(curve, f);
}

/** Applies a resolved curve to validated frequencies. */
export function suppressionFrom(curve: ResolvedWeightFunction, f: Float64Array): Float32Array {
  const out = new Float32Array(f.length);
  for (let j = 0; j < f.length; j++) out[j] = weightAt(curve, f[j]);
  return out;
}

/**
 * Checks the C frequencies of a loss's options (as `checkFrequencies`) and applies a resolved
 * curve to each as it is checked: one array per call, not a checked copy and then the weights (a
 * typed array costs microseconds in Deno, a 256 × 100 loss call about forty).
 */
export function checkedSuppression(
  fn: string,
  curve: ResolvedWeightFunction,
  frequencies: unknown,
  c: number,
): Float32Array {
  const out = new Float32Array(c);
  checkFrequencyValues(fn, frequencies, c, (j, f) => out[j] = weightAt(curve, f));
  return out;
}
