/**
 * Typed binding to OpenBLAS (the CBLAS single-precision GEMM and the thread-count controls).
 *
 * The library is found through `openLibrary`: the path in `EQL_OPENBLAS_PATH` when it is set,
 * otherwise `libopenblas.so.0`, `libopenblas.so` and the usual Debian/Ubuntu locations
 * (package `libopenblas0-pthread`). It is opened lazily, once per process.
 *
 * When the library picked an old generic kernel set for a CPU with AVX2 (a CPU model newer than
 * the library; see `openblas_core.ts`), and `OPENBLAS_CORETYPE` is not set, it is closed before
 * its first use and opened again with `OPENBLAS_CORETYPE` naming a core that fits the CPU's
 * flags. {@linkcode openBlasCore} says which core runs and whether it was chosen so.
 *
 * @module
 */

import { LibraryNotFoundError, openLibrary } from "./discovery.ts";
import { fallbackCoreFix, OPENBLAS_CORETYPE_ENV_VAR } from "./openblas_core.ts";
import { cpuFeatures } from "./cpu_kernels/variant.ts";

export { LibraryNotFoundError };

/** `enum CBLAS_ORDER`: row-major storage. */
export const CBLAS_ROW_MAJOR = 101;
/** `enum CBLAS_ORDER`: column-major storage. */
export const CBLAS_COL_MAJOR = 102;
/** `enum CBLAS_TRANSPOSE`: use the matrix as stored. */
export const CBLAS_NO_TRANS = 111;
/** `enum CBLAS_TRANSPOSE`: use the transpose of the stored matrix. */
export const CBLAS_TRANS = 112;

/** Environment variable holding an explicit path to the OpenBLAS shared library. */
export const OPENBLAS_ENV_VAR = "EQL_OPENBLAS_PATH";

/** Names and paths tried, in order, when `EQL_OPENBLAS_PATH` is not set. */
export const OPENBLAS_CANDIDATES: readonly string[] = [
  "libopenblas.so.0",
  "libopenblas.so",
  "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
  "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
  "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0",
  "/usr/lib/x86_64-linux-gnu/openblas-serial/libopenblas.so.0",
];

/**
 * The native symbols. OpenBLAS as shipped by Debian uses a 32-bit `blasint` (the LP64
 * interface); the thread and configuration functions are OpenBLAS extensions, optional.
 */
