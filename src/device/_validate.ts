/**
 * The checks every device runs at its entry points, written once so that the devices cannot
 * drift apart: each buffer belongs to the device, is live, has the dtype the op needs and holds
 * at least the elements the shape record implies; every size is an integer in its range and every
 * scalar is finite and in range. Messages name the operation, the argument, what was expected and
 * what was given, and ranges are always written `[min, max]`.
 *
 * A device calls the op's check first and then works on buffers it knows are sound; nothing in a
 * device repeats these checks.
 *
 * @module
 */

import {
  type BatchNormGrads,
  type BatchNormParams,
  type BatchNormShape,
  type Conv2dShape,
  convOutputSize,
  type Device,
  type DeviceBuffer,
  type DType,
  type Eqlv2LossParams,
  type GemmShape,
  LOSS_ARRAY_DTYPES,
  type PoolShape,
  type SeesawLossParams,
  type SgdArgs,
  type ShortcutShape,
  type SigmoidLossParams,
  type SmoothL1Shape,
  type SoftmaxLossParams,
} from "./device.ts";

/** The largest size any op accepts (the kernels index with 32-bit integers per dimension). */
export const MAX_SIZE = 2 ** 31 - 1;
const MAX_U32 = 2 ** 32 - 1;

/**
 * A value as an error message quotes it: numbers as they are, strings quoted, objects by their
 * class name, anything else with its type.
 *
 * @param v The value.
 * @returns The description.
 *
 * @example
 * ```ts
 * import { describe } from "./_validate.ts";
 * describe("f16"); // '"f16"'
 * describe(new Float64Array(2)); // "Float64Array"
 * describe(true); // "boolean true"
 * ```
 */
export function describe(v: unknown): string {
  if (typeof v === "number") return String(v);
  if (typeof v === "string") return JSON.stringify(v);
  if (v === null || v === undefined) return String(v);
  if (typeof v === "object") return (v as object).constructor?.name ?? "an object";
  return `${typeof v} ${String(v)}`;
}

/**
 * Checks that `v` is an integer in `[min, max]`.
 *
 * @param op The operation, for the message.
 * @param name The argument.
 * @param v The value.
 * @param min Smallest allowed value.
 * @param max Largest allowed value.
 * @throws {RangeError} Otherwise.
 *
 * @example
 * ```ts
 * import { checkInt } from "./_validate.ts";
 * checkInt("reluForward", "length", 4, 0); // fine
 * ```
 */
export function checkInt(op: string, name: string, v: unknown, min = 0, max = MAX_SIZE): void {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(
      `${op}: ${name} must be an integer in [${min}, ${max}], got ${describe(v)}`,
    );
  }
}

/**
 * Checks that `v` is a finite number in `[min, max]`.
 *
 * @param op The operation, for the message.
 * @param name The argument.
 * @param v The value.
 * @param min Smallest allowed value.
 * @param max Largest allowed value.
 * @throws {RangeError} Otherwise.
 *
 * @example
 * ```ts
 * import { checkNumber } from "./_validate.ts";
 * checkNumber("sgdUpdate", "lr", 0.1); // fine
 * ```
 */
export function checkNumber(
  op: string,
  name: string,
  v: unknown,
  min = -Number.MAX_VALUE,
  max = Number.MAX_VALUE,
): void {
  if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max) {
    const range = min === -Number.MAX_VALUE && max === Number.MAX_VALUE
      ? "a finite number"
      : `a finite number in [${min}, ${max}]`;
    throw new RangeError(`${op}: ${name} must be ${range}, got ${describe(v)}`);
  }
}

function checkBool(op: string, name: string, v: unknown): void {
  if (typeof v !== "boolean") {
    throw new TypeError(`${op}: ${name} must be a boolean, got ${describe(v)}`);
  }
}

function checkRecord(op: string, name: string, v: unknown): void {
  if (v === null || typeof v !== "object") {
    throw new TypeError(`${op}: ${name} must be an object, got ${describe(v)}`);
  }
}

/**
 * Checks that `buf` is a live buffer of `device` with `dtype` holding at least `length` elements.
 *
 * @param op The operation, for the message.
 * @param name The argument.
 * @param buf The buffer.
 * @param device The device the op runs on.
 * @param dtype The element type the op needs.
 * @param length The elements the op reads or writes.
 * @throws {TypeError} When it is not a buffer of this device, or has another dtype.
 * @throws {Error} When it has been freed.
 * @throws {RangeError} When it is too short.
 *
 * @example
 * ```ts
 * import { checkBuffer } from "./_validate.ts";
 * import { cpuDevice } from "@eql/eql";
 * const buf = cpuDevice().alloc("f32", 4);
 * checkBuffer("reluForward", "x", buf, cpuDevice(), "f32", 4); // fine
 * ```
 */
