/**
 * Region-proposal training data for a detector's box head: per image, a fixed number of sampled
 * proposals, each with a feature vector (what RoI pooling and flattening would give), a label in
 * 0..C (C = background), box-regression targets, plus the image's LVIS-style positive and
 * negative category sets.
 *
 * {@linkcode LongTailProposals} generates such data with LVIS v0.5's long tail: C = 1230
 * categories whose training image counts follow LVIS v0.5's groups (454 rare with 1–10 images,
 * 461 common with 11–100, 315 frequent with more), 512 proposals per training image of which a
 * quarter are foreground (1:3 foreground:background, as Detectron2 samples them). Everything is
 * a pure function of the seed; images are generated on demand, so any image can be drawn in any
 * order.
 *
 * ## The mechanism the data is built to have
 *
 * The EQL paper's argument is about where a rare classifier's discouraging gradient comes from.
 * In a real detector the foreground proposals of other categories are hard negatives for a rare
 * classifier: they share "objectness" and, within a super-category, appearance with its few
 * positives, so its logit on them stays high and their negative gradients keep pushing it down,
 * its own positives included. Background proposals are mostly easy: after a little training
 * every classifier gives them a near-zero probability, so they add little gradient. Under
 * sigmoid cross-entropy the rare classifiers' negative gradient therefore comes mostly from
 * other categories' foreground, and their scores on their own objects end up below the
 * detector's score threshold (1e-4) or outside the 300 detections kept per image. EQL drops
 * exactly those foreground negatives for rare categories. The choices below make each part
 * hold, and `examples/box_head.ts` measures it (the share of the negative Σ|∂L/∂z| from
 * foreground rows, per group):
 *
 * - **Shared structure makes other objects hard negatives.** A category's prototype is
 *   `μ_j = a_o·o + a_s·u_s(j) + a_c·v_j`: a direction `o` shared by all objects, one `u_s` per
 *   super-category (40 of them, assigned at random, so rare categories share theirs with
 *   frequent ones) and the category's own `v_j`.
 * - **Rare categories are learnable in principle.** The category direction dominates the
 *   prototype (`a_c = 3` against `a_o = 0.6`, `a_s = 0.8`, noise σ = 1 per coordinate), so a
 *   handful of positives defines the category: a rare classifier can rank its validation
 *   objects above other objects when the shared part of its gradient does not bury them. (With
 *   the earlier `a_c = 0.9`, about the size of the shared part, rare classifiers reached
 *   0.1–0.8 % AP on their validation objects under either loss even with no score threshold and
 *   no cap.)
 * - **Background is mostly easy.** A background proposal is a background direction `g_b`
 *   (16 of them) plus noise; 30 % of them overlap an object of the image with a weight
 *   `r ~ U(0.2, 0.5)` (a box with IoU below 0.5 holds less than half of the object). With 70 %
 *   of background proposals carrying up to 0.9 of an object, as before, background was the
 *   hard part and made up about two thirds of the rare classifiers' negative gradient.
 * - **Validation images hold about as many objects as LVIS images.** The training split must be
 *   dense (LVIS's image counts on 750 images put about 120 categories in each), but the
 *   evaluation's 300-detection cap is meant for LVIS images with about a dozen objects among
 *   the proposals. Validation images therefore keep 512 proposals (128 foreground) but hold
 *   about 11 categories each: category j appears in `max(1, round(n_j · valShare))` of them,
 *   `valShare = 0.02`, so each rare and common category in one image and a frequent one in 2–8.
 *   On dense validation images (about 120 categories among 512 proposals, as before) AP_r
 *   stayed at 0.0–0.1 % for both losses while the same classifiers reached 7–8 % on their rare
 *   objects with no threshold and no cap.
 *
 * ## How the data is drawn
 *
 * - Image counts `n_j`: log-uniform integers in each group's range (rare 1–10, common 11–100,
 *   frequent 101–`frequentMaxImages`), shuffled over the category indices. The validation split
 *   gives category j `max(1, round(n_j · valShare))` images, so that every category can be
 *   evaluated.
 * - Which images: categories, largest counts first, go to their `n_j` least-loaded images (ties
 *   broken at random), which keeps the number of categories per image within one of the mean.
 *   Each category present gets one foreground proposal; the rest of the image's foreground
 *   budget goes to its categories uniformly at random.
 * - Negative sets (categories verified absent, LVIS `neg_category_ids`): for each category, as
 *   many images not containing it as it has positive images, drawn at random.
 * - Features, for width D, from fixed Gaussian directions (entries N(0, 1)): an objectness
 *   direction `o` shared by all objects, one direction `u_s` per super-category (categories are
 *   spread over super-categories at random, so rare ones share theirs with frequent ones), one
 *   direction `v_j` per category, `B` background directions `g_b` and a 4 × D matrix `A` that
 *   embeds the box offsets. The prototype of category j is `μ_j = a_o·o + a_s·u_s(j) + a_c·v_j`.
 *   A foreground proposal of category j with overlap quality `q ~ U(0.5, 1)` and box target
 *   `t ~ N(0, s(q)²)` per coordinate, `s(q) = 2(1 − q) + 0.1`, is
 *   `h = q·μ_j + c·a_g·g_b + a_t·Aᵀt + σ·ξ` with `ξ ~ N(0, I)`, a random background direction
 *   b and `c ~ U(contextMin, 1)` (the background inside an object's box). A background proposal is
 *   `h = a_g·g_b + r·μ_k + a_t·Aᵀt' + σ·ξ`, where with probability `partialObject` it overlaps an
 *   object k of the image with `r ~ U(partialMin, partialMax)` (and `r = 0` otherwise), and
 *   `t' ~ N(0, s'²)`, `s' ~ U(0.1, 1.1)`, are offsets that carry no target: background boxes are
 *   misaligned too, so the box embedding does not give foreground away.
 * - Category frequencies `f_j` are image counts over a reference number of training images,
 *   LVIS v0.5's 56,740 by default: the synthetic set keeps LVIS's image counts but has far fewer
 *   images, and measuring frequencies on LVIS's scale makes the paper's λ = 1.76e-3 select the
 *   same categories (image count ≤ 99) as on LVIS v0.5.
 * - A consequence of keeping LVIS's image counts on far fewer images: the training images are
 *   dense. With the defaults each holds about 86 categories (120 at 700 images; LVIS images
 *   hold a handful), about 1.5 foreground proposals per category, and a category with n images
 *   is in n/1000 of the training images rather than n/56,740. So a rare category's classifier
 *   sees its positives a handful of times in an epoch, where a real detector sees each of its
 *   objects in dozens of proposals over a dozen epochs; and with λ = 1.76e-3 the tail ratio
 *   TR(λ) is about 23 % (frequent counts stop at `frequentMaxImages`), above the 2–10 % the
 *   paper recommends.
 *
 * @module
 */

