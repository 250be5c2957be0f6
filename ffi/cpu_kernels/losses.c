/*
 * The fused loss kernels: logits in, each row's loss and the gradient out, in one pass over the
 * row. The semantics are those of src/device/cpu/losses.ts (the TypeScript version, which stays
 * as the fallback):
 *
 * - sigmoid family: sigmoid cross-entropy, EQL with any per-class suppression weights, the E(r)
 *   exemption of background rows, the image-level keep mask, class weights, focal γ and α;
 * - softmax family: softmax cross-entropy, softmax EQL with the counter-based mask (the draw is
 *   the integer hash of src/device/mask.ts and ffi/kernels/mask.cuh, bit for bit), class weights,
 *   logit bias;
 * - EQLv2 (per-column positive and negative weights, and the per-column gradient statistics);
 * - Seesaw (mitigation and compensation on the class logits, the objectness pair);
 * - smooth-L1.
 *
 * Every row is computed by one thread on its own (no reduction crosses rows), so the results do
 * not depend on the thread count; rows are split over the pool in blocks of at least LOSS_GRAIN
 * values, so small inputs stay on the calling thread. The callers check labels and images first.
 *
 * Precision. Sigmoid family: per value in single precision with the exp and log1p of fastmath.h
 * (at most about 1 ulp each) in the stable forms of the TypeScript kernel: e = exp(-|z|),
 * σ(±z) = 1/(1 + e) or e/(1 + e), BCE = max(±z, 0) + log1p(e), so each loss term and gradient
 * value is within a few ulps of its exact value; the focal factor (1 - p_t)^γ is
 * exp(γ·log(1 - p_t)) with log(1 - p_t) = -(max(∓z, 0) + log1p(e)) formed in double, so it keeps
 * that accuracy for large |z| too. Softmax family: the shifted logit z + bias - max is exact
 * (formed and reduced in double; or, without a bias where the build has fused multiply-adds, as
 * the float difference plus its rounding error, eql_exp_diff) and exp finishes in single
 * precision; the non-target mass is summed apart from the target (as the TypeScript kernel does),
 * and the row's loss, log1p(others) or log1p(total - 1) + (max - z_label), takes a float log1p of
 * the rounded sum (within about 2 ulps). Row sums are accumulated in double, each lane of a vector
 * on its own and the lanes added pairwise at the end, in an order fixed by the build variant's
 * vector width.
 * Smooth-L1 runs in double with the TypeScript kernel's operations in its order, so its results
 * are bit for bit the same.
 *
 * Non-finite logits: a row whose logits hold a NaN or an infinity, masked or fully suppressed
 * classes included, gets a NaN row loss (each value adds z - z, which is 0 or NaN, to the sum).
 */
/*
 * GCC assumes by default that floating-point exceptions may trap, and then will not evaluate both
 * sides of a select in a vector loop. Nothing here reads the exception flags; the values computed
 * are the same (IEEE arithmetic, no fast-math).
 */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include "eql_cpu.h"
#include "fastmath.h"

#include <math.h>
#include <stdlib.h>

/*
 * Floats per vector of the row loops (the build's vector registers): they run whole vectors and
 * finish a row through a padded copy of its last partial vector.
 */
#if EQL_VARIANT == EQL_VARIANT_AVX512
#define LOSS_VL 16
#elif EQL_VARIANT == EQL_VARIANT_AVX2
#define LOSS_VL 8
#else
/* The baseline's 4-float vectors (SSE2, NEON): 8 lanes in pairs ran out of registers. */
#define LOSS_VL 4
#endif

/* Values per thread below which a loss stays on fewer threads. */
#define LOSS_GRAIN (1 << 15)

#define INLINE static inline __attribute__((always_inline))

/*
 * The label's lane in the vector of a row that starts at value j0, or -1 when it lies outside
 * (the lanes are numbered with 32-bit integers: one vector of lane numbers, not two).
 */
static inline int32_t vector_label(int64_t label, int64_t j0) {
  return label >= j0 && label < j0 + LOSS_VL ? (int32_t)(label - j0) : -1;
}

/*
 * The lanes of a vector of per-lane sums or maxima combined pairwise, in a fixed order (a
 * reduction clause would add them one after the other, a chain of LOSS_VL dependent additions).
 */
#if LOSS_VL == 16
#define LANES_TO_4(T, op)                                                                         \
  T h[8], q[4];                                                                                   \
  for (int l = 0; l < 8; l++) h[l] = op(v[l], v[l + 8]);                                          \
  for (int l = 0; l < 4; l++) q[l] = op(h[l], h[l + 4]);
#elif LOSS_VL == 8
#define LANES_TO_4(T, op)                                                                         \
  T q[4];                                                                                         \
  for (int l = 0; l < 4; l++) q[l] = op(v[l], v[l + 4]);
#else
#define LANES_TO_4(T, op) const T *q = v;
#endif
#define LANES_COMBINE(T, name, op)                                                                \
  INLINE T name(const T *restrict v) {                                                            \
    LANES_TO_4(T, op)                                                                             \
    return op(op(q[0], q[2]), op(q[1], q[3]));                                                    \
  }