export function checkBuffer(
  op: string,
  name: string,
  buf: unknown,
  device: Device,
  dtype: DType,
  length: number,
): void {
  const b = buf as DeviceBuffer | null | undefined;
  if (b === null || typeof b !== "object" || typeof b.length !== "number" || !("device" in b)) {
    throw new TypeError(
      `${op}: ${name} must be a buffer of the ${device.kind} device, got ${describe(buf)}`,
    );
  }
  if (b.device !== device) {
    throw new TypeError(
      `${op}: ${name} must be a buffer of this ${device.kind} device, got one of ${
        b.device?.kind === device.kind ? "another" : `the ${b.device?.kind}`
      } device`,
    );
  }
  if (b.freed) throw new Error(`${op}: ${name} has been freed`);
  if (b.dtype !== dtype) {
    throw new TypeError(`${op}: ${name} must be an ${dtype} buffer, got an ${b.dtype} one`);
  }
  if (b.length < length) {
    throw new RangeError(
      `${op}: ${name} must hold at least ${length} elements, got ${b.length}`,
    );
  }
}

/** A buffer argument: its name, the buffer, its dtype and the elements the op touches. */
type BufferSpec = readonly [name: string, buf: unknown, dtype: DType, length: number];

function checkBuffers(op: string, device: Device, specs: readonly BufferSpec[]): void {
  for (const [name, buf, dtype, length] of specs) checkBuffer(op, name, buf, device, dtype, length);
}

/** Checks that none of `outputs` is one of the other buffers (ops that cannot work in place). */
function checkDistinct(
  op: string,
  outputs: readonly (readonly [string, unknown])[],
  all: readonly (readonly [string, unknown])[],
): void {
  for (const [outName, out] of outputs) {
    if (out === undefined) continue;
    for (const [name, buf] of all) {
      if (name !== outName && buf === out) {
        throw new RangeError(`${op}: ${outName} must not be the same buffer as ${name}`);
      }
    }
  }
}

// ── memory ──────────────────────────────────────────────────────────────────────────────────

/**
 * Checks an element range `[offset, offset + length)` of a buffer of `device`. The offset is
 * named as in the contract: `offset` for the argument `buffer`, `dstOffset` for `dst` and
 * `srcOffset` for `src` (copy).
 *
 * @param op The operation, for the message.
 * @param name The argument.
 * @param buf The buffer.
 * @param device The device.
 * @param offset First element.
 * @param length Elements.
 * @throws {RangeError} When the range is not inside the buffer.
 *
 * @example
 * ```ts
 * import { checkRange } from "./_validate.ts";
 * import { cpuDevice } from "@eql/eql";
 * checkRange("fill", "buffer", cpuDevice().alloc("f32", 4), cpuDevice(), 1, 3); // fine
 * ```
 */
export function checkRange(
  op: string,
  name: string,
  buf: DeviceBuffer,
  device: Device,
  offset: number,
  length: number,
): void {
  checkInt(op, name === "buffer" ? "offset" : `${name}Offset`, offset);
  checkInt(op, "length", length);
  checkBuffer(op, name, buf, device, (buf as DeviceBuffer | undefined)?.dtype ?? "f32", 0);
  if (offset + length > buf.length) {
    throw new RangeError(
      `${op}: range [${offset}, ${
        offset + length
      }) must lie inside ${name}, which holds ${buf.length} elements`,
    );
  }
}

/**
 * Checks that a host array has a buffer's element type (upload and download): a Float32Array for
 * an f32 buffer, an Int32Array for an i32 one.
 *
 * @param op The operation, for the message.
 * @param name The host array's argument name.
 * @param host The host array.
 * @param buf The buffer (already checked).
 * @throws {TypeError} When the array has another type.
 *
 * @example
 * ```ts
 * import { checkHostArray } from "./_validate.ts";
 * import { cpuDevice } from "@eql/eql";
 * checkHostArray("upload", "data", new Float32Array(4), cpuDevice().alloc("f32", 4)); // fine
 * ```
 */
export function checkHostArray(op: string, name: string, host: unknown, buf: DeviceBuffer): void {
  const f32 = buf.dtype === "f32";
  if (!(host instanceof (f32 ? Float32Array : Int32Array))) {
    throw new TypeError(
      `${op}: buffer holds ${buf.dtype} values, so ${name} must be ${
        f32 ? "a Float32Array" : "an Int32Array"
      }, got ${describe(host)}`,
    );
  }
}

