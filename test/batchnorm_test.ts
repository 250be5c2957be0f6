// CPU batch-norm kernels against float64 loops (PyTorch semantics) and central differences, on
// the native and the TypeScript kernels side by side in this process.

import assert from "node:assert/strict";
import type { BatchNormShape } from "../src/device/device.ts";
import * as bn from "../src/device/cpu/batchnorm.ts";
import type { CpuBackend } from "../src/device/cpu/backend.ts";
import { sgemmTypeScript } from "../src/device/cpu/gemm.ts";
import { cpuKernels } from "../ffi/cpu_kernels.ts";
import { CpuDevice } from "../src/device/cpu.ts";

/** The TypeScript kernels and, where they build, the native ones. */
function backends(): [string, CpuBackend][] {
  const out: [string, CpuBackend][] = [["typescript", { native: null, gemm: sgemmTypeScript }]];
  try {
    out.unshift(["native", { native: cpuKernels("native"), gemm: sgemmTypeScript }]);
  } catch (e) {
    console.log(`batchnorm_test.ts: native kernels skipped: ${(e as Error).message}`);
  }
  return out;
}
const BACKENDS = backends();

/** The geometry part of a shape: n, c and hw. */
type Geometry = Pick<BatchNormShape, "n" | "c" | "hw">;

/** A full shape record: the geometry with eps and momentum, no ReLU. */
function full(g: Geometry, eps: number, momentum = 0.1): BatchNormShape {
  return { ...g, eps, momentum, relu: false };
}

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

const at = (s: Geometry, b: number, c: number, i: number) => (b * s.c + c) * s.hw + i;

interface Stats {
  mean: Float64Array;
  /** Biased variance. */
  variance: Float64Array;
}

