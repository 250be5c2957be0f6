// Every device operation on the CUDA device against a naive float64 loop (the convolutions:
// src/device/conv_reference.ts) and against the CPU device, with the tolerances stated next to
// each check, and a full ResNet-32 training step on both devices. Skipped (with the reason
// printed) without a GPU.
//
// Tolerances (u = 2^-24, the float32 unit roundoff):
// - GEMM and convolution: |err| ≤ 4·K·u·Σ|terms| + 1e-6·max Σ|terms| per element, K terms summed:
//   the classical bound for a float32 dot product, plus a tensor-wide term for transform-based
//   convolution algorithms (FFT, Winograd), whose error scales with the tensor rather than each
//   element. TF32 (u = 2^-11) would break it by two orders of magnitude.
// - Batch-norm: forward 1e-5 relative (+1e-5·max absolute), backward 2e-5·max absolute; the
//   fused tail (residual add, ReLU) against batch norm, add and ReLU in turn on the same device:
//   forward 1e-5 relative (+1e-5·max), its statistics 1e-6, the residual's gradient exact.
// - ReLU, add, the shortcut: exact. Average pooling, smooth-L1, SGD: ≤ 1e-6 relative.
// - Fused losses: 1e-5 relative (+1e-6·max absolute for entries that round to 0 in float32).

import assert from "node:assert/strict";
import { CudaDevice } from "../src/device/cuda.ts";
import { cpuDevice } from "../src/device/cpu.ts";
import {
  type BatchNormParams,
  type BatchNormShape,
  type Conv2dShape,
  convOutputSize,
  type Device,
  type DeviceBuffer,
} from "../src/device/device.ts";
import {
  referenceConv2dBackwardData,
  referenceConv2dBackwardFilter,
  referenceConv2dForward,
} from "../src/device/conv_reference.ts";
import { gammaThreshold } from "../src/device/mask.ts";
import { tensor } from "../src/tensor.ts";
import { Eqlv2Criterion } from "../src/losses/eqlv2.ts";
import { SeesawCriterion } from "../src/losses/seesaw.ts";
import { assertClose, assertWithin, gpu, maxAbs, reportSkip, Rng, U32 } from "./cuda_fixtures.ts";

reportSkip("cuda_parity_test.ts");

let cudaShared: CudaDevice | undefined;
function cuda(): CudaDevice {
  return cudaShared ??= new CudaDevice();
}
const cpu = cpuDevice();

type Host = Float32Array | Int32Array;
type Out = ["f32" | "i32", number] | Host;

/**
 * Runs `fn` on a device with fresh buffers: `inputs` uploaded, `outputs` allocated (a host array
 * as an output spec means "start from these values"), and returns the outputs.
 */
function run(
  d: Device,
  inputs: (Host | undefined)[],
  outputs: Out[],
  fn: (ins: (DeviceBuffer | undefined)[], outs: DeviceBuffer[]) => void,
): Float32Array[] {
  const put = (h: Host) => {
    const b = d.alloc(h instanceof Int32Array ? "i32" : "f32", h.length);
    d.upload(b, h);
    return b;
  };
  const ins = inputs.map((h) => h === undefined ? undefined : put(h));
  const outs = outputs.map((o) => Array.isArray(o) ? d.alloc(o[0], o[1]) : put(o));
  fn(ins, outs);
  const res = outs.map((b) => {
    const h = b.dtype === "f32" ? new Float32Array(b.length) : new Int32Array(b.length);
    d.download(b, h);
    return Float32Array.from(h);
  });
  for (const b of [...ins, ...outs]) if (b) d.free(b);
  return res;
}

/** The same operation on the CUDA and the CPU device. */
function both(
  inputs: (Host | undefined)[],
  outputs: Out[],
  fn: (d: Device, ins: (DeviceBuffer | undefined)[], outs: DeviceBuffer[]) => void,
): { gpu: Float32Array[]; cpu: Float32Array[] } {
  return {
    gpu: run(cuda(), inputs, outputs, (i, o) => fn(cuda(), i, o)),
    cpu: run(cpu, inputs, outputs, (i, o) => fn(cpu, i, o)),
  };
}

function exact(what: string, got: ArrayLike<number>, want: ArrayLike<number>): void {
  assertWithin(what, got, want, () => 0);
}

/** Checks against a float64 reference with a per-element bound (and the CPU within twice it). */
function checkBound(
  what: string,
  r: { gpu: Float32Array; cpu: Float32Array },
  ref: Float64Array,
  bound: (i: number) => number,
): void {
  assertWithin(`${what} (CUDA vs float64)`, r.gpu, ref, bound);
  assertWithin(`${what} (CUDA vs CPU)`, r.gpu, r.cpu, (i) => 2 * bound(i));
}

// ── GEMM ─────────────────────────────────────────────────────────────────────────────────────

function gemmRef(
  tA: boolean,
  tB: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  b: Float32Array,
  beta: number,
  c: Float32Array,
  bias?: Float32Array,
): { ref: Float64Array; abs: Float64Array } {
  const ref = new Float64Array(m * n), abs = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0, sa = 0;
      for (let l = 0; l < k; l++) {
        const p = (tA ? a[l * m + i] : a[i * k + l]) * (tB ? b[j * k + l] : b[l * n + j]);
        s += p;
        sa += Math.abs(p);
      }
      const bv = bias ? bias[j] : 0;
      ref[i * n + j] = alpha * s + beta * c[i * n + j] + bv;
      abs[i * n + j] = Math.abs(alpha) * sa + Math.abs(beta * c[i * n + j]) + Math.abs(bv);
    }
  }
  return { ref, abs };
}

function gemmCase(m: number, n: number, k: number, seed: number, tf32Device?: CudaDevice): void {
  const tf32 = tf32Device !== undefined;
  const r = new Rng(seed);
  for (const tA of [false, true]) {
    for (const tB of [false, true]) {
      const a = r.f32(m * k), b = r.f32(k * n), c = r.f32(m * n), bias = r.f32(n);
      const alpha = 0.75, beta = -0.5;
      const { ref, abs } = gemmRef(tA, tB, m, n, k, alpha, a, b, beta, c, bias);
      const maxSum = maxAbs(abs);
      const u = tf32 ? 2 ** -11 : U32;
      const bound = (i: number) => 4 * (k + 2) * u * abs[i] + 1e-6 * maxSum;
      const what = `gemm ${m}×${n}×${k} transA ${tA} transB ${tB}${tf32 ? " (TF32)" : ""}`;
      if (tf32Device) {
        const d = tf32Device;
        const [got] = run(
          d,
          [a, b, bias],
          [c],
          ([pa, pb, pbias], [pc]) =>
            d.gemm(pa!, pb!, pc, { transA: tA, transB: tB, m, n, k, alpha, beta }, pbias),
        );
        assertWithin(`${what} (CUDA vs float64)`, got, ref, bound);
        continue;
      }
      const res = both(
        [a, b, bias],
        [c],
        (d, [pa, pb, pbias], [pc]) =>
          d.gemm(pa!, pb!, pc, { transA: tA, transB: tB, m, n, k, alpha, beta }, pbias),
      );
      checkBound(what, { gpu: res.gpu[0], cpu: res.cpu[0] }, ref, bound);
    }
  }
}

