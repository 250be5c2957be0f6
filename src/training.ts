/**
 * Training and evaluating image classifiers on long-tailed data: the loss presets a CIFAR-LT
 * experiment compares (softmax, softmax EQL, sigmoid, sigmoid EQL, focal, class-balanced and
 * balanced-softmax variants), a training loop over a {@linkcode BatchLoader} driven by a
 * {@linkcode TrainingRecipe}, and an evaluation pass producing a {@linkcode ClassificationReport}.
 *
 * @module
 */

import type { Device } from "./device/device.ts";
import { Tensor } from "./tensor.ts";
import type { Layer } from "./nn/layer.ts";
import {
  classBalancedWeights,
  eqlLoss,
  focalLoss,
  SeqlCriterion,
  sigmoidCrossEntropy,
  softmaxCrossEntropy,
} from "./losses/mod.ts";
import type { LossResult } from "./losses/mod.ts";
import { categoryFrequencies } from "./longtail/mod.ts";
import type { BatchLoader } from "./data/loader.ts";
import { evalBatches } from "./data/loader.ts";
import type { Normalization } from "./data/normalize.ts";
import type { ImageDataset } from "./data/dataset.ts";
import { recipeOptimizer, recipeSchedule, type TrainingRecipe } from "./optim/recipe.ts";
import { AccuracyMeter, type ClassificationReport } from "./metrics.ts";
import { Progress } from "./progress.ts";

/** The classification losses the CIFAR-LT experiment can train with. */
export const CLASSIFIER_LOSSES = [
  "softmax",
  "seql",
  "sigmoid",
  "eql",
  "focal",
  "cb-softmax",
  "cb-sigmoid",
  "cb-focal",
  "balanced-softmax",
] as const;

/** One of {@linkcode CLASSIFIER_LOSSES}. */
export type ClassifierLossName = typeof CLASSIFIER_LOSSES[number];

/** Hyper-parameters of the classification losses (each loss reads the ones it uses). */
export interface ClassifierLossOptions {
  /** Training images per class (for frequencies, class-balanced weights and priors). */
  trainCounts: ArrayLike<number>;
  /** EQL / SEQL frequency threshold λ (default 3.0e-3, the paper's CIFAR value). */
  lambda?: number;
  /** SEQL masking probability γ (default 0.95). */
  gamma?: number;
  /** Seed of the SEQL mask (default 0). */
  seed?: number;
  /** Focal exponent (default 2). */
  focalGamma?: number;
  /** Focal balance α, or null for none (default 0.25). */
  focalAlpha?: number | null;
  /** Class-balanced β (default 0.9999). */
  cbBeta?: number;
  /** Balanced-softmax temperature τ (default 1). */
  tau?: number;
}

/** A configured loss: call `compute` once per training step. */
export interface ClassifierLoss {
  /** The preset's name. */
  readonly name: ClassifierLossName;
  /** The hyper-parameters in effect, for reports. */
  readonly config: Record<string, number | string | null>;
  /** Mean loss and gradient of a batch (the caller disposes the result or its gradient). */
  compute(logits: Tensor, labels: Int32Array): LossResult;
}

/**
 * Builds a classification loss preset.
 *
 * @param name Which loss.
 * @param options Class counts and hyper-parameters.
 * @returns The configured loss.
 *
 * @example
 * ```ts
 * import { classifierLoss } from "@eql/eql/data";
 * import { tensor } from "@eql/eql";
 * const loss = classifierLoss("seql", { trainCounts: [500, 50, 5] });
 * const { loss: value, grad } = loss.compute(tensor(new Float32Array(6), [2, 3]), new Int32Array([0, 2]));
 * console.log(value);
 * grad.dispose();
 * ```
 */
