/**
 * Resumable, verified file downloads for datasets.
 *
 * {@linkcode downloadFile} streams the response into `dest + ".part"`, resumes an interrupted
 * transfer with an HTTP `Range` request (restarting when the server ignores it), checks the
 * SHA-256 and only then renames the file into place, so `dest` is never a partial or corrupt
 * file. A `dest` that already exists with the expected checksum is returned without any request.
 *
 * @example
 * ```ts ignore
 * import { CIFAR_ARCHIVES, downloadFile } from "./download.ts";
 * import { Progress } from "../progress.ts";
 * const archive = CIFAR_ARCHIVES["cifar-100-binary"];
 * const bar = new Progress({ label: "cifar-100-binary.tar.gz", unit: "B" });
 * await downloadFile({
 *   url: archive.url,
 *   dest: "data/cifar-100-binary.tar.gz",
 *   sha256: archive.sha256,
 *   onProgress: (received, total) => {
 *     bar.total = total;
 *     bar.update(received);
 *   },
 * });
 * bar.finish();
 * ```
 *
 * @module
 */

import { sha256File } from "./sha256.ts";

/** A published dataset archive. */
export interface ArchiveInfo {
  /** Official download address. */
  url: string;
  /** SHA-256 of the archive, lowercase hex. */
  sha256: string;
  /** Size in bytes, where known. */
  bytes?: number;
}

/**
 * The CIFAR archives from the authors' page (https://www.cs.toronto.edu/~kriz/cifar.html). The
 * page lists MD5 sums; these SHA-256 values are the ones widely used for the same files.
 */
export const CIFAR_ARCHIVES: Readonly<Record<string, ArchiveInfo>> = {
  "cifar-10-binary": {
    url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
    sha256: "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
    bytes: 170052171,
  },
  "cifar-100-binary": {
    url: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
    sha256: "58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec",
  },
  "cifar-10-python": {
    url: "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    sha256: "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    bytes: 170498071,
  },
  "cifar-100-python": {
    url: "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    sha256: "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
    bytes: 169001437,
  },
};

/** A download that failed: HTTP error, broken transfer after all retries, bad response. */
export class DownloadError extends Error {
  /** The address being downloaded. */
  readonly url: string;
  /** The HTTP status, when the failure was an HTTP error. */
  readonly status?: number;

  /** Creates the error. */
  constructor(url: string, message: string, options?: { status?: number; cause?: unknown }) {
    super(message, { cause: options?.cause });
    this.name = "DownloadError";
    this.url = url;
    this.status = options?.status;
  }
}

/** The downloaded bytes do not have the expected SHA-256. */
export class ChecksumMismatchError extends DownloadError {
  /** The SHA-256 that was asked for. */
  readonly expected: string;
  /** The SHA-256 of what arrived. */
  readonly actual: string;

  /** Creates the error. */
  constructor(url: string, path: string, expected: string, actual: string) {
    super(
      url,
      `Checksum mismatch for ${url}: expected SHA-256 ${expected}, got ${actual}. ` +
        `The downloaded data (${path}) was deleted; try again or check the address.`,
    );
    this.name = "ChecksumMismatchError";
    this.expected = expected;
    this.actual = actual;
  }
}

/** Options of {@linkcode downloadFile}. */
export interface DownloadOptions {
  /** `http:` or `https:` address. */
  url: string | URL;
  /** Final path; parent folders are created. */
  dest: string;
  /** Expected SHA-256 (64 hex digits, any case); without it the file is not verified. */
  sha256?: string;
  /** Called as bytes arrive: bytes on disk so far (including a resumed part) and the total size. */
  onProgress?: (received: number, total: number | undefined) => void;
  /** How many times a broken transfer is resumed within this call (default 3). */
  retries?: number;
  /** Wait before each retry, in ms, multiplied by the retry number (default 1000). */
  retryDelayMs?: number;
  /** Cancels the download; the part file is kept for a later resume. */
  signal?: AbortSignal;
}

/** What {@linkcode downloadFile} did. */
export interface DownloadResult {
  /** The final path (`dest`). */
  path: string;
  /** Size of the file in bytes. */
  bytes: number;
  /** Its SHA-256, lowercase hex. */
  sha256: string;
  /** True when `dest` was already there and valid, so nothing was fetched. */
  cached: boolean;
  /** True when bytes from an earlier, interrupted transfer were reused. */
  resumed: boolean;
  /** Number of HTTP requests made. */
  requests: number;
}

