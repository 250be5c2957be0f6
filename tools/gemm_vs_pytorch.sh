#!/usr/bin/env bash
# GEMM throughput, 512³ and 1024³ float32: this project's CPU device against torch.mm, both on
# THREADS threads (default 2), alternated ROUNDS times in one run so that load from other work
# hits both alike. Each OpenBLAS kernel set in CORES runs in its own process (OpenBLAS reads
# OPENBLAS_CORETYPE as it loads); "own" leaves the variable unset: the library's own choice, as
# corrected by ffi/openblas.ts. Prints each measurement and the ratio to torch.mm.
# Usage: CORES="own Prescott Haswell SkylakeX Cooperlake Zen" bash tools/gemm_vs_pytorch.sh [ROUNDS]
# PyTorch must be importable by PYTHON (default python3).
set -uo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}" threads="${THREADS:-2}" python="${PYTHON:-python3}" cores="${CORES:-own}"
if ! "$python" -c "import torch" >/dev/null 2>&1; then
  echo "PyTorch is not importable by $python (set PYTHON)"
  exit 1
fi
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $threads threads"
for ((r = 1; r <= rounds; r++)); do
  torch=$("$python" tools/pytorch_gemm_bench.py --threads "$threads")
  t512=$(sed -nE 's/^gemm 512: ([0-9.]+).*/\1/p' <<<"$torch")
  t1024=$(sed -nE 's/^gemm 1024: ([0-9.]+).*/\1/p' <<<"$torch")
  echo "round $r: torch.mm 512³ $t512 GFLOP/s, 1024³ $t1024 GFLOP/s"
  for core in $cores; do
    if [[ "$core" == own ]]; then
      ours=$(env -u OPENBLAS_CORETYPE OPENBLAS_NUM_THREADS="$threads" NO_COLOR=1 \
        deno run -A tools/gemm_device.ts 2>&1)
    else
      ours=$(OPENBLAS_CORETYPE="$core" OPENBLAS_NUM_THREADS="$threads" NO_COLOR=1 \
        deno run -A tools/gemm_device.ts 2>&1)
    fi
    o512=$(sed -nE 's/^gemm 512: ([0-9.]+).*/\1/p' <<<"$ours")
    o1024=$(sed -nE 's/^gemm 1024: ([0-9.]+).*/\1/p' <<<"$ours")
    blas=$(sed -nE 's/.*GEMM: (.*)\)$/\1/p' <<<"$ours")
    echo "  $core [$blas]: 512³ $o512 GFLOP/s ($(awk -v o="$o512" -v t="$t512" \
      'BEGIN { printf "%.2f", o / t }')× torch), 1024³ $o1024 GFLOP/s ($(awk -v o="$o1024" \
      -v t="$t1024" 'BEGIN { printf "%.2f", o / t }')× torch)"
  done
done
