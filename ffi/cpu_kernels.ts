/**
 * Typed binding to the project's own CPU kernel library (`ffi/cpu_kernels/*.c`): batch norm,
 * ReLU, add, the direct 3×3 convolution and the packing routines of the GEMM-based one, the fused
 * losses (with the vector `exp` and `log1p` they use, bound on their own for the accuracy tests),
 * vectorised for the host CPU and spread over a small pool of threads. The library is compiled on
 * first use with the system's C compiler and cached (see `cpu_kernels/compile.ts`); without a
 * compiler the CPU device runs the same operations in TypeScript.
 *
 * Which kernels run is a choice of each CPU device (`new CpuDevice({ kernels, threads })`);
 * the environment supplies the defaults. `EQL_CPU_KERNELS` is `auto` (default: native when it
 * builds, otherwise TypeScript with a one-time notice), `native` (an error when it cannot be
 * built) or `typescript`. `EQL_CPU_THREADS` sets the pool size, 1 to 256 (default: the number of
 * logical CPUs; more than that is allowed, with a notice, but slows the kernels down). A bad value
 * of either is an error. The pool is process-wide: a device sets its thread count through
 * {@linkcode setCpuThreads}, which calls into the library only when the count changes.
 *
 * The library is built in variants of vector width and register blocking (`avx512`, `avx2`,
 * `portable`; see `cpu_kernels/variant.ts`), each its own file in the cache with its own pool.
 * A device's `variant` option picks one; `EQL_CPU_VARIANT` supplies the default, else the one
 * that fits the CPU.
 *
 * @module
 */

import { cachedBuild, compilerTimeoutSeconds } from "./cpu_kernels/compile.ts";
import { CPU_KERNEL_SOURCES } from "./cpu_kernels/sources.ts";
import {
  CPU_VARIANT_ENV_VAR,
  type CpuVariant,
  type CpuVariantChoice,
  cpuVariantFromEnv,
  VARIANT_NUMBER,
} from "./cpu_kernels/variant.ts";

export { CPU_VARIANT_ENV_VAR, type CpuVariant, type CpuVariantChoice };

/**
 * Raised when the native CPU kernels were asked for explicitly (`EQL_CPU_KERNELS=native` or
 * `kernels: "native"`) but cannot be built or loaded; the message says why (a missing compiler,
 * a missing Deno permission, a failed build).
 *
 * @example
 * ```ts
 * import { CpuKernelsUnavailableError } from "@eql/eql";
 * const e = new CpuKernelsUnavailableError("EQL_CPU_KERNELS=native, but …");
 * console.log(e.name); // "CpuKernelsUnavailableError"
 * ```
 */
export class CpuKernelsUnavailableError extends Error {
  /** Builds the error from its message. */
  constructor(message: string) {
    super(message);
    this.name = "CpuKernelsUnavailableError";
  }
}

/** Environment variable choosing between the native and the TypeScript CPU kernels. */
export const CPU_KERNELS_ENV_VAR = "EQL_CPU_KERNELS";
/** Environment variable setting the number of threads of the native kernels. */
export const CPU_THREADS_ENV_VAR = "EQL_CPU_THREADS";
/** The most threads the kernels' pool runs (`MAX_THREADS` in `pool.c`). */
export const MAX_CPU_THREADS = 256;
/** The interface version the table below describes (`EQL_CPU_ABI` in `eql_cpu.h`). */
export const CPU_KERNELS_ABI = 11;

