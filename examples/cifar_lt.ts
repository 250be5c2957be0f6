/**
 * CIFAR-LT with the Equalization Loss: trains a CIFAR ResNet on a long-tailed CIFAR-100 or
 * CIFAR-10 (or, offline, a synthetic long-tailed image set) with one or several losses on the same
 * data and seed, and reports overall, many/medium/few and per-class accuracy.
 *
 *     deno run -A examples/cifar_lt.ts                       # softmax vs SEQL, data or synthetic
 *     deno run -A examples/cifar_lt.ts --dataset cifar10 --data ../shared/data --imbalance 100
 *     deno run -A examples/cifar_lt.ts --help
 *
 * Every flag, every output path and the `EQL_DEVICE` / `EQL_GEMM` environment values are checked
 * before any data is read; a mistake ends the program with one `error: …` line and exit code 2.
 *
 * The library comes in through `../mod.ts`, as it would from `jsr:@eql/eql` in a project of your
 * own (the grouped bar chart excepted, until mod.ts exports it); `src/cli.ts` holds the
 * command-line helpers the examples share (flag ranges, output checks, fallback writes).
 *
 * @module
 */

import {
  CheckpointError,
  chooseDevice,
  classCounts,
  type ClassificationReport,
  cpuDevice,
  CpuKernelsUnavailableError,
  type Device,
  lambdaForTailRatio,
  LibraryNotFoundError,
  longTailCounts,
  paperRecipe,
  quickRecipe,
  resnet,
  saveCheckpoint,
  shotSplit,
  tailRatio,
  type TrainingRecipe,
} from "../mod.ts";
import {
  type ArchiveInfo,
  AUTOAUGMENT_CUTOUT,
  BatchLoader,
  CIFAR100_NORMALIZATION,
  CIFAR10_NORMALIZATION,
  CIFAR_ARCHIVES,
  type CifarName,
  type CifarSource,
  CLASSIFIER_LOSSES,
  type ClassifierLoss,
  classifierLoss,
  type ClassifierLossName,
  DatasetError,
  DownloadError,
  downloadFile,
  evaluateClassifier,
  findCifar,
  type ImageDataset,
  loadCifar,
  makeLongTailed,
  type Normalization,
  Progress,
  STANDARD_AUGMENTATION,
  syntheticLongTailed,
  trainClassifier,
  type Transform,
} from "../data.ts";
import { barChartSvg } from "../plot.ts";
import {
  checkOutputPath,
  choiceFlag,
  formatPercent as pct,
  numberFlag,
  parseFlags,
  runCli,
  saveResult as save,
  UsageError,
} from "../src/cli.ts";

/** Most iterations a run may ask for, directly or through `--epochs`. */
const MAX_ITERATIONS = 1e9;
/** Most epochs `--epochs` takes. */
const MAX_EPOCHS = 1e6;
/** Deepest ResNet `--depth` builds (ResNet-1202, the deepest in He et al. 2016). */
const MAX_DEPTH = 1202;
/** Augmentation workers allowed per CPU core. */
const WORKERS_PER_CORE = 4;
/** The synthetic long-tailed set: classes, head-class size and image side. */
const SYNTHETIC = { numClasses: 10, maxPerClass: 500, side: 16 } as const;
/** Classes and head-class size of the CIFAR-LT profiles. */
const CIFAR_PROFILE = {
  cifar10: { numClasses: 10, maxPerClass: 5000 },
  cifar100: { numClasses: 100, maxPerClass: 500 },
} as const;

const maxWorkers = WORKERS_PER_CORE * Math.max(1, navigator.hardwareConcurrency || 1);

