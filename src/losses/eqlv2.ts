/**
 * EQLv2, the equalization loss with gradient-guided reweighting (Tan et al., CVPR 2021; official
 * code tztztztztz/eqlv2, `mmdet/models/losses/eqlv2.py`), for the box classifier of a detector.
 *
 * Column layout: logits [N, C + 1], C class logits followed by one class-agnostic objectness
 * (background) column. Labels lie in 0..C; label C marks a background proposal, whose target is
 * 1 in the last column (the positives of that column are the background rows) and 0 elsewhere.
 *
 * Each class j keeps the accumulated positive and negative gradient magnitudes `pos_j`, `neg_j`
 * of the whole run. A step computes its weights from the statistics of the steps before it:
 * `r_j = pos_j / (neg_j + 1e-10)`, `q_j = 1 / (1 + exp(−γ·(r_j − μ)))` weights class j's negative
 * elements and `p_j = 1 + α·(1 − q_j)` its positive ones (the objectness column always has weight
 * 1); then `L = Σ_ij w_ij·BCE(z_ij, y_ij) / N`; then it adds its own `Σ_i |σ(z_ij) − y_ij|·y_ij·w_ij`
 * to `pos_j` and `Σ_i |σ(z_ij) − y_ij|·(1 − y_ij)·w_ij` to `neg_j`, the order of the official code.
 *
 * @module
 */

import type { Eqlv2LossParams } from "../device/device.ts";
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

/** Options of {@linkcode Eqlv2Criterion}. */
export interface Eqlv2Options {
  /** Number of classes C (≥ 1); the logits then have C + 1 columns. */
  numClasses: number;
  /** Steepness γ of the map from the gradient ratio to the negative weight (default 12). */
  gamma?: number;
  /** Centre μ of that map (default 0.8). */
  mu?: number;
  /** Strength α of the positive reweighting `p = 1 + α·(1 − q)` (default 4). */
  alpha?: number;
  /**
   * Combines one step's gradient statistics across processes before they are added to the
   * accumulated ones (the official code all-reduces them with a sum): receives this process's
   * per-class positive and negative sums (length C each) and replaces them in place with the
   * sums over all processes. The default leaves them alone, so a single process needs nothing.
   */
  reduceStatistics?: (pos: Float32Array, neg: Float32Array) => void;
}

/** The per-column weights a step applies (length C + 1; the last is the objectness column). */
export interface Eqlv2Weights {
  /** Weight of each column's positive (target) elements, `p_j`. */
  pos: Float32Array;
  /** Weight of each column's negative elements, `q_j`. */
  neg: Float32Array;
}

/** The defaults of the official code. */
export const EQLV2_DEFAULTS: Readonly<{ gamma: number; mu: number; alpha: number }> = Object
  .freeze({ gamma: 12, mu: 0.8, alpha: 4 });

const LOGITS: FusedReport = {
  input: "logits",
  hint: "the row loss overflows float32 (check the logits' scale)",
};

function checkFinite(fn: string, name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new RangeError(`${fn}: ${name} must be a finite number, got ${describe(v)}`);
  }
  return v;
}

/**
 * EQLv2 with its gradient statistics kept as state. The weights of a step come from the
 * statistics of the steps before it; the first step (no statistics yet) uses weight 1 for every
 * element, as the official code does (its statistics start as `None` and the first call returns
 * all-ones weights), and statistics start at 0.
 *
 * The statistics are float32, as in the official code, so that `state()` / `loadState()`
 * round-trip exactly through a safetensors checkpoint (F32 tensors); each step's sums are formed
 * in float64 (CPU) or per block in float64 (CUDA) and rounded once when added.
 *
 * @example
 * ```ts
 * import { Eqlv2Criterion } from "@eql/eql";
 * import { tensor } from "@eql/eql";
 * const criterion = new Eqlv2Criterion({ numClasses: 2 });
 * using logits = tensor([2, -1, -3, -2, -1, 3], [2, 3]); // 2 classes + objectness
 * using r = criterion.compute(logits, new Int32Array([0, 2])); // row 1 is background
 * r.loss; // the first step: plain sigmoid cross-entropy (every weight 1)
 * criterion.weights().neg; // the next step's negative weights, from this step's statistics
 * const saved = criterion.state(); // { pos_grad, neg_grad, steps }: Float32Arrays
 * new Eqlv2Criterion({ numClasses: 2 }).loadState(saved);
 * ```
 */
