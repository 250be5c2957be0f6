/**
 * Layers and models with explicit forward and backward passes (`Conv2d`, `BatchNorm2d`, `Linear`,
 * `resnet32`, `resnet`, `boxHead`), SGD with learning-rate schedules and the paper's training
 * recipes, and safetensors checkpoints whose tensor names follow PyTorch's.
 *
 * `@eql/eql` holds the same names; this entry point leaves out the losses.
 *
 * @example
 * ```ts
 * import { resnet32, SGD, tensor } from "@eql/eql/nn";
 * const model = resnet32({ numClasses: 10 });
 * const sgd = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: 2e-4 });
 * const x = tensor(new Float32Array(2 * 3 * 32 * 32), [2, 3, 32, 32]);
 * const logits = model.forward(x, true); // [2, 10]
 * console.log(logits.shape, sgd.lr);
 * ```
 *
 * @module
 */

export type { Layer, Parameter, StateTensor } from "./src/nn/layer.ts";
export { Conv2d, type Conv2dOptions } from "./src/nn/conv2d.ts";
export { BatchNorm2d, type BatchNormOptions } from "./src/nn/batchnorm.ts";
export { ReLU } from "./src/nn/relu.ts";
export { Linear, type LinearOptions } from "./src/nn/linear.ts";
export { NormalizedLinear, type NormalizedLinearOptions } from "./src/nn/normalized_linear.ts";
export { GlobalAvgPool } from "./src/nn/pool.ts";
export { Sequential } from "./src/nn/sequential.ts";
export { BasicBlock, type BasicBlockOptions } from "./src/nn/basic_block.ts";
export { ResNet, resnet, resnet32, type ResNetOptions } from "./src/nn/resnet.ts";
export { BoxHead, boxHead, type BoxHeadOptions, type BoxHeadOutput } from "./src/nn/box_head.ts";
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
export { Random, type RandomState, type Shufflable } from "./src/random.ts";
export * from "./src/_core.ts";