Deno.test({
  name: "parity: GEMM, every transpose combination, with bias (small and tiled sizes)",
  ignore: !gpu,
  fn() {
    gemmCase(37, 29, 53, 1);
    gemmCase(1, 10, 64, 2); // a single row (the linear layer at batch 1)
    gemmCase(256, 384, 512, 3);
  },
});

Deno.test({
  name: "parity: GEMM without bias and with beta = 0 ignores what C held",
  ignore: !gpu,
  fn() {
    const m = 20, n = 30, k = 40, r = new Rng(4);
    const a = r.f32(m * k), b = r.f32(k * n);
    const garbage = new Float32Array(m * n).fill(Number.NaN);
    const { ref, abs } = gemmRef(false, false, m, n, k, 1, a, b, 0, new Float32Array(m * n));
    const res = both(
      [a, b],
      [garbage],
      (d, [pa, pb], [pc]) =>
        d.gemm(pa!, pb!, pc, { transA: false, transB: false, m, n, k, alpha: 1, beta: 0 }),
    );
    const mx = maxAbs(abs);
    checkBound(
      "gemm beta 0",
      { gpu: res.gpu[0], cpu: res.cpu[0] },
      ref,
      (i) => 4 * k * U32 * abs[i] + 1e-6 * mx,
    );
  },
});

Deno.test({
  name: "parity: TF32 GEMM stays within the TF32 bound",
  ignore: !gpu,
  fn() {
    const d = new CudaDevice({ tf32: true });
    try {
      gemmCase(64, 96, 128, 5, d);
    } finally {
      d.dispose();
    }
  },
});

// ── convolution ──────────────────────────────────────────────────────────────────────────────

function shape(
  n: number,
  cIn: number,
  h: number,
  w: number,
  cOut: number,
  kH: number,
  kW: number,
  strideH: number,
  strideW: number,
  padH: number,
  padW: number,
): Conv2dShape {
  return {
    n,
    cIn,
    h,
    w,
    cOut,
    kH,
    kW,
    strideH,
    strideW,
    padH,
    padW,
    outH: convOutputSize(h, kH, strideH, padH),
    outW: convOutputSize(w, kW, strideW, padW),
  };
}

function convCase(s: Conv2dShape, seed: number): void {
  const r = new Rng(seed);
  const xs = s.n * s.cIn * s.h * s.w, ws = s.cOut * s.cIn * s.kH * s.kW;
  const ys = s.n * s.cOut * s.outH * s.outW;
  const x = r.f32(xs), w = r.f32(ws), dy = r.f32(ys);
  // float64 references, with Σ|term| per element for the error bounds
  const yAbs = new Float64Array(ys), dxAbs = new Float64Array(xs), dwAbs = new Float64Array(ws);
  const y = referenceConv2dForward(x, w, s, yAbs);
  const dx = referenceConv2dBackwardData(w, dy, s, dxAbs);
  const dw = referenceConv2dBackwardFilter(x, dy, s, dwAbs);
  const tag =
    `conv n${s.n} ${s.cIn}→${s.cOut} ${s.h}×${s.w} k${s.kH}×${s.kW} s${s.strideH}×${s.strideW} p${s.padH}×${s.padW}`;
  const bound = (abs: Float64Array, terms: number) => {
    const mx = maxAbs(abs);
    return (i: number) => 4 * terms * U32 * abs[i] + 1e-6 * mx;
  };
  // Outputs start from NaN: every operation must overwrite every element.
  const nan = (len: number) => new Float32Array(len).fill(Number.NaN);
  const fwd = both([x, w], [nan(ys)], (d, [px, pw], [py]) => d.conv2dForward(px!, pw!, py, s));
  checkBound(
    `${tag} forward`,
    { gpu: fwd.gpu[0], cpu: fwd.cpu[0] },
    y,
    bound(yAbs, s.cIn * s.kH * s.kW),
  );
  const bd = both(
    [w, dy],
    [nan(xs)],
    (d, [pw, pdy], [pdx]) => d.conv2dBackwardData(pw!, pdy!, pdx, s),
  );
  checkBound(
    `${tag} backward-data`,
    { gpu: bd.gpu[0], cpu: bd.cpu[0] },
    dx,
    bound(dxAbs, s.cOut * s.kH * s.kW),
  );
  const bf = both(
    [x, dy],
    [nan(ws)],
    (d, [px, pdy], [pdw]) => d.conv2dBackwardFilter(px!, pdy!, pdw, s),
  );
  checkBound(
    `${tag} backward-filter`,
    { gpu: bf.gpu[0], cpu: bf.cpu[0] },
    dw,
    bound(dwAbs, s.n * s.outH * s.outW),
  );
}

Deno.test({
  name: "parity: convolution forward, backward-data and backward-filter over several geometries",
  ignore: !gpu,
  fn() {
    convCase(shape(2, 3, 9, 11, 5, 3, 3, 1, 1, 1, 1), 10);
    convCase(shape(3, 4, 10, 10, 6, 3, 3, 2, 2, 1, 1), 11);
    convCase(shape(2, 8, 7, 7, 4, 1, 1, 2, 2, 0, 0), 12);
    convCase(shape(1, 2, 9, 6, 3, 5, 3, 2, 1, 2, 0), 13);
    convCase(shape(8, 16, 32, 32, 16, 3, 3, 1, 1, 1, 1), 14); // a ResNet-32 stage-1 layer
    convCase(shape(4, 16, 32, 32, 32, 3, 3, 2, 2, 1, 1), 15); // the stage-2 entry
  },
});

Deno.test({
  name: "parity: the chosen backward algorithms are deterministic ones and repeat bit for bit",
  ignore: !gpu,
  fn() {
    const s = shape(8, 16, 32, 32, 16, 3, 3, 1, 1, 1, 1), r = new Rng(16), d = cuda();
    const x = r.f32(s.n * s.cIn * s.h * s.w), dy = r.f32(s.n * s.cOut * s.outH * s.outW);
    const w = r.f32(s.cOut * s.cIn * 9);
    const once = () =>
      run(d, [x, w, dy], [["f32", x.length], ["f32", w.length]], ([px, pw, pdy], [pdx, pdw]) => {
        d.conv2dBackwardData(pw!, pdy!, pdx, s);
        d.conv2dBackwardFilter(px!, pdy!, pdw, s);
      });
    const [a1, b1] = once(), [a2, b2] = once();
    assert.deepEqual(a1, a2);
    assert.deepEqual(b1, b2);
    const algos = d.convolutionAlgorithms(s);
    assert.ok(algos.backwardData && algos.backwardData.algo !== 0, JSON.stringify(algos));
    assert.ok(
      algos.backwardFilter && ![0, 3].includes(algos.backwardFilter.algo),
      JSON.stringify(algos),
    );
  },
});

// ── batch normalisation ──────────────────────────────────────────────────────────────────────

