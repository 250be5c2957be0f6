/**
 * The device contract: memory plus the small set of operations that the losses, layers and
 * optimisers need. The CPU device (`cpu.ts`) and the CUDA device (`cuda.ts`) implement it; nothing
 * above this floor asks which one it runs on.
 *
 * Every array is row-major. Every operation writes its outputs in place into buffers the caller
 * allocated on the same device; nothing here allocates on behalf of the caller except `alloc`.
 * Operations may run asynchronously (CUDA streams): `download` and `sync` are the only points where
 * the host waits.
 *
 * @module
 */

/** Element types a buffer can hold. */
export type DType = "f32" | "i32";

/** Host typed array for a dtype. */
export type HostArray<D extends DType = DType> = D extends "f32" ? Float32Array
  : D extends "i32" ? Int32Array
  : Float32Array | Int32Array;

/**
 * A block of device memory holding `length` elements of `dtype`. Each device subclasses it with
 * its own storage (a typed array on the CPU, a device pointer on CUDA).
 *
 * @example
 * ```ts
 * import { cpuDevice } from "./cpu.ts";
 * const buf = cpuDevice().alloc("f32", 4);
 * console.log(buf.length); // 4
 * ```
 */
export interface DeviceBuffer {
  /** The device that owns the memory. */
  readonly device: Device;
  /** Element type. */
  readonly dtype: DType;
  /** Number of elements. */
  readonly length: number;
  /** True once the memory has been returned to the device. */
  readonly freed: boolean;
}

/** Geometry of a 2-D convolution over NCHW input and KCRS (out, in, kh, kw) weights. */
export interface Conv2dShape {
  /** Batch size. */
  n: number;
  /** Input channels. */
  cIn: number;
  /** Input height. */
  h: number;
  /** Input width. */
  w: number;
  /** Output channels. */
  cOut: number;
  /** Kernel height. */
  kH: number;
  /** Kernel width. */
  kW: number;
  /** Vertical stride. */
  strideH: number;
  /** Horizontal stride. */
  strideW: number;
  /** Zero padding above and below. */
  padH: number;
  /** Zero padding left and right. */
  padW: number;
  /** Output height: `floor((h + 2·padH − kH) / strideH) + 1`. */
  outH: number;
  /** Output width: `floor((w + 2·padW − kW) / strideW) + 1`. */
  outW: number;
}

/**
 * Sizes and scalars of a GEMM, `C[m,n] = alpha · op(A) · op(B) + beta · C (+ bias[n])`, row-major:
 * `op(A)` is `A[m,k]` or, with `transA`, `A[k,m]ᵀ`; likewise `op(B)` is `B[k,n]` or `B[n,k]ᵀ`.
 */
export interface GemmShape {
  /** Whether A is stored transposed ([k, m]). */
  transA: boolean;
  /** Whether B is stored transposed ([n, k]). */
  transB: boolean;
  /** Rows of C. */
  m: number;
  /** Columns of C. */
  n: number;
  /** The inner dimension. */
  k: number;
  /** Factor of the product. */
  alpha: number;
  /** Factor of C's previous contents (0: C is only written). */
  beta: number;
}

/**
 * Geometry and settings of a batch norm over NCHW data (statistics per channel over N·H·W
 * values; biased batch variance, unbiased running variance), with the optional tail of a residual
 * block: `y = bn(x) (+ residual) (then max(·, 0) when relu)`.
 */
export interface BatchNormShape {
  /** Batch size. */
  n: number;
  /** Channels. */
  c: number;
  /** Spatial size H·W (1 for a batch-norm over [N, C] features). */
  hw: number;
  /** Added to the variance before the square root (> 0). */
  eps: number;
  /** Weight of the batch statistics in the running update, in [0, 1] (training forward). */
  momentum: number;
  /** Whether a ReLU follows the normalisation (and the residual add, when there is one). */
  relu: boolean;
}

