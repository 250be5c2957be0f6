/**
 * Compiling the CPU kernel library on the machine that runs it, once, into a cache.
 *
 * The library is built with `-O3` and the flags of a kernel variant (`variant.ts`: AVX-512,
 * AVX2 or portable, the first two with `-march=native`), so it uses the vector instructions the
 * CPU has; that is why it is compiled where it runs rather than shipped prebuilt. The cache key
 * is a SHA-256 of the sources, the compiler asked for (`EQL_CC`, or the default), the variant,
 * its flags and the CPU's identity, so a changed source, another chosen compiler or variant, or
 * a home folder shared with another kind of machine gets its own build (the variant is also in
 * the file name).
 *
 * The shared library is written under a temporary name in the cache folder and renamed into
 * place, so a concurrent or interrupted build never leaves a half-written file behind. Just before
 * it, a checksum file (`<library>.sha256`: its size and SHA-256) is put beside it the same way.
 * Every later load checks the library against that file before it is mapped, so a library that was
 * truncated, overwritten or replaced is rebuilt instead of crashing the process (a truncated
 * shared library gives SIGBUS, overwritten code SIGILL). A compiler that runs longer than
 * `EQL_CC_TIMEOUT_S` is stopped, and temporary files that a killed build left in the cache folder
 * are removed once they are an hour old.
 *
 * Environment:
 * - `EQL_CC`: the C compiler to use (default: the first of `cc`, `gcc`, `clang` on `PATH`).
 * - `EQL_CACHE_DIR`: the cache folder (default: `$XDG_CACHE_HOME/eql`, else `~/.cache/eql`).
 * - `EQL_CC_TIMEOUT_S`: seconds one compilation may take before it is stopped (default 120).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { commandRuns, runSync } from "./run_sync.ts";
import { missingPermissions, permissionMessage } from "../permissions.ts";
import { type CpuVariant, variantFlagSets } from "./variant.ts";

/** Environment variable naming the C compiler. */
export const CC_ENV_VAR = "EQL_CC";
/** Environment variable naming the cache folder. */
export const CACHE_ENV_VAR = "EQL_CACHE_DIR";
/** Environment variable setting how many seconds one compilation may take. */
export const CC_TIMEOUT_ENV_VAR = "EQL_CC_TIMEOUT_S";
/** Seconds one compilation may take when `EQL_CC_TIMEOUT_S` is not set. */
export const DEFAULT_CC_TIMEOUT_S = 120;
/**
 * The largest accepted `EQL_CC_TIMEOUT_S`. A build's temporary files are removed by other
 * processes once they are an hour old, so no compilation may run that long.
 */
export const MAX_CC_TIMEOUT_S = 1800;
/** Age (milliseconds) after which a temporary file in the cache folder counts as debris. */
export const STALE_TEMPORARY_MS = 3_600_000;

/** Compilers tried, in order, when `EQL_CC` is not set. */
export const COMPILER_CANDIDATES: readonly string[] = ["cc", "gcc", "clang"];

/** Version of the cache's layout (library plus checksum file); part of the cache key. */
const CACHE_FORMAT = 2;
/** Lines and characters of compiler output kept in an error message. */
const LOG_LINES = 20;
const LOG_CHARS = 2000;
/** How long a compilation runs before the caller's "compiling…" notice is shown. */
const SLOW_MS = 1000;

/**
 * Flag sets tried in order until one compiles, for a kernel variant (see `variant.ts`): the
 * variant's full set first, then plainer ones where the variant allows. All keep IEEE semantics
 * (no fast-math), so results match the TypeScript kernels.
 *
 * @param variant The kernel variant (default: `portable`).
 * @returns The flag sets, each with `__SOURCES__` where the source files go.
 *
 * @example
 * ```ts
 * import { flagSets } from "./compile.ts";
 * console.log(flagSets("avx512")[0].includes("-march=native")); // true
 * ```
 */