function bnCase(n: number, c: number, hw: number, seed: number): void {
  const r = new Rng(seed), m = n * hw, size = n * c * hw, momentum = 0.1, eps = 1e-5;
  const x = r.f32(size, -2, 3), gamma = r.f32(c, 0.5, 1.5), beta = r.f32(c);
  const rm0 = r.f32(c), rv0 = r.f32(c, 0.5, 2), dy = r.f32(size);
  const at = (b: number, ch: number, p: number) => (b * c + ch) * hw + p;
  const mean = new Float64Array(c), varB = new Float64Array(c), inv = new Float64Array(c);
  const y = new Float64Array(size), rm = new Float64Array(c), rv = new Float64Array(c);
  const dx = new Float64Array(size), dGamma = new Float64Array(c), dBeta = new Float64Array(c);
  for (let ch = 0; ch < c; ch++) {
    let s = 0;
    for (let b = 0; b < n; b++) for (let p = 0; p < hw; p++) s += x[at(b, ch, p)];
    mean[ch] = s / m;
    let v = 0;
    for (let b = 0; b < n; b++) for (let p = 0; p < hw; p++) v += (x[at(b, ch, p)] - mean[ch]) ** 2;
    varB[ch] = v / m;
    inv[ch] = 1 / Math.sqrt(varB[ch] + eps);
    rm[ch] = (1 - momentum) * rm0[ch] + momentum * mean[ch];
    rv[ch] = (1 - momentum) * rv0[ch] + momentum * v / (m - 1);
    let sdy = 0, sdyx = 0;
    for (let b = 0; b < n; b++) {
      for (let p = 0; p < hw; p++) {
        const i = at(b, ch, p), xh = (x[i] - mean[ch]) * inv[ch];
        y[i] = gamma[ch] * xh + beta[ch];
        sdy += dy[i];
        sdyx += dy[i] * xh;
      }
    }
    dBeta[ch] = sdy;
    dGamma[ch] = sdyx;
    for (let b = 0; b < n; b++) {
      for (let p = 0; p < hw; p++) {
        const i = at(b, ch, p), xh = (x[i] - mean[ch]) * inv[ch];
        dx[i] = gamma[ch] * inv[ch] * (dy[i] - sdy / m - xh * sdyx / m);
      }
    }
  }
  const tag = `batch-norm n${n} c${c} hw${hw}`;
  const sh: BatchNormShape = { n, c, hw, eps, momentum, relu: false };
  const fw = both(
    [x, gamma, beta],
    [["f32", size], rm0, rv0, ["f32", c], ["f32", c]],
    (d, [px, pg, pb], o) =>
      d.batchNormForwardTraining(px!, o[0], bnParams(pg!, pb!, o.slice(1)), sh),
  );
  const refs = [y, rm, rv, mean, inv];
  const names = ["y", "runningMean", "runningVar", "saveMean", "saveInvStd"];
  for (let i = 0; i < refs.length; i++) {
    const atol = 1e-5 * maxAbs(refs[i]);
    assertClose(`${tag} ${names[i]} (CUDA vs float64)`, fw.gpu[i], refs[i], 1e-5, atol);
    assertClose(`${tag} ${names[i]} (CUDA vs CPU)`, fw.gpu[i], fw.cpu[i], 2e-5, 2 * atol);
  }
  const bw = both([x, dy, gamma], [["f32", size], ["f32", c], ["f32", c]], (d, i, o) => {
    // The backward reads the saved statistics of a training forward on the same device.
    const tmpY = d.alloc("f32", size), be = d.alloc("f32", c);
    const stats = Array.from({ length: 4 }, () => d.alloc("f32", c));
    const p = bnParams(i[2]!, be, stats);
    d.batchNormForwardTraining(i[0]!, tmpY, p, sh);
    d.batchNormBackward(i[0]!, tmpY, i[1]!, { dx: o[0], dGamma: o[1], dBeta: o[2] }, p, sh);
    for (const t of [tmpY, be, ...stats]) d.free(t);
  });
  const brefs = [dx, dGamma, dBeta], bnames = ["dx", "dGamma", "dBeta"];
  for (let i = 0; i < brefs.length; i++) {
    const atol = 2e-5 * maxAbs(brefs[i]);
    assertClose(`${tag} ${bnames[i]} (CUDA vs float64)`, bw.gpu[i], brefs[i], 1e-5, atol);
    assertClose(`${tag} ${bnames[i]} (CUDA vs CPU)`, bw.gpu[i], bw.cpu[i], 2e-5, 2 * atol);
  }
  const inf = both([x, gamma, beta, rm0, rv0], [["f32", size]], (d, i, o) => {
    const saved = [d.alloc("f32", c), d.alloc("f32", c)];
    d.batchNormForwardInference(i[0]!, o[0], bnParams(i[1]!, i[2]!, [i[3]!, i[4]!, ...saved]), sh);
    for (const t of saved) d.free(t);
  });
  const yInf = new Float64Array(size);
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      for (let p = 0; p < hw; p++) {
        const i = at(b, ch, p);
        yInf[i] = gamma[ch] * (x[i] - rm0[ch]) / Math.sqrt(rv0[ch] + eps) + beta[ch];
      }
    }
  }
  assertClose(`${tag} inference (CUDA vs float64)`, inf.gpu[0], yInf, 1e-5, 1e-6 * maxAbs(yInf));
  assertClose(`${tag} inference (CUDA vs CPU)`, inf.gpu[0], inf.cpu[0], 2e-5, 2e-6 * maxAbs(yInf));
}

/** The per-channel record from gamma, beta and [runningMean, runningVar, saveMean, saveInvStd]. */
function bnParams(gamma: DeviceBuffer, beta: DeviceBuffer, rest: DeviceBuffer[]): BatchNormParams {
  const [runningMean, runningVar, saveMean, saveInvStd] = rest;
  return { gamma, beta, runningMean, runningVar, saveMean, saveInvStd };
}

Deno.test({
  name: "parity: batch-norm training forward, backward and inference (spatial and [N, C])",
  ignore: !gpu,
  fn() {
    bnCase(4, 6, 25, 20);
    bnCase(16, 10, 1, 21);
    bnCase(8, 16, 1024, 22);
  },
});

// ── the fused batch-norm tail of a residual block ───────────────────────────────────────────

/** Host data of one batch norm with its tail. */
interface TailData {
  shape: BatchNormShape;
  x: Float32Array;
  gamma: Float32Array;
  beta: Float32Array;
  runningMean: Float32Array;
  runningVar: Float32Array;
  residual?: Float32Array;
  dy: Float32Array;
}

function tailData(
  n: number,
  c: number,
  hw: number,
  relu: boolean,
  withResidual: boolean,
  seed: number,
): TailData {
  const r = new Rng(seed), size = n * c * hw;
  return {
    shape: { n, c, hw, eps: 1e-5, momentum: 0.1, relu },
    x: r.f32(size, -2, 3),
    gamma: r.f32(c, 0.5, 1.5),
    beta: r.f32(c),
    runningMean: r.f32(c),
    runningVar: r.f32(c, 0.5, 2),
    residual: withResidual ? r.f32(size, -1.5, 1.5) : undefined,
    dy: r.f32(size),
  };
}

/** How the fused forward is called: out of place, or with y being x or the residual. */
type Aliasing = "none" | "x" | "residual";

/**
 * The forward passes on one device, fused (one call with the tail) or composed (batch norm, then
 * add, then ReLU): [training y, runningMean, runningVar, saveMean, saveInvStd, inference y].
 */
