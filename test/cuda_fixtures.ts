// Shared pieces of the CUDA tests: whether a GPU is usable (with the reason printed once when it
// is not), a seeded generator, and element-wise comparison with a per-element bound.

import assert from "node:assert/strict";
import { cudaAvailable } from "../src/device/auto.ts";

const availability = cudaAvailable();

/** True when the CUDA driver, a GPU, cuBLAS and cuDNN are all usable. */
export const gpu: boolean = availability.ok;

/**
 * Prints why a file's GPU tests are skipped (once per file).
 *
 * @param file The test file, for the message.
 */
export function reportSkip(file: string): void {
  if (!gpu) console.log(`${file}: GPU tests skipped: ${availability.reason}`);
}

/** A small seeded generator (LCG) for test data. */
export class Rng {
  #s: number;

  /** @param seed Any integer. */
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.#s = (Math.imul(this.#s, 1664525) + 1013904223) >>> 0;
    return this.#s / 2 ** 32;
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** f32 array of uniforms in [lo, hi). */
  f32(n: number, lo = -1, hi = 1): Float32Array {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = this.uniform(lo, hi);
    return a;
  }
}

/**
 * Asserts `|got[i] − want[i]| ≤ bound(i)` for every element.
 *
 * @param what What is compared, for the message.
 * @param got The values under test.
 * @param want The reference.
 * @param bound Allowed absolute error per element.
 */
export function assertWithin(
  what: string,
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  bound: (i: number) => number,
): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let worst = -1, worstRatio = 0;
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    const b = bound(i);
    if (!(err <= b) && !(Number.isNaN(got[i]) && Number.isNaN(want[i]))) {
      const r = err / b;
      if (worst < 0 || r > worstRatio || Number.isNaN(r)) {
        worst = i;
        worstRatio = r;
      }
    }
  }
  if (worst >= 0) {
    assert.fail(
      `${what}: element ${worst} is ${got[worst]}, expected ${want[worst]} ± ${bound(worst)} ` +
        `(${worstRatio.toFixed(2)}× the bound)`,
    );
  }
}

/**
 * Asserts `|got − want| ≤ atol + rtol·|want|` element-wise.
 *
 * @param what What is compared.
 * @param got Values under test.
 * @param want Reference.
 * @param rtol Relative tolerance.
 * @param atol Absolute tolerance.
 */
export function assertClose(
  what: string,
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  rtol: number,
  atol = 0,
): void {
  assertWithin(what, got, want, (i) => atol + rtol * Math.abs(want[i]));
}

/** Largest absolute value of an array. */
export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** Unit roundoff of float32. */
export const U32 = 2 ** -24;
