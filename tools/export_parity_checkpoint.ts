/**
 * Writes the files `tools/pytorch_resnet_bench.py --check-checkpoint` compares against PyTorch:
 *
 * - `model.safetensors`: a ResNet checkpoint whose batch-norm statistics have moved (three
 *   training-mode passes over random images);
 * - `io.safetensors`: a batch of 8 images and labels, the model's evaluation-mode logits on them
 *   (from the saved state), then its training-mode logits, softmax cross-entropy and every
 *   parameter gradient (`grad.{name}`) from one training-mode forward and backward.
 *
 * Run: `deno run -A tools/export_parity_checkpoint.ts OUT_DIR [depth] [classes]`.
 *
 * @module
 */

import { type SafetensorsTensor, saveCheckpoint, writeSafetensors } from "../src/checkpoint.ts";
import { resnet } from "../src/nn/resnet.ts";
import { tensor } from "../src/tensor.ts";
import { Random } from "../src/random.ts";
import { softmaxCrossEntropy } from "../src/losses/softmax_cross_entropy.ts";

const [dir, depthArg = "32", classesArg = "100"] = Deno.args;
if (!dir) {
  console.error("usage: export_parity_checkpoint.ts OUT_DIR [depth] [classes]");
  Deno.exit(2);
}
const depth = Number(depthArg), numClasses = Number(classesArg);
const net = resnet({ depth, numClasses, seed: 7 });
const rng = new Random(8);
const images = (n: number): Float32Array =>
  Float32Array.from({ length: n * 3 * 32 * 32 }, () => rng.normal());
for (let i = 0; i < 3; i++) net.forward(tensor(images(16), [16, 3, 32, 32]), true);
const probe = images(8);
const labels = Int32Array.from({ length: 8 }, () => rng.integer(0, numClasses));
const x = tensor(probe, [8, 3, 32, 32]);
const evalLogits = net.logits(x).toArray() as Float32Array;
await Deno.mkdir(dir, { recursive: true });
await saveCheckpoint(`${dir}/model.safetensors`, net, { source: "export_parity_checkpoint" });

const z = net.forward(x, true);
const trainLogits = z.toArray() as Float32Array;
const { loss, grad } = softmaxCrossEntropy(z, labels);
net.backward(grad);
const io = new Map<string, SafetensorsTensor>([
  ["images", { dtype: "F32", shape: [8, 3, 32, 32], data: probe }],
  ["labels", { dtype: "I32", shape: [8], data: labels }],
  ["logits", { dtype: "F32", shape: [8, numClasses], data: evalLogits }],
  ["train_logits", { dtype: "F32", shape: [8, numClasses], data: trainLogits }],
  ["loss", { dtype: "F32", shape: [], data: new Float32Array([loss]) }],
]);
for (const p of net.parameters()) {
  io.set(`grad.${p.name}`, {
    dtype: "F32",
    shape: [...p.grad.shape],
    data: p.grad.toArray() as Float32Array,
  });
}
await writeSafetensors(`${dir}/io.safetensors`, io);
console.log(`wrote ${dir}/model.safetensors and ${dir}/io.safetensors (loss ${loss})`);
