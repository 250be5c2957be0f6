#!/usr/bin/env python3
"""PyTorch CPU reference for the fused losses: forward + backward times, for
tools/losses_vs_pytorch.sh (which runs this and tools/losses_vs_pytorch.ts in turn).

Each loss is written as PyTorch users write it, from logits [N, C] to a scalar, then
`loss.backward()` through autograd:

* sigmoid CE: `binary_cross_entropy_with_logits` against the one-hot target over C + 1 columns
  with the background column dropped (a quarter of the rows foreground, as in a detector), summed
  and divided by N;
* EQL: the same with the weight w = 1 - E(r) * T(f) * (1 - y), built each step as the official
  eql.detectron2 code does (lambda 1.76e-3);
* softmax CE: `cross_entropy` (mean over N);
* SEQL: the tail non-target classes whose Bernoulli(gamma) draw fires (per sample and class, as in
  the authors' snippet; lambda 3e-3, gamma 0.95) filled with -inf, then `cross_entropy`.

Prints one line per (size, loss): `RESULT pytorch <rows>x<classes> <loss> <ms>` with the median of
the timed repetitions, each the mean of several calls, after a warm-up of at least 0.3 s and half
a repetition's calls (the same rule as the project's side).

    python3 tools/pytorch_losses_bench.py --threads 2
"""

import argparse
import math
import statistics
import time

import torch
import torch.nn.functional as F

SIZES = [(256, 100), (8192, 1230)]


def frequencies(c, gen):
    """Log-uniform in [1e-5, 0.5], as bench/losses_bench.ts draws them."""
    u = torch.rand(c, generator=gen, dtype=torch.float64)
    return torch.exp(math.log(1e-5) + u * 10.82)


def sigmoid_ce(z, labels, tail):
    n, c = z.shape
    target = F.one_hot(labels, c + 1)[:, :c].to(z.dtype)
    return F.binary_cross_entropy_with_logits(z, target, reduction="sum") / n


def eql(z, labels, tail):
    n, c = z.shape
    target = F.one_hot(labels, c + 1)[:, :c].to(z.dtype)
    exposed = (labels < c).to(z.dtype).view(n, 1)
    weight = 1 - exposed * tail.view(1, c) * (1 - target)
    return F.binary_cross_entropy_with_logits(z, target, weight=weight, reduction="sum") / n


def softmax_ce(z, labels, tail):
    return F.cross_entropy(z, labels)


def seql(z, labels, tail, gamma=0.95):
    n, c = z.shape
    drawn = torch.rand(n, c) < gamma
    candidate = (tail.view(1, c) > 0) & (F.one_hot(labels, c) == 0)
    return F.cross_entropy(z.masked_fill(drawn & candidate, float("-inf")), labels)


WARM_UP_S = 0.3


def time_ms(loss_fn, z0, labels, tail, calls, repeats):
    z = z0.clone().requires_grad_(True)

    def step():
        z.grad = None
        loss_fn(z, labels, tail).backward()

    # Warm up for at least WARM_UP_S and half a run of calls, as the project's side does.
    start, done = time.perf_counter(), 0
    while done < max(2, calls // 2) or time.perf_counter() - start < WARM_UP_S:
        step()
        done += 1
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            step()
        samples.append((time.perf_counter() - t0) * 1e3 / calls)
    return statistics.median(samples)


def main():
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    for n, c in SIZES:
        z = torch.rand(n, c, generator=gen) * 8 - 4
        fg = torch.rand(n, generator=gen) < 0.25
        det = torch.where(fg, torch.randint(0, c, (n,), generator=gen), torch.full((n,), c))
        cls = torch.randint(0, c, (n,), generator=gen)
        freq = frequencies(c, gen)
        eql_tail = (freq < 1.76e-3).to(torch.float32)
        seql_tail = (freq < 3e-3).to(torch.float32)
        calls = 200 if n * c < 1e6 else 5
        cases = [
            ("sigmoid-CE", sigmoid_ce, det, eql_tail),
            ("EQL", eql, det, eql_tail),
            ("softmax-CE", softmax_ce, cls, seql_tail),
            ("SEQL", seql, cls, seql_tail),
        ]
        for name, fn, labels, tail in cases:
            ms = time_ms(fn, z, labels, tail, calls, args.repeats)
            print(f"RESULT pytorch {n}x{c} {name} {ms:.4f}", flush=True)
    # What a fresh LVIS-size tensor costs on this machine (the operating system maps its pages on
    # first write): PyTorch allocates several per step at that size.
    n, c = SIZES[-1]
    t0 = time.perf_counter()
    for _ in range(5):
        torch.empty(n, c).fill_(1.0)
    fresh = (time.perf_counter() - t0) * 200
    kept = torch.empty(n, c)
    t0 = time.perf_counter()
    for _ in range(5):
        kept.fill_(1.0)
    again = (time.perf_counter() - t0) * 200
    print(
        f"# torch {torch.__version__}, {torch.get_num_threads()} threads; a fresh {n}x{c} float "
        f"tensor allocated and filled: {fresh:.1f} ms, filled again: {again:.1f} ms",
        flush=True,
    )


if __name__ == "__main__":
    main()
