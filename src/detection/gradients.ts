/**
 * The gradient analysis of the EQL paper (Figure 1): how strongly positive and negative samples
 * pull on each category's classifier weights.
 *
 * With a linear classifier `z_ij = w_j · h_i + b_j` on the features `h_i` of proposal i, the
 * gradient of the weight row j in one training step is `G_j = Σ_i g_ij · h_i` with
 * `g_ij = ∂L/∂z_ij`. It splits into the part from the positives of j (the rows labelled j) and
 * the part from its negatives (every other row, background included):
 *
 *     G⁺_j = Σ_{i : label_i = j} g_ij · h_i,    G⁻_j = G_j − G⁺_j.
 *
 * {@linkcode GradientStats} accumulates `‖G⁺_j‖₂` and `‖G⁻_j‖₂` step by step; what it reports is
 * their mean over the training steps seen (a step in which category j has no positive adds 0 to
 * its positive mean). Weight decay is not part of `G`: pass the gradient of the loss alone.
 *
 * It also sums the logit gradients' magnitudes over the whole run, the statistic EQLv2
 * accumulates: `Σ |g_ij|` over the positives of j, over the foreground rows of other categories
 * and over the background rows. The last two tell where a classifier's discouraging gradient
 * comes from: other categories' objects (what EQL ignores for rare categories) or background
 * (what `E(r)` keeps).
 *
 * @module
 */

/**
 * Per-category mean L2 norms of the positive and negative classifier-weight gradients.
 *
 * @example
 * ```ts
 * import { GradientStats } from "@eql/eql/detection";
 * const stats = new GradientStats(2, 3);
 * // two rows with features h, labels 0 and background (2), logit gradients g
 * const h = new Float32Array([1, 0, 0, 0, 1, 0]);
 * const g = new Float32Array([-0.5, 0.1, 0.2, 0.3]);
 * const weightGrad = new Float32Array([-0.5, 0.2, 0, 0.1, 0.3, 0]); // gᵀ h
 * stats.accumulate(weightGrad, g, h, new Int32Array([0, 2]));
 * stats.positiveNorm(); // Float64Array [0.5, 0]
 * stats.negativeNorm(); // Float64Array [0.2, ≈0.316]
 * ```
 */
export class GradientStats {
  #c: number;
  #k: number;
  #pos: Float64Array;
  #neg: Float64Array;
  #steps = 0;
  #scratch: Float64Array;
  #posAbs: Float64Array;
  #negFgAbs: Float64Array;
  #negBgAbs: Float64Array;

  /**
   * Creates empty statistics.
   *
   * @param numCategories Number of categories C (rows of the classifier weight).
   * @param featureWidth Width K of the classifier's input features.
   * @throws {RangeError} When either is not a positive integer.
   */
  constructor(numCategories: number, featureWidth: number) {
    if (!Number.isInteger(numCategories) || numCategories < 1) {
      throw new RangeError(`numCategories must be a positive integer, got ${numCategories}`);
    }
    if (!Number.isInteger(featureWidth) || featureWidth < 1) {
      throw new RangeError(`featureWidth must be a positive integer, got ${featureWidth}`);
    }
    this.#c = numCategories;
    this.#k = featureWidth;
    this.#pos = new Float64Array(numCategories);
    this.#neg = new Float64Array(numCategories);
    this.#scratch = new Float64Array(numCategories * featureWidth);
    this.#posAbs = new Float64Array(numCategories);
    this.#negFgAbs = new Float64Array(numCategories);
    this.#negBgAbs = new Float64Array(numCategories);
  }

  /** Number of training steps accumulated. */
  get steps(): number {
    return this.#steps;
  }

