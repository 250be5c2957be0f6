// Per-element arithmetic of the fused losses, shared by the kernels (losses.cu) and by the host
// program that checks it against float64 formulas and finite differences without a GPU.
//
// Everything is float32 with the accurate expf / powf (no fast-math intrinsics) and short,
// accurate forms of the reciprocal and log1p that the host check measures against float64, so
// each element lands within a few ulp of a float64 evaluation.
#ifndef EQL_LOSS_MATH_CUH
#define EQL_LOSS_MATH_CUH

#include "hd.cuh"

/// s + err == a + b exactly (Knuth's TwoSum; no ordering of |a| and |b| needed).
EQL_HD void two_sum(float a, float b, float& s, float& err) {
  s = a + b;
  const float bb = s - a;
  err = (a - (s - bb)) + (b - bb);
}

/// exp(hi + lo) for a small correction lo: expf(hi) · (1 + lo). An underflowed exponential stays
/// 0 even when lo is not finite (a logit of -inf gives probability 0, not NaN).
EQL_HD float exp_hilo(float hi, float lo) {
  const float e = expf(hi);
  return e == 0.0f ? 0.0f : fmaf(e, lo, e);
}

/// exp(z - m) where z = zHi + zLo (a logit plus its offset, kept unrounded). The difference is
/// formed exactly, so the result carries only expf's own error instead of |z - m| · 2^-24.
EQL_HD float exp_shifted(float zHi, float zLo, float m) {
  float d, dLo;
  two_sum(zHi, -m, d, dLo);
  return exp_hilo(d, dLo + zLo);
}

/// 1/d for d in [1, 3] to within 1 ulp: the hardware reciprocal estimate (rel. error ≤ 2^-23)
/// refined by one Newton step, instead of the correctly rounded division's longer sequence.
EQL_HD float rcp_refined(float d) {
#if defined(__CUDA_ARCH__)
  float r;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(d));
#else
  float r = 1.0f / d;
#endif
  return fmaf(r, fmaf(-d, r, 1.0f), r);
}

/// log1p(x) for x in [0, 1] to within 2 ulp (the host check measures it against float64):
/// 2·atanh(s) with s = x / (2 + x) in [0, 1/3], summed through s^13 (truncation < 2e-8
/// relative). Cheaper than the general log1pf, whose range reduction the sigmoid does not need
/// because its argument is always e^-|z|.
EQL_HD float log1p_unit(float x) {
  const float d = 2.0f + x;
  const float r = rcp_refined(d);
  float s = x * r;
  s = fmaf(r, fmaf(-s, d, x), s);  // one residual correction: s to within 0.5 ulp
  const float t = s * s;
  float q = fmaf(t, 1.0f / 13.0f, 1.0f / 11.0f);
  q = fmaf(t, q, 1.0f / 9.0f);
  q = fmaf(t, q, 1.0f / 7.0f);
  q = fmaf(t, q, 1.0f / 5.0f);
  q = fmaf(t, q, 1.0f / 3.0f);
  const float a = s + s;
  return fmaf(a, q * t, a);
}

/// One element of the sigmoid family: its weighted loss term and its scaled gradient.
struct SigmoidTerm {
  float loss;  // w · α_t · (1 − p_t)^γ · BCE(z, y)
  float grad;  // scale · ∂loss/∂z
};

/// The sigmoid-family element for logit z, target y (`target`), element weight w.
///
/// With p = σ(z), p_t = p for the target and 1 − p otherwise, q = 1 − p_t and s = ±1 for
/// target / non-target: BCE = −log p_t = max(z, 0) − z·y + log1p(e^−|z|), and
/// d/dz [−q^γ log p_t] = −s · q^γ · (γ · p_t · BCE + q), which is σ(z) − y when γ = 0.
/// σ(z) and σ(−z) are both formed from e^−|z| so that neither suffers cancellation.
/// `focal` is false for plain cross-entropy (γ = 0 and α off), which skips α_t and powf.
EQL_HD SigmoidTerm sigmoid_term(float z, bool target, float w, float scale, bool focal,
                                float gamma, float alpha) {
  const float y = target ? 1.0f : 0.0f;
  const float e = expf(-fabsf(z));
  const float inv = rcp_refined(1.0f + e);
  const float sigPos = z >= 0.0f ? inv : e * inv;  // σ(z)
  const float sigNeg = z >= 0.0f ? e * inv : inv;  // σ(−z) = 1 − σ(z)
  const float bce = fmaxf(z, 0.0f) - z * y + log1p_unit(e);
  SigmoidTerm t;
  if (!focal) {
    t.loss = w * bce;
    t.grad = scale * w * (target ? -sigNeg : sigPos);
  } else {
    const float pt = target ? sigPos : sigNeg;
    const float q = target ? sigNeg : sigPos;
    const float at = alpha < 0.0f ? 1.0f : (target ? alpha : 1.0f - alpha);
    // γ = 2 (the usual focal setting) and γ = 1 without powf; both are exact products.
    const float mod = gamma == 0.0f   ? 1.0f
                      : gamma == 2.0f ? q * q
                      : gamma == 1.0f ? q
                                      : powf(q, gamma);
    const float sign = target ? 1.0f : -1.0f;
    t.loss = w * at * mod * bce;
    t.grad = -scale * w * at * sign * mod * (gamma * pt * bce + q);
  }
  return t;
}

/// One element of smooth-L1 for diff = pred − target: loss 0.5·diff²/β where |diff| < β, else
/// |diff| − 0.5·β (β = 0 is plain L1); `grad` receives d loss / d diff (sign(diff) on the linear
/// part, 0 at diff = 0).
EQL_HD float smooth_l1_term(float diff, float beta, float& grad) {
  const float a = fabsf(diff);
  if (a < beta) {
    grad = diff / beta;
    return 0.5f * diff * diff / beta;
  }
  grad = diff > 0.0f ? 1.0f : (diff < 0.0f ? -1.0f : 0.0f);
  return a - 0.5f * beta;
}

#endif  // EQL_LOSS_MATH_CUH