import { Random } from "../random.ts";
import { categoryFrequencies } from "../longtail/frequency.ts";
import { type LvisGroup, lvisGroups } from "../longtail/groups.ts";

/** One image's proposals. */
export interface ProposalImage {
  /** `[P, D]` proposal features, row-major. */
  features: Float32Array;
  /** `[P]` labels in 0..C, C meaning background. */
  labels: Int32Array;
  /** `[P, 4]` box-regression targets `(dx, dy, dw, dh)`; zeros for background rows. */
  boxTargets: Float32Array;
  /** Categories annotated in the image (LVIS positive set), ascending. */
  positive: Int32Array;
  /** Categories verified absent from the image (LVIS negative set), ascending. */
  negative: Int32Array;
}

/** A set of images with proposals: generated, or read from a file. */
export interface ProposalSource {
  /** Number of categories C. */
  readonly numCategories: number;
  /** Feature width D. */
  readonly featureWidth: number;
  /** Number of images. */
  readonly numImages: number;
  /**
   * The proposals of one image.
   *
   * @param index Image index in 0..numImages−1.
   */
  image(index: number): ProposalImage;
  /**
   * The categories annotated in one image (its positive set), without drawing its features;
   * optional, for samplers that need only the labels.
   *
   * @param index Image index in 0..numImages−1.
   */
  positiveCategories?(index: number): Int32Array;
}

/** Several images' proposals stacked into one batch. */
export interface ProposalBatch {
  /** `[R, D]` features of all rows. */
  features: Float32Array;
  /** `[R]` labels in 0..C. */
  labels: Int32Array;
  /** `[R, 4]` box targets. */
  boxTargets: Float32Array;
  /** `[R]` index of each row's image within the batch (0..B−1). */
  imageOfRow: Int32Array;
  /** Per batch image: its positive categories. */
  positive: Int32Array[];
  /** Per batch image: its negative categories. */
  negative: Int32Array[];
}

