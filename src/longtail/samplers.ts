/**
 * The two re-sampling baselines of the EQL paper's Table 5, as pure index generators: each call
 * returns the image indices of one epoch, drawn from a seeded {@linkcode Random}.
 *
 * - Class-aware sampling (Shen et al., ECCV 2016): each draw picks a class, then an image of that
 *   class, so every class is seen equally often whatever its size.
 * - Repeat-factor sampling (Gupta et al., LVIS, CVPR 2019): category c gets the repeat factor
 *   `r_c = max(1, sqrt(t / f_c))`, an image the largest factor of its categories, and each epoch
 *   repeats image i `floor(r_i)` times plus once more with probability `r_i − floor(r_i)`.
 *
 * @module
 */

import type { Random } from "../random.ts";
import { categoryLists, type ImageLabels } from "./_labels.ts";
import { checkArrayLike, checkFrequencies, checkInteger, checkNumber } from "./_validate.ts";

/** Endless random cycle over a list: a fresh shuffle each time the list is used up. */
class RandomCycle {
  #items: Int32Array;
  #pos: number;
  #rng: Random;

  constructor(items: Int32Array, rng: Random) {
    this.#items = items;
    this.#pos = items.length;
    this.#rng = rng;
  }

  next(): number {
    if (this.#pos === this.#items.length) {
      this.#rng.shuffle(this.#items);
      this.#pos = 0;
    }
    return this.#items[this.#pos++];
  }
}

/** Options of {@linkcode classAwareSampling}. */
export interface ClassAwareOptions {
  /** Number of categories. */
  numClasses: number;
  /** Indices to draw (default: the number of images, one epoch). */
  numSamples?: number;
  /** Seeded generator. */
  rng: Random;
}

/**
 * Class-aware sampling. Classes are visited in random cycles (every non-empty class once per
 * cycle, re-shuffled each cycle) and, for each visit, the next image of that class is taken from
 * its own random cycle over the class's images. Over an epoch every class with images is drawn
 * `numSamples / numNonEmptyClasses` times (±1), and within a class images are used evenly.
 * An image with several categories belongs to each of their lists.
 *
 * @param labels One class per image, or one list of categories per image.
 * @param options Number of classes, number of samples and the generator.
 * @returns `numSamples` image indices.
 * @throws {RangeError} When a label is out of range, no image has a label, or a count is invalid.
 *
 * @example
 * ```ts
 * import { classAwareSampling } from "@eql/eql";
 * import { Random } from "@eql/eql";
 * const labels = new Int32Array([0, 0, 0, 0, 0, 0, 1, 2]);
 * const epoch = classAwareSampling(labels, { numClasses: 3, rng: new Random(0) });
 * // about a third of the 8 draws are image 6 and a third image 7
 * ```
 */
export function classAwareSampling(labels: ImageLabels, options: ClassAwareOptions): Int32Array {
  const { numClasses, rng } = options;
  checkInteger("numClasses", numClasses, 1);
  const lists = categoryLists("labels", labels, numClasses);
  const numSamples = options.numSamples ?? lists.length;
  checkInteger("numSamples", numSamples, 0);
  const members: number[][] = Array.from({ length: numClasses }, () => []);
  for (let i = 0; i < lists.length; i++) for (const c of lists[i]) members[c].push(i);
  const present: number[] = [];
  for (let c = 0; c < numClasses; c++) if (members[c].length > 0) present.push(c);
  const out = new Int32Array(numSamples);
  if (numSamples === 0) return out;
  if (present.length === 0) {
    throw new RangeError("labels must give at least one image a category, got none");
  }
  const classCycle = new RandomCycle(Int32Array.from(present), rng);
  const imageCycles = members.map((m) => new RandomCycle(Int32Array.from(m), rng));
  for (let s = 0; s < numSamples; s++) out[s] = imageCycles[classCycle.next()].next();
  return out;
}

/** Options of {@linkcode repeatFactors}. */
export interface RepeatFactorOptions {
  /** Number of categories. */
  numClasses: number;
  /** Frequency threshold t > 0 (LVIS: 0.001; the EQL code's variant: 0.0005). */
  threshold: number;
  /**
   * Category frequencies `f_c` (fraction of images containing c). Default: computed from
   * `labels` (images containing c / number of images).
   */
  frequencies?: ArrayLike<number>;
}

