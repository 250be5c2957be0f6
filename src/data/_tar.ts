/**
 * A streaming reader for tar archives (POSIX ustar, GNU and pax), optionally gzip-compressed.
 *
 * The archive is read in 512-byte blocks: a header block, then the member's data padded to a
 * whole block. Regular files are returned with their contents; directories, links and other
 * members are listed without data. GNU long names (`L`) and pax extended headers (`x`: `path`,
 * `size`) apply to the next member; GNU long link names (`K`) and pax global headers (`g`) are
 * read and skipped. Two zero blocks (or the end of the input exactly at a header) end the
 * archive. Every header's checksum is verified.
 *
 * Why the project carries this reader: the platform decompresses (`DecompressionStream("gzip")`
 * does the gzip layer here), but neither Deno nor its `node:` modules read the tar layer, and the
 * standard library's tar streams live on JSR, which the machines this project is built on cannot
 * reach. What remains is the block format above, with the checks a damaged download needs
 * (checksums, sizes, truncation) reported as `DatasetError`s.
 *
 * @module
 */

import { DatasetError } from "./errors.ts";

const BLOCK = 512;
/** Longest GNU long-name or pax header we accept; real ones are a few hundred bytes. */
const MAX_META = 1 << 20;

/** Kind of a tar member. */
export type TarEntryType = "file" | "directory" | "symlink" | "hardlink" | "other";

/** One member of a tar archive. */
export interface TarEntry {
  /** Full path inside the archive, after long-name and pax overrides. */
  name: string;
  /** Member kind. */
  type: TarEntryType;
  /** Size in bytes as recorded in the header (data of files only). */
  size: number;
  /** Contents of a regular file that was wanted; empty otherwise. */
  data: Uint8Array;
}

/** Options for reading an archive. */
export interface TarReadOptions {
  /**
   * Which regular files to keep the contents of (default: all). Skipped files still appear in
   * the result with empty `data`, so callers can tell "absent" from "not kept".
   */
  want?: (name: string, size: number) => boolean;
  /** Name used in error messages (default `"tar archive"`). */
  source?: string;
  /**
   * Called with each member as soon as it is complete, instead of collecting it in the result
   * (which then stays empty), so a caller can decode a member and let its bytes go before the
   * next one is read.
   */
  onEntry?: (entry: TarEntry) => void;
}

type State = "header" | "data" | "padding" | "end";

interface Pending {
  name: string;
  type: TarEntryType | "longname" | "longlink" | "pax" | "paxglobal";
  size: number;
  keep: boolean;
}

const decoder = new TextDecoder();

function cString(block: Uint8Array, start: number, length: number): string {
  let end = start;
  while (end < start + length && block[end] !== 0) end++;
  return decoder.decode(block.subarray(start, end));
}

/** Parses an octal header field, or GNU base-256 when the top bit of the first byte is set. */
function parseNumber(block: Uint8Array, start: number, length: number, what: string): number {
  const first = block[start];
  if (first & 0x80) {
    if (first === 0xff) throw new Error(`negative base-256 ${what}`);
    let value = first & 0x7f;
    for (let i = 1; i < length; i++) value = value * 256 + block[start + i];
    if (!Number.isSafeInteger(value)) throw new Error(`${what} does not fit a safe integer`);
    return value;
  }
  let i = start;
  const end = start + length;
  while (i < end && block[i] === 0x20) i++;
  let value = 0;
  let digits = 0;
  for (; i < end; i++) {
    const c = block[i];
    if (c === 0 || c === 0x20) break;
    if (c < 0x30 || c > 0x37) {
      throw new Error(`${what} field holds a non-octal byte 0x${c.toString(16).padStart(2, "0")}`);
    }
    value = value * 8 + (c - 0x30);
    digits++;
  }
  if (digits === 0) return 0;
  return value;
}

