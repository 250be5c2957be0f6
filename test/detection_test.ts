import assert from "node:assert/strict";
import { averagePrecision } from "../src/detection/ap.ts";
import { ProposalEvaluator, summarizeAP } from "../src/detection/evaluate.ts";
import { GradientStats } from "../src/detection/gradients.ts";
import { lineChartSvg } from "../src/plot.ts";
import { decodeBoxes, encodeBoxes } from "../src/detection/boxes.ts";

/** A small deterministic generator for test data (xorshift32). */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

function close(actual: number, expected: number, tol: number, what: string): void {
  assert.ok(
    Math.abs(actual - expected) <= tol,
    `${what}: expected ${expected}, got ${actual} (tolerance ${tol})`,
  );
}

/**
 * Naive step AP: for every distinct score t, precision and recall of the detections scoring ≥ t,
 * summed as Σ (R_t − R_prev)·P_t over thresholds in decreasing order. O(n²), no sorting of pairs.
 */
function naiveStepAP(scores: number[], pos: number[], nPos: number): number {
  const thresholds = [...new Set(scores)].sort((a, b) => b - a);
  let ap = 0, prev = 0;
  for (const t of thresholds) {
    let tp = 0, all = 0;
    for (let i = 0; i < scores.length; i++) {
      if (scores[i] >= t) {
        all++;
        if (pos[i]) tp++;
      }
    }
    const r = tp / nPos;
    ap += (r - prev) * (tp / all);
    prev = r;
  }
  return ap;
}

/** Naive COCO 101-point AP: for each recall point, the best precision over thresholds reaching it. */
function naiveCocoAP(scores: number[], pos: number[], nPos: number): number {
  const thresholds = [...new Set(scores)];
  let sum = 0;
  for (let t = 0; t <= 100; t++) {
    const r = t / 100;
    let best = 0;
    for (const th of thresholds) {
      let tp = 0, all = 0;
      for (let i = 0; i < scores.length; i++) {
        if (scores[i] >= th) {
          all++;
          if (pos[i]) tp++;
        }
      }
      if (tp / nPos >= r - 1e-12) best = Math.max(best, tp / all);
    }
    sum += best;
  }
  return sum / 101;
}

Deno.test("averagePrecision: hand-computed rankings", () => {
  // P at R = 0.5 is 1, at R = 1 is 2/3.
  close(
    averagePrecision([0.9, 0.8, 0.7], [1, 0, 1], 2, "step"),
    0.5 + 0.5 * (2 / 3),
    1e-12,
    "step",
  );
  close(
    averagePrecision([0.9, 0.8, 0.7], [1, 0, 1], 2, "coco101"),
    (51 * 1 + 50 * (2 / 3)) / 101,
    1e-12,
    "coco101",
  );
  // Input order does not matter.
  close(
    averagePrecision([0.7, 0.9, 0.8], [1, 1, 0], 2, "step"),
    0.5 + 0.5 * (2 / 3),
    1e-12,
    "perm",
  );
  // Positives never detected cost recall: one hit at the top, four positives in all.
  close(averagePrecision([0.9, 0.1], [1, 0], 4, "step"), 0.25, 1e-12, "missed step");
  close(averagePrecision([0.9, 0.1], [1, 0], 4, "coco101"), 26 / 101, 1e-12, "missed coco");
  // A perfect ranking.
  assert.equal(averagePrecision([3, 2, 1], [1, 1, 0], 2, "coco101"), 1);
  // No detections at all.
  assert.equal(averagePrecision([], [], 3, "step"), 0);
  assert.ok(Number.isNaN(averagePrecision([0.5], [0], 0)));
});

Deno.test("averagePrecision: ties enter together, whatever their order", () => {
  // Tie at the top between a positive and a negative: P = 1/2 at R = 1/2, then P = 2/3 at R = 1.
  const want = 0.5 * 0.5 + 0.5 * (2 / 3);
  close(averagePrecision([0.5, 0.5, 0.3], [1, 0, 1], 2, "step"), want, 1e-12, "pos first");
  close(averagePrecision([0.5, 0.5, 0.3], [0, 1, 1], 2, "step"), want, 1e-12, "neg first");
  // The envelope lifts the first point to 2/3, reached at every recall.
  close(averagePrecision([0.5, 0.5, 0.3], [0, 1, 1], 2, "coco101"), 2 / 3, 1e-12, "coco");
  // Everything tied: one point P = 1/2, R = 1.
  assert.equal(averagePrecision([1, 1, 1, 1], [1, 0, 0, 1], 2, "step"), 0.5);
  assert.equal(averagePrecision([1, 1, 1, 1], [0, 0, 1, 1], 2, "coco101"), 0.5);
});

