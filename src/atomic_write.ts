/**
 * Atomic file writes: a temporary file in the destination's folder is written, flushed and renamed
 * over the destination, so a crash never leaves a half-written file there. Temporary files left
 * by earlier writes of the same path whose process was killed are swept first.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";

/** A temporary file's age after which it is debris even when its writer cannot be checked. */
const STALE_TEMP_MS = 60 * 60 * 1000;

/** Whether process `pid` is running, or `undefined` where that cannot be told (no `/proc`). */
function processRunning(pid: number): boolean | undefined {
  try {
    Deno.statSync("/proc/self");
  } catch {
    return undefined;
  }
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Removes temporary files that earlier writes of `path` left behind when their process was
 * killed before it could rename or remove them: those whose writer is no longer running, or,
 * where that cannot be checked, that are older than an hour. A write in progress elsewhere is
 * never touched. Failures are ignored: the sweep only tidies up.
 */
async function sweepStaleTemps(path: string): Promise<void> {
  const folder = dirname(path), prefix = `.${basename(path)}.`;
  const pattern = /^(\d+)\.[0-9a-f]{8}\.tmp$/;
  try {
    for await (const entry of Deno.readDir(folder)) {
      if (!entry.isFile || !entry.name.startsWith(prefix)) continue;
      const m = pattern.exec(entry.name.slice(prefix.length));
      if (m === null) continue;
      const pid = Number(m[1]);
      if (pid === Deno.pid) continue;
      const file = join(folder, entry.name);
      let stale = processRunning(pid) === false;
      if (!stale) {
        const mtime = (await Deno.stat(file)).mtime?.getTime();
        stale = mtime !== undefined && Date.now() - mtime > STALE_TEMP_MS;
      }
      if (stale) await Deno.remove(file).catch(() => {});
    }
  } catch {
    // An unreadable folder fails the write itself, with its own message.
  }
}

/**
 * Writes bytes or text to `path` atomically: a temporary file `.<name>.<pid>.<random>.tmp` in
 * the same folder is written, flushed and renamed over `path`; on failure the temporary file is
 * removed. Temporary files of earlier writes of `path` that were killed (kill -9, Ctrl-C) are
 * swept first.
 *
 * @param path Destination.
 * @param data Contents; a string is written as UTF-8.
 * @returns Nothing; resolves once the file is in place.
 * @throws {Deno.errors.NotFound | Deno.errors.PermissionDenied | Error} When the file cannot be
 * written; the temporary file is removed.
 *
 * @example
 * ```ts
 * import { writeFileAtomically } from "./atomic_write.ts";
 * const dir = await Deno.makeTempDir();
 * await writeFileAtomically(`${dir}/a.json`, "{}\n");
 * ```
 */
export async function writeFileAtomically(path: string, data: Uint8Array | string): Promise<void> {
  await sweepStaleTemps(path);
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const tmp = join(
    dirname(path),
    `.${basename(path)}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`,
  );
  try {
    const file = await Deno.open(tmp, { write: true, createNew: true });
    try {
      let done = 0;
      while (done < bytes.length) done += await file.write(bytes.subarray(done));
      await file.syncData();
    } finally {
      file.close();
    }
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}
