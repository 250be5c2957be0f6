/**
 * Launch descriptions of the project's own CUDA kernels (`ffi/kernels/*.cu`, compiled into the
 * PTX module of `ffi/kernels/ptx.ts`): one function per kernel family, taking the device's
 * {@linkcode KernelLauncher} first, device pointers as bigints, and the device contract's record
 * of sizes and options. Each function picks the grid and block and queues the kernel with an
 * argument list that matches the kernel's C parameter list exactly (`test/kernels_build_test.ts`
 * checks every one against the PTX entry points and the C sources).
 *
 * Arguments are not checked here: the device validates every call (`src/device/_validate.ts`)
 * before it reaches a launch. What is CUDA's own stays here: nothing is launched when there is no
 * work (a CUDA grid cannot be empty), and the launch shapes keep every grid within its limits.
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
 * @module
 */

import type { KernelArg, KernelLauncher } from "./launch.ts";
import type {
  BatchNormShape,
  Eqlv2LossParams,
  PoolShape,
  SeesawLossParams,
  SgdArgs,
  ShortcutShape,
  SigmoidLossParams,
  SmoothL1Shape,
  SoftmaxLossParams,
} from "../device.ts";

export type { KernelArg, KernelLauncher } from "./launch.ts";

/** Columns each thread of a row-wise loss kernel holds at once (`EQL_ROW_ITEMS` in losses.cu). */
export const ROW_ITEMS = 8;
/** Threads per block of the flat element-wise kernels. */
export const FLAT_THREADS = 256;
/** Upper bound on the grid of the flat kernels (they loop over the rest). */
export const FLAT_MAX_BLOCKS = 8192;
/** Rows (or planes) per block for the warp-per-row kernels. */
export const WARP_ROWS = 8;

/** A kernel's grid and block sizes. */
export interface LaunchShape {
  /** Blocks (x, y, z). */
  grid: [number, number, number];
  /** Threads per block (x, y, z). */
  block: [number, number, number];
}

/** The sigmoid-family record with device pointers for its arrays (absent: not given). */
export type SigmoidLossKernelParams = SigmoidLossParams<bigint, bigint>;

/** The softmax-family record with device pointers for its arrays (absent: not given). */
export type SoftmaxLossKernelParams = SoftmaxLossParams<bigint>;

/** The EQLv2 record with device pointers for its arrays. */
export type Eqlv2LossKernelParams = Eqlv2LossParams<bigint>;

/** The Seesaw record with device pointers for its arrays. */
export type SeesawLossKernelParams = SeesawLossParams<bigint>;

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

/** A pointer argument; an absent optional array is the null pointer. */
function ptr(p: bigint | undefined): KernelArg {
  return { ptr: p ?? 0n };
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
  if (length === 0) return;
  launch(l, "relu_forward", flatLaunchShape(length), [ptr(x), ptr(y), { i32: length }]);
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
  if (length === 0) return;
  launch(l, "relu_backward", flatLaunchShape(length), [ptr(y), ptr(dy), ptr(dx), {
    i32: length,
  }]);
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
  if (length === 0) return;
  launch(l, "add", flatLaunchShape(length), [ptr(a), ptr(b), ptr(out), { i32: length }]);
}

/**
 * Where the per-channel statistics of {@linkcode batchNormTail} come from: `"batch"`, the training
 * forward's saved mean and `1/sqrt(var + eps)`; `"running"`, the running mean and variance.
 */
export type BatchNormStatistics = "batch" | "running";

