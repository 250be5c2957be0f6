/**
 * CPU kernels of the fused losses: the sigmoid family (sigmoid cross-entropy, EQL with threshold
 * or decay weights and image-level keep sets, focal loss, class weights), the softmax family
 * (softmax cross-entropy, softmax EQL with its seeded mask, class weights, logit adjustment) and
 * smooth-L1. Each row is handled on its own: its logits are read, and its unscaled loss and its
 * gradient (times `scale`) are written. Arithmetic is float64; results are stored as float32.
 *
 * When the backend has the native CPU kernels (`ffi/cpu_kernels/losses.c`), the same losses run
 * there instead, vectorised and spread over the rows' threads: single-precision values with their
 * own `exp` and `log1p` (at most about 1 ulp each), double-precision maxima and row sums. Their
 * results agree with these loops to a few float32 ulps (the bounds are stated and checked in
 * `test/loss_kernels_test.ts`), except smooth-L1, which is the same bit for bit; the softmax-EQL
 * mask is the same set of classes. The loops here are the fallback and the `kernels:
 * "typescript"` path.
 *
 * Non-finite input: a row whose logits hold a NaN or an infinity, masked or ignored classes
 * included, gets a NaN row loss, so a caller can report bad logits after a single pass.
 *
 * The device validated the record and every buffer (`src/device/_validate.ts`) before calling;
 * what only the data can tell (a label outside its range, a row's image outside the keep mask) is
 * checked here, row by row, as it is read.
 *
 * @module
 */

import type {
  Eqlv2LossParams,
  SeesawLossParams,
  SigmoidLossParams,
  SmoothL1Shape,
  SoftmaxLossParams,
} from "../device.ts";
import { hash32 } from "../mask.ts";
import { type CpuBackend, defaultCpuBackend } from "./backend.ts";
import { Workspace } from "./workspace.ts";

/** Sigmoid-family parameters with host arrays in place of device buffers. */
export type SigmoidLossArrays = SigmoidLossParams<Float32Array, Int32Array>;

/** Softmax-family parameters with host arrays in place of device buffers. */
export type SoftmaxLossArrays = SoftmaxLossParams<Float32Array>;

/** EQLv2 parameters with host arrays in place of device buffers. */
export type Eqlv2LossArrays = Eqlv2LossParams<Float32Array>;

/** Seesaw parameters with host arrays in place of device buffers. */
export type SeesawLossArrays = SeesawLossParams<Float32Array>;

/** Per-row scratch of the softmax kernel: which classes are masked, and their exponentials. */
const maskedWs = new Workspace(Uint8Array);
const expWs = new Workspace(Float64Array);
/** Per-column gradient sums of the EQLv2 kernel (positive, then negative). */
const statWs = new Workspace(Float64Array);

/** Draws at or above 2^24 do not exist, so this threshold masks every candidate. */
const ALL_DRAWS = 16777216;

/**
 * `log(1 + e)` for `e` in [0, 1], as precise as `Math.log1p` for float32 results and about twice
 * as fast: where `e > 1e-4`, rounding `1 + e` costs at most 1e-12 relative; below, three terms of
 * the series leave an error under `e⁴/4`.
 */
function log1pUnit(e: number): number {
  return e > 1e-4 ? Math.log(1 + e) : e * (1 - e * (0.5 - e / 3));
}

function checkLabel(label: number, row: number, max: number): void {
  if (!(label >= 0 && label <= max)) {
    throw new RangeError(`labels[${row}] must lie in 0..${max}, got ${label}`);
  }
}

/** The start of row i's image in the keep mask, checked to lie inside it. */
function keepRowBase(imageOfRow: Int32Array, keepMask: Int32Array, row: number, c: number): number {
  const base = imageOfRow[row] * c;
  if (!(base >= 0 && base + c <= keepMask.length)) {
    throw new RangeError(
      `imageOfRow[${row}] must select an image of keepMask (${keepMask.length / c} images), got ${
        imageOfRow[row]
      }`,
    );
  }
  return base;
}

