#!/usr/bin/env python3
"""PyTorch reference figures for bench/cuda_bench.ts, on the same GPU.

1. The sigmoid EQL loss (Tan et al., CVPR 2020) written as separate PyTorch ops on CUDA: the
   one-hot target over C + 1 columns with the background column dropped, the weight
   w = 1 - E(r) * T(f) * (1 - y), the element-wise binary cross-entropy with logits, the weighted
   sum over N, and its gradient through autograd. Timed with torch.cuda.Event over many
   iterations, reported in ms and as GB/s of the same bytes the fused kernel moves (logits and
   labels read, gradient and row losses written), next to a device-to-device copy of the logits.
2. ResNet-32 (CIFAR, option-A shortcuts, 100 classes) training in eager mode at batch 256:
   forward, cross-entropy, backward, SGD (momentum 0.9, weight decay 5e-4), in images/s.

FP32 by default (TF32 switched off for cuBLAS and cuDNN, as the Deno device does); --tf32 allows it.

Run on the GPU machine: python3 tools/pytorch_eql_bench.py [--tf32] [--skip-resnet]
"""

import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

N, C = 8192, 1230


def event_ms(fn, iterations):
    """GPU milliseconds per call of fn, from CUDA events around `iterations` calls."""
    for _ in range(3):
        fn()
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iterations):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / iterations


def eql_loss(logits, labels, tail):
    """Mean sigmoid EQL loss; labels in 0..C with C meaning background."""
    n, c = logits.shape
    target = F.one_hot(labels, c + 1)[:, :c].to(logits.dtype)
    foreground = (labels < c).to(logits.dtype).unsqueeze(1)
    weight = 1.0 - foreground * tail.unsqueeze(0) * (1.0 - target)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (weight * bce).sum() / n


def bench_eql(device):
    g = torch.Generator(device="cpu").manual_seed(1)
    logits = (torch.rand(N, C, generator=g) * 16 - 8).to(device).requires_grad_(True)
    r = torch.rand(N, generator=g)
    labels = torch.where(r < 0.25, torch.full_like(r, C), r * C).long().clamp_(max=C).to(device)
    tail = (torch.rand(C, generator=g) < 0.7).float().to(device)

    def step():
        logits.grad = None
        loss = eql_loss(logits, labels, tail)
        loss.backward()

    ms = event_ms(step, 50)
    src = logits.detach()
    dst = torch.empty_like(src)
    copy_ms = event_ms(lambda: dst.copy_(src), 50)
    loss_bytes = (2 * N * C + 2 * N + C) * 4
    copy_bytes = 2 * N * C * 4
    return {
        "eql_separate_ops_ms": round(ms, 4),
        "eql_separate_ops_GBps_equivalent": round(loss_bytes / ms / 1e6, 1),
        "copy_ms": round(copy_ms, 4),
        "copy_GBps": round(copy_bytes / copy_ms / 1e6, 1),
        "note": "GB/s-equivalent: the bytes the fused kernel moves, divided by the time of the "
        "separate ops (which move several times more)",
    }


class ShortcutA(nn.Module):
    """Option-A shortcut: stride-2 subsampling and zero channels on both sides."""

    def __init__(self, c_in, c_out):
        super().__init__()
        self.pad = (c_out - c_in) // 2

    def forward(self, x):
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


class BasicBlock(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = ShortcutA(c_in, c_out) if stride != 1 or c_in != c_out else nn.Identity()

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNetCifar(nn.Module):
    def __init__(self, blocks_per_stage=5, num_classes=100):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, c_in = [], 16
        for c_out, stride in ((16, 1), (32, 2), (64, 2)):
            stage = []
            for i in range(blocks_per_stage):
                stage.append(BasicBlock(c_in, c_out, stride if i == 0 else 1))
                c_in = c_out
            layers.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3 = layers
        self.linear = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


def bench_resnet(device, batch=256, steps=30, warmup=5):
    torch.manual_seed(0)
    model = ResNetCifar().to(device)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 100, (batch,), device=device)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()  # the Deno step reads its loss too

    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - t0) / steps
    return {
        "resnet32_parameters": params,
        "resnet32_batch": batch,
        "resnet32_ms_per_step": round(seconds * 1e3, 3),
        "resnet32_images_per_s": round(batch / seconds, 1),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tf32", action="store_true", help="allow TF32 in cuBLAS and cuDNN")
    parser.add_argument("--skip-resnet", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("pytorch_eql_bench.py: no CUDA device visible to PyTorch")
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.allow_tf32 = args.tf32
    torch.backends.cudnn.benchmark = False
    device = torch.device("cuda")
    result = {
        "device": torch.cuda.get_device_name(device),
        "torch": torch.__version__,
        "cudnn": torch.backends.cudnn.version(),
        "tf32": args.tf32,
        "N": N,
        "C": C,
    }
    result.update(bench_eql(device))
    if not args.skip_resnet:
        result.update(bench_resnet(device))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
