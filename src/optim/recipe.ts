/**
 * Training recipes: plain, JSON-serialisable descriptions of batch size, length, learning-rate
 * schedule and SGD settings, plus helpers that turn one into a schedule and an optimiser.
 *
 * - `paperRecipe`: the CIFAR-LT recipe of the EQL paper (§6): batch 256, 12,800 iterations,
 *   learning rate 0.2 with a linear warm-up from 0.1 over the first 400 iterations, ×0.1 at
 *   6,400 and 9,600, Nesterov momentum 0.9, weight decay 1e-4.
 * - `quickRecipe`: a short run for a CPU (minutes, not hours): batch 128, 600 iterations
 *   (≈ 7 epochs of CIFAR-100-LT with imbalance 100), learning rate 0.1 reached by a linear warm-up
 *   from 0.02 over 30 iterations, then cosine decay to 0 (no late plateau is wasted on a short
 *   run), Nesterov momentum 0.9, weight decay 5e-4 (stronger than the paper's, since a short run
 *   over few images overfits the head classes quickly).
 *
 * @module
 */

import type { Parameter } from "../nn/layer.ts";
import { cosine, type Schedule, warmupMultiStep } from "./schedule.ts";
import { SGD } from "./sgd.ts";

/** How the learning rate falls after the warm-up. */
export type RecipeDecay =
  | { kind: "multistep"; milestones: number[]; gamma: number }
  | { kind: "cosine"; minLr: number };

/** A training recipe. */
export interface TrainingRecipe {
  /** Short name ("paper", "quick", or the user's). */
  name: string;
  /** Images per iteration. */
  batchSize: number;
  /** Number of iterations. */
  iterations: number;
  /** Learning rate after the warm-up. */
  lr: number;
  /** Iterations of linear warm-up. */
  warmupSteps: number;
  /** Learning rate at iteration 0. */
  warmupStartLr: number;
  /** The decay after the warm-up. */
  decay: RecipeDecay;
  /** SGD momentum. */
  momentum: number;
  /** Nesterov momentum. */
  nesterov: boolean;
  /** L2 weight decay (applied to every parameter, as in PyTorch). */
  weightDecay: number;
}

/**
 * The EQL paper's CIFAR-LT recipe (§6).
 *
 * @returns A fresh copy (safe to modify).
 *
 * @example
 * ```ts
 * import { paperRecipe } from "@eql/eql";
 * const r = paperRecipe();
 * r.batchSize; // 256
 * r.iterations; // 12800
 * ```
 */
export function paperRecipe(): TrainingRecipe {
  return {
    name: "paper",
    batchSize: 256,
    iterations: 12_800,
    lr: 0.2,
    warmupSteps: 400,
    warmupStartLr: 0.1,
    decay: { kind: "multistep", milestones: [6_400, 9_600], gamma: 0.1 },
    momentum: 0.9,
    nesterov: true,
    weightDecay: 1e-4,
  };
}

/**
 * A short recipe for CPU runs (see the module documentation for the reasoning).
 *
 * @returns A fresh copy (safe to modify).
 *
 * @example
 * ```ts
 * import { quickRecipe } from "@eql/eql";
 * quickRecipe().iterations; // 600
 * ```
 */
export function quickRecipe(): TrainingRecipe {
  return {
    name: "quick",
    batchSize: 128,
    iterations: 600,
    lr: 0.1,
    warmupSteps: 30,
    warmupStartLr: 0.02,
    decay: { kind: "cosine", minLr: 0 },
    momentum: 0.9,
    nesterov: true,
    weightDecay: 5e-4,
  };
}

/**
 * The learning-rate schedule of a recipe.
 *
 * @param recipe The recipe.
 * @returns iteration → learning rate.
 * @throws {RangeError} When the recipe's numbers are out of range.
 *
 * @example
 * ```ts
 * import { paperRecipe, recipeSchedule } from "@eql/eql";
 * const lr = recipeSchedule(paperRecipe());
 * lr(0); // 0.1
 * lr(400); // 0.2
 * ```
 */
export function recipeSchedule(recipe: TrainingRecipe): Schedule {
  const { lr, warmupSteps, warmupStartLr, decay } = recipe;
  if (!Number.isInteger(recipe.iterations) || recipe.iterations < 1) {
    throw new RangeError(`recipe.iterations must be an integer ≥ 1, got ${recipe.iterations}`);
  }
  if (decay?.kind === "multistep") {
    return warmupMultiStep({
      lr,
      warmupSteps,
      warmupStartLr,
      milestones: decay.milestones,
      gamma: decay.gamma,
    });
  }
  if (decay?.kind === "cosine") {
    return cosine({
      lr,
      totalSteps: recipe.iterations,
      warmupSteps,
      warmupStartLr,
      minLr: decay.minLr,
    });
  }
  throw new RangeError(
    `recipe.decay.kind must be "multistep" or "cosine", got ${JSON.stringify(decay)}`,
  );
}

/**
 * An SGD optimiser with a recipe's momentum, Nesterov flag and weight decay, its learning rate
 * set to the schedule's value at iteration 0.
 *
 * @param params The model's parameters.
 * @param recipe The recipe.
 * @returns The optimiser; call `step(schedule(i))` at iteration i.
 *
 * @example
 * ```ts
 * import { quickRecipe, recipeOptimizer, recipeSchedule } from "@eql/eql";
 * import { Linear } from "@eql/eql";
 * const recipe = quickRecipe();
 * const opt = recipeOptimizer(new Linear(4, 2).parameters(), recipe);
 * const lr = recipeSchedule(recipe);
 * opt.lr === lr(0); // true
 * ```
 */
export function recipeOptimizer(params: Parameter[], recipe: TrainingRecipe): SGD {
  return new SGD(params, {
    lr: recipeSchedule(recipe)(0),
    momentum: recipe.momentum,
    nesterov: recipe.nesterov,
    weightDecay: recipe.weightDecay,
  });
}
