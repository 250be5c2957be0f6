/**
 * GPU-side timing with a pair of CUDA events recorded on the device's stream: the time between
 * them is what the GPU spent on the work queued in between, free of host launch overhead.
 *
 * @module
 */

import { checkCuda, type CudaSymbols, handleFrom } from "../../../ffi/cuda.ts";

/**
 * Measures stream time between `start()` and `stop()`.
 *
 * @example
 * ```ts ignore
 * const timer = device.createTimer();
 * timer.start();
 * // ... queue work ...
 * const ms = timer.stop();
 * timer.dispose();
 * ```
 */
export class CudaTimer {
  #cu: CudaSymbols;
  #stream: Deno.PointerObject;
  #start: Deno.PointerObject;
  #end: Deno.PointerObject;
  #ms = new Float32Array(1);
  #disposed = false;

  /**
   * Creates the two events.
   *
   * @param cu The driver symbols (the device's context is current).
   * @param stream The stream to time.
   */
  constructor(cu: CudaSymbols, stream: Deno.PointerObject) {
    this.#cu = cu;
    this.#stream = stream;
    const slot = new BigUint64Array(1);
    checkCuda(cu.cuEventCreate(slot, 0), "cuEventCreate");
    this.#start = handleFrom(slot, "cuEventCreate");
    const status = cu.cuEventCreate(slot, 0);
    if (status !== 0) {
      cu.cuEventDestroy_v2(this.#start);
      checkCuda(status, "cuEventCreate");
    }
    this.#end = handleFrom(slot, "cuEventCreate");
  }

  /** Records the start event on the stream. */
  start(): void {
    checkCuda(this.#cu.cuEventRecord(this.#start, this.#stream), "cuEventRecord(start)");
  }

  /**
   * Records the end event, waits for it, and returns the elapsed GPU time.
   *
   * @returns Milliseconds between the two events.
   */
  stop(): number {
    const cu = this.#cu;
    checkCuda(cu.cuEventRecord(this.#end, this.#stream), "cuEventRecord(end)");
    checkCuda(cu.cuEventSynchronize(this.#end), "cuEventSynchronize");
    const elapsed = cu.cuEventElapsedTime_v2 ?? cu.cuEventElapsedTime;
    checkCuda(elapsed(this.#ms, this.#start, this.#end), "cuEventElapsedTime");
    return this.#ms[0];
  }

  /** Destroys the events. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    checkCuda(this.#cu.cuEventDestroy_v2(this.#start), "cuEventDestroy_v2");
    checkCuda(this.#cu.cuEventDestroy_v2(this.#end), "cuEventDestroy_v2");
  }
}
