/**
 * Launch descriptions of the project's own CUDA kernels (`ffi/kernels/*.cu`, compiled into the
 * PTX module of `ffi/kernels/ptx.ts`): one function per device op, taking the device's
 * {@linkcode KernelLauncher} first and device pointers as bigints (`0n` for an absent optional
 * buffer) in the order of the `Device` method's arguments. Each function checks the sizes that
 * decide which memory a kernel touches, picks the grid and block, and queues the kernel with an
 * argument list that matches the kernel's C parameter list exactly.
 *
 * Launch shapes:
 * - flat element-wise kernels: 256-thread blocks, a grid-stride loop, at most 8192 blocks;
 * - row-wise losses: one warp per row, 8 rows per block, while a row fits one batch of a warp
 *   (C ≤ 32·{@linkcode ROW_ITEMS}); otherwise one block per row with enough threads (a multiple
 *   of 32, at most 1024) that each holds at most `ROW_ITEMS` columns, so a row is read from
 *   memory once and kept in registers for the softmax gradient pass (C = 1230: 160 threads);
 * - global average pooling and smooth-L1: one warp per plane / row, 8 per block.
 *
 * The fused losses have one kernel per option set (see {@linkcode sigmoidKernelName} and
 * {@linkcode softmaxKernelName}); all variants of a family share one parameter list.
 *
 * Nothing is launched when there is no work (a CUDA grid cannot be empty).
 *
 * @module
 */

import type { KernelArg, KernelLauncher } from "./launch.ts";
import type { SgdParams } from "../device.ts";

export type { KernelArg, KernelLauncher } from "./launch.ts";
export type { SgdParams } from "../device.ts";

/** Columns each thread of a row-wise loss kernel holds at once (`EQL_ROW_ITEMS` in losses.cu). */
export const ROW_ITEMS = 8;
/** Threads per block of the flat element-wise kernels. */
export const FLAT_THREADS = 256;
/** Upper bound on the grid of the flat kernels (they loop over the rest). */
export const FLAT_MAX_BLOCKS = 8192;
/** Rows (or planes) per block for the warp-per-row kernels. */
export const WARP_ROWS = 8;

const I32_MAX = 2147483647;
const U32_MAX = 4294967295;

/** A kernel's grid and block sizes. */
export interface LaunchShape {
  /** Blocks (x, y, z). */
  grid: [number, number, number];
  /** Threads per block (x, y, z). */
  block: [number, number, number];
}

/**
 * Sigmoid-family parameters with device pointers (see `SigmoidLossParams` in `device.ts`);
 * absent optional buffers are `0n`.
 */
export interface SigmoidLossKernelParams {
  /** Rows. */
  n: number;
  /** Classes (logit columns); label C means background. */
  c: number;
  /** Multiplier applied to the gradient. */
  scale: number;
  /** f32 [C] suppression strengths, or `0n`. */
  suppress: bigint;
  /** True: background rows are never suppressed. */
  backgroundExempt: boolean;
  /** f32 [C] per-class row weights, or `0n`. */
  classWeight: bigint;
  /** Focal exponent γ (0: plain cross-entropy). */
  focalGamma: number;
  /** Focal balance α; negative: off. */
  focalAlpha: number;
  /** i32 [N] image of each row, or `0n` (required with `keepMask`). */
  imageOfRow: bigint;
  /** i32 [images·C] keep mask, or `0n`. */
  keepMask: bigint;
}

/**
 * Softmax-family parameters with device pointers (see `SoftmaxLossParams` in `device.ts`);
 * absent optional buffers are `0n`.
 */
export interface SoftmaxLossKernelParams {
  /** Rows. */
  n: number;
  /** Classes. */
  c: number;
  /** Multiplier applied to the gradient. */
  scale: number;
  /** f32 [C] 0/1 tail indicator, or `0n`. */
  suppress: bigint;
  /** `floor(γ · 2^24)` (u32): a draw below it masks the class. */
  gammaThreshold: number;
  /** Mask seed (u32). */
  seed: number;
  /** Mask call counter (u32). */
  counter: number;
  /** f32 [C] per-class weights by the row's label, or `0n`. */
  classWeight: bigint;
  /** f32 [C] logit offsets, or `0n`. */
  logitBias: bigint;
}

/** SGD hyper-parameters of {@linkcode sgdUpdate} (PyTorch semantics, see `Device.sgdUpdate`). */
export type SgdKernelParams = SgdParams;

