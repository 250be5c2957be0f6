/**
 * `Sequential`: a chain of layers. Forward feeds each layer's output to the next; backward walks
 * the chain in reverse. Children are named "0", "1", … like PyTorch's `nn.Sequential`, or by the
 * names given, and their parameters, state tensors and counters are prefixed accordingly.
 *
 * Kept for backward: nothing of its own (each child keeps what it needs).
 *
 * @module
 */

import type { Tensor } from "../tensor.ts";
import type { Layer, Parameter, StateTensor } from "./layer.ts";
import {
  type Counter,
  countersOf,
  type CountingLayer,
  prefixCounters,
  prefixParameters,
  prefixStates,
} from "./named.ts";

/**
 * A chain of layers.
 *
 * @example
 * ```ts
 * import { Sequential } from "@eql/eql";
 * import { Linear } from "@eql/eql";
 * import { ReLU } from "@eql/eql";
 * import { zeros } from "@eql/eql";
 * const mlp = new Sequential([new Linear(4, 8), new ReLU(), new Linear(8, 2)]);
 * mlp.forward(zeros([3, 4]), true).shape; // [3, 2]
 * mlp.parameters().map((p) => p.name); // ["0.weight", "0.bias", "2.weight", "2.bias"]
 * ```
 */
export class Sequential implements CountingLayer {
  #names: string[];
  #layers: Layer[];

  /**
   * Creates the chain.
   *
   * @param layers The children in order, either bare (named by position) or as `[name, layer]`.
   */
  constructor(layers: Layer[] | [string, Layer][]) {
    if (!Array.isArray(layers) || layers.length === 0) {
      throw new RangeError(`layers must be a non-empty array, got ${String(layers)}`);
    }
    this.#names = [];
    this.#layers = [];
    for (let i = 0; i < layers.length; i++) {
      const entry = layers[i];
      const [name, layer] = Array.isArray(entry) ? entry : [String(i), entry];
      if (typeof layer?.forward !== "function" || typeof layer?.backward !== "function") {
        throw new TypeError(`layers[${i}] must be a Layer, got ${String(layer)}`);
      }
      if (this.#names.includes(name)) {
        throw new RangeError(`layers[${i}] repeats the name "${name}"`);
      }
      this.#names.push(name);
      this.#layers.push(layer);
    }
  }

  /** The children, in order. */
  get layers(): readonly Layer[] {
    return this.#layers;
  }

  /** The children's names, in order. */
  get names(): readonly string[] {
    return this.#names;
  }

  /**
   * Runs the forward pass.
   *
   * @param x Input of the first layer.
   * @param training Passed to every child.
   * @returns The last layer's output (owned by it).
   */
  forward(x: Tensor<"f32">, training: boolean): Tensor<"f32"> {
    let h = x;
    for (const layer of this.#layers) h = layer.forward(h, training);
    return h;
  }

  /**
   * Runs the backward pass of the last forward.
   *
   * @param dy Gradient with respect to the last output.
   * @returns The first layer's input gradient (owned by it).
   */
  backward(dy: Tensor<"f32">): Tensor<"f32"> {
    let g = dy;
    for (let i = this.#layers.length - 1; i >= 0; i--) g = this.#layers[i].backward(g);
    return g;
  }

  /**
   * The trainable parameters.
   *
   * @returns Every child's parameters, prefixed with the child's name.
   */
  parameters(): Parameter[] {
    return this.#layers.flatMap((l, i) => prefixParameters(this.#names[i], l.parameters()));
  }

  /**
   * The non-trainable state tensors saved in checkpoints.
   *
   * @returns Every child's state tensors, prefixed with the child's name.
   */
  stateTensors(): StateTensor[] {
    return this.#layers.flatMap((l, i) => prefixStates(this.#names[i], l.stateTensors()));
  }

  /**
   * The integer counters saved in checkpoints.
   *
   * @returns Every child's counters, prefixed with the child's name.
   */
  counters(): Counter[] {
    return this.#layers.flatMap((l, i) => prefixCounters(this.#names[i], countersOf(l)));
  }

  /** Disposes every child. */
  dispose(): void {
    for (const l of this.#layers) l.dispose();
  }
}
