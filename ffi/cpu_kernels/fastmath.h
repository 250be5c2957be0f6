/*
 * exp and log1p in single precision, written to be inlined into loops that the compiler
 * vectorises: no branches (every special case is a select), no table look-ups, no calls, only
 * IEEE arithmetic, so a vectorised and a scalar evaluation give the same bits, and so does every
 * thread count. Used by the loss kernels (losses.c); the sweep in test/loss_kernels_test.ts checks
 * them against float64 over the whole float range through eql_exp_f32, eql_exp_f64,
 * eql_exp_diff_f32, eql_log1p_f32 and eql_log1p_unit_f32.
 *
 * exp: x = k·ln 2 + r with k = round(x / ln 2) and |r| ≤ ln 2 / 2 (Cody–Waite: ln 2 in two parts,
 * the first with 16 significant bits so that k·LN2_HI is exact for |k| < 256); exp(r) from its
 * Taylor polynomial of degree 7 (truncation error below 7.3e-9 relative, an eighth of an ulp),
 * evaluated by Horner's rule; then the result is scaled by 2^k as two powers of two, so that
 * results in the subnormal range are rounded once, correctly, and results above FLT_MAX become
 * +Inf. Inputs are clamped to [-110, 89] first (exp(-110) rounds to 0, exp(89) overflows); a NaN
 * passes the clamp and comes out NaN. The double-argument form reduces in double precision (the
 * argument is then exact, e.g. a logit plus a bias minus the row maximum) and finishes in single
 * precision; the difference form exp(a - b) of two floats keeps the rounding error of a - b
 * (TwoSum) and adds it to the reduced argument, which reaches the same accuracy in float
 * arithmetic (a difference rounded to float would be up to 64 ulps off at a - b ≈ -100).
 *
 * log1p: u = fl(1 + x) and its exact rounding error c (Fast2Sum); u = 2^k·m with m in
 * [sqrt(1/2), sqrt(2)) read off the bits; log1p(x) = k·ln 2 + log(1 + f) with f = (m − 1) + c·2^-k
 * (m − 1 is exact). log(1 + f) = 2·atanh(s), s = f / (2 + f), |s| < 0.1716, from its series up to
 * s^9 (truncation below 2e-9 relative), arranged as fdlibm does so that the small correction terms
 * are added last. Special cases: log1p(-1) = -Inf, log1p(x < -1) = NaN, log1p(+Inf) = +Inf,
 * log1p(NaN) = NaN, and the sign of a zero is kept.
 *
 * Error bounds, in ulps of the exact result (an ulp of a subnormal result is 2^-149), measured
 * against the double-precision results over every float input (every third one without fused
 * multiply-adds; the double form of exp also on a grid of doubles over [-115, 90], the difference
 * form on 4 million random pairs with a - b in [-120, 95] and |a| up to 8e7): exp at most 0.94
 * ulp with fused multiply-adds (the difference form 0.93; 0.75 without); log1p at most 0.92 ulp
 * either way. The form of log1p for [0, 1] leaves out selects that cannot fire there and gives
 * the same bits as the general one (checked on every 101st float of [0, 1]). The polynomials use fused
 * multiply-adds where the target has them (__FMA__, as -march=native gives on x86-64 since
 * Haswell; aarch64). Elsewhere (the portable build) log1p uses a multiply and an add, and exp
 * evaluates its polynomial in double (a float one would reach 1.22 ulp). The test's sweep asserts
 * 1.25 ulp for exp and 1 ulp for log1p, and exact results at the saturation points (0 below
 * -103.98, +Inf above 88.73, exp(±3000)) and for the special values.
 */
#ifndef EQL_FASTMATH_H
#define EQL_FASTMATH_H

#include <stdint.h>

#if defined(__FMA__) || defined(__aarch64__)
#define EQL_HAS_FMA 1
#define EQL_FMA(a, b, c) __builtin_fmaf((a), (b), (c))
#else
#define EQL_HAS_FMA 0
#define EQL_FMA(a, b, c) ((a) * (b) + (c))
#endif

#define EQL_LOG2E 1.44269502f
/* ln 2 = EQL_LN2_HI + EQL_LN2_LO; the high part has 16 significant bits (0x3f317200). */
#define EQL_LN2_HI 0.693145751953125f
#define EQL_LN2_LO 1.42860677e-06f
/* 1.5·2^23: adding it rounds a float below 2^22 in magnitude to an integer in the low bits. */
#define EQL_ROUND_SHIFT 12582912.0f
/* 1.5·2^52, the same for doubles. */
#define EQL_ROUND_SHIFT_D 6755399441055744.0

