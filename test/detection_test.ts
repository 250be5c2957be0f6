import assert from "node:assert/strict";
import { averagePrecision, recallThresholds } from "../src/detection/ap.ts";
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

/** Both NaN, or within `tol`. */
function closeOrNaN(actual: number, expected: number, tol: number, what: string): void {
  if (Number.isNaN(expected)) {
    assert.ok(Number.isNaN(actual), `${what}: expected NaN, got ${actual}`);
  } else close(actual, expected, tol, what);
}

/** The float64 bit pattern of x as 16 hex digits. */
function bits(x: number): string {
  const v = new DataView(new ArrayBuffer(8));
  v.setFloat64(0, x);
  return v.getBigUint64(0).toString(16).padStart(16, "0");
}

/** The next float32 above the float32 x. */
function nextFloat32(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer);
  u[0] += 1;
  return f[0];
}

// ---------------------------------------------------------------------------------------------
// An LVIS reference, written from the published algorithm (lvis-api `lvis/results.py` and
// `lvis/eval.py`, with numpy's semantics spelled out) and independent of src/detection.

/** numpy's `np.spacing(1.0)`: the gap from 1 to the next float64, found from the bit pattern. */
function npSpacingOfOne(): number {
  const v = new DataView(new ArrayBuffer(8));
  v.setFloat64(0, 1);
  v.setBigUint64(0, v.getBigUint64(0) + 1n);
  return v.getFloat64(0) - 1;
}

/**
 * `np.linspace(start, stop, num)` (endpoint=True) as numpy computes it in float64:
 * `step = (stop − start) / (num − 1)`, `y = arange(0, num) * step`, `y += start`, `y[-1] = stop`.
 */
function npLinspace(start: number, stop: number, num: number): Float64Array {
  const div = num - 1;
  const delta = stop - start;
  const step = delta / div;
  const y = new Float64Array(num);
  for (let i = 0; i < num; i++) y[i] = i * step;
  for (let i = 0; i < num; i++) y[i] += start;
  y[num - 1] = stop;
  return y;
}

