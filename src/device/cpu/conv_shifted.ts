/**
 * The shifted-plane lowering of the CPU convolution, for stride 1, padding at most `k − 1` and an
 * output no wider than the input (the 3×3 pad-1 ResNet case).
 *
 * A chunk of samples is packed, per input channel, into one long zero-separated plane: `pH` zero
 * rows between samples, rows kept at the input width. For a kernel offset (r, s) the input every
 * output pixel needs is then the packed plane shifted by `r·w + s`, so a GEMM whose B operand is a
 * shifted view of the packed rows computes the convolution for the whole chunk at once. The
 * horizontal padding is handled by one copy of the plane per kernel column `s` with the columns
 * that would wrap into a neighbouring row zeroed. Building these `kW` copies (or all `kH·kW`
 * shifted rows for thin inputs, so that one GEMM with `K = cIn·kH·kW` runs) takes only bulk
 * copies, never a per-element loop; the GEMM computes a few padding columns that are thrown away.
 * Forward runs `kH` GEMMs (one per kernel row, the B operand shifted by `r·w`); backward-filter
 * instead stacks `kH` shifted copies of the small `dy` grid so that a single GEMM with
 * `M = kH·cOut` covers every kernel row. Backward-data of a "same" stride-1 convolution is the
 * forward convolution of `dy` with the flipped, transposed kernel, so it runs here too.
 *
 * The packing routines run natively when the backend has the CPU kernels. Row lengths of the
 * packed matrices are padded where needed so that the bulk copies between rows of one buffer do
 * not hit 4K aliasing (see `copySafe`). Workspaces only grow, so a training loop allocates
 * nothing per call; they are distinct, so that a GEMM never reads and writes the same memory.
 *
 * @module
 */

import type { CpuKernelLibrary } from "../../../ffi/cpu_kernels.ts";
import type { Conv2dShape } from "../device.ts";
import type { CpuBackend } from "./backend.ts";
import { CHUNK_FLOATS, copyRun, copySafe } from "./conv_copy.ts";
import { Workspace } from "./workspace.ts";

/** The packed input (the B operand). */
const packWs = new Workspace(Float32Array);
/** The GEMM output, or the packed `dy` of backward-filter. */
const gridWs = new Workspace(Float32Array);
/** The weights regrouped per kernel row. */
const rowWeightsWs = new Workspace(Float32Array);
/** The flipped weights of backward-data, or the filter gradient per kernel row. */
const auxWs = new Workspace(Float32Array);

/** Packed input rows shorter than this go the one-big-GEMM way (`K = cIn·kH·kW`). */
const THIN_ROWS = 32;

/**
 * Whether the shifted-plane lowering computes the forward pass (and backward-filter) of `s`.
 *
 * @param s The geometry.
 * @returns Whether it applies.
 *
 * @example
 * ```ts
 * import { planesApply } from "./conv_shifted.ts";
 * planesApply({ n: 1, cIn: 1, h: 4, w: 4, cOut: 1, kH: 3, kW: 3, strideH: 1, strideW: 1,
 *   padH: 1, padW: 1, outH: 4, outW: 4 }); // true
 * ```
 */
export function planesApply(s: Conv2dShape): boolean {
  return s.strideH === 1 && s.strideW === 1 && s.padH < s.kH && s.padW < s.kW && s.outW <= s.w;
}

/** The geometry of backward-data as a forward convolution of `dy` with the flipped kernel. */
function transposed(s: Conv2dShape): Conv2dShape {
  return {
    n: s.n,
    cIn: s.cOut,
    h: s.outH,
    w: s.outW,
    cOut: s.cIn,
    kH: s.kH,
    kW: s.kW,
    strideH: 1,
    strideW: 1,
    padH: s.kH - 1 - s.padH,
    padW: s.kW - 1 - s.padW,
    outH: s.h,
    outW: s.w,
  };
}

/** Layout of one chunk of packed planes. */
interface Planes {
  /** Samples in the chunk. */
  nb: number;
  /** Floats per sample block: `(h + pH) · w`, the input rows plus `pH` separating zero rows. */
  block: number;
  /** Length of every packed row, and the GEMM's column count. */
  len: number;
  /** Whether all `kH·kW` shifted rows are materialised (one GEMM) or only the `kW` copies. */
  full: boolean;
  /** Packed rows (`cIn·kW`, or `cIn·kH·kW` when full). */
  rows: number;
}