function checksumMatches(block: Uint8Array): boolean {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i];
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  let stored: number;
  try {
    stored = parseNumber(block, 148, 8, "checksum");
  } catch {
    return false;
  }
  // Some historic writers summed signed chars; accept either convention.
  return stored === unsigned || stored === signed;
}

function isZeroBlock(block: Uint8Array): boolean {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

/** Parses pax records `"<len> <key>=<value>\n"`, returning the keys we honour. */
function parsePax(data: Uint8Array, where: string): { path?: string; size?: number } {
  const out: { path?: string; size?: number } = {};
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break; // trailing NUL padding written by some tools
    let space = pos;
    while (space < data.length && data[space] !== 0x20) space++;
    const length = Number(decoder.decode(data.subarray(pos, space)));
    if (!Number.isInteger(length) || length <= space - pos || pos + length > data.length) {
      throw new DatasetError(where, `malformed pax record at byte ${pos} of the extended header`);
    }
    const record = decoder.decode(data.subarray(space + 1, pos + length - 1));
    const eq = record.indexOf("=");
    if (eq < 0) {
      throw new DatasetError(where, `pax record without '=' at byte ${pos} of the extended header`);
    }
    const key = record.slice(0, eq);
    const value = record.slice(eq + 1);
    if (key === "path") out.path = value;
    if (key === "size") {
      const size = Number(value);
      if (!Number.isSafeInteger(size) || size < 0) {
        throw new DatasetError(where, `pax size must be a non-negative integer, got "${value}"`);
      }
      out.size = size;
    }
    pos += length;
  }
  return out;
}

/**
 * An incremental tar parser: feed it chunks of any size with `push`, then call `finish`.
 *
 * @example
 * ```ts
 * import { TarParser } from "./_tar.ts";
 * const parser = new TarParser({ source: "empty.tar" });
 * parser.push(new Uint8Array(1024)); // two zero blocks: an empty archive
 * parser.finish(); // []
 * ```
 */
export class TarParser {
  #want: (name: string, size: number) => boolean;
  #onEntry: ((entry: TarEntry) => void) | undefined;
  #source: string;
  #state: State = "header";
  #header = new Uint8Array(BLOCK);
  #headerFill = 0;
  #pending: Pending | null = null;
  #data: Uint8Array = new Uint8Array(0);
  #dataFill = 0;
  #padding = 0;
  #offset = 0; // bytes consumed so far, for error messages
  #longName: string | null = null;
  #pax: { path?: string; size?: number } | null = null;
  #entries: TarEntry[] = [];
  #zeroBlocks = 0;

  /**
   * Creates a parser.
   *
   * @param options Which files to keep and the name used in errors.
   */
  constructor(options: TarReadOptions = {}) {
    this.#want = options.want ?? (() => true);
    this.#onEntry = options.onEntry;
    this.#source = options.source ?? "tar archive";
  }