const HELP = `Usage: deno run -A examples/cifar_lt.ts [options]

Trains a CIFAR ResNet on long-tailed CIFAR with the chosen loss(es) and reports top-1, top-5 and
many/medium/few-shot accuracy. With no options it looks for CIFAR-100 under ./data and, when it is
absent, runs on a synthetic long-tailed set, comparing softmax and softmax EQL (SEQL).

Data
  --dataset NAME       cifar100 | cifar10 | synthetic (default: cifar100 if found, else synthetic)
  --data PATH          folder holding the extracted folder or the official .tar.gz (default ./data)
  --download           fetch the official archive into --data first (checksum-verified, resumable)
  --imbalance IF       imbalance factor n_max / n_min, from 1 to the head-class size so that every
                       class keeps an image: 500 on CIFAR-100 and the synthetic set, 5000 on
                       CIFAR-10 (default 100)
  --augment KIND       basic (crop + flip) | autoaugment (crop + flip + AutoAugment + Cutout)
                       (default: autoaugment for the paper recipe, basic otherwise)
  --workers N          augmentation workers, 0 to ${maxWorkers} (${WORKERS_PER_CORE} per core; \
default 1; 0 = in the main thread)

Losses (${CLASSIFIER_LOSSES.join(", ")})
  --loss NAME          train one loss (default: seql)
  --compare A,B,...    train several losses on the same data and seed, side by side
                       (default run: softmax,seql)
  --lambda X|auto      EQL / SEQL frequency threshold in [0, 1]; auto picks the λ whose tail ratio
                       TR(λ) first reaches 5 % (default: 3e-3, the paper's value, on CIFAR-100;
                       auto elsewhere)
  --gamma X            SEQL masking probability in [0, 1] (default 0.95)
  --focal-gamma X      focal exponent ≥ 0 (default 2)
  --focal-alpha X      focal balance in [0, 1], or "none" (default 0.25)
  --cb-beta X          class-balanced beta in [0, 1) (default 0.9999)
  --tau X              balanced-softmax temperature ≥ 0 (default 1)

Training
  --recipe NAME        paper (batch 256, 12.8k it., lr 0.2 warm-up, x0.1 at 6.4k/9.6k) | quick
                       (batch 128, 600 it., cosine) | synthetic (batch 64, 500 it.)
                       (default: quick; synthetic on the synthetic set)
  --iterations N       override the recipe's iterations (1 to 1e9)
  --epochs N           train for N passes over the training set instead (1 to 1e6)
  --batch N            override the batch size (1 to the training-set size)
  --lr X               override the peak learning rate (> 0)
  --depth N            ResNet depth 6n+2: 8, 14, 20, 32, ... up to ${MAX_DEPTH} (default 32; 20 on
                       the synthetic set)
  --device NAME        auto | cpu | cuda (default auto)
  --tf32               allow TF32 tensor-core GEMMs on CUDA
  --seed N             data, initialisation and mask seed, 0 to 4294967295 (default 0)

Output (each folder must exist and be writable; checked before training)
  --out FILE           write the metrics, configuration and timing as JSON
  --checkpoint FILE    save the trained weights (safetensors, PyTorch names); with several
                       losses the loss name is added before the extension
  --plot FILE          per-class accuracy of each loss as grouped bars (SVG), classes from the
                       head to the tail with their training images, many/medium/few shaded
  --help               show this text

Environment
  EQL_DEVICE           auto | cpu | cuda, used with --device auto
  EQL_GEMM             auto | openblas | typescript, the CPU matrix-product backend

A result that cannot be written where asked is written to the temporary folder instead, and the
program says where (exit code 1). Mistakes in flags, files or the environment end the program with
one "error: ..." line (exit code 2).
`;

/** A dataset the program can train on. */
export type DatasetName = CifarName | "synthetic";

/** Every setting of a run, read and checked from the command line. */
export interface CliOptions {
  /** `--help` was given. */
  help: boolean;
  /** The dataset asked for (cifar100 unless `--dataset` says otherwise). */
  dataset: DatasetName;
  /** Whether `--dataset` was given (otherwise a missing CIFAR-100 falls back to synthetic). */
  explicitDataset: boolean;
  /** `--data`. */
  data: string;
  /** `--download`. */
  download: boolean;
  /** `--imbalance`. */
  imbalance: number;
  /** `--augment`, when given. */
  augment?: "basic" | "autoaugment";
  /** `--workers`. */
  workers: number;
  /** The losses to train, in order. */
  losses: ClassifierLossName[];
  /** `--lambda`, when given. */
  lambda?: number | "auto";
  /** `--gamma`. */
  gamma: number;
  /** `--focal-gamma`. */
  focalGamma: number;
  /** `--focal-alpha` (null for "none"). */
  focalAlpha: number | null;
  /** `--cb-beta`. */
  cbBeta: number;
  /** `--tau`. */
  tau: number;
  /** `--recipe`, when given. */
  recipe?: "paper" | "quick" | "synthetic";
  /** `--iterations`, when given. */
  iterations?: number;
  /** `--epochs`, when given. */
  epochs?: number;
  /** `--batch`, when given. */
  batch?: number;
  /** `--lr`, when given. */
  lr?: number;
  /** `--depth`, when given. */
  depth?: number;
  /** `--device`. */
  device: "auto" | "cpu" | "cuda";
  /** `--tf32`. */
  tf32: boolean;
  /** `--seed`. */
  seed: number;
  /** `--out`, when given. */
  out?: string;
  /** `--checkpoint`, when given. */
  checkpoint?: string;
  /** `--plot`, when given. */
  plot?: string;
}

