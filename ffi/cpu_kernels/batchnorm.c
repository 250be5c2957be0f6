/*
 * Batch normalisation over NCHW data ([n, c, hw], statistics per channel over n*hw values), the
 * same algorithm as src/device/cpu/batchnorm.ts: per-channel sums in double precision, shifted
 * by the channel's first value so that a large mean cannot swamp the variance, then one fused
 * multiply-add per value with coefficients folded in double precision. The sums run in parallel
 * over channels (each channel summed by one thread in a fixed order, so results do not depend on
 * the thread count) and the per-value passes in parallel over planes.
 */
#include "eql_cpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Planes (n*c of them) per thread below which the apply pass stays on one thread. */
#define PLANE_GRAIN_VALUES (1 << 15)

typedef struct {
  const float *x, *dy, *mean;
  const float *y; /* backward with a fused ReLU: dy counts only where y > 0 */
  int64_t n, c, hw;
  double *s1, *s2; /* per channel */
} moments_args;

/* The fused ReLU's backward mask, on bit patterns as in elementwise.c: dy where y > +0. */
static inline float relu_mask(float dy, float y) {
  int32_t d, v;
  memcpy(&d, &dy, 4);
  memcpy(&v, &y, 4);
  d &= (int32_t)(0u - (uint32_t)v) >> 31;
  float g;
  memcpy(&g, &d, 4);
  return g;
}

/* The ReLU forward on the bit pattern: a value with a clear sign bit passes, others become +0. */
static inline float relu_bits(float z) {
  int32_t v;
  memcpy(&v, &z, 4);
  v &= ~(v >> 31);
  memcpy(&z, &v, 4);
  return z;
}

/* s1[c] = sum(x - k), s2[c] = sum((x - k)^2) with k = x[0, c, 0]. */
static void moments_range(void *p, int64_t c0, int64_t c1) {
  const moments_args *g = p;
  for (int64_t c = c0; c < c1; c++) {
    const double k = g->x[c * g->hw];
    double a1 = 0, a2 = 0;
    for (int64_t b = 0; b < g->n; b++) {
      const float *row = g->x + (b * g->c + c) * g->hw;
      double t1 = 0, t2 = 0;
#pragma omp simd reduction(+ : t1, t2)
      for (int64_t i = 0; i < g->hw; i++) {
        const double u = (double)row[i] - k;
        t1 += u;
        t2 += u * u;
      }
      a1 += t1;
      a2 += t2;
    }
    g->s1[c] = a1;
    g->s2[c] = a2;
  }
}

/* s1[c] = sum(dy), s2[c] = sum(dy * (x - mean[c])). */
static void grad_sums_range(void *p, int64_t c0, int64_t c1) {
  const moments_args *g = p;
  for (int64_t c = c0; c < c1; c++) {
    const double mean = g->mean[c];
    double a1 = 0, a2 = 0;
    for (int64_t b = 0; b < g->n; b++) {
      const int64_t base = (b * g->c + c) * g->hw;
      const float *x = g->x + base, *dy = g->dy + base;
      double t1 = 0, t2 = 0;
      if (g->y) {
        const float *y = g->y + base;
#pragma omp simd reduction(+ : t1, t2)
        for (int64_t i = 0; i < g->hw; i++) {
          const double d = relu_mask(dy[i], y[i]);
          t1 += d;
          t2 += d * ((double)x[i] - mean);
        }
      } else {
#pragma omp simd reduction(+ : t1, t2)
        for (int64_t i = 0; i < g->hw; i++) {
          const double d = dy[i];
          t1 += d;
          t2 += d * ((double)x[i] - mean);
        }
      }
      a1 += t1;
      a2 += t2;
    }
    g->s1[c] = a1;
    g->s2[c] = a2;
  }
}

typedef struct {
  const float *x, *dy;
  float *out;
  int64_t c, hw;
  const double *ka, *kb, *kc; /* per channel; kc only for backward */
  /* Fused extras. Forward: residual added before the ReLU (relu set). Backward: y masks dy
   * (the ReLU's output), and dres receives the masked dy (the residual's gradient). */
  const float *residual, *y;
  float *dres;
  int relu;
} apply_args;

/* out = ka*x + kb per plane (forward), or ka*dy + kb*x + kc (backward, dy set), in double. */
static void apply_range(void *p, int64_t plane0, int64_t plane1) {
  const apply_args *g = p;
  const int64_t hw = g->hw; /* hoisted: the stores below could alias *g for the compiler */
  for (int64_t q = plane0; q < plane1; q++) {
    const int64_t c = q % g->c, at = q * hw;
    const float *x = g->x + at;
    float *out = g->out + at;
    if (g->dy) {
      const float *dy = g->dy + at;
      const double ka = g->ka[c], kb = g->kb[c], kc = g->kc[c];
      if (!g->y) {
#pragma omp simd
        for (int64_t i = 0; i < hw; i++) {
          out[i] = (float)(ka * (double)dy[i] + kb * (double)x[i] + kc);
        }
      } else if (!g->dres) {
        const float *y = g->y + at;
#pragma omp simd
        for (int64_t i = 0; i < hw; i++) {
          out[i] = (float)(ka * (double)relu_mask(dy[i], y[i]) + kb * (double)x[i] + kc);
        }
      } else {
        const float *y = g->y + at;
        float *dres = g->dres + at;
#pragma omp simd
        for (int64_t i = 0; i < hw; i++) {
          const float d = relu_mask(dy[i], y[i]);
          dres[i] = d;
          out[i] = (float)(ka * (double)d + kb * (double)x[i] + kc);
        }
      }
    } else {
      const double ka = g->ka[c], kb = g->kb[c];
      if (!g->relu) {
#pragma omp simd
        for (int64_t i = 0; i < hw; i++) out[i] = (float)(ka * (double)x[i] + kb);
      } else if (!g->residual) {
#pragma omp simd
        for (int64_t i = 0; i < hw; i++) out[i] = relu_bits((float)(ka * (double)x[i] + kb));
      } else {
        const float *res = g->residual + at;
#pragma omp simd
        for (int64_t i = 0; i < hw; i++) {
          out[i] = relu_bits((float)(ka * (double)x[i] + kb) + res[i]);
        }
      }
    }
  }
}

