/**
 * Row-major GEMM through column-major cuBLAS. A row-major `C[m,n]` is the column-major `Cᵀ[n,m]`
 * with leading dimension n, so `C = op(A)·op(B)` becomes `Cᵀ = op(B)ᵀ·op(A)ᵀ`: swap the operands
 * and m with n, keep each operand's transpose flag, and read each operand's leading dimension from
 * its row-major row length.
 *
 * The bias is a rank-1 update with a vector of ones, `C += ones[m]·bias[n]ᵀ`, a second SGEMM with
 * k = 1, which keeps this file free of custom kernels.
 *
 * FP32 by default (`CUBLAS_DEFAULT_MATH`, which never uses TF32 for SGEMM);
 * `CUBLAS_TF32_TENSOR_OP_MATH` when TF32 is asked for.
 *
 * @module
 */

import { checkCublas, CUBLAS, type CublasSymbols } from "../../../ffi/cublas.ts";
import type { GemmShape } from "../device.ts";
import type { CachingAllocator } from "./allocator.ts";

/** What the column-major call looks like for a row-major GEMM. */
export interface ColumnMajorGemm {
  /** cuBLAS `transa` (applies to the first operand, which is B). */
  transa: number;
  /** cuBLAS `transb` (applies to the second operand, which is A). */
  transb: number;
  /** cuBLAS m (the row-major n). */
  m: number;
  /** cuBLAS n (the row-major m). */
  n: number;
  /** cuBLAS k. */
  k: number;
  /** Leading dimension of the first operand (B). */
  lda: number;
  /** Leading dimension of the second operand (A). */
  ldb: number;
  /** Leading dimension of C. */
  ldc: number;
}

/**
 * Maps a row-major `C[m,n] = op(A)·op(B)` onto cuBLAS's column-major arguments.
 *
 * @param transA Whether A is stored as [k, m].
 * @param transB Whether B is stored as [n, k].
 * @param m Rows of C.
 * @param n Columns of C.
 * @param k Inner dimension.
 * @returns The arguments for `cublasSgemm_v2(h, transa, transb, m, n, k, α, B, lda, A, ldb, β, C, ldc)`.
 *
 * @example
 * ```ts
 * import { columnMajor } from "./_gemm.ts";
 * columnMajor(false, false, 2, 3, 4); // { transa: 0, transb: 0, m: 3, n: 2, k: 4, lda: 3, ldb: 4, ldc: 3 }
 * ```
 */
export function columnMajor(
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
): ColumnMajorGemm {
  return {
    transa: transB ? CUBLAS.OP_T : CUBLAS.OP_N,
    transb: transA ? CUBLAS.OP_T : CUBLAS.OP_N,
    m: n,
    n: m,
    k,
    // Row-major B is [k, n] (row length n) or, transposed, [n, k] (row length k).
    lda: Math.max(1, transB ? k : n),
    // Row-major A is [m, k] (row length k) or, transposed, [k, m] (row length m).
    ldb: Math.max(1, transA ? m : k),
    ldc: Math.max(1, n),
  };
}

/**
 * The column-major call that adds `bias[n]` to every row of a row-major `C[m,n]`: the rank-1
 * product `Cᵀ[n,m] += bias[n,1]·ones[1,m]` (first operand the bias, second the ones, k = 1).
 *
 * @param m Rows of C.
 * @param n Columns of C.
 * @returns The arguments for `cublasSgemm_v2(h, transa, transb, m, n, k, 1, bias, lda, ones, ldb, 1, C, ldc)`.
 *
 * @example
 * ```ts
 * import { biasColumnMajor } from "./_gemm.ts";
 * biasColumnMajor(2, 3); // { transa: 0, transb: 0, m: 3, n: 2, k: 1, lda: 3, ldb: 1, ldc: 3 }
 * ```
 */
export function biasColumnMajor(m: number, n: number): ColumnMajorGemm {
  return {
    transa: CUBLAS.OP_N,
    transb: CUBLAS.OP_N,
    m: n,
    n: m,
    k: 1,
    lda: Math.max(1, n),
    ldb: 1,
    ldc: Math.max(1, n),
  };
}

/**
 * SGEMM with an optional broadcast bias, on the cuBLAS handle's stream.
 *
 * @example
 * ```ts ignore
 * const g = new CublasGemm(cublas(), handle, allocator, fillOnes);
 * g.gemm({ transA: false, transB: true, m, n, k, alpha: 1, beta: 0 }, a, b, c, bias);
 * ```
 */
