/**
 * `ReLU`: `y = max(x, 0)` element-wise, any shape.
 *
 * Kept for backward: the output `y` (owned by the layer), since `∂y/∂x = [y > 0]`.
 *
 * @module
 */

import type { Device } from "../device/device.ts";
import { cpuDevice } from "../device/cpu.ts";
import type { Tensor } from "../tensor.ts";
import type { Layer, Parameter, StateTensor } from "./layer.ts";
import { checkGradient, checkInput, reuse } from "./_check.ts";

/**
 * Rectified linear unit.
 *
 * @example
 * ```ts
 * import { ReLU } from "@eql/eql";
 * import { tensor } from "@eql/eql";
 * new ReLU().forward(tensor([-1, 2], [1, 2]), true).toArray(); // Float32Array [0, 2]
 * ```
 */
export class ReLU implements Layer {
  /** The device the layer's tensors live on. */
  readonly device: Device;
  #y?: Tensor<"f32">;
  #dx?: Tensor<"f32">;

  /**
   * Creates the layer.
   *
   * @param device Where the outputs live (default: the CPU device).
   */
  constructor(device: Device = cpuDevice()) {
    this.device = device;
  }

  /**
   * Runs the forward pass.
   *
   * @param x Input of any rank ≥ 1 with at least one sample.
   * @param _training Unused.
   * @returns `max(x, 0)`, owned by the layer.
   */
  forward(x: Tensor<"f32">, _training: boolean): Tensor<"f32"> {
    checkInput("ReLU.forward: x", x, this.device, {
      ranks: [1, 2, 3, 4, 5],
      layout: "[N, ...]",
    });
    this.#y = reuse(this.#y, x.shape, this.device, "ReLU.forward: y");
    this.device.reluForward(x.buffer, this.#y.buffer, x.size);
    return this.#y;
  }

  /**
   * Runs the backward pass of the last forward.
   *
   * @param dy Gradient with respect to the last output.
   * @returns `dy · [y > 0]`, owned by the layer.
   */
  backward(dy: Tensor<"f32">): Tensor<"f32"> {
    const y = this.#y;
    checkGradient("ReLU.backward: dy", dy, this.device, y);
    this.#dx = reuse(this.#dx, dy.shape, this.device, "ReLU.backward: dx");
    this.device.reluBackward(y!.buffer, dy.buffer, this.#dx.buffer, dy.size);
    return this.#dx;
  }

  /**
   * The trainable parameters.
   *
   * @returns None.
   */
  parameters(): Parameter[] {
    return [];
  }

  /**
   * The non-trainable state tensors saved in checkpoints.
   *
   * @returns None.
   */
  stateTensors(): StateTensor[] {
    return [];
  }

  /** Frees the owned outputs. */
  dispose(): void {
    this.#y?.dispose();
    this.#dx?.dispose();
  }
}
