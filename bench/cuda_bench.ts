/**
 * GPU figures, each against a peer measured in the same run on the same card:
 *
 * - the fused EQL kernel (sigmoid family, 8192 × 1230 logits, forward + gradient, LVIS-sized) and
 *   the fused softmax-EQL kernel at the same size, in GB/s of memory traffic (logits and labels
 *   read, gradient and row losses written), against a device-to-device copy that moves the same
 *   bytes (`cuMemcpyDtoDAsync` of the logits' size: that many bytes read and as many written);
 * - cuBLAS SGEMM at 4096³ in TFLOP/s, FP32 and TF32;
 * - the fused batch-norm tail of a residual block (cuDNN's training forward, then one pass that
 *   normalises, adds the residual and applies the ReLU) against the same done as batch norm, add
 *   and ReLU in turn, at a ResNet-32 stage-1 size (128 × 16 × 32 × 32);
 * - ResNet-32 training (forward, softmax cross-entropy, backward, SGD) at batch 256 in images/s,
 *   when the model is available. `tools/pytorch_eql_bench.py` measures the PyTorch side.
 *
 * Deno's table shows wall time per iteration (a batch of launches plus a wait); the summary
 * printed at the end is timed with CUDA events on the device's stream. Without a GPU every bench
 * is skipped and the reason printed.
 *
 * Run: `deno bench -A bench/cuda_bench.ts`.
 *
 * @module
 */

import { cudaAvailable } from "../src/device/auto.ts";
import { CudaDevice } from "../src/device/cuda.ts";
import type {
  BatchNormParams,
  BatchNormShape,
  DeviceBuffer,
  SigmoidLossParams,
  SoftmaxLossParams,
} from "../src/device/device.ts";
import { gammaThreshold } from "../src/device/mask.ts";

const availability = cudaAvailable();
const gpu = availability.ok;
if (!gpu) console.log(`cuda_bench.ts: every GPU benchmark is skipped: ${availability.reason}`);

const device = gpu ? new CudaDevice() : undefined;
const summary: string[] = [];

function dev(): CudaDevice {
  if (!device) throw new Error("no GPU");
  return device;
}

/** Seeded uniform data in [lo, hi). */
function uniform(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = lo + (hi - lo) * (s / 2 ** 32);
  }
  return out;
}

/** GPU milliseconds per call of `fn`, from CUDA events around `iterations` calls. */
function eventTime(d: CudaDevice, iterations: number, fn: () => void): number {
  for (let i = 0; i < 3; i++) fn();
  const timer = d.createTimer();
  try {
    timer.start();
    for (let i = 0; i < iterations; i++) fn();
    return timer.stop() / iterations;
  } finally {
    timer.dispose();
  }
}

// ── the fused losses against a copy of the same bytes ────────────────────────────────────────

const N = 8192, C = 1230, LAUNCHES = 20;
let loss: {
  logits: DeviceBuffer;
  labels: DeviceBuffer;
  fgLabels: DeviceBuffer;
  suppress: DeviceBuffer;
  grad: DeviceBuffer;
  rowLoss: DeviceBuffer;
  copy: DeviceBuffer;
} | undefined;

function lossBuffers(): NonNullable<typeof loss> {
  if (loss) return loss;
  const d = dev();
  const put = (data: Float32Array | Int32Array) => {
    const b = d.alloc(data instanceof Int32Array ? "i32" : "f32", data.length);
    d.upload(b, data);
    return b;
  };
  const r = uniform(N + C, 3, 0, 1);
  loss = {
    logits: put(uniform(N * C, 1, -8, 8)),
    // A quarter of the proposals are background (label C), as in a detector's sampled batch.
    labels: put(Int32Array.from({ length: N }, (_, i) => r[i] < 0.25 ? C : Math.floor(r[i] * C))),
    fgLabels: put(Int32Array.from({ length: N }, (_, i) => Math.floor(r[i] * C) % C)),
    // LVIS v0.5 at λ = 1.76e-3: the rare and common categories (about 70 %) are suppressed.
    suppress: put(Float32Array.from({ length: C }, (_, j) => r[N + j] < 0.7 ? 1 : 0)),
    grad: d.alloc("f32", N * C),
    rowLoss: d.alloc("f32", N),
    copy: d.alloc("f32", N * C),
  };
  return loss;
}

function sigmoidParams(b: NonNullable<typeof loss>): SigmoidLossParams {
  return {
    n: N,
    c: C,
    scale: 1 / N,
    suppress: b.suppress,
    backgroundExempt: true,
    focalGamma: 0,
    focalAlpha: -1,
  };
}

function softmaxParams(b: NonNullable<typeof loss>): SoftmaxLossParams {
  return {
    n: N,
    c: C,
    scale: 1 / N,
    suppress: b.suppress,
    gammaThreshold: gammaThreshold(0.9),
    seed: 1,
    counter: 0,
  };
}

