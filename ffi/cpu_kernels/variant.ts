/**
 * Which build of the CPU kernel library fits the CPU: the vector width and register blocking
 * (`EQL_VARIANT` in `eql_cpu.h`) chosen from the CPU's feature flags.
 *
 * - `avx512`: 16-float vectors and blocking for 32 vector registers (`-march=native
 *   -mprefer-vector-width=512`); needs `avx512f`.
 * - `avx2`: 8-float vectors and blocking for 16 vector registers (`-march=native -mno-avx512f`,
 *   so it also runs, and can be tested, on AVX-512 hardware); needs `avx2` and `fma`.
 * - `portable`: 8-float vectors in the compiler's baseline instruction set (no `-march`), for
 *   any CPU.
 *
 * The default is `avx512` only on CPUs whose 512-bit units run at full width: AMD family 26
 * (Zen 5), where the direct convolution measured 1.5–1.8× the `avx2` build, and Intel CPUs with
 * AVX-512 (two 512-bit FMA units on the server parts; not measured on such a machine yet). On AMD
 * family 25 (Zen 4), which splits 512-bit operations in two, it stays `avx2`. `EQL_CPU_VARIANT`
 * supplies the default of a CPU device's `variant` option.
 *
 * @module
 */

/** Environment variable supplying the default kernel variant. */
export const CPU_VARIANT_ENV_VAR = "EQL_CPU_VARIANT";

/** A build of the CPU kernels: vector width and register blocking. */
export type CpuVariant = "avx512" | "avx2" | "portable";

/** A variant, or `auto` for the one that fits the CPU ({@linkcode defaultVariant}). */
export type CpuVariantChoice = CpuVariant | "auto";

/** Every variant, widest first. */
export const CPU_VARIANTS: readonly CpuVariant[] = ["avx512", "avx2", "portable"];

/** The CPU flags (as `/proc/cpuinfo` names them) each variant needs. */
export const VARIANT_FLAGS: Readonly<Record<CpuVariant, readonly string[]>> = {
  avx512: ["avx512f"],
  avx2: ["avx2", "fma"],
  portable: [],
};

/** The `EQL_VARIANT` number each variant is compiled with (`eql_cpu.h`). */
export const VARIANT_NUMBER: Readonly<Record<CpuVariant, number>> = {
  portable: 0,
  avx2: 1,
  avx512: 2,
};

/** What the variant choice needs to know about the CPU. */
export interface CpuFeatures {
  /** `x86_64`, `aarch64`, … (`Deno.build.arch`). */
  arch: string;
  /** `vendor_id` (e.g. `GenuineIntel`, `AuthenticAMD`), or `""`. */
  vendor: string;
  /** `cpu family` as a number (-1 when unknown). */
  family: number;
  /** `model name`, or `""`. */
  model: string;
  /** The feature flags; empty when they could not be read. */
  flags: ReadonlySet<string>;
}

/**
 * Parses the first processor's entry of a `/proc/cpuinfo` text.
 *
 * @param cpuinfo The file's text (`""` when it could not be read).
 * @param arch The architecture (default: `Deno.build.arch`).
 * @returns The features.
 *
 * @example
 * ```ts
 * import { parseCpuinfo } from "./variant.ts";
 * const f = parseCpuinfo("vendor_id\t: GenuineIntel\ncpu family\t: 6\nflags\t\t: fma avx2\n");
 * console.log(f.family, f.flags.has("avx2")); // 6 true
 * ```
 */
export function parseCpuinfo(cpuinfo: string, arch: string = Deno.build.arch): CpuFeatures {
  const field = (key: string) =>
    cpuinfo.match(new RegExp(`^${key}\\s*:\\s*(.*)$`, "m"))?.[1]?.trim() ?? "";
  const family = Number.parseInt(field("cpu family"), 10);
  const flags = `${field("flags")} ${field("Features")}`.split(/\s+/).filter((f) => f !== "");
  return {
    arch,
    vendor: field("vendor_id"),
    family: Number.isFinite(family) ? family : -1,
    model: field("model name"),
    flags: new Set(flags),
  };
}

let hostFeatures: CpuFeatures | undefined;

/**
 * The features of this machine's CPU (read once from `/proc/cpuinfo`; no flags where it cannot
 * be read).
 *
 * @returns The features.
 *
 * @example
 * ```ts
 * import { cpuFeatures } from "./variant.ts";
 * console.log(cpuFeatures().flags.has("avx2"));
 * ```
 */
export function cpuFeatures(): CpuFeatures {
  if (hostFeatures !== undefined) return hostFeatures;
  let text = "";
  try {
    text = Deno.readTextFileSync("/proc/cpuinfo");
  } catch {
    // not Linux, or no read permission: no flags known
  }
  return hostFeatures = parseCpuinfo(text);
}

/**
 * The CPU flags a variant needs that this CPU lacks (all of them on a non-x86 CPU).
 *
 * @param variant The variant.
 * @param features The CPU.
 * @returns The missing flags; empty when the variant runs.
 *
 * @example
 * ```ts
 * import { missingFlags, parseCpuinfo } from "./variant.ts";
 * const f = parseCpuinfo("flags : avx2 fma\n", "x86_64");
 * console.log(missingFlags("avx512", f)); // ["avx512f"]
 * ```
 */
export function missingFlags(variant: CpuVariant, features: CpuFeatures): string[] {
  const needed = VARIANT_FLAGS[variant];
  if (needed.length > 0 && features.arch !== "x86_64") return [...needed];
  return needed.filter((f) => !features.flags.has(f));
}

