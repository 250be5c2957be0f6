/**
 * The Seesaw loss (Wang et al., CVPR 2021) as mmdetection computes it
 * (`mmdet/models/losses/seesaw_loss.py`), for the box classifier of a detector.
 *
 * Column layout: logits [N, C + 2], C class logits followed by an objectness pair: column C is
 * the foreground logit, column C + 1 the background logit (mmdetection's `obj_labels` is 0 for
 * foreground and 1 for background). Labels lie in 0..C; label C marks a background proposal.
 *
 * - Foreground rows (label l < C) get a Seesaw cross-entropy over the C class logits: each
 *   non-target class j's logit is raised by `log(M_lj·K_lj)` with the mitigation factor
 *   `M_lj = (N_j/N_l)^p` where `N_j < N_l` (else 1) and the compensation factor
 *   `K_lj = (σ_j / max(σ_l, eps))^q` where that ratio exceeds 1 (else 1), σ the softmax of the
 *   row's class logits taken as a constant; N the cumulative sampled counts, clamped to ≥ 1.
 * - Every row gets a plain 2-way softmax cross-entropy over the objectness pair.
 * - Both terms are summed over their rows and divided by N, the number of sampled rows: the
 *   mmdetection box head passes `avg_factor` = the number of rows with a label weight to both
 *   (loss weight 1 for each).
 *
 * The counts are updated at each step with the step's labels (background included, as
 * mmdetection's `cum_samples` of length C + 1) before the factors are computed.
 *
 * @module
 */

import type { SeesawLossParams } from "../device/device.ts";
import type { Tensor } from "../tensor.ts";
import {
  type FusedReport,
  type GradientOutput,
  labelBuffer,
  type LossResult,
  runFused,
} from "./fused.ts";
import {
  checkLayout,
  checkNumClasses,
  checkState,
  type CriterionState,
} from "./criterion_state.ts";
import { checkLabels, checkLogits, checkOptions, describe, type Labels } from "./validate.ts";

/** Options of {@linkcode SeesawCriterion}. */
export interface SeesawOptions {
  /** Number of classes C (≥ 1); the logits then have C + 2 columns. */
  numClasses: number;
  /** Mitigation exponent p ≥ 0 (default 0.8; 0 turns the factor off). */
  p?: number;
  /** Compensation exponent q ≥ 0 (default 2; 0 turns the factor off). */
  q?: number;
  /** Lower bound of the target's probability in the compensation ratio, in (0, 1] (default 1e-2). */
  eps?: number;
}

/** mmdetection's defaults. */
export const SEESAW_DEFAULTS: Readonly<{ p: number; q: number; eps: number }> = Object.freeze({
  p: 0.8,
  q: 2,
  eps: 1e-2,
});

const LOGITS: FusedReport = {
  input: "logits",
  hint: "the row loss overflows float32 (check the logits' scale)",
};

function checkExponent(fn: string, name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
    throw new RangeError(`${fn}: ${name} must be a finite number ≥ 0, got ${describe(v)}`);
  }
  return v;
}

/**
 * The Seesaw loss with its cumulative class counts kept as state.
 *
 * The counts are float32, as mmdetection's `cum_samples` buffer, so that `state()` /
 * `loadState()` round-trip exactly through a safetensors checkpoint (F32 tensors); a count stays
 * exact up to 2^24 samples of its class.
 *
 * @example
 * ```ts
 * import { SeesawCriterion } from "@eql/eql";
 * import { tensor } from "@eql/eql";
 * const criterion = new SeesawCriterion({ numClasses: 2 });
 * // 2 class logits, then the objectness pair (foreground, background)
 * using logits = tensor([1, 0, 2, -1, 0, 0, -1, 1], [2, 4]);
 * using r = criterion.compute(logits, new Int32Array([0, 2])); // row 1 is background
 * r.loss; // (Seesaw CE of row 0 + both rows' objectness CE) / 2
 * criterion.counts(); // [1, 0, 1]: class 0, class 1, background
 * criterion.scores(logits); // softmax(classes) · P(foreground), [2·2]
 * ```
 */
export class SeesawCriterion {
  /** Number of classes C. */
  readonly numClasses: number;
  /** Mitigation exponent p. */
  readonly p: number;
  /** Compensation exponent q. */
  readonly q: number;
  /** Probability floor of the compensation ratio. */
  readonly eps: number;
  #counts: Float32Array;

  /**
   * Creates the criterion with zero counts.
   *
   * @param options The number of classes, p, q and eps.
   */
  constructor(options: SeesawOptions) {
    const fn = "SeesawCriterion";
    const o = checkOptions<SeesawOptions>(fn, options);
    this.numClasses = checkNumClasses(fn, o.numClasses);
    this.p = o.p === undefined ? SEESAW_DEFAULTS.p : checkExponent(fn, "p", o.p);
    this.q = o.q === undefined ? SEESAW_DEFAULTS.q : checkExponent(fn, "q", o.q);
    if (o.eps !== undefined && !(typeof o.eps === "number" && o.eps > 0 && o.eps <= 1)) {
      throw new RangeError(`${fn}: eps must be a number in (0, 1], got ${describe(o.eps)}`);
    }
    this.eps = o.eps ?? SEESAW_DEFAULTS.eps;
    this.#counts = new Float32Array(this.numClasses + 1);
  }