function tailForward(d: Device, t: TailData, fused: boolean, alias: Aliasing): Float32Array[] {
  const { shape, residual } = t, size = shape.n * shape.c * shape.hw;
  const start = (a: Aliasing) =>
    a === "x" ? Float32Array.from(t.x) : a === "residual" ? Float32Array.from(residual!) : size;
  const outs: Out[] = [
    typeof start(alias) === "number" ? ["f32", size] : start(alias) as Float32Array,
    t.runningMean,
    t.runningVar,
    ["f32", shape.c],
    ["f32", shape.c],
    typeof start(alias) === "number" ? ["f32", size] : start(alias) as Float32Array,
  ];
  return run(d, [t.x, t.gamma, t.beta, residual], outs, ([px, pg, pb, pr], o) => {
    const [y, rm, rv, sm, si, yInf] = o;
    // Inference first, so that it reads the initial running statistics.
    const infParams = bnParams(pg!, pb!, [rm, rv, sm, si]);
    if (fused) {
      const xIn = alias === "x" ? yInf : px!, rIn = alias === "residual" ? yInf : pr;
      d.batchNormForwardInference(xIn, yInf, infParams, shape, rIn);
      const xTr = alias === "x" ? y : px!, rTr = alias === "residual" ? y : pr;
      d.batchNormForwardTraining(xTr, y, infParams, shape, rTr);
      return;
    }
    const plain = { ...shape, relu: false };
    const size = shape.n * shape.c * shape.hw;
    const tail = (out: DeviceBuffer) => {
      if (pr) d.add(out, pr, out, size);
      if (shape.relu) d.reluForward(out, out, size);
    };
    d.batchNormForwardInference(px!, yInf, infParams, plain);
    tail(yInf);
    d.batchNormForwardTraining(px!, y, infParams, plain);
    tail(y);
  });
}

/**
 * The backward on one device from a given forward output `y` (the same on every device, so that
 * the ReLU masks agree), fused or composed (ReLU backward, then batch-norm backward):
 * [dx, dGamma, dBeta, dResidual].
 */
function tailBackward(d: Device, t: TailData, y: Float32Array, fused: boolean): Float32Array[] {
  const { shape } = t, size = shape.n * shape.c * shape.hw, c = shape.c;
  return run(
    d,
    [t.x, y, t.dy, t.gamma, t.beta],
    [["f32", size], ["f32", c], ["f32", c], ["f32", size]],
    ([px, py, pdy, pg, pb], [dx, dGamma, dBeta, dRes]) => {
      // The saved statistics come from a training forward on the same device.
      const stats = Array.from({ length: 4 }, () => d.alloc("f32", c));
      const scratch = d.alloc("f32", size);
      const p = bnParams(pg!, pb!, stats);
      d.batchNormForwardTraining(px!, scratch, p, { ...shape, relu: false });
      if (fused) {
        const dResidual = t.residual ? dRes : undefined;
        d.batchNormBackward(px!, py!, pdy!, { dx, dGamma, dBeta, dResidual }, p, shape);
      } else {
        // g = dy·(y > 0), or dy itself; into dRes, which is the residual's gradient
        if (shape.relu) d.reluBackward(py!, pdy!, dRes, size);
        else d.copy(dRes, pdy!, size);
        d.batchNormBackward(px!, py!, dRes, { dx, dGamma, dBeta }, p, { ...shape, relu: false });
        if (!t.residual) d.fill(dRes, 0, size);
      }
      for (const b of [...stats, scratch]) d.free(b);
    },
  );
}

const TAIL_NAMES = ["y", "runningMean", "runningVar", "saveMean", "saveInvStd", "inference y"];

function tailCase(t: TailData): void {
  const { n, c, hw, relu } = t.shape;
  const tag = `batch-norm tail n${n} c${c} hw${hw} relu ${relu} residual ${!!t.residual}`;
  const fusedGpu = tailForward(cuda(), t, true, "none");
  const composedGpu = tailForward(cuda(), t, false, "none");
  const fusedCpu = tailForward(cpu, t, true, "none");
  const composedCpu = tailForward(cpu, t, false, "none");
  for (let i = 0; i < TAIL_NAMES.length; i++) {
    const what = `${tag}: ${TAIL_NAMES[i]}`, scale = maxAbs(composedCpu[i]);
    // The statistics come from the same cuDNN call either way; the tail recomputes the
    // normalisation from them, a few roundings away from cuDNN's own.
    const tol = i >= 1 && i <= 4 ? 1e-6 : 1e-5;
    assertClose(`${what} (CUDA fused vs composed)`, fusedGpu[i], composedGpu[i], tol, tol * scale);
    assertClose(`${what} (CUDA fused vs CPU fused)`, fusedGpu[i], fusedCpu[i], 2e-5, 2e-5 * scale);
    assertClose(`${what} (CPU fused vs composed)`, fusedCpu[i], composedCpu[i], 1e-5, 1e-5 * scale);
  }
  if (relu) {
    for (const i of [0, 5]) {
      assert.ok(fusedGpu[i].every((v) => v >= 0), `${tag}: ${TAIL_NAMES[i]} is a ReLU output`);
    }
  }
  // The backward from one forward output (the CPU's), so every device masks the same elements.
  const y = fusedCpu[0];
  const bGpu = tailBackward(cuda(), t, y, true), bComposed = tailBackward(cuda(), t, y, false);
  const bCpu = tailBackward(cpu, t, y, true);
  const bNames = ["dx", "dGamma", "dBeta", "dResidual"];
  for (let i = 0; i < bNames.length; i++) {
    const what = `${tag}: ${bNames[i]}`, scale = maxAbs(bComposed[i]);
    if (i === 3) {
      // dy·(y > 0) (or dy), the same multiplications everywhere, zero when not asked for
      exact(`${what} (CUDA fused vs composed)`, bGpu[i], bComposed[i]);
      exact(`${what} (CUDA vs CPU)`, bGpu[i], bCpu[i]);
      continue;
    }
    assertClose(`${what} (CUDA fused vs composed)`, bGpu[i], bComposed[i], 1e-5, 1e-5 * scale);
    assertClose(`${what} (CUDA vs CPU)`, bGpu[i], bCpu[i], 2e-5, 4e-5 * scale);
  }
}

Deno.test({
  name: "parity: the fused batch-norm tail (residual add, ReLU) equals batch norm, add and ReLU",
  ignore: !gpu,
  fn() {
    let seed = 200;
    // hw = 25: the kernel's scalar path; hw = 1024: its 16-byte path; hw = 1: [N, C] features
    for (const [n, c, hw] of [[4, 6, 25], [8, 16, 1024], [16, 10, 1]]) {
      for (const [relu, withResidual] of [[true, true], [true, false], [false, true]]) {
        tailCase(tailData(n, c, hw, relu, withResidual, seed++));
      }
    }
  },
});

Deno.test({
  name: "parity: the fused batch-norm tail in place (y = x, y = residual) equals it out of place",
  ignore: !gpu,
  fn() {
    for (const [n, c, hw] of [[4, 6, 25], [8, 16, 1024]]) {
      const t = tailData(n, c, hw, true, true, 300 + hw);
      for (const d of [cuda(), cpu] as Device[]) {
        const out = tailForward(d, t, true, "none");
        for (const alias of ["x", "residual"] as const) {
          const got = tailForward(d, t, true, alias);
          for (let i = 0; i < TAIL_NAMES.length; i++) {
            exact(`${d.kind} tail ${n}×${c}×${hw}, y = ${alias}: ${TAIL_NAMES[i]}`, got[i], out[i]);
          }
        }
      }
    }
  },
});