/** The per-channel f32 buffers of a batch norm, each of length C. */
export interface BatchNormParams {
  /** Scale γ. */
  gamma: DeviceBuffer;
  /** Shift β. */
  beta: DeviceBuffer;
  /** Running mean (updated by the training forward, read by inference). */
  runningMean: DeviceBuffer;
  /** Running unbiased variance (likewise). */
  runningVar: DeviceBuffer;
  /** Batch mean, written by the training forward for the backward. */
  saveMean: DeviceBuffer;
  /** `1/sqrt(var + eps)` of the batch, written by the training forward for the backward. */
  saveInvStd: DeviceBuffer;
}

/** What the batch-norm backward writes (each overwritten). */
export interface BatchNormGrads {
  /** `∂L/∂x`, same size as x. */
  dx: DeviceBuffer;
  /** `∂L/∂γ`, length C. */
  dGamma: DeviceBuffer;
  /** `∂L/∂β`, length C. */
  dBeta: DeviceBuffer;
  /** `∂L/∂residual` (the ReLU-masked output gradient), when the forward had a residual. */
  dResidual?: DeviceBuffer;
}

/** Geometry of a global average pool over NCHW data: x is [n, c, hw], y is [n, c]. */
export interface PoolShape {
  /** Batch size. */
  n: number;
  /** Channels. */
  c: number;
  /** Spatial size H·W (≥ 1). */
  hw: number;
}

/**
 * Geometry of the option-A shortcut of the CIFAR ResNets: x is [n, cIn, h, w], y is
 * [n, cOut, ceil(h/2), ceil(w/2)], with `cOut ≥ cIn` and `cOut − cIn` even.
 */
export interface ShortcutShape {
  /** Batch size. */
  n: number;
  /** Input channels. */
  cIn: number;
  /** Input height. */
  h: number;
  /** Input width. */
  w: number;
  /** Output channels. */
  cOut: number;
}

/**
 * Sigmoid-family loss parameters (sigmoid CE, EQL, focal, class-balanced weights). Per-row losses
 * are written unscaled; the gradient is scaled by `scale` (1/N for a mean).
 *
 * The element weight is `w_ij = rowWeight_i · (1 − E_i · suppress_j · (1 − y_ij))`, with
 * `E_i = 1` for a foreground row (label < C) and, when `backgroundExempt` is false, for every row.
 * Where `keepMask` is given, `keepMask[imageOfRow_i · C + j] != 0` forces `w_ij = rowWeight_i`.
 *
 * The record is generic over how its arrays are held: device buffers at the device seam (the
 * default), host typed arrays where the losses build it (`SigmoidLossParams<Float32Array,
 * Int32Array>`), device pointers inside the CUDA device. The dtype of each array field is listed
 * in {@linkcode LOSS_ARRAY_DTYPES}, so a new option is one field here plus its kernels.
 */
export interface SigmoidLossParams<F = DeviceBuffer, I = DeviceBuffer> {
  /** Rows. */
  n: number;
  /** Classes (logit columns); label C means background. */
  c: number;
  /** Multiplier applied to the gradient (usually 1/N). */
  scale: number;
  /** Per-class suppression strength in [0, 1] (`T_λ(f_j)` or a decay curve), length C; absent: 0. */
  suppress?: F;
  /** When true (the paper's E(r)), background rows are never suppressed. */
  backgroundExempt: boolean;
  /** Per-class weight applied to every element of a row by the row's label (class-balanced), length C; background rows get 1. */
  classWeight?: F;
  /** Focal modulating exponent γ ≥ 0 (0 is plain cross-entropy). */
  focalGamma: number;
  /** Focal balance α in [0, 1], applied as α for targets and 1 − α otherwise; negative: off. */
  focalAlpha: number;
  /** i32 [N]: the image each row belongs to (with `keepMask`). */
  imageOfRow?: I;
  /** i32 [images·C]: categories never suppressed for an image's rows (LVIS positive ∪ negative sets). */
  keepMask?: I;
}

/**
 * Softmax-family loss parameters (softmax CE, softmax EQL, class weights, logit adjustment).
 * The ignored set of row i is every non-target class k with `suppress_k = 1` whose mask draw
 * `u(seed, counter, i, k) < γ` (per row × class draws, as in the authors' reference snippet).
 * Generic over how its arrays are held, as {@linkcode SigmoidLossParams}.
 */
