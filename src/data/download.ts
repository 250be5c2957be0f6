/**
 * Resumable, verified file downloads for datasets.
 *
 * {@linkcode downloadFile} streams the response into `dest + ".part"`, resumes an interrupted
 * transfer with an HTTP `Range` request (restarting when the server ignores it), checks the
 * SHA-256 (`node:crypto`, fed as the bytes arrive) and only then renames the file into place, so `dest` is never a partial or corrupt
 * file. A `dest` that already exists with the expected checksum is returned without any request.
 * Nothing past the expected size is ever written, a request that stalls or gets no headers is
 * aborted after a timeout, encoded (`Content-Encoding`) answers are refused, and every error
 * message says truthfully whether a part file is kept and how many bytes it holds.
 *
 * @example
 * ```ts ignore
 * import { CIFAR_ARCHIVES, downloadFile } from "@eql/eql/data";
 * import { Progress } from "@eql/eql/data";
 * const archive = CIFAR_ARCHIVES["cifar-100-binary"];
 * const bar = new Progress({ label: "cifar-100-binary.tar.gz", unit: "B" });
 * await downloadFile({
 *   url: archive.url,
 *   dest: "data/cifar-100-binary.tar.gz",
 *   sha256: archive.sha256,
 *   bytes: archive.bytes,
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

import { createHash, type Hash } from "node:crypto";

/** A published dataset archive. */
export interface ArchiveInfo {
  /** Official download address. */
  url: string;
  /** SHA-256 of the archive, lowercase hex. */
  sha256: string;
  /** Size in bytes, where known; pass it on as {@linkcode DownloadOptions.bytes}. */
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

/**
 * A download that failed: HTTP error, broken transfer after all retries, bad response.
 *
 * @example
 * ```ts
 * import { DownloadError } from "@eql/eql/data";
 * const e = new DownloadError("https://example.org/a.tar.gz", "HTTP 404", { status: 404 });
 * e.status; // 404
 * e.partBytes; // undefined: no part file to resume from
 * ```
 */
export class DownloadError extends Error {
  /** The address being downloaded. */
  readonly url: string;
  /** The HTTP status, when the failure was an HTTP error. */
  readonly status?: number;
  /**
   * Bytes in the part file (`dest + ".part"`) when the error was raised, or `undefined` when no
   * part file exists. A later call resumes from these bytes.
   */
  readonly partBytes?: number;

