/**
 * Naming helpers shared by the containers (`Sequential`, `BasicBlock`, `ResNet`): prefixing the
 * names of nested parameters, state tensors and counters (the PyTorch `state_dict` layout), and
 * counting trainable scalars.
 *
 * Counters are integer state that is not a tensor: batch-norm's `num_batches_tracked`, which a
 * PyTorch checkpoint stores as an int64 scalar. A layer that has any exposes a `counters()` method.
 *
 * @module
 */

import type { Layer, Parameter, StateTensor } from "./layer.ts";

/** A named integer held by a layer (e.g. `num_batches_tracked`), saved in checkpoints. */
export interface Counter {
  /** Name relative to the layer; containers prefix it. */
  name: string;
  /** Reads the current value. */
  get(): number;
  /** Replaces the value (a non-negative safe integer). */
  set(value: number): void;
}

/** A layer that holds integer counters besides its tensors. */
export interface CountingLayer extends Layer {
  /** Named counters, prefixed for nested layers. */
  counters(): Counter[];
}

/**
 * The counters of a layer, or none when it has no `counters()` method.
 *
 * @param layer Any layer or model.
 * @returns Its counters (an empty list for layers without any).
 *
 * @example
 * ```ts
 * import { BatchNorm2d } from "@eql/eql";
 * import { countersOf } from "./named.ts";
 * countersOf(new BatchNorm2d(4)).map((c) => c.name); // ["num_batches_tracked"]
 * ```
 */
export function countersOf(layer: Layer): Counter[] {
  const maybe = layer as Partial<CountingLayer>;
  return typeof maybe.counters === "function" ? maybe.counters() : [];
}

/**
 * Copies of `params` with `prefix.` put before each name.
 *
 * @param prefix The child's name within its container (e.g. "layer1.0").
 * @param params The child's parameters.
 * @returns New parameter records sharing the same tensors.
 *
 * @example
 * ```ts
 * import { Linear } from "@eql/eql";
 * import { prefixParameters } from "./named.ts";
 * prefixParameters("fc", new Linear(2, 3).parameters()).map((p) => p.name); // ["fc.weight", "fc.bias"]
 * ```
 */
export function prefixParameters(prefix: string, params: Parameter[]): Parameter[] {
  return params.map((p) => ({ ...p, name: `${prefix}.${p.name}` }));
}

/**
 * Copies of `states` with `prefix.` put before each name.
 *
 * @param prefix The child's name within its container.
 * @param states The child's state tensors.
 * @returns New records sharing the same tensors.
 *
 * @example
 * ```ts
 * import { BatchNorm2d } from "@eql/eql";
 * import { prefixStates } from "./named.ts";
 * prefixStates("bn1", new BatchNorm2d(4).stateTensors()).map((s) => s.name);
 * // ["bn1.running_mean", "bn1.running_var"]
 * ```
 */
export function prefixStates(prefix: string, states: StateTensor[]): StateTensor[] {
  return states.map((s) => ({ ...s, name: `${prefix}.${s.name}` }));
}

/**
 * Copies of `counters` with `prefix.` put before each name.
 *
 * @param prefix The child's name within its container.
 * @param counters The child's counters.
 * @returns New records reading and writing the same values.
 *
 * @example
 * ```ts
 * import { BatchNorm2d } from "@eql/eql";
 * import { prefixCounters } from "./named.ts";
 * prefixCounters("bn1", new BatchNorm2d(4).counters()).map((c) => c.name);
 * // ["bn1.num_batches_tracked"]
 * ```
 */
export function prefixCounters(prefix: string, counters: Counter[]): Counter[] {
  return counters.map((c) => ({ name: `${prefix}.${c.name}`, get: c.get, set: c.set }));
}

/**
 * Number of trainable scalars of a layer or model (what PyTorch reports as
 * `sum(p.numel() for p in model.parameters())`).
 *
 * @param layer Any layer or model.
 * @returns The total element count of its parameters.
 *
 * @example
 * ```ts
 * import { Linear } from "@eql/eql";
 * import { parameterCount } from "@eql/eql";
 * parameterCount(new Linear(64, 10)); // 650
 * ```
 */
export function parameterCount(layer: Layer): number {
  let total = 0;
  for (const p of layer.parameters()) total += p.value.size;
  return total;
}