export class Eqlv2Criterion {
  /** Number of classes C. */
  readonly numClasses: number;
  /** γ of the negative-weight map. */
  readonly gamma: number;
  /** μ of the negative-weight map. */
  readonly mu: number;
  /** α of the positive weight. */
  readonly alpha: number;
  #pos: Float32Array;
  #neg: Float32Array;
  #steps = 0;
  #reduce?: (pos: Float32Array, neg: Float32Array) => void;

  /**
   * Creates the criterion with empty statistics.
   *
   * @param options The number of classes, γ, μ, α and the cross-process hook.
   */
  constructor(options: Eqlv2Options) {
    const fn = "Eqlv2Criterion";
    const o = checkOptions<Eqlv2Options>(fn, options);
    this.numClasses = checkNumClasses(fn, o.numClasses);
    this.gamma = o.gamma === undefined ? EQLV2_DEFAULTS.gamma : checkFinite(fn, "gamma", o.gamma);
    this.mu = o.mu === undefined ? EQLV2_DEFAULTS.mu : checkFinite(fn, "mu", o.mu);
    this.alpha = o.alpha === undefined ? EQLV2_DEFAULTS.alpha : checkFinite(fn, "alpha", o.alpha);
    if (o.reduceStatistics !== undefined && typeof o.reduceStatistics !== "function") {
      throw new TypeError(
        `${fn}: reduceStatistics must be a function (pos, neg) => void, got ${
          describe(o.reduceStatistics)
        }`,
      );
    }
    this.#reduce = o.reduceStatistics;
    this.#pos = new Float32Array(this.numClasses);
    this.#neg = new Float32Array(this.numClasses);
  }

  /** Steps whose statistics have been accumulated. */
  get steps(): number {
    return this.#steps;
  }

