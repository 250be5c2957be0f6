// BatchNorm2d with relu: true, y = max(bn(x) + residual, 0): the fused device kernels agree bit for
// bit with batch norm, add and ReLU run one after the other (the path of devices without them).

import assert from "node:assert/strict";
import { CpuDevice, cpuDevice } from "../src/device/cpu.ts";
import { tensor } from "../src/tensor.ts";
import { BatchNorm2d } from "../src/nn/batchnorm.ts";
import { gaussian } from "./gradcheck.ts";

/** A CPU device without the optional fused kernels, as a device that lacks them is seen. */
function unfusedDevice(): CpuDevice {
  const device = new CpuDevice();
  for (const name of ["batchNormReluForwardTraining", "batchNormReluBackward"]) {
    Object.defineProperty(device, name, { value: undefined });
  }
  return device;
}

function sameBits(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length);
  const ai = new Int32Array(a.buffer, a.byteOffset, a.length);
  const bi = new Int32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < a.length; i++) {
    if (ai[i] !== bi[i]) assert.fail(`${what}[${i}]: fused ${a[i]}, unfused ${b[i]}`);
  }
}

for (const [label, shape] of [["[4, 8, 5, 6]", [4, 8, 5, 6]], ["[6, 3]", [6, 3]]] as const) {
  for (const withResidual of [true, false]) {
    Deno.test(`fused batch norm + ${withResidual ? "residual + " : ""}ReLU on ${label} equals the separate ops`, () => {
      const size = shape.reduce((a, b) => a * b, 1), c = shape[1];
      const xs = gaussian(size, 1), rs = gaussian(size, 2), dys = gaussian(size, 3);
      const gammas = gaussian(c, 4), betas = gaussian(c, 5);
      const results = [cpuDevice(), unfusedDevice()].map((device) => {
        const bn = new BatchNorm2d(c, { device, relu: true });
        device.upload(bn.weight.value.buffer, gammas);
        device.upload(bn.bias.value.buffer, betas);
        const x = tensor(xs, shape, device), r = tensor(rs, shape, device);
        const y = bn.forward(x, true, withResidual ? r : undefined).toArray() as Float32Array;
        const dx = bn.backward(tensor(dys, shape, device)).toArray() as Float32Array;
        const dr = withResidual ? bn.residualGradient.toArray() as Float32Array : undefined;
        const out = {
          y,
          dx,
          dr,
          dGamma: bn.weight.grad.toArray() as Float32Array,
          dBeta: bn.bias.grad.toArray() as Float32Array,
          runningVar: bn.runningVar.toArray() as Float32Array,
          eval: bn.forward(x, false, withResidual ? r : undefined).toArray() as Float32Array,
        };
        bn.dispose();
        return out;
      });
      const [fused, plain] = results;
      for (const key of ["y", "dx", "dGamma", "dBeta", "runningVar", "eval"] as const) {
        sameBits(fused[key], plain[key], key);
      }
      if (withResidual) sameBits(fused.dr!, plain.dr!, "residual gradient");
      // The ReLU really applies: no negative output, and some gradient is blocked.
      assert.ok(fused.y.every((v) => v >= 0));
      assert.ok(fused.y.some((v) => v === 0));
    });
  }
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