#define ADD(a, b) ((a) + (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
LANES_COMBINE(double, lanes_sum, ADD)
LANES_COMBINE(float, lanes_sum_f, ADD)
LANES_COMBINE(double, lanes_max, MAX)
LANES_COMBINE(float, lanes_max_f, MAX)

/* Rows per thread at least, for rows of per_row values. */
static int64_t row_grain(int64_t per_row) {
  return per_row > 0 ? 1 + (LOSS_GRAIN - 1) / per_row : LOSS_GRAIN;
}

/* ── sigmoid family ─────────────────────────────────────────────────────────────────────────── */

typedef struct {
  const float *logits;
  const int32_t *labels;
  float *grad, *row_loss;
  int64_t c;
  double scale;
  const float *suppress; /* NULL: none */
  int32_t exempt; /* E(r): background rows are never suppressed */
  const float *class_weight; /* NULL: none */
  double gamma; /* focal γ */
  float alpha; /* focal α; negative: off */
  int32_t focal;
  const int32_t *image_of_row, *keep_mask; /* NULL: no keep mask */
} sigmoid_args;

/*
 * One vector of a row, values j in [0, LOSS_VL): adds each one's loss to its lane of acc and
 * writes its gradient. Value j has target y = [j == label] and weight rw·t, with
 * t = 1 - suppress[j] for a non-target (1 without suppression, 1 where the keep mask lists j) and
 * t = 1 for the target; srw = scale·rw. Written in the logit with the target's sign flipped,
 * zs = y ? -z : z: then 1 - p_t = σ(zs), p_t = σ(-zs), BCE = max(zs, 0) + log1p(e^-|z|), and the
 * gradient is ±srw·t·α_t·σ(zs)^γ·(γ·p_t·BCE + σ(zs)) (+ for a non-target). Only the first
 * `valid` values count (the others are padding). The flags are constants where this is inlined,
 * so each combination becomes its own vector code.
 */
INLINE void sigmoid_vector(const float *restrict x, float *restrict g, int32_t label,
                           const float *restrict sup, const int32_t *restrict keep, int has_sup,
                           int has_keep, float rw, float srw, int focal, int with_gamma,
                           double gamma, float alpha, int32_t valid, double *restrict acc) {
  const float gf = (float)gamma;
  const float at_target = alpha < 0.0f ? 1.0f : alpha;
  const float at_other = alpha < 0.0f ? 1.0f : (float)(1.0 - (double)alpha);
#pragma omp simd
  for (int32_t j = 0; j < LOSS_VL; j++) {
    const float z = x[j];
    const int y = j == label;
    const float zs = y ? -z : z;
    const float e = eql_expf(-fabsf(z));
    const float d = 1.0f + e;
    const float inv = 1.0f / d;
    const float qt = zs >= 0.0f ? inv : e * inv; /* σ(zs) = 1 - p_t */
    const float l = eql_log1pf_unit(e, d);
    const float bce = (zs > 0.0f ? zs : 0.0f) + l;
    float t = 1.0f;
    if (has_sup) t = 1.0f - sup[j];
    if (has_keep) t = keep[j] != 0 ? 1.0f : t;
    t = y ? 1.0f : t;
    const float st = y ? -srw : srw * t;
    const float poison = z - z; /* 0, or NaN for a NaN or an infinity */
    float term;
    if (!focal) {
      term = rw * t * bce + poison;
      g[j] = st * qt;
    } else {
      const float pt = zs >= 0.0f ? e * inv : inv; /* σ(-zs) = p_t */
      /* σ(zs)^γ = exp(γ·log σ(zs)), log σ(zs) = -(max(-zs, 0) + log1p(e)) */
      const float mod =
          with_gamma ? eql_exp_d(-gamma * ((double)(zs < 0.0f ? -zs : 0.0f) + (double)l)) : 1.0f;
      const float am = (y ? at_target : at_other) * mod;
      term = rw * t * am * bce + poison;
      g[j] = st * am * (gf * pt * bce + qt);
    }
    acc[j] += j < valid ? (double)term : 0.0;
  }
}

/*
 * One row: sigmoid_vector over its whole vectors, then over its last partial vector copied into a
 * padded local one, so that every value runs in vector code (a scalar remainder loop cost as much
 * as the rest of a 100-class row). Each lane sums its values in double; the lanes are added at
 * the end (a sum per loop, as a reduction clause gives, costs a scalar chain of LOSS_VL additions).
 */
