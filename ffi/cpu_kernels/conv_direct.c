/*
 * Direct 3x3 convolution with padding 1 and stride 1 or 2, NCHW: the CIFAR ResNet layers.
 * Instead of packing shifted copies of the input for a GEMM (memory traffic several times the
 * input), each thread copies one sample's planes into a zero-bordered scratch (small enough to
 * stay in L2) and computes the outputs from it with register blocking: 8 output channels x 16
 * pixels of accumulators, one input vector load per 8 fused multiply-adds. The vector type is
 * GCC/Clang's 8-float vector, so the compiler emits AVX2/AVX-512 ymm code, or pairs of SSE/NEON
 * registers, for the host.
 *
 * For stride 2 the scratch rows hold the even padded columns, then the odd ones, so the inputs
 * of 8 neighbouring outputs (columns 2j + q) are again 8 consecutive floats.
 *
 * Backward-data (stride 1) is the same forward pass over dy with the kernel flipped and its
 * channel axes swapped. Backward-filter splits the batch into a fixed number of parts, sums each
 * part in registers and adds the parts in order, so its result does not depend on the thread
 * count.
 *
 * Requirements (checked by the caller): output rows a multiple of 8 pixels, outputs per channel
 * a multiple of 16, even input sizes for stride 2, and output channels a multiple of 8 (forward;
 * input channels for backward-data).
 */
#include "eql_cpu.h"

#include <stdlib.h>
#include <string.h>

/* `acc += a * b` as one fused multiply-add: ISO C mode (-std=c11) otherwise keeps the multiply
 * and the add apart, which costs an instruction and a rounding per term. */
#if defined(__clang__)
#pragma clang fp contract(fast)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=fast")
#endif

typedef float v8 __attribute__((vector_size(32), aligned(4)));

static inline v8 load8(const float *p) {
  v8 v;
  memcpy(&v, p, sizeof v);
  return v;
}

static inline void store8(float *p, v8 v) { memcpy(p, &v, sizeof v); }

/* Output channels per register block of the forward pass. */
#define KB 8
/* Samples are split into this many parts for backward-filter (see above). */
#define FILTER_PARTS 8
/* Output channels per register block of backward-filter (times 9 taps of accumulators; three
 * measured no faster on AVX-512, and two spill less with 16 vector registers). */
#define FK 2

/* The geometry of one convolution and of its scratch planes. */
typedef struct {
  int64_t c, h, w;    /* input channels and size */
  int64_t k, oh, ow;  /* output channels and size */
  int64_t stride;
  int64_t pw, plane;  /* scratch row pitch (w + 2) and plane size ((h + 2) * pw) */
  int64_t tap[9];     /* scratch offset of tap (r, q) from an output pixel's base */
} geometry;

static geometry make_geometry(int64_t c, int64_t h, int64_t w, int64_t k, int64_t stride) {
  geometry g = {c, h, w, k, 0, 0, stride, w + 2, (h + 2) * (w + 2), {0}};
  g.oh = stride == 1 ? h : h / 2;
  g.ow = stride == 1 ? w : w / 2;
  for (int r = 0; r < 3; r++) {
    for (int q = 0; q < 3; q++) {
      /* Stride 2: column 2j + q is even column j (q = 0), odd column j (q = 1) or even
       * column j + 1 (q = 2); the odd columns start half a row in. */
      const int64_t col = stride == 1 ? q : (q == 1 ? g.pw / 2 : q / 2);
      g.tap[r * 3 + q] = r * g.pw + col;
    }
  }
  return g;
}

/* Scratch offset of output pixel (i, j)'s tap (0, 0). */
static inline int64_t base_of(const geometry *g, int64_t i, int64_t j) {
  return i * g->stride * g->pw + j;
}

/* Copies sample planes [c, h, w] into scratch [c, h+2, w+2] with a zero border (columns split
 * into even and odd halves for stride 2). */