/**
 * Fused sigmoid-family loss over logits [N, C] with labels in 0..C (C = background).
 *
 * Element (i, j) with target `y = [j == label_i]` has weight
 * `w = rowWeight_i · (1 − E_i · suppress_j · (1 − y))` (or `rowWeight_i` where the image's keep
 * mask lists j) and contributes `w · α_t · (1 − p_t)^γ · BCE(z, y)` to the row loss, where
 * `p_t = σ(z)` for the target and `1 − σ(z)` otherwise. Its gradient is
 * `scale · w · α_t · s · (1 − p_t)^γ · (γ · p_t · log p_t − (1 − p_t))` with `s = ±1` for
 * target / non-target, which is `scale · w · (σ(z) − y)` when γ = 0 and α is off.
 *
 * @param logits [N·C] input.
 * @param labels [N] class per row, C for background.
 * @param grad [N·C] output: `scale · ∂(row loss)/∂logits`.
 * @param rowLoss [N] output: each row's unscaled weighted loss.
 * @param p Sizes, scale and options.
 * @param backend The kernels to run (default: the environment's).
 * @throws {RangeError} When a label lies outside 0..C or a row's image outside the keep mask
 *   (the native kernels check every row before they write anything).
 *
 * @example
 * ```ts
 * import { sigmoidLoss } from "./losses.ts";
 * const grad = new Float32Array(2), rowLoss = new Float32Array(1);
 * sigmoidLoss(new Float32Array([0, 0]), new Int32Array([1]), grad, rowLoss, {
 *   n: 1, c: 2, scale: 1, backgroundExempt: true, focalGamma: 0, focalAlpha: -1,
 * });
 * rowLoss[0]; // 2·log 2; grad = [0.5, −0.5]
 * ```
 */
export function sigmoidLoss(
  logits: Float32Array,
  labels: Int32Array,
  grad: Float32Array,
  rowLoss: Float32Array,
  p: SigmoidLossArrays,
  backend: CpuBackend = defaultCpuBackend(),
): void {
  const { n, c, scale, suppress, backgroundExempt, classWeight, imageOfRow, keepMask } = p;
  const gamma = p.focalGamma, alpha = p.focalAlpha;
  const native = backend.native;
  if (native !== null) {
    for (let i = 0; i < n; i++) {
      checkLabel(labels[i], i, c);
      if (keepMask !== undefined) keepRowBase(imageOfRow!, keepMask, i, c);
    }
    native.symbols.eql_sigmoid_loss(
      logits,
      labels,
      grad,
      rowLoss,
      BigInt(n),
      BigInt(c),
      scale,
      suppress ?? null,
      backgroundExempt ? 1 : 0,
      classWeight ?? null,
      gamma,
      alpha,
      keepMask !== undefined ? imageOfRow! : null,
      keepMask ?? null,
    );
    return;
  }
  const focal = gamma !== 0 || alpha >= 0;
  for (let i = 0; i < n; i++) {
    const label = labels[i];
    checkLabel(label, i, c);
    const foreground = label < c;
    const rowWeight = classWeight !== undefined && foreground ? classWeight[label] : 1;
    const exposed = foreground || !backgroundExempt ? 1 : 0; // E_i
    const keepBase = keepMask !== undefined ? keepRowBase(imageOfRow!, keepMask, i, c) : -1;
    const base = i * c;
    // No separate scan for bad logits: `z·y` with y = 0 turns a NaN or infinite non-target z into
    // a NaN term (a zero weight times it is NaN too); the target's `z·0` is added at the end, as
    // its BCE is +Inf, not NaN, for z = −Inf.
    let sum = 0;
    for (let j = 0; j < c; j++) {
      const z = logits[base + j];
      const y = j === label ? 1 : 0;
      let w = rowWeight;
      if (suppress !== undefined && !(keepBase >= 0 && keepMask![keepBase + j] !== 0)) {
        w = rowWeight * (1 - exposed * suppress[j] * (1 - y));
      }
      // Stable pieces: e = exp(−|z|), σ(z) and σ(−z) = 1 − σ(z) without cancellation.
      const e = Math.exp(-Math.abs(z));
      const inv = 1 / (1 + e);
      const sigPos = z >= 0 ? inv : e * inv;
      const sigNeg = z >= 0 ? e * inv : inv;
      const bce = Math.max(z, 0) - z * y + log1pUnit(e);
      if (!focal) {
        sum += w * bce;
        grad[base + j] = scale * w * (y === 1 ? -sigNeg : sigPos);
      } else {
        // p_t = σ(z) for the target, 1 − σ(z) otherwise; log p_t = −BCE.
        const pt = y === 1 ? sigPos : sigNeg;
        const qt = y === 1 ? sigNeg : sigPos;
        const at = alpha < 0 ? 1 : y === 1 ? alpha : 1 - alpha;
        const mod = gamma === 0 ? 1 : Math.pow(qt, gamma);
        sum += w * at * mod * bce;
        const sign = y === 1 ? 1 : -1;
        grad[base + j] = -scale * w * at * sign * mod * (gamma * pt * bce + qt);
      }
    }
    rowLoss[i] = foreground ? sum + logits[base + label] * 0 : sum;
  }
}