static inline uint32_t eql_bits(float x) {
  uint32_t u;
  __builtin_memcpy(&u, &x, 4);
  return u;
}

static inline float eql_float(uint32_t u) {
  float x;
  __builtin_memcpy(&x, &u, 4);
  return x;
}

/* exp(r)·2^k for |r| ≤ 0.36 and -160 ≤ k ≤ 128. */
static inline float eql_exp_finish(float r, int32_t k) {
  /* 2^k as 2^k1 · 2^k2, both normal: the first product is exact, the second rounds once. */
  const int32_t k1 = k / 2, k2 = k - k1;
  const float s1 = eql_float((uint32_t)(k1 + 127) << 23);
  const float s2 = eql_float((uint32_t)(k2 + 127) << 23);
#if EQL_HAS_FMA
  float p = 1.98412701e-04f; /* 1/7! */
  p = EQL_FMA(p, r, 1.38888892e-03f); /* 1/6! */
  p = EQL_FMA(p, r, 8.33333377e-03f); /* 1/5! */
  p = EQL_FMA(p, r, 4.16666679e-02f); /* 1/4! */
  p = EQL_FMA(p, r, 1.66666672e-01f); /* 1/3! */
  p = EQL_FMA(p, r, 0.5f);
  p = EQL_FMA(p, r, 1.0f);
  p = EQL_FMA(p, r, 1.0f);
  return (p * s1) * s2;
#else
  /* Without fused multiply-adds, every float step would round (1.22 ulp in all); in double the
   * steps' errors stay far below a float ulp, and the scaled result rounds to float once (both
   * scalings are exact in double, also for results that are subnormal floats). */
  const double rd = r;
  double p = 1.98412698412698413e-04; /* 1/7! */
  p = p * rd + 1.38888888888888894e-03; /* 1/6! */
  p = p * rd + 8.33333333333333322e-03; /* 1/5! */
  p = p * rd + 4.16666666666666644e-02; /* 1/4! */
  p = p * rd + 1.66666666666666657e-01; /* 1/3! */
  p = p * rd + 0.5;
  p = p * rd + 1.0;
  p = p * rd + 1.0;
  return (float)((p * s1) * s2);
#endif
}

/* exp(x) in single precision. */
static inline float eql_expf(float x) {
  x = x < -110.0f ? -110.0f : x; /* NaN fails both tests and stays NaN */
  x = x > 89.0f ? 89.0f : x;
  const float t = x * EQL_LOG2E + EQL_ROUND_SHIFT;
  const int32_t k = (int32_t)(eql_bits(t) - eql_bits(EQL_ROUND_SHIFT));
  const float kf = t - EQL_ROUND_SHIFT;
  const float r = (x - kf * EQL_LN2_HI) - kf * EQL_LN2_LO;
  return eql_exp_finish(r, k);
}

/* exp(x) of a double argument in single precision: reduced in double, finished in float. */
static inline float eql_exp_d(double x) {
  x = x < -110.0 ? -110.0 : x;
  x = x > 89.0 ? 89.0 : x;
  const double t = x * 1.4426950408889634 + EQL_ROUND_SHIFT_D;
  uint64_t tb;
  __builtin_memcpy(&tb, &t, 8);
  const int32_t k = (int32_t)(uint32_t)tb; /* the low bits of t hold k (two's complement) */
  const double kd = t - EQL_ROUND_SHIFT_D;
  const float r = (float)(x - kd * 0.6931471805599453);
  return eql_exp_finish(r, k);
}

/*
 * exp(a - b) of two floats in single precision, with the difference taken exactly: s = fl(a - b)
 * and its rounding error err (TwoSum: s + err = a - b exactly), reduced as in eql_expf with err
 * joining the small part, r = (s - k·LN2_HI) + (err - k·LN2_LO) (the first difference is exact,
 * the second rounds far below an ulp of r), so the result is as accurate as eql_expf's of an
 * exact argument. Where s is clamped (beyond the saturation points, or an infinite difference)
 * err is dropped; a NaN in a or b gives NaN. This is the double-argument form's accuracy for a
 * difference of floats (the softmax's z - max) at the cost of a few float operations.
 */
