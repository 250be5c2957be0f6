/**
 * Finding and opening native libraries. Every binding in `ffi/` opens its library through
 * `openLibrary`, which tries an environment-variable override first, then each candidate in order
 * (bare names go through the system linker; paths are tried as files), and on failure throws a
 * `LibraryNotFoundError` that lists every place it looked and the variable that overrides it.
 *
 * @module
 */

import { missingPermissions, type NativePermission, permissionMessage } from "./permissions.ts";

/**
 * Raised when no candidate of a native library could be opened. When the override variable was
 * set, only its path was tried and the message says how to fix or unset it.
 *
 * @example
 * ```ts
 * import { LibraryNotFoundError } from "@eql/eql";
 * const e = new LibraryNotFoundError("OpenBLAS", "EQL_OPENBLAS_PATH", ["/x.so: not found"], "/x.so");
 * console.log(e.message.includes('EQL_OPENBLAS_PATH is set to "/x.so"')); // true
 * ```
 */
export class LibraryNotFoundError extends Error {
  /** Library being looked for, e.g. "OpenBLAS". */
  readonly library: string;
  /** Every path or name that was tried, each with why it failed. */
  readonly tried: readonly string[];
  /** The environment variable that overrides the search. */
  readonly envVar: string;
  /** The value of that variable when it was set (then it was the only path tried). */
  readonly override: string | undefined;
  /** Deno permissions that were missing, when that is why nothing was tried. */
  readonly missing: readonly NativePermission[];

  /**
   * Builds the error message from the attempts (and the override, when it was set), or, when
   * permissions were missing, from those.
   */
  constructor(
    library: string,
    envVar: string,
    tried: readonly string[],
    override?: string,
    missing: readonly NativePermission[] = [],
  ) {
    const fix = override === undefined
      ? `Set ${envVar} to the full path of the library to use another copy.`
      : `${envVar} is set to "${override}", so only that path was tried: set it to the full ` +
        `path of a working copy of ${library}, or unset it to search the usual places.`;
    super(
      missing.length > 0
        ? `${permissionMessage(`${library} cannot be loaded`, missing)}.`
        : `${library} could not be loaded. Looked in:\n${
          tried.map((t) => `  - ${t}`).join("\n")
        }\n${fix}`,
    );
    this.name = "LibraryNotFoundError";
    this.library = library;
    this.tried = tried;
    this.envVar = envVar;
    this.override = override;
    this.missing = missing;
  }
}

/** What `openLibrary` needs to know about one library. */
export interface LibrarySpec<S extends Deno.ForeignLibraryInterface> {
  /** Human name for messages, e.g. "cuBLAS". */
  library: string;
  /** Environment variable holding an explicit path; when set, only that path is tried. */
  envVar: string;
  /** File names or absolute paths, tried in order. */
  candidates: readonly string[];
  /** The symbol table. */
  symbols: S;
}

function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined; // no --allow-env: behave as if unset
  }
}

/**
 * Opens the first candidate that loads.
 *
 * @param spec Library name, override variable, candidates and symbols.
 * @returns The opened library.
 * @throws {LibraryNotFoundError} When nothing loads; the message lists every attempt.
 *
 * @example
 * ```ts ignore
 * import { openLibrary } from "./discovery.ts";
 * const libm = openLibrary({
 *   library: "libm",
 *   envVar: "EQL_LIBM_PATH",
 *   candidates: ["libm.so.6"],
 *   symbols: { cos: { parameters: ["f64"], result: "f64" } },
 * });
 * libm.symbols.cos(0); // 1
 * ```
 */
export function openLibrary<S extends Deno.ForeignLibraryInterface>(
  spec: LibrarySpec<S>,
): Deno.DynamicLibrary<S> {
  // Without --allow-ffi every candidate would fail as "not found": say what is really missing.
  const missing = missingPermissions([{ name: "ffi" }]);
  if (missing.length > 0) {
    throw new LibraryNotFoundError(spec.library, spec.envVar, [], undefined, missing);
  }
  const override = readEnv(spec.envVar);
  const candidates = override ? [override] : spec.candidates;
  const tried: string[] = [];
  for (const path of candidates) {
    try {
      return Deno.dlopen(path, spec.symbols);
    } catch (e) {
      const why = e instanceof Error ? e.message.split("\n")[0] : String(e);
      tried.push(`${path}${override ? ` (from ${spec.envVar})` : ""}: ${why}`);
    }
  }
  throw new LibraryNotFoundError(spec.library, spec.envVar, tried, override);
}

/** Reads an environment variable, or undefined when unset or not permitted. */
export function envVar(name: string): string | undefined {
  return readEnv(name);
}
