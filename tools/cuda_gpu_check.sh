#!/usr/bin/env bash
# The CUDA checks in one go, on the GPU machine, from the project root, after
# `bash ../shared/gpu/pack.sh` on the development machine has written .gpu/:
#   1. the CUDA tests (bindings, device, parity with the CPU device; about a minute),
#   2. the CUDA benchmark (fused EQL kernel vs copy bandwidth, SGEMM, ResNet-32 training),
#   3. the PyTorch reference figures on the same card.
# Usage: bash tools/cuda_gpu_check.sh [LOG_DIR]   (logs: LOG_DIR/cuda_{test,bench,pytorch}.log)
set -uo pipefail
logs="${1:-.}"
mkdir -p "$logs"
status=0
timeout 300 bash .gpu/run.sh deno test -A test/cuda_ffi_test.ts test/cuda_device_test.ts \
  test/cuda_parity_test.ts 2>&1 | tee "$logs/cuda_test.log" || status=1
timeout 300 bash .gpu/run.sh deno bench -A bench/cuda_bench.ts 2>&1 | tee "$logs/cuda_bench.log" ||
  status=1
PYTHONUNBUFFERED=1 timeout 300 python3 tools/pytorch_eql_bench.py 2>&1 |
  tee "$logs/cuda_pytorch.log" || status=1
exit "$status"