/** `np.searchsorted(a, v, side="left")` on a sorted array: the first i with a[i] >= v. */
function npSearchsortedLeft(a: ArrayLike<number>, v: number): number {
  let lo = 0, hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** `np.argsort(keys, kind="mergesort")`: a stable top-down merge sort of the indices. */
function npMergesortArgsort(keys: ArrayLike<number>): number[] {
  const sort = (a: number[]): number[] => {
    if (a.length <= 1) return a;
    const mid = a.length >> 1;
    const l = sort(a.slice(0, mid)), r = sort(a.slice(mid));
    const out: number[] = [];
    let i = 0, j = 0;
    while (i < l.length && j < r.length) {
      // The right run goes first only when strictly smaller: ties keep their input order.
      if (keys[r[j]] < keys[l[i]]) out.push(r[j++]);
      else out.push(l[i++]);
    }
    while (i < l.length) out.push(l[i++]);
    while (j < r.length) out.push(r[j++]);
    return out;
  };
  return sort(Array.from({ length: keys.length }, (_, i) => i));
}

/** One detection of one category as `LVISEval.accumulate` sees it. */
interface LvisDet {
  score: number;
  matched: boolean;
  ignored: boolean;
}

/**
 * `LVISEval.accumulate` for one category (one IoU threshold, area "all"): the mean of the 101
 * precision samples; NaN where LVIS leaves the category's precision at −1 (no ground truth).
 * `dets` are in LVIS's concatenation order (images in order, each image's detections sorted).
 */
function lvisCategoryAP(dets: LvisDet[], numGt: number): number {
  if (numGt === 0) return NaN;
  const recThrs = npLinspace(0, 1, 101);
  const order = npMergesortArgsort(dets.map((d) => -d.score));
  const tps = order.map((k) => dets[k].matched && !dets[k].ignored);
  const fps = order.map((k) => !dets[k].matched && !dets[k].ignored);
  const tp: number[] = [], fp: number[] = [];
  let t = 0, f = 0;
  for (let k = 0; k < order.length; k++) {
    t += tps[k] ? 1 : 0;
    f += fps[k] ? 1 : 0;
    tp.push(t);
    fp.push(f);
  }
  const numTp = tp.length;
  const rc = tp.map((x) => x / numGt);
  const eps = npSpacingOfOne();
  const pr = tp.map((x, k) => x / (fp[k] + x + eps));
  for (let i = numTp - 1; i > 0; i--) if (pr[i] > pr[i - 1]) pr[i - 1] = pr[i];
  const prAtRecall = new Array<number>(recThrs.length).fill(0);
  for (let r = 0; r < recThrs.length; r++) {
    const idx = npSearchsortedLeft(rc, recThrs[r]);
    if (idx >= numTp) break; // pr[idx] raises IndexError; the `try` leaves the rest at 0
    prAtRecall[r] = pr[idx];
  }
  return prAtRecall.reduce((a, b) => a + b, 0) / prAtRecall.length;
}

/** LVIS AP of one ranked list: every detection of one image, none ignored. */
function lvisListAP(scores: number[], pos: number[], nPos: number): number {
  return lvisCategoryAP(
    scores.map((score, i) => ({ score, matched: pos[i] === 1, ignored: false })),
    nPos,
  );
}

/** An image of proposals as the evaluator takes it. */
interface RefImage {
  scores: Float32Array;
  labels: Int32Array;
  negatives: number[];
  notExhaustive: number[];
}

/**
 * LVIS on proposals: detectron2's score filter (`scores > thresh` on float32), the results list
 * in proposal-major order, `LVISResults.limit_dets_per_image`, `LVISEval._prepare`'s federated
 * filter, `evaluate_img` (a detection matches its own proposal's ground truth; unmatched ones in
 * a not-exhaustive category are ignored) and `accumulate`. Also returns each category's
 * non-ignored detections, for the order-free "step" summary.
 */
function lvisEvaluate(
  images: RefImage[],
  c: number,
  maxDets: number,
  scoreThreshold: number,
  federated: boolean,
): { ap: number[]; kept: { s: number[]; p: number[] }[] } {
  interface Result {
    image: number;
    proposal: number;
    category: number;
    score: number;
  }
  const f32 = new Float32Array(2);
  const byImage: Result[][] = images.map((im, m) => {
    const out: Result[] = [];
    for (let i = 0; i < im.labels.length; i++) {
      for (let j = 0; j < c; j++) {
        f32[0] = im.scores[i * c + j];
        f32[1] = scoreThreshold;
        if (f32[0] > f32[1]) out.push({ image: m, proposal: i, category: j, score: f32[0] });
      }
    }
    return out;
  });
  // limit_dets_per_image: Python's sorted(reverse=True) is stable, like a mergesort on −score.
  const limited = byImage.map((anns) =>
    anns.length <= maxDets
      ? anns
      : npMergesortArgsort(anns.map((a) => -a.score)).slice(0, maxDets).map((k) => anns[k])
  );
  const ap: number[] = [], kept: { s: number[]; p: number[] }[] = [];
  for (let j = 0; j < c; j++) {
    const dets: LvisDet[] = [];
    let numGt = 0;
    const pooled = { s: [] as number[], p: [] as number[] };
    images.forEach((im, m) => {
      const labels = Array.from(im.labels);
      numGt += labels.filter((y) => y === j).length;
      // _prepare: a detection is kept only for categories in the image's positive or negative set.
      const dt = limited[m].filter((d) =>
        d.category === j && (!federated || labels.includes(j) || im.negatives.includes(j))
      );
      for (const k of npMergesortArgsort(dt.map((d) => -d.score))) {
        const matched = labels[dt[k].proposal] === j;
        const ignored = federated && !matched && im.notExhaustive.includes(j);
        dets.push({ score: dt[k].score, matched, ignored });
        if (!ignored) {
          pooled.s.push(dt[k].score);
          pooled.p.push(matched ? 1 : 0);
        }
      }
    });
    ap.push(lvisCategoryAP(dets, numGt));
    kept.push(pooled);
  }
  return { ap, kept };
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

/**
 * What this project computed before it followed LVIS: tied scores grouped into one threshold and
 * recall points r = t/100 reached with a tolerance of 1e-12. Kept to show how far LVIS differs.
 */
function tieGroupedAP(scores: number[], pos: number[], nPos: number): number {
  const thresholds = [...new Set(scores)];
  let sum = 0;
  for (let t = 0; t <= 100; t++) {
    let best = 0;
    for (const th of thresholds) {
      let tp = 0, all = 0;
      for (let i = 0; i < scores.length; i++) {
        if (scores[i] >= th) {
          all++;
          if (pos[i]) tp++;
        }
      }
      if (tp / nPos >= t / 100 - 1e-12) best = Math.max(best, tp / all);
    }
    sum += best;
  }
  return sum / 101;
}

/** The indices t of np.linspace(0, 1, 101) whose float64 value is not the float64 nearest t/100. */
const INEXACT_INDICES = [35, 41, 47, 57, 69, 70, 82, 83, 94, 95];

Deno.test("recallThresholds: np.linspace(0, 1, 101) in float64, ten entries above t/100", () => {
  // Bit patterns of np.linspace(0, 1, 101)[t] as numpy 2 gives them (`float.hex`: 35 is
  // 0x1.6666666666667p-2 = 0.35000000000000003, …); each is one unit in the last place above the
  // float64 nearest t/100. The ten indices: 35, 41, 47, 57, 69, 70, 82, 83, 94, 95.
  const numpyBits: Record<number, string> = {
    35: "3fd6666666666667",
    41: "3fda3d70a3d70a3e",
    47: "3fde147ae147ae15",
    57: "3fe23d70a3d70a3e",
    69: "3fe6147ae147ae15",
    70: "3fe6666666666667",
    82: "3fea3d70a3d70a3e",
    83: "3fea8f5c28f5c290",
    94: "3fee147ae147ae15",
    95: "3fee666666666667",
  };
  const grid = npLinspace(0, 1, 101);
  const inexact: number[] = [];
  for (let t = 0; t <= 100; t++) {
    if (grid[t] !== t / 100) inexact.push(t);
  }
  assert.deepEqual(inexact, INEXACT_INDICES);
  assert.deepEqual(Object.keys(numpyBits).map(Number), INEXACT_INDICES);
  for (const t of INEXACT_INDICES) {
    assert.equal(bits(grid[t]), numpyBits[t], `numpy's formula at ${t}`);
    assert.equal(BigInt("0x" + bits(grid[t])) - BigInt("0x" + bits(t / 100)), 1n, `ulp at ${t}`);
  }
  assert.equal(grid[35], 0.35000000000000003);
  assert.equal(grid[100], 1);
  // The implementation's thresholds are those, bit for bit.
  const impl = recallThresholds();
  assert.equal(impl.length, 101);
  for (let t = 0; t <= 100; t++) assert.equal(bits(impl[t]), bits(grid[t]), `threshold ${t}`);
  // A copy: changing it does not change the evaluation.
  impl[35] = 0;
  assert.equal(recallThresholds()[35], grid[35]);
});

Deno.test("averagePrecision: hand-computed rankings", () => {
  const eps = 2 ** -52;
  // step: P at R = 0.5 is 1, at R = 1 is 2/3.
  close(
    averagePrecision([0.9, 0.8, 0.7], [1, 0, 1], 2, "step"),
    0.5 + 0.5 * (2 / 3),
    1e-12,
    "step",
  );
  // LVIS: thresholds 0..0.5 (51) sample 1/(1 + ε), thresholds 0.51..1 (50) sample 2/3.
  const want = (51 / (1 + eps) + 50 * (2 / 3)) / 101;
  close(averagePrecision([0.9, 0.8, 0.7], [1, 0, 1], 2, "coco101"), want, 1e-12, "coco101");
  close(averagePrecision([0.9, 0.8, 0.7], [1, 0, 1], 2), want, 1e-12, "default");
  close(lvisListAP([0.9, 0.8, 0.7], [1, 0, 1], 2), want, 1e-12, "reference");
  // Input order does not matter without ties.
  close(averagePrecision([0.7, 0.9, 0.8], [1, 1, 0], 2, "step"), 0.5 + 0.5 * (2 / 3), 1e-12, "p");
  close(averagePrecision([0.7, 0.9, 0.8], [1, 1, 0], 2), want, 1e-12, "perm");
  // Positives never detected cost recall: one hit at the top, four positives in all.
  close(averagePrecision([0.9, 0.1], [1, 0], 4, "step"), 0.25, 1e-12, "missed step");
  close(averagePrecision([0.9, 0.1], [1, 0], 4), 26 / 101, 1e-12, "missed coco");
  // The first detection, a hit, has precision 1/(1 + ε) < 1 (LVIS's ε); a second hit lifts it.
  const single = averagePrecision([0.9], [1], 1);
  assert.ok(single < 1 && single > 1 - 4 * eps, `single hit: ${single}`);
  assert.equal(averagePrecision([3, 2, 1], [1, 1, 0], 2), 1);
  // No detections at all: every sample is missing.
  assert.equal(averagePrecision([], [], 3, "step"), 0);
  assert.equal(averagePrecision([], [], 3), 0);
  assert.equal(lvisListAP([], [], 3), 0);
  assert.ok(Number.isNaN(averagePrecision([0.5], [0], 0)));
});

Deno.test("averagePrecision: tied scores keep their input order, as LVIS's stable mergesort", () => {
  // Cases where ranking tied detections one by one (LVIS) and grouping them differ.
  const cases: { scores: number[]; pos: number[]; nPos: number; lvis: number; grouped: number }[] =
    [
      // Tie block [hit, hit, miss, miss], then [miss, hit]. One by one: P = 1 up to R = 2/3,
      // then 1/2 at R = 1 → (34 + 33)·1 + 34·(1/2) samples. Grouped: P = 1/2 at R = 2/3 and 1.
      {
        scores: [0.8, 0.8, 0.8, 0.8, 0.2, 0.2],
        pos: [1, 1, 0, 0, 0, 1],
        nPos: 3,
        lvis: (67 + 34 / 2) / 101,
        grouped: 0.5,
      },
      // The same block, misses first: one by one agrees with grouping.
      {
        scores: [0.8, 0.8, 0.8, 0.8, 0.2, 0.2],
        pos: [0, 0, 1, 1, 0, 1],
        nPos: 3,
        lvis: 0.5,
        grouped: 0.5,
      },
      // Everything tied, the hit first: P = 1/(1 + ε) everywhere; grouped P = 1/3.
      {
        scores: [0.5, 0.5, 0.5],
        pos: [1, 0, 0],
        nPos: 1,
        lvis: 1 / (1 + 2 ** -52),
        grouped: 1 / 3,
      },
      { scores: [0.5, 0.5, 0.5], pos: [0, 0, 1], nPos: 1, lvis: 1 / 3, grouped: 1 / 3 },
      // A hit and a miss tied at the top, then a hit.
      {
        scores: [0.5, 0.5, 0.3],
        pos: [1, 0, 1],
        nPos: 2,
        lvis: (51 / (1 + 2 ** -52) + 50 * (2 / 3)) / 101,
        grouped: 2 / 3,
      },
      { scores: [0.5, 0.5, 0.3], pos: [0, 1, 1], nPos: 2, lvis: 2 / 3, grouped: 2 / 3 },
    ];
  let largest = 0;
  for (const [k, { scores, pos, nPos, lvis, grouped }] of cases.entries()) {
    close(lvisListAP(scores, pos, nPos), lvis, 1e-12, `reference, case ${k}`);
    close(tieGroupedAP(scores, pos, nPos), grouped, 1e-12, `grouped, case ${k}`);
    close(averagePrecision(scores, pos, nPos), lvis, 1e-12, `case ${k}`);
    largest = Math.max(largest, Math.abs(lvis - grouped));
    // "step" still groups ties (scikit-learn): the order of tied detections does not matter.
    const reversed = scores.map((_, i) => scores.length - 1 - i);
    close(
      averagePrecision(reversed.map((i) => scores[i]), reversed.map((i) => pos[i]), nPos, "step"),
      averagePrecision(scores, pos, nPos, "step"),
      1e-12,
      `step, case ${k}`,
    );
  }
  assert.ok(largest > 0.66, `grouping differs from LVIS by up to ${largest}`);
  // Everything tied, the two hits in the middle: P climbs to 2/3 at the third detection.
  assert.equal(averagePrecision([1, 1, 1, 1], [0, 1, 1, 0], 2, "step"), 0.5);
  close(averagePrecision([1, 1, 1, 1], [0, 1, 1, 0], 2), 2 / 3, 1e-12, "all tied");
});

Deno.test("averagePrecision: a recall of exactly t/100 does not reach the ten inexact thresholds", () => {
  // For each inexact index t: t/100 = a/nPos in lowest terms; a hits, then misses, then one more
  // hit. The a-th hit has recall a/nPos = t/100 (the float64 nearest it), below linspace[t], so
  // threshold t samples the later hit's precision, not 1. A recall tolerance would give 1 there.
  const gcd = (x: number, y: number): number => (y === 0 ? x : gcd(y, x % y));
  for (const t of INEXACT_INDICES) {
    const g = gcd(t, 100), a = t / g, nPos = 100 / g;
    assert.equal(a / nPos, t / 100);
    for (const misses of [1, 3]) {
      const pos = [...new Array(a).fill(1), ...new Array(misses).fill(0), 1];
      const scores = pos.map((_, i) => 1 - i / 1000);
      const p2 = (a + 1) / (a + misses + 1);
      // Thresholds 0..t−1 sample 1; t..t+g sample p2, except t+g when that is inexact too
      // (t = 69: the last hit's recall 0.7 misses linspace[70]); the rest are not reached.
      let want = 0;
      for (let i = 0; i <= 100; i++) {
        if (i < t) want += 1;
        else if (i < t + g || (i === t + g && !INEXACT_INDICES.includes(i))) want += p2;
      }
      want /= 101;
      const got = averagePrecision(scores, pos, nPos);
      close(got, want, 1e-12, `t = ${t}, ${misses} misses`);
      close(lvisListAP(scores, pos, nPos), want, 1e-12, `reference t = ${t}`);
      // The tolerant grid would have sampled 1 at threshold t.
      assert.ok(tieGroupedAP(scores, pos, nPos) - got >= (1 - p2) / 101 - 1e-12, `t = ${t}`);
    }
    // The a hits alone: recall ends at t/100, so thresholds t..100 are all missing.
    const alone = new Array(a).fill(1);
    close(averagePrecision(alone.map((_, i) => 1 - i / 1000), alone, nPos), t / 101, 1e-12, "a");
  }
});

Deno.test("averagePrecision: equals the LVIS reference on random tie-heavy lists", () => {
  const r = rng(7);
  let differsFromGrouped = 0;
  for (let trial = 0; trial < 400; trial++) {
    const long = trial % 5 === 0;
    const n = Math.floor(r() * (long ? 130 : 40));
    const levels = 2 + Math.floor(r() * 7);
    const scores = Array.from({ length: n }, () => Math.floor(r() * levels) / levels);
    const pos: number[] = Array.from({ length: n }, () => (r() < 0.5 ? 1 : 0));
    const listed = pos.reduce((a, b) => a + b, 0);
    // Counts of positives that divide 100 put recall points exactly on the grid.
    const round = [10, 20, 25, 50, 100].find((m) => m >= listed && r() < 0.6);
    const nPos = round ?? listed + Math.floor(r() * 3);
    if (nPos === 0) continue;
    const want = lvisListAP(scores, pos, nPos);
    close(averagePrecision(scores, pos, nPos), want, 1e-12, `trial ${trial}`);
    close(averagePrecision(scores, pos, nPos, "step"), naiveStepAP(scores, pos, nPos), 1e-12, "s");
    if (Math.abs(want - tieGroupedAP(scores, pos, nPos)) > 1e-9) differsFromGrouped++;
  }
  // The generator exercises what changed: most lists differ from the grouped, tolerant AP.
  assert.ok(differsFromGrouped > 100, `${differsFromGrouped} lists differ from grouping`);
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

Deno.test("ProposalEvaluator: a hand-computed image with a detection cap", () => {
  // Two categories; proposals labelled 0, 1, background. Scores [P, C]:
  //   p0: 0.9 0.6    p1: 0.7 0.8    p2: 0.5 0.65
  // Keeping 3 per image: 0.9 (p0,c0 hit), 0.8 (p1,c1 hit), 0.7 (p1,c0 miss).
  const scores = new Float32Array([0.9, 0.6, 0.7, 0.8, 0.5, 0.65]);
  const ev = new ProposalEvaluator({ numCategories: 2, maxDetsPerImage: 3, interpolation: "step" });
  ev.add(scores, new Int32Array([0, 1, 2]));
  const ap = ev.perCategoryAP();
  assert.equal(ap[0], 1); // hit ranked above the miss
  assert.equal(ap[1], 1);
  // Keeping 1: only (p0, c0); category 1 loses its only positive.
  const ev1 = new ProposalEvaluator({
    numCategories: 2,
    maxDetsPerImage: 1,
    interpolation: "step",
  });
  ev1.add(scores, new Int32Array([0, 1, 2]));
  assert.deepEqual(Array.from(ev1.perCategoryAP()), [1, 0]);
  // Without a cap, category 1 ranks 0.8 (hit) above 0.65 and 0.6 (misses); category 0 ranks
  // 0.9 hit, 0.7, 0.5 misses: LVIS AP 1/(1 + ε) for both.
  const evAll = new ProposalEvaluator({ numCategories: 2, maxDetsPerImage: Infinity });
  evAll.add(scores, new Int32Array([0, 1, 2]));
  for (const v of evAll.perCategoryAP()) close(v, 1, 1e-12, "uncapped");
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

Deno.test("ProposalEvaluator: ties across images rank in image order, then proposal order", () => {
  // Category 0, all scores 0.5: image A holds a miss then a hit, image B a hit. LVIS ranks
  // A-miss, A-hit, B-hit: P = 0, 1/2, 2/3 → monotone 2/3 everywhere. Added B first: B-hit,
  // A-miss, A-hit: P = 1, 1/2, 2/3 → thresholds up to 1/2 sample 1.
  const a = { scores: new Float32Array([0.5, 0.5]), labels: new Int32Array([1, 0]) };
  const b = { scores: new Float32Array([0.5]), labels: new Int32Array([0]) };
  const ab = new ProposalEvaluator({ numCategories: 1 });
  ab.add(a.scores, a.labels);
  ab.add(b.scores, b.labels);
  close(ab.perCategoryAP()[0], 2 / 3, 1e-12, "A then B");
  const ba = new ProposalEvaluator({ numCategories: 1 });
  ba.add(b.scores, b.labels);
  ba.add(a.scores, a.labels);
  close(ba.perCategoryAP()[0], (51 / (1 + 2 ** -52) + 50 * (2 / 3)) / 101, 1e-12, "B then A");
});

Deno.test("ProposalEvaluator: score threshold 1e-4, strictly above, compared in float32", () => {
  // One category, one positive proposal and one background proposal scoring higher. A score at
  // the threshold (1e-4 rounded to float32) is dropped, the next float32 up is kept.
  const at = Math.fround(1e-4), above = nextFloat32(at);
  assert.ok(above > at && Math.fround(above) === above);
  const run = (hit: number, miss: number, threshold?: number): number => {
    const ev = new ProposalEvaluator({ numCategories: 1, scoreThreshold: threshold });
    ev.add(new Float32Array([hit, miss]), new Int32Array([0, 1]));
    return ev.perCategoryAP()[0];
  };
  // The miss outranks the hit unless it is filtered out.
  close(run(0.5, at), 1, 1e-12, "miss at the threshold dropped");
  close(run(0.5, above), 1, 1e-12, "miss below the hit");
  close(run(at, 0.5), 0, 0, "hit at the threshold dropped");
  close(run(above, 0.5), 0.5, 1e-12, "hit just above kept");
  close(run(0, 0, -Infinity), 1, 1e-12, "no threshold: the tie keeps the hit (proposal 0) first");
  close(run(0, 0), 0, 0, "default drops zeros");
  // The threshold is rounded to float32 like a PyTorch float32 comparison: 0.1 rounds up, so a
  // float32 score of 0.1 is not above it even though it is above the float64 0.1.
  assert.ok(Math.fround(0.1) > 0.1);
  close(run(Math.fround(0.1), 0, 0.1), 0, 0, "0.1 is not above 0.1");
});

Deno.test("ProposalEvaluator: federated evaluation as LVIS", () => {
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
  // Not exhaustively annotated: category 0's miss (p1 scoring 0.9 for 0) is ignored, its hit
  // (p0, 0.4) still counts. Without the flag the miss outranks the hit.
  const img = new Float32Array([0.4, 0.01, 0.9, 0.01]);
  const exhaustive = new ProposalEvaluator({ numCategories: 2, federated: true });
  exhaustive.add(img, labels, []);
  close(exhaustive.perCategoryAP()[0], 0.5, 1e-12, "exhaustive");
  const partial = new ProposalEvaluator({ numCategories: 2, federated: true });
  partial.add(img, labels, [], [0]);
  close(partial.perCategoryAP()[0], 1, 1e-12, "not exhaustive");
  // Not federated: the not-exhaustive list changes nothing.
  const plain = new ProposalEvaluator({ numCategories: 2 });
  plain.add(img, labels, [], [0]);
  close(plain.perCategoryAP()[0], 0.5, 1e-12, "not federated");
});

Deno.test("ProposalEvaluator: equals the LVIS reference on random images", () => {
  const r = rng(11);
  const at = Math.fround(1e-4);
  const levels = [0, 5e-5, at, nextFloat32(at), 0.25, 0.5, 0.75, 1];
  let cases = 0, categoriesCompared = 0;
  for (let trial = 0; trial < 250; trial++) {
    const c = 1 + Math.floor(r() * 5);
    const numImages = 1 + Math.floor(r() * 6);
    const tieHeavy = r() < 0.7;
    const images: RefImage[] = Array.from({ length: numImages }, () => {
      const p = 1 + Math.floor(r() * 8);
      const labels = Int32Array.from({ length: p }, () => Math.floor(r() * (c + 1)));
      const scores = Float32Array.from(
        { length: p * c },
        () => tieHeavy ? levels[Math.floor(r() * levels.length)] : r(),
      );
      const present = (j: number) => labels.includes(j);
      const all = Array.from({ length: c }, (_, j) => j);
      const negatives = all.filter((j) => !present(j) && r() < 0.5);
      // Mostly present categories, sometimes an unverified one (its detections are dropped).
      const notExhaustive = all.filter((j) => !negatives.includes(j) && r() < 0.3);
      return { scores, labels, negatives, notExhaustive };
    });
    const maxDets = [1, 2, 3, 5, 10, 300, Infinity][Math.floor(r() * 7)];
    const threshold = [undefined, undefined, -Infinity, 0.5][Math.floor(r() * 4)];
    const federated = r() < 0.5;
    const want = lvisEvaluate(images, c, maxDets, threshold ?? 1e-4, federated);
    for (const interpolation of ["coco101", "step"] as const) {
      const ev = new ProposalEvaluator({
        numCategories: c,
        maxDetsPerImage: maxDets,
        scoreThreshold: threshold,
        interpolation,
        federated,
      });
      for (const im of images) ev.add(im.scores, im.labels, im.negatives, im.notExhaustive);
      const got = ev.perCategoryAP();
      for (let j = 0; j < c; j++) {
        const what = `trial ${trial} ${interpolation} category ${j}`;
        if (interpolation === "coco101") {
          closeOrNaN(got[j], want.ap[j], 1e-12, what);
          if (!Number.isNaN(want.ap[j])) categoriesCompared++;
        } else {
          const nPos = images.reduce((s, im) => s + im.labels.filter((y) => y === j).length, 0);
          const step = nPos === 0 ? NaN : naiveStepAP(want.kept[j].s, want.kept[j].p, nPos);
          closeOrNaN(got[j], step, 1e-12, what);
        }
      }
    }
    cases++;
  }
  assert.equal(cases, 250);
  assert.ok(categoriesCompared > 400, `${categoriesCompared} categories compared`);
});

Deno.test("ProposalEvaluator: bad input", () => {
  assert.throws(() => new ProposalEvaluator({ numCategories: 0 }), /numCategories/);
  assert.throws(
    () => new ProposalEvaluator({ numCategories: 2, maxDetsPerImage: 0 }),
    /maxDetsPerImage/,
  );
  assert.throws(
    () => new ProposalEvaluator({ numCategories: 2, scoreThreshold: NaN }),
    /scoreThreshold must be a number, got NaN/,
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
  assert.throws(
    () => fed.add(new Float32Array(2), new Int32Array([0]), [], [0, 2]),
    /notExhaustiveCategories\[1\] must lie in 0..1, got 2/,
  );
  assert.throws(
    () => fed.add(new Float32Array(2), new Int32Array([0]), [1], [1]),
    /notExhaustiveCategories\[0\] = 1 is also listed in negativeCategories/,
  );
  assert.equal(ev.numImages, 0);
  assert.equal(fed.numImages, 0);
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

Deno.test("GradientStats: logit-gradient sums split by positive, foreground and background rows", () => {
  const r = rng(5);
  const n = 17, c = 5, k = 3, steps = 4;
  const stats = new GradientStats(c, k);
  const pos = new Float64Array(c), fg = new Float64Array(c), bg = new Float64Array(c);
  for (let s = 0; s < steps; s++) {
    const labels = Int32Array.from({ length: n }, () => Math.floor(r() * (c + 1)));
    labels[0] = c;
    labels[1] = 2;
    const g = Float32Array.from({ length: n * c }, () => r() - 0.5);
    const h = Float32Array.from({ length: n * k }, () => r());
    const w = new Float32Array(c * k);
    for (let j = 0; j < c; j++) {
      for (let t = 0; t < k; t++) {
        for (let i = 0; i < n; i++) w[j * k + t] += g[i * c + j] * h[i * k + t];
      }
    }
    stats.accumulate(w, g, h, labels);
    // Reference: each (row, category) pair classified on its own.
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < c; j++) {
        const a = Math.abs(g[i * c + j]);
        if (labels[i] === j) pos[j] += a;
        else if (labels[i] === c) bg[j] += a;
        else fg[j] += a;
      }
    }
  }
  const got = stats.logitGradientSums();
  for (let j = 0; j < c; j++) {
    close(got.positive[j], pos[j], 1e-12, `positive ${j}`);
    close(got.negativeForeground[j], fg[j], 1e-12, `foreground ${j}`);
    close(got.negativeBackground[j], bg[j], 1e-12, `background ${j}`);
  }
  assert.ok(got.positive[2] > 0 && got.negativeBackground[0] > 0 && got.negativeForeground[0] > 0);
  // Copies: changing them leaves the statistics alone.
  got.positive[2] = -1;
  assert.ok(stats.logitGradientSums().positive[2] > 0);
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
