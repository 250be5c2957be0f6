/**
 * The CIFAR ResNets of He et al. (2016, §4.2): a 3×3 convolution with 16 channels, three stages
 * of n basic blocks with 16, 32 and 64 channels (the second and third start with a stride-2 block
 * and an option-A shortcut), global average pooling and a linear classifier; depth = 6n + 2
 * (ResNet-20, 32, 44, 56, 110). ResNet-32 has 464,154 parameters for 10 classes and 470,004 for
 * 100 classes.
 *
 * Parameter and state names follow the common PyTorch CIFAR-ResNet layout (`conv1.weight`,
 * `bn1.*`, `layer{1,2,3}.{i}.{conv1,bn1,conv2,bn2}.*`, `linear.{weight,bias}`), so checkpoints
 * load into that model with `load_state_dict`.
 *
 * Initialisation: convolution and classifier weights Kaiming normal (fan-in, gain √2), classifier
 * bias PyTorch's default `U(−1/√64, 1/√64)`, batch-norm γ = 1 and β = 0; all drawn from one
 * stream seeded by `seed`, in the order of the parameter list.
 *
 * Kept for backward: what the children keep.
 *
 * @module
 */

import type { Device } from "../device/device.ts";
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
import { GlobalAvgPool } from "./pool.ts";
import { Linear } from "./linear.ts";
import { Sequential } from "./sequential.ts";
import { BasicBlock } from "./basic_block.ts";
import { checkInput } from "./_check.ts";
import { Random } from "../random.ts";

/** Options of {@linkcode resnet}. */
export interface ResNetOptions {
  /** Number of layers with weights, 6n + 2 with n ≥ 1 (20, 32, 44, 56, 110, …). */
  depth: number;
  /** Number of classes (≥ 1). */
  numClasses: number;
  /** Input channels (default 3). */
  inChannels?: number;
  /** Where the model lives (default: the CPU device). */
  device?: Device;
  /** Seed of the initial weights (default 0). */
  seed?: number;
}

/**
 * A CIFAR ResNet: `conv1 → bn1 → relu → layer1 → layer2 → layer3 → pool → linear`.
 *
 * @example
 * ```ts
 * import { resnet } from "@eql/eql";
 * import { zeros } from "@eql/eql";
 * const net = resnet({ depth: 20, numClasses: 10 });
 * net.forward(zeros([2, 3, 32, 32]), true).shape; // [2, 10]
 * ```
 */
export class ResNet implements CountingLayer {
  /** Depth (6n + 2). */
  readonly depth: number;
  /** Number of classes. */
  readonly numClasses: number;
  /** Input channels. */
  readonly inChannels: number;
  /** The device holding the model. */
  readonly device: Device;
  /** The stem convolution (3×3, 16 channels). */
  readonly conv1: Conv2d;
  /** The stem batch-norm. */
  readonly bn1: BatchNorm2d;
  /** Stage 1: n blocks of 16 channels at full resolution. */
  readonly layer1: Sequential;
  /** Stage 2: n blocks of 32 channels at half resolution. */
  readonly layer2: Sequential;
  /** Stage 3: n blocks of 64 channels at quarter resolution. */
  readonly layer3: Sequential;
  /** The classifier. */
  readonly linear: Linear;
  #pool: GlobalAvgPool;

  /**
   * Builds and initialises the model.
   *
   * @param options Depth, classes, input channels, device and seed.
   */
  constructor(options: ResNetOptions) {
    const { depth, numClasses } = options;
    if (!Number.isInteger(depth) || depth < 8 || (depth - 2) % 6 !== 0) {
      throw new RangeError(
        `depth must be 6n + 2 with n ≥ 1 (8, 14, 20, 32, 44, 56, 110, …), got ${depth}`,
      );
    }
    if (!Number.isInteger(numClasses) || numClasses < 1) {
      throw new RangeError(`numClasses must be an integer ≥ 1, got ${numClasses}`);
    }
    const inChannels = options.inChannels ?? 3;
    if (!Number.isInteger(inChannels) || inChannels < 1) {
      throw new RangeError(`inChannels must be an integer ≥ 1, got ${inChannels}`);
    }
    this.depth = depth;
    this.numClasses = numClasses;
    this.inChannels = inChannels;
    const device = this.device = options.device ?? cpuDevice();
    const random = new Random(options.seed ?? 0);
    const n = (depth - 2) / 6;
    this.conv1 = new Conv2d(inChannels, 16, 3, { padding: 1, device, random });
    this.bn1 = new BatchNorm2d(16, { device, relu: true });
    const stage = (inPlanes: number, planes: number, stride: number): Sequential => {
      const blocks: Layer[] = [];
      for (let i = 0; i < n; i++) {
        blocks.push(
          new BasicBlock(i === 0 ? inPlanes : planes, planes, {
            stride: i === 0 ? stride : 1,
            device,
            random,
          }),
        );
      }
      return new Sequential(blocks);
    };
    this.layer1 = stage(16, 16, 1);
    this.layer2 = stage(16, 32, 2);
    this.layer3 = stage(32, 64, 2);
    this.#pool = new GlobalAvgPool(device);
    this.linear = new Linear(64, numClasses, { device, random });
  }

