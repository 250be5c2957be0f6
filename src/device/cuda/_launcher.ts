/**
 * The project's PTX module and its kernel launches. The PTX is loaded once
 * (`cuModuleLoadDataEx`, with the JIT error log captured for the error message), each `CUfunction`
 * is looked up once per name, and the arguments travel through one preallocated block of 8-byte
 * slots whose addresses (the `kernelParams` array `cuLaunchKernel` wants) are computed once: a
 * launch only writes the argument values, with no allocation and no pointer conversion.
 *
 * @module
 */

import { checkCuda, CudaError, type CudaSymbols, handleFrom } from "../../../ffi/cuda.ts";
import type { KernelArg, KernelLauncher } from "./_launch.ts";

/** Most arguments one kernel may take. */
export const MAX_KERNEL_ARGS = 32;

// CUjit_option values for the error log of the JIT compiler.
const CU_JIT_ERROR_LOG_BUFFER = 5;
const CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6;
const LOG_BYTES = 16384;

function pointerValue(buf: ArrayBuffer | ArrayBufferView): bigint {
  return Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf as BufferSource));
}

/**
 * Loads PTX and launches its kernels on one stream.
 *
 * @example
 * ```ts ignore
 * import { PtxLauncher } from "./_launcher.ts";
 * const launcher = new PtxLauncher(cuda(), ptxSource, stream);
 * launcher.launch("relu_forward", [4, 1, 1], [256, 1, 1], 0, [{ ptr: x }, { ptr: y }, { u32: 1024 }]);
 * ```
 */
export class PtxLauncher implements KernelLauncher {
  #cu: CudaSymbols;
  #stream: Deno.PointerObject;
  #module: Deno.PointerObject;
  #functions = new Map<string, Deno.PointerObject>();
  // The argument block: slot i lives at byte 8·i; 32-bit values go into its low 4 bytes.
  #slots = new ArrayBuffer(MAX_KERNEL_ARGS * 8);
  #u64 = new BigUint64Array(this.#slots);
  #f32 = new Float32Array(this.#slots);
  #i32 = new Int32Array(this.#slots);
  #u32 = new Uint32Array(this.#slots);
  // kernelParams: the address of every slot, computed once.
  #addresses = new BigUint64Array(MAX_KERNEL_ARGS);
  #params: Deno.PointerObject;
  #nameBytes = new Map<string, Uint8Array>();
  #slot = new BigUint64Array(1);
  #disposed = false;

