/*
 * Direct 3x3 convolution, stride 1, padding 1, NCHW: the CIFAR ResNet case. Instead of packing
 * shifted copies of the input for a GEMM (memory traffic several times the input), each thread
 * copies one sample's planes into a zero-bordered scratch (which stays in L2) and computes the
 * outputs from it with register blocking: 8 output channels x 16 pixels of accumulators, one
 * input vector load per 8 fused multiply-adds. The vector type is GCC/Clang's 8-float vector,
 * so the compiler emits AVX2/AVX-512 ymm code, or pairs of SSE/NEON registers, for the host.
 *
 * Backward-data is the same forward pass over dy with the kernel flipped and its channel axes
 * swapped. Backward-filter splits the batch into a fixed number of parts, sums each part in
 * registers and adds the parts in order, so its result does not depend on the thread count.
 *
 * Requirements (checked by the caller): the width a multiple of 8, h*w a multiple of 16, and the
 * output channel count a multiple of 8 (forward; backward-filter needs a multiple of 2).
 */
#include "eql_cpu.h"

#include <stdlib.h>
#include <string.h>

typedef float v8 __attribute__((vector_size(32), aligned(4)));

static inline v8 load8(const float *p) {
  v8 v;
  memcpy(&v, p, sizeof v);
  return v;
}

static inline void store8(float *p, v8 v) { memcpy(p, &v, sizeof v); }

/* Output channels per register block of the forward pass. */
#define KB 8

/* Copies sample planes [c, h, w] into scratch [c, h+2, w+2] with a zero border. */
static void pad_sample(const float *x, float *pad, int64_t c, int64_t h, int64_t w) {
  const int64_t pw = w + 2, plane = (h + 2) * pw;
  for (int64_t ch = 0; ch < c; ch++) {
    float *p = pad + ch * plane;
    memset(p, 0, sizeof(float) * pw);
    for (int64_t i = 0; i < h; i++) {
      float *row = p + (i + 1) * pw;
      row[0] = 0;
      memcpy(row + 1, x + (ch * h + i) * w, sizeof(float) * w);
      row[w + 1] = 0;
    }
    memset(p + (h + 1) * pw, 0, sizeof(float) * pw);
  }
}

typedef struct {
  const float *x;  /* [n, c_in, h, w] */
  const float *wr; /* weights regrouped [c_out/KB][c_in][9][KB] */
  float *y;        /* [n, c_out, h, w] */
  int64_t c_in, h, w, c_out;
  int failed;
} fwd_args;

static void forward_range(void *p, int64_t b0, int64_t b1) {
  fwd_args *g = p;
  const int64_t C = g->c_in, H = g->h, W = g->w, K = g->c_out, hw = H * W;
  const int64_t pw = W + 2, plane = (H + 2) * pw;
  float *pad = malloc(sizeof(float) * (size_t)(C * plane));
  if (!pad) {
    g->failed = 1;
    return;
  }
  for (int64_t b = b0; b < b1; b++) {
    pad_sample(g->x + b * C * hw, pad, C, H, W);
    for (int64_t kb = 0; kb < K / KB; kb++) {
      const float *wk = g->wr + kb * C * 9 * KB;
      float *yk = g->y + (b * K + kb * KB) * hw;
      /* Two groups of 8 consecutive output pixels (each inside one row) per block. */
      for (int64_t t = 0; t < hw; t += 16) {
        const int64_t i0 = t / W, j0 = t % W, i1 = (t + 8) / W, j1 = (t + 8) % W;
        v8 acc0[KB], acc1[KB];
        for (int u = 0; u < KB; u++) acc0[u] = acc1[u] = (v8){0};
        for (int64_t c = 0; c < C; c++) {
          const float *p0 = pad + c * plane + i0 * pw + j0, *p1 = pad + c * plane + i1 * pw + j1;
          const float *wc = wk + c * 9 * KB;
          for (int r = 0; r < 3; r++) {
            for (int q = 0; q < 3; q++) {
              const v8 x0 = load8(p0 + r * pw + q), x1 = load8(p1 + r * pw + q);
              const float *ww = wc + (r * 3 + q) * KB;
              for (int u = 0; u < KB; u++) {
                acc0[u] += x0 * ww[u];
                acc1[u] += x1 * ww[u];
              }
            }
          }
        }
        for (int u = 0; u < KB; u++) {
          store8(yk + u * hw + t, acc0[u]);
          store8(yk + u * hw + t + 8, acc1[u]);
        }
      }
    }
  }
  free(pad);
}

/* Runs the forward pass with weights given as w[k][c][r][q] read through (k, c, t) -> index. */
static int32_t forward(const float *x, const float *w, float *y, int64_t n, int64_t c_in,
                       int64_t h, int64_t wd, int64_t c_out, int flipped) {
  float *wr = malloc(sizeof(float) * (size_t)(c_out * c_in * 9));
  if (!wr) return -1;
  for (int64_t k = 0; k < c_out; k++) {
    for (int64_t c = 0; c < c_in; c++) {
      for (int t = 0; t < 9; t++) {
        /* Flipped: the kernel of the transposed convolution, w[c][k][8 - t] of the original. */
        const float v = flipped ? w[(c * c_out + k) * 9 + 8 - t] : w[(k * c_in + c) * 9 + t];
        wr[(((k / KB) * c_in + c) * 9 + t) * KB + k % KB] = v;
      }
    }
  }
  fwd_args g = {x, wr, y, c_in, h, wd, c_out, 0};
  eql_parallel_for(n, 1, forward_range, &g);
  free(wr);
  return g.failed ? -1 : 0;
}