function count(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > I32_MAX) {
    throw new RangeError(`${name} must be an integer in 0..${I32_MAX}, got ${value}`);
  }
  return value;
}

function u32(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > U32_MAX) {
    throw new RangeError(`${name} must be an integer in 0..${U32_MAX}, got ${value}`);
  }
  return value;
}

function required(name: string, pointer: bigint): { ptr: bigint } {
  if (typeof pointer !== "bigint" || pointer <= 0n) {
    throw new TypeError(`${name} must be a non-null device pointer (bigint), got ${pointer}`);
  }
  return { ptr: pointer };
}

function optional(name: string, pointer: bigint): { ptr: bigint } {
  if (typeof pointer !== "bigint" || pointer < 0n) {
    throw new TypeError(`${name} must be a device pointer or 0n (bigint), got ${pointer}`);
  }
  return { ptr: pointer };
}

/**
 * Grid and block of a flat grid-stride kernel over `length` elements.
 *
 * @param length Elements (> 0).
 * @returns The launch shape.
 *
 * @example
 * ```ts
 * import { flatLaunchShape } from "./kernels.ts";
 * flatLaunchShape(1000).block; // [256, 1, 1]
 * ```
 */
export function flatLaunchShape(length: number): LaunchShape {
  // Each thread covers 4 elements per step on the 16-byte path.
  const blocks = Math.min(FLAT_MAX_BLOCKS, Math.max(1, Math.ceil(length / (4 * FLAT_THREADS))));
  return { grid: [blocks, 1, 1], block: [FLAT_THREADS, 1, 1] };
}

/**
 * Grid and block of a row-wise loss kernel over `n` rows of `c` columns: a warp per row while a
 * row fits one warp's batch, else a block per row with at most `ROW_ITEMS` columns per thread.
 *
 * @param n Rows (> 0).
 * @param c Columns.
 * @returns The launch shape.
 *
 * @example
 * ```ts
 * import { rowLaunchShape } from "./kernels.ts";
 * rowLaunchShape(8192, 1230); // { grid: [8192, 1, 1], block: [160, 1, 1] }
 * rowLaunchShape(128, 100); // { grid: [16, 1, 1], block: [32, 8, 1] }
 * ```
 */
export function rowLaunchShape(n: number, c: number): LaunchShape {
  if (c <= 32 * ROW_ITEMS) {
    return { grid: [Math.ceil(n / WARP_ROWS), 1, 1], block: [32, WARP_ROWS, 1] };
  }
  const threads = Math.min(1024, Math.ceil(c / ROW_ITEMS / 32) * 32);
  return { grid: [n, 1, 1], block: [threads, 1, 1] };
}

function warpRowsShape(rows: number): LaunchShape {
  return { grid: [Math.ceil(rows / WARP_ROWS), 1, 1], block: [32, WARP_ROWS, 1] };
}

function launch(l: KernelLauncher, name: string, shape: LaunchShape, args: KernelArg[]): void {
  l.launch(name, shape.grid, shape.block, 0, args);
}

/**
 * `y = max(x, 0)` over `length` elements (in place allowed).
 *
 * @param l The device's kernel launcher.
 * @param x Input (f32).
 * @param y Output (f32), may equal `x`.
 * @param length Elements.
 *
 * @example
 * ```ts
 * import { reluForward } from "./kernels.ts";
 * import type { KernelLauncher } from "./launch.ts";
 * const calls: string[] = [];
 * const l: KernelLauncher = { launch: (name) => void calls.push(name) };
 * reluForward(l, 0x1000n, 0x2000n, 16); // calls: ["relu_forward"]
 * ```
 */
export function reluForward(l: KernelLauncher, x: bigint, y: bigint, length: number): void {
  count("length", length);
  if (length === 0) return;
  launch(l, "relu_forward", flatLaunchShape(length), [
    required("x", x),
    required("y", y),
    { i32: length },
  ]);
}

/**
 * `dx = dy · (y > 0)` from the forward output `y` (in place on `dy` allowed).
 *
 * @param l The device's kernel launcher.
 * @param y Forward output (f32).
 * @param dy Upstream gradient (f32).
 * @param dx Output (f32), may equal `dy`.
 * @param length Elements.
 *
 * @example
 * ```ts
 * import { reluBackward } from "./kernels.ts";
 * import type { KernelLauncher } from "./launch.ts";
 * const l: KernelLauncher = { launch: () => {} };
 * reluBackward(l, 0x1000n, 0x2000n, 0x2000n, 16);
 * ```
 */
