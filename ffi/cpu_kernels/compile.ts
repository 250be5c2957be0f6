/**
 * Compiling the CPU kernel library on the machine that runs it, once, into a cache.
 *
 * The library is built with `-O3 -march=native`, so it uses every vector instruction the CPU
 * has; that is why it is compiled where it runs rather than shipped prebuilt. The cache key is a
 * SHA-256 of the sources, the compiler asked for (`EQL_CC`, or the default), the flags and the
 * CPU's identity, so a changed source, another chosen compiler or a home folder shared with
 * another kind of machine gets its own build.
 * The shared library is written under a temporary name in the cache folder and renamed into
 * place, so a concurrent or interrupted build never leaves a half-written file behind.
 *
 * Environment:
 * - `EQL_CC`: the C compiler to use (default: the first of `cc`, `gcc`, `clang` on `PATH`).
 * - `EQL_CACHE_DIR`: the cache folder (default: `$XDG_CACHE_HOME/eql`, else `~/.cache/eql`).
 *
 * @module
 */

import { createHash } from "node:crypto";

/** Environment variable naming the C compiler. */
export const CC_ENV_VAR = "EQL_CC";
/** Environment variable naming the cache folder. */
export const CACHE_ENV_VAR = "EQL_CACHE_DIR";

/** Compilers tried, in order, when `EQL_CC` is not set. */
export const COMPILER_CANDIDATES: readonly string[] = ["cc", "gcc", "clang"];

/**
 * Flag sets tried in order until one compiles: the full set, then without `-march=native`
 * (compilers or CPUs that do not know it), then also without `-fopenmp-simd` (old compilers). All keep IEEE semantics (no fast-math), so results
 * match the TypeScript kernels; `-fopenmp-simd` only enables the vectorisation hints, no runtime.
 *
 * @returns The flag sets, each with `__SOURCES__` where the source files go.
 *
 * @example
 * ```ts
 * import { flagSets } from "./compile.ts";
 * console.log(flagSets()[0].includes("-march=native")); // true
 * ```
 */
export function flagSets(): string[][] {
  const common = ["-O3", "-std=c11", "-fno-strict-aliasing", "-fopenmp-simd", "-shared", "-fPIC"];
  // Never unload the library: its worker threads must not outlive their code at process exit.
  const link = Deno.build.os === "linux" ? ["-Wl,-z,nodelete"] : [];
  const libs = ["-lm", "-lpthread"];
  const plain = common.filter((f) => f !== "-fopenmp-simd");
  return [
    [...common, "-march=native", ...link],
    [...common, ...link],
    [...plain, ...link],
  ].map((f) => [...f, "__SOURCES__", ...libs]);
}

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined;
  }
}