INLINE double sigmoid_row(const float *restrict x, float *restrict g, int64_t c, int64_t label,
                          const float *restrict sup, const int32_t *restrict keep, int has_sup,
                          int has_keep, float rw, float srw, int focal, int with_gamma,
                          double gamma, float alpha) {
  const int64_t cm = c & -(int64_t)LOSS_VL;
  const int32_t r = (int32_t)(c - cm);
  double acc[LOSS_VL] = {0.0};
  for (int64_t j = 0; j < cm; j += LOSS_VL) {
    sigmoid_vector(x + j, g + j, vector_label(label, j), has_sup ? sup + j : sup,
                   has_keep ? keep + j : keep, has_sup, has_keep, rw, srw, focal, with_gamma,
                   gamma, alpha, LOSS_VL, acc);
  }
  if (r > 0) {
    float xp[LOSS_VL], gp[LOSS_VL], sp[LOSS_VL];
    int32_t kp[LOSS_VL];
    for (int32_t l = 0; l < LOSS_VL; l++) {
      xp[l] = l < r ? x[cm + l] : 0.0f;
      sp[l] = has_sup && l < r ? sup[cm + l] : 0.0f;
      kp[l] = has_keep && l < r ? keep[cm + l] : 0;
    }
    sigmoid_vector(xp, gp, vector_label(label, cm), sp, kp, has_sup, has_keep, rw, srw, focal,
                   with_gamma, gamma, alpha, r, acc);
    for (int32_t l = 0; l < r; l++) g[cm + l] = gp[l];
  }
  return lanes_sum(acc);
}

/* sigmoid_row with the row's options turned into constants. */
static double sigmoid_row_any(const sigmoid_args *a, const float *x, float *g, int64_t label,
                              const float *sup, const int32_t *keep, float rw, float srw) {
  const int64_t c = a->c;
  const double gm = a->gamma;
  const float al = a->alpha;
  if (!a->focal) {
    if (!sup) return sigmoid_row(x, g, c, label, 0, 0, 0, 0, rw, srw, 0, 0, 0.0, -1.0f);
    if (!keep) return sigmoid_row(x, g, c, label, sup, 0, 1, 0, rw, srw, 0, 0, 0.0, -1.0f);
    return sigmoid_row(x, g, c, label, sup, keep, 1, 1, rw, srw, 0, 0, 0.0, -1.0f);
  }
  if (gm == 0.0) {
    if (!sup) return sigmoid_row(x, g, c, label, 0, 0, 0, 0, rw, srw, 1, 0, gm, al);
    if (!keep) return sigmoid_row(x, g, c, label, sup, 0, 1, 0, rw, srw, 1, 0, gm, al);
    return sigmoid_row(x, g, c, label, sup, keep, 1, 1, rw, srw, 1, 0, gm, al);
  }
  if (!sup) return sigmoid_row(x, g, c, label, 0, 0, 0, 0, rw, srw, 1, 1, gm, al);
  if (!keep) return sigmoid_row(x, g, c, label, sup, 0, 1, 0, rw, srw, 1, 1, gm, al);
  return sigmoid_row(x, g, c, label, sup, keep, 1, 1, rw, srw, 1, 1, gm, al);
}

static void sigmoid_rows(void *p, int64_t i0, int64_t i1) {
  const sigmoid_args *a = p;
  const int64_t c = a->c;
  for (int64_t i = i0; i < i1; i++) {
    const int32_t label = a->labels[i];
    const int fg = label < c;
    const float rw = a->class_weight && fg ? a->class_weight[label] : 1.0f;
    const float srw = (float)(a->scale * (double)rw);
    /* A row with E(r) = 0 is not suppressed anywhere: as if there were no suppression. */
    const float *sup = fg || !a->exempt ? a->suppress : 0;
    const int32_t *keep = sup && a->keep_mask ? a->keep_mask + (int64_t)a->image_of_row[i] * c : 0;
    const float *x = a->logits + i * c;
    a->row_loss[i] = (float)sigmoid_row_any(a, x, a->grad + i * c, label, sup, keep, rw, srw);
  }
}

/*
 * Sigmoid-family loss over logits [n, c] with labels in 0..c (c = background); see
 * SigmoidLossParams in src/device/device.ts. Writes each row's unscaled loss and
 * scale·∂(row loss)/∂logits. focal_alpha < 0 turns α off; focal is on when γ ≠ 0 or α ≥ 0.
 * image_of_row and keep_mask are both given or both NULL.
 */
void eql_sigmoid_loss(const float *logits, const int32_t *labels, float *grad, float *row_loss,
                      int64_t n, int64_t c, double scale, const float *suppress,
                      int32_t background_exempt, const float *class_weight, double focal_gamma,
                      double focal_alpha, const int32_t *image_of_row, const int32_t *keep_mask) {
  sigmoid_args a = {logits,
                    labels,
                    grad,
                    row_loss,
                    c,
                    scale,
                    suppress,
                    background_exempt,
                    class_weight,
                    focal_gamma,
                    (float)focal_alpha,
                    focal_gamma != 0.0 || focal_alpha >= 0.0,
                    image_of_row,
                    keep_mask};
  if (focal_alpha < 0.0) a.alpha = -1.0f;
  eql_parallel_for(n, row_grain(c), sigmoid_rows, &a);
}

/* ── softmax family ─────────────────────────────────────────────────────────────────────────── */

/* The "lowbias32" integer hash of src/device/mask.ts (hash32) and ffi/kernels/mask.cuh. */
static inline uint32_t hash32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