  /**
   * The accumulated statistics (copies).
   *
   * @returns Per-class positive and negative gradient sums and their ratio `pos / (neg + 1e-10)`.
   */
  statistics(): { pos: Float32Array; neg: Float32Array; ratio: Float64Array } {
    const ratio = new Float64Array(this.numClasses);
    for (let j = 0; j < this.numClasses; j++) ratio[j] = this.#pos[j] / (this.#neg[j] + 1e-10);
    return { pos: this.#pos.slice(), neg: this.#neg.slice(), ratio };
  }

  /**
   * The weights the next {@linkcode Eqlv2Criterion.compute} applies: all 1 before the first step,
   * then `q_j = σ(γ·(r_j − μ))` for negatives and `p_j = 1 + α·(1 − q_j)` for positives, 1 for
   * the objectness column.
   *
   * @returns Length C + 1 positive and negative weights.
   */
  weights(): Eqlv2Weights {
    const c = this.numClasses;
    const pos = new Float32Array(c + 1).fill(1), neg = new Float32Array(c + 1).fill(1);
    if (this.#steps === 0) return { pos, neg };
    for (let j = 0; j < c; j++) {
      const r = this.#pos[j] / (this.#neg[j] + 1e-10);
      const q = 1 / (1 + Math.exp(-this.gamma * (r - this.mu)));
      neg[j] = q;
      pos[j] = 1 + this.alpha * (1 - q);
    }
    return { pos, neg };
  }

  /**
   * Computes the loss and gradient of one step with the current weights, then adds the step's
   * gradient statistics (after `reduceStatistics`) to the state. Nothing changes when it throws.
   *
   * @param logits [N, C + 1] f32 tensor: C class logits, then the objectness column.
   * @param labels N labels in 0..C (C = background), an Int32Array or an i32 tensor.
   * @param options Where to write the gradient (`gradInto`).
   * @returns The mean loss `Σ w·BCE / N` and its gradient (owned by the caller).
   * @throws {RangeError} When the logits do not have C + 1 columns, or a label is out of range.
   */
  compute(logits: Tensor, labels: Labels, options?: GradientOutput): LossResult {
    const fn = "Eqlv2Criterion.compute";
    const C = this.numClasses;
    const { n, c } = checkLayout(fn, logits, C, 1, "background");
    const checked = checkLabels(fn, labels, n, C, true);
    const o = checkOptions<GradientOutput>(fn, options);
    const w = this.weights();
    const stats = new Float32Array(2 * c);
    const result = runFused(fn, logits, n, LOGITS, (device, temps, grad) => {
      const labelBuf = labelBuffer(checked, device, temps);
      const rowLoss = temps.alloc("f32", n);
      const statBuf = temps.alloc("f32", 2 * c);
      const params = temps.lossArrays<Eqlv2LossParams>({
        n,
        c,
        scale: 1 / n,
        posWeight: w.pos,
        negWeight: w.neg,
      });
      device.eqlv2Loss(logits.buffer, labelBuf, grad, rowLoss, statBuf, params);
      device.download(statBuf, stats);
      return rowLoss;
    }, o.gradInto);
    try {
      // The objectness column's statistics are not kept (as in the official code).
      const pos = stats.slice(0, C), neg = stats.slice(c, c + C);
      this.#reduce?.(pos, neg);
      const nextPos = this.#pos.slice(), nextNeg = this.#neg.slice();
      for (let j = 0; j < C; j++) {
        nextPos[j] += pos[j];
        nextNeg[j] += neg[j];
        if (!(Number.isFinite(nextPos[j]) && Number.isFinite(nextNeg[j]))) {
          throw new RangeError(
            `${fn}: the gradient statistics of class ${j} are not finite after this step ` +
              `(pos ${nextPos[j]}, neg ${nextNeg[j]}); check reduceStatistics`,
          );
        }
      }
      this.#pos = nextPos;
      this.#neg = nextNeg;
      this.#steps++;
    } catch (e) {
      result[Symbol.dispose]();
      throw e;
    }
    return result;
  }

  /**
   * Test-time class scores `σ(z_j)·(1 − σ(z_bg))` of logits with this criterion's layout.
   *
   * @param logits [N, C + 1] f32 tensor.
   * @returns [N·C] scores, row-major.
   */
  scores(logits: Tensor): Float32Array {
    const fn = "Eqlv2Criterion.scores";
    checkLayout(fn, logits, this.numClasses, 1, "background");
    return eqlv2Scores(logits);
  }

  /**
   * The state to checkpoint: `pos_grad` and `neg_grad` (float32, length C) and `steps` (one
   * float32 value, exact below 2^24). Copies; store them e.g. as F32 safetensors tensors.
   *
   * @returns The state.
   */
  state(): CriterionState {
    return {
      pos_grad: this.#pos.slice(),
      neg_grad: this.#neg.slice(),
      steps: new Float32Array([this.#steps]),
    };
  }

  /**
   * Restores a state saved by {@linkcode Eqlv2Criterion.state} (float64 arrays are accepted and
   * rounded to float32).
   *
   * @param state `pos_grad`, `neg_grad` (length C, finite, ≥ 0) and `steps` (one integer ≥ 0).
   * @throws {TypeError | RangeError} Naming the entry that is missing, extra or malformed.
   */
  loadState(state: Readonly<Record<string, Float32Array | Float64Array>>): void {
    const s = checkState("Eqlv2Criterion.loadState", state, {
      pos_grad: this.numClasses,
      neg_grad: this.numClasses,
      steps: 1,
    });
    this.#pos = s.pos_grad;
    this.#neg = s.neg_grad;
    this.#steps = s.steps[0];
  }
}

/**
 * EQLv2's test-time class scores, as the official code computes them: `σ(z_j)·(1 − σ(z_bg))` for
 * the C class columns, where the last column is the objectness (background) logit.
 *
 * @param logits [N, C + 1] f32 tensor (C ≥ 1).
 * @returns [N·C] scores, row-major (float64 arithmetic, rounded once).
 *
 * @example
 * ```ts
 * import { eqlv2Scores } from "@eql/eql";
 * import { tensor } from "@eql/eql";
 * using logits = tensor([0, 2, 0], [1, 3]);
 * eqlv2Scores(logits); // [0.5·0.5, σ(2)·0.5]
 * ```
 */
export function eqlv2Scores(logits: Tensor): Float32Array {
  const fn = "eqlv2Scores";
  const { n, c } = checkLogits(fn, logits);
  if (c < 2) {
    throw new RangeError(
      `${fn}: logits must have C+1 ≥ 2 columns (C classes + background), got ${c}`,
    );
  }
  const z = logits.toArray() as Float32Array;
  const C = c - 1;
  const out = new Float32Array(n * C);
  for (let i = 0; i < n; i++) {
    const fg = 1 / (1 + Math.exp(z[i * c + C])); // 1 − σ(z_bg)
    for (let j = 0; j < C; j++) out[i * C + j] = fg / (1 + Math.exp(-z[i * c + j]));
  }
  return out;
}
