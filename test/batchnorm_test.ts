// CPU batch-norm kernels against float64 loops (PyTorch semantics) and central differences.

import assert from "node:assert/strict";
import type { BatchNormShape } from "../src/device/device.ts";
import {
  batchNormBackward,
  batchNormForwardInference,
  batchNormForwardTraining,
} from "../src/device/cpu/batchnorm.ts";
import { cpuDevice } from "../src/device/cpu.ts";

/** Deterministic uniform values in [lo, hi). */
function random(len: number, seed: number, lo = -1, hi = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(len);
  for (let i = 0; i < len; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = lo + (((t ^ (t >>> 14)) >>> 0) / 4294967296) * (hi - lo);
  }
  return out;
}

const at = (s: BatchNormShape, b: number, c: number, i: number) => (b * s.c + c) * s.hw + i;

interface Stats {
  mean: Float64Array;
  /** Biased variance. */
  variance: Float64Array;
}

/** Two-pass float64 statistics per channel. */
function refStats(x: ArrayLike<number>, s: BatchNormShape): Stats {
  const mean = new Float64Array(s.c), variance = new Float64Array(s.c), m = s.n * s.hw;
  for (let c = 0; c < s.c; c++) {
    let sum = 0;
    for (let b = 0; b < s.n; b++) for (let i = 0; i < s.hw; i++) sum += x[at(s, b, c, i)];
    mean[c] = sum / m;
    let sq = 0;
    for (let b = 0; b < s.n; b++) {
      for (let i = 0; i < s.hw; i++) sq += (x[at(s, b, c, i)] - mean[c]) ** 2;
    }
    variance[c] = sq / m;
  }
  return { mean, variance };
}

/** Float64 training forward. */
function refForward(
  x: ArrayLike<number>,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  s: BatchNormShape,
  eps: number,
): Float64Array {
  const { mean, variance } = refStats(x, s);
  const y = new Float64Array(s.n * s.c * s.hw);
  for (let b = 0; b < s.n; b++) {
    for (let c = 0; c < s.c; c++) {
      const inv = 1 / Math.sqrt(variance[c] + eps);
      for (let i = 0; i < s.hw; i++) {
        const k = at(s, b, c, i);
        y[k] = gamma[c] * (x[k] - mean[c]) * inv + beta[c];
      }
    }
  }
  return y;
}

/** Float64 backward from the closed form. */
function refBackward(
  x: Float32Array,
  dy: Float32Array,
  gamma: Float32Array,
  s: BatchNormShape,
  eps: number,
): { dx: Float64Array; dGamma: Float64Array; dBeta: Float64Array } {
  const { mean, variance } = refStats(x, s);
  const m = s.n * s.hw;
  const dx = new Float64Array(x.length), dGamma = new Float64Array(s.c);
  const dBeta = new Float64Array(s.c);
  for (let c = 0; c < s.c; c++) {
    const inv = 1 / Math.sqrt(variance[c] + eps);
    for (let b = 0; b < s.n; b++) {
      for (let i = 0; i < s.hw; i++) {
        const k = at(s, b, c, i);
        dBeta[c] += dy[k];
        dGamma[c] += dy[k] * (x[k] - mean[c]) * inv;
      }
    }
    for (let b = 0; b < s.n; b++) {
      for (let i = 0; i < s.hw; i++) {
        const k = at(s, b, c, i);
        const xhat = (x[k] - mean[c]) * inv;
        dx[k] = gamma[c] * inv * (dy[k] - dBeta[c] / m - xhat * dGamma[c] / m);
      }
    }
  }
  return { dx, dGamma, dBeta };
}

function assertClose(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  rtol: number,
  what: string,
): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    if (!(err <= rtol * (1 + Math.abs(want[i])))) {
      assert.fail(`${what}[${i}]: got ${got[i]}, expected ${want[i]} (error ${err})`);
    }
  }
}

interface Params {
  gamma: Float32Array;
  beta: Float32Array;
  runningMean: Float32Array;
  runningVar: Float32Array;
}

function params(c: number, seed: number): Params {
  return {
    gamma: random(c, seed, 0.5, 1.5),
    beta: random(c, seed + 1, -0.5, 0.5),
    runningMean: random(c, seed + 2, -0.2, 0.2),
    runningVar: random(c, seed + 3, 0.5, 2),
  };
}