/**
 * Fused softmax-family loss over logits [N, C] with labels in 0..C−1.
 *
 * The logits are first offset by `logitBias`. Class k of row i is masked when k is not the
 * label, `suppress[k] == 1` and `maskDraw(seed, counter, i, k) < gammaThreshold`; a masked class
 * acts as a logit of −∞ (no probability, zero gradient). The row loss is
 * `classWeight[label] · (logsumexp over unmasked z − z_label)`; the gradient is
 * `scale · classWeight[label] · (p_k − [k == label])` on unmasked classes.
 *
 * @param logits [N·C] input.
 * @param labels [N] class per row.
 * @param grad [N·C] output: `scale · ∂(row loss)/∂logits`.
 * @param rowLoss [N] output: each row's unscaled loss.
 * @param p Sizes, scale and options.
 * @param backend The kernels to run (default: the environment's).
 * @throws {RangeError} When a label lies outside 0..C−1 (the native kernels check every row
 *   before they write anything).
 *
 * @example
 * ```ts
 * import { softmaxLoss } from "./losses.ts";
 * const grad = new Float32Array(2), rowLoss = new Float32Array(1);
 * softmaxLoss(new Float32Array([0, 0]), new Int32Array([1]), grad, rowLoss, {
 *   n: 1, c: 2, scale: 1, gammaThreshold: 0, seed: 0, counter: 0,
 * });
 * rowLoss[0]; // log 2; grad = [0.5, −0.5]
 * ```
 */
export function softmaxLoss(
  logits: Float32Array,
  labels: Int32Array,
  grad: Float32Array,
  rowLoss: Float32Array,
  p: SoftmaxLossArrays,
  backend: CpuBackend = defaultCpuBackend(),
): void {
  const { n, c, scale, suppress, gammaThreshold, classWeight, logitBias } = p;
  const native = backend.native;
  if (native !== null) {
    for (let i = 0; i < n; i++) checkLabel(labels[i], i, c - 1);
    native.symbols.eql_softmax_loss(
      logits,
      labels,
      grad,
      rowLoss,
      BigInt(n),
      BigInt(c),
      scale,
      suppress ?? null,
      BigInt(gammaThreshold),
      p.seed,
      p.counter,
      classWeight ?? null,
      logitBias ?? null,
    );
    return;
  }
  const masking = suppress !== undefined && gammaThreshold > 0;
  const maskAll = gammaThreshold >= ALL_DRAWS;
  // maskDraw(seed, counter, row, k) folds its inputs in order; the first two are fixed per
  // call and the row is fixed per row, so only the class is folded in the inner loop.
  const callKey = hash32((hash32((p.seed ^ 0x9e3779b9) >>> 0) ^ p.counter) >>> 0);
  const masked = maskedWs.take(c);
  const ex = expWs.take(c);
  for (let i = 0; i < n; i++) {
    const label = labels[i];
    checkLabel(label, i, c - 1);
    const weight = classWeight !== undefined ? classWeight[label] : 1;
    const rowKey = hash32((callKey ^ i) >>> 0);
    const base = i * c;
    let max = -Infinity;
    let poison = 0; // stays 0 unless a logit is NaN or infinite
    for (let k = 0; k < c; k++) {
      const raw = logits[base + k];
      poison += raw * 0;
      const z = logitBias !== undefined ? raw + logitBias[k] : raw;
      ex[k] = z;
      let m = 0;
      if (masking && k !== label && suppress![k] === 1) {
        m = maskAll || hash32((rowKey ^ k) >>> 0) >>> 8 < gammaThreshold ? 1 : 0;
      }
      masked[k] = m;
      if (m === 0 && z > max) max = z;
    }
    const zLabel = ex[label];
    // The probabilities' numerators, with the non-target mass summed apart so that the target's
    // gradient p − 1 = −(others / total) keeps its precision when p is close to 1.
    let others = 0;
    for (let k = 0; k < c; k++) {
      if (masked[k] === 1) {
        ex[k] = 0;
      } else {
        const v = Math.exp(ex[k] - max);
        ex[k] = v;
        if (k !== label) others += v;
      }
    }
    const own = ex[label];
    const total = own + others;
    const loss = zLabel - max > -690 ? Math.log1p(others / own) : Math.log(total) + (max - zLabel);
    rowLoss[i] = weight * loss + poison;
    const g = (scale * weight) / total;
    for (let k = 0; k < c; k++) grad[base + k] = g * ex[k];
    grad[base + label] = -g * others;
  }
}

