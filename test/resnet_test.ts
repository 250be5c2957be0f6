// The basic block and the CIFAR ResNets: parameter counts and names, the option-A shortcut,
// gradient checks of a block and of a tiny ResNet, batch-norm bookkeeping, inference helpers and
// one SGD step lowering the loss on a fixed batch.

import assert from "node:assert/strict";
import { CpuDevice } from "../src/device/cpu.ts";
import { type Tensor, tensor, zeros } from "../src/tensor.ts";
import { BasicBlock } from "../src/nn/basic_block.ts";
import { resnet, resnet32 } from "../src/nn/resnet.ts";
import { countersOf, parameterCount } from "../src/nn/named.ts";
import { SGD } from "../src/optim/sgd.ts";
import { softmaxCrossEntropy } from "../src/losses/softmax_cross_entropy.ts";
import { checkDirectional, checkGradients, gaussian, type Target } from "./gradcheck.ts";
import type { Layer } from "../src/nn/layer.ts";

/** Every parameter of `layer` (plus the input) as gradient-check targets. */
function allTargets(layer: Layer, x: Tensor<"f32">): (dx: Float32Array) => Target[] {
  return (dx) => [
    { name: "input", value: x, analytic: dx },
    ...layer.parameters().map((p) => ({
      name: p.name,
      value: p.value,
      analytic: (p.grad.toArray() as Float32Array).slice(),
    })),
  ];
}

/** Naive option-A shortcut in float64: stride-2 subsample, channels padded on both sides. */
function naiveShortcut(x: Float32Array, [n, c, h, w]: number[], cOut: number): Float64Array {
  const oh = Math.ceil(h / 2), ow = Math.ceil(w / 2), pad = (cOut - c) / 2;
  const y = new Float64Array(n * cOut * oh * ow);
  for (let b = 0; b < n; b++) {
    for (let ci = 0; ci < c; ci++) {
      for (let i = 0; i < oh; i++) {
        for (let j = 0; j < ow; j++) {
          y[((b * cOut + ci + pad) * oh + i) * ow + j] = x[((b * c + ci) * h + 2 * i) * w + 2 * j];
        }
      }
    }
  }
  return y;
}

/** Exact element-wise equality (+0 and −0 count as equal). */
function sameValues(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(
      actual[i] === expected[i],
      `${what}[${i}]: got ${actual[i]}, expected ${expected[i]}`,
    );
  }
}

/** Float64 mean softmax cross-entropy of logits [n, c]. */
function crossEntropy(z: Float32Array, labels: Int32Array, c: number): number {
  let total = 0;
  for (let i = 0; i < labels.length; i++) {
    let m = -Infinity;
    for (let j = 0; j < c; j++) m = Math.max(m, z[i * c + j]);
    let s = 0;
    for (let j = 0; j < c; j++) s += Math.exp(z[i * c + j] - m);
    total += m + Math.log(s) - z[i * c + labels[i]];
  }
  return total / labels.length;
}

Deno.test("ResNet parameter counts: ResNet-32 470,004 (100 classes), 464,154 (10), ResNet-20/44/56/110", () => {
  const r32 = resnet32({ numClasses: 100 });
  assert.equal(parameterCount(r32), 470_004);
  r32.dispose();
  const r32b = resnet32({ numClasses: 10 });
  assert.equal(parameterCount(r32b), 464_154);
  r32b.dispose();
  // The counts of the common PyTorch implementation for 10 classes.
  for (const [depth, count] of [[20, 269_722], [44, 658_586], [56, 853_018], [110, 1_727_962]]) {
    const net = resnet({ depth, numClasses: 10 });
    assert.equal(parameterCount(net), count, `ResNet-${depth}`);
    net.dispose();
  }
  for (const depth of [0, 7, 18, 33, 32.5]) {
    assert.throws(() => resnet({ depth, numClasses: 10 }), {
      name: "RangeError",
      message: new RegExp(`depth must be 6n \\+ 2 with n ≥ 1 .*got ${depth}$`),
    });
  }
  assert.throws(
    () => resnet({ depth: 20, numClasses: 0 }),
    /numClasses must be an integer ≥ 1, got 0/,
  );
});

