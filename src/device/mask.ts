/**
 * The counter-based generator behind the softmax-EQL mask. A draw is a pure function of
 * (seed, counter, row, class) built from 32-bit integer operations only, so the CPU device and
 * the CUDA kernel (`ffi/kernels/mask.cuh`, `mask_draw`) produce the same mask bit for bit.
 *
 * The mixer is the "lowbias32" integer hash (shifts 16/15/16, multipliers 0x7feb352d and
 * 0x846ca68b); the four inputs are folded in one after another, starting from
 * `seed ^ 0x9e3779b9` so that all-zero inputs do not give a zero draw.
 *
 * @module
 */

/** Mixes a 32-bit value (returns an unsigned 32-bit integer). */
export function hash32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  x = (x ^ (x >>> 16)) >>> 0;
  return x;
}

/**
 * The 24-bit draw for one (seed, counter, row, class): uniform on 0..2^24−1.
 *
 * @example
 * ```ts
 * import { maskDraw } from "./mask.ts";
 * maskDraw(7, 0, 3, 5) === maskDraw(7, 0, 3, 5); // true
 * ```
 */
export function maskDraw(seed: number, counter: number, row: number, cls: number): number {
  let h = hash32((seed ^ 0x9e3779b9) >>> 0);
  h = hash32((h ^ counter) >>> 0);
  h = hash32((h ^ row) >>> 0);
  h = hash32((h ^ cls) >>> 0);
  return h >>> 8;
}

/**
 * The integer threshold for a masking probability γ: a class is masked when its draw is below
 * `floor(γ · 2^24)`, so γ = 0 masks nothing and γ = 1 masks every candidate.
 */
export function gammaThreshold(gamma: number): number {
  return Math.floor(gamma * 16777216);
}