/** The native symbols; sizes are `int32_t` unless marked `int64_t`. */
export const CPU_KERNEL_SYMBOLS = {
  eql_cpu_abi: { parameters: [], result: "i32" },
  eql_cpu_variant: { parameters: [], result: "i32" }, // EQL_VARIANT_* of the build
  eql_cpu_set_threads: {
    parameters: [
      "i32", // int32_t n
    ],
    result: "i32", // threads in effect
  },
  eql_pool_check: {
    parameters: [
      "i64", // int64_t jobs
      "i64", // int64_t n
      "i64", // int64_t grain
    ],
    result: "i64", // (job, index) pairs not covered exactly once; -1 when out of memory
  },
  eql_relu_forward: {
    parameters: [
      "buffer", // const float *x
      "buffer", // float *y
      "i64", // int64_t n
    ],
    result: "void",
  },
  eql_relu_backward: {
    parameters: [
      "buffer", // const float *y
      "buffer", // const float *dy
      "buffer", // float *dx
      "i64", // int64_t n
    ],
    result: "void",
  },
  eql_add: {
    parameters: [
      "buffer", // const float *a
      "buffer", // const float *b
      "buffer", // float *out
      "i64", // int64_t n
    ],
    result: "void",
  },
  eql_sgd_update: {
    parameters: [
      "buffer", // float *p
      "buffer", // const float *grad
      "buffer", // float *buf
      "i64", // int64_t n
      "f64", // double lr
      "f64", // double momentum
      "f64", // double weight_decay
      "i32", // int32_t nesterov
    ],
    result: "void",
  },
  eql_bn_forward_training: {
    parameters: [
      "buffer", // const float *x
      "buffer", // float *y
      "buffer", // const float *residual (NULL: none)
      "i32", // int32_t relu
      "buffer", // const float *gamma
      "buffer", // const float *beta
      "buffer", // float *running_mean
      "buffer", // float *running_var
      "buffer", // float *save_mean
      "buffer", // float *save_invstd
      "i32", // int32_t n
      "i32", // int32_t c
      "i32", // int32_t hw
      "f64", // double momentum
      "f64", // double eps
    ],
    result: "i32", // 0, or -1 when out of memory
  },
  eql_bn_forward_inference: {
    parameters: [
      "buffer", // const float *x
      "buffer", // float *y
      "buffer", // const float *gamma
      "buffer", // const float *beta
      "buffer", // const float *running_mean
      "buffer", // const float *running_var
      "i32", // int32_t n
      "i32", // int32_t c
      "i32", // int32_t hw
      "f64", // double eps
    ],
    result: "i32", // 0, or -1 when out of memory
  },
  eql_bn_backward: {
    parameters: [
      "buffer", // const float *x
      "buffer", // const float *y (NULL: no ReLU to undo)
      "buffer", // const float *dy
      "buffer", // float *dx
      "buffer", // float *dres (NULL: not wanted)
      "buffer", // const float *gamma
      "buffer", // float *dgamma
      "buffer", // float *dbeta
      "buffer", // const float *save_mean
      "buffer", // const float *save_invstd
      "i32", // int32_t n
      "i32", // int32_t c
      "i32", // int32_t hw
    ],
    result: "i32", // 0, or -1 when out of memory
  },
  eql_pack_planes: {
    parameters: [
      "buffer", // const float *x
      "buffer", // float *out
      "i64", // int64_t n0
      "i64", // int64_t nb
      "i64", // int64_t c_in
      "i64", // int64_t h
      "i64", // int64_t w
      "i64", // int64_t kh
      "i64", // int64_t kw
      "i64", // int64_t pad_h
      "i64", // int64_t pad_w
      "i64", // int64_t block
      "i64", // int64_t len
      "i32", // int32_t full
      "i64", // int64_t tail
    ],
    result: "void",
  },
  eql_unpack_grid: {
    parameters: [
      "buffer", // const float *grid
      "buffer", // float *dst
      "i64", // int64_t n0
      "i64", // int64_t nb
      "i64", // int64_t rows
      "i64", // int64_t w
      "i64", // int64_t out_h
      "i64", // int64_t out_w
      "i64", // int64_t block
      "i64", // int64_t len
    ],
    result: "void",
  },
  eql_pack_grid: {
    parameters: [
      "buffer", // const float *src
      "buffer", // float *grid
      "i64", // int64_t n0
      "i64", // int64_t nb
      "i64", // int64_t rows
      "i64", // int64_t w
      "i64", // int64_t out_h
      "i64", // int64_t out_w
      "i64", // int64_t block
      "i64", // int64_t len
    ],
    result: "void",
  },
  eql_conv3x3_forward: {
    parameters: [
      "buffer", // const float *x
      "buffer", // const float *w
      "buffer", // float *y
      "i64", // int64_t n
      "i64", // int64_t c_in
      "i64", // int64_t h
      "i64", // int64_t wd
      "i64", // int64_t c_out
      "i64", // int64_t stride (1 or 2)
    ],
    result: "i32", // 0, or -1 when out of memory
  },
  eql_conv3x3_backward_data: {
    parameters: [
      "buffer", // const float *w
      "buffer", // const float *dy
      "buffer", // float *dx
      "i64", // int64_t n
      "i64", // int64_t c_in
      "i64", // int64_t h
      "i64", // int64_t wd
      "i64", // int64_t c_out
    ],
    result: "i32", // 0, or -1 when out of memory
  },
  eql_conv3x3_s2_backward_data: {
    parameters: [
      "buffer", // const float *w
      "buffer", // const float *dy
      "buffer", // float *dx
      "i64", // int64_t n
      "i64", // int64_t c_in
      "i64", // int64_t h
      "i64", // int64_t wd
      "i64", // int64_t c_out
    ],
    result: "i32", // 0, or -1 when out of memory
  },
  eql_conv3x3_backward_filter: {
    parameters: [
      "buffer", // const float *x
      "buffer", // const float *dy
      "buffer", // float *dw
      "i64", // int64_t n
      "i64", // int64_t c_in
      "i64", // int64_t h
      "i64", // int64_t wd
      "i64", // int64_t c_out
      "i64", // int64_t stride (1 or 2)
    ],
    result: "i32", // 0, or -1 when out of memory
  },
  eql_sigmoid_loss: {
    parameters: [
      "buffer", // const float *logits
      "buffer", // const int32_t *labels
      "buffer", // float *grad
      "buffer", // float *row_loss
      "i64", // int64_t n
      "i64", // int64_t c
      "f64", // double scale
      "buffer", // const float *suppress (NULL: none)
      "i32", // int32_t background_exempt
      "buffer", // const float *class_weight (NULL: none)
      "f64", // double focal_gamma
      "f64", // double focal_alpha (negative: off)
      "buffer", // const int32_t *image_of_row (NULL: no keep mask)
      "buffer", // const int32_t *keep_mask (NULL: none)
    ],
    result: "void",
  },
  eql_softmax_loss: {
    parameters: [
      "buffer", // const float *logits
      "buffer", // const int32_t *labels
      "buffer", // float *grad
      "buffer", // float *row_loss
      "i64", // int64_t n
      "i64", // int64_t c
      "f64", // double scale
      "buffer", // const float *suppress (NULL: nothing masked)
      "i64", // int64_t gamma_threshold
      "u32", // uint32_t seed
      "u32", // uint32_t counter
      "buffer", // const float *class_weight (NULL: none)
      "buffer", // const float *logit_bias (NULL: none)
    ],
    result: "void",
  },
  eql_eqlv2_loss: {
    parameters: [
      "buffer", // const float *logits
      "buffer", // const int32_t *labels
      "buffer", // float *grad
      "buffer", // float *row_loss
      "buffer", // float *stats
      "i64", // int64_t n
      "i64", // int64_t c
      "f64", // double scale
      "buffer", // const float *pos_weight
      "buffer", // const float *neg_weight
    ],
    result: "i32", // 0, or -1 when the chunk sums could not be allocated
  },
  eql_seesaw_loss: {
    parameters: [
      "buffer", // const float *logits
      "buffer", // const int32_t *labels
      "buffer", // float *grad
      "buffer", // float *row_loss
      "i64", // int64_t n
      "i64", // int64_t c
      "f64", // double scale
      "buffer", // const float *log_count
      "f64", // double p
      "f64", // double q
      "f64", // double eps
    ],
    result: "void",
  },
  eql_smooth_l1_loss: {
    parameters: [
      "buffer", // const float *pred
      "buffer", // const float *target
      "buffer", // const float *row_weight
      "buffer", // float *grad
      "buffer", // float *row_loss
      "i64", // int64_t n
      "i64", // int64_t d
      "f64", // double beta
      "f64", // double scale
    ],
    result: "void",
  },
  eql_exp_f32: {
    parameters: [
      "buffer", // const float *x
      "buffer", // float *y
      "i64", // int64_t n
    ],
    result: "void",
  },
  eql_exp_f64: {
    parameters: [
      "buffer", // const double *x
      "buffer", // float *y
      "i64", // int64_t n
    ],
    result: "void",
  },
  eql_log1p_f32: {
    parameters: [
      "buffer", // const float *x
      "buffer", // float *y
      "i64", // int64_t n
    ],
    result: "void",
  },
  eql_exp_diff_f32: {
    parameters: [
      "buffer", // const float *a
      "buffer", // const float *b
      "buffer", // float *y
      "i64", // int64_t n
    ],
    result: "void",
  },
  eql_log1p_unit_f32: {
    parameters: [
      "buffer", // const float *x
      "buffer", // float *y
      "i64", // int64_t n
    ],
    result: "void",
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** The opened kernel library with the symbols above. */
export type CpuKernelLibrary = Deno.DynamicLibrary<typeof CPU_KERNEL_SYMBOLS>;

/** A variant's library once a load was tried: open, or `null` with the reason. */
interface Loaded {
  lib: CpuKernelLibrary | null;
  error?: string;
  /** The thread count last asked of its pool, and the count it gave. */
  threadsAsked: number;
  threadsInEffect: number;
}
/** Each variant's library has its own pool. */
const loaded = new Map<CpuVariant, Loaded>();
/** The library of the environment's default variant, once resolved. */
let defaultLoaded: Loaded | undefined;
/** What `cpuKernels()` without a choice resolved to (the environment's default). */
let envResult: CpuKernelLibrary | null | undefined;
let envTypescript = false;
let fallbackNoticed = false;

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined;
  }
}

