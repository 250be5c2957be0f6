// Bad input to the public losses: each case throws a TypeError or RangeError whose message names
// the argument, what was expected and what was given.

import assert from "node:assert/strict";
import {
  classBalancedWeights,
  eqlLoss,
  focalLoss,
  SeqlCriterion,
  seqlLoss,
  sigmoidCrossEntropy,
  smoothL1Loss,
  softmaxCrossEntropy,
  suppressionWeights,
} from "../src/losses/mod.ts";
import { type Tensor, tensor } from "../src/tensor.ts";

const N = 3, C = 4;
const FREQ = [0.5, 1e-4, 0.2, 1e-3];

function x(values?: Float32Array): Tensor {
  return tensor(values ?? new Float32Array(N * C).map((_, q) => (q % 5) - 2), [N, C]);
}

const LABELS = new Int32Array([0, 4, 2]);

Deno.test("errors: logits of rank 3", () => {
  using t = tensor(new Float32Array(N * C), [N, C, 1]);
  assert.throws(() => eqlLoss(t, LABELS, { frequencies: FREQ }), {
    name: "RangeError",
    message: "eqlLoss: logits must be a rank-2 tensor [N, C], got shape [3, 4, 1] (rank 3)",
  });
});

Deno.test("errors: logits of rank 1", () => {
  using t = tensor(new Float32Array(4), [4]);
  assert.throws(() => softmaxCrossEntropy(t, new Int32Array([0])), {
    name: "RangeError",
    message: "softmaxCrossEntropy: logits must be a rank-2 tensor [N, C], got shape [4] (rank 1)",
  });
});

Deno.test("errors: logits that are not a tensor", () => {
  assert.throws(
    () => sigmoidCrossEntropy(new Float32Array(12) as unknown as Tensor, LABELS),
    {
      name: "TypeError",
      message: "sigmoidCrossEntropy: logits must be a Tensor, got a Float32Array of length 12",
    },
  );
});

Deno.test("errors: i32 logits", () => {
  using t = tensor(new Int32Array(N * C), [N, C]);
  assert.throws(() => focalLoss(t, LABELS), {
    name: "TypeError",
    message: "focalLoss: logits must be an f32 tensor, got dtype i32",
  });
});

Deno.test("errors: logits without rows", () => {
  using t = tensor(new Float32Array(0), [0, C]);
  assert.throws(() => softmaxCrossEntropy(t, new Int32Array(0)), {
    name: "RangeError",
    message:
      "softmaxCrossEntropy: logits must have at least one row and one column, got shape [0, 4]",
  });
});

Deno.test("errors: disposed logits", () => {
  const t = x();
  t.dispose();
  assert.throws(() => softmaxCrossEntropy(t, LABELS), {
    name: "TypeError",
    message: "softmaxCrossEntropy: logits must be a live tensor, got a disposed one",
  });
});

Deno.test("errors: labels of the wrong length", () => {
  using t = x();
  assert.throws(() => eqlLoss(t, new Int32Array([0, 1]), { frequencies: FREQ }), {
    name: "RangeError",
    message: "eqlLoss: labels must have one entry per logits row (3), got 2",
  });
});

Deno.test("errors: labels of the wrong type", () => {
  using t = x();
  assert.throws(
    () => softmaxCrossEntropy(t, new Float32Array([0, 1, 2]) as unknown as Int32Array),
    {
      name: "TypeError",
      message:
        "softmaxCrossEntropy: labels must be an Int32Array or an i32 Tensor, got a Float32Array of length 3",
    },
  );
});

Deno.test("errors: an f32 labels tensor", () => {
  using t = x();
  using l = tensor(new Float32Array([0, 1, 2]), [3]);
  assert.throws(() => softmaxCrossEntropy(t, l), {
    name: "TypeError",
    message: "softmaxCrossEntropy: labels must be an i32 tensor, got dtype f32",
  });
});

