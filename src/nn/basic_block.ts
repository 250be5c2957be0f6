/**
 * `BasicBlock`: the residual block of the CIFAR ResNets (He et al. 2016, §4.2),
 * `out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))` with 3×3 convolutions, the first
 * one strided.
 *
 * The shortcut is the identity when the block keeps its shape, and otherwise "option A": a
 * stride-2 subsample whose channels are zero-padded equally on both sides
 * (`y[:, pad + c, i, j] = x[:, c, 2i, 2j]`, `pad = (planes − inPlanes) / 2`), which adds no
 * parameter.
 *
 * Each batch norm carries its ReLU (`relu: true`), and the second one also takes the shortcut as
 * its residual, so on the CPU device the block's tail `relu(bn2(·) + shortcut)` is one fused pass.
 *
 * Kept for backward: what the child layers keep and the input shape.
 *
 * @module
 */

import type { Device, ShortcutShape } from "../device/device.ts";
import { cpuDevice } from "../device/cpu.ts";
import type { Tensor } from "../tensor.ts";
import type { Layer, Parameter, StateTensor } from "./layer.ts";
import {
  type Counter,
  type CountingLayer,
  prefixCounters,
  prefixParameters,
  prefixStates,
} from "./named.ts";
import { Conv2d } from "./conv2d.ts";
import { BatchNorm2d } from "./batchnorm.ts";
import { checkGradient, checkInput, reuse } from "./_check.ts";
import { Random } from "../random.ts";

/** Options of {@linkcode BasicBlock}. */
export interface BasicBlockOptions {
  /** Stride of the first convolution: 1, or 2 to halve the resolution (default 1). */
  stride?: number;
  /** Where the tensors live (default: the CPU device). */
  device?: Device;
  /** Random source for the convolution weights (default: a source seeded with `seed`). */
  random?: Random;
  /** Seed used when no `random` is given (default 0). */
  seed?: number;
}

/**
 * The two-convolution residual block with an identity or option-A shortcut.
 *
 * @example
 * ```ts
 * import { BasicBlock } from "@eql/eql";
 * import { zeros } from "@eql/eql";
 * const block = new BasicBlock(16, 32, { stride: 2 });
 * block.forward(zeros([2, 16, 8, 8]), true).shape; // [2, 32, 4, 4]
 * ```
 */
export class BasicBlock implements CountingLayer {
  /** Input channels. */
  readonly inPlanes: number;
  /** Output channels. */
  readonly planes: number;
  /** Stride of the first convolution. */
  readonly stride: number;
  /** The device holding the tensors. */
  readonly device: Device;
  /** First 3×3 convolution (strided). */
  readonly conv1: Conv2d;
  /** Batch-norm after the first convolution. */
  readonly bn1: BatchNorm2d;
  /** Second 3×3 convolution. */
  readonly conv2: Conv2d;
  /** Batch-norm after the second convolution. */
  readonly bn2: BatchNorm2d;
  #optionA: boolean;
  #inShape?: readonly number[];
  #shortcut?: Tensor<"f32">;
  #dShortcut?: Tensor<"f32">;
  #dx?: Tensor<"f32">;
  #out?: Tensor<"f32">;

  /**
   * Builds the block and its convolutions and batch-norms.
   *
   * @param inPlanes Input channels.
   * @param planes Output channels (equal to `inPlanes` for stride 1; for stride 2, at least
   *   `inPlanes` with an even difference, so the padding splits evenly).
   * @param options Stride, device and initialisation.
   */
  constructor(inPlanes: number, planes: number, options: BasicBlockOptions = {}) {
    const stride = options.stride ?? 1;
    if (stride !== 1 && stride !== 2) {
      throw new RangeError(`stride must be 1 or 2, got ${stride}`);
    }
    if (stride === 1 && planes !== inPlanes) {
      throw new RangeError(
        `planes must equal inPlanes (${inPlanes}) for stride 1 (identity shortcut), got ${planes}`,
      );
    }
    if (stride === 2 && (planes < inPlanes || (planes - inPlanes) % 2 !== 0)) {
      throw new RangeError(
        `planes must be ≥ inPlanes (${inPlanes}) with an even difference for the option-A ` +
          `shortcut, got ${planes}`,
      );
    }
    this.inPlanes = inPlanes;
    this.planes = planes;
    this.stride = stride;
    const device = this.device = options.device ?? cpuDevice();
    const random = options.random ?? new Random(options.seed ?? 0);
    this.conv1 = new Conv2d(inPlanes, planes, 3, { stride, padding: 1, device, random });
    this.bn1 = new BatchNorm2d(planes, { device, relu: true });
    this.conv2 = new Conv2d(planes, planes, 3, { stride: 1, padding: 1, device, random });
    this.bn2 = new BatchNorm2d(planes, { device, relu: true });
    this.#optionA = stride !== 1;
  }

