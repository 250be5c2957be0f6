/**
 * Long-tailed image data and the classifier training loop over it: the CIFAR readers and their
 * download, long-tailed subsets (CIFAR-LT) and a synthetic long-tailed set, normalisation, the
 * augmentation pipeline (crop, flip, AutoAugment, Cutout), the worker-backed batch loader, the
 * long-tail statistics and samplers, accuracy metrics with many/medium/few splits, and
 * `trainClassifier` / `evaluateClassifier`.
 *
 * @example
 * ```ts
 * import {
 *   BatchLoader,
 *   CIFAR10_NORMALIZATION,
 *   classCounts,
 *   STANDARD_AUGMENTATION,
 *   syntheticLongTailed,
 * } from "@eql/eql/data";
 * const data = syntheticLongTailed({ numClasses: 10, imbalanceFactor: 10 });
 * console.log(classCounts(data.train.labels, 10)); // from the head class down to the tail
 * using loader = new BatchLoader(data.train, {
 *   batchSize: 64,
 *   normalization: CIFAR10_NORMALIZATION,
 *   transforms: STANDARD_AUGMENTATION,
 *   seed: 1,
 * });
 * for await (const batch of loader.epoch(0)) console.log(batch.size, batch.x.length);
 * ```
 *
 * @module
 */

export * from "./src/longtail/mod.ts";
export { AccuracyMeter, type ClassificationReport } from "./src/metrics.ts";
export { Random, type RandomState, type Shufflable } from "./src/random.ts";
export {
  type CifarLabelKind,
  type CifarLoadOptions,
  type CifarName,
  type CifarSource,
  type CifarSplits,
  decodeCifarRecords,
  findCifar,
  loadCifar,
} from "./src/data/cifar.ts";
export { checkDataset, type ImageDataset } from "./src/data/dataset.ts";
export { DatasetError } from "./src/data/errors.ts";
export {
  longTailedIndices,
  type LongTailOptions,
  makeLongTailed,
  subsetDataset,
} from "./src/data/long_tailed.ts";
export {
  type SyntheticDataset,
  syntheticLongTailed,
  type SyntheticOptions,
} from "./src/data/synthetic.ts";
export {
  CIFAR100_NORMALIZATION,
  CIFAR10_NORMALIZATION,
  type Normalization,
  normalizeImages,
} from "./src/data/normalize.ts";
export {
  assembleBatch,
  AUTOAUGMENT_CUTOUT,
  type Batch,
  STANDARD_AUGMENTATION,
  type Transform,
} from "./src/data/pipeline.ts";
export {
  BatchLoader,
  type EpochPlan,
  evalBatches,
  type EvalOptions,
  type LabelledImages,
  type LoaderOptions,
} from "./src/data/loader.ts";
export { cutout, type CutoutBox, randomCrop, randomHorizontalFlip } from "./src/data/augment.ts";
export {
  autoAugment,
  type AutoAugmentOp,
  type AutoAugmentStep,
  type AutoAugmentTrace,
  CIFAR10_POLICY,
  type SubPolicy,
} from "./src/data/autoaugment.ts";
export {
  type ArchiveInfo,
  ChecksumMismatchError,
  CIFAR_ARCHIVES,
  DownloadError,
  downloadFile,
  type DownloadOptions,
  type DownloadResult,
} from "./src/data/download.ts";
export { Progress, type ProgressOptions } from "./src/progress.ts";
export {
  type Classifier,
  CLASSIFIER_LOSSES,
  type ClassifierLoss,
  classifierLoss,
  type ClassifierLossName,
  type ClassifierLossOptions,
  evaluateClassifier,
  trainClassifier,
  type TrainOptions,
  type TrainResult,
} from "./src/training.ts";
// Types the training loop's signatures mention (their home is `@eql/eql`).
export type { Layer, Parameter, StateTensor } from "./src/nn/layer.ts";
export type { GradientOutput, LossResult } from "./src/losses/mod.ts";
export type { RecipeDecay, TrainingRecipe } from "./src/optim/recipe.ts";
export * from "./src/_core.ts";
