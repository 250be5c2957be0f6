/**
 * `GlobalAvgPool`: `y[n, c] = mean over (h, w) of x[n, c, h, w]`, turning `[N, C, H, W]` into
 * `[N, C]` (PyTorch's `F.avg_pool2d(x, x.size()[3])` followed by a flatten, as in the CIFAR
 * ResNets).
 *
 * Kept for backward: only the input shape; `∂L/∂x[n, c, h, w] = ∂L/∂y[n, c] / (H·W)`.
 *
 * @module
 */

import type { Device } from "../device/device.ts";
import { cpuDevice } from "../device/cpu.ts";
import type { Tensor } from "../tensor.ts";
import type { Layer, Parameter, StateTensor } from "./layer.ts";
import { checkGradient, checkInput, reuse } from "./_check.ts";

/**
 * Global average pooling to one value per channel.
 *
 * @example
 * ```ts
 * import { GlobalAvgPool } from "@eql/eql";
 * import { tensor } from "@eql/eql";
 * new GlobalAvgPool().forward(tensor([1, 2, 3, 4], [1, 1, 2, 2]), false).toArray(); // [2.5]
 * ```
 */
export class GlobalAvgPool implements Layer {
  /** The device the layer's tensors live on. */
  readonly device: Device;
  #inShape?: readonly number[];
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
   * @param x Input `[N, C, H, W]`.
   * @param _training Unused.
   * @returns The channel means `[N, C]`, owned by the layer.
   */
  forward(x: Tensor<"f32">, _training: boolean): Tensor<"f32"> {
    checkInput("GlobalAvgPool.forward: x", x, this.device, {
      ranks: [4],
      layout: "[N, C, H, W]",
    });
    const [n, c, h, w] = x.shape;
    if (h * w === 0) {
      throw new RangeError(`GlobalAvgPool.forward: x must have H·W > 0, got ${h}×${w}`);
    }
    this.#y = reuse(this.#y, [n, c], this.device, "GlobalAvgPool.forward: y");
    this.device.globalAvgPoolForward(x.buffer, this.#y.buffer, { n, c, hw: h * w });
    this.#inShape = x.shape;
    return this.#y;
  }

  /**
   * Runs the backward pass of the last forward.
   *
   * @param dy Gradient `[N, C]` with respect to the last output.
   * @returns `∂L/∂x` `[N, C, H, W]`, owned by the layer.
   */
  backward(dy: Tensor<"f32">): Tensor<"f32"> {
    checkGradient("GlobalAvgPool.backward: dy", dy, this.device, this.#y);
    const [n, c, h, w] = this.#inShape!;
    this.#dx = reuse(this.#dx, this.#inShape!, this.device, "GlobalAvgPool.backward: dx");
    this.device.globalAvgPoolBackward(dy.buffer, this.#dx.buffer, { n, c, hw: h * w });
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
