#!/usr/bin/env bash
# The CPU throughput comparison of the ResNet-32 training step at batch 128: PyTorch's CPU build and
# this project's CPU device, alternately, ROUNDS times, on the same cores; prints each pair and the
# ratio. Each kernel variant in VARIANTS (default "auto": the one the CPU gets by default; e.g.
# VARIANTS="avx512 avx2 portable") runs in every round, right after PyTorch, with EQL_CPU_VARIANT
# set to it. PyTorch must be importable by PYTHON (default python3).
# Usage: VARIANTS="avx512 avx2" bash tools/resnet_cpu_vs_pytorch.sh [ROUNDS]   (THREADS=2 by default)
set -uo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}" threads="${THREADS:-2}" python="${PYTHON:-python3}" variants="${VARIANTS:-auto}"
if ! "$python" -c "import torch" >/dev/null 2>&1; then
  echo "PyTorch is not importable by $python (set PYTHON)"
  exit 1
fi
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $threads threads"
for ((r = 1; r <= rounds; r++)); do
  torch=$("$python" tools/pytorch_resnet_bench.py --threads "$threads" --steps 12 --warmup 3 | grep resnet32)
  t=$(sed -E 's/.*: ([0-9.]+) images\/s mean.*/\1/' <<<"$torch")
  echo "round $r: pytorch $t images/s"
  echo "  $torch"
  for variant in $variants; do
    ours=$(EQL_CPU_VARIANT="$variant" EQL_CPU_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" \
      NO_COLOR=1 deno bench -A bench/resnet_bench.ts 2>&1 | grep '^resnet32')
    o=$(sed -E 's/.*: ([0-9.]+) images\/s mean.*/\1/' <<<"$ours")
    echo "  eql $variant: $o images/s, ratio $(awk -v o="$o" -v t="$t" 'BEGIN { printf "%.2f", o / t }')"
    echo "    $ours"
  done
done