/**
 * The official binary archive of a CIFAR release, as `--download` fetches it, or undefined when
 * none is known. Its file name is the tarball that the data search looks for.
 *
 * @param name `"cifar10"` or `"cifar100"`.
 * @returns Address, SHA-256 and size of the archive.
 *
 * @example
 * ```ts ignore
 * import { cifarArchive } from "./cifar_lt.ts";
 * cifarArchive("cifar10")?.url; // "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
 * ```
 */
export function cifarArchive(name: CifarName): ArchiveInfo | undefined {
  // "cifar10" → "cifar-10-binary", "cifar100" → "cifar-100-binary".
  return CIFAR_ARCHIVES[`cifar-${name.slice("cifar".length)}-binary`];
}

/** Classes and head-class size of a dataset's long-tail profile. */
function profileOf(dataset: DatasetName): { numClasses: number; maxPerClass: number } {
  return dataset === "synthetic" ? SYNTHETIC : CIFAR_PROFILE[dataset];
}

/** Training images per class of the long-tailed training set. */
function trainingCounts(dataset: DatasetName, imbalance: number): Int32Array {
  return longTailCounts({ ...profileOf(dataset), imbalanceFactor: imbalance });
}

function checkImbalance(dataset: DatasetName, text: string | undefined): number {
  // The tail class keeps floor(n_max / IF) images: IF ≤ n_max leaves every class at least one.
  const { maxPerClass } = profileOf(dataset);
  const limit = `from 1 to ${maxPerClass} on ${dataset} (${maxPerClass} images in the head ` +
    `class, so that every class keeps at least one image)`;
  if (text === undefined) return 100;
  const value = Number(text);
  if (
    text.trim() === "" || !Number.isFinite(value) || value < 1 || value > maxPerClass ||
    trainingCounts(dataset, value).some((n) => n < 1)
  ) {
    throw new RangeError(`--imbalance must be a number ${limit}, got "${text}"`);
  }
  return value;
}

function checkDepth(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const depth = Number(text);
  if (text.trim() === "" || !Number.isInteger(depth) || depth < 8 || (depth - 2) % 6 !== 0) {
    throw new RangeError(`--depth must be 6n+2 (8, 14, 20, 32, ...), got ${text}`);
  }
  if (depth > MAX_DEPTH) throw new RangeError(`--depth must be at most ${MAX_DEPTH}, got ${text}`);
  return depth;
}

/** The flags, as `parseArgs` reads them (values are checked by {@linkcode parseOptions}). */
const FLAGS = {
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
} as const;

/**
 * Reads and checks every command-line flag; nothing is read from disk. Ranges that depend on the
 * dataset (the imbalance factor, and later the batch size) use the dataset asked for.
 *
 * @param args The command-line arguments (`Deno.args`).
 * @returns The settings.
 * @throws {RangeError} When a flag's value is out of its range; the message names the flag, the
 * accepted values and the value given.
 * @throws {UsageError} When a flag is unknown, misses its value or contradicts another flag.
 *
 * @example
 * ```ts ignore
 * import { parseOptions } from "./cifar_lt.ts";
 * parseOptions(["--dataset", "synthetic", "--lr", "0.05"]).lr; // 0.05
 * // parseOptions(["--depth", "7"]) throws
 * // RangeError: --depth must be 6n+2 (8, 14, 20, 32, ...), got 7
 * ```
 */
