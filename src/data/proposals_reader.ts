/**
 * Proposal features saved by a real detector, in a safetensors file, as a
 * {@linkcode ProposalSource} the box-head training reads like the synthetic data.
 *
 * ## File layout
 *
 * | tensor | dtype | shape | meaning |
 * |---|---|---|---|
 * | `features` | F32 | `[N, D]` | one flat feature vector per sampled proposal (e.g. D = 256·7·7) |
 * | `labels` | I32 | `[N]` | category in 0..C−1, or C for background |
 * | `image_ids` | I32 | `[N]` | the image each proposal belongs to (any non-negative ids) |
 * | `boxes` | F32 | `[N, 4]` | proposal boxes `[x1, y1, x2, y2]` in pixels |
 * | `gt_boxes` | F32 | `[N, 4]` | the matched ground-truth box (ignored for background rows) |
 * | `box_targets` | F32 | `[N, 4]` | instead of `boxes` + `gt_boxes`: already encoded deltas |
 * | `neg_category_ids` | I32 | `[M, 2]` | optional `(image_id, category)` pairs verified absent |
 * | `pos_category_ids` | I32 | `[M, 2]` | optional extra `(image_id, category)` pairs annotated |
 * | `category_image_counts` | I32 | `[C]` | optional training images per category (frequencies) |
 *
 * Metadata (`__metadata__`, strings): `num_categories` (C, required), `num_train_images`
 * (optional, the denominator of the frequencies), `box_weights` (optional `"wx,wy,ww,wh"`,
 * default `"10,10,5,5"`, used to encode `gt_boxes`).
 *
 * Images are ordered by ascending id; an image's positive set is the categories of its
 * foreground proposals plus its `pos_category_ids`. The whole file is read into memory.
 *
 * From PyTorch, with `feats` `[N, D]`, `labels`, `img`, `props`, `gts` tensors:
 *
 * ```python
 * from safetensors.torch import save_file
 * save_file({"features": feats.float().contiguous(), "labels": labels.int(),
 *            "image_ids": img.int(), "boxes": props.float(), "gt_boxes": gts.float()},
 *           "proposals.safetensors", metadata={"num_categories": "1230"})
 * ```
 *
 * @module
 */

import {
  CheckpointError,
  readSafetensors,
  type SafetensorsTensor,
  writeSafetensors,
} from "../checkpoint.ts";
import { BOX_WEIGHTS, encodeBoxes } from "../detection/boxes.ts";
import { DatasetError } from "./errors.ts";
import type { ProposalImage, ProposalSource } from "./proposals.ts";

/** A proposal file held in memory. */
export class ProposalFile implements ProposalSource {
  /** Number of categories C. */
  readonly numCategories: number;
  /** Feature width D. */
  readonly featureWidth: number;
  /** Number of images. */
  readonly numImages: number;
  /** The id of each image, ascending. */
  readonly imageIds: Int32Array;
  /** Training images per category, when the file holds them. */
  readonly imageCounts?: Int32Array;
  /** The denominator of the frequencies, when the file holds it. */
  readonly numTrainImages?: number;
  /** The file the data came from. */
  readonly path: string;
  #features: Float32Array;
  #labels: Int32Array;
  #targets: Float32Array;
  #rows: Int32Array[];
  #positive: Int32Array[];
  #negative: Int32Array[];

  /** Use {@linkcode readProposalFeatures}. */
  constructor(
    path: string,
    parts: {
      numCategories: number;
      featureWidth: number;
      features: Float32Array;
      labels: Int32Array;
      targets: Float32Array;
      imageIds: Int32Array;
      rows: Int32Array[];
      positive: Int32Array[];
      negative: Int32Array[];
      imageCounts?: Int32Array;
      numTrainImages?: number;
    },
  ) {
    this.path = path;
    this.numCategories = parts.numCategories;
    this.featureWidth = parts.featureWidth;
    this.numImages = parts.imageIds.length;
    this.imageIds = parts.imageIds;
    this.imageCounts = parts.imageCounts;
    this.numTrainImages = parts.numTrainImages;
    this.#features = parts.features;
    this.#labels = parts.labels;
    this.#targets = parts.targets;
    this.#rows = parts.rows;
    this.#positive = parts.positive;
    this.#negative = parts.negative;
  }

