// Data pipeline throughput. Images per second = images per iteration × iterations per second
// (the names say how many images one iteration handles).
//
//   deno bench -A bench/data_bench.ts

import { BatchLoader } from "../src/data/loader.ts";
import { CIFAR10_NORMALIZATION, normalizationTable } from "../src/data/normalize.ts";
import {
  assembleBatch,
  AUTOAUGMENT_CUTOUT,
  STANDARD_AUGMENTATION,
  type Transform,
} from "../src/data/pipeline.ts";
import { syntheticLongTailed } from "../src/data/synthetic.ts";
import {
  applyAutoAugmentOp,
  type AutoAugmentOp,
  autoAugmentParameter,
} from "../src/data/autoaugment.ts";

const BATCH = 128;
const { train } = syntheticLongTailed({ numClasses: 10, maxPerClass: 410, imbalanceFactor: 1 });
const table = normalizationTable(CIFAR10_NORMALIZATION);
const indices = Int32Array.from({ length: BATCH }, (_, i) => (i * 37) % train.labels.length);

const pipelines: [string, readonly Transform[]][] = [
  ["normalise only", []],
  ["crop + flip", STANDARD_AUGMENTATION],
  ["crop + flip + cutout", [...STANDARD_AUGMENTATION, { kind: "cutout", size: 16 }]],
  ["crop + flip + AutoAugment", [...STANDARD_AUGMENTATION, { kind: "autoaugment" }]],
  ["crop + flip + AutoAugment + cutout", AUTOAUGMENT_CUTOUT],
];

let seed = 0;
for (const [name, transforms] of pipelines) {
  Deno.bench({
    name: `${name} (${BATCH} images/iter)`,
    group: "augment",
    baseline: name === "crop + flip",
    fn() {
      assembleBatch(train.images, train.labels, indices, transforms, table, 32, 32, seed++);
    },
  });
}

// Each AutoAugment operation alone at magnitude 5 (the pipeline applies 0–2 per image).
const OPS: AutoAugmentOp[] = [
  "ShearX",
  "ShearY",
  "TranslateX",
  "TranslateY",
  "Rotate",
  "AutoContrast",
  "Invert",
  "Equalize",
  "Solarize",
  "Posterize",
  "Contrast",
  "Color",
  "Brightness",
  "Sharpness",
];
const scratch = new Uint8Array(3 * 32 * 32);
for (const op of OPS) {
  const parameter = autoAugmentParameter(op, 5, 32, 32);
  Deno.bench({
    name: `AutoAugment ${op} (${BATCH} images/iter)`,
    group: "autoaugment ops",
    fn() {
      for (let k = 0; k < BATCH; k++) {
        const i = indices[k];
        const image = train.images.subarray(i * 3072, (i + 1) * 3072);
        applyAutoAugmentOp(op, image, scratch, 32, 32, parameter, 1);
      }
    },
  });
}

/** Epoch 1, timed, after an untimed epoch 0 that starts and warms up the workers. */
async function secondEpoch(b: Deno.BenchContext, workers: number, trainMs: number): Promise<void> {
  using loader = new BatchLoader(train, {
    batchSize: BATCH,
    normalization: CIFAR10_NORMALIZATION,
    transforms: AUTOAUGMENT_CUTOUT,
    workers,
    seed: 1,
  });
  for await (const _batch of loader.epoch(0)) { /* warm-up */ }
  b.start();
  for await (const _batch of loader.epoch(1)) {
    // Stand-in for a training step: the main thread is busy, the workers are not.
    const until = performance.now() + trainMs;
    while (performance.now() < until) { /* busy */ }
  }
  b.end();
}

for (const trainMs of [0, 20]) {
  for (const workers of [0, 1, 2]) {
    Deno.bench({
      name: `loader, AutoAugment + cutout, workers ${workers}, ${trainMs} ms step ` +
        `(${train.labels.length} images/iter)`,
      group: `loader, ${trainMs} ms step`,
      baseline: workers === 0,
      n: 3,
      warmup: 1,
      async fn(b) {
        await secondEpoch(b, workers, trainMs);
      },
    });
  }
}