export function classifierLoss(
  name: ClassifierLossName,
  options: ClassifierLossOptions,
): ClassifierLoss {
  if (!(CLASSIFIER_LOSSES as readonly string[]).includes(name)) {
    throw new RangeError(
      `loss must be one of ${CLASSIFIER_LOSSES.join(", ")}, got ${String(name)}`,
    );
  }
  const counts = Array.from(options.trainCounts);
  const total = counts.reduce((a, b) => a + b, 0);
  const frequencies = categoryFrequencies(counts, total);
  const lambda = options.lambda ?? 3.0e-3;
  const gamma = options.gamma ?? 0.95;
  const focalGamma = options.focalGamma ?? 2;
  const focalAlpha = options.focalAlpha === undefined ? 0.25 : options.focalAlpha;
  const cbBeta = options.cbBeta ?? 0.9999;
  const tau = options.tau ?? 1;
  const cb = (): Float32Array => classBalancedWeights(counts, cbBeta);
  const make = (
    config: Record<string, number | string | null>,
    compute: (logits: Tensor, labels: Int32Array) => LossResult,
  ): ClassifierLoss => ({ name, config: { loss: name, ...config }, compute });

  switch (name) {
    case "softmax":
      return make({}, (l, y) => softmaxCrossEntropy(l, y));
    case "seql": {
      const criterion = new SeqlCriterion({
        frequencies,
        lambda,
        gamma,
        seed: options.seed ?? 0,
      });
      return make(
        { lambda, gamma, maskSeed: options.seed ?? 0 },
        (l, y) => criterion.compute(l, y),
      );
    }
    case "sigmoid":
      return make({}, (l, y) => sigmoidCrossEntropy(l, y));
    case "eql":
      return make({ lambda }, (l, y) => eqlLoss(l, y, { frequencies, lambda }));
    case "focal":
      return make(
        { focalGamma, focalAlpha },
        (l, y) => focalLoss(l, y, { gamma: focalGamma, alpha: focalAlpha }),
      );
    case "cb-softmax": {
      const classWeight = cb();
      return make({ cbBeta }, (l, y) => softmaxCrossEntropy(l, y, { classWeight }));
    }
    case "cb-sigmoid": {
      const classWeight = cb();
      return make({ cbBeta }, (l, y) => sigmoidCrossEntropy(l, y, { classWeight }));
    }
    case "cb-focal": {
      const classWeight = cb();
      return make(
        { cbBeta, focalGamma, focalAlpha },
        (l, y) => focalLoss(l, y, { gamma: focalGamma, alpha: focalAlpha, classWeight }),
      );
    }
    case "balanced-softmax":
      return make(
        { tau },
        (l, y) => softmaxCrossEntropy(l, y, { logitAdjustment: { priors: frequencies, tau } }),
      );
  }
}

/** A classifier: a layer whose forward maps `[N, 3, H, W]` images to `[N, C]` logits. */
export interface Classifier extends Layer {
  /** The device holding the model. */
  readonly device: Device;
  /** Number of classes C. */
  readonly numClasses: number;
  /** Writes the parameter gradients without `∂L/∂images`; used instead of `backward` if present. */
  backwardParameters?(dy: Tensor<"f32">): void;
}

/** Uploads a normalised batch of square RGB images as an `[N, 3, S, S]` tensor. */
function imageTensor(device: Device, x: Float32Array, n: number): Tensor<"f32"> {
  const side = Math.round(Math.sqrt(x.length / n / 3));
  const t = new Tensor<"f32">(device.alloc("f32", x.length), [n, 3, side, side]);
  device.upload(t.buffer, x);
  return t;
}

/** What {@linkcode trainClassifier} needs. */
export interface TrainOptions {
  /** The model to train (its parameters are updated in place). */
  model: Classifier;
  /** Training batches (a loader over the long-tailed training set). */
  loader: BatchLoader;
  /** Schedule, optimiser settings and number of iterations. */
  recipe: TrainingRecipe;
  /** The loss. */
  loss: ClassifierLoss;
  /** Progress label (e.g. the loss name); no progress output when null. */
  label?: string | null;
  /** Called after every step with the step index, learning rate and loss. */
  onStep?: (step: number, lr: number, loss: number) => void;
}

/** Outcome of a training run. */
export interface TrainResult {
  /** Iterations run. */
  iterations: number;
  /** Mean loss over the last 10 % of the iterations. */
  finalLoss: number;
  /** Wall time of the loop in seconds. */
  seconds: number;
  /** Training images processed per second. */
  imagesPerSecond: number;
}

function emptyEpoch(images: number, batchSize: number): RangeError {
  return new RangeError(
    `loader must yield at least one batch per epoch, got none: batch size ${batchSize} with ` +
      `${images} training images`,
  );
}