function planesLayout(s: Conv2dShape, nb: number, full: boolean): Planes {
  const block = (s.h + s.padH) * s.w;
  // The output pixel t reads packed position t + r·w + s; the last valid one stays inside. Extra
  // columns (computed and thrown away) keep the row-to-row copies of `packPlanes` and of the
  // backward-filter dY grid clear of 4K aliasing.
  let len = nb * block + (s.kH - 1) * s.w + s.kW - 1;
  while (!planesCopiesSafe(s, len, full)) len++;
  return { nb, block, len, full, rows: s.cIn * s.kW * (full ? s.kH : 1) };
}

/** Whether every same-buffer copy made with rows `len` long is `copySafe`. */
function planesCopiesSafe(s: Conv2dShape, len: number, full: boolean): boolean {
  for (let d = -s.padW; d < s.kW - s.padW; d++) {
    if (d !== 0 && !copySafe(d * (len - 1))) return false;
  }
  for (let r = 1; r < s.kH; r++) {
    if (full && !copySafe(r * (s.kW * len - s.w))) return false;
    if (!full && !copySafe(r * (s.cOut * len + s.w))) return false;
  }
  return true;
}

function planesChunk(s: Conv2dShape): Planes {
  const full = s.cIn * s.kW < THIN_ROWS;
  const one = planesLayout(s, 1, full);
  const per = one.rows * one.block;
  const nb = Math.max(1, Math.min(s.n, Math.floor(CHUNK_FLOATS / per)));
  return planesLayout(s, nb, full);
}

/** Padding of the packed buffer past its last row: the shifted views of the last rows read it. */
function planesTail(s: Conv2dShape): number {
  return (s.kH - 1) * s.w + s.kW;
}

/**
 * Packs samples `n0 .. n0 + g.nb` of `x` (`[n, cIn, h, w]`) into `out`. Row `(c, s)` (or
 * `(c, r, s)` when full) holds, at position u, the zero-padded input sample/row/column that the
 * output at grid position `u` needs for kernel offset (0, s) (or (r, s)); grid position
 * `t = b·block + i·w + j` is output pixel (i, j) of sample b.
 */
function packPlanes(
  native: CpuKernelLibrary | null,
  x: Float32Array,
  n0: number,
  s: Conv2dShape,
  g: Planes,
  out: Float32Array,
): void {
  const { h, w, kH, kW, padH, padW } = s;
  if (native !== null) {
    const big = BigInt;
    return native.symbols.eql_pack_planes(
      x,
      out,
      big(n0),
      big(g.nb),
      big(s.cIn),
      big(h),
      big(w),
      big(kH),
      big(kW),
      big(padH),
      big(padW),
      big(g.block),
      big(g.len),
      g.full ? 1 : 0,
      big(planesTail(s)),
    );
  }
  const hw = h * w, len = g.len, sampleStride = s.cIn * hw;
  const rStep = g.full ? kW : 0; // row distance between (c, r, s) and (c, r + 1, s)
  const cStep = g.full ? kH * kW : kW;
  const dataStart = padH * w; // where sample 0 starts in the row of the centre column s = padW
  for (let c = 0; c < s.cIn; c++) {
    // The centre-column row: plain zero-separated planes.
    const centre = (c * cStep + padW) * len;
    out.fill(0, centre, centre + len);
    for (let b = 0; b < g.nb; b++) {
      const src = (n0 + b) * sampleStride + c * hw;
      copyRun(x, src, out, centre + dataStart + b * g.block, hw);
    }
    // The other columns: the centre row shifted by d = s − padW, with the columns that would
    // wrap around a row edge zeroed.
    for (let q = 0; q < kW; q++) {
      const d = q - padW;
      if (d === 0) continue;
      const row = (c * cStep + q) * len;
      if (d > 0) {
        out.copyWithin(row, centre + d, centre + len);
        out.fill(0, row + len - d, row + len);
      } else {
        out.copyWithin(row - d, centre, centre + len + d);
        out.fill(0, row, row - d);
      }
      // Data column j sits at u = dataStart + b·block + i·w + j − d; zero j < d or j ≥ w + d
      // (positions before the row start, possible without vertical padding, were never copied).
      const j0 = d > 0 ? 0 : Math.max(0, w + d), j1 = d > 0 ? Math.min(d, w) : w;
      for (let b = 0; b < g.nb; b++) {
        let u = row + dataStart + b * g.block - d;
        for (let i = 0; i < h; i++, u += w) {
          for (let j = Math.max(j0, row - u); j < j1; j++) out[u + j] = 0;
        }
      }
    }
    // Full: row (c, r, s) is row (c, 0, s) shifted by r·w.
    if (g.full) {
      for (let r = 1; r < kH; r++) {
        for (let q = 0; q < kW; q++) {
          const src = (c * cStep + q) * len, dst = (c * cStep + r * rStep + q) * len;
          const shift = r * w;
          out.copyWithin(dst, src + shift, src + len);
          out.fill(0, dst + len - shift, dst + len);
        }
      }
    }
  }
  const end = g.rows * len;
  out.fill(0, end, end + planesTail(s));
}