typedef struct {
  const float *logits;
  const int32_t *labels;
  float *grad, *row_loss;
  int64_t c;
  double scale;
  const float *suppress; /* NULL: nothing is masked */
  uint32_t threshold; /* a draw below it masks the class */
  uint32_t call_key; /* hash32(hash32(seed ^ 0x9e3779b9) ^ counter) */
  int32_t masking;
  const float *class_weight, *bias; /* NULL: none */
} softmax_args;

/*
 * First pass over one vector of a row (classes k0 + j): each lane keeps the maximum of its
 * unmasked z + bias, in double with a bias (there the sum is exact) and in float without (the
 * maximum of floats is one of them), and the sum of its z - z in bad. With masking, also writes
 * each value, or -Inf where the class is masked, into g (the scratch of the next pass): class k is
 * masked when suppress[k] == 1 and hash32(row_key ^ k) >> 8 < threshold (the caller restores the
 * target). Only the first `valid` values count (the others are padding).
 */
INLINE void softmax_max_vector(const float *restrict x, const float *restrict bias,
                               const float *restrict sup, float *restrict g, uint32_t k0,
                               uint32_t row_key, uint32_t threshold, int has_bias, int masking,
                               int32_t valid, double *restrict mxd, float *restrict mxf,
                               float *restrict bad) {
#pragma omp simd
  for (int32_t j = 0; j < LOSS_VL; j++) {
    const int live = j < valid;
    const float raw = x[j];
    bad[j] += live ? raw - raw : 0.0f;
    int masked = 0;
    if (masking) {
      /* & and |, not && and ||: no branch for the compiler to turn back into a select */
      masked = (sup[j] == 1.0f) & ((hash32(row_key ^ (k0 + (uint32_t)j)) >> 8) < threshold);
      g[j] = masked ? -INFINITY : raw;
    }
    const int out = masked | !live;
    if (has_bias) {
      const double z = out ? -INFINITY : (double)raw + (double)bias[j];
      mxd[j] = z > mxd[j] ? z : mxd[j];
    } else {
      const float z = out ? -INFINITY : raw;
      mxf[j] = z > mxf[j] ? z : mxf[j];
    }
  }
}

/*
 * Whether the softmax takes exp of z - max by eql_exp_diff where there is no bias (see
 * softmax_exp_vector): with fused multiply-adds that is faster than widening to double (the
 * kernel 1.1× at 256 × 100 and 1.2× at 8192 × 1230 with AVX-512, 1.24× and 1.28× with AVX2);
 * without them (the portable build) it is slower (0.82×), and the double form is used.
 */
#define SOFTMAX_EXP_DIFF EQL_HAS_FMA

/*
 * Second pass over one vector of a row: g[j] = exp(z + bias - mx), 0 for a masked class (-Inf in
 * g, with in_place: g holds the first pass's values) and for padding (j ≥ valid); each lane adds
 * its values but the label's to others. The shifted logit is exact: formed in double (with a bias,
 * or without SOFTMAX_EXP_DIFF) and exp finished in single precision (eql_exp_d); or, without a
 * bias, z and mx are floats and eql_exp_diff takes their difference exactly in float arithmetic,
 * as accurate (the same results as the double form but for one value in ten million, by an ulp).
 * A masked class gets 0 by a select, not from exp: an exp that underflows costs a microcode
 * assist on x86, a hundred cycles for the whole vector.
 */
INLINE void softmax_exp_vector(const float *restrict x, const float *restrict bias,
                               float *restrict g, int32_t label, double mx, int has_bias,
                               int in_place, int32_t valid, double *restrict others) {
  const float mxf = (float)mx; /* exact without a bias: the maximum of floats */
#pragma omp simd
  for (int32_t j = 0; j < LOSS_VL; j++) {
    const float raw = in_place ? g[j] : x[j];
    const int skip = (in_place & (raw == -INFINITY)) | (j >= valid);
    float e;
    if (has_bias || !SOFTMAX_EXP_DIFF) {
      const double z = has_bias ? (double)raw + (double)bias[j] : (double)raw;
      e = skip ? 0.0f : eql_exp_d(skip ? 0.0 : z - mx);
    } else {
      e = skip ? 0.0f : eql_exp_diff(skip ? mxf : raw, mxf);
    }
    g[j] = e;
    others[j] += j == label ? 0.0 : (double)e;
  }
}

/* Third pass over one vector: g[j] *= f. */
INLINE void softmax_scale_vector(float *restrict g, float f) {
#pragma omp simd
  for (int32_t j = 0; j < LOSS_VL; j++) g[j] *= f;
}

/* What a softmax row's loss is formed from: w·(log1p(arg) + add) + bad. */
typedef struct {
  float arg, bad;
  double add, w;
} row_loss_parts;

/*
 * One row: the three passes, each over the row's whole vectors and then over its last partial
 * vector copied into padded local ones (so that every value runs in vector code), with the
 * options turned into constants; writes the gradient and the parts of the row's loss. Lanes keep
 * their own maxima and sums, combined once per pass.
 *
 * The non-target mass is summed apart from the target (as the TypeScript kernel does), so that
 * the target's gradient p - 1 = -others / total keeps its precision when p is close to 1. The
 * loss log(total / own) is written without a division by the target's numerator own: when the
 * target holds the maximum, own = exp(0) = 1 exactly and the loss is log1p(others); otherwise the
 * maximum's term 1 is among the others, and the loss is log1p(total - 1) + (mx - z_label), a sum
 * of two non-negative terms that needs no precision from a tiny own (which may underflow).
 */
