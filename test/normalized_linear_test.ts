// NormalizedLinear (the Seesaw head's cosine classifier): the forward pass against a float64
// loop of mmdetection's NormedLinear formula, the gradients of the input, weight and bias
// against central differences (test/gradcheck.ts), on the CPU device with both kernel choices.

import assert from "node:assert/strict";
import { CpuDevice } from "../src/device/cpu.ts";
import { tensor } from "../src/tensor.ts";
import { NormalizedLinear } from "../src/nn/normalized_linear.ts";
import { checkGradients, gaussian } from "./gradcheck.ts";

const DEVICES = [
  new CpuDevice({ kernels: "typescript", gemm: "typescript" }),
  new CpuDevice({ kernels: "auto" }),
];

/** τ·(x_i/(‖x_i‖ + ε))·(W_j/(‖W_j‖ + ε)) + b_j in float64. */
function reference(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  b: ArrayLike<number>,
  n: number,
  inF: number,
  out: number,
  tau: number,
  eps: number,
): Float64Array {
  const norm = (v: ArrayLike<number>, i: number) => {
    let s = 0;
    for (let k = 0; k < inF; k++) s += v[i * inF + k] ** 2;
    return Math.sqrt(s) + eps;
  };
  const y = new Float64Array(n * out);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < out; j++) {
      let dot = 0;
      for (let k = 0; k < inF; k++) dot += x[i * inF + k] * w[j * inF + k];
      y[i * out + j] = (tau * dot) / (norm(x, i) * norm(w, j)) + b[j];
    }
  }
  return y;
}

Deno.test("NormalizedLinear: forward matches the float64 formula; outputs lie within ±τ", () => {
  for (const device of DEVICES) {
    const n = 6, inF = 9, out = 5;
    const layer = new NormalizedLinear(inF, out, { device, seed: 3, weightStd: 1 });
    const bias = gaussian(out, 4);
    device.upload(layer.bias!.value.buffer, bias);
    const xs = gaussian(n * inF, 5, 3);
    xs.fill(0, 0, inF); // a zero row: ε keeps it finite, its output is the bias
    using x = tensor(xs, [n, inF], device);
    const y = layer.forward(x, true).toArray() as Float32Array;
    const w = layer.weight.value.toArray() as Float32Array;
    const ref = reference(xs, w, bias, n, inF, out, 20, 1e-6);
    for (let k = 0; k < y.length; k++) {
      assert.ok(Math.abs(y[k] - ref[k]) <= 2e-5 * (1 + Math.abs(ref[k])), `y[${k}]`);
      assert.ok(Math.abs(y[k] - bias[k % out]) <= 20 + 1e-4, `y[${k}] within ±τ of the bias`);
    }
    layer.dispose();
  }
});

Deno.test("NormalizedLinear: input, weight and bias gradients match central differences", () => {
  for (const device of DEVICES) {
    for (const [temperature, bias] of [[20, true], [3, false]] as const) {
      const n = 4, inF = 7, out = 5;
      const layer = new NormalizedLinear(inF, out, {
        device,
        seed: 11,
        weightStd: 0.5,
        temperature,
        bias,
      });
      using x = tensor(gaussian(n * inF, 12), [n, inF], device);
      const r = gaussian(n * out, 13);
      const { checked } = checkGradients(layer, x, r, (dx) => [
        { name: "dx", value: x, analytic: dx },
        {
          name: "dW",
          value: layer.weight.value,
          analytic: (layer.weight.grad.toArray() as Float32Array).slice(),
        },
        ...(bias
          ? [{
            name: "db",
            value: layer.bias!.value,
            analytic: (layer.bias!.grad.toArray() as Float32Array).slice(),
          }]
          : []),
      ], { eps: 1e-2, rtol: 2e-3 });
      assert.equal(checked, n * inF + out * inF + (bias ? out : 0));
      layer.dispose();
    }
  }
});

Deno.test("NormalizedLinear: bad options and inputs are refused with named errors", () => {
  assert.throws(
    () => new NormalizedLinear(3, 2, { biasInit: NaN }),
    /biasInit must be a finite number, got NaN/,
  );
  assert.throws(
    () => new NormalizedLinear(3, 2, { bias: false, biasInit: 1 }),
    /biasInit needs the bias \(bias is false\)/,
  );
  {
    const layer = new NormalizedLinear(3, 2, { biasInit: -2.5 });
    assert.deepEqual(Array.from(layer.bias!.value.toArray()), [-2.5, -2.5]);
    layer.dispose();
  }
  assert.throws(() => new NormalizedLinear(0, 3), /inFeatures must be an integer ≥ 1, got 0/);
  assert.throws(
    () => new NormalizedLinear(3, 3, { temperature: 0 }),
    /temperature must be a finite number > 0, got 0/,
  );
  const layer = new NormalizedLinear(3, 2);
  using x = tensor(new Float32Array(8), [2, 4]);
  assert.throws(() => layer.forward(x, true), /NormalizedLinear\.forward: x/);
  layer.dispose();
});

Deno.test("NormalizedLinear: x̂ and ∂L/∂Ŵ are exposed, and τ·dyᵀ·x̂ is the gradient of Ŵ", () => {
  const device = DEVICES[1];
  const n = 4, inF = 6, out = 3, tau = 7;
  const layer = new NormalizedLinear(inF, out, { device, seed: 2, temperature: tau });
  assert.throws(() => layer.normalizedInput, /needs a forward first/);
  assert.throws(() => layer.normalizedWeightGrad, /needs a backward first/);
  const xs = gaussian(n * inF, 6, 2);
  using x = tensor(xs, [n, inF], device);
  layer.forward(x, true);
  const unit = layer.normalizedInput.toArray() as Float32Array;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = 0; k < inF; k++) s += xs[i * inF + k] ** 2;
    const r = Math.sqrt(s) + 1e-6;
    for (let k = 0; k < inF; k++) {
      assert.ok(Math.abs(unit[i * inF + k] - xs[i * inF + k] / r) <= 1e-6, `x̂[${i}, ${k}]`);
    }
  }
  const dys = gaussian(n * out, 7);
  using dy = tensor(dys, [n, out], device);
  layer.backward(dy);
  const dw = layer.normalizedWeightGrad.toArray() as Float32Array;
  for (let j = 0; j < out; j++) {
    for (let k = 0; k < inF; k++) {
      let want = 0;
      for (let i = 0; i < n; i++) want += tau * dys[i * out + j] * unit[i * inF + k];
      assert.ok(Math.abs(dw[j * inF + k] - want) <= 1e-5 * (1 + Math.abs(want)), `dŴ[${j}, ${k}]`);
    }
  }
  layer.dispose();
});