/**
 * Fused EQLv2 loss over logits [N, C] with labels in 0..C−1: element (i, j) with target
 * `y = [j == label_i]` has weight `w = posWeight_j` for the target and `negWeight_j` otherwise,
 * contributes `w·BCE(z, y)` to the row loss and gets the gradient `scale·w·(σ(z) − y)`.
 * `gradStats[j]` receives `Σ_i w·|σ(z) − y|` over the rows whose label is j and
 * `gradStats[C + j]` the same sum over the other rows, each column summed in row order.
 *
 * @param logits [N·C] input.
 * @param labels [N] class per row (EQLv2: C − 1 for background, the objectness column).
 * @param grad [N·C] output: `scale · ∂(row loss)/∂logits`.
 * @param rowLoss [N] output: each row's unscaled weighted loss.
 * @param gradStats [2·C] output: the weighted positive and negative gradient sums per column.
 * @param p Sizes, scale and the per-column weights.
 * @param backend The kernels to run (default: the environment's).
 * @throws {RangeError} When a label lies outside 0..C−1 (checked for every row before anything
 *   is written).
 *
 * @example
 * ```ts
 * import { eqlv2Loss } from "./losses.ts";
 * const grad = new Float32Array(2), rowLoss = new Float32Array(1), stats = new Float32Array(4);
 * const ones = new Float32Array([1, 1]);
 * eqlv2Loss(new Float32Array([0, 0]), new Int32Array([1]), grad, rowLoss, stats, {
 *   n: 1, c: 2, scale: 1, posWeight: ones, negWeight: ones,
 * });
 * rowLoss[0]; // 2·log 2; grad = [0.5, −0.5]; stats = [0, 0.5, 0.5, 0]
 * ```
 */
export function eqlv2Loss(
  logits: Float32Array,
  labels: Int32Array,
  grad: Float32Array,
  rowLoss: Float32Array,
  gradStats: Float32Array,
  p: Eqlv2LossArrays,
  backend: CpuBackend = defaultCpuBackend(),
): void {
  const { n, c, scale, posWeight, negWeight } = p;
  for (let i = 0; i < n; i++) checkLabel(labels[i], i, c - 1);
  const native = backend.native;
  if (native !== null) {
    const status = native.symbols.eql_eqlv2_loss(
      logits,
      labels,
      grad,
      rowLoss,
      gradStats,
      BigInt(n),
      BigInt(c),
      scale,
      posWeight,
      negWeight,
    );
    if (status !== 0) {
      throw new Error(
        `eqlv2Loss: could not allocate the column sums (${2 * c} × ${Math.ceil(n / 64)} doubles)`,
      );
    }
    return;
  }
  const stats = statWs.take(2 * c).fill(0);
  for (let i = 0; i < n; i++) {
    const label = labels[i];
    const base = i * c;
    // As in sigmoidLoss: `z·y` with y = 0 turns a non-finite non-target logit into a NaN term.
    let sum = 0;
    for (let j = 0; j < c; j++) {
      const z = logits[base + j];
      const y = j === label ? 1 : 0;
      const e = Math.exp(-Math.abs(z));
      const inv = 1 / (1 + e);
      const sigPos = z >= 0 ? inv : e * inv;
      const sigNeg = z >= 0 ? e * inv : inv;
      const bce = Math.max(z, 0) - z * y + log1pUnit(e);
      const w = y === 1 ? posWeight[j] : negWeight[j];
      sum += w * bce;
      // |σ(z) − y| is σ(−z) for the target and σ(z) for the others.
      const a = y === 1 ? sigNeg : sigPos;
      grad[base + j] = scale * w * (y === 1 ? -a : a);
      stats[y === 1 ? j : c + j] += w * a;
    }
    rowLoss[i] = sum + logits[base + label] * 0;
  }
  for (let k = 0; k < 2 * c; k++) gradStats[k] = stats[k];
}

