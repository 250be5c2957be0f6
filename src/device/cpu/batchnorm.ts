// Placeholder until the batch-norm kernels land.
import type { BatchNormShape } from "../device.ts";
/** Training forward. */
export function batchNormForwardTraining(
  _x: Float32Array,
  _y: Float32Array,
  _gamma: Float32Array,
  _beta: Float32Array,
  _runningMean: Float32Array,
  _runningVar: Float32Array,
  _saveMean: Float32Array,
  _saveInvStd: Float32Array,
  _shape: BatchNormShape,
  _momentum: number,
  _eps: number,
): void {
  throw new Error("batchNormForwardTraining: not implemented yet");
}
/** Inference forward. */
export function batchNormForwardInference(
  _x: Float32Array,
  _y: Float32Array,
  _gamma: Float32Array,
  _beta: Float32Array,
  _runningMean: Float32Array,
  _runningVar: Float32Array,
  _shape: BatchNormShape,
  _eps: number,
): void {
  throw new Error("batchNormForwardInference: not implemented yet");
}
/** Backward. */
export function batchNormBackward(
  _x: Float32Array,
  _dy: Float32Array,
  _dx: Float32Array,
  _gamma: Float32Array,
  _dGamma: Float32Array,
  _dBeta: Float32Array,
  _saveMean: Float32Array,
  _saveInvStd: Float32Array,
  _shape: BatchNormShape,
): void {
  throw new Error("batchNormBackward: not implemented yet");
}