const shapes: [string, BatchNormShape][] = [
  ["planes (hw 16)", { n: 4, c: 3, hw: 16 }],
  ["odd planes (hw 9)", { n: 3, c: 5, hw: 9 }],
  ["small planes (hw 3)", { n: 5, c: 4, hw: 3 }],
  ["[N, C] features (hw 1)", { n: 7, c: 6, hw: 1 }],
  ["a single sample (n 1)", { n: 1, c: 2, hw: 25 }],
  ["ResNet-like (8 x 16 x 64)", { n: 8, c: 16, hw: 64 }],
];

/** Runs the training forward (momentum 0.1) and returns the saved statistics backward needs. */
function trainingStatistics(
  x: Float32Array,
  p: ReturnType<typeof params>,
  s: BatchNormShape,
  eps: number,
): { saveMean: Float32Array; saveInvStd: Float32Array } {
  const saveMean = new Float32Array(s.c), saveInvStd = new Float32Array(s.c);
  const y = new Float32Array(x.length);
  batchNormForwardTraining(
    x,
    y,
    p.gamma,
    p.beta,
    p.runningMean,
    p.runningVar,
    saveMean,
    saveInvStd,
    s,
    0.1,
    eps,
  );
  return { saveMean, saveInvStd };
}

for (const [name, s] of shapes) {
  Deno.test(`batchNorm ${name}: training forward matches float64 with PyTorch running stats`, () => {
    const len = s.n * s.c * s.hw, m = s.n * s.hw;
    const x = random(len, 1, -2, 3);
    const p = params(s.c, 10);
    const rm0 = Float64Array.from(p.runningMean), rv0 = Float64Array.from(p.runningVar);
    const y = new Float32Array(len).fill(NaN);
    const saveMean = new Float32Array(s.c).fill(NaN), saveInvStd = new Float32Array(s.c).fill(NaN);
    const momentum = 0.1, eps = 1e-5;
    batchNormForwardTraining(
      x,
      y,
      p.gamma,
      p.beta,
      p.runningMean,
      p.runningVar,
      saveMean,
      saveInvStd,
      s,
      momentum,
      eps,
    );
    const { mean, variance } = refStats(x, s);
    assertClose(y, refForward(x, p.gamma, p.beta, s, eps), 1e-6, "y");
    assertClose(saveMean, mean, 1e-6, "saveMean");
    assertClose(saveInvStd, variance.map((v) => 1 / Math.sqrt(v + eps)), 1e-6, "saveInvStd");
    assertClose(p.runningMean, rm0.map((r, c) => 0.9 * r + 0.1 * mean[c]), 1e-6, "runningMean");
    assertClose(
      p.runningVar,
      rv0.map((r, c) => 0.9 * r + 0.1 * variance[c] * m / (m - 1)),
      1e-6,
      "runningVar (unbiased)",
    );
  });

  Deno.test(`batchNorm ${name}: inference uses the running statistics`, () => {
    const len = s.n * s.c * s.hw;
    const x = random(len, 2, -2, 3);
    const p = params(s.c, 20);
    const y = new Float32Array(len).fill(NaN);
    const eps = 1e-3;
    batchNormForwardInference(x, y, p.gamma, p.beta, p.runningMean, p.runningVar, s, eps);
    const want = new Float64Array(len);
    for (let b = 0; b < s.n; b++) {
      for (let c = 0; c < s.c; c++) {
        for (let i = 0; i < s.hw; i++) {
          const k = at(s, b, c, i);
          want[k] = p.gamma[c] * (x[k] - p.runningMean[c]) / Math.sqrt(p.runningVar[c] + eps) +
            p.beta[c];
        }
      }
    }
    assertClose(y, want, 1e-6, "y");
  });

  Deno.test(`batchNorm ${name}: backward matches the float64 closed form`, () => {
    const len = s.n * s.c * s.hw;
    const x = random(len, 3, -2, 3), dy = random(len, 4);
    const p = params(s.c, 30);
    const eps = 1e-5;
    const { saveMean, saveInvStd } = trainingStatistics(x, p, s, eps);
    const dx = new Float32Array(len).fill(NaN);
    const dGamma = new Float32Array(s.c).fill(NaN), dBeta = new Float32Array(s.c).fill(NaN);
    batchNormBackward(x, dy, dx, p.gamma, dGamma, dBeta, saveMean, saveInvStd, s);
    const ref = refBackward(x, dy, p.gamma, s, eps);
    assertClose(dx, ref.dx, 1e-5, "dx");
    assertClose(dGamma, ref.dGamma, 1e-5, "dGamma");
    assertClose(dBeta, ref.dBeta, 1e-5, "dBeta");
  });
}

const tiny: [string, BatchNormShape][] = [
  ["planes", { n: 2, c: 2, hw: 9 }],
  ["small planes", { n: 3, c: 2, hw: 2 }],
  ["[N, C]", { n: 4, c: 3, hw: 1 }],
];

