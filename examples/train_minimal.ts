/**
 * The whole training loop in sight, in the spirit of llm.c's `train_gpt2.c`: a tiny synthetic
 * long-tailed image set, a ResNet-8, SGD, and the plain loop — forward, loss, backward, step —
 * with softmax cross-entropy or softmax EQL (SEQL). Prints the loss every 20 steps and the
 * many / medium / few-shot accuracy at the end; about 10 s on two CPU cores.
 *
 *     deno run -A examples/train_minimal.ts                  # SEQL, 200 steps
 *     deno run -A examples/train_minimal.ts --loss softmax   # the baseline, same data and seed
 *
 * In a project of your own, import from "jsr:@eql/eql" instead of "../mod.ts".
 *
 * @module
 */

import {
  AccuracyMeter,
  autoDevice,
  classCounts,
  lambdaForTailRatio,
  Random,
  resnet,
  seqlLoss,
  SGD,
  softmaxCrossEntropy,
  tensor,
} from "../mod.ts";
import { longTailedIndices, normalizeImages, subsetDataset, syntheticLongTailed } from "../data.ts";
import { choiceFlag, numberFlag, parseFlags, runCli } from "../src/cli.ts";

async function main(): Promise<void> {
  const flags = parseFlags(Deno.args, {
    loss: { type: "string", default: "seql" },
    steps: { type: "string", default: "200" },
    seed: { type: "string", default: "0" },
    help: { type: "boolean", default: false },
  });
  if (flags.help) {
    return console.log(
      "Usage: deno run -A examples/train_minimal.ts [--loss softmax|seql] " +
        "[--steps N (default 200)] [--seed N]",
    );
  }
  const loss = choiceFlag("loss", flags.loss, ["softmax", "seql"] as const);
  const steps = numberFlag("steps", flags.steps, { integer: true, min: 1, max: 100_000 });
  const seed = numberFlag("seed", flags.seed, { integer: true, min: 0, max: 2 ** 32 - 1 });

  // Data: a balanced synthetic set of 10 classes, cut to the CIFAR-LT profile (imbalance 50:
  // 200 images in the head class, 4 in the tail).
  const side = 16, batch = 64, numClasses = 10;
  const size = { height: side, width: side, testPerClass: 50, seed };
  const full = syntheticLongTailed({ numClasses, maxPerClass: 200, imbalanceFactor: 1, ...size });
  const keep = longTailedIndices(full.train.labels, numClasses, { imbalanceFactor: 50, seed });
  const train = subsetDataset(full.train, keep, side, side);
  const test = full.test; // balanced: 50 images per class
  const counts = classCounts(train.labels, numClasses);
  const frequencies = Array.from(counts, (n) => n / train.labels.length);
  const norm = { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] } as const;
  const trainX = normalizeImages(train.images, norm, side, side);
  const testX = normalizeImages(test.images, norm, side, side);
  const per = 3 * side * side, n = train.labels.length;
  console.log(`train: ${n} images, ${counts.join(" / ")} per class; test: ${test.labels.length}`);

  // Model, optimiser and the EQL threshold: λ puts the rarest classes, 5 % of the images, in
  // the tail (the paper recommends a tail ratio of 2–10 %).
  const device = await autoDevice();
  const model = resnet({ depth: 8, numClasses, device, seed });
  const opt = new SGD(model.parameters(), { momentum: 0.9, nesterov: true, weightDecay: 5e-4 });
  const lambda = lambdaForTailRatio(frequencies, 0.05).lambda;
  const peakLr = 0.1, rng = new Random(seed);
  console.log(`ResNet-8 on ${device.description}, ${loss}, λ = ${lambda.toPrecision(3)}`);

  let order = rng.permutation(n), at = 0;
  const x = new Float32Array(batch * per), y = new Int32Array(batch);
  const t0 = performance.now();
  for (let step = 0; step < steps; step++) {
    // Next batch: reshuffle after every pass over the data.
    if (at + batch > n) [order, at] = [rng.permutation(n), 0];
    for (let i = 0; i < batch; i++) {
      const k = order[at++];
      x.set(trainX.subarray(k * per, (k + 1) * per), i * per);
      y[i] = train.labels[k];
    }
    // Forward, loss, backward, step. `using` frees the input and the loss gradient at the end
    // of each iteration (on a GPU that is device memory).
    using input = tensor(x, [batch, 3, side, side], device);
    const logits = model.forward(input, true);
    using result = loss === "seql"
      ? seqlLoss(logits, y, { frequencies, lambda, gamma: 0.95, seed, counter: step })
      : softmaxCrossEntropy(logits, y);
    model.backwardParameters(result.grad);
    const lr = peakLr * 0.5 * (1 + Math.cos((Math.PI * step) / steps)); // cosine decay
    opt.step(lr);
    if (step % 20 === 0 || step === steps - 1) {
      const ms = (performance.now() - t0) / (step + 1);
      console.log(
        `step ${step + 1}/${steps}  loss ${result.loss.toFixed(4)}  lr ${lr.toFixed(4)}` +
          `  (${ms.toFixed(0)} ms/step)`,
      );
    }
  }

  // Evaluation on the balanced test set, with the running batch-norm statistics.
  const meter = new AccuracyMeter(numClasses);
  using testInput = tensor(testX, [test.labels.length, 3, side, side], device);
  meter.add(model.forward(testInput, false).toArray() as Float32Array, test.labels);
  const r = meter.report(counts);
  const pct = (v: number): string => `${(100 * v).toFixed(1)} %`;
  console.log(
    `${loss}: top-1 ${pct(r.top1)}, many ${pct(r.many)}, medium ${pct(r.medium)}, ` +
      `few ${pct(r.few)} (many > 100, medium 20–100, few < 20 training images)`,
  );
  opt.dispose();
  model.dispose();
  device.dispose();
}

if (import.meta.main) await runCli(main);
