/**
 * Naive float64 references for the loss tests: straightforward loops written from the formulas
 * in the reference notes, sharing no code with the kernels, plus small test utilities.
 *
 * @module
 */

import assert from "node:assert/strict";
import { maskDraw } from "../src/device/mask.ts";

/** Deterministic uniform numbers in [0, 1) (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform f32 values in [lo, hi). */
export function uniform(rand: () => number, length: number, lo: number, hi: number): Float32Array {
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = lo + (hi - lo) * rand();
  return out;
}

/** Integer labels in 0..max. */
export function randomLabels(rand: () => number, n: number, max: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(rand() * (max + 1));
  return out;
}

/** `log σ(x)` without overflow. */
function logSigmoid(x: number): number {
  return x >= 0 ? -Math.log1p(Math.exp(-x)) : x - Math.log1p(Math.exp(x));
}

/** `σ(x)`. */
function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/** Options of the sigmoid-family reference. */
export interface RefSigmoidOptions {
  /** Per-class suppression s_j (absent: 0). */
  suppress?: ArrayLike<number>;
  /** E(r) exemption of background rows (default true). */
  exempt?: boolean;
  /** Per-class weight by label. */
  classWeight?: ArrayLike<number>;
  /** Focal γ (default 0). */
  gamma?: number;
  /** Focal α, or undefined for off. */
  alpha?: number;
  /** Image of each row. */
  imageOfRow?: ArrayLike<number>;
  /** Per image: categories never suppressed. */
  keep?: ReadonlyArray<ReadonlyArray<number>>;
}

/** The weight w_ij of the sigmoid family, straight from the formula. */
export function refSigmoidWeight(
  label: number,
  i: number,
  j: number,
  c: number,
  o: RefSigmoidOptions,
): number {
  const y = j === label ? 1 : 0;
  const rw = o.classWeight !== undefined && label < c ? o.classWeight[label] : 1;
  const E = label < c || o.exempt === false ? 1 : 0;
  const s = o.suppress ? o.suppress[j] : 0;
  const kept = o.keep !== undefined && o.imageOfRow !== undefined &&
    o.keep[o.imageOfRow[i]].includes(j);
  return kept ? rw : rw * (1 - E * s * (1 - y));
}

/** Per-row loss of the sigmoid family (float64 logits). */
export function refSigmoidRows(
  z: ArrayLike<number>,
  labels: ArrayLike<number>,
  n: number,
  c: number,
  o: RefSigmoidOptions = {},
): Float64Array {
  const rows = new Float64Array(n);
  const gamma = o.gamma ?? 0;
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (let j = 0; j < c; j++) {
      const x = z[i * c + j];
      const y = j === labels[i] ? 1 : 0;
      const w = refSigmoidWeight(labels[i], i, j, c, o);
      // −log p_t with p_t = σ(x) for y = 1 and σ(−x) for y = 0.
      const t = y === 1 ? x : -x;
      const nll = -logSigmoid(t);
      const oneMinusPt = sigmoid(-t);
      const at = o.alpha === undefined ? 1 : y === 1 ? o.alpha : 1 - o.alpha;
      sum += w * at * Math.pow(oneMinusPt, gamma) * nll;
    }
    rows[i] = sum;
  }
  return rows;
}

/** Analytic gradient of the sigmoid-family row losses when γ = 0 and α is off: w·(σ(z) − y). */
export function refBceGrad(
  z: ArrayLike<number>,
  labels: ArrayLike<number>,
  n: number,
  c: number,
  o: RefSigmoidOptions = {},
): Float64Array {
  const g = new Float64Array(n * c);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < c; j++) {
      const y = j === labels[i] ? 1 : 0;
      // σ(z) − 1 written as −σ(−z), so that tiny gradients keep their precision.
      const d = y === 1 ? -sigmoid(-z[i * c + j]) : sigmoid(z[i * c + j]);
      g[i * c + j] = refSigmoidWeight(labels[i], i, j, c, o) * d;
    }
  }
  return g;
}