/**
 * The pool size asked for: `EQL_CPU_THREADS`, or the number of logical CPUs.
 *
 * @returns The thread count, from 1 to {@linkcode MAX_CPU_THREADS}.
 * @throws {RangeError} When `EQL_CPU_THREADS` is not a whole number in that range.
 *
 * @example
 * ```ts
 * import { cpuThreadCount } from "./cpu_kernels.ts";
 * console.log(cpuThreadCount()); // e.g. 8
 * ```
 */
export function cpuThreadCount(): number {
  const raw = env(CPU_THREADS_ENV_VAR);
  if (raw === undefined) {
    return Math.min(Math.max(navigator.hardwareConcurrency || 1, 1), MAX_CPU_THREADS);
  }
  const n = /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1 && n <= MAX_CPU_THREADS)) {
    throw new RangeError(
      `${CPU_THREADS_ENV_VAR} must be a whole number from 1 to ${MAX_CPU_THREADS}, got "${raw}"`,
    );
  }
  return n;
}

/** Which CPU kernels to run: native when they build (`auto`), native or an error, or TypeScript. */
export type CpuKernelsChoice = "auto" | "native" | "typescript";

/**
 * The default kernel choice: `EQL_CPU_KERNELS`, or `auto` when it is unset.
 *
 * @returns The choice.
 * @throws {RangeError} When `EQL_CPU_KERNELS` holds another value.
 *
 * @example
 * ```ts
 * import { cpuKernelsChoice } from "./cpu_kernels.ts";
 * console.log(cpuKernelsChoice()); // "auto" unless EQL_CPU_KERNELS says otherwise
 * ```
 */
