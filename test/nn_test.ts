// Layers on the CPU device: forward against naive float64 loops, backward against central finite
// differences, running statistics, initialisation, naming and input validation.

import assert from "node:assert/strict";
import { CpuDevice, cpuDevice } from "../src/device/cpu.ts";
import { type Tensor, tensor, zeros } from "../src/tensor.ts";
import { Conv2d } from "../src/nn/conv2d.ts";
import { BatchNorm2d } from "../src/nn/batchnorm.ts";
import { ReLU } from "../src/nn/relu.ts";
import { Linear } from "../src/nn/linear.ts";
import { GlobalAvgPool } from "../src/nn/pool.ts";
import { Sequential } from "../src/nn/sequential.ts";
import { countersOf, parameterCount } from "../src/nn/named.ts";
import { Random } from "../src/random.ts";
import { awayFromZero, checkGradients, gaussian } from "./gradcheck.ts";

/** Asserts |a − b| ≤ atol + rtol·|b| element-wise. */
function close(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  atol: number,
  rtol: number,
  what: string,
): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    assert.ok(
      err <= atol + rtol * Math.abs(expected[i]),
      `${what}[${i}]: got ${actual[i]}, expected ${expected[i]}`,
    );
  }
}

/** Naive float64 convolution, NCHW × KCRS, square kernel and symmetric padding. */
function naiveConv(
  x: Float32Array,
  w: Float32Array,
  [n, c, h, wd]: number[],
  k: number,
  kernel: number,
  stride: number,
  pad: number,
): Float64Array {
  const oh = Math.floor((h + 2 * pad - kernel) / stride) + 1;
  const ow = Math.floor((wd + 2 * pad - kernel) / stride) + 1;
  const y = new Float64Array(n * k * oh * ow);
  for (let b = 0; b < n; b++) {
    for (let o = 0; o < k; o++) {
      for (let i = 0; i < oh; i++) {
        for (let j = 0; j < ow; j++) {
          let s = 0;
          for (let ci = 0; ci < c; ci++) {
            for (let r = 0; r < kernel; r++) {
              for (let q = 0; q < kernel; q++) {
                const yy = i * stride + r - pad, xx = j * stride + q - pad;
                if (yy < 0 || yy >= h || xx < 0 || xx >= wd) continue;
                s += x[((b * c + ci) * h + yy) * wd + xx] *
                  w[((o * c + ci) * kernel + r) * kernel + q];
              }
            }
          }
          y[((b * k + o) * oh + i) * ow + j] = s;
        }
      }
    }
  }
  return y;
}

/** Per-channel mean and biased variance over N·HW, in float64. */
function channelStats(x: Float32Array, n: number, c: number, hw: number): [number[], number[]] {
  const mean: number[] = [], variance: number[] = [];
  for (let ch = 0; ch < c; ch++) {
    let s = 0;
    for (let b = 0; b < n; b++) for (let p = 0; p < hw; p++) s += x[(b * c + ch) * hw + p];
    const m = s / (n * hw);
    let v = 0;
    for (let b = 0; b < n; b++) {
      for (let p = 0; p < hw; p++) v += (x[(b * c + ch) * hw + p] - m) ** 2;
    }
    mean.push(m);
    variance.push(v / (n * hw));
  }
  return [mean, variance];
}

/** Naive float64 batch-norm with the given per-channel statistics. */
function naiveBn(
  x: Float32Array,
  n: number,
  c: number,
  hw: number,
  mean: number[],
  variance: number[],
  gamma: Float32Array,
  beta: Float32Array,
  eps: number,
): Float64Array {
  const y = new Float64Array(x.length);
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      for (let p = 0; p < hw; p++) {
        const i = (b * c + ch) * hw + p;
        y[i] = gamma[ch] * (x[i] - mean[ch]) / Math.sqrt(variance[ch] + eps) + beta[ch];
      }
    }
  }
  return y;
}

// ── Conv2d ────────────────────────────────────────────────────────────────────────────────────

