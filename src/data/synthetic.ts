/**
 * A synthetic long-tailed image dataset for offline runs and tests: `C` classes of 3×H×W uint8
 * images that a small ResNet learns in a minute or two, with the CIFAR-LT count profile.
 *
 * Scene: a background colour and `blobs` soft colour blobs (Gaussian bumps of random centre,
 * width and colour) shared by every class, plus `blobs` blobs of each class's own, rendered on a
 * canvas `2·shift` pixels larger than the image. A sample takes an image-sized window of its
 * class's canvas at a random offset (up to `shift` pixels each way), scales it about mid-grey by a
 * random gain in [0.8, 1.2], adds a random colour cast (uniform in ±`colourJitter` per channel),
 * one distractor blob at a random place (same size range as the class blobs, colour up to
 * ±`distractor`), and uniform pixel noise in ±`noise`. So classes differ only by their own blobs,
 * which move, change contrast and compete with a distractor: a nearest-prototype rule is well
 * above chance but far from perfect, and a convolutional network does better.
 *
 * The training split follows `longTailCounts` (`src/longtail/cifar_lt.ts`), classes in order; the test
 * split is balanced. Random streams: one {@linkcode Random}(seed) draws the scene, then the seeds
 * of the training and test streams, so the test set does not depend on the training counts.
 *
 * @module
 */

import { Random } from "../random.ts";
import type { ImageDataset } from "./dataset.ts";
import { longTailCounts } from "../longtail/cifar_lt.ts";

/** Options for {@linkcode syntheticLongTailed}. */
export interface SyntheticOptions {
  /** Number of classes (default 10). */
  numClasses?: number;
  /** Training images of the head class (default 500). */
  maxPerClass?: number;
  /** Imbalance factor ≥ 1 (default 100). */
  imbalanceFactor?: number;
  /** Test images per class (default 100). */
  testPerClass?: number;
  /** Seed (default 0). */
  seed?: number;
  /** Image height (default 32). */
  height?: number;
  /** Image width (default 32). */
  width?: number;
  /** Blobs shared by all classes, and blobs of each class (default 3). */
  blobs?: number;
  /** Largest colour amplitude of a class blob (default 80). */
  classContrast?: number;
  /** Largest offset of a sample's window, in pixels (default 4). */
  shift?: number;
  /** Largest per-channel colour cast of a sample (default 24). */
  colourJitter?: number;
  /** Largest colour amplitude of the per-sample distractor blob, 0 for none (default 120). */
  distractor?: number;
  /** Amplitude of the uniform pixel noise (default 40). */
  noise?: number;
}

/** Both splits and the class prototypes. */
export interface SyntheticDataset {
  /** Long-tailed training split, classes in order 0, 1, …. */
  train: ImageDataset;
  /** Balanced test split. */
  test: ImageDataset;
  /** The centre window of each class's canvas, `[C, 3, H, W]` uint8 (no jitter, no noise). */
  prototypes: Uint8Array;
}

interface Blob {
  cy: number;
  cx: number;
  sigma: number;
  colour: [number, number, number];
}

/** Adds a Gaussian blob to float RGB planes of `h × w`, within 3σ of its centre. */
function addBlob(planes: Float32Array, h: number, w: number, blob: Blob): void {
  const plane = h * w;
  const reach = 3 * blob.sigma;
  const y0 = Math.max(0, Math.floor(blob.cy - reach));
  const y1 = Math.min(h, Math.ceil(blob.cy + reach));
  const x0 = Math.max(0, Math.floor(blob.cx - reach));
  const x1 = Math.min(w, Math.ceil(blob.cx + reach));
  const inv = 1 / (2 * blob.sigma * blob.sigma);
  const [r, g, b] = blob.colour;
  for (let y = y0; y < y1; y++) {
    const dy = (y + 0.5 - blob.cy) ** 2;
    for (let x = x0; x < x1; x++) {
      const e = Math.exp(-(dy + (x + 0.5 - blob.cx) ** 2) * inv);
      const i = y * w + x;
      planes[i] += r * e;
      planes[i + plane] += g * e;
      planes[i + 2 * plane] += b * e;
    }
  }
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  return value;
}

function amplitude(value: number, name: string): number {
  if (typeof value !== "number" || !(value >= 0 && value <= 255)) {
    throw new RangeError(`${name} must be a number in [0, 255], got ${value}`);
  }
  return value;
}

/**
 * Generates a synthetic long-tailed dataset.
 *
 * @param options Sizes, imbalance, seed and difficulty.
 * @returns The training and test splits and the prototypes.
 *
 * @example
 * ```ts
 * import { syntheticLongTailed } from "@eql/eql/data";
 * const { train, test } = syntheticLongTailed({ numClasses: 10, maxPerClass: 500, imbalanceFactor: 10 });
 * train.labels.length; // 2043
 * test.labels.length; // 1000
 * ```
 */