  /**
   * The cumulative sampled counts (a copy): C classes, then background.
   *
   * @returns Length C + 1.
   */
  counts(): Float32Array {
    return this.#counts.slice();
  }

  /**
   * Adds the step's labels to the counts, then computes the loss and its gradient with the
   * updated counts. Nothing changes when it throws.
   *
   * @param logits [N, C + 2] f32 tensor: C class logits, then the objectness pair.
   * @param labels N labels in 0..C (C = background), an Int32Array or an i32 tensor.
   * @param options Where to write the gradient (`gradInto`).
   * @returns The loss `(Σ_fg SeesawCE + Σ_all objectness CE) / N` and its gradient.
   * @throws {RangeError} When the logits do not have C + 2 columns, or a label is out of range.
   */
  compute(logits: Tensor, labels: Labels, options?: GradientOutput): LossResult {
    const fn = "SeesawCriterion.compute";
    const C = this.numClasses;
    const { n, c } = checkLayout(fn, logits, C, 2, "the objectness pair");
    const checked = checkLabels(fn, labels, n, C, true);
    const o = checkOptions<GradientOutput>(fn, options);
    const next = this.#counts.slice();
    for (let i = 0; i < n; i++) next[checked.host[i]] += 1;
    const logCount = new Float32Array(C);
    for (let j = 0; j < C; j++) logCount[j] = Math.log(Math.max(next[j], 1));
    const result = runFused(fn, logits, n, LOGITS, (device, temps, grad) => {
      const labelBuf = labelBuffer(checked, device, temps);
      const rowLoss = temps.alloc("f32", n);
      const params = temps.lossArrays<SeesawLossParams>({
        n,
        c,
        scale: 1 / n,
        logCount,
        p: this.p,
        q: this.q,
        eps: this.eps,
      });
      device.seesawLoss(logits.buffer, labelBuf, grad, rowLoss, params);
      return rowLoss;
    }, o.gradInto);
    this.#counts = next;
    return result;
  }

  /**
   * Test-time class scores of logits with this criterion's layout:
   * `softmax(classes)_j · P(foreground)`.
   *
   * @param logits [N, C + 2] f32 tensor.
   * @returns [N·C] scores, row-major.
   */
  scores(logits: Tensor): Float32Array {
    const fn = "SeesawCriterion.scores";
    checkLayout(fn, logits, this.numClasses, 2, "the objectness pair");
    return seesawScores(logits);
  }

  /**
   * The state to checkpoint: `cum_samples` (float32, length C + 1: the classes, then
   * background). A copy; store it e.g. as an F32 safetensors tensor.
   *
   * @returns The state.
   */
  state(): CriterionState {
    return { cum_samples: this.#counts.slice() };
  }

  /**
   * Restores a state saved by {@linkcode SeesawCriterion.state} (a float64 array is accepted
   * and rounded to float32).
   *
   * @param state `cum_samples` of length C + 1, finite values ≥ 0.
   * @throws {TypeError | RangeError} Naming the entry that is missing, extra or malformed.
   */
  loadState(state: Readonly<Record<string, Float32Array | Float64Array>>): void {
    const s = checkState("SeesawCriterion.loadState", state, {
      cum_samples: this.numClasses + 1,
    });
    this.#counts = s.cum_samples;
  }
}

/**
 * Seesaw's test-time class scores, as mmdetection computes them:
 * `softmax(z_0..z_{C−1})_j · softmax(z_C, z_{C+1})_0` (class probability times the probability
 * of foreground).
 *
 * @param logits [N, C + 2] f32 tensor (C ≥ 1).
 * @returns [N·C] scores, row-major (float64 arithmetic, rounded once).
 *
 * @example
 * ```ts
 * import { seesawScores } from "@eql/eql";
 * import { tensor } from "@eql/eql";
 * using logits = tensor([0, 0, 0, 0], [1, 4]);
 * seesawScores(logits); // [0.25, 0.25]
 * ```
 */
export function seesawScores(logits: Tensor): Float32Array {
  const fn = "seesawScores";
  const { n, c } = checkLogits(fn, logits);
  if (c < 3) {
    throw new RangeError(
      `${fn}: logits must have C+2 ≥ 3 columns (C classes + the objectness pair), got ${c}`,
    );
  }
  const z = logits.toArray() as Float32Array;
  const C = c - 2;
  const out = new Float32Array(n * C);
  for (let i = 0; i < n; i++) {
    const base = i * c;
    let m = -Infinity;
    for (let j = 0; j < C; j++) m = Math.max(m, z[base + j]);
    let s = 0;
    for (let j = 0; j < C; j++) s += Math.exp(z[base + j] - m);
    const fg = 1 / (1 + Math.exp(z[base + C + 1] - z[base + C]));
    for (let j = 0; j < C; j++) out[i * C + j] = (Math.exp(z[base + j] - m) / s) * fg;
  }
  return out;
}