export function cpuKernelsChoice(): CpuKernelsChoice {
  const raw = env(CPU_KERNELS_ENV_VAR) ?? "auto";
  const value = raw.trim().toLowerCase();
  if (value === "auto" || value === "") return "auto";
  if (value === "native" || value === "typescript") return value;
  if (value === "ts") return "typescript";
  throw new RangeError(
    `${CPU_KERNELS_ENV_VAR} must be "auto", "native" or "typescript", got "${raw}"`,
  );
}

/** Opens the library at `path` and checks its interface version and variant. */
function load(path: string, variant: CpuVariant): CpuKernelLibrary {
  const lib = Deno.dlopen(path, CPU_KERNEL_SYMBOLS);
  const abi = lib.symbols.eql_cpu_abi();
  if (abi !== CPU_KERNELS_ABI) {
    lib.close();
    throw new Error(`it has interface version ${abi}, expected ${CPU_KERNELS_ABI}`);
  }
  const built = lib.symbols.eql_cpu_variant();
  if (built !== VARIANT_NUMBER[variant]) {
    lib.close();
    throw new Error(`it is variant ${built}, expected ${VARIANT_NUMBER[variant]} (${variant})`);
  }
  return lib;
}

function open(threads: number, variant: CpuVariant, state: Loaded): CpuKernelLibrary {
  const onSlow = () =>
    console.warn("Note: compiling the CPU kernels… (once; the result is cached for later runs)");
  let built = cachedBuild("libeqlcpu", CPU_KERNEL_SOURCES, { onSlow, variant });
  if ("error" in built) throw new Error(built.error);
  let lib: CpuKernelLibrary;
  try {
    lib = load(built.path, variant);
  } catch (e) {
    const why = (e as Error).message.split("\n")[0];
    if (built.built) throw new Error(`${built.path} was just built but cannot be used: ${why}`);
    // The checksum matched, yet it does not load: rebuild it once.
    const damaged = `it could not be loaded: ${why}`;
    built = cachedBuild("libeqlcpu", CPU_KERNEL_SOURCES, { onSlow, damaged, variant });
    if ("error" in built) throw new Error(built.error);
    // Another name for the same file: the dynamic loader hands back a library it already has
    // open (a failed interface check leaves it mapped) when asked for it by the same name.
    const slash = built.path.lastIndexOf("/");
    const fresh = `${built.path.slice(0, slash)}/./${built.path.slice(slash + 1)}`;
    try {
      lib = load(fresh, variant);
    } catch (e2) {
      throw new Error(`${built.path} was rebuilt but cannot be used: ${(e2 as Error).message}`);
    }
  }
  if (built.repaired !== undefined) {
    console.warn(
      `Note: the cached CPU kernel library at ${built.path} was damaged (${built.repaired}) ` +
        "and was rebuilt.",
    );
  }
  const inEffect = lib.symbols.eql_cpu_set_threads(threads);
  state.threadsAsked = threads;
  state.threadsInEffect = inEffect;
  const cores = navigator.hardwareConcurrency || 1;
  if (inEffect < threads) {
    console.warn(
      `Note: the CPU kernels run ${inEffect} threads, not the ${threads} ` +
        `${CPU_THREADS_ENV_VAR} asks for (the library could not start more).`,
    );
  } else if (env(CPU_THREADS_ENV_VAR) !== undefined && threads > cores) {
    console.warn(
      `Note: ${CPU_THREADS_ENV_VAR}=${threads} is more than the ${cores} logical CPUs of this ` +
        "machine; more threads than cores slow the CPU kernels down.",
    );
  }
  return lib;
}