Deno.test("Conv2d forward matches a float64 loop (stride 1/2, padding 0/1, odd sizes)", () => {
  for (
    const [stride, pad, shape] of [
      [1, 1, [2, 3, 5, 6]],
      [2, 1, [2, 3, 7, 6]],
      [1, 0, [1, 2, 4, 5]],
      [2, 0, [3, 4, 5, 5]],
    ] as [number, number, number[]][]
  ) {
    const conv = new Conv2d(shape[1], 4, 3, { stride, padding: pad, seed: 11 });
    const xs = gaussian(shape.reduce((a, b) => a * b), 3);
    const y = conv.forward(tensor(xs, shape), true);
    const ref = naiveConv(
      xs,
      conv.weight.value.toArray() as Float32Array,
      shape,
      4,
      3,
      stride,
      pad,
    );
    const oh = Math.floor((shape[2] + 2 * pad - 3) / stride) + 1;
    const ow = Math.floor((shape[3] + 2 * pad - 3) / stride) + 1;
    assert.deepEqual(y.shape, [shape[0], 4, oh, ow]);
    close(y.toArray(), ref, 1e-5, 1e-5, `conv stride ${stride} pad ${pad}`);
    conv.dispose();
  }
});

Deno.test("Conv2d gradients match central differences (input and weight)", () => {
  for (const [stride, pad] of [[1, 1], [2, 1], [1, 0]]) {
    const conv = new Conv2d(2, 3, 3, { stride, padding: pad, seed: 2 });
    const x = tensor(gaussian(2 * 2 * 5 * 5, 7), [2, 2, 5, 5]);
    const outSize = conv.forward(x, true).size;
    const r = gaussian(outSize, 8);
    const { checked } = checkGradients(conv, x, r, (dx) => [
      { name: "dx", value: x, analytic: dx },
      {
        name: "dW",
        value: conv.weight.value,
        analytic: (conv.weight.grad.toArray() as Float32Array).slice(),
      },
    ], { eps: 1e-2, rtol: 1e-3 });
    assert.equal(checked, 100 + 54);
    conv.dispose();
  }
});

Deno.test("Conv2d init is seeded Kaiming normal with fan-in and gain √2", () => {
  const a = new Conv2d(64, 64, 3, { seed: 5 }), b = new Conv2d(64, 64, 3, { seed: 5 });
  const c = new Conv2d(64, 64, 3, { seed: 6 });
  const wa = a.weight.value.toArray() as Float32Array;
  assert.deepEqual(wa, b.weight.value.toArray());
  assert.notDeepEqual(wa, c.weight.value.toArray());
  let s = 0, s2 = 0;
  for (const v of wa) {
    s += v;
    s2 += v * v;
  }
  const std = Math.sqrt(s2 / wa.length - (s / wa.length) ** 2);
  const expected = Math.sqrt(2 / (64 * 9));
  // 36,864 draws: the sample std is within ~0.4 % (one sigma) of the true one.
  assert.ok(Math.abs(std / expected - 1) < 0.02, `std ${std} vs ${expected}`);
  assert.ok(Math.abs(s / wa.length) < 4 * expected / Math.sqrt(wa.length), "mean near 0");
  assert.deepEqual(a.parameters().map((p) => [p.name, p.decay]), [["weight", true]]);
  for (const l of [a, b, c]) l.dispose();
});

Deno.test("Conv2d rejects wrong channels, rank, device, tiny input and bad geometry", () => {
  const conv = new Conv2d(3, 4, 3, { padding: 1 });
  assert.throws(() => conv.forward(zeros([1, 2, 4, 4]), true), {
    name: "RangeError",
    message: "Conv2d.forward: x must have 3 channels in dimension 1, got 2 (shape [1, 2, 4, 4])",
  });
  assert.throws(() => conv.forward(zeros([3, 4, 4]), true), /\(rank 4\), got \[3, 4, 4\]/);
  assert.throws(() => conv.forward(zeros([1, 3, 4, 4], new CpuDevice()), true), {
    name: "TypeError",
    message: /must live on the layer's device/,
  });
  assert.throws(
    () => conv.forward(tensor(new Int32Array(48), [1, 3, 4, 4]) as unknown as Tensor<"f32">, true),
    /f32/,
  );
  assert.throws(() => new Conv2d(3, 4, 5).forward(zeros([1, 3, 4, 4]), true), /at least 5×5/);
  assert.throws(() => new Conv2d(0, 4, 3), /inChannels must be an integer ≥ 1, got 0/);
  assert.throws(() => new Conv2d(3, 4, 3, { stride: 0 }), /stride must be an integer ≥ 1/);
  assert.throws(() => new Conv2d(3, 4, 3).backward(zeros([1, 4, 2, 2])), /needs a .*forward/);
  conv.forward(zeros([1, 3, 4, 4]), true);
  assert.throws(() => conv.backward(zeros([1, 4, 4, 5])), {
    name: "RangeError",
    message: /forward output's shape \[1, 4, 4, 4\], got \[1, 4, 4, 5\]/,
  });
  conv.dispose();
});