/** Two-pass float64 statistics per channel. */
function refStats(x: ArrayLike<number>, s: Geometry): Stats {
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
  s: Geometry,
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
  s: Geometry,
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

const shapes: [string, Geometry][] = [
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
  s: Geometry,
  eps: number,
  k: CpuBackend,
): { saveMean: Float32Array; saveInvStd: Float32Array } {
  const saveMean = new Float32Array(s.c), saveInvStd = new Float32Array(s.c);
  const y = new Float32Array(x.length);
  bn.batchNormForwardTraining(
    x,
    y,
    p.gamma,
    p.beta,
    p.runningMean,
    p.runningVar,
    saveMean,
    saveInvStd,
    full(s, eps),
    undefined,
    k,
  );
  return { saveMean, saveInvStd };
}

/** Runs the plain backward (no ReLU tail; y is not read). */
function backward(
  x: Float32Array,
  dy: Float32Array,
  dx: Float32Array,
  gamma: Float32Array,
  dGamma: Float32Array,
  dBeta: Float32Array,
  saveMean: Float32Array,
  saveInvStd: Float32Array,
  s: Geometry,
  k: CpuBackend,
): void {
  const shape = full(s, 1e-5);
  bn.batchNormBackward(
    x,
    x,
    dy,
    dx,
    gamma,
    dGamma,
    dBeta,
    saveMean,
    saveInvStd,
    shape,
    undefined,
    k,
  );
}

for (const [name, s] of shapes) {
  for (const [kernels, k] of BACKENDS) {
    Deno.test(`batchNorm ${name}, ${kernels}: training forward matches float64 with PyTorch running stats`, () => {
      const len = s.n * s.c * s.hw, m = s.n * s.hw;
      const x = random(len, 1, -2, 3);
      const p = params(s.c, 10);
      const rm0 = Float64Array.from(p.runningMean), rv0 = Float64Array.from(p.runningVar);
      const y = new Float32Array(len).fill(NaN);
      const saveMean = new Float32Array(s.c).fill(NaN),
        saveInvStd = new Float32Array(s.c).fill(NaN);
      const momentum = 0.1, eps = 1e-5;
      bn.batchNormForwardTraining(
        x,
        y,
        p.gamma,
        p.beta,
        p.runningMean,
        p.runningVar,
        saveMean,
        saveInvStd,
        full(s, eps, momentum),
        undefined,
        k,
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

    Deno.test(`batchNorm ${name}, ${kernels}: inference uses the running statistics`, () => {
      const len = s.n * s.c * s.hw;
      const x = random(len, 2, -2, 3);
      const p = params(s.c, 20);
      const y = new Float32Array(len).fill(NaN);
      const eps = 1e-3;
      const { gamma, beta, runningMean, runningVar } = p;
      bn.batchNormForwardInference(
        x,
        y,
        gamma,
        beta,
        runningMean,
        runningVar,
        full(s, eps),
        undefined,
        k,
      );
      const want = new Float64Array(len);
      for (let b = 0; b < s.n; b++) {
        for (let c = 0; c < s.c; c++) {
          for (let i = 0; i < s.hw; i++) {
            const q = at(s, b, c, i);
            want[q] = gamma[c] * (x[q] - runningMean[c]) / Math.sqrt(runningVar[c] + eps) + beta[c];
          }
        }
      }
      assertClose(y, want, 1e-6, "y");
    });

    Deno.test(`batchNorm ${name}, ${kernels}: backward matches the float64 closed form`, () => {
      const len = s.n * s.c * s.hw;
      const x = random(len, 3, -2, 3), dy = random(len, 4);
      const p = params(s.c, 30);
      const eps = 1e-5;
      const { saveMean, saveInvStd } = trainingStatistics(x, p, s, eps, k);
      const dx = new Float32Array(len).fill(NaN);
      const dGamma = new Float32Array(s.c).fill(NaN), dBeta = new Float32Array(s.c).fill(NaN);
      backward(x, dy, dx, p.gamma, dGamma, dBeta, saveMean, saveInvStd, s, k);
      const ref = refBackward(x, dy, p.gamma, s, eps);
      assertClose(dx, ref.dx, 1e-5, "dx");
      assertClose(dGamma, ref.dGamma, 1e-5, "dGamma");
      assertClose(dBeta, ref.dBeta, 1e-5, "dBeta");
    });
  }
}

const tiny: [string, Geometry][] = [
  ["planes", { n: 2, c: 2, hw: 9 }],
  ["small planes", { n: 3, c: 2, hw: 2 }],
  ["[N, C]", { n: 4, c: 3, hw: 1 }],
];

for (const [name, s] of tiny) {
  for (const [kernels, k] of BACKENDS) {
    Deno.test(`batchNorm ${name}, ${kernels}: backward matches central differences of Σ y·dy`, () => {
      const len = s.n * s.c * s.hw;
      const x = random(len, 5, -2, 2), dy = random(len, 6);
      const p = params(s.c, 40);
      const eps = 1e-5;
      const { saveMean, saveInvStd } = trainingStatistics(x, p, s, eps, k);
      const dx = new Float32Array(len),
        dGamma = new Float32Array(s.c),
        dBeta = new Float32Array(s.c);
      backward(x, dy, dx, p.gamma, dGamma, dBeta, saveMean, saveInvStd, s, k);

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
}

for (const [kernels, k] of BACKENDS) {
  Deno.test(`batchNorm statistics stay accurate for a large mean (${kernels})`, () => {
    const s = { n: 16, c: 2, hw: 64 }, len = s.n * s.c * s.hw;
    const x = random(len, 7, -0.01, 0.01).map((v, i) => v + (i % 128 < 64 ? 1000 : -300));
    const p = params(s.c, 50);
    const y = new Float32Array(len), saveMean = new Float32Array(s.c);
    const saveInvStd = new Float32Array(s.c);
    bn.batchNormForwardTraining(
      x,
      y,
      p.gamma,
      p.beta,
      p.runningMean,
      p.runningVar,
      saveMean,
      saveInvStd,
      // eps 0 is below what the device accepts; the kernel computes with it all the same.
      full(s, 0),
      undefined,
      k,
    );
    const { mean, variance } = refStats(x, s);
    assertClose(saveMean, mean, 1e-6, "saveMean");
    assertClose(saveInvStd, variance.map((v) => 1 / Math.sqrt(v)), 1e-5, "saveInvStd");
    assertClose(y, refForward(x, p.gamma, p.beta, s, 0), 1e-5, "y");
  });

  Deno.test(`batchNorm kernels run in place (y = x, dx = dy) (${kernels})`, () => {
    const s = { n: 3, c: 4, hw: 10 }, len = s.n * s.c * s.hw, shape = full(s, 1e-5);
    const x = random(len, 8), dy = random(len, 9);
    const p = params(s.c, 60), q = params(s.c, 60);
    const y = new Float32Array(len), m1 = new Float32Array(s.c), i1 = new Float32Array(s.c);
    bn.batchNormForwardTraining(
      x,
      y,
      p.gamma,
      p.beta,
      p.runningMean,
      p.runningVar,
      m1,
      i1,
      shape,
      undefined,
      k,
    );
    const xy = x.slice(), m2 = new Float32Array(s.c), i2 = new Float32Array(s.c);
    bn.batchNormForwardTraining(
      xy,
      xy,
      q.gamma,
      q.beta,
      q.runningMean,
      q.runningVar,
      m2,
      i2,
      shape,
      undefined,
      k,
    );
    assert.deepEqual(xy, y);
    const dx = new Float32Array(len), dg = new Float32Array(s.c), db = new Float32Array(s.c);
    backward(x, dy, dx, p.gamma, dg, db, m1, i1, s, k);
    const d2 = dy.slice(), dg2 = new Float32Array(s.c), db2 = new Float32Array(s.c);
    backward(x, d2, d2, p.gamma, dg2, db2, m1, i1, s, k);
    assert.deepEqual(d2, dx);
    assert.deepEqual(dg2, dg);
    assert.deepEqual(db2, db);
  });
}

/** Both kernel variants as devices. */
function devices(): [string, CpuDevice][] {
  return BACKENDS.map(([name]) => [name, new CpuDevice({ kernels: name as "native" })]);
}

Deno.test("batchNorm through the CPU devices (native and TypeScript) matches float64", () => {
  const g = { n: 2, c: 3, hw: 12 }, len = g.n * g.c * g.hw, s = full(g, 1e-5);
  const host = {
    x: random(len, 11),
    dy: random(len, 12),
    ...params(g.c, 70),
  };
  for (const [kernels, dev] of devices()) {
    assert.match(dev.description, new RegExp(`kernels: ${kernels}`));
    const buf = (data: Float32Array) => {
      const b = dev.alloc("f32", data.length);
      dev.upload(b, data);
      return b;
    };
    const x = buf(host.x), dy = buf(host.dy);
    const params = {
      gamma: buf(host.gamma),
      beta: buf(host.beta),
      runningMean: buf(host.runningMean),
      runningVar: buf(host.runningVar),
      saveMean: dev.alloc("f32", g.c),
      saveInvStd: dev.alloc("f32", g.c),
    };
    const y = dev.alloc("f32", len), yi = dev.alloc("f32", len);
    const grads = {
      dx: dev.alloc("f32", len),
      dGamma: dev.alloc("f32", g.c),
      dBeta: dev.alloc("f32", g.c),
    };
    dev.batchNormForwardTraining(x, y, params, s);
    dev.batchNormBackward(x, y, dy, grads, params, s);
    dev.batchNormForwardInference(x, yi, params, s);
    const read = (b: typeof x) => {
      const out = new Float32Array(b.length);
      dev.download(b, out);
      return out;
    };
    assertClose(read(y), refForward(host.x, host.gamma, host.beta, g, 1e-5), 1e-6, `${kernels}: y`);
    const ref = refBackward(host.x, host.dy, host.gamma, g, 1e-5);
    assertClose(read(grads.dx), ref.dx, 1e-5, `${kernels}: dx`);
    assertClose(read(grads.dGamma), ref.dGamma, 1e-5, `${kernels}: dGamma`);
    assertClose(read(grads.dBeta), ref.dBeta, 1e-5, `${kernels}: dBeta`);
    const rmNow = read(params.runningMean), rvNow = read(params.runningVar), yInf = read(yi);
    for (let q = 0; q < len; q++) {
      const c = Math.floor(q / g.hw) % g.c;
      const want = host.gamma[c] * (host.x[q] - rmNow[c]) / Math.sqrt(rvNow[c] + 1e-5) +
        host.beta[c];
      assert.ok(
        Math.abs(yInf[q] - want) <= 1e-6 * (1 + Math.abs(want)),
        `${kernels}: inference y[${q}]`,
      );
    }
    for (const b of [x, dy, y, yi, ...Object.values(params), ...Object.values(grads)]) dev.free(b);
  }
});

Deno.test("batchNorm on the CPU device rejects mismatched buffers and bad scalars", () => {
  const dev = new CpuDevice({ kernels: "typescript" });
  const g = { n: 2, c: 3, hw: 4 }, len = 24;
  const f = (k: number) => dev.alloc("f32", k);
  const params = (over: Record<string, unknown> = {}) =>
    ({
      gamma: f(3),
      beta: f(3),
      runningMean: f(3),
      runningVar: f(3),
      saveMean: f(3),
      saveInvStd: f(3),
      ...over,
    }) as Parameters<typeof dev.batchNormForwardTraining>[2];
  const train = (x = f(len), p = params(), s = full(g, 1e-5)) =>
    dev.batchNormForwardTraining(x, f(len), p, s);
  assert.throws(() => train(f(23)), {
    name: "RangeError",
    message: "batchNormForwardTraining: x must hold at least 24 elements, got 23",
  });
  assert.throws(() => train(f(len), params({ runningVar: f(2) })), {
    name: "RangeError",
    message: "batchNormForwardTraining: params.runningVar must hold at least 3 elements, got 2",
  });
  assert.throws(() => train(f(len), params(), full(g, 1e-5, 1.5)), {
    name: "RangeError",
    message: /shape\.momentum must be a finite number in \[0, 1\], got 1\.5/,
  });
  assert.throws(() => train(f(len), params(), full(g, -1)), {
    name: "RangeError",
    message: /shape\.eps must be a finite number in .*, got -1/,
  });
  assert.throws(() => train(f(3), params(), full({ n: 1, c: 3, hw: 1 }, 1e-5)), {
    name: "RangeError",
    message: /at least 2 values per channel, got n·hw = 1/,
  });
  assert.throws(
    () => dev.batchNormForwardInference(f(len), f(len), params({ beta: f(2) }), full(g, 1e-5)),
    {
      name: "RangeError",
      message: "batchNormForwardInference: params.beta must hold at least 3 elements, got 2",
    },
  );
  const grads = (over: Record<string, unknown> = {}) =>
    ({
      dx: f(len),
      dGamma: f(3),
      dBeta: f(3),
      ...over,
    }) as Parameters<typeof dev.batchNormBackward>[3];
  assert.throws(
    () =>
      dev.batchNormBackward(f(len), f(len), f(len), grads({ dx: f(23) }), params(), full(g, 1e-5)),
    {
      name: "RangeError",
      message: "batchNormBackward: grads.dx must hold at least 24 elements, got 23",
    },
  );
  assert.throws(
    () =>
      dev.batchNormBackward(f(len), f(len), f(len), grads(), params(), full({ ...g, c: 0 }, 1e-5)),
    { name: "RangeError", message: /shape\.c must be an integer in \[1, \d+\], got 0/ },
  );
  const dy = f(len);
  assert.throws(
    () => dev.batchNormBackward(f(len), f(len), dy, grads({ dx: dy }), params(), full(g, 1e-5)),
    {
      name: "RangeError",
      message: "batchNormBackward: grads.dx must not be the same buffer as dy",
    },
  );
});
