/**
 * CPU kernels for the small element-wise operations: ReLU, add, global average pooling, the
 * option-A shortcut and the fused SGD update. Plain loops over typed arrays; ReLU and add run in
 * the native CPU kernels (`ffi/cpu_kernels.ts`) when those are available.
 *
 * @module
 */

import type { SgdParams } from "../device.ts";
import { cpuKernels } from "../../../ffi/cpu_kernels.ts";

/**
 * Checks that `length` is a count every array can hold: the native kernels index raw memory, so
 * a length past an array's end must be an error, not a read past it.
 */
function checkCount(op: string, length: number, arrays: Record<string, Float32Array>): void {
  if (!Number.isInteger(length) || length < 0) {
    throw new RangeError(`${op}: length must be a non-negative integer, got ${length}`);
  }
  for (const [name, a] of Object.entries(arrays)) {
    if (a.length < length) {
      throw new RangeError(
        `${op}: ${name} must hold at least length = ${length} elements, got ${a.length}`,
      );
    }
  }
}

/** Int32 view of a float array's bits (same memory). */
function bits(a: Float32Array): Int32Array {
  return new Int32Array(a.buffer, a.byteOffset, a.length);
}

/**
 * `y = max(x, 0)`, on the float's bit pattern: `v & ~(v >> 31)` keeps a value with a clear sign
 * bit and zeroes one with the sign bit set (negatives and −0). Branch-free, so random signs cost
 * no mispredictions (about ten times faster than a compare in V8 on such data).
 */
export function reluForward(x: Float32Array, y: Float32Array, length: number): void {
  checkCount("reluForward", length, { x, y });
  const native = cpuKernels();
  if (native !== null) return native.symbols.eql_relu_forward(x, y, BigInt(length));
  const xi = bits(x), yi = bits(y);
  for (let i = 0; i < length; i++) {
    const v = xi[i];
    yi[i] = v & ~(v >> 31);
  }
}

/**
 * `dx = dy · (y > 0)` for a forward output y ≥ 0: `(−bits(y)) >> 31` is all ones exactly when y
 * is positive, and masks dy's bits branch-free.
 */
export function reluBackward(
  y: Float32Array,
  dy: Float32Array,
  dx: Float32Array,
  length: number,
): void {
  checkCount("reluBackward", length, { y, dy, dx });
  const native = cpuKernels();
  if (native !== null) return native.symbols.eql_relu_backward(y, dy, dx, BigInt(length));
  const yi = bits(y), dyi = bits(dy), dxi = bits(dx);
  for (let i = 0; i < length; i++) dxi[i] = dyi[i] & ((-yi[i]) >> 31);
}

/** `out = a + b`. */
export function add(a: Float32Array, b: Float32Array, out: Float32Array, length: number): void {
  checkCount("add", length, { a, b, out });
  const native = cpuKernels();
  if (native !== null) return native.symbols.eql_add(a, b, out, BigInt(length));
  for (let i = 0; i < length; i++) out[i] = a[i] + b[i];
}

/** `y[n,c] = mean(x[n,c,:])`. */
export function globalAvgPoolForward(
  x: Float32Array,
  y: Float32Array,
  n: number,
  c: number,
  hw: number,
): void {
  for (let p = 0; p < n * c; p++) {
    let s = 0;
    const base = p * hw;
    for (let i = 0; i < hw; i++) s += x[base + i];
    y[p] = s / hw;
  }
}

/** `dx[n,c,:] = dy[n,c] / hw`. */
export function globalAvgPoolBackward(
  dy: Float32Array,
  dx: Float32Array,
  n: number,
  c: number,
  hw: number,
): void {
  for (let p = 0; p < n * c; p++) {
    const g = dy[p] / hw;
    dx.fill(g, p * hw, (p + 1) * hw);
  }
}

/** Option-A shortcut forward: stride-2 subsample, channels zero-padded on both sides. */
export function shortcutForward(
  x: Float32Array,
  y: Float32Array,
  n: number,
  cIn: number,
  h: number,
  w: number,
  cOut: number,
): void {
  const oh = Math.ceil(h / 2), ow = Math.ceil(w / 2);
  const pad = (cOut - cIn) >> 1;
  y.fill(0, 0, n * cOut * oh * ow);
  for (let b = 0; b < n; b++) {
    for (let ci = 0; ci < cIn; ci++) {
      const src = (b * cIn + ci) * h * w;
      const dst = (b * cOut + pad + ci) * oh * ow;
      for (let i = 0; i < oh; i++) {
        for (let j = 0; j < ow; j++) y[dst + i * ow + j] = x[src + 2 * i * w + 2 * j];
      }
    }
  }
}

/** Option-A shortcut backward: gathers the unpadded channels back to the even positions. */
export function shortcutBackward(
  dy: Float32Array,
  dx: Float32Array,
  n: number,
  cIn: number,
  h: number,
  w: number,
  cOut: number,
): void {
  const oh = Math.ceil(h / 2), ow = Math.ceil(w / 2);
  const pad = (cOut - cIn) >> 1;
  dx.fill(0, 0, n * cIn * h * w);
  for (let b = 0; b < n; b++) {
    for (let ci = 0; ci < cIn; ci++) {
      const dst = (b * cIn + ci) * h * w;
      const src = (b * cOut + pad + ci) * oh * ow;
      for (let i = 0; i < oh; i++) {
        for (let j = 0; j < ow; j++) dx[dst + 2 * i * w + 2 * j] = dy[src + i * ow + j];
      }
    }
  }
}

/** Fused SGD step with PyTorch semantics (see `Device.sgdUpdate`). */
export function sgdUpdate(
  p: Float32Array,
  grad: Float32Array,
  buf: Float32Array,
  length: number,
  { lr, momentum, weightDecay, nesterov }: SgdParams,
): void {
  for (let i = 0; i < length; i++) {
    let g = grad[i] + weightDecay * p[i];
    const m = momentum * buf[i] + g;
    buf[i] = m;
    g = nesterov ? g + momentum * m : m;
    p[i] -= lr * g;
  }
}