  /**
   * The proposals of one image (copies).
   *
   * @param index Image index in 0..numImages−1 (images sorted by id).
   * @returns Its features, labels, box targets and category sets.
   * @throws {RangeError} When the index is out of range.
   */
  image(index: number): ProposalImage {
    if (!Number.isInteger(index) || index < 0 || index >= this.numImages) {
      throw new RangeError(
        `index must be an image index in 0..${this.numImages - 1}, got ${index}`,
      );
    }
    const rows = this.#rows[index], d = this.featureWidth, p = rows.length;
    const features = new Float32Array(p * d), labels = new Int32Array(p);
    const boxTargets = new Float32Array(p * 4);
    for (let k = 0; k < p; k++) {
      const r = rows[k];
      features.set(this.#features.subarray(r * d, (r + 1) * d), k * d);
      labels[k] = this.#labels[r];
      boxTargets.set(this.#targets.subarray(4 * r, 4 * r + 4), 4 * k);
    }
    return {
      features,
      labels,
      boxTargets,
      positive: this.#positive[index].slice(),
      negative: this.#negative[index].slice(),
    };
  }
}

function need(
  path: string,
  tensors: Map<string, SafetensorsTensor>,
  name: string,
  dtype: "F32" | "I32",
  shape: (number | undefined)[],
): SafetensorsTensor {
  const t = tensors.get(name);
  if (t === undefined) throw new DatasetError(path, `missing tensor "${name}"`);
  const want = `[${shape.map((s) => s ?? "·").join(", ")}]`;
  if (t.dtype !== dtype) {
    throw new DatasetError(path, `tensor "${name}" must be ${dtype} ${want}, got ${t.dtype}`);
  }
  if (
    t.shape.length !== shape.length || shape.some((s, i) => s !== undefined && t.shape[i] !== s)
  ) {
    throw new DatasetError(
      path,
      `tensor "${name}" must have shape ${want}, got [${t.shape.join(", ")}]`,
    );
  }
  return t;
}

function pairs(
  path: string,
  tensors: Map<string, SafetensorsTensor>,
  name: string,
  c: number,
  index: Map<number, number>,
  into: Set<number>[],
): void {
  if (!tensors.has(name)) return;
  const data = need(path, tensors, name, "I32", [undefined, 2]).data as Int32Array;
  for (let k = 0; k < data.length / 2; k++) {
    const id = data[2 * k], j = data[2 * k + 1];
    const m = index.get(id);
    if (m === undefined) {
      throw new DatasetError(path, `${name}[${k}] names image ${id}, which has no proposals`);
    }
    if (!(j >= 0 && j < c)) {
      throw new DatasetError(path, `${name}[${k}] has category ${j}, expected 0..${c - 1}`);
    }
    into[m].add(j);
  }
}

function parseCount(
  path: string,
  metadata: Record<string, string>,
  key: string,
): number | undefined {
  const v = metadata[key];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < 1) {
    throw new DatasetError(
      path,
      `metadata "${key}" must be a positive integer, got ${JSON.stringify(v)}`,
    );
  }
  return n;
}

/**
 * Reads a proposal-feature file (layout in the module documentation).
 *
 * @param path The safetensors file.
 * @returns The images, their proposals and category sets.
 * @throws {DatasetError} When the file is missing, not valid safetensors, or a tensor, metadata
 *   entry or label does not follow the layout; the message names the file and the problem.
 *
 * @example
 * ```ts
 * import { LongTailProposals } from "@eql/eql/detection";
 * import { readProposalFeatures, writeProposalFeatures } from "@eql/eql/detection";
 * const path = await Deno.makeTempFile({ suffix: ".safetensors" });
 * const small = { groupSizes: [10, 10, 4], trainImages: 120, valImages: 8 } as const;
 * await writeProposalFeatures(path, new LongTailProposals({ ...small, frequentMaxImages: 110 }).val);
 * const data = await readProposalFeatures(path);
 * console.log(data.numImages, data.featureWidth, data.image(0).labels.length); // 8 256 512
 * await Deno.remove(path);
 * ```
 */
export async function readProposalFeatures(path: string): Promise<ProposalFile> {
  let contents;
  try {
    contents = await readSafetensors(path);
  } catch (e) {
    if (e instanceof CheckpointError) {
      throw new DatasetError(
        path,
        e.message.startsWith(`${path}: `) ? e.message.slice(path.length + 2) : e.message,
        {
          cause: e,
        },
      );
    }
    throw e;
  }
  const { tensors, metadata } = contents;
  const c = parseCount(path, metadata, "num_categories");
  if (c === undefined) throw new DatasetError(path, `missing metadata "num_categories"`);
  const numTrainImages = parseCount(path, metadata, "num_train_images");
  let weights: [number, number, number, number] = [...BOX_WEIGHTS];
  if (metadata.box_weights !== undefined) {
    const w = metadata.box_weights.split(",").map(Number);
    if (w.length !== 4 || w.some((v) => !(v > 0 && Number.isFinite(v)))) {
      throw new DatasetError(
        path,
        `metadata "box_weights" must be four positive numbers "wx,wy,ww,wh", got ${
          JSON.stringify(metadata.box_weights)
        }`,
      );
    }
    weights = w as [number, number, number, number];
  }

  const feat = need(path, tensors, "features", "F32", [undefined, undefined]);
  const [n, d] = feat.shape;
  if (n < 1 || d < 1) {
    throw new DatasetError(path, `tensor "features" must be non-empty, got [${n}, ${d}]`);
  }
  const labels = need(path, tensors, "labels", "I32", [n]).data as Int32Array;
  const ids = need(path, tensors, "image_ids", "I32", [n]).data as Int32Array;
  for (let i = 0; i < n; i++) {
    if (!(labels[i] >= 0 && labels[i] <= c)) {
      throw new DatasetError(
        path,
        `labels[${i}] is ${labels[i]}, expected 0..${c} (${c} = background)`,
      );
    }
    if (ids[i] < 0) {
      throw new DatasetError(path, `image_ids[${i}] is ${ids[i]}, expected an id ≥ 0`);
    }
  }
  const features = feat.data as Float32Array;
  for (let k = 0; k < features.length; k++) {
    if (!Number.isFinite(features[k])) {
      throw new DatasetError(
        path,
        `features[${Math.floor(k / d)}, ${k % d}] is ${features[k]}, expected a finite value`,
      );
    }
  }

  let targets: Float32Array;
  if (tensors.has("box_targets")) {
    if (tensors.has("boxes") || tensors.has("gt_boxes")) {
      throw new DatasetError(
        path,
        `holds both "box_targets" and "boxes"/"gt_boxes"; keep one form`,
      );
    }
    targets = (need(path, tensors, "box_targets", "F32", [n, 4]).data as Float32Array).slice();
    for (let i = 0; i < n; i++) if (labels[i] === c) targets.fill(0, 4 * i, 4 * i + 4);
  } else {
    if (!tensors.has("boxes") && !tensors.has("gt_boxes")) {
      throw new DatasetError(path, `missing tensor "boxes" (with "gt_boxes"), or "box_targets"`);
    }
    const boxes = need(path, tensors, "boxes", "F32", [n, 4]).data as Float32Array;
    const gts = need(path, tensors, "gt_boxes", "F32", [n, 4]).data as Float32Array;
    // Encode foreground rows only: background rows carry no (or a meaningless) matched box.
    const fg: number[] = [];
    for (let i = 0; i < n; i++) if (labels[i] < c) fg.push(i);
    const p = new Float32Array(4 * fg.length), g = new Float32Array(4 * fg.length);
    fg.forEach((i, k) => {
      p.set(boxes.subarray(4 * i, 4 * i + 4), 4 * k);
      g.set(gts.subarray(4 * i, 4 * i + 4), 4 * k);
    });
    let enc: Float32Array;
    try {
      enc = encodeBoxes(p, g, weights);
    } catch (e) {
      const m = /^(proposals|targets)\[(\d+)\](.*)$/.exec((e as Error).message);
      if (m === null) throw e;
      const which = m[1] === "proposals" ? "boxes" : "gt_boxes";
      throw new DatasetError(path, `${which}[${fg[Number(m[2])]}]${m[3]}`, { cause: e });
    }
    targets = new Float32Array(4 * n);
    fg.forEach((i, k) => targets.set(enc.subarray(4 * k, 4 * k + 4), 4 * i));
  }

  let imageCounts: Int32Array | undefined;
  if (tensors.has("category_image_counts")) {
    imageCounts = need(path, tensors, "category_image_counts", "I32", [c]).data as Int32Array;
    const bad = imageCounts.findIndex((v) => v < 0);
    if (bad >= 0) {
      throw new DatasetError(
        path,
        `category_image_counts[${bad}] is ${imageCounts[bad]}, expected ≥ 0`,
      );
    }
    if (numTrainImages !== undefined) {
      const over = imageCounts.findIndex((v) => v > numTrainImages);
      if (over >= 0) {
        throw new DatasetError(
          path,
          `category_image_counts[${over}] is ${
            imageCounts[over]
          }, more than num_train_images (${numTrainImages})`,
        );
      }
    }
  }

  // Group rows by image id, images in ascending id order.
  const imageIds = Int32Array.from(new Set(ids)).sort();
  const index = new Map<number, number>();
  imageIds.forEach((id, m) => index.set(id, m));
  const rowLists: number[][] = imageIds.length > 0 ? Array.from(imageIds, () => []) : [];
  for (let i = 0; i < n; i++) rowLists[index.get(ids[i])!].push(i);
  const positive = Array.from(imageIds, () => new Set<number>());
  const negative = Array.from(imageIds, () => new Set<number>());
  for (let i = 0; i < n; i++) if (labels[i] < c) positive[index.get(ids[i])!].add(labels[i]);
  pairs(path, tensors, "pos_category_ids", c, index, positive);
  pairs(path, tensors, "neg_category_ids", c, index, negative);
  for (let m = 0; m < imageIds.length; m++) {
    for (const j of negative[m]) {
      if (positive[m].has(j)) {
        throw new DatasetError(
          path,
          `image ${imageIds[m]} lists category ${j} as verified absent but it is annotated there`,
        );
      }
    }
  }
  const sorted = (s: Set<number>): Int32Array => Int32Array.from(s).sort();
  return new ProposalFile(path, {
    numCategories: c,
    featureWidth: d,
    features,
    labels,
    targets,
    imageIds,
    rows: rowLists.map((r) => Int32Array.from(r)),
    positive: positive.map(sorted),
    negative: negative.map(sorted),
    imageCounts,
    numTrainImages,
  });
}

/**
 * Writes proposals in the layout {@linkcode readProposalFeatures} reads, with encoded
 * `box_targets` (e.g. to save a generated set, or a subset of a larger file). The file is written
 * to a temporary name and renamed.
 *
 * @param path Destination file.
 * @param source The images to write (all of them, image ids 0..numImages−1).
 * @param extra Optional category image counts and training-image count to store.
 * @throws {DatasetError} When the file cannot be written.
 *
 * @example
 * ```ts
 * import { LongTailProposals } from "@eql/eql/detection";
 * import { writeProposalFeatures } from "@eql/eql/detection";
 * const data = new LongTailProposals({ seed: 3, valImages: 20 });
 * const path = await Deno.makeTempFile({ suffix: ".safetensors" });
 * await writeProposalFeatures(path, data.val, { imageCounts: data.imageCounts });
 * await Deno.remove(path);
 * ```
 */
export async function writeProposalFeatures(
  path: string,
  source: ProposalSource,
  extra: { imageCounts?: Int32Array; numTrainImages?: number } = {},
): Promise<void> {
  const d = source.featureWidth, c = source.numCategories;
  const images = Array.from({ length: source.numImages }, (_, m) => source.image(m));
  const n = images.reduce((a, im) => a + im.labels.length, 0);
  const features = new Float32Array(n * d), labels = new Int32Array(n), ids = new Int32Array(n);
  const targets = new Float32Array(n * 4);
  const pos: number[] = [], neg: number[] = [];
  let r = 0;
  images.forEach((im, m) => {
    const p = im.labels.length;
    features.set(im.features, r * d);
    labels.set(im.labels, r);
    targets.set(im.boxTargets, r * 4);
    ids.fill(m, r, r + p);
    r += p;
    for (const j of im.positive) if (!im.labels.includes(j)) pos.push(m, j);
    for (const j of im.negative) neg.push(m, j);
  });
  const tensors = new Map<string, SafetensorsTensor>([
    ["features", { dtype: "F32", shape: [n, d], data: features }],
    ["labels", { dtype: "I32", shape: [n], data: labels }],
    ["image_ids", { dtype: "I32", shape: [n], data: ids }],
    ["box_targets", { dtype: "F32", shape: [n, 4], data: targets }],
    ["pos_category_ids", { dtype: "I32", shape: [pos.length / 2, 2], data: Int32Array.from(pos) }],
    ["neg_category_ids", { dtype: "I32", shape: [neg.length / 2, 2], data: Int32Array.from(neg) }],
  ]);
  if (extra.imageCounts !== undefined) {
    if (extra.imageCounts.length !== c) {
      throw new RangeError(
        `extra.imageCounts must hold one count per category (${c}), got ${extra.imageCounts.length}`,
      );
    }
    tensors.set("category_image_counts", { dtype: "I32", shape: [c], data: extra.imageCounts });
  }
  const metadata: Record<string, string> = { num_categories: String(c) };
  if (extra.numTrainImages !== undefined) metadata.num_train_images = String(extra.numTrainImages);
  try {
    await writeSafetensors(path, tensors, metadata);
  } catch (e) {
    if (e instanceof CheckpointError) throw new DatasetError(path, e.message, { cause: e });
    throw e;
  }
}
