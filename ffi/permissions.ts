/**
 * Which of Deno's permissions a native step lacks. Without `--allow-ffi` no library can be loaded,
 * without `--allow-env` no `EQL_*` variable or `HOME` can be read, without `--allow-run` no
 * compiler can be started, without `--allow-read`/`--allow-write` on the cache folder nothing can
 * be cached. Those steps then fail with messages that blame the library or the folder; asking
 * first lets the notice name the flag that is missing instead.
 *
 * @module
 */

/** The permissions the native steps use. */
export type NativePermission = "ffi" | "env" | "run" | "read" | "write";

/** One permission a step needs, optionally narrowed to a path or a command. */
export interface PermissionNeed {
  /** The permission. */
  name: NativePermission;
  /** The file or folder (read, write, ffi) or the command (run) it is needed for. */
  target?: string;
}

function descriptor(need: PermissionNeed): Deno.PermissionDescriptor {
  const { name, target } = need;
  if (target === undefined) return { name };
  if (name === "run") return { name, command: target };
  if (name === "read" || name === "write" || name === "ffi") return { name, path: target };
  return { name };
}

/**
 * The permissions among `needs` that are not granted (denied, or left to a prompt that a
 * non-interactive run never answers). Where the permissions API itself is unavailable, nothing is
 * reported missing.
 *
 * @param needs The permissions a step uses.
 * @returns The missing ones, each permission once, in the order given.
 *
 * @example
 * ```ts
 * import { missingPermissions } from "./permissions.ts";
 * const missing = missingPermissions([{ name: "ffi" }, { name: "env" }]);
 * console.log(missing.length === 0 ? "all granted" : missing.join(", "));
 * ```
 */
export function missingPermissions(needs: readonly PermissionNeed[]): NativePermission[] {
  const missing: NativePermission[] = [];
  for (const need of needs) {
    if (missing.includes(need.name)) continue;
    try {
      if (Deno.permissions.querySync(descriptor(need)).state !== "granted") missing.push(need.name);
    } catch {
      // No permissions API (or an unknown descriptor): nothing to report.
    }
  }
  return missing;
}

/**
 * A sentence naming missing permissions and the flags that grant them, for a notice or an error.
 *
 * @param what What could not be done (e.g. "the native CPU kernels cannot be used").
 * @param missing The missing permissions.
 * @returns For example `the native CPU kernels cannot be used without Deno's --allow-ffi
 *   permission (run with --allow-ffi, or -A)`.
 *
 * @example
 * ```ts
 * import { permissionMessage } from "./permissions.ts";
 * permissionMessage("OpenBLAS cannot be loaded", ["ffi"]);
 * ```
 */
export function permissionMessage(what: string, missing: readonly NativePermission[]): string {
  const flags = missing.map((m) => `--allow-${m}`);
  const list = flags.length === 1
    ? flags[0]
    : `${flags.slice(0, -1).join(", ")} and ${flags[flags.length - 1]}`;
  return `${what} without Deno's ${list} permission${flags.length === 1 ? "" : "s"} ` +
    `(run with ${flags.join(" ")}, or -A)`;
}