/**
 * The fused tail of a residual block's batch norm, one pass over the data:
 * `y = act(gamma·(x − mean)·invStd + beta (+ residual))` per channel, with `act` the ReLU when
 * `shape.relu`. With `"batch"` statistics, `mean` and `stat` are the training forward's saved
 * mean and inverse standard deviation; with `"running"`, the running mean and variance, and
 * `invStd = 1/sqrt(var + shape.eps)`. `y` may be `x` or `residual`.
 *
 * @param l The device's kernel launcher.
 * @param x Input [n, c, hw] (f32).
 * @param residual Added before the ReLU (f32 [n, c, hw]), or `0n` for none.
 * @param y Output [n, c, hw] (f32).
 * @param gamma Scale [c].
 * @param beta Shift [c].
 * @param mean Mean [c] (saved or running).
 * @param stat Inverse standard deviation (`"batch"`) or running variance (`"running"`) [c].
 * @param shape Geometry, eps and whether the ReLU applies.
 * @param statistics Which statistics `mean` and `stat` are.
 *
 * @example
 * ```ts
 * import { batchNormTail } from "./kernels.ts";
 * import type { KernelLauncher } from "./launch.ts";
 * const calls: string[] = [];
 * const l: KernelLauncher = { launch: (name) => void calls.push(name) };
 * const shape = { n: 128, c: 16, hw: 1024, eps: 1e-5, momentum: 0.1, relu: true };
 * batchNormTail(l, 0x1000n, 0x2000n, 0x3000n, 0x4000n, 0x5000n, 0x6000n, 0x7000n, shape, "batch");
 * // calls: ["batch_norm_tail"]
 * ```
 */
export function batchNormTail(
  l: KernelLauncher,
  x: bigint,
  residual: bigint,
  y: bigint,
  gamma: bigint,
  beta: bigint,
  mean: bigint,
  stat: bigint,
  shape: BatchNormShape,
  statistics: BatchNormStatistics,
): void {
  const length = shape.n * shape.c * shape.hw;
  if (length === 0) return;
  launch(l, "batch_norm_tail", flatLaunchShape(length), [
    ptr(x),
    ptr(residual),
    ptr(y),
    ptr(gamma),
    ptr(beta),
    ptr(mean),
    ptr(stat),
    { i32: shape.n },
    { i32: shape.c },
    { i32: shape.hw },
    { f32: shape.eps },
    { i32: statistics === "running" ? 1 : 0 },
    { i32: shape.relu ? 1 : 0 },
  ]);
}

/**
 * `y[n,c] = mean over hw of x[n,c,hw]` (one warp per plane, float64 sum).
 *
 * @param l The device's kernel launcher.
 * @param x Input [n, c, hw] (f32).
 * @param y Output [n, c] (f32).
 * @param shape Batch, channels and spatial size.
 *
 * @example
 * ```ts
 * import { globalAvgPoolForward } from "./kernels.ts";
 * import type { KernelLauncher } from "./launch.ts";
 * const l: KernelLauncher = { launch: () => {} };
 * globalAvgPoolForward(l, 0x1000n, 0x2000n, { n: 128, c: 64, hw: 64 });
 * ```
 */
export function globalAvgPoolForward(
  l: KernelLauncher,
  x: bigint,
  y: bigint,
  shape: PoolShape,
): void {
  const planes = shape.n * shape.c;
  if (planes === 0) return;
  launch(l, "global_avg_pool_forward", warpRowsShape(planes), [
    ptr(x),
    ptr(y),
    { i32: shape.n },
    { i32: shape.c },
    { i32: shape.hw },
  ]);
}

/**
 * `dx[n,c,hw] = dy[n,c] / hw`.
 *
 * @param l The device's kernel launcher.
 * @param dy Upstream gradient [n, c] (f32).
 * @param dx Output [n, c, hw] (f32).
 * @param shape Batch, channels and spatial size.
 *
 * @example
 * ```ts
 * import { globalAvgPoolBackward } from "./kernels.ts";
 * import type { KernelLauncher } from "./launch.ts";
 * const l: KernelLauncher = { launch: () => {} };
 * globalAvgPoolBackward(l, 0x1000n, 0x2000n, { n: 128, c: 64, hw: 64 });
 * ```
 */
export function globalAvgPoolBackward(
  l: KernelLauncher,
  dy: bigint,
  dx: bigint,
  shape: PoolShape,
): void {
  const planes = shape.n * shape.c;
  if (planes === 0 || shape.hw === 0) return;
  launch(l, "global_avg_pool_backward", warpRowsShape(planes), [
    ptr(dy),
    ptr(dx),
    { i32: shape.n },
    { i32: shape.c },
    { i32: shape.hw },
  ]);
}

function shortcutArgs(a: bigint, b: bigint, s: ShortcutShape): KernelArg[] {
  return [ptr(a), ptr(b), { i32: s.n }, { i32: s.cIn }, { i32: s.h }, { i32: s.w }, {
    i32: s.cOut,
  }];
}

