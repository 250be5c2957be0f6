/**
 * The CUDA device's memory: the buffer class (a device address with its dtype and length) and
 * the transfers on the context's stream — allocation (zero-filled) and release through the
 * caching allocator (`allocator.ts`), upload, download, device-to-device copy and fill.
 *
 * Arguments are validated by the device before they get here (`src/device/_validate.ts`); this
 * file only moves bytes. Uploads wait for their copy (the source is pageable memory the caller may
 * change right after); downloads wait for everything queued before them.
 *
 * @module
 */

import { checkCuda } from "../../../ffi/cuda.ts";
import type { DeviceBuffer, DType } from "../device.ts";
import type { CudaDevice } from "../cuda.ts";
import { type AllocatorStats, CachingAllocator } from "./allocator.ts";
import type { CudaContext } from "./context.ts";

/**
 * A CUDA buffer: device memory holding `length` elements of `dtype`.
 *
 * @example
 * ```ts ignore
 * import { CudaDevice } from "@eql/eql/cuda";
 * const buf = new CudaDevice().alloc("f32", 4);
 * buf.length; // 4
 * ```
 */
export class CudaBuffer implements DeviceBuffer {
  /** The owning device. */
  readonly device: CudaDevice;
  /** Element type. */
  readonly dtype: DType;
  /** Number of elements. */
  readonly length: number;
  #ptr: bigint;
  #freed = false;

  /**
   * Wraps an allocation (made by {@linkcode CudaDevice.alloc}).
   *
   * @param device The owner.
   * @param dtype Element type.
   * @param length Elements.
   * @param ptr Device address (0n for an empty buffer).
   */
  constructor(device: CudaDevice, dtype: DType, length: number, ptr: bigint) {
    this.device = device;
    this.dtype = dtype;
    this.length = length;
    this.#ptr = ptr;
  }

