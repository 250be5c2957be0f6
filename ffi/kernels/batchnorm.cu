// The tail of a residual block's batch norm, in one pass over the data:
//   y = act(gamma[ch]·(x − mean[ch])·invStd[ch] + beta[ch] (+ residual)),   act = ReLU or identity,
// over NCHW data [n, c, hw] with ch = (i / hw) mod c. The statistics come from the training
// forward (cuDNN's saved batch mean and 1/sqrt(var + eps): `fromVariance` = 0) or are the running
// statistics (`stat` is the running variance and invStd = 1/sqrt(stat + eps): `fromVariance` = 1).
// The ReLU is `v > 0 ? v : 0`, as relu_forward (NaN and −0 become +0). `residual` may be null.
//
// Grid-stride loop over 256-thread blocks (src/device/cuda/_kernels.ts, batchNormTail). When hw is
// a multiple of 4 and every array is 16-byte aligned, each step moves 4 elements of one channel
// with 16-byte accesses; otherwise one element. Each element is read and then written by the same
// thread, so y may be x or residual (no __restrict__ on them). Requires n·c·hw < 2^31.
#include "bn_math.cuh"

extern "C" __global__ void batch_norm_tail(const float* x, const float* residual, float* y,
                                           const float* __restrict__ gamma,
                                           const float* __restrict__ beta,
                                           const float* __restrict__ mean,
                                           const float* __restrict__ stat, int n, int c, int hw,
                                           float eps, int fromVariance, int relu) {
  const unsigned C = (unsigned)c, HW = (unsigned)hw;
  const size_t total = (size_t)n * C * HW;
  const size_t start = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  const size_t stride = (size_t)gridDim.x * blockDim.x;
  const bool fromVar = fromVariance != 0, act = relu != 0, add = residual != nullptr;
  const size_t addresses = (size_t)x | (size_t)y | (add ? (size_t)residual : (size_t)0);
  if ((HW & 3u) == 0u && (addresses & 15u) == 0u) {
    // Four consecutive elements lie in one channel plane.
    const size_t total4 = total / 4;
    const unsigned hw4 = HW / 4u;
    for (size_t i = start; i < total4; i += stride) {
      const unsigned ch = ((unsigned)i / hw4) % C;
      const float a = gamma[ch] * bn_inv_std(stat[ch], eps, fromVar), m = mean[ch], b = beta[ch];
      const float4 v = reinterpret_cast<const float4*>(x)[i];
      float4 o = make_float4(bn_affine(v.x, m, a, b), bn_affine(v.y, m, a, b),
                             bn_affine(v.z, m, a, b), bn_affine(v.w, m, a, b));
      if (add) {
        const float4 r = reinterpret_cast<const float4*>(residual)[i];
        o = make_float4(o.x + r.x, o.y + r.y, o.z + r.z, o.w + r.w);
      }
      reinterpret_cast<float4*>(y)[i] =
          make_float4(bn_act(o.x, act), bn_act(o.y, act), bn_act(o.z, act), bn_act(o.w, act));
    }
    return;
  }
  for (size_t i = start; i < total; i += stride) {
    const unsigned ch = ((unsigned)i / HW) % C;
    const float a = gamma[ch] * bn_inv_std(stat[ch], eps, fromVar);
    float o = bn_affine(x[i], mean[ch], a, beta[ch]);
    if (add) o += residual[i];
    y[i] = bn_act(o, act);
  }
}
