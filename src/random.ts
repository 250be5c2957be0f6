/**
 * A small, seeded, reproducible pseudo-random number generator for everything that needs
 * randomness (data order, augmentation, initialisation, samplers).
 *
 * The core is xoshiro128** (Blackman & Vigna): 128 bits of state, period 2^128 − 1, 32-bit
 * outputs, fast in JavaScript because it needs only 32-bit integer operations. A seed (any safe
 * non-negative integer) is expanded into the four state words with a SplitMix32-style mixer, so
 * nearby seeds give unrelated streams. The whole state (including a cached normal deviate) can
 * be saved with {@linkcode Random.getState} and restored with {@linkcode Random.fromState}, which
 * makes a resumed training run draw exactly the numbers the uninterrupted run would have drawn.
 *
 * @example
 * ```ts
 * import { Random } from "@eql/eql";
 * const rng = new Random(42);
 * rng.uniform();          // in [0, 1)
 * rng.integer(0, 10);     // in {0, …, 9}
 * rng.normal(0, 0.01);    // Gaussian
 * rng.shuffle([1, 2, 3]); // shuffled in place
 * ```
 *
 * @module
 */

const TWO_32 = 4294967296;
const TWO_53 = 9007199254740992;

/** A JSON-serialisable snapshot of a {@linkcode Random}. */
export interface RandomState {
  /** The four xoshiro128** state words (unsigned 32-bit integers, not all zero). */
  s: [number, number, number, number];
  /** The second Box–Muller deviate waiting to be returned, or null. */
  spare: number | null;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** SplitMix32-style finaliser: a bijective scramble of a 32-bit word. */
function mix32(z: number): number {
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

function checkSeed(seed: number): void {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new RangeError(`seed must be a non-negative safe integer, got ${seed}`);
  }
}

/** Arrays {@linkcode Random.shuffle} can permute in place: plain arrays and the usual typed arrays. */
export type Shufflable =
  | unknown[]
  | Float32Array
  | Float64Array
  | Int32Array
  | Uint32Array
  | Int16Array
  | Uint16Array
  | Int8Array
  | Uint8Array;

/**
 * Seeded xoshiro128** generator with uniform, integer, normal, Bernoulli, shuffle and
 * permutation helpers.
 *
 * @example
 * ```ts
 * import { Random } from "@eql/eql";
 * const a = new Random(7), b = new Random(7);
 * console.log(a.nextUint32() === b.nextUint32()); // true
 * ```
 */
export class Random {
  #s0 = 0;
  #s1 = 0;
  #s2 = 0;
  #s3 = 0;
  #spare: number | null = null;

  /**
   * Creates a generator from a seed.
   *
   * @param seed A non-negative safe integer (default 0); equal seeds give equal streams.
   * @throws {RangeError} When the seed is not a non-negative safe integer.
   */
  constructor(seed = 0) {
    checkSeed(seed);
    const lo = seed >>> 0;
    const hi = Math.floor(seed / TWO_32) >>> 0;
    // Golden-ratio increments, as in SplitMix, with both halves of the seed folded in.
    let x = (lo ^ mix32(hi ^ 0x5bd1e995)) >>> 0;
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      words.push(mix32(x ^ Math.imul(hi, 0x27d4eb2f)));
    }
    this.#setWords(words[0], words[1], words[2], words[3]);
  }

