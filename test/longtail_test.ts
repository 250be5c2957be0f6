import assert from "node:assert/strict";
import {
  categoryFrequencies,
  cifarLtCounts,
  classAwareSampling,
  classCounts,
  frequenciesFromLabels,
  imageCounts,
  lambdaForTailRatio,
  longTailCounts,
  longTailSubset,
  lvisGroups,
  lvisLambdas,
  repeatFactors,
  repeatFactorSampling,
  shotSplit,
  tailIndicator,
  tailRatio,
} from "../src/longtail/mod.ts";
import { Random } from "../src/random.ts";

/** Eq. 8 straight from integer image counts: Σ_{N_j/numImages < λ} N_j / Σ N_j. */
function naiveTailRatio(counts: number[], numImages: number, lambda: number): number {
  let tail = 0, all = 0;
  for (const n of counts) {
    all += n;
    if (n / numImages < lambda) tail += n;
  }
  return tail / all;
}

function randomCounts(rng: Random, c: number, max: number): number[] {
  // Log-uniform counts: a long tail with ties.
  return Array.from({ length: c }, () => Math.floor(Math.exp(rng.uniform(0, Math.log(max)))));
}

// ── frequencies ────────────────────────────────────────────────────────────────────────────────

Deno.test("class and image counts, frequencies from counts and from labels", () => {
  assert.deepEqual([...classCounts([0, 2, 2, 1, 2], 3)], [1, 1, 3]);
  assert.deepEqual([...classCounts(new Int32Array([3, 3]), 5)], [0, 0, 0, 2, 0]);
  // Repeated categories within an image count once.
  assert.deepEqual([...imageCounts([[0, 1, 1], [1], [2, 0], []], 4)], [2, 2, 1, 0]);
  assert.deepEqual([...imageCounts(new Int32Array([1, 1, 0]), 2)], [1, 2]);
  assert.deepEqual([...categoryFrequencies([1, 100, 56740], 56740)], [
    1 / 56740,
    100 / 56740,
    1,
  ]);
  assert.deepEqual([...frequenciesFromLabels([0, 0, 0, 1], 2)], [0.75, 0.25]);
  assert.deepEqual([...frequenciesFromLabels([[0, 1], [1], [1, 1]], 3)], [1 / 3, 1, 0]);
});

Deno.test("frequency helpers reject bad input naming the argument", () => {
  assert.throws(
    () => classCounts([0, 3], 3),
    /labels\[1\] must be a class index in \[0, 2\], got 3/,
  );
  assert.throws(() => classCounts([0.5], 3), /labels\[0\]/);
  assert.throws(() => classCounts([0], 0), /numClasses must be an integer ≥ 1, got 0/);
  assert.throws(() => imageCounts([[0], [1, -1]], 2), /labels\[1\]\[1\] must be a class index/);
  assert.throws(() => categoryFrequencies([1, -2], 10), /counts\[1\] must be a non-negative/);
  assert.throws(
    () => categoryFrequencies([11], 10),
    /counts\[0\] must not exceed numImages \(10\)/,
  );
  assert.throws(() => categoryFrequencies([1], 0), /numImages must be an integer/);
  assert.throws(() => frequenciesFromLabels([], 2), /labels must contain at least one image/);
  assert.throws(() => classCounts(null as unknown as number[], 2), TypeError);
});

// ── tail ratio and λ ───────────────────────────────────────────────────────────────────────────

Deno.test("T_λ is strict and the tail ratio matches eq. 8 computed from image counts", () => {
  assert.deepEqual([...tailIndicator([0.001, 0.002, 0.5], 0.002)], [1, 0, 0]);
  assert.deepEqual([...tailIndicator([0.001, 0.002], 0)], [0, 0]);
  const rng = new Random(11);
  for (let trial = 0; trial < 20; trial++) {
    const numImages = 1000 + rng.integer(0, 50000);
    const counts = randomCounts(rng, 1 + rng.integer(0, 300), numImages);
    if (!counts.some((n) => n > 0)) counts[0] = 1;
    const freqs = categoryFrequencies(counts, numImages);
    const lambdas = [
      0,
      1e-4,
      1e-3,
      5e-3,
      0.1,
      1,
      2,
      ...counts.slice(0, 5).map((n) => n / numImages),
    ];
    for (const lambda of lambdas) {
      // Same categories selected; the ratio differs from the integer-count sum by rounding only.
      const selected = counts.map((n) => (n / numImages < lambda ? 1 : 0));
      assert.deepEqual([...tailIndicator(freqs, lambda)], selected);
      const expected = naiveTailRatio(counts, numImages, lambda);
      assert.ok(Math.abs(tailRatio(freqs, lambda) - expected) <= 1e-12 * expected);
    }
  }
  assert.equal(tailRatio([0.01, 0.03, 0.96], 0.05), 0.04 / (0.01 + 0.03 + 0.96));
});

