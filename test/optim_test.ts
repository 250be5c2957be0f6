// SGD against a float64 re-implementation of torch.optim.SGD, learning-rate schedules at their key
// steps, and the training recipes.

import assert from "node:assert/strict";
import { tensor, zeros } from "../src/tensor.ts";
import type { Parameter } from "../src/nn/layer.ts";
import { SGD } from "../src/optim/sgd.ts";
import { cosine, warmupMultiStep } from "../src/optim/schedule.ts";
import { paperRecipe, quickRecipe, recipeOptimizer, recipeSchedule } from "../src/optim/recipe.ts";
import { Random } from "../src/random.ts";
import { Linear } from "../src/nn/linear.ts";

function near(actual: number, expected: number, what: string, tol = 1e-12): void {
  assert.ok(
    Math.abs(actual - expected) <= tol * Math.max(1, Math.abs(expected)),
    `${what}: ${actual} vs ${expected}`,
  );
}

/**
 * torch.optim.SGD (dampening 0) in float64, written from its documented update:
 *   g = grad + wd·p;  buf = g on the first step, else momentum·buf + g;
 *   g = g + momentum·buf if nesterov else buf;  p = p − lr·g.
 */
class ReferenceSgd {
  p: Float64Array;
  buf: Float64Array | null = null;
  constructor(
    p: Float32Array,
    readonly momentum: number,
    readonly wd: number,
    readonly nesterov: boolean,
  ) {
    this.p = Float64Array.from(p);
  }
  step(grad: Float32Array, lr: number): void {
    const g = Float64Array.from(grad, (v, i) => v + this.wd * this.p[i]);
    if (this.momentum !== 0) {
      if (this.buf === null) this.buf = Float64Array.from(g);
      else for (let i = 0; i < g.length; i++) this.buf[i] = this.momentum * this.buf[i] + g[i];
      for (let i = 0; i < g.length; i++) {
        g[i] = this.nesterov ? g[i] + this.momentum * this.buf[i] : this.buf[i];
      }
    }
    for (let i = 0; i < g.length; i++) this.p[i] -= lr * g[i];
  }
}

function param(name: string, values: Float32Array, decay = true): Parameter {
  return { name, value: tensor(values, [values.length]), grad: zeros([values.length]), decay };
}

Deno.test("SGD matches torch.optim.SGD semantics over several steps (float64 reference)", () => {
  const settings = [
    { momentum: 0.9, weightDecay: 1e-4, nesterov: true },
    { momentum: 0.9, weightDecay: 5e-4, nesterov: false },
    { momentum: 0, weightDecay: 1e-2, nesterov: false },
    { momentum: 0.5, weightDecay: 0, nesterov: true },
  ];
  const rng = new Random(1);
  for (const s of settings) {
    const init = Float32Array.from({ length: 37 }, () => rng.normal());
    const p = param("w", init);
    const opt = new SGD([p], { lr: 0.1, ...s });
    const ref = new ReferenceSgd(init, s.momentum, s.weightDecay, s.nesterov);
    const lrs = [0.1, 0.15, 0.2, 0.2, 0.02, 0.002];
    for (const lr of lrs) {
      const g = Float32Array.from({ length: 37 }, () => rng.normal());
      p.grad.device.upload(p.grad.buffer, g);
      opt.step(lr);
      ref.step(g, lr);
      const got = p.value.toArray();
      for (let i = 0; i < 37; i++) {
        // f32 storage: a few ulps of the parameter per step.
        assert.ok(
          Math.abs(got[i] - ref.p[i]) <= 1e-6 * Math.max(1, Math.abs(ref.p[i])),
          `${JSON.stringify(s)} step lr ${lr} [${i}]: ${got[i]} vs ${ref.p[i]}`,
        );
      }
    }
    assert.equal(opt.steps, lrs.length);
    assert.equal(opt.lr, 0.002);
    opt.dispose();
  }
});

