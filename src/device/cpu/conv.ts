/**
 * CPU 2-D convolution (cross-correlation, NCHW input, KCRS weights, no bias) on top of SGEMM.
 *
 * Two lowerings, chosen by geometry:
 *
 * - **Shifted planes** (stride 1, padding at most `k − 1`, output no wider than the input; the
 *   3×3 pad-1 ResNet case). A chunk of samples is packed, per input channel, into one long zero-
 *   separated plane: `pH` zero rows between samples, rows kept at the input width. For a kernel
 *   offset (r, s) the input every output pixel needs is then the packed plane shifted by
 *   `r·w + s`, so a GEMM whose B operand is a shifted view of the packed rows computes the
 *   convolution for the whole chunk at once. The horizontal padding is handled by one copy of the
 *   plane per kernel column `s` with the columns that would wrap into a neighbouring row zeroed.
 *   Building these `kW` copies (or all `kH·kW` shifted rows for thin inputs, so that one GEMM with
 *   `K = cIn·kH·kW` runs) takes only bulk copies, never a per-element loop; the GEMM computes a
 *   few padding columns that are thrown away. Forward runs `kH` GEMMs (one per kernel row, the
 *   B operand shifted by `r·w`); backward-filter instead stacks `kH` shifted copies of the small
 *   `dy` grid so that a single GEMM with `M = kH·cOut` covers every kernel row.
 * - **im2col** for everything else (strided convolutions): the columns of a chunk are laid side by
 *   side as `[cIn·kH·kW, chunk·outH·outW]`, one GEMM per chunk, and col2im for backward-data.
 *   Rows for kernel offsets that differ by a stride are copies of each other shifted by one output
 *   row or column, so only `strideH·strideW` of the `kH·kW` rows are gathered element by element.
 *
 * When the native CPU kernels are available, the 3×3 pad-1 convolutions of stride 1 or 2 with
 * suitable sizes (see `directApplies`; every one of the CIFAR ResNets) skip both lowerings:
 * `ffi/cpu_kernels/conv_direct.c` computes them directly from a zero-bordered copy of each sample,
 * with no packed matrices at all. The packing routines of the lowerings also run natively then.
 *
 * Backward-data of a "same" stride-1 convolution is the forward convolution of `dy` with the
 * flipped, transposed kernel, so it takes the shifted-plane path too. A 1×1 stride-1 unpadded
 * convolution is a plain per-sample GEMM.
 *
 * Workspaces are module-level and only grow, so a training loop allocates nothing per call. Row
 * lengths of the packed matrices are padded where needed so that the bulk copies between rows of
 * one buffer do not hit 4K aliasing (see `copySafe`).
 *
 * @module
 */

import type { Conv2dShape } from "../device.ts";
import { sgemm } from "./gemm.ts";
import { cpuKernels } from "../../../ffi/cpu_kernels.ts";

export type { Conv2dShape } from "../device.ts";

/** Target size (floats) of one chunk's packed matrix: large GEMMs that stay cache-resident. */
const CHUNK_FLOATS = 1 << 19;

/** Below this many floats a plain loop beats creating a subarray for `set`. */
const SET_MIN = 128;

/** Packed input rows shorter than this go the one-big-GEMM way (`K = cIn·kH·kW`). */
const THIN_ROWS = 32;

// Grow-only workspaces: `packWs` the packed input (the B operand), `gridWs` the GEMM output or the
// packed `dy`, `rowWeightsWs` weights regrouped per kernel row, `auxWs` the flipped weights of
// backward-data or the filter gradient per kernel row. Distinct buffers, so that a GEMM never
// reads and writes the same memory.
let packWs = new Float32Array(0);
let gridWs = new Float32Array(0);
let rowWeightsWs = new Float32Array(0);
let auxWs = new Float32Array(0);

function packBuffer(size: number): Float32Array {
  if (packWs.length < size) packWs = new Float32Array(size);
  return packWs.subarray(0, size);
}