Deno.test("lambdaForTailRatio returns the midpoint of the first interval reaching the target", () => {
  const simple = lambdaForTailRatio([0.01, 0.03, 0.96], 0.02);
  assert.equal(simple.lambda, (0.03 + 0.96) / 2);
  assert.equal(simple.numTail, 2);
  assert.equal(simple.low, 0.03);
  assert.equal(simple.high, 0.96);
  assert.ok(Math.abs(simple.tailRatio - 0.04) < 1e-15);
  assert.equal(lambdaForTailRatio([0.01, 0.03, 0.96], 0.01).lambda, 0.02);
  // Zero target: λ = 0 selects nothing. Full target: every category, λ = 2·max.
  assert.deepEqual(lambdaForTailRatio([0.2, 0.1], 0), {
    lambda: 0,
    tailRatio: 0,
    numTail: 0,
    low: -Infinity,
    high: 0.1,
  });
  const all = lambdaForTailRatio([0.2, 0.1, 0.2], 1);
  assert.equal(all.lambda, 0.4);
  assert.equal(all.numTail, 3);
  assert.equal(all.tailRatio, 1);
  assert.equal(all.high, Infinity);

  // Against brute force: the chosen set reaches the target, the next smaller one does not.
  const rng = new Random(12);
  for (let trial = 0; trial < 30; trial++) {
    const numImages = 5000 + rng.integer(0, 100000);
    const counts = randomCounts(rng, 2 + rng.integer(0, 400), numImages);
    counts[0] = Math.max(counts[0], 1);
    const freqs = categoryFrequencies(counts, numImages);
    for (const target of [0.001, 0.02, 0.05, 0.1, 0.5, rng.uniform()]) {
      const ch = lambdaForTailRatio(freqs, target);
      const reached = naiveTailRatio(counts, numImages, ch.lambda);
      assert.ok(reached >= target, `TR(${ch.lambda}) = ${reached} < ${target}`);
      assert.ok(Math.abs(reached - ch.tailRatio) < 1e-12);
      assert.equal(ch.numTail, counts.filter((n) => n / numImages < ch.lambda).length);
      assert.ok(ch.low < ch.lambda && ch.lambda < ch.high);
      // λ = low selects only categories strictly rarer than `low`: the previous prefix.
      assert.ok(naiveTailRatio(counts, numImages, ch.low) < target);
      // Every λ in (low, high] selects the same categories; float32 frequencies agree too.
      const f32 = Float32Array.from(freqs);
      assert.deepEqual(tailIndicator(f32, ch.lambda), tailIndicator(freqs, ch.lambda));
      if (ch.high !== Infinity) {
        assert.deepEqual(tailIndicator(freqs, ch.high), tailIndicator(freqs, ch.lambda));
      }
    }
  }
});

Deno.test("tail-ratio helpers reject bad input", () => {
  assert.throws(
    () => tailRatio([0.5, 1.5], 0.1),
    /frequencies\[1\] must be a frequency in \[0, 1\], got 1.5/,
  );
  assert.throws(() => tailRatio([0, 0], 0.1), /at least one positive value/);
  assert.throws(() => tailRatio([0.5], -1), /lambda must be a finite number ≥ 0, got -1/);
  assert.throws(() => tailIndicator([0.5], NaN), /lambda/);
  assert.throws(
    () => lambdaForTailRatio([0.5], 1.2),
    /target must be a tail ratio in \[0, 1\], got 1.2/,
  );
  assert.throws(() => lambdaForTailRatio([NaN], 0.1), /frequencies\[0\]/);
});

// ── groups ─────────────────────────────────────────────────────────────────────────────────────

