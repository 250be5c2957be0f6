/**
 * Running one fused loss op on the logits' device: the labels and per-class options are uploaded
 * to temporary buffers, the op writes the gradient and the per-row losses, the row losses come
 * back to the host and are summed in float64. Every temporary is freed whatever happens; the
 * gradient is freed too when the call fails (unless the caller owns it, see
 * {@linkcode GradientOutput}). A non-finite row loss is reported with the first bad row and what
 * is wrong with its logits.
 *
 * @module
 */

import {
  type Device,
  type DeviceBuffer,
  type DType,
  mapLossArrays,
  type SigmoidLossParams,
  type SoftmaxLossParams,
} from "../device/device.ts";
import { Tensor } from "../tensor.ts";
import { type CheckedLabels, describe } from "./validate.ts";

/**
 * What every loss returns: the mean loss and its gradient with respect to the logits. The result
 * is disposable: `using r = loss(...)` frees a gradient the loss allocated when `r` goes out of
 * scope, which keeps the memory of a training loop flat without waiting for the garbage
 * collector (whose safety net only runs between turns of the event loop).
 *
 * @example
 * ```ts
 * import { softmaxCrossEntropy, type LossResult } from "@eql/eql";
 * import { tensor } from "@eql/eql";
 * using logits = tensor([0, 0], [1, 2]);
 * using r: LossResult = softmaxCrossEntropy(logits, new Int32Array([1]));
 * r.loss; // log 2
 * r.grad.toArray(); // [0.5, −0.5]
 * ```
 */
export interface LossResult {
  /** The loss: the sum of the row losses divided by the number of rows N. */
  loss: number;
  /**
   * `∂loss/∂logits`, on the logits' device with the logits' shape. The caller owns it and
   * disposes it when done (or disposes the result, or holds it with `using`).
   */
  grad: Tensor<"f32">;
  /** Frees `grad` unless it is the caller's own `gradInto` tensor. Safe to call more than once. */
  [Symbol.dispose](): void;
}

/**
 * The option every loss shares: a caller-owned tensor to write the gradient into, so a training
 * loop can reuse one gradient buffer instead of allocating one per step.
 *
 * @example
 * ```ts
 * import { sigmoidCrossEntropy } from "@eql/eql";
 * import { tensor, zeros } from "@eql/eql";
 * using logits = tensor([0, 0, 0, 0], [2, 2]);
 * using grad = zeros([2, 2]);
 * for (let step = 0; step < 3; step++) {
 *   const r = sigmoidCrossEntropy(logits, new Int32Array([0, 2]), { gradInto: grad });
 *   r.grad === grad; // true: nothing new was allocated
 * }
 * ```
 */
export interface GradientOutput {
  /**
   * Where to write `∂loss/∂logits`: a live f32 tensor on the logits' device with the logits'
   * shape, not the logits themselves. The result's `grad` is then this tensor, and disposing the
   * result leaves it alone.
   */
  gradInto?: Tensor<"f32">;
}

/** Checks a caller's `gradInto` against the input the gradient is taken with respect to. */
function checkGradInto(fn: string, into: unknown, input: Tensor, inputName: string): Tensor<"f32"> {
  const want = `a live f32 tensor of shape [${input.shape.join(", ")}] on the ${inputName}' device`;
  if (!(into instanceof Tensor)) {
    throw new TypeError(`${fn}: gradInto must be ${want}, got ${describe(into)}`);
  }
  if (into.disposed) throw new TypeError(`${fn}: gradInto must be ${want}, got a disposed tensor`);
  if (into.dtype !== "f32") {
    throw new TypeError(`${fn}: gradInto must be ${want}, got dtype ${into.dtype}`);
  }
  if (into.device !== input.device) {
    throw new TypeError(
      `${fn}: gradInto must be ${want}, got one on the ${into.device.kind} device`,
    );
  }
  if (
    into.shape.length !== input.shape.length || into.shape.some((d, i) => d !== input.shape[i])
  ) {
    throw new RangeError(`${fn}: gradInto must be ${want}, got shape [${into.shape.join(", ")}]`);
  }
  if (into.buffer === input.buffer) {
    throw new RangeError(`${fn}: gradInto must not be the ${inputName} tensor itself`);
  }
  return into as Tensor<"f32">;
}