static void pad_sample(const geometry *g, const float *x, float *pad) {
  const int64_t pw = g->pw, w = g->w, half = pw / 2;
  for (int64_t ch = 0; ch < g->c; ch++) {
    float *p = pad + ch * g->plane;
    memset(p, 0, sizeof(float) * pw);
    for (int64_t i = 0; i < g->h; i++) {
      float *row = p + (i + 1) * pw;
      const float *src = x + (ch * g->h + i) * w;
      if (g->stride == 1) {
        row[0] = 0;
        memcpy(row + 1, src, sizeof(float) * w);
        row[w + 1] = 0;
      } else {
        /* Padded column m holds src[m - 1]: even m at row[m / 2], odd m at row[half + m / 2]. */
        row[0] = 0;
        for (int64_t m = 1; m <= w; m++) row[(m & 1) ? half + m / 2 : m / 2] = src[m - 1];
        row[half + half - 1] = 0; /* padded column w + 1 (odd) */
      }
    }
    memset(p + (g->h + 1) * pw, 0, sizeof(float) * pw);
  }
}

typedef struct {
  geometry g;
  const float *x;  /* [n, c, h, w] */
  const float *wr; /* weights regrouped [k/KB][c][9][KB] */
  float *y;        /* [n, k, oh, ow] */
  int failed;
} fwd_args;

static void forward_range(void *p, int64_t b0, int64_t b1) {
  fwd_args *a = p;
  const geometry *g = &a->g;
  const int64_t C = g->c, K = g->k, ohw = g->oh * g->ow;
  float *pad = malloc(sizeof(float) * (size_t)(C * g->plane));
  if (!pad) {
    a->failed = 1;
    return;
  }
  for (int64_t b = b0; b < b1; b++) {
    pad_sample(g, a->x + b * C * g->h * g->w, pad);
    for (int64_t kb = 0; kb < K / KB; kb++) {
      const float *wk = a->wr + kb * C * 9 * KB;
      float *yk = a->y + (b * K + kb * KB) * ohw;
      /* Two groups of 8 consecutive output pixels (each inside one row) per block. */
      for (int64_t t = 0; t < ohw; t += 16) {
        const int64_t s0 = base_of(g, t / g->ow, t % g->ow);
        const int64_t s1 = base_of(g, (t + 8) / g->ow, (t + 8) % g->ow);
        v8 acc0[KB], acc1[KB];
        for (int u = 0; u < KB; u++) acc0[u] = acc1[u] = (v8){0};
        for (int64_t c = 0; c < C; c++) {
          const float *pc = pad + c * g->plane;
          const float *wc = wk + c * 9 * KB;
          for (int tap = 0; tap < 9; tap++) {
            const v8 x0 = load8(pc + s0 + g->tap[tap]), x1 = load8(pc + s1 + g->tap[tap]);
            const float *ww = wc + tap * KB;
            for (int u = 0; u < KB; u++) {
              acc0[u] += x0 * ww[u];
              acc1[u] += x1 * ww[u];
            }
          }
        }
        for (int u = 0; u < KB; u++) {
          store8(yk + u * ohw + t, acc0[u]);
          store8(yk + u * ohw + t + 8, acc1[u]);
        }
      }
    }
  }
  free(pad);
}

/* The forward pass with weights w[k][c][r][q], or (flipped) the transposed convolution's kernel
 * w[c][k][2 - r][2 - q] of a convolution with c and k swapped. */
static int32_t forward(const float *x, const float *w, float *y, int64_t n, geometry g,
                       int flipped) {
  const int64_t C = g.c, K = g.k;
  float *wr = malloc(sizeof(float) * (size_t)(K * C * 9));
  if (!wr) return -1;
  for (int64_t k = 0; k < K; k++) {
    for (int64_t c = 0; c < C; c++) {
      for (int t = 0; t < 9; t++) {
        const float v = flipped ? w[(c * K + k) * 9 + 8 - t] : w[(k * C + c) * 9 + t];
        wr[(((k / KB) * C + c) * 9 + t) * KB + k % KB] = v;
      }
    }
  }
  fwd_args a = {g, x, wr, y, 0};
  eql_parallel_for(n, 1, forward_range, &a);
  free(wr);
  return a.failed ? -1 : 0;
}

