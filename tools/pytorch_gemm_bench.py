#!/usr/bin/env python3
"""PyTorch reference for tools/gemm_vs_pytorch.sh: torch.mm throughput on square float32 matrices.

Prints one line per size, `gemm 512: 123.4 GFLOP/s` (the median of --reps calls after a warm-up).

    python3 tools/pytorch_gemm_bench.py --threads 2 --sizes 512,1024
"""

import argparse
import time

import torch

parser = argparse.ArgumentParser()
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--sizes", default="512,1024")
parser.add_argument("--reps", type=int, default=10)
args = parser.parse_args()
torch.set_num_threads(args.threads)
for n in (int(s) for s in args.sizes.split(",")):
    a = torch.rand(n, n) * 2 - 1
    b = torch.rand(n, n) * 2 - 1
    for _ in range(3):
        torch.mm(a, b)
    ms = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        torch.mm(a, b)
        ms.append((time.perf_counter() - t0) * 1000)
    ms.sort()
    median = ms[len(ms) // 2]
    print(f"gemm {n}: {2 * n**3 / median / 1e6:.1f} GFLOP/s")