Deno.test("LVIS groups use ≤ 10 / 11–100 / > 100 images", () => {
  const g = lvisGroups([3, 10, 11, 100, 101, 0]);
  assert.deepEqual(g.rare, [0, 1, 5]);
  assert.deepEqual(g.common, [2, 3]);
  assert.deepEqual(g.frequent, [4]);
  assert.deepEqual(g.group, ["rare", "rare", "common", "common", "frequent", "rare"]);
  const custom = lvisGroups([5, 6, 50, 51], { rareMax: 5, commonMax: 50 });
  assert.deepEqual([custom.rare, custom.common, custom.frequent], [[0], [1, 2], [3]]);
  assert.throws(
    () => lvisGroups([1], { rareMax: 10, commonMax: 5 }),
    /commonMax must be ≥ rareMax/,
  );
  assert.throws(() => lvisGroups([1.5]), /imageCounts\[0\] must be a non-negative integer/);
});

Deno.test("λ_r and λ_c select exactly rare and rare + common, also with float32 frequencies", () => {
  for (const numImages of [56740, 99388, 1000, 118287]) {
    const { rare, common } = lvisLambdas(numImages);
    const counts = Array.from({ length: Math.min(numImages, 3000) + 1 }, (_, n) => n);
    const freqs = categoryFrequencies(counts, numImages);
    const f32 = Float32Array.from(freqs);
    for (let n = 0; n < counts.length; n++) {
      assert.equal(freqs[n] < rare, n <= 10, `rare, ${n} of ${numImages}`);
      assert.equal(freqs[n] < common, n <= 100, `common, ${n} of ${numImages}`);
      assert.equal(f32[n] < rare, n <= 10);
      assert.equal(f32[n] < common, n <= 100);
    }
  }
  // LVIS v0.5: λ_c reproduces the official code's 0.00177 and sits in (100/N, 101/N].
  const { common } = lvisLambdas(56740);
  assert.equal(common.toPrecision(3), "0.00177");
  assert.ok(100 / 56740 < common && common <= 101 / 56740);
  assert.ok(100 / 56740 < 0.00177 && 0.00177 <= 101 / 56740);
  // The paper's printed 1.76e-3 is below 100/56740: a 100-image category is not tail under it.
  assert.equal(tailIndicator(categoryFrequencies([100], 56740), 1.76e-3)[0], 0);
  assert.equal(tailIndicator(categoryFrequencies([99], 56740), 1.76e-3)[0], 1);
  assert.throws(() => lvisLambdas(0), /numImages must be an integer/);
});

Deno.test("many / medium / few-shot split: > 100, 20–100, < 20, configurable", () => {
  const s = shotSplit([500, 101, 100, 20, 19, 2]);
  assert.deepEqual([s.many, s.medium, s.few], [[0, 1], [2, 3], [4, 5]]);
  const t = shotSplit([51, 50, 10, 9], { many: 50, few: 10 });
  assert.deepEqual([t.many, t.medium, t.few], [[0], [1, 2], [3]]);
  const sizes = (split: ReturnType<typeof shotSplit>) => [
    split.many.length,
    split.medium.length,
    split.few.length,
  ];
  assert.deepEqual(sizes(shotSplit(cifarLtCounts("cifar100", 100))), [35, 35, 30]);
  assert.deepEqual(sizes(shotSplit(cifarLtCounts("cifar100", 200))), [30, 31, 39]);
  assert.throws(() => shotSplit([1], { many: 10, few: 12 }), /few must be ≤ many \+ 1 \(11\)/);
  assert.throws(() => shotSplit([1], { many: -1 }), /many must be an integer ≥ 0, got -1/);
});

// ── CIFAR-LT ───────────────────────────────────────────────────────────────────────────────────

