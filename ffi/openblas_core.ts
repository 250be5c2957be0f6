/**
 * Which OpenBLAS kernel set ("core") should run on this CPU, when the library's own choice fell
 * back to an old generic one.
 *
 * OpenBLAS built with `DYNAMIC_ARCH` (as Debian ships it) picks its kernels from the CPU model
 * when it is loaded. A model it does not know (e.g. an Intel Xeon released after the library)
 * gets an SSE3 kernel set such as `Prescott`, and every GEMM then runs at a quarter of the
 * machine's speed. The library reads `OPENBLAS_CORETYPE` once, as it initialises, so the fix is
 * to name a core that fits the CPU's flags and open the library again. A core the user set in
 * `OPENBLAS_CORETYPE` is never replaced.
 *
 * @module
 */

/** The variable OpenBLAS reads at load to force a kernel set. */
export const OPENBLAS_CORETYPE_ENV_VAR = "OPENBLAS_CORETYPE";

/**
 * OpenBLAS cores (as `openblas_get_corename()` spells them, compared case-insensitively) whose
 * kernels use neither AVX2 nor AVX-512: on a CPU with AVX2 and FMA they are a fallback.
 */
export const PRE_AVX2_CORES: readonly string[] = [
  "katmai",
  "coppermine",
  "northwood",
  "banias",
  "prescott",
  "core2",
  "penryn",
  "dunnington",
  "nehalem",
  "sandybridge",
  "atom",
  "nano",
  "athlon",
  "opteron",
  "opteron_sse3",
  "barcelona",
  "bobcat",
  "bulldozer",
  "piledriver",
  "steamroller",
  "unknown",
];

/** The AVX-512 flags OpenBLAS's `SkylakeX` kernels need. */
export const SKYLAKEX_FLAGS: readonly string[] = [
  "avx512f",
  "avx512cd",
  "avx512bw",
  "avx512dq",
  "avx512vl",
];

/** What the choice looks at. */
export interface OpenBlasCoreInput {
  /** `Deno.build.arch`: only x86-64 cores are chosen. */
  arch: string;
  /** The CPU's flags (`/proc/cpuinfo`). */
  flags: ReadonlySet<string>;
  /** The core the library picked by itself (`openblas_get_corename()`). */
  corename: string;
  /** `OPENBLAS_CORETYPE` as the user set it (`undefined` when unset). */
  userCoretype: string | undefined;
}

/**
 * The core to force, or `undefined` to keep the library's own choice: only when the user did not
 * set `OPENBLAS_CORETYPE`, the library picked a pre-AVX2 core, and the CPU has AVX2 and FMA.
 * The replacement is `SkylakeX` on a CPU with the AVX-512 flags it needs, else `Haswell`.
 *
 * @param input The CPU, the library's pick and the user's setting.
 * @returns The core name to put in `OPENBLAS_CORETYPE`, or `undefined`.
 *
 * @example
 * ```ts
 * import { fallbackCoreFix } from "./openblas_core.ts";
 * const flags = new Set(["avx2", "fma", "avx512f", "avx512cd", "avx512bw", "avx512dq",
 *   "avx512vl"]);
 * console.log(fallbackCoreFix({ arch: "x86_64", flags, corename: "Prescott",
 *   userCoretype: undefined })); // "SkylakeX"
 * ```
 */
export function fallbackCoreFix(input: OpenBlasCoreInput): string | undefined {
  if (input.userCoretype !== undefined && input.userCoretype.trim() !== "") return undefined;
  if (input.arch !== "x86_64") return undefined;
  if (!PRE_AVX2_CORES.includes(input.corename.trim().toLowerCase())) return undefined;
  if (!input.flags.has("avx2") || !input.flags.has("fma")) return undefined;
  return SKYLAKEX_FLAGS.every((f) => input.flags.has(f)) ? "SkylakeX" : "Haswell";
}
