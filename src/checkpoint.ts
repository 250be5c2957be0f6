/**
 * Checkpoints as safetensors files, readable by the `safetensors` Python package and loadable into
 * the PyTorch CIFAR ResNet with `load_state_dict`.
 *
 * The format: an unsigned 64-bit little-endian header length N, N bytes of UTF-8 JSON mapping each
 * tensor name to `{ dtype, shape, data_offsets: [begin, end] }` (byte offsets into the data
 * section) plus an optional `"__metadata__"` object of strings, then the data section, where the
 * tensors lie contiguously, little-endian, with no gap and no overlap. The header is padded with
 * spaces to a multiple of 8 bytes and 8-byte types are stored first, so every tensor is aligned.
 *
 * A model checkpoint holds every parameter and state tensor under its PyTorch name (F32), and each
 * batch-norm's `num_batches_tracked` as an I64 scalar (shape `[]`), as a PyTorch `state_dict` does.
 * Files are written to a temporary file in the target folder, flushed and renamed, so a crash
 * never leaves a half-written checkpoint. Reading checks the whole layout, and loading checks every
 * name, dtype and shape before anything is changed; each error names the file.
 *
 * @example
 * ```ts
 * import { loadCheckpoint, saveCheckpoint } from "@eql/eql";
 * import { resnet32 } from "@eql/eql";
 * const net = resnet32({ numClasses: 100 });
 * await saveCheckpoint("resnet32.safetensors", net, { epoch: "10" });
 * await loadCheckpoint("resnet32.safetensors", resnet32({ numClasses: 100 }));
 * ```
 *
 * @module
 */

import { writeFileAtomically } from "./atomic_write.ts";
import type { Layer } from "./nn/layer.ts";
import { countersOf } from "./nn/named.ts";

/** Element types this module reads and writes. */
export type SafetensorsDType = "F32" | "I32" | "I64";

/** One tensor of a safetensors file. */
export interface SafetensorsTensor {
  /** Element type. */
  dtype: SafetensorsDType;
  /** Extents (`[]` for a scalar). */
  shape: number[];
  /** Values: a `Float32Array` for F32, an `Int32Array` for I32, a `BigInt64Array` for I64. */
  data: Float32Array | Int32Array | BigInt64Array;
}

/** The contents of a safetensors file. */
export interface SafetensorsContents {
  /** Tensors by name, in file order. */
  tensors: Map<string, SafetensorsTensor>;
  /** The `__metadata__` strings (empty when absent). */
  metadata: Record<string, string>;
}

/**
 * A checkpoint file that cannot be read, or whose contents do not fit the model.
 *
 * @example
 * ```ts
 * import { CheckpointError } from "@eql/eql";
 * const e = new CheckpointError("model.safetensors", "missing tensor conv1.weight");
 * e.message; // "model.safetensors: missing tensor conv1.weight"
 * ```
 */
export class CheckpointError extends Error {
  /** The file (or source description) concerned. */
  readonly path: string;

  /**
   * Creates the error.
   *
   * @param path The file concerned.
   * @param what What was wrong.
   */
  constructor(path: string, what: string) {
    super(`${path}: ${what}`);
    this.name = "CheckpointError";
    this.path = path;
  }
}

const BYTES: Record<SafetensorsDType, number> = { F32: 4, I32: 4, I64: 8 };
/** Headers beyond this are treated as corrupt (the reference implementation's limit). */
const MAX_HEADER = 100_000_000;

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function checkTensor(name: string, t: SafetensorsTensor): void {
  if (typeof name !== "string" || name.length === 0 || name === "__metadata__") {
    throw new RangeError(
      `tensor name must be a non-empty string other than "__metadata__", got ${
        JSON.stringify(name)
      }`,
    );
  }
  if (!(t.dtype in BYTES)) {
    throw new TypeError(`tensor "${name}": dtype must be F32, I32 or I64, got ${String(t.dtype)}`);
  }
  if (!Array.isArray(t.shape) || t.shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new RangeError(
      `tensor "${name}": shape must be non-negative integers, got ${JSON.stringify(t.shape)}`,
    );
  }
  const expected = t.dtype === "F32"
    ? Float32Array
    : t.dtype === "I32"
    ? Int32Array
    : BigInt64Array;
  if (!(t.data instanceof expected)) {
    throw new TypeError(
      `tensor "${name}": ${t.dtype} data must be a ${expected.name}, got ${
        Object.prototype.toString.call(t.data)
      }`,
    );
  }
  if (t.data.length !== numel(t.shape)) {
    throw new RangeError(
      `tensor "${name}": shape [${t.shape.join(", ")}] needs ${
        numel(t.shape)
      } elements, got ${t.data.length}`,
    );
  }
}