INLINE void softmax_row(const softmax_args *a, const float *restrict x, float *restrict g,
                        int64_t i, int64_t label, const float *restrict bias, int has_bias,
                        int masking, row_loss_parts *out) {
  const int64_t c = a->c, cm = c & -(int64_t)LOSS_VL;
  const int32_t r = (int32_t)(c - cm);
  const float *restrict sup = a->suppress;
  const uint32_t row_key = masking ? hash32(a->call_key ^ (uint32_t)i) : 0;
  const uint32_t threshold = a->threshold;
  double mxd[LOSS_VL];
  float mxf[LOSS_VL], bad[LOSS_VL];
  for (int32_t l = 0; l < LOSS_VL; l++) mxd[l] = -INFINITY, mxf[l] = -INFINITY, bad[l] = 0.0f;
  for (int64_t j = 0; j < cm; j += LOSS_VL) {
    softmax_max_vector(x + j, has_bias ? bias + j : bias, masking ? sup + j : sup, g + j,
                       (uint32_t)j, row_key, threshold, has_bias, masking, LOSS_VL, mxd, mxf,
                       bad);
  }
  /* The tail is copied after the row's first sweep, which brought it into the cache (copied
     before, its load waited on memory before the sweep could start). */
  float xp[LOSS_VL], gp[LOSS_VL], sp[LOSS_VL], bp[LOSS_VL];
  for (int32_t l = 0; l < LOSS_VL; l++) {
    xp[l] = l < r ? x[cm + l] : 0.0f;
    sp[l] = masking && l < r ? sup[cm + l] : 0.0f;
    bp[l] = has_bias && l < r ? bias[cm + l] : 0.0f;
  }
  if (r > 0) {
    softmax_max_vector(xp, bp, sp, gp, (uint32_t)cm, row_key, threshold, has_bias, masking, r,
                       mxd, mxf, bad);
  }
  double mx = has_bias ? lanes_max(mxd) : (double)lanes_max_f(mxf);
  const float bad_sum = lanes_sum_f(bad);
  /* The target is never masked. */
  const double zl = has_bias ? (double)x[label] + (double)bias[label] : (double)x[label];
  if (masking) {
    if (label < cm) g[label] = x[label];
    else gp[label - cm] = x[label];
  }
  if (zl > mx) mx = zl;
  double acc[LOSS_VL] = {0.0};
  for (int64_t j = 0; j < cm; j += LOSS_VL) {
    softmax_exp_vector(x + j, has_bias ? bias + j : bias, g + j, vector_label(label, j), mx,
                       has_bias, masking, LOSS_VL, acc);
  }
  if (r > 0) {
    softmax_exp_vector(xp, bp, gp, vector_label(label, cm), mx, has_bias, masking, r, acc);
  }
  const double others = lanes_sum(acc);
  const double own = label < cm ? (double)g[label] : (double)gp[label - cm];
  const double total = own + others;
  const double w = a->class_weight ? (double)a->class_weight[label] : 1.0;
  /* total - 1 ≥ own: the maximum's term 1 is among the others. */
  out->arg = (float)(zl >= mx ? others : total - 1.0);
  out->add = zl >= mx ? 0.0 : mx - zl;
  out->w = w;
  out->bad = bad_sum;
  const double gd = a->scale * w / total;
  const float gf = (float)gd;
  for (int64_t j = 0; j < cm; j += LOSS_VL) softmax_scale_vector(g + j, gf);
  if (r > 0) {
    softmax_scale_vector(gp, gf);
    for (int32_t l = 0; l < r; l++) g[cm + l] = gp[l];
  }
  g[label] = (float)(-gd * others);
}

/*
 * Rows [i0, i1), in groups of LOSS_VL whose losses w·(log1p(arg) + add) + bad are then formed
 * together, the logarithm in vector code (eql_log1pf; a call into the C library's per row took a
 * tenth of the time at 100 classes). arg is rounded to float first (half an ulp, which log1p
 * passes on at most unchanged since x / ((1 + x)·log1p(x)) ≤ 1), so a row loss is within about
 * 2 ulps of the exact value of its sums.
 */
