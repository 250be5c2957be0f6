// Memory that a training loop can rely on: loss results free their gradient when disposed (or
// held with `using`), a caller can hand a loss its own gradient tensor to reuse, and on the CPU
// device a loop that never disposes anything stays flat, because nothing keeps forgotten typed
// arrays alive waiting for a finalizer.

import assert from "node:assert/strict";
import {
  eqlLoss,
  focalLoss,
  seqlLoss,
  sigmoidCrossEntropy,
  smoothL1Loss,
  softmaxCrossEntropy,
} from "../src/losses/mod.ts";
import { tensor, zeros } from "../src/tensor.ts";
import { CpuDevice } from "../src/device/cpu.ts";

function logitsOf(n: number, c: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return new Float32Array(n * c).map(() => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32) * 6 - 3;
  });
}

Deno.test("a synchronous loop of losses whose gradients are never disposed keeps memory flat", () => {
  const n = 64, c = 1024; // 256 KiB of gradient per call
  const logits = tensor(logitsOf(n, c, 1), [n, c]);
  const labels = new Int32Array(n).map((_, i) => i % (c + 1));
  const frequencies = new Float32Array(c).map((_, j) => (j % 10 === 0 ? 0.5 : 1e-4));
  const before = Deno.memoryUsage().rss;
  for (let i = 0; i < 2000; i++) {
    // The result is dropped on purpose: 2,000 × 256 KiB = 500 MiB if any of it were retained.
    eqlLoss(logits, labels, { frequencies, lambda: 1.76e-3 });
  }
  const grownMiB = (Deno.memoryUsage().rss - before) / 2 ** 20;
  assert.ok(grownMiB < 200, `resident memory grew by ${grownMiB.toFixed(0)} MiB over the loop`);
  logits.dispose();
});

Deno.test("disposing a loss result, or holding it with `using`, frees the gradient", () => {
  const logits = tensor(logitsOf(3, 4, 2), [3, 4]);
  const labels = new Int32Array([0, 3, 1]);
  const r = softmaxCrossEntropy(logits, labels);
  assert.equal(r.grad.disposed, false);
  r[Symbol.dispose]();
  assert.equal(r.grad.disposed, true);
  r[Symbol.dispose](); // a second time is harmless

  let kept;
  {
    using s = sigmoidCrossEntropy(logits, labels);
    kept = s.grad;
    assert.equal(kept.disposed, false);
  }
  assert.equal(kept.disposed, true, "`using` freed the gradient at the end of the block");
  logits.dispose();
});

Deno.test("every logits loss writes into a caller-owned gradient and leaves it alive", () => {
  const n = 5, c = 6;
  const logits = tensor(logitsOf(n, c, 3), [n, c]);
  const sigmoidLabels = new Int32Array([0, 6, 2, 5, 6]);
  const softmaxLabels = new Int32Array([0, 1, 2, 5, 3]);
  const frequencies = new Float32Array([0.5, 0.2, 1e-4, 1e-3, 0.3, 1e-5]);
  const cases = [
    ["sigmoidCrossEntropy", (o: object) => sigmoidCrossEntropy(logits, sigmoidLabels, o)],
    ["eqlLoss", (o: object) => eqlLoss(logits, sigmoidLabels, { frequencies, lambda: 1e-3, ...o })],
    ["focalLoss", (o: object) => focalLoss(logits, sigmoidLabels, { gamma: 2, ...o })],
    ["softmaxCrossEntropy", (o: object) => softmaxCrossEntropy(logits, softmaxLabels, o)],
    [
      "seqlLoss",
      (o: object) =>
        seqlLoss(logits, softmaxLabels, { frequencies, lambda: 1e-3, gamma: 0.9, seed: 4, ...o }),
    ],
  ] as const;
  const into = zeros([n, c]);
  for (const [name, run] of cases) {
    const fresh = run({});
    into.buffer.device.upload(into.buffer, new Float32Array(n * c).fill(Number.NaN));
    const r = run({ gradInto: into });
    assert.equal(r.grad, into, `${name}: the result's grad is the caller's tensor`);
    assert.equal(r.loss, fresh.loss, `${name}: same loss`);
    assert.deepEqual(into.toArray(), fresh.grad.toArray(), `${name}: same gradient`);
    r[Symbol.dispose]();
    assert.equal(into.disposed, false, `${name}: disposing the result keeps the caller's tensor`);
    fresh.grad.dispose();
  }
  const pred = tensor([0.5, 3], [1, 2]), target = tensor([0, 0], [1, 2]);
  const g = zeros([1, 2]);
  const box = smoothL1Loss(pred, target, { gradInto: g });
  assert.equal(box.grad, g);
  assert.deepEqual([...g.toArray()], [0.5, 1]);
  for (const t of [into, logits, pred, target, g]) t.dispose();
});

Deno.test("a caller-owned gradient of the wrong kind is rejected, naming gradInto", () => {
  const logits = tensor(logitsOf(2, 3, 4), [2, 3]);
  const labels = new Int32Array([0, 1]);
  const bad = (gradInto: unknown, pattern: RegExp): void => {
    assert.throws(
      () => softmaxCrossEntropy(logits, labels, { gradInto: gradInto as never }),
      pattern,
    );
  };
  bad(
    new Float32Array(6),
    /gradInto must be a live f32 tensor of shape \[2, 3\].*got a Float32Array of length 6/,
  );
  bad(zeros([3, 2]), /gradInto must be .* got shape \[3, 2\]/);
  bad(zeros([2, 3], new CpuDevice()), /gradInto must be .* got one on the cpu device/);
  bad(tensor(new Int32Array(6), [2, 3]), /got dtype i32/);
  const gone = zeros([2, 3]);
  gone.dispose();
  bad(gone, /got a disposed tensor/);
  bad(logits, /gradInto must not be the logits tensor itself/);
  assert.equal(logits.disposed, false, "a rejected call leaves the logits alone");
  logits.dispose();
});
