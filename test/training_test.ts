import assert from "node:assert/strict";
import { tensor } from "../src/tensor.ts";
import {
  CLASSIFIER_LOSSES,
  classifierLoss,
  type ClassifierLossName,
  evaluateClassifier,
  trainClassifier,
} from "../src/training.ts";
import { classBalancedWeights, softmaxCrossEntropy } from "../src/losses/mod.ts";
import { syntheticLongTailed } from "../src/data/synthetic.ts";
import { BatchLoader } from "../src/data/loader.ts";
import { resnet } from "../src/nn/resnet.ts";
import { quickRecipe } from "../src/optim/recipe.ts";
import { classCounts } from "../src/longtail/frequency.ts";

const counts = [500, 120, 40, 9, 2];
const logitsData = Float32Array.from({ length: 4 * 5 }, (_, i) => Math.sin(i * 1.7) * 2);
const labels = new Int32Array([0, 3, 4, 1]);

/** Naive float64 softmax cross-entropy of one row with per-class weights on the target. */
function softmaxRef(row: ArrayLike<number>, y: number, bias: number[] = []): number {
  const z = Array.from(row, (v, j) => v + (bias[j] ?? 0));
  const m = Math.max(...z);
  const lse = m + Math.log(z.reduce((s, v) => s + Math.exp(v - m), 0));
  return lse - z[y];
}

Deno.test("every loss preset runs and returns a finite loss and a gradient of the logits' shape", () => {
  for (const name of CLASSIFIER_LOSSES) {
    const loss = classifierLoss(name, { trainCounts: counts });
    using logits = tensor(logitsData, [4, 5]);
    const { loss: value, grad } = loss.compute(logits, labels);
    assert.ok(Number.isFinite(value), `${name}: loss ${value}`);
    assert.deepEqual(grad.shape, [4, 5]);
    assert.equal(loss.config.loss, name);
    grad.dispose();
  }
});

Deno.test("softmax preset equals softmaxCrossEntropy, cb-softmax weights rows by class", () => {
  using logits = tensor(logitsData, [4, 5]);
  const a = classifierLoss("softmax", { trainCounts: counts }).compute(logits, labels);
  const b = softmaxCrossEntropy(logits, labels);
  assert.equal(a.loss, b.loss);
  a.grad.dispose();
  b.grad.dispose();
  const w = classBalancedWeights(counts, 0.9999);
  let ref = 0;
  for (let i = 0; i < 4; i++) {
    ref += w[labels[i]] * softmaxRef(logitsData.subarray(i * 5, i * 5 + 5), labels[i]);
  }
  const cb = classifierLoss("cb-softmax", { trainCounts: counts }).compute(logits, labels);
  assert.ok(Math.abs(cb.loss - ref / 4) < 1e-5 * Math.abs(ref / 4), `${cb.loss} vs ${ref / 4}`);
  cb.grad.dispose();
});

Deno.test("balanced-softmax adds tau · log prior to the logits", () => {
  using logits = tensor(logitsData, [4, 5]);
  const total = counts.reduce((a, b) => a + b, 0);
  const bias = counts.map((n) => Math.log(n / total));
  let ref = 0;
  for (let i = 0; i < 4; i++) {
    ref += softmaxRef(logitsData.subarray(i * 5, i * 5 + 5), labels[i], bias);
  }
  const r = classifierLoss("balanced-softmax", { trainCounts: counts }).compute(logits, labels);
  assert.ok(Math.abs(r.loss - ref / 4) < 1e-5 * Math.abs(ref / 4), `${r.loss} vs ${ref / 4}`);
  r.grad.dispose();
});

Deno.test("SEQL preset advances its mask counter between calls", () => {
  const loss = classifierLoss("seql", { trainCounts: counts, lambda: 0.5, gamma: 0.5 });
  using logits = tensor(new Float32Array(64 * 5).map((_, i) => Math.cos(i)), [64, 5]);
  const y = new Int32Array(64);
  const first = loss.compute(logits, y);
  const second = loss.compute(logits, y);
  assert.notEqual(first.loss, second.loss);
  first.grad.dispose();
  second.grad.dispose();
});

Deno.test("an unknown loss name is a RangeError naming the choices", () => {
  assert.throws(
    () => classifierLoss("hinge" as ClassifierLossName, { trainCounts: counts }),
    /loss must be one of softmax, seql, .* got hinge/,
  );
});

Deno.test("training a small ResNet on synthetic data lowers the loss and beats chance", async () => {
  const { train, test } = syntheticLongTailed({
    numClasses: 4,
    maxPerClass: 64,
    imbalanceFactor: 4,
    testPerClass: 25,
    seed: 3,
    height: 16,
    width: 16,
  });
  const trainCounts = Array.from(classCounts(train.labels, 4));
  const normalization = { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] } as const;
  const model = resnet({ depth: 8, numClasses: 4, seed: 1 });
  using loader = new BatchLoader(train, {
    batchSize: 32,
    normalization,
    seed: 1,
    workers: 0,
    dropLast: true,
    height: 16,
    width: 16,
  });
  const recipe = { ...quickRecipe(), batchSize: 32, iterations: 150, warmupSteps: 5, lr: 0.05 };
  const losses: number[] = [];
  const result = await trainClassifier({
    model,
    loader,
    recipe,
    loss: classifierLoss("softmax", { trainCounts }),
    label: null,
    onStep: (_s, _lr, l) => losses.push(l),
  });
  assert.equal(result.iterations, 150);
  const head = losses.slice(0, 5).reduce((a, b) => a + b) / 5;
  assert.ok(result.finalLoss < head * 0.8, `final ${result.finalLoss} vs first ${head}`);
  const report = evaluateClassifier(model, test, normalization, trainCounts);
  assert.ok(report.top1 > 0.4, `top-1 ${report.top1}`);
  assert.equal(report.perClass.length, 4);
  model.dispose();
});