export function parseOptions(args: string[]): CliOptions {
  const flags = parseFlags(args, FLAGS);
  const text = (name: keyof typeof flags): string | undefined => flags[name] as string | undefined;
  const num = (
    name: keyof typeof flags,
    fallback: number,
    range: Parameters<typeof numberFlag>[2],
  ): number => {
    const t = text(name);
    return t === undefined ? fallback : numberFlag(name, t, range);
  };
  const optional = (
    name: keyof typeof flags,
    range: Parameters<typeof numberFlag>[2],
  ): number | undefined => {
    const t = text(name);
    return t === undefined ? undefined : numberFlag(name, t, range);
  };

  const explicitDataset = flags.dataset !== undefined;
  const dataset = choiceFlag(
    "dataset",
    flags.dataset ?? "cifar100",
    ["cifar100", "cifar10", "synthetic"] as const,
  );
  if (flags.data === "") throw new RangeError(`--data must be a folder path, got ""`);
  if (flags.download && dataset === "synthetic") {
    throw new UsageError("--download fetches CIFAR; it cannot be used with --dataset synthetic");
  }
  if (flags.loss !== undefined && flags.compare !== undefined) {
    throw new UsageError("--loss and --compare cannot be used together");
  }
  if (flags.epochs !== undefined && flags.iterations !== undefined) {
    throw new UsageError("--epochs and --iterations cannot be used together");
  }
  let losses: ClassifierLossName[];
  if (flags.compare !== undefined) {
    losses = flags.compare.split(",").map((s) =>
      choiceFlag("compare", s.trim(), CLASSIFIER_LOSSES)
    );
    if (new Set(losses).size !== losses.length) {
      throw new RangeError(`--compare must list each loss once, got "${flags.compare}"`);
    }
  } else if (flags.loss !== undefined) {
    losses = [choiceFlag("loss", flags.loss, CLASSIFIER_LOSSES)];
  } else {
    losses = explicitDataset ? ["seql"] : ["softmax", "seql"];
  }
  const lambdaText = flags.lambda;
  const focalAlphaText = flags["focal-alpha"];
  const augmentText = flags.augment;
  const recipeText = flags.recipe;
  for (
    const [flag, path] of [["out", flags.out], ["checkpoint", flags.checkpoint], [
      "plot",
      flags.plot,
    ]] as const
  ) {
    if (path === "") throw new RangeError(`--${flag} must be a file path, got ""`);
  }
  return {
    help: flags.help ?? false,
    dataset,
    explicitDataset,
    data: flags.data ?? "./data",
    download: flags.download ?? false,
    imbalance: checkImbalance(dataset, flags.imbalance),
    augment: augmentText === undefined
      ? undefined
      : choiceFlag("augment", augmentText, ["basic", "autoaugment"] as const),
    workers: num("workers", 1, { integer: true, min: 0, max: maxWorkers }),
    losses,
    lambda: lambdaText === undefined || lambdaText === "auto"
      ? lambdaText as "auto" | undefined
      : numberFlag("lambda", lambdaText, { min: 0, max: 1 }),
    gamma: num("gamma", 0.95, { min: 0, max: 1 }),
    focalGamma: num("focal-gamma", 2, { min: 0 }),
    focalAlpha: focalAlphaText === "none"
      ? null
      : focalAlphaText === undefined
      ? 0.25
      : numberFlag("focal-alpha", focalAlphaText, { min: 0, max: 1 }),
    cbBeta: num("cb-beta", 0.9999, { min: 0, max: 1, maxExclusive: true }),
    tau: num("tau", 1, { min: 0 }),
    recipe: recipeText === undefined
      ? undefined
      : choiceFlag("recipe", recipeText, ["paper", "quick", "synthetic"] as const),
    iterations: optional("iterations", { integer: true, min: 1, max: MAX_ITERATIONS }),
    epochs: optional("epochs", { integer: true, min: 1, max: MAX_EPOCHS }),
    batch: optional("batch", { integer: true, min: 1 }),
    lr: optional("lr", { min: 0, minExclusive: true }),
    depth: checkDepth(flags.depth),
    device: choiceFlag("device", flags.device ?? "auto", ["auto", "cpu", "cuda"] as const),
    tf32: flags.tf32 ?? false,
    seed: num("seed", 0, { integer: true, min: 0, max: 2 ** 32 - 1 }),
    out: flags.out,
    checkpoint: flags.checkpoint,
    plot: flags.plot,
  };
}