/** LVIS v0.5's number of training images (images with at least one annotation). */
export const LVIS_V05_TRAIN_IMAGES = 56740;

/** Options of {@linkcode LongTailProposals}. */
export interface LongTailProposalOptions {
  /** Seed of everything drawn (default 0). */
  seed?: number;
  /** Categories per group `[rare, common, frequent]` (default LVIS v0.5's `[454, 461, 315]`). */
  groupSizes?: readonly [number, number, number];
  /** Training images (default 1000). */
  trainImages?: number;
  /** Validation images (default 200). */
  valImages?: number;
  /** Largest image count of a frequent category (default 400; at most `trainImages`). */
  frequentMaxImages?: number;
  /** Proposals per training image P (default 512). */
  proposalsPerImage?: number;
  /**
   * Proposals per validation image (default 512, as in training; 128 foreground over about 11
   * categories, so that validation images hold about as many objects as LVIS images and the
   * 300-detection cap binds as it does there).
   */
  valProposalsPerImage?: number;
  /**
   * Validation images per category relative to training images: category j gets
   * `max(1, round(n_j · valShare))` (default 0.02: every rare and common category once, a
   * frequent one 2–8 times).
   */
  valShare?: number;
  /** Foreground share of the proposals (default 0.25, i.e. 1:3). */
  foregroundFraction?: number;
  /** Feature width D (default 256; 12544 = 256·7·7 is what a real RoI head sees). */
  featureWidth?: number;
  /** Number of super-categories (default 40). */
  superCategories?: number;
  /** Number of background directions B (default 16). */
  backgroundModes?: number;
  /** Weight `a_o` of the shared objectness direction (default 0.6). */
  objectness?: number;
  /** Weight `a_s` of the super-category direction (default 0.8). */
  superCategoryWeight?: number;
  /** Weight `a_c` of the category's own direction (default 3). */
  categoryWeight?: number;
  /** Weight `a_t` of the box-offset embedding (default 0.5). */
  boxWeight?: number;
  /** Weight `a_g` of the background direction (default 1). */
  backgroundWeight?: number;
  /** Smallest share `c` of the background direction in a foreground proposal (default 0.5). */
  contextMin?: number;
  /** Noise standard deviation σ (default 1). */
  noise?: number;
  /** Probability that a background proposal overlaps an object of the image (default 0.3). */
  partialObject?: number;
  /** Smallest overlap weight r of such a proposal (default 0.2). */
  partialMin?: number;
  /** Largest overlap weight r (default 0.5: a box with IoU below 0.5 holds less than half of the object). */
  partialMax?: number;
}

/** Fully resolved generator settings. */
type Settings = Required<LongTailProposalOptions>;

const DEFAULTS: Settings = {
  seed: 0,
  groupSizes: [454, 461, 315],
  trainImages: 1000,
  valImages: 200,
  frequentMaxImages: 400,
  proposalsPerImage: 512,
  valProposalsPerImage: 512,
  valShare: 0.02,
  foregroundFraction: 0.25,
  featureWidth: 256,
  superCategories: 40,
  backgroundModes: 16,
  objectness: 0.6,
  superCategoryWeight: 0.8,
  categoryWeight: 3,
  boxWeight: 0.5,
  backgroundWeight: 1,
  contextMin: 0.5,
  noise: 1,
  partialObject: 0.3,
  partialMin: 0.2,
  partialMax: 0.5,
};

function positiveInteger(name: string, v: unknown, min = 1): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) {
    throw new RangeError(`${name} must be an integer ≥ ${min}, got ${String(v)}`);
  }
  return v;
}

function finiteNonNegative(name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
    throw new RangeError(`${name} must be a finite number ≥ 0, got ${String(v)}`);
  }
  return v;
}