// ── Linear ────────────────────────────────────────────────────────────────────────────────────

Deno.test("Linear forward is x·Wᵀ + b and its gradients match central differences", () => {
  const fc = new Linear(5, 3, { seed: 4 });
  const xs = gaussian(4 * 5, 1);
  const x = tensor(xs, [4, 5]);
  const y = fc.forward(x, true).toArray();
  const w = fc.weight.value.toArray() as Float32Array, b = fc.bias!.value.toArray();
  const ref = new Float64Array(12);
  for (let i = 0; i < 4; i++) {
    for (let o = 0; o < 3; o++) {
      let s = b[o];
      for (let k = 0; k < 5; k++) s += xs[i * 5 + k] * w[o * 5 + k];
      ref[i * 3 + o] = s;
    }
  }
  close(y, ref, 1e-6, 1e-6, "linear");
  const r = gaussian(12, 2);
  checkGradients(fc, x, r, (dx) => [
    { name: "dx", value: x, analytic: dx },
    {
      name: "dW",
      value: fc.weight.value,
      analytic: (fc.weight.grad.toArray() as Float32Array).slice(),
    },
    {
      name: "db",
      value: fc.bias!.value,
      analytic: (fc.bias!.grad.toArray() as Float32Array).slice(),
    },
  ], { eps: 1e-2, rtol: 1e-3 });
  fc.dispose();
});

Deno.test("Linear init: Kaiming weights, PyTorch-uniform bias, N(0, std) and constant options", () => {
  const fc = new Linear(256, 64, { seed: 9 });
  const w = fc.weight.value.toArray() as Float32Array;
  const std = Math.sqrt(w.reduce((a, v) => a + v * v, 0) / w.length);
  assert.ok(Math.abs(std / Math.sqrt(2 / 256) - 1) < 0.03, `kaiming std ${std}`);
  const b = fc.bias!.value.toArray() as Float32Array;
  assert.ok(b.every((v) => Math.abs(v) <= 1 / 16), "bias within ±1/√256");
  assert.ok(Math.max(...b) > 0.04 && Math.min(...b) < -0.04, "bias spread over the interval");
  const head = new Linear(256, 64, {
    weightInit: { std: 0.01 },
    biasInit: -Math.log(999),
    seed: 1,
  });
  const hw = head.weight.value.toArray() as Float32Array;
  const hstd = Math.sqrt(hw.reduce((a, v) => a + v * v, 0) / hw.length);
  assert.ok(Math.abs(hstd / 0.01 - 1) < 0.03, `head std ${hstd}`);
  assert.ok(
    (head.bias!.value.toArray() as Float32Array).every((v) => v === Math.fround(-Math.log(999))),
  );
  assert.deepEqual(fc.parameters().map((p) => [p.name, p.decay]), [["weight", true], [
    "bias",
    false,
  ]]);
  const noBias = new Linear(3, 2, { bias: false });
  assert.deepEqual(noBias.parameters().map((p) => p.name), ["weight"]);
  assert.throws(() => new Linear(3, 2, { weightInit: { std: -1 } }), /weightInit must be/);
  assert.throws(() => new Linear(3, 2, { biasInit: NaN }), /biasInit must be/);
  assert.throws(
    () => noBias.forward(zeros([2, 4]), true),
    /must have 3 channels in dimension 1, got 4/,
  );
  assert.throws(() => noBias.forward(zeros([2, 3, 1, 1]), true), /rank 2/);
  for (const l of [fc, head, noBias]) l.dispose();
});

Deno.test("Linear without bias: gradients match central differences", () => {
  const fc = new Linear(4, 2, { bias: false, seed: 3 });
  const x = tensor(gaussian(3 * 4, 5), [3, 4]);
  checkGradients(fc, x, gaussian(6, 6), (dx) => [
    { name: "dx", value: x, analytic: dx },
    {
      name: "dW",
      value: fc.weight.value,
      analytic: (fc.weight.grad.toArray() as Float32Array).slice(),
    },
  ], { eps: 1e-2, rtol: 1e-3 });
  fc.dispose();
});

// ── BatchNorm2d ───────────────────────────────────────────────────────────────────────────────