/** Checks the environment variables the run reads, before anything else happens. */
function checkEnvironment(device: CliOptions["device"]): void {
  const get = (name: string): string | undefined => {
    try {
      return Deno.env.get(name);
    } catch {
      return undefined;
    }
  };
  const forced = get("EQL_DEVICE");
  if (device === "auto" && forced !== undefined) {
    const v = forced.toLowerCase();
    if (v !== "auto" && v !== "cpu" && v !== "cuda") {
      throw new RangeError(`EQL_DEVICE must be "auto", "cpu" or "cuda", got "${forced}"`);
    }
  }
  const gemm = get("EQL_GEMM");
  if (gemm !== undefined) {
    const v = gemm.trim().toLowerCase();
    if (!["", "auto", "openblas", "typescript", "ts"].includes(v)) {
      throw new RangeError(`EQL_GEMM must be "auto", "openblas" or "typescript", got "${gemm}"`);
    }
  }
}

function withSuffix(path: string, suffix: string): string {
  const dot = path.lastIndexOf(".");
  return dot > path.lastIndexOf("/")
    ? `${path.slice(0, dot)}-${suffix}${path.slice(dot)}`
    : `${path}-${suffix}`;
}

function checkpointPath(options: CliOptions, loss: ClassifierLossName): string {
  return options.losses.length > 1 ? withSuffix(options.checkpoint!, loss) : options.checkpoint!;
}

/** Checks every output path before any data is read. */
async function checkOutputs(options: CliOptions): Promise<void> {
  const outputs: [string, string][] = [];
  if (options.out !== undefined) outputs.push(["out", options.out]);
  if (options.plot !== undefined) outputs.push(["plot", options.plot]);
  if (options.checkpoint !== undefined) {
    for (const loss of options.losses) outputs.push(["checkpoint", checkpointPath(options, loss)]);
  }
  const seen = new Map<string, string>();
  for (const [flag, path] of outputs) {
    const other = seen.get(path);
    if (other !== undefined) {
      throw new UsageError(`--${other} and --${flag} must name different files, both give ${path}`);
    }
    seen.set(path, flag);
    await checkOutputPath(flag, path);
  }
}

// ── data ────────────────────────────────────────────────────────────────────────────────────

/** The dataset a run will use, found but not yet read. */
type Resolved = { dataset: "synthetic" } | { dataset: CifarName; source: CifarSource };

/** The data of a run, read and made long-tailed. */
interface Data {
  /** Short description for the console, the JSON and the plot title (no file paths). */
  name: string;
  /** Where the images were read from (undefined for the synthetic set). */
  source?: string;
  /** Whether this is the synthetic set (chosen, or the fallback when CIFAR-100 is missing). */
  synthetic: boolean;
  train: ImageDataset;
  test: ImageDataset;
  normalization: Normalization;
  /** Image side in pixels (the images are square). */
  side: number;
}

async function download(name: CifarName, dataPath: string, archive: ArchiveInfo): Promise<void> {
  try {
    await Deno.mkdir(dataPath, { recursive: true });
  } catch (e) {
    throw new UsageError(
      `--data must be a folder the download can be written to, got ${dataPath} (${
        e instanceof Error ? e.message : e
      })`,
    );
  }
  const dest = `${dataPath}/${archive.url.slice(archive.url.lastIndexOf("/") + 1)}`;
  console.log(`Downloading ${name} to ${dest}`);
  const bar = new Progress({ label: dest, unit: "B", total: archive.bytes });
  await downloadFile({
    url: archive.url,
    dest,
    sha256: archive.sha256,
    bytes: archive.bytes,
    onProgress: (received, total) => {
      if (total !== undefined) bar.total = total;
      bar.update(received);
    },
  });
  bar.finish();
}

