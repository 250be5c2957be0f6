// The package's entry points: every path of deno.json's "exports" map loads, documents itself and
// exports what the README says it does; internals stay out of `.`, and `.` does not load the CUDA
// device or its PTX module.

import assert from "node:assert/strict";
import { moduleGraph } from "./_module_graph.ts";

const ROOT = new URL("../", import.meta.url);
const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT))) as {
  name: string;
  exports: Record<string, string>;
};

// A sample of the run-time names each entry point must export (types are checked through
// `deno doc` below).
const EXPECTED: Record<string, readonly string[]> = {
  ".": [
    "tensor",
    "Tensor",
    "zeros",
    "cpuDevice",
    "CpuDevice",
    "autoDevice",
    "chooseDevice",
    "cudaAvailable",
    "eqlLoss",
    "seqlLoss",
    "SeqlCriterion",
    "softmaxCrossEntropy",
    "sigmoidCrossEntropy",
    "focalLoss",
    "classBalancedWeights",
    "smoothL1Loss",
    "resnet32",
    "resnet",
    "boxHead",
    "Conv2d",
    "Linear",
    "SGD",
    "warmupMultiStep",
    "paperRecipe",
    "saveCheckpoint",
    "loadCheckpoint",
    "stateDict",
    "loadStateDict",
    "categoryFrequencies",
    "lambdaForTailRatio",
    "lvisGroups",
    "shotSplit",
    "AccuracyMeter",
    "Random",
    "LibraryNotFoundError",
  ],
  "./losses": [
    "eqlLoss",
    "seqlLoss",
    "SeqlCriterion",
    "softmaxCrossEntropy",
    "sigmoidCrossEntropy",
    "focalLoss",
    "classBalancedWeights",
    "suppressionWeights",
    "smoothL1Loss",
    "tensor",
    "Tensor",
  ],
  "./nn": [
    "Conv2d",
    "BatchNorm2d",
    "Linear",
    "ReLU",
    "Sequential",
    "resnet32",
    "BoxHead",
    "parameterCount",
    "SGD",
    "cosine",
    "recipeOptimizer",
    "saveCheckpoint",
    "readSafetensors",
    "CheckpointError",
    "tensor",
  ],
  "./data": [
    "loadCifar",
    "findCifar",
    "makeLongTailed",
    "syntheticLongTailed",
    "normalizeImages",
    "BatchLoader",
    "AUTOAUGMENT_CUTOUT",
    "autoAugment",
    "cutout",
    "downloadFile",
    "CIFAR_ARCHIVES",
    "DatasetError",
    "Progress",
    "trainClassifier",
    "evaluateClassifier",
    "classifierLoss",
    "repeatFactorSampling",
    "classCounts",
    "AccuracyMeter",
  ],
  "./detection": [
    "LongTailProposals",
    "collateProposals",
    "readProposalFeatures",
    "ProposalEvaluator",
    "averagePrecision",
    "summarizeAP",
    "GradientStats",
    "encodeBoxes",
    "decodeBoxes",
    "boxRegressionLoss",
  ],
  "./plot": ["lineChartSvg", "barChartSvg"],
  "./cuda": [
    "CudaDevice",
    "cudaDevice",
    "CudaBuffer",
    "cudaAvailable",
    "CudaError",
    "CublasError",
    "CudnnError",
    "NvidiaError",
  ],
};

// Plumbing that no entry point other than `./cuda` (for the CUDA device's own names) may export.
const INTERNAL = [
  "KernelLauncher",
  "KernelArg",
  "launchKernel",
  "PtxLauncher",
  "CudnnConvolutions",
  "ConvolutionDirection",
  "CublasGemm",
  "TarParser",
  "readTar",
  "readTarGz",
  "maskDraw",
  "gammaThreshold",
  "mapLossArrays",
  "LOSS_ARRAY_DTYPES",
  "checkInput",
];
const CUDA_ONLY = ["CudaDevice", "cudaDevice", "CudaBuffer", "CudaError", "CudaTimer"];