  /**
   * Loads the module (JIT-compiling the PTX for the current device).
   *
   * @param cu The driver symbols (a context must be current).
   * @param ptx The PTX source.
   * @param stream The stream every launch is queued on.
   * @throws {CudaError} When the driver rejects the PTX; the message holds the JIT log.
   */
  constructor(cu: CudaSymbols, ptx: string, stream: Deno.PointerObject) {
    this.#cu = cu;
    this.#stream = stream;
    this.#module = this.#load(ptx);
    const base = pointerValue(this.#slots);
    for (let i = 0; i < MAX_KERNEL_ARGS; i++) this.#addresses[i] = base + BigInt(i * 8);
    const params = Deno.UnsafePointer.of(this.#addresses);
    if (params === null) throw new Error("Could not take the address of the kernel argument array");
    this.#params = params;
  }

  #load(ptx: string): Deno.PointerObject {
    const image = new TextEncoder().encode(ptx + "\0");
    const log = new Uint8Array(LOG_BYTES);
    const options = new Int32Array([CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES]);
    // Option values are void* slots; the size option carries its integer in the slot itself.
    const values = new BigUint64Array([pointerValue(log), BigInt(LOG_BYTES)]);
    const slot = this.#slot;
    const status = this.#cu.cuModuleLoadDataEx(slot, image, 2, options, values);
    if (status === 0) return handleFrom(slot, "cuModuleLoadDataEx");
    const end = log.indexOf(0);
    const jitLog = new TextDecoder().decode(log.subarray(0, end < 0 ? undefined : end)).trim();
    try {
      checkCuda(status, "cuModuleLoadDataEx(project PTX)");
    } catch (e) {
      if (!(e instanceof CudaError)) throw e;
      const hint = status === 222
        ? " The PTX needs a newer driver (ISA .version 9.0: CUDA 13, driver 580 or later)."
        : "";
      throw new CudaError(
        e.call,
        e.code,
        e.errorName,
        `${e.description}.${hint}${jitLog ? `\nJIT log:\n${jitLog}` : ""}`,
      );
    }
    throw new Error("unreachable");
  }

  #function(name: string): Deno.PointerObject {
    let f = this.#functions.get(name);
    if (f) return f;
    if (this.#disposed) throw new Error("The kernel module has been unloaded");
    let bytes = this.#nameBytes.get(name);
    if (!bytes) this.#nameBytes.set(name, bytes = new TextEncoder().encode(name + "\0"));
    checkCuda(
      this.#cu.cuModuleGetFunction(this.#slot, this.#module, bytes),
      `cuModuleGetFunction("${name}") (is the kernel in ffi/kernels and the PTX rebuilt?)`,
    );
    f = handleFrom(this.#slot, `cuModuleGetFunction("${name}")`);
    this.#functions.set(name, f);
    return f;
  }

  /**
   * Queues `name<<<grid, block, sharedBytes, stream>>>(...args)`.
   *
   * @param name The kernel's symbol.
   * @param grid Grid size (x, y, z), each ≥ 1.
   * @param block Block size (x, y, z), each ≥ 1.
   * @param sharedBytes Dynamic shared memory in bytes.
   * @param args Arguments in parameter order.
   * @throws {RangeError} For more than {@linkcode MAX_KERNEL_ARGS} arguments or a zero extent.
   * @throws {CudaError} When the launch is refused.
   */
  launch(
    name: string,
    grid: readonly [number, number, number],
    block: readonly [number, number, number],
    sharedBytes: number,
    args: readonly KernelArg[],
  ): void {
    if (this.#disposed) throw new Error("The kernel module has been unloaded");
    const f = this.#function(name);
    const n = args.length;
    if (n > MAX_KERNEL_ARGS) {
      throw new RangeError(
        `${name}: at most ${MAX_KERNEL_ARGS} kernel arguments are supported, got ${n}`,
      );
    }
    for (let i = 0; i < n; i++) {
      const a = args[i];
      if ("ptr" in a) this.#u64[i] = a.ptr;
      else if ("f32" in a) this.#f32[2 * i] = a.f32;
      else if ("i32" in a) this.#i32[2 * i] = a.i32;
      else this.#u32[2 * i] = a.u32;
    }
    const gx = grid[0], gy = grid[1], gz = grid[2];
    const bx = block[0], by = block[1], bz = block[2];
    if (!(gx >= 1 && gy >= 1 && gz >= 1 && bx >= 1 && by >= 1 && bz >= 1)) {
      throw new RangeError(
        `${name}: grid [${grid.join(", ")}] and block [${
          block.join(", ")
        }] must be ≥ 1 in every dimension`,
      );
    }
    const status = this.#cu.cuLaunchKernel(
      f,
      gx,
      gy,
      gz,
      bx,
      by,
      bz,
      sharedBytes,
      this.#stream,
      this.#params,
      null,
    );
    if (status !== 0) {
      checkCuda(
        status,
        `cuLaunchKernel(${name}, grid [${grid.join(", ")}], block [${
          block.join(", ")
        }], ${sharedBytes} shared bytes)`,
      );
    }
  }

  /** Unloads the module (the caller has waited for the stream). */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#functions.clear();
    checkCuda(this.#cu.cuModuleUnload(this.#module), "cuModuleUnload");
  }
}