Deno.test("SGD: momentum buffers per parameter, decay scope, lr setter and validation", () => {
  const a = param("a", new Float32Array([1, -2]), true),
    b = param("b", new Float32Array([3]), false);
  a.grad.device.upload(a.grad.buffer, new Float32Array([0.5, 0.5]));
  const flagged = new SGD([a, b], { lr: 1, momentum: 0, weightDecay: 0.1, decayScope: "flagged" });
  flagged.step();
  // a decays: 1 − (0.5 + 0.1) = 0.4, −2 − (0.5 − 0.2) = −2.3; b does not: 3 − 0 = 3.
  assert.deepEqual(Array.from(a.value.toArray(), (v) => Math.round(v * 1e6) / 1e6), [0.4, -2.3]);
  assert.deepEqual(b.value.toArray(), new Float32Array([3]));
  flagged.dispose();
  const all = new SGD([b], { lr: 1, momentum: 0, weightDecay: 0.1 });
  all.step();
  near(b.value.toArray()[0], 3 - 0.3, "decay all", 1e-7);
  all.lr = 0.5;
  assert.equal(all.lr, 0.5);
  all.dispose();
  const mom = new SGD([a, b], { momentum: 0.9 });
  assert.deepEqual(mom.momentumBuffers.map((t) => [...t.shape]), [[2], [1]]);
  mom.dispose();
  assert.throws(() => new SGD([]), /params must be a non-empty array/);
  assert.throws(() => new SGD([a], { lr: -1 }), /lr must be a finite number ≥ 0, got -1/);
  assert.throws(() => new SGD([a], { momentum: 1 }), /momentum must be in \[0, 1\), got 1/);
  assert.throws(() => new SGD([a], { weightDecay: NaN }), /weightDecay must be/);
  assert.throws(() => new SGD([a], { momentum: 0, nesterov: true }), /nesterov needs momentum > 0/);
  assert.throws(() => new SGD([a, a]), /params\[1\] \(a\) appears twice/);
  const bad = { name: "c", value: zeros([2]), grad: zeros([3]), decay: true };
  assert.throws(() => new SGD([bad]), /params\[0\] \(c\): grad must match the value's shape \[2\]/);
  const ok = new SGD([a]);
  assert.throws(() => ok.step(Infinity), /lr must be a finite number ≥ 0, got Infinity/);
  ok.dispose();
});

Deno.test("warm-up + multi-step schedule: the paper's values at the key iterations", () => {
  const lr = recipeSchedule(paperRecipe());
  const expect: [number, number][] = [
    [0, 0.1],
    [1, 0.1 + 0.1 / 400],
    [200, 0.15],
    [399, 0.1 + 0.1 * 399 / 400],
    [400, 0.2],
    [6399, 0.2],
    [6400, 0.02],
    [9599, 0.02],
    [9600, 0.002],
    [12799, 0.002],
  ];
  for (const [step, value] of expect) near(lr(step), value, `lr(${step})`);
  const plain = warmupMultiStep({ lr: 1, milestones: [2, 4], gamma: 0.5 });
  assert.deepEqual([0, 1, 2, 3, 4, 5].map(plain), [1, 1, 0.5, 0.5, 0.25, 0.25]);
  assert.throws(() => lr(-1), /step must be a non-negative integer, got -1/);
  assert.throws(() => lr(1.5), /step must be a non-negative integer, got 1.5/);
  assert.throws(
    () => warmupMultiStep({ lr: 1, milestones: [5, 5] }),
    /milestones must be increasing/,
  );
  assert.throws(() => warmupMultiStep({ lr: -1 }), /lr must be a finite number ≥ 0, got -1/);
  assert.throws(() => warmupMultiStep({ lr: 1, warmupSteps: 2.5 }), /warmupSteps must be/);
});

Deno.test("cosine schedule with and without warm-up", () => {
  const c = cosine({ lr: 0.1, totalSteps: 1000 });
  near(c(0), 0.1, "c(0)");
  near(c(250), 0.05 * (1 + Math.SQRT1_2), "c(250)");
  near(c(500), 0.05, "c(500)");
  near(c(1000), 0, "c(1000)");
  near(c(5000), 0, "after the end");
  const w = cosine({ lr: 0.2, totalSteps: 110, warmupSteps: 10, warmupStartLr: 0.02, minLr: 0.01 });
  near(w(0), 0.02, "w(0)");
  near(w(5), 0.11, "w(5)");
  near(w(10), 0.2, "w(10)");
  near(w(60), 0.105, "w(60)");
  near(w(110), 0.01, "w(110)");
  assert.throws(
    () => cosine({ lr: 0.1, totalSteps: 10, warmupSteps: 10 }),
    /totalSteps must be an integer greater than warmupSteps \(10\), got 10/,
  );
});

Deno.test("recipes: the paper's settings, the quick one, and optimisers built from them", () => {
  const p = paperRecipe();
  assert.deepEqual(
    [
      p.batchSize,
      p.iterations,
      p.lr,
      p.warmupStartLr,
      p.warmupSteps,
      p.momentum,
      p.nesterov,
      p.weightDecay,
    ],
    [256, 12_800, 0.2, 0.1, 400, 0.9, true, 1e-4],
  );
  assert.deepEqual(p.decay, { kind: "multistep", milestones: [6400, 9600], gamma: 0.1 });
  const q = quickRecipe();
  const lq = recipeSchedule(q);
  near(lq(0), 0.02, "quick lr(0)");
  near(lq(30), 0.1, "quick peak");
  near(lq(315), 0.05, "quick half-way through the cosine");
  near(lq(600), 0, "quick end");
  assert.deepEqual(JSON.parse(JSON.stringify(q)), q, "recipes are plain data");
  const fc = new Linear(3, 2);
  const opt = recipeOptimizer(fc.parameters(), p);
  assert.deepEqual([opt.lr, opt.momentum, opt.nesterov, opt.weightDecay, opt.decayScope], [
    0.1,
    0.9,
    true,
    1e-4,
    "all",
  ]);
  opt.dispose();
  fc.dispose();
  assert.throws(
    () => recipeSchedule({ ...q, decay: { kind: "linear" } as unknown as typeof q.decay }),
    /recipe.decay.kind must be "multistep" or "cosine"/,
  );
  assert.throws(
    () => recipeSchedule({ ...q, iterations: 0 }),
    /recipe.iterations must be an integer ≥ 1, got 0/,
  );
});
