/**
 * The Equalization Loss on a detector's box head: trains the Fast R-CNN "2fc" head on the same
 * LVIS-like long-tailed proposals with several methods (`--compare ce,eql,eqlv2,seesaw,rfs`;
 * sigmoid CE and EQL by default) over one or more seeds (`--seeds K`) and prints AP,
 * AP_r, AP_c and AP_f per method as mean ± standard deviation over the seeds, and where each
 * frequency group's discouraging gradient came from (the share of the negative Σ|∂L/∂z| from
 * other categories' foreground rows, the rest from background rows). Flags run the paper's
 * ablations (λ sweep with TR(λ), E(r) on/off, threshold vs exponential vs Gompertz weights, the
 * image-level rule), write the results as JSON and draw the gradient analysis (Figure 1), the
 * mean probability of positives (Figure 2) and the positive-to-negative gradient ratio per
 * frequency group as SVG.
 *
 * The methods of a seed train side by side, one step each per batch, so a batch is generated
 * once for all of them (RFS, which draws other images, gets its own); a method's results are
 * the same as when it runs alone.
 *
 * Each method is a criterion: the width of the head's logit layer (C for sigmoid CE and EQL,
 * C + 1 for EQLv2's objectness column, C + 2 for Seesaw's objectness pair), its loss, and its
 * test-time score (σ(z_j); σ(z_j)·(1 − σ(z_bg)); softmax(classes)_j · P(foreground)).
 *
 * The default run (750 synthetic training images, hidden width 256, two epochs, three seeds, two
 * methods) took 2 min 0 s on two otherwise idle cores of an AMD EPYC (Zen 5) with the OpenBLAS
 * kernels the library picks (Cooperlake), and 2 min 49 s with `OPENBLAS_CORETYPE=Haswell` set in
 * the environment; one seed (`--seeds 1`) takes about a third of that.
 *
 *     deno run -A examples/box_head.ts                          # sigmoid CE vs EQL, 3 seeds
 *     deno run -A examples/box_head.ts --seeds 1                # one seed, under a minute
 *     deno run -A examples/box_head.ts --compare ce,eql,eqlv2,seesaw,rfs --seeds 1
 *     deno run -A examples/box_head.ts --ablation er --out er.json
 *     deno run -A examples/box_head.ts --plot figures/
 *     deno run -A examples/box_head.ts --help
 *
 * The library comes in through its entry points (`../mod.ts`, `../data.ts`, `../detection.ts`,
 * `../nn.ts`, `../plot.ts`), as it would from `jsr:@eql/eql` and its sub-paths in a project of
 * your own; `src/cli.ts` holds the command-line helpers the examples share (flag ranges, output
 * checks, fallback writes).
 *
 * @module
 */

import {
  autoDevice,
  BoxHead,
  CpuKernelsUnavailableError,
  type Device,
  eqlLoss,
  Eqlv2Criterion,
  eqlv2Scores,
  LibraryNotFoundError,
  lvisGroups,
  Random,
  SeesawCriterion,
  SGD,
  sigmoidCrossEntropy,
  tailRatio,
  type Tensor,
  tensor,
  warmupMultiStep,
  type WeightFunction,
  zeros,
} from "../mod.ts";
import { DatasetError, repeatFactors, repeatFactorSampling } from "../data.ts";
import { NormalizedLinear } from "../nn.ts";
import {
  type ApSummary,
  boxRegressionLoss,
  collateProposals,
  type FrequencyGroup,
  GradientStats,
  LongTailProposals,
  LVIS_V05_TRAIN_IMAGES,
  type ProposalBatch,
  ProposalEvaluator,
  type ProposalFile,
  type ProposalSource,
  readProposalFeatures,
  summarizeAP,
} from "../detection.ts";
import { barChartSvg, type ChartBand, lineChartSvg } from "../plot.ts";
import {
  checkOutputPath,
  choiceFlag,
  formatPercent as pct,
  numberFlag,
  type NumberRange,
  parseFlags,
  runCli,
  saveResult,
  UsageError,
} from "../src/cli.ts";

/**
 * Default size of a run: synthetic training images and hidden width. Chosen so that the default
 * comparison finishes within a few minutes on two CPU cores while EQL still beats sigmoid CE on
 * AP and AP_c.
 */
const DEFAULT_TRAIN_IMAGES = 750, DEFAULT_HIDDEN = 256;

/**
 * Seeds of the default run: three, so that the table's spread says whether EQL's gain on the
 * rare categories is larger than the seed-to-seed variation (2 min 0 s to 2 min 49 s on two idle
 * cores).
 */
const DEFAULT_SEEDS = 3;

/**
 * Two epochs at a peak learning rate of 0.3 with one image (512 proposals) per step: a rare
 * category's handful of positives must move its classifier within the run (one epoch at 0.06
 * left every rare classifier at its initial prior, under either loss); 0.8 diverges.
 */
const DEFAULT_EPOCHS = 2, DEFAULT_LR = 0.3;

/**
 * λ by the paper's rule of thumb, a tail ratio TR(λ) of 2–10 %: on this set's image counts
 * TR(5e-4) is about 6 %, whereas the LVIS v0.5 value 1.76e-3 gives about 23 % here (the
 * synthetic frequent categories stop at 400 images) and suppresses most common categories too.
 */
const DEFAULT_LAMBDA = 5e-4;