static inline float eql_exp_diff(float a, float b) {
  const float s = a - b;
  const float bv = s - a;
  float err = (a - (s - bv)) + (-b - bv);
  float x = s < -110.0f ? -110.0f : s; /* NaN fails both tests and stays NaN */
  x = x > 89.0f ? 89.0f : x;
  err = x == s ? err : 0.0f;
  const float t = x * EQL_LOG2E + EQL_ROUND_SHIFT;
  const int32_t k = (int32_t)(eql_bits(t) - eql_bits(EQL_ROUND_SHIFT));
  const float kf = t - EQL_ROUND_SHIFT;
  const float r = (x - kf * EQL_LN2_HI) + (err - kf * EQL_LN2_LO);
  return eql_exp_finish(r, k);
}

/*
 * log1p(x) given u = fl(1 + x). With unit set (a constant where this is inlined) the argument is
 * known to lie in [0, 1] or be NaN: then u is in [1, 2], k is 0 or 1 and x ≤ 1, and the selects
 * for the other cases, which could not fire, are left out, so the result has the same bits.
 */
static inline __attribute__((always_inline)) float eql_log1pf_core(float x, float u, int unit) {
  /* u = 2^k·m with m in [sqrt(1/2), sqrt(2)): shift the bits so that the exponent field rounds. */
  const uint32_t iu = eql_bits(u) + (0x3f800000u - 0x3f3504f3u);
  const int32_t k = (int32_t)(iu >> 23) - 127;
  const float m = eql_float((iu & 0x007fffffu) + 0x3f3504f3u);
  /* The rounding error of u: u + c = 1 + x exactly (Fast2Sum, larger operand first). */
  const float c = !unit && x > 1.0f ? (x - u) + 1.0f : (1.0f - u) + x;
  const int32_t kc = unit || k < 126 ? k : 126; /* beyond 2^126 the correction is far below an ulp */
  const float f0 = m - 1.0f; /* exact */
  const float fc = c * eql_float((uint32_t)(127 - kc) << 23); /* exact: a power-of-two scaling */
  const float f = f0 + fc;
  const float s = f / (2.0f + f);
  const float z = s * s;
  float R = 2.22222224e-01f; /* 2/9 */
  R = EQL_FMA(R, z, 2.85714298e-01f); /* 2/7 */
  R = EQL_FMA(R, z, 4.00000006e-01f); /* 2/5 */
  R = EQL_FMA(R, z, 6.66666687e-01f); /* 2/3 */
  R *= z;
  const float hfsq = 0.5f * f * f;
  const float kf = (float)k;
  /*
   * log1p(x) = k·ln 2 + f − (hfsq − s·(hfsq + R)). The two large terms, k·LN2_HI (exact) and
   * f0, are added with their rounding error kept (Fast2Sum: |k·LN2_HI| ≥ ln 2 > |f0| unless
   * k = 0), and that error joins the small terms, so the result is rounded essentially once.
   */
  const float a = kf * EQL_LN2_HI;
  const float hi = a + f0;
  const float lo = ((a - hi) + f0) + fc;
  float y = hi + (lo + (kf * EQL_LN2_LO - (hfsq - s * (hfsq + R))));
  if (unit) return y; /* log1p(+0) = +0 comes out of the arithmetic; -0 is not in [0, 1] here */
  y = u == __builtin_inff() ? u : y;
  y = u == 0.0f ? -__builtin_inff() : y;
  y = x < -1.0f ? __builtin_nanf("") : y;
  y = x == 0.0f ? x : y; /* keeps the sign of zero */
  return y;
}

/* log1p(x) given u = fl(1 + x), so that a caller that has 1 + x already shares it. */
static inline float eql_log1pf_u(float x, float u) { return eql_log1pf_core(x, u, 0); }

/*
 * log1p(x) for x in [0, 1] (or NaN) given u = fl(1 + x), e.g. log1p(exp(-|z|)): the same bits as
 * eql_log1pf_u there, with fewer operations.
 */
static inline float eql_log1pf_unit(float x, float u) { return eql_log1pf_core(x, u, 1); }

/* log1p(x) in single precision. */
static inline float eql_log1pf(float x) { return eql_log1pf_u(x, 1.0f + x); }

#endif
