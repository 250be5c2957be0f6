import assert from "node:assert/strict";
import { BoxHead, boxHead } from "../src/nn/box_head.ts";
import { NormalizedLinear } from "../src/nn/normalized_linear.ts";
import type { Layer, Parameter, StateTensor } from "../src/nn/layer.ts";
import { type Tensor, tensor } from "../src/tensor.ts";
import { boxRegressionLoss } from "../src/losses/box.ts";
import { eqlLoss } from "../src/losses/eql.ts";
import { collateProposals, LongTailProposals } from "../src/data/proposals.ts";
import { checkGradients, gaussian } from "./gradcheck.ts";

/** Presents the head as a one-output layer: `[logits | deltas]` side by side, for gradcheck. */
class Joined implements Layer {
  #head: BoxHead;
  #y?: Tensor<"f32">;
  #dx?: Tensor<"f32">;
  constructor(head: BoxHead) {
    this.#head = head;
  }
  forward(x: Tensor<"f32">, training: boolean): Tensor<"f32"> {
    const { logits, boxDeltas } = this.#head.forward(x, training);
    const n = x.shape[0], a = logits.shape[1], b = boxDeltas.shape[1];
    const l = logits.toArray() as Float32Array, d = boxDeltas.toArray() as Float32Array;
    const out = new Float32Array(n * (a + b));
    for (let i = 0; i < n; i++) {
      out.set(l.subarray(i * a, (i + 1) * a), i * (a + b));
      out.set(d.subarray(i * b, (i + 1) * b), i * (a + b) + a);
    }
    this.#y?.dispose();
    this.#y = tensor(out, [n, a + b]);
    return this.#y;
  }
  backward(dy: Tensor<"f32">): Tensor<"f32"> {
    const n = dy.shape[0], a = this.#head.numClasses, b = dy.shape[1] - a;
    const g = dy.toArray() as Float32Array;
    const gl = new Float32Array(n * a), gd = new Float32Array(n * b);
    for (let i = 0; i < n; i++) {
      gl.set(g.subarray(i * (a + b), i * (a + b) + a), i * a);
      gd.set(g.subarray(i * (a + b) + a, (i + 1) * (a + b)), i * b);
    }
    using tl = tensor(gl, [n, a]);
    using td = tensor(gd, [n, b]);
    const dx = this.#head.backward(tl, td).toArray() as Float32Array;
    this.#dx?.dispose();
    this.#dx = tensor(dx, [n, this.#head.inFeatures]);
    return this.#dx;
  }
  parameters(): Parameter[] {
    return this.#head.parameters();
  }
  stateTensors(): StateTensor[] {
    return [];
  }
  dispose(): void {
    this.#y?.dispose();
    this.#dx?.dispose();
  }
}

/** Replaces every parameter by N(0, std²) draws so that no layer is near-zero. */
function randomize(head: BoxHead, seed: number, std: number): void {
  head.parameters().forEach((p, k) => {
    p.value.device.upload(p.value.buffer, gaussian(p.value.size, seed + k, std));
  });
}

/** Float64 forward of the head from its parameters. */
function referenceForward(
  head: BoxHead,
  x: Float32Array,
  n: number,
): { logits: Float64Array; deltas: Float64Array } {
  const p = new Map(head.parameters().map((q) => [q.name, q.value.toArray() as Float32Array]));
  const dense = (
    input: ArrayLike<number>,
    w: Float32Array,
    b: Float32Array,
    inF: number,
    outF: number,
    relu: boolean,
  ): Float64Array => {
    const y = new Float64Array(n * outF);
    for (let i = 0; i < n; i++) {
      for (let o = 0; o < outF; o++) {
        let s = b[o];
        for (let k = 0; k < inF; k++) s += input[i * inF + k] * w[o * inF + k];
        y[i * outF + o] = relu ? Math.max(0, s) : s;
      }
    }
    return y;
  };
  const { inFeatures: d, hidden: h, numClasses: c } = head;
  const boxOut = head.classAgnosticBox ? 4 : 4 * c;
  const h1 = dense(x, p.get("box_head.fc1.weight")!, p.get("box_head.fc1.bias")!, d, h, true);
  const h2 = dense(h1, p.get("box_head.fc2.weight")!, p.get("box_head.fc2.bias")!, h, h, true);
  return {
    logits: dense(
      h2,
      p.get("box_predictor.cls_score.weight")!,
      p.get("box_predictor.cls_score.bias")!,
      h,
      c,
      false,
    ),
    deltas: dense(
      h2,
      p.get("box_predictor.bbox_pred.weight")!,
      p.get("box_predictor.bbox_pred.bias")!,
      h,
      boxOut,
      false,
    ),
  };
}

