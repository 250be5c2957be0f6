/*
 * Direct 3x3 convolution with padding 1 and stride 1 or 2, NCHW: the CIFAR ResNet layers.
 * Instead of packing shifted copies of the input for a GEMM (memory traffic several times the
 * input), each thread copies one sample's planes into a zero-bordered scratch (small enough to
 * stay in L2) and computes the outputs from it with register blocking: output channels x
 * consecutive pixels of accumulators, one input vector load per several fused multiply-adds.
 * The vector types are GCC/Clang vector extensions, so the compiler emits the host's vector
 * instructions (or pairs of narrower registers).
 *
 * Vector width and blocking depend on the build variant (EQL_VARIANT, see eql_cpu.h):
 * - AVX-512 (32 vector registers): 16-float vectors wherever rows are a multiple of 16 pixels,
 *   8-float ones on narrower rows;
 * - AVX2 (16 vector registers) and the portable build: 8-float vectors with smaller blocks, so
 *   that the accumulators stay in registers.
 * Each constant can be overridden with -D for tuning (EQL_KB16, EQL_NG16, EQL_FK16, EQL_KB8,
 * EQL_NG8, EQL_FK8). The width-dependent kernels are in conv_direct_width.h.
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

/* 8-float vectors for the stride-2 backward-data, whose blocks store every other column. */
typedef float v8 __attribute__((vector_size(32), aligned(4)));

static inline v8 load8(const float *p) { return *(const v8 *)p; }

/* Samples are split into this many parts for backward-filter (see above). */
#define FILTER_PARTS 8

/* Blocking of the 8-float kernels: with 32 vector registers, 8 x 2 forward accumulators and two
 * channels of filter taps; with 16, half the forward block and one channel of filter taps. */
#if defined(__AVX512F__) || defined(__aarch64__)
#define KB8_DEFAULT 8
#define FK8_DEFAULT 2
#else
#define KB8_DEFAULT 4
#define FK8_DEFAULT 1
#endif
#ifndef EQL_KB8
#define EQL_KB8 KB8_DEFAULT
#endif
#ifndef EQL_NG8
#define EQL_NG8 2
#endif
#ifndef EQL_FK8
#define EQL_FK8 FK8_DEFAULT
#endif
#ifndef EQL_KB16
#define EQL_KB16 8
#endif
#ifndef EQL_NG16
#define EQL_NG16 2
#endif
#ifndef EQL_FK16
#define EQL_FK16 3 /* 27 accumulators + 3 dy + 1 input of the 32 registers: measured fastest */
#endif
/* Input channels per block of the stride-2 backward-data. */
#define SB EQL_KB8

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

/* The narrow kernels: 8-float vectors, or the 4 floats of one SSE register in a portable x86
 * build (without AVX, GCC moves wider generic vectors through memory). */
#if EQL_VARIANT == EQL_VARIANT_PORTABLE && (defined(__x86_64__) || defined(__i386__)) && \
    !defined(__AVX__)
#define NARROW_VW 4
#else
#define NARROW_VW 8
#endif
#define NARROW(name) NARROW_(name, NARROW_VW)
#define NARROW_(name, width) NARROW__(name, width)
#define NARROW__(name, width) name##_w##width

#define VW NARROW_VW
#define KB EQL_KB8
#define NG EQL_NG8
#define FK EQL_FK8
#include "conv_direct_width.h"
#undef VW
#undef KB
#undef NG
#undef FK

#if EQL_VARIANT == EQL_VARIANT_AVX512
#define VW 16
#define KB EQL_KB16
#define NG EQL_NG16
#define FK EQL_FK16
#include "conv_direct_width.h"
#undef VW
#undef KB
#undef NG
#undef FK
#endif

/* The forward pass at the widest vector the geometry allows. */
static int32_t forward(const float *x, const float *w, float *y, int64_t n, geometry g,
                       int flipped) {
#if EQL_VARIANT == EQL_VARIANT_AVX512
  if (forward_fits_w16(&g)) return forward_w16(x, w, y, n, g, flipped);
#endif
  return NARROW(forward)(x, w, y, n, g, flipped);
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
  const float *wr;  /* [4 phases][c/SB][k][4 taps][SB], unused taps zero */
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
      for (int64_t cb = 0; cb < C / SB; cb++) {
        const float *wc = a->wr + ((int64_t)phase * (C / SB) + cb) * K * 4 * SB;
        float *dxc = a->dx + (b * C + cb * SB) * a->h * a->w;
        for (int64_t t = 0; t < ohw; t += 16) {
          const int64_t i0 = t / ow, j0 = t % ow, i1 = (t + 8) / ow, j1 = (t + 8) % ow;
          const int64_t s0 = i0 * pitch + j0, s1 = i1 * pitch + j1;
          v8 acc0[SB], acc1[SB];
          for (int u = 0; u < SB; u++) acc0[u] = acc1[u] = (v8){0};
          for (int64_t k = 0; k < K; k++) {
            const float *pk = pad + k * a->plane;
            const float *wk = wc + k * 4 * SB;
            for (int tap = 0; tap < taps; tap++) {
              const v8 x0 = load8(pk + s0 + off[tap]), x1 = load8(pk + s1 + off[tap]);
              const float *ww = wk + tap * SB;
              for (int u = 0; u < SB; u++) {
                acc0[u] += x0 * ww[u];
                acc1[u] += x1 * ww[u];
              }
            }
          }
          /* Every other column of dx rows 2*i0 + py and 2*i1 + py. */
          for (int u = 0; u < SB; u++) {
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
          const int64_t cb = c / SB, u = c % SB;
          wr[((((int64_t)phase * (C / SB) + cb) * K + k) * 4 + t) * SB + u] =
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

/* dw = dL/dw from x [n, c_in, h, w] and dy [n, c_out, oh, ow].
 * Returns 0, or -1 when out of memory. */
int32_t eql_conv3x3_backward_filter(const float *x, const float *dy, float *dw, int64_t n,
                                    int64_t c_in, int64_t h, int64_t wd, int64_t c_out,
                                    int64_t stride) {
  const int64_t parts = n < FILTER_PARTS ? n : FILTER_PARTS, size = c_out * c_in * 9;
  float *partial = malloc(sizeof(float) * (size_t)(parts * size));
  if (!partial) return -1;
  const geometry g = make_geometry(c_in, h, wd, c_out, stride);
  int32_t rc;
#if EQL_VARIANT == EQL_VARIANT_AVX512
  if (g.ow % 16 == 0) {
    rc = backward_filter_w16(x, dy, partial, n, parts, g);
  } else {
    rc = NARROW(backward_filter)(x, dy, partial, n, parts, g);
  }
#else
  rc = NARROW(backward_filter)(x, dy, partial, n, parts, g);
#endif
  if (rc == 0) {
    for (int64_t e = 0; e < size; e++) {
      float s = 0;
      for (int64_t part = 0; part < parts; part++) s += partial[part * size + e];
      dw[e] = s;
    }
  }
  free(partial);
  return rc;
}