export function syntheticLongTailed(options: SyntheticOptions = {}): SyntheticDataset {
  const numClasses = positiveInteger(options.numClasses ?? 10, "numClasses");
  const maxPerClass = positiveInteger(options.maxPerClass ?? 500, "maxPerClass");
  const testPerClass = options.testPerClass ?? 100;
  if (!Number.isInteger(testPerClass) || testPerClass < 0) {
    throw new RangeError(`testPerClass must be a non-negative integer, got ${testPerClass}`);
  }
  const height = positiveInteger(options.height ?? 32, "height");
  const width = positiveInteger(options.width ?? 32, "width");
  const blobs = positiveInteger(options.blobs ?? 3, "blobs");
  const shift = options.shift ?? 4;
  if (!Number.isInteger(shift) || shift < 0) {
    throw new RangeError(`shift must be a non-negative integer, got ${shift}`);
  }
  const classContrast = amplitude(options.classContrast ?? 80, "classContrast");
  const colourJitter = amplitude(options.colourJitter ?? 24, "colourJitter");
  const distractor = amplitude(options.distractor ?? 120, "distractor");
  const noise = amplitude(options.noise ?? 40, "noise");
  const counts = longTailCounts({
    numClasses,
    maxPerClass,
    imbalanceFactor: options.imbalanceFactor ?? 100,
  });
  const rng = new Random(options.seed ?? 0);

  const ch = height + 2 * shift;
  const cw = width + 2 * shift;
  const canvasPlane = ch * cw;
  const side = Math.min(height, width);
  // A blob centred inside the image area (offset by `margin` on the canvas).
  const blob = (r: Random, strength: number, margin: number): Blob => ({
    cy: margin + r.uniform(0.15, 0.85) * height,
    cx: margin + r.uniform(0.15, 0.85) * width,
    sigma: r.uniform(0.08, 0.2) * side,
    colour: [
      r.uniform(-strength, strength),
      r.uniform(-strength, strength),
      r.uniform(-strength, strength),
    ],
  });
  const shared = new Float32Array(3 * canvasPlane);
  for (let k = 0; k < 3; k++) {
    shared.fill(rng.uniform(64, 192), k * canvasPlane, (k + 1) * canvasPlane);
  }
  for (let b = 0; b < blobs; b++) addBlob(shared, ch, cw, blob(rng, 96, shift));
  const canvases: Float32Array[] = [];
  for (let c = 0; c < numClasses; c++) {
    const canvas = shared.slice();
    for (let b = 0; b < blobs; b++) addBlob(canvas, ch, cw, blob(rng, classContrast, shift));
    canvases.push(canvas);
  }
  const trainSeed = rng.integer(0, Number.MAX_SAFE_INTEGER);
  const testSeed = rng.integer(0, Number.MAX_SAFE_INTEGER);

  const plane = height * width;
  const per = 3 * plane;
  const work = new Float32Array(per);

  /** Copies the canvas window at (oy, ox) into `work`, scaled about 128 by `gain`. */
  function window(canvas: Float32Array, oy: number, ox: number, gain: number): void {
    const bias = 128 - gain * 128;
    for (let k = 0; k < 3; k++) {
      for (let y = 0; y < height; y++) {
        const row = k * canvasPlane + (y + oy) * cw + ox;
        const o = k * plane + y * width;
        for (let x = 0; x < width; x++) work[o + x] = bias + gain * canvas[row + x];
      }
    }
  }

  /** Quantises `work` plus per-channel offsets and byte noise into `out` at `offset`. */
  function quantise(
    out: Uint8Array,
    offset: number,
    cast: readonly number[],
    r: Random | null,
  ): void {
    const scale = (2 * noise) / 255;
    let bits = 0;
    let left = 0;
    for (let k = 0; k < 3; k++) {
      const o = k * plane;
      for (let i = 0; i < plane; i++) {
        let v = work[o + i] + cast[k];
        if (r !== null) {
          // One 32-bit draw gives the noise of four pixels: byte · scale − noise.
          if (left === 0) {
            bits = r.nextUint32();
            left = 4;
          }
          v += (bits & 0xff) * scale - noise;
          bits >>>= 8;
          left--;
        }
        out[offset + o + i] = v <= 0 ? 0 : v >= 255 ? 255 : (v + 0.5) | 0;
      }
    }
  }

  const prototypes = new Uint8Array(numClasses * per);
  for (let c = 0; c < numClasses; c++) {
    window(canvases[c], shift, shift, 1);
    quantise(prototypes, c * per, [0, 0, 0], null);
  }

  function split(perClass: ArrayLike<number>, seed: number): ImageDataset {
    const r = new Random(seed);
    let total = 0;
    for (let c = 0; c < numClasses; c++) total += perClass[c];
    const images = new Uint8Array(total * per);
    const labels = new Int32Array(total);
    let n = 0;
    for (let c = 0; c < numClasses; c++) {
      for (let i = 0; i < perClass[c]; i++, n++) {
        const oy = r.integer(0, 2 * shift + 1);
        const ox = r.integer(0, 2 * shift + 1);
        window(canvases[c], oy, ox, r.uniform(0.8, 1.2));
        if (distractor > 0) addBlob(work, height, width, blob(r, distractor, 0));
        const cast = [
          r.uniform(-colourJitter, colourJitter),
          r.uniform(-colourJitter, colourJitter),
          r.uniform(-colourJitter, colourJitter),
        ];
        quantise(images, n * per, cast, r);
        labels[n] = c;
      }
    }
    const classNames = Array.from({ length: numClasses }, (_, c) => `class_${c}`);
    return { images, labels, classNames, numClasses };
  }

  const train = split(counts, trainSeed);
  const test = split(new Int32Array(numClasses).fill(testPerClass), testSeed);
  return { train, test, prototypes };
}
