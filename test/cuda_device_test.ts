// The CUDA device's memory, launcher, error and lifetime behaviour. Without a GPU, the failure
// paths run for real (missing library / no device, the CPU fallback); with one, everything else.

import assert from "node:assert/strict";
import { LibraryNotFoundError } from "../ffi/discovery.ts";
import { CudaError } from "../ffi/cuda.ts";
import { CudaBuffer, CudaDevice, launchKernel } from "../src/device/cuda.ts";
import { autoDevice, chooseDevice, cudaAvailable } from "../src/device/auto.ts";
import { cpuDevice } from "../src/device/cpu.ts";
import type { Conv2dShape } from "../src/device/device.ts";
import { gpu, reportSkip, Rng } from "./cuda_fixtures.ts";

reportSkip("cuda_device_test.ts");

function thrown<T extends Error>(fn: () => unknown, cls: new (...args: never[]) => T): T {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${e}`);
    return e;
  }
  assert.fail(`expected ${cls.name} to be thrown`);
}

async function withEnv(
  name: string,
  value: string | undefined,
  fn: () => Promise<void>,
): Promise<void> {
  const before = Deno.env.get(name);
  if (value === undefined) Deno.env.delete(name);
  else Deno.env.set(name, value);
  try {
    await fn();
  } finally {
    if (before === undefined) Deno.env.delete(name);
    else Deno.env.set(name, before);
  }
}

// ── without a GPU ────────────────────────────────────────────────────────────────────────────

Deno.test({
  name: "no GPU: opening the device fails with the missing-library or no-device error",
  ignore: gpu,
  fn() {
    let err: unknown;
    try {
      new CudaDevice().dispose();
    } catch (e) {
      err = e;
    }
    assert.ok(err !== undefined, "the device must not open without a GPU");
    if (err instanceof LibraryNotFoundError) {
      assert.match(err.message, /could not be loaded\. Looked in:/);
      assert.match(err.message, /Set EQL_(CUDA_DRIVER|CUBLAS|CUDNN)_PATH/);
    } else {
      assert.ok(err instanceof CudaError, `unexpected ${err}`);
      assert.equal(err.code, 100);
      assert.equal(err.errorName, "CUDA_ERROR_NO_DEVICE");
    }
  },
});

Deno.test({
  name: "no GPU: cudaAvailable says why, and the automatic choice is the CPU",
  ignore: gpu,
  async fn() {
    const a = cudaAvailable();
    assert.equal(a.ok, false);
    assert.ok(a.reason.length > 0);
    assert.equal(cudaAvailable(), a, "the answer is cached");
    await withEnv("EQL_DEVICE", undefined, async () => {
      const choice = await chooseDevice();
      assert.equal(choice.device.kind, "cpu");
      assert.match(choice.reason, /^CUDA not used: /);
      assert.equal(await autoDevice(), cpuDevice());
    });
  },
});

Deno.test({
  name: "no GPU: EQL_DEVICE=cuda reports the failure instead of falling back",
  ignore: gpu,
  async fn() {
    await withEnv("EQL_DEVICE", "cuda", async () => {
      await assert.rejects(
        () => chooseDevice(),
        (e) => e instanceof LibraryNotFoundError || e instanceof CudaError,
      );
    });
  },
});

Deno.test("EQL_DEVICE=cpu forces the CPU; other values are rejected", async () => {
  await withEnv("EQL_DEVICE", "cpu", async () => {
    const c = await chooseDevice();
    assert.equal(c.device.kind, "cpu");
    assert.equal(c.reason, "EQL_DEVICE=cpu");
  });
  await withEnv("EQL_DEVICE", "tpu", async () => {
    await assert.rejects(() => chooseDevice(), RangeError);
  });
});

// ── with a GPU ───────────────────────────────────────────────────────────────────────────────

let shared: CudaDevice | undefined;
function dev(): CudaDevice {
  return shared ??= new CudaDevice();
}

const conv: Conv2dShape = {
  n: 4,
  cIn: 8,
  h: 12,
  w: 12,
  cOut: 16,
  kH: 3,
  kW: 3,
  strideH: 2,
  strideW: 2,
  padH: 1,
  padW: 1,
  outH: 6,
  outW: 6,
};

Deno.test({
  name: "GPU: description, memory information and the kind",
  ignore: !gpu,
  fn() {
    const d = dev();
    assert.equal(d.kind, "cuda");
    assert.match(
      d.description,
      /^CUDA .+ \(sm_\d+, \d+ SMs, cuBLAS .+, cuDNN 9\.\d+\.\d+, FP32\)$/,
    );
    assert.ok(d.computeCapability[0] >= 7);
    const m = d.memoryInfo();
    assert.ok(m.total > 2 ** 30 && m.free > 0 && m.free <= m.total, JSON.stringify(m));
  },
});

Deno.test({
  name: "GPU: new buffers are zero, also when a dirty block is reused from the cache",
  ignore: !gpu,
  fn() {
    const d = dev();
    const a = d.alloc("f32", 5000);
    d.fill(a, 7.5, 5000);
    d.free(a);
    const hits = d.memoryStats().cacheHits;
    const b = d.alloc("f32", 5000);
    assert.equal(d.memoryStats().cacheHits, hits + 1, "the freed block is reused");
    const out = new Float32Array(5000).fill(1);
    d.download(b, out);
    assert.ok(out.every((v) => v === 0));
    const i = d.alloc("i32", 3);
    const io = new Int32Array(3).fill(9);
    d.download(i, io);
    assert.deepEqual([...io], [0, 0, 0]);
    d.free(b);
    d.free(i);
  },
});

Deno.test({
  name: "GPU: upload, download and copy honour offsets and dtypes",
  ignore: !gpu,
  fn() {
    const d = dev(), r = new Rng(1);
    const host = r.f32(1000);
    const a = d.alloc("f32", 1000), b = d.alloc("f32", 1000);
    d.upload(a, host);
    d.upload(a, new Float32Array([42, 43]), 998);
    d.copy(b, a, 500, 100, 250); // b[100..600) = a[250..750)
    const outA = new Float32Array(1000), outB = new Float32Array(1000);
    d.download(a, outA);
    d.download(b, outB);
    assert.deepEqual([...outA.subarray(0, 998)], [...host.subarray(0, 998)]);
    assert.deepEqual([...outA.subarray(998)], [42, 43]);
    assert.ok(outB.subarray(0, 100).every((v) => v === 0));
    assert.deepEqual([...outB.subarray(100, 600)], [...host.subarray(250, 750)]);
    assert.ok(outB.subarray(600).every((v) => v === 0));
    const part = new Float32Array(3);
    d.download(a, part, 997);
    assert.deepEqual([...part], [host[997], 42, 43]);
    const ints = d.alloc("i32", 4);
    d.upload(ints, new Int32Array([-1, 2, -2147483648, 2147483647]));
    const io = new Int32Array(4);
    d.download(ints, io);
    assert.deepEqual([...io], [-1, 2, -2147483648, 2147483647]);
    assert.throws(
      () => d.upload(a, new Int32Array(2)),
      /upload: .* data must be a Float32Array, got Int32Array/,
    );
    assert.throws(() => d.upload(ints, new Uint32Array(2) as unknown as Int32Array), TypeError);
    assert.throws(() => d.download(ints, new Float32Array(2)), /out must be an Int32Array/);
    assert.throws(() => d.copy(a, ints, 1), TypeError);
    assert.throws(() => d.upload(a, new Float32Array(3), 998), RangeError);
    assert.throws(() => d.download(a, new Float32Array(1), -1), RangeError);
    assert.throws(() => d.copy(b, a, 10, 995), RangeError);
    assert.throws(() => d.copy(b, a, 10, 0, 991), RangeError);
    for (const x of [a, b, ints]) d.free(x);
  },
});

Deno.test({
  name: "GPU: fill writes the exact f32 and i32 bit patterns",
  ignore: !gpu,
  fn() {
    const d = dev();
    const f = d.alloc("f32", 8);
    d.fill(f, 0.1, 2);
    d.fill(f, -0, 1, 2);
    d.fill(f, Number.NaN, 1, 3);
    d.fill(f, -Infinity, 1, 4);
    d.fill(f, 3e38, 3, 5);
    const out = new Float32Array(8);
    d.download(f, out);
    assert.equal(out[0], Math.fround(0.1));
    assert.equal(out[1], Math.fround(0.1));
    assert.ok(Object.is(out[2], -0));
    assert.ok(Number.isNaN(out[3]));
    assert.equal(out[4], -Infinity);
    assert.deepEqual([...out.subarray(5)], [3e38, 3e38, 3e38].map(Math.fround));
    const i = d.alloc("i32", 4);
    d.fill(i, -5, 2);
    d.fill(i, 2147483647, 1, 2);
    const io = new Int32Array(4);
    d.download(i, io);
    assert.deepEqual([...io], [-5, -5, 2147483647, 0]);
    assert.throws(() => d.fill(i, 1.5, 1), RangeError);
    assert.throws(() => d.fill(i, 2 ** 31, 1), RangeError);
    assert.throws(() => d.fill(f, 1, 9), RangeError);
    d.free(f);
    d.free(i);
  },
});

Deno.test({
  name: "GPU: misuse is reported before anything is queued",
  ignore: !gpu,
  fn() {
    const d = dev();
    const a = d.alloc("f32", 10), b = d.alloc("f32", 10), lab = d.alloc("i32", 10);
    assert.throws(() => d.reluForward(a, b, 11), RangeError);
    assert.throws(() => d.reluForward(lab, b, 10), TypeError);
    const cpuBuf = cpuDevice().alloc("f32", 10);
    assert.throws(() => d.add(a, cpuBuf, b, 10), TypeError);
    const gemm = { transA: false, transB: false, m: 3, n: 4, k: 1, alpha: 1, beta: 0 };
    assert.throws(() => d.gemm(a, b, b, gemm), RangeError);
    assert.throws(() => d.conv2dForward(a, a, a, { ...conv, outH: 7 }), RangeError);
    const params = { gamma: a, beta: a, runningMean: a, runningVar: a, saveMean: a, saveInvStd: a };
    const bn = { n: 1, c: 1, hw: 1, eps: 1e-5, momentum: 0.1, relu: true };
    assert.throws(() => d.batchNormForwardTraining(a, b, params, bn), /at least 2 values/);
    assert.throws(
      () => d.batchNormForwardInference(a, b, params, { ...bn, eps: 0 }),
      /shape\.eps/,
    );
    assert.throws(() =>
      d.sigmoidLoss(a, lab, a, b, {
        n: 2,
        c: 5,
        scale: 0.5,
        backgroundExempt: true,
        focalGamma: 0,
        focalAlpha: -1,
      }), /grad must not be the same buffer as logits/);
    d.free(a);
    assert.throws(() => d.free(a), /free: buffer has been freed/);
    assert.throws(() => d.reluForward(a, b, 1), /has been freed/);
    d.sync(); // nothing bad was queued
    d.free(b);
    d.free(lab);
  },
});

Deno.test({
  name: "GPU: empty buffers and zero-length operations are no-ops",
  ignore: !gpu,
  fn() {
    const d = dev();
    const e = d.alloc("f32", 0);
    assert.ok(e instanceof CudaBuffer);
    assert.equal((e as CudaBuffer).ptr, 0n);
    d.upload(e, new Float32Array(0));
    d.download(e, new Float32Array(0));
    d.reluForward(e, e, 0);
    d.fill(e, 1, 0);
    // outputs must not be inputs: more empty buffers
    const out = d.alloc("f32", 0), grad = d.alloc("f32", 0);
    d.gemm(e, e, out, { transA: false, transB: false, m: 0, n: 0, k: 2, alpha: 1, beta: 0 });
    d.sgdUpdate(e, grad, out, {
      length: 0,
      lr: 1,
      momentum: 0,
      weightDecay: 0,
      nesterov: false,
    });
    d.sync();
    for (const b of [e, out, grad]) d.free(b);
  },
});

Deno.test({
  name: "GPU: GEMM with k = 0 scales C by beta and adds the bias",
  ignore: !gpu,
  fn() {
    const d = dev();
    const c = d.alloc("f32", 6), bias = d.alloc("f32", 3), e = d.alloc("f32", 0);
    d.upload(c, new Float32Array([1, 2, 3, 4, 5, 6]));
    d.upload(bias, new Float32Array([10, 20, 30]));
    d.gemm(e, e, c, { transA: false, transB: false, m: 2, n: 3, k: 0, alpha: 1, beta: 0.5 }, bias);
    const out = new Float32Array(6);
    d.download(c, out);
    assert.deepEqual([...out], [10.5, 21, 31.5, 12, 22.5, 33]);
    for (const x of [c, bias, e]) d.free(x);
  },
});

Deno.test({
  name: "GPU: an unknown kernel is a CudaError naming it, and the device stays usable",
  ignore: !gpu,
  fn() {
    const d = dev();
    const e = thrown(
      () => launchKernel(d, "no_such_kernel", [1, 1, 1], [32, 1, 1], 0, []),
      CudaError,
    );
    assert.equal(e.errorName, "CUDA_ERROR_NOT_FOUND");
    assert.match(e.call, /no_such_kernel/);
    const a = d.alloc("f32", 4);
    d.upload(a, new Float32Array([-1, 2, -3, 4]));
    d.reluForward(a, a, 4);
    const out = new Float32Array(4);
    d.download(a, out);
    assert.deepEqual([...out], [0, 2, 0, 4]);
    d.free(a);
  },
});

Deno.test({
  name: "GPU: PTX the driver rejects is a CudaError with the JIT log",
  ignore: !gpu,
  fn() {
    const e = thrown(
      () =>
        new CudaDevice({ ptx: ".version 9.0\n.target sm_75\n.address_size 64\nnot ptx at all;\n" }),
      CudaError,
    );
    assert.equal(e.errorName, "CUDA_ERROR_INVALID_PTX");
    assert.match(e.call, /cuModuleLoadDataEx/);
    assert.match(e.description, /JIT log:/);
    // The failed construction released what it had taken: a new device opens normally.
    const d = new CudaDevice();
    d.dispose();
  },
});

Deno.test({
  name: "GPU: after dispose every operation refuses, and late frees are harmless",
  ignore: !gpu,
  fn() {
    const d = new CudaDevice();
    const a = d.alloc("f32", 16);
    d.dispose();
    assert.equal(d.disposed, true);
    assert.throws(() => d.alloc("f32", 1), /disposed/);
    assert.throws(() => d.sync(), /disposed/);
    assert.throws(() => d.download(a, new Float32Array(16)), /disposed/);
    d.free(a); // what a tensor's finalizer would do
    assert.equal(a.freed, true);
    d.dispose();
  },
});

/** One step of every kind of work the device does, with buffers allocated and freed around it. */
function workout(d: CudaDevice, r: Rng): void {
  const s = conv;
  const xs = s.n * s.cIn * s.h * s.w, ws = s.cOut * s.cIn * s.kH * s.kW;
  const ys = s.n * s.cOut * s.outH * s.outW;
  const x = d.alloc("f32", xs), w = d.alloc("f32", ws), y = d.alloc("f32", ys);
  d.upload(x, r.f32(xs));
  d.upload(w, r.f32(ws));
  d.conv2dForward(x, w, y, s);
  const dx = d.alloc("f32", xs), dw = d.alloc("f32", ws);
  d.conv2dBackwardData(w, y, dx, s);
  d.conv2dBackwardFilter(x, y, dw, s);
  const c = s.cOut, bn = { n: s.n, c, hw: s.outH * s.outW, eps: 1e-5, momentum: 0.1, relu: true };
  const stats = Array.from({ length: 8 }, () => d.alloc("f32", c));
  d.fill(stats[0], 1, c);
  d.fill(stats[3], 1, c);
  const params = {
    gamma: stats[0],
    beta: stats[1],
    runningMean: stats[2],
    runningVar: stats[3],
    saveMean: stats[4],
    saveInvStd: stats[5],
  };
  const z = d.alloc("f32", ys), dz = d.alloc("f32", ys), dres = d.alloc("f32", ys);
  // the fused tail: residual add and ReLU, and its backward with the residual's gradient
  d.batchNormForwardTraining(y, z, params, bn, y);
  d.batchNormBackward(
    y,
    z,
    z,
    { dx: dz, dGamma: stats[6], dBeta: stats[7], dResidual: dres },
    params,
    bn,
  );
  d.batchNormForwardInference(y, z, params, bn, dres);
  const m = 64, k = 96, n = 40;
  const a = d.alloc("f32", m * k), b = d.alloc("f32", k * n), cc = d.alloc("f32", m * n);
  const bias = d.alloc("f32", n), labels = d.alloc("i32", m), rowLoss = d.alloc("f32", m);
  const grad = d.alloc("f32", m * n);
  d.upload(a, r.f32(m * k));
  d.upload(b, r.f32(k * n));
  d.gemm(a, b, cc, { transA: false, transB: false, m, n, k, alpha: 1, beta: 0 }, bias);
  d.upload(labels, Int32Array.from({ length: m }, () => r.int(n + 1)));
  d.sigmoidLoss(cc, labels, grad, rowLoss, {
    n: m,
    c: n,
    scale: 1 / m,
    backgroundExempt: true,
    focalGamma: 0,
    focalAlpha: -1,
  });
  d.sgdUpdate(a, grad, b, {
    length: Math.min(m * k, k * n, m * n),
    lr: 0.1,
    momentum: 0.9,
    weightDecay: 1e-4,
    nesterov: false,
  });
  const out = new Float32Array(m);
  d.download(rowLoss, out);
  assert.ok(out.every(Number.isFinite));
  for (
    const t of [x, w, y, z, dz, dres, dx, dw, ...stats, a, b, cc, bias, labels, rowLoss, grad]
  ) {
    d.free(t);
  }
}

Deno.test({
  name: "GPU: no leak: device memory returns to its starting level after dispose",
  ignore: !gpu,
  fn() {
    // The observer keeps the primary context alive so that the libraries' lazily loaded kernels
    // (loaded into the context on first use) stay loaded; a first device warms them up.
    const observer = new CudaDevice();
    const warm = new CudaDevice();
    workout(warm, new Rng(2));
    warm.dispose();
    observer.sync();
    const before = observer.memoryInfo().free;

    const d = new CudaDevice();
    const r = new Rng(3);
    workout(d, r);
    const first = d.memoryStats();
    for (let i = 0; i < 30; i++) workout(d, r);
    const steady = d.memoryStats();
    // Every later step is served from the cache: the same sizes, freed in between.
    assert.equal(steady.driverAllocs, first.driverAllocs, JSON.stringify(steady));
    assert.equal(steady.reservedBytes, first.reservedBytes, JSON.stringify(steady));
    // Many blocks of odd sizes, kept alive together, then freed.
    for (let i = 0; i < 10; i++) {
      const extra = Array.from(
        { length: 20 },
        (_, j) => d.alloc(j % 2 ? "f32" : "i32", 1 + r.int(3_000_000)),
      );
      for (const e of extra) d.free(e);
    }
    const stats = d.memoryStats();
    // Only the conv workspace and the GEMM bias vector of ones may still be live.
    assert.ok(stats.liveBlocks <= 2, JSON.stringify(stats));
    assert.ok(stats.cachedBlocks > 0 && stats.peakReservedBytes >= stats.reservedBytes);
    d.dispose();
    observer.sync();
    const after = observer.memoryInfo().free;
    observer.dispose();
    // The driver hands out memory in 2 MiB pages; anything the device kept would be far larger
    // (every step allocates several MiB).
    assert.ok(
      Math.abs(after - before) <= 2 * 2 ** 20,
      `free memory before ${before}, after dispose ${after} (difference ${before - after} bytes)`,
    );
  },
});

Deno.test({
  name: "GPU: TF32 devices open, and say so",
  ignore: !gpu,
  fn() {
    const d = new CudaDevice({ tf32: true });
    assert.match(d.description, /TF32\)$/);
    d.dispose();
  },
});

Deno.test({
  name: "GPU: the automatic choice is the CUDA device",
  ignore: !gpu,
  async fn() {
    await withEnv("EQL_DEVICE", undefined, async () => {
      const choice = await chooseDevice();
      assert.equal(choice.device.kind, "cuda", choice.reason);
      choice.device.dispose();
    });
  },
});

Deno.test({
  name: "GPU: release the shared test device",
  ignore: !gpu,
  fn() {
    shared?.dispose();
    shared = undefined;
  },
});