const HELP = `Usage: deno run -A examples/box_head.ts [options]

Trains the Fast R-CNN box head (fc → fc → C sigmoid logits + box regressor) on LVIS-like
long-tailed proposals with sigmoid cross-entropy and with the Equalization Loss, on the same data
and seeds, and prints AP, AP_r, AP_c, AP_f as mean ± standard deviation over the seeds. The
defaults (3 seeds) took 2:00 to 2:49 on two idle CPU cores (AMD EPYC, Zen 5; the longer time with
OpenBLAS's Haswell kernels forced by OPENBLAS_CORETYPE); --seeds 1 a third of that.

Data (synthetic unless --train-file is given)
  --seed N              seed of the data, the initial weights and the data order, 0 to
                        4294967295 (default 0)
  --train-images N      synthetic training images, 1 to 100000 (default ${DEFAULT_TRAIN_IMAGES}; the
                        LVIS-like profile needs 690 to 740, by seed)
  --val-images N        synthetic validation images (512 proposals over about 11 categories,
                        as sparse as LVIS images), 1 to 100000 (default 200)
  --feature-width D     proposal feature width, 1 to 16384 (default 256; 12544 = 256·7·7 like a
                        real head)
  --train-file PATH     proposal features saved by a detector (safetensors, see
                        src/data/proposals_reader.ts); needs --val-file
  --val-file PATH       validation proposals in the same layout

Head and training
  --hidden N            hidden width, 1 to 16384 (default ${DEFAULT_HIDDEN}; 1024 in the paper)
  --class-specific-box  4 deltas per class (default: class-agnostic, 4 per proposal)
  --classifier KIND     auto, linear or normalized (default auto: the normalized (cosine)
                        classifier with τ = 20 for Seesaw, as in its reference configs, and the
                        linear one for the others); a method whose classifier is not its default
                        gets it in its name
  --epochs N            passes over the training images, 1 to 10000 (default ${DEFAULT_EPOCHS})
  --batch-images N      images per step, 512 proposals each, 1 to 100000 (default 1)
  --lr X                peak learning rate > 0 (default ${DEFAULT_LR}), linear warm-up over the first 5 %
                        of the steps, ×0.1 for the last 20 %
  --weight-decay X      ≥ 0 (default 1e-4)
  --beta X              smooth-L1 transition of the box loss, ≥ 0 (default 1)

Methods and seeds
  --compare LIST        methods to train, comma-separated: ce (sigmoid cross-entropy), eql,
                        eqlv2 (C+1 logits, score σ(z_j)·(1−σ(z_bg))), seesaw (C+2 logits with
                        the objectness pair, on the normalized classifier), each optionally
                        with +rfs for repeat-factor sampling (LVIS, t = 0.001; the epoch keeps
                        its number of steps); rfs alone means ce+rfs (default: ce,eql)
  --seeds K             run every method with seeds --seed .. --seed+K−1 (data, weights and
                        order), 1 to 100 (default ${DEFAULT_SEEDS}); the table shows mean ± standard
                        deviation over the seeds, the figures the first seed

EQL
  --lambda X            threshold λ in [0, 1] on the category frequency (default 5e-4: TR(λ)
                        about 6 % on this data, in the paper's 2–10 % band; LVIS v0.5's 1.76e-3
                        gives 23 % here). Frequencies are image counts over LVIS v0.5's 56,740
                        training images (or the files' num_train_images).

Ablations (each replaces --compare; also run over --seeds)
  --lambda-sweep LIST   EQL for each λ (in [0, 1]) in the comma-separated list, with TR(λ), plus
                        sigmoid CE
  --ablation NAME       er            EQL with and without E(r) (background exemption)
                        weight        threshold vs exponential (a=400, n=2) vs Gompertz
                                      (a=1, b=80, c=3000) weight functions
                        image-level   EQL with and without the image-level rule (§4.2)

Evaluation
  --max-dets N          detections kept per image, 1 to 100000 (default 300, as LVIS)
  AP is reported twice: over every validation image, and federated as LVIS evaluates (a
  category's detections count only in images where it is present or verified absent).

Output
  --out FILE            write every run's results as JSON (its folder must exist and be writable)
  --plot DIR            write into DIR (created when missing): fig1_gradients.svg (positive
                        and negative gradient norm per category, one panel per run),
                        fig2_positive_probability.svg (mean probability of positives per
                        category, runs overlaid) and fig3_gradient_ratio.svg (positive /
                        negative gradient ratio per frequency group, runs side by side)
  Output paths are checked before training; a result that cannot be written where asked is
  written to the temporary folder instead (exit code 1). Mistakes in flags or files end the
  program with one "error: ..." line (exit code 2).
  --quiet               no per-step progress
  --help                this text
`;

/** One method of a comparison: a loss with its settings, and how images are sampled. */
interface RunSpec {
  name: string;
  loss: "sigmoid-ce" | "eql" | "eqlv2" | "seesaw";
  lambda?: number;
  exemption?: boolean;
  weightFunction?: WeightFunction;
  imageLevel?: boolean;
  /** Repeat-factor sampling (LVIS, t = 0.001) instead of a plain shuffle. */
  rfs?: boolean;
}

/** The loss of the cls logits of one batch: the loss value and `∂L/∂logits`. */
interface CriterionLoss extends Disposable {
  loss: number;
  grad: Tensor<"f32">;
}

/**
 * How a method trains and scores the classifier. CE and EQL use C logits (no background
 * column, as the official EQL code); a loss with extra columns (EQLv2's class-agnostic
 * objectness logit: C + 1; Seesaw's objectness pair: C + 2) states its width, and its test-time
 * score turns the head's output rows into C class scores.
 */
interface Criterion {
  /** Logits the head outputs for C categories. */
  logitWidth: number;
  /** The classification loss of one batch, its gradient written into `gradInto`. */
  loss(logits: Tensor<"f32">, batch: ProposalBatch, gradInto: Tensor<"f32">): CriterionLoss;
  /** `[rows, C]` class scores from the `[rows, logitWidth]` logits. */
  scores(logits: Tensor<"f32">): Float32Array;
}

/** What a run produced. */
interface RunResult {
  name: string;
  spec: RunSpec;
  tailRatio?: number;
  /** AP over every validation image, and federated as LVIS evaluates. */
  summary: { allImages: ApSummary; federated: ApSummary };
  finalLoss: { cls: number; box: number };
  perCategoryAP: { allImages: number[]; federated: number[] };
  positiveProbability: number[];
  gradientNorm: { positive: number[]; negative: number[] };
  /** Σ|∂L/∂z_ij| over training per category j: positives, other foreground rows, background. */
  logitGradient: { positive: number[]; negativeForeground: number[]; negativeBackground: number[] };
  seconds: { train: number; eval: number };
  /** The seed of the data, the weights and the order. */
  seed: number;
}

interface Config {
  seed: number;
  epochs: number;
  batchImages: number;
  lr: number;
  weightDecay: number;
  beta: number;
  hidden: number;
  classSpecificBox: boolean;
  classifier: "auto" | "linear" | "normalized";
  maxDets: number;
  quiet: boolean;
}

/** Ends the run with one `error: …` line (see `runCli`). */
function fail(message: string): never {
  throw new UsageError(message);
}

/** A numeric flag, or its default when absent; out-of-range values are a RangeError. */
function num(name: string, v: string | undefined, fallback: number, range: NumberRange): number {
  return v === undefined ? fallback : numberFlag(name, v, range);
}

/** LVIS's repeat-factor threshold t. */
const RFS_THRESHOLD = 0.001;

/** The methods `--compare` accepts, each also as `NAME+rfs`. */
const METHODS = ["ce", "eql", "eqlv2", "seesaw"] as const;

