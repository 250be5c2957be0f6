/**
 * Long-tailed recognition with the Equalization Loss family, on the CPU and on CUDA GPUs.
 *
 * - Losses (`eqlLoss`, `seqlLoss`, `sigmoidCrossEntropy`, `softmaxCrossEntropy`, `focalLoss`,
 *   class-balanced weights, logit adjustment, smooth-L1), each one fused device operation that
 *   returns the mean loss and the gradient with respect to the logits.
 * - Tensors on a device (`tensor`, `zeros`), the CPU device (OpenBLAS or TypeScript GEMM) and the
 *   CUDA device (driver API, cuBLAS, cuDNN and the project's PTX kernels), `autoDevice()`.
 * - Layers and models with explicit forward/backward (`resnet32`, `resnet`, `boxHead`), SGD and
 *   learning-rate schedules, safetensors checkpoints with PyTorch names.
 * - Long-tailed data: CIFAR readers, CIFAR-LT construction, augmentation (AutoAugment, Cutout),
 *   frequencies, tail ratio, LVIS groups, many/medium/few metrics.
 *
 * @example
 * ```ts
 * import { eqlLoss, tensor } from "@eql/eql";
 * const logits = tensor(new Float32Array(2 * 3), [2, 3]);
 * const labels = new Int32Array([0, 3]); // 3 = background
 * const { loss, grad } = eqlLoss(logits, labels, { frequencies: [0.5, 1e-4, 1e-3] });
 * console.log(loss, grad.shape);
 * grad.dispose();
 * ```
 *
 * @module
 */

// Tensors and devices
export { shapeSize, Tensor, tensor, zeros } from "./src/tensor.ts";
export type {
  BatchNormGrads,
  BatchNormParams,
  BatchNormShape,
  Conv2dShape,
  Device,
  DeviceBuffer,
  DType,
  GemmShape,
  HostArray,
  PoolShape,
  SgdArgs,
  ShortcutShape,
  SigmoidLossParams,
  SmoothL1Shape,
  SoftmaxLossParams,
} from "./src/device/device.ts";
export { CpuBuffer, CpuDevice, cpuDevice, type CpuDeviceOptions } from "./src/device/cpu.ts";
export type { GemmBackend, GemmChoice } from "./src/device/cpu/gemm.ts";
export { CpuKernelsUnavailableError } from "./ffi/cpu_kernels.ts";
export type { CpuKernelsChoice } from "./ffi/cpu_kernels.ts";
export { CudaBuffer, CudaDevice, cudaDevice } from "./src/device/cuda.ts";
export type {
  CudnnConvolutions,
  Direction as ConvolutionDirection,
} from "./src/device/cuda/conv.ts";
export type {
  AllocatorStats,
  CudaDeviceOptions,
  CudaMemoryInfo,
  CudaTimer,
  KernelArg,
  KernelLauncher,
} from "./src/device/cuda.ts";
export { autoDevice, chooseDevice, cudaAvailable } from "./src/device/auto.ts";
export type { AutoDeviceOptions, CudaAvailability, DeviceChoice } from "./src/device/auto.ts";
export { maskDraw } from "./src/device/mask.ts";
export { NvidiaError } from "./ffi/nvidia_error.ts";
export { CudaError } from "./ffi/cuda.ts";
export { CublasError } from "./ffi/cublas.ts";
export { CudnnError } from "./ffi/cudnn.ts";
export { LibraryNotFoundError } from "./ffi/discovery.ts";
export type { NativePermission } from "./ffi/permissions.ts";

