/**
 * `Tensor`: a shape, a dtype and a buffer owned by a device. Tensors are the currency between
 * the public API and the device: losses take logits tensors and return gradient tensors, layers
 * keep their parameters in tensors. A tensor owns its buffer; `dispose()` (or `using`) returns
 * the memory. On a device whose buffers are not garbage-collected memory (CUDA), a
 * `FinalizationRegistry` frees forgotten ones as a safety net; it runs only between turns of the
 * event loop, so a synchronous loop should dispose what it allocates (`using`). The CPU device's
 * buffers are typed arrays that the collector reclaims by itself: registering them would keep
 * each one alive until its finalizer ran, so a long synchronous loop that never disposed its
 * tensors grew without bound.
 *
 * @module
 */

import type { Device, DeviceBuffer, DType, HostArray } from "./device/device.ts";
import { cpuDevice } from "./device/cpu.ts";

const forgotten = new FinalizationRegistry<DeviceBuffer>((buffer) => {
  if (!buffer.freed) buffer.device.free(buffer);
});

/** Number of elements of a shape, validating that every extent is a non-negative integer. */
export function shapeSize(shape: readonly number[], name = "shape"): number {
  let size = 1;
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i];
    if (!Number.isInteger(d) || d < 0) {
      throw new RangeError(
        `${name}[${i}] must be a non-negative integer, got ${d} (shape [${shape.join(", ")}])`,
      );
    }
    size *= d;
  }
  return size;
}

/**
 * An n-dimensional array of f32 or i32 values stored on a device.
 *
 * @example
 * ```ts
 * import { tensor } from "@eql/eql";
 * using t = tensor(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
 * t.shape; // [2, 3]
 * t.toArray(); // Float32Array [1, 2, 3, 4, 5, 6]
 * ```
 */
export class Tensor<D extends DType = DType> {
  #buffer: DeviceBuffer;
  #shape: readonly number[];

  /**
   * Wraps a device buffer; the tensor takes ownership of it.
   *
   * @param buffer Device memory holding exactly `product(shape)` elements.
   * @param shape Extents, outermost first.
   */
  constructor(buffer: DeviceBuffer, shape: readonly number[]) {
    const size = shapeSize(shape);
    if (size !== buffer.length) {
      throw new RangeError(
        `shape [${shape.join(", ")}] holds ${size} elements but the buffer holds ${buffer.length}`,
      );
    }
    this.#buffer = buffer;
    this.#shape = Object.freeze([...shape]);
    if (!buffer.device.collectsGarbage) forgotten.register(this, buffer, this);
  }

  /** Extents, outermost first. */
  get shape(): readonly number[] {
    return this.#shape;
  }

  /** Element type. */
  get dtype(): D {
    return this.#buffer.dtype as D;
  }

  /** The device that owns the storage. */
  get device(): Device {
    return this.#buffer.device;
  }

  /** Number of elements. */
  get size(): number {
    return this.#buffer.length;
  }

  /** The underlying device buffer (for layers and device operations). */
  get buffer(): DeviceBuffer {
    if (this.#buffer.freed) throw new Error("The tensor has been disposed");
    return this.#buffer;
  }

  /** True once `dispose()` has run. */
  get disposed(): boolean {
    return this.#buffer.freed;
  }

  /**
   * Copies the contents to a new host array (waits for pending device work).
   *
   * @returns A `Float32Array` for f32 tensors, an `Int32Array` for i32 tensors.
   */
  toArray(): HostArray<D> {
    const buf = this.buffer;
    const out = buf.dtype === "f32" ? new Float32Array(buf.length) : new Int32Array(buf.length);
    buf.device.download(buf, out);
    return out as HostArray<D>;
  }

  /**
   * Returns the memory to the device. Safe to call more than once.
   */
  dispose(): void {
    if (this.#buffer.freed) return;
    if (!this.#buffer.device.collectsGarbage) forgotten.unregister(this);
    this.#buffer.device.free(this.#buffer);
  }

  /** Same as `dispose()`, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/**
 * Creates a tensor from host data.
 *
 * @param data Values in row-major order; a plain number array becomes f32.
 * @param shape Extents; their product must equal `data.length`.
 * @param device Where to store it (the CPU device by default).
 * @returns The new tensor, owning a copy of `data`.
 *
 * @example
 * ```ts
 * import { tensor } from "@eql/eql";
 * const logits = tensor(new Float32Array(8), [2, 4]);
 * logits.shape; // [2, 4]
 * ```
 */
export function tensor<T extends Float32Array | Int32Array | number[]>(
  data: T,
  shape: readonly number[],
  device: Device = cpuDevice(),
): Tensor<T extends Int32Array ? "i32" : "f32"> {
  const host = Array.isArray(data) ? Float32Array.from(data) : data;
  if (!(host instanceof Float32Array) && !(host instanceof Int32Array)) {
    throw new TypeError(
      `data must be a Float32Array, an Int32Array or a number array, got ${
        Object.prototype.toString.call(data)
      }`,
    );
  }
  const size = shapeSize(shape);
  if (size !== host.length) {
    throw new RangeError(
      `data has ${host.length} elements but shape [${shape.join(", ")}] needs ${size}`,
    );
  }
  const buffer = device.alloc(host instanceof Int32Array ? "i32" : "f32", size);
  device.upload(buffer, host);
  return new Tensor(buffer, shape);
}

/**
 * Creates a zero-filled tensor.
 *
 * @param shape Extents.
 * @param device Where to store it (the CPU device by default).
 * @param dtype Element type (f32 by default).
 * @returns The new tensor.
 *
 * @example
 * ```ts
 * import { zeros } from "@eql/eql";
 * zeros([2, 3]).toArray(); // Float32Array(6) of zeros
 * ```
 */
export function zeros<D extends DType = "f32">(
  shape: readonly number[],
  device: Device = cpuDevice(),
  dtype: D = "f32" as D,
): Tensor<D> {
  return new Tensor<D>(device.alloc(dtype, shapeSize(shape)), shape);
}
