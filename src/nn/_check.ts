/**
 * Input validation and output-tensor reuse shared by the layers. Every layer checks the tensors it
 * is given (type, dtype, device, rank, channels) so that a mistake is reported where it happens,
 * with the layer's name, the expected and the actual value.
 *
 * @module
 */

import type { Device } from "../device/device.ts";
import { Tensor, zeros } from "../tensor.ts";

/** Formats a shape as `[a, b, c]`. */
function fmt(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

/**
 * Checks that `x` is a live f32 tensor on `device` with the given rank and, when asked, the given
 * extent in dimension 1 (channels or features).
 *
 * @param where The layer and argument, e.g. "Conv2d.forward: x".
 * @param x The value to check.
 * @param device The layer's device.
 * @param ranks Accepted ranks, with a description of the layout for the message.
 * @param channels Required size of dimension 1, if any.
 * @returns `x`, typed.
 * @throws {TypeError} When `x` is not an f32 tensor of `device`.
 * @throws {RangeError} When the rank, the channel count or the batch size is wrong.
 *
 * @example
 * ```ts
 * import { checkInput } from "./_check.ts";
 * import { cpuDevice } from "@eql/eql";
 * import { zeros } from "@eql/eql";
 * checkInput("ReLU.forward: x", zeros([2, 3]), cpuDevice(), { ranks: [2], layout: "[N, C]" });
 * ```
 */
export function checkInput(
  where: string,
  x: unknown,
  device: Device,
  ranks: { ranks: readonly number[]; layout: string },
  channels?: number,
): Tensor<"f32"> {
  if (!(x instanceof Tensor)) {
    throw new TypeError(`${where} must be a Tensor, got ${Object.prototype.toString.call(x)}`);
  }
  if (x.disposed) throw new TypeError(`${where} has been disposed`);
  if (x.dtype !== "f32") throw new TypeError(`${where} must be an f32 tensor, got ${x.dtype}`);
  if (x.device !== device) {
    throw new TypeError(
      `${where} must live on the layer's device (${device.kind}: ${device.description}), ` +
        `got a tensor on ${x.device.kind}: ${x.device.description}`,
    );
  }
  if (!ranks.ranks.includes(x.shape.length)) {
    throw new RangeError(
      `${where} must have shape ${ranks.layout} (rank ${ranks.ranks.join(" or ")}), got ${
        fmt(x.shape)
      }`,
    );
  }
  if (x.shape[0] < 1) {
    throw new RangeError(`${where} must hold at least one sample, got shape ${fmt(x.shape)}`);
  }
  if (channels !== undefined && x.shape[1] !== channels) {
    throw new RangeError(
      `${where} must have ${channels} channels in dimension 1, got ${x.shape[1]} (shape ${
        fmt(x.shape)
      })`,
    );
  }
  return x as Tensor<"f32">;
}

/**
 * Checks that the gradient handed to `backward` matches the output of the last forward.
 *
 * @param where The layer and argument, e.g. "Conv2d.backward: dy".
 * @param dy The gradient to check.
 * @param device The layer's device.
 * @param output The output of the last forward, or undefined when there was none.
 * @returns `dy`, typed.
 * @throws {Error} When no forward ran before.
 * @throws {TypeError} When `dy` is not an f32 tensor of `device`.
 * @throws {RangeError} When its shape differs from the forward output's.
 *
 * @example
 * ```ts
 * import { checkGradient } from "./_check.ts";
 * import { cpuDevice } from "@eql/eql";
 * import { zeros } from "@eql/eql";
 * const y = zeros([2, 3]);
 * checkGradient("ReLU.backward: dy", zeros([2, 3]), cpuDevice(), y);
 * ```
 */
export function checkGradient(
  where: string,
  dy: unknown,
  device: Device,
  output: Tensor<"f32"> | undefined,
): Tensor<"f32"> {
  if (output === undefined) {
    throw new Error(`${where.split(":")[0]} needs a training-mode forward before backward`);
  }
  const g = checkInput(where, dy, device, {
    ranks: [output.shape.length],
    layout: fmt(output.shape),
  });
  if (g.shape.some((d, i) => d !== output.shape[i])) {
    throw new RangeError(
      `${where} must have the forward output's shape ${fmt(output.shape)}, got ${fmt(g.shape)}`,
    );
  }
  return g;
}

/**
 * Returns `t` when it already has `shape`, otherwise disposes it and allocates zeros of `shape`
 * on `device`. Layers keep their outputs in such reused tensors.
 *
 * @param t The tensor held so far, if any.
 * @param shape The shape needed now.
 * @param device Where to allocate.
 * @param what The layer and output, for the message when the memory cannot be had.
 * @returns A tensor of `shape`.
 * @throws {RangeError} When the device cannot allocate it, naming `what` and the shape.
 *
 * @example
 * ```ts
 * import { reuse } from "./_check.ts";
 * import { cpuDevice } from "@eql/eql";
 * let y = reuse(undefined, [2, 3], cpuDevice(), "Example.forward: y");
 * y = reuse(y, [2, 3], cpuDevice(), "Example.forward: y"); // the same tensor
 * ```
 */
export function reuse(
  t: Tensor<"f32"> | undefined,
  shape: readonly number[],
  device: Device,
  what: string,
): Tensor<"f32"> {
  if (
    t !== undefined && !t.disposed && t.shape.length === shape.length &&
    t.shape.every((d, i) => d === shape[i])
  ) {
    return t;
  }
  t?.dispose();
  try {
    return zeros(shape, device);
  } catch (e) {
    throw new RangeError(`${what} [${shape.join(", ")}]: ${(e as Error).message}`, { cause: e });
  }
}