function oneThreadEach(length: number): LaunchShape {
  const blocks = Math.min(FLAT_MAX_BLOCKS, Math.ceil(length / FLAT_THREADS));
  return { grid: [blocks, 1, 1], block: [FLAT_THREADS, 1, 1] };
}

/**
 * Option-A shortcut forward: `y[:, pad + ci, i, j] = x[:, ci, 2i, 2j]`, `pad = (cOut − cIn)/2`,
 * zeros in the padded channels; y is [n, cOut, ceil(h/2), ceil(w/2)].
 *
 * @param l The device's kernel launcher.
 * @param x Input [n, cIn, h, w] (f32).
 * @param y Output (f32).
 * @param shape Batch, channels in and out, height and width.
 *
 * @example
 * ```ts
 * import { shortcutForward } from "./kernels.ts";
 * import type { KernelLauncher } from "./launch.ts";
 * const l: KernelLauncher = { launch: () => {} };
 * shortcutForward(l, 0x1000n, 0x2000n, { n: 128, cIn: 16, h: 32, w: 32, cOut: 32 });
 * ```
 */
export function shortcutForward(
  l: KernelLauncher,
  x: bigint,
  y: bigint,
  shape: ShortcutShape,
): void {
  const yLength = shape.n * shape.cOut * Math.ceil(shape.h / 2) * Math.ceil(shape.w / 2);
  if (yLength === 0) return;
  launch(l, "shortcut_forward", oneThreadEach(yLength), shortcutArgs(x, y, shape));
}

/**
 * Option-A shortcut backward: scatters dy back to the even positions of dx, zeros elsewhere.
 *
 * @param l The device's kernel launcher.
 * @param dy Upstream gradient [n, cOut, ceil(h/2), ceil(w/2)] (f32).
 * @param dx Output [n, cIn, h, w] (f32).
 * @param shape Batch, channels in and out, height and width.
 *
 * @example
 * ```ts
 * import { shortcutBackward } from "./kernels.ts";
 * import type { KernelLauncher } from "./launch.ts";
 * const l: KernelLauncher = { launch: () => {} };
 * shortcutBackward(l, 0x1000n, 0x2000n, { n: 128, cIn: 16, h: 32, w: 32, cOut: 32 });
 * ```
 */
export function shortcutBackward(
  l: KernelLauncher,
  dy: bigint,
  dx: bigint,
  shape: ShortcutShape,
): void {
  const xLength = shape.n * shape.cIn * shape.h * shape.w;
  if (xLength === 0) return;
  launch(l, "shortcut_backward", oneThreadEach(xLength), shortcutArgs(dy, dx, shape));
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
 *   n: 8, c: 4, scale: 1, suppress: 0x1000n, backgroundExempt: true, focalGamma: 0,
 *   focalAlpha: -1,
 * }); // "sigmoid_loss_suppress"
 * ```
 */
export function sigmoidKernelName(p: SigmoidLossKernelParams): string {
  const focal = p.focalGamma !== 0 || p.focalAlpha >= 0 ? "_focal" : "";
  // The keep mask only ever restores suppressed weights, so it matters only with `suppress`.
  const variant = p.suppress === undefined
    ? ""
    : p.keepMask !== undefined && p.imageOfRow !== undefined
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
 * }); // "softmax_loss_mask"
 * ```
 */