Deno.test("ResNet-32 names follow the PyTorch CIFAR-ResNet state_dict", () => {
  const net = resnet32({ numClasses: 100 });
  const expected: [string, number[]][] = [["conv1.weight", [16, 3, 3, 3]]];
  const bn = (p: string, c: number): void => {
    expected.push([`${p}.weight`, [c]], [`${p}.bias`, [c]]);
  };
  bn("bn1", 16);
  let inPlanes = 16;
  for (const [stage, planes] of [[1, 16], [2, 32], [3, 64]]) {
    for (let i = 0; i < 5; i++) {
      const p = `layer${stage}.${i}`;
      expected.push([`${p}.conv1.weight`, [planes, i === 0 ? inPlanes : planes, 3, 3]]);
      bn(`${p}.bn1`, planes);
      expected.push([`${p}.conv2.weight`, [planes, planes, 3, 3]]);
      bn(`${p}.bn2`, planes);
    }
    inPlanes = planes;
  }
  expected.push(["linear.weight", [100, 64]], ["linear.bias", [100]]);
  assert.deepEqual(net.parameters().map((p) => [p.name, [...p.value.shape]]), expected);
  const bnNames = expected.filter(([n]) => /bn\d\.weight$/.test(n)).map(([n]) => n.slice(0, -7));
  assert.equal(bnNames.length, 31);
  assert.deepEqual(
    net.stateTensors().map((s) => s.name),
    bnNames.flatMap((b) => [`${b}.running_mean`, `${b}.running_var`]),
  );
  assert.deepEqual(
    countersOf(net).map((c) => c.name),
    bnNames.map((b) => `${b}.num_batches_tracked`),
  );
  net.dispose();
});

Deno.test("option-A shortcut: a block whose residual branch is zero passes relu(shortcut(x))", () => {
  const cases: [number, number, number, number[]][] = [
    [4, 8, 2, [2, 4, 5, 6]],
    [3, 3, 1, [2, 3, 4, 4]],
  ];
  for (const [inPlanes, planes, stride, shape] of cases) {
    const block = new BasicBlock(inPlanes, planes, { stride, seed: 1 });
    // conv2 ≡ 0 makes bn2's output β = 0, so only the shortcut reaches the output.
    const w2 = block.conv2.weight.value;
    w2.device.upload(w2.buffer, new Float32Array(w2.size));
    const xs = gaussian(shape.reduce((a, b) => a * b), 2);
    const x = tensor(xs, shape);
    const y = block.forward(x, true);
    const sc = stride === 2 ? naiveShortcut(xs, shape, planes) : Float64Array.from(xs);
    assert.deepEqual([...y.shape], stride === 2 ? [2, planes, 3, 3] : [...shape]);
    sameValues(y.toArray(), Float32Array.from(sc, (v) => Math.max(v, 0)), "block output");
    // Backward: the residual branch contributes nothing (conv2's weights are zero), so dx is the
    // shortcut's adjoint applied to dy masked by the final ReLU.
    const dys = gaussian(y.size, 3);
    const dx = block.backward(tensor(dys, y.shape)).toArray();
    const expected = new Float32Array(xs.length);
    const [n, c, h, w] = shape, oh = y.shape[2], ow = y.shape[3], pad = (planes - c) / 2;
    for (let b = 0; b < n; b++) {
      for (let ci = 0; ci < c; ci++) {
        for (let i = 0; i < oh; i++) {
          for (let j = 0; j < ow; j++) {
            const o = ((b * planes + ci + pad) * oh + i) * ow + j;
            const src = stride === 2 ? ((b * c + ci) * h + 2 * i) * w + 2 * j : o;
            expected[src] = sc[o] > 0 ? dys[o] : 0;
          }
        }
      }
    }
    sameValues(dx, expected, "block input gradient");
    block.dispose();
  }
  assert.throws(() => new BasicBlock(16, 32, { stride: 1 }), /planes must equal inPlanes \(16\)/);
  assert.throws(() => new BasicBlock(16, 31, { stride: 2 }), /even difference/);
  assert.throws(() => new BasicBlock(16, 16, { stride: 3 }), /stride must be 1 or 2, got 3/);
});