// ── element-wise and small ops ───────────────────────────────────────────────────────────────

Deno.test({
  name: "parity: ReLU forward/backward (also in place) and add are exact",
  ignore: !gpu,
  fn() {
    const r = new Rng(30), len = 100003;
    const x = r.f32(len), dy = r.f32(len), b = r.f32(len);
    x[0] = 0;
    x[1] = -0;
    const fw = both([x], [["f32", len]], (d, [px], [py]) => d.reluForward(px!, py, len));
    const want = Float64Array.from(x, (v) => v > 0 ? v : 0);
    exact("relu forward", fw.gpu[0], want);
    exact("relu forward (CPU)", fw.cpu[0], want);
    const inPlace = both([], [x], (d, _, [px]) => d.reluForward(px, px, len));
    exact("relu forward in place", inPlace.gpu[0], want);
    const y = Float32Array.from(want);
    const bw = both([y], [dy], (d, [py], [pdy]) => d.reluBackward(py!, pdy, pdy, len));
    const wantB = Float64Array.from(dy, (v, i) => y[i] > 0 ? v : 0);
    exact("relu backward in place", bw.gpu[0], wantB);
    exact("relu backward (CPU)", bw.cpu[0], wantB);
    const ad = both([x, b], [["f32", len]], (d, [pa, pb], [po]) => d.add(pa!, pb!, po, len));
    const wantA = Float64Array.from(x, (v, i) => Math.fround(v + b[i]));
    exact("add", ad.gpu[0], wantA);
    const alias = both([b], [x], (d, [pb], [pa]) => d.add(pa, pb!, pa, len));
    exact("add into its first operand", alias.gpu[0], wantA);
  },
});

Deno.test({
  name: "parity: global average pooling forward and backward",
  ignore: !gpu,
  fn() {
    for (const [n, c, hw] of [[8, 64, 64], [3, 5, 1], [2, 7, 1000]]) {
      const r = new Rng(40 + hw), x = r.f32(n * c * hw), dy = r.f32(n * c);
      const ref = new Float64Array(n * c);
      for (let p = 0; p < n * c; p++) {
        let s = 0;
        for (let i = 0; i < hw; i++) s += x[p * hw + i];
        ref[p] = s / hw;
      }
      const fw = both(
        [x],
        [["f32", n * c]],
        (d, [px], [py]) => d.globalAvgPoolForward(px!, py, { n, c, hw }),
      );
      assertClose(`avg pool forward ${n}×${c}×${hw}`, fw.gpu[0], ref, 1e-6, 1e-7 * maxAbs(ref));
      assertClose(
        `avg pool forward ${n}×${c}×${hw} (CPU)`,
        fw.gpu[0],
        fw.cpu[0],
        2e-6,
        2e-7 * maxAbs(ref),
      );
      const bw = both(
        [dy],
        [["f32", n * c * hw]],
        (d, [pdy], [pdx]) => d.globalAvgPoolBackward(pdy!, pdx, { n, c, hw }),
      );
      const refB = Float64Array.from({ length: n * c * hw }, (_, i) => dy[Math.floor(i / hw)] / hw);
      assertClose(`avg pool backward ${n}×${c}×${hw}`, bw.gpu[0], refB, 1e-6);
      assertClose(`avg pool backward ${n}×${c}×${hw} (CPU)`, bw.gpu[0], bw.cpu[0], 2e-6);
    }
  },
});

Deno.test({
  name: "parity: the option-A shortcut forward and backward are exact (even and odd sizes)",
  ignore: !gpu,
  fn() {
    for (const [n, cIn, h, w, cOut] of [[4, 16, 32, 32, 32], [2, 3, 7, 5, 9], [1, 4, 1, 1, 4]]) {
      const oh = Math.ceil(h / 2), ow = Math.ceil(w / 2), pad = (cOut - cIn) >> 1;
      const r = new Rng(50 + h), x = r.f32(n * cIn * h * w), dy = r.f32(n * cOut * oh * ow);
      const y = new Float64Array(n * cOut * oh * ow), dx = new Float64Array(n * cIn * h * w);
      for (let b = 0; b < n; b++) {
        for (let ci = 0; ci < cIn; ci++) {
          for (let i = 0; i < oh; i++) {
            for (let j = 0; j < ow; j++) {
              const yi = ((b * cOut + pad + ci) * oh + i) * ow + j;
              const xi = ((b * cIn + ci) * h + 2 * i) * w + 2 * j;
              y[yi] = x[xi];
              dx[xi] = dy[yi];
            }
          }
        }
      }
      // Outputs start dirty: the padded channels and odd positions must be written as zeros.
      const fw = both(
        [x],
        [new Float32Array(y.length).fill(9)],
        (d, [px], [py]) => d.shortcutForward(px!, py, { n, cIn, h, w, cOut }),
      );
      exact(`shortcut forward ${[n, cIn, h, w, cOut]}`, fw.gpu[0], y);
      exact(`shortcut forward ${[n, cIn, h, w, cOut]} (CPU)`, fw.cpu[0], y);
      const bw = both(
        [dy],
        [new Float32Array(dx.length).fill(9)],
        (d, [pdy], [pdx]) => d.shortcutBackward(pdy!, pdx, { n, cIn, h, w, cOut }),
      );
      exact(`shortcut backward ${[n, cIn, h, w, cOut]}`, bw.gpu[0], dx);
      exact(`shortcut backward ${[n, cIn, h, w, cOut]} (CPU)`, bw.cpu[0], dx);
    }
  },
});

Deno.test({
  name: "parity: fused SGD (momentum, weight decay, Nesterov)",
  ignore: !gpu,
  fn() {
    const len = 10007, r = new Rng(60);
    const p = r.f32(len), g = r.f32(len), buf = r.f32(len, -0.1, 0.1);
    for (const nesterov of [false, true]) {
      const params = { lr: 0.1, momentum: 0.9, weightDecay: 5e-4, nesterov };
      const res = both(
        [g],
        [p, buf],
        (d, [pg], [pp, pb]) => d.sgdUpdate(pp, pg!, pb, { length: len, ...params }),
      );
      const wantP = new Float64Array(len), wantB = new Float64Array(len);
      for (let i = 0; i < len; i++) {
        let gi = g[i] + params.weightDecay * p[i];
        const m = params.momentum * buf[i] + gi;
        wantB[i] = m;
        gi = nesterov ? gi + params.momentum * m : m;
        wantP[i] = p[i] - params.lr * gi;
      }
      assertClose(`sgd param (nesterov ${nesterov})`, res.gpu[0], wantP, 1e-6, 1e-7);
      assertClose(`sgd buffer (nesterov ${nesterov})`, res.gpu[1], wantB, 1e-6, 1e-7);
      assertClose(`sgd param (nesterov ${nesterov}) (CPU)`, res.gpu[0], res.cpu[0], 2e-6, 2e-7);
      assertClose(`sgd buffer (nesterov ${nesterov}) (CPU)`, res.gpu[1], res.cpu[1], 2e-6, 2e-7);
    }
  },
});

// ── fused losses ─────────────────────────────────────────────────────────────────────────────

function lossClose(what: string, got: Float32Array, want: ArrayLike<number>): void {
  assertClose(what, got, want, 1e-5, 1e-6 * maxAbs(want));
}