/**
 * A loss result around `grad`: disposing it frees the gradient when the loss allocated it.
 *
 * @param loss The mean loss.
 * @param grad The gradient.
 * @param owned Whether the loss allocated `grad` (and so the result may free it).
 * @returns The result.
 */
export function lossResult(loss: number, grad: Tensor<"f32">, owned = true): LossResult {
  return {
    loss,
    grad,
    [Symbol.dispose](): void {
      if (owned) grad.dispose();
    },
  };
}

/**
 * Sigmoid-family options in host form: the device record without the sizes and the scale, its
 * arrays held as host typed arrays. {@linkcode runSigmoidLoss} uploads every array field to a
 * temporary buffer, so a new option of the record needs no edit here.
 */
export type SigmoidInputs = Omit<SigmoidLossParams<Float32Array, Int32Array>, "n" | "c" | "scale">;

/** Softmax-family options in host form, as {@linkcode SigmoidInputs}. */
export type SoftmaxInputs = Omit<SoftmaxLossParams<Float32Array>, "n" | "c" | "scale">;

/** Temporary device buffers of one call, all freed together. */
export class Temporaries {
  #device: Device;
  #buffers: DeviceBuffer[] = [];

  /** Collects buffers of `device`. */
  constructor(device: Device) {
    this.#device = device;
  }

  /** Allocates a buffer that `free` returns. */
  alloc(dtype: "f32" | "i32", length: number): DeviceBuffer {
    const b = this.#device.alloc(dtype, length);
    this.#buffers.push(b);
    return b;
  }

  /** Allocates a buffer of `dtype` (default: the array's own) holding a copy of `data`. */
  upload(data: Float32Array | Int32Array, dtype?: DType): DeviceBuffer {
    const b = this.alloc(dtype ?? (data instanceof Float32Array ? "f32" : "i32"), data.length);
    this.#device.upload(b, data);
    return b;
  }

  /**
   * A loss record with every host array uploaded to a temporary buffer of the field's dtype.
   *
   * @param host The record in host form.
   * @returns The record the device takes.
   */
  lossArrays<R>(host: object): R {
    return mapLossArrays<R>(
      host,
      (value, _field, dtype) => this.upload(value as Float32Array | Int32Array, dtype),
    );
  }

  /** Frees every buffer allocated so far. */
  free(): void {
    for (const b of this.#buffers) if (!b.freed) this.#device.free(b);
    this.#buffers = [];
  }
}

/** The labels on `device`: the given tensor's own buffer when it lives there, else a copy. */
export function labelBuffer(
  labels: CheckedLabels,
  device: Device,
  temps: Temporaries,
): DeviceBuffer {
  if (labels.tensor !== undefined && labels.tensor.device === device) return labels.tensor.buffer;
  return temps.upload(labels.host);
}

/** Names what is wrong with a row whose loss came out non-finite. */
function badRow(
  fn: string,
  device: Device,
  input: DeviceBuffer,
  what: FusedReport,
  row: number,
  c: number,
  value: number,
): RangeError {
  const values = new Float32Array(c);
  device.download(input, values, row * c);
  let count = 0, first = -1;
  for (let j = 0; j < c; j++) {
    if (!Number.isFinite(values[j])) {
      count++;
      if (first < 0) first = j;
    }
  }
  if (first >= 0) {
    return new RangeError(
      `${fn}: ${what.input} must be finite, got ${
        values[first]
      } at row ${row}, column ${first} (${count} non-finite value${
        count === 1 ? "" : "s"
      } in that row)`,
    );
  }
  return new RangeError(
    `${fn}: the loss of row ${row} is ${value} although its ${what.input} are finite; ${what.hint}`,
  );
}

/** The host copy of the row losses, kept from call to call (a new typed array costs microseconds). */
let rowScratch = new Float32Array(0);

/** Downloads the row losses, reports the first non-finite one, returns their mean. */
function meanRowLoss(
  fn: string,
  device: Device,
  rowLoss: DeviceBuffer,
  input: DeviceBuffer,
  what: FusedReport,
  n: number,
  c: number,
  divisor: number,
): number {
  if (rowScratch.length !== n) rowScratch = new Float32Array(n);
  const rows = rowScratch;
  device.download(rowLoss, rows);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const v = rows[i];
    if (!Number.isFinite(v)) throw badRow(fn, device, input, what, i, c, v);
    sum += v;
  }
  return sum / divisor;
}

