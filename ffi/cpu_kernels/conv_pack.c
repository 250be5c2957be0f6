/*
 * Packing routines of the CPU convolution (src/device/cpu/conv_shifted.ts and conv_im2col.ts
 * describe the layouts): the zero-separated "shifted planes" that turn a stride-1 convolution
 * into a few GEMMs, and the copies between that grid layout and NCHW tensors. They move memory
 * only, so each is a set of memcpy/memset calls split over the thread pool by channel.
 */
#include "eql_cpu.h"

#include <string.h>

typedef struct {
  const float *x;
  float *out;
  int64_t n0, nb, c_in, h, w, kh, kw, pad_h, pad_w, block, len, full;
} planes_args;

static void pack_planes_range(void *p, int64_t c0, int64_t c1) {
  const planes_args *g = p;
  const int64_t h = g->h, w = g->w, hw = h * w, len = g->len, block = g->block;
  const int64_t c_step = g->full ? g->kh * g->kw : g->kw, r_step = g->full ? g->kw : 0;
  const int64_t data_start = g->pad_h * w;
  for (int64_t c = c0; c < c1; c++) {
    for (int64_t q = 0; q < g->kw; q++) {
      /* Row (c, 0, q): position b*block + data_start + i*w + j holds x[b, c, i, j + d], zero
       * where j + d falls outside the row; everything else is zero. A shift of a whole row or
       * more (|d| >= w) leaves only zeros. */
      const int64_t d = q - g->pad_w;
      float *row = g->out + (c * c_step + q) * len;
      for (int64_t b = 0; b < g->nb; b++) {
        float *dst = row + b * block;
        const float *src = g->x + ((g->n0 + b) * g->c_in + c) * hw;
        memset(dst, 0, sizeof(float) * data_start);
        dst += data_start;
        /* The plane shifted by d in one copy; then the columns that wrapped into the next (or
         * previous) row are zeroed. */
        if (d >= w || -d >= w) {
          memset(dst, 0, sizeof(float) * hw);
        } else if (d >= 0) {
          memcpy(dst, src + d, sizeof(float) * (hw - d));
          for (int64_t i = 0; i < h; i++) {
            for (int64_t j = w - d; j < w; j++) dst[i * w + j] = 0;
          }
        } else {
          memcpy(dst - d, src, sizeof(float) * (hw + d));
          for (int64_t i = 0; i < h; i++) {
            for (int64_t j = 0; j < -d; j++) dst[i * w + j] = 0;
          }
        }
      }
      memset(row + g->nb * block, 0, sizeof(float) * (len - g->nb * block));
      /* Full layout: row (c, r, q) is row (c, 0, q) moved left by r*w. */
      if (g->full) {
        for (int64_t r = 1; r < g->kh; r++) {
          float *shifted = g->out + (c * c_step + r * r_step + q) * len;
          const int64_t shift = r * w;
          memcpy(shifted, row + shift, sizeof(float) * (len - shift));
          memset(shifted + len - shift, 0, sizeof(float) * shift);
        }
      }
    }
  }
}

/*
 * Packs samples n0 .. n0+nb of x [n, c_in, h, w] into the shifted-plane rows of out (see
 * packPlanes in conv_shifted.ts), including the zero tail of tail floats after the last row.
 */
void eql_pack_planes(const float *x, float *out, int64_t n0, int64_t nb, int64_t c_in, int64_t h,
                     int64_t w, int64_t kh, int64_t kw, int64_t pad_h, int64_t pad_w,
                     int64_t block, int64_t len, int32_t full, int64_t tail) {
  planes_args g = {x, out, n0, nb, c_in, h, w, kh, kw, pad_h, pad_w, block, len, full};
  eql_parallel_for(c_in, 1, pack_planes_range, &g);
  const int64_t rows = c_in * kw * (full ? kh : 1);
  memset(out + rows * len, 0, sizeof(float) * tail);
}

typedef struct {
  const float *src;
  float *dst;
  int64_t n0, nb, rows, w, out_h, out_w, block, len;
} grid_args;

/* grid row k, sample b, row i (pitch w)  ->  dst[n0 + b, k, i, 0 .. out_w) */
static void unpack_grid_range(void *p, int64_t k0, int64_t k1) {
  const grid_args *g = p;
  const int64_t ohw = g->out_h * g->out_w;
  for (int64_t k = k0; k < k1; k++) {
    for (int64_t b = 0; b < g->nb; b++) {
      const float *src = g->src + k * g->len + b * g->block;
      float *dst = g->dst + ((g->n0 + b) * g->rows + k) * ohw;
      if (g->out_w == g->w) {
        memcpy(dst, src, sizeof(float) * ohw);
      } else {
        for (int64_t i = 0; i < g->out_h; i++) {
          memcpy(dst + i * g->out_w, src + i * g->w, sizeof(float) * g->out_w);
        }
      }
    }
  }
}

/* Copies the valid pixels of the grid [rows, len] to samples n0 .. of an NCHW tensor. */
void eql_unpack_grid(const float *grid, float *dst, int64_t n0, int64_t nb, int64_t rows,
                     int64_t w, int64_t out_h, int64_t out_w, int64_t block, int64_t len) {
  grid_args g = {grid, dst, n0, nb, rows, w, out_h, out_w, block, len};
  eql_parallel_for(rows, 1, unpack_grid_range, &g);
}

/* src[n0 + b, k, i, 0 .. out_w) -> grid row k, zero everywhere else */
static void pack_grid_range(void *p, int64_t k0, int64_t k1) {
  const grid_args *g = p;
  const int64_t ohw = g->out_h * g->out_w;
  for (int64_t k = k0; k < k1; k++) {
    float *row = g->dst + k * g->len;
    memset(row, 0, sizeof(float) * g->len);
    for (int64_t b = 0; b < g->nb; b++) {
      float *dst = row + b * g->block;
      const float *src = g->src + ((g->n0 + b) * g->rows + k) * ohw;
      if (g->out_w == g->w) {
        memcpy(dst, src, sizeof(float) * ohw);
      } else {
        for (int64_t i = 0; i < g->out_h; i++) {
          memcpy(dst + i * g->w, src + i * g->out_w, sizeof(float) * g->out_w);
        }
      }
    }
  }
}

/* Inverse of eql_unpack_grid: fills grid [rows, len], zero where no output pixel sits. */
void eql_pack_grid(const float *src, float *grid, int64_t n0, int64_t nb, int64_t rows, int64_t w,
                   int64_t out_h, int64_t out_w, int64_t block, int64_t len) {
  grid_args g = {src, grid, n0, nb, rows, w, out_h, out_w, block, len};
  eql_parallel_for(rows, 1, pack_grid_range, &g);
}
