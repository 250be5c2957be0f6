/**
 * CPU convolution and batch-norm kernels at the shapes of a ResNet-32 (CIFAR) training step with
 * batch 128: the 3→16 stem, the 3×3 pad-1 convolutions of the three stages (16 channels at
 * 32×32, 32 at 16×16, 64 at 8×8), the two stride-2 stage transitions, and batch-norm at the three
 * stage shapes.
 *
 * Run: `deno bench -A bench/conv_bench.ts`. Besides Deno's timing table, a summary is printed at
 * the end: the median milliseconds per call, GFLOP/s for the convolutions (2·MACs per call) and
 * an estimate of the step's convolution + batch-norm time, each kernel weighted by how often a
 * ResNet-32 step runs it (31 convolutions and 31 batch-norms, forward and backward; the stem's
 * backward-data is not needed and not counted). The rest of the step (ReLU, additions,
 * shortcuts, pooling, the classifier, the loss and SGD) is not included.
 *
 * @module
 */

import { type BatchNormShape, type Conv2dShape, convOutputSize } from "../src/device/device.ts";
import { cpuDevice } from "../src/device/cpu.ts";
import { Random } from "../src/random.ts";

const BATCH = 128;
const dev = cpuDevice();
const rng = new Random(0);

function conv3x3(cIn: number, size: number, cOut: number, stride: number): Conv2dShape {
  const out = convOutputSize(size, 3, stride, 1);
  return {
    n: BATCH,
    cIn,
    h: size,
    w: size,
    cOut,
    kH: 3,
    kW: 3,
    strideH: stride,
    strideW: stride,
    padH: 1,
    padW: 1,
    outH: out,
    outW: out,
  };
}

/** Name, geometry, and how many times one ResNet-32 step runs it. */
const CONVS: [string, Conv2dShape, number][] = [
  ["stem 3→16 32×32", conv3x3(3, 32, 16, 1), 1],
  ["16→16 32×32", conv3x3(16, 32, 16, 1), 10],
  ["16→32 32×32 stride 2", conv3x3(16, 32, 32, 2), 1],
  ["32→32 16×16", conv3x3(32, 16, 32, 1), 9],
  ["32→64 16×16 stride 2", conv3x3(32, 16, 64, 2), 1],
  ["64→64 8×8", conv3x3(64, 8, 64, 1), 9],
];

const bnShape = (c: number, hw: number): BatchNormShape => ({
  n: BATCH,
  c,
  hw,
  eps: 1e-5,
  momentum: 0.1,
  relu: false,
});

const BNS: [string, BatchNormShape, number][] = [
  ["bn 16×32×32", bnShape(16, 1024), 11],
  ["bn 32×16×16", bnShape(32, 256), 10],
  ["bn 64×8×8", bnShape(64, 64), 10],
];

/** Milliseconds of every measured call, by bench name. */
const timings = new Map<string, number[]>();
/** Flops per call (convolutions) and step weight, by bench name. */
const meta = new Map<string, { flops: number; weight: number }>();

function timed(name: string, b: Deno.BenchContext, work: () => void): void {
  const t0 = performance.now();
  b.start();
  work();
  b.end();
  const list = timings.get(name) ?? [];
  list.push(performance.now() - t0);
  timings.set(name, list);
}

function buffer(len: number) {
  const buf = dev.alloc("f32", len);
  dev.upload(buf, new Float32Array(len).map(() => rng.uniform(-1, 1)));
  return buf;
}

for (const [label, s, count] of CONVS) {
  const x = buffer(s.n * s.cIn * s.h * s.w);
  const w = buffer(s.cOut * s.cIn * s.kH * s.kW);
  const y = buffer(s.n * s.cOut * s.outH * s.outW);
  const dy = buffer(y.length), dx = buffer(x.length), dw = buffer(w.length);
  const flops = 2 * s.n * s.cOut * s.outH * s.outW * s.cIn * s.kH * s.kW;
  const ops: [string, () => void, number][] = [
    ["forward", () => dev.conv2dForward(x, w, y, s), count],
    ["backward-data", () => dev.conv2dBackwardData(w, dy, dx, s), s.cIn === 3 ? 0 : count],
    ["backward-filter", () => dev.conv2dBackwardFilter(x, dy, dw, s), count],
  ];
  for (const [op, fn, weight] of ops) {
    const name = `conv ${op} ${label}`;
    meta.set(name, { flops, weight });
    Deno.bench({ name, group: `conv ${label}`, n: 20, warmup: 3, fn: (b) => timed(name, b, fn) });
  }
}

for (const [label, s, count] of BNS) {
  const len = s.n * s.c * s.hw;
  const x = buffer(len), y = buffer(len), dy = buffer(len), dx = buffer(len);
  const runningVar = dev.alloc("f32", s.c);
  dev.fill(runningVar, 1, s.c);
  const params = {
    gamma: buffer(s.c),
    beta: buffer(s.c),
    runningMean: buffer(s.c),
    runningVar,
    saveMean: buffer(s.c),
    saveInvStd: buffer(s.c),
  };
  const grads = { dx, dGamma: buffer(s.c), dBeta: buffer(s.c) };
  const ops: [string, () => void, number][] = [
    ["training forward", () => dev.batchNormForwardTraining(x, y, params, s), count],
    ["backward", () => dev.batchNormBackward(x, y, dy, grads, params, s), count],
    ["inference", () => dev.batchNormForwardInference(x, y, params, s), 0],
  ];
  dev.batchNormForwardTraining(x, y, params, s);
  for (const [op, fn, weight] of ops) {
    const name = `${label} ${op}`;
    meta.set(name, { flops: 0, weight });
    Deno.bench({ name, group: label, n: 30, warmup: 3, fn: (b) => timed(name, b, fn) });
  }
}

// The buffers above (about 160 MB) were just allocated and filled. On the virtual machines
// this was tuned on, the first benchmarks after such an allocation ran up to twice as slow for a
// few seconds; pausing before timing measures the steady state that a training loop (which keeps
// its buffers) sees.
await new Promise((resolve) => setTimeout(resolve, 8000));

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

globalThis.addEventListener("unload", () => {
  if (timings.size === 0) return;
  console.log(`\nCPU conv / batch-norm, batch ${BATCH}, ${dev.description}`);
  let convMs = 0, bnMs = 0;
  for (const [name, list] of timings) {
    const { flops, weight } = meta.get(name)!;
    const ms = median(list);
    const rate = flops > 0 ? `${(flops / ms / 1e6).toFixed(1).padStart(6)} GFLOP/s` : "";
    console.log(`${name.padEnd(48)} ${ms.toFixed(2).padStart(8)} ms  ${rate}`);
    if (flops > 0) convMs += weight * ms;
    else bnMs += weight * ms;
  }
  console.log(
    `ResNet-32 step estimate (batch ${BATCH}): convolutions ${convMs.toFixed(0)} ms + ` +
      `batch-norm ${bnMs.toFixed(0)} ms = ${(convMs + bnMs).toFixed(0)} ms ` +
      `(${(BATCH / ((convMs + bnMs) / 1000)).toFixed(0)} images/s bound from these kernels alone)`,
  );
});