/**
 * Per-image repeat factors: `r_c = max(1, sqrt(t / f_c))` per category and
 * `r_i = max_{c ∈ image i} r_c` per image (1 for an image without categories).
 *
 * @param labels One class per image, or one list of categories per image.
 * @param options Number of categories, threshold t and optionally the frequencies.
 * @returns `r_i` for every image, each ≥ 1.
 * @throws {RangeError} When t is not positive, a frequency is invalid, or an image holds a
 *   category of frequency 0.
 *
 * @example
 * ```ts
 * import { repeatFactors } from "@eql/eql";
 * // category 1 is in 1 image of 1000: r = sqrt(0.001 / 0.001) = 1; with t = 0.004 → 2
 * const r = repeatFactors([[0], [0, 1]], { numClasses: 2, threshold: 0.004, frequencies: [0.5, 0.001] });
 * // r = Float64Array [1, 2]
 * ```
 */
export function repeatFactors(labels: ImageLabels, options: RepeatFactorOptions): Float64Array {
  const { numClasses, threshold } = options;
  checkInteger("numClasses", numClasses, 1);
  checkNumber("threshold", threshold, 0, true);
  const lists = categoryLists("labels", labels, numClasses);
  let freq: ArrayLike<number>;
  if (options.frequencies !== undefined) {
    checkFrequencies("frequencies", options.frequencies);
    if (options.frequencies.length !== numClasses) {
      throw new RangeError(
        `frequencies must have numClasses (${numClasses}) entries, got ${options.frequencies.length}`,
      );
    }
    freq = options.frequencies;
  } else {
    const counts = new Float64Array(numClasses);
    for (const cats of lists) for (const c of cats) counts[c]++;
    freq = counts.map((n) => n / lists.length);
  }
  const perClass = new Float64Array(numClasses);
  for (let c = 0; c < numClasses; c++) {
    perClass[c] = freq[c] > 0 ? Math.max(1, Math.sqrt(threshold / freq[c])) : NaN;
  }
  const out = new Float64Array(lists.length);
  for (let i = 0; i < lists.length; i++) {
    let r = 1;
    for (const c of lists[i]) {
      if (Number.isNaN(perClass[c])) {
        throw new RangeError(
          `frequencies[${c}] must be > 0 because image ${i} contains category ${c}, got 0`,
        );
      }
      if (perClass[c] > r) r = perClass[c];
    }
    out[i] = r;
  }
  return out;
}

/**
 * One epoch of repeat-factor sampling: image i appears `floor(r_i)` times, plus once more with
 * probability `r_i − floor(r_i)` (stochastic rounding, fresh each epoch), then the list is
 * shuffled.
 *
 * @param factors Repeat factor of every image (finite, ≥ 0; from {@linkcode repeatFactors}).
 * @param rng Seeded generator.
 * @param options `shuffle: false` keeps the indices in ascending order.
 * @returns The epoch's image indices; its expected length is `Σ r_i`.
 * @throws {RangeError} When a factor is negative or not finite.
 *
 * @example
 * ```ts
 * import { repeatFactorSampling } from "@eql/eql";
 * import { Random } from "@eql/eql";
 * const epoch = repeatFactorSampling([1, 2.5], new Random(0));
 * // image 0 once, image 1 two or three times, shuffled
 * ```
 */
export function repeatFactorSampling(
  factors: ArrayLike<number>,
  rng: Random,
  options: { shuffle?: boolean } = {},
): Int32Array {
  checkArrayLike("factors", factors);
  const out: number[] = [];
  for (let i = 0; i < factors.length; i++) {
    const r = factors[i];
    if (typeof r !== "number" || !Number.isFinite(r) || r < 0) {
      throw new RangeError(`factors[${i}] must be a finite number ≥ 0, got ${r}`);
    }
    const whole = Math.floor(r);
    const times = whole + (rng.uniform() < r - whole ? 1 : 0);
    for (let q = 0; q < times; q++) out.push(i);
  }
  const indices = Int32Array.from(out);
  return options.shuffle === false ? indices : rng.shuffle(indices);
}