for (const [name, s] of tiny) {
  Deno.test(`batchNorm ${name}: backward matches central differences of Σ y·dy`, () => {
    const len = s.n * s.c * s.hw;
    const x = random(len, 5, -2, 2), dy = random(len, 6);
    const p = params(s.c, 40);
    const eps = 1e-5;
    const { saveMean, saveInvStd } = trainingStatistics(x, p, s, eps);
    const dx = new Float32Array(len), dGamma = new Float32Array(s.c), dBeta = new Float32Array(s.c);
    batchNormBackward(x, dy, dx, p.gamma, dGamma, dBeta, saveMean, saveInvStd, s);

    const x64 = Float64Array.from(x), g64 = Float64Array.from(p.gamma);
    const b64 = Float64Array.from(p.beta);
    const loss = () => {
      const out = refForward(x64, g64, b64, s, eps);
      let sum = 0;
      for (let i = 0; i < len; i++) sum += out[i] * dy[i];
      return sum;
    };
    const h = 1e-4;
    for (
      const [param, grad, label] of [[x64, dx, "dx"], [g64, dGamma, "dGamma"], [
        b64,
        dBeta,
        "dBeta",
      ]] as const
    ) {
      for (let i = 0; i < param.length; i++) {
        const keep = param[i];
        param[i] = keep + h;
        const up = loss();
        param[i] = keep - h;
        const down = loss();
        param[i] = keep;
        const fd = (up - down) / (2 * h);
        assert.ok(
          Math.abs(fd - grad[i]) <= 1e-5 * (1 + Math.abs(fd)),
          `${label}[${i}]: finite difference ${fd}, kernel ${grad[i]}`,
        );
      }
    }
  });
}

Deno.test("batchNorm statistics stay accurate for a large mean", () => {
  const s = { n: 16, c: 2, hw: 64 }, len = s.n * s.c * s.hw;
  const x = random(len, 7, -0.01, 0.01).map((v, i) => v + (i % 128 < 64 ? 1000 : -300));
  const p = params(s.c, 50);
  const y = new Float32Array(len), saveMean = new Float32Array(s.c);
  const saveInvStd = new Float32Array(s.c);
  batchNormForwardTraining(
    x,
    y,
    p.gamma,
    p.beta,
    p.runningMean,
    p.runningVar,
    saveMean,
    saveInvStd,
    s,
    0.1,
    0,
  );
  const { mean, variance } = refStats(x, s);
  assertClose(saveMean, mean, 1e-6, "saveMean");
  assertClose(saveInvStd, variance.map((v) => 1 / Math.sqrt(v)), 1e-5, "saveInvStd");
  assertClose(y, refForward(x, p.gamma, p.beta, s, 0), 1e-5, "y");
});

Deno.test("batchNorm runs in place (y = x, dx = dy)", () => {
  const s = { n: 3, c: 4, hw: 10 }, len = s.n * s.c * s.hw;
  const x = random(len, 8), dy = random(len, 9);
  const p = params(s.c, 60), q = params(s.c, 60);
  const y = new Float32Array(len), m1 = new Float32Array(s.c), i1 = new Float32Array(s.c);
  batchNormForwardTraining(
    x,
    y,
    p.gamma,
    p.beta,
    p.runningMean,
    p.runningVar,
    m1,
    i1,
    s,
    0.1,
    1e-5,
  );
  const xy = x.slice(), m2 = new Float32Array(s.c), i2 = new Float32Array(s.c);
  batchNormForwardTraining(
    xy,
    xy,
    q.gamma,
    q.beta,
    q.runningMean,
    q.runningVar,
    m2,
    i2,
    s,
    0.1,
    1e-5,
  );
  assert.deepEqual(xy, y);
  const dx = new Float32Array(len), dg = new Float32Array(s.c), db = new Float32Array(s.c);
  batchNormBackward(x, dy, dx, p.gamma, dg, db, m1, i1, s);
  const d2 = dy.slice(), dg2 = new Float32Array(s.c), db2 = new Float32Array(s.c);
  batchNormBackward(x, d2, d2, p.gamma, dg2, db2, m1, i1, s);
  assert.deepEqual(d2, dx);
  assert.deepEqual(dg2, dg);
  assert.deepEqual(db2, db);
});