export function flagSets(variant: CpuVariant = "portable"): string[][] {
  return variantFlagSets(variant);
}

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Seconds one compilation may take: `EQL_CC_TIMEOUT_S`, or {@linkcode DEFAULT_CC_TIMEOUT_S}.
 *
 * @returns The timeout in seconds (fractions allowed).
 * @throws {RangeError} When `EQL_CC_TIMEOUT_S` is not a number above 0 and at most
 *   {@linkcode MAX_CC_TIMEOUT_S}.
 *
 * @example
 * ```ts
 * import { compilerTimeoutSeconds } from "./compile.ts";
 * console.log(compilerTimeoutSeconds()); // 120 unless EQL_CC_TIMEOUT_S says otherwise
 * ```
 */
export function compilerTimeoutSeconds(): number {
  const raw = env(CC_TIMEOUT_ENV_VAR);
  if (raw === undefined) return DEFAULT_CC_TIMEOUT_S;
  const seconds = /^\s*\d+(\.\d+)?\s*$/.test(raw) ? Number(raw) : NaN;
  if (!(seconds > 0 && seconds <= MAX_CC_TIMEOUT_S)) {
    throw new RangeError(
      `${CC_TIMEOUT_ENV_VAR} must be a number of seconds above 0 and at most ${MAX_CC_TIMEOUT_S}, got "${raw}"`,
    );
  }
  return seconds;
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
  return COMPILER_CANDIDATES.find(commandRuns);
}

// ── compiling ─────────────────────────────────────────────────────────────────────────────────

/** What one compilation produced. */
export interface CompileResult {
  /** Whether the compiler succeeded. */
  ok: boolean;
  /** The flags of the attempt that succeeded (or of the last one tried). */
  flags: string[];
  /** The compiler's output (warnings, or every attempt's errors when it failed). */
  log: string;
  /** The output of the last attempt alone (on failure: the errors with the plainest flags). */
  lastOutput: string;
  /** Whether the compiler was stopped for running longer than the timeout. */
  timedOut: boolean;
  /** How many flag sets the compiler ran to an exit status with (0: it could not be started). */
  attempts: number;
  /** The exit status of the last attempt (`null` when it did not exit by itself). */
  exitCode: number | null;
}

/** Options of {@linkcode compileLibrary}. */
export interface CompileOptions {
  /** Seconds each attempt may take (default: {@linkcode compilerTimeoutSeconds}). */
  timeoutS?: number;
  /** Called once when the compilation has taken more than a second (e.g. to print a notice). */
  onSlow?: () => void;
  /** The kernel variant whose flags are used (default: `portable`). */
  variant?: CpuVariant;
}

/** The folder part of a path (`.` when it has none). */
function parentOf(path: string): string {
  const i = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  return i < 0 ? "." : i === 0 ? path.slice(0, 1) : path.slice(0, i);
}

/** The path made absolute against the current folder. */
function absolute(path: string): string {
  if (path.startsWith("/") || /^[A-Za-z]:[\\/]/.test(path) || path.startsWith("\\\\")) return path;
  return `${Deno.cwd()}/${path}`;
}

/**
 * A temporary name next to `target`: `<target>.<pid>.<8 hex digits>.tmp`. Only names of this
 * form are removed as debris from the cache folder.
 */
