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
 * @module
 */

import { type ImageDataset, typeName } from "./dataset.ts";
import { DatasetError } from "./errors.ts";
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

/**
 * Decodes the records of one or more CIFAR binary files into images and labels.
 *
 * @param files The file contents with the path to name in errors, in order.
 * @param dataset Which record layout.
 * @param labels CIFAR-100 only: fine or coarse labels (default fine).
 * @returns Images `[N, 3, 32, 32]` and labels `[N]` of all files concatenated.
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
  for (const { path, bytes } of files) {
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
    total += bytes.length / record;
  }
  const images = new Uint8Array(total * PIXELS);
  const out = new Int32Array(total);
  const fine = layout.names.fine.count;
  const coarse = layout.names.coarse.count;
  let n = 0;
  for (const { path, bytes } of files) {
    const count = bytes.length / record;
    for (let r = 0; r < count; r++, n++) {
      const at = r * record;
      let label: number;
      if (layout.labelBytes === 1) {
        label = bytes[at];
        if (label >= fine) {
          throw new DatasetError(
            path,
            `record ${r} (byte ${at}) has label ${label}, expected 0..${fine - 1}`,
          );
        }
      } else {
        const c = bytes[at];
        const f = bytes[at + 1];
        if (c >= coarse) {
          throw new DatasetError(
            path,
            `record ${r} (byte ${at}) has coarse label ${c}, expected 0..${coarse - 1}`,
          );
        }
        if (f >= fine) {
          throw new DatasetError(
            path,
            `record ${r} (byte ${at + 1}) has fine label ${f}, expected 0..${fine - 1}`,
          );
        }
        label = labels === "coarse" ? c : f;
      }
      out[n] = label;
      images.set(bytes.subarray(at + layout.labelBytes, at + record), n * PIXELS);
    }
  }
  return { images, labels: out };
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

function assemble(
  dataset: CifarName,
  kind: CifarLabelKind,
  get: (file: string) => { path: string; bytes: Uint8Array },
): { train: ImageDataset; test: ImageDataset } {
  const layout = LAYOUTS[dataset];
  const names = layout.names[kind];
  const namesFile = get(names.file);
  const classNames = parseNames(namesFile.path, namesFile.bytes, names.count);
  const split = (files: string[]): ImageDataset => ({
    ...decodeCifarRecords(files.map(get), dataset, kind),
    classNames: [...classNames],
    numClasses: names.count,
  });
  return { train: split(layout.train), test: split(layout.test) };
}

async function readFolder(
  dataset: CifarName,
  folder: string,
  kind: CifarLabelKind,
): Promise<{ train: ImageDataset; test: ImageDataset }> {
  const layout = LAYOUTS[dataset];
  const wanted = [layout.names[kind].file, ...layout.train, ...layout.test];
  const files = new Map<string, { path: string; bytes: Uint8Array }>();
  for (const name of wanted) {
    const path = joinPath(folder, name);
    try {
      files.set(name, { path, bytes: await Deno.readFile(path) });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new DatasetError(path, `file is missing from the ${dataset} folder`, { cause: e });
      }
      throw e;
    }
  }
  return assemble(dataset, kind, (name) => files.get(name)!);
}

async function readTarball(
  dataset: CifarName,
  path: string,
  kind: CifarLabelKind,
): Promise<{ train: ImageDataset; test: ImageDataset }> {
  const layout = LAYOUTS[dataset];
  const wanted = new Set([layout.names[kind].file, ...layout.train, ...layout.test]);
  // Members are matched on "<folder>/<file>" at the end of their path, so "./" prefixes or an
  // extra enclosing folder do not matter.
  const member = (name: string): string | null => {
    const parts = name.replace(/^(\.\/)+/, "").split("/").filter((p) => p !== "");
    if (parts.length < 2) return null;
    const file = parts[parts.length - 1];
    return parts[parts.length - 2] === layout.folder && wanted.has(file) ? file : null;
  };
  const entries = await readTarGz(path, { want: (name) => member(name) !== null });
  const files = new Map<string, { path: string; bytes: Uint8Array }>();
  for (const entry of entries) {
    if (entry.type !== "file") continue;
    const file = member(entry.name);
    if (file !== null) files.set(file, { path: `${path}!${entry.name}`, bytes: entry.data });
  }
  return assemble(dataset, kind, (name) => {
    const found = files.get(name);
    if (found === undefined) {
      throw new DatasetError(
        path,
        `archive has no member "${layout.folder}/${name}" (is this the official ${dataset} ` +
          `binary tarball?)`,
      );
    }
    return found;
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