/** Downloads when asked and finds the data; reads nothing yet. */
async function resolveData(options: CliOptions): Promise<Resolved> {
  if (options.dataset === "synthetic") return { dataset: "synthetic" };
  const name = options.dataset;
  const dataPath = options.data;
  const archive = cifarArchive(name);
  if (options.download) {
    if (archive === undefined) {
      throw new UsageError(`--download does not know where to get ${name}`);
    }
    await download(name, dataPath, archive);
  }
  const source = await findCifar(name, dataPath);
  if (source) return { dataset: name, source };
  const file = name === "cifar100" ? "cifar-100-binary.tar.gz" : "cifar-10-binary.tar.gz";
  const get = `${file} (https://www.cs.toronto.edu/~kriz/cifar.html)`;
  // Suggest --download only where it would fetch the archive this search looks for.
  const canDownload = archive !== undefined && !options.download;
  if (options.explicitDataset) {
    throw new UsageError(
      `${name} was not found under ${dataPath} (looked for the extracted folder and the official ` +
        `.tar.gz); put ${get} there${canDownload ? ", or add --download" : ""}`,
    );
  }
  console.log(
    `CIFAR-100 was not found under ${dataPath}: to use it, put ${get} there${
      canDownload ? " or run with --download" : ""
    }. Running on the synthetic long-tailed set instead.\n`,
  );
  return { dataset: "synthetic" };
}

async function loadData(resolved: Resolved, options: CliOptions): Promise<Data> {
  const { imbalance, seed } = options;
  if (resolved.dataset !== "synthetic") {
    const name = resolved.dataset;
    const { train, test } = await loadCifar(name, { source: resolved.source });
    const lt = makeLongTailed(train, { imbalanceFactor: imbalance, seed });
    return {
      name: `${name}-LT (imbalance ${imbalance})`,
      source: resolved.source.path,
      synthetic: false,
      train: lt.dataset,
      test,
      normalization: name === "cifar10" ? CIFAR10_NORMALIZATION : CIFAR100_NORMALIZATION,
      side: 32,
    };
  }
  const { side, numClasses, maxPerClass } = SYNTHETIC;
  const synth = syntheticLongTailed({
    numClasses,
    maxPerClass,
    imbalanceFactor: imbalance,
    testPerClass: 100,
    seed,
    height: side,
    width: side,
  });
  return {
    name: `synthetic-LT (${numClasses} classes, ${side}×${side}, imbalance ${imbalance})`,
    synthetic: true,
    train: synth.train,
    test: synth.test,
    // The synthetic images are centred on mid-grey with a spread comparable to CIFAR's.
    normalization: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] },
    side,
  };
}

/**
 * The recipe of the run, with the flags applied; checks the batch size and the epoch count against
 * the size of the long-tailed training set, which the profile gives before any data is read.
 */
function planRecipe(options: CliOptions, dataset: DatasetName, trainSize: number): TrainingRecipe {
  const name = options.recipe ?? (dataset === "synthetic" ? "synthetic" : "quick");
  const recipe = name === "paper" ? paperRecipe() : quickRecipe();
  if (name === "synthetic") {
    // Short enough that the default two-loss comparison finishes in about two minutes on two
    // shared CPU cores (1 min 40 s to 2 min 4 s measured, native or TypeScript kernels); long
    // enough for the head classes to be learnt and the tail to separate the losses.
    Object.assign(recipe, { name: "synthetic", batchSize: 64, iterations: 500, warmupSteps: 25 });
  }
  if (options.batch !== undefined) recipe.batchSize = options.batch;
  if (recipe.batchSize > trainSize) {
    // Every step drops the last partial batch, so a larger batch would give no step at all.
    throw new RangeError(
      `--batch must be at most the ${trainSize} images of the long-tailed ${dataset} training ` +
        `set (imbalance ${options.imbalance}), got ${recipe.batchSize}`,
    );
  }
  if (options.lr !== undefined) recipe.lr = options.lr;
  if (options.iterations !== undefined) recipe.iterations = options.iterations;
  if (options.epochs !== undefined) {
    const perEpoch = Math.floor(trainSize / recipe.batchSize);
    const iterations = options.epochs * perEpoch;
    if (iterations > MAX_ITERATIONS) {
      throw new RangeError(
        `--epochs must give at most ${MAX_ITERATIONS} iterations (${perEpoch} per epoch), got ` +
          `${options.epochs} (${iterations} iterations)`,
      );
    }
    recipe.iterations = iterations;
  }
  // A shortened run keeps its warm-up within the first tenth of the iterations.
  recipe.warmupSteps = Math.min(recipe.warmupSteps, Math.floor(recipe.iterations / 10));
  if (recipe.decay.kind === "multistep" && name === "paper" && recipe.iterations !== 12_800) {
    // Keep the paper's decay points at the same fractions (1/2 and 3/4) of a shorter run.
    const first = Math.max(1, Math.round(recipe.iterations / 2));
    const second = Math.max(first + 1, Math.round((recipe.iterations * 3) / 4));
    recipe.decay = { ...recipe.decay, milestones: [first, second] };
    recipe.warmupSteps = Math.min(recipe.warmupSteps, Math.round(recipe.iterations / 32));
  }
  return recipe;
}