function resolve(options: LongTailProposalOptions): Settings {
  if (options === null || typeof options !== "object") {
    throw new TypeError(`options must be an object, got ${String(options)}`);
  }
  const s: Settings = { ...DEFAULTS };
  for (const [k, v] of Object.entries(options)) {
    if (!(k in DEFAULTS)) throw new TypeError(`options.${k} is not a known option`);
    if (v !== undefined) (s as Record<string, unknown>)[k] = v;
  }
  s.seed = positiveInteger("seed", s.seed, 0);
  if (!Array.isArray(s.groupSizes) || s.groupSizes.length !== 3) {
    throw new RangeError(
      `groupSizes must be [rare, common, frequent], got ${JSON.stringify(s.groupSizes)}`,
    );
  }
  s.groupSizes.forEach((g, i) => positiveInteger(`groupSizes[${i}]`, g, 0));
  if (s.groupSizes[0] + s.groupSizes[1] + s.groupSizes[2] < 1) {
    throw new RangeError(`groupSizes must hold at least one category, got [${s.groupSizes}]`);
  }
  positiveInteger("trainImages", s.trainImages);
  positiveInteger("valImages", s.valImages);
  positiveInteger("frequentMaxImages", s.frequentMaxImages, 101);
  if (s.frequentMaxImages > s.trainImages) {
    throw new RangeError(
      `frequentMaxImages must be at most trainImages (${s.trainImages}), got ${s.frequentMaxImages}`,
    );
  }
  if (s.groupSizes[1] > 0 && s.trainImages < 100 || s.groupSizes[2] > 0 && s.trainImages < 101) {
    throw new RangeError(
      `trainImages must be at least ${
        s.groupSizes[2] > 0 ? 101 : 100
      } to hold the common and frequent image counts, got ${s.trainImages}`,
    );
  }
  positiveInteger("proposalsPerImage", s.proposalsPerImage, 2);
  positiveInteger("valProposalsPerImage", s.valProposalsPerImage, 2);
  if (!(typeof s.valShare === "number" && s.valShare > 0 && s.valShare <= 1)) {
    throw new RangeError(`valShare must lie in (0, 1], got ${s.valShare}`);
  }
  if (!(s.foregroundFraction > 0 && s.foregroundFraction < 1)) {
    throw new RangeError(`foregroundFraction must lie in (0, 1), got ${s.foregroundFraction}`);
  }
  positiveInteger("featureWidth", s.featureWidth);
  positiveInteger("superCategories", s.superCategories);
  positiveInteger("backgroundModes", s.backgroundModes);
  for (
    const k of [
      "objectness",
      "superCategoryWeight",
      "categoryWeight",
      "boxWeight",
      "backgroundWeight",
      "contextMin",
      "noise",
      "partialMin",
      "partialMax",
    ] as const
  ) finiteNonNegative(k, s[k]);
  if (s.contextMin > 1) throw new RangeError(`contextMin must lie in [0, 1], got ${s.contextMin}`);
  if (!(s.partialObject >= 0 && s.partialObject <= 1)) {
    throw new RangeError(`partialObject must lie in [0, 1], got ${s.partialObject}`);
  }
  if (s.partialMin > s.partialMax) {
    throw new RangeError(
      `partialMin must not exceed partialMax (${s.partialMax}), got ${s.partialMin}`,
    );
  }
  return s;
}

/** Murmur3's 32-bit finaliser. */
function fmix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** The seed of stream `stream` (0: layout, 1: training images, 2: validation images), item `index`. */
function streamSeed(seed: number, stream: number, index: number): number {
  let h = fmix32((seed >>> 0) + 0x9e3779b9);
  h = fmix32(h ^ Math.floor(seed / 4294967296));
  h = fmix32(h ^ index);
  return h + 4294967296 * stream;
}

function gaussian(rng: Random, n: number): Float32Array {
  return rng.fillNormal(new Float32Array(n));
}

/** Log-uniform integer in [lo, hi]. */
function logUniformInt(rng: Random, lo: number, hi: number): number {
  const v = Math.floor(Math.exp(rng.uniform(Math.log(lo), Math.log(hi + 1))));
  return Math.min(hi, Math.max(lo, v));
}

/** One split: which categories each image holds, and its negative sets. */
interface Layout {
  categories: Int32Array[];
  negative: Int32Array[];
}

/**
 * Gives category j `counts[j]` distinct images, largest counts first, each time to the
 * least-loaded images (random tie-break), then draws negative sets.
 */