export function reluBackward(
  l: KernelLauncher,
  y: bigint,
  dy: bigint,
  dx: bigint,
  length: number,
): void {
  count("length", length);
  if (length === 0) return;
  launch(l, "relu_backward", flatLaunchShape(length), [
    required("y", y),
    required("dy", dy),
    required("dx", dx),
    { i32: length },
  ]);
}

/**
 * `out = a + b` over `length` elements (`out` may equal `a` or `b`).
 *
 * @param l The device's kernel launcher.
 * @param a First input (f32).
 * @param b Second input (f32).
 * @param out Output (f32).
 * @param length Elements.
 *
 * @example
 * ```ts
 * import { add } from "./kernels.ts";
 * import type { KernelLauncher } from "./launch.ts";
 * const l: KernelLauncher = { launch: () => {} };
 * add(l, 0x1000n, 0x2000n, 0x1000n, 16);
 * ```
 */
export function add(l: KernelLauncher, a: bigint, b: bigint, out: bigint, length: number): void {
  count("length", length);
  if (length === 0) return;
  launch(l, "add", flatLaunchShape(length), [
    required("a", a),
    required("b", b),
    required("out", out),
    { i32: length },
  ]);
}

function planes(n: number, c: number, hw: number): number {
  count("n", n);
  count("c", c);
  count("hw", hw);
  const p = n * c;
  if (Math.ceil(p / WARP_ROWS) > I32_MAX) {
    throw new RangeError(`n·c must be at most ${I32_MAX * WARP_ROWS}, got ${p}`);
  }
  return p;
}

/**
 * `y[n,c] = mean over hw of x[n,c,hw]` (one warp per plane, float64 sum).
 *
 * @param l The device's kernel launcher.
 * @param x Input [n, c, hw] (f32).
 * @param y Output [n, c] (f32).
 * @param n Batch.
 * @param c Channels.
 * @param hw Spatial size.
 *
 * @example
 * ```ts
 * import { globalAvgPoolForward } from "./kernels.ts";
 * import type { KernelLauncher } from "./launch.ts";
 * const l: KernelLauncher = { launch: () => {} };
 * globalAvgPoolForward(l, 0x1000n, 0x2000n, 128, 64, 64);
 * ```
 */
export function globalAvgPoolForward(
  l: KernelLauncher,
  x: bigint,
  y: bigint,
  n: number,
  c: number,
  hw: number,
): void {
  const p = planes(n, c, hw);
  if (p === 0) return;
  launch(l, "global_avg_pool_forward", warpRowsShape(p), [
    required("x", x),
    required("y", y),
    { i32: n },
    { i32: c },
    { i32: hw },
  ]);
}

/**
 * `dx[n,c,hw] = dy[n,c] / hw`.
 *
 * @param l The device's kernel launcher.
 * @param dy Upstream gradient [n, c] (f32).
 * @param dx Output [n, c, hw] (f32).
 * @param n Batch.
 * @param c Channels.
 * @param hw Spatial size.
 *
 * @example
 * ```ts
 * import { globalAvgPoolBackward } from "./kernels.ts";
 * import type { KernelLauncher } from "./launch.ts";
 * const l: KernelLauncher = { launch: () => {} };
 * globalAvgPoolBackward(l, 0x1000n, 0x2000n, 128, 64, 64);
 * ```
 */
export function globalAvgPoolBackward(
  l: KernelLauncher,
  dy: bigint,
  dx: bigint,
  n: number,
  c: number,
  hw: number,
): void {
  const p = planes(n, c, hw);
  if (p === 0 || hw === 0) return;
  launch(l, "global_avg_pool_backward", warpRowsShape(p), [
    required("dy", dy),
    required("dx", dx),
    { i32: n },
    { i32: c },
    { i32: hw },
  ]);
}

function shortcutSizes(
  n: number,
  cIn: number,
  h: number,
  w: number,
  cOut: number,
): { xLength: number; yLength: number } {
  count("n", n);
  count("cIn", cIn);
  count("h", h);
  count("w", w);
  count("cOut", cOut);
  if (cOut < cIn) {
    throw new RangeError(`cOut must be at least cIn (${cIn}), got ${cOut}`);
  }
  const xLength = n * cIn * h * w;
  const yLength = n * cOut * Math.ceil(h / 2) * Math.ceil(w / 2);
  if (xLength > I32_MAX) {
    throw new RangeError(`x must hold at most ${I32_MAX} elements, got ${xLength}`);
  }
  if (yLength > I32_MAX) {
    throw new RangeError(`y must hold at most ${I32_MAX} elements, got ${yLength}`);
  }
  return { xLength, yLength };
}

