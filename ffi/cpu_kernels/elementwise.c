/*
 * Element-wise kernels: ReLU forward/backward, add and the fused SGD update. Each splits its range
 * over the pool in blocks of at least GRAIN elements; every element is computed on its own, so the
 * results do not depend on the thread count. The loops are simple enough for the compiler to
 * vectorise.
 */
/*
 * The SGD update must round exactly as the TypeScript loop does, so no multiply-add may be fused:
 * GCC does not contract across statements or expressions under -std=c11 (-ffp-contract=off), and
 * clang is told so here.
 */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#include "eql_cpu.h"

/* Below this many elements per thread, waking another thread costs more than it saves. */
#define GRAIN (1 << 15)

typedef struct {
  const float *a, *b;
  float *out;
} ew_args;

/*
 * Both ReLU kernels work on the bit patterns, exactly as the TypeScript ones: a value whose sign
 * bit is clear passes (NaN included), one whose sign bit is set becomes +0.
 */
static void relu_forward_range(void *p, int64_t begin, int64_t end) {
  const ew_args *g = p;
  const int32_t *x = (const int32_t *)g->a;
  int32_t *y = (int32_t *)g->out;
  for (int64_t i = begin; i < end; i++) y[i] = x[i] & ~(x[i] >> 31);
}

/* y = max(x, 0). */
void eql_relu_forward(const float *x, float *y, int64_t n) {
  ew_args g = {x, 0, y};
  eql_parallel_for(n, GRAIN, relu_forward_range, &g);
}

static void relu_backward_range(void *p, int64_t begin, int64_t end) {
  const ew_args *g = p;
  const int32_t *y = (const int32_t *)g->a, *dy = (const int32_t *)g->b;
  int32_t *dx = (int32_t *)g->out;
  for (int64_t i = begin; i < end; i++) dx[i] = dy[i] & ((int32_t)(0u - (uint32_t)y[i]) >> 31);
}

/* dx = dy where the forward output y is positive (bit pattern above +0), else +0. */
void eql_relu_backward(const float *y, const float *dy, float *dx, int64_t n) {
  ew_args g = {y, dy, dx};
  eql_parallel_for(n, GRAIN, relu_backward_range, &g);
}

static void add_range(void *p, int64_t begin, int64_t end) {
  const ew_args *g = p;
  const float *a = g->a, *b = g->b;
  float *out = g->out;
  for (int64_t i = begin; i < end; i++) out[i] = a[i] + b[i];
}

/* out = a + b (out may alias a or b). */
void eql_add(const float *a, const float *b, float *out, int64_t n) {
  ew_args g = {a, b, out};
  eql_parallel_for(n, GRAIN, add_range, &g);
}

typedef struct {
  float *p, *buf;
  const float *grad;
  double lr, momentum, weight_decay;
  int32_t nesterov;
} sgd_args;

/*
 * The TypeScript loop of src/device/cpu/elementwise.ts step for step: its arithmetic is in
 * double (JavaScript numbers) with the stores rounding to float, and so is this one, so both give
 * the same bits. Nesterov's look-ahead uses the unrounded momentum value, as there.
 */
static inline __attribute__((always_inline)) void sgd_span(const sgd_args *a, int64_t begin,
                                                           int64_t end, int nesterov) {
  float *restrict p = a->p, *restrict buf = a->buf;
  const float *restrict grad = a->grad;
  const double lr = a->lr, mu = a->momentum, wd = a->weight_decay;
  for (int64_t i = begin; i < end; i++) {
    const double pi = (double)p[i];
    double g = (double)grad[i] + wd * pi;
    const double m = mu * (double)buf[i] + g;
    buf[i] = (float)m;
    g = nesterov ? g + mu * m : m;
    p[i] = (float)(pi - lr * g);
  }
}

static void sgd_range(void *ctx, int64_t begin, int64_t end) {
  const sgd_args *a = ctx;
  if (a->nesterov) {
    sgd_span(a, begin, end, 1);
  } else {
    sgd_span(a, begin, end, 0);
  }
}

/*
 * One SGD step with PyTorch's semantics over n parameters: g = grad + weight_decay·p,
 * buf = momentum·buf + g, then p -= lr·(nesterov ? g + momentum·buf : buf). p, grad and buf do
 * not overlap.
 */
void eql_sgd_update(float *p, const float *grad, float *buf, int64_t n, double lr,
                    double momentum, double weight_decay, int32_t nesterov) {
  sgd_args a = {p, buf, grad, lr, momentum, weight_decay, nesterov};
  eql_parallel_for(n, GRAIN, sgd_range, &a);
}
