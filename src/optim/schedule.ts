/**
 * Learning-rate schedules as pure functions from the 0-based iteration to the learning rate.
 *
 * @module
 */

/** A learning-rate schedule: iteration (0-based) → learning rate. */
export type Schedule = (step: number) => number;

function finiteAtLeast(name: string, v: number, min: number): void {
  if (!Number.isFinite(v) || v < min) {
    throw new RangeError(`${name} must be a finite number ≥ ${min}, got ${v}`);
  }
}

function checkStep(step: number): void {
  if (!Number.isInteger(step) || step < 0) {
    throw new RangeError(`step must be a non-negative integer, got ${step}`);
  }
}

/** Options of {@linkcode warmupMultiStep}. */
export interface WarmupMultiStepOptions {
  /** Learning rate after the warm-up. */
  lr: number;
  /** Iterations of linear warm-up (default 0: none). */
  warmupSteps?: number;
  /** Learning rate at iteration 0 of the warm-up (default 0). */
  warmupStartLr?: number;
  /** Iterations at which the rate is multiplied by `gamma`, increasing (default none). */
  milestones?: number[];
  /** Decay factor at each milestone (default 0.1). */
  gamma?: number;
}

/**
 * Linear warm-up followed by step decay: for `step < warmupSteps`,
 * `lr(step) = warmupStartLr + (lr − warmupStartLr) · step / warmupSteps`; afterwards
 * `lr · gamma^k` with k the number of milestones ≤ step.
 *
 * @param options Base rate, warm-up and milestones.
 * @returns The schedule.
 *
 * @example
 * ```ts
 * import { warmupMultiStep } from "@eql/eql";
 * const lr = warmupMultiStep({ lr: 0.2, warmupSteps: 400, warmupStartLr: 0.1, milestones: [6400, 9600] });
 * lr(0); // 0.1
 * lr(200); // 0.15
 * lr(6400); // 0.02 (up to rounding)
 * ```
 */
export function warmupMultiStep(options: WarmupMultiStepOptions): Schedule {
  const { lr } = options;
  const warmupSteps = options.warmupSteps ?? 0, start = options.warmupStartLr ?? 0;
  const milestones = [...(options.milestones ?? [])], gamma = options.gamma ?? 0.1;
  finiteAtLeast("lr", lr, 0);
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0) {
    throw new RangeError(`warmupSteps must be a non-negative integer, got ${warmupSteps}`);
  }
  finiteAtLeast("warmupStartLr", start, 0);
  finiteAtLeast("gamma", gamma, 0);
  milestones.forEach((m, i) => {
    if (!Number.isInteger(m) || m < 0 || (i > 0 && m <= milestones[i - 1])) {
      throw new RangeError(
        `milestones must be increasing non-negative integers, got [${milestones.join(", ")}]`,
      );
    }
  });
  return (step: number): number => {
    checkStep(step);
    if (step < warmupSteps) return start + (lr - start) * step / warmupSteps;
    let k = 0;
    while (k < milestones.length && milestones[k] <= step) k++;
    return lr * gamma ** k;
  };
}

/** Options of {@linkcode cosine}. */
export interface CosineOptions {
  /** Peak learning rate (reached at the end of the warm-up). */
  lr: number;
  /** Total iterations; the cosine reaches `minLr` at this step and stays there. */
  totalSteps: number;
  /** Iterations of linear warm-up (default 0). */
  warmupSteps?: number;
  /** Learning rate at iteration 0 of the warm-up (default 0). */
  warmupStartLr?: number;
  /** Final learning rate (default 0). */
  minLr?: number;
}

/**
 * Cosine annealing with optional linear warm-up: after the warm-up,
 * `lr(step) = minLr + (lr − minLr) · (1 + cos(π · t)) / 2` with
 * `t = (step − warmupSteps) / (totalSteps − warmupSteps)` clamped to [0, 1].
 *
 * @param options Peak rate, length, warm-up and floor.
 * @returns The schedule.
 *
 * @example
 * ```ts
 * import { cosine } from "@eql/eql";
 * const lr = cosine({ lr: 0.1, totalSteps: 1000 });
 * lr(0); // 0.1
 * lr(500); // 0.05
 * lr(1000); // 0
 * ```
 */
export function cosine(options: CosineOptions): Schedule {
  const { lr, totalSteps } = options;
  const warmupSteps = options.warmupSteps ?? 0, start = options.warmupStartLr ?? 0;
  const minLr = options.minLr ?? 0;
  finiteAtLeast("lr", lr, 0);
  finiteAtLeast("minLr", minLr, 0);
  finiteAtLeast("warmupStartLr", start, 0);
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0) {
    throw new RangeError(`warmupSteps must be a non-negative integer, got ${warmupSteps}`);
  }
  if (!Number.isInteger(totalSteps) || totalSteps <= warmupSteps) {
    throw new RangeError(
      `totalSteps must be an integer greater than warmupSteps (${warmupSteps}), got ${totalSteps}`,
    );
  }
  return (step: number): number => {
    checkStep(step);
    if (step < warmupSteps) return start + (lr - start) * step / warmupSteps;
    const t = Math.min(1, (step - warmupSteps) / (totalSteps - warmupSteps));
    return minLr + (lr - minLr) * (1 + Math.cos(Math.PI * t)) / 2;
  };
}
