/**
 * The im2col lowering of the CPU convolution, for everything the other algorithms do not take
 * (strided convolutions, outputs wider than the input). The columns of a chunk of samples are laid
 * side by side as `[cIn·kH·kW, chunk·outH·outW]`, one GEMM per chunk, and col2im for
 * backward-data. Rows for kernel offsets that differ by a stride are copies of each other shifted
 * by one output row or column, so only `strideH·strideW` of the `kH·kW` rows are gathered element
 * by element. Row lengths are padded where needed so that the copies inside the column matrix do
 * not hit 4K aliasing (see `copySafe`); workspaces only grow.
 *
 * @module
 */

import type { Conv2dShape } from "../device.ts";
import { CHUNK_FLOATS, copyRun, copySafe } from "./conv_copy.ts";
import type { Sgemm } from "./gemm.ts";
import { Workspace } from "./workspace.ts";

/** The column matrix (the B operand, or the GEMM output of backward-data). */
const colsWs = new Workspace(Float32Array);
/** The GEMM output, or the chunk's `dy` in the GEMM's layout. */
const gridWs = new Workspace(Float32Array);

/** Output rows `[i0, i1)` (or columns) whose input index `i·stride + k − pad` is inside `[0, n)`. */
function validRange(
  out: number,
  n: number,
  k: number,
  stride: number,
  pad: number,
): [number, number] {
  const i0 = Math.min(out, Math.max(0, Math.ceil((pad - k) / stride)));
  const i1 = Math.max(i0, Math.min(out, Math.floor((n - 1 + pad - k) / stride) + 1));
  return [i0, i1];
}

/**
 * im2col of samples `n0 .. n0 + nb` into rows `ld` long: `cols[(c·kH + r)·kW + s][b·ohw + i·outW + j]
 * = x[n0 + b, c, i·sH + r − pH, j·sW + s − pW]`, zero in the padding; columns past `nb·ohw` hold
 * finite filler.
 *
 * Row (r, s) equals row (r + sH, s) moved down one output row, and row (r, s + sW) moved right
 * one output column, so only the last `sH × sW` kernel offsets are gathered element by element;
 * the others are one bulk copy of a row already built, plus the first output row (or column)
 * gathered afresh.
 */
function im2col(
  x: Float32Array,
  n0: number,
  nb: number,
  ld: number,
  s: Conv2dShape,
  cols: Float32Array,
): void {
  const { cIn, h, w, kH, kW, strideH: sH, strideW: sW, padH: pH, padW: pW, outH, outW } = s;
  const hw = h * w, ohw = outH * outW, used = nb * ohw;
  for (let c = 0; c < cIn; c++) {
    for (let r = kH - 1; r >= 0; r--) {
      const [i0, i1] = validRange(outH, h, r, sH, pH);
      for (let q = kW - 1; q >= 0; q--) {
        const [j0, j1] = validRange(outW, w, q, sW, pW);
        const row = ((c * kH + r) * kW + q) * ld;
        if (i0 === i1 || j0 === j1) {
          cols.fill(0, row, row + ld);
          continue;
        }
        if (r + sH < kH) {
          const src = ((c * kH + r + sH) * kW + q) * ld;
          cols.copyWithin(row + outW, src, src + ld - outW);
          // Output row 0 of every sample: input row r − pH.
          const ih = r - pH;
          for (let b = 0; b < nb; b++) {
            const d = row + b * ohw;
            if (ih < 0 || ih >= h) {
              cols.fill(0, d, d + outW);
              continue;
            }
            const plane = ((n0 + b) * cIn + c) * hw + ih * w;
            for (let j = 0; j < j0; j++) cols[d + j] = 0;
            for (let j = j0; j < j1; j++) cols[d + j] = x[plane + j * sW + q - pW];
            for (let j = j1; j < outW; j++) cols[d + j] = 0;
          }
          continue;
        }
        if (q + sW < kW) {
          const src = ((c * kH + r) * kW + q + sW) * ld;
          cols.copyWithin(row + 1, src, src + ld - 1);
          // Output column 0 of every row: input column q − pW.
          const iw = q - pW;
          const inside = iw >= 0 && iw < w;
          for (let b = 0; b < nb; b++) {
            const d = row + b * ohw;
            const plane = ((n0 + b) * cIn + c) * hw + iw + (r - pH) * w;
            for (let i = 0; i < outH; i++) {
              cols[d + i * outW] = inside && i >= i0 && i < i1 ? x[plane + i * sH * w] : 0;
            }
          }
          continue;
        }
        const n = j1 - j0;
        cols.fill(0, row + used, row + ld);
        for (let b = 0; b < nb; b++) {
          const dst = row + b * ohw;
          const plane = ((n0 + b) * cIn + c) * hw;
          cols.fill(0, dst, dst + i0 * outW);
          cols.fill(0, dst + i1 * outW, dst + ohw);
          for (let i = i0; i < i1; i++) {
            const d = dst + i * outW;
            for (let j = 0; j < j0; j++) cols[d + j] = 0;
            for (let j = j1; j < outW; j++) cols[d + j] = 0;
            const src = plane + (i * sH + r - pH) * w + j0 * sW + q - pW;
            const dj = d + j0;
            if (sW === 1) {
              copyRun(x, src, cols, dj, n);
            } else {
              for (let j = 0; j < n; j++) cols[dj + j] = x[src + j * sW];
            }
          }
        }
      }
    }
  }
}

