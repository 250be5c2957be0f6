/**
 * Single-precision GEMM for the CPU device: `C = alpha·op(A)·op(B) + beta·C (+ bias)`, row-major.
 *
 * OpenBLAS (`ffi/openblas.ts`) does the work when it can be loaded. Otherwise a blocked
 * TypeScript GEMM runs: panels of op(A) and op(B) are packed into contiguous strips (which also
 * absorbs the four transpose combinations), and a 4×4 register-blocked micro-kernel accumulates
 * in float64 locals, so each output is rounded to float32 once per K block.
 *
 * Which one runs is a choice of each CPU device (`new CpuDevice({ gemm })`, resolved by
 * {@linkcode gemmBackend}); `EQL_GEMM` supplies the default: `typescript` forces the TypeScript
 * path, `openblas` requires OpenBLAS, unset (or `auto`) picks OpenBLAS when present and prints one
 * notice when it is not.
 *
 * The functions here do no argument checking: the device validated the sizes, scalars and
 * buffers (`src/device/_validate.ts`) before calling them.
 *
 * @module
 */

import { openBlas, openBlasError, openBlasSummary } from "../../../ffi/openblas.ts";
import { CBLAS_NO_TRANS, CBLAS_ROW_MAJOR, CBLAS_TRANS } from "../../../ffi/openblas.ts";
import { envVar } from "../../../ffi/discovery.ts";
import { Workspace } from "./workspace.ts";

/** Environment variable selecting the GEMM backend: `auto` (default), `openblas`, `typescript`. */
export const GEMM_ENV_VAR = "EQL_GEMM";

/** A GEMM implementation. */
export type GemmBackend = "openblas" | "typescript";

/**
 * A row-major SGEMM with an optional bias, `C = alpha·op(A)·op(B) + beta·C (+ bias[n])`, taking
 * its arguments in BLAS order.
 */
export type Sgemm = (
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  b: Float32Array,
  beta: number,
  c: Float32Array,
  bias?: Float32Array,
) => void;

// ── shared pieces ─────────────────────────────────────────────────────────────────────────────

/** C ← beta·C on the m×n block (beta 0 overwrites, so NaNs in C do not survive). */
function scaleC(m: number, n: number, beta: number, c: Float32Array): void {
  const len = m * n;
  if (beta === 0) c.fill(0, 0, len);
  else if (beta !== 1) { for (let i = 0; i < len; i++) c[i] *= beta; }
}

/** C[i, :] += bias for every row. */
function addBias(m: number, n: number, c: Float32Array, bias: Float32Array): void {
  for (let i = 0, o = 0; i < m; i++, o += n) {
    for (let j = 0; j < n; j++) c[o + j] += bias[j];
  }
}

/** C[i, :] = bias for every row. */
function fillBias(m: number, n: number, c: Float32Array, bias: Float32Array): void {
  const row = n === bias.length ? bias : bias.subarray(0, n);
  for (let i = 0; i < m; i++) c.set(row, i * n);
}

/**
 * Runs `core` (which computes `C = alpha·op(A)·op(B) + beta·C` for m, n, k ≥ 1) after handling
 * the empty and alpha = 0 cases and folding the bias in.
 */
function run(
  core: (
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    alpha: number,
    a: Float32Array,
    b: Float32Array,
    beta: number,
    c: Float32Array,
  ) => void,
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  b: Float32Array,
  beta: number,
  c: Float32Array,
  bias: Float32Array | undefined,
): void {
  if (m === 0 || n === 0) return;
  if (k === 0 || alpha === 0) {
    // The product contributes nothing; A and B are not read (as in the reference BLAS).
    scaleC(m, n, beta, c);
    if (bias) addBias(m, n, c, bias);
    return;
  }
  if (bias && beta === 0) {
    // Start from the broadcast bias and accumulate onto it: one pass over C instead of two.
    fillBias(m, n, c, bias);
    core(transA, transB, m, n, k, alpha, a, b, 1, c);
    return;
  }
  core(transA, transB, m, n, k, alpha, a, b, beta, c);
  if (bias) addBias(m, n, c, bias);
}

// ── OpenBLAS path ─────────────────────────────────────────────────────────────────────────────