/**
 * Checks every gradient of the head (input and parameters) against central differences of
 * `Σ r·[logits | deltas]`; at most one probe in 20 may be skipped at a ReLU kink.
 */
function checkHeadGradients(head: BoxHead, x: Tensor<"f32">, r: Float32Array): void {
  const layer = new Joined(head);
  const { checked, skipped } = checkGradients(layer, x, r, (dx) => [
    { name: "dx", value: x, analytic: dx },
    ...head.parameters().map((p) => ({
      name: p.name,
      value: p.value,
      analytic: (p.grad.toArray() as Float32Array).slice(),
    })),
  ], { eps: 1e-3, rtol: 2e-3, skipKinks: true });
  const total = x.size + head.parameters().reduce((a, p) => a + p.value.size, 0);
  assert.equal(checked + skipped, total);
  assert.ok(skipped <= total / 20, `too many probes skipped at ReLU kinks: ${skipped} of ${total}`);
  layer.dispose();
}

Deno.test("BoxHead: forward matches a float64 reference", () => {
  for (const classAgnosticBox of [false, true]) {
    const head = new BoxHead({
      inFeatures: 7,
      numClasses: 3,
      hidden: 6,
      classAgnosticBox,
      seed: 1,
    });
    randomize(head, 10, 0.5);
    const n = 5;
    const xHost = gaussian(n * 7, 2);
    using x = tensor(xHost, [n, 7]);
    const { logits, boxDeltas } = head.forward(x, false);
    assert.deepEqual(logits.shape, [n, 3]);
    assert.deepEqual(boxDeltas.shape, [n, classAgnosticBox ? 4 : 12]);
    const ref = referenceForward(head, xHost, n);
    const l = logits.toArray(), d = boxDeltas.toArray();
    for (let i = 0; i < ref.logits.length; i++) {
      assert.ok(
        Math.abs(l[i] - ref.logits[i]) <= 1e-5 * (1 + Math.abs(ref.logits[i])),
        `logit ${i}`,
      );
    }
    for (let i = 0; i < ref.deltas.length; i++) {
      assert.ok(
        Math.abs(d[i] - ref.deltas[i]) <= 1e-5 * (1 + Math.abs(ref.deltas[i])),
        `delta ${i}`,
      );
    }
    head.dispose();
  }
});

Deno.test("BoxHead: every gradient matches central differences (class-specific and agnostic)", () => {
  for (const classAgnosticBox of [false, true]) {
    const head = new BoxHead({
      inFeatures: 6,
      numClasses: 3,
      hidden: 5,
      classAgnosticBox,
      seed: 2,
    });
    randomize(head, 20, 0.6);
    const n = 4;
    const x = tensor(gaussian(n * 6, 3), [n, 6]);
    const width = 3 + (classAgnosticBox ? 4 : 12);
    // The parameter count (6·5+5, 5·5+5, 5·3+3, box 5·(width−3)+width−3) is what is probed.
    assert.equal(
      head.parameters().reduce((a, p) => a + p.value.size, 0),
      35 + 30 + 18 + 6 * (width - 3),
    );
    checkHeadGradients(head, x, gaussian(n * width, 4));
    x.dispose();
    head.dispose();
  }
});

