/**
 * A plain reference convolution: the three passes of a 2-D cross-correlation (NCHW input, KCRS
 * weights, stride, zero padding) written as naive float64 loops over every (output, input,
 * weight) term. Tests check the CPU and CUDA kernels against it; nothing on a hot path uses it.
 *
 * The inputs are float32 (what the kernels see) or float64 (for finite differences). Each pass can
 * also return, per output element, the sum of the absolute values of its terms
 * (`Σ|term|`), which bounds the rounding error of a float32 accumulation of the same terms.
 *
 * @module
 */

import { type Conv2dShape, convOutputSize } from "./device.ts";

/**
 * Visits every term of the convolution once, with the padded positions skipped: `yi`, `xi` and
 * `wi` index y (or dy), x (or dx) and w (or dw).
 */
function eachTerm(s: Conv2dShape, visit: (yi: number, xi: number, wi: number) => void): void {
  const outH = convOutputSize(s.h, s.kH, s.strideH, s.padH);
  const outW = convOutputSize(s.w, s.kW, s.strideW, s.padW);
  if (s.outH !== outH || s.outW !== outW) {
    throw new RangeError(
      `reference conv2d: shape.outH × shape.outW must be ${outH} × ${outW} for this geometry, ` +
        `got ${s.outH} × ${s.outW}`,
    );
  }
  for (let b = 0; b < s.n; b++) {
    for (let k = 0; k < s.cOut; k++) {
      for (let i = 0; i < outH; i++) {
        for (let j = 0; j < outW; j++) {
          const yi = ((b * s.cOut + k) * outH + i) * outW + j;
          for (let c = 0; c < s.cIn; c++) {
            for (let r = 0; r < s.kH; r++) {
              const ih = i * s.strideH + r - s.padH;
              if (ih < 0 || ih >= s.h) continue;
              for (let q = 0; q < s.kW; q++) {
                const iw = j * s.strideW + q - s.padW;
                if (iw < 0 || iw >= s.w) continue;
                visit(
                  yi,
                  ((b * s.cIn + c) * s.h + ih) * s.w + iw,
                  ((k * s.cIn + c) * s.kH + r) * s.kW + q,
                );
              }
            }
          }
        }
      }
    }
  }
}

function checkMagnitude(magnitude: Float64Array | undefined, length: number): void {
  if (magnitude !== undefined && magnitude.length !== length) {
    throw new RangeError(
      `reference conv2d: magnitude must hold ${length} elements, got ${magnitude.length}`,
    );
  }
}

/**
 * Forward pass in float64: `y[n, cOut, outH, outW] = conv(x[n, cIn, h, w], w[cOut, cIn, kH, kW])`.
 *
 * @param x Input, `n·cIn·h·w` values.
 * @param w Weights, `cOut·cIn·kH·kW` values.
 * @param shape The geometry (`outH`/`outW` must match {@linkcode convOutputSize}).
 * @param magnitude When given (length `n·cOut·outH·outW`), receives `Σ|term|` per output element.
 * @returns y, `n·cOut·outH·outW` values.
 *
 * @example
 * ```ts
 * import { referenceConv2dForward } from "./conv_reference.ts";
 * const s = { n: 1, cIn: 1, h: 2, w: 2, cOut: 1, kH: 1, kW: 1, strideH: 1, strideW: 1,
 *   padH: 0, padW: 0, outH: 2, outW: 2 };
 * referenceConv2dForward(new Float32Array([1, 2, 3, 4]), new Float32Array([2]), s); // [2, 4, 6, 8]
 * ```
 */
export function referenceConv2dForward(
  x: Float32Array | Float64Array,
  w: Float32Array | Float64Array,
  shape: Conv2dShape,
  magnitude?: Float64Array,
): Float64Array {
  const y = new Float64Array(shape.n * shape.cOut * shape.outH * shape.outW);
  checkMagnitude(magnitude, y.length);
  eachTerm(shape, (yi, xi, wi) => {
    const t = x[xi] * w[wi];
    y[yi] += t;
    if (magnitude) magnitude[yi] += Math.abs(t);
  });
  return y;
}

/**
 * Backward pass to the input in float64: `dx = ∂L/∂x` from the weights and `dy`.
 *
 * @param w Weights, `cOut·cIn·kH·kW` values.
 * @param dy Output gradient, `n·cOut·outH·outW` values.
 * @param shape The geometry.
 * @param magnitude When given (length `n·cIn·h·w`), receives `Σ|term|` per element of dx.
 * @returns dx, `n·cIn·h·w` values.
 *
 * @example
 * ```ts
 * import { referenceConv2dBackwardData } from "./conv_reference.ts";
 * const s = { n: 1, cIn: 1, h: 2, w: 2, cOut: 1, kH: 1, kW: 1, strideH: 1, strideW: 1,
 *   padH: 0, padW: 0, outH: 2, outW: 2 };
 * referenceConv2dBackwardData(new Float32Array([2]), new Float32Array([1, 1, 1, 1]), s); // [2, 2, 2, 2]
 * ```
 */
export function referenceConv2dBackwardData(
  w: Float32Array | Float64Array,
  dy: Float32Array | Float64Array,
  shape: Conv2dShape,
  magnitude?: Float64Array,
): Float64Array {
  const dx = new Float64Array(shape.n * shape.cIn * shape.h * shape.w);
  checkMagnitude(magnitude, dx.length);
  eachTerm(shape, (yi, xi, wi) => {
    const t = dy[yi] * w[wi];
    dx[xi] += t;
    if (magnitude) magnitude[xi] += Math.abs(t);
  });
  return dx;
}

/**
 * Backward pass to the weights in float64: `dw = ∂L/∂w` from the input and `dy`.
 *
 * @param x Input, `n·cIn·h·w` values.
 * @param dy Output gradient, `n·cOut·outH·outW` values.
 * @param shape The geometry.
 * @param magnitude When given (length `cOut·cIn·kH·kW`), receives `Σ|term|` per element of dw.
 * @returns dw, `cOut·cIn·kH·kW` values.
 *
 * @example
 * ```ts
 * import { referenceConv2dBackwardFilter } from "./conv_reference.ts";
 * const s = { n: 1, cIn: 1, h: 2, w: 2, cOut: 1, kH: 1, kW: 1, strideH: 1, strideW: 1,
 *   padH: 0, padW: 0, outH: 2, outW: 2 };
 * referenceConv2dBackwardFilter(new Float32Array([1, 2, 3, 4]), new Float32Array([1, 1, 1, 1]), s); // [10]
 * ```
 */
export function referenceConv2dBackwardFilter(
  x: Float32Array | Float64Array,
  dy: Float32Array | Float64Array,
  shape: Conv2dShape,
  magnitude?: Float64Array,
): Float64Array {
  const dw = new Float64Array(shape.cOut * shape.cIn * shape.kH * shape.kW);
  checkMagnitude(magnitude, dw.length);
  eachTerm(shape, (yi, xi, wi) => {
    const t = dy[yi] * x[xi];
    dw[wi] += t;
    if (magnitude) magnitude[wi] += Math.abs(t);
  });
  return dw;
}