  /** Creates the error. */
  constructor(
    url: string,
    message: string,
    options?: { status?: number; cause?: unknown; partBytes?: number },
  ) {
    super(message, { cause: options?.cause });
    this.name = "DownloadError";
    this.url = url;
    this.status = options?.status;
    this.partBytes = options?.partBytes;
  }
}

/**
 * The downloaded bytes do not have the expected SHA-256.
 *
 * @example
 * ```ts
 * import { ChecksumMismatchError, DownloadError } from "@eql/eql/data";
 * const e = new ChecksumMismatchError("https://example.org/a.tar.gz", "a.tar.gz", "ab12", "cd34");
 * e instanceof DownloadError; // true
 * e.expected; // "ab12"
 * ```
 */
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
  /**
   * Expected size in bytes (for example {@linkcode ArchiveInfo.bytes}). Nothing beyond it is
   * ever written, and a server that announces another size is refused before any byte is saved.
   * Without it the server's `Content-Length`/`Content-Range` is the cap, where it sends one.
   */
  bytes?: number;
  /** Called as bytes arrive: bytes on disk so far (including a resumed part) and the total size. */
  onProgress?: (received: number, total: number | undefined) => void;
  /** How many times a broken transfer is resumed within this call (default 3). */
  retries?: number;
  /** Wait before each retry, in ms, multiplied by the retry number (default 1000). */
  retryDelayMs?: number;
  /**
   * A request is aborted when no body bytes arrive for this long, in ms (default 30000). The
   * bytes received so far stay in the part file; the stall counts as a broken transfer.
   */
  stallTimeoutMs?: number;
  /**
   * A request is aborted when its response headers (connection included) take longer than this,
   * in ms (default 30000). Counts as a broken transfer.
   */
  connectTimeoutMs?: number;
  /** Most redirects followed per request (default 10); a redirect loop fails at once. */
  maxRedirects?: number;
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
  /** Number of HTTP requests made (redirects not counted). */
  requests: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_REDIRECTS = 10;

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

/** Size of the reads that hash a file already on disk. */
const HASH_CHUNK = 1 << 20;

/**
 * Feeds the first `length` bytes of a file (all of it when `length` is not given) to `hash`,
 * reading it in chunks so that memory stays constant whatever the size.
 */
async function hashFileInto(hash: Hash, path: string, length?: number): Promise<void> {
  using file = await Deno.open(path, { read: true });
  const buf = new Uint8Array(HASH_CHUNK);
  let left = length ?? Infinity;
  while (left > 0) {
    const n = await file.read(left < buf.length ? buf.subarray(0, left) : buf);
    if (n === null) break;
    hash.update(buf.subarray(0, n));
    left -= n;
  }
  if (length !== undefined && left > 0) {
    throw new Error(`${path} ended ${left} bytes before the ${length} bytes to hash`);
  }
}

/** SHA-256 of a file as lowercase hex, read in chunks. */
async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  await hashFileInto(hash, path);
  return hash.digest("hex");
}

function parentDir(path: string): string | undefined {
  const cut = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  return cut > 0 ? path.slice(0, cut) : undefined;
}

/** Parses `bytes START-END/TOTAL` (TOTAL may be `*`). */
function parseContentRange(
  header: string | null,
): { start: number; end: number; total?: number } | undefined {
  const m = header?.trim().match(/^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i);
  if (!m) return undefined;
  return {
    start: Number(m[1]),
    end: Number(m[2]),
    total: m[3] === "*" ? undefined : Number(m[3]),
  };
}

/** Parses the `*∕TOTAL` form sent with 416 Range Not Satisfiable. */
function unsatisfiedTotal(header: string | null): number | undefined {
  const m = header?.trim().match(/^bytes\s+\*\/(\d+)$/i);
  return m ? Number(m[1]) : undefined;
}

/** Parses a `Content-Length` header; `undefined` when absent or malformed. */
function contentLength(res: Response): number | undefined {
  const length = res.headers.get("content-length")?.trim();
  return length !== undefined && /^\d+$/.test(length) ? Number(length) : undefined;
}