Deno.test("BatchNorm2d training forward matches float64 batch statistics ([N,C,H,W] and [N,C])", () => {
  for (const shape of [[3, 4, 2, 3], [6, 5]]) {
    const [n, c] = shape, hw = shape.length === 4 ? shape[2] * shape[3] : 1;
    const bn = new BatchNorm2d(c);
    const gamma = gaussian(c, 1), beta = gaussian(c, 2);
    bn.weight.value.device.upload(bn.weight.value.buffer, gamma);
    bn.bias.value.device.upload(bn.bias.value.buffer, beta);
    const xs = gaussian(n * c * hw, 3, 2);
    for (let i = 0; i < xs.length; i++) xs[i] += 1.5;
    const y = bn.forward(tensor(xs, shape), true).toArray();
    const [mean, variance] = channelStats(xs, n, c, hw);
    close(y, naiveBn(xs, n, c, hw, mean, variance, gamma, beta, 1e-5), 1e-5, 1e-5, "bn train");
    bn.dispose();
  }
});

Deno.test("BatchNorm2d running statistics follow momentum 0.1 with the unbiased variance", () => {
  const n = 4, c = 3, hw = 5;
  const bn = new BatchNorm2d(c);
  const rm = [0, 0, 0], rv = [1, 1, 1];
  for (let step = 0; step < 4; step++) {
    const xs = gaussian(n * c * hw, 20 + step, 1 + step);
    for (let i = 0; i < xs.length; i++) xs[i] += step - 1;
    bn.forward(tensor(xs, [n, c, 1, hw]), true);
    const [mean, variance] = channelStats(xs, n, c, hw);
    for (let ch = 0; ch < c; ch++) {
      rm[ch] = 0.9 * rm[ch] + 0.1 * mean[ch];
      rv[ch] = 0.9 * rv[ch] + 0.1 * variance[ch] * (n * hw) / (n * hw - 1);
    }
  }
  close(bn.runningMean.toArray(), rm, 1e-6, 1e-5, "running_mean");
  close(bn.runningVar.toArray(), rv, 1e-6, 1e-5, "running_var");
  assert.equal(bn.numBatchesTracked, 4);
  // Evaluation uses (and keeps) the running statistics and does not count a batch.
  const xs = gaussian(2 * c * hw, 40);
  const gamma = bn.weight.value.toArray() as Float32Array,
    beta = bn.bias.value.toArray() as Float32Array;
  const y = bn.forward(tensor(xs, [2, c, 1, hw]), false).toArray();
  close(y, naiveBn(xs, 2, c, hw, rm, rv, gamma, beta, 1e-5), 1e-5, 1e-5, "bn eval");
  close(bn.runningMean.toArray(), rm, 1e-6, 1e-5, "running_mean after eval");
  assert.equal(bn.numBatchesTracked, 4);
  assert.deepEqual(bn.stateTensors().map((s) => s.name), ["running_mean", "running_var"]);
  assert.deepEqual(countersOf(bn).map((k) => [k.name, k.get()]), [["num_batches_tracked", 4]]);
  assert.throws(() => bn.backward(zeros([2, c, 1, hw])), /needs a training-mode forward/);
  bn.dispose();
});

Deno.test("BatchNorm2d gradients match central differences (x, γ, β; 4-D and 2-D)", () => {
  for (const shape of [[3, 2, 2, 2], [5, 3]]) {
    const c = shape[1];
    const bn = new BatchNorm2d(c);
    bn.weight.value.device.upload(bn.weight.value.buffer, gaussian(c, 12));
    bn.bias.value.device.upload(bn.bias.value.buffer, gaussian(c, 13));
    const x = tensor(gaussian(shape.reduce((a, b) => a * b), 14), shape);
    const r = gaussian(x.size, 15);
    checkGradients(bn, x, r, (dx) => [
      { name: "dx", value: x, analytic: dx },
      {
        name: "dγ",
        value: bn.weight.value,
        analytic: (bn.weight.grad.toArray() as Float32Array).slice(),
      },
      {
        name: "dβ",
        value: bn.bias.value,
        analytic: (bn.bias.grad.toArray() as Float32Array).slice(),
      },
    ], { eps: 1e-2, rtol: 1e-2 });
    bn.dispose();
  }
});