/** Adjoint of `im2col`: adds the columns of samples `n0 ..` back into `dx` (accumulating). */
function col2im(
  cols: Float32Array,
  n0: number,
  nb: number,
  ld: number,
  s: Conv2dShape,
  dx: Float32Array,
): void {
  const { cIn, h, w, kH, kW, strideH: sH, strideW: sW, padH: pH, padW: pW, outH, outW } = s;
  const hw = h * w, ohw = outH * outW;
  for (let c = 0; c < cIn; c++) {
    for (let r = 0; r < kH; r++) {
      const [i0, i1] = validRange(outH, h, r, sH, pH);
      for (let q = 0; q < kW; q++) {
        const [j0, j1] = validRange(outW, w, q, sW, pW);
        const n = j1 - j0;
        if (n === 0) continue;
        const row = ((c * kH + r) * kW + q) * ld;
        for (let b = 0; b < nb; b++) {
          const plane = ((n0 + b) * cIn + c) * hw;
          for (let i = i0; i < i1; i++) {
            const sj = row + b * ohw + i * outW + j0;
            const dj = plane + (i * sH + r - pH) * w + j0 * sW + q - pW;
            if (sW === 1) {
              for (let j = 0; j < n; j++) dx[dj + j] += cols[sj + j];
            } else {
              for (let j = 0; j < n; j++) dx[dj + j * sW] += cols[sj + j];
            }
          }
        }
      }
    }
  }
}

/** Copies `[rows, ld ⊇ nb·plane]` (the GEMM's layout) to samples `n0 ..` of an NCHW tensor. */
function scatterChunk(
  src: Float32Array,
  dst: Float32Array,
  n0: number,
  nb: number,
  ld: number,
  rows: number,
  plane: number,
): void {
  for (let b = 0; b < nb; b++) {
    const base = (n0 + b) * rows * plane;
    for (let r = 0; r < rows; r++) copyRun(src, r * ld + b * plane, dst, base + r * plane, plane);
  }
}

/** Inverse of `scatterChunk`, with zeros in the columns past `nb·plane`. */
function gatherChunk(
  src: Float32Array,
  dst: Float32Array,
  n0: number,
  nb: number,
  ld: number,
  rows: number,
  plane: number,
): void {
  for (let b = 0; b < nb; b++) {
    const base = (n0 + b) * rows * plane;
    for (let r = 0; r < rows; r++) copyRun(src, base + r * plane, dst, r * ld + b * plane, plane);
  }
  for (let r = 0; r < rows; r++) dst.fill(0, r * ld + nb * plane, (r + 1) * ld);
}

/** Samples per im2col chunk so that the column matrix stays near `CHUNK_FLOATS`. */
function im2colChunk(s: Conv2dShape): number {
  const per = s.cIn * s.kH * s.kW * s.outH * s.outW;
  return Math.max(1, Math.min(s.n, Math.floor(CHUNK_FLOATS / per)));
}

/** Row length of an im2col matrix of `nb` samples, padded so `im2col`'s row copies are `copySafe`. */
function im2colLd(s: Conv2dShape, nb: number): number {
  let ld = nb * s.outH * s.outW;
  while (
    (s.kW > s.strideW && !copySafe(1 - s.strideW * ld)) ||
    (s.kH > s.strideH && !copySafe(s.outW - s.strideH * s.kW * ld))
  ) ld++;
  return ld;
}

/**
 * Forward pass by im2col and one GEMM per chunk of samples.
 *
 * @param gemm The matrix product.
 * @param x Input `[n, cIn, h, w]`.
 * @param w Weights `[cOut, cIn, kH, kW]`.
 * @param y Output `[n, cOut, outH, outW]`, overwritten.
 * @param s The geometry.
 *
 * @example
 * ```ts
 * import { im2colForward } from "./conv_im2col.ts";
 * import { sgemmTypeScript } from "./gemm.ts";
 * const s = { n: 1, cIn: 1, h: 2, w: 2, cOut: 1, kH: 1, kW: 1, strideH: 2, strideW: 2,
 *   padH: 0, padW: 0, outH: 1, outW: 1 };
 * const y = new Float32Array(1);
 * im2colForward(sgemmTypeScript, new Float32Array([1, 2, 3, 4]), new Float32Array([3]), y, s);
 * // y = [3]
 * ```
 */