Deno.test("CIFAR-LT counts reproduce the published totals", () => {
  const sum = (a: Int32Array) => a.reduce((x, y) => x + y, 0);
  const totals100 = [200, 100, 50, 10].map((f) => sum(cifarLtCounts("cifar100", f)));
  const totals10 = [200, 100, 50, 10].map((f) => sum(cifarLtCounts("cifar10", f)));
  assert.deepEqual(totals100, [9502, 10847, 12608, 19573]);
  assert.deepEqual(totals10, [11203, 12406, 13996, 20431]);
  const c = cifarLtCounts("cifar100", 200);
  assert.equal(c[0], 500);
  assert.equal(c[99], 2); // 500/200 = 2.5 truncated: max/min is 250
  assert.equal(cifarLtCounts("cifar100", 100)[99], 5); // exactly 500/100
  assert.equal(cifarLtCounts("cifar10", 10)[9], 500); // exactly 5000/10
  assert.deepEqual([...cifarLtCounts("cifar10", 1)], new Array(10).fill(5000));
  for (let i = 1; i < 100; i++) assert.ok(c[i] <= c[i - 1]);
  // Independent float64 evaluation of the formula, away from integer boundaries.
  for (let i = 0; i < 10; i++) {
    const x = 5000 * Math.pow(100, -i / 9);
    assert.equal(cifarLtCounts("cifar10", 100)[i], Math.floor(x + 1e-7));
  }
  assert.deepEqual([...longTailCounts({ numClasses: 1, maxPerClass: 7, imbalanceFactor: 10 })], [
    7,
  ]);
});

Deno.test("CIFAR-LT helpers reject bad input", () => {
  assert.throws(
    () => cifarLtCounts("cifar100", 0.5),
    /imbalanceFactor must be a finite number ≥ 1, got 0.5/,
  );
  assert.throws(
    () => cifarLtCounts("mnist" as "cifar10", 10),
    /dataset must be "cifar10" or "cifar100"/,
  );
  assert.throws(
    () => longTailCounts({ numClasses: 0, maxPerClass: 5, imbalanceFactor: 2 }),
    /numClasses must be an integer ≥ 1, got 0/,
  );
  assert.throws(
    () => longTailCounts({ numClasses: 3, maxPerClass: 2.5, imbalanceFactor: 2 }),
    /maxPerClass/,
  );
});

Deno.test("longTailSubset keeps n_i seeded images per class, sorted", () => {
  const labels = new Int32Array(1000);
  for (let i = 0; i < 1000; i++) labels[i] = i % 10;
  const counts = longTailCounts({ numClasses: 10, maxPerClass: 100, imbalanceFactor: 10 });
  const a = longTailSubset(labels, counts, new Random(0));
  const b = longTailSubset(labels, counts, new Random(0));
  const other = longTailSubset(labels, counts, new Random(1));
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, other);
  assert.equal(a.length, counts.reduce((x, y) => x + y, 0));
  for (let i = 1; i < a.length; i++) assert.ok(a[i] > a[i - 1]);
  assert.deepEqual(classCounts(Array.from(a, (i) => labels[i]), 10), counts);
  assert.throws(
    () => longTailSubset(labels, [101, 0, 0, 0, 0, 0, 0, 0, 0, 0], new Random(0)),
    /counts\[0\] must be ≤ the 100 images of class 0, got 101/,
  );
  assert.throws(() => longTailSubset([0, 5], [1, 1], new Random(0)), /labels\[1\]/);
});

// ── samplers ───────────────────────────────────────────────────────────────────────────────────

Deno.test("class-aware sampling draws every class equally and cycles through its images", () => {
  // 100 images of class 0, 10 of class 1, 1 of class 2, none of class 3.
  const labels: number[] = [];
  for (const [c, n] of [[0, 100], [1, 10], [2, 1]]) for (let i = 0; i < n; i++) labels.push(c);
  const draws = classAwareSampling(labels, { numClasses: 4, numSamples: 3000, rng: new Random(5) });
  assert.equal(draws.length, 3000);
  const perClass = classCounts(Array.from(draws, (i) => labels[i]), 4);
  assert.deepEqual([...perClass], [1000, 1000, 1000, 0]);
  const perImage = new Int32Array(labels.length);
  for (const i of draws) perImage[i]++;
  for (let i = 0; i < 100; i++) assert.equal(perImage[i], 10); // 1000 draws over 100 images
  for (let i = 100; i < 110; i++) assert.equal(perImage[i], 100);
  assert.equal(perImage[110], 1000);
  // Default length: one epoch; deterministic under a seed.
  const e1 = classAwareSampling(labels, { numClasses: 4, rng: new Random(9) });
  const e2 = classAwareSampling(labels, { numClasses: 4, rng: new Random(9) });
  assert.equal(e1.length, labels.length);
  assert.deepEqual(e1, e2);
  // Multi-label images belong to every category they contain.
  const multi = [[0], [0, 1], [0], [2]];
  const md = classAwareSampling(multi, { numClasses: 3, numSamples: 300, rng: new Random(3) });
  const fromClass1 = Array.from(md).filter((i) => i === 1).length;
  assert.ok(fromClass1 >= 100, `image 1 holds the only class-1 box: ${fromClass1} draws`);
  assert.throws(
    () => classAwareSampling([[], []], { numClasses: 2, numSamples: 1, rng: new Random(0) }),
    /at least one image a category/,
  );
  assert.throws(
    () => classAwareSampling([0, 1], { numClasses: 2, numSamples: -1, rng: new Random(0) }),
    /numSamples must be an integer ≥ 0, got -1/,
  );
});