Deno.test("BatchNorm2d with relu: y = max(bn(x) + residual, 0) in both modes; gradients of x, γ, β and the residual", () => {
  const n = 3, c = 4, hw = 6, shape = [n, c, 2, 3], size = n * c * hw;
  for (const withResidual of [true, false]) {
    const bn = new BatchNorm2d(c, { relu: true });
    const gamma = gaussian(c, 31), beta = gaussian(c, 32);
    bn.weight.value.device.upload(bn.weight.value.buffer, gamma);
    bn.bias.value.device.upload(bn.bias.value.buffer, beta);
    const xs = gaussian(size, 33, 2), rs = gaussian(size, 34), dys = gaussian(size, 35);
    const x = tensor(xs, shape), r = withResidual ? tensor(rs, shape) : undefined;
    const tail = (v: Float64Array): Float64Array =>
      v.map((e, i) => Math.max(e + (withResidual ? rs[i] : 0), 0));

    const y = bn.forward(x, true, r).toArray() as Float32Array;
    const [mean, variance] = channelStats(xs, n, c, hw);
    const want = tail(naiveBn(xs, n, c, hw, mean, variance, gamma, beta, 1e-5));
    close(y, want, 1e-5, 1e-5, `train y (residual: ${withResidual})`);
    assert.ok(y.some((v) => v === 0) && y.some((v) => v > 0), "the relu clips some outputs");

    // Backward against the float64 batch-norm backward of the masked gradient.
    const dx = bn.backward(tensor(dys, shape)).toArray() as Float32Array;
    const g = Float64Array.from(dys, (v, i) => (want[i] > 0 ? v : 0));
    const m = n * hw, wantDx = new Float64Array(size), dG = new Float64Array(c);
    const dB = new Float64Array(c);
    for (let ch = 0; ch < c; ch++) {
      const inv = 1 / Math.sqrt(variance[ch] + 1e-5);
      const at = (b: number, p: number): number => (b * c + ch) * hw + p;
      for (let b = 0; b < n; b++) {
        for (let p = 0; p < hw; p++) {
          dB[ch] += g[at(b, p)];
          dG[ch] += g[at(b, p)] * (xs[at(b, p)] - mean[ch]) * inv;
        }
      }
      for (let b = 0; b < n; b++) {
        for (let p = 0; p < hw; p++) {
          const xhat = (xs[at(b, p)] - mean[ch]) * inv;
          wantDx[at(b, p)] = gamma[ch] * inv / m * (m * g[at(b, p)] - dB[ch] - xhat * dG[ch]);
        }
      }
    }
    close(dx, wantDx, 1e-5, 1e-4, "dx");
    close(bn.weight.grad.toArray(), dG, 1e-5, 1e-4, "dγ");
    close(bn.bias.grad.toArray(), dB, 1e-5, 1e-4, "dβ");
    if (withResidual) close(bn.residualGradient.toArray(), g, 0, 0, "residual gradient");
    else assert.throws(() => bn.residualGradient, /needs a training forward with a residual/);

    // Evaluation mode: the running statistics, with the same tail.
    const rm = bn.runningMean.toArray() as Float32Array,
      rv = bn.runningVar.toArray() as Float32Array;
    const yEval = bn.forward(x, false, r).toArray() as Float32Array;
    const wantEval = tail(naiveBn(xs, n, c, hw, [...rm], [...rv], gamma, beta, 1e-5));
    close(yEval, wantEval, 1e-5, 1e-5, `eval y (residual: ${withResidual})`);
    bn.dispose();
  }
});

Deno.test("BatchNorm2d validates its input and options", () => {
  const bn = new BatchNorm2d(3);
  assert.throws(
    () => bn.forward(zeros([2, 4, 2, 2]), true),
    /must have 3 channels in dimension 1, got 4/,
  );
  assert.throws(() => bn.forward(zeros([2, 3, 2]), true), /\(rank 2 or 4\), got \[2, 3, 2\]/);
  assert.throws(() => bn.forward(zeros([1, 3]), true), /more than one value per channel/);
  bn.forward(zeros([1, 3]), false); // inference on one sample is fine
  assert.throws(
    () => new BatchNorm2d(3, { momentum: 1.5 }),
    /momentum must be in \[0, 1\], got 1.5/,
  );
  assert.throws(() => new BatchNorm2d(3, { eps: 0 }), /eps must be a finite number > 0/);
  assert.throws(() => (bn.numBatchesTracked = -1), /numBatchesTracked must be/);
  assert.deepEqual(bn.parameters().map((p) => [p.name, p.decay]), [["weight", false], [
    "bias",
    false,
  ]]);
  assert.deepEqual(bn.weight.value.toArray(), new Float32Array([1, 1, 1]));
  assert.deepEqual(bn.runningVar.toArray(), new Float32Array([1, 1, 1]));
  bn.dispose();
});

