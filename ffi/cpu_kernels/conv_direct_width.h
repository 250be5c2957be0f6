/*
 * The width-dependent half of conv_direct.c: the forward pass and backward-filter, written once
 * for a vector of VW floats and included once per width the build uses. Before including, the
 * file defines VW (floats per vector), KB (output channels per forward register block), NG
 * (vectors of consecutive pixels per forward block) and FK (output channels per backward-filter
 * block); names get the suffix _w<VW>.
 *
 * A forward block holds KB x NG accumulators, loads NG input vectors and broadcasts KB weights
 * per tap, so KB x NG fused multiply-adds share NG + KB loads. Backward-filter holds FK x 9
 * accumulators and loads FK dy vectors and 9 input vectors per group of VW pixels.
 *
 * Requirements (checked by the dispatch in conv_direct.c): output rows a multiple of VW pixels,
 * outputs per channel a multiple of NG * VW, output channels a multiple of KB (forward).
 */

#define W(name) W_(name, VW)
#define W_(name, width) W__(name, width)
#define W__(name, width) name##_w##width

typedef float W(vec) __attribute__((vector_size(VW * 4), aligned(4)));

/* Unaligned loads and stores through the 4-byte-aligned vector type (the build has
 * -fno-strict-aliasing); a memcpy here is sometimes lowered through a stack copy. */
static inline W(vec) W(load)(const float *p) { return *(const W(vec) *)p; }

static inline void W(store)(float *p, W(vec) v) { *(W(vec) *)p = v; }

/* Sum of the lanes, halves added pairwise in a fixed order. */
static inline float W(lane_sum)(W(vec) v) {
  float s[VW];
  memcpy(s, &v, sizeof s);
  for (int half = VW / 2; half >= 1; half /= 2) {
    for (int i = 0; i < half; i++) s[i] += s[i + half];
  }
  return s[0];
}

typedef struct {
  geometry g;
  const float *x;  /* [n, c, h, w] */
  const float *wr; /* weights regrouped [k/KB][c][9][KB] */
  float *y;        /* [n, k, oh, ow] */
  int failed;
} W(fwd_args);

static void W(forward_range)(void *p, int64_t b0, int64_t b1) {
  W(fwd_args) *a = p;
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
      /* NG groups of VW consecutive output pixels (each inside one row) per block. */
      for (int64_t t = 0; t < ohw; t += NG * VW) {
        int64_t s[NG];
        for (int q = 0; q < NG; q++) s[q] = base_of(g, (t + q * VW) / g->ow, (t + q * VW) % g->ow);
        W(vec) acc[KB][NG];
        for (int u = 0; u < KB; u++) {
          for (int q = 0; q < NG; q++) acc[u][q] = (W(vec)){0};
        }
        for (int64_t c = 0; c < C; c++) {
          const float *pc = pad + c * g->plane;
          const float *wc = wk + c * 9 * KB;
          for (int tap = 0; tap < 9; tap++) {
            W(vec) xv[NG];
            for (int q = 0; q < NG; q++) xv[q] = W(load)(pc + s[q] + g->tap[tap]);
            const float *ww = wc + tap * KB;
            for (int u = 0; u < KB; u++) {
              for (int q = 0; q < NG; q++) acc[u][q] += xv[q] * ww[u];
            }
          }
        }
        for (int u = 0; u < KB; u++) {
          for (int q = 0; q < NG; q++) W(store)(yk + u * ohw + t + q * VW, acc[u][q]);
        }
      }
    }
  }
  free(pad);
}

/* The forward pass with weights w[k][c][r][q], or (flipped) the transposed convolution's kernel
 * w[c][k][2 - r][2 - q] of a convolution with c and k swapped. */
static int32_t W(forward)(const float *x, const float *w, float *y, int64_t n, geometry g,
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
  W(fwd_args) a = {g, x, wr, y, 0};
  eql_parallel_for(n, 1, W(forward_range), &a);
  free(wr);
  return a.failed ? -1 : 0;
}

/* Whether this width's forward block fits the geometry. */
__attribute__((unused)) static int W(forward_fits)(const geometry *g) {
  return g->ow % VW == 0 && (g->oh * g->ow) % (NG * VW) == 0 && g->k % KB == 0;
}

