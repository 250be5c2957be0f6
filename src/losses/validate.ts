/**
 * Argument checks shared by every loss: each throws a `TypeError` (wrong kind of value) or a
 * `RangeError` (right kind, wrong value) whose message starts with the loss's name and names the
 * argument, what was expected and what was given.
 *
 * @module
 */

import { Tensor } from "../tensor.ts";

/** Labels as the losses accept them: a host array or an i32 tensor of shape [N]. */
export type Labels = Int32Array | Tensor;

/** Labels after validation: the host copy, and the tensor when one was given. */
export interface CheckedLabels {
  /**
   * The labels on the host: the caller's array, or for a tensor a copy in a scratch array that
   * the next {@linkcode checkLabels} overwrites (so read it before checking other labels).
   */
  host: Int32Array;
  /** The tensor the labels came in, if any. */
  tensor?: Tensor;
}

/** Short description of any value for error messages. */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "number") return String(value);
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value !== "object") return typeof value;
  if (value instanceof Tensor) {
    return `a ${value.dtype} tensor of shape [${value.shape.join(", ")}]`;
  }
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (ArrayBuffer.isView(value)) {
    const name = value.constructor.name;
    return `${name === "Int32Array" ? "an" : "a"} ${name} of length ${
      (value as unknown as ArrayLike<number>).length
    }`;
  }
  return Object.prototype.toString.call(value);
}

/**
 * Checks that `logits` is a live rank-2 f32 tensor with at least one row and one column.
 *
 * @returns The rows N and columns C.
 */
export function checkLogits(fn: string, logits: unknown): { n: number; c: number } {
  if (!(logits instanceof Tensor)) {
    throw new TypeError(`${fn}: logits must be a Tensor, got ${describe(logits)}`);
  }
  if (logits.disposed) {
    throw new TypeError(`${fn}: logits must be a live tensor, got a disposed one`);
  }
  if (logits.dtype !== "f32") {
    throw new TypeError(`${fn}: logits must be an f32 tensor, got dtype ${logits.dtype}`);
  }
  if (logits.shape.length !== 2) {
    throw new RangeError(
      `${fn}: logits must be a rank-2 tensor [N, C], got shape [${
        logits.shape.join(", ")
      }] (rank ${logits.shape.length})`,
    );
  }
  const [n, c] = logits.shape;
  if (n < 1 || c < 1) {
    throw new RangeError(
      `${fn}: logits must have at least one row and one column, got shape [${n}, ${c}]`,
    );
  }
  return { n, c };
}

/** The host copy of the last labels tensor checked (see {@linkcode CheckedLabels}). */
let labelScratch = new Int32Array(0);

/**
 * Checks labels: an Int32Array of length N or an i32 tensor of shape [N], every value an integer
 * in `0..max`.
 *
 * @param fn Loss name for messages.
 * @param labels The argument.
 * @param n Rows of the logits.
 * @param max Largest allowed label.
 * @param background Whether `max` is the background label (for the message).
 * @returns The host copy and the tensor if one was given.
 */
export function checkLabels(
  fn: string,
  labels: unknown,
  n: number,
  max: number,
  background: boolean,
): CheckedLabels {
  let host: Int32Array;
  let tensor: Tensor | undefined;
  if (labels instanceof Int32Array) {
    host = labels;
  } else if (labels instanceof Tensor) {
    if (labels.disposed) {
      throw new TypeError(`${fn}: labels must be a live tensor, got a disposed one`);
    }
    if (labels.dtype !== "i32") {
      throw new TypeError(`${fn}: labels must be an i32 tensor, got dtype ${labels.dtype}`);
    }
    if (labels.shape.length !== 1) {
      throw new RangeError(
        `${fn}: labels must be a rank-1 tensor of shape [${n}], got shape [${
          labels.shape.join(", ")
        }]`,
      );
    }
    tensor = labels;
    // Into a kept array: a new typed array costs microseconds in Deno, a loss call tens of them.
    const length = labels.buffer.length;
    if (labelScratch.length !== length) labelScratch = new Int32Array(length);
    host = labelScratch;
    labels.device.download(labels.buffer, host);
  } else {
    throw new TypeError(
      `${fn}: labels must be an Int32Array or an i32 Tensor, got ${describe(labels)}`,
    );
  }
  if (host.length !== n) {
    throw new RangeError(
      `${fn}: labels must have one entry per logits row (${n}), got ${host.length}`,
    );
  }
  for (let i = 0; i < n; i++) {
    const v = host[i];
    if (v < 0 || v > max) {
      const range = background ? `0..${max} (${max} = background)` : `0..${max}`;
      throw new RangeError(`${fn}: labels[${i}] must be in ${range}, got ${v}`);
    }
  }
  return { host, tensor };
}