function blasCore(
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  b: Float32Array,
  beta: number,
  c: Float32Array,
): void {
  const lib = openBlas();
  if (lib === null) throw openBlasError()!;
  lib.symbols.cblas_sgemm(
    CBLAS_ROW_MAJOR,
    transA ? CBLAS_TRANS : CBLAS_NO_TRANS,
    transB ? CBLAS_TRANS : CBLAS_NO_TRANS,
    m,
    n,
    k,
    alpha,
    a,
    transA ? m : k,
    b,
    transB ? k : n,
    beta,
    c,
    n,
  );
}

/**
 * {@linkcode sgemm} through OpenBLAS's `cblas_sgemm`, whatever `EQL_GEMM` says.
 *
 * @param transA Use `A[k,m]ᵀ` instead of `A[m,k]`.
 * @param transB Use `B[n,k]ᵀ` instead of `B[k,n]`.
 * @param m Rows of C.
 * @param n Columns of C.
 * @param k Inner dimension.
 * @param alpha Scale of the product.
 * @param a Matrix A, row-major.
 * @param b Matrix B, row-major.
 * @param beta Scale of the old C (0: C is overwritten and never read).
 * @param c Output C[m,n], row-major.
 * @param bias Optional bias[n] added to every row.
 * @throws {LibraryNotFoundError} When OpenBLAS cannot be loaded.
 *
 * @example
 * ```ts ignore
 * import { sgemmOpenBlas } from "./gemm.ts";
 * const c = new Float32Array(1);
 * sgemmOpenBlas(false, false, 1, 1, 2, 1, new Float32Array([1, 2]), new Float32Array([3, 4]), 0, c);
 * console.log(c[0]); // 11
 * ```
 */
export function sgemmOpenBlas(
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  b: Float32Array,
  beta: number,
  c: Float32Array,
  bias?: Float32Array,
): void {
  run(blasCore, transA, transB, m, n, k, alpha, a, b, beta, c, bias);
}

// ── TypeScript path ───────────────────────────────────────────────────────────────────────────

// Register block (MR×NR) and cache blocks: a KC-deep strip of op(B) (NR·KC values) stays in L1,
// the MC×KC block of op(A) in L2, the KC×NC panel of op(B) in L3. Packed values are float64 so
// the micro-kernel does no float32→float64 conversions in its inner loop.
const MR = 4;
const NR = 4;
const KC = 256;
const MC = 64;
const NC = 1024;

const packedA = new Workspace(Float64Array);
const packedB = new Workspace(Float64Array);

/**
 * Packs a `rows`×`depth` block into strips of 4 consecutive rows, each stored depth-major
 * (`dst[strip·depth·4 + p·4 + r]`), zero-padding the last strip. Row `r`, depth `p` of the block
 * is `src[base + r·rowStride + p·depthStride]`.
 */
function pack(
  dst: Float64Array,
  src: Float32Array,
  base: number,
  rows: number,
  depth: number,
  rowStride: number,
  depthStride: number,
): void {
  let o = 0;
  for (let r = 0; r < rows; r += 4) {
    const live = rows - r;
    let s0 = base + r * rowStride;
    if (live >= 4) {
      let s1 = s0 + rowStride, s2 = s1 + rowStride, s3 = s2 + rowStride;
      for (let p = 0; p < depth; p++) {
        dst[o] = src[s0];
        dst[o + 1] = src[s1];
        dst[o + 2] = src[s2];
        dst[o + 3] = src[s3];
        s0 += depthStride;
        s1 += depthStride;
        s2 += depthStride;
        s3 += depthStride;
        o += 4;
      }
    } else {
      for (let p = 0; p < depth; p++) {
        let s = s0;
        for (let q = 0; q < 4; q++) {
          dst[o + q] = q < live ? src[s] : 0;
          s += rowStride;
        }
        s0 += depthStride;
        o += 4;
      }
    }
  }
}

const edge = new Float64Array(MR * NR);

/**
 * The 4×4 micro-kernel: `C[0..mr, 0..nr] = alpha·Σ_p a[p]·b[p]ᵀ + beta·C` (beta 0 overwrites).
 * `a` and `b` are packed strips starting at `ai` / `bi`, each `kc` steps of 4 values.
 */