// ── dense algebra ───────────────────────────────────────────────────────────────────────────

/**
 * Checks a GEMM: sizes, scalars, and A, B, C (and bias) long enough; C is not an input.
 *
 * @param device The device.
 * @param a A.
 * @param b B.
 * @param c C.
 * @param s The sizes and scalars.
 * @param bias The optional bias.
 *
 * @example
 * ```ts
 * import { checkGemm } from "./_validate.ts";
 * import { cpuDevice } from "@eql/eql";
 * const d = cpuDevice();
 * const s = { transA: false, transB: false, m: 2, n: 2, k: 2, alpha: 1, beta: 0 };
 * checkGemm(d, d.alloc("f32", 4), d.alloc("f32", 4), d.alloc("f32", 4), s);
 * ```
 */
export function checkGemm(
  device: Device,
  a: DeviceBuffer,
  b: DeviceBuffer,
  c: DeviceBuffer,
  s: GemmShape,
  bias?: DeviceBuffer,
): void {
  const op = "gemm";
  checkRecord(op, "shape", s);
  checkBool(op, "shape.transA", s.transA);
  checkBool(op, "shape.transB", s.transB);
  for (const k of ["m", "n", "k"] as const) checkInt(op, `shape.${k}`, s[k]);
  checkNumber(op, "shape.alpha", s.alpha);
  checkNumber(op, "shape.beta", s.beta);
  const specs: BufferSpec[] = [
    ["a", a, "f32", s.m * s.k],
    ["b", b, "f32", s.k * s.n],
    ["c", c, "f32", s.m * s.n],
  ];
  if (bias !== undefined) specs.push(["bias", bias, "f32", s.n]);
  checkBuffers(op, device, specs);
  checkDistinct(op, [["c", c]], [["a", a], ["b", b], ["c", c], ["bias", bias]]);
}

// ── convolution ─────────────────────────────────────────────────────────────────────────────

/** Which convolution pass, naming its two inputs and its output. */
export type Conv2dPass = "conv2dForward" | "conv2dBackwardData" | "conv2dBackwardFilter";

/**
 * Checks a convolution's geometry (sizes in range, output size matching the formula) and its
 * three buffers, in the order the pass takes them.
 *
 * @param op The pass.
 * @param device The device.
 * @param first x (forward, backward-filter) or w (backward-data).
 * @param second w (forward) or dy (backward passes).
 * @param out y, dx or dw.
 * @param s The geometry.
 *
 * @example
 * ```ts
 * import { checkConv2d } from "./_validate.ts";
 * import { cpuDevice } from "@eql/eql";
 * const d = cpuDevice();
 * const s = { n: 1, cIn: 1, h: 3, w: 3, cOut: 1, kH: 3, kW: 3, strideH: 1, strideW: 1,
 *   padH: 1, padW: 1, outH: 3, outW: 3 };
 * checkConv2d("conv2dForward", d, d.alloc("f32", 9), d.alloc("f32", 9), d.alloc("f32", 9), s);
 * ```
 */
export function checkConv2d(
  op: Conv2dPass,
  device: Device,
  first: DeviceBuffer,
  second: DeviceBuffer,
  out: DeviceBuffer,
  s: Conv2dShape,
): void {
  checkRecord(op, "shape", s);
  for (const k of ["n", "cIn", "h", "w", "cOut", "kH", "kW", "strideH", "strideW"] as const) {
    checkInt(op, `shape.${k}`, s[k], 1);
  }
  checkInt(op, "shape.padH", s.padH);
  checkInt(op, "shape.padW", s.padW);
  const outH = convOutputSize(s.h, s.kH, s.strideH, s.padH);
  const outW = convOutputSize(s.w, s.kW, s.strideW, s.padW);
  if (outH < 1 || outW < 1) {
    throw new RangeError(
      `${op}: a ${s.kH}×${s.kW} kernel does not fit the ${s.h}×${s.w} input with padding ` +
        `${s.padH}×${s.padW}`,
    );
  }
  if (s.outH !== outH || s.outW !== outW) {
    throw new RangeError(
      `${op}: shape.outH × shape.outW must be ${outH} × ${outW} for this geometry, got ` +
        `${describe(s.outH)} × ${describe(s.outW)}`,
    );
  }
  const xLen = s.n * s.cIn * s.h * s.w, wLen = s.cOut * s.cIn * s.kH * s.kW;
  const yLen = s.n * s.cOut * outH * outW;
  const specs: [BufferSpec, BufferSpec, BufferSpec] = op === "conv2dForward"
    ? [["x", first, "f32", xLen], ["w", second, "f32", wLen], ["y", out, "f32", yLen]]
    : op === "conv2dBackwardData"
    ? [["w", first, "f32", wLen], ["dy", second, "f32", yLen], ["dx", out, "f32", xLen]]
    : [["x", first, "f32", xLen], ["dy", second, "f32", yLen], ["dw", out, "f32", wLen]];
  checkBuffers(op, device, specs);
  checkDistinct(op, [[specs[2][0], out]], specs.map(([name, buf]) => [name, buf] as const));
}