function layout(rng: Random, counts: Int32Array, numImages: number, capacity: number): Layout {
  const c = counts.length;
  let total = 0;
  for (let j = 0; j < c; j++) total += counts[j];
  if (total > capacity * numImages) {
    throw new RangeError(
      `the image counts need ${total} (image, category) pairs but ${numImages} images hold at most ${
        capacity * numImages
      } (one foreground proposal each, ${capacity} per image): raise the number of images or lower frequentMaxImages`,
    );
  }
  if (total < numImages) {
    throw new RangeError(
      `the image counts give only ${total} (image, category) pairs for ${numImages} images: every image needs a category`,
    );
  }
  const tie = new Float64Array(c);
  for (let j = 0; j < c; j++) tie[j] = rng.uniform();
  const order = Array.from({ length: c }, (_, j) => j)
    .sort((a, b) => counts[b] - counts[a] || tie[a] - tie[b]);
  const load = new Int32Array(numImages);
  const members: number[][] = Array.from({ length: numImages }, () => []);
  const present = new Uint8Array(numImages * c);
  const images = Array.from({ length: numImages }, (_, i) => i);
  const key = new Float64Array(numImages);
  for (const j of order) {
    for (let i = 0; i < numImages; i++) key[i] = load[i] + rng.uniform() * 0.5;
    images.sort((a, b) => key[a] - key[b]);
    for (let t = 0; t < counts[j]; t++) {
      const i = images[t];
      load[i]++;
      members[i].push(j);
      present[i * c + j] = 1;
    }
  }
  const negatives: number[][] = Array.from({ length: numImages }, () => []);
  const pool = new Int32Array(numImages);
  for (let j = 0; j < c; j++) {
    let m = 0;
    for (let i = 0; i < numImages; i++) if (present[i * c + j] === 0) pool[m++] = i;
    const want = Math.min(counts[j], m);
    // Partial Fisher–Yates: the first `want` entries become a uniform sample.
    for (let t = 0; t < want; t++) {
      const u = rng.integer(t, m);
      const x = pool[t];
      pool[t] = pool[u];
      pool[u] = x;
      negatives[pool[t]].push(j);
    }
  }
  const sorted = (a: number[]): Int32Array => Int32Array.from(a).sort();
  return { categories: members.map(sorted), negative: negatives.map(sorted) };
}

/** The directions all features are built from. */
interface Directions {
  objectness: Float32Array;
  superOf: Int32Array;
  superDirs: Float32Array;
  categoryDirs: Float32Array;
  backgroundDirs: Float32Array;
  boxEmbedding: Float32Array;
  prototypes: Float32Array;
}

/** One generated split. */
class GeneratedSplit implements ProposalSource {
  readonly numCategories: number;
  readonly featureWidth: number;
  readonly numImages: number;
  #s: Settings;
  #dirs: Directions;
  #layout: Layout;
  #stream: number;
  #proposals: number;

  constructor(
    s: Settings,
    dirs: Directions,
    lay: Layout,
    c: number,
    stream: number,
    proposals: number,
  ) {
    this.#proposals = proposals;
    this.numCategories = c;
    this.featureWidth = s.featureWidth;
    this.numImages = lay.categories.length;
    this.#s = s;
    this.#dirs = dirs;
    this.#layout = lay;
    this.#stream = stream;
  }

  positiveCategories(index: number): Int32Array {
    this.#check(index);
    return this.#layout.categories[index].slice();
  }