Deno.test("errors: EQL label above C (C itself is background and allowed)", () => {
  using t = x();
  eqlLoss(t, new Int32Array([4, 4, 4]), { frequencies: FREQ }).grad.dispose();
  assert.throws(() => eqlLoss(t, new Int32Array([0, 5, 1]), { frequencies: FREQ }), {
    name: "RangeError",
    message: "eqlLoss: labels[1] must be in 0..4 (4 = background), got 5",
  });
});

Deno.test("errors: negative label", () => {
  using t = x();
  assert.throws(() => sigmoidCrossEntropy(t, new Int32Array([0, 1, -1])), {
    name: "RangeError",
    message: "sigmoidCrossEntropy: labels[2] must be in 0..4 (4 = background), got -1",
  });
});

Deno.test("errors: softmax label C (softmax labels are 0..C−1)", () => {
  using t = x();
  softmaxCrossEntropy(t, new Int32Array([3, 3, 3])).grad.dispose();
  assert.throws(() => softmaxCrossEntropy(t, new Int32Array([0, 4, 1])), {
    name: "RangeError",
    message: "softmaxCrossEntropy: labels[1] must be in 0..3, got 4",
  });
});

Deno.test("errors: SEQL label C", () => {
  using t = x();
  assert.throws(() => seqlLoss(t, new Int32Array([4, 0, 0]), { frequencies: FREQ }), {
    name: "RangeError",
    message: "seqlLoss: labels[0] must be in 0..3, got 4",
  });
});

Deno.test("errors: frequency vector of the wrong length", () => {
  using t = x();
  assert.throws(() => eqlLoss(t, LABELS, { frequencies: [0.5, 0.1, 0.2] }), {
    name: "RangeError",
    message: "eqlLoss: frequencies must have one entry per class (4), got 3 entries",
  });
});

Deno.test("errors: frequency above 1", () => {
  using t = x();
  assert.throws(() => seqlLoss(t, new Int32Array(3), { frequencies: [0.5, 1.5, 0.1, 0.1] }), {
    name: "RangeError",
    message: "seqlLoss: frequencies[1] must be a finite number in [0, 1], got 1.5",
  });
});

Deno.test("errors: negative frequency", () => {
  using t = x();
  assert.throws(() => eqlLoss(t, LABELS, { frequencies: [0.5, 0.1, -0.01, 0.1] }), {
    name: "RangeError",
    message: "eqlLoss: frequencies[2] must be a finite number in [0, 1], got -0.01",
  });
});

Deno.test("errors: NaN frequency", () => {
  using t = x();
  assert.throws(
    () => focalLoss(t, LABELS, { eql: { frequencies: new Float32Array([0.5, NaN, 0, 0]) } }),
    {
      name: "RangeError",
      message: "focalLoss: frequencies[1] must be a finite number in [0, 1], got NaN",
    },
  );
});

Deno.test("errors: missing frequencies", () => {
  using t = x();
  assert.throws(() => eqlLoss(t, LABELS, {} as { frequencies: number[] }), {
    name: "TypeError",
    message: "eqlLoss: frequencies must be given (one value in [0, 1] per class)",
  });
});

Deno.test("errors: negative λ for EQL", () => {
  using t = x();
  assert.throws(() => eqlLoss(t, LABELS, { frequencies: FREQ, lambda: -1e-3 }), {
    name: "RangeError",
    message: "eqlLoss: lambda must be a finite number ≥ 0, got -0.001",
  });
});

Deno.test("errors: negative λ for SEQL", () => {
  using t = x();
  assert.throws(() => seqlLoss(t, new Int32Array(3), { frequencies: FREQ, lambda: -3e-3 }), {
    name: "RangeError",
    message: "seqlLoss: lambda must be a finite number ≥ 0, got -0.003",
  });
});

Deno.test("errors: γ above 1", () => {
  using t = x();
  assert.throws(() => seqlLoss(t, new Int32Array(3), { frequencies: FREQ, gamma: 1.5 }), {
    name: "RangeError",
    message: "seqlLoss: gamma must be a number in [0, 1], got 1.5",
  });
});