interface SigmoidCase {
  name: string;
  n: number;
  c: number;
  suppress?: Float32Array;
  classWeight?: Float32Array;
  backgroundExempt: boolean;
  focalGamma: number;
  focalAlpha: number;
  images?: number;
}

function sigmoidCase(
  t: SigmoidCase,
  seed: number,
): { gpu: Float32Array[]; cpu: Float32Array[]; logits: Float32Array; labels: Int32Array } {
  const r = new Rng(seed), { n, c } = t;
  const logits = r.f32(n * c, -8, 8);
  // Labels 0..C (C = background), about a third background.
  const labels = Int32Array.from({ length: n }, () => r.next() < 0.35 ? c : r.int(c));
  let imageOfRow: Int32Array | undefined, keepMask: Int32Array | undefined;
  if (t.images) {
    imageOfRow = Int32Array.from({ length: n }, () => r.int(t.images!));
    keepMask = Int32Array.from({ length: t.images * c }, () => r.next() < 0.2 ? 1 : 0);
  }
  const res = both(
    [logits, labels, t.suppress, t.classWeight, imageOfRow, keepMask],
    [["f32", n * c], ["f32", n]],
    (d, [pl, py, ps, pw, pi, pk], [pg, pr]) =>
      d.sigmoidLoss(pl!, py!, pg, pr, {
        n,
        c,
        scale: 1 / n,
        suppress: ps,
        backgroundExempt: t.backgroundExempt,
        classWeight: pw,
        focalGamma: t.focalGamma,
        focalAlpha: t.focalAlpha,
        imageOfRow: pi,
        keepMask: pk,
      }),
  );
  lossClose(`sigmoid loss ${t.name}: grad (CUDA vs CPU)`, res.gpu[0], res.cpu[0]);
  lossClose(`sigmoid loss ${t.name}: row loss (CUDA vs CPU)`, res.gpu[1], res.cpu[1]);
  return { ...res, logits, labels };
}

Deno.test({
  name: "parity: sigmoid-family loss (plain, EQL, decay weights, class weights, focal, keep sets)",
  ignore: !gpu,
  fn() {
    const r = new Rng(70);
    for (const c of [50, 300]) {
      const n = 257;
      const tail = Float32Array.from({ length: c }, () => r.next() < 0.4 ? 1 : 0);
      const decay = r.f32(c, 0, 1), weights = r.f32(c, 0.2, 3);
      // Plain sigmoid cross-entropy, also checked against the formula in float64.
      const plain = sigmoidCase({
        name: `plain c${c}`,
        n,
        c,
        backgroundExempt: true,
        focalGamma: 0,
        focalAlpha: -1,
      }, 71);
      const eql = sigmoidCase({
        name: `EQL c${c}`,
        n,
        c,
        suppress: tail,
        backgroundExempt: true,
        focalGamma: 0,
        focalAlpha: -1,
      }, 72);
      for (const [res, sup] of [[plain, undefined], [eql, tail]] as const) {
        const grad = new Float64Array(n * c), rowLoss = new Float64Array(n);
        for (let i = 0; i < n; i++) {
          const fg = res.labels[i] < c;
          for (let j = 0; j < c; j++) {
            const z = res.logits[i * c + j], y = res.labels[i] === j ? 1 : 0;
            const w = 1 - (fg ? 1 : 0) * (sup ? sup[j] : 0) * (1 - y);
            const bce = Math.max(z, 0) - z * y + Math.log1p(Math.exp(-Math.abs(z)));
            rowLoss[i] += w * bce;
            grad[i * c + j] = w * (1 / (1 + Math.exp(-z)) - y) / n;
          }
        }
        lossClose(
          `sigmoid loss c${c} ${sup ? "EQL" : "plain"}: grad (CUDA vs float64)`,
          res.gpu[0],
          grad,
        );
        lossClose(
          `sigmoid loss c${c} ${sup ? "EQL" : "plain"}: row loss (CUDA vs float64)`,
          res.gpu[1],
          rowLoss,
        );
      }
      sigmoidCase({
        name: `decay, class weights, all rows c${c}`,
        n,
        c,
        suppress: decay,
        classWeight: weights,
        backgroundExempt: false,
        focalGamma: 0,
        focalAlpha: -1,
      }, 73);
      sigmoidCase({
        name: `focal c${c}`,
        n,
        c,
        backgroundExempt: true,
        focalGamma: 2,
        focalAlpha: 0.25,
      }, 74);
      sigmoidCase({
        name: `EQL with keep sets c${c}`,
        n,
        c,
        suppress: tail,
        backgroundExempt: true,
        focalGamma: 0,
        focalAlpha: -1,
        images: 9,
      }, 75);
    }
  },
});

Deno.test({
  name: "parity: softmax-family loss (plain, SEQL mask, class weights, logit adjustment)",
  ignore: !gpu,
  fn() {
    const r = new Rng(80);
    for (const c of [10, 100, 1000]) {
      const n = 129;
      const logits = r.f32(n * c, -10, 10);
      const labels = Int32Array.from({ length: n }, () => r.int(c));
      const tail = Float32Array.from({ length: c }, () => r.next() < 0.5 ? 1 : 0);
      const weights = r.f32(c, 0.2, 3), bias = r.f32(c, -2, 0);
      const cases = [
        { name: "plain", suppress: undefined, g: 0, classWeight: undefined, logitBias: undefined },
        {
          name: "SEQL γ 0.9",
          suppress: tail,
          g: 0.9,
          classWeight: undefined,
          logitBias: undefined,
        },
        { name: "SEQL γ 1", suppress: tail, g: 1, classWeight: undefined, logitBias: undefined },
        {
          name: "weights + bias",
          suppress: undefined,
          g: 0,
          classWeight: weights,
          logitBias: bias,
        },
      ];
      for (const t of cases) {
        const res = both([logits, labels, t.suppress, t.classWeight, t.logitBias], [
          ["f32", n * c],
          ["f32", n],
        ], (d, [pl, py, ps, pw, pb], [pg, pr]) =>
          d.softmaxLoss(pl!, py!, pg, pr, {
            n,
            c,
            scale: 1 / n,
            suppress: ps,
            gammaThreshold: gammaThreshold(t.g),
            seed: 12345,
            counter: 7,
            classWeight: pw,
            logitBias: pb,
          }));
        lossClose(`softmax loss ${t.name} c${c}: grad (CUDA vs CPU)`, res.gpu[0], res.cpu[0]);
        lossClose(`softmax loss ${t.name} c${c}: row loss (CUDA vs CPU)`, res.gpu[1], res.cpu[1]);
        if (t.name === "plain") {
          const grad = new Float64Array(n * c), rowLoss = new Float64Array(n);
          for (let i = 0; i < n; i++) {
            let mx = -Infinity;
            for (let j = 0; j < c; j++) mx = Math.max(mx, logits[i * c + j]);
            let s = 0;
            for (let j = 0; j < c; j++) s += Math.exp(logits[i * c + j] - mx);
            rowLoss[i] = Math.log(s) + mx - logits[i * c + labels[i]];
            for (let j = 0; j < c; j++) {
              grad[i * c + j] = (Math.exp(logits[i * c + j] - mx) / s - (labels[i] === j ? 1 : 0)) /
                n;
            }
          }
          lossClose(`softmax loss plain c${c}: grad (CUDA vs float64)`, res.gpu[0], grad);
          lossClose(`softmax loss plain c${c}: row loss (CUDA vs float64)`, res.gpu[1], rowLoss);
        }
      }
    }
  },
});

