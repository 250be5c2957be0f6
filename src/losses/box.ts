/**
 * The box-regression loss of a Fast R-CNN head: smooth-L1 between the predicted deltas of each
 * foreground proposal's ground-truth class and its regression target, summed over the four
 * coordinates and the foreground proposals, divided by the number of sampled proposals N
 * (background proposals count in N but carry no box loss), as Detectron2 computes it.
 *
 * With class-specific regression the deltas are `[N, 4·C]` and row i uses columns
 * `4·y_i … 4·y_i + 3`; with class-agnostic regression they are `[N, 4]`. The four deltas of
 * each foreground row are gathered into a compact `[F, 4]` tensor with device copies, the fused
 * smooth-L1 op runs on it, and its gradient is scattered back into a zeroed `[N, D]` gradient,
 * so nothing of size N·C crosses between host and device.
 *
 * @module
 */

import { Tensor, tensor, zeros } from "../tensor.ts";
import { type LossResult, lossResult } from "./fused.ts";
import { smoothL1Loss } from "./smooth_l1.ts";
import {
  checkLabels,
  checkNonNegative,
  checkOptions,
  checkPositive,
  describe,
  type Labels,
} from "./validate.ts";

/** Options of {@linkcode boxRegressionLoss}. */
export interface BoxRegressionOptions {
  /** Number of categories C; labels lie in 0..C with C meaning background. */
  numClasses: number;
  /**
   * Transition β ≥ 0 of the smooth-L1 (default 1, Fast R-CNN's; 0 gives the L1 loss that
   * Detectron2 uses by default).
   */
  beta?: number;
  /** What the summed loss is divided by (default N, the number of proposals). */
  normalizer?: number;
}

/**
 * Smooth-L1 box-regression loss over foreground proposals.
 *
 * @param deltas `[N, 4·C]` (class-specific) or `[N, 4]` (class-agnostic) f32 predictions.
 * @param targets `[N, 4]` regression targets (host array or f32 tensor on the deltas' device);
 *   rows of background proposals are ignored.
 * @param labels N labels in 0..C (C = background), an Int32Array or an i32 tensor.
 * @param options C, β and the normaliser.
 * @returns The loss and `∂loss/∂deltas` `[N, D]` (owned by the caller; zero in every column that
 *   does not belong to a foreground row's class).
 * @throws {TypeError | RangeError} When a shape, dtype, device, label or option is wrong.
 *
 * @example
 * ```ts
 * import { boxRegressionLoss } from "@eql/eql/detection";
 * import { tensor } from "@eql/eql";
 * // two proposals, two classes (class-specific deltas [2, 8]); the second is background
 * const deltas = tensor(new Float32Array([0, 0, 0, 0, 0.5, 0, 0, 2, 9, 9, 9, 9, 9, 9, 9, 9]), [2, 8]);
 * const targets = new Float32Array([0, 0, 0, 0, 0, 0, 0, 0]);
 * const { loss, grad } = boxRegressionLoss(deltas, targets, new Int32Array([1, 2]), { numClasses: 2 });
 * loss; // (0.125 + 1.5) / 2
 * grad.toArray(); // [0, 0, 0, 0, 0.25, 0, 0, 0.5, 0, …]
 * grad.dispose();
 * ```
 */