  #setWords(a: number, b: number, c: number, d: number): void {
    if ((a | b | c | d) === 0) a = 0x9e3779b9; // the all-zero state is a fixed point
    this.#s0 = a >>> 0;
    this.#s1 = b >>> 0;
    this.#s2 = c >>> 0;
    this.#s3 = d >>> 0;
  }

  /**
   * Restores a generator from a snapshot taken with {@linkcode Random.getState}.
   *
   * @param state The snapshot (four 32-bit words, not all zero, and the cached normal).
   * @returns A generator that continues exactly where the snapshot was taken.
   * @throws {RangeError} When the words are not unsigned 32-bit integers or are all zero.
   *
   * @example
   * ```ts
   * import { Random } from "./random.ts";
   * const rng = new Random(1);
   * const saved = rng.getState();
   * const x = rng.uniform();
   * console.log(Random.fromState(saved).uniform() === x); // true
   * ```
   */
  static fromState(state: RandomState): Random {
    const s = state?.s;
    if (!Array.isArray(s) || s.length !== 4) {
      throw new RangeError(`state.s must be an array of 4 words, got ${JSON.stringify(s)}`);
    }
    for (const w of s) {
      if (!Number.isInteger(w) || w < 0 || w >= TWO_32) {
        throw new RangeError(`state.s must hold unsigned 32-bit integers, got ${w}`);
      }
    }
    if ((s[0] | s[1] | s[2] | s[3]) === 0) {
      throw new RangeError("state.s must not be all zero (the generator would be stuck)");
    }
    const spare = state.spare ?? null;
    if (spare !== null && !Number.isFinite(spare)) {
      throw new RangeError(`state.spare must be a finite number or null, got ${spare}`);
    }
    const rng = new Random(0);
    rng.#setWords(s[0], s[1], s[2], s[3]);
    rng.#spare = spare;
    return rng;
  }

  /**
   * A snapshot of the full state, suitable for JSON and for {@linkcode Random.fromState}.
   *
   * @returns The state words and the cached normal deviate.
   *
   * @example
   * ```ts
   * import { Random } from "./random.ts";
   * console.log(JSON.stringify(new Random(3).getState()));
   * ```
   */
  getState(): RandomState {
    return { s: [this.#s0, this.#s1, this.#s2, this.#s3], spare: this.#spare };
  }

  /**
   * An independent copy: it draws the same numbers as this generator from now on.
   *
   * @returns The copy.
   *
   * @example
   * ```ts
   * import { Random } from "./random.ts";
   * const a = new Random(5);
   * const b = a.clone();
   * console.log(a.nextUint32() === b.nextUint32()); // true
   * ```
   */
  clone(): Random {
    return Random.fromState(this.getState());
  }

  /**
   * The next raw output: an unsigned 32-bit integer, uniform over [0, 2^32).
   *
   * @returns An integer in [0, 4294967295].
   *
   * @example
   * ```ts
   * import { Random } from "./random.ts";
   * console.log(new Random(0).nextUint32() >= 0); // true
   * ```
   */
  nextUint32(): number {
    const s0 = this.#s0, s1 = this.#s1;
    let s2 = this.#s2, s3 = this.#s3;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    this.#s1 = (s1 ^ s2) >>> 0;
    this.#s0 = (s0 ^ s3) >>> 0;
    this.#s2 = (s2 ^ t) >>> 0;
    this.#s3 = rotl(s3, 11) >>> 0;
    return result;
  }

  /**
   * A uniform double with 53 random bits in `[low, high)` (default `[0, 1)`).
   *
   * @param low Lower bound (inclusive), default 0.
   * @param high Upper bound (exclusive), default 1.
   * @returns The draw.
   * @throws {RangeError} When the bounds are not finite or `high < low`.
   *
   * @example
   * ```ts
   * import { Random } from "./random.ts";
   * const x = new Random(9).uniform(-1, 1); // in [-1, 1)
   * ```
   */
  uniform(low = 0, high = 1): number {
    if (!Number.isFinite(low) || !Number.isFinite(high) || high < low) {
      throw new RangeError(`uniform bounds must be finite with low ≤ high, got [${low}, ${high})`);
    }
    const a = this.nextUint32() >>> 5, b = this.nextUint32() >>> 6;
    const u = (a * 67108864 + b) / TWO_53;
    return low === 0 && high === 1 ? u : low + (high - low) * u;
  }

  /**
   * A uniform integer in `[low, high)`, without modulo bias (rejection sampling).
   *
   * @param low Smallest value (inclusive); a safe integer.
   * @param high One past the largest value; `high − low` must be in [1, 2^53].
   * @returns The draw.
   * @throws {RangeError} When the bounds are not safe integers or the range is empty.
   *
   * @example
   * ```ts
   * import { Random } from "./random.ts";
   * const die = new Random(1).integer(1, 7); // 1..6
   * ```
   */
  integer(low: number, high: number): number {
    if (!Number.isSafeInteger(low) || !Number.isSafeInteger(high)) {
      throw new RangeError(`integer bounds must be safe integers, got [${low}, ${high})`);
    }
    const range = high - low;
    if (range < 1 || range > TWO_53) {
      throw new RangeError(
        `integer range high − low must be in [1, 2^53], got [${low}, ${high}) of size ${range}`,
      );
    }
    if (range <= TWO_32) {
      // Accept only draws below the largest multiple of range: every residue equally likely.
      const limit = TWO_32 - (TWO_32 % range);
      for (;;) {
        const x = this.nextUint32();
        if (x < limit) return low + (x % range);
      }
    }
    const limit = TWO_53 - (TWO_53 % range);
    for (;;) {
      const x = (this.nextUint32() >>> 5) * 67108864 + (this.nextUint32() >>> 6);
      if (x < limit) return low + (x % range);
    }
  }

  /**
   * A Gaussian draw (Box–Muller; the second deviate of each pair is kept for the next call).
   *
   * @param mean Mean, default 0.
   * @param std Standard deviation ≥ 0, default 1.
   * @returns The draw.
   * @throws {RangeError} When the mean is not finite or `std` is negative or not finite.
   *
   * @example
   * ```ts
   * import { Random } from "./random.ts";
   * const w = new Random(2).normal(0, 0.01);
   * ```
   */
  normal(mean = 0, std = 1): number {
    if (!Number.isFinite(mean)) throw new RangeError(`mean must be finite, got ${mean}`);
    if (!Number.isFinite(std) || std < 0) {
      throw new RangeError(`std must be a finite number ≥ 0, got ${std}`);
    }
    let z: number;
    if (this.#spare !== null) {
      z = this.#spare;
      this.#spare = null;
    } else {
      const u1 = 1 - this.uniform(); // (0, 1]: log is finite
      const u2 = this.uniform();
      const r = Math.sqrt(-2 * Math.log(u1));
      const theta = 2 * Math.PI * u2;
      z = r * Math.cos(theta);
      this.#spare = r * Math.sin(theta);
    }
    return mean + std * z;
  }

  /**
   * Fills `out` with Gaussian draws: the same values, and the same state afterwards, as
   * `out.length` calls of {@linkcode Random.normal} with these arguments, at a fraction of
   * their cost (the generator state stays in locals for the whole array).
   *
   * @param out Where the draws go (written in index order).
   * @param mean Mean, default 0.
   * @param std Standard deviation ≥ 0, default 1.
   * @returns `out`.
   * @throws {RangeError} When the mean is not finite or `std` is negative or not finite.
   *
   * @example
   * ```ts
   * import { Random } from "./random.ts";
   * const a = new Random(5).fillNormal(new Float64Array(3), 0, 2);
   * const b = new Random(5);
   * a.every((v) => v === b.normal(0, 2)); // true
   * ```
   */
  fillNormal<A extends Float32Array | Float64Array>(out: A, mean = 0, std = 1): A {
    if (!Number.isFinite(mean)) throw new RangeError(`mean must be finite, got ${mean}`);
    if (!Number.isFinite(std) || std < 0) {
      throw new RangeError(`std must be a finite number ≥ 0, got ${std}`);
    }
    const n = out.length;
    let i = 0;
    if (n > 0 && this.#spare !== null) {
      out[i++] = mean + std * this.#spare;
      this.#spare = null;
    }
    let s0 = this.#s0, s1 = this.#s1, s2 = this.#s2, s3 = this.#s3;
    // One xoshiro128** step on the locals, as nextUint32 does on the fields.
    const next = (): number => {
      const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 = (s1 ^ s2) >>> 0;
      s0 = (s0 ^ s3) >>> 0;
      s2 = (s2 ^ t) >>> 0;
      s3 = rotl(s3, 11) >>> 0;
      return result;
    };
    while (i < n) {
      // Box–Muller exactly as normal(): u1 = 1 − uniform(), u2 = uniform().
      const a1 = next() >>> 5, b1 = next() >>> 6;
      const u1 = 1 - (a1 * 67108864 + b1) / TWO_53;
      const a2 = next() >>> 5, b2 = next() >>> 6;
      const u2 = (a2 * 67108864 + b2) / TWO_53;
      const r = Math.sqrt(-2 * Math.log(u1));
      const theta = 2 * Math.PI * u2;
      out[i++] = mean + std * (r * Math.cos(theta));
      const second = r * Math.sin(theta);
      if (i < n) out[i++] = mean + std * second;
      else this.#spare = second;
    }
    this.#s0 = s0;
    this.#s1 = s1;
    this.#s2 = s2;
    this.#s3 = s3;
    return out;
  }

  /**
   * True with probability `p`.
   *
   * @param p Probability in [0, 1].
   * @returns The draw.
   * @throws {RangeError} When `p` is outside [0, 1].
   *
   * @example
   * ```ts
   * import { Random } from "./random.ts";
   * const flip = new Random(4).bernoulli(0.5);
   * ```
   */
  bernoulli(p: number): boolean {
    if (!(p >= 0 && p <= 1)) throw new RangeError(`p must be in [0, 1], got ${p}`);
    return this.uniform() < p;
  }

  /**
   * Shuffles an array in place (Fisher–Yates); every permutation is equally likely.
   *
   * @param array A plain or typed array.
   * @returns The same array, shuffled.
   *
   * @example
   * ```ts
   * import { Random } from "./random.ts";
   * const order = new Random(3).shuffle([0, 1, 2, 3, 4]);
   * ```
   */
  shuffle<A extends Shufflable>(array: A): A {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.integer(0, i + 1);
      const t = array[i];
      array[i] = array[j];
      array[j] = t;
    }
    return array;
  }

  /**
   * A random permutation of `0 … n−1`.
   *
   * @param n Length, a non-negative integer.
   * @returns The permutation.
   * @throws {RangeError} When `n` is not a non-negative integer.
   *
   * @example
   * ```ts
   * import { Random } from "./random.ts";
   * const perm = new Random(8).permutation(10); // Int32Array of 0..9 in random order
   * ```
   */
  permutation(n: number): Int32Array {
    if (!Number.isInteger(n) || n < 0 || n > 0x7fffffff) {
      throw new RangeError(`n must be a non-negative 32-bit integer, got ${n}`);
    }
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = i;
    return this.shuffle(out);
  }
}