Deno.test({
  name: "parity: a row with a non-finite logit gets a NaN row loss; the other rows are untouched",
  ignore: !gpu,
  fn() {
    const n = 6, c = 40, r = new Rng(85);
    const logits = r.f32(n * c, -4, 4);
    logits[2 * c + 7] = Number.NaN;
    logits[4 * c + 1] = Number.POSITIVE_INFINITY;
    const tail = Float32Array.from({ length: c }, (_, j) => j % 2);
    const sig = both([logits, Int32Array.from([0, 5, 9, c, 3, c]), tail], [["f32", n * c], [
      "f32",
      n,
    ]], (d, [pl, py, ps], [pg, pr]) =>
      d.sigmoidLoss(pl!, py!, pg, pr, {
        n,
        c,
        scale: 1 / n,
        suppress: ps,
        backgroundExempt: true,
        focalGamma: 0,
        focalAlpha: -1,
      }));
    const soft = both([logits, Int32Array.from([0, 5, 9, 1, 3, 2]), tail], [["f32", n * c], [
      "f32",
      n,
    ]], (d, [pl, py, ps], [pg, pr]) =>
      d.softmaxLoss(pl!, py!, pg, pr, {
        n,
        c,
        scale: 1 / n,
        suppress: ps,
        gammaThreshold: gammaThreshold(1),
        seed: 3,
        counter: 0,
      }));
    for (const [name, res] of [["sigmoid", sig], ["softmax", soft]] as const) {
      const rows = res.gpu[1];
      assert.ok(Number.isNaN(rows[2]) && Number.isNaN(rows[4]), `${name}: ${rows}`);
      for (const i of [0, 1, 3, 5]) {
        assert.ok(Number.isFinite(rows[i]), `${name}: row ${i} is ${rows[i]}`);
        assertClose(`${name} row ${i}`, [rows[i]], [res.cpu[1][i]], 1e-5);
        const g = res.gpu[0].subarray(i * c, (i + 1) * c),
          w = res.cpu[0].subarray(i * c, (i + 1) * c);
        lossClose(`${name} grad row ${i}`, g, w);
      }
      assert.ok(Number.isNaN(res.cpu[1][2]) && Number.isNaN(res.cpu[1][4]), `${name} (CPU)`);
    }
  },
});

Deno.test({
  name: "parity: smooth-L1 (Huber and plain L1) with row weights",
  ignore: !gpu,
  fn() {
    const n = 300, d = 4, r = new Rng(90);
    const pred = r.f32(n * d, -3, 3), target = r.f32(n * d, -3, 3);
    const w = Float32Array.from({ length: n }, () => r.next() < 0.3 ? 0 : r.uniform(0.5, 2));
    for (const beta of [1, 1 / 9, 0]) {
      const res = both(
        [pred, target, w],
        [["f32", n * d], ["f32", n]],
        (dev, [pp, pt, pw], [pg, pr]) =>
          dev.smoothL1Loss(pp!, pt!, pw!, pg, pr, { n, d, beta, scale: 1 / n }),
      );
      const grad = new Float64Array(n * d), rowLoss = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < d; j++) {
          const x = pred[i * d + j] - target[i * d + j], ax = Math.abs(x);
          const l = beta > 0 && ax < beta ? 0.5 * x * x / beta : ax - 0.5 * beta;
          const g = beta > 0 && ax < beta ? x / beta : Math.sign(x);
          rowLoss[i] += w[i] * l;
          grad[i * d + j] = w[i] * g / n;
        }
      }
      assertClose(`smooth-L1 β ${beta}: grad`, res.gpu[0], grad, 1e-6, 1e-7 * maxAbs(grad));
      assertClose(
        `smooth-L1 β ${beta}: row loss`,
        res.gpu[1],
        rowLoss,
        1e-6,
        1e-7 * maxAbs(rowLoss),
      );
      assertClose(
        `smooth-L1 β ${beta}: grad (CPU)`,
        res.gpu[0],
        res.cpu[0],
        2e-6,
        2e-7 * maxAbs(grad),
      );
      assertClose(
        `smooth-L1 β ${beta}: row loss (CPU)`,
        res.gpu[1],
        res.cpu[1],
        2e-6,
        2e-7 * maxAbs(rowLoss),
      );
    }
  },
});

// ── a whole ResNet-32 training step ──────────────────────────────────────────────────────────

Deno.test({
  name: "parity: one ResNet-32 training step (forward, loss, backward, SGD) on both devices",
  ignore: !gpu,
  async fn() {
    let mod: typeof import("../src/nn/resnet.ts");
    let lossMod: typeof import("../src/losses/softmax_cross_entropy.ts");
    try {
      mod = await import("../src/nn/resnet.ts");
      lossMod = await import("../src/losses/softmax_cross_entropy.ts");
    } catch (e) {
      console.log(`ResNet-32 parity skipped: the model could not be loaded (${e})`);
      return;
    }
    const batch = 8, classes = 10, r = new Rng(100);
    const images = r.f32(batch * 3 * 32 * 32, -2, 2);
    const labels = Int32Array.from({ length: batch }, () => r.int(classes));
    const step = (device: Device) => {
      const net = mod.resnet32({ numClasses: classes, device, seed: 7 });
      const x = tensor(images, [batch, 3, 32, 32], device);
      const logits = net.forward(x, true);
      const { loss, grad } = lossMod.softmaxCrossEntropy(logits, labels);
      const logitsHost = logits.toArray() as Float32Array;
      net.backward(grad);
      const params = net.parameters();
      const grads = params.map((p) => p.grad.toArray() as Float32Array);
      for (const p of params) {
        const buf = device.alloc("f32", p.value.size);
        device.sgdUpdate(p.value.buffer, p.grad.buffer, buf, {
          length: p.value.size,
          lr: 0.1,
          momentum: 0.9,
          weightDecay: 5e-4,
          nesterov: false,
        });
        device.free(buf);
      }
      const after = params.map((p) => p.value.toArray() as Float32Array);
      const state = net.stateTensors().map((s) => s.value.toArray() as Float32Array);
      const names = params.map((p) => p.name);
      grad.dispose();
      x.dispose();
      net.dispose();
      return { loss, logitsHost, grads, after, state, names };
    };
    const g = step(cuda()), c = step(cpu);
    // 31 convolution + batch-norm layers in float32 with different summation orders: the
    // differences stay at the 1e-4 level of each tensor's largest value.
    assert.ok(Math.abs(g.loss - c.loss) <= 1e-5 * Math.abs(c.loss), `loss ${g.loss} vs ${c.loss}`);
    assertClose("ResNet-32 logits", g.logitsHost, c.logitsHost, 0, 1e-4 * maxAbs(c.logitsHost));
    // The backward pass is not continuous: a ReLU input within float32 rounding of zero can fall
    // on different sides on the two devices, which moves a few gradient elements by a discrete
    // amount (seen: one element of layer1.1.bn1.bias and the pixels feeding it). So each
    // gradient is compared as a whole (relative L2 error) and element-wise for all but a few
    // elements, rather than every element at once.
    let diff2 = 0, norm2 = 0, outliers = 0, total = 0;
    for (let i = 0; i < g.grads.length; i++) {
      const a = g.grads[i], b = c.grads[i], bound = 2e-3 * maxAbs(b);
      let d2 = 0, n2 = 0;
      for (let k = 0; k < b.length; k++) {
        const e = a[k] - b[k];
        d2 += e * e;
        n2 += b[k] * b[k];
        if (Math.abs(e) > bound) outliers++;
      }
      total += b.length;
      diff2 += d2;
      norm2 += n2;
      const rel = Math.sqrt(d2 / n2);
      assert.ok(rel <= 2e-2, `ResNet-32 grad of ${g.names[i]}: relative L2 error ${rel}`);
      // After SGD the parameters differ by lr times the gradients' difference, plus rounding.
      const after = g.after[i], ref = c.after[i], round = 1e-6 * maxAbs(ref);
      for (let k = 0; k < ref.length; k++) {
        const allowed = 0.1 * Math.abs(a[k] - b[k]) * (1 + 1e-3) + round;
        if (!(Math.abs(after[k] - ref[k]) <= allowed)) {
          assert.fail(
            `ResNet-32 ${g.names[i]} after SGD: element ${k} is ${after[k]}, expected ${
              ref[k]
            } ± ${allowed}`,
          );
        }
      }
    }
    const globalRel = Math.sqrt(diff2 / norm2);
    assert.ok(globalRel <= 5e-3, `ResNet-32 gradients: relative L2 error ${globalRel}`);
    assert.ok(outliers <= total * 1e-3, `ResNet-32 gradients: ${outliers} of ${total} off`);
    for (let i = 0; i < g.state.length; i++) {
      assertClose(`ResNet-32 state ${i}`, g.state[i], c.state[i], 1e-4, 1e-4 * maxAbs(c.state[i]));
    }
  },
});

