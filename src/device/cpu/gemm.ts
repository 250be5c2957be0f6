// Placeholder until the OpenBLAS / TypeScript GEMM lands.
/** Row-major SGEMM with optional bias (see `Device.gemm`). */
export function sgemm(
  _transA: boolean,
  _transB: boolean,
  _m: number,
  _n: number,
  _k: number,
  _alpha: number,
  _a: Float32Array,
  _b: Float32Array,
  _beta: number,
  _c: Float32Array,
  _bias?: Float32Array,
): void {
  throw new Error("sgemm: not implemented yet");
}
/** Which GEMM implementation runs. */
export function gemmBackend(): "openblas" | "typescript" {
  return "typescript";
}