Deno.test("averagePrecision: agrees with a naive threshold sweep on random lists with ties", () => {
  const r = rng(7);
  for (let trial = 0; trial < 60; trial++) {
    const n = 1 + Math.floor(r() * 40);
    const scores = Array.from({ length: n }, () => Math.floor(r() * 8) / 8); // many ties
    const pos: number[] = Array.from({ length: n }, () => (r() < 0.4 ? 1 : 0));
    const listed = pos.reduce((a, b) => a + b, 0);
    const nPos = listed + Math.floor(r() * 3);
    if (nPos === 0) continue;
    close(
      averagePrecision(scores, pos, nPos, "step"),
      naiveStepAP(scores, pos, nPos),
      1e-12,
      "step",
    );
    close(
      averagePrecision(scores, pos, nPos, "coco101"),
      naiveCocoAP(scores, pos, nPos),
      1e-12,
      "coco101",
    );
  }
});

Deno.test("averagePrecision: bad input", () => {
  assert.throws(() => averagePrecision([1, 2], [1], 1), RangeError);
  assert.throws(() => averagePrecision([NaN], [1], 1), /scores\[0\] must be finite/);
  assert.throws(
    () => averagePrecision([1, 2], [1, 1], 1),
    /numPositives must be an integer of at least 2/,
  );
  assert.throws(() => averagePrecision([1], [1], 1.5), RangeError);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => averagePrecision([1], [1], 1, "voc" as any), /interpolation/);
});

/** Naive evaluator: sort every candidate of an image, keep the first K, pool, naive step AP. */
function naiveEvaluate(
  images: { scores: Float32Array; labels: Int32Array; negatives: number[] }[],
  c: number,
  maxDets: number,
  federated: boolean,
): number[] {
  const pooled = Array.from({ length: c }, () => ({ s: [] as number[], p: [] as number[] }));
  const nPos = new Array(c).fill(0);
  for (const im of images) {
    const cand: { s: number; i: number; j: number }[] = [];
    for (let i = 0; i < im.labels.length; i++) {
      if (im.labels[i] < c) nPos[im.labels[i]]++;
      for (let j = 0; j < c; j++) cand.push({ s: im.scores[i * c + j], i, j });
    }
    cand.sort((a, b) => b.s - a.s || a.i * c + a.j - (b.i * c + b.j));
    const present = new Set(Array.from(im.labels).filter((y) => y < c));
    for (const d of cand.slice(0, maxDets)) {
      if (federated && !present.has(d.j) && !im.negatives.includes(d.j)) continue;
      pooled[d.j].s.push(d.s);
      pooled[d.j].p.push(im.labels[d.i] === d.j ? 1 : 0);
    }
  }
  return pooled.map((q, j) => nPos[j] === 0 ? NaN : naiveStepAP(q.s, q.p, nPos[j]));
}

Deno.test("ProposalEvaluator: a hand-computed image with a detection cap", () => {
  // Two categories; proposals labelled 0, 1, background. Scores [P, C]:
  //   p0: 0.9 0.6    p1: 0.7 0.8    p2: 0.5 0.65
  // Keeping 3 per image: 0.9 (p0,c0 hit), 0.8 (p1,c1 hit), 0.7 (p1,c0 miss).
  const ev = new ProposalEvaluator({ numCategories: 2, maxDetsPerImage: 3, interpolation: "step" });
  ev.add(new Float32Array([0.9, 0.6, 0.7, 0.8, 0.5, 0.65]), new Int32Array([0, 1, 2]));
  const ap = ev.perCategoryAP();
  assert.equal(ap[0], 1); // hit ranked above the miss
  assert.equal(ap[1], 1);
  // Keeping 1: only (p0, c0); category 1 loses its only positive.
  const ev1 = new ProposalEvaluator({
    numCategories: 2,
    maxDetsPerImage: 1,
    interpolation: "step",
  });
  ev1.add(new Float32Array([0.9, 0.6, 0.7, 0.8, 0.5, 0.65]), new Int32Array([0, 1, 2]));
  assert.deepEqual(Array.from(ev1.perCategoryAP()), [1, 0]);
  // Without a cap, category 1 ranks 0.8 (hit) above 0.65 and 0.6 (misses): AP 1; category 0
  // ranks 0.9 hit, 0.7, 0.5 misses: AP 1.
  const evAll = new ProposalEvaluator({ numCategories: 2, maxDetsPerImage: Infinity });
  evAll.add(new Float32Array([0.9, 0.6, 0.7, 0.8, 0.5, 0.65]), new Int32Array([0, 1, 2]));
  assert.deepEqual(Array.from(evAll.perCategoryAP()), [1, 1]);
  assert.deepEqual(Array.from(evAll.positiveProbability()).map((v) => Math.fround(v)), [
    Math.fround(0.9),
    Math.fround(0.8),
  ]);
  assert.deepEqual(Array.from(evAll.numPositives()), [1, 1]);
});