function gridBuffer(size: number): Float32Array {
  if (gridWs.length < size) gridWs = new Float32Array(size);
  return gridWs.subarray(0, size);
}

function rowWeightsBuffer(size: number): Float32Array {
  if (rowWeightsWs.length < size) rowWeightsWs = new Float32Array(size);
  return rowWeightsWs.subarray(0, size);
}

function auxBuffer(size: number): Float32Array {
  if (auxWs.length < size) auxWs = new Float32Array(size);
  return auxWs.subarray(0, size);
}

/** Copies `len` floats between different arrays; `set` for long runs, a loop for short ones. */
function copyRun(
  src: Float32Array,
  srcOff: number,
  dst: Float32Array,
  dstOff: number,
  len: number,
): void {
  if (len >= SET_MIN) {
    dst.set(src.subarray(srcOff, srcOff + len), dstOff);
  } else {
    for (let i = 0; i < len; i++) dst[dstOff + i] = src[srcOff + i];
  }
}

/**
 * Whether a bulk copy inside one buffer, with the destination `delta` floats after the source,
 * runs at memory speed. When the destination lies 1–8 floats past the source modulo 4 KiB, every
 * load waits on the store just issued to an address with the same low bits (4K aliasing), and
 * memmove slows down more than tenfold; packed row lengths are padded to avoid that.
 */
function copySafe(delta: number): boolean {
  const m = ((delta % 1024) + 1024) % 1024;
  return m === 0 || m > 8;
}

// ── validation ────────────────────────────────────────────────────────────────────────────────

function checkDim(name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) {
    throw new RangeError(`shape.${name} must be an integer >= ${min}, got ${v}`);
  }
}

/** Checks the geometry is self-consistent (the kernels index by it). */
function checkShape(s: Conv2dShape): void {
  checkDim("n", s.n, 1);
  checkDim("cIn", s.cIn, 1);
  checkDim("h", s.h, 1);
  checkDim("w", s.w, 1);
  checkDim("cOut", s.cOut, 1);
  checkDim("kH", s.kH, 1);
  checkDim("kW", s.kW, 1);
  checkDim("strideH", s.strideH, 1);
  checkDim("strideW", s.strideW, 1);
  checkDim("padH", s.padH, 0);
  checkDim("padW", s.padW, 0);
  const oh = Math.floor((s.h + 2 * s.padH - s.kH) / s.strideH) + 1;
  const ow = Math.floor((s.w + 2 * s.padW - s.kW) / s.strideW) + 1;
  if (oh < 1 || s.outH !== oh) {
    throw new RangeError(
      `shape.outH must be floor((h + 2·padH − kH) / strideH) + 1 = ${oh} (>= 1), got ${s.outH}`,
    );
  }
  if (ow < 1 || s.outW !== ow) {
    throw new RangeError(
      `shape.outW must be floor((w + 2·padW − kW) / strideW) + 1 = ${ow} (>= 1), got ${s.outW}`,
    );
  }
}

function checkLength(
  op: string,
  name: string,
  buf: Float32Array,
  expected: number,
  dims: string,
): void {
  if (buf.length !== expected) {
    throw new RangeError(
      `${op}: ${name} must hold ${dims} = ${expected} elements, got ${buf.length}`,
    );
  }
}

function overlaps(a: Float32Array, b: Float32Array): boolean {
  return a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.byteLength &&
    b.byteOffset < a.byteOffset + a.byteLength;
}

/** Checks the geometry, the three lengths, and that the output (`out`) shares no memory. */
function checkAll(
  op: string,
  s: Conv2dShape,
  x: [string, Float32Array],
  w: [string, Float32Array],
  y: [string, Float32Array],
  out: 0 | 1 | 2,
): void {
  checkShape(s);
  checkLength(op, x[0], x[1], s.n * s.cIn * s.h * s.w, "n·cIn·h·w");
  checkLength(op, w[0], w[1], s.cOut * s.cIn * s.kH * s.kW, "cOut·cIn·kH·kW");
  checkLength(op, y[0], y[1], s.n * s.cOut * s.outH * s.outW, "n·cOut·outH·outW");
  const all = [x, w, y];
  for (let i = 0; i < 3; i++) {
    if (i !== out && overlaps(all[out][1], all[i][1])) {
      throw new RangeError(`${op}: ${all[out][0]} must not share memory with ${all[i][0]}`);
    }
  }
}