/** The λ range: a frequency threshold. */
const LAMBDA_RANGE: NumberRange = { min: 0, max: 1 };
/** Widths up to 16384 (a real head's 12544 = 256·7·7 fits). */
const WIDTH_RANGE: NumberRange = { integer: true, min: 1, max: 16384 };
/** Synthetic image counts. */
const IMAGES_RANGE: NumberRange = { integer: true, min: 1, max: 100_000 };

/** The files `--plot DIR` writes. */
const PLOT_FILES = [
  "fig1_gradients.svg",
  "fig2_positive_probability.svg",
  "fig3_gradient_ratio.svg",
] as const;

/** σ of every logit (toArray gives a fresh copy, overwritten in place). */
function sigmoidScores(z: Tensor<"f32">): Float32Array {
  const a = z.toArray() as Float32Array;
  for (let i = 0; i < a.length; i++) a[i] = 1 / (1 + Math.exp(-a[i]));
  return a;
}

/**
 * The classifier a method uses unless `--classifier` says otherwise: Seesaw's reference configs
 * pair it with the normalized (cosine) classifier, τ = 20; the others use the linear one.
 */
function defaultClassifier(spec: RunSpec): "linear" | "normalized" {
  return spec.loss === "seesaw" ? "normalized" : "linear";
}

/** The criterion of a method, for C categories with the given frequencies. */
function criterionOf(spec: RunSpec, c: number, frequencies: Float64Array): Criterion {
  switch (spec.loss) {
    case "eqlv2": {
      // C + 1 logits, the last a class-agnostic objectness one; statistics persist over steps.
      const criterion = new Eqlv2Criterion({ numClasses: c });
      return {
        logitWidth: c + 1,
        loss: (logits, batch, gradInto) => criterion.compute(logits, batch.labels, { gradInto }),
        scores: (z) => eqlv2Scores(z),
      };
    }
    case "seesaw": {
      // C class logits then the objectness pair; cumulative class counts persist over steps.
      const criterion = new SeesawCriterion({ numClasses: c });
      return {
        logitWidth: c + 2,
        loss: (logits, batch, gradInto) => criterion.compute(logits, batch.labels, { gradInto }),
        scores: (z) => criterion.scores(z),
      };
    }
    case "sigmoid-ce":
      return {
        logitWidth: c,
        loss: (logits, batch, gradInto) => sigmoidCrossEntropy(logits, batch.labels, { gradInto }),
        scores: sigmoidScores,
      };
    case "eql":
      return {
        logitWidth: c,
        loss: (logits, batch, gradInto) =>
          eqlLoss(logits, batch.labels, {
            gradInto,
            frequencies,
            lambda: spec.lambda,
            useBackgroundExemption: spec.exemption ?? true,
            weightFunction: spec.weightFunction,
            imageLevel: spec.imageLevel
              ? { imageOfRow: batch.imageOfRow, positive: batch.positive, negative: batch.negative }
              : undefined,
          }),
        scores: sigmoidScores,
      };
  }
}

/**
 * The image order of one epoch: a shuffle, or with repeat-factor sampling the first
 * `numImages` images of the repeated and shuffled stream, so that every method takes the same
 * number of steps (as detectron2's infinite RFS sampler under a fixed iteration budget).
 */
function epochOrder(
  spec: RunSpec,
  order: Random,
  numImages: number,
  factors: Float64Array | undefined,
): Int32Array {
  if (!spec.rfs || factors === undefined) return order.permutation(numImages);
  const out = new Int32Array(numImages);
  let at = 0;
  while (at < numImages) {
    const stream = repeatFactorSampling(factors, order);
    const take = Math.min(stream.length, numImages - at);
    out.set(stream.subarray(0, take), at);
    at += take;
  }
  return out;
}

/** One method's training state inside {@linkcode trainAndEvaluate}. */
interface Run {
  spec: RunSpec;
  criterion: Criterion;
  head: BoxHead;
  opt: SGD;
  stats: GradientStats;
  /** The image order's random source (the same seed for every method). */
  order: Random;
  factors?: Float64Array;
  perm: Int32Array;
  clsLoss: number;
  boxLoss: number;
  /** The logits' gradient, kept across steps of the same size. */
  clsGrad?: Tensor<"f32">;
  /** Host copies for the gradient statistics, kept across steps of the same size. */
  host?: { weightGrad: Float32Array; logitGrad: Float32Array; features: Float32Array };
  /** Milliseconds of this method's own work (its forward, loss, backward, update, scoring). */
  trainMs: number;
  evalMs: number;
}

/**
 * Trains a fresh head per method on the same data and evaluates each. The methods advance in
 * lockstep, one step each per batch, so that a batch every method draws (all but RFS share the
 * image order) is generated once; each head's computation is what a run of its own would do, so
 * the results do not depend on which methods run together.
 */
