// Element-wise and small layer kernels: ReLU forward/backward, add, global average pooling
// forward/backward and the option-A shortcut of the CIFAR ResNets forward/backward.
//
// Flat kernels use a grid-stride loop over 256-thread blocks, with 16-byte (float4) accesses when
// every pointer is 16-byte aligned and scalar accesses for the rest. In-place use (an output equal
// to an input) is allowed: each element is read and then written by the same thread, so the
// pointers are not marked __restrict__.
#include "reduce.cuh"

__device__ __forceinline__ bool eql_aligned16(const void* a, const void* b, const void* c) {
  return (((size_t)a | (size_t)b | (size_t)c) & 15u) == 0u;
}

__device__ __forceinline__ float relu_of(float v) { return v > 0.0f ? v : 0.0f; }

// y = max(x, 0); NaN and −0 become +0, as `x > 0 ? x : 0` gives.
extern "C" __global__ void relu_forward(const float* x, float* y, int length) {
  const size_t n = (size_t)length, start = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  const size_t stride = (size_t)gridDim.x * blockDim.x;
  size_t done = 0;
  if (eql_aligned16(x, y, y)) {
    const size_t n4 = n / 4;
    for (size_t i = start; i < n4; i += stride) {
      const float4 v = reinterpret_cast<const float4*>(x)[i];
      reinterpret_cast<float4*>(y)[i] =
          make_float4(relu_of(v.x), relu_of(v.y), relu_of(v.z), relu_of(v.w));
    }
    done = n4 * 4;
  }
  for (size_t i = done + start; i < n; i += stride) y[i] = relu_of(x[i]);
}

// dx = y > 0 ? dy : 0, from the forward output y.
extern "C" __global__ void relu_backward(const float* y, const float* dy, float* dx, int length) {
  const size_t n = (size_t)length, start = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  const size_t stride = (size_t)gridDim.x * blockDim.x;
  size_t done = 0;
  if (eql_aligned16(y, dy, dx)) {
    const size_t n4 = n / 4;
    for (size_t i = start; i < n4; i += stride) {
      const float4 a = reinterpret_cast<const float4*>(y)[i];
      const float4 g = reinterpret_cast<const float4*>(dy)[i];
      reinterpret_cast<float4*>(dx)[i] =
          make_float4(a.x > 0.0f ? g.x : 0.0f, a.y > 0.0f ? g.y : 0.0f, a.z > 0.0f ? g.z : 0.0f,
                      a.w > 0.0f ? g.w : 0.0f);
    }
    done = n4 * 4;
  }
  for (size_t i = done + start; i < n; i += stride) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

// out = a + b.
extern "C" __global__ void add(const float* a, const float* b, float* out, int length) {
  const size_t n = (size_t)length, start = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  const size_t stride = (size_t)gridDim.x * blockDim.x;
  size_t done = 0;
  if (eql_aligned16(a, b, out)) {
    const size_t n4 = n / 4;
    for (size_t i = start; i < n4; i += stride) {
      const float4 u = reinterpret_cast<const float4*>(a)[i];
      const float4 v = reinterpret_cast<const float4*>(b)[i];
      reinterpret_cast<float4*>(out)[i] = make_float4(u.x + v.x, u.y + v.y, u.z + v.z, u.w + v.w);
    }
    done = n4 * 4;
  }
  for (size_t i = done + start; i < n; i += stride) out[i] = a[i] + b[i];
}

// y[p] = mean of x[p·hw .. p·hw + hw) for each of the n·c planes p. One warp per plane
// (blockDim = (32, R)); the sum is kept in float64 and divided once, as the CPU device does.
extern "C" __global__ void global_avg_pool_forward(const float* __restrict__ x,
                                                   float* __restrict__ y, int n, int c, int hw) {
  const size_t planes = (size_t)n * (size_t)c;
  const size_t p = (size_t)blockIdx.x * blockDim.y + threadIdx.y;
  if (p >= planes) return;
  const float* src = x + p * (size_t)hw;
  double sum = 0.0;
  for (int i = threadIdx.x; i < hw; i += 32) sum += (double)src[i];
  sum = warp_sum(sum);
  if (threadIdx.x == 0) y[p] = (float)(sum / (double)hw);
}

// dx[p·hw + i] = dy[p] / hw. One warp per plane (blockDim = (32, R)).
extern "C" __global__ void global_avg_pool_backward(const float* __restrict__ dy,
                                                    float* __restrict__ dx, int n, int c, int hw) {
  const size_t planes = (size_t)n * (size_t)c;
  const size_t p = (size_t)blockIdx.x * blockDim.y + threadIdx.y;
  if (p >= planes) return;
  const float g = (float)((double)dy[p] / (double)hw);
  float* dst = dx + p * (size_t)hw;
  for (int i = threadIdx.x; i < hw; i += 32) dst[i] = g;
}

// Option-A shortcut: y[b, pad + ci, i, j] = x[b, ci, 2i, 2j] with pad = (cOut − cIn) / 2 and
// zeros in the padded channels; x is [n, cIn, h, w], y is [n, cOut, ceil(h/2), ceil(w/2)].
// One thread per output element. Requires cOut ≥ cIn and fewer than 2^31 elements in x and y.
extern "C" __global__ void shortcut_forward(const float* __restrict__ x, float* __restrict__ y,
                                            int n, int cIn, int h, int w, int cOut) {
  const unsigned oh = ((unsigned)h + 1u) / 2u, ow = ((unsigned)w + 1u) / 2u;
  const unsigned pad = ((unsigned)cOut - (unsigned)cIn) / 2u;
  const size_t total = (size_t)n * (size_t)cOut * oh * ow;
  const size_t stride = (size_t)gridDim.x * blockDim.x;
  for (size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += stride) {
    unsigned rest = (unsigned)idx;
    const unsigned j = rest % ow;
    rest /= ow;
    const unsigned i = rest % oh;
    rest /= oh;
    const unsigned co = rest % (unsigned)cOut;
    const unsigned b = rest / (unsigned)cOut;
    float v = 0.0f;
    if (co >= pad && co - pad < (unsigned)cIn) {
      v = x[(((size_t)b * (unsigned)cIn + (co - pad)) * (unsigned)h + 2u * i) * (unsigned)w +
            2u * j];
    }
    y[idx] = v;
  }
}

// Backward of shortcut_forward: dx[b, ci, 2i, 2j] = dy[b, pad + ci, i, j], zeros at the odd rows
// and columns. One thread per element of dx.
extern "C" __global__ void shortcut_backward(const float* __restrict__ dy, float* __restrict__ dx,
                                             int n, int cIn, int h, int w, int cOut) {
  const unsigned oh = ((unsigned)h + 1u) / 2u, ow = ((unsigned)w + 1u) / 2u;
  const unsigned pad = ((unsigned)cOut - (unsigned)cIn) / 2u;
  const size_t total = (size_t)n * (size_t)cIn * (unsigned)h * (unsigned)w;
  const size_t stride = (size_t)gridDim.x * blockDim.x;
  for (size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += stride) {
    unsigned rest = (unsigned)idx;
    const unsigned s = rest % (unsigned)w;
    rest /= (unsigned)w;
    const unsigned r = rest % (unsigned)h;
    rest /= (unsigned)h;
    const unsigned ci = rest % (unsigned)cIn;
    const unsigned b = rest / (unsigned)cIn;
    float v = 0.0f;
    if (((r | s) & 1u) == 0u) {
      v = dy[(((size_t)b * (unsigned)cOut + pad + ci) * oh + r / 2u) * ow + s / 2u];
    }
    dx[idx] = v;
  }
}