/**
 * Fused Seesaw loss over logits [N, C + 2] with labels in 0..C (C = background): see
 * `SeesawLossParams` in `../device.ts`. For a foreground row with label l, class j ≠ l of the
 * first C columns gets the adjusted logit
 * `a_j = z_j + min(0, p·(logCount_j − logCount_l)) + q·max(0, z_j − t_l)` with
 * `t_l = max(z_l, lse + log eps)` and `lse` the log-sum-exp of the row's class logits: the logs
 * of the mitigation `(N_j/N_l)^p` below 1 and of the compensation `(σ_j / max(σ_l, eps))^q`
 * above 1, since `log σ_j − log max(σ_l, eps) = z_j − t_l`. The row's class loss is the softmax
 * cross-entropy of `a` (with `a_l = z_l`), its gradient `softmax(a) − onehot(l)`. Every row adds
 * the 2-way cross-entropy of the objectness pair (target column C for foreground rows, C + 1 for
 * background rows). The gradient is scaled by `scale`; background rows get 0 on the class
 * columns.
 *
 * @param logits [N·(C+2)] input.
 * @param labels [N] class per row, C for background.
 * @param grad [N·(C+2)] output: `scale · ∂(row loss)/∂logits`.
 * @param rowLoss [N] output: each row's unscaled loss.
 * @param p Sizes, scale, the log counts and p, q, eps.
 * @param backend The kernels to run (default: the environment's).
 * @throws {RangeError} When a label lies outside 0..C (checked for every row before anything is
 *   written).
 *
 * @example
 * ```ts
 * import { seesawLoss } from "./losses.ts";
 * const grad = new Float32Array(4), rowLoss = new Float32Array(1);
 * seesawLoss(new Float32Array([0, 0, 0, 0]), new Int32Array([0]), grad, rowLoss, {
 *   n: 1, c: 4, scale: 1, logCount: new Float32Array([0, 0]), p: 0.8, q: 2, eps: 0.01,
 * });
 * rowLoss[0]; // 2·log 2; grad = [−0.5, 0.5, −0.5, 0.5]
 * ```
 */
