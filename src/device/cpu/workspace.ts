/**
 * A grow-only scratch array: the CPU kernels keep one per purpose at module level and take a view
 * of the length they need on every call, so a training loop allocates nothing once the largest
 * call has run. The contents of a view are whatever the previous user left there.
 *
 * @module
 */

/** The typed arrays a workspace can hold. */
export type WorkspaceArray = Float32Array | Float64Array | Uint8Array;

/**
 * A typed array that only grows, handing out views of its first elements.
 *
 * @example
 * ```ts
 * import { Workspace } from "./workspace.ts";
 * const scratch = new Workspace(Float64Array);
 * const sums = scratch.take(4).fill(0); // a zeroed view of 4 elements
 * sums.length; // 4
 * ```
 */
export class Workspace<T extends WorkspaceArray> {
  #make: new (length: number) => T;
  #data: T;

  /**
   * An empty workspace of the given array type.
   *
   * @param make The typed-array constructor (`Float32Array`, `Float64Array`, `Uint8Array`).
   */
  constructor(make: new (length: number) => T) {
    this.#make = make;
    this.#data = new make(0);
  }

  /**
   * A view of the first `length` elements, reallocating (without keeping the contents) when the
   * storage is shorter.
   *
   * @param length Elements wanted.
   * @returns The view; its contents are unspecified.
   */
  take(length: number): T {
    if (this.#data.length < length) this.#data = new this.#make(length);
    return this.#data.subarray(0, length) as T;
  }
}