Deno.test("BoxHead: initialisation follows the official EQL code", () => {
  const head = new BoxHead({ inFeatures: 256, numClasses: 300, hidden: 512, seed: 5 });
  const p = new Map(head.parameters().map((q) => [q.name, q.value.toArray() as Float32Array]));
  assert.deepEqual([...p.keys()], [
    "box_head.fc1.weight",
    "box_head.fc1.bias",
    "box_head.fc2.weight",
    "box_head.fc2.bias",
    "box_predictor.cls_score.weight",
    "box_predictor.cls_score.bias",
    "box_predictor.bbox_pred.weight",
    "box_predictor.bbox_pred.bias",
  ]);
  const std = (a: Float32Array): number => {
    let s = 0, s2 = 0;
    for (const v of a) {
      s += v;
      s2 += v * v;
    }
    return Math.sqrt(s2 / a.length - (s / a.length) ** 2);
  };
  // Sample standard deviations of ≥ 131k draws are within 1 % of the target.
  const within = (got: number, want: number, what: string): void =>
    assert.ok(Math.abs(got / want - 1) < 0.01, `${what}: std ${got}, expected ${want}`);
  within(std(p.get("box_head.fc1.weight")!), 1 / 16, "fc1");
  within(std(p.get("box_head.fc2.weight")!), 1 / Math.sqrt(512), "fc2");
  within(std(p.get("box_predictor.cls_score.weight")!), 0.01, "cls_score");
  within(std(p.get("box_predictor.bbox_pred.weight")!), 0.001, "bbox_pred");
  const bias = -Math.log((1 - 0.001) / 0.001);
  assert.ok(p.get("box_predictor.cls_score.bias")!.every((v) => v === Math.fround(bias)));
  for (const name of ["box_head.fc1.bias", "box_head.fc2.bias", "box_predictor.bbox_pred.bias"]) {
    assert.ok(p.get(name)!.every((v) => v === 0), name);
  }
  assert.deepEqual(head.bboxPred.weight.value.shape, [1200, 512]);
  // Same seed, same weights (also through the factory).
  const again = boxHead({ inFeatures: 256, numClasses: 300, hidden: 512, seed: 5 });
  assert.deepEqual(again.fc1.weight.value.toArray(), p.get("box_head.fc1.weight"));
  head.dispose();
  again.dispose();
});

Deno.test("BoxHead: without a box gradient the regressor gets zero gradients", () => {
  const head = new BoxHead({ inFeatures: 5, numClasses: 4, hidden: 6, seed: 3 });
  randomize(head, 30, 0.5);
  using x = tensor(gaussian(3 * 5, 1), [3, 5]);
  const out = head.forward(x, true);
  using dl = tensor(gaussian(12, 2), [3, 4]);
  using db = tensor(new Float32Array(out.boxDeltas.size), out.boxDeltas.shape);
  const withZeros = (head.backward(dl, db).toArray() as Float32Array).slice();
  const grads = head.parameters().map((p) => (p.grad.toArray() as Float32Array).slice());
  head.forward(x, true);
  const without = head.backward(dl).toArray();
  assert.deepEqual(without, withZeros);
  head.parameters().forEach((p, k) => assert.deepEqual(p.grad.toArray(), grads[k], p.name));
  assert.ok(head.bboxPred.weight.grad.toArray().every((v) => v === 0));
  // The classifier input is exposed for the gradient analysis.
  assert.deepEqual(head.features.shape, [3, 6]);
  head.dispose();
});