/**
 * The native CPU kernels (each variant built and opened once per process), or `null` when the
 * choice is `typescript` or, with `auto`, when they cannot be built; the reason is then available
 * from {@linkcode cpuKernelsUnavailableReason} and printed once as a notice. A cached library
 * that fails its checksum or does not load is rebuilt once, with a notice naming it.
 *
 * @param choice Which kernels to run; absent: the environment's default
 *   ({@linkcode cpuKernelsChoice}), resolved once per process.
 * @param variant Which build (vector width and blocking, see `cpu_kernels/variant.ts`); absent:
 *   `EQL_CPU_VARIANT`, else the one that fits the CPU.
 * @returns The opened library, or `null`.
 * @throws {Error} With the choice `native`, when the library cannot be built or opened.
 * @throws {RangeError} When `EQL_CPU_KERNELS`, `EQL_CPU_THREADS`, `EQL_CPU_VARIANT` or
 *   `EQL_CC_TIMEOUT_S` holds an invalid value (whichever kernels run).
 *
 * @example
 * ```ts
 * import { cpuKernels } from "./cpu_kernels.ts";
 * console.log(cpuKernels() === null ? "TypeScript kernels" : "native kernels");
 * console.log(cpuKernels("typescript")); // null
 * ```
 */
export function cpuKernels(
  choice?: CpuKernelsChoice,
  variant?: CpuVariant,
): CpuKernelLibrary | null {
  if (choice !== undefined || variant !== undefined) {
    return resolve(
      choice ?? cpuKernelsChoice(),
      variant ?? cpuVariantFromEnv(),
      choice === undefined,
      variant === undefined,
    );
  }
  if (envResult !== undefined) return envResult;
  const lib = resolve(cpuKernelsChoice(), cpuVariantFromEnv(), true, true);
  envResult = lib;
  return lib;
}