/** `300 ms`, `30 s`. */
function duration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${ms / 1000} s`;
}

/** Describes the part file truthfully: whether it exists and how many bytes it holds. */
function describePart(part: string, bytes: number | undefined): string {
  if (bytes === undefined) {
    return `No part file was kept (${part} does not exist); running again starts from zero.`;
  }
  if (bytes === 0) return `${part} exists but is empty; running again starts from zero.`;
  return `${bytes} bytes are kept in ${part}; running again resumes from there.`;
}

/** Waits `ms`, or rejects with the signal's reason as soon as it aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * The outcome of one transfer attempt. `complete` means the part file holds the whole resource;
 * `sha256` is then its digest when the attempt hashed the bytes as they were written. Otherwise
 * `error` says why; `fatal` failures are not retried (the server would answer the same).
 */
interface Attempt {
  complete: boolean;
  resumed: boolean;
  sha256?: string;
  error?: string;
  fatal?: boolean;
  status?: number;
  cause?: unknown;
}

function failed(
  error: string,
  extra: { fatal?: boolean; resumed?: boolean; status?: number; cause?: unknown } = {},
): Attempt {
  return {
    complete: false,
    resumed: extra.resumed ?? false,
    error,
    fatal: extra.fatal,
    status: extra.status,
    cause: extra.cause,
  };
}

/** Validated settings shared by all attempts of one {@linkcode downloadFile} call. */
interface Settings {
  url: string;
  part: string;
  bytes?: number;
  stallTimeoutMs: number;
  connectTimeoutMs: number;
  maxRedirects: number;
  onProgress?: (received: number, total: number | undefined) => void;
  signal?: AbortSignal;
}

/** A timer that aborts the attempt's controller, remembering why. */
class Watchdog {
  /** Why the request was aborted, once the timer fired. */
  fired: string | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #controller: AbortController;

  constructor(controller: AbortController) {
    this.#controller = controller;
  }

  arm(ms: number, reason: () => string): void {
    this.disarm();
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.fired = reason();
      this.#controller.abort(new DOMException(this.fired, "TimeoutError"));
    }, ms);
  }

  disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/**
 * Sends the GET request, following redirects by hand (so a loop fails at once instead of being
 * retried) under the connect timeout. Returns the final response or a failed attempt.
 */
async function request(
  s: Settings,
  headers: Record<string, string>,
  signal: AbortSignal,
  watchdog: Watchdog,
): Promise<Response | Attempt> {
  let current = s.url;
  const seen = [current];
  for (let hop = 0; hop <= s.maxRedirects; hop++) {
    const address = current;
    watchdog.arm(
      s.connectTimeoutMs,
      () =>
        `no response headers from ${address} within ${duration(s.connectTimeoutMs)} ` +
        `(connect timeout, connectTimeoutMs = ${s.connectTimeoutMs})`,
    );
    let res: Response;
    try {
      res = await fetch(current, { headers, signal, redirect: "manual" });
    } catch (e) {
      if (s.signal?.aborted) throw s.signal.reason;
      const why = watchdog.fired ?? `request failed: ${e instanceof Error ? e.message : e}`;
      return failed(why, { cause: e });
    } finally {
      watchdog.disarm();
    }
    const location = res.headers.get("location");
    if (!REDIRECTS.has(res.status) || location === null) return res;
    await res.body?.cancel();
    let next: URL;
    try {
      next = new URL(location, current);
    } catch {
      return failed(`HTTP ${res.status} from ${current} redirects to an invalid address`, {
        fatal: true,
        status: res.status,
      });
    }
    if (next.protocol !== "http:" && next.protocol !== "https:") {
      return failed(`HTTP ${res.status} from ${current} redirects to ${next.href}, not http(s)`, {
        fatal: true,
        status: res.status,
      });
    }
    if (seen.includes(next.href)) {
      return failed(`redirect loop: ${[...seen, next.href].join(" -> ")}`, {
        fatal: true,
        status: res.status,
      });
    }
    seen.push(next.href);
    current = next.href;
  }
  return failed(
    `more than ${s.maxRedirects} redirects (maxRedirects = ${s.maxRedirects}): ` +
      seen.join(" -> "),
    { fatal: true },
  );
}

async function transfer(s: Settings): Promise<Attempt> {
  let offset = (await fileSize(s.part)) ?? 0;
  if (s.bytes !== undefined && offset > s.bytes) {
    // Longer than the whole file: it cannot be a prefix of it.
    await removeIfExists(s.part);
    offset = 0;
  }
  const headers: Record<string, string> = { "Accept-Encoding": "identity" };
  if (offset > 0) headers.Range = `bytes=${offset}-`;
  const controller = new AbortController();
  const signal = s.signal ? AbortSignal.any([s.signal, controller.signal]) : controller.signal;
  const watchdog = new Watchdog(controller);
  try {
    const got = await request(s, headers, signal, watchdog);
    if (!(got instanceof Response)) return got;
    return await receive(s, got, offset, watchdog);
  } finally {
    watchdog.disarm();
  }
}

/** Checks the response and streams its body into the part file. */
async function receive(
  s: Settings,
  res: Response,
  offset: number,
  watchdog: Watchdog,
): Promise<Attempt> {
  const status = res.status;
  if (status === 416 && offset > 0) {
    await res.body?.cancel();
    const announced = unsatisfiedTotal(res.headers.get("content-range"));
    if (announced !== undefined && s.bytes !== undefined && announced !== s.bytes) {
      return failed(
        `the server's file has ${announced} bytes (Content-Range), expected ${s.bytes}`,
        { fatal: true, status },
      );
    }
    // The part may already be complete (a crash between the last byte and the rename).
    if ((announced ?? s.bytes) === offset) return { complete: true, resumed: true };
    await removeIfExists(s.part);
    return failed(
      `HTTP 416: range bytes=${offset}- not satisfiable (server size ` +
        `${announced ?? "not given"}); the part file was discarded`,
      { status },
    );
  }
  if (!res.ok || (status !== 200 && status !== 206)) {
    await res.body?.cancel();
    const error = `HTTP ${status} ${res.statusText}`.trim();
    const transient = status >= 500 || status === 408 || status === 429;
    return failed(error, { fatal: !transient, status });
  }
  const encoding = res.headers.get("content-encoding")?.trim().toLowerCase();
  if (encoding !== undefined && encoding !== "" && encoding !== "identity") {
    // The checksum is of the raw file; a decoded (or re-encoded) body differs between tries.
    await res.body?.cancel();
    return failed(
      `the server answered with Content-Encoding: ${encoding} although the request asked for ` +
        `Accept-Encoding: identity; the SHA-256 is of the raw file, so an encoded body is not saved`,
      { fatal: true, status },
    );
  }

  let append = false;
  let total: number | undefined;
  /** Absolute position in the file where this body must end, when known. */
  let end: number | undefined;
  const length = contentLength(res);
  if (status === 206) {
    const range = parseContentRange(res.headers.get("content-range"));
    if (offset === 0 || range === undefined || range.start !== offset) {
      await res.body?.cancel();
      await removeIfExists(s.part);
      return failed(
        `unexpected HTTP 206 with Content-Range ${res.headers.get("content-range")} ` +
          `for bytes=${offset}-; the part file was discarded`,
        { status },
      );
    }
    if (range.total !== undefined && s.bytes !== undefined && range.total !== s.bytes) {
      await res.body?.cancel();
      return failed(
        `the server's file has ${range.total} bytes (Content-Range), expected ${s.bytes}`,
        { fatal: true, status },
      );
    }
    total = range.total ?? s.bytes;
    end = range.end + 1;
    if (range.end < range.start || (total !== undefined && end > total)) {
      await res.body?.cancel();
      return failed(`invalid Content-Range ${res.headers.get("content-range")}`, {
        fatal: true,
        status,
      });
    }
    if (length !== undefined && length !== end - range.start) {
      await res.body?.cancel();
      return failed(
        `Content-Length ${length} disagrees with Content-Range ` +
          `${res.headers.get("content-range")} (${end - range.start} bytes)`,
        { fatal: true, status },
      );
    }
    append = true;
  } else {
    // 200: the whole resource, even if we asked for a range (the server ignores Range), so the
    // part file restarts from zero.
    if (length !== undefined && s.bytes !== undefined && length !== s.bytes) {
      await res.body?.cancel();
      return failed(
        `the server announces Content-Length ${length}, expected ${s.bytes} bytes; ` +
          `nothing was written`,
        { fatal: true, status },
      );
    }
    total = s.bytes ?? length;
    end = total;
  }
  if (res.body === null) {
    return failed("response without a body", { status, resumed: append });
  }

  let received = append ? offset : 0;
  s.onProgress?.(received, total);
  // The digest of the part file is built as it grows: the kept prefix first, then every byte as
  // it is written, so the finished file need not be read again.
  const hash = createHash("sha256");
  if (append) {
    try {
      await hashFileInto(hash, s.part, offset);
    } catch (e) {
      await res.body.cancel().catch(() => {});
      throw e;
    }
  }
  const file = await Deno.open(s.part, {
    write: true,
    create: true,
    append,
    truncate: !append,
  });
  const reader = res.body.getReader();
  let error: unknown;
  let overflow: string | undefined;
  try {
    for (;;) {
      const before = received;
      watchdog.arm(
        s.stallTimeoutMs,
        () =>
          `the transfer stalled: no data for ${duration(s.stallTimeoutMs)} after ${before} ` +
          `bytes (stallTimeoutMs = ${s.stallTimeoutMs})`,
      );
      const { done, value } = await reader.read();
      watchdog.disarm();
      if (done) break;
      let chunk = value;
      if (end !== undefined && received + chunk.length > end) {
        chunk = chunk.subarray(0, end - received);
        overflow = `the body is longer than expected: expected ${end} bytes in all, at least ` +
          `${received + value.length} arrived; the bytes past ${end} were not written`;
      }
      for (let off = 0; off < chunk.length;) off += await file.write(chunk.subarray(off));
      hash.update(chunk);
      received += chunk.length;
      s.onProgress?.(received, total);
      if (overflow !== undefined) {
        await reader.cancel().catch(() => {});
        break;
      }
    }
  } catch (e) {
    error = e;
    await reader.cancel().catch(() => {});
  } finally {
    watchdog.disarm();
    file.close();
  }
  if (overflow !== undefined) return failed(overflow, { fatal: true, resumed: append, status });
  if (error !== undefined) {
    if (s.signal?.aborted) throw s.signal.reason;
    const why = watchdog.fired ??
      `connection broke after ${received} bytes: ${error instanceof Error ? error.message : error}`;
    return failed(why, { resumed: append, cause: error });
  }
  if (end !== undefined && received !== end) {
    return failed(`connection closed after ${received} of ${end} bytes`, { resumed: append });
  }
  if (total !== undefined && received !== total) {
    // The server sent a smaller range than asked for; the next request continues.
    return failed(`the server sent bytes up to ${received} of ${total}`, { resumed: append });
  }
  return { complete: true, resumed: append, sha256: hash.digest("hex") };
}

