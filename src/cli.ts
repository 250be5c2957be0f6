/**
 * Command-line helpers for the example programs: numeric and choice flags read with their ranges,
 * output paths checked before a long run, results written with a fallback when the requested
 * path fails, and user errors reported as one `error: …` line with exit code 2.
 *
 * Every check throws before any work starts; {@linkcode runCli} turns the errors a user can fix
 * (bad flags, bad files, bad environment values) into a single line on stderr and leaves genuine
 * bugs to show their stack trace.
 *
 * @example
 * ```ts
 * import { numberFlag, runCli } from "./cli.ts";
 * await runCli(() => {
 *   const lr = numberFlag("lr", "0.1", { min: 0, minExclusive: true });
 *   console.log(lr);
 * });
 * ```
 *
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";
import { writeFileAtomically } from "./atomic_write.ts";

/**
 * A mistake in how a program was invoked (a flag, a path, a missing dataset) that is reported as
 * one line, never with a stack trace.
 *
 * @example
 * ```ts
 * import { UsageError } from "./cli.ts";
 * const e = new UsageError("--out: folder out/ does not exist");
 * e.message; // "--out: folder out/ does not exist"
 * ```
 */
export class UsageError extends Error {
  /**
   * Creates the error.
   *
   * @param message What was wrong, naming the flag, the expected and the actual value.
   * @param options Standard error options (`cause`).
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UsageError";
  }
}

/** The accepted values of a numeric flag; bounds are inclusive unless marked exclusive. */
export interface NumberRange {
  /** Smallest accepted value (default: none). */
  min?: number;
  /** Largest accepted value (default: none). */
  max?: number;
  /** `min` itself is rejected. */
  minExclusive?: boolean;
  /** `max` itself is rejected. */
  maxExclusive?: boolean;
  /** Only integers are accepted. */
  integer?: boolean;
}

/**
 * Describes a range in words, as used in the error messages: "an integer from 1 to 10",
 * "a number > 0", "a number in [0, 1)".
 *
 * @param range The range.
 * @returns The description.
 *
 * @example
 * ```ts
 * import { describeRange } from "./cli.ts";
 * describeRange({ min: 0, max: 1, maxExclusive: true }); // "a number in [0, 1)"
 * ```
 */
export function describeRange(range: NumberRange): string {
  const { min, max, minExclusive = false, maxExclusive = false, integer = false } = range;
  const kind = integer ? "an integer" : "a number";
  if (min !== undefined && max !== undefined) {
    if (integer && !minExclusive && !maxExclusive) return `${kind} from ${min} to ${max}`;
    return `${kind} in ${minExclusive ? "(" : "["}${min}, ${max}${maxExclusive ? ")" : "]"}`;
  }
  if (min !== undefined) return `${kind} ${minExclusive ? ">" : "≥"} ${min}`;
  if (max !== undefined) return `${kind} ${maxExclusive ? "<" : "≤"} ${max}`;
  return kind;
}

/**
 * Reads a numeric flag and checks it against its range. Empty text, `NaN`, `Infinity`, text that
 * is not a number and (for integer flags) fractions are rejected.
 *
 * @param name Flag name without the dashes, for the message.
 * @param text The flag's text.
 * @param range Accepted values (default: any finite number).
 * @returns The number.
 * @throws {RangeError} `--name must be <range>, got "<text>"` when the text is not accepted.
 *
 * @example
 * ```ts
 * import { numberFlag } from "./cli.ts";
 * numberFlag("workers", "4", { integer: true, min: 0, max: 8 }); // 4
 * // numberFlag("workers", "1.5", { integer: true, min: 0, max: 8 }) throws
 * // RangeError: --workers must be an integer from 0 to 8, got "1.5"
 * ```
 */
export function numberFlag(name: string, text: string, range: NumberRange = {}): number {
  const value = Number(text);
  const { min, max, minExclusive = false, maxExclusive = false, integer = false } = range;
  const ok = text.trim() !== "" &&
    Number.isFinite(value) &&
    (!integer || Number.isSafeInteger(value)) &&
    (min === undefined || (minExclusive ? value > min : value >= min)) &&
    (max === undefined || (maxExclusive ? value < max : value <= max));
  if (!ok) throw new RangeError(`--${name} must be ${describeRange(range)}, got "${text}"`);
  return value;
}

/**
 * Reads a flag that takes one of a fixed set of words.
 *
 * @param name Flag name without the dashes, for the message.
 * @param text The flag's text.
 * @param allowed The accepted words.
 * @returns The word, typed as one of `allowed`.
 * @throws {RangeError} `--name must be one of a, b, got "<text>"` for any other text.
 *
 * @example
 * ```ts
 * import { choiceFlag } from "./cli.ts";
 * const device = choiceFlag("device", "cpu", ["auto", "cpu", "cuda"] as const); // "cpu"
 * ```
 */
export function choiceFlag<T extends string>(
  name: string,
  text: string,
  allowed: readonly T[],
): T {
  if (!(allowed as readonly string[]).includes(text)) {
    throw new RangeError(`--${name} must be one of ${allowed.join(", ")}, got "${text}"`);
  }
  return text as T;
}

/**
 * Lets a flag that takes a value accept a negative number as a separate argument
 * (`--tau -1`), which `parseArgs` would otherwise reject as a possible option: such a pair is
 * joined into `--tau=-1`, so that the value reaches the flag's own range check.
 *
 * @param args The command-line arguments.
 * @param valueFlags Names (without dashes) of the flags that take a value.
 * @returns The arguments, with those pairs joined.
 *
 * @example
 * ```ts
 * import { joinNegativeValues } from "./cli.ts";
 * joinNegativeValues(["--tau", "-1", "--tf32"], ["tau"]); // ["--tau=-1", "--tf32"]
 * ```
 */
export function joinNegativeValues(
  args: readonly string[],
  valueFlags: readonly string[],
): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const next = args[i + 1];
    if (
      args[i].startsWith("--") && valueFlags.includes(args[i].slice(2)) && next !== undefined &&
      /^-(\d|\.\d|Infinity)/.test(next)
    ) {
      out.push(`${args[i]}=${next}`);
      i++;
    } else {
      out.push(args[i]);
    }
  }
  return out;
}

