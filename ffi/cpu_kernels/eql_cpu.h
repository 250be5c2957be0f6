/*
 * Shared declarations of the CPU kernel library: the thread pool every kernel splits its work
 * over, and the fixed-width types the FFI table in ffi/cpu_kernels.ts binds to.
 */
#ifndef EQL_CPU_H
#define EQL_CPU_H

#include <stdint.h>

/* Bumped whenever an exported signature changes; ffi/cpu_kernels.ts checks it after loading. */
#define EQL_CPU_ABI 11

/*
 * The build variant, set by the compiler flags (-DEQL_VARIANT=...): which vector width and
 * register blocking the kernels use. ffi/cpu_kernels.ts checks it after loading.
 */
#define EQL_VARIANT_PORTABLE 0
#define EQL_VARIANT_AVX2 1
#define EQL_VARIANT_AVX512 2
#ifndef EQL_VARIANT
#define EQL_VARIANT EQL_VARIANT_PORTABLE
#endif

/* Work on the index range [begin, end) of a parallel loop; ctx is the caller's argument block. */
typedef void (*eql_task)(void *ctx, int64_t begin, int64_t end);

/*
 * Runs fn over [0, n) split into contiguous ranges, one per thread, with no range shorter than
 * grain (so small loops stay on the calling thread). Returns when every range is done. The split
 * depends only on n, grain and the thread count, so results are deterministic.
 */
void eql_parallel_for(int64_t n, int64_t grain, eql_task fn, void *ctx);

#endif