export interface SoftmaxLossParams<F = DeviceBuffer> {
  /** Rows. */
  n: number;
  /** Classes. */
  c: number;
  /** Multiplier applied to the gradient (usually 1/N). */
  scale: number;
  /** Per-class 0/1 tail indicator `T_λ(f_k)`, length C; absent: nothing is masked. */
  suppress?: F;
  /** Integer threshold `floor(γ · 2^24)`: a draw `h >>> 8` below it masks the class. */
  gammaThreshold: number;
  /** Mask seed (u32). */
  seed: number;
  /** Mask call counter (u32). */
  counter: number;
  /** Per-class weight by the row's target class, length C. */
  classWeight?: F;
  /** Additive per-class logit offset (logit adjustment / balanced softmax), length C. */
  logitBias?: F;
}

/**
 * EQLv2 loss parameters (Tan et al., CVPR 2021): sigmoid cross-entropy over logits [N, C] with
 * labels in 0..C−1, the target of row i being the one-hot of its label over all C columns (EQLv2
 * puts its class-agnostic objectness column last, so a background row's label is C − 1). Element
 * (i, j) has the weight `w_ij = posWeight_j` where j is the label and `negWeight_j` elsewhere; the
 * row loss is `Σ_j w_ij·BCE(z_ij, y_ij)` (unscaled) and the gradient `scale·w_ij·(σ(z_ij) − y_ij)`.
 *
 * The op also writes the batch's gradient statistics of every column to its `gradStats` output
 * [2·C]: `gradStats[j] = Σ_i w_ij·|σ(z_ij) − y_ij|·y_ij` and
 * `gradStats[C + j] = Σ_i w_ij·|σ(z_ij) − y_ij|·(1 − y_ij)` (overwritten, not accumulated).
 * Generic over how its arrays are held, as {@linkcode SigmoidLossParams}.
 */
export interface Eqlv2LossParams<F = DeviceBuffer> {
  /** Rows. */
  n: number;
  /** Logit columns (EQLv2: C classes + the objectness column). */
  c: number;
  /** Multiplier applied to the gradient (usually 1/N). */
  scale: number;
  /** Per-column weight of the positive (target) element, length C, finite and ≥ 0. */
  posWeight: F;
  /** Per-column weight of the negative (non-target) elements, length C, finite and ≥ 0. */
  negWeight: F;
}

/**
 * Seesaw loss parameters (Wang et al., CVPR 2021, as mmdetection computes it) over logits
 * [N, C + 2] with labels in 0..C (C = background): the first C columns are class logits, the
 * last two an objectness pair (column C: foreground, column C + 1: background).
 *
 * A foreground row i (label `l < C`) gets a Seesaw cross-entropy over its class logits: every
 * non-target class j has its logit raised by `log(M_lj·K_lj)`, the mitigation
 * `M_lj = min(1, (N_j/N_l)^p)` from `logCount` (`p·(logCount_j − logCount_l)` clamped at 0 from
 * above) and the compensation `K_lj = max(1, (σ_j/max(σ_l, eps))^q)` from the softmax of the
 * row's class logits (treated as a constant: no gradient flows through either factor). Every row
 * gets a plain 2-way cross-entropy over the objectness pair, target column C for foreground rows
 * and C + 1 for background rows. The row loss is the sum of the two (unscaled); the gradient is
 * `scale` times its derivative (zero on the class columns of background rows).
 * Generic over how its arrays are held, as {@linkcode SigmoidLossParams}.
 */
export interface SeesawLossParams<F = DeviceBuffer> {
  /** Rows. */
  n: number;
  /** Logit columns: C classes + the objectness pair (so C = c − 2 ≥ 1). */
  c: number;
  /** Multiplier applied to the gradient (usually 1/N). */
  scale: number;
  /** `log(max(N_j, 1))` of the cumulative sample count of each class, length C = c − 2. */
  logCount: F;
  /** Mitigation exponent p ≥ 0 (0: off). */
  p: number;
  /** Compensation exponent q ≥ 0 (0: off). */
  q: number;
  /** Lower bound of the target's probability in the compensation ratio, in (0, 1]. */
  eps: number;
}

/**
 * The element type of every array field of the loss records, so that devices and the validation
 * module can convert and check them without naming each field.
 *
 * @example
 * ```ts
 * import { LOSS_ARRAY_DTYPES } from "./device.ts";
 * LOSS_ARRAY_DTYPES.keepMask; // "i32"
 * ```
 */