static void softmax_rows(void *p, int64_t i0, int64_t i1) {
  const softmax_args *a = p;
  const int64_t c = a->c;
  const float *bias = a->bias;
  for (int64_t i = i0; i < i1; i += LOSS_VL) {
    const int32_t m = (int32_t)(i1 - i < LOSS_VL ? i1 - i : LOSS_VL);
    float arg[LOSS_VL], bad[LOSS_VL], loss[LOSS_VL];
    double add[LOSS_VL], w[LOSS_VL];
    for (int32_t q = 0; q < m; q++) {
      const int64_t row = i + q;
      const int32_t label = a->labels[row];
      const float *x = a->logits + row * c;
      float *g = a->grad + row * c;
      row_loss_parts out;
      if (a->masking) {
        if (bias) softmax_row(a, x, g, row, label, bias, 1, 1, &out);
        else softmax_row(a, x, g, row, label, 0, 0, 1, &out);
      } else {
        if (bias) softmax_row(a, x, g, row, label, bias, 1, 0, &out);
        else softmax_row(a, x, g, row, label, 0, 0, 0, &out);
      }
      arg[q] = out.arg, add[q] = out.add, w[q] = out.w, bad[q] = out.bad;
    }
    for (int32_t q = m; q < LOSS_VL; q++) arg[q] = 0.0f, add[q] = 0.0, w[q] = 0.0, bad[q] = 0.0f;
#pragma omp simd
    for (int32_t q = 0; q < LOSS_VL; q++) {
      loss[q] = (float)(w[q] * ((double)eql_log1pf(arg[q]) + add[q]) + (double)bad[q]);
    }
    for (int32_t q = 0; q < m; q++) a->row_loss[i + q] = loss[q];
  }
}

/*
 * Softmax-family loss over logits [n, c] with labels in 0..c-1; see SoftmaxLossParams in
 * src/device/device.ts. gamma_threshold is floor(γ·2^24); the mask draw of (row i, class k) is
 * hash32(hash32(hash32(hash32(seed ^ 0x9e3779b9) ^ counter) ^ i) ^ k) >> 8.
 */
void eql_softmax_loss(const float *logits, const int32_t *labels, float *grad, float *row_loss,
                      int64_t n, int64_t c, double scale, const float *suppress,
                      int64_t gamma_threshold, uint32_t seed, uint32_t counter,
                      const float *class_weight, const float *logit_bias) {
  softmax_args a = {logits,
                    labels,
                    grad,
                    row_loss,
                    c,
                    scale,
                    suppress,
                    gamma_threshold > 16777216 ? 16777216u : (uint32_t)gamma_threshold,
                    hash32(hash32(seed ^ 0x9e3779b9u) ^ counter),
                    suppress != 0 && gamma_threshold > 0,
                    class_weight,
                    logit_bias};
  eql_parallel_for(n, row_grain(c), softmax_rows, &a);
}

/* ── EQLv2 ───────────────────────────────────────────────────────────────────────────────── */

typedef struct {
  const float *logits;
  const int32_t *labels;
  float *grad, *row_loss, *stats;
  int64_t n, c;
  double scale;
  const float *pos_w, *neg_w;
  double *part; /* [chunks][2c]: each chunk's negative sums, then its positive sums */
} eqlv2_args;

/* Rows per chunk of the statistics: a fixed split, so the sums do not depend on the threads. */
#define EQLV2_CHUNK 64

/*
 * One row: value j has target y = [j == label], weight w = y ? pos_w[j] : neg_w[j], and, with
 * zs = y ? -z : z, |σ(z) - y| = σ(zs) and BCE = max(zs, 0) + log1p(e^-|z|) (as sigmoid_row).
 * Adds w·|σ(z) - y| of every non-target column to neg[j] (in double) and returns the target's
 * in *own.
 */
INLINE double eqlv2_row(const float *restrict x, float *restrict g, int64_t c, int64_t label,
                        const float *restrict pw, const float *restrict nw, float scale,
                        double *restrict neg, float *own) {
  double sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < c; j++) {
    const float z = x[j];
    const int y = j == label;
    const float zs = y ? -z : z;
    const float e = eql_expf(-fabsf(z));
    const float d = 1.0f + e;
    const float inv = 1.0f / d;
    const float a = zs >= 0.0f ? inv : e * inv; /* σ(zs) = |σ(z) - y| */
    const float bce = (zs > 0.0f ? zs : 0.0f) + eql_log1pf_u(e, d);
    const float w = y ? pw[j] : nw[j];
    const float poison = z - z; /* 0, or NaN for a NaN or an infinity */
    sum += (double)(w * bce + poison);
    g[j] = (y ? -scale : scale) * w * a;
    neg[j] += y ? 0.0 : (double)(w * a);
  }
  /* The target's term, as the loop forms it (|g| / scale would round twice). */
  const float z = x[label];
  const float e = eql_expf(-fabsf(z));
  const float inv = 1.0f / (1.0f + e);
  *own = pw[label] * (z <= 0.0f ? inv : e * inv);
  return sum;
}

/* Chunks [k0, k1): their rows' losses and gradients, and each chunk's column sums. */
static void eqlv2_chunks(void *p, int64_t k0, int64_t k1) {
  const eqlv2_args *a = p;
  const int64_t c = a->c;
  const float scale = (float)a->scale;
  for (int64_t k = k0; k < k1; k++) {
    double *neg = a->part + k * 2 * c, *pos = neg + c;
    for (int64_t j = 0; j < 2 * c; j++) neg[j] = 0.0;
    const int64_t i1 = (k + 1) * EQLV2_CHUNK < a->n ? (k + 1) * EQLV2_CHUNK : a->n;
    for (int64_t i = k * EQLV2_CHUNK; i < i1; i++) {
      const int64_t label = a->labels[i];
      float own;
      a->row_loss[i] = (float)eqlv2_row(a->logits + i * c, a->grad + i * c, c, label, a->pos_w,
                                        a->neg_w, scale, neg, &own);
      pos[label] += (double)own;
    }
  }
}