/** The exported names of an entry point, types included, and whether it has a module example. */
async function documented(path: string): Promise<{ names: Set<string>; example: boolean }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--json", new URL(path, ROOT).href],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const doc = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    nodes: Record<
      string,
      { module_doc?: { tags?: { kind: string }[] }; symbols: { name: string }[] }
    >;
  };
  const [node] = Object.values(doc.nodes);
  return {
    names: new Set(node.symbols.map((s) => s.name)),
    example: (node.module_doc?.tags ?? []).some((t) => t.kind === "example"),
  };
}

Deno.test("every entry point of deno.json is listed here and in the README", async () => {
  assert.deepEqual(Object.keys(config.exports).sort(), Object.keys(EXPECTED).sort());
  const readme = await Deno.readTextFile(new URL("README.md", ROOT));
  for (const name of Object.keys(config.exports)) {
    const specifier = name === "." ? config.name : `${config.name}/${name.slice(2)}`;
    assert.ok(readme.includes(`\`${specifier}\``), `README.md does not mention ${specifier}`);
  }
});

for (const [name, path] of Object.entries(config.exports)) {
  Deno.test(`entry point ${name} (${path}) exports its names and documents itself`, async () => {
    const mod = await import(new URL(path, ROOT).href) as Record<string, unknown>;
    const missing = EXPECTED[name].filter((key) => mod[key] === undefined);
    assert.deepEqual(missing, [], `${name} lacks ${missing.join(", ")}`);
    const { names, example } = await documented(path);
    assert.ok(example, `${path} has no @module documentation with an @example`);
    for (const key of Object.keys(mod)) assert.ok(names.has(key), `${key} is not documented`);
    const leaked = [...INTERNAL, ...(name === "./cuda" ? [] : CUDA_ONLY)].filter((key) =>
      names.has(key) || key in mod
    );
    assert.deepEqual(leaked, [], `${name} exports internals`);
  });
}

Deno.test("the CUDA device's kernel launcher is not a public method", async () => {
  const { CudaDevice } = await import(new URL(config.exports["./cuda"], ROOT).href);
  assert.equal("launch" in CudaDevice.prototype, false);
});

Deno.test("`.` and ./losses do not load the CUDA device or its PTX module; ./cuda does", async () => {
  const cuda = /\/src\/device\/cuda\.ts$|\/ffi\/kernels\/ptx\.ts$/;
  for (const name of [".", "./losses", "./nn", "./data", "./detection", "./plot"]) {
    const graph = await moduleGraph(new URL(config.exports[name], ROOT));
    const loaded = graph.staticModules.filter((m) => cuda.test(m));
    assert.deepEqual(loaded, [], `${name} loads ${loaded.join(", ")}`);
  }
  const root = await moduleGraph(new URL(config.exports["."], ROOT));
  assert.equal(
    root.allModules.filter((m) => cuda.test(m)).length,
    2,
    "autoDevice's dynamic import reaches the CUDA device and its PTX",
  );
  const gpu = await moduleGraph(new URL(config.exports["./cuda"], ROOT));
  assert.equal(gpu.staticModules.filter((m) => cuda.test(m)).length, 2);
});

Deno.test("the examples import the library only through its entry points", async () => {
  const allowed = new Set([
    ...Object.values(config.exports).map((p) => `.${p}`),
    "../src/cli.ts", // the examples' own command-line helpers, not part of the package
  ]);
  for await (const e of Deno.readDir(new URL("examples/", ROOT))) {
    if (!e.name.endsWith(".ts")) continue;
    const code = (await Deno.readTextFile(new URL(`examples/${e.name}`, ROOT)))
      .split("\n").filter((line) => !/^\s*(\*|\/\/)/.test(line)).join("\n"); // not JSDoc
    const specifiers = [...code.matchAll(/(?:from|import\()\s*"([^"]+)"/g)].map((m) => m[1]);
    const outside = specifiers.filter((s) => !s.startsWith("node:") && !allowed.has(s));
    assert.deepEqual(outside, [], `examples/${e.name} imports ${outside.join(", ")}`);
  }
});