// ── batch normalisation ─────────────────────────────────────────────────────────────────────

/** Which batch-norm pass. */
export type BatchNormPass =
  | "batchNormForwardTraining"
  | "batchNormForwardInference"
  | "batchNormBackward";

function checkBatchNormShape(op: BatchNormPass, s: BatchNormShape): void {
  checkRecord(op, "shape", s);
  for (const k of ["n", "c", "hw"] as const) checkInt(op, `shape.${k}`, s[k], 1);
  checkNumber(op, "shape.eps", s.eps, Number.MIN_VALUE);
  checkNumber(op, "shape.momentum", s.momentum, 0, 1);
  checkBool(op, "shape.relu", s.relu);
  if (op !== "batchNormForwardInference" && s.n * s.hw < 2) {
    throw new RangeError(
      `${op}: training needs at least 2 values per channel, got n·hw = ${s.n * s.hw}`,
    );
  }
}

function paramSpecs(p: BatchNormParams, c: number, names: (keyof BatchNormParams)[]): BufferSpec[] {
  return names.map((k) => [`params.${k}`, p[k], "f32", c] as const);
}

/**
 * Checks a batch-norm forward (training or inference): the shape record, x, y, the residual when
 * given and the per-channel buffers the pass uses.
 *
 * @param op The pass.
 * @param device The device.
 * @param x Input.
 * @param y Output.
 * @param p The per-channel buffers.
 * @param s The shape record.
 * @param residual The residual, when given.
 *
 * @example
 * ```ts
 * import { checkBatchNormForward } from "./_validate.ts";
 * import { cpuDevice } from "@eql/eql";
 * const d = cpuDevice(), one = () => d.alloc("f32", 1);
 * const p = { gamma: one(), beta: one(), runningMean: one(), runningVar: one(),
 *   saveMean: one(), saveInvStd: one() };
 * const s = { n: 2, c: 1, hw: 1, eps: 1e-5, momentum: 0.1, relu: false };
 * checkBatchNormForward("batchNormForwardTraining", d, d.alloc("f32", 2), d.alloc("f32", 2), p, s);
 * ```
 */
export function checkBatchNormForward(
  op: "batchNormForwardTraining" | "batchNormForwardInference",
  device: Device,
  x: DeviceBuffer,
  y: DeviceBuffer,
  p: BatchNormParams,
  s: BatchNormShape,
  residual?: DeviceBuffer,
): void {
  checkBatchNormShape(op, s);
  checkRecord(op, "params", p);
  const len = s.n * s.c * s.hw;
  const specs: BufferSpec[] = [["x", x, "f32", len], ["y", y, "f32", len]];
  if (residual !== undefined) specs.push(["residual", residual, "f32", len]);
  specs.push(
    ...paramSpecs(
      p,
      s.c,
      op === "batchNormForwardTraining"
        ? ["gamma", "beta", "runningMean", "runningVar", "saveMean", "saveInvStd"]
        : ["gamma", "beta", "runningMean", "runningVar"],
    ),
  );
  checkBuffers(op, device, specs);
  const named = specs.map(([name, buf]) => [name, buf] as const);
  checkDistinct(op, [["y", y]], named.filter(([name]) => name !== "x" && name !== "residual"));
}

/**
 * Checks a batch-norm backward: the shape record, x, y, dy, the gradients written and the
 * per-channel buffers read.
 *
 * @param device The device.
 * @param x The forward's input.
 * @param y The forward's output.
 * @param dy The output gradient.
 * @param g What the backward writes.
 * @param p The per-channel buffers.
 * @param s The shape record.
 *
 * @example
 * ```ts
 * import { checkBatchNormBackward } from "./_validate.ts";
 * import { cpuDevice } from "@eql/eql";
 * const d = cpuDevice(), one = () => d.alloc("f32", 1), two = () => d.alloc("f32", 2);
 * const p = { gamma: one(), beta: one(), runningMean: one(), runningVar: one(),
 *   saveMean: one(), saveInvStd: one() };
 * const s = { n: 2, c: 1, hw: 1, eps: 1e-5, momentum: 0.1, relu: false };
 * checkBatchNormBackward(d, two(), two(), two(), { dx: two(), dGamma: one(), dBeta: one() }, p, s);
 * ```
 */