/** The geometry arguments of the native grid copies, in their order. */
function gridArgs(
  n0: number,
  rows: number,
  s: Conv2dShape,
  g: Planes,
): [bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint] {
  const b = BigInt;
  return [b(n0), b(g.nb), b(rows), b(s.w), b(s.outH), b(s.outW), b(g.block), b(g.len)];
}

/**
 * Copies the valid pixels of a grid `[rows, len]` (grid position `b·block + i·w + j`) to
 * samples `n0 ..` of an NCHW tensor with `rows` channels of `outH × outW`.
 */
function unpackGrid(
  native: CpuKernelLibrary | null,
  grid: Float32Array,
  dst: Float32Array,
  n0: number,
  rows: number,
  s: Conv2dShape,
  g: Planes,
): void {
  const { w, outH, outW } = s;
  if (native !== null) {
    return native.symbols.eql_unpack_grid(grid, dst, ...gridArgs(n0, rows, s, g));
  }
  const ohw = outH * outW;
  for (let k = 0; k < rows; k++) {
    for (let b = 0; b < g.nb; b++) {
      const src = k * g.len + b * g.block;
      const to = ((n0 + b) * rows + k) * ohw;
      if (outW === w) {
        copyRun(grid, src, dst, to, ohw);
      } else {
        for (let i = 0; i < outH; i++) copyRun(grid, src + i * w, dst, to + i * outW, outW);
      }
    }
  }
}

/** Inverse of `unpackGrid`, with zeros in every grid position that is not an output pixel. */
function packGrid(
  native: CpuKernelLibrary | null,
  src: Float32Array,
  grid: Float32Array,
  n0: number,
  rows: number,
  s: Conv2dShape,
  g: Planes,
): void {
  const { w, outH, outW } = s;
  if (native !== null) {
    return native.symbols.eql_pack_grid(src, grid, ...gridArgs(n0, rows, s, g));
  }
  const ohw = outH * outW;
  grid.fill(0, 0, rows * g.len);
  for (let k = 0; k < rows; k++) {
    for (let b = 0; b < g.nb; b++) {
      const to = k * g.len + b * g.block;
      const from = ((n0 + b) * rows + k) * ohw;
      if (outW === w) {
        copyRun(src, from, grid, to, ohw);
      } else {
        for (let i = 0; i < outH; i++) copyRun(src, from + i * outW, grid, to + i * w, outW);
      }
    }
  }
}

/**
 * Weights `[cOut, cIn, kH, kW]` regrouped per kernel row: `out[r][k][c·kW + s] = w[k, c, r, s]`,
 * the A operand of the GEMM for kernel row r.
 */
function weightsByRow(w: Float32Array, s: Conv2dShape): Float32Array {
  const { cOut, cIn, kH, kW } = s;
  const out = rowWeightsWs.take(cOut * cIn * kH * kW);
  const per = cOut * cIn * kW;
  for (let k = 0; k < cOut; k++) {
    for (let c = 0; c < cIn; c++) {
      for (let r = 0; r < kH; r++) {
        const src = ((k * cIn + c) * kH + r) * kW, dst = r * per + (k * cIn + c) * kW;
        for (let q = 0; q < kW; q++) out[dst + q] = w[src + q];
      }
    }
  }
  return out;
}

