/**
 * Readers for the official binary releases of CIFAR-10 and CIFAR-100 (Krizhevsky, 2009), from an
 * extracted folder or straight from the `.tar.gz`.
 *
 * - CIFAR-10 (`cifar-10-binary.tar.gz` → `cifar-10-batches-bin/`): `data_batch_1.bin` …
 *   `data_batch_5.bin` (train) and `test_batch.bin`, records of 1 label byte + 3072 pixel bytes;
 *   class names in `batches.meta.txt`.
 * - CIFAR-100 (`cifar-100-binary.tar.gz` → `cifar-100-binary/`): `train.bin` and `test.bin`,
 *   records of 1 coarse label byte + 1 fine label byte + 3072 pixel bytes; class names in
 *   `fine_label_names.txt` and `coarse_label_names.txt`.
 *
 * The 3072 pixel bytes are the red, green and blue 32×32 planes in row-major order, which is
 * already the CHW layout of {@linkcode ImageDataset}, so records are copied as they are.
 *
 * Memory: each file is decoded as soon as it is read (from the folder, or as its archive member
 * completes), in place in its own bytes, and those bytes are released while the split is joined,
 * so the peak is about the wanted files plus one, never the whole archive next to the decoded
 * splits. The images live on a `SharedArrayBuffer`, which a batch loader's workers read without
 * copying.
 *
 * @module
 */

import { type ImageDataset, typeName } from "./dataset.ts";
import { DatasetError } from "./errors.ts";
import { releaseBytes, sharedBytes } from "./shared_memory.ts";
import { readTarGz } from "./_tar.ts";

/** Which CIFAR release. */
export type CifarName = "cifar10" | "cifar100";

/** Which CIFAR-100 label to use (CIFAR-10 has only one). */
export type CifarLabelKind = "fine" | "coarse";

/** Where a CIFAR release was found. */
export interface CifarSource {
  /** The release. */
  dataset: CifarName;
  /** An extracted folder or the official tarball. */
  kind: "folder" | "tarball";
  /** Path of the folder or the tarball. */
  path: string;
}

/** Options for {@linkcode loadCifar}. */
export interface CifarLoadOptions {
  /** Folder searched by {@linkcode findCifar} (default `"./data"`). Ignored with `source`. */
  dataPath?: string;
  /** Read exactly this folder or tarball instead of searching. */
  source?: CifarSource;
  /** CIFAR-100 only: the 100 fine classes (default) or the 20 coarse superclasses. */
  labels?: CifarLabelKind;
}

/** Train and test splits of a release. */
export interface CifarSplits {
  /** 50,000 images in the official release. */
  train: ImageDataset;
  /** 10,000 images in the official release. */
  test: ImageDataset;
  /** Where they were read from. */
  source: CifarSource;
}

interface Layout {
  folder: string;
  tarball: string;
  train: string[];
  test: string[];
  /** Label bytes before the pixels of each record. */
  labelBytes: number;
  names: Record<CifarLabelKind, { file: string; count: number }>;
}

const PIXELS = 3 * 32 * 32;

const LAYOUTS: Record<CifarName, Layout> = {
  cifar10: {
    folder: "cifar-10-batches-bin",
    tarball: "cifar-10-binary.tar.gz",
    train: [1, 2, 3, 4, 5].map((k) => `data_batch_${k}.bin`),
    test: ["test_batch.bin"],
    labelBytes: 1,
    // CIFAR-10 has a single label; both kinds name the same file.
    names: {
      fine: { file: "batches.meta.txt", count: 10 },
      coarse: { file: "batches.meta.txt", count: 10 },
    },
  },
  cifar100: {
    folder: "cifar-100-binary",
    tarball: "cifar-100-binary.tar.gz",
    train: ["train.bin"],
    test: ["test.bin"],
    labelBytes: 2,
    names: {
      fine: { file: "fine_label_names.txt", count: 100 },
      coarse: { file: "coarse_label_names.txt", count: 20 },
    },
  },
};

function layoutOf(dataset: CifarName): Layout {
  if (dataset !== "cifar10" && dataset !== "cifar100") {
    throw new RangeError(
      `dataset must be "cifar10" or "cifar100", got ${
        typeof dataset === "string" ? `"${dataset}"` : typeName(dataset)
      }`,
    );
  }
  return LAYOUTS[dataset];
}

function joinPath(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}

function baseName(path: string): string {
  const trimmed = path.replace(/\/+$/, "");
  return trimmed.slice(trimmed.lastIndexOf("/") + 1);
}

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return null;
    throw e;
  }
}