Deno.test("batchNorm through the CPU device matches the kernels", () => {
  const s = { n: 2, c: 3, hw: 12 }, len = s.n * s.c * s.hw;
  const dev = cpuDevice();
  const host = {
    x: random(len, 11),
    dy: random(len, 12),
    ...params(s.c, 70),
  };
  const buf = (data: Float32Array) => {
    const b = dev.alloc("f32", data.length);
    dev.upload(b, data);
    return b;
  };
  const x = buf(host.x), dy = buf(host.dy), gamma = buf(host.gamma), beta = buf(host.beta);
  const rm = buf(host.runningMean), rv = buf(host.runningVar);
  const y = dev.alloc("f32", len), dx = dev.alloc("f32", len), yi = dev.alloc("f32", len);
  const mean = dev.alloc("f32", s.c), inv = dev.alloc("f32", s.c);
  const dg = dev.alloc("f32", s.c), db = dev.alloc("f32", s.c);
  dev.batchNormForwardTraining(x, y, gamma, beta, rm, rv, mean, inv, s, 0.1, 1e-5);
  dev.batchNormBackward(x, dy, dx, gamma, dg, db, mean, inv, s);
  dev.batchNormForwardInference(x, yi, gamma, beta, rm, rv, s, 1e-5);
  const read = (b: typeof x) => {
    const out = new Float32Array(b.length);
    dev.download(b, out);
    return out;
  };
  assertClose(read(y), refForward(host.x, host.gamma, host.beta, s, 1e-5), 1e-6, "y");
  const ref = refBackward(host.x, host.dy, host.gamma, s, 1e-5);
  assertClose(read(dx), ref.dx, 1e-5, "dx");
  assertClose(read(dg), ref.dGamma, 1e-5, "dGamma");
  assertClose(read(db), ref.dBeta, 1e-5, "dBeta");
  const rmNow = read(rm), rvNow = read(rv), yInf = read(yi);
  for (let k = 0; k < len; k++) {
    const c = Math.floor(k / s.hw) % s.c;
    const want = host.gamma[c] * (host.x[k] - rmNow[c]) / Math.sqrt(rvNow[c] + 1e-5) +
      host.beta[c];
    assert.ok(Math.abs(yInf[k] - want) <= 1e-6 * (1 + Math.abs(want)), `inference y[${k}]`);
  }
  for (const b of [x, dy, gamma, beta, rm, rv, y, dx, yi, mean, inv, dg, db]) dev.free(b);
});

Deno.test("batchNorm rejects mismatched buffers and bad scalars", () => {
  const s = { n: 2, c: 3, hw: 4 }, len = 24;
  const f = (k: number) => new Float32Array(k);
  const train = (over: Record<string, Float32Array>, momentum = 0.1, eps = 1e-5) => {
    const a = {
      x: f(len),
      y: f(len),
      gamma: f(3),
      beta: f(3),
      rm: f(3),
      rv: f(3),
      sm: f(3),
      si: f(3),
      ...over,
    };
    batchNormForwardTraining(a.x, a.y, a.gamma, a.beta, a.rm, a.rv, a.sm, a.si, s, momentum, eps);
  };
  assert.throws(() => train({ x: f(23) }), {
    name: "RangeError",
    message: /batchNormForwardTraining: x must hold n·c·hw = 24 elements, got 23/,
  });
  assert.throws(() => train({ rv: f(4) }), {
    name: "RangeError",
    message: /runningVar must hold c = 3 elements, got 4/,
  });
  assert.throws(() => train({}, 1.5), { name: "RangeError", message: /momentum .* got 1\.5/ });
  assert.throws(() => train({}, 0.1, -1), { name: "RangeError", message: /eps .* got -1/ });
  assert.throws(
    () =>
      batchNormForwardTraining(
        f(3),
        f(3),
        f(3),
        f(3),
        f(3),
        f(3),
        f(3),
        f(3),
        { n: 1, c: 3, hw: 1 },
        0.1,
        1e-5,
      ),
    { name: "RangeError", message: /at least 2 values per channel, got n·hw = 1/ },
  );
  assert.throws(
    () => batchNormForwardInference(f(len), f(len), f(3), f(2), f(3), f(3), s, 1e-5),
    {
      name: "RangeError",
      message: /batchNormForwardInference: beta must hold c = 3 elements, got 2/,
    },
  );
  assert.throws(
    () => batchNormBackward(f(len), f(len), f(25), f(3), f(3), f(3), f(3), f(3), s),
    { name: "RangeError", message: /batchNormBackward: dx must hold n·c·hw = 24 elements, got 25/ },
  );
  assert.throws(
    () =>
      batchNormBackward(f(len), f(len), f(len), f(3), f(3), f(3), f(3), f(3), {
        n: 2,
        c: 0,
        hw: 4,
      }),
    { name: "RangeError", message: /shape\.c must be an integer >= 1, got 0/ },
  );
});