// Losses
export {
  classBalancedWeights,
  DEFAULT_EQL_LAMBDA,
  DEFAULT_SEQL_GAMMA,
  DEFAULT_SEQL_LAMBDA,
  eqlLoss,
  focalLoss,
  SeqlCriterion,
  seqlLoss,
  sigmoidCrossEntropy,
  smoothL1Loss,
  softmaxCrossEntropy,
  suppressionWeights,
} from "./src/losses/mod.ts";
export type {
  EqlOptions,
  EqlSuppressionOptions,
  ExponentialWeight,
  FocalOptions,
  GompertzWeight,
  GradientOutput,
  ImageLevelLabels,
  Labels,
  LogitAdjustment,
  LossResult,
  SeqlOptions,
  SigmoidCrossEntropyOptions,
  SmoothL1Options,
  SoftmaxCrossEntropyOptions,
  SuppressionOptions,
  WeightFunction,
} from "./src/losses/mod.ts";

// Layers, models, optimisation, checkpoints
export type { Layer, Parameter, StateTensor } from "./src/nn/layer.ts";
export { Conv2d, type Conv2dOptions } from "./src/nn/conv2d.ts";
export { BatchNorm2d, type BatchNormOptions } from "./src/nn/batchnorm.ts";
export { ReLU } from "./src/nn/relu.ts";
export { Linear, type LinearOptions } from "./src/nn/linear.ts";
export { GlobalAvgPool } from "./src/nn/pool.ts";
export { Sequential } from "./src/nn/sequential.ts";
export { BasicBlock, type BasicBlockOptions } from "./src/nn/basic_block.ts";
export { ResNet, resnet, resnet32, type ResNetOptions } from "./src/nn/resnet.ts";
export { BoxHead, boxHead, type BoxHeadOptions, type BoxHeadOutput } from "./src/nn/box_head.ts";
export { boxRegressionLoss, type BoxRegressionOptions } from "./src/losses/box.ts";
export { type Counter, type CountingLayer, parameterCount } from "./src/nn/named.ts";
export { SGD, type SgdOptions } from "./src/optim/sgd.ts";
export {
  cosine,
  type CosineOptions,
  type Schedule,
  warmupMultiStep,
  type WarmupMultiStepOptions,
} from "./src/optim/schedule.ts";
export {
  paperRecipe,
  quickRecipe,
  type RecipeDecay,
  recipeOptimizer,
  recipeSchedule,
  type TrainingRecipe,
} from "./src/optim/recipe.ts";
export {
  CheckpointError,
  decodeSafetensors,
  encodeSafetensors,
  loadCheckpoint,
  loadStateDict,
  readSafetensors,
  type SafetensorsContents,
  type SafetensorsDType,
  type SafetensorsTensor,
  saveCheckpoint,
  stateDict,
  writeSafetensors,
} from "./src/checkpoint.ts";

// Long-tail utilities, data, metrics, training
export * from "./src/longtail/mod.ts";
export { Random, type RandomState, type Shufflable } from "./src/random.ts";
export { AccuracyMeter, type ClassificationReport } from "./src/metrics.ts";
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
  readTar,
  readTarGz,
  readTarStream,
  type TarEntry,
  type TarEntryType,
  TarParser,
  type TarReadOptions,
} from "./src/data/tar.ts";
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

// Detection: long-tailed proposals, AP, gradient statistics, plots
export {
  collateProposals,
  type LongTailProposalOptions,
  LongTailProposals,
  LVIS_V05_TRAIN_IMAGES,
  type ProposalBatch,
  type ProposalImage,
  type ProposalSource,
} from "./src/data/proposals.ts";
export {
  ProposalFile,
  readProposalFeatures,
  writeProposalFeatures,
} from "./src/data/proposals_reader.ts";
export { type ApInterpolation, averagePrecision, recallThresholds } from "./src/detection/ap.ts";
export {
  type ApSummary,
  type FrequencyGroup,
  ProposalEvaluator,
  type ProposalEvaluatorOptions,
  summarizeAP,
} from "./src/detection/evaluate.ts";
export { GradientStats } from "./src/detection/gradients.ts";
export { BOX_WEIGHTS, decodeBoxes, encodeBoxes } from "./src/detection/boxes.ts";
export {
  barChartSvg,
  type BarPanel,
  type ChartBand,
  type ChartPanel,
  type ChartSeries,
  type ChartSize,
  lineChartSvg,
} from "./src/plot.ts";