Deno.test("BasicBlock gradients match central differences (identity and option-A)", () => {
  for (const [inPlanes, planes, stride] of [[2, 2, 1], [2, 4, 2]]) {
    const block = new BasicBlock(inPlanes, planes, { stride, seed: 7 });
    const x = tensor(gaussian(3 * inPlanes * 4 * 4, 8), [3, inPlanes, 4, 4]);
    const outSize = block.forward(x, true).size;
    const r = gaussian(outSize, 9);
    const { checked, skipped } = checkGradients(block, x, r, allTargets(block, x), {
      eps: 1e-3,
      rtol: 1e-2,
      samples: 16,
      skipKinks: true,
    });
    const probes = [x, ...block.parameters().map((p) => p.value)]
      .reduce((a, t) => a + Math.min(16, t.size), 0);
    assert.equal(checked + skipped, probes);
    assert.ok(skipped <= probes / 10, `${skipped} of ${probes} probes straddle a kink`);
    checkDirectional(block, x, r, allTargets(block, x), 1e-3, 1e-2);
    assert.deepEqual(block.parameters().map((p) => p.name), [
      "conv1.weight",
      "bn1.weight",
      "bn1.bias",
      "conv2.weight",
      "bn2.weight",
      "bn2.bias",
    ]);
    block.dispose();
  }
});

Deno.test("tiny ResNet (depth 8) gradients match central differences", () => {
  const net = resnet({ depth: 8, numClasses: 3, seed: 3 });
  const x = tensor(gaussian(4 * 3 * 8 * 8, 4), [4, 3, 8, 8]);
  const r = gaussian(4 * 3, 5);
  const { checked, skipped } = checkGradients(net, x, r, allTargets(net, x), {
    eps: 1e-3,
    rtol: 1e-2,
    samples: 4,
    skipKinks: true,
  });
  const probes = [x, ...net.parameters().map((p) => p.value)]
    .reduce((a, t) => a + Math.min(4, t.size), 0);
  assert.equal(checked + skipped, probes);
  assert.ok(skipped <= (checked + skipped) / 10, `${skipped} probes straddle a kink`);
  net.dispose();
});

Deno.test("ResNet batch-norm bookkeeping, evaluation mode and predictions", () => {
  const net = resnet({ depth: 8, numClasses: 5, seed: 1 });
  const x = tensor(gaussian(6 * 3 * 8 * 8, 2), [6, 3, 8, 8]);
  for (let i = 0; i < 3; i++) net.forward(x, true);
  assert.ok(countersOf(net).every((c) => c.get() === 3));
  const running = net.stateTensors().map((s) => s.value.toArray());
  assert.ok(
    running.some((v, i) => v.some((e) => e !== (i % 2 === 0 ? 0 : 1))),
    "running statistics moved",
  );
  const z = net.logits(x).toArray() as Float32Array;
  assert.ok(countersOf(net).every((c) => c.get() === 3), "evaluation counts no batch");
  assert.deepEqual(
    net.stateTensors().map((s) => s.value.toArray()),
    running,
    "evaluation keeps the statistics",
  );
  const pred = net.predict(x);
  for (let i = 0; i < 6; i++) {
    const row = z.subarray(i * 5, i * 5 + 5);
    assert.equal(pred[i], row.indexOf(Math.max(...row)));
  }
  // Evaluation-mode output of one image does not depend on the rest of the batch.
  const one = tensor(x.toArray().slice(0, 3 * 64) as Float32Array, [1, 3, 8, 8]);
  const z1 = net.logits(one).toArray();
  for (let j = 0; j < 5; j++) assert.ok(Math.abs(z1[j] - z[j]) < 1e-5);
  net.dispose();
});