/* Columns [j0, j1) of the statistics: the chunks' sums added in chunk order. */
static void eqlv2_columns(void *p, int64_t j0, int64_t j1) {
  const eqlv2_args *a = p;
  const int64_t c = a->c, chunks = (a->n + EQLV2_CHUNK - 1) / EQLV2_CHUNK;
  for (int64_t j = j0; j < j1; j++) {
    double pos = 0.0, neg = 0.0;
    for (int64_t k = 0; k < chunks; k++) {
      neg += a->part[k * 2 * c + j];
      pos += a->part[k * 2 * c + c + j];
    }
    a->stats[j] = (float)pos;
    a->stats[c + j] = (float)neg;
  }
}

/*
 * EQLv2 loss over logits [n, c] with labels in 0..c-1 (the caller checks them); see
 * Eqlv2LossParams in src/device/device.ts. Writes each row's unscaled loss, scale·∂/∂logits and
 * the per-column statistics: stats[j] = Σ_i w·|σ - y|·y, stats[c + j] = Σ_i w·|σ - y|·(1 - y).
 * The statistics are summed in double over fixed chunks of EQLV2_CHUNK rows (in row order), then
 * over the chunks in order, so they do not depend on the thread count. Returns 0, or -1 when the
 * chunk sums could not be allocated (nothing written).
 */
int32_t eql_eqlv2_loss(const float *logits, const int32_t *labels, float *grad, float *row_loss,
                       float *stats, int64_t n, int64_t c, double scale, const float *pos_weight,
                       const float *neg_weight) {
  const int64_t chunks = (n + EQLV2_CHUNK - 1) / EQLV2_CHUNK;
  double *part = malloc((size_t)chunks * 2 * (size_t)c * sizeof(double));
  if (!part) return -1;
  eqlv2_args a = {logits, labels, grad, row_loss, stats, n, c, scale, pos_weight, neg_weight, part};
  eql_parallel_for(chunks, 1 + (LOSS_GRAIN - 1) / (EQLV2_CHUNK * c), eqlv2_chunks, &a);
  eql_parallel_for(c, 1 + (LOSS_GRAIN - 1) / chunks, eqlv2_columns, &a);
  free(part);
  return 0;
}

/* ── Seesaw ─────────────────────────────────────────────────────────────────────────────────── */

typedef struct {
  const float *logits;
  const int32_t *labels;
  float *grad, *row_loss;
  int64_t c;
  double scale;
  const float *log_count;
  double p, q, log_eps;
} seesaw_args;

/* The adjusted class logit of Seesaw for non-target j (see seesaw_rows). */
INLINE double seesaw_adjusted(double z, double lc, double own, double p, double q, double t) {
  const double m = p * (lc - own);
  const double k = z - t;
  return z + (m < 0.0 ? m : 0.0) + q * (k > 0.0 ? k : 0.0);
}

/*
 * Rows of Seesaw, in double except the exponentials (eql_exp_d of an exact double argument):
 * for a foreground row with label l, non-target class j's logit becomes
 * z_j + min(0, p·(lc_j - lc_l)) + q·max(0, z_j - t), t = max(z_l, lse + log eps), lse the
 * log-sum-exp of the class logits; then a softmax cross-entropy over the adjusted logits (target
 * unchanged), plus the objectness pair's 2-way cross-entropy on every row. The gradient row is
 * the exponentials' scratch.
 */
static void seesaw_rows(void *pp, int64_t i0, int64_t i1) {
  const seesaw_args *a = pp;
  const int64_t c = a->c, classes = c - 2;
  const double p = a->p, q = a->q;
  const float *restrict lc = a->log_count;
  for (int64_t i = i0; i < i1; i++) {
    const int64_t label = a->labels[i];
    const float *restrict x = a->logits + i * c;
    float *restrict g = a->grad + i * c;
    float bad = 0.0f;
    double mx = -INFINITY;
#pragma omp simd reduction(+ : bad) reduction(max : mx)
    for (int64_t j = 0; j < classes; j++) {
      bad += x[j] - x[j];
      const double z = (double)x[j];
      mx = z > mx ? z : mx;
    }
    bad += (x[classes] - x[classes]) + (x[classes + 1] - x[classes + 1]);
    const int fg = label < classes;
    const double zf = x[classes], zb = x[classes + 1];
    const double dz = fg ? zb - zf : zf - zb; /* the other objectness logit minus the target's */
    const double obj = dz > 0.0 ? dz + log1p(exp(-dz)) : log1p(exp(dz));
    const double po = dz > 0.0 ? 1.0 / (1.0 + exp(-dz)) : exp(dz) / (1.0 + exp(dz));
    g[classes] = (float)(a->scale * (fg ? -po : po));
    g[classes + 1] = (float)(a->scale * (fg ? po : -po));
    if (!fg) {
      for (int64_t j = 0; j < classes; j++) g[j] = 0.0f;
      a->row_loss[i] = (float)(obj + (double)bad);
      continue;
    }
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < classes; j++) s += (double)eql_exp_d((double)x[j] - mx);
    const double zl = x[label];
    const double lse = mx + log(s) + a->log_eps;
    const double t = zl > lse ? zl : lse;
    const double own = lc[label];
    double am = zl;
#pragma omp simd reduction(max : am)
    for (int64_t j = 0; j < classes; j++) {
      const double v = seesaw_adjusted((double)x[j], (double)lc[j], own, p, q, t);
      am = v > am ? v : am;
    }
    double others = 0.0;
#pragma omp simd reduction(+ : others)
    for (int64_t j = 0; j < classes; j++) {
      const float e = eql_exp_d(seesaw_adjusted((double)x[j], (double)lc[j], own, p, q, t) - am);
      g[j] = e;
      others += j == label ? 0.0 : (double)e;
    }
    const double e_own = exp(zl - am);
    const double total = e_own + others;
    const double loss = zl - am > -690.0 ? log1p(others / e_own) : log(total) + (am - zl);
    a->row_loss[i] = (float)(loss + obj + (double)bad);
    const double gd = a->scale / total;
    const float gf = (float)gd;
#pragma omp simd
    for (int64_t j = 0; j < classes; j++) g[j] *= gf;
    g[label] = (float)(-gd * others);
  }
}