/**
 * Serialises tensors (and optional metadata) to safetensors bytes.
 *
 * @param tensors Tensors by name; 8-byte types are placed first, otherwise the order is kept.
 * @param metadata Strings stored under `__metadata__` (omitted when empty).
 * @returns The file's bytes.
 * @throws {TypeError | RangeError} When a name, dtype, shape or data array is invalid.
 *
 * @example
 * ```ts
 * import { encodeSafetensors } from "@eql/eql";
 * const bytes = encodeSafetensors(new Map([["w", { dtype: "F32", shape: [2], data: new Float32Array([1, 2]) }]]));
 * bytes.length; // 8 + header + 8
 * ```
 */
export function encodeSafetensors(
  tensors: Map<string, SafetensorsTensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== "string") {
      throw new TypeError(`metadata["${k}"] must be a string, got ${typeof v}`);
    }
  }
  const entries = [...tensors];
  for (const [name, t] of entries) checkTensor(name, t);
  // Stable sort by element size, largest first: every tensor starts at a multiple of its size.
  entries.sort((a, b) => BYTES[b[1].dtype] - BYTES[a[1].dtype]);
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of entries) {
    const size = t.data.length * BYTES[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let pos = 8 + json.length;
  for (const [, t] of entries) {
    const d = t.data;
    if (d instanceof Float32Array) {
      for (let i = 0; i < d.length; i++, pos += 4) view.setFloat32(pos, d[i], true);
    } else if (d instanceof Int32Array) {
      for (let i = 0; i < d.length; i++, pos += 4) view.setInt32(pos, d[i], true);
    } else {
      for (let i = 0; i < d.length; i++, pos += 8) view.setBigInt64(pos, d[i], true);
    }
  }
  return out;
}

/**
 * Parses safetensors bytes, checking the whole layout.
 *
 * @param bytes The file's bytes.
 * @param source The file name used in error messages.
 * @returns The tensors (copied out of `bytes`) and the metadata.
 * @throws {CheckpointError} When the file is truncated, the header is corrupt, a dtype is not
 *   supported, or the data offsets are out of range or do not tile the data section.
 *
 * @example
 * ```ts
 * import { decodeSafetensors, encodeSafetensors } from "@eql/eql";
 * const bytes = encodeSafetensors(new Map([["b", { dtype: "I64", shape: [], data: new BigInt64Array([5n]) }]]));
 * decodeSafetensors(bytes).tensors.get("b")?.data; // BigInt64Array [5n]
 * ```
 */
export function decodeSafetensors(bytes: Uint8Array, source = "<bytes>"): SafetensorsContents {
  const fail = (what: string): never => {
    throw new CheckpointError(source, what);
  };
  if (bytes.length < 8) {
    fail(`truncated: ${bytes.length} bytes, shorter than the 8-byte header length`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = view.getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER)) {
    fail(`corrupt header: header length ${n64} exceeds ${MAX_HEADER} bytes`);
  }
  const n = Number(n64);
  if (8 + n > bytes.length) {
    fail(`truncated: header length ${n} needs ${8 + n} bytes but the file has ${bytes.length}`);
  }
  let header: unknown;
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n));
    if (!text.startsWith("{")) throw new Error("it does not start with '{'");
    header = JSON.parse(text);
  } catch (e) {
    fail(`corrupt header: not a UTF-8 JSON object (${(e as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    fail("corrupt header: not a JSON object");
  }
  const dataStart = 8 + n, dataLength = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const spans: {
    name: string;
    begin: number;
    end: number;
    dtype: SafetensorsDType;
    shape: number[];
  }[] = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
        fail("corrupt header: __metadata__ must be an object of strings");
      }
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== "string") fail(`corrupt header: __metadata__["${k}"] is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    if (typeof e !== "object" || e === null) {
      fail(`corrupt header: entry "${name}" is not an object`);
    }
    const { dtype, shape, data_offsets: offsets } = e!;
    if (typeof dtype !== "string") fail(`corrupt header: tensor "${name}" has no dtype`);
    if (!((dtype as string) in BYTES)) {
      fail(`tensor "${name}" has dtype ${dtype as string}; supported: F32, I32, I64`);
    }
    if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
      fail(
        `corrupt header: tensor "${name}" has shape ${
          JSON.stringify(shape)
        }, expected non-negative integers`,
      );
    }
    if (
      !Array.isArray(offsets) || offsets.length !== 2 ||
      offsets.some((o) => !Number.isSafeInteger(o) || o < 0)
    ) {
      fail(
        `corrupt header: tensor "${name}" has data_offsets ${
          JSON.stringify(offsets)
        }, expected [begin, end]`,
      );
    }
    const [begin, end] = offsets as number[];
    if (begin > end || end > dataLength) {
      fail(
        `data offsets out of range: tensor "${name}" spans [${begin}, ${end}) but the data section has ${dataLength} bytes`,
      );
    }
    const need = numel(shape as number[]) * BYTES[dtype as SafetensorsDType];
    if (end - begin !== need) {
      fail(
        `tensor "${name}" spans ${end - begin} bytes but ${dtype as string} shape [${
          (shape as number[]).join(", ")
        }] needs ${need}`,
      );
    }
    spans.push({ name, begin, end, dtype: dtype as SafetensorsDType, shape: shape as number[] });
  }
  // The tensors must tile the data section exactly: no gap, no overlap, nothing left over.
  const sorted = [...spans].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const s of sorted) {
    if (s.begin !== at) {
      fail(
        `data offsets do not tile the data section: tensor "${s.name}" starts at ${s.begin}, expected ${at}`,
      );
    }
    at = s.end;
  }
  if (at !== dataLength) {
    fail(`data section has ${dataLength} bytes but the tensors cover ${at}`);
  }
  const tensors = new Map<string, SafetensorsTensor>();
  for (const s of spans) {
    const count = numel(s.shape), base = dataStart + s.begin;
    let data: Float32Array | Int32Array | BigInt64Array;
    if (s.dtype === "F32") {
      const d = new Float32Array(count);
      for (let i = 0; i < count; i++) d[i] = view.getFloat32(base + 4 * i, true);
      data = d;
    } else if (s.dtype === "I32") {
      const d = new Int32Array(count);
      for (let i = 0; i < count; i++) d[i] = view.getInt32(base + 4 * i, true);
      data = d;
    } else {
      const d = new BigInt64Array(count);
      for (let i = 0; i < count; i++) d[i] = view.getBigInt64(base + 8 * i, true);
      data = d;
    }
    tensors.set(s.name, { dtype: s.dtype, shape: s.shape, data });
  }
  return { tensors, metadata };
}

