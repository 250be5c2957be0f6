// The single translation unit behind the project's PTX module: `deno task ptx` compiles this file
// with `nvcc -ptx -arch=compute_75 -O3` into ffi/kernels/ptx.ts. Every kernel is extern "C" so its
// PTX entry name is its C name; src/device/cuda/_kernels.ts launches them by that name with the
// argument lists declared here.
#include "batchnorm.cu"
#include "elementwise.cu"
#include "losses.cu"
#include "sgd.cu"
