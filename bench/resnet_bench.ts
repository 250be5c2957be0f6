/**
 * ResNet-32 (100 classes) training throughput on the CPU device: one step is forward, softmax
 * cross-entropy, backward and a Nesterov SGD update, at batch 128 (the DESIGN's CPU figure).
 * Besides Deno's timing table, it prints images/s and the peak resident memory seen after each
 * phase of a step. `tools/pytorch_resnet_bench.py` measures the same step in PyTorch.
 *
 * Run: `deno bench -A bench/resnet_bench.ts` (batch from `RESNET_BENCH_BATCH`, default 128).
 *
 * @module
 */

import { cpuDevice } from "../src/device/cpu.ts";
import { tensor } from "../src/tensor.ts";
import { resnet32 } from "../src/nn/resnet.ts";
import { SGD } from "../src/optim/sgd.ts";
import { softmaxCrossEntropy } from "../src/losses/softmax_cross_entropy.ts";
import { Random } from "../src/random.ts";

const batch = Number(Deno.env.get("RESNET_BENCH_BATCH") ?? 128);
if (!Number.isInteger(batch) || batch < 2) {
  throw new RangeError(`RESNET_BENCH_BATCH must be an integer ≥ 2, got ${batch}`);
}
const device = cpuDevice();
const net = resnet32({ numClasses: 100, seed: 0, device });
const rng = new Random(1);
const images = new Float32Array(batch * 3 * 32 * 32);
for (let i = 0; i < images.length; i++) images[i] = rng.normal();
const x = tensor(images, [batch, 3, 32, 32], device);
const labels = Int32Array.from({ length: batch }, () => rng.integer(0, 100));
const opt = new SGD(net.parameters(), {
  lr: 0.1,
  momentum: 0.9,
  nesterov: true,
  weightDecay: 5e-4,
});

let peakRss = Deno.memoryUsage().rss;
const seconds: number[] = [];
const sample = (): void => {
  peakRss = Math.max(peakRss, Deno.memoryUsage().rss);
};

function step(): void {
  const t0 = performance.now();
  const logits = net.forward(x, true);
  sample();
  const { grad } = softmaxCrossEntropy(logits, labels);
  net.backwardParameters(grad);
  sample();
  grad.dispose();
  opt.step();
  device.sync();
  seconds.push((performance.now() - t0) / 1000);
}

Deno.bench(`ResNet-32 training step, batch ${batch} (${device.description})`, {
  n: 12,
  warmup: 3,
}, step);

globalThis.addEventListener("unload", () => {
  if (seconds.length === 0) return;
  // The first calls are the warm-up (buffers allocated and first touched, code compiled).
  const timed = seconds.length > 3 ? seconds.slice(3) : seconds;
  const mean = timed.reduce((a, b) => a + b, 0) / timed.length;
  const best = Math.min(...timed);
  console.log(
    `resnet32 batch ${batch}: ${(batch / mean).toFixed(1)} images/s mean, ` +
      `${(batch / best).toFixed(1)} images/s best over ${timed.length} steps; ` +
      `peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB`,
  );
});
