/**
 * The fused losses on the CPU device, native kernels (`ffi/cpu_kernels/losses.c`) against the
 * TypeScript ones, side by side in one process: sigmoid cross-entropy, sigmoid EQL, softmax
 * cross-entropy, softmax EQL (SEQL), EQLv2 and Seesaw at CIFAR size (256 × 100) and LVIS size
 * (8192 × 1230; EQLv2 and Seesaw take the same logits as C − 1 classes + objectness and C − 2
 * classes + the objectness pair).
 * Each device op reads the logits once and writes the gradient once, so besides Deno's timing
 * table (one group per loss and size, the TypeScript kernels as the baseline) a GB/s summary of
 * those bytes (8·N·C per call, averaged over the measured iterations) is printed at the end. The
 * public functions (validation, label upload, row-loss download and sum) are timed too, on the
 * native device.
 *
 * Run: `deno bench -A bench/losses_bench.ts` (`EQL_CPU_THREADS` sets the native kernels' threads).
 * `tools/losses_vs_pytorch.sh` compares the forward + backward time with PyTorch's.
 *
 * @module
 */

import { CpuDevice } from "../src/device/cpu.ts";
import type { Device } from "../src/device/device.ts";
import { gammaThreshold } from "../src/device/mask.ts";
import { tensor } from "../src/tensor.ts";
import { Eqlv2Criterion } from "../src/losses/eqlv2.ts";
import { SeesawCriterion } from "../src/losses/seesaw.ts";
import {
  eqlLoss,
  seqlLoss,
  sigmoidCrossEntropy,
  softmaxCrossEntropy,
  suppressionWeights,
} from "../src/losses/mod.ts";

const SIZES: [string, number, number][] = [["CIFAR", 256, 100], ["LVIS", 8192, 1230]];