static void apply(const apply_args *g, int64_t n) {
  int64_t grain = PLANE_GRAIN_VALUES / g->hw;
  eql_parallel_for(n * g->c, grain < 1 ? 1 : grain, apply_range, (void *)g);
}

/* Channels per thread: at least one, and enough values that waking a thread pays. */
static int64_t channel_grain(int64_t n, int64_t hw) {
  int64_t per = n * hw, grain = PLANE_GRAIN_VALUES / (per < 1 ? 1 : per);
  return grain < 1 ? 1 : grain;
}

/*
 * Training forward: y = gamma*(x - mean)*invstd + beta with the biased batch variance; writes
 * save_mean, save_invstd and moves running_mean / running_var (unbiased) by momentum. With relu
 * set, y = max(that + residual, 0) (residual may be NULL), bit for bit the separate add and ReLU
 * kernels. Returns 0, or -1 when scratch memory could not be allocated.
 */
int32_t eql_bn_forward_training(const float *x, float *y, const float *residual, int32_t relu,
                                const float *gamma, const float *beta, float *running_mean,
                                float *running_var, float *save_mean, float *save_invstd,
                                int32_t n, int32_t c, int32_t hw, double momentum, double eps) {
  double *scratch = malloc(sizeof(double) * 4 * (size_t)c);
  if (!scratch) return -1;
  moments_args mg = {x, 0, 0, 0, n, c, hw, scratch, scratch + c};
  eql_parallel_for(c, channel_grain(n, hw), moments_range, &mg);
  const double m = (double)n * hw;
  double *ka = scratch + 2 * c, *kb = scratch + 3 * c;
  for (int32_t ch = 0; ch < c; ch++) {
    const double k = x[(int64_t)ch * hw];
    const double d = mg.s1[ch] / m, mean = k + d;
    double var = mg.s2[ch] / m - d * d;
    if (var < 0) var = 0;
    const double invstd = 1 / sqrt(var + eps);
    save_mean[ch] = (float)mean;
    save_invstd[ch] = (float)invstd;
    running_mean[ch] = (float)((1 - momentum) * running_mean[ch] + momentum * mean);
    running_var[ch] = (float)((1 - momentum) * running_var[ch] + momentum * var * m / (m - 1));
    ka[ch] = gamma[ch] * invstd;
    kb[ch] = beta[ch] - mean * ka[ch];
  }
  apply_args ag = {x, 0, y, c, hw, ka, kb, 0, residual, 0, 0, relu};
  apply(&ag, n);
  free(scratch);
  return 0;
}

/* Inference forward with the running statistics. Returns 0, or -1 when out of memory. */
int32_t eql_bn_forward_inference(const float *x, float *y, const float *gamma, const float *beta,
                                 const float *running_mean, const float *running_var, int32_t n,
                                 int32_t c, int32_t hw, double eps) {
  double *scratch = malloc(sizeof(double) * 2 * (size_t)c);
  if (!scratch) return -1;
  double *ka = scratch, *kb = scratch + c;
  for (int32_t ch = 0; ch < c; ch++) {
    ka[ch] = gamma[ch] / sqrt((double)running_var[ch] + eps);
    kb[ch] = beta[ch] - running_mean[ch] * ka[ch];
  }
  apply_args ag = {x, 0, y, c, hw, ka, kb, 0, 0, 0, 0, 0};
  apply(&ag, n);
  free(scratch);
  return 0;
}

/*
 * Backward of the training forward: dbeta = sum dy, dgamma = sum dy*xhat,
 * dx = gamma*invstd*(dy - dbeta/m - xhat*dgamma/m). With y (the forward's output after its ReLU)
 * given, dy counts only where y > 0, and dres (when given) receives that masked dy, the
 * residual's gradient. Returns 0, or -1 when out of memory.
 */
int32_t eql_bn_backward(const float *x, const float *y, const float *dy, float *dx, float *dres,
                        const float *gamma, float *dgamma, float *dbeta, const float *save_mean,
                        const float *save_invstd, int32_t n, int32_t c, int32_t hw) {
  double *scratch = malloc(sizeof(double) * 5 * (size_t)c);
  if (!scratch) return -1;
  moments_args mg = {x, dy, save_mean, y, n, c, hw, scratch, scratch + c};
  eql_parallel_for(c, channel_grain(n, hw), grad_sums_range, &mg);
  const double m = (double)n * hw;
  double *ka = scratch + 2 * c, *kb = scratch + 3 * c, *kc = scratch + 4 * c;
  for (int32_t ch = 0; ch < c; ch++) {
    const double invstd = save_invstd[ch], mean = save_mean[ch];
    const double sum_dy = mg.s1[ch], sum_dy_xc = mg.s2[ch];
    dbeta[ch] = (float)sum_dy;
    dgamma[ch] = (float)(sum_dy_xc * invstd);
    ka[ch] = gamma[ch] * invstd;
    kb[ch] = -ka[ch] * invstd * invstd * sum_dy_xc / m;
    kc[ch] = -ka[ch] * sum_dy / m - kb[ch] * mean;
  }
  apply_args ag = {x, dy, dx, c, hw, ka, kb, kc, 0, y, dres, 0};
  apply(&ag, n);
  free(scratch);
  return 0;
}