typedef struct {
  geometry g;
  const float *x, *dy;
  float *partial; /* [parts][k][c][9] */
  int64_t n, parts;
  int failed;
} W(bwf_args);

/*
 * Filter gradients of output channels k .. k+fk-1 and all nine taps of input channel c, summed
 * in registers over every output pixel of nb samples: per VW pixels, fk dy loads and nine input
 * loads feed 9*fk fused multiply-adds. Called with a literal fk so each instance is unrolled.
 */
static inline __attribute__((always_inline)) void W(filter_block)(
    const geometry *g, const float *dy, const float *pad, int64_t nb, int64_t k, int64_t c,
    const int32_t *xoff, float *out, const int fk) {
  const int64_t K = g->k, C = g->c, ohw = g->oh * g->ow, plane = g->plane, groups = ohw / VW;
  int64_t tap[9];
  for (int t = 0; t < 9; t++) tap[t] = g->tap[t];
  W(vec) acc[FK][9];
  for (int u = 0; u < fk; u++) {
    for (int t = 0; t < 9; t++) acc[u][t] = (W(vec)){0};
  }
  for (int64_t b = 0; b < nb; b++) {
    const float *d0 = dy + (b * K + k) * ohw;
    const float *pc = pad + (b * C + c) * plane;
    /* One flat loop over the pixel groups; xoff maps each to its scratch offset. */
    for (int64_t gi = 0; gi < groups; gi++) {
      const float *px = pc + xoff[gi];
      W(vec) gv[FK];
      for (int u = 0; u < fk; u++) gv[u] = W(load)(d0 + u * ohw + VW * gi);
      for (int t = 0; t < 9; t++) {
        const W(vec) xv = W(load)(px + tap[t]);
        for (int u = 0; u < fk; u++) acc[u][t] += gv[u] * xv;
      }
    }
  }
  for (int u = 0; u < fk; u++) {
    float *o = out + ((k + u) * C + c) * 9;
    for (int t = 0; t < 9; t++) o[t] = W(lane_sum)(acc[u][t]);
  }
}

static void W(backward_filter_range)(void *p, int64_t part0, int64_t part1) {
  W(bwf_args) *a = p;
  const geometry *g = &a->g;
  const int64_t C = g->c, K = g->k, ohw = g->oh * g->ow, chw = C * g->h * g->w;
  const int64_t most = (a->n + a->parts - 1) / a->parts;
  float *pad = malloc(sizeof(float) * (size_t)(most * C * g->plane));
  int32_t *xoff = malloc(sizeof(int32_t) * (size_t)(ohw / VW));
  if (!pad || !xoff) {
    free(pad);
    free(xoff);
    a->failed = 1;
    return;
  }
  for (int64_t t = 0; t < ohw; t += VW) xoff[t / VW] = (int32_t)base_of(g, t / g->ow, t % g->ow);
  for (int64_t part = part0; part < part1; part++) {
    const int64_t b0 = a->n * part / a->parts, nb = a->n * (part + 1) / a->parts - b0;
    for (int64_t b = 0; b < nb; b++) pad_sample(g, a->x + (b0 + b) * chw, pad + b * C * g->plane);
    float *out = a->partial + part * K * C * 9;
    const float *dy = a->dy + b0 * K * ohw;
    int64_t k = 0;
    for (; k + FK <= K; k += FK) {
      for (int64_t c = 0; c < C; c++) W(filter_block)(g, dy, pad, nb, k, c, xoff, out, FK);
    }
#if FK > 2
    for (; k + 2 <= K; k += 2) {
      for (int64_t c = 0; c < C; c++) W(filter_block)(g, dy, pad, nb, k, c, xoff, out, 2);
    }
#endif
    for (; k < K; k++) {
      for (int64_t c = 0; c < C; c++) W(filter_block)(g, dy, pad, nb, k, c, xoff, out, 1);
    }
  }
  free(pad);
  free(xoff);
}

/* Fills partial [parts][k][c][9] with each part's filter gradient; -1 when out of memory. */
static int32_t W(backward_filter)(const float *x, const float *dy, float *partial, int64_t n,
                                  int64_t parts, geometry g) {
  W(bwf_args) a = {g, x, dy, partial, n, parts, 0};
  eql_parallel_for(parts, 1, W(backward_filter_range), &a);
  return a.failed ? -1 : 0;
}

#undef W
#undef W_
#undef W__