export class CublasGemm {
  #blas: CublasSymbols;
  #handle: Deno.PointerObject;
  #allocator: CachingAllocator;
  #fillOnes: (ptr: bigint, count: number) => void;
  #alpha = new Float32Array(1);
  #beta = new Float32Array(1);
  #one = new Float32Array([1]);
  #ones = 0n;
  #onesLength = 0;

  /**
   * Wraps a cuBLAS handle.
   *
   * @param blas The cuBLAS symbols.
   * @param handle A cuBLAS handle bound to the device's stream.
   * @param allocator The device's allocator (for the vector of ones).
   * @param fillOnes Queues a fill of `count` floats with 1.0 at `ptr` on the device's stream.
   */
  constructor(
    blas: CublasSymbols,
    handle: Deno.PointerObject,
    allocator: CachingAllocator,
    fillOnes: (ptr: bigint, count: number) => void,
  ) {
    this.#blas = blas;
    this.#handle = handle;
    this.#allocator = allocator;
    this.#fillOnes = fillOnes;
  }

  #onesOf(m: number): bigint {
    if (m > this.#onesLength) {
      if (this.#ones !== 0n) this.#allocator.free(this.#ones);
      this.#ones = 0n;
      // Grow geometrically so a slowly rising batch size does not reallocate every time.
      const length = Math.max(m, 2 * this.#onesLength, 256);
      this.#ones = this.#allocator.alloc(length * 4);
      this.#onesLength = length;
      this.#fillOnes(this.#ones, length);
    }
    return this.#ones;
  }

  /**
   * Row-major `C = alpha·op(A)·op(B) + beta·C (+ bias broadcast over rows)`; the caller has
   * validated the sizes and buffers.
   *
   * @param shape Transposes, sizes and scalars.
   * @param a Device address of A.
   * @param b Device address of B.
   * @param c Device address of C.
   * @param bias Device address of bias [n], or 0n for none.
   */
  gemm(shape: GemmShape, a: bigint, b: bigint, c: bigint, bias: bigint): void {
    const { transA, transB, m, n, k } = shape;
    if (m === 0 || n === 0) return;
    this.#alpha[0] = shape.alpha;
    this.#beta[0] = shape.beta;
    if (k === 0) {
      // An empty product: C = beta·C. Done as a k = 1 product with alpha = 0 over the ones
      // vector, so cuBLAS never sees empty (null) operands.
      const ones = this.#onesOf(Math.max(m, n));
      const r = biasColumnMajor(m, n);
      this.#alpha[0] = 0;
      const st = this.#blas.cublasSgemm_v2(
        this.#handle,
        r.transa,
        r.transb,
        r.m,
        r.n,
        r.k,
        this.#alpha,
        ones,
        r.lda,
        ones,
        r.ldb,
        this.#beta,
        c,
        r.ldc,
      );
      if (st !== 0) checkCublas(st, `cublasSgemm_v2(row-major m ${m}, n ${n}, k 0)`);
    } else {
      this.#product(transA, transB, m, n, k, a, b, c);
    }
    if (bias !== 0n) this.#addBias(m, n, bias, c);
  }

  #product(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    a: bigint,
    b: bigint,
    c: bigint,
  ): void {
    const g = columnMajor(transA, transB, m, n, k);
    const status = this.#blas.cublasSgemm_v2(
      this.#handle,
      g.transa,
      g.transb,
      g.m,
      g.n,
      g.k,
      this.#alpha,
      b,
      g.lda,
      a,
      g.ldb,
      this.#beta,
      c,
      g.ldc,
    );
    if (status !== 0) {
      checkCublas(
        status,
        `cublasSgemm_v2(row-major m ${m}, n ${n}, k ${k}, transA ${transA}, transB ${transB})`,
      );
    }
  }

  #addBias(m: number, n: number, bias: bigint, c: bigint): void {
    const ones = this.#onesOf(m);
    const r = biasColumnMajor(m, n);
    const st = this.#blas.cublasSgemm_v2(
      this.#handle,
      r.transa,
      r.transb,
      r.m,
      r.n,
      r.k,
      this.#one,
      bias,
      r.lda,
      ones,
      r.ldb,
      this.#one,
      c,
      r.ldc,
    );
    if (st !== 0) checkCublas(st, `cublasSgemm_v2(bias of ${n} over ${m} rows)`);
  }

  /** Returns the vector of ones to the allocator. */
  dispose(): void {
    if (this.#ones !== 0n) this.#allocator.free(this.#ones);
    this.#ones = 0n;
    this.#onesLength = 0;
  }
}