function positiveMs(name: string, value: number | undefined): number {
  const ms = value ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isFinite(ms) || ms <= 0) {
    throw new RangeError(`${name} must be a finite number > 0, got ${value}`);
  }
  return ms;
}

/**
 * Downloads `url` to `dest`, resuming, verifying and renaming atomically.
 *
 * 1. If `dest` exists and matches `sha256` (or no checksum was given) and `bytes`, it is returned
 *    as is.
 * 2. Bytes go to `dest + ".part"`. When that file exists from an earlier attempt, the request
 *    asks for the rest with `Range: bytes=N-`; a `206` reply is appended, a `200` reply (server
 *    without range support) restarts the file from scratch. Requests send
 *    `Accept-Encoding: identity`; a reply with any other `Content-Encoding` is refused, since the
 *    checksum is of the raw file.
 * 3. Nothing past the expected size (`bytes`, else `Content-Length`/`Content-Range`) is written;
 *    a longer body, or a server size that disagrees with `bytes`, fails at once.
 * 4. A transfer that breaks off, stalls for `stallTimeoutMs`, gets no headers within
 *    `connectTimeoutMs` or meets a 5xx/408/429 is resumed the same way, up to `retries` times;
 *    after that the error is thrown and the part file is kept so the next call continues from
 *    it. Every error message says whether a part file exists and how many bytes it holds.
 * 5. The SHA-256 of the part file, computed as its bytes are written (the kept prefix of a resumed
 *    transfer is read once), is checked; on a mismatch it is deleted and a
 *    {@linkcode ChecksumMismatchError} names both digests. Otherwise it is renamed to `dest`.
 *
 * Two processes must not download to the same `dest` at the same time.
 *
 * @param options Address, destination, checksum, size, progress callback, retry and timeouts.
 * @returns The path, size, digest and what happened.
 * @throws {TypeError} When the address is not http(s) or the checksum is not 64 hex digits.
 * @throws {RangeError} When a number option is out of range.
 * @throws {DownloadError} On an HTTP error, a bad response or when the transfer keeps failing.
 * @throws {ChecksumMismatchError} When the data does not have the expected SHA-256.
 *
 * @example
 * ```ts ignore
 * import { CIFAR_ARCHIVES, downloadFile } from "@eql/eql/data";
 * const archive = CIFAR_ARCHIVES["cifar-10-binary"];
 * const r = await downloadFile({
 *   url: archive.url,
 *   dest: "data/cifar-10-binary.tar.gz",
 *   sha256: archive.sha256,
 *   bytes: archive.bytes,
 *   stallTimeoutMs: 60_000,
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
  const bytes = options.bytes;
  if (bytes !== undefined && (!Number.isSafeInteger(bytes) || bytes < 0)) {
    throw new RangeError(`bytes must be a non-negative integer, got ${bytes}`);
  }
  const retries = options.retries ?? 3;
  if (!Number.isInteger(retries) || retries < 0) {
    throw new RangeError(`retries must be a non-negative integer, got ${retries}`);
  }
  const retryDelayMs = options.retryDelayMs ?? 1000;
  if (!Number.isFinite(retryDelayMs) || retryDelayMs < 0) {
    throw new RangeError(`retryDelayMs must be a finite number ≥ 0, got ${retryDelayMs}`);
  }
  const maxRedirects = options.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
  if (!Number.isInteger(maxRedirects) || maxRedirects < 0) {
    throw new RangeError(`maxRedirects must be a non-negative integer, got ${maxRedirects}`);
  }
  const dest = options.dest;
  const settings: Settings = {
    url,
    part: `${dest}.part`,
    bytes,
    stallTimeoutMs: positiveMs("stallTimeoutMs", options.stallTimeoutMs),
    connectTimeoutMs: positiveMs("connectTimeoutMs", options.connectTimeoutMs),
    maxRedirects,
    onProgress: options.onProgress,
    signal: options.signal,
  };

  const existing = await fileSize(dest);
  if (existing !== undefined && (bytes === undefined || existing === bytes)) {
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
  }
  // Otherwise a stale or corrupt file: download again; the rename below replaces it.

  const dir = parentDir(dest);
  if (dir !== undefined) await Deno.mkdir(dir, { recursive: true });
  const part = settings.part;
  let requests = 0, resumed = false;
  let last: Attempt | undefined;
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (attempt > 0 && retryDelayMs > 0) await sleep(retryDelayMs * attempt, options.signal);
    options.signal?.throwIfAborted();
    requests++;
    last = await transfer(settings);
    resumed ||= last.resumed;
    if (last.complete || last.fatal) break;
  }
  if (last === undefined || !last.complete) {
    const have = await fileSize(part);
    const why = last?.error ?? "no request was made";
    const head = last?.fatal
      ? `Download of ${url} failed: ${why}.`
      : `Download of ${url} did not complete after ${requests} request(s): ${why}.`;
    throw new DownloadError(url, `${head} ${describePart(part, have)}`, {
      status: last?.status,
      cause: last?.cause,
      partBytes: have,
    });
  }

  // A part completed by an earlier call (answered 416 now) was not hashed by this one.
  const digest = last.sha256 ?? await sha256File(part);
  if (expected !== undefined && digest !== expected) {
    await removeIfExists(part);
    throw new ChecksumMismatchError(url, part, expected, digest);
  }
  const size = (await fileSize(part)) ?? 0;
  await Deno.rename(part, dest);
  return { path: dest, bytes: size, sha256: digest, cached: false, resumed, requests };
}