/** How a non-finite row loss is reported. */
export interface FusedReport {
  /** Name of the [N, C] input whose values are inspected ("logits", "pred"). */
  input: string;
  /** What else can make a row loss non-finite when the input row is finite. */
  hint: string;
}

const LOGITS: FusedReport = {
  input: "logits",
  hint: "the row loss overflows float32 (check the logits' scale, class weights and logit offsets)",
};

/**
 * Runs one fused op over a rank-2 input: allocates the gradient (or takes the caller's
 * `gradInto`), lets `op` write it and return the per-row loss buffer (allocated from `temps`),
 * and returns the row losses' sum divided by `divisor`. Temporaries are always freed; a gradient
 * the call allocated is freed when anything fails.
 *
 * @param fn Loss name for messages.
 * @param input Validated [N, C] f32 tensor the gradient is taken with respect to.
 * @param divisor What the summed row losses are divided by.
 * @param what How to report non-finite rows.
 * @param op Writes the gradient and the row losses.
 * @param gradInto The caller's gradient tensor, when given (validated here).
 * @returns The loss and the gradient.
 */
export function runFused(
  fn: string,
  input: Tensor,
  divisor: number,
  what: FusedReport,
  op: (device: Device, temps: Temporaries, grad: DeviceBuffer) => DeviceBuffer,
  gradInto?: Tensor<"f32">,
): LossResult {
  const device = input.device;
  const [n, c] = input.shape;
  const owned = gradInto === undefined;
  const grad = owned
    ? new Tensor<"f32">(device.alloc("f32", n * c), [n, c])
    : checkGradInto(fn, gradInto, input, what.input);
  const temps = new Temporaries(device);
  try {
    const rowLoss = op(device, temps, grad.buffer);
    const loss = meanRowLoss(fn, device, rowLoss, input.buffer, what, n, c, divisor);
    return lossResult(loss, grad, owned);
  } catch (e) {
    if (owned) grad.dispose();
    throw e;
  } finally {
    temps.free();
  }
}

/**
 * Runs the fused sigmoid-family op on validated inputs.
 *
 * @param fn Loss name for messages.
 * @param logits Validated [N, C] f32 logits.
 * @param labels Validated labels in 0..C.
 * @param inputs Host-side options.
 * @param gradInto The caller's gradient tensor, when given.
 * @returns The mean loss and the gradient.
 */
export function runSigmoidLoss(
  fn: string,
  logits: Tensor,
  labels: CheckedLabels,
  inputs: SigmoidInputs,
  gradInto?: Tensor<"f32">,
): LossResult {
  const [n, c] = logits.shape;
  return runFused(fn, logits, n, LOGITS, (device, temps, grad) => {
    const labelBuf = labelBuffer(labels, device, temps);
    const rowLoss = temps.alloc("f32", n);
    const params = temps.lossArrays<SigmoidLossParams>({ ...inputs, n, c, scale: 1 / n });
    device.sigmoidLoss(logits.buffer, labelBuf, grad, rowLoss, params);
    return rowLoss;
  }, gradInto);
}

/**
 * Runs the fused softmax-family op on validated inputs.
 *
 * @param fn Loss name for messages.
 * @param logits Validated [N, C] f32 logits.
 * @param labels Validated labels in 0..C−1.
 * @param inputs Host-side options.
 * @param gradInto The caller's gradient tensor, when given.
 * @returns The mean loss and the gradient.
 */
export function runSoftmaxLoss(
  fn: string,
  logits: Tensor,
  labels: CheckedLabels,
  inputs: SoftmaxInputs,
  gradInto?: Tensor<"f32">,
): LossResult {
  const [n, c] = logits.shape;
  return runFused(fn, logits, n, LOGITS, (device, temps, grad) => {
    const labelBuf = labelBuffer(labels, device, temps);
    const rowLoss = temps.alloc("f32", n);
    const params = temps.lossArrays<SoftmaxLossParams>({ ...inputs, n, c, scale: 1 / n });
    device.softmaxLoss(logits.buffer, labelBuf, grad, rowLoss, params);
    return rowLoss;
  }, gradInto);
}