Deno.test("repeat factors follow r_c = max(1, sqrt(t / f_c)) and the image maximum", () => {
  // 1000 images: category 0 in all, category 1 in 10, category 2 in 1.
  const labels: number[][] = [];
  for (let i = 0; i < 1000; i++) labels.push(i < 10 ? (i === 0 ? [0, 1, 2] : [0, 1]) : [0]);
  labels.push([]); // an image without annotations gets 1
  const t = 0.001;
  const r = repeatFactors(labels, { numClasses: 3, threshold: t });
  const n = labels.length;
  const rc = [1000 / n, 10 / n, 1 / n].map((f) => Math.max(1, Math.sqrt(t / f)));
  assert.equal(r[0], Math.max(...rc));
  for (let i = 1; i < 10; i++) assert.equal(r[i], Math.max(rc[0], rc[1]));
  for (let i = 10; i < 1001; i++) assert.equal(r[i], 1);
  // Given frequencies are used as they are.
  const given = repeatFactors([[0], [0, 1]], {
    numClasses: 2,
    threshold: 0.004,
    frequencies: [0.5, 0.001],
  });
  assert.deepEqual([...given], [1, 2]);
  assert.throws(
    () => repeatFactors([[1]], { numClasses: 2, threshold: 0.001, frequencies: [0.5, 0] }),
    /frequencies\[1\] must be > 0 because image 0 contains category 1/,
  );
  assert.throws(
    () => repeatFactors([[0]], { numClasses: 1, threshold: 0 }),
    /threshold must be a finite number > 0/,
  );
  assert.throws(
    () => repeatFactors([[0]], { numClasses: 2, threshold: 1, frequencies: [0.5] }),
    /frequencies must have numClasses \(2\) entries, got 1/,
  );
});

Deno.test("repeat-factor sampling rounds stochastically with the right mean", () => {
  const factors = [1, 2.5, 0.25, 3, 1.1];
  const rng = new Random(21);
  const epochs = 4000;
  const totals = new Float64Array(factors.length);
  for (let e = 0; e < epochs; e++) {
    const epoch = repeatFactorSampling(factors, rng);
    const per = new Int32Array(factors.length);
    for (const i of epoch) per[i]++;
    for (let i = 0; i < factors.length; i++) {
      const lo = Math.floor(factors[i]);
      assert.ok(per[i] === lo || per[i] === lo + 1, `image ${i} repeated ${per[i]} times`);
      totals[i] += per[i];
    }
  }
  for (let i = 0; i < factors.length; i++) {
    const frac = factors[i] - Math.floor(factors[i]);
    const sd = Math.sqrt((frac * (1 - frac)) / epochs);
    assert.ok(Math.abs(totals[i] / epochs - factors[i]) <= 5 * sd + 1e-12, `image ${i}`);
  }
  const ordered = repeatFactorSampling([2, 1, 3], new Random(0), { shuffle: false });
  assert.deepEqual([...ordered], [0, 0, 1, 2, 2, 2]);
  const shuffled = repeatFactorSampling(new Array(50).fill(2), new Random(0));
  assert.notDeepEqual([...shuffled], [...shuffled].sort((a, b) => a - b));
  assert.throws(
    () => repeatFactorSampling([1, -1], new Random(0)),
    /factors\[1\] must be a finite number ≥ 0/,
  );
});