/**
 * Option-A shortcut forward: `y[:, pad + ci, i, j] = x[:, ci, 2i, 2j]`, `pad = (cOut − cIn)/2`,
 * zeros in the padded channels; y is [n, cOut, ceil(h/2), ceil(w/2)].
 *
 * @param l The device's kernel launcher.
 * @param x Input [n, cIn, h, w] (f32).
 * @param y Output (f32).
 * @param n Batch.
 * @param cIn Input channels.
 * @param h Input height.
 * @param w Input width.
 * @param cOut Output channels (≥ cIn).
 *
 * @example
 * ```ts
 * import { shortcutForward } from "./kernels.ts";
 * import type { KernelLauncher } from "./launch.ts";
 * const l: KernelLauncher = { launch: () => {} };
 * shortcutForward(l, 0x1000n, 0x2000n, 128, 16, 32, 32, 32);
 * ```
 */
export function shortcutForward(
  l: KernelLauncher,
  x: bigint,
  y: bigint,
  n: number,
  cIn: number,
  h: number,
  w: number,
  cOut: number,
): void {
  const { yLength } = shortcutSizes(n, cIn, h, w, cOut);
  if (yLength === 0) return;
  const blocks = Math.min(FLAT_MAX_BLOCKS, Math.ceil(yLength / FLAT_THREADS));
  launch(l, "shortcut_forward", { grid: [blocks, 1, 1], block: [FLAT_THREADS, 1, 1] }, [
    required("x", x),
    required("y", y),
    { i32: n },
    { i32: cIn },
    { i32: h },
    { i32: w },
    { i32: cOut },
  ]);
}

/**
 * Option-A shortcut backward: scatters dy back to the even positions of dx, zeros elsewhere.
 *
 * @param l The device's kernel launcher.
 * @param dy Upstream gradient [n, cOut, ceil(h/2), ceil(w/2)] (f32).
 * @param dx Output [n, cIn, h, w] (f32).
 * @param n Batch.
 * @param cIn Input channels.
 * @param h Input height.
 * @param w Input width.
 * @param cOut Output channels (≥ cIn).
 *
 * @example
 * ```ts
 * import { shortcutBackward } from "./kernels.ts";
 * import type { KernelLauncher } from "./launch.ts";
 * const l: KernelLauncher = { launch: () => {} };
 * shortcutBackward(l, 0x1000n, 0x2000n, 128, 16, 32, 32, 32);
 * ```
 */
export function shortcutBackward(
  l: KernelLauncher,
  dy: bigint,
  dx: bigint,
  n: number,
  cIn: number,
  h: number,
  w: number,
  cOut: number,
): void {
  const { xLength } = shortcutSizes(n, cIn, h, w, cOut);
  if (xLength === 0) return;
  const blocks = Math.min(FLAT_MAX_BLOCKS, Math.ceil(xLength / FLAT_THREADS));
  launch(l, "shortcut_backward", { grid: [blocks, 1, 1], block: [FLAT_THREADS, 1, 1] }, [
    required("dy", dy),
    required("dx", dx),
    { i32: n },
    { i32: cIn },
    { i32: h },
    { i32: w },
    { i32: cOut },
  ]);
}

/**
 * The sigmoid-family kernel specialised for the options in use: `sigmoid_loss[_focal]` followed
 * by `_keep` (suppression with an image keep mask), `_suppress` (suppression) or nothing.
 *
 * @param p The loss parameters.
 * @returns The kernel's name in the PTX module.
 *
 * @example
 * ```ts
 * import { sigmoidKernelName } from "./kernels.ts";
 * sigmoidKernelName({
 *   n: 8, c: 4, scale: 1, suppress: 0x1000n, backgroundExempt: true, classWeight: 0n,
 *   focalGamma: 0, focalAlpha: -1, imageOfRow: 0n, keepMask: 0n,
 * }); // "sigmoid_loss_suppress"
 * ```
 */
export function sigmoidKernelName(p: SigmoidLossKernelParams): string {
  const focal = p.focalGamma !== 0 || p.focalAlpha >= 0 ? "_focal" : "";
  // The keep mask only ever restores suppressed weights, so it matters only with `suppress`.
  const variant = p.suppress === 0n
    ? ""
    : p.keepMask !== 0n && p.imageOfRow !== 0n
    ? "_keep"
    : "_suppress";
  return `sigmoid_loss${focal}${variant}`;
}