export const LOSS_ARRAY_DTYPES: Readonly<Record<string, DType>> = Object.freeze({
  suppress: "f32",
  classWeight: "f32",
  logitBias: "f32",
  imageOfRow: "i32",
  keepMask: "i32",
  posWeight: "f32",
  negWeight: "f32",
  logCount: "f32",
});

/**
 * A loss record with every array field converted by `convert` (fields that are absent stay
 * absent; every other field is copied). Devices use it to turn buffers into their own storage
 * and the losses to turn host arrays into buffers, so no code lists the fields one by one.
 *
 * @param params A sigmoid or softmax loss record.
 * @param convert Turns one array field's value into its new form.
 * @returns The converted record; the caller names its type.
 *
 * @example
 * ```ts
 * import { mapLossArrays, type SoftmaxLossParams } from "./device.ts";
 * const host: SoftmaxLossParams<Float32Array> = {
 *   n: 1, c: 2, scale: 1, gammaThreshold: 0, seed: 0, counter: 0,
 *   classWeight: new Float32Array([1, 2]),
 * };
 * const lengths = mapLossArrays<SoftmaxLossParams<number>>(host, (a) => (a as Float32Array).length);
 * lengths.classWeight; // 2
 * ```
 */
export function mapLossArrays<R>(
  params: object,
  convert: (value: unknown, field: string, dtype: DType) => unknown,
): R {
  const out: Record<string, unknown> = { ...params };
  for (const [field, dtype] of Object.entries(LOSS_ARRAY_DTYPES)) {
    const v = out[field];
    if (v !== undefined) out[field] = convert(v, field, dtype);
  }
  return out as R;
}

/**
 * Output extent of a convolution along one axis: `floor((size + 2·pad − kernel) / stride) + 1`
 * (0 or less when the kernel does not fit).
 *
 * @param size Input extent.
 * @param kernel Kernel extent.
 * @param stride Stride.
 * @param pad Zero padding on each side.
 * @returns The output extent.
 *
 * @example
 * ```ts
 * import { convOutputSize } from "./device.ts";
 * convOutputSize(32, 3, 2, 1); // 16
 * ```
 */
export function convOutputSize(size: number, kernel: number, stride: number, pad: number): number {
  return Math.floor((size + 2 * pad - kernel) / stride) + 1;
}

/** Sizes and scalars of the smooth-L1 (Huber) loss over [n, d] predictions and targets. */
export interface SmoothL1Shape {
  /** Rows. */
  n: number;
  /** Values per row. */
  d: number;
  /** Transition β ≥ 0 between the quadratic and the linear part (0: L1). */
  beta: number;
  /** Multiplier applied to the gradient. */
  scale: number;
}

/** One fused SGD step over `length` elements (PyTorch semantics). */
export interface SgdArgs {
  /** Elements of the parameter, gradient and momentum buffer. */
  length: number;
  /** Learning rate. */
  lr: number;
  /** Momentum factor (0 disables the buffer's effect). */
  momentum: number;
  /** L2 penalty added to the gradient. */
  weightDecay: number;
  /** Nesterov momentum. */
  nesterov: boolean;
}

/**
 * Memory and operations of one compute device.
 *
 * @example
 * ```ts
 * import { cpuDevice } from "./cpu.ts";
 * const dev = cpuDevice();
 * const a = dev.alloc("f32", 4);
 * dev.upload(a, new Float32Array([1, -2, 3, -4]));
 * dev.reluForward(a, a, 4);
 * const out = new Float32Array(4);
 * dev.download(a, out); // [1, 0, 3, 0]
 * dev.free(a);
 * ```
 */
export interface Device {
  /** `"cpu"` or `"cuda"`. */
  readonly kind: "cpu" | "cuda";
  /** Human-readable description (e.g. the GPU's name or the GEMM backend). */
  readonly description: string;
  /**
   * Whether a buffer is ordinary JavaScript memory that the garbage collector reclaims once it
   * is unreachable (the CPU device's typed arrays). Tensors of such a device need no finalizer;
   * the others register one as a safety net for tensors that are never disposed.
   */
  readonly collectsGarbage: boolean;