Deno.test("ProposalEvaluator: ties at the cap keep the lower (proposal, category) index", () => {
  // Every score equal; cap 2 keeps flat indices 0 and 1: (p0, c0) miss, (p0, c1) hit.
  const ev = new ProposalEvaluator({ numCategories: 2, maxDetsPerImage: 2, interpolation: "step" });
  ev.add(new Float32Array([0.5, 0.5, 0.5, 0.5]), new Int32Array([1, 0]));
  // Category 0: one kept detection (p0, c0) which is a miss → AP 0; category 1: a hit → AP 1.
  assert.deepEqual(Array.from(ev.perCategoryAP()), [0, 1]);
});

Deno.test("ProposalEvaluator: federated evaluation ignores unverified categories", () => {
  // Category 1 is absent and not in the negative set: its false positive does not count.
  const scores = new Float32Array([0.4, 0.9, 0.1, 0.1]); // p0 (label 0), p1 (background)
  const labels = new Int32Array([0, 2]);
  const fed = new ProposalEvaluator({ numCategories: 2, federated: true, interpolation: "step" });
  fed.add(scores, labels, []);
  const full = new ProposalEvaluator({ numCategories: 2, interpolation: "step" });
  full.add(scores, labels);
  assert.equal(fed.perCategoryAP()[0], 1);
  assert.equal(full.perCategoryAP()[0], 1);
  // A second image with a positive of category 1 scoring 0.3: with the first image's 0.9 false
  // positive counted, AP(1) = 0.5; federated without listing 1 as negative there, AP(1) = 1.
  const scores2 = new Float32Array([0.05, 0.3]);
  fed.add(scores2, new Int32Array([1]), []);
  full.add(scores2, new Int32Array([1]));
  assert.equal(fed.perCategoryAP()[1], 1);
  assert.equal(full.perCategoryAP()[1], 0.5);
  // Listing category 1 as verified absent in the first image brings the false positive back.
  const fed2 = new ProposalEvaluator({ numCategories: 2, federated: true, interpolation: "step" });
  fed2.add(scores, labels, [1]);
  fed2.add(scores2, new Int32Array([1]), []);
  assert.equal(fed2.perCategoryAP()[1], 0.5);
});

Deno.test("ProposalEvaluator: agrees with a naive evaluator on random images", () => {
  const r = rng(11);
  const c = 5;
  for (const [maxDets, federated] of [[7, false], [7, true], [1000, false], [3, true]] as const) {
    const images = Array.from({ length: 6 }, () => {
      const p = 4 + Math.floor(r() * 5);
      const labels = Int32Array.from({ length: p }, () => Math.floor(r() * (c + 1)));
      const scores = Float32Array.from({ length: p * c }, () => Math.floor(r() * 10) / 10);
      const negatives = [0, 1, 2, 3, 4].filter((j) => !labels.includes(j) && r() < 0.5);
      return { scores, labels, negatives };
    });
    const ev = new ProposalEvaluator({
      numCategories: c,
      maxDetsPerImage: maxDets,
      interpolation: "step",
      federated,
    });
    for (const im of images) ev.add(im.scores, im.labels, im.negatives);
    const want = naiveEvaluate(images, c, maxDets, federated);
    const got = ev.perCategoryAP();
    for (let j = 0; j < c; j++) {
      if (Number.isNaN(want[j])) assert.ok(Number.isNaN(got[j]));
      else close(got[j], want[j], 1e-12, `maxDets ${maxDets} federated ${federated} category ${j}`);
    }
  }
});