Deno.test("BoxHead: the normalized classifier is τ·ĥ·Ŵᵀ + b, and its gradients check", () => {
  const head = new BoxHead({
    inFeatures: 6,
    numClasses: 3,
    hidden: 5,
    classAgnosticBox: true,
    classifier: "normalized",
    temperature: 4,
    seed: 4,
  });
  assert.ok(head.clsScore instanceof NormalizedLinear);
  assert.equal(head.clsScore.temperature, 4);
  // mmdetection's NormedLinear starts from a zero bias; the parameter names stay Detectron2's.
  assert.ok(head.clsScore.bias!.value.toArray().every((v) => v === 0));
  assert.deepEqual(head.parameters().map((p) => p.name).slice(4, 6), [
    "box_predictor.cls_score.weight",
    "box_predictor.cls_score.bias",
  ]);
  // With a prior (for sigmoid losses) the bias starts as the linear classifier's does.
  const withPrior = new BoxHead({
    inFeatures: 6,
    numClasses: 3,
    hidden: 5,
    classifier: "normalized",
    priorProbability: 0.01,
  });
  const priorBias = Math.fround(-Math.log(0.99 / 0.01));
  assert.ok(withPrior.clsScore.bias!.value.toArray().every((v) => v === priorBias));
  withPrior.dispose();
  randomize(head, 40, 0.6);
  const n = 4;
  const xHost = gaussian(n * 6, 5);
  using x = tensor(xHost, [n, 6]);
  const logits = head.forward(x, false).logits.toArray() as Float32Array;
  const h = head.features.toArray() as Float32Array;
  const w = head.clsScore.weight.value.toArray() as Float32Array;
  const b = head.clsScore.bias!.value.toArray() as Float32Array;
  const norm = (v: Float32Array, i: number): number => {
    let s = 0;
    for (let k = 0; k < 5; k++) s += v[i * 5 + k] ** 2;
    return Math.sqrt(s) + 1e-6;
  };
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < 3; j++) {
      let dot = 0;
      for (let k = 0; k < 5; k++) dot += h[i * 5 + k] * w[j * 5 + k];
      const want = (4 * dot) / (norm(h, i) * norm(w, j)) + b[j];
      assert.ok(
        Math.abs(logits[i * 3 + j] - want) <= 1e-5 * (1 + Math.abs(want)),
        `logit ${i},${j}`,
      );
    }
  }
  checkHeadGradients(head, x, gaussian(n * 7, 6));
  head.dispose();
});

Deno.test("BoxHead: bad input", () => {
  assert.throws(
    () => new BoxHead({ inFeatures: 0, numClasses: 3 }),
    /inFeatures must be an integer ≥ 1, got 0/,
  );
  assert.throws(
    () => new BoxHead({ inFeatures: 4, numClasses: 3, priorProbability: 1 }),
    /priorProbability/,
  );
  assert.throws(
    // deno-lint-ignore no-explicit-any
    () => new BoxHead({ inFeatures: 4, numClasses: 3, classifier: "cosine" as any }),
    /classifier must be "linear" or "normalized", got "cosine"/,
  );
  assert.throws(
    () => new BoxHead({ inFeatures: 4, numClasses: 3, temperature: 20 }),
    /temperature applies to classifier "normalized" only, got temperature 20/,
  );
  assert.throws(
    () =>
      new BoxHead({ inFeatures: 4, numClasses: 3, classifier: "normalized", priorProbability: 0 }),
    /priorProbability must lie in \(0, 1\), got 0/,
  );
  assert.throws(
    () => new BoxHead({ inFeatures: 4, numClasses: 3, classifier: "normalized", temperature: 0 }),
    /temperature must be a finite number > 0, got 0/,
  );
  const head = new BoxHead({ inFeatures: 8, numClasses: 3, hidden: 4 });
  using wrong = tensor(new Float32Array(2 * 7), [2, 7]);
  assert.throws(() => head.forward(wrong, true), (e: unknown) => {
    assert.ok(e instanceof RangeError);
    assert.match(e.message, /BoxHead.forward: x must have 8 channels in dimension 1, got 7/);
    return true;
  });
  using flat = tensor(new Float32Array(8), [8]);
  assert.throws(
    () => head.forward(flat, true),
    /BoxHead.forward: x must have shape \[N, inFeatures\]/,
  );
  using dl = tensor(new Float32Array(6), [2, 3]);
  assert.throws(() => head.backward(dl), /needs a training-mode forward before backward/);
  using x = tensor(new Float32Array(16), [2, 8]);
  head.forward(x, true);
  using badL = tensor(new Float32Array(8), [2, 4]);
  assert.throws(
    () => head.backward(badL),
    /BoxHead.backward: dLogits must have the forward output's shape \[2, 3\]/,
  );
  using badB = tensor(new Float32Array(8), [2, 4]);
  assert.throws(
    () => head.backward(dl, badB),
    /dBoxDeltas must have the forward output's shape \[2, 12\]/,
  );
  head.dispose();
});