/** A table of flags as `parseArgs` from `node:util` takes it. */
export type FlagTable = NonNullable<ParseArgsConfig["options"]>;

/** The values {@linkcode parseFlags} reads for a flag table. */
export type FlagValues<T extends FlagTable> = ReturnType<
  typeof parseArgs<{ args: string[]; options: T; strict: true; allowPositionals: false }>
>["values"];

/**
 * Reads the command line against a flag table, the way every example does: no positional
 * arguments, unknown flags rejected, a negative number accepted as a flag's value (see
 * {@linkcode joinNegativeValues}). The values are returned as text; the caller checks them with
 * {@linkcode numberFlag} and {@linkcode choiceFlag}.
 *
 * @param args The command-line arguments (`Deno.args`).
 * @param flags The flags, as `parseArgs` takes them.
 * @returns The values by flag name.
 * @throws {UsageError} When a flag is unknown, misses its value or a positional argument is
 * given; the message ends with a pointer to `--help`.
 *
 * @example
 * ```ts
 * import { parseFlags } from "./cli.ts";
 * const flags = parseFlags(["--steps", "5"], { steps: { type: "string" } });
 * flags.steps; // "5"
 * ```
 */
export function parseFlags<const T extends FlagTable>(
  args: readonly string[],
  flags: T,
): FlagValues<T> {
  const valueFlags = Object.entries(flags).filter(([, o]) => o.type === "string").map(([k]) => k);
  try {
    return parseArgs({
      args: joinNegativeValues(args, valueFlags),
      options: flags,
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (e) {
    const message = e instanceof Error ? e.message.split(". ")[0] : String(e);
    throw new UsageError(`${message} (run with --help for the list of options)`);
  }
}

/**
 * A fraction as a percentage with two decimals, right-aligned in 6 characters for tables; NaN
 * (an empty group) is a dash.
 *
 * @param v The fraction (0.4123 for 41.23 %).
 * @returns The padded text.
 *
 * @example
 * ```ts
 * import { formatPercent } from "./cli.ts";
 * formatPercent(0.4123); // " 41.23"
 * formatPercent(NaN); // "     —"
 * ```
 */
export function formatPercent(v: number): string {
  return (Number.isNaN(v) ? "—" : (100 * v).toFixed(2)).padStart(6);
}

function folderOf(path: string): string {
  const slash = path.lastIndexOf("/");
  if (slash < 0) return ".";
  return slash === 0 ? "/" : path.slice(0, slash);
}

function baseOf(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

function reason(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Checks, before a long run, that a result can be written to `path`: the path is not an existing
 * folder, and its folder exists, is a folder and accepts a new file (a small probe file is created
 * there and removed again, so the check holds for root as well).
 *
 * @param flag Flag name without the dashes, for the message.
 * @param path The output file.
 * @returns Nothing; resolves when the path is usable.
 * @throws {UsageError} Naming the flag, the path and what is wrong with it.
 *
 * @example
 * ```ts
 * import { checkOutputPath } from "./cli.ts";
 * const dir = await Deno.makeTempDir();
 * await checkOutputPath("out", `${dir}/metrics.json`); // resolves
 * // await checkOutputPath("out", "/no/such/folder/metrics.json") rejects with
 * // UsageError: --out must be a file in an existing folder, but folder /no/such/folder does not exist
 * ```
 */
export async function checkOutputPath(flag: string, path: string): Promise<void> {
  if (path === "" || path.endsWith("/")) {
    throw new UsageError(`--${flag} must be a file path, got "${path}"`);
  }
  const self = await Deno.stat(path).catch(() => null);
  if (self?.isDirectory) {
    throw new UsageError(`--${flag} must be a file path, got the existing folder ${path}`);
  }
  const folder = folderOf(path);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(folder);
  } catch (e) {
    const problem = e instanceof Deno.errors.NotFound
      ? "does not exist"
      : `cannot be used (${reason(e)})`;
    throw new UsageError(
      `--${flag} must be a file in an existing folder, but folder ${folder} ${problem}`,
    );
  }
  if (!info.isDirectory) {
    throw new UsageError(`--${flag} must be a file in a folder, but ${folder} is not a folder`);
  }
  let probe: string;
  try {
    probe = await Deno.makeTempFile({ dir: folder, prefix: ".write-probe-" });
  } catch (e) {
    throw new UsageError(
      `--${flag} must be a file in a writable folder, but folder ${folder} is not writable ` +
        `(${reason(e)})`,
    );
  }
  await Deno.remove(probe).catch(() => {});
}

/**
 * Writes text through a temporary file in the same folder and a rename, so a crash never leaves a
 * half-written file at `path`: the checkpoints' {@linkcode writeFileAtomically}, which also sweeps
 * the temporary files of killed earlier writes.
 *
 * @param path Destination.
 * @param text Contents.
 * @returns Nothing; resolves once the file is in place.
 * @throws {Deno.errors.NotFound | Deno.errors.PermissionDenied | Error} When the file cannot be
 * written; the temporary file is removed.
 *
 * @example
 * ```ts
 * import { writeTextAtomically } from "./cli.ts";
 * const dir = await Deno.makeTempDir();
 * await writeTextAtomically(`${dir}/a.json`, "{}\n");
 * ```
 */
export function writeTextAtomically(path: string, text: string): Promise<void> {
  return writeFileAtomically(path, text);
}

/** Where {@linkcode writeWithFallback} put a result. */
export interface WriteOutcome {
  /** The file that now holds the result. */
  path: string;
  /** Set when the requested path failed: why, and `path` is then the fallback file. */
  failure?: Error;
}

/** Options of {@linkcode writeWithFallback}. */
export interface FallbackOptions {
  /** Folder of the fallback file (default: the system's temporary folder). */
  fallbackDir?: string;
}

/**
 * Writes a result to `path`, or, when that fails (disk full, folder removed during the run), to a
 * new uniquely named file in the temporary folder whose name ends with the requested file name, so
 * that a finished run's results are never lost. The caller reports `outcome.path`.
 *
 * @param path The requested destination.
 * @param write Writes the result to the path it is given (called once or twice).
 * @param options Where the fallback file goes.
 * @returns Where the result is, and why the requested path failed when it did.
 * @throws {Error} Only when the fallback fails as well; the message names both failures.
 *
 * @example
 * ```ts
 * import { writeTextAtomically, writeWithFallback } from "./cli.ts";
 * const outcome = await writeWithFallback(
 *   "/proc/metrics.json",
 *   (p) => writeTextAtomically(p, "{}\n"),
 * );
 * if (outcome.failure) console.error(`could not write /proc/metrics.json; wrote ${outcome.path}`);
 * ```
 */
export async function writeWithFallback(
  path: string,
  write: (target: string) => Promise<void>,
  options: FallbackOptions = {},
): Promise<WriteOutcome> {
  try {
    await write(path);
    return { path };
  } catch (e) {
    const failure = e instanceof Error ? e : new Error(String(e));
    let fallback: string | undefined;
    try {
      fallback = await Deno.makeTempFile({
        dir: options.fallbackDir,
        prefix: "eql-",
        suffix: `-${baseOf(path)}`,
      });
      await write(fallback);
      return { path: fallback, failure };
    } catch (e2) {
      if (fallback !== undefined) await Deno.remove(fallback).catch(() => {});
      throw new Error(
        `could not write ${path} (${failure.message}) nor a fallback copy in the temporary ` +
          `folder (${reason(e2)})`,
        { cause: failure },
      );
    }
  }
}

/**
 * Saves one result of a finished run where a flag asked for it, or in the temporary folder when
 * that fails (see {@linkcode writeWithFallback}), and says on the console where it went: one
 * `Saved …` line on stdout, or one `error: …` line on stderr naming the flag, the path, why it
 * failed and where the result is instead. It never throws, so one failed write does not lose the
 * results still to be written.
 *
 * @param what What is saved, for the messages ("the metrics", "the plot").
 * @param flag The flag that named the path, without the dashes.
 * @param path The requested path.
 * @param contents The text to write atomically, or a function that writes the result to the path
 * it is given.
 * @returns True when the result is where it was asked to be.
 *
 * @example
 * ```ts
 * import { saveResult } from "./cli.ts";
 * const dir = await Deno.makeTempDir();
 * await saveResult("the metrics", "out", `${dir}/m.json`, "{}\n"); // true
 * ```
 */
export async function saveResult(
  what: string,
  flag: string,
  path: string,
  contents: string | ((target: string) => Promise<void>),
): Promise<boolean> {
  const write = typeof contents === "string"
    ? (target: string) => writeTextAtomically(target, contents)
    : contents;
  try {
    const outcome = await writeWithFallback(path, write);
    if (outcome.failure === undefined) {
      console.log(`Saved ${what} to ${outcome.path}`);
      return true;
    }
    console.error(
      `error: --${flag} ${path} could not be written (${outcome.failure.message}); ` +
        `${what} written to ${outcome.path} instead`,
    );
  } catch (e) {
    console.error(`error: --${flag}: ${what} lost: ${reason(e)}`);
  }
  return false;
}

/** An error class, as `instanceof` takes it. */
// deno-lint-ignore no-explicit-any
export type ErrorClass = abstract new (...args: any[]) => Error;

/** The errors {@linkcode runCli} always reports as one line. */
export const USER_ERRORS: readonly ErrorClass[] = [
  UsageError,
  RangeError,
  TypeError,
  Deno.errors.NotFound,
  Deno.errors.PermissionDenied,
  Deno.errors.NotADirectory,
  Deno.errors.IsADirectory,
];

/**
 * The one-line report of a user error, or null for anything else (a bug, which should keep its
 * stack trace). Line breaks in the message are folded into spaces.
 *
 * @param error What was thrown.
 * @param userErrors Further error classes a user can fix (data and download errors, …), besides
 * {@linkcode USER_ERRORS}.
 * @returns `error: <message>` on one line, or null.
 *
 * @example
 * ```ts
 * import { userErrorLine } from "./cli.ts";
 * userErrorLine(new RangeError("--depth must be 6n+2, got 7")); // "error: --depth must be 6n+2, got 7"
 * userErrorLine(new Error("bug")); // null
 * ```
 */
export function userErrorLine(
  error: unknown,
  userErrors: readonly ErrorClass[] = [],
): string | null {
  if (![...USER_ERRORS, ...userErrors].some((c) => error instanceof c)) return null;
  const message = (error as Error).message.split("\n").map((l) => l.trim()).filter((l) => l !== "")
    .join(" ");
  return `error: ${message}`;
}

/**
 * Runs a program's main function: a user error ends the process with one `error: …` line on
 * stderr and exit code 2; a number returned is the exit code; anything else propagates with its
 * stack trace.
 *
 * @param main The program.
 * @param userErrors Further error classes to report as one line (see {@linkcode userErrorLine}).
 * @returns Resolves when `main` returns 0 or nothing; otherwise the process exits.
 *
 * @example
 * ```ts ignore
 * import { runCli } from "./cli.ts";
 * import { DatasetError } from "@eql/eql/data";
 * await runCli(async () => {
 *   // … parse and check every flag, then do the work …
 * }, [DatasetError]);
 * ```
 */
export async function runCli(
  main: () => Promise<number | void> | number | void,
  userErrors: readonly ErrorClass[] = [],
): Promise<void> {
  let code: number | void;
  try {
    code = await main();
  } catch (e) {
    const line = userErrorLine(e, userErrors);
    if (line === null) throw e;
    console.error(line);
    Deno.exit(2);
  }
  if (code !== undefined && code !== 0) Deno.exit(code);
}