/**
 * The variant that fits the CPU: `avx512` where 512-bit vectors run at full width (Intel with
 * `avx512f`; AMD family 26 and later), else `avx2` when the CPU has `avx2` and `fma`, else
 * `portable`.
 *
 * @param features The CPU.
 * @returns The variant.
 *
 * @example
 * ```ts
 * import { defaultVariant, parseCpuinfo } from "./variant.ts";
 * const zen4 = "vendor_id : AuthenticAMD\ncpu family : 25\nflags : avx2 fma avx512f\n";
 * console.log(defaultVariant(parseCpuinfo(zen4, "x86_64"))); // "avx2"
 * ```
 */
export function defaultVariant(features: CpuFeatures): CpuVariant {
  if (missingFlags("avx512", features).length === 0) {
    const fullWidth = features.vendor === "GenuineIntel" ||
      (features.vendor === "AuthenticAMD" && features.family >= 26);
    if (fullWidth) return "avx512";
  }
  if (missingFlags("avx2", features).length === 0) return "avx2";
  return "portable";
}

/**
 * Checks a variant option (or `EQL_CPU_VARIANT` value) and resolves `auto`.
 *
 * @param choice The requested variant (`auto`, `avx512`, `avx2`, `portable`, any case).
 * @param features The CPU (default: this machine's).
 * @param source How the request is named in errors (e.g. `"options.variant"`).
 * @returns The variant to build.
 * @throws {RangeError} When the value is not a variant, or the CPU lacks the flags it needs
 *   (the message names them).
 *
 * @example
 * ```ts
 * import { resolveVariant } from "./variant.ts";
 * console.log(resolveVariant("portable")); // "portable"
 * ```
 */
export function resolveVariant(
  choice: string,
  features: CpuFeatures = cpuFeatures(),
  source = CPU_VARIANT_ENV_VAR,
): CpuVariant {
  const value = choice.trim().toLowerCase();
  if (value === "auto" || value === "") return defaultVariant(features);
  if (!(CPU_VARIANTS as readonly string[]).includes(value)) {
    throw new RangeError(
      `${source} must be "auto", "avx512", "avx2" or "portable", got "${choice}"`,
    );
  }
  const variant = value as CpuVariant;
  const missing = missingFlags(variant, features);
  if (missing.length > 0) {
    const cpu = features.model !== "" ? ` (${features.model})` : "";
    const why = features.arch !== "x86_64"
      ? `it is not an x86-64 CPU (${features.arch})`
      : features.flags.size === 0
      ? `its flags could not be read from /proc/cpuinfo (needed: ${missing.join(", ")})`
      : `it lacks the flag${missing.length === 1 ? "" : "s"} ${missing.join(", ")}`;
    throw new RangeError(
      `${source} is "${variant}", but this CPU${cpu} cannot run that variant: ${why}`,
    );
  }
  return variant;
}

/**
 * The variant the environment asks for: `EQL_CPU_VARIANT` resolved against this CPU, or the
 * default when it is unset.
 *
 * @returns The variant.
 * @throws {RangeError} When `EQL_CPU_VARIANT` is invalid or names a variant this CPU cannot run.
 *
 * @example
 * ```ts
 * import { cpuVariantFromEnv } from "./variant.ts";
 * console.log(cpuVariantFromEnv()); // e.g. "avx512"
 * ```
 */
export function cpuVariantFromEnv(): CpuVariant {
  let raw: string | undefined;
  try {
    raw = Deno.env.get(CPU_VARIANT_ENV_VAR) || undefined;
  } catch {
    raw = undefined;
  }
  return resolveVariant(raw ?? "auto");
}

/**
 * The compiler flag sets for a variant, tried in order until one compiles, each with
 * `__SOURCES__` where the source files go. All keep IEEE semantics (no fast-math), so results
 * match the TypeScript kernels; `-fopenmp-simd` only enables the vectorisation hints.
 *
 * @param variant The variant.
 * @returns The flag sets.
 *
 * @example
 * ```ts
 * import { variantFlagSets } from "./variant.ts";
 * console.log(variantFlagSets("avx2")[0].includes("-mno-avx512f")); // true
 * ```
 */
export function variantFlagSets(variant: CpuVariant): string[][] {
  const common = ["-O3", "-std=c11", "-fno-strict-aliasing", "-fopenmp-simd", "-shared", "-fPIC"];
  // Never unload the library: its worker threads must not outlive their code at process exit.
  const link = Deno.build.os === "linux" ? ["-Wl,-z,nodelete"] : [];
  const libs = ["-lm", "-lpthread"];
  const define = `-DEQL_VARIANT=${VARIANT_NUMBER[variant]}`;
  const plain = common.filter((f) => f !== "-fopenmp-simd");
  const sets = variant === "avx512"
    ? [[...common, "-march=native", "-mprefer-vector-width=512"]]
    : variant === "avx2"
    ? [[...common, "-march=native", "-mno-avx512f"], [...common, "-mavx2", "-mfma"]]
    // 8-float vectors without AVX pass in pairs of registers: GCC's note on that ABI is moot
    // for functions that are all inlined.
    : [[...common, ...(Deno.build.arch === "x86_64" ? ["-Wno-psabi"] : [])], common, plain];
  return sets.map((f) => [...f, define, ...link, "__SOURCES__", ...libs]);
}
