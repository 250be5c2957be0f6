/**
 * The names every entry point that deals in tensors re-exports: the tensor itself and the device
 * contract its signatures mention, so that each entry point's documentation is complete on its
 * own.
 *
 * @module
 */

export { shapeSize, Tensor, tensor, zeros } from "./tensor.ts";
export type {
  BatchNormGrads,
  BatchNormParams,
  BatchNormShape,
  Conv2dShape,
  Device,
  DeviceBuffer,
  DType,
  Eqlv2LossParams,
  GemmShape,
  HostArray,
  PoolShape,
  SeesawLossParams,
  SgdArgs,
  ShortcutShape,
  SigmoidLossParams,
  SmoothL1Shape,
  SoftmaxLossParams,
} from "./device/device.ts";