/**
 * Looks for a CIFAR release in a data folder: the extracted folder (`cifar-10-batches-bin/`,
 * `cifar-100-binary/`) first, then the official tarball (`cifar-10-binary.tar.gz`,
 * `cifar-100-binary.tar.gz`). `dataPath` may also name the extracted folder or the tarball itself.
 * Only the presence of the folder or file is checked; {@linkcode loadCifar} checks the contents.
 *
 * @param dataset `"cifar10"` or `"cifar100"`.
 * @param dataPath Folder to look in (default `"./data"`).
 * @returns Where the release is, or `null` when it is not there.
 *
 * @example
 * ```ts
 * import { findCifar } from "@eql/eql/data";
 * const found = await findCifar("cifar10", "./data");
 * if (found === null) console.log("CIFAR-10 not found in ./data");
 * ```
 */
export async function findCifar(
  dataset: CifarName,
  dataPath = "./data",
): Promise<CifarSource | null> {
  const layout = layoutOf(dataset);
  if (typeof dataPath !== "string" || dataPath === "") {
    throw new TypeError(`dataPath must be a non-empty string, got ${typeName(dataPath)}`);
  }
  const self = await statOrNull(dataPath);
  if (self === null) return null;
  if (self.isDirectory && baseName(dataPath) === layout.folder) {
    return { dataset, kind: "folder", path: dataPath };
  }
  if (self.isFile && baseName(dataPath) === layout.tarball) {
    return { dataset, kind: "tarball", path: dataPath };
  }
  if (!self.isDirectory) return null;
  const folder = joinPath(dataPath, layout.folder);
  if ((await statOrNull(folder))?.isDirectory) return { dataset, kind: "folder", path: folder };
  const tarball = joinPath(dataPath, layout.tarball);
  if ((await statOrNull(tarball))?.isFile) return { dataset, kind: "tarball", path: tarball };
  return null;
}

/** Number of records in a file; throws when it is empty or not a whole number of records. */
function recordCount(path: string, bytes: Uint8Array, dataset: CifarName): number {
  const record = LAYOUTS[dataset].labelBytes + PIXELS;
  if (bytes.length === 0) throw new DatasetError(path, "file is empty (no records)");
  if (bytes.length % record !== 0) {
    const whole = Math.floor(bytes.length / record);
    throw new DatasetError(
      path,
      `size ${bytes.length} bytes is not a multiple of the ${record}-byte ${dataset} record ` +
        `(${whole} whole records + ${bytes.length - whole * record} bytes): the file is ` +
        `truncated or not a ${dataset} binary batch`,
    );
  }
  return bytes.length / record;
}

/** Checks and writes the labels of a file's records into `out` from `at` on. */
function decodeLabels(
  path: string,
  bytes: Uint8Array,
  dataset: CifarName,
  kind: CifarLabelKind,
  out: Int32Array,
  at: number,
): void {
  const layout = LAYOUTS[dataset];
  const record = layout.labelBytes + PIXELS;
  const fine = layout.names.fine.count;
  const coarse = layout.names.coarse.count;
  const count = bytes.length / record;
  for (let r = 0; r < count; r++) {
    const byte = r * record;
    let label: number;
    if (layout.labelBytes === 1) {
      label = bytes[byte];
      if (label >= fine) {
        throw new DatasetError(
          path,
          `record ${r} (byte ${byte}) has label ${label}, expected 0..${fine - 1}`,
        );
      }
    } else {
      const c = bytes[byte];
      const f = bytes[byte + 1];
      if (c >= coarse) {
        throw new DatasetError(
          path,
          `record ${r} (byte ${byte}) has coarse label ${c}, expected 0..${coarse - 1}`,
        );
      }
      if (f >= fine) {
        throw new DatasetError(
          path,
          `record ${r} (byte ${byte + 1}) has fine label ${f}, expected 0..${fine - 1}`,
        );
      }
      label = kind === "coarse" ? c : f;
    }
    out[at + r] = label;
  }
}

/**
 * Decodes the records of one or more CIFAR binary files into images and labels.
 *
 * @param files The file contents with the path to name in errors, in order (not modified).
 * @param dataset Which record layout.
 * @param labels CIFAR-100 only: fine or coarse labels (default fine).
 * @returns Images `[N, 3, 32, 32]` (on a `SharedArrayBuffer`, so a batch loader's workers read
 * them without a copy) and labels `[N]` of all files concatenated.
 * @throws {DatasetError} When a file is empty, its size is not a whole number of records, or a
 * label is out of range.
 *
 * @example
 * ```ts
 * import { decodeCifarRecords } from "@eql/eql/data";
 * const record = new Uint8Array(1 + 3072);
 * record[0] = 7; // label
 * const { labels } = decodeCifarRecords([{ path: "one.bin", bytes: record }], "cifar10");
 * labels; // Int32Array [7]
 * ```
 */