function trainAndEvaluate(
  specs: RunSpec[],
  train: ProposalSource,
  val: ProposalSource,
  frequencies: Float64Array,
  groups: FrequencyGroup[],
  cfg: Config,
  device: Device,
): { results: RunResult[]; dataSeconds: number } {
  const c = train.numCategories, d = train.featureWidth;
  const perEpoch = Math.ceil(train.numImages / cfg.batchImages);
  const steps = perEpoch * cfg.epochs;
  const schedule = warmupMultiStep({
    lr: cfg.lr,
    warmupSteps: Math.max(1, Math.round(0.05 * steps)),
    warmupStartLr: cfg.lr * 0.001,
    milestones: steps >= 2 ? [Math.round(0.8 * steps)] : [],
  });
  const runs: Run[] = specs.map((spec) => {
    const criterion = criterionOf(spec, c, frequencies);
    const classifier = cfg.classifier === "auto" ? defaultClassifier(spec) : cfg.classifier;
    const head = new BoxHead({
      inFeatures: d,
      numClasses: criterion.logitWidth,
      classifier,
      // The sigmoid losses start from the prior bias with either classifier; Seesaw's softmax
      // from the linear default, or the normalized classifier's zero bias (as mmdetection).
      priorProbability: spec.loss === "seesaw" ? undefined : 0.001,
      hidden: cfg.hidden,
      classAgnosticBox: !cfg.classSpecificBox,
      device,
      seed: cfg.seed,
    });
    return {
      spec,
      criterion,
      head,
      opt: new SGD(head.parameters(), { momentum: 0.9, weightDecay: cfg.weightDecay }),
      stats: new GradientStats(c, cfg.hidden),
      // The same image order for every method of a seed (RFS draws its own stream from it).
      order: new Random(cfg.seed + 1),
      factors: spec.rfs ? rfsFactors(train, frequencies) : undefined,
      perm: new Int32Array(0),
      clsLoss: 0,
      boxLoss: 0,
      trainMs: 0,
      evalMs: 0,
    };
  });
  let dataMs = 0;
  const t0 = performance.now();
  let step = 0;
  for (let epoch = 0; epoch < cfg.epochs; epoch++) {
    for (const run of runs) {
      run.perm = epochOrder(run.spec, run.order, train.numImages, run.factors);
    }
    for (let b = 0; b < train.numImages; b += cfg.batchImages) {
      // Methods with the same images this step share one batch.
      const batches = new Map<string, ProposalBatch>();
      for (const run of runs) {
        const images = run.perm.subarray(b, b + cfg.batchImages);
        const key = images.join(",");
        let batch = batches.get(key);
        if (batch === undefined) {
          const tData = performance.now();
          batch = collateProposals(train, images);
          dataMs += performance.now() - tData;
          batches.set(key, batch);
        }
        const tRun = performance.now();
        trainStep(run, batch, schedule(step), cfg, c, d, device);
        run.trainMs += performance.now() - tRun;
      }
      step++;
      if (!cfg.quiet && (step % 50 === 0 || step === steps)) {
        const s = (performance.now() - t0) / 1000;
        console.error(
          `  step ${step}/${steps}  ${
            runs.map((r) =>
              `${r.spec.name}: cls ${r.clsLoss.toFixed(4)} box ${r.boxLoss.toFixed(4)}`
            )
              .join("  ")
          }  (${(step * cfg.batchImages / s).toFixed(1)} img/s)`,
        );
      }
    }
  }
  device.sync();

  const full = runs.map(() =>
    new ProposalEvaluator({ numCategories: c, maxDetsPerImage: cfg.maxDets })
  );
  const fed = runs.map(() =>
    new ProposalEvaluator({ numCategories: c, maxDetsPerImage: cfg.maxDets, federated: true })
  );
  for (let m = 0; m < val.numImages; m++) {
    const tData = performance.now();
    const im = val.image(m);
    const p = im.labels.length;
    using x = tensor(im.features, [p, d], device);
    dataMs += performance.now() - tData;
    runs.forEach((run, r) => {
      const tRun = performance.now();
      const scores = run.criterion.scores(run.head.forward(x, false).logits);
      full[r].add(scores, im.labels);
      fed[r].add(scores, im.labels, im.negative);
      run.evalMs += performance.now() - tRun;
    });
  }
  const results = runs.map((run, r): RunResult => {
    run.head.dispose();
    run.clsGrad?.dispose();
    const apAll = full[r].perCategoryAP(), apFed = fed[r].perCategoryAP();
    const sums = run.stats.logitGradientSums();
    const spec = run.spec;
    return {
      name: spec.name,
      spec,
      tailRatio: spec.loss === "eql" && spec.lambda !== undefined && !spec.weightFunction
        ? tailRatio(frequencies, spec.lambda)
        : undefined,
      summary: { allImages: summarizeAP(apAll, groups), federated: summarizeAP(apFed, groups) },
      finalLoss: { cls: run.clsLoss, box: run.boxLoss },
      perCategoryAP: { allImages: Array.from(apAll), federated: Array.from(apFed) },
      positiveProbability: Array.from(full[r].positiveProbability()),
      gradientNorm: {
        positive: Array.from(run.stats.positiveNorm()),
        negative: Array.from(run.stats.negativeNorm()),
      },
      logitGradient: {
        positive: Array.from(sums.positive),
        negativeForeground: Array.from(sums.negativeForeground),
        negativeBackground: Array.from(sums.negativeBackground),
      },
      seconds: { train: run.trainMs / 1000, eval: run.evalMs / 1000 },
      seed: cfg.seed,
    };
  });
  return { results, dataSeconds: dataMs / 1000 };
}

/** One training step of one method on a batch. */
function trainStep(
  run: Run,
  batch: ProposalBatch,
  lr: number,
  cfg: Config,
  c: number,
  d: number,
  device: Device,
): void {
  const rows = batch.labels.length, width = run.criterion.logitWidth, head = run.head;
  using x = tensor(batch.features, [rows, d], device);
  const out = head.forward(x, true);
  if (run.clsGrad?.shape[0] !== rows) {
    run.clsGrad?.dispose();
    run.clsGrad = zeros([rows, width], device);
    run.host = {
      weightGrad: new Float32Array(width * cfg.hidden),
      logitGrad: new Float32Array(rows * width),
      features: new Float32Array(rows * cfg.hidden),
    };
  }
  const cls = run.criterion.loss(out.logits, batch, run.clsGrad);
  // `using` frees the box loss's gradient at the end of the step, so memory stays flat.
  using box = boxRegressionLoss(out.boxDeltas, batch.boxTargets, batch.labels, {
    numClasses: c,
    beta: cfg.beta,
  });
  head.backward(cls.grad, box.grad);
  // The statistics cover the C class columns; extra columns (objectness) are left out. For the
  // normalized classifier z = τ·ĥ·Ŵᵀ + b they are taken with respect to the normalised weight
  // rows Ŵ_j, whose input is τ·ĥ (the normalisation's own Jacobian is left out).
  const host = run.host!, classifier = head.clsScore;
  device.download(cls.grad.buffer, host.logitGrad);
  if (classifier instanceof NormalizedLinear) {
    device.download(classifier.normalizedWeightGrad.buffer, host.weightGrad);
    device.download(classifier.normalizedInput.buffer, host.features);
    const tau = classifier.temperature;
    for (let i = 0; i < host.features.length; i++) host.features[i] *= tau;
  } else {
    device.download(classifier.weight.grad.buffer, host.weightGrad);
    device.download(head.features.buffer, host.features);
  }
  run.stats.accumulate(
    host.weightGrad.subarray(0, c * cfg.hidden),
    firstColumns(host.logitGrad, rows, width, c),
    host.features,
    batch.labels,
  );
  run.opt.step(lr);
  run.clsLoss = cls.loss;
  run.boxLoss = box.loss;
}

/** `[rows, keep]` from the first `keep` columns of a row-major `[rows, cols]` array. */
function firstColumns(a: Float32Array, rows: number, cols: number, keep: number): Float32Array {
  if (cols === keep) return a;
  const out = new Float32Array(rows * keep);
  for (let i = 0; i < rows; i++) out.set(a.subarray(i * cols, i * cols + keep), i * keep);
  return out;
}

/** Repeat factors of the training images (LVIS's t = 0.001 on the frequencies EQL uses). */
function rfsFactors(train: ProposalSource, frequencies: Float64Array): Float64Array {
  const labels: Int32Array[] = [];
  for (let i = 0; i < train.numImages; i++) {
    labels.push(train.positiveCategories?.(i) ?? train.image(i).positive);
  }
  return repeatFactors(labels, {
    numClasses: train.numCategories,
    threshold: RFS_THRESHOLD,
    frequencies,
  });
}