/** Writes bytes to `path` atomically; a failure becomes a {@linkcode CheckpointError}. */
async function writeCheckpointFile(path: string, bytes: Uint8Array): Promise<void> {
  try {
    await writeFileAtomically(path, bytes);
  } catch (e) {
    throw new CheckpointError(path, `cannot write the file (${(e as Error).message})`);
  }
}

/**
 * Writes tensors to a safetensors file atomically.
 *
 * @param path Destination file.
 * @param tensors Tensors by name.
 * @param metadata Strings stored under `__metadata__`.
 * @throws {CheckpointError} When the file cannot be written.
 *
 * @example
 * ```ts
 * import { writeSafetensors } from "@eql/eql";
 * await writeSafetensors("t.safetensors", new Map([["x", { dtype: "F32", shape: [1], data: new Float32Array([3]) }]]));
 * ```
 */
export async function writeSafetensors(
  path: string,
  tensors: Map<string, SafetensorsTensor>,
  metadata: Record<string, string> = {},
): Promise<void> {
  await writeCheckpointFile(path, encodeSafetensors(tensors, metadata));
}

/**
 * Reads and checks a safetensors file.
 *
 * @param path The file.
 * @returns Its tensors and metadata.
 * @throws {CheckpointError} When the file cannot be read or is malformed.
 *
 * @example
 * ```ts
 * import { readSafetensors } from "@eql/eql";
 * const { tensors, metadata } = await readSafetensors("t.safetensors");
 * ```
 */
export async function readSafetensors(path: string): Promise<SafetensorsContents> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new CheckpointError(path, `cannot read the file (${(e as Error).message})`);
  }
  return decodeSafetensors(bytes, path);
}

/**
 * A model's state as safetensors tensors, in PyTorch `state_dict` naming: every parameter and
 * state tensor (F32, copied to the host) and every counter as an I64 scalar.
 *
 * @param model Any layer or model.
 * @returns Tensors by name.
 * @throws {RangeError} When two entries share a name.
 *
 * @example
 * ```ts
 * import { stateDict } from "@eql/eql";
 * import { BatchNorm2d } from "@eql/eql";
 * [...stateDict(new BatchNorm2d(4)).keys()];
 * // ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
 * ```
 */
export function stateDict(model: Layer): Map<string, SafetensorsTensor> {
  const out = new Map<string, SafetensorsTensor>();
  const put = (name: string, t: SafetensorsTensor): void => {
    if (out.has(name)) throw new RangeError(`the model has two entries named "${name}"`);
    out.set(name, t);
  };
  for (const { name, value } of [...model.parameters(), ...model.stateTensors()]) {
    put(name, { dtype: "F32", shape: [...value.shape], data: value.toArray() as Float32Array });
  }
  for (const c of countersOf(model)) {
    put(c.name, { dtype: "I64", shape: [], data: new BigInt64Array([BigInt(c.get())]) });
  }
  return out;
}