export function seesawLoss(
  logits: Float32Array,
  labels: Int32Array,
  grad: Float32Array,
  rowLoss: Float32Array,
  p: SeesawLossArrays,
  backend: CpuBackend = defaultCpuBackend(),
): void {
  const { n, c, scale, logCount } = p;
  const classes = c - 2;
  for (let i = 0; i < n; i++) checkLabel(labels[i], i, classes);
  const native = backend.native;
  if (native !== null) {
    native.symbols.eql_seesaw_loss(
      logits,
      labels,
      grad,
      rowLoss,
      BigInt(n),
      BigInt(c),
      scale,
      logCount,
      p.p,
      p.q,
      p.eps,
    );
    return;
  }
  const logEps = Math.log(p.eps);
  const adj = expWs.take(classes);
  for (let i = 0; i < n; i++) {
    const label = labels[i];
    const base = i * c;
    let poison = 0; // stays 0 unless a logit is NaN or infinite
    for (let j = 0; j < c; j++) poison += logits[base + j] * 0;
    // The objectness pair: column C is foreground, C + 1 background.
    const fg = label < classes;
    const zf = logits[base + classes], zb = logits[base + classes + 1];
    const dz = fg ? zb - zf : zf - zb; // the other logit minus the target's
    const objLoss = dz > 0 ? dz + Math.log1p(Math.exp(-dz)) : Math.log1p(Math.exp(dz));
    const pOther = dz > 0 ? 1 / (1 + Math.exp(-dz)) : Math.exp(dz) / (1 + Math.exp(dz));
    grad[base + classes] = scale * (fg ? -pOther : pOther);
    grad[base + classes + 1] = scale * (fg ? pOther : -pOther);
    if (!fg) {
      for (let j = 0; j < classes; j++) grad[base + j] = 0;
      rowLoss[i] = objLoss + poison;
      continue;
    }
    // log-sum-exp of the class logits, for the compensation's log σ.
    let m = -Infinity;
    for (let j = 0; j < classes; j++) m = Math.max(m, logits[base + j]);
    let s = 0;
    for (let j = 0; j < classes; j++) s += Math.exp(logits[base + j] - m);
    const zl = logits[base + label];
    const t = Math.max(zl, m + Math.log(s) + logEps);
    const own = logCount[label];
    let max = zl;
    for (let j = 0; j < classes; j++) {
      const z = logits[base + j];
      const a = j === label
        ? z
        : z + Math.min(0, p.p * (logCount[j] - own)) + p.q * Math.max(0, z - t);
      adj[j] = a;
      if (a > max) max = a;
    }
    let others = 0;
    for (let j = 0; j < classes; j++) {
      const v = Math.exp(adj[j] - max);
      adj[j] = v;
      if (j !== label) others += v;
    }
    const e = adj[label];
    const total = e + others;
    const loss = zl - max > -690 ? Math.log1p(others / e) : Math.log(total) + (max - zl);
    rowLoss[i] = loss + objLoss + poison;
    const g = scale / total;
    for (let j = 0; j < classes; j++) grad[base + j] = g * adj[j];
    grad[base + label] = -g * others;
  }
}

/**
 * Smooth-L1 (Huber with transition `beta`) over [N, D] rows: per element `0.5·d²/beta` where
 * `|d| < beta`, else `|d| − 0.5·beta`, with `d = pred − target` (beta = 0 is plain L1). Row i's
 * loss is `rowWeight[i]` times the sum over its D elements; the gradient is
 * `scale · rowWeight[i] · ∂/∂pred`.
 *
 * @param pred [N·D] predictions.
 * @param target [N·D] targets.
 * @param rowWeight [N] weight per row (0 for rows without a box loss).
 * @param grad [N·D] output.
 * @param rowLoss [N] output.
 * @param shape Rows `n`, values per row `d`, transition `beta` ≥ 0 and gradient multiplier `scale`.
 * @param backend The kernels to run (default: the environment's).
 *
 * @example
 * ```ts
 * import { smoothL1Loss } from "./losses.ts";
 * const grad = new Float32Array(2), rowLoss = new Float32Array(1);
 * smoothL1Loss(new Float32Array([0.5, 3]), new Float32Array([0, 0]), new Float32Array([1]),
 *   grad, rowLoss, { n: 1, d: 2, beta: 1, scale: 1 });
 * rowLoss[0]; // 0.125 + 2.5; grad = [0.5, 1]
 * ```
 */
export function smoothL1Loss(
  pred: Float32Array,
  target: Float32Array,
  rowWeight: Float32Array,
  grad: Float32Array,
  rowLoss: Float32Array,
  shape: SmoothL1Shape,
  backend: CpuBackend = defaultCpuBackend(),
): void {
  const { n, d, beta, scale } = shape;
  const native = backend.native;
  if (native !== null) {
    native.symbols.eql_smooth_l1_loss(
      pred,
      target,
      rowWeight,
      grad,
      rowLoss,
      BigInt(n),
      BigInt(d),
      beta,
      scale,
    );
    return;
  }
  for (let i = 0; i < n; i++) {
    const w = rowWeight[i];
    const base = i * d;
    let sum = 0;
    for (let j = 0; j < d; j++) {
      const diff = pred[base + j] - target[base + j];
      const a = Math.abs(diff);
      let l: number, g: number;
      if (a < beta) {
        l = (0.5 * diff * diff) / beta;
        g = diff / beta;
      } else {
        l = a - 0.5 * beta;
        g = diff > 0 ? 1 : diff < 0 ? -1 : 0;
      }
      sum += l;
      grad[base + j] = scale * w * g;
    }
    rowLoss[i] = w * sum;
  }
}