  /**
   * Runs the forward pass.
   *
   * @param x Input `[N, inPlanes, H, W]` (kept until backward).
   * @param training Batch statistics when true, running statistics when false.
   * @returns The block output `[N, planes, H/stride, W/stride]`, owned by the block.
   */
  forward(x: Tensor<"f32">, training: boolean): Tensor<"f32"> {
    checkInput(
      "BasicBlock.forward: x",
      x,
      this.device,
      { ranks: [4], layout: "[N, C, H, W]" },
      this.inPlanes,
    );
    let h = this.conv1.forward(x, training);
    h = this.bn1.forward(h, training);
    h = this.conv2.forward(h, training);
    let shortcut: Tensor<"f32"> = x;
    if (this.#optionA) {
      this.#shortcut = reuse(this.#shortcut, h.shape, this.device, "BasicBlock.forward: shortcut");
      this.device.shortcutForward(
        x.buffer,
        this.#shortcut.buffer,
        this.#shortcutShape(x.shape),
      );
      shortcut = this.#shortcut;
    }
    this.#inShape = x.shape;
    this.#out = this.bn2.forward(h, training, shortcut);
    return this.#out;
  }

  /**
   * Runs the backward pass of the last forward.
   *
   * @param dy Gradient with respect to the last output.
   * @returns `∂L/∂x`, owned by the block.
   */
  backward(dy: Tensor<"f32">): Tensor<"f32"> {
    checkGradient("BasicBlock.backward: dy", dy, this.device, this.#out);
    let g = this.bn2.backward(dy);
    const dSum = this.bn2.residualGradient;
    g = this.conv2.backward(g);
    g = this.bn1.backward(g);
    const dMain = this.conv1.backward(g);
    let dShortcut = dSum;
    if (this.#optionA) {
      this.#dShortcut = reuse(
        this.#dShortcut,
        this.#inShape!,
        this.device,
        "BasicBlock.backward: shortcut gradient",
      );
      this.device.shortcutBackward(
        dSum.buffer,
        this.#dShortcut.buffer,
        this.#shortcutShape(this.#inShape!),
      );
      dShortcut = this.#dShortcut;
    }
    this.#dx = reuse(this.#dx, this.#inShape!, this.device, "BasicBlock.backward: dx");
    this.device.add(dMain.buffer, dShortcut.buffer, this.#dx.buffer, dMain.size);
    return this.#dx;
  }

  /** The option-A shortcut's geometry for an input of shape `[n, c, h, w]`. */
  #shortcutShape(inShape: readonly number[]): ShortcutShape {
    const [n, cIn, h, w] = inShape;
    return { n, cIn, h, w, cOut: this.planes };
  }

  #children(): [string, Layer][] {
    return [["conv1", this.conv1], ["bn1", this.bn1], ["conv2", this.conv2], ["bn2", this.bn2]];
  }

  /**
   * The trainable parameters.
   *
   * @returns The parameters of conv1, bn1, conv2 and bn2 with those prefixes.
   */
  parameters(): Parameter[] {
    return this.#children().flatMap(([name, l]) => prefixParameters(name, l.parameters()));
  }

  /**
   * The non-trainable state tensors saved in checkpoints.
   *
   * @returns The running statistics of bn1 and bn2 with those prefixes.
   */
  stateTensors(): StateTensor[] {
    return this.#children().flatMap(([name, l]) => prefixStates(name, l.stateTensors()));
  }

  /**
   * The integer counters saved in checkpoints.
   *
   * @returns `bn1.num_batches_tracked` and `bn2.num_batches_tracked`.
   */
  counters(): Counter[] {
    return [
      ...prefixCounters("bn1", this.bn1.counters()),
      ...prefixCounters("bn2", this.bn2.counters()),
    ];
  }

  /** Frees every tensor the block and its children own. */
  dispose(): void {
    for (const [, l] of this.#children()) l.dispose();
    for (const t of [this.#shortcut, this.#dShortcut, this.#dx]) t?.dispose();
  }
}