/* y = conv3x3(x, w) with padding 1: x [n, c_in, h, w], w [c_out, c_in, 3, 3],
 * y [n, c_out, oh, ow]. Returns 0, or -1 when out of memory. */
int32_t eql_conv3x3_forward(const float *x, const float *w, float *y, int64_t n, int64_t c_in,
                            int64_t h, int64_t wd, int64_t c_out, int64_t stride) {
  return forward(x, w, y, n, make_geometry(c_in, h, wd, c_out, stride), 0);
}

/* dx = dL/dx of the stride-1 convolution from dy [n, c_out, h, w]; needs c_in % 8 == 0. */
int32_t eql_conv3x3_backward_data(const float *w, const float *dy, float *dx, int64_t n,
                                  int64_t c_in, int64_t h, int64_t wd, int64_t c_out) {
  return forward(dy, w, dx, n, make_geometry(c_out, h, wd, c_in, 1), 1);
}

/*
 * Backward-data of the stride-2 convolution. Input pixel (2a + py, 2b + px) receives dy from
 * output (a, b) and, for an odd coordinate, also from (a + 1) or (b + 1): in padded
 * coordinates 2i + r = y + 1, so an even row takes tap r = 1 at i = a, and an odd row taps
 * r = 0 at i = a + 1 and r = 2 at i = a (columns alike). Each of the four parities is thus a
 * small stride-1 convolution of dy (1, 2, 2 or 4 taps) whose 8-pixel results are stored to every
 * other column of dx.
 */
typedef struct {
  const float *dy;  /* [n, k, oh, ow] */
  const float *wr;  /* [4 phases][c/KB][k][4 taps][KB], unused taps zero */
  float *dx;        /* [n, c, h, w] */
  int64_t c, h, w, k, oh, ow, pitch, plane;
  int failed;
} bwd2_args;

/* Taps of each parity: (row offset in dy, column offset in dy, r, q). */
static const int phase_taps[4][4][4] = {
    {{0, 0, 1, 1}},
    {{0, 1, 1, 0}, {0, 0, 1, 2}},
    {{1, 0, 0, 1}, {0, 0, 2, 1}},
    {{1, 1, 0, 0}, {1, 0, 0, 2}, {0, 1, 2, 0}, {0, 0, 2, 2}},
};
static const int phase_tap_count[4] = {1, 2, 2, 4};

