/**
 * What the two GEMM lowerings of the CPU convolution (`conv_shifted.ts`, `conv_im2col.ts`) share:
 * the chunk size of their packed matrices and the bulk copies that build them, with the test that
 * keeps copies inside one buffer clear of 4K aliasing.
 *
 * @module
 */

/** Target size (floats) of one chunk's packed matrix: large GEMMs that stay cache-resident. */
export const CHUNK_FLOATS = 1 << 19;

/** Below this many floats a plain loop beats creating a subarray for `set`. */
const SET_MIN = 128;

/**
 * Copies `len` floats between different arrays; `set` for long runs, a loop for short ones.
 *
 * @param src Source.
 * @param srcOff First source element.
 * @param dst Destination (not `src`).
 * @param dstOff First destination element.
 * @param len Floats to copy.
 *
 * @example
 * ```ts
 * import { copyRun } from "./conv_copy.ts";
 * const dst = new Float32Array(3);
 * copyRun(new Float32Array([1, 2, 3]), 1, dst, 0, 2); // dst = [2, 3, 0]
 * ```
 */
export function copyRun(
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
 *
 * @param delta Destination minus source, in floats.
 * @returns Whether such a copy is clear of 4K aliasing.
 *
 * @example
 * ```ts
 * import { copySafe } from "./conv_copy.ts";
 * copySafe(1025); // false: 1 float past the source modulo 4 KiB
 * copySafe(1040); // true
 * ```
 */
export function copySafe(delta: number): boolean {
  const m = ((delta % 1024) + 1024) % 1024;
  return m === 0 || m > 8;
}
