/**
 * Weight initialisers drawing from a seeded {@linkcode Random}: Kaiming normal (fan-in, gain √2,
 * PyTorch's `kaiming_normal_` default), plain normal and symmetric uniform. Each returns a fresh
 * host array, filled in order, so a model's initial weights depend only on the seed and the
 * order in which its layers are built.
 *
 * @module
 */

import type { Random } from "../random.ts";

function checkCount(count: number): void {
  if (!Number.isInteger(count) || count < 0) {
    throw new RangeError(`count must be a non-negative integer, got ${count}`);
  }
}

/**
 * `count` draws from `N(0, 2 / fanIn)`: Kaiming (He) normal for layers followed by a ReLU.
 *
 * @param random The generator.
 * @param count Number of values.
 * @param fanIn Inputs per output unit (in·kH·kW for a convolution, in for a linear layer).
 * @returns The values.
 *
 * @example
 * ```ts
 * import { kaimingNormal } from "./init.ts";
 * import { Random } from "@eql/eql";
 * const w = kaimingNormal(new Random(0), 16 * 27, 27); // a 3→16 3×3 convolution
 * ```
 */
export function kaimingNormal(random: Random, count: number, fanIn: number): Float32Array {
  if (!Number.isInteger(fanIn) || fanIn < 1) {
    throw new RangeError(`fanIn must be an integer ≥ 1, got ${fanIn}`);
  }
  return normal(random, count, Math.sqrt(2 / fanIn));
}

/**
 * `count` draws from `N(0, std²)`.
 *
 * @param random The generator.
 * @param count Number of values.
 * @param std Standard deviation ≥ 0.
 * @returns The values.
 *
 * @example
 * ```ts
 * import { normal } from "./init.ts";
 * import { Random } from "@eql/eql";
 * const w = normal(new Random(0), 1024, 0.01);
 * ```
 */
export function normal(random: Random, count: number, std: number): Float32Array {
  checkCount(count);
  return random.fillNormal(new Float32Array(count), 0, std);
}

/**
 * `count` draws from `U(−bound, bound)`.
 *
 * @param random The generator.
 * @param count Number of values.
 * @param bound Half-width ≥ 0.
 * @returns The values.
 *
 * @example
 * ```ts
 * import { uniform } from "./init.ts";
 * import { Random } from "@eql/eql";
 * const b = uniform(new Random(0), 10, 1 / Math.sqrt(64)); // PyTorch's default linear bias
 * ```
 */
export function uniform(random: Random, count: number, bound: number): Float32Array {
  checkCount(count);
  if (!Number.isFinite(bound) || bound < 0) {
    throw new RangeError(`bound must be a finite number ≥ 0, got ${bound}`);
  }
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = random.uniform(-bound, bound);
  return out;
}
