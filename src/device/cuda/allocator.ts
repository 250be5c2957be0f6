/**
 * A caching allocator over `cuMemAlloc_v2`. Requests are rounded up to a size class (multiples of
 * 512 bytes below 1 MiB, eighths of the power of two above), freed blocks go back to their class's
 * free list instead of to the driver, and a later request of the same class reuses one. Every
 * operation runs on the device's one stream, so a block freed by the host while queued work still
 * uses it is only reused by work queued after that work: stream order keeps it safe.
 *
 * Memory goes back to the driver only in `emptyCache()` (also tried once when an allocation runs
 * out of memory) and `releaseAll()`, both after waiting for the stream.
 *
 * @module
 */

import { checkCuda, CU, type CudaSymbols } from "../../../ffi/cuda.ts";

/** Counters of a {@linkcode CachingAllocator}. */
export interface AllocatorStats {
  /** Bytes in blocks handed out and not yet freed (size classes, not requests). */
  liveBytes: number;
  /** Blocks handed out and not yet freed. */
  liveBlocks: number;
  /** Bytes held in the free lists. */
  cachedBytes: number;
  /** Blocks held in the free lists. */
  cachedBlocks: number;
  /** `liveBytes + cachedBytes`: what the allocator holds from the driver. */
  reservedBytes: number;
  /** Highest `reservedBytes` seen. */
  peakReservedBytes: number;
  /** `cuMemAlloc_v2` calls made. */
  driverAllocs: number;
  /** `cuMemFree_v2` calls made. */
  driverFrees: number;
  /** Requests served from a free list. */
  cacheHits: number;
}

const MiB = 1 << 20;

/**
 * The size class of a request: the bytes actually reserved for it.
 *
 * @param bytes Requested bytes (> 0).
 * @returns The rounded size.
 *
 * @example
 * ```ts
 * import { sizeClass } from "./allocator.ts";
 * sizeClass(100); // 512
 * sizeClass(3 * 1024 * 1024 + 1); // 3407872 (3.25 MiB)
 * ```
 */
export function sizeClass(bytes: number): number {
  if (bytes <= MiB) return Math.ceil(bytes / 512) * 512;
  const step = 2 ** (Math.floor(Math.log2(bytes)) - 3);
  return Math.ceil(bytes / step) * step;
}

/**
 * Device memory with a per-size-class cache.
 *
 * @example
 * ```ts ignore
 * import { CachingAllocator } from "./allocator.ts";
 * import { cuda } from "../../../ffi/cuda.ts";
 * const a = new CachingAllocator(cuda(), () => {});
 * const p = a.alloc(4096);
 * a.free(p);
 * a.stats().cachedBlocks; // 1
 * ```
 */
export class CachingAllocator {
  #cu: CudaSymbols;
  #waitIdle: () => void;
  #free = new Map<number, bigint[]>();
  #live = new Map<bigint, number>();
  #slot = new BigUint64Array(1);
  #liveBytes = 0;
  #cachedBytes = 0;
  #cachedBlocks = 0;
  #peak = 0;
  #driverAllocs = 0;
  #driverFrees = 0;
  #hits = 0;

  /**
   * Creates an empty allocator.
   *
   * @param cu The driver symbols.
   * @param waitIdle Waits until no queued work can still touch a block (the stream's sync).
   */
  constructor(cu: CudaSymbols, waitIdle: () => void) {
    this.#cu = cu;
    this.#waitIdle = waitIdle;
  }

  /**
   * Reserves at least `bytes` bytes (> 0) of device memory.
   *
   * @param bytes Requested size.
   * @returns The device address.
   * @throws {CudaError} When the driver cannot provide the memory even after the cache is emptied.
   */
  alloc(bytes: number): bigint {
    if (!Number.isSafeInteger(bytes) || bytes <= 0) {
      throw new RangeError(`bytes must be a positive integer, got ${bytes}`);
    }
    const size = sizeClass(bytes);
    const list = this.#free.get(size);
    let ptr = list?.pop();
    if (ptr !== undefined) {
      this.#hits++;
      this.#cachedBytes -= size;
      this.#cachedBlocks--;
    } else {
      let status = this.#cu.cuMemAlloc_v2(this.#slot, BigInt(size));
      if (status === CU.ERROR_OUT_OF_MEMORY && this.#cachedBlocks > 0) {
        this.emptyCache();
        status = this.#cu.cuMemAlloc_v2(this.#slot, BigInt(size));
      }
      if (status !== 0) {
        checkCuda(
          status,
          `cuMemAlloc_v2(${size} bytes; ${this.#liveBytes} bytes already in use by this device)`,
        );
      }
      ptr = this.#slot[0];
      this.#driverAllocs++;
    }
    this.#live.set(ptr, size);
    this.#liveBytes += size;
    this.#peak = Math.max(this.#peak, this.#liveBytes + this.#cachedBytes);
    return ptr;
  }

  /**
   * Returns a block to its size class's free list.
   *
   * @param ptr An address `alloc` returned and that has not been freed since.
   * @throws {Error} When the address is not a live block of this allocator.
   */
  free(ptr: bigint): void {
    const size = this.#live.get(ptr);
    if (size === undefined) {
      throw new Error(`Device address 0x${ptr.toString(16)} is not a live block of this device`);
    }
    this.#live.delete(ptr);
    this.#liveBytes -= size;
    let list = this.#free.get(size);
    if (!list) this.#free.set(size, list = []);
    list.push(ptr);
    this.#cachedBytes += size;
    this.#cachedBlocks++;
  }

  /** Gives every cached (free) block back to the driver, after waiting for queued work. */
  emptyCache(): void {
    if (this.#cachedBlocks === 0) return;
    this.#waitIdle();
    for (const [size, list] of this.#free) {
      while (list.length > 0) {
        const ptr = list.pop()!;
        this.#cachedBytes -= size;
        this.#cachedBlocks--;
        this.#driverFrees++;
        checkCuda(this.#cu.cuMemFree_v2(ptr), `cuMemFree_v2(${size} bytes)`);
      }
    }
    this.#free.clear();
  }

  /** Gives every block, live or cached, back to the driver (the device is going away). */
  releaseAll(): void {
    this.#waitIdle();
    this.emptyCache();
    for (const [ptr, size] of this.#live) {
      this.#driverFrees++;
      checkCuda(this.#cu.cuMemFree_v2(ptr), `cuMemFree_v2(${size} bytes)`);
    }
    this.#live.clear();
    this.#liveBytes = 0;
  }

  /**
   * The allocator's counters.
   *
   * @returns A snapshot.
   */
  stats(): AllocatorStats {
    return {
      liveBytes: this.#liveBytes,
      liveBlocks: this.#live.size,
      cachedBytes: this.#cachedBytes,
      cachedBlocks: this.#cachedBlocks,
      reservedBytes: this.#liveBytes + this.#cachedBytes,
      peakReservedBytes: this.#peak,
      driverAllocs: this.#driverAllocs,
      driverFrees: this.#driverFrees,
      cacheHits: this.#hits,
    };
  }
}