/*
 * Seesaw loss over logits [n, c] (c - 2 classes + the objectness pair: column c - 2 foreground,
 * c - 1 background) with labels in 0..c-2 (c - 2 = background; the caller checks them); see
 * SeesawLossParams in src/device/device.ts. log_count[j] = log(max(N_j, 1)) for j < c - 2.
 */
void eql_seesaw_loss(const float *logits, const int32_t *labels, float *grad, float *row_loss,
                     int64_t n, int64_t c, double scale, const float *log_count, double p,
                     double q, double eps) {
  seesaw_args a = {logits, labels, grad, row_loss, c, scale, log_count, p, q, log(eps)};
  eql_parallel_for(n, row_grain(c), seesaw_rows, &a);
}

/* ── smooth-L1 ──────────────────────────────────────────────────────────────────────────────── */

typedef struct {
  const float *pred, *target, *row_weight;
  float *grad, *row_loss;
  int64_t d;
  double beta, scale;
} smooth_l1_args;

/* In double, with the TypeScript kernel's operations in its order (no vectorised reduction). */
static void smooth_l1_rows(void *p, int64_t i0, int64_t i1) {
  const smooth_l1_args *a = p;
  const int64_t d = a->d;
  const double beta = a->beta;
  for (int64_t i = i0; i < i1; i++) {
    const double w = a->row_weight[i];
    const float *pr = a->pred + i * d, *tg = a->target + i * d;
    float *g = a->grad + i * d;
    double sum = 0.0;
    for (int64_t j = 0; j < d; j++) {
      const double diff = (double)pr[j] - (double)tg[j];
      const double ad = fabs(diff);
      double l, s;
      if (ad < beta) {
        l = (0.5 * diff * diff) / beta;
        s = diff / beta;
      } else {
        l = ad - 0.5 * beta;
        s = diff > 0.0 ? 1.0 : diff < 0.0 ? -1.0 : 0.0;
      }
      sum += l;
      g[j] = (float)(a->scale * w * s);
    }
    a->row_loss[i] = (float)(w * sum);
  }
}

/* Smooth-L1 over [n, d] rows, each weighted by row_weight[i]; see SmoothL1Shape. */
void eql_smooth_l1_loss(const float *pred, const float *target, const float *row_weight,
                        float *grad, float *row_loss, int64_t n, int64_t d, double beta,
                        double scale) {
  smooth_l1_args a = {pred, target, row_weight, grad, row_loss, d, beta, scale};
  eql_parallel_for(n, row_grain(d), smooth_l1_rows, &a);
}

/* ── the vector math on its own, for the accuracy sweep of the tests ──────────────────────── */

/* y[i] = exp(x[i]) in single precision (eql_expf). */
void eql_exp_f32(const float *x, float *y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) y[i] = eql_expf(x[i]);
}

/* y[i] = exp(x[i]) for double arguments, rounded to single precision (eql_exp_d). */
void eql_exp_f64(const double *x, float *y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) y[i] = eql_exp_d(x[i]);
}

/* y[i] = log1p(x[i]) in single precision (eql_log1pf). */
void eql_log1p_f32(const float *x, float *y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) y[i] = eql_log1pf(x[i]);
}

/* y[i] = exp(a[i] - b[i]) in single precision, the difference taken exactly (eql_exp_diff). */
void eql_exp_diff_f32(const float *a, const float *b, float *y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) y[i] = eql_exp_diff(a[i], b[i]);
}

/* y[i] = log1p(x[i]) for x[i] in [0, 1] or NaN (eql_log1pf_unit, as the sigmoid losses use it). */
void eql_log1p_unit_f32(const float *x, float *y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) y[i] = eql_log1pf_unit(x[i], 1.0f + x[i]);
}
