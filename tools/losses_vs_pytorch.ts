/**
 * This project's side of `tools/losses_vs_pytorch.sh`: forward + backward times of the public
 * losses on the CPU device (native kernels), for the sizes and losses that
 * `tools/pytorch_losses_bench.py` times in PyTorch, with data drawn the same way (logits uniform in
 * [−4, 4), a quarter of the detector rows foreground, frequencies log-uniform in [1e-5, 0.5]).
 *
 * One call gives the loss and its gradient (the kernels are fused). Each loss is timed twice: with
 * `gradInto` (the gradient written into one tensor kept across steps, as a training loop does)
 * and with a fresh gradient tensor per call, disposed after it (what PyTorch's autograd does).
 * Prints `RESULT eql <rows>x<classes> <loss> <ms>` and `RESULT eql-alloc …` lines, each the median
 * of the timed repetitions.
 *
 * Run: `EQL_CPU_THREADS=2 deno run -A tools/losses_vs_pytorch.ts [--repeats 5]`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { CpuDevice } from "../src/device/cpu.ts";
import { type Tensor, tensor } from "../src/tensor.ts";
import {
  eqlLoss,
  type LossResult,
  seqlLoss,
  sigmoidCrossEntropy,
  softmaxCrossEntropy,
} from "../src/losses/mod.ts";

const SIZES: [number, number][] = [[256, 100], [8192, 1230]];

/** Deterministic uniform numbers in [0, 1). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/**
 * Warm-up before timing: at least this long and at least half a run of calls (as
 * `tools/pytorch_losses_bench.py` does), so that the timed calls run the JIT's optimised code: with
 * only the calls, the first loss timed in the process ran about 1.4–1.8× slower than later ones.
 */
const WARM_UP_MS = 300;

/** The median of the per-call milliseconds of `repeats` runs of `calls` calls each. */
function timeMs(step: () => void, calls: number, repeats: number): number {
  const start = performance.now();
  for (let i = 0; i < Math.max(2, calls >> 1) || performance.now() - start < WARM_UP_MS; i++) {
    step();
  }
  const samples: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) step();
    samples.push((performance.now() - t0) / calls);
  }
  samples.sort((a, b) => a - b);
  return samples[samples.length >> 1];
}

const { values } = parseArgs({
  args: Deno.args,
  options: { repeats: { type: "string", default: "5" } },
  strict: true,
});
const repeats = Number(values.repeats);
const device = new CpuDevice({ kernels: "native" });

for (const [n, c] of SIZES) {
  const rand = lcg(n + c);
  const logits = tensor(new Float32Array(n * c).map(() => 8 * rand() - 4), [n, c], device);
  const det = tensor(
    new Int32Array(n).map(() => (rand() < 0.25 ? Math.floor(rand() * c) : c)),
    [n],
    device,
  );
  const cls = tensor(new Int32Array(n).map(() => Math.floor(rand() * c)), [n], device);
  const frequencies = Array.from({ length: c }, () => Math.exp(Math.log(1e-5) + rand() * 10.82));
  const grad = tensor(new Float32Array(n * c), [n, c], device) as Tensor<"f32">;
  let counter = 0;
  const cases: [string, (gradInto?: Tensor<"f32">) => LossResult][] = [
    ["sigmoid-CE", (gradInto) => sigmoidCrossEntropy(logits, det, { gradInto })],
    ["EQL", (gradInto) => eqlLoss(logits, det, { frequencies, lambda: 1.76e-3, gradInto })],
    ["softmax-CE", (gradInto) => softmaxCrossEntropy(logits, cls, { gradInto })],
    ["SEQL", (gradInto) =>
      seqlLoss(logits, cls, {
        frequencies,
        lambda: 3e-3,
        gamma: 0.95,
        seed: 1,
        counter: counter++,
        gradInto,
      })],
  ];
  const calls = n * c < 1e6 ? 200 : 5;
  for (const [name, run] of cases) {
    const kept = timeMs(() => run(grad)[Symbol.dispose](), calls, repeats);
    console.log(`RESULT eql ${n}x${c} ${name} ${kept.toFixed(4)}`);
    const fresh = timeMs(() => run()[Symbol.dispose](), calls, repeats);
    console.log(`RESULT eql-alloc ${n}x${c} ${name} ${fresh.toFixed(4)}`);
  }
}
console.log(`# ${device.description}`);