function kernel4x4(
  kc: number,
  a: Float64Array,
  ai: number,
  b: Float64Array,
  bi: number,
  c: Float32Array,
  co: number,
  ldc: number,
  mr: number,
  nr: number,
  alpha: number,
  beta: number,
): void {
  let c00 = 0, c01 = 0, c02 = 0, c03 = 0;
  let c10 = 0, c11 = 0, c12 = 0, c13 = 0;
  let c20 = 0, c21 = 0, c22 = 0, c23 = 0;
  let c30 = 0, c31 = 0, c32 = 0, c33 = 0;
  for (let p = 0; p < kc; p++) {
    const b0 = b[bi], b1 = b[bi + 1], b2 = b[bi + 2], b3 = b[bi + 3];
    const a0 = a[ai];
    c00 += a0 * b0;
    c01 += a0 * b1;
    c02 += a0 * b2;
    c03 += a0 * b3;
    const a1 = a[ai + 1];
    c10 += a1 * b0;
    c11 += a1 * b1;
    c12 += a1 * b2;
    c13 += a1 * b3;
    const a2 = a[ai + 2];
    c20 += a2 * b0;
    c21 += a2 * b1;
    c22 += a2 * b2;
    c23 += a2 * b3;
    const a3 = a[ai + 3];
    c30 += a3 * b0;
    c31 += a3 * b1;
    c32 += a3 * b2;
    c33 += a3 * b3;
    ai += 4;
    bi += 4;
  }
  if (mr === 4 && nr === 4) {
    const o0 = co, o1 = co + ldc, o2 = o1 + ldc, o3 = o2 + ldc;
    if (beta === 0) {
      c[o0] = alpha * c00;
      c[o0 + 1] = alpha * c01;
      c[o0 + 2] = alpha * c02;
      c[o0 + 3] = alpha * c03;
      c[o1] = alpha * c10;
      c[o1 + 1] = alpha * c11;
      c[o1 + 2] = alpha * c12;
      c[o1 + 3] = alpha * c13;
      c[o2] = alpha * c20;
      c[o2 + 1] = alpha * c21;
      c[o2 + 2] = alpha * c22;
      c[o2 + 3] = alpha * c23;
      c[o3] = alpha * c30;
      c[o3 + 1] = alpha * c31;
      c[o3 + 2] = alpha * c32;
      c[o3 + 3] = alpha * c33;
    } else {
      c[o0] = alpha * c00 + beta * c[o0];
      c[o0 + 1] = alpha * c01 + beta * c[o0 + 1];
      c[o0 + 2] = alpha * c02 + beta * c[o0 + 2];
      c[o0 + 3] = alpha * c03 + beta * c[o0 + 3];
      c[o1] = alpha * c10 + beta * c[o1];
      c[o1 + 1] = alpha * c11 + beta * c[o1 + 1];
      c[o1 + 2] = alpha * c12 + beta * c[o1 + 2];
      c[o1 + 3] = alpha * c13 + beta * c[o1 + 3];
      c[o2] = alpha * c20 + beta * c[o2];
      c[o2 + 1] = alpha * c21 + beta * c[o2 + 1];
      c[o2 + 2] = alpha * c22 + beta * c[o2 + 2];
      c[o2 + 3] = alpha * c23 + beta * c[o2 + 3];
      c[o3] = alpha * c30 + beta * c[o3];
      c[o3 + 1] = alpha * c31 + beta * c[o3 + 1];
      c[o3 + 2] = alpha * c32 + beta * c[o3 + 2];
      c[o3 + 3] = alpha * c33 + beta * c[o3 + 3];
    }
    return;
  }
  // Partial tile at the bottom or right edge: stage the accumulators, write the live part only.
  edge[0] = c00, edge[1] = c01, edge[2] = c02, edge[3] = c03;
  edge[4] = c10, edge[5] = c11, edge[6] = c12, edge[7] = c13;
  edge[8] = c20, edge[9] = c21, edge[10] = c22, edge[11] = c23;
  edge[12] = c30, edge[13] = c31, edge[14] = c32, edge[15] = c33;
  for (let i = 0; i < mr; i++) {
    const o = co + i * ldc;
    for (let j = 0; j < nr; j++) {
      const v = alpha * edge[i * 4 + j];
      c[o + j] = beta === 0 ? v : v + beta * c[o + j];
    }
  }
}

