// Placeholder until the im2col convolution lands.
import type { Conv2dShape } from "../device.ts";
/** Convolution forward. */
export function conv2dForward(
  _x: Float32Array,
  _w: Float32Array,
  _y: Float32Array,
  _s: Conv2dShape,
): void {
  throw new Error("conv2dForward: not implemented yet");
}
/** Convolution backward (data). */
export function conv2dBackwardData(
  _w: Float32Array,
  _dy: Float32Array,
  _dx: Float32Array,
  _s: Conv2dShape,
): void {
  throw new Error("conv2dBackwardData: not implemented yet");
}
/** Convolution backward (filter). */
export function conv2dBackwardFilter(
  _x: Float32Array,
  _dy: Float32Array,
  _dw: Float32Array,
  _s: Conv2dShape,
): void {
  throw new Error("conv2dBackwardFilter: not implemented yet");
}
