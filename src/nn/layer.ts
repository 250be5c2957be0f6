/**
 * What every layer and model has in common. There is no autograd tape: a layer keeps what its
 * backward needs from its forward, and a model's backward walks its layers in reverse.
 *
 * Ownership: a layer owns the tensors it returns from `forward` and `backward` (it reuses their
 * buffers from step to step while the shapes stay the same); they stay valid until the layer's
 * next call of the same method and must not be disposed by the caller. Parameter gradients are
 * overwritten (not accumulated) by each backward.
 *
 * @module
 */

import type { Tensor } from "../tensor.ts";

/** A trainable tensor and its gradient. */
export interface Parameter {
  /** Name relative to the layer, e.g. "weight" or "bias"; models prefix it ("layer1.0.conv1.weight"). */
  name: string;
  /** Current value. */
  value: Tensor<"f32">;
  /** Gradient written by the last backward. */
  grad: Tensor<"f32">;
  /** Whether weight decay applies (false for batch-norm and bias parameters, if the recipe wants). */
  decay: boolean;
}

/** A non-trainable named tensor saved in checkpoints (batch-norm running statistics). */
export interface StateTensor {
  /** Name relative to the layer, e.g. "running_mean". */
  name: string;
  /** The value. */
  value: Tensor<"f32">;
}

/** A differentiable layer or model. */
export interface Layer {
  /** Computes the output; `training` selects batch statistics and stores what backward needs. */
  forward(x: Tensor<"f32">, training: boolean): Tensor<"f32">;
  /** Given ∂L/∂output, writes parameter gradients and returns ∂L/∂input. */
  backward(dy: Tensor<"f32">): Tensor<"f32">;
  /** Trainable parameters, names prefixed for nested layers. */
  parameters(): Parameter[];
  /** Non-trainable state saved in checkpoints, names prefixed for nested layers. */
  stateTensors(): StateTensor[];
  /** Frees every tensor the layer owns. */
  dispose(): void;
}