export function checkBatchNormBackward(
  device: Device,
  x: DeviceBuffer,
  y: DeviceBuffer,
  dy: DeviceBuffer,
  g: BatchNormGrads,
  p: BatchNormParams,
  s: BatchNormShape,
): void {
  const op = "batchNormBackward";
  checkBatchNormShape(op, s);
  checkRecord(op, "grads", g);
  checkRecord(op, "params", p);
  const len = s.n * s.c * s.hw;
  const specs: BufferSpec[] = [
    ["x", x, "f32", len],
    ["y", y, "f32", len],
    ["dy", dy, "f32", len],
    ["grads.dx", g.dx, "f32", len],
    ["grads.dGamma", g.dGamma, "f32", s.c],
    ["grads.dBeta", g.dBeta, "f32", s.c],
  ];
  if (g.dResidual !== undefined) specs.push(["grads.dResidual", g.dResidual, "f32", len]);
  specs.push(...paramSpecs(p, s.c, ["gamma", "saveMean", "saveInvStd"]));
  checkBuffers(op, device, specs);
  const named = specs.map(([name, buf]) => [name, buf] as const);
  checkDistinct(
    op,
    [["grads.dx", g.dx], ["grads.dGamma", g.dGamma], ["grads.dBeta", g.dBeta], [
      "grads.dResidual",
      g.dResidual,
    ]],
    named,
  );
}

// ── element-wise and small ops ──────────────────────────────────────────────────────────────

/**
 * Checks an element-wise op over `length` f32 elements (in place allowed).
 *
 * @param op The operation.
 * @param device The device.
 * @param buffers Its buffers by name.
 * @param length Elements.
 *
 * @example
 * ```ts
 * import { checkElementwise } from "./_validate.ts";
 * import { cpuDevice } from "@eql/eql";
 * const d = cpuDevice(), a = d.alloc("f32", 4);
 * checkElementwise("reluForward", d, [["x", a], ["y", a]], 4);
 * ```
 */
export function checkElementwise(
  op: string,
  device: Device,
  buffers: readonly (readonly [string, DeviceBuffer])[],
  length: number,
): void {
  checkInt(op, "length", length);
  checkBuffers(op, device, buffers.map(([name, buf]) => [name, buf, "f32", length] as const));
}

/**
 * Checks a global average pool pass: `[n, c, hw]` on one side, `[n, c]` on the other.
 *
 * @param op The pass.
 * @param device The device.
 * @param spatial Its name and buffer on the `[n, c, hw]` side (x or dx).
 * @param pooled Its name and buffer on the `[n, c]` side (y or dy).
 * @param s The geometry.
 *
 * @example
 * ```ts
 * import { checkPool } from "./_validate.ts";
 * import { cpuDevice } from "@eql/eql";
 * const d = cpuDevice();
 * const s = { n: 1, c: 2, hw: 4 };
 * checkPool("globalAvgPoolForward", d, ["x", d.alloc("f32", 8)], ["y", d.alloc("f32", 2)], s);
 * ```
 */
export function checkPool(
  op: "globalAvgPoolForward" | "globalAvgPoolBackward",
  device: Device,
  spatial: readonly [string, DeviceBuffer],
  pooled: readonly [string, DeviceBuffer],
  s: PoolShape,
): void {
  checkRecord(op, "shape", s);
  for (const k of ["n", "c", "hw"] as const) checkInt(op, `shape.${k}`, s[k], 1);
  checkBuffers(op, device, [
    [spatial[0], spatial[1], "f32", s.n * s.c * s.hw],
    [pooled[0], pooled[1], "f32", s.n * s.c],
  ]);
  checkDistinct(op, [spatial, pooled], [spatial, pooled]);
}

/**
 * Checks an option-A shortcut pass: `cOut ≥ cIn` with an even difference, and the two buffers.
 *
 * @param op The pass.
 * @param device The device.
 * @param wide Its name and buffer on the input side, `[n, cIn, h, w]` (x or dx).
 * @param narrow Its name and buffer on the output side, `[n, cOut, ⌈h/2⌉, ⌈w/2⌉]` (y or dy).
 * @param s The geometry.
 *
 * @example
 * ```ts
 * import { checkShortcut } from "./_validate.ts";
 * import { cpuDevice } from "@eql/eql";
 * const d = cpuDevice();
 * const s = { n: 1, cIn: 1, h: 2, w: 2, cOut: 3 };
 * checkShortcut("shortcutForward", d, ["x", d.alloc("f32", 4)], ["y", d.alloc("f32", 3)], s);
 * ```
 */
