// Batch norm with the residual block's tail (`shape.relu`, a residual, `dResidual`) on the CPU
// devices, native and TypeScript kernels side by side: the fused operations agree bit for bit with
// batch norm, add and ReLU run one after the other, in training, inference and backward, also when
// the output overwrites the residual; and BatchNorm2d refuses a residual it cannot use.

import assert from "node:assert/strict";
import { CpuDevice } from "../src/device/cpu.ts";
import type {
  BatchNormGrads,
  BatchNormParams,
  BatchNormShape,
  Device,
  DeviceBuffer,
} from "../src/device/device.ts";
import { tensor } from "../src/tensor.ts";
import { BatchNorm2d } from "../src/nn/batchnorm.ts";
import { gaussian } from "./gradcheck.ts";

function devices(): [string, Device][] {
  const out: [string, Device][] = [["TypeScript", new CpuDevice({ kernels: "typescript" })]];
  try {
    out.unshift(["native", new CpuDevice({ kernels: "native" })]);
  } catch (e) {
    console.log(`batchnorm_relu_test.ts: native kernels skipped: ${(e as Error).message}`);
  }
  return out;
}
const DEVICES = devices();

function sameBits(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length);
  const ai = new Int32Array(a.buffer, a.byteOffset, a.length);
  const bi = new Int32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < a.length; i++) {
    if (ai[i] !== bi[i]) assert.fail(`${what}[${i}]: fused ${a[i]}, composed ${b[i]}`);
  }
}

/** Uploads host data into fresh buffers and reads them back. */
class Buffers {
  readonly live: DeviceBuffer[] = [];
  constructor(readonly device: Device) {}

  of(data: Float32Array): DeviceBuffer {
    const b = this.device.alloc("f32", data.length);
    this.device.upload(b, data);
    this.live.push(b);
    return b;
  }

  zeros(length: number): DeviceBuffer {
    return this.of(new Float32Array(length));
  }

  read(b: DeviceBuffer): Float32Array {
    const out = new Float32Array(b.length);
    this.device.download(b, out);
    return out;
  }

  params(c: number): BatchNormParams {
    return {
      gamma: this.of(gaussian(c, 4)),
      beta: this.of(gaussian(c, 5)),
      runningMean: this.of(gaussian(c, 6)),
      runningVar: this.of(new Float32Array(c).fill(1.5)),
      saveMean: this.zeros(c),
      saveInvStd: this.zeros(c),
    };
  }

  grads(len: number, c: number, dResidual: boolean): BatchNormGrads {
    const g: BatchNormGrads = { dx: this.zeros(len), dGamma: this.zeros(c), dBeta: this.zeros(c) };
    if (dResidual) g.dResidual = this.zeros(len);
    return g;
  }

  free(): void {
    for (const b of this.live) this.device.free(b);
  }
}

const GEOMETRIES: [string, { n: number; c: number; hw: number }][] = [
  ["[4, 8, 5, 6]", { n: 4, c: 8, hw: 30 }],
  ["[6, 3]", { n: 6, c: 3, hw: 1 }],
];

