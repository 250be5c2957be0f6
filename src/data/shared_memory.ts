/**
 * Memory helpers of the data pipeline: image arrays that workers can read without a copy, and
 * the early release of large temporary buffers.
 *
 * Image sets are allocated on a `SharedArrayBuffer`, so a {@linkcode BatchLoader} hands them to
 * its workers as they are; every loader over the same set (one per loss in a comparison) shares
 * the one copy. Buffers that only carried data on its way into such a set (an archive member, a
 * file's bytes) are detached once read, which returns their memory at once instead of at a later
 * garbage collection.
 *
 * @module
 */

/**
 * A zero-filled byte array on a new `SharedArrayBuffer`.
 *
 * @param length Number of bytes.
 * @returns The array.
 *
 * @example
 * ```ts
 * import { sharedBytes } from "./shared_memory.ts";
 * sharedBytes(4).buffer instanceof SharedArrayBuffer; // true
 * ```
 */
export function sharedBytes(length: number): Uint8Array {
  return new Uint8Array(new SharedArrayBuffer(length));
}

/**
 * Returns a temporary array's memory now: detaches its buffer when the array is the whole of a
 * plain `ArrayBuffer` (so no other view of other bytes can be affected); does nothing otherwise.
 * The array and every other view of the buffer read as empty afterwards.
 *
 * @param bytes An array the caller owns and no longer needs.
 * @returns Whether the buffer was detached.
 *
 * @example
 * ```ts
 * import { releaseBytes } from "./shared_memory.ts";
 * const temp = new Uint8Array(1 << 20);
 * releaseBytes(temp); // true
 * temp.length; // 0
 * ```
 */
export function releaseBytes(bytes: Uint8Array): boolean {
  const buffer = bytes.buffer;
  if (!(buffer instanceof ArrayBuffer) || buffer.detached) return false;
  if (bytes.byteOffset !== 0 || bytes.byteLength !== buffer.byteLength) return false;
  buffer.transfer(0);
  return true;
}