Deno.test({
  name: "parity: release the CUDA device",
  ignore: !gpu,
  fn() {
    cudaShared?.dispose();
    cudaShared = undefined;
  },
});

// ── EQLv2 and Seesaw ─────────────────────────────────────────────────────────────────────────

/** Labels in 0..max with every value of `forced` placed first (background rows included). */
function labelsWith(r: Rng, n: number, max: number, forced: number[]): Int32Array {
  const y = Int32Array.from({ length: n }, () => r.int(max + 1));
  forced.forEach((v, i) => (y[i] = v));
  return y;
}

Deno.test({
  name: "parity: eqlv2Loss rows, gradient and column statistics (warp and block layouts)",
  ignore: !gpu,
  fn() {
    for (const [n, c] of [[37, 101], [19, 1231]]) {
      const r = new Rng(90 + c);
      const logits = r.f32(n * c, -6, 6);
      const labels = labelsWith(r, n, c - 1, [c - 1, 0, c - 2]);
      const pw = r.f32(c, 1, 5), nw = r.f32(c, 0, 1);
      const res = both(
        [logits, labels, pw, nw],
        [["f32", n * c], ["f32", n], [
          "f32",
          2 * c,
        ]],
        (d, [pl, py, pp, pn], [pg, pr, ps]) =>
          d.eqlv2Loss(pl!, py!, pg, pr, ps, { n, c, scale: 1 / n, posWeight: pp!, negWeight: pn! }),
      );
      // float64 reference
      const grad = new Float64Array(n * c), rows = new Float64Array(n);
      const stats = new Float64Array(2 * c);
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < c; j++) {
          const z = logits[i * c + j], y = labels[i] === j ? 1 : 0;
          const w = y ? pw[j] : nw[j];
          const d = y ? -1 / (1 + Math.exp(z)) : 1 / (1 + Math.exp(-z));
          rows[i] += w * (Math.max(z, 0) - z * y + Math.log1p(Math.exp(-Math.abs(z))));
          grad[i * c + j] = (w * d) / n;
          stats[y ? j : c + j] += w * Math.abs(d);
        }
      }
      lossClose(`eqlv2 c${c}: grad (CUDA vs float64)`, res.gpu[0], grad);
      lossClose(`eqlv2 c${c}: grad (CUDA vs CPU)`, res.gpu[0], res.cpu[0]);
      lossClose(`eqlv2 c${c}: row loss (CUDA vs float64)`, res.gpu[1], rows);
      assertClose(`eqlv2 c${c}: statistics (CUDA vs float64)`, res.gpu[2], stats, 1e-5, 1e-30);
      assertClose(`eqlv2 c${c}: statistics (CUDA vs CPU)`, res.gpu[2], res.cpu[2], 2e-5, 1e-30);
    }
  },
});

Deno.test({
  name: "parity: seesawLoss rows and gradient (warp and block layouts), bad rows poisoned",
  ignore: !gpu,
  fn() {
    for (const [n, C] of [[41, 60], [23, 1230]]) {
      const c = C + 2, r = new Rng(95 + C);
      const logits = r.f32(n * c, -5, 5);
      logits[3 * c + 1] = Number.NaN;
      const labels = labelsWith(r, n, C, [C, 0, C - 1]);
      const logCount = Float32Array.from({ length: C }, () => Math.log(1 + r.int(5000)));
      const res = both([logits, labels, logCount], [["f32", n * c], ["f32", n]], (
        d,
        [pl, py, pk],
        [pg, pr],
      ) =>
        d.seesawLoss(pl!, py!, pg, pr, {
          n,
          c,
          scale: 1 / n,
          logCount: pk!,
          p: 0.8,
          q: 2,
          eps: 1e-2,
        }));
      assert.ok(Number.isNaN(res.gpu[1][3]) && Number.isNaN(res.cpu[1][3]), "row 3 is poisoned");
      const keep = (a: Float32Array, width: number) =>
        a.filter((_, k) => Math.floor(k / width) !== 3);
      lossClose(`seesaw C${C}: grad (CUDA vs CPU)`, keep(res.gpu[0], c), keep(res.cpu[0], c));
      lossClose(`seesaw C${C}: row loss (CUDA vs CPU)`, keep(res.gpu[1], 1), keep(res.cpu[1], 1));
    }
  },
});

Deno.test({
  name: "parity: the EQLv2 and Seesaw criteria take the same steps on CUDA and the CPU",
  ignore: !gpu,
  fn() {
    const C = 300, n = 64, r = new Rng(99);
    const steps = [0, 1, 2].map(() => ({
      z1: r.f32(n * (C + 1), -4, 4),
      z2: r.f32(n * (C + 2), -4, 4),
      y: labelsWith(r, n, C, [C]),
    }));
    const trace = (d: Device): number[][] => {
      const e = new Eqlv2Criterion({ numClasses: C }), s = new SeesawCriterion({ numClasses: C });
      const out: number[][] = [];
      for (const { z1, z2, y } of steps) {
        using a = tensor(z1, [n, C + 1], d), b = tensor(z2, [n, C + 2], d);
        using ra = e.compute(a, y);
        using rb = s.compute(b, y);
        out.push([ra.loss, rb.loss], [...e.state().neg_grad]);
      }
      return out;
    };
    const g = trace(cuda()), h = trace(cpu);
    g.forEach((row, k) => assertClose(`criteria step ${k >> 1}`, row, h[k], 2e-5, 1e-30));
  },
});