function checkArrayLike(fn: string, name: string, value: unknown, c: number): ArrayLike<number> {
  const ok = Array.isArray(value) ||
    (ArrayBuffer.isView(value) && !(value instanceof DataView) &&
      typeof (value as unknown as ArrayLike<unknown>)[0] !== "bigint");
  if (!ok) {
    throw new TypeError(
      `${fn}: ${name} must be an array or typed array of ${c} numbers, got ${describe(value)}`,
    );
  }
  const a = value as ArrayLike<number>;
  if (a.length !== c) {
    throw new RangeError(
      `${fn}: ${name} must have one entry per class (${c}), got ${a.length} entries`,
    );
  }
  return a;
}

/**
 * Checks a per-class vector of length C whose values lie in `[min, max]` (finite), handing each
 * value to `each` as it is checked (so each value is read once).
 */
export function checkClassValues(
  fn: string,
  name: string,
  value: unknown,
  c: number,
  min: number,
  max: number,
  minExclusive: boolean,
  each: (j: number, v: number) => void,
): void {
  const a = checkArrayLike(fn, name, value, c);
  for (let j = 0; j < c; j++) {
    const v = a[j];
    const low = minExclusive ? v > min : v >= min;
    if (typeof v !== "number" || !Number.isFinite(v) || !low || v > max) {
      const lo = minExclusive ? `(${min}` : `[${min}`;
      const hi = max === Infinity ? "∞)" : `${max}]`;
      throw new RangeError(
        `${fn}: ${name}[${j}] must be a finite number in ${lo}, ${hi}, got ${describe(v)}`,
      );
    }
    each(j, v);
  }
}

/**
 * Checks a per-class vector of length C whose values lie in `[min, max]` (finite).
 *
 * @returns The values as a new Float64Array.
 */
export function checkClassVector(
  fn: string,
  name: string,
  value: unknown,
  c: number,
  min: number,
  max: number,
  minExclusive = false,
): Float64Array {
  const out = new Float64Array(c);
  checkClassValues(fn, name, value, c, min, max, minExclusive, (j, v) => out[j] = v);
  return out;
}

/** Checks per-class frequencies: length C, finite values in [0, 1]. */
export function checkFrequencies(fn: string, value: unknown, c: number): Float64Array {
  const out = new Float64Array(c);
  checkFrequencyValues(fn, value, c, (j, f) => out[j] = f);
  return out;
}

/** Checks per-class frequencies as {@linkcode checkFrequencies}, handing each one to `each`. */
export function checkFrequencyValues(
  fn: string,
  value: unknown,
  c: number,
  each: (j: number, f: number) => void,
): void {
  if (value === undefined) {
    throw new TypeError(`${fn}: frequencies must be given (one value in [0, 1] per class)`);
  }
  checkClassValues(fn, "frequencies", value, c, 0, 1, false, each);
}

/** Checks per-class weights: length C, finite values ≥ 0. Returns them as f32. */
export function checkClassWeight(fn: string, value: unknown, c: number): Float32Array {
  const wide = checkClassVector(fn, "classWeight", value, c, 0, Infinity);
  const w = Float32Array.from(wide);
  for (let j = 0; j < c; j++) {
    if (!Number.isFinite(w[j])) {
      throw new RangeError(`${fn}: classWeight[${j}] must fit in float32, got ${wide[j]}`);
    }
  }
  return w;
}

/** Checks a finite number ≥ 0 (`name` is the option's name). */
export function checkNonNegative(fn: string, name: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new RangeError(`${fn}: ${name} must be a finite number ≥ 0, got ${describe(value)}`);
  }
  return value;
}

/** Checks a finite number > 0. */
export function checkPositive(fn: string, name: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new RangeError(`${fn}: ${name} must be a finite number > 0, got ${describe(value)}`);
  }
  return value;
}

/** Checks a number in [0, 1]. */
export function checkUnit(fn: string, name: string, value: unknown): number {
  if (typeof value !== "number" || !(value >= 0 && value <= 1)) {
    throw new RangeError(`${fn}: ${name} must be a number in [0, 1], got ${describe(value)}`);
  }
  return value;
}

/** Checks an unsigned 32-bit integer. */
export function checkU32(fn: string, name: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError(
      `${fn}: ${name} must be an integer in 0..4294967295, got ${describe(value)}`,
    );
  }
  return value;
}

/** Checks a boolean option. */
export function checkBoolean(fn: string, name: string, value: unknown): boolean {
  if (typeof value !== "boolean") {
    throw new TypeError(`${fn}: ${name} must be a boolean, got ${describe(value)}`);
  }
  return value;
}

/** Checks that options, when given, are an object. */
export function checkOptions<T extends object>(fn: string, options: unknown): Partial<T> {
  if (options === undefined) return {};
  if (options === null || typeof options !== "object") {
    throw new TypeError(`${fn}: options must be an object, got ${describe(options)}`);
  }
  return options as Partial<T>;
}