const eqlKernel = (): void => {
  const b = lossBuffers();
  dev().sigmoidLoss(b.logits, b.labels, b.grad, b.rowLoss, sigmoidParams(b));
};
const seqlKernel = (): void => {
  const b = lossBuffers();
  dev().softmaxLoss(b.logits, b.fgLabels, b.grad, b.rowLoss, softmaxParams(b));
};
const copyKernel = (): void => {
  const b = lossBuffers();
  dev().copy(b.copy, b.logits, N * C);
};

/**
 * One bench group of GPU cases, each `LAUNCHES` calls and a sync per iteration; the first case
 * is the baseline.
 */
function benchGroup(group: string, suffix: string, cases: [string, () => void][]): void {
  cases.forEach(([name, fn], index) =>
    Deno.bench({
      name: `${name}${suffix} (×${LAUNCHES})`,
      group,
      baseline: index === 0,
      ignore: !gpu,
      fn() {
        for (let i = 0; i < LAUNCHES; i++) fn();
        dev().sync();
      },
    })
  );
}

benchGroup("fused loss vs copy", "", [
  [`device-to-device copy of ${N}×${C} floats`, copyKernel],
  [`EQL fused sigmoid loss ${N}×${C}, forward + gradient`, eqlKernel],
  [`SEQL fused softmax loss ${N}×${C}, forward + gradient`, seqlKernel],
]);

function reportLosses(): void {
  if (!loss) return;
  const d = dev();
  // Bytes moved: the copy reads and writes N·C floats; the loss reads logits and labels (and C
  // suppression values) and writes the gradient and the row losses.
  const copyBytes = 2 * N * C * 4;
  const lossBytes = (2 * N * C + 2 * N + C) * 4;
  const copyMs = eventTime(d, 50, copyKernel);
  const copyGBs = copyBytes / copyMs / 1e6;
  summary.push(
    `device-to-device copy: ${(copyMs * 1e3).toFixed(1)} µs, ${copyGBs.toFixed(0)} GB/s`,
  );
  for (
    const [name, fn] of [["EQL fused sigmoid", eqlKernel], [
      "SEQL fused softmax",
      seqlKernel,
    ]] as const
  ) {
    const ms = eventTime(d, 50, fn);
    const gbs = lossBytes / ms / 1e6;
    summary.push(
      `${name} ${N}×${C} (forward + gradient): ${(ms * 1e3).toFixed(1)} µs, ${
        gbs.toFixed(0)
      } GB/s = ` +
        `${(100 * gbs / copyGBs).toFixed(1)} % of the copy's bandwidth`,
    );
  }
}

// ── cuBLAS SGEMM ─────────────────────────────────────────────────────────────────────────────

const G = 4096;
let tf32Device: CudaDevice | undefined;
const gemmBuffers = new Map<CudaDevice, DeviceBuffer[]>();

function gemmOn(d: CudaDevice): () => void {
  let bufs = gemmBuffers.get(d);
  if (!bufs) {
    bufs = [uniform(G * G, 5), uniform(G * G, 6), new Float32Array(G * G)].map((h) => {
      const b = d.alloc("f32", h.length);
      d.upload(b, h);
      return b;
    });
    gemmBuffers.set(d, bufs);
  }
  const [a, b, c] = bufs;
  return () =>
    d.gemm(a, b, c, { transA: false, transB: false, m: G, n: G, k: G, alpha: 1, beta: 0 });
}

function tf32(): CudaDevice {
  return tf32Device ??= new CudaDevice({ tf32: true });
}

Deno.bench({
  name: `cuBLAS SGEMM ${G}³ FP32`,
  group: "sgemm",
  baseline: true,
  ignore: !gpu,
  fn() {
    gemmOn(dev())();
    dev().sync();
  },
});

Deno.bench({
  name: `cuBLAS SGEMM ${G}³ TF32 tensor cores`,
  group: "sgemm",
  ignore: !gpu,
  fn() {
    const d = tf32();
    gemmOn(d)();
    d.sync();
  },
});

function reportGemm(): void {
  for (const [label, d] of [["FP32", device], ["TF32", tf32Device]] as const) {
    if (!d || !gemmBuffers.has(d)) continue;
    const ms = eventTime(d, 10, gemmOn(d));
    summary.push(
      `cuBLAS SGEMM ${G}³ ${label}: ${(2 * G ** 3 / ms / 1e9).toFixed(1)} TFLOP/s (${
        ms.toFixed(2)
      } ms)`,
    );
  }
}

// ── the fused batch-norm tail against batch norm, add and ReLU ──────────────────────────────