  /**
   * Consumes the next chunk of the archive.
   *
   * @param chunk Bytes following the previous chunk.
   * @returns The members completed by this chunk.
   */
  push(chunk: Uint8Array): TarEntry[] {
    let pos = 0;
    while (pos < chunk.length && this.#state !== "end") {
      if (this.#state === "header") {
        const n = Math.min(BLOCK - this.#headerFill, chunk.length - pos);
        this.#header.set(chunk.subarray(pos, pos + n), this.#headerFill);
        this.#headerFill += n;
        pos += n;
        this.#offset += n;
        if (this.#headerFill === BLOCK) {
          this.#headerFill = 0;
          this.#onHeader();
        }
      } else if (this.#state === "data") {
        const p = this.#pending!;
        const n = Math.min(p.size - this.#dataFill, chunk.length - pos);
        if (p.keep) this.#data.set(chunk.subarray(pos, pos + n), this.#dataFill);
        this.#dataFill += n;
        pos += n;
        this.#offset += n;
        if (this.#dataFill === p.size) this.#onData();
      } else {
        const n = Math.min(this.#padding, chunk.length - pos);
        this.#padding -= n;
        pos += n;
        this.#offset += n;
        if (this.#padding === 0) this.#state = "header";
      }
    }
    const done = this.#entries;
    this.#entries = [];
    return done;
  }

  /**
   * Declares the end of the input.
   *
   * @returns Members completed since the last `push` (none in practice).
   * @throws {DatasetError} When the input ended inside a header or a member's data.
   */
  finish(): TarEntry[] {
    if (this.#state === "header" && this.#headerFill !== 0) {
      throw new DatasetError(
        this.#source,
        `truncated archive: input ends ${this.#headerFill} bytes into a 512-byte header ` +
          `at byte ${this.#offset - this.#headerFill}`,
      );
    }
    if (this.#state === "data") {
      const p = this.#pending!;
      throw new DatasetError(
        this.#source,
        `truncated archive: member "${p.name}" declares ${p.size} bytes but the input ends ` +
          `after ${this.#dataFill}`,
      );
    }
    if (this.#state === "padding") {
      throw new DatasetError(
        this.#source,
        `truncated archive: input ends inside the block padding after member ` +
          `"${this.#pending?.name ?? ""}"`,
      );
    }
    if (this.#longName !== null || this.#pax !== null) {
      throw new DatasetError(
        this.#source,
        "truncated archive: input ends after a long-name or pax header with no member following",
      );
    }
    const done = this.#entries;
    this.#entries = [];
    return done;
  }

  #onHeader(): void {
    const block = this.#header;
    const at = this.#offset - BLOCK;
    if (isZeroBlock(block)) {
      // One zero block may be followed by a second; either way nothing more is a member.
      this.#zeroBlocks++;
      if (this.#zeroBlocks === 2) this.#state = "end";
      return;
    }
    if (this.#zeroBlocks > 0) {
      throw new DatasetError(
        this.#source,
        `corrupt archive: header at byte ${at} follows a zero block`,
      );
    }
    if (!checksumMatches(block)) {
      throw new DatasetError(
        this.#source,
        `corrupt archive: header checksum mismatch at byte ${at} (not a tar file, or damaged)`,
      );
    }
    let size: number;
    try {
      size = parseNumber(block, 124, 12, "size");
    } catch (e) {
      throw new DatasetError(
        this.#source,
        `corrupt archive: header at byte ${at}: ${(e as Error).message}`,
      );
    }
    const flag = String.fromCharCode(block[156]);
    const magic = cString(block, 257, 6);
    let name = cString(block, 0, 100);
    // POSIX ustar splits long paths into prefix + name; GNU ("ustar  ") uses that area otherwise.
    if (magic === "ustar" && block[262] === 0) {
      const prefix = cString(block, 345, 155);
      if (prefix !== "") name = `${prefix}/${name}`;
    }
    let type: Pending["type"];
    switch (flag) {
      case "0":
      case "\0":
      case "7": // contiguous file: a regular file for readers
        type = "file";
        break;
      case "5":
        type = "directory";
        break;
      case "2":
        type = "symlink";
        break;
      case "1":
        type = "hardlink";
        break;
      case "L":
        type = "longname";
        break;
      case "K":
        type = "longlink";
        break;
      case "x":
        type = "pax";
        break;
      case "g":
        type = "paxglobal";
        break;
      default:
        type = "other";
    }
    const meta = type === "longname" || type === "longlink" || type === "pax" ||
      type === "paxglobal";
    if (!meta) {
      if (this.#longName !== null) name = this.#longName;
      if (this.#pax?.path !== undefined) name = this.#pax.path;
      if (this.#pax?.size !== undefined) size = this.#pax.size;
      this.#longName = null;
      this.#pax = null;
    } else if (size > MAX_META) {
      throw new DatasetError(
        this.#source,
        `corrupt archive: extended header at byte ${at} declares ${size} bytes (limit ${MAX_META})`,
      );
    }
    // Links and directories carry no data even if a size is written.
    if (type === "symlink" || type === "hardlink" || type === "directory") size = 0;
    const keep = meta || (type === "file" && this.#want(name, size));
    this.#pending = { name, type, size, keep };
    this.#data = keep ? new Uint8Array(size) : new Uint8Array(0);
    this.#dataFill = 0;
    if (size === 0) this.#onData();
    else this.#state = "data";
  }

  #onData(): void {
    const p = this.#pending!;
    const data = this.#data;
    this.#data = new Uint8Array(0);
    if (p.type === "longname") {
      this.#longName = cString(data, 0, data.length);
    } else if (p.type === "pax") {
      this.#pax = parsePax(data, `${this.#source}!${p.name}`);
    } else if (p.type !== "longlink" && p.type !== "paxglobal") {
      const entry: TarEntry = { name: p.name, type: p.type, size: p.size, data };
      if (this.#onEntry === undefined) this.#entries.push(entry);
      else this.#onEntry(entry);
    }
    this.#padding = (BLOCK - (p.size % BLOCK)) % BLOCK;
    this.#state = this.#padding === 0 ? "header" : "padding";
  }
}

/**
 * Reads a whole tar archive held in memory.
 *
 * @param bytes The archive.
 * @param options Which files to keep and the name used in errors.
 * @returns Every member in archive order.
 * @throws {DatasetError} When the archive is truncated or corrupt.
 *
 * @example
 * ```ts
 * import { readTar } from "./_tar.ts";
 * readTar(new Uint8Array(1024)).length; // 0: an empty archive
 * ```
 */
export function readTar(bytes: Uint8Array, options: TarReadOptions = {}): TarEntry[] {
  const parser = new TarParser(options);
  const entries = parser.push(bytes);
  entries.push(...parser.finish());
  return entries;
}

/**
 * Reads a tar archive from a stream of chunks, keeping only the wanted files in memory.
 *
 * @param chunks The archive as a byte stream.
 * @param options Which files to keep and the name used in errors.
 * @returns Every member in archive order.
 * @throws {DatasetError} When the archive is truncated or corrupt.
 *
 * @example
 * ```ts
 * import { readTarStream } from "./_tar.ts";
 * const entries = await readTarStream(ReadableStream.from([new Uint8Array(1024)]));
 * entries.length; // 0
 * ```
 */
export async function readTarStream(
  chunks: AsyncIterable<Uint8Array>,
  options: TarReadOptions = {},
): Promise<TarEntry[]> {
  const parser = new TarParser(options);
  const entries: TarEntry[] = [];
  for await (const chunk of chunks) entries.push(...parser.push(chunk));
  entries.push(...parser.finish());
  return entries;
}

/**
 * Reads a gzip-compressed tar archive (`.tar.gz`, `.tgz`) from disk, decompressing as it reads.
 *
 * @param path Path of the archive.
 * @param options Which files to keep (the source name defaults to `path`).
 * @returns Every member in archive order.
 * @throws {DatasetError} When the file is missing, is not gzip, or the archive is truncated or
 * corrupt.
 *
 * @example
 * ```ts ignore
 * import { readTarGz } from "./_tar.ts";
 * const entries = await readTarGz("data/cifar-10-binary.tar.gz", {
 *   want: (name) => name.endsWith(".bin"),
 * });
 * ```
 */
export async function readTarGz(path: string, options: TarReadOptions = {}): Promise<TarEntry[]> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new DatasetError(path, "file is missing", { cause: e });
    }
    throw e;
  }
  const stream = file.readable.pipeThrough(new DecompressionStream("gzip"));
  try {
    return await readTarStream(stream, { source: path, ...options });
  } catch (e) {
    if (e instanceof DatasetError) throw e;
    // DecompressionStream reports bad or cut-off gzip data as a TypeError.
    throw new DatasetError(
      path,
      `not a valid gzip stream (corrupt or truncated): ${(e as Error).message}`,
      { cause: e },
    );
  }
}