  #named(): [string, Layer][] {
    return [
      ["conv1", this.conv1],
      ["bn1", this.bn1],
      ["layer1", this.layer1],
      ["layer2", this.layer2],
      ["layer3", this.layer3],
      ["linear", this.linear],
    ];
  }

  /**
   * Computes the logits.
   *
   * @param x Images `[N, inChannels, H, W]` (kept until backward; H, W ≥ 1).
   * @param training Batch statistics and running-statistics updates when true (training);
   *   running statistics when false (evaluation).
   * @returns Logits `[N, numClasses]`, owned by the model.
   */
  forward(x: Tensor<"f32">, training: boolean): Tensor<"f32"> {
    checkInput(
      "ResNet.forward: x",
      x,
      this.device,
      { ranks: [4], layout: "[N, C, H, W]" },
      this.inChannels,
    );
    let h = this.conv1.forward(x, training);
    h = this.bn1.forward(h, training);
    h = this.layer1.forward(h, training);
    h = this.layer2.forward(h, training);
    h = this.layer3.forward(h, training);
    h = this.#pool.forward(h, training);
    return this.linear.forward(h, training);
  }

  /**
   * Back-propagates the logits' gradient, writing every parameter gradient.
   *
   * @param dy `∂L/∂logits` `[N, numClasses]`.
   * @returns `∂L/∂x`, owned by the model.
   */
  backward(dy: Tensor<"f32">): Tensor<"f32"> {
    return this.conv1.backward(this.#backwardToStem(dy));
  }

  /**
   * Back-propagates the logits' gradient, writing every parameter gradient but not computing
   * `∂L/∂x`, which training never needs (it saves the stem convolution's backward-data pass).
   *
   * @param dy `∂L/∂logits` `[N, numClasses]`.
   */
  backwardParameters(dy: Tensor<"f32">): void {
    this.conv1.backwardParameters(this.#backwardToStem(dy));
  }

  /** Everything above the stem convolution; returns the gradient of its output. */
  #backwardToStem(dy: Tensor<"f32">): Tensor<"f32"> {
    let g = this.linear.backward(dy);
    g = this.#pool.backward(g);
    g = this.layer3.backward(g);
    g = this.layer2.backward(g);
    g = this.layer1.backward(g);
    return this.bn1.backward(g);
  }

  /**
   * Evaluation-mode logits (running batch-norm statistics), for inference. Like any forward, it
   * replaces what the layers kept for backward, so call it after a step's backward, not between.
   *
   * @param x Images `[N, inChannels, H, W]`.
   * @returns Logits `[N, numClasses]`, owned by the model (valid until the next forward).
   */
  logits(x: Tensor<"f32">): Tensor<"f32"> {
    return this.forward(x, false);
  }

  /**
   * Evaluation-mode class predictions (the arg-max logit; ties go to the lower index).
   *
   * @param x Images `[N, inChannels, H, W]`.
   * @returns The predicted class of each image.
   */
  predict(x: Tensor<"f32">): Int32Array {
    const z = this.logits(x).toArray() as Float32Array;
    const n = x.shape[0], c = this.numClasses;
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      let best = 0;
      for (let j = 1; j < c; j++) if (z[i * c + j] > z[i * c + best]) best = j;
      out[i] = best;
    }
    return out;
  }

  /**
   * The trainable parameters.
   *
   * @returns Every parameter with its PyTorch name (e.g. `layer2.0.conv1.weight`).
   */
  parameters(): Parameter[] {
    return this.#named().flatMap(([name, l]) => prefixParameters(name, l.parameters()));
  }

  /**
   * The non-trainable state tensors saved in checkpoints.
   *
   * @returns The batch-norm running statistics with their PyTorch names.
   */
  stateTensors(): StateTensor[] {
    return this.#named().flatMap(([name, l]) => prefixStates(name, l.stateTensors()));
  }

  /**
   * The integer counters saved in checkpoints.
   *
   * @returns Each batch-norm's `num_batches_tracked` with its PyTorch name.
   */
  counters(): Counter[] {
    return [
      ...prefixCounters("bn1", this.bn1.counters()),
      ...prefixCounters("layer1", this.layer1.counters()),
      ...prefixCounters("layer2", this.layer2.counters()),
      ...prefixCounters("layer3", this.layer3.counters()),
    ];
  }

  /** Frees every tensor of the model. */
  dispose(): void {
    for (const [, l] of this.#named()) l.dispose();
    this.#pool.dispose();
  }
}

/**
 * Builds a CIFAR ResNet of depth 6n + 2.
 *
 * @param options Depth, number of classes, input channels, device and seed.
 * @returns The model, initialised.
 * @throws {RangeError} When the depth is not 6n + 2 or the class count is not a positive integer.
 *
 * @example
 * ```ts
 * import { resnet } from "@eql/eql";
 * import { parameterCount } from "@eql/eql";
 * parameterCount(resnet({ depth: 20, numClasses: 10 })); // 269722
 * ```
 */
export function resnet(options: ResNetOptions): ResNet {
  return new ResNet(options);
}

/**
 * Builds the CIFAR ResNet-32 (5 blocks per stage; 470,004 parameters for 100 classes).
 *
 * @param options Number of classes, and optionally input channels, device and seed.
 * @returns The model, initialised.
 *
 * @example
 * ```ts
 * import { resnet32 } from "@eql/eql";
 * import { parameterCount } from "@eql/eql";
 * parameterCount(resnet32({ numClasses: 100 })); // 470004
 * ```
 */
export function resnet32(options: Omit<ResNetOptions, "depth">): ResNet {
  return new ResNet({ ...options, depth: 32 });
}