const BN: BatchNormShape = { n: 128, c: 16, hw: 32 * 32, eps: 1e-5, momentum: 0.1, relu: true };
const BN_SIZE = BN.n * BN.c * BN.hw;
let bnBuffers:
  | { x: DeviceBuffer; y: DeviceBuffer; res: DeviceBuffer; p: BatchNormParams }
  | undefined;

function bnOn(): NonNullable<typeof bnBuffers> {
  if (bnBuffers) return bnBuffers;
  const d = dev();
  const put = (h: Float32Array) => {
    const b = d.alloc("f32", h.length);
    d.upload(b, h);
    return b;
  };
  const channel = () => d.alloc("f32", BN.c);
  bnBuffers = {
    x: put(uniform(BN_SIZE, 11, -2, 3)),
    y: d.alloc("f32", BN_SIZE),
    res: put(uniform(BN_SIZE, 12)),
    p: {
      gamma: put(uniform(BN.c, 13, 0.5, 1.5)),
      beta: put(uniform(BN.c, 14)),
      runningMean: channel(),
      runningVar: put(uniform(BN.c, 15, 0.5, 2)),
      saveMean: channel(),
      saveInvStd: channel(),
    },
  };
  return bnBuffers;
}

const fusedTail = (): void => {
  const b = bnOn();
  dev().batchNormForwardTraining(b.x, b.y, b.p, BN, b.res);
};
const composedTail = (): void => {
  const b = bnOn(), d = dev();
  d.batchNormForwardTraining(b.x, b.y, b.p, { ...BN, relu: false });
  d.add(b.y, b.res, b.y, BN_SIZE);
  d.reluForward(b.y, b.y, BN_SIZE);
};

benchGroup("batch-norm tail", ", training forward 128×16×32×32", [
  ["batch norm, add, ReLU in turn", composedTail],
  ["fused batch-norm tail (residual add + ReLU)", fusedTail],
]);

function reportBatchNorm(): void {
  if (!bnBuffers) return;
  const d = dev();
  const composed = eventTime(d, 50, composedTail), fused = eventTime(d, 50, fusedTail);
  summary.push(
    `batch-norm tail 128×16×32×32, training forward: fused ${(fused * 1e3).toFixed(1)} µs, ` +
      `composed ${(composed * 1e3).toFixed(1)} µs (${(composed / fused).toFixed(2)}×)`,
  );
}

// ── ResNet-32 training ───────────────────────────────────────────────────────────────────────

const BATCH = 256;
type Step = () => void;
let resnetStep: Step | undefined | null;
const stepSeconds: number[] = [];

async function resnetTraining(): Promise<Step | null> {
  if (resnetStep !== undefined) return resnetStep;
  try {
    const { resnet32 } = await import("../src/nn/resnet.ts");
    const { softmaxCrossEntropy } = await import("../src/losses/softmax_cross_entropy.ts");
    const { SGD } = await import("../src/optim/sgd.ts");
    const { tensor } = await import("../src/tensor.ts");
    const d = dev();
    const net = resnet32({ numClasses: 100, device: d, seed: 0 });
    const x = tensor(uniform(BATCH * 3 * 32 * 32, 9, -2, 2), [BATCH, 3, 32, 32], d);
    const labels = Int32Array.from(uniform(BATCH, 10, 0, 100), Math.floor);
    const opt = new SGD(net.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: 5e-4 });
    resnetStep = () => {
      const logits = net.forward(x, true);
      const { grad } = softmaxCrossEntropy(logits, labels); // reads the loss: waits for the GPU
      net.backwardParameters(grad);
      grad.dispose();
      opt.step();
      d.sync();
    };
  } catch (e) {
    console.log(`ResNet-32 benchmark skipped: the model could not be built (${e})`);
    resnetStep = null;
  }
  return resnetStep;
}

Deno.bench({
  name: `ResNet-32 training step, batch ${BATCH} (100 classes)`,
  group: "resnet",
  ignore: !gpu,
  n: 30,
  warmup: 3,
  async fn(b) {
    const step = await resnetTraining();
    if (!step) return;
    b.start();
    const t0 = performance.now();
    step();
    stepSeconds.push((performance.now() - t0) / 1000);
    b.end();
  },
});

function reportResnet(): void {
  if (stepSeconds.length < 5) return;
  const timed = stepSeconds.slice(3); // the warm-up steps choose algorithms and fill caches
  const mean = timed.reduce((a, b) => a + b, 0) / timed.length;
  summary.push(
    `ResNet-32 training, batch ${BATCH}: ${(BATCH / mean).toFixed(0)} images/s ` +
      `(${(mean * 1e3).toFixed(2)} ms per step, mean of ${timed.length})`,
  );
}

globalThis.addEventListener("unload", () => {
  if (!device) return;
  reportLosses();
  reportGemm();
  reportBatchNorm();
  reportResnet();
  if (summary.length > 0) console.log(`\n${device.description}\n  ${summary.join("\n  ")}`);
});