async function pickDevice(options: CliOptions): Promise<Device> {
  if (options.device === "cpu") return cpuDevice();
  try {
    if (options.device === "cuda") {
      // The CUDA module (and its PTX) is loaded only when the GPU is asked for.
      const { cudaDevice } = await import("../cuda.ts");
      return cudaDevice({ tf32: options.tf32 });
    }
    const choice = await chooseDevice({ tf32: options.tf32 });
    console.log(`Device: ${choice.device.description} (${choice.reason})`);
    return choice.device;
  } catch (e) {
    if (e instanceof (await import("../cuda.ts")).CudaError) {
      throw new UsageError(`the GPU could not be opened (${e.message}); use --device cpu`);
    }
    throw e;
  }
}

interface RunResult {
  loss: ClassifierLossName;
  config: Record<string, number | string | null>;
  report: ClassificationReport;
  trainSeconds: number;
  imagesPerSecond: number;
  finalLoss: number;
}

// ── run ─────────────────────────────────────────────────────────────────────────────────────

async function main(args: string[]): Promise<number> {
  const options = parseOptions(args);
  if (options.help) {
    console.log(HELP);
    return 0;
  }
  checkEnvironment(options.device);
  await checkOutputs(options);
  const resolved = await resolveData(options);
  const predictedCounts = trainingCounts(resolved.dataset, options.imbalance);
  const trainSize = predictedCounts.reduce((a, b) => a + b, 0);
  const recipe = planRecipe(options, resolved.dataset, trainSize);

  // The device is opened before the data is read, so that a missing GPU or library is reported
  // at once.
  const device = await pickDevice(options);
  try {
    return await trainAndReport(options, resolved, recipe, device);
  } finally {
    device.dispose();
  }
}