const DEVICES: [string, Device][] = [
  ["native", new CpuDevice({ kernels: "native" })],
  ["typescript", new CpuDevice({ kernels: "typescript" })],
];

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
  const rand = lcg(n + c);
  const host = new Float32Array(n * c).map(() => 8 * rand() - 4);
  // Frequencies log-uniform in [1e-5, 0.5]: about half the classes fall below each λ.
  const frequencies = Array.from({ length: c }, () => Math.exp(Math.log(1e-5) + rand() * 10.82));
  // Detector-style labels: a quarter foreground, the rest background (label C).
  const detLabels = new Int32Array(n).map(() => (rand() < 0.25 ? Math.floor(rand() * c) : c));
  const clsLabels = new Int32Array(n).map(() => Math.floor(rand() * c));
  // The same rows for EQLv2 (background = its objectness column, c − 1) and Seesaw (c − 2).
  const v2Labels = detLabels.map((y) => Math.min(y, c - 1));
  const seesawLabels = detLabels.map((y) => Math.min(y, c - 2));
  const posWeight = new Float32Array(c).map(() => 1 + 4 * rand());
  const negWeight = new Float32Array(c).map(() => rand());
  const logCount = new Float32Array(c - 2).map(() => 10 * rand());
  const eqlSuppress = suppressionWeights(frequencies, { lambda: 1.76e-3 });
  const seqlSuppress = suppressionWeights(frequencies, { lambda: 3e-3 });
  const bytes = 8 * n * c;
  const small = n * c < 1e6;

  for (const [kernels, dev] of DEVICES) {
    const logits = tensor(host, [n, c], dev);
    const grad = dev.alloc("f32", n * c), rowLoss = dev.alloc("f32", n);
    const det = tensor(detLabels, [n], dev), cls = tensor(clsLabels, [n], dev);
    const eqlS = tensor(eqlSuppress, [c], dev), seqlS = tensor(seqlSuppress, [c], dev);
    const v2 = tensor(v2Labels, [n], dev), ss = tensor(seesawLabels, [n], dev);
    const pw = tensor(posWeight, [c], dev), nw = tensor(negWeight, [c], dev);
    const lc = tensor(logCount, [c - 2], dev), stats = dev.alloc("f32", 2 * c);
    const sigmoid = { n, c, scale: 1 / n, backgroundExempt: true, focalGamma: 0, focalAlpha: -1 };
    const softmax = { n, c, scale: 1 / n, gammaThreshold: 0, seed: 0, counter: 0 };
    const ops: [string, () => void][] = [
      ["sigmoid CE", () => dev.sigmoidLoss(logits.buffer, det.buffer, grad, rowLoss, sigmoid)],
      ["EQL (sigmoid, λ 1.76e-3)", () =>
        dev.sigmoidLoss(logits.buffer, det.buffer, grad, rowLoss, {
          ...sigmoid,
          suppress: eqlS.buffer,
        })],
      ["softmax CE", () => dev.softmaxLoss(logits.buffer, cls.buffer, grad, rowLoss, softmax)],
      [
        "SEQL (softmax, λ 3e-3, γ 0.95)",
        () =>
          dev.softmaxLoss(logits.buffer, cls.buffer, grad, rowLoss, {
            ...softmax,
            suppress: seqlS.buffer,
            gammaThreshold: gammaThreshold(0.95),
            seed: 1,
            counter: 2,
          }),
      ],
      [
        "EQLv2 (C−1 classes + objectness)",
        () =>
          dev.eqlv2Loss(logits.buffer, v2.buffer, grad, rowLoss, stats, {
            n,
            c,
            scale: 1 / n,
            posWeight: pw.buffer,
            negWeight: nw.buffer,
          }),
      ],
      [
        "Seesaw (C−2 classes + objectness pair)",
        () =>
          dev.seesawLoss(logits.buffer, ss.buffer, grad, rowLoss, {
            n,
            c,
            scale: 1 / n,
            logCount: lc.buffer,
            p: 0.8,
            q: 2,
            eps: 1e-2,
          }),
      ],
    ];
    // The TypeScript kernels take about a second per LVIS-size call: fewer iterations there.
    const iterations = small
      ? {}
      : kernels === "native"
      ? { n: 20, warmup: 3 }
      : { n: 4, warmup: 1 };
    for (const [name, op] of ops) {
      const full = `${kernels} ${name} ${size} ${n}x${c}`;
      Deno.bench({
        name: full,
        group: `${name} ${size} ${n}x${c}`,
        baseline: kernels === "typescript",
        ...iterations,
        fn: (b) => timed(full, bytes, b, op),
      });
    }
    if (kernels !== "native") continue;
    const eqlv2 = new Eqlv2Criterion({ numClasses: c - 1 });
    const seesaw = new SeesawCriterion({ numClasses: c - 2 });
    const api: [string, () => void][] = [
      ["sigmoidCrossEntropy", () => sigmoidCrossEntropy(logits, detLabels).grad.dispose()],
      ["eqlLoss", () => eqlLoss(logits, detLabels, { frequencies }).grad.dispose()],
      ["softmaxCrossEntropy", () => softmaxCrossEntropy(logits, clsLabels).grad.dispose()],
      ["seqlLoss", () => seqlLoss(logits, clsLabels, { frequencies, seed: 1 }).grad.dispose()],
      ["Eqlv2Criterion.compute", () => eqlv2.compute(logits, v2Labels).grad.dispose()],
      ["SeesawCriterion.compute", () => seesaw.compute(logits, seesawLabels).grad.dispose()],
    ];
    for (const [name, call] of api) {
      const full = `public ${name} (native) ${size} ${n}x${c}`;
      Deno.bench({
        name: full,
        group: `public ${size} ${n}x${c}`,
        ...iterations,
        fn: (b) => timed(full, bytes, b, call),
      });
    }
  }
}

globalThis.addEventListener("unload", () => {
  console.log("\nFused loss throughput (logits read + gradient written):");
  for (const [, dev] of DEVICES) console.log(`  ${(dev as CpuDevice).description}`);
  for (const [name, t] of timings) {
    const ms = t.ms / t.calls;
    const gbs = (t.bytes * t.calls) / (t.ms * 1e6);
    console.log(
      `  ${name.padEnd(58)} ${ms.toFixed(3).padStart(9)} ms ${gbs.toFixed(3).padStart(8)} GB/s`,
    );
  }
});