/**
 * Forward pass by shifted planes (the geometry must pass {@linkcode planesApply}).
 *
 * @param backend The native packing routines (or none) and the GEMM.
 * @param x Input `[n, cIn, h, w]`.
 * @param w Weights `[cOut, cIn, kH, kW]`.
 * @param y Output `[n, cOut, outH, outW]`, overwritten.
 * @param s The geometry.
 *
 * @example
 * ```ts
 * import { planesForward } from "./conv_shifted.ts";
 * import { sgemmTypeScript } from "./gemm.ts";
 * const s = { n: 1, cIn: 1, h: 1, w: 2, cOut: 1, kH: 1, kW: 1, strideH: 1, strideW: 1,
 *   padH: 0, padW: 0, outH: 1, outW: 2 };
 * const y = new Float32Array(2);
 * planesForward({ native: null, gemm: sgemmTypeScript }, new Float32Array([1, 2]),
 *   new Float32Array([3]), y, s); // y = [3, 6]
 * ```
 */
export function planesForward(
  backend: CpuBackend,
  x: Float32Array,
  w: Float32Array,
  y: Float32Array,
  s: Conv2dShape,
): void {
  const { native, gemm } = backend;
  const g0 = planesChunk(s);
  const pack = packWs.take(g0.rows * g0.len + planesTail(s));
  const wr = g0.full ? w : weightsByRow(w, s);
  const kRow = s.cIn * s.kW;
  for (let n0 = 0; n0 < s.n; n0 += g0.nb) {
    const g = n0 + g0.nb <= s.n ? g0 : planesLayout(s, s.n - n0, g0.full);
    packPlanes(native, x, n0, s, g, pack);
    const len = g.len;
    const out = gridWs.take(s.cOut * len);
    if (g.full) {
      gemm(false, false, s.cOut, len, g.rows, 1, wr, pack, 0, out);
    } else {
      const per = s.cOut * kRow;
      for (let r = 0; r < s.kH; r++) {
        gemm(
          false,
          false,
          s.cOut,
          len,
          kRow,
          1,
          wr.subarray(r * per, (r + 1) * per),
          pack.subarray(r * s.w, r * s.w + kRow * len),
          r === 0 ? 0 : 1,
          out,
        );
      }
    }
    unpackGrid(native, out, y, n0, s.cOut, s, g);
  }
}

/**
 * Backward-filter pass by shifted planes (the geometry must pass {@linkcode planesApply}).
 *
 * @param backend The native packing routines (or none) and the GEMM.
 * @param x Input `[n, cIn, h, w]`.
 * @param dy Output gradient `[n, cOut, outH, outW]`.
 * @param dw Weight gradient `[cOut, cIn, kH, kW]`, overwritten.
 * @param s The geometry.
 *
 * @example
 * ```ts
 * import { planesBackwardFilter } from "./conv_shifted.ts";
 * import { sgemmTypeScript } from "./gemm.ts";
 * const s = { n: 1, cIn: 1, h: 1, w: 2, cOut: 1, kH: 1, kW: 1, strideH: 1, strideW: 1,
 *   padH: 0, padW: 0, outH: 1, outW: 2 };
 * const dw = new Float32Array(1);
 * planesBackwardFilter({ native: null, gemm: sgemmTypeScript }, new Float32Array([1, 2]),
 *   new Float32Array([1, 1]), dw, s); // dw = [3]
 * ```
 */