export function decodeCifarRecords(
  files: readonly { path: string; bytes: Uint8Array }[],
  dataset: CifarName,
  labels: CifarLabelKind = "fine",
): { images: Uint8Array; labels: Int32Array } {
  const layout = layoutOf(dataset);
  const record = layout.labelBytes + PIXELS;
  let total = 0;
  for (const { path, bytes } of files) total += recordCount(path, bytes, dataset);
  const images = sharedBytes(total * PIXELS);
  const out = new Int32Array(total);
  let n = 0;
  for (const { path, bytes } of files) {
    decodeLabels(path, bytes, dataset, labels, out, n);
    const count = bytes.length / record;
    for (let r = 0; r < count; r++, n++) {
      const at = r * record + layout.labelBytes;
      images.set(bytes.subarray(at, at + PIXELS), n * PIXELS);
    }
  }
  return { images, labels: out };
}

/** A file's records, decoded in place: pixels at the front of the file's own bytes. */
interface DecodedFile {
  /** The file's bytes, owned by the reader (released once joined). */
  storage: Uint8Array;
  /** The images, the first `labels.length · 3072` bytes of `storage`. */
  pixels: Uint8Array;
  /** One label per record. */
  labels: Int32Array;
}

/**
 * Decodes a file the reader owns without a second buffer: the labels are taken out and each
 * record's pixels moved to the front (a record never moves forward, so the copy is in order).
 */
function decodeInPlace(
  path: string,
  bytes: Uint8Array,
  dataset: CifarName,
  kind: CifarLabelKind,
): DecodedFile {
  const count = recordCount(path, bytes, dataset);
  const labels = new Int32Array(count);
  decodeLabels(path, bytes, dataset, kind, labels, 0);
  const labelBytes = LAYOUTS[dataset].labelBytes;
  const record = labelBytes + PIXELS;
  for (let r = 0; r < count; r++) {
    bytes.copyWithin(r * PIXELS, r * record + labelBytes, (r + 1) * record);
  }
  return { storage: bytes, pixels: bytes.subarray(0, count * PIXELS), labels };
}

/**
 * Concatenates decoded files into one shared image array, releasing each file's bytes as soon as
 * they are copied, so the peak is the files plus one file rather than twice the split.
 */
function join(parts: DecodedFile[]): { images: Uint8Array; labels: Int32Array } {
  const total = parts.reduce((sum, p) => sum + p.labels.length, 0);
  const images = sharedBytes(total * PIXELS);
  const labels = new Int32Array(total);
  let n = 0;
  for (const part of parts) {
    images.set(part.pixels, n * PIXELS);
    labels.set(part.labels, n);
    n += part.labels.length;
    releaseBytes(part.storage);
  }
  return { images, labels };
}

/**
 * Parses a class-name file: one name per line, blank lines (the official files end with one)
 * ignored.
 */
function parseNames(path: string, bytes: Uint8Array, expected: number): string[] {
  const names = new TextDecoder().decode(bytes).split(/\r?\n/).map((s) => s.trim()).filter((s) =>
    s !== ""
  );
  if (names.length !== expected) {
    throw new DatasetError(
      path,
      `expected ${expected} class names (one per line), found ${names.length}`,
    );
  }
  return names;
}

function labelKindOf(dataset: CifarName, labels: unknown): CifarLabelKind {
  if (labels === undefined) return "fine";
  if (labels !== "fine" && labels !== "coarse") {
    throw new RangeError(`labels must be "fine" or "coarse", got ${JSON.stringify(labels)}`);
  }
  if (dataset === "cifar10" && labels === "coarse") {
    throw new RangeError(`labels must be "fine" for cifar10 (it has one label), got "coarse"`);
  }
  return labels;
}

/**
 * Collects a release's files as a reader produces them: the class names are parsed and the
 * record files decoded on arrival, so no file's raw bytes outlive its decoding.
 */
class SplitCollector {
  #dataset: CifarName;
  #kind: CifarLabelKind;
  #classNames: string[] | null = null;
  #files = new Map<string, DecodedFile>();

  constructor(dataset: CifarName, kind: CifarLabelKind) {
    this.#dataset = dataset;
    this.#kind = kind;
  }