Deno.test("ProposalEvaluator: bad input", () => {
  assert.throws(() => new ProposalEvaluator({ numCategories: 0 }), /numCategories/);
  assert.throws(
    () => new ProposalEvaluator({ numCategories: 2, maxDetsPerImage: 0 }),
    /maxDetsPerImage/,
  );
  const ev = new ProposalEvaluator({ numCategories: 2 });
  assert.throws(
    () => ev.add(new Float32Array(5), new Int32Array(3)),
    /scores must hold P·C = 3·2 = 6/,
  );
  assert.throws(
    () => ev.add(new Float32Array(6), new Int32Array([0, 3, 1])),
    /labels\[1\] must lie in 0..2/,
  );
  assert.throws(
    () => ev.add(new Float32Array([0, 0, NaN, 0]), new Int32Array([0, 1])),
    /scores\[1, 0\] must be finite/,
  );
  const fed = new ProposalEvaluator({ numCategories: 2, federated: true });
  assert.throws(() => fed.add(new Float32Array(2), new Int32Array([0])), /negativeCategories/);
  assert.throws(() => fed.add(new Float32Array(2), new Int32Array([0]), [0]), /listed as absent/);
  assert.throws(
    () => fed.add(new Float32Array(2), new Int32Array([0]), [2]),
    /negativeCategories\[0\]/,
  );
  assert.equal(ev.numImages, 0);
});

Deno.test("summarizeAP: means over groups skip categories without positives", () => {
  const s = summarizeAP([0.2, 0.4, NaN, 0.6, 0.1], [
    "rare",
    "frequent",
    "common",
    "frequent",
    "rare",
  ]);
  close(s.ap, (0.2 + 0.4 + 0.6 + 0.1) / 4, 1e-15, "ap");
  close(s.apRare, 0.15, 1e-15, "apRare");
  assert.ok(Number.isNaN(s.apCommon));
  close(s.apFrequent, 0.5, 1e-15, "apFrequent");
  assert.throws(() => summarizeAP([0.1], ["rare", "common"]), /groups must name a group/);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => summarizeAP([0.1], ["r" as any]), /groups\[0\]/);
});

Deno.test("GradientStats: positive and negative norms against a float64 reference", () => {
  const r = rng(3);
  const n = 13, c = 4, k = 6, steps = 3;
  const stats = new GradientStats(c, k);
  const wantPos = new Float64Array(c), wantNeg = new Float64Array(c);
  for (let s = 0; s < steps; s++) {
    const labels = Int32Array.from({ length: n }, () => Math.floor(r() * (c + 1)));
    labels[0] = 0;
    const g = Float32Array.from({ length: n * c }, () => r() - 0.5);
    const h = Float32Array.from({ length: n * k }, () => r() * 2);
    // Weight gradient Σ_i g_ij h_i in float64, handed over as f32 like a layer's gradient.
    const w = new Float32Array(c * k);
    for (let j = 0; j < c; j++) {
      for (let t = 0; t < k; t++) {
        let acc = 0;
        for (let i = 0; i < n; i++) acc += g[i * c + j] * h[i * k + t];
        w[j * k + t] = acc;
      }
    }
    stats.accumulate(w, g, h, labels);
    // Reference: positive and negative sums formed directly, not by subtraction.
    for (let j = 0; j < c; j++) {
      let p2 = 0, q2 = 0;
      for (let t = 0; t < k; t++) {
        let p = 0, q = 0;
        for (let i = 0; i < n; i++) {
          const v = g[i * c + j] * h[i * k + t];
          if (labels[i] === j) p += v;
          else q += v;
        }
        p2 += p * p;
        q2 += q * q;
      }
      wantPos[j] += Math.sqrt(p2) / steps;
      wantNeg[j] += Math.sqrt(q2) / steps;
    }
  }
  assert.equal(stats.steps, steps);
  const pos = stats.positiveNorm(), neg = stats.negativeNorm();
  for (let j = 0; j < c; j++) {
    // The weight gradient was rounded to f32 once: relative error ~1e-7 of its size.
    close(pos[j], wantPos[j], 1e-12 + 1e-6 * wantPos[j], `positive ${j}`);
    close(neg[j], wantNeg[j], 1e-6 * (wantNeg[j] + wantPos[j]), `negative ${j}`);
  }
  assert.ok(pos[0] > 0);
});