function resolve(
  choice: CpuKernelsChoice,
  variant: CpuVariant,
  fromEnv: boolean,
  variantFromEnv: boolean,
): CpuKernelLibrary | null {
  // Bad values are errors whichever kernels run, not reasons to fall back.
  const threads = cpuThreadCount();
  compilerTimeoutSeconds();
  if (choice === "typescript") {
    if (fromEnv && variantFromEnv) envTypescript = true;
    return null;
  }
  let state = loaded.get(variant);
  if (state === undefined) {
    state = { lib: null, threadsAsked: 0, threadsInEffect: 0 };
    try {
      state.lib = open(threads, variant, state);
    } catch (e) {
      state.error = (e as Error).message;
    }
    loaded.set(variant, state);
  }
  if (variantFromEnv) defaultLoaded = state;
  if (state.lib !== null) return state.lib;
  if (choice === "native") {
    throw new CpuKernelsUnavailableError(
      `${
        fromEnv ? `${CPU_KERNELS_ENV_VAR}=native` : 'The CPU device was asked for kernels: "native"'
      }, but the CPU kernels are unavailable (variant ${variant}): ${state.error}`,
    );
  }
  if (!fallbackNoticed) {
    fallbackNoticed = true;
    console.warn(
      "Note: the native CPU kernels could not be built, so batch norm, ReLU, the convolution " +
        `packing and the losses run in TypeScript (slower). Reason: ${state.error}`,
    );
  }
  return null;
}

/**
 * Why the native CPU kernels are not in use, or `undefined` when they are (or were not yet
 * looked for).
 *
 * @returns The reason: the loader's error, or `EQL_CPU_KERNELS=typescript` when the environment
 *   chose them away.
 *
 * @example
 * ```ts
 * import { cpuKernels, cpuKernelsUnavailableReason } from "./cpu_kernels.ts";
 * if (cpuKernels() === null) console.log(cpuKernelsUnavailableReason());
 * ```
 */
export function cpuKernelsUnavailableReason(): string | undefined {
  const failed = defaultLoaded?.error ?? [...loaded.values()].find((l) => l.error)?.error;
  return failed ?? (envTypescript ? `${CPU_KERNELS_ENV_VAR}=typescript` : undefined);
}

/** The load state of a library (default: the environment's variant, else any loaded one). */
function stateOf(lib?: CpuKernelLibrary): Loaded | undefined {
  if (lib === undefined) return defaultLoaded ?? [...loaded.values()].find((l) => l.lib !== null);
  return [...loaded.values()].find((l) => l.lib === lib);
}

/**
 * The variant a loaded library was built as.
 *
 * @param lib A library returned by {@linkcode cpuKernels}.
 * @returns Its variant, or `undefined` for a library this module did not load.
 *
 * @example
 * ```ts
 * import { cpuKernels, cpuKernelsVariant } from "./cpu_kernels.ts";
 * const lib = cpuKernels();
 * if (lib !== null) console.log(cpuKernelsVariant(lib)); // e.g. "avx512"
 * ```
 */
export function cpuKernelsVariant(lib: CpuKernelLibrary): CpuVariant | undefined {
  for (const [variant, state] of loaded) if (state.lib === lib) return variant;
  return undefined;
}

/**
 * Sets the thread count of a kernel library's process-wide pool, calling into the library only
 * when it differs from the count last asked for here (devices with their own `threads` call it
 * before every native kernel, so switching between them costs one comparison). Does nothing
 * before the library is loaded.
 *
 * @param threads Threads wanted, 1 to {@linkcode MAX_CPU_THREADS}.
 * @param lib The library whose pool to set (default: the environment's variant's).
 * @returns The threads in effect (fewer when the library could not start more); 0 when the
 *   library is not loaded.
 *
 * @example
 * ```ts
 * import { cpuKernels, setCpuThreads } from "./cpu_kernels.ts";
 * if (cpuKernels() !== null) setCpuThreads(2); // 2
 * ```
 */
export function setCpuThreads(threads: number, lib?: CpuKernelLibrary): number {
  const state = stateOf(lib);
  if (state === undefined || state.lib === null) return 0;
  if (threads === state.threadsAsked) return state.threadsInEffect;
  state.threadsInEffect = state.lib.symbols.eql_cpu_set_threads(threads);
  state.threadsAsked = threads;
  return state.threadsInEffect;
}

/**
 * A kernel library's pool thread count as last set through {@linkcode setCpuThreads} or at load
 * (0 before the library is loaded).
 *
 * @param lib The library (default: the environment's variant's).
 * @returns The threads in effect.
 *
 * @example
 * ```ts
 * import { cpuPoolThreads } from "./cpu_kernels.ts";
 * console.log(cpuPoolThreads()); // e.g. 8
 * ```
 */
export function cpuPoolThreads(lib?: CpuKernelLibrary): number {
  return stateOf(lib)?.threadsInEffect ?? 0;
}
