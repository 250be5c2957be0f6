// Fused SGD step with PyTorch semantics (torch.optim.SGD without dampening):
//   g = grad + weightDecay · p;  buf = momentum · buf + g;  g = nesterov ? g + momentum · buf : buf;
//   p −= lr · g.
// With momentum 0 the buffer holds the last step's g and the update is plain SGD.
// Grid-stride over 256-thread blocks, 16-byte accesses when all three arrays are 16-byte aligned.

__device__ __forceinline__ void sgd_step(float& p, float grad, float& buf, float lr, float momentum,
                                         float weightDecay, bool nesterov) {
  float g = grad + weightDecay * p;
  const float m = momentum * buf + g;
  buf = m;
  g = nesterov ? g + momentum * m : m;
  p -= lr * g;
}

extern "C" __global__ void sgd_update(float* __restrict__ param, const float* __restrict__ grad,
                                      float* __restrict__ momentumBuf, int length, float lr,
                                      float momentum, float weightDecay, int nesterov) {
  const size_t n = (size_t)length, start = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  const size_t stride = (size_t)gridDim.x * blockDim.x;
  const bool nest = nesterov != 0;
  size_t done = 0;
  if ((((size_t)param | (size_t)grad | (size_t)momentumBuf) & 15u) == 0u) {
    const size_t n4 = n / 4;
    for (size_t i = start; i < n4; i += stride) {
      float4 p = reinterpret_cast<float4*>(param)[i];
      float4 b = reinterpret_cast<float4*>(momentumBuf)[i];
      const float4 g = reinterpret_cast<const float4*>(grad)[i];
      sgd_step(p.x, g.x, b.x, lr, momentum, weightDecay, nest);
      sgd_step(p.y, g.y, b.y, lr, momentum, weightDecay, nest);
      sgd_step(p.z, g.z, b.z, lr, momentum, weightDecay, nest);
      sgd_step(p.w, g.w, b.w, lr, momentum, weightDecay, nest);
      reinterpret_cast<float4*>(param)[i] = p;
      reinterpret_cast<float4*>(momentumBuf)[i] = b;
    }
    done = n4 * 4;
  }
  for (size_t i = done + start; i < n; i += stride) {
    float p = param[i], b = momentumBuf[i];
    sgd_step(p, grad[i], b, lr, momentum, weightDecay, nest);
    param[i] = p;
    momentumBuf[i] = b;
  }
}