Deno.test("GradientStats: bad input", () => {
  assert.throws(() => new GradientStats(0, 3), /numCategories/);
  const s = new GradientStats(2, 3);
  assert.throws(
    () =>
      s.accumulate(
        new Float32Array(5),
        new Float32Array(2),
        new Float32Array(3),
        new Int32Array(1),
      ),
    /weightGrad must hold C·K = 2·3 = 6/,
  );
  assert.throws(
    () =>
      s.accumulate(
        new Float32Array(6),
        new Float32Array(3),
        new Float32Array(3),
        new Int32Array(1),
      ),
    /logitGrad must hold N·C/,
  );
  assert.throws(
    () =>
      s.accumulate(
        new Float32Array(6),
        new Float32Array(2),
        new Float32Array(4),
        new Int32Array(1),
      ),
    /features must hold N·K/,
  );
  assert.throws(
    () =>
      s.accumulate(
        new Float32Array(6),
        new Float32Array(2),
        new Float32Array(3),
        new Int32Array([3]),
      ),
    /labels\[0\] must lie in 0..2/,
  );
});

Deno.test("lineChartSvg: one polyline per unbroken run, gaps for NaN and non-positive log values", () => {
  const svg = lineChartSvg([
    {
      title: "a & b",
      xLabel: "x",
      yLabel: "y",
      logY: true,
      series: [
        { name: "pos", values: [1, 10, NaN, 100, 1000] },
        { name: "neg", values: [0.1, 0, 1, 2, 3] },
      ],
      bands: [{ from: 0, to: 2, label: "rare" }],
    },
    { title: "second", xLabel: "x", yLabel: "y", series: [{ name: "p", values: [0, 0.5, 1] }] },
  ]);
  assert.ok(svg.startsWith("<svg") && svg.trimEnd().endsWith("</svg>"));
  assert.ok(svg.includes("a &amp; b"));
  const polylines = [...svg.matchAll(/<polyline[^>]*points="([^"]*)"/g)].map((m) =>
    m[1].split(" ").length
  );
  // pos: runs [1,10] and [100,1000]; neg: [0.1] (a dot) and [1,2,3]; second panel: one run of 3.
  assert.deepEqual(polylines, [2, 2, 3, 3]);
  assert.equal([...svg.matchAll(/<circle/g)].length, 1);
  assert.ok(svg.includes(">rare<"));
  assert.throws(() => lineChartSvg([]), /panels/);
  assert.throws(
    () =>
      lineChartSvg([{
        title: "t",
        xLabel: "x",
        yLabel: "y",
        series: [{ name: "a", values: [1, 2] }, { name: "b", values: [1] }],
      }]),
    /series\[1\].values must have 2 values/,
  );
});

Deno.test("encodeBoxes / decodeBoxes: hand values, round trip and bad shapes", () => {
  const d = encodeBoxes(new Float32Array([0, 0, 10, 10]), new Float32Array([1, 0, 11, 20]));
  close(d[0], 1, 1e-6, "dx");
  close(d[1], 5, 1e-6, "dy");
  close(d[2], 0, 1e-6, "dw");
  close(d[3], 5 * Math.log(2), 1e-6, "dh");
  const r = rng(5);
  const props = new Float32Array(40), gts = new Float32Array(40);
  for (let i = 0; i < 10; i++) {
    const x = r() * 100, y = r() * 100;
    props.set([x, y, x + 5 + r() * 50, y + 5 + r() * 50], 4 * i);
    const gx = x + r() * 10, gy = y + r() * 10;
    gts.set([gx, gy, gx + 5 + r() * 50, gy + 5 + r() * 50], 4 * i);
  }
  const back = decodeBoxes(props, encodeBoxes(props, gts));
  for (let i = 0; i < 40; i++) close(back[i], gts[i], 1e-3, `round trip ${i}`);
  assert.throws(
    () => encodeBoxes(new Float32Array(6), new Float32Array(6)),
    /proposals must hold \[N, 4\]/,
  );
  assert.throws(
    () => encodeBoxes(new Float32Array(8).fill(1), new Float32Array(4)),
    /targets must hold 2 boxes/,
  );
  assert.throws(
    () => encodeBoxes(new Float32Array([0, 0, 0, 1]), new Float32Array([0, 0, 1, 1])),
    /proposals\[0\] must have a positive finite width and height/,
  );
});
