/**
 * The fused losses on the CPU device: sigmoid EQL, softmax EQL (SEQL) and softmax cross-entropy
 * at CIFAR size (256 × 100) and LVIS size (8192 × 1230). Each device op reads the logits once and
 * writes the gradient once, so besides Deno's timing table a GB/s summary of those bytes
 * (8·N·C per call, averaged over the measured iterations) is printed at the end. The public
 * functions (validation, label upload, row-loss download and sum) are timed too.
 *
 * Run: `deno bench -A bench/losses_bench.ts`.
 *
 * @module
 */

import { cpuDevice } from "../src/device/cpu.ts";
import { gammaThreshold } from "../src/device/mask.ts";
import { tensor } from "../src/tensor.ts";
import { eqlLoss, seqlLoss, softmaxCrossEntropy, suppressionWeights } from "../src/losses/mod.ts";

const SIZES: [string, number, number][] = [["CIFAR", 256, 100], ["LVIS", 8192, 1230]];

const dev = cpuDevice();

/** Deterministic uniform numbers in [0, 1). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** Wall time of the measured calls, by bench name, for the GB/s summary. */
const timings = new Map<string, { bytes: number; ms: number; calls: number }>();

function timed(name: string, bytes: number, b: Deno.BenchContext, work: () => void): void {
  const t0 = performance.now();
  b.start();
  work();
  b.end();
  const entry = timings.get(name) ?? { bytes, ms: 0, calls: 0 };
  entry.ms += performance.now() - t0;
  entry.calls++;
  timings.set(name, entry);
}

for (const [size, n, c] of SIZES) {
  const group = `${size} ${n}x${c}`;
  const rand = lcg(n + c);
  const host = new Float32Array(n * c).map(() => 8 * rand() - 4);
  // Frequencies log-uniform in [1e-5, 0.5]: about half the classes fall below each λ.
  const frequencies = Array.from({ length: c }, () => Math.exp(Math.log(1e-5) + rand() * 10.82));
  // Detector-style labels: a quarter foreground, the rest background (label C).
  const detLabels = new Int32Array(n).map(() => (rand() < 0.25 ? Math.floor(rand() * c) : c));
  const clsLabels = new Int32Array(n).map(() => Math.floor(rand() * c));
  const logits = tensor(host, [n, c], dev);
  const grad = dev.alloc("f32", n * c), rowLoss = dev.alloc("f32", n);
  const det = tensor(detLabels, [n], dev), cls = tensor(clsLabels, [n], dev);
  const eqlSuppress = tensor(suppressionWeights(frequencies, { lambda: 1.76e-3 }), [c], dev);
  const seqlSuppress = tensor(suppressionWeights(frequencies, { lambda: 3e-3 }), [c], dev);
  const bytes = 8 * n * c;
  const small = n * c < 1e6;
  const iterations = small ? {} : { n: 8, warmup: 2 };

  const kernels: [string, () => void][] = [
    ["EQL (sigmoid, λ 1.76e-3)", () =>
      dev.sigmoidLoss(logits.buffer, det.buffer, grad, rowLoss, {
        n,
        c,
        scale: 1 / n,
        suppress: eqlSuppress.buffer,
        backgroundExempt: true,
        focalGamma: 0,
        focalAlpha: -1,
      })],
    [
      "SEQL (softmax, λ 3e-3, γ 0.95)",
      () =>
        dev.softmaxLoss(logits.buffer, cls.buffer, grad, rowLoss, {
          n,
          c,
          scale: 1 / n,
          suppress: seqlSuppress.buffer,
          gammaThreshold: gammaThreshold(0.95),
          seed: 1,
          counter: 2,
        }),
    ],
    ["softmax CE", () =>
      dev.softmaxLoss(logits.buffer, cls.buffer, grad, rowLoss, {
        n,
        c,
        scale: 1 / n,
        gammaThreshold: 0,
        seed: 0,
        counter: 0,
      })],
  ];
  for (const [name, op] of kernels) {
    const full = `device op: ${name} ${group}`;
    Deno.bench({
      name: full,
      group,
      baseline: name === "softmax CE",
      ...iterations,
      fn: (b) => timed(full, bytes, b, op),
    });
  }

  const api: [string, () => void][] = [
    ["eqlLoss", () => eqlLoss(logits, detLabels, { frequencies }).grad.dispose()],
    ["seqlLoss", () => seqlLoss(logits, clsLabels, { frequencies, seed: 1 }).grad.dispose()],
    ["softmaxCrossEntropy", () => softmaxCrossEntropy(logits, clsLabels).grad.dispose()],
  ];
  for (const [name, call] of api) {
    const full = `public ${name} ${group}`;
    Deno.bench({ name: full, group, ...iterations, fn: (b) => timed(full, bytes, b, call) });
  }
}

globalThis.addEventListener("unload", () => {
  console.log(`\nFused loss throughput on ${dev.description} (logits read + gradient written):`);
  for (const [name, t] of timings) {
    const ms = t.ms / t.calls;
    const gbs = (t.bytes * t.calls) / (t.ms * 1e6);
    console.log(
      `  ${name.padEnd(58)} ${ms.toFixed(3).padStart(9)} ms ${gbs.toFixed(3).padStart(8)} GB/s`,
    );
  }
});