function tsCore(
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  b: Float32Array,
  beta: number,
  c: Float32Array,
): void {
  const pa = packedA.take(MC * KC), pb = packedB.take(KC * NC);
  // op(A)[i, p] = a[i·aRow + p·aDepth]; op(B)[p, j] = b[j·bCol + p·bDepth].
  const aRow = transA ? 1 : k, aDepth = transA ? m : 1;
  const bCol = transB ? k : 1, bDepth = transB ? 1 : n;
  for (let jc = 0; jc < n; jc += NC) {
    const nc = Math.min(NC, n - jc);
    for (let pc = 0; pc < k; pc += KC) {
      const kc = Math.min(KC, k - pc);
      pack(pb, b, jc * bCol + pc * bDepth, nc, kc, bCol, bDepth);
      // Later K blocks accumulate onto what the earlier ones wrote.
      const be = pc === 0 ? beta : 1;
      for (let ic = 0; ic < m; ic += MC) {
        const mc = Math.min(MC, m - ic);
        pack(pa, a, ic * aRow + pc * aDepth, mc, kc, aRow, aDepth);
        for (let jr = 0; jr < nc; jr += NR) {
          const nr = Math.min(NR, nc - jr);
          const bi = jr * kc;
          for (let ir = 0; ir < mc; ir += MR) {
            const mr = Math.min(MR, mc - ir);
            kernel4x4(kc, pa, ir * kc, pb, bi, c, (ic + ir) * n + jc + jr, n, mr, nr, alpha, be);
          }
        }
      }
    }
  }
}

/**
 * {@linkcode sgemm} in plain TypeScript (blocked, packed, 4×4 register tiles), whatever
 * `EQL_GEMM` says. Accumulates in float64 within each block of 256 along K.
 *
 * @param transA Use `A[k,m]ᵀ` instead of `A[m,k]`.
 * @param transB Use `B[n,k]ᵀ` instead of `B[k,n]`.
 * @param m Rows of C.
 * @param n Columns of C.
 * @param k Inner dimension.
 * @param alpha Scale of the product.
 * @param a Matrix A, row-major.
 * @param b Matrix B, row-major.
 * @param beta Scale of the old C (0: C is overwritten and never read).
 * @param c Output C[m,n], row-major.
 * @param bias Optional bias[n] added to every row.
 *
 * @example
 * ```ts
 * import { sgemmTypeScript } from "./gemm.ts";
 * const c = new Float32Array(1);
 * sgemmTypeScript(false, false, 1, 1, 2, 1, new Float32Array([1, 2]), new Float32Array([3, 4]), 0, c);
 * console.log(c[0]); // 11
 * ```
 */
export function sgemmTypeScript(
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  b: Float32Array,
  beta: number,
  c: Float32Array,
  bias?: Float32Array,
): void {
  run(tsCore, transA, transB, m, n, k, alpha, a, b, beta, c, bias);
}

// ── backend choice ────────────────────────────────────────────────────────────────────────────

/** What a device asks for: a backend, or `auto` (OpenBLAS when it loads). */
export type GemmChoice = "auto" | GemmBackend;

/**
 * The default GEMM choice: `EQL_GEMM`, or `auto` when it is unset.
 *
 * @returns The choice.
 * @throws {RangeError} When `EQL_GEMM` holds another value.
 *
 * @example
 * ```ts
 * import { gemmChoice } from "./gemm.ts";
 * console.log(gemmChoice()); // "auto" unless EQL_GEMM says otherwise
 * ```
 */
export function gemmChoice(): GemmChoice {
  const choice = (envVar(GEMM_ENV_VAR) ?? "auto").trim().toLowerCase();
  if (choice === "typescript" || choice === "ts") return "typescript";
  if (choice === "openblas") return "openblas";
  if (choice === "auto" || choice === "") return "auto";
  throw new RangeError(
    `${GEMM_ENV_VAR} must be "auto", "openblas" or "typescript", got "${choice}"`,
  );
}

let envBackend: GemmBackend | undefined;
let fallbackNoticed = false;

function resolveBackend(choice: GemmChoice): GemmBackend {
  if (choice === "typescript") return "typescript";
  if (choice === "openblas") {
    if (openBlas() === null) throw openBlasError()!;
    return "openblas";
  }
  if (openBlas() !== null) return "openblas";
  if (!fallbackNoticed) {
    fallbackNoticed = true;
    const error = openBlasError();
    if (error !== undefined && error.missing.length > 0) {
      // Installed or not, it cannot be loaded: the missing permission is what to fix.
      console.warn(`Note: ${error.message} Matrix products use the slower TypeScript GEMM.`);
    } else if (error?.override === undefined) {
      // (A bad EQL_OPENBLAS_PATH already had its own warning.)
      console.warn(
        "Note: OpenBLAS was not found, so matrix products use the slower TypeScript GEMM. " +
          "For full CPU speed install OpenBLAS (Debian/Ubuntu: apt-get install " +
          "libopenblas0-pthread) or set EQL_OPENBLAS_PATH to its libopenblas.so.0.",
      );
    }
  }
  return "typescript";
}