/** λ as people write it: 1.76e-3 rather than 0.00176. */
const fmtLambda = (l: number): string => (l > 0 && l < 0.01 ? l.toExponential() : String(l));

/** The runs a command line asks for. */
function runSpecs(values: Record<string, string | boolean | undefined>, lambda: number): RunSpec[] {
  const ce: RunSpec = { name: "sigmoid CE", loss: "sigmoid-ce" };
  const eql: RunSpec = { name: `EQL λ=${fmtLambda(lambda)}`, loss: "eql", lambda };
  const sweep = values["lambda-sweep"] as string | undefined;
  const ablation = values.ablation as string | undefined;
  const compare = values.compare as string | undefined;
  const given = [
    ["--lambda-sweep", sweep],
    ["--ablation", ablation],
    ["--compare", compare],
  ].filter(([, v]) => v !== undefined).map(([k]) => k);
  if (given.length > 1) fail(`${given.join(" and ")} cannot be combined`);
  if (compare !== undefined) return compareSpecs(compare, ce, eql);
  if (sweep !== undefined) {
    const lambdas = sweep.split(",").map((s) => numberFlag("lambda-sweep", s.trim(), LAMBDA_RANGE));
    return [
      ce,
      ...lambdas.map((l): RunSpec => ({ name: `EQL λ=${fmtLambda(l)}`, loss: "eql", lambda: l })),
    ];
  }
  switch (ablation) {
    case undefined:
      return [ce, eql];
    case "er":
      return [
        { ...eql, name: `EQL λ=${fmtLambda(lambda)}, E(r) on` },
        { ...eql, name: `EQL λ=${fmtLambda(lambda)}, E(r) off`, exemption: false },
      ];
    case "weight":
      return [
        { ...eql, name: `threshold λ=${fmtLambda(lambda)}` },
        {
          name: "exponential a=400 n=2",
          loss: "eql",
          weightFunction: { kind: "exponential", a: 400, n: 2 },
        },
        {
          name: "Gompertz a=1 b=80 c=3000",
          loss: "eql",
          weightFunction: { kind: "gompertz", a: 1, b: 80, c: 3000 },
        },
      ];
    case "image-level":
      return [
        { ...eql, name: `EQL λ=${fmtLambda(lambda)}` },
        { ...eql, name: `EQL λ=${fmtLambda(lambda)} + image-level rule`, imageLevel: true },
      ];
    default:
      return fail(`--ablation must be er, weight or image-level, got ${JSON.stringify(ablation)}`);
  }
}

/**
 * The methods of `--compare LIST`: `ce`, `eql`, each optionally `+rfs` (repeat-factor
 * sampling); `rfs` alone is `ce+rfs`.
 */
function compareSpecs(list: string, ce: RunSpec, eql: RunSpec): RunSpec[] {
  const names = list.split(",").map((x) => x.trim());
  const seen = new Set<string>();
  return names.map((entry) => {
    const key = entry === "rfs" ? "ce+rfs" : entry;
    const [base, extra, ...more] = key.split("+");
    if (
      !(METHODS as readonly string[]).includes(base) ||
      (extra !== undefined && extra !== "rfs") || more.length > 0
    ) {
      fail(
        `--compare must list methods among ${METHODS.join(", ")}, rfs, each optionally with ` +
          `+rfs (e.g. ce,eql,rfs), got ${JSON.stringify(entry)} in ${JSON.stringify(list)}`,
      );
    }
    if (seen.has(key)) fail(`--compare lists ${key} twice in ${JSON.stringify(list)}`);
    seen.add(key);
    const spec: RunSpec = base === "ce"
      ? ce
      : base === "eql"
      ? eql
      : base === "eqlv2"
      ? { name: "EQLv2", loss: "eqlv2" }
      : { name: "Seesaw", loss: "seesaw" };
    return extra === "rfs" ? { ...spec, name: `${spec.name} + RFS`, rfs: true } : spec;
  });
}

/** Mean and sample standard deviation (0 for one value) of finite values. */
function meanStd(v: number[]): { mean: number; std: number; min: number; max: number } {
  const x = v.filter((a) => Number.isFinite(a));
  const mean = x.reduce((a, b) => a + b, 0) / x.length;
  const std = x.length > 1
    ? Math.sqrt(x.reduce((a, b) => a + (b - mean) ** 2, 0) / (x.length - 1))
    : 0;
  return { mean, std, min: Math.min(...x), max: Math.max(...x) };
}

/** Per method: AP, AP_r, AP_c, AP_f as mean ± standard deviation over the seeds. */
function printSeedTable(byMethod: RunResult[][], federated: boolean): void {
  const width = Math.max(10, ...byMethod.map((r) => r[0].name.length));
  const k = byMethod[0].length;
  console.log(
    `\n${federated ? "federated (LVIS protocol)" : "all validation images"}, AP in %, ` +
      `mean ± standard deviation over ${k} seed${k === 1 ? "" : "s"}`,
  );
  const cell = (v: number[]): string => {
    const m = meanStd(v.map((a) => 100 * a));
    return `${m.mean.toFixed(2).padStart(6)} ± ${m.std.toFixed(2).padEnd(5)}`;
  };
  console.log(
    `${"method".padEnd(width)}  ${
      ["AP", "AP_r", "AP_c", "AP_f"].map((h) => h.padStart(6).padEnd(14)).join(" ")
    }`,
  );
  for (const runs of byMethod) {
    const sum = runs.map((r) => federated ? r.summary.federated : r.summary.allImages);
    console.log(
      `${runs[0].name.padEnd(width)}  ${
        [
          cell(sum.map((s) => s.ap)),
          cell(sum.map((s) => s.apRare)),
          cell(sum.map((s) => s.apCommon)),
          cell(sum.map((s) => s.apFrequent)),
        ].join(" ")
      }`,
    );
  }
}

/**
 * Where each group's classifiers got their gradient from, summed over training: the positive
 * over the negative part of Σ|∂L/∂z|, and the share of the negative part from foreground rows
 * of other categories (the rest came from background rows).
 */