  /** The device address (0n for an empty buffer). */
  get ptr(): bigint {
    if (this.#freed) throw new Error("The buffer has been freed");
    return this.#ptr;
  }

  /** True once freed. */
  get freed(): boolean {
    return this.#freed;
  }

  /** Marks the buffer freed and returns its address (for the allocator). */
  release(): bigint {
    if (this.#freed) throw new Error("The buffer has already been freed");
    this.#freed = true;
    const p = this.#ptr;
    this.#ptr = 0n;
    return p;
  }
}

/**
 * The device address of a validated buffer of a CUDA device.
 *
 * @param buf A live `CudaBuffer` (the caller has validated it).
 * @param offset Element offset into it (default 0).
 * @returns The address of element `offset`.
 *
 * @example
 * ```ts ignore
 * import { devicePointer } from "./buffers.ts";
 * devicePointer(buf, 2); // buf.ptr + 8n
 * ```
 */
export function devicePointer(buf: DeviceBuffer, offset = 0): bigint {
  const p = (buf as CudaBuffer).ptr;
  return offset === 0 ? p : p + BigInt(offset * 4);
}

const f32Bits = new Float32Array(1);
const f32BitsU32 = new Uint32Array(f32Bits.buffer);

/**
 * The 32-bit pattern that `fill` writes for a value: its float32 bits, or the integer's.
 *
 * @param dtype The buffer's element type.
 * @param value The value (an integer in the i32 range for `"i32"`).
 * @returns The bit pattern as an unsigned 32-bit number.
 *
 * @example
 * ```ts
 * import { fillWord } from "./buffers.ts";
 * fillWord("f32", 1); // 0x3f800000
 * fillWord("i32", -1); // 0xffffffff
 * ```
 */
export function fillWord(dtype: DType, value: number): number {
  if (dtype === "i32") return value >>> 0;
  f32Bits[0] = value;
  return f32BitsU32[0];
}

/**
 * Device memory of one context: buffers over a caching allocator and the copies between them and
 * the host.
 *
 * @example
 * ```ts ignore
 * const memory = new CudaMemory(context);
 * const buf = memory.alloc(device, "f32", 1024);
 * memory.upload(buf, new Float32Array(1024), 0);
 * memory.free(buf);
 * ```
 */
export class CudaMemory {
  #ctx: CudaContext;
  #allocator: CachingAllocator;

  /**
   * Creates an empty memory pool on a context.
   *
   * @param ctx The context whose stream orders every transfer.
   */
  constructor(ctx: CudaContext) {
    this.#ctx = ctx;
    this.#allocator = new CachingAllocator(ctx.cu, () => ctx.waitStream());
  }

  /** The caching allocator (for the library wrappers' workspaces). */
  get allocator(): CachingAllocator {
    return this.#allocator;
  }

  /**
   * A zero-filled buffer of `length` elements (an empty one holds no memory).
   *
   * @param device The owning device.
   * @param dtype Element type.
   * @param length Elements.
   * @returns The buffer.
   */
  alloc(device: CudaDevice, dtype: DType, length: number): CudaBuffer {
    if (length === 0) return new CudaBuffer(device, dtype, 0, 0n);
    const ptr = this.#allocator.alloc(length * 4);
    this.#ctx.memset(ptr, 0, length);
    return new CudaBuffer(device, dtype, length, ptr);
  }

  /**
   * Marks the buffer freed and returns its memory to the cache (after the context is gone, the
   * memory already went back to the driver with everything else).
   *
   * @param buf The buffer.
   */
  free(buf: CudaBuffer): void {
    const ptr = buf.release();
    if (this.#ctx.disposed || ptr === 0n) return;
    this.#allocator.free(ptr);
  }

  /**
   * Copies host data into `buf` from element `offset`, and waits for the copy.
   *
   * @param buf The buffer.
   * @param data The host data, of the buffer's dtype.
   * @param offset First element written.
   */
  upload(buf: CudaBuffer, data: Float32Array | Int32Array, offset: number): void {
    if (data.length === 0) return;
    checkCuda(
      this.#ctx.cu.cuMemcpyHtoDAsync_v2(
        devicePointer(buf, offset),
        data,
        BigInt(data.length * 4),
        this.#ctx.stream,
      ),
      `cuMemcpyHtoDAsync_v2(${data.length * 4} bytes)`,
    );
    this.#ctx.waitStream();
  }

  /**
   * Copies `out.length` elements from element `offset` of `buf` to the host, after everything
   * queued before.
   *
   * @param buf The buffer.
   * @param out Receives the data, of the buffer's dtype.
   * @param offset First element read.
   */
  download(buf: CudaBuffer, out: Float32Array | Int32Array, offset: number): void {
    if (out.length > 0) {
      checkCuda(
        this.#ctx.cu.cuMemcpyDtoHAsync_v2(
          out,
          devicePointer(buf, offset),
          BigInt(out.length * 4),
          this.#ctx.stream,
        ),
        `cuMemcpyDtoHAsync_v2(${out.length * 4} bytes)`,
      );
    }
    this.#ctx.waitStream();
  }

  /**
   * Queues a copy of `length` elements between two buffers.
   *
   * @param dst Destination.
   * @param src Source.
   * @param length Elements.
   * @param dstOffset First element written.
   * @param srcOffset First element read.
   */
  copy(
    dst: CudaBuffer,
    src: CudaBuffer,
    length: number,
    dstOffset: number,
    srcOffset: number,
  ): void {
    if (length === 0) return;
    this.copyRaw(devicePointer(dst, dstOffset), devicePointer(src, srcOffset), length);
  }

  /**
   * Queues a copy of `length` 32-bit elements between two device addresses.
   *
   * @param dst Destination address.
   * @param src Source address.
   * @param length Elements (> 0).
   */
  copyRaw(dst: bigint, src: bigint, length: number): void {
    checkCuda(
      this.#ctx.cu.cuMemcpyDtoDAsync_v2(dst, src, BigInt(length * 4), this.#ctx.stream),
      `cuMemcpyDtoDAsync_v2(${length * 4} bytes)`,
    );
  }

  /**
   * Queues a fill of `length` elements from `offset` with `value`.
   *
   * @param buf The buffer.
   * @param value The value (see {@linkcode fillWord}).
   * @param length Elements.
   * @param offset First element written.
   */
  fill(buf: CudaBuffer, value: number, length: number, offset: number): void {
    if (length === 0) return;
    this.#ctx.memset(devicePointer(buf, offset), fillWord(buf.dtype, value), length);
  }

  /**
   * A temporary block of `length` f32 elements for work queued next; give it back with
   * {@linkcode CudaMemory.releaseScratch} right after queueing that work (stream order keeps the
   * block untouched until the work is done).
   *
   * @param length Elements (> 0).
   * @returns The device address.
   */
  scratch(length: number): bigint {
    return this.#allocator.alloc(length * 4);
  }

  /**
   * Returns a block from {@linkcode CudaMemory.scratch}.
   *
   * @param ptr Its address.
   */
  releaseScratch(ptr: bigint): void {
    this.#allocator.free(ptr);
  }

  /**
   * The allocator's counters.
   *
   * @returns Live, cached and reserved bytes and blocks, and call counts.
   */
  stats(): AllocatorStats {
    return this.#allocator.stats();
  }

  /** Returns every cached (free) block to the driver. */
  emptyCache(): void {
    this.#allocator.emptyCache();
  }

  /** Returns every block, live or cached, to the driver (the device is going away). */
  releaseAll(): void {
    this.#allocator.releaseAll();
  }
}