/**
 * Copies tensors into a model after checking that the names, dtypes and shapes match exactly
 * (like PyTorch's strict `load_state_dict`); nothing is changed when anything is wrong.
 *
 * @param model The model to fill.
 * @param tensors Tensors by name (e.g. from {@linkcode readSafetensors}).
 * @param source The file name used in error messages.
 * @throws {CheckpointError} Listing missing and unexpected tensors, or naming a shape or dtype
 *   mismatch.
 *
 * @example
 * ```ts
 * import { loadStateDict, stateDict } from "@eql/eql";
 * import { Linear } from "@eql/eql";
 * loadStateDict(new Linear(4, 2, { seed: 1 }), stateDict(new Linear(4, 2, { seed: 2 })));
 * ```
 */
export function loadStateDict(
  model: Layer,
  tensors: Map<string, SafetensorsTensor>,
  source = "<state>",
): void {
  const targets = new Map<
    string,
    { shape: readonly number[]; write: (t: SafetensorsTensor) => void; kind: "tensor" | "counter" }
  >();
  for (const { name, value } of [...model.parameters(), ...model.stateTensors()]) {
    targets.set(name, {
      shape: value.shape,
      kind: "tensor",
      write: (t) => value.device.upload(value.buffer, t.data as Float32Array),
    });
  }
  for (const c of countersOf(model)) {
    targets.set(c.name, { shape: [], kind: "counter", write: (t) => c.set(Number(t.data[0])) });
  }
  const missing = [...targets.keys()].filter((k) => !tensors.has(k));
  const unexpected = [...tensors.keys()].filter((k) => !targets.has(k));
  if (missing.length > 0 || unexpected.length > 0) {
    const parts = [];
    if (missing.length > 0) parts.push(`missing tensor(s): ${missing.join(", ")}`);
    if (unexpected.length > 0) parts.push(`unexpected tensor(s): ${unexpected.join(", ")}`);
    throw new CheckpointError(source, parts.join("; "));
  }
  for (const [name, target] of targets) {
    const t = tensors.get(name)!;
    const shapeOk = t.shape.length === target.shape.length &&
      t.shape.every((d, i) => d === target.shape[i]);
    if (!shapeOk) {
      throw new CheckpointError(
        source,
        `shape mismatch for "${name}": the model has [${target.shape.join(", ")}], the file has [${
          t.shape.join(", ")
        }]`,
      );
    }
    if (target.kind === "tensor" && t.dtype !== "F32") {
      throw new CheckpointError(
        source,
        `dtype mismatch for "${name}": expected F32, the file has ${t.dtype}`,
      );
    }
    if (target.kind === "counter") {
      if (t.dtype === "F32") {
        throw new CheckpointError(
          source,
          `dtype mismatch for "${name}": expected I64, the file has F32`,
        );
      }
      const v = t.data[0];
      if (v < 0 || Number(v) > Number.MAX_SAFE_INTEGER) {
        throw new CheckpointError(
          source,
          `"${name}" holds ${v}, expected a non-negative safe integer`,
        );
      }
    }
  }
  for (const [name, target] of targets) target.write(tensors.get(name)!);
}

/**
 * Saves a model's parameters, state tensors and counters to a safetensors file, atomically.
 *
 * @param path Destination file.
 * @param model The model.
 * @param metadata Strings stored under `__metadata__` (e.g. the epoch or the configuration).
 * @throws {CheckpointError} When the file cannot be written.
 *
 * @example
 * ```ts
 * import { saveCheckpoint } from "@eql/eql";
 * import { resnet32 } from "@eql/eql";
 * await saveCheckpoint("model.safetensors", resnet32({ numClasses: 10 }), { format: "pt" });
 * ```
 */
export async function saveCheckpoint(
  path: string,
  model: Layer,
  metadata: Record<string, string> = {},
): Promise<void> {
  await writeSafetensors(path, stateDict(model), metadata);
}

/**
 * Loads a checkpoint written by {@linkcode saveCheckpoint} (or by PyTorch's
 * `safetensors.torch.save_file(model.state_dict(), …)`) into a model with the same layout.
 *
 * @param path The file.
 * @param model The model to fill (checked completely before any value changes).
 * @returns The file's metadata.
 * @throws {CheckpointError} When the file is unreadable or malformed, or its tensors do not match
 *   the model's names, dtypes and shapes.
 *
 * @example
 * ```ts
 * import { loadCheckpoint } from "@eql/eql";
 * import { resnet32 } from "@eql/eql";
 * const net = resnet32({ numClasses: 10 });
 * const metadata = await loadCheckpoint("model.safetensors", net);
 * ```
 */
export async function loadCheckpoint(path: string, model: Layer): Promise<Record<string, string>> {
  const { tensors, metadata } = await readSafetensors(path);
  loadStateDict(model, tensors, path);
  return metadata;
}
