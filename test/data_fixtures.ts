/**
 * Test fixtures for the data tests: a small tar writer (ustar, GNU long names, pax headers),
 * gzip through `CompressionStream`, and tiny CIFAR files in the official layouts.
 *
 * @module
 */

const encoder = new TextEncoder();

/** One member to write. */
export interface TarMember {
  name: string;
  data?: Uint8Array;
  /** `"0"` file (default), `"5"` directory, `"2"` symlink. */
  type?: "0" | "5" | "2";
  /** How to store a name over 100 bytes: GNU `L` entry (default), pax `x` header, or ustar prefix. */
  longName?: "gnu" | "pax" | "prefix";
  /** Write the size field in GNU base-256 form. */
  base256Size?: boolean;
}

function writeString(block: Uint8Array, offset: number, length: number, value: string): void {
  const bytes = encoder.encode(value);
  if (bytes.length > length) throw new Error(`fixture: "${value}" does not fit ${length} bytes`);
  block.set(bytes, offset);
}

function writeOctal(block: Uint8Array, offset: number, length: number, value: number): void {
  writeString(block, offset, length, value.toString(8).padStart(length - 1, "0") + "\0");
}

function header(
  name: string,
  size: number,
  type: string,
  format: "gnu" | "ustar",
  prefix = "",
  base256 = false,
): Uint8Array {
  const block = new Uint8Array(512);
  writeString(block, 0, 100, name);
  writeOctal(block, 100, 8, type === "5" ? 0o755 : 0o644);
  writeOctal(block, 108, 8, 0);
  writeOctal(block, 116, 8, 0);
  if (base256) {
    block[124] = 0x80;
    let v = size;
    for (let i = 135; i > 124; i--) {
      block[i] = v % 256;
      v = Math.floor(v / 256);
    }
  } else {
    writeOctal(block, 124, 12, size);
  }
  writeOctal(block, 136, 12, 1577836800);
  block.fill(0x20, 148, 156);
  block[156] = type.charCodeAt(0);
  if (format === "gnu") {
    writeString(block, 257, 8, "ustar  \0");
  } else {
    writeString(block, 257, 6, "ustar\0");
    writeString(block, 263, 2, "00");
    writeString(block, 345, 155, prefix);
  }
  let sum = 0;
  for (const b of block) sum += b;
  writeString(block, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return block;
}

function padded(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(data.length / 512) * 512);
  out.set(data);
  return out;
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let length = body.length + 1;
  while (`${length}${body}`.length !== length) length++;
  return `${length}${body}`;
}

/**
 * Builds a tar archive in memory.
 *
 * @param members Members in order.
 * @param endBlocks Number of zero blocks at the end (default 2).
 */
export function makeTar(members: TarMember[], endBlocks = 2): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const m of members) {
    const data = m.data ?? new Uint8Array(0);
    const type = m.type ?? "0";
    const format = m.longName === "prefix" || m.longName === "pax" ? "ustar" : "gnu";
    let name = m.name;
    let prefix = "";
    if (encoder.encode(name).length > 100) {
      if (m.longName === "pax") {
        const pax = encoder.encode(paxRecord("path", name) + paxRecord("mtime", "1577836800"));
        parts.push(header("PaxHeaders/long", pax.length, "x", "ustar"), padded(pax));
        name = name.slice(-90);
      } else if (m.longName === "prefix") {
        const cut = name.lastIndexOf("/", name.length - 1);
        prefix = name.slice(0, cut);
        name = name.slice(cut + 1);
      } else {
        const long = encoder.encode(name + "\0");
        parts.push(header("././@LongLink", long.length, "L", "gnu"), padded(long));
        name = name.slice(0, 100);
      }
    }
    parts.push(header(name, data.length, type, format, prefix, m.base256Size));
    if (data.length > 0) parts.push(padded(data));
  }
  for (let i = 0; i < endBlocks; i++) parts.push(new Uint8Array(512));
  return concat(parts);
}

/** Concatenates byte arrays. */
export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Gzips bytes with the platform's `CompressionStream`. */
export async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = ReadableStream.from<BufferSource>([bytes.slice()]).pipeThrough(
    new CompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** A deterministic pixel pattern for image `i` (so tests can tell images apart). */
export function pixelOf(i: number, p: number): number {
  return (i * 31 + p * 7 + (p >> 10) * 13) & 0xff;
}

/**
 * Writes records in a CIFAR binary layout.
 *
 * @param labels One entry per record: `[label]` for CIFAR-10, `[coarse, fine]` for CIFAR-100.
 * @param first Index of the first image, for `pixelOf`.
 */
export function cifarRecords(labels: number[][], first = 0): Uint8Array {
  const labelBytes = labels[0].length;
  const record = labelBytes + 3072;
  const out = new Uint8Array(labels.length * record);
  labels.forEach((l, r) => {
    out.set(l, r * record);
    for (let p = 0; p < 3072; p++) out[r * record + labelBytes + p] = pixelOf(first + r, p);
  });
  return out;
}

/** The files of a tiny CIFAR-10 release: `n` records per batch, labels `r % 10`. */
export function tinyCifar10(n = 3): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  const names = "airplane automobile bird cat deer dog frog horse ship truck".split(" ");
  files.set("batches.meta.txt", encoder.encode(names.join("\n") + "\n\n"));
  let first = 0;
  for (let k = 1; k <= 5; k++) {
    const labels = Array.from({ length: n }, (_, r) => [(first + r) % 10]);
    files.set(`data_batch_${k}.bin`, cifarRecords(labels, first));
    first += n;
  }
  const test = Array.from({ length: n }, (_, r) => [(first + r) % 10]);
  files.set("test_batch.bin", cifarRecords(test, first));
  return files;
}

/** The files of a tiny CIFAR-100 release; record `r` has fine label `r % 100`, coarse `r % 20`. */
export function tinyCifar100(train = 4, test = 2): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  const fine = Array.from({ length: 100 }, (_, i) => `fine_${i}`);
  const coarse = Array.from({ length: 20 }, (_, i) => `coarse_${i}`);
  files.set("fine_label_names.txt", encoder.encode(fine.join("\n") + "\n"));
  files.set("coarse_label_names.txt", encoder.encode(coarse.join("\n") + "\n"));
  const labels = (n: number, first: number): number[][] =>
    Array.from({ length: n }, (_, r) => [(first + r) % 20, (first + r) % 100]);
  files.set("train.bin", cifarRecords(labels(train, 0), 0));
  files.set("test.bin", cifarRecords(labels(test, train), train));
  return files;
}

/** Writes `files` into `dir/folder/`. */
export async function writeFolder(
  dir: string,
  folder: string,
  files: Map<string, Uint8Array>,
): Promise<string> {
  const path = `${dir}/${folder}`;
  await Deno.mkdir(path, { recursive: true });
  for (const [name, data] of files) await Deno.writeFile(`${path}/${name}`, data);
  return path;
}

/** Writes `files` as `dir/tarball` holding `folder/` and its files, gzipped. */
export async function writeTarball(
  dir: string,
  tarball: string,
  folder: string,
  files: Map<string, Uint8Array>,
  options: { prefix?: string } = {},
): Promise<string> {
  const prefix = options.prefix ?? "";
  const members: TarMember[] = [{ name: `${prefix}${folder}/`, type: "5" }];
  for (const [name, data] of [...files].sort(([a], [b]) => a < b ? -1 : 1)) {
    members.push({ name: `${prefix}${folder}/${name}`, data });
  }
  const path = `${dir}/${tarball}`;
  await Deno.writeFile(path, await gzip(makeTar(members)));
  return path;
}