function temporaryName(target: string): string {
  return `${target}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;
}

/** Matches the names {@linkcode temporaryName} makes. */
const TEMPORARY_NAME = /\.\d+\.[0-9a-f]{8}\.tmp$/;

/**
 * Writes the sources into a temporary folder beside `out` and compiles them into the shared
 * library `out`, trying each of {@linkcode flagSets} until one works. Each attempt is stopped
 * when it takes longer than the timeout (then no further flag set is tried); the temporary folder
 * is removed in every case.
 *
 * @param files Source texts by file name (`.c` files are compiled, `.h` files included).
 * @param compiler The compiler command.
 * @param out Path of the shared library to write.
 * @param extraFlags Flags added to every attempt (e.g. warnings).
 * @param options The timeout and a callback for a slow compilation.
 * @returns Whether it worked, with the compiler's output.
 * @throws {RangeError} When no timeout is given and `EQL_CC_TIMEOUT_S` holds an invalid value.
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
  options: CompileOptions = {},
): CompileResult {
  const timeoutS = options.timeoutS ?? compilerTimeoutSeconds();
  const target = absolute(out);
  const dir = temporaryName(`${parentOf(target)}/.eql-src`);
  const slow = options.onSlow === undefined
    ? undefined
    : { at: performance.now() + SLOW_MS, show: options.onSlow, shown: false };
  const logs: string[] = [];
  let flags: string[] = [];
  let lastOutput = "";
  let exitCode: number | null = null;
  const failed = (log: string, timedOut = false): CompileResult => ({
    ok: false,
    flags,
    log,
    lastOutput,
    timedOut,
    attempts: logs.length,
    exitCode,
  });
  try {
    Deno.mkdirSync(dir);
    for (const [name, text] of Object.entries(files)) {
      Deno.writeTextFileSync(`${dir}/${name}`, text);
    }
    const sources = Object.keys(files).filter((n) => n.endsWith(".c")).sort();
    for (const set of flagSets(options.variant)) {
      flags = set.flatMap((f) => f === "__SOURCES__" ? sources : [f]);
      const run = runSync(
        compiler,
        [...extraFlags, ...flags, "-o", target],
        dir,
        timeoutS * 1000,
        slow,
      );
      if (run.spawnError !== undefined) {
        lastOutput = run.spawnError;
        return failed(`could not run ${compiler}: ${run.spawnError}`);
      }
      lastOutput = run.output;
      if (run.timedOut) {
        return failed(
          `the C compiler ${compiler} did not finish within ${timeoutS} s and was stopped ` +
            `(set ${CC_TIMEOUT_ENV_VAR} to allow more time, or ${CC_ENV_VAR} to another compiler)`,
          true,
        );
      }
      logs.push(`$ ${compiler} ${flags.join(" ")}\n${run.output}`);
      exitCode = run.code;
      if (run.code === 0) {
        return {
          ok: true,
          flags,
          log: run.output,
          lastOutput,
          timedOut: false,
          attempts: logs.length,
          exitCode,
        };
      }
    }
    return failed(logs.join("\n"));
  } finally {
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch {
      // never created
    }
  }
}

/**
 * The first {@linkcode LOG_LINES} lines (at most {@linkcode LOG_CHARS} characters) of compiler
 * output, saying how much was left out.
 */
function trimmedOutput(text: string): string {
  const lines = text.trim().split("\n");
  let kept = lines.slice(0, LOG_LINES).join("\n");
  if (kept.length > LOG_CHARS) kept = kept.slice(0, LOG_CHARS);
  const rest = text.trim().length - kept.length;
  if (kept === "") return "(the compiler printed nothing)";
  return rest > 0 ? `${kept}\n… (${rest} more characters of compiler output)` : kept;
}

// ── the cache ─────────────────────────────────────────────────────────────────────────────────

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

/** Folders already swept for debris by this process. */
const swept = new Set<string>();

/**
 * Removes temporary files and folders ({@linkcode temporaryName}) older than an hour from the
 * cache folder, once per process: what a build that was killed left behind. Younger ones may
 * belong to a build in progress in another process and are kept.
 */
function removeStaleTemporaries(dir: string): void {
  if (swept.has(dir)) return;
  swept.add(dir);
  let names: string[];
  try {
    names = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => TEMPORARY_NAME.test(n));
  } catch {
    return; // no cache folder yet
  }
  const cutoff = Date.now() - STALE_TEMPORARY_MS;
  for (const name of names) {
    try {
      const mtime = Deno.lstatSync(`${dir}/${name}`).mtime;
      if (mtime !== null && mtime.getTime() < cutoff) {
        Deno.removeSync(`${dir}/${name}`, { recursive: true });
      }
    } catch {
      // gone already, or not ours to remove
    }
  }
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** What the checksum file beside a cached library holds. */
interface Checksum {
  size: number;
  sha256: string;
}

/**
 * Checks the cached library against its checksum file: `"ok"`, `"missing"` (not built yet), or
 * what is wrong with it.
 */
function checkCached(path: string, sumPath: string): string {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return "missing";
    return `it cannot be read: ${(e as Error).message}`;
  }
  if (!info.isFile) return info.isDirectory ? "it is a directory" : "it is not a regular file";
  let sum: Checksum;
  try {
    sum = JSON.parse(Deno.readTextFileSync(sumPath));
  } catch (e) {
    return e instanceof Deno.errors.NotFound
      ? `its checksum file ${sumPath} is missing`
      : `its checksum file ${sumPath} cannot be read`;
  }
  if (typeof sum?.size !== "number" || typeof sum?.sha256 !== "string") {
    return `its checksum file ${sumPath} cannot be read`;
  }
  if (info.size !== sum.size) return `it is ${info.size} bytes long, expected ${sum.size}`;
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(path);
  } catch (e) {
    return `it cannot be read: ${(e as Error).message}`;
  }
  if (bytes.length !== sum.size) return `it is ${bytes.length} bytes long, expected ${sum.size}`;
  if (sha256(bytes) !== sum.sha256) return "its SHA-256 differs from the one recorded at its build";
  return "ok";
}

/** Removes a path of any kind, quietly. */
function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path, { recursive: true });
  } catch {
    // already gone
  }
}

/** Removes a path unless it is a regular file (which a rename can replace). */
function removeUnlessFile(path: string): void {
  try {
    if (!Deno.lstatSync(path).isFile) Deno.removeSync(path, { recursive: true });
  } catch {
    // already gone
  }
}

/**
 * Where a cached build is, or why there is none. `built` says whether this call compiled it;
 * `repaired` says why the cached copy it replaced was unusable.
 */
export type CachedBuild = { path: string; built: boolean; repaired?: string } | { error: string };

/** Options of {@linkcode cachedBuild}. */
export interface CachedBuildOptions {
  /** Called once when compiling takes more than a second (e.g. to print a notice). */
  onSlow?: () => void;
  /**
   * Set when the caller found the cached library unusable although its checksum matched (it would
   * not load): what was wrong. The library is then rebuilt whatever the checksum says.
   */
  damaged?: string;
  /** The kernel variant to build (default: `portable`); part of the cache key and file name. */
  variant?: CpuVariant;
}

/**
 * Returns the cached shared library for these sources, compiling it first when it is missing or
 * damaged. A cached library is used only when its size and SHA-256 match its checksum file;
 * otherwise (no checksum file, another size or hash, not a regular file) it is rebuilt and the
 * result says so in `repaired`. Temporary files older than an hour in the cache folder are
 * removed on the first call.
 *
 * @param name Base name of the library file (e.g. `"libeqlcpu"`).
 * @param files Source texts by file name.
 * @param options A callback for a slow compilation; a reason to rebuild regardless.
 * @returns The library's path, or an error that says what was missing or what failed (with the
 *   compiler's first lines of output).
 * @throws {RangeError} When `EQL_CC_TIMEOUT_S` holds an invalid value.
 *
 * @example
 * ```ts ignore
 * import { cachedBuild } from "./compile.ts";
 * import { CPU_KERNEL_SOURCES } from "./sources.ts";
 * console.log(cachedBuild("libeqlcpu", CPU_KERNEL_SOURCES, { variant: "avx2" }));
 * ```
 */
export function cachedBuild(
  name: string,
  files: Readonly<Record<string, string>>,
  options: CachedBuildOptions = {},
): CachedBuild {
  const timeoutS = compilerTimeoutSeconds();
  const variant = options.variant ?? "portable";
  // Missing permissions would otherwise surface as "no cache folder" or "no compiler found".
  const what = "the native CPU kernels cannot be used";
  let missing = missingPermissions([{ name: "ffi" }, { name: "env" }]);
  if (missing.length > 0) return { error: permissionMessage(what, missing) };
  const where = cacheDir();
  if (where === undefined) return { error: `no cache folder (set ${CACHE_ENV_VAR} or HOME)` };
  const dir = absolute(where);
  missing = missingPermissions([{ name: "read", target: dir }, { name: "write", target: dir }]);
  if (missing.length > 0) {
    return {
      error: permissionMessage(`${what}: the cache folder ${dir} is out of reach`, missing),
    };
  }
  removeStaleTemporaries(dir);
  const ext = Deno.build.os === "darwin" ? "dylib" : Deno.build.os === "windows" ? "dll" : "so";
  // The compiler chosen by name (EQL_CC, or whichever default is found): looking for the default
  // would start a process on every run just to find the build already there.
  const chosen = env(CC_ENV_VAR) ?? "default";
  const key = JSON.stringify({
    format: CACHE_FORMAT,
    files,
    compiler: chosen,
    variant,
    flags: flagSets(variant),
    cpu: cpuIdentity(),
  });
  const path = `${dir}/${name}-${variant}-${
    sha256(new TextEncoder().encode(key)).slice(0, 20)
  }.${ext}`;
  const sumPath = `${path}.sha256`;
  let damaged = options.damaged;
  if (damaged === undefined) {
    const state = checkCached(path, sumPath);
    if (state === "ok") return { path, built: false };
    if (state !== "missing") damaged = state;
  }
  const fail = (error: string): CachedBuild => {
    if (damaged === undefined) return { error };
    // Leave no damaged library behind: the next run then builds it afresh (or says why not).
    removeQuietly(path);
    removeQuietly(sumPath);
    return {
      error:
        `the cached library ${path} was damaged (${damaged}) and rebuilding it failed: ${error}`,
    };
  };
  if (damaged !== undefined) {
    removeUnlessFile(path);
    removeUnlessFile(sumPath);
  }
  missing = missingPermissions([{ name: "run" }]);
  if (missing.length > 0) {
    return fail(
      permissionMessage("the native CPU kernels must be compiled, which cannot be done", missing),
    );
  }
  const compiler = findCompiler();
  if (compiler === undefined) {
    return fail(`no C compiler found (tried ${COMPILER_CANDIDATES.join(", ")}; set ${CC_ENV_VAR})`);
  }
  try {
    Deno.mkdirSync(dir, { recursive: true });
  } catch (e) {
    return fail(`the cache folder ${dir} cannot be created: ${(e as Error).message}`);
  }
  const tmp = temporaryName(path);
  const tmpSum = temporaryName(sumPath);
  try {
    const result = compileLibrary(files, compiler, tmp, [], {
      timeoutS,
      onSlow: options.onSlow,
      variant,
    });
    if (!result.ok) {
      if (result.timedOut || result.attempts === 0) return fail(result.log);
      const tries = result.attempts;
      return fail(
        `compiling with ${compiler} failed with exit status ${result.exitCode} ` +
          `(${tries} flag set${tries === 1 ? "" : "s"} tried; ` +
          `the last: ${result.flags.join(" ")}):\n${trimmedOutput(result.lastOutput)}`,
      );
    }
    // The checksum first: a crash between the two renames leaves no library, only a stale
    // checksum file that the next build replaces.
    const bytes = Deno.readFileSync(tmp);
    const sum: Checksum = { size: bytes.length, sha256: sha256(bytes) };
    Deno.writeTextFileSync(tmpSum, JSON.stringify(sum) + "\n");
    Deno.renameSync(tmpSum, sumPath);
    Deno.renameSync(tmp, path);
    return damaged === undefined ? { path, built: true } : { path, built: true, repaired: damaged };
  } catch (e) {
    return fail(`the library could not be written to ${dir}: ${(e as Error).message}`);
  } finally {
    removeQuietly(tmp);
    removeQuietly(tmpSum);
  }
}
