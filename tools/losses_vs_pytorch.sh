#!/usr/bin/env bash
# Forward + backward time of the fused losses (sigmoid CE, EQL, softmax CE, SEQL at 256x100 and
# 8192x1230) on the CPU: this project's public losses on the native kernels
# (tools/losses_vs_pytorch.ts) and PyTorch's binary_cross_entropy_with_logits / cross_entropy
# (tools/pytorch_losses_bench.py), alternately, ROUNDS times, on the same number of threads; prints
# the CPU, every round's figures and, per size and loss, the medians over the rounds and the ratio
# PyTorch ms / this project's ms (above 1: this project is faster). This project is timed with its
# gradient written into a kept tensor (gradInto, as a training loop does) and with a fresh gradient
# tensor per call (as PyTorch's autograd allocates one); where the operating system maps fresh
# pages slowly, the second is dominated by that, and so are PyTorch's figures at 8192x1230 (the
# PyTorch side prints what one fresh tensor of that size costs).
#
# PyTorch comes from a throwaway virtual environment outside the project (VENV, default
# /tmp/eql-losses-torch-venv), created on first use and filled offline from the wheel folder and
# the file:// package indexes that `pip config list` names.
#
# Usage: bash tools/losses_vs_pytorch.sh [ROUNDS]     (default 3; THREADS=2 by default)
set -uo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}" threads="${THREADS:-2}" venv="${VENV:-/tmp/eql-losses-torch-venv}"
python="$venv/bin/python"

if ! "$python" -c "import torch" >/dev/null 2>&1; then
  config=$(python3 -m pip config list 2>/dev/null)
  find_links=$(sed -nE "s/^[^=]*find-links='([^']*)'.*/\1/p" <<<"$config" | head -n 1)
  mapfile -t indexes < <(sed -nE "s/^[^=]*index-url='([^']*)'.*/\1/p" <<<"$config" |
    tr ' ' '\n' | grep '^file://' | awk '!seen[$0]++')
  if [ -z "$find_links" ]; then
    echo "pip config list names no find-links folder with the torch wheel"
    exit 1
  fi
  # Only local sources: the wheel folder, and file:// indexes for torch's dependencies.
  args=(--disable-pip-version-check --quiet --find-links "$find_links")
  if [ "${#indexes[@]}" -gt 0 ]; then
    args+=(--index-url "${indexes[0]}")
    for index in "${indexes[@]:1}"; do args+=(--extra-index-url "$index"); done
  else
    args+=(--no-index)
  fi
  echo "creating $venv with torch from $find_links ${indexes[*]}"
  rm -rf "$venv"
  if ! python3 -m venv "$venv" || ! "$venv/bin/pip" install "${args[@]}" torch; then
    echo "could not install torch into $venv"
    exit 1
  fi
fi

cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
echo "CPU: $cpu ($(nproc) logical CPUs), $threads threads each, $rounds alternating rounds"
echo "(timings on a shared machine vary with the load of other processes)"
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for ((r = 1; r <= rounds; r++)); do
  torch=$("$python" -W ignore tools/pytorch_losses_bench.py --threads "$threads")
  ours=$(EQL_CPU_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" NO_COLOR=1 \
    deno run -A tools/losses_vs_pytorch.ts)
  grep '^RESULT' <<<"$torch"$'\n'"$ours" >>"$results"
  echo "round $r:"
  grep '^RESULT' <<<"$torch"$'\n'"$ours" |
    awk '{ printf "  %-9s %-10s %-10s %10.3f ms\n", $2, $3, $4, $5 }'
  [ "$r" -eq 1 ] && grep '^#' <<<"$torch"$'\n'"$ours" | sed 's/^# /  /'
done

echo
echo "medians over $rounds rounds, ms per forward + backward (ratio = PyTorch / this project):"
printf "  %-10s %-10s %10s %12s %7s %14s %7s\n" size loss pytorch "eql" ratio "eql fresh grad" ratio
awk '
  { key = $3 " " $4; v[$2, key, ++count[$2, key]] = $5; keys[key] = 1; order[++k] = key }
  function median(impl, key,    n, i, j, t, a) {
    n = count[impl, key]
    for (i = 1; i <= n; i++) a[i] = v[impl, key, i]
    for (i = 2; i <= n; i++)
      for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  END {
    for (i = 1; i <= k; i++) {
      key = order[i]
      if (done[key]++) continue
      split(key, part, " ")
      p = median("pytorch", key); e = median("eql", key); f = median("eql-alloc", key)
      printf "  %-10s %-10s %10.3f %12.3f %7.2f %14.3f %7.2f\n", \
        part[1], part[2], p, e, p / e, f, p / f
    }
  }' "$results"