Deno.test("errors: negative γ", () => {
  using t = x();
  assert.throws(() => seqlLoss(t, new Int32Array(3), { frequencies: FREQ, gamma: -0.1 }), {
    name: "RangeError",
    message: "seqlLoss: gamma must be a number in [0, 1], got -0.1",
  });
});

Deno.test("errors: NaN in the logits names the row and column", () => {
  const v = new Float32Array(N * C).fill(0.5);
  v[1 * C + 2] = NaN;
  v[1 * C + 3] = Infinity;
  using t = x(v);
  assert.throws(() => eqlLoss(t, LABELS, { frequencies: FREQ }), {
    name: "RangeError",
    message:
      "eqlLoss: logits must be finite, got NaN at row 1, column 2 (2 non-finite values in that row)",
  });
});

Deno.test("errors: infinity in the logits of a softmax loss", () => {
  const v = new Float32Array(N * C).fill(0.5);
  v[2 * C + 0] = -Infinity;
  using t = x(v);
  assert.throws(() => softmaxCrossEntropy(t, new Int32Array([0, 1, 2])), {
    name: "RangeError",
    message:
      "softmaxCrossEntropy: logits must be finite, got -Infinity at row 2, column 0 (1 non-finite value in that row)",
  });
});

Deno.test("errors: NaN in a class that SEQL masks is still reported", () => {
  const v = new Float32Array(N * C).fill(0.5);
  v[0 * C + 1] = NaN; // class 1 is a tail class, masked for row 0 at γ = 1
  using t = x(v);
  assert.throws(() => seqlLoss(t, new Int32Array([0, 0, 0]), { frequencies: FREQ, gamma: 1 }), {
    name: "RangeError",
    message:
      "seqlLoss: logits must be finite, got NaN at row 0, column 1 (1 non-finite value in that row)",
  });
});

Deno.test("errors: class weight of the wrong length", () => {
  using t = x();
  assert.throws(() => softmaxCrossEntropy(t, new Int32Array(3), { classWeight: [1, 2] }), {
    name: "RangeError",
    message: "softmaxCrossEntropy: classWeight must have one entry per class (4), got 2 entries",
  });
});

Deno.test("errors: negative class weight", () => {
  using t = x();
  assert.throws(() => sigmoidCrossEntropy(t, LABELS, { classWeight: [1, -2, 1, 1] }), {
    name: "RangeError",
    message: "sigmoidCrossEntropy: classWeight[1] must be a finite number in [0, ∞), got -2",
  });
});

Deno.test("errors: focal γ below 0", () => {
  using t = x();
  assert.throws(() => focalLoss(t, LABELS, { gamma: -1 }), {
    name: "RangeError",
    message: "focalLoss: gamma must be a finite number ≥ 0, got -1",
  });
});

Deno.test("errors: focal α above 1", () => {
  using t = x();
  assert.throws(() => focalLoss(t, LABELS, { alpha: 1.25 }), {
    name: "RangeError",
    message: "focalLoss: alpha must be a number in [0, 1], got 1.25",
  });
});

Deno.test("errors: unknown weight function", () => {
  using t = x();
  const weightFunction = { kind: "linear" } as unknown as "threshold";
  assert.throws(() => eqlLoss(t, LABELS, { frequencies: FREQ, weightFunction }), {
    name: "TypeError",
    message: 'eqlLoss: weightFunction must be "threshold", { kind: "exponential", a, n } or ' +
      '{ kind: "gompertz", a, b, c }, got kind "linear"',
  });
});

Deno.test("errors: exponential weight with n = 0", () => {
  assert.throws(
    () => suppressionWeights(FREQ, { weightFunction: { kind: "exponential", n: 0 } }),
    {
      name: "RangeError",
      message: "suppressionWeights: weightFunction.n must be a finite number > 0, got 0",
    },
  );
});