/* y = conv3x3(x, w): x [n, c_in, h, w], w [c_out, c_in, 3, 3], y [n, c_out, h, w]. */
int32_t eql_conv3x3_forward(const float *x, const float *w, float *y, int64_t n, int64_t c_in,
                            int64_t h, int64_t wd, int64_t c_out) {
  return forward(x, w, y, n, c_in, h, wd, c_out, 0);
}

/* dx = dL/dx for the convolution above, from dy [n, c_out, h, w]; needs c_in % 8 == 0. */
int32_t eql_conv3x3_backward_data(const float *w, const float *dy, float *dx, int64_t n,
                                  int64_t c_in, int64_t h, int64_t wd, int64_t c_out) {
  return forward(dy, w, dx, n, c_out, h, wd, c_in, 1);
}

/* Samples are split into this many parts, each summed on its own and the parts then added in
 * order, so the filter gradient does not depend on the thread count. */
#define FILTER_PARTS 8

typedef struct {
  const float *x, *dy;
  float *partial; /* [parts][c_out][c_in][9] */
  int64_t n, parts, c_in, h, w, c_out;
  int failed;
} bwf_args;

static void backward_filter_range(void *p, int64_t part0, int64_t part1) {
  bwf_args *g = p;
  const int64_t C = g->c_in, H = g->h, W = g->w, K = g->c_out, hw = H * W;
  const int64_t pw = W + 2, plane = (H + 2) * pw;
  const int64_t most = (g->n + g->parts - 1) / g->parts;
  float *pad = malloc(sizeof(float) * (size_t)(most * C * plane));
  if (!pad) {
    g->failed = 1;
    return;
  }
  for (int64_t part = part0; part < part1; part++) {
    const int64_t b0 = g->n * part / g->parts, nb = g->n * (part + 1) / g->parts - b0;
    for (int64_t b = 0; b < nb; b++) pad_sample(g->x + (b0 + b) * C * hw, pad + b * C * plane, C, H, W);
    float *out = g->partial + part * K * C * 9;
    /* Two output channels and all nine taps of one input channel in registers, summed over
     * every pixel of every sample of the part. */
    for (int64_t k = 0; k < K; k += 2) {
      for (int64_t c = 0; c < C; c++) {
        v8 a0[9], a1[9];
        for (int t = 0; t < 9; t++) a0[t] = a1[t] = (v8){0};
        for (int64_t b = 0; b < nb; b++) {
          const float *d0 = g->dy + ((b0 + b) * K + k) * hw, *d1 = d0 + hw;
          const float *pc = pad + (b * C + c) * plane;
          for (int64_t t = 0; t < hw; t += 8) {
            const int64_t i = t / W, j = t % W;
            const v8 g0 = load8(d0 + t), g1 = load8(d1 + t);
            const float *px = pc + i * pw + j;
            for (int r = 0; r < 3; r++) {
              for (int q = 0; q < 3; q++) {
                const v8 xv = load8(px + r * pw + q);
                a0[r * 3 + q] += g0 * xv;
                a1[r * 3 + q] += g1 * xv;
              }
            }
          }
        }
        float *o0 = out + (k * C + c) * 9, *o1 = out + ((k + 1) * C + c) * 9;
        for (int t = 0; t < 9; t++) {
          const v8 u = a0[t], v = a1[t];
          o0[t] = ((u[0] + u[1]) + (u[2] + u[3])) + ((u[4] + u[5]) + (u[6] + u[7]));
          o1[t] = ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
        }
      }
    }
  }
  free(pad);
}

/* dw = dL/dw from x [n, c_in, h, w] and dy [n, c_out, h, w]; needs c_out % 2 == 0. */
int32_t eql_conv3x3_backward_filter(const float *x, const float *dy, float *dw, int64_t n,
                                    int64_t c_in, int64_t h, int64_t wd, int64_t c_out) {
  const int64_t parts = n < FILTER_PARTS ? n : FILTER_PARTS, size = c_out * c_in * 9;
  float *partial = malloc(sizeof(float) * (size_t)(parts * size));
  if (!partial) return -1;
  bwf_args g = {x, dy, partial, n, parts, c_in, h, wd, c_out, 0};
  eql_parallel_for(parts, 1, backward_filter_range, &g);
  if (!g.failed) {
    for (int64_t e = 0; e < size; e++) {
      float s = 0;
      for (int64_t part = 0; part < parts; part++) s += partial[part * size + e];
      dw[e] = s;
    }
  }
  free(partial);
  return g.failed ? -1 : 0;
}
