#!/usr/bin/env python3
"""PyTorch reference for the ResNet-32 training step and checkpoints.

Builds the CIFAR ResNet-32 of He et al. (3 stages of 5 basic blocks, 16/32/64 channels, option-A
shortcuts: stride-2 subsample plus zero channel padding; 470,004 parameters for 100 classes) with
the PyTorch module names the project's checkpoints use, then

* times one training step (forward, softmax cross-entropy, backward, Nesterov SGD) on random data
  and prints images/s and the peak memory, like `bench/resnet_bench.ts`:

    python3 tools/pytorch_resnet_bench.py                  # CPU, 2 threads, batch 128
    python3 tools/pytorch_resnet_bench.py --device cuda --batch 128

* or, with --check-checkpoint, loads a safetensors checkpoint written by the project with the
  strict `load_state_dict` and, given --inputs (written by tools/export_parity_checkpoint.ts),
  compares the evaluation-mode logits, then the training-mode logits, the cross-entropy and every
  parameter gradient of one training-mode forward and backward with the project's:

    python3 tools/pytorch_resnet_bench.py --check-checkpoint model.safetensors --inputs io.safetensors

Only torch is needed (safetensors files are parsed here with json and struct).
"""

import argparse
import json
import resource
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class OptionAShortcut(nn.Module):
    """x[:, :, ::2, ::2] with `pad` zero channels added on each side (no parameters)."""

    def __init__(self, pad):
        super().__init__()
        self.pad = pad

    def forward(self, x):
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


class BasicBlock(nn.Module):
    def __init__(self, in_planes, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if stride != 1 or in_planes != planes:
            self.shortcut = OptionAShortcut((planes - in_planes) // 2)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, depth=32, num_classes=100):
        super().__init__()
        if (depth - 2) % 6 != 0 or depth < 8:
            raise ValueError(f"depth must be 6n + 2, got {depth}")
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = self._stage(16, 16, n, 1)
        self.layer2 = self._stage(16, 32, n, 2)
        self.layer3 = self._stage(32, 64, n, 2)
        self.linear = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    @staticmethod
    def _stage(in_planes, planes, n, stride):
        blocks = [BasicBlock(in_planes, planes, stride)]
        blocks += [BasicBlock(planes, planes, 1) for _ in range(n - 1)]
        return nn.Sequential(*blocks)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.avg_pool2d(out, out.size()[3]).flatten(1)
        return self.linear(out)


DTYPES = {"F32": (torch.float32, 4), "I32": (torch.int32, 4), "I64": (torch.int64, 8)}


def read_safetensors(path):
    """Parses a safetensors file into {name: tensor} (F32, I32, I64)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    data = raw[8 + n :]
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype, size = DTYPES[entry["dtype"]]
        begin, end = entry["data_offsets"]
        count = (end - begin) // size
        t = torch.frombuffer(bytearray(data[begin:end]), dtype=dtype, count=count) if count else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(entry["shape"]).clone()
    return out


def check_checkpoint(args):
    state = read_safetensors(args.check_checkpoint)
    num_classes = state["linear.weight"].shape[0]
    depth = 6 * sum(1 for k in state if k.startswith("layer1.") and k.endswith(".conv1.weight")) + 2
    model = CifarResNet(depth, num_classes)
    model.load_state_dict(state, strict=True)
    print(f"strict load_state_dict: ok ({len(state)} tensors, depth {depth}, {num_classes} classes, "
          f"{sum(p.numel() for p in model.parameters())} parameters)")
    if not args.inputs:
        return
    io = read_safetensors(args.inputs)
    images = io["images"]
    failures = []

    def compare(what, got, want, rel):
        diff = (got - want).abs().max().item()
        scale = want.abs().max().item()
        ok = diff <= rel * max(scale, 1e-12)
        print(f"{what}: max |diff| {diff:.3g} (max |value| {scale:.3g}) {'ok' if ok else 'MISMATCH'}")
        if not ok:
            failures.append(what)

    model.eval()
    with torch.no_grad():
        compare("evaluation logits", model(images), io["logits"], 1e-4)
    if "train_logits" in io:
        model.train()
        logits = model(images)
        loss = F.cross_entropy(logits, io["labels"].long())
        loss.backward()
        compare("training logits", logits.detach(), io["train_logits"], 1e-4)
        compare("cross-entropy", loss.detach().reshape(1), io["loss"].reshape(1), 1e-5)
        worst = ("", 0.0)
        for name, p in model.named_parameters():
            want = io["grad." + name]
            rel = (p.grad - want).abs().max().item() / max(want.abs().max().item(), 1e-12)
            if rel > worst[1]:
                worst = (name, rel)
            if rel > 1e-3:
                print(f"gradient {name}: relative max diff {rel:.3g} MISMATCH")
                failures.append("grad." + name)
        print(f"parameter gradients: worst relative max diff {worst[1]:.3g} ({worst[0]})")
    if failures:
        print("parity FAILED: " + ", ".join(failures))
        sys.exit(1)
    print("parity ok")


def bench(args):
    torch.manual_seed(0)
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    else:
        torch.backends.cudnn.benchmark = args.cudnn_benchmark
    model = CifarResNet(32, 100).to(device)
    params = sum(p.numel() for p in model.parameters())
    assert params == 470_004, params
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    x = torch.randn(args.batch, 3, 32, 32, device=device)
    y = torch.randint(0, 100, (args.batch,), device=device)
    model.train()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def step():
        opt.zero_grad(set_to_none=False)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    sync()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    mean = sum(times) / len(times)
    result = {
        "framework": f"pytorch {torch.__version__}",
        "device": args.device if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads() if device.type == "cpu" else None,
        "batch": args.batch,
        "steps": args.steps,
        "images_per_s_mean": args.batch / mean,
        "images_per_s_best": args.batch / min(times),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if device.type == "cuda":
        result["peak_cuda_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    if args.json:
        print(json.dumps(result))
    else:
        extra = ", peak CUDA %.0f MiB" % result["peak_cuda_mib"] if device.type == "cuda" else ""
        threads = "" if result["threads"] is None else " (%d threads)" % result["threads"]
        print(f"pytorch resnet32 batch {args.batch} on {result['device']}{threads}: "
              f"{result['images_per_s_mean']:.1f} images/s mean, {result['images_per_s_best']:.1f} best "
              f"over {args.steps} steps; peak RSS {result['peak_rss_mib']:.0f} MiB{extra}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda / cuda:N")
    p.add_argument("--batch", type=int, default=128, help="images per step (default 128)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (default 2, as the CPU figure)")
    p.add_argument("--steps", type=int, default=5, help="timed steps (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1)")
    p.add_argument("--cudnn-benchmark", action="store_true", help="let cuDNN pick algorithms by timing")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--check-checkpoint", metavar="FILE", help="strictly load a project checkpoint")
    p.add_argument("--inputs", metavar="FILE", help="safetensors with images and the project's logits")
    args = p.parse_args()
    if args.batch < 2 or args.steps < 1 or args.warmup < 0 or args.threads < 1:
        p.error("--batch must be ≥ 2, --steps ≥ 1, --warmup ≥ 0, --threads ≥ 1")
    if args.check_checkpoint:
        check_checkpoint(args)
    else:
        bench(args)


if __name__ == "__main__":
    main()