/**
 * The softmax-family kernel specialised for the options in use: `softmax_loss` followed by
 * `_mask` (softmax-EQL masking: `suppress` given and `gammaThreshold > 0`) and `_bias` (logit
 * offsets given).
 *
 * @param p The loss parameters.
 * @returns The kernel's name in the PTX module.
 *
 * @example
 * ```ts
 * import { softmaxKernelName } from "./kernels.ts";
 * softmaxKernelName({
 *   n: 8, c: 4, scale: 1, suppress: 0x1000n, gammaThreshold: 100, seed: 0, counter: 0,
 *   classWeight: 0n, logitBias: 0n,
 * }); // "softmax_loss_mask"
 * ```
 */
export function softmaxKernelName(p: SoftmaxLossKernelParams): string {
  const mask = p.suppress !== 0n && p.gammaThreshold > 0 ? "_mask" : "";
  const bias = p.logitBias !== 0n ? "_bias" : "";
  return `softmax_loss${mask}${bias}`;
}

/**
 * Fused sigmoid-family loss over logits [N, C] with i32 labels in 0..C (C = background): writes
 * each row's unscaled weighted loss to `rowLoss` and `scale · ∂/∂logits` to `grad`. A row whose
 * label lies outside 0..C gets NaN loss and gradient.
 *
 * @param l The device's kernel launcher.
 * @param logits f32 [N·C].
 * @param labels i32 [N].
 * @param grad f32 [N·C] output (must not overlap `logits`).
 * @param rowLoss f32 [N] output.
 * @param p Sizes, scale and options.
 *
 * @example
 * ```ts
 * import { sigmoidLoss } from "./kernels.ts";
 * import type { KernelLauncher } from "./launch.ts";
 * const l: KernelLauncher = { launch: () => {} };
 * sigmoidLoss(l, 0x1000n, 0x2000n, 0x3000n, 0x4000n, {
 *   n: 512, c: 1230, scale: 1 / 512, suppress: 0x5000n, backgroundExempt: true,
 *   classWeight: 0n, focalGamma: 0, focalAlpha: -1, imageOfRow: 0n, keepMask: 0n,
 * });
 * ```
 */
export function sigmoidLoss(
  l: KernelLauncher,
  logits: bigint,
  labels: bigint,
  grad: bigint,
  rowLoss: bigint,
  p: SigmoidLossKernelParams,
): void {
  const n = count("n", p.n), c = count("c", p.c);
  if (p.keepMask !== 0n && p.imageOfRow === 0n) {
    throw new TypeError("imageOfRow must be given with keepMask, got 0n");
  }
  if (n === 0) return;
  launch(l, sigmoidKernelName(p), rowLaunchShape(n, c), [
    c === 0 ? optional("logits", logits) : required("logits", logits),
    required("labels", labels),
    c === 0 ? optional("grad", grad) : required("grad", grad),
    required("rowLoss", rowLoss),
    { i32: n },
    { i32: c },
    { f32: p.scale },
    optional("suppress", p.suppress),
    { i32: p.backgroundExempt ? 1 : 0 },
    optional("classWeight", p.classWeight),
    { f32: p.focalGamma },
    { f32: p.focalAlpha },
    optional("imageOfRow", p.imageOfRow),
    optional("keepMask", p.keepMask),
  ]);
}

/**
 * Fused softmax-family loss over logits [N, C] with i32 labels in 0..C−1: writes each row's
 * unscaled loss to `rowLoss` and `scale · ∂/∂logits` to `grad`. A row whose label lies outside
 * 0..C−1 gets NaN loss and gradient.
 *
 * @param l The device's kernel launcher.
 * @param logits f32 [N·C].
 * @param labels i32 [N].
 * @param grad f32 [N·C] output (must not overlap `logits`).
 * @param rowLoss f32 [N] output.
 * @param p Sizes, scale, mask and options.
 *
 * @example
 * ```ts
 * import { softmaxLoss } from "./kernels.ts";
 * import type { KernelLauncher } from "./launch.ts";
 * const l: KernelLauncher = { launch: () => {} };
 * softmaxLoss(l, 0x1000n, 0x2000n, 0x3000n, 0x4000n, {
 *   n: 128, c: 100, scale: 1 / 128, suppress: 0x5000n, gammaThreshold: 15938355, seed: 7,
 *   counter: 0, classWeight: 0n, logitBias: 0n,
 * });
 * ```
 */