  // ── memory ────────────────────────────────────────────────────────────────────────────────
  /** Allocates `length` zero-initialised elements. */
  alloc(dtype: DType, length: number): DeviceBuffer;
  /** Returns memory to the device; freeing twice is an error. */
  free(buffer: DeviceBuffer): void;
  /** Copies host data into the buffer starting at element `offset` (default 0). */
  upload(buffer: DeviceBuffer, data: Float32Array | Int32Array, offset?: number): void;
  /** Copies `out.length` elements from element `offset` (default 0) of the buffer to the host; waits for pending work. */
  download(buffer: DeviceBuffer, out: Float32Array | Int32Array, offset?: number): void;
  /** Copies `length` elements from `src[srcOffset..]` to `dst[dstOffset..]` (same dtype). */
  copy(
    dst: DeviceBuffer,
    src: DeviceBuffer,
    length: number,
    dstOffset?: number,
    srcOffset?: number,
  ): void;
  /** Sets `length` elements from `offset` to `value`. */
  fill(buffer: DeviceBuffer, value: number, length: number, offset?: number): void;
  /** Waits until every queued operation has finished. */
  sync(): void;
  /** Releases everything the device holds (handles, caches, modules). */
  dispose(): void;

  // ── dense algebra ─────────────────────────────────────────────────────────────────────────
  /** `C = alpha · op(A) · op(B) + beta · C (+ bias[n] broadcast over rows)`; see {@linkcode GemmShape}. */
  gemm(
    a: DeviceBuffer,
    b: DeviceBuffer,
    c: DeviceBuffer,
    shape: GemmShape,
    bias?: DeviceBuffer,
  ): void;

  // ── convolution (cross-correlation, no bias) ──────────────────────────────────────────────
  /** `y[n,cOut,outH,outW] = conv(x[n,cIn,h,w], w[cOut,cIn,kH,kW])`. */
  conv2dForward(x: DeviceBuffer, w: DeviceBuffer, y: DeviceBuffer, shape: Conv2dShape): void;
  /** `dx = ∂L/∂x` from `dy` and the weights (overwrites dx). */
  conv2dBackwardData(w: DeviceBuffer, dy: DeviceBuffer, dx: DeviceBuffer, shape: Conv2dShape): void;
  /** `dw = ∂L/∂w` from `x` and `dy` (overwrites dw). */
  conv2dBackwardFilter(
    x: DeviceBuffer,
    dy: DeviceBuffer,
    dw: DeviceBuffer,
    shape: Conv2dShape,
  ): void;

  // ── batch normalisation, with the residual block's tail ──────────────────────────────────
  /**
   * Training forward: normalises with the batch statistics, writes `saveMean` and
   * `saveInvStd = 1/sqrt(var + eps)`, updates the running statistics with
   * `running = (1 − momentum)·running + momentum·batch` (running variance unbiased), then adds
   * `residual` when given and applies the ReLU when `shape.relu`.
   */
  batchNormForwardTraining(
    x: DeviceBuffer,
    y: DeviceBuffer,
    params: BatchNormParams,
    shape: BatchNormShape,
    residual?: DeviceBuffer,
  ): void;
  /** Inference forward with the running statistics, with the same tail. */
  batchNormForwardInference(
    x: DeviceBuffer,
    y: DeviceBuffer,
    params: BatchNormParams,
    shape: BatchNormShape,
    residual?: DeviceBuffer,
  ): void;
  /**
   * Backward of the training forward: `g = dy · (y > 0)` when `shape.relu` (from the forward's
   * output `y`), else `g = dy`; `dResidual = g` when asked for; then the batch-norm backward of
   * `g` into dx, dGamma and dBeta (all overwritten).
   */
  batchNormBackward(
    x: DeviceBuffer,
    y: DeviceBuffer,
    dy: DeviceBuffer,
    grads: BatchNormGrads,
    params: BatchNormParams,
    shape: BatchNormShape,
  ): void;

