// Placeholder until the fused CPU losses land.
/** Sigmoid family with host arrays in place of device buffers. */
export interface SigmoidLossArrays {
  n: number;
  c: number;
  scale: number;
  suppress?: Float32Array;
  backgroundExempt: boolean;
  classWeight?: Float32Array;
  focalGamma: number;
  focalAlpha: number;
  imageOfRow?: Int32Array;
  keepMask?: Int32Array;
}
/** Softmax family with host arrays in place of device buffers. */
export interface SoftmaxLossArrays {
  n: number;
  c: number;
  scale: number;
  suppress?: Float32Array;
  gammaThreshold: number;
  seed: number;
  counter: number;
  classWeight?: Float32Array;
  logitBias?: Float32Array;
}
/** Fused sigmoid-family loss. */
export function sigmoidLoss(
  _l: Float32Array,
  _y: Int32Array,
  _g: Float32Array,
  _r: Float32Array,
  _p: SigmoidLossArrays,
): void {
  throw new Error("sigmoidLoss: not implemented yet");
}
/** Fused softmax-family loss. */
export function softmaxLoss(
  _l: Float32Array,
  _y: Int32Array,
  _g: Float32Array,
  _r: Float32Array,
  _p: SoftmaxLossArrays,
): void {
  throw new Error("softmaxLoss: not implemented yet");
}
/** Smooth-L1 loss. */
export function smoothL1Loss(
  _pred: Float32Array,
  _target: Float32Array,
  _w: Float32Array,
  _g: Float32Array,
  _r: Float32Array,
  _n: number,
  _d: number,
  _beta: number,
  _scale: number,
): void {
  throw new Error("smoothL1Loss: not implemented yet");
}