export const OPENBLAS_SYMBOLS = {
  cblas_sgemm: {
    parameters: [
      "i32", // enum CBLAS_ORDER Order
      "i32", // enum CBLAS_TRANSPOSE TransA
      "i32", // enum CBLAS_TRANSPOSE TransB
      "i32", // blasint M
      "i32", // blasint N
      "i32", // blasint K
      "f32", // float alpha
      "buffer", // const float *A
      "i32", // blasint lda
      "buffer", // const float *B
      "i32", // blasint ldb
      "f32", // float beta
      "buffer", // float *C
      "i32", // blasint ldc
    ],
    result: "void",
  },
  openblas_get_num_threads: {
    parameters: [],
    result: "i32", // int
    optional: true,
  },
  openblas_set_num_threads: {
    parameters: [
      "i32", // int num_threads
    ],
    result: "void",
    optional: true,
  },
  openblas_get_config: {
    parameters: [],
    result: "pointer", // char * (static string)
    optional: true,
  },
  openblas_get_corename: {
    parameters: [],
    result: "pointer", // char * (static string): the kernel set in use, e.g. "Haswell"
    optional: true,
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** The opened OpenBLAS library with the symbols above. */
export type OpenBlasLibrary = Deno.DynamicLibrary<typeof OPENBLAS_SYMBOLS>;

let cached: OpenBlasLibrary | null | undefined;
let cachedError: LibraryNotFoundError | undefined;
/** The core the library picked by itself, when another one was forced in its place. */
let replacedCore: string | undefined;

function openOnce(): OpenBlasLibrary {
  return openLibrary({
    library: "OpenBLAS",
    envVar: OPENBLAS_ENV_VAR,
    candidates: OPENBLAS_CANDIDATES,
    symbols: OPENBLAS_SYMBOLS,
  });
}

function corenameOf(lib: OpenBlasLibrary): string | undefined {
  const ptr = lib.symbols.openblas_get_corename?.() ?? null;
  return ptr === null ? undefined : new Deno.UnsafePointerView(ptr).getCString();
}

/**
 * Reopens the library with a fitting core when it fell back to a generic one (before any use:
 * OpenBLAS reads `OPENBLAS_CORETYPE` only as it initialises). The variable is set only for the
 * reopening, so child processes make their own choice.
 */
function withFittingCore(lib: OpenBlasLibrary): OpenBlasLibrary {
  const corename = corenameOf(lib);
  if (corename === undefined) return lib;
  let userCoretype: string | undefined;
  try {
    userCoretype = Deno.env.get(OPENBLAS_CORETYPE_ENV_VAR);
  } catch {
    return lib; // no env permission: the library's own choice stays
  }
  const features = cpuFeatures();
  const core = fallbackCoreFix({
    arch: features.arch,
    flags: features.flags,
    corename,
    userCoretype,
  });
  if (core === undefined) return lib;
  try {
    // Set before closing: the open library has read it already, and a refusal leaves it open.
    Deno.env.set(OPENBLAS_CORETYPE_ENV_VAR, core);
  } catch {
    return lib;
  }
  lib.close();
  try {
    lib = openOnce();
  } finally {
    Deno.env.delete(OPENBLAS_CORETYPE_ENV_VAR);
  }
  const now = corenameOf(lib);
  // A library that could not be unloaded keeps its first choice: then nothing was replaced.
  if (now !== undefined && now.toLowerCase() !== corename.toLowerCase()) replacedCore = corename;
  return lib;
}

/**
 * Opens OpenBLAS (once) and returns it, throwing when it cannot be found.
 *
 * @returns The opened library.
 * @throws {LibraryNotFoundError} Listing every path tried and the `EQL_OPENBLAS_PATH` override.
 *
 * @example
 * ```ts ignore
 * import { loadOpenBlas } from "./openblas.ts";
 * const blas = loadOpenBlas();
 * console.log(blas.symbols.openblas_get_num_threads?.());
 * ```
 */
export function loadOpenBlas(): OpenBlasLibrary {
  const lib = openBlas();
  if (lib === null) throw cachedError!;
  return lib;
}

/**
 * Opens OpenBLAS (once) and returns it, or `null` when it is not installed; the reason is kept
 * and available from {@linkcode openBlasError}. When `EQL_OPENBLAS_PATH` is set but that file
 * does not load, the result is also `null` (no other copy is used in its place), after one
 * warning that names the variable, the path, the loader's reason and the fix.
 *
 * @returns The opened library, or `null`.
 *
 * @example
 * ```ts
 * import { openBlas } from "./openblas.ts";
 * console.log(openBlas() === null ? "no OpenBLAS" : "OpenBLAS found");
 * ```
 */
export function openBlas(): OpenBlasLibrary | null {
  if (cached !== undefined) return cached;
  try {
    cached = withFittingCore(openOnce());
  } catch (e) {
    if (!(e instanceof LibraryNotFoundError)) throw e;
    cached = null;
    cachedError = e;
    if (e.override !== undefined) {
      // The user asked for this copy: say loudly that it is not the one in use, and why.
      console.warn(
        `Warning: ${OPENBLAS_ENV_VAR} is set to "${e.override}", but that library could not be ` +
          `loaded (${e.tried[0]?.replace(/^.*?: /, "") ?? "unknown reason"}), so OpenBLAS is ` +
          `not used. Set ${OPENBLAS_ENV_VAR} to the full path of a working libopenblas.so.0, ` +
          "or unset it to use the installed OpenBLAS.",
      );
    }
  }
  return cached;
}

/**
 * Why OpenBLAS could not be opened, or `undefined` when it was opened or not yet looked for.
 *
 * @returns The error from the last (cached) attempt.
 *
 * @example
 * ```ts
 * import { openBlas, openBlasError } from "./openblas.ts";
 * if (openBlas() === null) console.log(openBlasError()?.message);
 * ```
 */
export function openBlasError(): LibraryNotFoundError | undefined {
  return cachedError;
}

/**
 * The build configuration string OpenBLAS reports (version, target core, threading), or
 * `undefined` when the library is absent or does not export `openblas_get_config`.
 *
 * @returns For example `"OpenBLAS 0.3.21 NO_AFFINITY Haswell MAX_THREADS=64"`.
 *
 * @example
 * ```ts
 * import { openBlasConfig } from "./openblas.ts";
 * console.log(openBlasConfig() ?? "OpenBLAS not available");
 * ```
 */
export function openBlasConfig(): string | undefined {
  const lib = openBlas();
  const fn = lib?.symbols.openblas_get_config;
  if (!fn) return undefined;
  const ptr = fn();
  return ptr === null ? undefined : new Deno.UnsafePointerView(ptr).getCString();
}

/** The kernel set OpenBLAS runs, and how it came to run it. */
export interface OpenBlasCore {
  /** `openblas_get_corename()`, e.g. `"Cooperlake"` (`undefined` when the library lacks it). */
  corename: string | undefined;
  /** The library's version from its configuration string, e.g. `"0.3.21"`. */
  version: string | undefined;
  /** The core the library picked by itself, when it was a fallback replaced by `corename`. */
  replaced: string | undefined;
}

/**
 * Which kernel set OpenBLAS runs (opening the library if needed).
 *
 * @returns The core, version and replaced fallback; `undefined` when OpenBLAS is absent.
 *
 * @example
 * ```ts
 * import { openBlasCore } from "./openblas.ts";
 * console.log(openBlasCore()?.corename); // e.g. "Cooperlake"
 * ```
 */
export function openBlasCore(): OpenBlasCore | undefined {
  const lib = openBlas();
  if (lib === null) return undefined;
  const version = openBlasConfig()?.match(/OpenBLAS\s+(\S+)/)?.[1];
  return { corename: corenameOf(lib), version, replaced: replacedCore };
}

/**
 * Names OpenBLAS, its version and core for a device description, e.g. `"OpenBLAS 0.3.21,
 * Cooperlake core"` or `"OpenBLAS 0.3.21, SkylakeX core in place of its Prescott fallback"`.
 *
 * @returns The text, or `undefined` when OpenBLAS is absent.
 *
 * @example
 * ```ts
 * import { openBlasSummary } from "./openblas.ts";
 * console.log(openBlasSummary() ?? "no OpenBLAS");
 * ```
 */
export function openBlasSummary(): string | undefined {
  const core = openBlasCore();
  if (core === undefined) return undefined;
  const name = core.version === undefined ? "OpenBLAS" : `OpenBLAS ${core.version}`;
  if (core.corename === undefined) return name;
  const replaced = core.replaced === undefined ? "" : ` in place of its ${core.replaced} fallback`;
  return `${name}, ${core.corename} core${replaced}`;
}
