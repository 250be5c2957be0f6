// Per-element arithmetic of the batch-norm tail (batchnorm.cu), shared with the host program that
// checks it against a float64 formula without a GPU.
#ifndef EQL_BN_MATH_CUH
#define EQL_BN_MATH_CUH

#include "hd.cuh"

/// A channel's 1/sqrt(var + eps): the training forward's saved value as it is, or computed from
/// the running variance (correctly rounded square root and division).
EQL_HD float bn_inv_std(float stat, float eps, bool fromVariance) {
  return fromVariance ? 1.0f / sqrtf(stat + eps) : stat;
}

/// gamma·(x − mean)·invStd + beta with `scale` = gamma·invStd: one subtraction, one fused
/// multiply-add (no cancellation between a large mean and a large shift).
EQL_HD float bn_affine(float x, float mean, float scale, float beta) {
  return fmaf(x - mean, scale, beta);
}

/// The ReLU as relu_forward computes it (NaN and −0 become +0), or the identity.
EQL_HD float bn_act(float v, bool relu) { return relu ? (v > 0.0f ? v : 0.0f) : v; }

#endif  // EQL_BN_MATH_CUH
