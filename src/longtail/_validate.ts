// Argument checks shared by the long-tail utilities. Messages name the argument, what was
// expected and what was received.

/** Throws unless `value` is an integer in [min, max]. */
export function checkInteger(name: string, value: number, min = 0, max = 2 ** 31 - 1): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === 2 ** 31 - 1 ? `≥ ${min}` : `in [${min}, ${max}]`;
    throw new RangeError(`${name} must be an integer ${range}, got ${value}`);
  }
}

/** Throws unless `value` is a finite number ≥ min (or > min when `strict`). */
export function checkNumber(name: string, value: number, min: number, strict = false): void {
  if (
    typeof value !== "number" || !Number.isFinite(value) || value < min || (strict && value === min)
  ) {
    throw new RangeError(
      `${name} must be a finite number ${strict ? ">" : "≥"} ${min}, got ${value}`,
    );
  }
}

/** Throws unless `arr` is array-like. */
export function checkArrayLike(name: string, arr: unknown): asserts arr is ArrayLike<unknown> {
  if (
    arr === null || typeof arr !== "object" ||
    typeof (arr as ArrayLike<unknown>).length !== "number"
  ) {
    throw new TypeError(
      `${name} must be an array or typed array, got ${arr === null ? "null" : typeof arr}`,
    );
  }
}

/** Throws unless every entry is a non-negative integer; returns the sum. */
export function checkCounts(name: string, counts: ArrayLike<number>): number {
  checkArrayLike(name, counts);
  let total = 0;
  for (let i = 0; i < counts.length; i++) {
    const v = counts[i];
    if (!Number.isInteger(v) || v < 0) {
      throw new RangeError(`${name}[${i}] must be a non-negative integer, got ${v}`);
    }
    total += v;
  }
  return total;
}

/** Throws unless every entry is a finite number in [0, 1]; returns the sum. */
export function checkFrequencies(name: string, freqs: ArrayLike<number>): number {
  checkArrayLike(name, freqs);
  let total = 0;
  for (let i = 0; i < freqs.length; i++) {
    const v = freqs[i];
    if (typeof v !== "number" || !(v >= 0 && v <= 1)) {
      throw new RangeError(`${name}[${i}] must be a frequency in [0, 1], got ${v}`);
    }
    total += v;
  }
  return total;
}

/** Throws unless `label` is an integer class index in [0, numClasses). */
export function checkLabel(name: string, index: number, label: number, numClasses: number): void {
  if (!Number.isInteger(label) || label < 0 || label >= numClasses) {
    throw new RangeError(
      `${name}[${index}] must be a class index in [0, ${numClasses - 1}], got ${label}`,
    );
  }
}
