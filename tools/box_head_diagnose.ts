/**
 * Why a box-head run gets the rare-category AP it gets: trains the head with sigmoid CE and with
 * EQL on one synthetic proposal set and prints, per loss,
 *
 * - AP / AP_r / AP_c / AP_f as LVIS computes it (score > 1e-4, 300 detections per image), and
 *   the same ranking with neither the threshold nor the cap ("ranking only": can the classifier
 *   order its own positives above everything else at all?);
 * - for rare categories on validation: the share of their positives scored above 1e-4, and the
 *   median score on their positives, on other categories' foreground rows and on background;
 * - where each group's discouraging gradient came from during training: Σ|∂L/∂z| over positives
 *   over negatives, and the share of the negatives' part from foreground rows of other
 *   categories (the rest is background rows).
 *
 *     deno run -A tools/box_head_diagnose.ts '{"data": {"seed": 0}, "epochs": 1}'
 *
 * The JSON argument holds `data` (LongTailProposals options) and the training settings `epochs`
 * (default 1), `lr` (0.06), `hidden` (512), `batchImages` (2), `lambda` (1.76e-3) and `losses`
 * (default `["ce", "eql"]`; `"eql@5e-4"` is EQL with its own λ).
 *
 * @module
 */

import { BoxHead } from "../src/nn/box_head.ts";
import { SGD } from "../src/optim/sgd.ts";
import { warmupMultiStep } from "../src/optim/schedule.ts";
import { tensor } from "../src/tensor.ts";
import { autoDevice } from "../src/device/auto.ts";
import { Random } from "../src/random.ts";
import { collateProposals, LongTailProposals } from "../src/data/proposals.ts";
import { eqlLoss } from "../src/losses/eql.ts";
import { sigmoidCrossEntropy } from "../src/losses/sigmoid_cross_entropy.ts";
import { boxRegressionLoss } from "../src/losses/box.ts";
import { GradientStats } from "../src/detection/gradients.ts";
import { ProposalEvaluator, summarizeAP } from "../src/detection/evaluate.ts";
import { averagePrecision } from "../src/detection/ap.ts";

interface Settings {
  data?: Record<string, unknown>;
  epochs?: number;
  lr?: number;
  hidden?: number;
  batchImages?: number;
  lambda?: number;
  losses?: string[];
}

