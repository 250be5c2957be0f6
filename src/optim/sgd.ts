/**
 * Stochastic gradient descent with momentum, Nesterov momentum and L2 weight decay, with
 * PyTorch's `torch.optim.SGD` semantics (dampening 0): per parameter p with gradient g,
 * `g ← g + wd·p`, `buf ← momentum·buf + g`, `g ← nesterov ? g + momentum·buf : buf`,
 * `p ← p − lr·g`. Each parameter is updated by one fused device operation; the momentum buffers
 * belong to the optimiser.
 *
 * @module
 */

import type { Parameter } from "../nn/layer.ts";
import { type Tensor, zeros } from "../tensor.ts";

/** Options of {@linkcode SGD}. */
export interface SgdOptions {
  /** Learning rate used when `step` is called without one (default 0.1). */
  lr?: number;
  /** Momentum factor in [0, 1) (default 0.9). */
  momentum?: number;
  /** Nesterov momentum (default false; needs momentum > 0). */
  nesterov?: boolean;
  /** L2 penalty coefficient ≥ 0 (default 0). */
  weightDecay?: number;
  /**
   * Which parameters weight decay applies to: `"all"` (default, what
   * `torch.optim.SGD(model.parameters(), weight_decay=…)` does) or `"flagged"` (only those whose
   * `decay` flag is set: convolution and linear weights, not batch-norm or bias parameters).
   */
  decayScope?: "all" | "flagged";
}

function check(name: string, v: number, ok: boolean, expected: string): void {
  if (!ok) throw new RangeError(`${name} must be ${expected}, got ${v}`);
}

/**
 * SGD with momentum over a fixed list of parameters.
 *
 * @example
 * ```ts
 * import { SGD } from "@eql/eql";
 * import { Linear } from "@eql/eql";
 * const fc = new Linear(4, 2);
 * const opt = new SGD(fc.parameters(), { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-4 });
 * // … forward, loss, backward …
 * opt.step(); // or opt.step(schedule(iteration))
 * ```
 */
export class SGD {
  #params: Parameter[];
  #buffers: Tensor<"f32">[];
  #lr: number;
  /** Momentum factor. */
  readonly momentum: number;
  /** Whether Nesterov momentum is used. */
  readonly nesterov: boolean;
  /** L2 penalty coefficient. */
  readonly weightDecay: number;
  /** Which parameters weight decay applies to. */
  readonly decayScope: "all" | "flagged";
  #steps = 0;

  /**
   * Creates the optimiser with zeroed momentum buffers.
   *
   * @param params The parameters to update (their tensors are updated in place).
   * @param options Learning rate, momentum, Nesterov, weight decay and its scope.
   */
  constructor(params: Parameter[], options: SgdOptions = {}) {
    if (!Array.isArray(params) || params.length === 0) {
      throw new RangeError(`params must be a non-empty array of parameters, got ${String(params)}`);
    }
    const lr = options.lr ?? 0.1, momentum = options.momentum ?? 0.9;
    const weightDecay = options.weightDecay ?? 0, nesterov = options.nesterov ?? false;
    const decayScope = options.decayScope ?? "all";
    check("lr", lr, Number.isFinite(lr) && lr >= 0, "a finite number ≥ 0");
    check("momentum", momentum, momentum >= 0 && momentum < 1, "in [0, 1)");
    check(
      "weightDecay",
      weightDecay,
      Number.isFinite(weightDecay) && weightDecay >= 0,
      "a finite number ≥ 0",
    );
    if (nesterov && momentum === 0) {
      throw new RangeError(`nesterov needs momentum > 0, got momentum ${momentum}`);
    }
    if (decayScope !== "all" && decayScope !== "flagged") {
      throw new RangeError(`decayScope must be "all" or "flagged", got ${String(decayScope)}`);
    }
    const seen = new Set<Tensor<"f32">>();
    params.forEach((p, i) => {
      if (p.value.shape.join() !== p.grad.shape.join() || p.value.device !== p.grad.device) {
        throw new RangeError(
          `params[${i}] (${p.name}): grad must match the value's shape [${p.value.shape}] and ` +
            `device, got [${p.grad.shape}] on ${p.grad.device.kind}`,
        );
      }
      if (seen.has(p.value)) throw new RangeError(`params[${i}] (${p.name}) appears twice`);
      seen.add(p.value);
    });
    this.#params = [...params];
    this.#buffers = params.map((p) => zeros(p.value.shape, p.value.device));
    this.#lr = lr;
    this.momentum = momentum;
    this.nesterov = nesterov;
    this.weightDecay = weightDecay;
    this.decayScope = decayScope;
  }

  /** The learning rate used by `step()` without an argument. */
  get lr(): number {
    return this.#lr;
  }

  set lr(value: number) {
    check("lr", value, Number.isFinite(value) && value >= 0, "a finite number ≥ 0");
    this.#lr = value;
  }

  /** Number of steps taken. */
  get steps(): number {
    return this.#steps;
  }

  /** The parameters being optimised, in order. */
  get parameters(): readonly Parameter[] {
    return this.#params;
  }

  /** The momentum buffers, one per parameter in the same order. */
  get momentumBuffers(): readonly Tensor<"f32">[] {
    return this.#buffers;
  }

  /**
   * Applies one update to every parameter from its current gradient.
   *
   * @param lr Learning rate for this step (also becomes the current one); default: the current.
   */
  step(lr?: number): void {
    if (lr !== undefined) this.lr = lr;
    for (let i = 0; i < this.#params.length; i++) {
      const p = this.#params[i];
      const decays = this.decayScope === "all" || p.decay;
      p.value.device.sgdUpdate(
        p.value.buffer,
        p.grad.buffer,
        this.#buffers[i].buffer,
        {
          length: p.value.size,
          lr: this.#lr,
          momentum: this.momentum,
          weightDecay: decays ? this.weightDecay : 0,
          nesterov: this.nesterov,
        },
      );
    }
    this.#steps++;
  }

  /** Frees the momentum buffers (the parameters stay with their layers). */
  dispose(): void {
    for (const b of this.#buffers) b.dispose();
  }
}
