/**
 * Smooth-L1 (Huber) loss for box regression, summed over each row's coordinates and averaged
 * over rows, as the Fast R-CNN box heads do.
 *
 * @module
 */

import { Tensor } from "../tensor.ts";
import { type GradientOutput, type LossResult, runFused } from "./fused.ts";
import { checkNonNegative, checkOptions, checkPositive, describe } from "./validate.ts";

/** Options of {@linkcode smoothL1Loss}. */
export interface SmoothL1Options extends GradientOutput {
  /** Transition point β ≥ 0 between the quadratic and linear parts (default 1; 0 is L1). */
  beta?: number;
  /** Weight per row (length N, finite, ≥ 0), e.g. 1 for foreground proposals and 0 for the rest. */
  rowWeight?: ArrayLike<number>;
  /** What the weighted sum is divided by (default N, the number of rows). */
  normalizer?: number;
}

function checkPair(fn: string, pred: unknown, target: unknown): { n: number; d: number } {
  for (const [name, t] of [["pred", pred], ["target", target]] as const) {
    if (!(t instanceof Tensor)) {
      throw new TypeError(`${fn}: ${name} must be a Tensor, got ${describe(t)}`);
    }
    if (t.disposed) throw new TypeError(`${fn}: ${name} must be a live tensor, got a disposed one`);
    if (t.dtype !== "f32") {
      throw new TypeError(`${fn}: ${name} must be an f32 tensor, got dtype ${t.dtype}`);
    }
    if (t.shape.length !== 2 || t.shape[0] < 1 || t.shape[1] < 1) {
      throw new RangeError(
        `${fn}: ${name} must be a non-empty rank-2 tensor [N, D], got shape [${
          t.shape.join(", ")
        }]`,
      );
    }
  }
  const p = pred as Tensor, t = target as Tensor;
  if (p.shape[0] !== t.shape[0] || p.shape[1] !== t.shape[1]) {
    throw new RangeError(
      `${fn}: target must have the shape of pred [${p.shape.join(", ")}], got [${
        t.shape.join(", ")
      }]`,
    );
  }
  if (p.device !== t.device) {
    throw new TypeError(
      `${fn}: target must live on the device of pred (${p.device.kind}), got ${t.device.kind}`,
    );
  }
  return { n: p.shape[0], d: p.shape[1] };
}

/**
 * Smooth-L1 loss: per element `0.5·d²/β` where `|d| < β`, else `|d| − 0.5·β`, with
 * `d = pred − target`; `L = Σ_i rowWeight_i·Σ_j l_ij / normalizer`. The gradient is taken with
 * respect to `pred`.
 *
 * @param pred [N, D] f32 predictions (e.g. box deltas).
 * @param target [N, D] f32 targets on the same device.
 * @param options β, row weights and normaliser.
 * @returns The loss and `∂L/∂pred` (owned by the caller).
 *
 * @example
 * ```ts
 * import { smoothL1Loss } from "@eql/eql";
 * import { tensor } from "@eql/eql";
 * const pred = tensor([0.5, 3], [1, 2]), target = tensor([0, 0], [1, 2]);
 * const { loss, grad } = smoothL1Loss(pred, target, { beta: 1 });
 * loss; // 0.125 + 2.5
 * grad.toArray(); // [0.5, 1]
 * grad.dispose();
 * ```
 */
export function smoothL1Loss(pred: Tensor, target: Tensor, options?: SmoothL1Options): LossResult {
  const fn = "smoothL1Loss";
  const { n, d } = checkPair(fn, pred, target);
  const o = checkOptions<SmoothL1Options>(fn, options);
  const beta = o.beta === undefined ? 1 : checkNonNegative(fn, "beta", o.beta);
  const normalizer = o.normalizer === undefined ? n : checkPositive(fn, "normalizer", o.normalizer);
  const weights = new Float32Array(n).fill(1);
  if (o.rowWeight !== undefined) {
    const w = o.rowWeight;
    if (w === null || typeof w !== "object" || typeof w.length !== "number") {
      throw new TypeError(`${fn}: rowWeight must be an array or typed array, got ${describe(w)}`);
    }
    if (w.length !== n) {
      throw new RangeError(
        `${fn}: rowWeight must hold one weight per row (${n}), got ${describe(w)}`,
      );
    }
    for (let i = 0; i < n; i++) {
      const v = w[i];
      if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
        throw new RangeError(
          `${fn}: rowWeight[${i}] must be a finite number ≥ 0, got ${describe(v)}`,
        );
      }
      weights[i] = v;
    }
  }
  const report = { input: "pred", hint: "check target and rowWeight for non-finite values" };
  return runFused(fn, pred, normalizer, report, (device, temps, grad) => {
    const rowLoss = temps.alloc("f32", n);
    device.smoothL1Loss(
      pred.buffer,
      target.buffer,
      temps.upload(weights),
      grad,
      rowLoss,
      { n, d, beta, scale: 1 / normalizer },
    );
    return rowLoss;
  }, o.gradInto);
}