  #check(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.numImages) {
      throw new RangeError(
        `index must be an image index in 0..${this.numImages - 1}, got ${index}`,
      );
    }
  }

  image(index: number): ProposalImage {
    if (!Number.isInteger(index) || index < 0 || index >= this.numImages) {
      throw new RangeError(
        `index must be an image index in 0..${this.numImages - 1}, got ${index}`,
      );
    }
    const s = this.#s, d = this.featureWidth, c = this.numCategories, dirs = this.#dirs;
    const rng = new Random(streamSeed(s.seed, this.#stream, index));
    const cats = this.#layout.categories[index];
    const p = this.#proposals, fg = Math.round(p * s.foregroundFraction);
    const labels = new Int32Array(p).fill(c);
    for (let t = 0; t < fg; t++) {
      labels[t] = t < cats.length ? cats[t] : cats[rng.integer(0, cats.length)];
    }
    rng.shuffle(labels);
    const features = new Float32Array(p * d);
    const boxTargets = new Float32Array(p * 4);
    const t4 = new Float64Array(4);
    for (let i = 0; i < p; i++) {
      const row = features.subarray(i * d, (i + 1) * d);
      rng.fillNormal(row, 0, s.noise);
      const y = labels[i];
      if (y < c) {
        const q = rng.uniform(0.5, 1);
        const spread = 2 * (1 - q) + 0.1;
        for (let m = 0; m < 4; m++) {
          t4[m] = spread * rng.normal();
          boxTargets[4 * i + m] = t4[m];
        }
        const mu = dirs.prototypes.subarray(y * d, (y + 1) * d), a = dirs.boxEmbedding;
        // An object's box also holds some background around it, so the background directions
        // alone do not tell foreground from background.
        const b = rng.integer(0, s.backgroundModes);
        const g = dirs.backgroundDirs.subarray(b * d, (b + 1) * d);
        const ctx = s.backgroundWeight * rng.uniform(s.contextMin, 1);
        for (let k = 0; k < d; k++) {
          row[k] += q * mu[k] + ctx * g[k] +
            s.boxWeight * (t4[0] * a[k] + t4[1] * a[d + k] + t4[2] * a[2 * d + k] +
                t4[3] * a[3 * d + k]);
        }
      } else {
        const b = rng.integer(0, s.backgroundModes);
        const g = dirs.backgroundDirs.subarray(b * d, (b + 1) * d);
        // Background boxes are misaligned too: the same embedding of random offsets (no target),
        // so that its energy does not give foreground away.
        const spread = rng.uniform(0.1, 1.1);
        for (let m = 0; m < 4; m++) t4[m] = spread * rng.normal();
        const a = dirs.boxEmbedding;
        for (let k = 0; k < d; k++) {
          row[k] += s.backgroundWeight * g[k] +
            s.boxWeight * (t4[0] * a[k] + t4[1] * a[d + k] + t4[2] * a[2 * d + k] +
                t4[3] * a[3 * d + k]);
        }
        if (rng.uniform() < s.partialObject) {
          const obj = cats[rng.integer(0, cats.length)];
          const r = rng.uniform(s.partialMin, s.partialMax);
          const mu = dirs.prototypes.subarray(obj * d, (obj + 1) * d);
          for (let k = 0; k < d; k++) row[k] += r * mu[k];
        }
      }
    }
    return {
      features,
      labels,
      boxTargets,
      positive: cats.slice(),
      negative: this.#layout.negative[index].slice(),
    };
  }
}

/**
 * Synthetic LVIS-like proposal data: a training and a validation split sharing the categories.
 * See the module documentation for how everything is drawn.
 *
 * @example
 * ```ts
 * import { LongTailProposals } from "@eql/eql/detection";
 * const data = new LongTailProposals({ seed: 1 });
 * data.numCategories; // 1230
 * const im = data.train.image(0);
 * im.labels.length; // 512
 * im.features.length; // 512 · 256
 * ```
 */
export class LongTailProposals {
  /** Number of categories C. */
  readonly numCategories: number;
  /** Feature width D. */
  readonly featureWidth: number;
  /** Training images per category `n_j`. */
  readonly imageCounts: Int32Array;
  /** Validation images per category. */
  readonly valImageCounts: Int32Array;
  /** LVIS group of each category (by its training image count). */
  readonly groups: LvisGroup[];
  /** The training split. */
  readonly train: ProposalSource;
  /** The validation split. */
  readonly val: ProposalSource;
  /** The resolved settings. */
  readonly settings: Readonly<Required<LongTailProposalOptions>>;

  /**
   * Draws the categories, their image counts, the image layouts and the feature directions.
   *
   * @param options See {@linkcode LongTailProposalOptions}.
   * @throws {RangeError | TypeError} On an invalid option, or when the image counts do not fit
   *   the images' foreground budget.
   */
  constructor(options: LongTailProposalOptions = {}) {
    const s = resolve(options);
    this.settings = Object.freeze({ ...s });
    const [nr, nc, nf] = s.groupSizes;
    const c = this.numCategories = nr + nc + nf;
    const d = this.featureWidth = s.featureWidth;
    const rng = new Random(streamSeed(s.seed, 0, 0));

    const counts = new Int32Array(c);
    let at = 0;
    for (let k = 0; k < nr; k++) counts[at++] = logUniformInt(rng, 1, 10);
    for (let k = 0; k < nc; k++) counts[at++] = logUniformInt(rng, 11, 100);
    for (let k = 0; k < nf; k++) counts[at++] = logUniformInt(rng, 101, s.frequentMaxImages);
    rng.shuffle(counts);
    this.imageCounts = counts;
    this.groups = lvisGroups(counts).group;
    this.valImageCounts = counts.map((n) =>
      Math.min(s.valImages, Math.max(1, Math.round(n * s.valShare)))
    );

    const foreground = (name: string, p: number): number => {
      const fg = Math.round(p * s.foregroundFraction);
      if (fg < 1 || fg >= p) {
        throw new RangeError(
          `${name} · foregroundFraction must round to 1..${p - 1} foreground proposals, got ${fg}`,
        );
      }
      return fg;
    };
    const fg = foreground("proposalsPerImage", s.proposalsPerImage);
    const fgVal = foreground("valProposalsPerImage", s.valProposalsPerImage);
    const trainLayout = layout(rng, counts, s.trainImages, fg);
    const valLayout = layout(rng, this.valImageCounts, s.valImages, fgVal);

    const superOf = new Int32Array(c);
    for (let j = 0; j < c; j++) superOf[j] = rng.integer(0, s.superCategories);
    const dirs: Directions = {
      objectness: gaussian(rng, d),
      superOf,
      superDirs: gaussian(rng, s.superCategories * d),
      categoryDirs: gaussian(rng, c * d),
      backgroundDirs: gaussian(rng, s.backgroundModes * d),
      boxEmbedding: gaussian(rng, 4 * d),
      prototypes: new Float32Array(c * d),
    };
    for (let j = 0; j < c; j++) {
      const sup = superOf[j];
      for (let k = 0; k < d; k++) {
        dirs.prototypes[j * d + k] = s.objectness * dirs.objectness[k] +
          s.superCategoryWeight * dirs.superDirs[sup * d + k] +
          s.categoryWeight * dirs.categoryDirs[j * d + k];
      }
    }
    this.train = new GeneratedSplit(s, dirs, trainLayout, c, 1, s.proposalsPerImage);
    this.val = new GeneratedSplit(s, dirs, valLayout, c, 2, s.valProposalsPerImage);
  }

  /**
   * Category frequencies `f_j = n_j / referenceImages` from the training image counts.
   *
   * @param referenceImages The denominator (default {@linkcode LVIS_V05_TRAIN_IMAGES}, so that
   *   LVIS v0.5 thresholds apply; pass `data.train.numImages` for the fraction of this set's
   *   images).
   * @returns `[C]` frequencies.
   * @throws {RangeError} When `referenceImages` is smaller than the largest image count.
   */
  frequencies(referenceImages: number = LVIS_V05_TRAIN_IMAGES): Float64Array {
    return categoryFrequencies(this.imageCounts, referenceImages);
  }
}

/**
 * Stacks the proposals of several images into one batch, with each row's image index (for the
 * image-level rule of the EQL) and the images' category sets.
 *
 * @param source Where the images come from.
 * @param indices Image indices (at least one).
 * @returns The batch; row order is image by image.
 * @throws {RangeError} When `indices` is empty or an image's arrays disagree in size.
 *
 * @example
 * ```ts
 * import { collateProposals, LongTailProposals } from "@eql/eql/detection";
 * const data = new LongTailProposals({ seed: 1 });
 * const batch = collateProposals(data.train, [3, 7]);
 * batch.labels.length; // 1024
 * batch.imageOfRow[600]; // 1
 * ```
 */
export function collateProposals(
  source: ProposalSource,
  indices: ArrayLike<number>,
): ProposalBatch {
  if (indices.length < 1) throw new RangeError("indices must name at least one image, got none");
  const d = source.featureWidth;
  const images: ProposalImage[] = [];
  let rows = 0;
  for (let b = 0; b < indices.length; b++) {
    const im = source.image(indices[b]);
    const p = im.labels.length;
    if (im.features.length !== p * d || im.boxTargets.length !== p * 4) {
      throw new RangeError(
        `image ${
          indices[b]
        } has ${p} labels but ${im.features.length} feature values and ${im.boxTargets.length} box values (expected ${
          p * d
        } and ${p * 4})`,
      );
    }
    images.push(im);
    rows += p;
  }
  const out: ProposalBatch = {
    features: new Float32Array(rows * d),
    labels: new Int32Array(rows),
    boxTargets: new Float32Array(rows * 4),
    imageOfRow: new Int32Array(rows),
    positive: [],
    negative: [],
  };
  let r = 0;
  images.forEach((im, b) => {
    const p = im.labels.length;
    out.features.set(im.features, r * d);
    out.labels.set(im.labels, r);
    out.boxTargets.set(im.boxTargets, r * 4);
    out.imageOfRow.fill(b, r, r + p);
    out.positive.push(im.positive);
    out.negative.push(im.negative);
    r += p;
  });
  return out;
}