Deno.test("errors: image-level category out of range", () => {
  using t = x();
  const imageLevel = { imageOfRow: [0, 0, 0], positive: [[1, 4]], negative: [[]] };
  assert.throws(() => eqlLoss(t, LABELS, { frequencies: FREQ, imageLevel }), {
    name: "RangeError",
    message: "eqlLoss: imageLevel.positive[0][1] must be a category in 0..3, got 4",
  });
});

Deno.test("errors: image-level row pointing past the images", () => {
  using t = x();
  const imageLevel = { imageOfRow: [0, 2, 0], positive: [[1], [2]], negative: [[], []] };
  assert.throws(() => eqlLoss(t, LABELS, { frequencies: FREQ, imageLevel }), {
    name: "RangeError",
    message: "eqlLoss: imageLevel.imageOfRow[1] must be an image index in 0..1, got 2",
  });
});

Deno.test("errors: image-level sets of different lengths", () => {
  using t = x();
  const imageLevel = { imageOfRow: [0, 0, 0], positive: [[1], [2]], negative: [[]] };
  assert.throws(() => eqlLoss(t, LABELS, { frequencies: FREQ, imageLevel }), {
    name: "RangeError",
    message: "eqlLoss: imageLevel.negative must list 2 images like imageLevel.positive, got 1",
  });
});

Deno.test("errors: logit adjustment with a zero prior", () => {
  using t = x();
  const logitAdjustment = { priors: [10, 0, 5, 1] };
  assert.throws(() => softmaxCrossEntropy(t, new Int32Array(3), { logitAdjustment }), {
    name: "RangeError",
    message:
      "softmaxCrossEntropy: logitAdjustment.priors[1] must be a finite number in (0, ∞), got 0",
  });
});

Deno.test("errors: SEQL seed that is not a u32", () => {
  using t = x();
  assert.throws(() => seqlLoss(t, new Int32Array(3), { frequencies: FREQ, seed: 1.5 }), {
    name: "RangeError",
    message: "seqlLoss: seed must be an integer in 0..4294967295, got 1.5",
  });
});

Deno.test("errors: SeqlCriterion with a negative counter", () => {
  assert.throws(() => new SeqlCriterion({ frequencies: FREQ, counter: -1 }), {
    name: "RangeError",
    message: "SeqlCriterion: counter must be an integer in 0..4294967295, got -1",
  });
});

Deno.test("errors: class-balanced β of 1", () => {
  assert.throws(() => classBalancedWeights([10, 2], 1), {
    name: "RangeError",
    message: "classBalancedWeights: beta must be a number in [0, 1), got 1",
  });
});

Deno.test("errors: class-balanced count of 0", () => {
  assert.throws(() => classBalancedWeights([10, 0, 3], 0.99), {
    name: "RangeError",
    message: "classBalancedWeights: counts[1] must be a finite number in (0, ∞), got 0",
  });
});

Deno.test("errors: smooth-L1 target of another shape", () => {
  using p = tensor(new Float32Array(8), [2, 4]);
  using q = tensor(new Float32Array(8), [4, 2]);
  assert.throws(() => smoothL1Loss(p, q), {
    name: "RangeError",
    message: "smoothL1Loss: target must have the shape of pred [2, 4], got [4, 2]",
  });
});

Deno.test("errors: options that are not an object", () => {
  using t = x();
  assert.throws(() => focalLoss(t, LABELS, 2 as unknown as { gamma: number }), {
    name: "TypeError",
    message: "focalLoss: options must be an object, got 2",
  });
});

Deno.test("errors: a row loss that overflows float32 although the logits are finite", () => {
  using t = x(new Float32Array(N * C).fill(10));
  assert.throws(
    () => sigmoidCrossEntropy(t, new Int32Array([0, 4, 4]), { classWeight: [3e38, 1, 1, 1] }),
    {
      name: "RangeError",
      message: "sigmoidCrossEntropy: the loss of row 0 is Infinity although its logits are " +
        "finite; the row loss overflows float32 (check the logits' scale, class weights and " +
        "logit offsets)",
    },
  );
});