/** Whether `cmd --version` runs. */
function runs(cmd: string): boolean {
  try {
    return new Deno.Command(cmd, { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/**
 * The C compiler to use: `EQL_CC` when set (even when it does not run, so that the error names
 * it), otherwise the first candidate that runs.
 *
 * @returns The compiler command, or `undefined` when none was found.
 *
 * @example
 * ```ts ignore
 * import { findCompiler } from "./compile.ts";
 * console.log(findCompiler() ?? "no C compiler");
 * ```
 */
export function findCompiler(): string | undefined {
  const chosen = env(CC_ENV_VAR);
  if (chosen) return chosen;
  return COMPILER_CANDIDATES.find(runs);
}

/** What one compilation produced. */
export interface CompileResult {
  /** Whether the compiler succeeded. */
  ok: boolean;
  /** The flags of the attempt that succeeded (or of the last one tried). */
  flags: string[];
  /** The compiler's output (warnings, or every attempt's errors when it failed). */
  log: string;
}

/**
 * Writes the sources into a temporary folder and compiles them into the shared library `out`,
 * trying each of {@linkcode flagSets} until one works.
 *
 * @param files Source texts by file name (`.c` files are compiled, `.h` files included).
 * @param compiler The compiler command.
 * @param out Path of the shared library to write.
 * @param extraFlags Flags added to every attempt (e.g. warnings).
 * @returns Whether it worked, with the compiler's output.
 *
 * @example
 * ```ts ignore
 * import { compileLibrary } from "./compile.ts";
 * const r = compileLibrary({ "a.c": "int f(void) { return 1; }" }, "cc", "/tmp/liba.so", []);
 * console.log(r.ok);
 * ```
 */
export function compileLibrary(
  files: Readonly<Record<string, string>>,
  compiler: string,
  out: string,
  extraFlags: readonly string[],
): CompileResult {
  const dir = Deno.makeTempDirSync({ prefix: "eql-cpu-src-" });
  try {
    for (const [name, text] of Object.entries(files)) {
      Deno.writeTextFileSync(`${dir}/${name}`, text);
    }
    const sources = Object.keys(files).filter((n) => n.endsWith(".c")).sort();
    const logs: string[] = [];
    let flags: string[] = [];
    for (const set of flagSets()) {
      flags = set.flatMap((f) => f === "__SOURCES__" ? sources : [f]);
      let output: Deno.CommandOutput;
      try {
        output = new Deno.Command(compiler, {
          args: [...extraFlags, ...flags, "-o", out],
          cwd: dir,
          stdout: "piped",
          stderr: "piped",
        }).outputSync();
      } catch (e) {
        return { ok: false, flags, log: `could not run ${compiler}: ${(e as Error).message}` };
      }
      const log = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
      if (output.success) return { ok: true, flags, log };
      logs.push(`$ ${compiler} ${flags.join(" ")}\n${log}`);
    }
    return { ok: false, flags, log: logs.join("\n") };
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

/**
 * The cache folder: `EQL_CACHE_DIR`, `$XDG_CACHE_HOME/eql` or `~/.cache/eql`.
 *
 * @returns The folder, or `undefined` when none of the variables is set.
 *
 * @example
 * ```ts
 * import { cacheDir } from "./compile.ts";
 * console.log(cacheDir()); // e.g. "/home/me/.cache/eql"
 * ```
 */
export function cacheDir(): string | undefined {
  const explicit = env(CACHE_ENV_VAR);
  if (explicit) return explicit;
  const xdg = env("XDG_CACHE_HOME");
  if (xdg) return `${xdg}/eql`;
  const home = env("HOME") ?? env("USERPROFILE");
  return home ? `${home}/.cache/eql` : undefined;
}

/** What identifies this CPU for `-march=native`: its model and feature flags. */
function cpuIdentity(): string {
  try {
    const info = Deno.readTextFileSync("/proc/cpuinfo");
    const field = (key: string) => info.match(new RegExp(`^${key}\\s*:\\s*(.*)$`, "m"))?.[1] ?? "";
    return `${field("model name")}|${field("flags")}|${field("Features")}`;
  } catch {
    return Deno.build.target;
  }
}

/** Where a cached build goes, or why there is none. */
export type CachedBuild = { path: string } | { error: string };

/**
 * Returns the cached shared library for these sources, compiling it first when it is missing.
 *
 * @param name Base name of the library file (e.g. `"libeqlcpu"`).
 * @param files Source texts by file name.
 * @returns The library's path, or an error that says what was missing or what failed.
 *
 * @example
 * ```ts ignore
 * import { cachedBuild } from "./compile.ts";
 * import { CPU_KERNEL_SOURCES } from "./sources.ts";
 * console.log(cachedBuild("libeqlcpu", CPU_KERNEL_SOURCES));
 * ```
 */
export function cachedBuild(name: string, files: Readonly<Record<string, string>>): CachedBuild {
  const dir = cacheDir();
  if (dir === undefined) return { error: `no cache folder (set ${CACHE_ENV_VAR} or HOME)` };
  const ext = Deno.build.os === "darwin" ? "dylib" : Deno.build.os === "windows" ? "dll" : "so";
  // The compiler chosen by name (EQL_CC, or whichever default is found): looking for the default
  // would start a process on every run just to find the build already there.
  const chosen = env(CC_ENV_VAR) ?? "default";
  const hash = createHash("sha256");
  hash.update(JSON.stringify({ files, compiler: chosen, flags: flagSets(), cpu: cpuIdentity() }));
  const path = `${dir}/${name}-${hash.digest("hex").slice(0, 20)}.${ext}`;
  try {
    Deno.statSync(path);
    return { path };
  } catch {
    // not built yet
  }
  const compiler = findCompiler();
  if (compiler === undefined) {
    return {
      error: `no C compiler found (tried ${COMPILER_CANDIDATES.join(", ")}; set ${CC_ENV_VAR})`,
    };
  }
  Deno.mkdirSync(dir, { recursive: true });
  const tmp = `${path}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  try {
    const result = compileLibrary(files, compiler, tmp, []);
    if (!result.ok) return { error: `compiling with ${compiler} failed:\n${result.log.trim()}` };
    Deno.renameSync(tmp, path);
    return { path };
  } finally {
    try {
      Deno.removeSync(tmp);
    } catch {
      // renamed into place, or never written
    }
  }
}