/**
 * Whether the native direct 3×3 kernel takes this convolution: padding 1, stride 1 or 2 (with an
 * even input size), output rows of a multiple of 8 pixels and outputs per channel a multiple of
 * 16; output channels in blocks of 8 for the forward (and for backward-data, whose outputs are the
 * input channels). Backward-filter goes direct up to 64×64 channels; wider layers give the GEMM
 * lowering M and N large enough to win (on a 2-core Zen 4, direct 4.7 ms against 6.2 ms at 64×64
 * channels on 8×8, but 16–19 % slower at 128×128 and 256×256).
 */
function directApplies(s: Conv2dShape, op: "forward" | "data" | "filter"): boolean {
  const stride = s.strideH;
  if (
    s.kH !== 3 || s.kW !== 3 || s.padH !== 1 || s.padW !== 1 || s.strideW !== stride ||
    (stride !== 1 && (stride !== 2 || s.h % 2 !== 0 || s.w % 2 !== 0)) ||
    s.outW % 8 !== 0 || (s.outH * s.outW) % 16 !== 0
  ) return false;
  if (op === "forward") return s.cOut % 8 === 0;
  if (op === "data") return s.cIn % 8 === 0;
  return s.cIn * s.cOut <= 64 * 64;
}

/** Runs a direct-kernel entry point, turning its out-of-memory status into an error. */
function direct(
  op: string,
  run: (n: bigint, cIn: bigint, h: bigint, w: bigint, cOut: bigint, stride: bigint) => number,
  s: Conv2dShape,
): void {
  const big = BigInt;
  const rc = run(big(s.n), big(s.cIn), big(s.h), big(s.w), big(s.cOut), big(s.strideH));
  if (rc !== 0) throw new Error(`${op}: the native kernel could not allocate its scratch memory`);
}

function isPointwise(s: Conv2dShape): boolean {
  return s.kH === 1 && s.kW === 1 && s.strideH === 1 && s.strideW === 1 && s.padH === 0 &&
    s.padW === 0;
}