async function fileSize(path: string): Promise<number | undefined> {
  try {
    const info = await Deno.stat(path);
    return info.isFile ? info.size : undefined;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

async function removeIfExists(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

function parentDir(path: string): string | undefined {
  const cut = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  return cut > 0 ? path.slice(0, cut) : undefined;
}

/** Parses `bytes START-END/TOTAL` (TOTAL may be `*`). */
function parseContentRange(header: string | null): { start: number; total?: number } | undefined {
  const m = header?.match(/^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i);
  if (!m) return undefined;
  return { start: Number(m[1]), total: m[3] === "*" ? undefined : Number(m[3]) };
}

/** Parses the `*∕TOTAL` form sent with 416 Range Not Satisfiable. */
function unsatisfiedTotal(header: string | null): number | undefined {
  const m = header?.match(/^bytes\s+\*\/(\d+)$/i);
  return m ? Number(m[1]) : undefined;
}

/** One transfer attempt: returns true when the part file holds the whole resource. */
type Attempt = { complete: boolean; resumed: boolean; error?: unknown };

async function transfer(
  url: string,
  part: string,
  options: DownloadOptions,
): Promise<Attempt> {
  const offset = (await fileSize(part)) ?? 0;
  const headers: HeadersInit = offset > 0 ? { Range: `bytes=${offset}-` } : {};
  let res: Response;
  try {
    res = await fetch(url, { headers, signal: options.signal });
  } catch (e) {
    if (options.signal?.aborted) throw e;
    return { complete: false, resumed: false, error: e };
  }
  let append = false;
  let total: number | undefined;
  if (res.status === 416 && offset > 0) {
    await res.body?.cancel();
    // The part may already be complete (a crash between the last byte and the rename).
    if (unsatisfiedTotal(res.headers.get("content-range")) === offset) {
      return { complete: true, resumed: true };
    }
    await removeIfExists(part);
    return { complete: false, resumed: false, error: new Error("range not satisfiable") };
  } else if (res.status === 206) {
    const range = parseContentRange(res.headers.get("content-range"));
    if (offset === 0 || range === undefined || range.start !== offset) {
      await res.body?.cancel();
      await removeIfExists(part);
      return {
        complete: false,
        resumed: false,
        error: new Error(`unexpected Content-Range ${res.headers.get("content-range")}`),
      };
    }
    append = true;
    total = range.total;
  } else if (res.ok) {
    // 200: the whole resource, even if we asked for a range (the server ignores Range).
    const length = res.headers.get("content-length");
    total = length !== null && /^\d+$/.test(length) ? Number(length) : undefined;
  } else {
    await res.body?.cancel();
    const err = new DownloadError(
      url,
      `Download of ${url} failed: HTTP ${res.status} ${res.statusText}`,
      { status: res.status },
    );
    if (res.status >= 500 || res.status === 408 || res.status === 429) {
      return { complete: false, resumed: false, error: err };
    }
    throw err;
  }
  if (res.body === null) {
    return { complete: false, resumed: false, error: new Error("response without a body") };
  }

  let received = append ? offset : 0;
  options.onProgress?.(received, total);
  const file = await Deno.open(part, {
    write: true,
    create: true,
    append,
    truncate: !append,
  });
  const reader = res.body.getReader();
  let error: unknown;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      for (let off = 0; off < value.length;) off += await file.write(value.subarray(off));
      received += value.length;
      options.onProgress?.(received, total);
    }
  } catch (e) {
    error = e;
    await reader.cancel().catch(() => {});
  } finally {
    file.close();
  }
  if (error !== undefined) {
    if (options.signal?.aborted) throw error;
    return { complete: false, resumed: append, error };
  }
  if (total !== undefined && received !== total) {
    return {
      complete: false,
      resumed: append,
      error: new Error(`connection closed after ${received} of ${total} bytes`),
    };
  }
  return { complete: true, resumed: append };
}

/**
 * Downloads `url` to `dest`, resuming, verifying and renaming atomically.
 *
 * 1. If `dest` exists and matches `sha256` (or no checksum was given), it is returned as is.
 * 2. Bytes go to `dest + ".part"`. When that file exists from an earlier attempt, the request
 *    asks for the rest with `Range: bytes=N-`; a `206` reply is appended, a `200` reply (server
 *    without range support) restarts the file from scratch.
 * 3. A transfer that breaks off is resumed the same way, up to `retries` times; after that the
 *    error is thrown and the part file is kept so the next call continues from it.
 * 4. The finished part file is hashed; on a mismatch it is deleted and a
 *    {@linkcode ChecksumMismatchError} names both digests. Otherwise it is renamed to `dest`.
 *
 * Two processes must not download to the same `dest` at the same time.
 *
 * @param options Address, destination, checksum, progress callback, retry policy.
 * @returns The path, size, digest and what happened.
 * @throws {TypeError} When the address is not http(s) or the checksum is not 64 hex digits.
 * @throws {DownloadError} On an HTTP error or when the transfer keeps failing.
 * @throws {ChecksumMismatchError} When the data does not have the expected SHA-256.
 *
 * @example
 * ```ts ignore
 * import { downloadFile } from "./download.ts";
 * const r = await downloadFile({
 *   url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
 *   dest: "data/cifar-10-binary.tar.gz",
 *   sha256: "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
 * });
 * console.log(r.cached ? "already there" : `fetched ${r.bytes} bytes`);
 * ```
 */
export async function downloadFile(options: DownloadOptions): Promise<DownloadResult> {
  const url = options.url instanceof URL ? options.url.href : String(options.url);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(`url must be an absolute http(s) address, got "${url}"`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new TypeError(`url must use http: or https:, got "${parsed.protocol}" in ${url}`);
  }
  if (typeof options.dest !== "string" || options.dest === "") {
    throw new TypeError(`dest must be a non-empty path, got ${JSON.stringify(options.dest)}`);
  }
  const expected = options.sha256?.toLowerCase();
  if (expected !== undefined && !/^[0-9a-f]{64}$/.test(expected)) {
    throw new TypeError(`sha256 must be 64 hexadecimal digits, got "${options.sha256}"`);
  }
  const retries = options.retries ?? 3;
  if (!Number.isInteger(retries) || retries < 0) {
    throw new RangeError(`retries must be a non-negative integer, got ${retries}`);
  }
  const retryDelayMs = options.retryDelayMs ?? 1000;
  if (!Number.isFinite(retryDelayMs) || retryDelayMs < 0) {
    throw new RangeError(`retryDelayMs must be a finite number ≥ 0, got ${retryDelayMs}`);
  }
  const dest = options.dest;

  const existing = await fileSize(dest);
  if (existing !== undefined) {
    const digest = await sha256File(dest);
    if (expected === undefined || digest === expected) {
      return {
        path: dest,
        bytes: existing,
        sha256: digest,
        cached: true,
        resumed: false,
        requests: 0,
      };
    }
    // A stale or corrupt file: download again; the rename below replaces it.
  }

  const dir = parentDir(dest);
  if (dir !== undefined) await Deno.mkdir(dir, { recursive: true });
  const part = `${dest}.part`;
  let requests = 0, resumed = false;
  let lastError: unknown;
  let complete = false;
  for (let attempt = 0; attempt <= retries && !complete; attempt++) {
    if (attempt > 0 && retryDelayMs > 0) {
      await new Promise((resolve) => setTimeout(resolve, retryDelayMs * attempt));
    }
    options.signal?.throwIfAborted();
    requests++;
    const result = await transfer(url, part, options);
    resumed ||= result.resumed;
    complete = result.complete;
    lastError = result.error;
  }
  if (!complete) {
    const have = (await fileSize(part)) ?? 0;
    const why = lastError instanceof Error ? lastError.message : String(lastError);
    throw new DownloadError(
      url,
      `Download of ${url} did not complete after ${requests} request(s): ${why}. ` +
        `${have} bytes are kept in ${part}; running again resumes from there.`,
      { cause: lastError },
    );
  }

  const digest = await sha256File(part);
  if (expected !== undefined && digest !== expected) {
    await removeIfExists(part);
    throw new ChecksumMismatchError(url, part, expected, digest);
  }
  const bytes = (await fileSize(part)) ?? 0;
  await Deno.rename(part, dest);
  return { path: dest, bytes, sha256: digest, cached: false, resumed, requests };
}