const cfg: Settings = JSON.parse(Deno.args[0] ?? "{}");
const epochs = cfg.epochs ?? 1, lr = cfg.lr ?? 0.06, hidden = cfg.hidden ?? 512;
const batchImages = cfg.batchImages ?? 2, lambda = cfg.lambda ?? 1.76e-3;
const t0 = performance.now();
const data = new LongTailProposals(cfg.data ?? {});
const { train, val } = data;
const c = data.numCategories, d = data.featureWidth;
const groups = data.groups;
const freq = data.frequencies();
const device = await autoDevice();
const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z));
const median = (v: number[]): number => {
  if (v.length === 0) return NaN;
  const s = v.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const f = (v: number): string => (100 * v).toFixed(2).padStart(6);

console.log(JSON.stringify(cfg));
for (const loss of cfg.losses ?? ["ce", "eql"]) {
  const head = new BoxHead({
    inFeatures: d,
    numClasses: c,
    hidden,
    classAgnosticBox: true,
    device,
  });
  const opt = new SGD(head.parameters(), { momentum: 0.9, weightDecay: 1e-4 });
  const steps = Math.ceil(train.numImages / batchImages) * epochs;
  const schedule = warmupMultiStep({
    lr,
    warmupSteps: Math.max(1, Math.round(0.05 * steps)),
    warmupStartLr: lr * 0.001,
    milestones: [Math.round(0.8 * steps)],
  });
  const stats = new GradientStats(c, hidden);
  const order = new Random(1);
  let step = 0;
  for (let e = 0; e < epochs; e++) {
    const perm = order.permutation(train.numImages);
    for (let b = 0; b < train.numImages; b += batchImages) {
      const batch = collateProposals(train, perm.subarray(b, b + batchImages));
      const rows = batch.labels.length;
      using x = tensor(batch.features, [rows, d], device);
      const out = head.forward(x, true);
      using cls = loss === "ce"
        ? sigmoidCrossEntropy(out.logits, batch.labels)
        : eqlLoss(out.logits, batch.labels, {
          frequencies: freq,
          lambda: loss.startsWith("eql@") ? Number(loss.slice(4)) : lambda,
        });
      using box = boxRegressionLoss(out.boxDeltas, batch.boxTargets, batch.labels, {
        numClasses: c,
      });
      head.backward(cls.grad, box.grad);
      stats.accumulate(
        head.clsScore.weight.grad.toArray() as Float32Array,
        cls.grad.toArray() as Float32Array,
        head.features.toArray() as Float32Array,
        batch.labels,
      );
      opt.step(schedule(step++));
    }
  }
  const lvis = new ProposalEvaluator({ numCategories: c });
  // Ranking-only AP of every fourth rare category: its scores on every validation row.
  const sampled = groups.flatMap((g, j) => (g === "rare" ? [j] : [])).filter((_, k) => k % 4 === 0);
  const valRows = val.numImages * data.settings.valProposalsPerImage;
  const colScores = sampled.map(() => new Float32Array(valRows));
  const colHits = sampled.map(() => new Uint8Array(valRows));
  let row = 0, hSum = 0, hN = 0;
  const rarePos: number[] = [], rareFg: number[] = [], rareBg: number[] = [];
  const rare = groups.map((g) => g === "rare");
  for (let m = 0; m < val.numImages; m++) {
    const im = val.image(m);
    const p = im.labels.length;
    using x = tensor(im.features, [p, d], device);
    const scores = (head.forward(x, false).logits.toArray() as Float32Array).map(sigmoid);
    const hv = head.features.toArray() as Float32Array;
    for (let i = 0; i < p; i++) {
      if (im.labels[i] === c) continue;
      let e = 0;
      for (let t = 0; t < hidden; t++) e += hv[i * hidden + t] ** 2;
      hSum += e;
      hN++;
    }
    lvis.add(scores, im.labels);
    for (let i = 0; i < p; i++, row++) {
      sampled.forEach((j, k) => {
        colScores[k][row] = scores[i * c + j];
        colHits[k][row] = im.labels[i] === j ? 1 : 0;
      });
    }
    for (let i = 0; i < p; i++) {
      const y = im.labels[i];
      if (y < c && rare[y]) rarePos.push(scores[i * c + y]);
      // A sample of rare scores on negatives: one rare category per row.
      if (i % 4 === 0) {
        let j = (m * 7919 + i * 104729) % c;
        while (!rare[j] || j === y) j = (j + 1) % c;
        (y < c ? rareFg : rareBg).push(scores[i * c + j]);
      }
    }
  }
  head.dispose();
  const a = summarizeAP(lvis.perCategoryAP(), groups);
  let rankAp = 0, rankN = 0;
  sampled.forEach((_, k) => {
    const n = colHits[k].reduce((a, b) => a + b, 0);
    if (n === 0) return;
    rankAp += averagePrecision(colScores[k], colHits[k], n);
    rankN++;
  });
  console.log(
    `${loss}: LVIS AP ${f(a.ap)} r ${f(a.apRare)} c ${f(a.apCommon)} f ${f(a.apFrequent)} | ` +
      `rare ranking only (no threshold, no cap; ${rankN} categories) ${f(rankAp / rankN)}`,
  );
  console.log(
    `  rare on val: positives above 1e-4 ${
      f(rarePos.filter((s) => s > 1e-4).length / rarePos.length)
    } %, median score on positives ${median(rarePos).toExponential(2)}, other fg ${
      median(rareFg).toExponential(2)
    }, background ${median(rareBg).toExponential(2)}`,
  );
  console.log(`  mean |h|² of validation foreground rows ${(hSum / hN).toFixed(1)}`);
  const s = stats.logitGradientSums();
  for (const g of ["rare", "common", "frequent"] as const) {
    let pos = 0, fg = 0, bg = 0;
    groups.forEach((x, j) => {
      if (x !== g) return;
      pos += s.positive[j];
      fg += s.negativeForeground[j];
      bg += s.negativeBackground[j];
    });
    console.log(
      `  ${g.padEnd(8)} Σ|g| pos/neg ${(pos / (fg + bg)).toFixed(3)}, negative from fg rows ${
        f(fg / (fg + bg))
      } %`,
    );
  }
}
console.log(`${((performance.now() - t0) / 1000).toFixed(0)} s`);