export function im2colForward(
  gemm: Sgemm,
  x: Float32Array,
  w: Float32Array,
  y: Float32Array,
  s: Conv2dShape,
): void {
  const ohw = s.outH * s.outW, kk = s.cIn * s.kH * s.kW;
  const nb = im2colChunk(s);
  for (let n0 = 0; n0 < s.n; n0 += nb) {
    const m = Math.min(nb, s.n - n0), ld = im2colLd(s, m);
    const cols = colsWs.take(kk * ld);
    im2col(x, n0, m, ld, s, cols);
    const out = gridWs.take(s.cOut * ld);
    gemm(false, false, s.cOut, ld, kk, 1, w, cols, 0, out);
    scatterChunk(out, y, n0, m, ld, s.cOut, ohw);
  }
}

/**
 * Backward-data pass: one GEMM per chunk of samples into the column matrix, then col2im.
 *
 * @param gemm The matrix product.
 * @param w Weights `[cOut, cIn, kH, kW]`.
 * @param dy Output gradient `[n, cOut, outH, outW]`.
 * @param dx Input gradient `[n, cIn, h, w]`, overwritten.
 * @param s The geometry.
 *
 * @example
 * ```ts
 * import { im2colBackwardData } from "./conv_im2col.ts";
 * import { sgemmTypeScript } from "./gemm.ts";
 * const s = { n: 1, cIn: 1, h: 2, w: 2, cOut: 1, kH: 1, kW: 1, strideH: 2, strideW: 2,
 *   padH: 0, padW: 0, outH: 1, outW: 1 };
 * const dx = new Float32Array(4);
 * im2colBackwardData(sgemmTypeScript, new Float32Array([3]), new Float32Array([1]), dx, s);
 * // dx = [3, 0, 0, 0]
 * ```
 */
export function im2colBackwardData(
  gemm: Sgemm,
  w: Float32Array,
  dy: Float32Array,
  dx: Float32Array,
  s: Conv2dShape,
): void {
  const ohw = s.outH * s.outW, kk = s.cIn * s.kH * s.kW;
  dx.fill(0, 0, s.n * s.cIn * s.h * s.w);
  const nb = im2colChunk(s);
  for (let n0 = 0; n0 < s.n; n0 += nb) {
    const m = Math.min(nb, s.n - n0), ld = im2colLd(s, m);
    const dyc = gridWs.take(s.cOut * ld);
    gatherChunk(dy, dyc, n0, m, ld, s.cOut, ohw);
    const cols = colsWs.take(kk * ld);
    gemm(true, false, kk, ld, s.cOut, 1, w, dyc, 0, cols);
    col2im(cols, n0, m, ld, s, dx);
  }
}

/**
 * Backward-filter pass: im2col and one accumulating GEMM per chunk of samples.
 *
 * @param gemm The matrix product.
 * @param x Input `[n, cIn, h, w]`.
 * @param dy Output gradient `[n, cOut, outH, outW]`.
 * @param dw Weight gradient `[cOut, cIn, kH, kW]`, overwritten.
 * @param s The geometry.
 *
 * @example
 * ```ts
 * import { im2colBackwardFilter } from "./conv_im2col.ts";
 * import { sgemmTypeScript } from "./gemm.ts";
 * const s = { n: 1, cIn: 1, h: 2, w: 2, cOut: 1, kH: 1, kW: 1, strideH: 2, strideW: 2,
 *   padH: 0, padW: 0, outH: 1, outW: 1 };
 * const dw = new Float32Array(1);
 * im2colBackwardFilter(sgemmTypeScript, new Float32Array([1, 2, 3, 4]), new Float32Array([2]),
 *   dw, s); // dw = [2]
 * ```
 */
export function im2colBackwardFilter(
  gemm: Sgemm,
  x: Float32Array,
  dy: Float32Array,
  dw: Float32Array,
  s: Conv2dShape,
): void {
  const ohw = s.outH * s.outW, kk = s.cIn * s.kH * s.kW;
  const nb = im2colChunk(s);
  for (let n0 = 0; n0 < s.n; n0 += nb) {
    const m = Math.min(nb, s.n - n0), ld = im2colLd(s, m);
    const cols = colsWs.take(kk * ld);
    im2col(x, n0, m, ld, s, cols);
    const dyc = gridWs.take(s.cOut * ld);
    gatherChunk(dy, dyc, n0, m, ld, s.cOut, ohw);
    gemm(false, true, s.cOut, kk, ld, 1, dyc, cols, n0 === 0 ? 0 : 1, dw);
  }
}