export function softmaxLoss(
  l: KernelLauncher,
  logits: bigint,
  labels: bigint,
  grad: bigint,
  rowLoss: bigint,
  p: SoftmaxLossKernelParams,
): void {
  const n = count("n", p.n), c = count("c", p.c);
  u32("gammaThreshold", p.gammaThreshold);
  u32("seed", p.seed);
  u32("counter", p.counter);
  if (n === 0) return;
  if (c === 0) throw new RangeError(`c must be at least 1 when n > 0, got 0`);
  launch(l, softmaxKernelName(p), rowLaunchShape(n, c), [
    required("logits", logits),
    required("labels", labels),
    required("grad", grad),
    required("rowLoss", rowLoss),
    { i32: n },
    { i32: c },
    { f32: p.scale },
    optional("suppress", p.suppress),
    { u32: p.gammaThreshold },
    { u32: p.seed },
    { u32: p.counter },
    optional("classWeight", p.classWeight),
    optional("logitBias", p.logitBias),
  ]);
}

/**
 * Smooth-L1 over [N, D] predictions and targets weighted per row: writes
 * `rowWeight[i] · Σ_j l(pred − target)` to `rowLoss` and `scale · rowWeight · l'` to `grad`
 * (`beta` = 0: plain L1).
 *
 * @param l The device's kernel launcher.
 * @param pred f32 [N·D].
 * @param target f32 [N·D].
 * @param rowWeight f32 [N].
 * @param grad f32 [N·D] output.
 * @param rowLoss f32 [N] output.
 * @param n Rows.
 * @param d Values per row.
 * @param beta Transition point ≥ 0.
 * @param scale Gradient multiplier.
 *
 * @example
 * ```ts
 * import { smoothL1Loss } from "./kernels.ts";
 * import type { KernelLauncher } from "./launch.ts";
 * const l: KernelLauncher = { launch: () => {} };
 * smoothL1Loss(l, 0x1000n, 0x2000n, 0x3000n, 0x4000n, 0x5000n, 512, 4, 1, 1 / 512);
 * ```
 */
export function smoothL1Loss(
  l: KernelLauncher,
  pred: bigint,
  target: bigint,
  rowWeight: bigint,
  grad: bigint,
  rowLoss: bigint,
  n: number,
  d: number,
  beta: number,
  scale: number,
): void {
  count("n", n);
  count("d", d);
  if (n === 0) return;
  const rows = d === 0 ? optional : required;
  launch(l, "smooth_l1_loss", warpRowsShape(n), [
    rows("pred", pred),
    rows("target", target),
    required("rowWeight", rowWeight),
    rows("grad", grad),
    required("rowLoss", rowLoss),
    { i32: n },
    { i32: d },
    { f32: beta },
    { f32: scale },
  ]);
}

/**
 * Fused SGD step over `length` elements with PyTorch semantics: `g = grad + wd·p`;
 * `buf = momentum·buf + g`; `g = nesterov ? g + momentum·buf : buf`; `p −= lr·g`.
 *
 * @param l The device's kernel launcher.
 * @param p Parameters (f32), updated in place.
 * @param g Gradient (f32).
 * @param buf Momentum buffer (f32), updated in place.
 * @param length Elements.
 * @param params Learning rate, momentum, weight decay, Nesterov.
 *
 * @example
 * ```ts
 * import { sgdUpdate } from "./kernels.ts";
 * import type { KernelLauncher } from "./launch.ts";
 * const l: KernelLauncher = { launch: () => {} };
 * sgdUpdate(l, 0x1000n, 0x2000n, 0x3000n, 470004, {
 *   lr: 0.1, momentum: 0.9, weightDecay: 2e-4, nesterov: false,
 * });
 * ```
 */
export function sgdUpdate(
  l: KernelLauncher,
  p: bigint,
  g: bigint,
  buf: bigint,
  length: number,
  params: SgdKernelParams,
): void {
  count("length", length);
  if (length === 0) return;
  launch(l, "sgd_update", flatLaunchShape(length), [
    required("param", p),
    required("grad", g),
    required("momentumBuf", buf),
    { i32: length },
    { f32: params.lr },
    { f32: params.momentum },
    { f32: params.weightDecay },
    { i32: params.nesterov ? 1 : 0 },
  ]);
}
