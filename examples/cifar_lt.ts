/**
 * CIFAR-LT with the Equalization Loss: trains a CIFAR ResNet on a long-tailed CIFAR-100 or
 * CIFAR-10 (or, offline, a synthetic long-tailed image set) with one or several losses on the same
 * data and seed, and reports overall, many/medium/few and per-class accuracy.
 *
 *     deno run -A examples/cifar_lt.ts                       # softmax vs SEQL, data or synthetic
 *     deno run -A examples/cifar_lt.ts --dataset cifar10 --data ../shared/data --imbalance 100
 *     deno run -A examples/cifar_lt.ts --help
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  CIFAR100_NORMALIZATION,
  CIFAR10_NORMALIZATION,
  type Normalization,
} from "../src/data/normalize.ts";
import { type CifarName, findCifar, loadCifar } from "../src/data/cifar.ts";
import { makeLongTailed } from "../src/data/long_tailed.ts";
import { syntheticLongTailed } from "../src/data/synthetic.ts";
import type { ImageDataset } from "../src/data/dataset.ts";
import { BatchLoader } from "../src/data/loader.ts";
import { AUTOAUGMENT_CUTOUT, STANDARD_AUGMENTATION, type Transform } from "../src/data/pipeline.ts";
import { CIFAR_ARCHIVES, downloadFile } from "../src/data/download.ts";
import { classCounts } from "../src/longtail/frequency.ts";
import { lambdaForTailRatio, tailRatio } from "../src/longtail/tail_ratio.ts";
import { Progress } from "../src/progress.ts";
import { resnet } from "../src/nn/resnet.ts";
import { paperRecipe, quickRecipe, type TrainingRecipe } from "../src/optim/recipe.ts";
import { chooseDevice } from "../src/device/auto.ts";
import { cpuDevice } from "../src/device/cpu.ts";
import { cudaDevice } from "../src/device/cuda.ts";
import type { Device } from "../src/device/device.ts";
import { saveCheckpoint } from "../src/checkpoint.ts";
import type { ClassificationReport } from "../src/metrics.ts";
import { lineChartSvg } from "../src/plot.ts";
import {
  CLASSIFIER_LOSSES,
  classifierLoss,
  type ClassifierLossName,
  evaluateClassifier,
  trainClassifier,
} from "../src/training.ts";

const HELP = `Usage: deno run -A examples/cifar_lt.ts [options]

Trains a CIFAR ResNet on long-tailed CIFAR with the chosen loss(es) and reports top-1, top-5 and
many/medium/few-shot accuracy. With no options it looks for CIFAR-100 under ./data and, when it is
absent, runs on a synthetic long-tailed set, comparing softmax and softmax EQL (SEQL).

Data
  --dataset NAME       cifar100 | cifar10 | synthetic (default: cifar100 if found, else synthetic)
  --data PATH          folder holding the extracted folder or the official .tar.gz (default ./data)
  --download           fetch the official archive into --data first (checksum-verified, resumable)
  --imbalance IF       imbalance factor n_max / n_min (default 100)
  --augment KIND       basic (crop + flip) | autoaugment (crop + flip + AutoAugment + Cutout)
                       (default: autoaugment for the paper recipe, basic otherwise)
  --workers N          augmentation workers (default 1; 0 = in the main thread)

Losses (${CLASSIFIER_LOSSES.join(", ")})
  --loss NAME          train one loss (default: seql)
  --compare A,B,...    train several losses on the same data and seed, side by side
                       (default run: softmax,seql)
  --lambda X|auto      EQL / SEQL frequency threshold; auto picks the λ whose tail ratio TR(λ)
                       first reaches 5 % (default: 3e-3, the paper's value, on CIFAR-100;
                       auto elsewhere)
  --gamma X            SEQL masking probability (default 0.95)
  --focal-gamma X      focal exponent (default 2)
  --focal-alpha X      focal balance, or "none" (default 0.25)
  --cb-beta X          class-balanced beta (default 0.9999)
  --tau X              balanced-softmax temperature (default 1)

Training
  --recipe NAME        paper (batch 256, 12.8k it., lr 0.2 warm-up, x0.1 at 6.4k/9.6k) | quick
                       (default: quick; the synthetic default run shortens it further)
  --iterations N       override the recipe's iterations
  --epochs N           train for N passes over the training set instead
  --batch N            override the batch size
  --lr X               override the peak learning rate
  --depth N            ResNet depth 6n+2 (default 32; 20 on the synthetic set)
  --device NAME        auto | cpu | cuda (default auto)
  --tf32               allow TF32 tensor-core GEMMs on CUDA
  --seed N             data, initialisation and mask seed (default 0)

Output
  --out FILE           write the metrics, configuration and timing as JSON
  --checkpoint FILE    save the trained weights (safetensors, PyTorch names); with several
                       losses the loss name is added before the extension
  --plot FILE          per-class accuracy against class index (by training count) as SVG
  --help               show this text
`;

function fail(message: string): never {
  console.error(`error: ${message}`);
  Deno.exit(2);
}

function number(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const v = Number(value);
  if (value.trim() === "" || !Number.isFinite(v)) {
    fail(`--${name} must be a number, got "${value}"`);
  }
  return v;
}

function integer(name: string, value: string | undefined, fallback: number, min = 1): number {
  const v = number(name, value, fallback);
  if (!Number.isInteger(v) || v < min) {
    fail(`--${name} must be an integer ≥ ${min}, got "${value}"`);
  }
  return v;
}

function oneOf<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    fail(`--${name} must be one of ${allowed.join(", ")}, got "${value}"`);
  }
  return value as T;
}

let parsed;
try {
  parsed = parseArgs({
    args: Deno.args,
    strict: true,
    allowPositionals: false,
    options: {
      dataset: { type: "string" },
      data: { type: "string", default: "./data" },
      download: { type: "boolean", default: false },
      imbalance: { type: "string" },
      augment: { type: "string" },
      workers: { type: "string" },
      loss: { type: "string" },
      compare: { type: "string" },
      lambda: { type: "string" },
      gamma: { type: "string" },
      "focal-gamma": { type: "string" },
      "focal-alpha": { type: "string" },
      "cb-beta": { type: "string" },
      tau: { type: "string" },
      recipe: { type: "string" },
      iterations: { type: "string" },
      epochs: { type: "string" },
      batch: { type: "string" },
      lr: { type: "string" },
      depth: { type: "string" },
      device: { type: "string", default: "auto" },
      tf32: { type: "boolean", default: false },
      seed: { type: "string" },
      out: { type: "string" },
      checkpoint: { type: "string" },
      plot: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
} catch (e) {
  fail(`${e instanceof Error ? e.message : e}\nRun with --help for the list of options.`);
}
const flags = parsed.values;
if (flags.help) {
  console.log(HELP);
  Deno.exit(0);
}

const seed = integer("seed", flags.seed, 0, 0);
const imbalance = number("imbalance", flags.imbalance, 100);
if (imbalance < 1) fail(`--imbalance must be ≥ 1, got ${imbalance}`);
const workers = integer("workers", flags.workers, 1, 0);
const deviceName = oneOf("device", flags.device!, ["auto", "cpu", "cuda"] as const);
const explicitDataset = flags.dataset !== undefined;
const datasetFlag = oneOf(
  "dataset",
  flags.dataset ?? "cifar100",
  ["cifar100", "cifar10", "synthetic"] as const,
);
const losses: ClassifierLossName[] = flags.compare !== undefined
  ? flags.compare.split(",").map((s) => oneOf("compare", s.trim(), CLASSIFIER_LOSSES))
  : flags.loss !== undefined
  ? [oneOf("loss", flags.loss, CLASSIFIER_LOSSES)]
  : explicitDataset
  ? ["seql"]
  : ["softmax", "seql"];
if (new Set(losses).size !== losses.length) fail(`--compare lists a loss twice: ${flags.compare}`);
const focalAlphaText = flags["focal-alpha"];
const lossOptions = {
  gamma: number("gamma", flags.gamma, 0.95),
  focalGamma: number("focal-gamma", flags["focal-gamma"], 2),
  focalAlpha: focalAlphaText === "none" ? null : number("focal-alpha", focalAlphaText, 0.25),
  cbBeta: number("cb-beta", flags["cb-beta"], 0.9999),
  tau: number("tau", flags.tau, 1),
  seed,
};

// ── data ────────────────────────────────────────────────────────────────────────────────────
interface Data {
  name: string;
  train: ImageDataset;
  test: ImageDataset;
  normalization: Normalization;
  side: number;
}

async function loadData(): Promise<Data> {
  const dataPath = flags.data!;
  if (datasetFlag !== "synthetic") {
    const name: CifarName = datasetFlag;
    if (flags.download) {
      const archive = CIFAR_ARCHIVES[`${name}-binary`];
      if (!archive) fail(`no download known for ${name}`);
      await Deno.mkdir(dataPath, { recursive: true });
      const dest = `${dataPath}/${archive.url.slice(archive.url.lastIndexOf("/") + 1)}`;
      const bar = new Progress({ label: dest, unit: "B", total: archive.bytes });
      await downloadFile({
        url: archive.url,
        dest,
        sha256: archive.sha256,
        onProgress: (received, total) => {
          if (total !== undefined) bar.total = total;
          bar.update(received);
        },
      });
      bar.finish();
    }
    const source = await findCifar(name, dataPath);
    if (source) {
      const { train, test } = await loadCifar(name, { source });
      const lt = makeLongTailed(train, { imbalanceFactor: imbalance, seed });
      return {
        name: `${name}-LT (imbalance ${imbalance}, from ${source.path})`,
        train: lt.dataset,
        test,
        normalization: name === "cifar10" ? CIFAR10_NORMALIZATION : CIFAR100_NORMALIZATION,
        side: 32,
      };
    }
    const get = name === "cifar100"
      ? "cifar-100-binary.tar.gz (https://www.cs.toronto.edu/~kriz/cifar.html)"
      : "cifar-10-binary.tar.gz (https://www.cs.toronto.edu/~kriz/cifar.html)";
    if (explicitDataset) {
      fail(
        `${name} was not found under ${dataPath} (looked for the extracted folder and the official ` +
          `.tar.gz). Put ${get} there, or add --download.`,
      );
    }
    console.log(
      `CIFAR-100 was not found under ${dataPath}: to use it, put ${get} there or run with ` +
        `--download. Running on the synthetic long-tailed set instead.\n`,
    );
  }
  const side = 16;
  const synth = syntheticLongTailed({
    numClasses: 10,
    maxPerClass: 500,
    imbalanceFactor: imbalance,
    testPerClass: 100,
    seed,
    height: side,
    width: side,
  });
  return {
    name: `synthetic-LT (10 classes, ${side}×${side}, imbalance ${imbalance})`,
    train: synth.train,
    test: synth.test,
    // The synthetic images are centred on mid-grey with a spread comparable to CIFAR's.
    normalization: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] },
    side,
  };
}

function recipeFor(data: Data): TrainingRecipe {
  const name = oneOf(
    "recipe",
    flags.recipe ?? (data.side === 16 ? "synthetic" : "quick"),
    [
      "paper",
      "quick",
      "synthetic",
    ] as const,
  );
  const recipe = name === "paper" ? paperRecipe() : quickRecipe();
  if (name === "synthetic") {
    // Short enough that the default two-loss comparison finishes in about a minute on two CPU
    // cores (two with the TypeScript kernels); long enough for the head classes to be learnt and
    // the tail to separate the losses.
    Object.assign(recipe, { name: "synthetic", batchSize: 64, iterations: 500, warmupSteps: 25 });
  }
  if (flags.batch !== undefined) recipe.batchSize = integer("batch", flags.batch, 128);
  if (flags.lr !== undefined) recipe.lr = number("lr", flags.lr, recipe.lr);
  if (flags.epochs !== undefined && flags.iterations !== undefined) {
    fail("--epochs and --iterations cannot be used together");
  }
  if (flags.iterations !== undefined) {
    recipe.iterations = integer("iterations", flags.iterations, 1);
  }
  if (flags.epochs !== undefined) {
    const epochs = integer("epochs", flags.epochs, 1);
    recipe.iterations = Math.ceil((epochs * data.train.labels.length) / recipe.batchSize);
  }
  // A shortened run keeps its warm-up within the first tenth of the iterations.
  recipe.warmupSteps = Math.min(recipe.warmupSteps, Math.floor(recipe.iterations / 10));
  if (recipe.decay.kind === "multistep" && name === "paper" && recipe.iterations !== 12_800) {
    // Keep the paper's decay points at the same fractions (1/2 and 3/4) of a shorter run.
    recipe.decay = {
      ...recipe.decay,
      milestones: [Math.round(recipe.iterations / 2), Math.round((recipe.iterations * 3) / 4)],
    };
    recipe.warmupSteps = Math.min(recipe.warmupSteps, Math.round(recipe.iterations / 32));
  }
  return recipe;
}

function pickDevice(): Device {
  if (deviceName === "cpu") return cpuDevice();
  if (deviceName === "cuda") return cudaDevice({ tf32: flags.tf32 });
  const choice = chooseDevice({ tf32: flags.tf32 });
  console.log(`Device: ${choice.device.description} (${choice.reason})`);
  return choice.device;
}

function withSuffix(path: string, suffix: string): string {
  const dot = path.lastIndexOf(".");
  return dot > path.lastIndexOf("/")
    ? `${path.slice(0, dot)}-${suffix}${path.slice(dot)}`
    : `${path}-${suffix}`;
}

async function writeAtomically(path: string, text: string): Promise<void> {
  const tmp = `${path}.${Deno.pid}.tmp`;
  try {
    await Deno.writeTextFile(tmp, text);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

const pct = (v: number): string => (Number.isNaN(v) ? "   —" : (100 * v).toFixed(2).padStart(6));

// ── run ─────────────────────────────────────────────────────────────────────────────────────
const data = await loadData();
const recipe = recipeFor(data);
// ResNet-32 is the paper's model; the small synthetic set trains a ResNet-20 by default to keep the
// offline comparison within a few minutes on two CPU cores.
const depth = integer("depth", flags.depth, data.side === 16 ? 20 : 32);
const device = pickDevice();
const numClasses = data.train.numClasses;
const trainCounts = Array.from(classCounts(data.train.labels, numClasses));
const augment = oneOf(
  "augment",
  flags.augment ?? (recipe.name === "paper" ? "autoaugment" : "basic"),
  ["basic", "autoaugment"] as const,
);
const transforms: readonly Transform[] = augment === "autoaugment"
  ? AUTOAUGMENT_CUTOUT
  : STANDARD_AUGMENTATION;
// λ: the paper's CIFAR-100 value, or the one that makes the tail ratio reach 5 % (paper §3.3
// recommends 2–10 %), since a fixed frequency means different class sets on other datasets.
const frequencies = trainCounts.map((n) => n / data.train.labels.length);
const lambdaFlag = flags.lambda ??
  (datasetFlag === "cifar100" && data.side === 32 ? "3e-3" : "auto");
const lambda = lambdaFlag === "auto"
  ? lambdaForTailRatio(frequencies, 0.05).lambda
  : number("lambda", lambdaFlag, 3e-3);
if (lambda < 0) fail(`--lambda must be ≥ 0 or "auto", got ${lambdaFlag}`);
const lambdaNote = `λ = ${lambda.toPrecision(3)}${lambdaFlag === "auto" ? " (auto)" : ""}: ` +
  `${frequencies.filter((f) => f < lambda).length} tail classes, tail ratio ${
    (100 * tailRatio(frequencies, lambda)).toFixed(1)
  } %`;
const groups = {
  many: trainCounts.filter((n) => n > 100).length,
  medium: trainCounts.filter((n) => n >= 20 && n <= 100).length,
  few: trainCounts.filter((n) => n < 20).length,
};

console.log(`Data: ${data.name}`);
console.log(
  `  ${data.train.labels.length} training images (${trainCounts[0]} … ${
    trainCounts[numClasses - 1]
  } per class; many/medium/few classes ${groups.many}/${groups.medium}/${groups.few}), ` +
    `${data.test.labels.length} test images`,
);
console.log(
  `Model: ResNet-${depth}, recipe ${recipe.name}: ${recipe.iterations} iterations of batch ` +
    `${recipe.batchSize}, lr ${recipe.lr}, ${augment} augmentation, seed ${seed}`,
);
console.log(`EQL threshold: ${lambdaNote}\n`);

interface RunResult {
  loss: ClassifierLossName;
  config: Record<string, number | string | null>;
  report: ClassificationReport;
  trainSeconds: number;
  imagesPerSecond: number;
  finalLoss: number;
}

const results: RunResult[] = [];
for (const lossName of losses) {
  const model = resnet({ depth, numClasses, device, seed });
  const loader = new BatchLoader(data.train, {
    batchSize: recipe.batchSize,
    normalization: data.normalization,
    transforms,
    seed,
    workers,
    dropLast: true,
    height: data.side,
    width: data.side,
  });
  try {
    const loss = classifierLoss(lossName, { trainCounts, lambda, ...lossOptions });
    const trained = await trainClassifier({ model, loader, recipe, loss, label: lossName });
    const report = evaluateClassifier(model, data.test, data.normalization, trainCounts);
    results.push({
      loss: lossName,
      config: loss.config,
      report,
      trainSeconds: trained.seconds,
      imagesPerSecond: trained.imagesPerSecond,
      finalLoss: trained.finalLoss,
    });
    console.log(
      `${lossName}: top-1 ${pct(report.top1).trim()} %, ${trained.seconds.toFixed(1)} s ` +
        `(${trained.imagesPerSecond.toFixed(0)} images/s)`,
    );
    if (flags.checkpoint) {
      const path = losses.length > 1 ? withSuffix(flags.checkpoint, lossName) : flags.checkpoint;
      await saveCheckpoint(path, model, { loss: lossName, dataset: data.name });
      console.log(`  weights saved to ${path}`);
    }
  } finally {
    loader.close();
    model.dispose();
  }
}

console.log(`\n${"loss".padEnd(18)} top-1  top-5   many medium    few`);
for (const r of results) {
  const { top1, top5, many, medium, few } = r.report;
  console.log(
    `${r.loss.padEnd(16)} ${pct(top1)} ${pct(top5)} ${pct(many)} ${pct(medium)} ${pct(few)}`,
  );
}
console.log("(accuracy in %; many > 100, medium 20–100, few < 20 training images per class)");

if (flags.out) {
  const json = {
    dataset: data.name,
    numClasses,
    trainCounts,
    configuration: {
      dataset: datasetFlag === "cifar100" && data.side === 16 ? "synthetic" : datasetFlag,
      imbalanceFactor: imbalance,
      depth,
      seed,
      augment,
      device: device.description,
      recipe,
    },
    results: results.map((r) => ({
      loss: r.loss,
      config: r.config,
      top1: r.report.top1,
      top5: r.report.top5,
      many: r.report.many,
      medium: r.report.medium,
      few: r.report.few,
      perClass: r.report.perClass,
      finalTrainLoss: r.finalLoss,
      timing: { trainSeconds: r.trainSeconds, imagesPerSecond: r.imagesPerSecond },
    })),
  };
  await writeAtomically(flags.out, JSON.stringify(json, null, 2) + "\n");
  console.log(`Metrics written to ${flags.out}`);
}

if (flags.plot) {
  // Classes are already ordered by training count (class 0 is the head of the LT profile).
  const order = trainCounts.map((n, j) => [n, j]).sort((a, b) => b[0] - a[0] || a[1] - b[1])
    .map(([, j]) => j);
  const svg = lineChartSvg([{
    title: `Per-class accuracy on ${data.name}`,
    xLabel: "class index, ordered by training images (head → tail)",
    yLabel: "top-1 accuracy",
    series: results.map((r) => ({
      name: r.loss,
      values: order.map((j) => r.report.perClass[j]),
    })),
  }]);
  await writeAtomically(flags.plot, svg);
  console.log(`Plot written to ${flags.plot}`);
}

device.dispose();