/** Reads the data, trains every loss, prints the table and writes the results. */
async function trainAndReport(
  options: CliOptions,
  resolved: Resolved,
  recipe: TrainingRecipe,
  device: Device,
): Promise<number> {
  const { seed, losses } = options;
  // ResNet-32 is the paper's model; the small synthetic set trains a ResNet-20 by default to keep
  // the offline comparison within a few minutes on two CPU cores.
  const data = await loadData(resolved, options);
  const depth = options.depth ?? (data.synthetic ? 20 : 32);
  const augment = options.augment ?? (recipe.name === "paper" ? "autoaugment" : "basic");
  const transforms: readonly Transform[] = augment === "autoaugment"
    ? AUTOAUGMENT_CUTOUT
    : STANDARD_AUGMENTATION;
  const numClasses = data.train.numClasses;
  const trainCounts = Array.from(classCounts(data.train.labels, numClasses));
  // λ: the paper's CIFAR-100 value, or the one that makes the tail ratio reach 5 % (paper §3.3
  // recommends 2–10 %), since a fixed frequency means different class sets on other datasets.
  const frequencies = trainCounts.map((n) => n / data.train.labels.length);
  const lambdaFlag = options.lambda ?? (resolved.dataset === "cifar100" ? 3e-3 : "auto");
  const lambda = lambdaFlag === "auto" ? lambdaForTailRatio(frequencies, 0.05).lambda : lambdaFlag;
  const lambdaNote = `λ = ${lambda.toPrecision(3)}${lambdaFlag === "auto" ? " (auto)" : ""}: ` +
    `${frequencies.filter((f) => f < lambda).length} tail classes, tail ratio ${
      (100 * tailRatio(frequencies, lambda)).toFixed(1)
    } %`;
  // Every loss is built before the first one trains, so a bad setting cannot stop a comparison
  // half-way.
  const lossOptions = {
    trainCounts,
    lambda,
    gamma: options.gamma,
    focalGamma: options.focalGamma,
    focalAlpha: options.focalAlpha,
    cbBeta: options.cbBeta,
    tau: options.tau,
    seed,
  };
  const criteria: ClassifierLoss[] = losses.map((name) => classifierLoss(name, lossOptions));
  const groups = shotSplit(trainCounts);

  let saved = true;
  const results: RunResult[] = [];
  console.log(`Data: ${data.name}${data.source === undefined ? "" : `, from ${data.source}`}`);
  console.log(
    `  ${data.train.labels.length} training images (${trainCounts[0]} … ${
      trainCounts[numClasses - 1]
    } per class; many/medium/few classes ${groups.many.length}/${groups.medium.length}/${groups.few.length}), ` +
      `${data.test.labels.length} test images`,
  );
  console.log(
    `Model: ResNet-${depth}, recipe ${recipe.name}: ${recipe.iterations} iterations of batch ` +
      `${recipe.batchSize}, lr ${recipe.lr}, ${augment} augmentation, seed ${seed}`,
  );
  console.log(`EQL threshold: ${lambdaNote}\n`);

  for (const loss of criteria) {
    const lossName = loss.name;
    const model = resnet({ depth, numClasses, device, seed });
    const loader = new BatchLoader(data.train, {
      batchSize: recipe.batchSize,
      normalization: data.normalization,
      transforms,
      seed,
      workers: options.workers,
      dropLast: true,
      height: data.side,
      width: data.side,
    });
    try {
      const trained = await trainClassifier({ model, loader, recipe, loss, label: lossName });
      // Evaluated in batches of the training size: the layers keep their outputs at the size of
      // the last batch, so a larger evaluation batch would allocate a second, larger set of them.
      const report = evaluateClassifier(
        model,
        data.test,
        data.normalization,
        trainCounts,
        recipe.batchSize,
      );
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
      if (options.checkpoint !== undefined) {
        // A failed save falls back to the temporary folder and never stops the other losses.
        const ok = await save(
          `the ${lossName} weights`,
          "checkpoint",
          checkpointPath(options, lossName),
          (p) => saveCheckpoint(p, model, { loss: lossName, dataset: data.name }),
        );
        saved &&= ok;
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

  if (options.out !== undefined) {
    const json = {
      dataset: data.name,
      source: data.source ?? null,
      numClasses,
      trainCounts,
      configuration: {
        dataset: resolved.dataset,
        imbalanceFactor: options.imbalance,
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
    const text = JSON.stringify(json, null, 2) + "\n";
    saved = await save("the metrics", "out", options.out, text) && saved;
  }

  if (options.plot !== undefined) {
    const svg = perClassPlot(data, trainCounts, results);
    saved = await save("the plot", "plot", options.plot, svg) && saved;
  }
  return saved ? 0 : 1;
}

/**
 * The per-class accuracy of every loss as grouped bars, one slot per class from the head to the
 * tail (name and training images under it), the many / medium / few-shot classes shaded.
 */
function perClassPlot(data: Data, trainCounts: number[], results: RunResult[]): string {
  const order = trainCounts.map((n, j) => [n, j]).sort((a, b) => b[0] - a[0] || a[1] - b[1])
    .map(([, j]) => j);
  const split = shotSplit(trainCounts);
  const bands = (["many", "medium", "few"] as const).flatMap((g, i) => {
    const at = order.map((j, k) => (split.group[j] === g ? k : -1)).filter((k) => k >= 0);
    const label = `${g}-shot (${g === "many" ? "> 100" : g === "medium" ? "20–100" : "< 20"})`;
    return at.length === 0
      ? []
      : [{ from: at[0], to: at[at.length - 1] + 1, label, fill: SHOT_FILL[i] }];
  });
  return barChartSvg([{
    title: `Per-class top-1 accuracy, ${data.name}`,
    xLabel: "class (training images), from the head to the tail",
    yLabel: "top-1 accuracy on the test set (%)",
    categories: order.map((j) => data.train.classNames[j] ?? String(j)),
    notes: order.map((j) => `n=${trainCounts[j]}`),
    yRange: [0, 100],
    bands,
    series: results.map((r) => ({
      name: r.loss,
      values: order.map((j) => 100 * r.report.perClass[j]),
    })),
  }]);
}

/** Shades of the many-, medium- and few-shot bands of the plot. */
const SHOT_FILL = ["#e4edf7", "#efefef", "#f9e9dc"] as const;

if (import.meta.main) {
  await runCli(() => main(Deno.args), [
    DatasetError,
    DownloadError,
    CheckpointError,
    LibraryNotFoundError,
    CpuKernelsUnavailableError,
  ]);
}