/** Whether the shifted-plane lowering applies to the forward pass of `s`. */
function planesApply(s: Conv2dShape): boolean {
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

// ── shifted-plane lowering ────────────────────────────────────────────────────────────────────

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
  x: Float32Array,
  n0: number,
  s: Conv2dShape,
  g: Planes,
  out: Float32Array,
): void {
  const { h, w, kH, kW, padH, padW } = s;
  const native = cpuKernels();
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
  grid: Float32Array,
  dst: Float32Array,
  n0: number,
  rows: number,
  s: Conv2dShape,
  g: Planes,
): void {
  const { w, outH, outW } = s;
  const native = cpuKernels();
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
  src: Float32Array,
  grid: Float32Array,
  n0: number,
  rows: number,
  s: Conv2dShape,
  g: Planes,
): void {
  const { w, outH, outW } = s;
  const native = cpuKernels();
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
  const out = rowWeightsBuffer(cOut * cIn * kH * kW);
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

function planesForward(x: Float32Array, w: Float32Array, y: Float32Array, s: Conv2dShape): void {
  const g0 = planesChunk(s);
  const pack = packBuffer(g0.rows * g0.len + planesTail(s));
  const wr = g0.full ? w : weightsByRow(w, s);
  const kRow = s.cIn * s.kW;
  for (let n0 = 0; n0 < s.n; n0 += g0.nb) {
    const g = n0 + g0.nb <= s.n ? g0 : planesLayout(s, s.n - n0, g0.full);
    packPlanes(x, n0, s, g, pack);
    const len = g.len;
    const out = gridBuffer(s.cOut * len);
    if (g.full) {
      sgemm(false, false, s.cOut, len, g.rows, 1, wr, pack, 0, out);
    } else {
      const per = s.cOut * kRow;
      for (let r = 0; r < s.kH; r++) {
        sgemm(
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
    unpackGrid(out, y, n0, s.cOut, s, g);
  }
}

function planesBackwardFilter(
  x: Float32Array,
  dy: Float32Array,
  dw: Float32Array,
  s: Conv2dShape,
): void {
  const g0 = planesChunk(s);
  const pack = packBuffer(g0.rows * g0.len + planesTail(s));
  const kRow = s.cIn * s.kW, per = s.cOut * kRow;
  // Not full: dW_r[k][c·kW + s] for kernel row r accumulates in row r·cOut + k of `acc` and is
  // scattered into dw at the end.
  const acc = g0.full ? dw : auxBuffer(s.kH * per);
  for (let n0 = 0; n0 < s.n; n0 += g0.nb) {
    const g = n0 + g0.nb <= s.n ? g0 : planesLayout(s, s.n - n0, g0.full);
    packPlanes(x, n0, s, g, pack);
    const len = g.len, block = s.cOut * len;
    const beta = n0 === 0 ? 0 : 1;
    if (g.full) {
      const dyg = gridBuffer(block);
      packGrid(dy, dyg, n0, s.cOut, s, g);
      sgemm(false, true, s.cOut, g.rows, len, 1, dyg, pack.subarray(0, g.rows * len), beta, dw);
      continue;
    }
    // dW_r = dY · (packed rows shifted by r·w)ᵀ = (dY shifted by −r·w) · (packed rows)ᵀ: stacking
    // the kH shifted copies of the small dY grid makes it one GEMM with M = kH·cOut. Positions
    // shifted in from the previous row are padding (zero) in the grid.
    const dyg = gridBuffer(s.kH * block);
    packGrid(dy, dyg, n0, s.cOut, s, g);
    for (let r = 1; r < s.kH; r++) {
      const shift = r * s.w, to = r * block;
      dyg.copyWithin(to + shift, 0, block - shift);
      dyg.fill(0, to, to + shift);
    }
    sgemm(false, true, s.kH * s.cOut, kRow, len, 1, dyg, pack.subarray(0, kRow * len), beta, acc);
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
  const wf = auxBuffer(s.cOut * s.cIn * khw);
  for (let k = 0; k < s.cOut; k++) {
    for (let c = 0; c < s.cIn; c++) {
      const src = (k * s.cIn + c) * khw, dst = (c * s.cOut + k) * khw;
      for (let t = 0; t < khw; t++) wf[dst + t] = w[src + khw - 1 - t];
    }
  }
  return wf;
}

// ── im2col lowering ───────────────────────────────────────────────────────────────────────────

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

function im2colForward(x: Float32Array, w: Float32Array, y: Float32Array, s: Conv2dShape): void {
  const ohw = s.outH * s.outW, kk = s.cIn * s.kH * s.kW;
  const nb = im2colChunk(s);
  for (let n0 = 0; n0 < s.n; n0 += nb) {
    const m = Math.min(nb, s.n - n0), ld = im2colLd(s, m);
    const cols = packBuffer(kk * ld);
    im2col(x, n0, m, ld, s, cols);
    const out = gridBuffer(s.cOut * ld);
    sgemm(false, false, s.cOut, ld, kk, 1, w, cols, 0, out);
    scatterChunk(out, y, n0, m, ld, s.cOut, ohw);
  }
}

function im2colBackwardData(
  w: Float32Array,
  dy: Float32Array,
  dx: Float32Array,
  s: Conv2dShape,
): void {
  const ohw = s.outH * s.outW, kk = s.cIn * s.kH * s.kW;
  dx.fill(0);
  const nb = im2colChunk(s);
  for (let n0 = 0; n0 < s.n; n0 += nb) {
    const m = Math.min(nb, s.n - n0), ld = im2colLd(s, m);
    const dyc = gridBuffer(s.cOut * ld);
    gatherChunk(dy, dyc, n0, m, ld, s.cOut, ohw);
    const cols = packBuffer(kk * ld);
    sgemm(true, false, kk, ld, s.cOut, 1, w, dyc, 0, cols);
    col2im(cols, n0, m, ld, s, dx);
  }
}

function im2colBackwardFilter(
  x: Float32Array,
  dy: Float32Array,
  dw: Float32Array,
  s: Conv2dShape,
): void {
  const ohw = s.outH * s.outW, kk = s.cIn * s.kH * s.kW;
  const nb = im2colChunk(s);
  for (let n0 = 0; n0 < s.n; n0 += nb) {
    const m = Math.min(nb, s.n - n0), ld = im2colLd(s, m);
    const cols = packBuffer(kk * ld);
    im2col(x, n0, m, ld, s, cols);
    const dyc = gridBuffer(s.cOut * ld);
    gatherChunk(dy, dyc, n0, m, ld, s.cOut, ohw);
    sgemm(false, true, s.cOut, kk, ld, 1, dyc, cols, n0 === 0 ? 0 : 1, dw);
  }
}

// ── public kernels ────────────────────────────────────────────────────────────────────────────

/**
 * Convolution forward: `y[n,k,i,j] = Σ_{c,r,s} x[n, c, i·sH + r − pH, j·sW + s − pW] · w[k,c,r,s]`
 * with zero padding. Overwrites `y`.
 *
 * @param x Input `[n, cIn, h, w]`.
 * @param w Weights `[cOut, cIn, kH, kW]`.
 * @param y Output `[n, cOut, outH, outW]`.
 * @param s Geometry.
 * @throws {RangeError} When the geometry is inconsistent, a buffer's length does not match it, or
 *   the output shares memory with an input.
 *
 * @example
 * ```ts
 * import { conv2dForward } from "./conv.ts";
 * const s = { n: 1, cIn: 1, h: 2, w: 2, cOut: 1, kH: 1, kW: 1, strideH: 1, strideW: 1,
 *   padH: 0, padW: 0, outH: 2, outW: 2 };
 * const y = new Float32Array(4);
 * conv2dForward(new Float32Array([1, 2, 3, 4]), new Float32Array([2]), y, s); // y = [2, 4, 6, 8]
 * ```
 */
export function conv2dForward(
  x: Float32Array,
  w: Float32Array,
  y: Float32Array,
  s: Conv2dShape,
): void {
  checkAll("conv2dForward", s, ["x", x], ["w", w], ["y", y], 2);
  const native = cpuKernels();
  if (native !== null && directApplies(s, "forward")) {
    direct("conv2dForward", (...d) => native.symbols.eql_conv3x3_forward(x, w, y, ...d), s);
  } else if (isPointwise(s)) {
    const hw = s.h * s.w, xs = s.cIn * hw, ys = s.cOut * hw;
    for (let b = 0; b < s.n; b++) {
      const xb = x.subarray(b * xs, (b + 1) * xs), yb = y.subarray(b * ys, (b + 1) * ys);
      sgemm(false, false, s.cOut, hw, s.cIn, 1, w, xb, 0, yb);
    }
  } else if (planesApply(s)) {
    planesForward(x, w, y, s);
  } else {
    im2colForward(x, w, y, s);
  }
}

/**
 * Convolution backward with respect to the input: `dx = ∂L/∂x` given `dy = ∂L/∂y`. Overwrites
 * `dx`.
 *
 * @param w Weights `[cOut, cIn, kH, kW]`.
 * @param dy Output gradient `[n, cOut, outH, outW]`.
 * @param dx Input gradient `[n, cIn, h, w]` (written).
 * @param s Geometry.
 * @throws {RangeError} When the geometry is inconsistent, a buffer's length does not match it, or
 *   the output shares memory with an input.
 *
 * @example
 * ```ts
 * import { conv2dBackwardData } from "./conv.ts";
 * const s = { n: 1, cIn: 1, h: 2, w: 2, cOut: 1, kH: 1, kW: 1, strideH: 1, strideW: 1,
 *   padH: 0, padW: 0, outH: 2, outW: 2 };
 * const dx = new Float32Array(4);
 * conv2dBackwardData(new Float32Array([2]), new Float32Array([1, 1, 1, 1]), dx, s); // all 2
 * ```
 */
export function conv2dBackwardData(
  w: Float32Array,
  dy: Float32Array,
  dx: Float32Array,
  s: Conv2dShape,
): void {
  checkAll("conv2dBackwardData", s, ["dx", dx], ["w", w], ["dy", dy], 0);
  const native = cpuKernels();
  if (native !== null && directApplies(s, "data")) {
    return direct(
      "conv2dBackwardData",
      (n, cIn, h, w_, cOut, stride) =>
        (stride === 1n
          ? native.symbols.eql_conv3x3_backward_data
          : native.symbols.eql_conv3x3_s2_backward_data)(w, dy, dx, n, cIn, h, w_, cOut),
      s,
    );
  }
  if (isPointwise(s)) {
    const hw = s.h * s.w, xs = s.cIn * hw, ys = s.cOut * hw;
    for (let b = 0; b < s.n; b++) {
      const dyb = dy.subarray(b * ys, (b + 1) * ys), dxb = dx.subarray(b * xs, (b + 1) * xs);
      sgemm(true, false, s.cIn, hw, s.cOut, 1, w, dyb, 0, dxb);
    }
    return;
  }
  const t = transposed(s);
  if (s.strideH === 1 && s.strideW === 1 && t.padH >= 0 && t.padW >= 0 && planesApply(t)) {
    planesForward(dy, flippedWeights(w, s), dx, t);
  } else {
    im2colBackwardData(w, dy, dx, s);
  }
}

/**
 * Convolution backward with respect to the weights: `dw = ∂L/∂w` given the forward input and
 * `dy`. Overwrites `dw`.
 *
 * @param x Input `[n, cIn, h, w]`.
 * @param dy Output gradient `[n, cOut, outH, outW]`.
 * @param dw Weight gradient `[cOut, cIn, kH, kW]` (written).
 * @param s Geometry.
 * @throws {RangeError} When the geometry is inconsistent, a buffer's length does not match it, or
 *   the output shares memory with an input.
 *
 * @example
 * ```ts
 * import { conv2dBackwardFilter } from "./conv.ts";
 * const s = { n: 1, cIn: 1, h: 2, w: 2, cOut: 1, kH: 1, kW: 1, strideH: 1, strideW: 1,
 *   padH: 0, padW: 0, outH: 2, outW: 2 };
 * const dw = new Float32Array(1);
 * conv2dBackwardFilter(new Float32Array([1, 2, 3, 4]), new Float32Array([1, 1, 1, 1]), dw, s);
 * // dw = [10]
 * ```
 */
export function conv2dBackwardFilter(
  x: Float32Array,
  dy: Float32Array,
  dw: Float32Array,
  s: Conv2dShape,
): void {
  checkAll("conv2dBackwardFilter", s, ["x", x], ["dw", dw], ["dy", dy], 1);
  const native = cpuKernels();
  if (native !== null && directApplies(s, "filter")) {
    direct(
      "conv2dBackwardFilter",
      (...d) => native.symbols.eql_conv3x3_backward_filter(x, dy, dw, ...d),
      s,
    );
  } else if (isPointwise(s)) {
    const hw = s.h * s.w, xs = s.cIn * hw, ys = s.cOut * hw;
    for (let b = 0; b < s.n; b++) {
      const dyb = dy.subarray(b * ys, (b + 1) * ys), xb = x.subarray(b * xs, (b + 1) * xs);
      sgemm(false, true, s.cOut, s.cIn, hw, 1, dyb, xb, b === 0 ? 0 : 1, dw);
    }
  } else if (planesApply(s)) {
    planesBackwardFilter(x, dy, dw, s);
  } else {
    im2colBackwardFilter(x, dy, dw, s);
  }
}