/** Options of the softmax-family reference. */
export interface RefSoftmaxOptions {
  /** Per-class 0/1 tail indicator. */
  suppress?: ArrayLike<number>;
  /** Masking probability γ. */
  gamma?: number;
  /** Mask seed. */
  seed?: number;
  /** Mask counter. */
  counter?: number;
  /** Per-class weight by label. */
  classWeight?: ArrayLike<number>;
  /** Per-class logit offsets. */
  bias?: ArrayLike<number>;
}

/** Which classes of each row are ignored: tail, non-target, draw below floor(γ·2^24). */
export function refMask(
  labels: ArrayLike<number>,
  n: number,
  c: number,
  o: RefSoftmaxOptions,
): Uint8Array {
  const mask = new Uint8Array(n * c);
  if (!o.suppress) return mask;
  const threshold = Math.floor((o.gamma ?? 0) * 2 ** 24);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < c; k++) {
      if (k !== labels[i] && o.suppress[k] === 1) {
        mask[i * c + k] = maskDraw(o.seed ?? 0, o.counter ?? 0, i, k) < threshold ? 1 : 0;
      }
    }
  }
  return mask;
}

/** Per-row softmax-family loss and its analytic gradient, for a given mask. */
export function refSoftmax(
  z: ArrayLike<number>,
  labels: ArrayLike<number>,
  n: number,
  c: number,
  o: RefSoftmaxOptions = {},
  mask: Uint8Array = refMask(labels, n, c, o),
): { rows: Float64Array; grad: Float64Array } {
  const rows = new Float64Array(n);
  const grad = new Float64Array(n * c);
  for (let i = 0; i < n; i++) {
    const zz: number[] = [];
    for (let k = 0; k < c; k++) zz.push(z[i * c + k] + (o.bias ? o.bias[k] : 0));
    let m = -Infinity;
    for (let k = 0; k < c; k++) if (!mask[i * c + k]) m = Math.max(m, zz[k]);
    let s = 0;
    for (let k = 0; k < c; k++) if (!mask[i * c + k]) s += Math.exp(zz[k] - m);
    const cw = o.classWeight ? o.classWeight[labels[i]] : 1;
    rows[i] = cw * (m + Math.log(s) - zz[labels[i]]);
    for (let k = 0; k < c; k++) {
      const p = mask[i * c + k] ? 0 : Math.exp(zz[k] - m) / s;
      grad[i * c + k] = mask[i * c + k] ? 0 : cw * (p - (k === labels[i] ? 1 : 0));
    }
  }
  return { rows, grad };
}

/** Per-row smooth-L1 loss. */
export function refSmoothL1Rows(
  pred: ArrayLike<number>,
  target: ArrayLike<number>,
  weight: ArrayLike<number>,
  n: number,
  d: number,
  beta: number,
): Float64Array {
  const rows = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) {
      const x = Math.abs(pred[i * d + j] - target[i * d + j]);
      s += x < beta ? (0.5 * x * x) / beta : x - 0.5 * beta;
    }
    rows[i] = weight[i] * s;
  }
  return rows;
}

/** Sum of a row-loss vector. */
export function total(rows: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < rows.length; i++) s += rows[i];
  return s;
}

/**
 * Central finite differences of `f` (a float64 function of the whole input) at `x`, element by
 * element.
 */
export function finiteDiff(
  f: (x: Float64Array) => number,
  x: ArrayLike<number>,
  h = 1e-5,
): Float64Array {
  const at = Float64Array.from(x);
  const g = new Float64Array(at.length);
  for (let k = 0; k < at.length; k++) {
    const v = at[k];
    at[k] = v + h;
    const up = f(at);
    at[k] = v - h;
    const down = f(at);
    at[k] = v;
    g[k] = (up - down) / (2 * h);
  }
  return g;
}

/** Asserts `|a − e| ≤ atol + rtol·|e|` element by element, naming the first failure. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  rtol: number,
  atol: number,
  what = "value",
): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let k = 0; k < expected.length; k++) {
    const a = actual[k], e = expected[k];
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) {
      assert.fail(`${what}[${k}]: got ${a}, expected ${e} (rtol ${rtol}, atol ${atol})`);
    }
  }
}

/** Scales every element. */
export function scaled(a: ArrayLike<number>, s: number): Float64Array {
  const out = new Float64Array(a.length);
  for (let k = 0; k < a.length; k++) out[k] = a[k] * s;
  return out;
}