  // ── element-wise and small ops ────────────────────────────────────────────────────────────
  /** `y = max(x, 0)` over `length` elements (in place allowed). */
  reluForward(x: DeviceBuffer, y: DeviceBuffer, length: number): void;
  /** `dx = dy · (y > 0)` from the forward output `y` (in place on dy allowed). */
  reluBackward(y: DeviceBuffer, dy: DeviceBuffer, dx: DeviceBuffer, length: number): void;
  /** `out = a + b` over `length` elements (out may alias a or b). */
  add(a: DeviceBuffer, b: DeviceBuffer, out: DeviceBuffer, length: number): void;
  /** `y[n,c] = mean over hw of x[n,c,hw]`. */
  globalAvgPoolForward(x: DeviceBuffer, y: DeviceBuffer, shape: PoolShape): void;
  /** `dx[n,c,hw] = dy[n,c] / hw`. */
  globalAvgPoolBackward(dy: DeviceBuffer, dx: DeviceBuffer, shape: PoolShape): void;
  /**
   * Option-A shortcut of the CIFAR ResNets: `y[:, pad + ci, i, j] = x[:, ci, 2i, 2j]` with
   * `pad = (cOut − cIn) / 2` and zeros in the padded channels.
   */
  shortcutForward(x: DeviceBuffer, y: DeviceBuffer, shape: ShortcutShape): void;
  /** Backward of `shortcutForward`: scatters dy back to the even positions of dx, zeros elsewhere. */
  shortcutBackward(dy: DeviceBuffer, dx: DeviceBuffer, shape: ShortcutShape): void;

  // ── fused losses: logits in, per-row loss and gradient out, one pass ────────────────────
  // A row whose logits include NaN or ±Inf (masked or ignored classes included) gets a NaN row
  // loss, so the caller can report non-finite logits without scanning them on the host.
  /** Sigmoid family over logits [N, C] with i32 labels in 0..C (C = background). */
  sigmoidLoss(
    logits: DeviceBuffer,
    labels: DeviceBuffer,
    grad: DeviceBuffer,
    rowLoss: DeviceBuffer,
    params: SigmoidLossParams,
  ): void;
  /** Softmax family over logits [N, C] with i32 labels in 0..C−1. */
  softmaxLoss(
    logits: DeviceBuffer,
    labels: DeviceBuffer,
    grad: DeviceBuffer,
    rowLoss: DeviceBuffer,
    params: SoftmaxLossParams,
  ): void;
  /**
   * EQLv2 over logits [N, C] with i32 labels in 0..C−1 (see {@linkcode Eqlv2LossParams}); also
   * overwrites `gradStats` [2·C] with the batch's weighted positive and negative gradient sums
   * per column.
   */
  eqlv2Loss(
    logits: DeviceBuffer,
    labels: DeviceBuffer,
    grad: DeviceBuffer,
    rowLoss: DeviceBuffer,
    gradStats: DeviceBuffer,
    params: Eqlv2LossParams,
  ): void;
  /** Seesaw over logits [N, C + 2] with i32 labels in 0..C (see {@linkcode SeesawLossParams}). */
  seesawLoss(
    logits: DeviceBuffer,
    labels: DeviceBuffer,
    grad: DeviceBuffer,
    rowLoss: DeviceBuffer,
    params: SeesawLossParams,
  ): void;
  /**
   * Smooth-L1 (Huber with transition `beta`) over [N, D] predictions and targets, each row
   * weighted by `rowWeight[N]` (0 for rows that carry no box loss). Writes the per-row weighted
   * sum to `rowLoss` and `scale · ∂/∂pred` to `grad`.
   */
  smoothL1Loss(
    pred: DeviceBuffer,
    target: DeviceBuffer,
    rowWeight: DeviceBuffer,
    grad: DeviceBuffer,
    rowLoss: DeviceBuffer,
    shape: SmoothL1Shape,
  ): void;

  // ── optimisation ─────────────────────────────────────────────────────────────────────────
  /**
   * Fused SGD step, PyTorch semantics: `g = grad + wd·p`; `buf = momentum·buf + g`;
   * `g = nesterov ? g + momentum·buf : buf`; `p −= lr·g`.
   */
  sgdUpdate(
    param: DeviceBuffer,
    grad: DeviceBuffer,
    momentumBuf: DeviceBuffer,
    args: SgdArgs,
  ): void;
}