for (const [kernels, dev] of DEVICES) {
  for (const [label, g] of GEOMETRIES) {
    for (const withResidual of [true, false]) {
      Deno.test(`${kernels} kernels: fused batch norm + ${withResidual ? "residual + " : ""}ReLU on ${label} equals the separate ops`, () => {
        const len = g.n * g.c * g.hw;
        const fused: BatchNormShape = { ...g, eps: 1e-5, momentum: 0.1, relu: true };
        const plain: BatchNormShape = { ...fused, relu: false };
        const b = new Buffers(dev);
        try {
          const x = b.of(gaussian(len, 1)), dy = b.of(gaussian(len, 3));
          const residual = withResidual ? b.of(gaussian(len, 2)) : undefined;
          const p1 = b.params(g.c), p2 = b.params(g.c);

          // Training forward.
          const y1 = b.zeros(len), y2 = b.zeros(len);
          dev.batchNormForwardTraining(x, y1, p1, fused, residual);
          dev.batchNormForwardTraining(x, y2, p2, plain);
          if (residual) dev.add(y2, residual, y2, len);
          dev.reluForward(y2, y2, len);
          sameBits(b.read(y1), b.read(y2), "y");
          for (const k of ["saveMean", "saveInvStd", "runningMean", "runningVar"] as const) {
            sameBits(b.read(p1[k]), b.read(p2[k]), k);
          }

          // Backward: fused against reluBackward, then the plain backward.
          const g1 = b.grads(len, g.c, withResidual), g2 = b.grads(len, g.c, false);
          dev.batchNormBackward(x, y1, dy, g1, p1, fused);
          const masked = b.zeros(len);
          dev.reluBackward(y2, dy, masked, len);
          dev.batchNormBackward(x, y2, masked, g2, p2, plain);
          for (const k of ["dx", "dGamma", "dBeta"] as const) {
            sameBits(b.read(g1[k]), b.read(g2[k]), k);
          }
          if (withResidual) sameBits(b.read(g1.dResidual!), b.read(masked), "dResidual");

          // Inference forward.
          const e1 = b.zeros(len), e2 = b.zeros(len);
          dev.batchNormForwardInference(x, e1, p1, fused, residual);
          dev.batchNormForwardInference(x, e2, p2, plain);
          if (residual) dev.add(e2, residual, e2, len);
          dev.reluForward(e2, e2, len);
          sameBits(b.read(e1), b.read(e2), "inference y");

          // The ReLU really applies: no negative output, and some gradient is blocked.
          const y = b.read(y1);
          assert.ok(y.every((v) => v >= 0));
          assert.ok(y.some((v) => v === 0));
        } finally {
          b.free();
        }
      });
    }
  }

  Deno.test(`${kernels} kernels: the tail may write over its residual (and a residual without ReLU is added)`, () => {
    const g = { n: 3, c: 4, hw: 10 }, len = g.n * g.c * g.hw;
    const b = new Buffers(dev);
    try {
      const x = b.of(gaussian(len, 7)), res = gaussian(len, 8);
      for (const relu of [true, false]) {
        const shape: BatchNormShape = { ...g, eps: 1e-5, momentum: 0.1, relu };
        for (const training of [true, false]) {
          const p1 = b.params(g.c), p2 = b.params(g.c);
          const run = (y: DeviceBuffer, p: BatchNormParams, r: DeviceBuffer) =>
            training
              ? dev.batchNormForwardTraining(x, y, p, shape, r)
              : dev.batchNormForwardInference(x, y, p, shape, r);
          const apart = b.zeros(len), shared = b.of(res);
          run(apart, p1, b.of(res));
          run(shared, p2, shared);
          const what = `${training ? "training" : "inference"}, relu ${relu}`;
          // Close, not bit for bit: the native device may take its TypeScript path when y is the
          // residual, whose sums run in another order.
          const got = b.read(shared), want = b.read(apart);
          for (let i = 0; i < len; i++) {
            const tol = 1e-6 * (1 + Math.abs(want[i]));
            assert.ok(Math.abs(got[i] - want[i]) <= tol, `${what}: ${got[i]} vs ${want[i]}`);
          }
          if (!relu) {
            // Without the ReLU the residual is still added: y − residual is the plain batch norm.
            const plainY = b.zeros(len);
            const p3 = b.params(g.c);
            if (training) dev.batchNormForwardTraining(x, plainY, p3, shape);
            else dev.batchNormForwardInference(x, plainY, p3, shape);
            const base = b.read(plainY);
            for (let i = 0; i < len; i++) {
              assert.equal(want[i], Math.fround(base[i] + res[i]), `${what}: y[${i}]`);
            }
          }
        }
      }
    } finally {
      b.free();
    }
  });
}

Deno.test("BatchNorm2d refuses a residual without relu and a residual gradient before backward", () => {
  const x = tensor(gaussian(2 * 3 * 4, 6), [2, 3, 2, 2]);
  assert.throws(
    () => new BatchNorm2d(3).forward(x, true, x),
    /residual needs a layer built with relu: true/,
  );
  const bn = new BatchNorm2d(3, { relu: true });
  bn.forward(x, true, x);
  assert.throws(
    () => bn.residualGradient,
    /needs a training forward with a residual and a backward/,
  );
  assert.throws(
    () => bn.forward(x, true, tensor(new Float32Array(6), [2, 3])),
    /residual/,
  );
  bn.forward(x, true);
  bn.backward(x);
  assert.throws(() => bn.residualGradient, /needs a training forward with a residual/);
});