/** Float64 smooth-L1 box loss: sum over foreground rows of the gt class's four deltas, over N. */
function naiveBoxLoss(
  deltas: Float32Array,
  targets: Float32Array,
  labels: Int32Array,
  c: number,
  d: number,
  beta: number,
  normalizer: number,
): { loss: number; grad: Float64Array } {
  const n = labels.length;
  const grad = new Float64Array(n * d);
  let loss = 0;
  for (let i = 0; i < n; i++) {
    if (labels[i] === c) continue;
    const col = d === 4 ? 0 : 4 * labels[i];
    for (let k = 0; k < 4; k++) {
      const diff = deltas[i * d + col + k] - targets[4 * i + k];
      const a = Math.abs(diff);
      if (a < beta) {
        loss += 0.5 * diff * diff / beta;
        grad[i * d + col + k] = diff / beta / normalizer;
      } else {
        loss += a - 0.5 * beta;
        grad[i * d + col + k] = Math.sign(diff) / normalizer;
      }
    }
  }
  return { loss: loss / normalizer, grad };
}

Deno.test("boxRegressionLoss: agrees with a naive float64 loop", () => {
  const c = 5, n = 40;
  let seed = 100;
  for (const d of [4 * c, 4]) {
    for (const beta of [1, 0.3, 0]) {
      for (const normalizer of [undefined, 17]) {
        const deltas = gaussian(n * d, seed++, 1.5);
        const targets = gaussian(n * 4, seed++);
        const labels = Int32Array.from(
          gaussian(n, seed++),
          (v) => Math.min(c, Math.floor(Math.abs(v) * 3)),
        );
        labels[0] = c; // at least one background row
        labels[1] = 2;
        using t = tensor(deltas, [n, d]);
        const { loss, grad } = boxRegressionLoss(t, targets, labels, {
          numClasses: c,
          beta,
          normalizer,
        });
        const ref = naiveBoxLoss(deltas, targets, labels, c, d, beta, normalizer ?? n);
        assert.ok(
          Math.abs(loss - ref.loss) <= 1e-6 * (1 + ref.loss),
          `loss ${loss} vs ${ref.loss}`,
        );
        const g = grad.toArray();
        for (let k = 0; k < g.length; k++) {
          assert.ok(
            Math.abs(g[k] - ref.grad[k]) <= 1e-7 + 1e-6 * Math.abs(ref.grad[k]),
            `grad ${k}: ${g[k]} vs ${ref.grad[k]}`,
          );
        }
        // Targets as a tensor give the same result.
        using tt = tensor(targets, [n, 4]);
        const again = boxRegressionLoss(t, tt, labels, { numClasses: c, beta, normalizer });
        assert.equal(again.loss, loss);
        assert.deepEqual(again.grad.toArray(), g);
        grad.dispose();
        again.grad.dispose();
      }
    }
  }
});

Deno.test("boxRegressionLoss: only background rows give zero loss and gradient", () => {
  using t = tensor(gaussian(3 * 8, 1), [3, 8]);
  const { loss, grad } = boxRegressionLoss(t, new Float32Array(12), new Int32Array([2, 2, 2]), {
    numClasses: 2,
  });
  assert.equal(loss, 0);
  assert.ok(grad.toArray().every((v) => v === 0));
  grad.dispose();
});