function gradientShare(
  r: RunResult,
  groups: FrequencyGroup[],
): Record<FrequencyGroup, { ratio: number; fgShare: number }> {
  const out = {} as Record<FrequencyGroup, { ratio: number; fgShare: number }>;
  for (const g of ["rare", "common", "frequent"] as const) {
    let pos = 0, fg = 0, bg = 0;
    groups.forEach((x, j) => {
      if (x !== g) return;
      pos += r.logitGradient.positive[j];
      fg += r.logitGradient.negativeForeground[j];
      bg += r.logitGradient.negativeBackground[j];
    });
    out[g] = { ratio: pos / (fg + bg), fgShare: fg / (fg + bg) };
  }
  return out;
}

function printTable(results: RunResult[]): void {
  const width = Math.max(10, ...results.map((r) => r.name.length));
  const tr = results.some((r) => r.tailRatio !== undefined);
  const cols = "    AP   AP_r   AP_c   AP_f";
  console.log(
    `\n${" ".repeat(width)}  ${tr ? "        " : ""}${
      "all validation images".padEnd(cols.length)
    }` +
      `   federated (LVIS protocol)`,
  );
  console.log(`${"run".padEnd(width)}  ${tr ? " TR(λ)  " : ""}${cols}  ${cols}   (AP in %)`);
  const row = (s: ApSummary): string =>
    `${pct(s.ap)} ${pct(s.apRare)} ${pct(s.apCommon)} ${pct(s.apFrequent)}`;
  for (const r of results) {
    const t = r.tailRatio === undefined
      ? "     —  "
      : `${(100 * r.tailRatio).toFixed(2).padStart(6)}% `;
    console.log(
      `${r.name.padEnd(width)}  ${tr ? t : ""}${row(r.summary.allImages)}  ${
        row(r.summary.federated)
      }`,
    );
  }
}

/** Indices of the categories by decreasing training image count (ties by index). */
function byFrequency(counts: ArrayLike<number>): number[] {
  return Array.from({ length: counts.length }, (_, j) => j).sort((a, b) =>
    counts[b] - counts[a] || a - b
  );
}

async function writePlots(
  dir: string,
  results: RunResult[],
  counts: ArrayLike<number>,
  groups: FrequencyGroup[],
): Promise<boolean> {
  const order = byFrequency(counts);
  const sorted = (v: number[]): number[] => order.map((j) => v[j]);
  const bands: ChartBand[] = [];
  for (const g of ["frequent", "common", "rare"] as const) {
    const idx = order.map((j, k) => (groups[j] === g ? k : -1)).filter((k) => k >= 0);
    if (idx.length > 0) bands.push({ from: idx[0], to: idx[idx.length - 1] + 1, label: g });
  }
  // Per-category values are noisy: each curve is drawn faint as measured and bold as the mean
  // over a window of neighbouring categories (about 2 % of them).
  const smooth = Math.max(1, 2 * Math.round(order.length / 100) + 1);
  const x =
    `category, sorted by training images (most frequent first); bold: mean over ${smooth} ` +
    `neighbouring categories`;
  const fig1 = lineChartSvg(
    results.map((r) => ({
      title: `${r.name}: mean L2 norm per step of the classifier-weight gradient`,
      xLabel: x,
      yLabel: "‖G⁺‖, ‖G⁻‖ (log scale)",
      logY: true,
      smooth,
      bands,
      series: [
        { name: "from positives, ‖G⁺‖", values: sorted(r.gradientNorm.positive) },
        { name: "from negatives, ‖G⁻‖", values: sorted(r.gradientNorm.negative) },
      ],
    })),
  );
  const fig2 = lineChartSvg([{
    title: "Mean predicted probability of each category on its positive proposals (validation)",
    xLabel: x,
    yLabel: "mean σ(z) (log scale)",
    logY: true,
    smooth,
    bands,
    series: results.map((r) => ({ name: r.name, values: sorted(r.positiveProbability) })),
  }]);
  // The EQL effect in one panel: how much the positives pull on a group's classifier weights
  // against the negatives, for every run side by side.
  const present = (["rare", "common", "frequent"] as const).filter((g) => groups.includes(g));
  const fig3 = barChartSvg([{
    title: "Positive-to-negative gradient ratio of the classifier weights, per frequency group",
    xLabel: "LVIS frequency group (training images per category)",
    yLabel: "mean ‖G⁺‖ / mean ‖G⁻‖ (log scale)",
    categories: present,
    notes: present.map((g) => {
      const n = groups.filter((x) => x === g).length;
      return `${n} categories, ${
        g === "rare" ? "≤ 10" : g === "common" ? "11–100" : "> 100"
      } images`;
    }),
    logY: true,
    valueLabel: (v) => v.toPrecision(3),
    series: results.map((r) => ({
      name: r.name,
      values: present.map((g) => gradientRatio(r, groups)[g]),
    })),
  }], { height: 300 });
  let ok = true;
  for (const [file, svg] of [[PLOT_FILES[0], fig1], [PLOT_FILES[1], fig2], [PLOT_FILES[2], fig3]]) {
    ok = await saveResult("the plot", "plot", `${dir.replace(/\/+$/, "")}/${file}`, svg) && ok;
  }
  return ok;
}

/** Checks `--out` and `--plot` before any work; the plot folder is created when missing. */
async function checkOutputs(out: string | undefined, plot: string | undefined): Promise<void> {
  if (out !== undefined) await checkOutputPath("out", out);
  if (plot === undefined) return;
  if (plot === "") fail(`--plot must be a folder path, got ""`);
  try {
    await Deno.mkdir(plot, { recursive: true });
  } catch (e) {
    fail(
      `--plot must be a folder that exists or can be created, got ${plot} (${
        e instanceof Error ? e.message : e
      })`,
    );
  }
  for (const f of PLOT_FILES) {
    const path = `${plot.replace(/\/+$/, "")}/${f}`;
    if (path === out) fail(`--out and --plot must name different files, both give ${path}`);
    await checkOutputPath("plot", path);
  }
}

/** Per-group means of a per-category curve, for the printed summary of the gradient analysis. */
function groupMeans(v: number[], groups: FrequencyGroup[]): Record<FrequencyGroup, number> {
  const sum = { rare: 0, common: 0, frequent: 0 }, n = { rare: 0, common: 0, frequent: 0 };
  v.forEach((x, j) => {
    if (Number.isNaN(x)) return;
    sum[groups[j]] += x;
    n[groups[j]]++;
  });
  return {
    rare: sum.rare / n.rare,
    common: sum.common / n.common,
    frequent: sum.frequent / n.frequent,
  };
}

/**
 * The EQL effect per frequency group: the mean norm of the gradient the positives put on the
 * group's classifier weights over the mean norm of the one the negatives put on them.
 */
