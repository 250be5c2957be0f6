/**
 * What the stateful detection criteria (EQLv2, Seesaw) share: their checkpointable state as named
 * float32 arrays, its validation on load, and the error for logits of the wrong column layout.
 *
 * @module
 */

import { checkLogits, describe } from "./validate.ts";

/**
 * A criterion's state: named float32 arrays, ready to be stored as F32 safetensors tensors
 * (safetensors I/O in this project holds F32, I32 and I64, so float64 is not used).
 */
export type CriterionState = Record<string, Float32Array>;

/**
 * Checks a state against the entries it must have (name → length): no missing or extra entry,
 * each a Float32Array or Float64Array of that length holding finite values ≥ 0, `steps`-like
 * single counters integers. Returns float32 copies.
 *
 * @param fn The method, for messages.
 * @param state The state to load.
 * @param lengths Each entry's expected length.
 * @returns Float32 copies of the entries.
 * @throws {TypeError | RangeError} Naming the entry, what was expected and what was given.
 *
 * @example
 * ```ts
 * import { checkState } from "./criterion_state.ts";
 * checkState("load", { counts: new Float32Array([1, 2]) }, { counts: 2 }).counts; // [1, 2]
 * ```
 */
export function checkState<K extends string>(
  fn: string,
  state: unknown,
  lengths: Record<K, number>,
): Record<K, Float32Array> {
  if (state === null || typeof state !== "object") {
    throw new TypeError(`${fn}: state must be an object of named arrays, got ${describe(state)}`);
  }
  const record = state as Record<string, unknown>;
  const want = Object.keys(lengths) as K[];
  const extra = Object.keys(record).filter((k) => !(k in lengths));
  if (extra.length > 0) {
    throw new RangeError(
      `${fn}: state has unexpected entries ${extra.map((k) => `"${k}"`).join(", ")}; expected ${
        want.map((k) => `"${k}"`).join(", ")
      }`,
    );
  }
  const out = {} as Record<K, Float32Array>;
  for (const key of want) {
    const v = record[key];
    const n = lengths[key];
    if (!(v instanceof Float32Array || v instanceof Float64Array)) {
      throw new TypeError(
        `${fn}: state.${key} must be a Float32Array or Float64Array of length ${n}, got ${
          describe(v)
        }`,
      );
    }
    if (v.length !== n) {
      throw new RangeError(`${fn}: state.${key} must have length ${n}, got ${v.length}`);
    }
    const copy = Float32Array.from(v);
    for (let i = 0; i < n; i++) {
      if (!(Number.isFinite(copy[i]) && copy[i] >= 0)) {
        throw new RangeError(
          `${fn}: state.${key}[${i}] must be a finite number ≥ 0, got ${v[i]}`,
        );
      }
    }
    if (key === "steps" && !Number.isInteger(copy[0])) {
      throw new RangeError(`${fn}: state.steps must hold an integer, got ${v[0]}`);
    }
    out[key] = copy;
  }
  return out;
}

/**
 * Checks that logits have the column layout of a criterion over C classes plus `extra` columns
 * (1 for EQLv2's background, 2 for Seesaw's objectness pair), e.g. failing with
 * `"Eqlv2Criterion.compute: logits must have C+1 = 1231 columns (C = 1230 classes + background), got 1230"`.
 *
 * @param fn The method, for messages.
 * @param logits The logits.
 * @param numClasses C.
 * @param extra The columns after the C class columns.
 * @param what What those columns are, for messages.
 * @returns The row count N and the column count.
 * @throws {RangeError} When the column count is not C + extra.
 *
 * @example
 * ```ts
 * import { checkLayout } from "./criterion_state.ts";
 * import { tensor } from "@eql/eql";
 * using logits = tensor(new Float32Array(10), [2, 5]);
 * checkLayout("f", logits, 3, 2, "the objectness pair"); // { n: 2, c: 5 }
 * ```
 */
export function checkLayout(
  fn: string,
  logits: unknown,
  numClasses: number,
  extra: number,
  what: string,
): { n: number; c: number } {
  const { n, c } = checkLogits(fn, logits);
  if (c !== numClasses + extra) {
    throw new RangeError(
      `${fn}: logits must have C+${extra} = ${numClasses + extra} columns ` +
        `(C = ${numClasses} classes + ${what}), got ${c}`,
    );
  }
  return { n, c };
}

/**
 * Checks a class count C: an integer in [1, 2^30].
 *
 * @param fn The constructor, for messages.
 * @param v The value.
 * @returns C.
 * @throws {RangeError} Otherwise.
 *
 * @example
 * ```ts
 * import { checkNumClasses } from "./criterion_state.ts";
 * checkNumClasses("Eqlv2Criterion", 1230); // 1230
 * ```
 */
export function checkNumClasses(fn: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > 2 ** 30) {
    throw new RangeError(`${fn}: numClasses must be an integer in [1, 2^30], got ${describe(v)}`);
  }
  return v;
}