export function boxRegressionLoss(
  deltas: Tensor,
  targets: Float32Array | Tensor,
  labels: Labels,
  options: BoxRegressionOptions,
): LossResult {
  const fn = "boxRegressionLoss";
  const o = checkOptions<BoxRegressionOptions>(fn, options);
  const c = o.numClasses;
  if (typeof c !== "number" || !Number.isInteger(c) || c < 1) {
    throw new RangeError(`${fn}: numClasses must be an integer ≥ 1, got ${describe(c)}`);
  }
  if (!(deltas instanceof Tensor)) {
    throw new TypeError(`${fn}: deltas must be a Tensor, got ${describe(deltas)}`);
  }
  if (deltas.disposed) {
    throw new TypeError(`${fn}: deltas must be a live tensor, got a disposed one`);
  }
  if (deltas.dtype !== "f32") {
    throw new TypeError(`${fn}: deltas must be an f32 tensor, got dtype ${deltas.dtype}`);
  }
  if (
    deltas.shape.length !== 2 || deltas.shape[0] < 1 ||
    (deltas.shape[1] !== 4 && deltas.shape[1] !== 4 * c)
  ) {
    throw new RangeError(
      `${fn}: deltas must have shape [N, ${
        4 * c
      }] (class-specific) or [N, 4] (class-agnostic) with N ≥ 1, got [${deltas.shape.join(", ")}]`,
    );
  }
  const [n, d] = deltas.shape;
  const device = deltas.device;
  const classSpecific = d === 4 * c && c > 1;

  let targetHost: Float32Array | undefined;
  if (targets instanceof Tensor) {
    if (targets.disposed) {
      throw new TypeError(`${fn}: targets must be a live tensor, got a disposed one`);
    }
    if (targets.dtype !== "f32") {
      throw new TypeError(`${fn}: targets must be an f32 tensor, got dtype ${targets.dtype}`);
    }
    if (targets.shape.length !== 2 || targets.shape[0] !== n || targets.shape[1] !== 4) {
      throw new RangeError(
        `${fn}: targets must have shape [${n}, 4], got [${targets.shape.join(", ")}]`,
      );
    }
    if (targets.device !== device) {
      throw new TypeError(
        `${fn}: targets must live on the device of deltas (${device.kind}), got ${targets.device.kind}`,
      );
    }
  } else if (targets instanceof Float32Array) {
    if (targets.length !== n * 4) {
      throw new RangeError(
        `${fn}: targets must hold [${n}, 4] = ${n * 4} values, got ${targets.length}`,
      );
    }
    targetHost = targets;
  } else {
    throw new TypeError(
      `${fn}: targets must be a Float32Array or an f32 Tensor, got ${describe(targets)}`,
    );
  }
  const { host: y } = checkLabels(fn, labels, n, c, true);
  const beta = o.beta === undefined ? 1 : checkNonNegative(fn, "beta", o.beta);
  const normalizer = o.normalizer === undefined ? n : checkPositive(fn, "normalizer", o.normalizer);

  const fg: number[] = [];
  for (let i = 0; i < n; i++) if (y[i] < c) fg.push(i);
  const grad = zeros([n, d], device);
  if (fg.length === 0) return lossResult(0, grad);

  const f = fg.length;
  const column = (i: number): number => (classSpecific ? 4 * y[i] : 0);
  let pred: Tensor | undefined, target: Tensor | undefined, part: LossResult | undefined;
  try {
    pred = zeros([f, 4], device);
    for (let k = 0; k < f; k++) {
      device.copy(pred.buffer, deltas.buffer, 4, 4 * k, fg[k] * d + column(fg[k]));
    }
    if (targetHost !== undefined) {
      const t = new Float32Array(4 * f);
      for (let k = 0; k < f; k++) t.set(targetHost.subarray(4 * fg[k], 4 * fg[k] + 4), 4 * k);
      target = tensor(t, [f, 4], device);
    } else {
      target = zeros([f, 4], device);
      for (let k = 0; k < f; k++) {
        device.copy(target.buffer, (targets as Tensor).buffer, 4, 4 * k, 4 * fg[k]);
      }
    }
    try {
      part = smoothL1Loss(pred, target, { beta, normalizer });
    } catch (e) {
      // Name the proposal, not the row of the gathered foreground tensor.
      const m = e instanceof RangeError ? /at row (\d+)|of row (\d+)/.exec(e.message) : null;
      if (m === null) throw e;
      const k = Number(m[1] ?? m[2]);
      throw new RangeError(
        `${fn}: the box loss of proposal ${fg[k]} (label ${y[fg[k]]}) is not finite: ${
          (e as Error).message
        }`,
      );
    }
    for (let k = 0; k < f; k++) {
      device.copy(grad.buffer, part.grad.buffer, 4, fg[k] * d + column(fg[k]), 4 * k);
    }
    return lossResult(part.loss, grad);
  } catch (e) {
    grad.dispose();
    throw e;
  } finally {
    pred?.dispose();
    target?.dispose();
    part?.grad.dispose();
  }
}