function gradientRatio(r: RunResult, groups: FrequencyGroup[]): Record<FrequencyGroup, number> {
  const p = groupMeans(r.gradientNorm.positive, groups);
  const n = groupMeans(r.gradientNorm.negative, groups);
  return { rare: p.rare / n.rare, common: p.common / n.common, frequent: p.frequent / n.frequent };
}

/** The flags, as `parseFlags` reads them. */
const FLAGS = {
  seed: { type: "string" },
  "train-images": { type: "string" },
  "val-images": { type: "string" },
  "feature-width": { type: "string" },
  "train-file": { type: "string" },
  "val-file": { type: "string" },
  hidden: { type: "string" },
  "class-specific-box": { type: "boolean" },
  classifier: { type: "string" },
  epochs: { type: "string" },
  "batch-images": { type: "string" },
  lr: { type: "string" },
  "weight-decay": { type: "string" },
  beta: { type: "string" },
  lambda: { type: "string" },
  compare: { type: "string" },
  seeds: { type: "string" },
  "lambda-sweep": { type: "string" },
  ablation: { type: "string" },
  "max-dets": { type: "string" },
  out: { type: "string" },
  plot: { type: "string" },
  quiet: { type: "boolean" },
  help: { type: "boolean" },
} as const;

async function main(): Promise<number> {
  const values = parseFlags(Deno.args, FLAGS);
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const cfg: Config = {
    seed: num("seed", values.seed, 0, { integer: true, min: 0, max: 2 ** 32 - 1 }),
    epochs: num("epochs", values.epochs, DEFAULT_EPOCHS, { integer: true, min: 1, max: 10_000 }),
    batchImages: num("batch-images", values["batch-images"], 1, IMAGES_RANGE),
    lr: num("lr", values.lr, DEFAULT_LR, { min: 0, minExclusive: true }),
    weightDecay: num("weight-decay", values["weight-decay"], 1e-4, { min: 0 }),
    beta: num("beta", values.beta, 1, { min: 0 }),
    hidden: num("hidden", values.hidden, DEFAULT_HIDDEN, WIDTH_RANGE),
    classSpecificBox: values["class-specific-box"] ?? false,
    classifier: choiceFlag(
      "classifier",
      values.classifier ?? "auto",
      ["auto", "linear", "normalized"] as const,
    ),
    maxDets: num("max-dets", values["max-dets"], 300, { integer: true, min: 1, max: 100_000 }),
    quiet: values.quiet ?? false,
  };
  const lambda = num("lambda", values.lambda, DEFAULT_LAMBDA, LAMBDA_RANGE);
  const specs = runSpecs(values, lambda);
  for (const spec of specs) {
    if (cfg.classifier !== "auto" && cfg.classifier !== defaultClassifier(spec)) {
      spec.name += ` (${cfg.classifier} classifier)`;
    }
  }
  const seeds = num("seeds", values.seeds, DEFAULT_SEEDS, { integer: true, min: 1, max: 100 });
  if (cfg.classSpecificBox && specs.some((x) => x.loss === "eqlv2" || x.loss === "seesaw")) {
    fail(
      "--class-specific-box works with ce and eql only: the EQLv2 and Seesaw heads have extra " +
        "logit columns (use the default class-agnostic box)",
    );
  }
  if (cfg.seed + seeds - 1 > 2 ** 32 - 1) {
    fail(
      `--seed + --seeds − 1 must be at most 4294967295 (the seeds run from --seed up), got ${
        cfg.seed + seeds - 1
      }`,
    );
  }
  const trainFile = values["train-file"], valFile = values["val-file"];
  if ((trainFile === undefined) !== (valFile === undefined)) {
    fail("--train-file and --val-file go together");
  }
  const synthetic = {
    seed: cfg.seed,
    trainImages: num("train-images", values["train-images"], DEFAULT_TRAIN_IMAGES, IMAGES_RANGE),
    valImages: num("val-images", values["val-images"], 200, IMAGES_RANGE),
    featureWidth: num("feature-width", values["feature-width"], 256, WIDTH_RANGE),
  };
  if (trainFile !== undefined) {
    for (const f of ["train-images", "val-images", "feature-width"] as const) {
      if (values[f] !== undefined) {
        fail(`--${f} sets the synthetic data; it cannot be used with --train-file`);
      }
    }
  }
  await checkOutputs(values.out, values.plot);

  const t0 = performance.now();
  let files: { train: ProposalFile; val: ProposalFile } | undefined;
  if (trainFile !== undefined && valFile !== undefined) {
    const tr = await readProposalFeatures(trainFile);
    const va = await readProposalFeatures(valFile);
    if (va.numCategories !== tr.numCategories || va.featureWidth !== tr.featureWidth) {
      fail(
        `the validation file has ${va.numCategories} categories of width ${va.featureWidth}, the training file ${tr.numCategories} of width ${tr.featureWidth}`,
      );
    }
    if (tr.imageCounts === undefined) {
      fail(`${tr.path} must hold category_image_counts (the frequencies EQL needs)`);
    }
    files = { train: tr, val: va };
  }

  // A step cannot hold more images than there are: say so rather than take them all at once.
  const trainCount = files?.train.numImages ?? synthetic.trainImages;
  if (cfg.batchImages > trainCount) {
    fail(
      `--batch-images ${cfg.batchImages} is more than the ${trainCount} training images (512 ` +
        `proposals each); use at most ${trainCount}`,
    );
  }
  // byMethod[m][k]: method m, seed number k.
  const byMethod: RunResult[][] = specs.map(() => []);
  let counts: Int32Array = new Int32Array(0), frequencies: Float64Array = new Float64Array(0);
  let groups: FrequencyGroup[] = [];
  // Each seed draws its own image counts, so the groups are per seed.
  const seedGroups: FrequencyGroup[][] = [];
  const seedCounts: Int32Array[] = [];
  const seedFrequencies: Float64Array[] = [];
  let dataDescription: Record<string, unknown> = {};
  // Every seed's synthetic set is laid out before any work, so that a seed whose image counts
  // do not fit the images fails at once.
  const syntheticSets: (LongTailProposals | undefined)[] = [];
  for (let k = 0; k < seeds; k++) {
    if (files !== undefined) {
      syntheticSets.push(undefined);
      continue;
    }
    try {
      syntheticSets.push(new LongTailProposals({ ...synthetic, seed: cfg.seed + k }));
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      throw new UsageError(
        `--train-images ${synthetic.trainImages} and --val-images ${synthetic.valImages} do ` +
          `not fit the LVIS-like category profile of seed ${cfg.seed + k}: ${e.message}`,
      );
    }
  }
  const device = await autoDevice({ verbose: true });
  for (let k = 0; k < seeds; k++) {
    const seed = cfg.seed + k;
    let train: ProposalSource, val: ProposalSource;
    if (files !== undefined) {
      // Files fix the data: the seed changes the initial weights and the image order only.
      train = files.train;
      val = files.val;
      counts = files.train.imageCounts!;
      const n = files.train.numTrainImages ?? LVIS_V05_TRAIN_IMAGES;
      frequencies = Float64Array.from(counts, (x) => x / n);
      dataDescription = {
        trainFile: files.train.path,
        valFile: files.val.path,
        numTrainImages: files.train.numTrainImages,
      };
    } else {
      const data = syntheticSets[k]!;
      train = data.train;
      val = data.val;
      counts = data.imageCounts;
      frequencies = data.frequencies();
      dataDescription = { synthetic: { ...data.settings, seed: cfg.seed } };
    }
    groups = lvisGroups(counts).group;
    seedGroups.push(groups);
    seedCounts.push(counts);
    seedFrequencies.push(frequencies);
    if (k === 0) {
      console.log(
        `data: ${train.numImages} training / ${val.numImages} validation images, ${train.numCategories} categories ` +
          `(${groups.filter((g) => g === "rare").length} rare, ${
            groups.filter((g) => g === "common").length
          } common, ${
            groups.filter((g) => g === "frequent").length
          } frequent), features of width ${train.featureWidth}`,
      );
      console.log(
        `head: ${train.featureWidth} → ${cfg.hidden} → ${cfg.hidden} → ${train.numCategories} logits + ${
          cfg.classSpecificBox ? `${4 * train.numCategories}` : "4"
        } box deltas; ${
          cfg.classifier === "auto"
            ? "linear classifier (Seesaw: normalized, τ = 20)"
            : `${cfg.classifier} classifier${cfg.classifier === "normalized" ? " (τ = 20)" : ""}`
        }; ${cfg.epochs} epoch(s) of ${
          Math.ceil(train.numImages / cfg.batchImages)
        } steps, ${cfg.batchImages} image(s) per step; seeds ${cfg.seed}..${cfg.seed + seeds - 1}`,
      );
    }
    if (!cfg.quiet) {
      console.error(`training ${specs.map((x) => x.name).join(", ")} side by side, seed ${seed} …`);
    }
    const { results, dataSeconds } = trainAndEvaluate(
      specs,
      train,
      val,
      frequencies,
      groups,
      { ...cfg, seed },
      device,
    );
    results.forEach((r, m) => {
      byMethod[m].push(r);
      console.log(
        `seed ${seed} ${r.name}: AP ${pct(r.summary.federated.ap).trim()}, AP_r ${
          pct(r.summary.federated.apRare).trim()
        } (federated)  (train ${r.seconds.train.toFixed(0)} s, eval ${
          r.seconds.eval.toFixed(0)
        } s)`,
      );
    });
    console.log(
      `seed ${seed}: data generated in ${dataSeconds.toFixed(0)} s, shared by the methods`,
    );
  }
  // The per-category figures and the single-seed table show the first seed.
  const results = byMethod.map((runs) => runs[0]);
  if (seeds === 1) printTable(results);
  else {
    printSeedTable(byMethod, true);
    printSeedTable(byMethod, false);
  }

  console.log(
    "\nwhere the classifiers' gradient came from (Σ|∂L/∂z| over training, mean over seeds):" +
      "\n  positive / negative, and the share of the negative part from other categories'" +
      " foreground rows (rest: background rows), rare / common / frequent",
  );
  const share = (runs: RunResult[]): Record<FrequencyGroup, { ratio: number; fgShare: number }> => {
    const all = runs.map((r, k) => gradientShare(r, seedGroups[k]));
    const mean = (g: FrequencyGroup, f: "ratio" | "fgShare"): number =>
      all.reduce((a, x) => a + x[g][f], 0) / all.length;
    const out = {} as Record<FrequencyGroup, { ratio: number; fgShare: number }>;
    for (const g of ["rare", "common", "frequent"] as const) {
      out[g] = { ratio: mean(g, "ratio"), fgShare: mean(g, "fgShare") };
    }
    return out;
  };
  for (const runs of byMethod) {
    const s = share(runs);
    console.log(
      `  ${runs[0].name}: positive/negative ${s.rare.ratio.toFixed(3)} / ${
        s.common.ratio.toFixed(3)
      } / ${s.frequent.ratio.toFixed(3)}; negative from foreground ${
        (100 * s.rare.fgShare).toFixed(1)
      } % / ${(100 * s.common.fgShare).toFixed(1)} % / ${(100 * s.frequent.fgShare).toFixed(1)} %`,
    );
  }
  console.log(
    "mean probability of positives on validation, first seed (rare / common / frequent):",
  );
  for (const r of results) {
    const q = groupMeans(r.positiveProbability, seedGroups[0]);
    console.log(
      `  ${r.name}: ${q.rare.toExponential(2)} / ${q.common.toExponential(2)} / ${
        q.frequent.toExponential(2)
      }`,
    );
  }

  const seconds = (performance.now() - t0) / 1000;
  console.log(`\ntotal ${seconds.toFixed(0)} s on ${device.description}`);
  let saved = true;
  if (values.plot !== undefined) {
    saved = await writePlots(values.plot, results, seedCounts[0], seedGroups[0]);
  }
  if (values.out !== undefined) {
    const json = {
      config: { ...cfg, seeds, lambda, data: dataDescription, device: device.description },
      // Per seed, in seed order (the runs of seed k use entry k).
      categories: seedCounts.map((n, k) => ({
        seed: cfg.seed + k,
        imageCounts: Array.from(n),
        groups: seedGroups[k],
        frequencies: Array.from(seedFrequencies[k]),
      })),
      methods: byMethod.map((runs) => ({
        name: runs[0].name,
        spec: runs[0].spec,
        summary: Object.fromEntries(
          (["allImages", "federated"] as const).map((w) => [
            w,
            Object.fromEntries(
              (["ap", "apRare", "apCommon", "apFrequent"] as const).map((f) => [
                f,
                meanStd(runs.map((r) => r.summary[w][f])),
              ]),
            ),
          ]),
        ),
        gradientShare: share(runs),
        runs,
      })),
      seconds,
    };
    const text = JSON.stringify(json, null, 1) + "\n";
    saved = await saveResult("the results", "out", values.out, text) && saved;
  }
  return saved ? 0 : 1;
}

if (import.meta.main) {
  // Bad settings, unreadable files and missing libraries end with one line, not a stack trace.
  await runCli(main, [DatasetError, LibraryNotFoundError, CpuKernelsUnavailableError]);
}
