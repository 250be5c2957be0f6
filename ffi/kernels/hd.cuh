// EQL_HD marks the small math helpers that are compiled both into the kernels and into the host
// program that checks them on a machine without a GPU.
#ifndef EQL_HD_CUH
#define EQL_HD_CUH

#if defined(__CUDACC__)
#define EQL_HD __host__ __device__ __forceinline__
#else
#include <math.h>
#define EQL_HD inline
#endif

#endif  // EQL_HD_CUH