/**
 * Trains a classifier for `recipe.iterations` steps, cycling through the loader's epochs.
 *
 * @param options Model, data, recipe and loss.
 * @returns Iterations, final loss and throughput.
 * @throws {RangeError} When `recipe.iterations` is not a positive integer, or when an epoch of the
 * loader yields no batch, instead of looping without progress (a `BatchLoader` already rejects a
 * batch larger than its data with `dropLast`).
 *
 * @example
 * ```ts ignore
 * import { trainClassifier, classifierLoss } from "@eql/eql/data";
 * const result = await trainClassifier({ model, loader, recipe, loss: classifierLoss("seql", { trainCounts }) });
 * console.log(result.imagesPerSecond);
 * ```
 */
export async function trainClassifier(options: TrainOptions): Promise<TrainResult> {
  const { model, loader, recipe, loss } = options;
  const { iterations } = recipe;
  if (!Number.isSafeInteger(iterations) || iterations < 1) {
    throw new RangeError(`recipe.iterations must be a positive integer, got ${iterations}`);
  }
  const schedule = recipeSchedule(recipe);
  const optimizer = recipeOptimizer(model.parameters(), recipe);
  const progress = options.label === null
    ? null
    : new Progress({ total: iterations, label: options.label ?? loss.name, unit: "it" });
  const tail = Math.max(1, Math.round(iterations * 0.1));
  let tailSum = 0, images = 0, step = 0;
  const started = performance.now();
  try {
    for (let epoch = 0; step < iterations; epoch++) {
      let batches = 0;
      for await (const batch of loader.epoch(epoch)) {
        if (step >= iterations) break;
        batches++;
        // `using` releases the batch and the loss's gradient at the end of the step, also on errors.
        using x = imageTensor(model.device, batch.x, batch.size);
        const logits = model.forward(x, true);
        using result = loss.compute(logits, batch.labels);
        if (model.backwardParameters) model.backwardParameters(result.grad);
        else model.backward(result.grad);
        const lr = schedule(step);
        optimizer.step(lr);
        const value = result.loss;
        if (step >= iterations - tail) tailSum += value;
        options.onStep?.(step, lr, value);
        progress?.update(step + 1, `loss ${value.toFixed(3)} lr ${lr.toPrecision(3)}`);
        images += batch.size;
        step++;
      }
      // An epoch without a batch would never advance the step count.
      if (batches === 0 && step < iterations) throw emptyEpoch(loader.length, recipe.batchSize);
    }
  } finally {
    optimizer.dispose();
    progress?.finish();
  }
  model.device.sync();
  const seconds = (performance.now() - started) / 1000;
  return {
    iterations: step,
    finalLoss: tailSum / Math.min(tail, step),
    seconds,
    imagesPerSecond: images / seconds,
  };
}

/**
 * Evaluates a classifier on a (balanced) test set: top-1, top-5, per-class and
 * many/medium/few accuracy.
 *
 * @param model The trained model (evaluated with running batch-norm statistics).
 * @param test Test images and labels.
 * @param normalization Per-channel mean and std used in training.
 * @param trainCounts Training images per class (defines the many/medium/few groups).
 * @param batchSize Evaluation batch size (default 500).
 * @returns The report.
 *
 * @example
 * ```ts ignore
 * const report = evaluateClassifier(model, test, CIFAR10_NORMALIZATION, counts);
 * console.log(report.top1, report.few);
 * ```
 */
export function evaluateClassifier(
  model: Classifier,
  test: ImageDataset,
  normalization: Normalization,
  trainCounts: ArrayLike<number>,
  batchSize = 500,
): ClassificationReport {
  const meter = new AccuracyMeter(model.numClasses);
  const side = Math.round(Math.sqrt(test.images.length / test.labels.length / 3));
  for (const batch of evalBatches(test, { batchSize, normalization, height: side, width: side })) {
    const x = imageTensor(model.device, batch.x, batch.size);
    try {
      const logits = model.forward(x, false);
      meter.add(logits.toArray(), batch.labels);
    } finally {
      x.dispose();
    }
  }
  return meter.report(trainCounts);
}