static void backward_data_s2_range(void *p, int64_t b0, int64_t b1) {
  bwd2_args *a = p;
  const int64_t C = a->c, K = a->k, oh = a->oh, ow = a->ow, ohw = oh * ow, pitch = a->pitch;
  float *pad = malloc(sizeof(float) * (size_t)(K * a->plane));
  if (!pad) {
    a->failed = 1;
    return;
  }
  for (int64_t b = b0; b < b1; b++) {
    /* dy planes with a zero row below and a zero column to the right. */
    for (int64_t k = 0; k < K; k++) {
      float *pk = pad + k * a->plane;
      for (int64_t i = 0; i < oh; i++) {
        memcpy(pk + i * pitch, a->dy + ((b * K + k) * oh + i) * ow, sizeof(float) * ow);
        for (int64_t j = ow; j < pitch; j++) pk[i * pitch + j] = 0;
      }
      memset(pk + oh * pitch, 0, sizeof(float) * pitch);
    }
    for (int phase = 0; phase < 4; phase++) {
      const int py = phase >> 1, px = phase & 1, taps = phase_tap_count[phase];
      int64_t off[4];
      for (int t = 0; t < taps; t++) off[t] = phase_taps[phase][t][0] * pitch + phase_taps[phase][t][1];
      for (int64_t cb = 0; cb < C / KB; cb++) {
        const float *wc = a->wr + ((int64_t)phase * (C / KB) + cb) * K * 4 * KB;
        float *dxc = a->dx + (b * C + cb * KB) * a->h * a->w;
        for (int64_t t = 0; t < ohw; t += 16) {
          const int64_t i0 = t / ow, j0 = t % ow, i1 = (t + 8) / ow, j1 = (t + 8) % ow;
          const int64_t s0 = i0 * pitch + j0, s1 = i1 * pitch + j1;
          v8 acc0[KB], acc1[KB];
          for (int u = 0; u < KB; u++) acc0[u] = acc1[u] = (v8){0};
          for (int64_t k = 0; k < K; k++) {
            const float *pk = pad + k * a->plane;
            const float *wk = wc + k * 4 * KB;
            for (int tap = 0; tap < taps; tap++) {
              const v8 x0 = load8(pk + s0 + off[tap]), x1 = load8(pk + s1 + off[tap]);
              const float *ww = wk + tap * KB;
              for (int u = 0; u < KB; u++) {
                acc0[u] += x0 * ww[u];
                acc1[u] += x1 * ww[u];
              }
            }
          }
          /* Every other column of dx rows 2*i0 + py and 2*i1 + py. */
          for (int u = 0; u < KB; u++) {
            float *plane = dxc + u * a->h * a->w;
            float *r0 = plane + (2 * i0 + py) * a->w + 2 * j0 + px;
            float *r1 = plane + (2 * i1 + py) * a->w + 2 * j1 + px;
            for (int l = 0; l < 8; l++) {
              r0[2 * l] = acc0[u][l];
              r1[2 * l] = acc1[u][l];
            }
          }
        }
      }
    }
  }
  free(pad);
}

/* dx = dL/dx of the stride-2 convolution from dy [n, c_out, h/2, w/2]; needs c_in % 8 == 0 and
 * even h, w. Returns 0, or -1 when out of memory. */
int32_t eql_conv3x3_s2_backward_data(const float *w, const float *dy, float *dx, int64_t n,
                                     int64_t c_in, int64_t h, int64_t wd, int64_t c_out) {
  const int64_t C = c_in, K = c_out, oh = h / 2, ow = wd / 2;
  float *wr = calloc((size_t)(4 * C * K * 4), sizeof(float));
  if (!wr) return -1;
  for (int phase = 0; phase < 4; phase++) {
    for (int t = 0; t < phase_tap_count[phase]; t++) {
      const int r = phase_taps[phase][t][2], q = phase_taps[phase][t][3];
      for (int64_t c = 0; c < C; c++) {
        for (int64_t k = 0; k < K; k++) {
          const int64_t cb = c / KB, u = c % KB;
          wr[((((int64_t)phase * (C / KB) + cb) * K + k) * 4 + t) * KB + u] =
              w[((k * C + c) * 3 + r) * 3 + q];
        }
      }
    }
  }
  const int64_t pitch = ow + 1;
  bwd2_args a = {dy, wr, dx, C, h, wd, K, oh, ow, pitch, (oh + 1) * pitch, 0};
  eql_parallel_for(n, 1, backward_data_s2_range, &a);
  free(wr);
  return a.failed ? -1 : 0;
}

typedef struct {
  geometry g;
  const float *x, *dy;
  float *partial; /* [parts][k][c][9] */
  int64_t n, parts;
  int failed;
} bwf_args;

/*
 * Filter gradients of output channels k .. k+fk-1 and all nine taps of input channel c, summed
 * in registers over every output pixel of nb samples: per 8 pixels, fk dy loads and nine input
 * loads feed 9*fk fused multiply-adds. Called with a literal fk so each instance is unrolled.
 */
