/**
 * Picking a device: the CUDA device when the driver, a GPU, cuBLAS and cuDNN all work, the CPU
 * device otherwise, with the reason. `EQL_DEVICE=cpu` forces the CPU and `EQL_DEVICE=cuda` the GPU
 * (an error when it cannot be opened).
 *
 * The CUDA device (and its PTX module, about 600 KB of source) is imported dynamically, only when
 * it is about to be opened, so that a program on the CPU never loads it; this is why
 * {@linkcode chooseDevice} and {@linkcode autoDevice} are asynchronous.
 *
 * @module
 */

import { LibraryNotFoundError } from "../../ffi/discovery.ts";
import { envVar } from "../../ffi/discovery.ts";
import { checkCuda, cuda } from "../../ffi/cuda.ts";
import { cublas } from "../../ffi/cublas.ts";
import { cudnn } from "../../ffi/cudnn.ts";
import type { Device } from "./device.ts";
import { cpuDevice } from "./cpu.ts";
import type { CudaDeviceOptions } from "./cuda.ts";

/** Opens the shared CUDA device, loading its module (and the PTX) on first use. */
async function openCuda(options: CudaDeviceOptions): Promise<Device> {
  const { cudaDevice } = await import("./cuda.ts");
  return cudaDevice(options);
}

export type { Device } from "./device.ts";

/** Whether the CUDA device can be used, and why (not). */
export interface CudaAvailability {
  /** True when the driver, a GPU, cuBLAS and cuDNN were all found and answered. */
  ok: boolean;
  /** What was found, or what is missing and how to fix it. */
  reason: string;
}

function why(e: unknown): string {
  if (e instanceof LibraryNotFoundError) {
    if (e.missing.length > 0) return e.message; // a permission, not a path, is missing
    return `${e.library} could not be loaded (tried ${e.tried.length} places; set ${e.envVar} to its path)`;
  }
  return e instanceof Error ? e.message.split("\n")[0] : String(e);
}

let availability: CudaAvailability | undefined;

/**
 * Checks, without creating a context, that the CUDA driver loads and initialises, that it sees a
 * GPU, and that cuBLAS and cuDNN load. The answer is cached; the call never throws.
 *
 * @returns `{ ok, reason }`.
 *
 * @example
 * ```ts
 * import { cudaAvailable } from "@eql/eql";
 * const { ok, reason } = cudaAvailable();
 * console.log(ok ? "GPU" : `CPU: ${reason}`);
 * ```
 */
export function cudaAvailable(): CudaAvailability {
  if (availability) return availability;
  availability = probe();
  return availability;
}

function probe(): CudaAvailability {
  let step = "CUDA driver";
  try {
    const cu = cuda();
    checkCuda(cu.cuInit(0), "cuInit");
    const n = new Int32Array(1);
    checkCuda(cu.cuDeviceGetCount(n), "cuDeviceGetCount");
    if (n[0] < 1) return { ok: false, reason: "The CUDA driver sees no GPU" };
    checkCuda(cu.cuDriverGetVersion(n), "cuDriverGetVersion");
    const driver = `${Math.floor(n[0] / 1000)}.${(n[0] % 1000) / 10}`;
    step = "cuBLAS";
    cublas();
    step = "cuDNN";
    const v = Number(cudnn().cudnnGetVersion());
    return {
      ok: true,
      reason: `CUDA driver ${driver} with a GPU, cuBLAS 13 and cuDNN ${Math.floor(v / 10000)}.${
        Math.floor(v / 100) % 100
      } found`,
    };
  } catch (e) {
    return { ok: false, reason: `${step}: ${why(e)}` };
  }
}

/** Options of {@linkcode autoDevice}. */
export interface AutoDeviceOptions {
  /** Print one line saying which device was chosen and why. */
  verbose?: boolean;
  /** Allow TF32 on the GPU (see `CudaDeviceOptions.tf32`). */
  tf32?: boolean;
}

/** A chosen device and the reason for the choice. */
export interface DeviceChoice {
  /** The device. */
  device: Device;
  /** Why it was chosen (for the CPU: why not CUDA). */
  reason: string;
}

/**
 * Chooses the device and says why. The CUDA device's module is imported only when the GPU is
 * usable or forced.
 *
 * @param options TF32 for the GPU.
 * @returns The device and the reason.
 * @throws {Error} Only when `EQL_DEVICE=cuda` forces a GPU that cannot be opened, or
 *   `EQL_DEVICE` holds something other than "cpu", "cuda" or "auto".
 *
 * @example
 * ```ts
 * import { chooseDevice } from "@eql/eql";
 * const { device, reason } = await chooseDevice();
 * console.log(device.kind, reason);
 * ```
 */
export async function chooseDevice(options: AutoDeviceOptions = {}): Promise<DeviceChoice> {
  const forced = envVar("EQL_DEVICE")?.toLowerCase();
  if (forced === "cpu") return { device: cpuDevice(), reason: "EQL_DEVICE=cpu" };
  if (forced === "cuda") {
    return { device: await openCuda({ tf32: options.tf32 }), reason: "EQL_DEVICE=cuda" };
  }
  if (forced !== undefined && forced !== "auto") {
    throw new RangeError(`EQL_DEVICE must be "cpu", "cuda" or "auto", got "${forced}"`);
  }
  const avail = cudaAvailable();
  if (!avail.ok) return { device: cpuDevice(), reason: `CUDA not used: ${avail.reason}` };
  try {
    const device = await openCuda({ tf32: options.tf32 });
    return { device, reason: avail.reason };
  } catch (e) {
    return { device: cpuDevice(), reason: `CUDA not used: the GPU could not be opened: ${why(e)}` };
  }
}

/**
 * The CUDA device when it works, the CPU device otherwise.
 *
 * @param options `verbose` prints one line with the choice and the reason; `tf32` for the GPU.
 * @returns The device.
 *
 * @example
 * ```ts
 * import { autoDevice } from "@eql/eql";
 * const device = await autoDevice({ verbose: true }); // e.g. "device: cpu (CUDA not used: ...)"
 * device.kind; // "cpu" or "cuda"
 * ```
 */
export async function autoDevice(options: AutoDeviceOptions = {}): Promise<Device> {
  const { device, reason } = await chooseDevice(options);
  if (options.verbose) console.log(`device: ${device.description} (${reason})`);
  return device;
}