/**
 * The GEMM implementation a choice resolves to: `"openblas"` when asked for (or, with `auto`,
 * when the library loads), otherwise `"typescript"`; `auto` without OpenBLAS prints one notice
 * per process.
 *
 * @param choice What is asked for; absent: the environment's default ({@linkcode gemmChoice}),
 *   resolved once per process.
 * @returns The backend name.
 * @throws {LibraryNotFoundError} When `openblas` is asked for and OpenBLAS cannot be loaded.
 * @throws {RangeError} When the default is wanted and `EQL_GEMM` holds an unknown value.
 *
 * @example
 * ```ts
 * import { gemmBackend } from "./gemm.ts";
 * console.log(gemmBackend()); // "openblas" or "typescript"
 * console.log(gemmBackend("typescript")); // "typescript"
 * ```
 */
export function gemmBackend(choice?: GemmChoice): GemmBackend {
  if (choice !== undefined) return resolveBackend(choice);
  return envBackend ??= resolveBackend(gemmChoice());
}

/**
 * Names a GEMM backend for a device description; OpenBLAS with its version and kernel set.
 *
 * @param backend The backend.
 * @returns E.g. `"openblas (OpenBLAS 0.3.21, Cooperlake core)"` or `"typescript"`.
 *
 * @example
 * ```ts
 * import { gemmDescription } from "./gemm.ts";
 * console.log(gemmDescription("typescript")); // "typescript"
 * ```
 */
export function gemmDescription(backend: GemmBackend): string {
  if (backend !== "openblas") return backend;
  const summary = openBlasSummary();
  return summary === undefined ? backend : `${backend} (${summary})`;
}

/**
 * The SGEMM function of a backend.
 *
 * @param backend The backend.
 * @returns {@linkcode sgemmOpenBlas} or {@linkcode sgemmTypeScript}.
 *
 * @example
 * ```ts
 * import { sgemmFor } from "./gemm.ts";
 * const c = new Float32Array(1);
 * sgemmFor("typescript")(false, false, 1, 1, 2, 1, new Float32Array([1, 2]),
 *   new Float32Array([3, 4]), 0, c);
 * console.log(c[0]); // 11
 * ```
 */
export function sgemmFor(backend: GemmBackend): Sgemm {
  return backend === "openblas" ? sgemmOpenBlas : sgemmTypeScript;
}

/**
 * Row-major SGEMM with an optional bias, exactly as `Device.gemm`, on the environment's default
 * backend ({@linkcode gemmBackend}): `C[m,n] = alpha·op(A)·op(B) + beta·C`, then
 * `C[i,j] += bias[j]` when a bias is given. `op(A)` is `A[m,k]` or, with `transA`, `A[k,m]ᵀ`;
 * `op(B)` is `B[k,n]` or `B[n,k]ᵀ`. With `beta = 0` the old C is never read (NaNs in it do not
 * propagate). Arrays may be longer than needed (only their leading elements are used) but C must
 * not overlap A, B or the bias; nothing is checked (the device validates).
 *
 * @param transA Use `A[k,m]ᵀ` instead of `A[m,k]`.
 * @param transB Use `B[n,k]ᵀ` instead of `B[k,n]`.
 * @param m Rows of C.
 * @param n Columns of C.
 * @param k Inner dimension.
 * @param alpha Scale of the product.
 * @param a Matrix A, row-major.
 * @param b Matrix B, row-major.
 * @param beta Scale of the old C.
 * @param c Output C[m,n], row-major, updated in place.
 * @param bias Optional bias[n] added to every row.
 *
 * @example
 * ```ts
 * import { sgemm } from "./gemm.ts";
 * // [1 2; 3 4] · [5; 6] + [10]
 * const c = new Float32Array(2);
 * sgemm(false, false, 2, 1, 2, 1, new Float32Array([1, 2, 3, 4]), new Float32Array([5, 6]), 0, c,
 *   new Float32Array([10]));
 * console.log(c); // Float32Array [27, 49]
 * ```
 */
export function sgemm(
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  b: Float32Array,
  beta: number,
  c: Float32Array,
  bias?: Float32Array,
): void {
  const core = gemmBackend() === "openblas" ? blasCore : tsCore;
  run(core, transA, transB, m, n, k, alpha, a, b, beta, c, bias);
}