static inline __attribute__((always_inline)) void filter_block(
    const geometry *g, const float *dy, const float *pad, int64_t nb, int64_t k, int64_t c,
    const int32_t *xoff, float *out, const int fk) {
  const int64_t K = g->k, C = g->c, ohw = g->oh * g->ow, plane = g->plane, groups = ohw / 8;
  int64_t tap[9];
  for (int t = 0; t < 9; t++) tap[t] = g->tap[t];
  v8 acc[3][9];
  for (int u = 0; u < fk; u++) {
    for (int t = 0; t < 9; t++) acc[u][t] = (v8){0};
  }
  for (int64_t b = 0; b < nb; b++) {
    const float *d0 = dy + (b * K + k) * ohw;
    const float *pc = pad + (b * C + c) * plane;
    /* One flat loop over the 8-pixel groups; xoff maps each to its scratch offset. */
    for (int64_t gi = 0; gi < groups; gi++) {
      const float *px = pc + xoff[gi];
      v8 gv[3];
      for (int u = 0; u < fk; u++) gv[u] = load8(d0 + u * ohw + 8 * gi);
      for (int t = 0; t < 9; t++) {
        const v8 xv = load8(px + tap[t]);
        for (int u = 0; u < fk; u++) acc[u][t] += gv[u] * xv;
      }
    }
  }
  for (int u = 0; u < fk; u++) {
    float *o = out + ((k + u) * C + c) * 9;
    for (int t = 0; t < 9; t++) {
      const v8 v = acc[u][t];
      o[t] = ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
    }
  }
}

static void backward_filter_range(void *p, int64_t part0, int64_t part1) {
  bwf_args *a = p;
  const geometry *g = &a->g;
  const int64_t C = g->c, K = g->k, ohw = g->oh * g->ow, chw = C * g->h * g->w;
  const int64_t most = (a->n + a->parts - 1) / a->parts;
  float *pad = malloc(sizeof(float) * (size_t)(most * C * g->plane));
  int32_t *xoff = malloc(sizeof(int32_t) * (size_t)(ohw / 8));
  if (!pad || !xoff) {
    free(pad);
    free(xoff);
    a->failed = 1;
    return;
  }
  for (int64_t t = 0; t < ohw; t += 8) xoff[t / 8] = (int32_t)base_of(g, t / g->ow, t % g->ow);
  for (int64_t part = part0; part < part1; part++) {
    const int64_t b0 = a->n * part / a->parts, nb = a->n * (part + 1) / a->parts - b0;
    for (int64_t b = 0; b < nb; b++) pad_sample(g, a->x + (b0 + b) * chw, pad + b * C * g->plane);
    float *out = a->partial + part * K * C * 9;
    const float *dy = a->dy + b0 * K * ohw;
    int64_t k = 0;
    for (; k + FK <= K; k += FK) {
      for (int64_t c = 0; c < C; c++) filter_block(g, dy, pad, nb, k, c, xoff, out, FK);
    }
    for (; k + 2 <= K; k += 2) {
      for (int64_t c = 0; c < C; c++) filter_block(g, dy, pad, nb, k, c, xoff, out, 2);
    }
    for (; k < K; k++) {
      for (int64_t c = 0; c < C; c++) filter_block(g, dy, pad, nb, k, c, xoff, out, 1);
    }
  }
  free(pad);
  free(xoff);
}

/* dw = dL/dw from x [n, c_in, h, w] and dy [n, c_out, oh, ow].
 * Returns 0, or -1 when out of memory. */
int32_t eql_conv3x3_backward_filter(const float *x, const float *dy, float *dw, int64_t n,
                                    int64_t c_in, int64_t h, int64_t wd, int64_t c_out,
                                    int64_t stride) {
  const int64_t parts = n < FILTER_PARTS ? n : FILTER_PARTS, size = c_out * c_in * 9;
  float *partial = malloc(sizeof(float) * (size_t)(parts * size));
  if (!partial) return -1;
  bwf_args a = {make_geometry(c_in, h, wd, c_out, stride), x, dy, partial, n, parts, 0};
  eql_parallel_for(parts, 1, backward_filter_range, &a);
  if (!a.failed) {
    for (int64_t e = 0; e < size; e++) {
      float s = 0;
      for (int64_t part = 0; part < parts; part++) s += partial[part * size + e];
      dw[e] = s;
    }
  }
  free(partial);
  return a.failed ? -1 : 0;
}