  /**
   * Adds one training step.
   *
   * @param weightGrad `[C, K]` gradient of the loss with respect to the classifier weight
   *   (`Σ_i g_ij h_i`, without weight decay).
   * @param logitGrad `[N, C]` gradient of the loss with respect to the logits.
   * @param features `[N, K]` the classifier's input features of the step.
   * @param labels `[N]` labels in 0..C (C is background).
   * @throws {RangeError} When a size disagrees with C, K or N, or a label is out of range.
   */
  accumulate(
    weightGrad: Float32Array,
    logitGrad: Float32Array,
    features: Float32Array,
    labels: Int32Array,
  ): void {
    const c = this.#c, k = this.#k, n = labels.length;
    if (weightGrad.length !== c * k) {
      throw new RangeError(
        `weightGrad must hold C·K = ${c}·${k} = ${c * k} values, got ${weightGrad.length}`,
      );
    }
    if (logitGrad.length !== n * c) {
      throw new RangeError(
        `logitGrad must hold N·C = ${n}·${c} = ${
          n * c
        } values for ${n} labels, got ${logitGrad.length}`,
      );
    }
    if (features.length !== n * k) {
      throw new RangeError(
        `features must hold N·K = ${n}·${k} = ${
          n * k
        } values for ${n} labels, got ${features.length}`,
      );
    }
    for (let i = 0; i < n; i++) {
      const y = labels[i];
      if (!Number.isInteger(y) || y < 0 || y > c) {
        throw new RangeError(`labels[${i}] must lie in 0..${c} (${c} is background), got ${y}`);
      }
    }
    // Logit-gradient magnitudes by the kind of row (the arrays in locals: a field read inside
    // the loop is not hoisted out of it).
    const negBg = this.#negBgAbs, negFg = this.#negFgAbs, posAbs = this.#posAbs;
    for (let i = 0; i < n; i++) {
      const y = labels[i], base = i * c;
      if (y === c) {
        for (let j = 0; j < c; j++) negBg[j] += Math.abs(logitGrad[base + j]);
      } else {
        for (let j = 0; j < y; j++) negFg[j] += Math.abs(logitGrad[base + j]);
        for (let j = y + 1; j < c; j++) negFg[j] += Math.abs(logitGrad[base + j]);
        posAbs[y] += Math.abs(logitGrad[base + y]);
      }
    }
    // G⁺ in float64, only for the categories with positives in this step.
    const gp = this.#scratch;
    const touched = new Uint8Array(c);
    for (let i = 0; i < n; i++) {
      const j = labels[i];
      if (j === c) continue;
      const g = logitGrad[i * c + j], base = j * k, hBase = i * k;
      if (touched[j] === 0) {
        touched[j] = 1;
        gp.fill(0, base, base + k);
      }
      for (let t = 0; t < k; t++) gp[base + t] += g * features[hBase + t];
    }
    for (let j = 0; j < c; j++) {
      const base = j * k;
      let pos2 = 0, neg2 = 0;
      if (touched[j] === 1) {
        for (let t = 0; t < k; t++) {
          const p = gp[base + t], q = weightGrad[base + t] - p;
          pos2 += p * p;
          neg2 += q * q;
        }
      } else {
        for (let t = 0; t < k; t++) neg2 += weightGrad[base + t] * weightGrad[base + t];
      }
      this.#pos[j] += Math.sqrt(pos2);
      this.#neg[j] += Math.sqrt(neg2);
    }
    this.#steps++;
  }

  /**
   * Mean over the steps of `‖G⁺_j‖₂`.
   *
   * @returns `[C]` means (zeros before the first step).
   */
  positiveNorm(): Float64Array {
    return this.#mean(this.#pos);
  }

  /**
   * Mean over the steps of `‖G⁻_j‖₂`.
   *
   * @returns `[C]` means (zeros before the first step).
   */
  negativeNorm(): Float64Array {
    return this.#mean(this.#neg);
  }

  /**
   * Sums over every step of the logit gradients' magnitudes `|∂L/∂z_ij|`, per category j: over
   * its positives, over foreground rows of other categories, and over background rows.
   *
   * @returns Three `[C]` arrays (copies; zeros before the first step).
   *
   * @example
   * ```ts
   * import { GradientStats } from "./gradients.ts";
   * const stats = new GradientStats(2, 1);
   * // rows: category 0, category 1, background (label 2)
   * const g = new Float32Array([-0.5, 0.25, 0.125, -0.75, 0.5, 0.0625]);
   * const h = new Float32Array([1, 1, 1]);
   * const weightGrad = new Float32Array([0.125, -0.4375]); // gᵀ h
   * stats.accumulate(weightGrad, g, h, new Int32Array([0, 1, 2]));
   * const s = stats.logitGradientSums();
   * s.positive; // Float64Array [0.5, 0.75]
   * s.negativeForeground; // Float64Array [0.125, 0.25]
   * s.negativeBackground; // Float64Array [0.5, 0.0625]
   * ```
   */
  logitGradientSums(): {
    positive: Float64Array;
    negativeForeground: Float64Array;
    negativeBackground: Float64Array;
  } {
    return {
      positive: this.#posAbs.slice(),
      negativeForeground: this.#negFgAbs.slice(),
      negativeBackground: this.#negBgAbs.slice(),
    };
  }

  #mean(sum: Float64Array): Float64Array {
    const out = new Float64Array(this.#c);
    if (this.#steps > 0) { for (let j = 0; j < this.#c; j++) out[j] = sum[j] / this.#steps; }
    return out;
  }
}