export function softmaxKernelName(p: SoftmaxLossKernelParams): string {
  const mask = p.suppress !== undefined && p.gammaThreshold > 0 ? "_mask" : "";
  const bias = p.logitBias !== undefined ? "_bias" : "";
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
 * @param p Sizes, scale and options, arrays as device pointers.
 *
 * @example
 * ```ts
 * import { sigmoidLoss } from "./kernels.ts";
 * import type { KernelLauncher } from "./launch.ts";
 * const l: KernelLauncher = { launch: () => {} };
 * sigmoidLoss(l, 0x1000n, 0x2000n, 0x3000n, 0x4000n, {
 *   n: 512, c: 1230, scale: 1 / 512, suppress: 0x5000n, backgroundExempt: true,
 *   focalGamma: 0, focalAlpha: -1,
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
  if (p.n === 0) return;
  launch(l, sigmoidKernelName(p), rowLaunchShape(p.n, p.c), [
    ptr(logits),
    ptr(labels),
    ptr(grad),
    ptr(rowLoss),
    { i32: p.n },
    { i32: p.c },
    { f32: p.scale },
    ptr(p.suppress),
    { i32: p.backgroundExempt ? 1 : 0 },
    ptr(p.classWeight),
    { f32: p.focalGamma },
    { f32: p.focalAlpha },
    ptr(p.imageOfRow),
    ptr(p.keepMask),
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
 * @param p Sizes, scale, mask and options, arrays as device pointers.
 *
 * @example
 * ```ts
 * import { softmaxLoss } from "./kernels.ts";
 * import type { KernelLauncher } from "./launch.ts";
 * const l: KernelLauncher = { launch: () => {} };
 * softmaxLoss(l, 0x1000n, 0x2000n, 0x3000n, 0x4000n, {
 *   n: 128, c: 100, scale: 1 / 128, suppress: 0x5000n, gammaThreshold: 15938355, seed: 7,
 *   counter: 0,
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
  if (p.n === 0) return;
  launch(l, softmaxKernelName(p), rowLaunchShape(p.n, p.c), [
    ptr(logits),
    ptr(labels),
    ptr(grad),
    ptr(rowLoss),
    { i32: p.n },
    { i32: p.c },
    { f32: p.scale },
    ptr(p.suppress),
    { u32: p.gammaThreshold },
    { u32: p.seed },
    { u32: p.counter },
    ptr(p.classWeight),
    ptr(p.logitBias),
  ]);
}

/**
 * Fused EQLv2 loss over logits [N, C] with i32 labels in 0..C−1, then its gradient statistics:
 * writes each row's unscaled weighted loss to `rowLoss`, `scale · ∂/∂logits` to `grad` and the
 * per-column positive and negative sums of `w·|σ(z) − y|` to `stats` [2·C]. Two launches: the
 * row-wise loss (as the sigmoid family) and a column-wise reduction (32 columns per block, its
 * order fixed, so the statistics are the same on every run).
 *
 * @param l The device's kernel launcher.
 * @param logits f32 [N·C].
 * @param labels i32 [N].
 * @param grad f32 [N·C] output.
 * @param rowLoss f32 [N] output.
 * @param stats f32 [2·C] output.
 * @param p Sizes, scale and the weight arrays as device pointers.
 *
 * @example
 * ```ts
 * import { eqlv2Loss } from "./kernels.ts";
 * import type { KernelLauncher } from "./launch.ts";
 * const l: KernelLauncher = { launch: () => {} };
 * eqlv2Loss(l, 0x1000n, 0x2000n, 0x3000n, 0x4000n, 0x5000n, {
 *   n: 512, c: 1231, scale: 1 / 512, posWeight: 0x6000n, negWeight: 0x7000n,
 * });
 * ```
 */
export function eqlv2Loss(
  l: KernelLauncher,
  logits: bigint,
  labels: bigint,
  grad: bigint,
  rowLoss: bigint,
  stats: bigint,
  p: Eqlv2LossKernelParams,
): void {
  if (p.n === 0) return;
  launch(l, "eqlv2_loss", rowLaunchShape(p.n, p.c), [
    ptr(logits),
    ptr(labels),
    ptr(grad),
    ptr(rowLoss),
    { i32: p.n },
    { i32: p.c },
    { f32: p.scale },
    ptr(p.posWeight),
    ptr(p.negWeight),
  ]);
  launch(l, "eqlv2_stats", { grid: [Math.ceil(p.c / 32), 1, 1], block: [32, 32, 1] }, [
    ptr(logits),
    ptr(labels),
    ptr(stats),
    { i32: p.n },
    { i32: p.c },
    ptr(p.posWeight),
    ptr(p.negWeight),
  ]);
}

/**
 * Fused Seesaw loss over logits [N, C + 2] with i32 labels in 0..C (C = background): writes each
 * row's unscaled loss (Seesaw cross-entropy on foreground rows plus the objectness pair's
 * cross-entropy) to `rowLoss` and `scale · ∂/∂logits` to `grad`. A row whose label lies outside
 * 0..C gets NaN loss and gradient.
 *
 * @param l The device's kernel launcher.
 * @param logits f32 [N·(C+2)].
 * @param labels i32 [N].
 * @param grad f32 [N·(C+2)] output.
 * @param rowLoss f32 [N] output.
 * @param p Sizes, scale, the log counts (device pointer) and p, q, eps.
 *
 * @example
 * ```ts
 * import { seesawLoss } from "./kernels.ts";
 * import type { KernelLauncher } from "./launch.ts";
 * const l: KernelLauncher = { launch: () => {} };
 * seesawLoss(l, 0x1000n, 0x2000n, 0x3000n, 0x4000n, {
 *   n: 512, c: 1232, scale: 1 / 512, logCount: 0x5000n, p: 0.8, q: 2, eps: 0.01,
 * });
 * ```
 */
export function seesawLoss(
  l: KernelLauncher,
  logits: bigint,
  labels: bigint,
  grad: bigint,
  rowLoss: bigint,
  p: SeesawLossKernelParams,
): void {
  if (p.n === 0) return;
  launch(l, "seesaw_loss", rowLaunchShape(p.n, p.c), [
    ptr(logits),
    ptr(labels),
    ptr(grad),
    ptr(rowLoss),
    { i32: p.n },
    { i32: p.c },
    { f32: p.scale },
    ptr(p.logCount),
    { f32: p.p },
    { f32: p.q },
    { f32: Math.log(p.eps) },
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
 * @param shape Rows, values per row, transition β and gradient scale.
 *
 * @example
 * ```ts
 * import { smoothL1Loss } from "./kernels.ts";
 * import type { KernelLauncher } from "./launch.ts";
 * const l: KernelLauncher = { launch: () => {} };
 * smoothL1Loss(l, 0x1000n, 0x2000n, 0x3000n, 0x4000n, 0x5000n,
 *   { n: 512, d: 4, beta: 1, scale: 1 / 512 });
 * ```
 */
export function smoothL1Loss(
  l: KernelLauncher,
  pred: bigint,
  target: bigint,
  rowWeight: bigint,
  grad: bigint,
  rowLoss: bigint,
  shape: SmoothL1Shape,
): void {
  if (shape.n === 0) return;
  launch(l, "smooth_l1_loss", warpRowsShape(shape.n), [
    ptr(pred),
    ptr(target),
    ptr(rowWeight),
    ptr(grad),
    ptr(rowLoss),
    { i32: shape.n },
    { i32: shape.d },
    { f32: shape.beta },
    { f32: shape.scale },
  ]);
}

/**
 * Fused SGD step over `args.length` elements with PyTorch semantics: `g = grad + wd·p`;
 * `buf = momentum·buf + g`; `g = nesterov ? g + momentum·buf : buf`; `p −= lr·g`.
 *
 * @param l The device's kernel launcher.
 * @param p Parameters (f32), updated in place.
 * @param g Gradient (f32).
 * @param buf Momentum buffer (f32), updated in place.
 * @param args Length, learning rate, momentum, weight decay, Nesterov.
 *
 * @example
 * ```ts
 * import { sgdUpdate } from "./kernels.ts";
 * import type { KernelLauncher } from "./launch.ts";
 * const l: KernelLauncher = { launch: () => {} };
 * sgdUpdate(l, 0x1000n, 0x2000n, 0x3000n, {
 *   length: 470004, lr: 0.1, momentum: 0.9, weightDecay: 2e-4, nesterov: false,
 * });
 * ```
 */
export function sgdUpdate(
  l: KernelLauncher,
  p: bigint,
  g: bigint,
  buf: bigint,
  args: SgdArgs,
): void {
  if (args.length === 0) return;
  launch(l, "sgd_update", flatLaunchShape(args.length), [
    ptr(p),
    ptr(g),
    ptr(buf),
    { i32: args.length },
    { f32: args.lr },
    { f32: args.momentum },
    { f32: args.weightDecay },
    { i32: args.nesterov ? 1 : 0 },
  ]);
}