export function checkShortcut(
  op: "shortcutForward" | "shortcutBackward",
  device: Device,
  wide: readonly [string, DeviceBuffer],
  narrow: readonly [string, DeviceBuffer],
  s: ShortcutShape,
): void {
  checkRecord(op, "shape", s);
  for (const k of ["n", "cIn", "h", "w", "cOut"] as const) checkInt(op, `shape.${k}`, s[k], 1);
  if (s.cOut < s.cIn || (s.cOut - s.cIn) % 2 !== 0) {
    throw new RangeError(
      `${op}: shape.cOut must be at least shape.cIn (${s.cIn}) and differ from it by an even ` +
        `number, got ${s.cOut}`,
    );
  }
  const oh = Math.ceil(s.h / 2), ow = Math.ceil(s.w / 2);
  checkBuffers(op, device, [
    [wide[0], wide[1], "f32", s.n * s.cIn * s.h * s.w],
    [narrow[0], narrow[1], "f32", s.n * s.cOut * oh * ow],
  ]);
  checkDistinct(op, [wide, narrow], [wide, narrow]);
}

// ── losses ──────────────────────────────────────────────────────────────────────────────────

/** The length each optional loss array must have, given the record's n and c. */
function lossArrayLength(field: string, n: number, c: number): number {
  return field === "imageOfRow" ? n : field === "logCount" ? c - 2 : c;
}

function checkLossArrays(op: string, device: Device, p: object, n: number, c: number): void {
  const record = p as Record<string, unknown>;
  for (const [field, dtype] of Object.entries(LOSS_ARRAY_DTYPES)) {
    const buf = record[field];
    if (buf === undefined) continue;
    checkBuffer(op, `params.${field}`, buf, device, dtype, lossArrayLength(field, n, c));
  }
}

function checkLossCommon(
  op: string,
  device: Device,
  logits: DeviceBuffer,
  labels: DeviceBuffer,
  grad: DeviceBuffer,
  rowLoss: DeviceBuffer,
  p: { n: number; c: number; scale: number },
): void {
  checkRecord(op, "params", p);
  checkInt(op, "params.n", p.n, 1);
  checkInt(op, "params.c", p.c, 1);
  checkNumber(op, "params.scale", p.scale);
  checkBuffers(op, device, [
    ["logits", logits, "f32", p.n * p.c],
    ["labels", labels, "i32", p.n],
    ["grad", grad, "f32", p.n * p.c],
    ["rowLoss", rowLoss, "f32", p.n],
  ]);
  checkLossArrays(op, device, p, p.n, p.c);
  const named = [["logits", logits], ["labels", labels], ["grad", grad], [
    "rowLoss",
    rowLoss,
  ]] as const;
  checkDistinct(op, [["grad", grad], ["rowLoss", rowLoss]], named);
}

/**
 * Checks a sigmoid-family loss call: the record's sizes and scalars, the four buffers and every
 * optional array (by {@linkcode LOSS_ARRAY_DTYPES}); `keepMask` needs `imageOfRow` and holds
 * whole rows of C.
 *
 * @param device The device.
 * @param logits [N, C] f32.
 * @param labels [N] i32.
 * @param grad [N, C] f32, written.
 * @param rowLoss [N] f32, written.
 * @param p The record.
 *
 * @example
 * ```ts
 * import { checkSigmoidLoss } from "./_validate.ts";
 * import { cpuDevice } from "@eql/eql";
 * const d = cpuDevice();
 * checkSigmoidLoss(d, d.alloc("f32", 2), d.alloc("i32", 1), d.alloc("f32", 2), d.alloc("f32", 1),
 *   { n: 1, c: 2, scale: 1, backgroundExempt: true, focalGamma: 0, focalAlpha: -1 });
 * ```
 */
export function checkSigmoidLoss(
  device: Device,
  logits: DeviceBuffer,
  labels: DeviceBuffer,
  grad: DeviceBuffer,
  rowLoss: DeviceBuffer,
  p: SigmoidLossParams,
): void {
  const op = "sigmoidLoss";
  checkLossCommon(op, device, logits, labels, grad, rowLoss, p);
  checkBool(op, "params.backgroundExempt", p.backgroundExempt);
  checkNumber(op, "params.focalGamma", p.focalGamma, 0);
  checkNumber(op, "params.focalAlpha", p.focalAlpha, -Number.MAX_VALUE, 1);
  if ((p.imageOfRow === undefined) !== (p.keepMask === undefined)) {
    throw new RangeError(`${op}: params.imageOfRow and params.keepMask must be given together`);
  }
  if (p.keepMask !== undefined && p.keepMask.length % p.c !== 0) {
    throw new RangeError(
      `${op}: params.keepMask must hold whole rows of C = ${p.c} values, got ${p.keepMask.length}`,
    );
  }
}