// ── ReLU, pooling, Sequential ─────────────────────────────────────────────────────────────────

Deno.test("ReLU forward and gradient (central differences away from the kink)", () => {
  const relu = new ReLU();
  const xs = awayFromZero(2 * 3 * 4, 1, 0.05);
  const x = tensor(xs, [2, 3, 4]);
  const y = relu.forward(x, true).toArray();
  close(y, Array.from(xs, (v) => Math.max(v, 0)), 0, 0, "relu");
  checkGradients(relu, x, gaussian(24, 2), (dx) => [{ name: "dx", value: x, analytic: dx }], {
    eps: 1e-2,
    rtol: 1e-3,
  });
  relu.dispose();
});

Deno.test("GlobalAvgPool forward is the spatial mean and its gradient matches differences", () => {
  const pool = new GlobalAvgPool();
  const xs = gaussian(2 * 3 * 3 * 2, 4);
  const x = tensor(xs, [2, 3, 3, 2]);
  const y = pool.forward(x, true);
  assert.deepEqual(y.shape, [2, 3]);
  const ref = Array.from({ length: 6 }, (_, p) => {
    let s = 0;
    for (let i = 0; i < 6; i++) s += xs[p * 6 + i];
    return s / 6;
  });
  close(y.toArray(), ref, 1e-6, 1e-6, "pool");
  checkGradients(pool, x, gaussian(6, 5), (dx) => [{ name: "dx", value: x, analytic: dx }], {
    eps: 1e-2,
    rtol: 1e-3,
  });
  assert.throws(() => pool.forward(zeros([2, 3]), true), /rank 4/);
  pool.dispose();
});

Deno.test("Sequential chains layers, names children by position and checks gradients", () => {
  const rng = new Random(3);
  const net = new Sequential([
    new Linear(4, 6, { random: rng }),
    new BatchNorm2d(6),
    new ReLU(),
    new Linear(6, 3, { random: rng }),
  ]);
  assert.deepEqual(net.parameters().map((p) => p.name), [
    "0.weight",
    "0.bias",
    "1.weight",
    "1.bias",
    "3.weight",
    "3.bias",
  ]);
  assert.deepEqual(net.stateTensors().map((s) => s.name), ["1.running_mean", "1.running_var"]);
  assert.deepEqual(countersOf(net).map((c) => c.name), ["1.num_batches_tracked"]);
  assert.equal(parameterCount(net), 30 + 12 + 21);
  const x = tensor(gaussian(8 * 4, 7), [8, 4]);
  const params = net.parameters();
  checkGradients(net, x, gaussian(8 * 3, 8), (dx) => [
    { name: "dx", value: x, analytic: dx },
    ...params.map((p) => ({
      name: p.name,
      value: p.value,
      analytic: (p.grad.toArray() as Float32Array).slice(),
    })),
  ], { eps: 1e-3, rtol: 1e-2, samples: 12 });
  const named = new Sequential([["a", new ReLU()], ["b", new Linear(2, 2)]]);
  assert.deepEqual(named.parameters().map((p) => p.name), ["b.weight", "b.bias"]);
  assert.throws(() => new Sequential([]), /non-empty array/);
  assert.throws(
    () => new Sequential([["a", new ReLU()], ["a", new ReLU()]]),
    /repeats the name "a"/,
  );
  net.dispose();
  named.dispose();
});

Deno.test("layers default to the shared CPU device", () => {
  assert.equal(new ReLU().device, cpuDevice());
  assert.equal(new Conv2d(1, 1, 1).device, cpuDevice());
});

Deno.test("an allocation that cannot be had names the layer, the shape and the size", () => {
  // Padding 40000 around a 1×1 input asks for a [1, 4, 80001, 80001] output: 95 GiB.
  const conv = new Conv2d(1, 4, 1, { padding: 40000 });
  const x = zeros([1, 1, 1, 1]);
  assert.throws(
    () => conv.forward(x, false),
    /^RangeError: Conv2d\.forward: y \[1, 4, 80001, 80001\]: cannot allocate 25600640004 f32 elements \(95\.4 GiB\) on the CPU device/,
  );
  assert.throws(
    () => cpuDevice().alloc("f32", 2 ** 40),
    /cannot allocate 1099511627776 f32 elements \(4\.0 TiB\) on the CPU device/,
  );
  x.dispose();
  conv.dispose();
});