Deno.test("ResNet validates its input", () => {
  const net = resnet({ depth: 8, numClasses: 2 });
  assert.throws(
    () => net.forward(zeros([2, 1, 8, 8]), true),
    /ResNet.forward: x must have 3 channels/,
  );
  assert.throws(
    () => net.forward(zeros([2, 3, 8]), true),
    /ResNet.forward: x must have shape \[N, C, H, W\]/,
  );
  assert.throws(() => net.forward(zeros([2, 3, 8, 8], new CpuDevice()), true), {
    name: "TypeError",
    message: /ResNet.forward: x must live on the layer's device/,
  });
  net.dispose();
  const gray = resnet({ depth: 8, numClasses: 2, inChannels: 1 });
  assert.deepEqual(gray.forward(zeros([2, 1, 8, 8]), true).shape, [2, 2]);
  gray.dispose();
});

Deno.test("same seed, same model; different seed, different weights", () => {
  const a = resnet({ depth: 8, numClasses: 4, seed: 12 }),
    b = resnet({ depth: 8, numClasses: 4, seed: 12 });
  const c = resnet({ depth: 8, numClasses: 4, seed: 13 });
  const values = (m: Layer): Float32Array[] =>
    m.parameters().map((p) => p.value.toArray() as Float32Array);
  assert.deepEqual(values(a), values(b));
  assert.notDeepEqual(values(a)[0], values(c)[0]);
  for (const m of [a, b, c]) m.dispose();
});

Deno.test("SGD steps on ResNet-8 lower the cross-entropy of a fixed batch", () => {
  const net = resnet({ depth: 8, numClasses: 4, seed: 21 });
  const n = 16;
  const x = tensor(gaussian(n * 3 * 16 * 16, 22), [n, 3, 16, 16]);
  const labels = Int32Array.from({ length: n }, (_, i) => i % 4);
  const opt = new SGD(net.parameters(), {
    lr: 0.05,
    momentum: 0.9,
    nesterov: true,
    weightDecay: 1e-4,
  });
  const losses: number[] = [];
  for (let step = 0; step < 4; step++) {
    const z = net.forward(x, true);
    const { loss, grad } = softmaxCrossEntropy(z, labels);
    // The fused loss agrees with a float64 cross-entropy of the same logits.
    const ref = crossEntropy(z.toArray() as Float32Array, labels, 4);
    assert.ok(Math.abs(loss - ref) < 1e-5 * Math.max(1, ref), `loss ${loss} vs ${ref}`);
    losses.push(loss);
    net.backward(grad);
    grad.dispose();
    opt.step();
  }
  for (let i = 1; i < losses.length; i++) {
    assert.ok(losses[i] < losses[i - 1], `loss went ${losses.join(" → ")}`);
  }
  opt.dispose();
  net.dispose();
});

Deno.test("ResNet.backwardParameters writes the same parameter gradients as backward", () => {
  const net = resnet({ depth: 8, numClasses: 3, seed: 5 });
  const x = tensor(gaussian(2 * 3 * 8 * 8, 21), [2, 3, 8, 8]);
  const dy = tensor(gaussian(2 * 3, 22), [2, 3]);
  net.forward(x, true);
  net.backward(dy);
  const full = net.parameters().map((p) => p.grad.toArray());
  for (const p of net.parameters()) p.grad.buffer.device.fill(p.grad.buffer, 0, p.grad.size);
  net.forward(x, true);
  net.backwardParameters(dy);
  net.parameters().forEach((p, i) => assert.deepEqual(p.grad.toArray(), full[i], p.name));
  assert.throws(
    () => resnet({ depth: 8, numClasses: 3 }).backwardParameters(dy),
    /needs a .*forward/,
  );
  net.dispose();
});