  /** The files the collector needs, class names first. */
  get wanted(): string[] {
    const layout = LAYOUTS[this.#dataset];
    return [layout.names[this.#kind].file, ...layout.train, ...layout.test];
  }

  /** Takes one file (`name` as in the release folder, `path` for errors); keeps its bytes. */
  add(name: string, path: string, bytes: Uint8Array): void {
    const names = LAYOUTS[this.#dataset].names[this.#kind];
    if (name === names.file) {
      this.#classNames = parseNames(path, bytes, names.count);
    } else {
      this.#files.set(name, decodeInPlace(path, bytes, this.#dataset, this.#kind));
    }
  }

  /** The splits; `missing` names the first absent file (the class names first). */
  finish(missing: (name: string) => never): { train: ImageDataset; test: ImageDataset } {
    const layout = LAYOUTS[this.#dataset];
    const names = layout.names[this.#kind];
    const classNames = this.#classNames ?? missing(names.file);
    const parts = (files: string[]): DecodedFile[] =>
      files.map((f) => this.#files.get(f) ?? missing(f));
    const trainParts = parts(layout.train);
    const testParts = parts(layout.test);
    const split = (files: DecodedFile[]): ImageDataset => ({
      ...join(files),
      classNames: [...classNames],
      numClasses: names.count,
    });
    return { train: split(trainParts), test: split(testParts) };
  }
}

async function readFolder(
  dataset: CifarName,
  folder: string,
  kind: CifarLabelKind,
): Promise<{ train: ImageDataset; test: ImageDataset }> {
  const collector = new SplitCollector(dataset, kind);
  for (const name of collector.wanted) {
    const path = joinPath(folder, name);
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new DatasetError(path, `file is missing from the ${dataset} folder`, { cause: e });
      }
      throw e;
    }
    collector.add(name, path, bytes);
  }
  return collector.finish((name) => {
    throw new DatasetError(joinPath(folder, name), `file is missing from the ${dataset} folder`);
  });
}

async function readTarball(
  dataset: CifarName,
  path: string,
  kind: CifarLabelKind,
): Promise<{ train: ImageDataset; test: ImageDataset }> {
  const layout = LAYOUTS[dataset];
  const collector = new SplitCollector(dataset, kind);
  const wanted = new Set(collector.wanted);
  // Members are matched on "<folder>/<file>" at the end of their path, so "./" prefixes or an
  // extra enclosing folder do not matter.
  const member = (name: string): string | null => {
    const parts = name.replace(/^(\.\/)+/, "").split("/").filter((p) => p !== "");
    if (parts.length < 2) return null;
    const file = parts[parts.length - 1];
    return parts[parts.length - 2] === layout.folder && wanted.has(file) ? file : null;
  };
  // Each member is decoded as soon as the archive has delivered it; the archive's bytes are never
  // all in memory at once.
  await readTarGz(path, {
    want: (name) => member(name) !== null,
    onEntry: (entry) => {
      const file = entry.type === "file" ? member(entry.name) : null;
      if (file !== null) collector.add(file, `${path}!${entry.name}`, entry.data);
    },
  });
  return collector.finish((name) => {
    throw new DatasetError(
      path,
      `archive has no member "${layout.folder}/${name}" (is this the official ${dataset} ` +
        `binary tarball?)`,
    );
  });
}

/**
 * Reads the train and test splits of CIFAR-10 or CIFAR-100 from an extracted folder or the
 * official tarball, found with {@linkcode findCifar} unless `options.source` says where.
 *
 * @param dataset `"cifar10"` or `"cifar100"`.
 * @param options Where to look and, for CIFAR-100, which labels.
 * @returns Both splits (images CHW uint8, labels, class names) and where they came from.
 * @throws {DatasetError} When the release is not found, or a file is missing, truncated, of a
 * size that is not a whole number of records, or holds an out-of-range label.
 *
 * @example
 * ```ts ignore
 * import { loadCifar } from "@eql/eql/data";
 * const { train, test } = await loadCifar("cifar100", { dataPath: "./data" });
 * console.log(train.labels.length, test.numClasses); // 50000 100
 * ```
 */
export async function loadCifar(
  dataset: CifarName,
  options: CifarLoadOptions = {},
): Promise<CifarSplits> {
  const layout = layoutOf(dataset);
  const kind = labelKindOf(dataset, options.labels);
  let source = options.source;
  if (source === undefined) {
    const dataPath = options.dataPath ?? "./data";
    const found = await findCifar(dataset, dataPath);
    if (found === null) {
      throw new DatasetError(
        dataPath,
        `${dataset} not found: expected the folder ${layout.folder}/ or the file ` +
          `${layout.tarball} here`,
      );
    }
    source = found;
  } else if (source.dataset !== dataset) {
    throw new RangeError(
      `options.source.dataset must be "${dataset}", got "${source.dataset}"`,
    );
  }
  let splits: { train: ImageDataset; test: ImageDataset };
  if (source.kind === "folder") splits = await readFolder(dataset, source.path, kind);
  else if (source.kind === "tarball") splits = await readTarball(dataset, source.path, kind);
  else {
    throw new RangeError(
      `options.source.kind must be "folder" or "tarball", got ${
        JSON.stringify((source as { kind: unknown }).kind)
      }`,
    );
  }
  return { ...splits, source };
}