export function planesBackwardFilter(
  backend: CpuBackend,
  x: Float32Array,
  dy: Float32Array,
  dw: Float32Array,
  s: Conv2dShape,
): void {
  const { native, gemm } = backend;
  const g0 = planesChunk(s);
  const pack = packWs.take(g0.rows * g0.len + planesTail(s));
  const kRow = s.cIn * s.kW, per = s.cOut * kRow;
  // Not full: dW_r[k][c·kW + s] for kernel row r accumulates in row r·cOut + k of `acc` and is
  // scattered into dw at the end.
  const acc = g0.full ? dw : auxWs.take(s.kH * per);
  for (let n0 = 0; n0 < s.n; n0 += g0.nb) {
    const g = n0 + g0.nb <= s.n ? g0 : planesLayout(s, s.n - n0, g0.full);
    packPlanes(native, x, n0, s, g, pack);
    const len = g.len, block = s.cOut * len;
    const beta = n0 === 0 ? 0 : 1;
    if (g.full) {
      const dyg = gridWs.take(block);
      packGrid(native, dy, dyg, n0, s.cOut, s, g);
      gemm(false, true, s.cOut, g.rows, len, 1, dyg, pack.subarray(0, g.rows * len), beta, dw);
      continue;
    }
    // dW_r = dY · (packed rows shifted by r·w)ᵀ = (dY shifted by −r·w) · (packed rows)ᵀ: stacking
    // the kH shifted copies of the small dY grid makes it one GEMM with M = kH·cOut. Positions
    // shifted in from the previous row are padding (zero) in the grid.
    const dyg = gridWs.take(s.kH * block);
    packGrid(native, dy, dyg, n0, s.cOut, s, g);
    for (let r = 1; r < s.kH; r++) {
      const shift = r * s.w, to = r * block;
      dyg.copyWithin(to + shift, 0, block - shift);
      dyg.fill(0, to, to + shift);
    }
    gemm(false, true, s.kH * s.cOut, kRow, len, 1, dyg, pack.subarray(0, kRow * len), beta, acc);
  }
  if (!g0.full) {
    const { cOut, cIn, kH, kW } = s;
    for (let k = 0; k < cOut; k++) {
      for (let c = 0; c < cIn; c++) {
        for (let r = 0; r < kH; r++) {
          const dst = ((k * cIn + c) * kH + r) * kW, src = r * per + (k * cIn + c) * kW;
          for (let q = 0; q < kW; q++) dw[dst + q] = acc[src + q];
        }
      }
    }
  }
}

/** `wf[c, k, r, s] = w[k, c, kH − 1 − r, kW − 1 − s]`: the kernel of the transposed convolution. */
function flippedWeights(w: Float32Array, s: Conv2dShape): Float32Array {
  const khw = s.kH * s.kW;
  const wf = auxWs.take(s.cOut * s.cIn * khw);
  for (let k = 0; k < s.cOut; k++) {
    for (let c = 0; c < s.cIn; c++) {
      const src = (k * s.cIn + c) * khw, dst = (c * s.cOut + k) * khw;
      for (let t = 0; t < khw; t++) wf[dst + t] = w[src + khw - 1 - t];
    }
  }
  return wf;
}

/**
 * Whether backward-data of `s` runs by shifted planes: a stride-1 convolution whose transposed
 * geometry (the forward convolution of `dy` with the flipped kernel) passes
 * {@linkcode planesApply}.
 *
 * @param s The geometry of the forward convolution.
 * @returns Whether {@linkcode planesBackwardData} computes it.
 *
 * @example
 * ```ts
 * import { planesApplyToBackwardData } from "./conv_shifted.ts";
 * planesApplyToBackwardData({ n: 1, cIn: 1, h: 4, w: 4, cOut: 1, kH: 3, kW: 3, strideH: 1,
 *   strideW: 1, padH: 1, padW: 1, outH: 4, outW: 4 }); // true
 * ```
 */
export function planesApplyToBackwardData(s: Conv2dShape): boolean {
  if (s.strideH !== 1 || s.strideW !== 1) return false;
  const t = transposed(s);
  return t.padH >= 0 && t.padW >= 0 && planesApply(t);
}

/**
 * Backward-data pass by shifted planes, as the forward convolution of `dy` with the flipped,
 * transposed kernel (the geometry must pass {@linkcode planesApplyToBackwardData}).
 *
 * @param backend The native packing routines (or none) and the GEMM.
 * @param w Weights `[cOut, cIn, kH, kW]`.
 * @param dy Output gradient `[n, cOut, outH, outW]`.
 * @param dx Input gradient `[n, cIn, h, w]`, overwritten.
 * @param s The geometry of the forward convolution.
 *
 * @example
 * ```ts
 * import { planesBackwardData } from "./conv_shifted.ts";
 * import { sgemmTypeScript } from "./gemm.ts";
 * const s = { n: 1, cIn: 1, h: 1, w: 2, cOut: 1, kH: 1, kW: 1, strideH: 1, strideW: 1,
 *   padH: 0, padW: 0, outH: 1, outW: 2 };
 * const dx = new Float32Array(2);
 * planesBackwardData({ native: null, gemm: sgemmTypeScript }, new Float32Array([3]),
 *   new Float32Array([1, 2]), dx, s); // dx = [3, 6]
 * ```
 */
export function planesBackwardData(
  backend: CpuBackend,
  w: Float32Array,
  dy: Float32Array,
  dx: Float32Array,
  s: Conv2dShape,
): void {
  planesForward(backend, dy, flippedWeights(w, s), dx, transposed(s));
}
