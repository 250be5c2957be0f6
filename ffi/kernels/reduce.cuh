// Reductions over a row group: the threads that share one row of a row-wise kernel.
//
// Row-wise kernels run with blockDim = (T, R): R rows per block, T threads per row. Either T = 32
// (one warp per row, several rows per block, warp shuffles only) or R = 1 (one block per row,
// T a multiple of 32 up to 1024, warp shuffles then one exchange through shared memory). Every
// thread of the group receives the result. The combination order is fixed by the launch shape,
// so results are deterministic run to run.
#ifndef EQL_REDUCE_CUH
#define EQL_REDUCE_CUH

#define EQL_FULL_MASK 0xffffffffu
#define EQL_FLT_MAX 3.402823466e+38f

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(EQL_FULL_MASK, v, o));
  return v;
}

__device__ __forceinline__ double warp_sum(double v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(EQL_FULL_MASK, v, o);
  return v;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(EQL_FULL_MASK, v, o);
  return v;
}

/// Maximum over the row group (NaN inputs are ignored, as fmaxf does) together with "any thread
/// raised `flag`". `scratchF` holds 32 floats and `scratchI` 32 ints.
__device__ __forceinline__ float group_max_any(float v, bool& flag, float* scratchF,
                                               int* scratchI) {
  v = warp_max(v);
  flag = __any_sync(EQL_FULL_MASK, flag);
  if (blockDim.x == 32) return v;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  __syncthreads();  // an earlier reduction may still be reading the scratch arrays
  if (lane == 0) {
    scratchF[warp] = v;
    scratchI[warp] = flag ? 1 : 0;
  }
  __syncthreads();
  flag = __any_sync(EQL_FULL_MASK, lane < warps && scratchI[lane] != 0);
  return warp_max(lane < warps ? scratchF[lane] : -EQL_FLT_MAX);
}

/// Sum over the row group. `scratch` holds 32 floats.
__device__ __forceinline__ float group_sum(float v, float* scratch) {
  v = warp_sum(v);
  if (blockDim.x == 32) return v;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  return warp_sum(lane < warps ? scratch[lane] : 0.0f);
}

/// Two sums over the row group at once. `scratch` holds 64 floats.
__device__ __forceinline__ void group_sum2(float& a, float& b, float* scratch) {
  a = warp_sum(a);
  b = warp_sum(b);
  if (blockDim.x == 32) return;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) {
    scratch[warp] = a;
    scratch[32 + warp] = b;
  }
  __syncthreads();
  a = warp_sum(lane < warps ? scratch[lane] : 0.0f);
  b = warp_sum(lane < warps ? scratch[32 + lane] : 0.0f);
}

#endif  // EQL_REDUCE_CUH