/**
 * Checks a softmax-family loss call: the record's sizes, the mask threshold, seed and counter, the
 * four buffers and every optional array.
 *
 * @param device The device.
 * @param logits [N, C] f32.
 * @param labels [N] i32.
 * @param grad [N, C] f32, written.
 * @param rowLoss [N] f32, written.
 * @param p The record.
 *
 * @example
 * ```ts
 * import { checkSoftmaxLoss } from "./_validate.ts";
 * import { cpuDevice } from "@eql/eql";
 * const d = cpuDevice();
 * checkSoftmaxLoss(d, d.alloc("f32", 2), d.alloc("i32", 1), d.alloc("f32", 2), d.alloc("f32", 1),
 *   { n: 1, c: 2, scale: 1, gammaThreshold: 0, seed: 0, counter: 0 });
 * ```
 */
export function checkSoftmaxLoss(
  device: Device,
  logits: DeviceBuffer,
  labels: DeviceBuffer,
  grad: DeviceBuffer,
  rowLoss: DeviceBuffer,
  p: SoftmaxLossParams,
): void {
  const op = "softmaxLoss";
  checkLossCommon(op, device, logits, labels, grad, rowLoss, p);
  checkInt(op, "params.gammaThreshold", p.gammaThreshold, 0, 2 ** 24);
  checkInt(op, "params.seed", p.seed, 0, MAX_U32);
  checkInt(op, "params.counter", p.counter, 0, MAX_U32);
}

/** Checks that the record holds every array field in `fields`. */
function checkRequired(op: string, p: object, fields: readonly string[]): void {
  const record = p as Record<string, unknown>;
  for (const field of fields) {
    if (record[field] === undefined) {
      throw new TypeError(`${op}: params.${field} must be given, got undefined`);
    }
  }
}

/**
 * Checks an EQLv2 loss call: the record's sizes, the five buffers (`gradStats` [2·C] f32,
 * written) and the two required per-column weight arrays.
 *
 * @param device The device.
 * @param logits [N, C] f32.
 * @param labels [N] i32.
 * @param grad [N, C] f32, written.
 * @param rowLoss [N] f32, written.
 * @param gradStats [2·C] f32, written.
 * @param p The record.
 *
 * @example
 * ```ts
 * import { checkEqlv2Loss } from "./_validate.ts";
 * import { cpuDevice } from "@eql/eql";
 * const d = cpuDevice(), f = (k: number) => d.alloc("f32", k);
 * checkEqlv2Loss(d, f(2), d.alloc("i32", 1), f(2), f(1), f(4),
 *   { n: 1, c: 2, scale: 1, posWeight: f(2), negWeight: f(2) });
 * ```
 */
export function checkEqlv2Loss(
  device: Device,
  logits: DeviceBuffer,
  labels: DeviceBuffer,
  grad: DeviceBuffer,
  rowLoss: DeviceBuffer,
  gradStats: DeviceBuffer,
  p: Eqlv2LossParams,
): void {
  const op = "eqlv2Loss";
  checkRecord(op, "params", p);
  checkRequired(op, p, ["posWeight", "negWeight"]);
  checkLossCommon(op, device, logits, labels, grad, rowLoss, p);
  checkBuffer(op, "gradStats", gradStats, device, "f32", 2 * p.c);
  const named = [
    ["logits", logits],
    ["labels", labels],
    ["grad", grad],
    ["rowLoss", rowLoss],
    [
      "gradStats",
      gradStats,
    ],
    ["params.posWeight", p.posWeight],
    ["params.negWeight", p.negWeight],
  ] as const;
  checkDistinct(op, [["gradStats", gradStats]], named);
}

/**
 * Checks a Seesaw loss call: the record's sizes (c ≥ 3: at least one class and the objectness
 * pair), p ≥ 0, q ≥ 0, eps in (0, 1], the four buffers and `logCount` [c − 2].
 *
 * @param device The device.
 * @param logits [N, C + 2] f32.
 * @param labels [N] i32.
 * @param grad [N, C + 2] f32, written.
 * @param rowLoss [N] f32, written.
 * @param p The record.
 *
 * @example
 * ```ts
 * import { checkSeesawLoss } from "./_validate.ts";
 * import { cpuDevice } from "@eql/eql";
 * const d = cpuDevice(), f = (k: number) => d.alloc("f32", k);
 * checkSeesawLoss(d, f(3), d.alloc("i32", 1), f(3), f(1),
 *   { n: 1, c: 3, scale: 1, logCount: f(1), p: 0.8, q: 2, eps: 0.01 });
 * ```
 */