Deno.test("boxRegressionLoss: bad input", () => {
  using t = tensor(new Float32Array(2 * 12), [2, 12]);
  const labels = new Int32Array([0, 3]);
  const opts = { numClasses: 3 };
  using five = tensor(new Float32Array(10), [2, 5]);
  assert.throws(
    () => boxRegressionLoss(five, new Float32Array(8), labels, opts),
    /deltas must have shape \[N, 12\] \(class-specific\) or \[N, 4\] \(class-agnostic\) with N ≥ 1, got \[2, 5\]/,
  );
  assert.throws(
    () => boxRegressionLoss(t, new Float32Array(6), labels, opts),
    /targets must hold \[2, 4\] = 8 values, got 6/,
  );
  using t3 = tensor(new Float32Array(6), [2, 3]);
  assert.throws(
    () => boxRegressionLoss(t, t3, labels, opts),
    /targets must have shape \[2, 4\], got \[2, 3\]/,
  );
  assert.throws(
    () => boxRegressionLoss(t, new Float32Array(8), new Int32Array([0, 4]), opts),
    /labels\[1\] must be in 0..3 \(3 = background\), got 4/,
  );
  assert.throws(
    () => boxRegressionLoss(t, new Float32Array(8), new Int32Array([0]), opts),
    /labels must have one entry per logits row \(2\), got 1/,
  );
  assert.throws(
    () => boxRegressionLoss(t, new Float32Array(8), labels, { numClasses: 0 }),
    /numClasses/,
  );
  assert.throws(
    () => boxRegressionLoss(t, new Float32Array(8), labels, { numClasses: 3, beta: -1 }),
    /beta/,
  );
  const nan = new Float32Array(24);
  nan[1] = NaN;
  using tn = tensor(nan, [2, 12]);
  assert.throws(
    () => boxRegressionLoss(tn, new Float32Array(8), labels, opts),
    /the box loss of proposal 0 \(label 0\) is not finite/,
  );
});

Deno.test("EQL image-level rule changes exactly the weights of verified categories in foreground rows", () => {
  const data = new LongTailProposals({
    seed: 4,
    groupSizes: [30, 20, 5],
    trainImages: 110,
    valImages: 20,
    frequentMaxImages: 101,
    featureWidth: 8,
    proposalsPerImage: 64,
  });
  const batch = collateProposals(data.train, [0, 1, 2]);
  const c = data.numCategories, n = batch.labels.length;
  const logits = gaussian(n * c, 9);
  using z = tensor(logits, [n, c]);
  const frequencies = data.frequencies();
  const lambda = 1.76e-3;
  const plain = eqlLoss(z, batch.labels, { frequencies, lambda });
  const ruled = eqlLoss(z, batch.labels, {
    frequencies,
    lambda,
    imageLevel: {
      imageOfRow: batch.imageOfRow,
      positive: batch.positive,
      negative: batch.negative,
    },
  });
  const g0 = plain.grad.toArray(), g1 = ruled.grad.toArray();
  let changed = 0, tailVerified = 0;
  for (let i = 0; i < n; i++) {
    const y = batch.labels[i], m = batch.imageOfRow[i];
    for (let j = 0; j < c; j++) {
      const tail = frequencies[j] < lambda;
      const verified = batch.positive[m].includes(j) || batch.negative[m].includes(j);
      const should = y < c && y !== j && tail && verified;
      const k = i * c + j;
      if (should) {
        tailVerified++;
        // Ignored without the rule, a full negative with it: σ(z)/N.
        assert.equal(g0[k], 0, `row ${i} class ${j} without the rule`);
        const want = 1 / (1 + Math.exp(-logits[k])) / n;
        assert.ok(
          Math.abs(g1[k] - want) <= 1e-6 * want,
          `row ${i} class ${j}: ${g1[k]} vs ${want}`,
        );
        changed++;
      } else {
        assert.equal(g1[k], g0[k], `row ${i} class ${j} (label ${y}) must not change`);
      }
    }
  }
  assert.ok(tailVerified > 50, `the batch should exercise the rule, got ${tailVerified} entries`);
  assert.ok(ruled.loss > plain.loss);
  plain.grad.dispose();
  ruled.grad.dispose();
  assert.ok(changed > 0);
});
