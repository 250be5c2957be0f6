/*
 * Element-wise kernels: ReLU forward/backward and add. Each splits its range over the pool in
 * blocks of at least GRAIN elements; the loops are simple enough for the compiler to vectorise.
 */
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