export function checkSeesawLoss(
  device: Device,
  logits: DeviceBuffer,
  labels: DeviceBuffer,
  grad: DeviceBuffer,
  rowLoss: DeviceBuffer,
  p: SeesawLossParams,
): void {
  const op = "seesawLoss";
  checkRecord(op, "params", p);
  checkInt(op, "params.c", p.c, 3);
  checkRequired(op, p, ["logCount"]);
  checkLossCommon(op, device, logits, labels, grad, rowLoss, p);
  checkNumber(op, "params.p", p.p, 0);
  checkNumber(op, "params.q", p.q, 0);
  checkNumber(op, "params.eps", p.eps, Number.MIN_VALUE, 1);
}

/**
 * Checks a smooth-L1 call: sizes, β ≥ 0, a finite scale and the five buffers.
 *
 * @param device The device.
 * @param pred [N, D] f32.
 * @param target [N, D] f32.
 * @param rowWeight [N] f32.
 * @param grad [N, D] f32, written.
 * @param rowLoss [N] f32, written.
 * @param s The sizes and scalars.
 *
 * @example
 * ```ts
 * import { checkSmoothL1 } from "./_validate.ts";
 * import { cpuDevice } from "@eql/eql";
 * const d = cpuDevice(), a = () => d.alloc("f32", 4), r = () => d.alloc("f32", 1);
 * checkSmoothL1(d, a(), a(), r(), a(), r(), { n: 1, d: 4, beta: 1, scale: 1 });
 * ```
 */
export function checkSmoothL1(
  device: Device,
  pred: DeviceBuffer,
  target: DeviceBuffer,
  rowWeight: DeviceBuffer,
  grad: DeviceBuffer,
  rowLoss: DeviceBuffer,
  s: SmoothL1Shape,
): void {
  const op = "smoothL1Loss";
  checkRecord(op, "shape", s);
  checkInt(op, "shape.n", s.n, 1);
  checkInt(op, "shape.d", s.d, 1);
  checkNumber(op, "shape.beta", s.beta, 0);
  checkNumber(op, "shape.scale", s.scale);
  const specs: BufferSpec[] = [
    ["pred", pred, "f32", s.n * s.d],
    ["target", target, "f32", s.n * s.d],
    ["rowWeight", rowWeight, "f32", s.n],
    ["grad", grad, "f32", s.n * s.d],
    ["rowLoss", rowLoss, "f32", s.n],
  ];
  checkBuffers(op, device, specs);
  checkDistinct(
    op,
    [["grad", grad], ["rowLoss", rowLoss]],
    specs.map(([name, buf]) => [name, buf] as const),
  );
}

// ── optimisation ────────────────────────────────────────────────────────────────────────────

/**
 * Checks a fused SGD step: the length, finite scalars (momentum and weight decay ≥ 0) and three
 * distinct buffers.
 *
 * @param device The device.
 * @param param Parameters, updated.
 * @param grad Gradient.
 * @param momentumBuf Momentum buffer, updated.
 * @param a The step's arguments.
 *
 * @example
 * ```ts
 * import { checkSgd } from "./_validate.ts";
 * import { cpuDevice } from "@eql/eql";
 * const d = cpuDevice(), a = () => d.alloc("f32", 4);
 * checkSgd(d, a(), a(), a(), { length: 4, lr: 0.1, momentum: 0.9, weightDecay: 0, nesterov: false });
 * ```
 */
export function checkSgd(
  device: Device,
  param: DeviceBuffer,
  grad: DeviceBuffer,
  momentumBuf: DeviceBuffer,
  a: SgdArgs,
): void {
  const op = "sgdUpdate";
  checkRecord(op, "args", a);
  checkInt(op, "args.length", a.length);
  checkNumber(op, "args.lr", a.lr);
  checkNumber(op, "args.momentum", a.momentum, 0);
  checkNumber(op, "args.weightDecay", a.weightDecay, 0);
  checkBool(op, "args.nesterov", a.nesterov);
  const specs: BufferSpec[] = [
    ["param", param, "f32", a.length],
    ["grad", grad, "f32", a.length],
    ["momentumBuf", momentumBuf, "f32", a.length],
  ];
  checkBuffers(op, device, specs);
  const named = specs.map(([name, buf]) => [name, buf] as const);
  checkDistinct(op, named, named);
}
