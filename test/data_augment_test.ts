import assert from "node:assert/strict";
import { Random } from "../src/random.ts";
import {
  crop,
  cutout,
  cutoutBox,
  horizontalFlip,
  randomCrop,
  randomHorizontalFlip,
} from "../src/data/augment.ts";
import { autoAugment, CIFAR10_POLICY } from "../src/data/autoaugment.ts";
import {
  CIFAR100_NORMALIZATION,
  CIFAR10_NORMALIZATION,
  normalizationTable,
  normalizeImages,
} from "../src/data/normalize.ts";
import {
  assembleBatch,
  AUTOAUGMENT_CUTOUT,
  checkTransforms,
  STANDARD_AUGMENTATION,
  type Transform,
} from "../src/data/pipeline.ts";

const H = 32, W = 32, PER = 3 * H * W;

/** A random uint8 CHW image. */
function randomImage(seed: number, h = H, w = W): Uint8Array {
  const r = new Random(seed);
  return Uint8Array.from({ length: 3 * h * w }, () => r.integer(0, 256));
}

Deno.test("crop: every offset reads the zero-padded image at (y + top − p, x + left − p)", () => {
  const h = 5, w = 7, p = 2;
  const src = randomImage(1, h, w);
  const dst = new Uint8Array(src.length);
  for (let top = 0; top <= 2 * p; top++) {
    for (let left = 0; left <= 2 * p; left++) {
      crop(src, dst, h, w, p, top, left);
      for (let c = 0; c < 3; c++) {
        for (let y = 0; y < h; y++) {
          for (let x = 0; x < w; x++) {
            const sy = y + top - p, sx = x + left - p;
            const want = sy < 0 || sy >= h || sx < 0 || sx >= w ? 0 : src[c * h * w + sy * w + sx];
            assert.equal(
              dst[c * h * w + y * w + x],
              want,
              `top ${top} left ${left} (${c},${y},${x})`,
            );
          }
        }
      }
    }
  }
  // Centre offset is the identity; padding larger than the image gives all zeros at the extremes.
  crop(src, dst, h, w, p, p, p);
  assert.deepEqual(dst, src);
  crop(src, dst, h, w, 8, 0, 0);
  assert.ok(dst.every((v) => v === 0));
});

Deno.test("randomCrop: offsets uniform over 0..2p, deterministic under a seed", () => {
  const src = randomImage(2);
  const seen = new Set<string>();
  const a = new Random(11), b = new Random(11);
  const da = new Uint8Array(PER), db = new Uint8Array(PER);
  for (let i = 0; i < 2000; i++) {
    const oa = randomCrop(src, da, H, W, 4, a);
    const ob = randomCrop(src, db, H, W, 4, b);
    assert.deepEqual(oa, ob);
    assert.deepEqual(da, db);
    assert.ok(oa.top >= 0 && oa.top <= 8 && oa.left >= 0 && oa.left <= 8);
    seen.add(`${oa.top},${oa.left}`);
  }
  assert.equal(seen.size, 81);
});

Deno.test("horizontalFlip: mirrors each row of each channel, in place or not", () => {
  const h = 3, w = 5;
  const src = randomImage(3, h, w);
  const dst = new Uint8Array(src.length);
  horizontalFlip(src, dst, h, w);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        assert.equal(dst[c * h * w + y * w + x], src[c * h * w + y * w + (w - 1 - x)]);
      }
    }
  }
  const copy = src.slice();
  horizontalFlip(copy, copy, h, w);
  assert.deepEqual(copy, dst);
  horizontalFlip(copy, copy, h, w);
  assert.deepEqual(copy, src);
  // Probability 0 never flips, 1 always does; ½ flips about half the time.
  const r = new Random(5);
  const out = new Uint8Array(src.length);
  assert.equal(randomHorizontalFlip(src, out, h, w, r, 0), false);
  assert.deepEqual(out, src);
  assert.equal(randomHorizontalFlip(src, out, h, w, r, 1), true);
  assert.deepEqual(out, dst);
  let flips = 0;
  for (let i = 0; i < 4000; i++) if (randomHorizontalFlip(src, out, h, w, r)) flips++;
  assert.ok(flips > 1800 && flips < 2200, `flipped ${flips} of 4000`);
});

Deno.test("cutout: 16×16 hole centred at (cy, cx), clipped at the borders", () => {
  assert.deepEqual(cutoutBox(32, 32, 16, 16, 16), { y0: 8, y1: 24, x0: 8, x1: 24 });
  assert.deepEqual(cutoutBox(32, 32, 16, 0, 0), { y0: 0, y1: 8, x0: 0, x1: 8 });
  assert.deepEqual(cutoutBox(32, 32, 16, 31, 31), { y0: 23, y1: 32, x0: 23, x1: 32 });
  assert.deepEqual(cutoutBox(32, 32, 16, 3, 28), { y0: 0, y1: 11, x0: 20, x1: 32 });
  assert.deepEqual(cutoutBox(4, 6, 3, 1, 5), { y0: 0, y1: 2, x0: 4, x1: 6 }); // odd size: ±1

  // Float image: zeros exactly in the box, in every channel; everything else untouched.
  const r = new Random(21);
  for (let t = 0; t < 50; t++) {
    const x = Float32Array.from({ length: PER }, (_, i) => 1 + (i % 7));
    const probe = r.clone();
    const box = cutout(x, H, W, 16, r);
    const cy = probe.integer(0, H), cx = probe.integer(0, W);
    assert.deepEqual(box, cutoutBox(H, W, 16, cy, cx));
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < H; y++) {
        for (let xx = 0; xx < W; xx++) {
          const inside = y >= box.y0 && y < box.y1 && xx >= box.x0 && xx < box.x1;
          const i = c * H * W + y * W + xx;
          assert.equal(x[i], inside ? 0 : 1 + (i % 7));
        }
      }
    }
  }
  // uint8 with a constant fill.
  const u = new Uint8Array(PER).fill(9);
  const box = cutout(u, H, W, 16, new Random(4), 128);
  const area = (box.y1 - box.y0) * (box.x1 - box.x0);
  assert.equal(u.filter((v) => v === 128).length, 3 * area);
  assert.throws(
    () => cutout(u, H, W, 16, new Random(4), 300),
    /fill must be an integer in 0\.\.255/,
  );
});

Deno.test("autoAugment: deterministic under a seed; draws follow the documented order", () => {
  const img = randomImage(8);
  for (let seed = 0; seed < 40; seed++) {
    const a = img.slice(), b = img.slice();
    const ta = autoAugment(a, H, W, new Random(seed));
    const tb = autoAugment(b, H, W, new Random(seed));
    assert.deepEqual(ta, tb);
    assert.deepEqual(a, b);
    // Re-derive the draws by hand from the same seed.
    const r = new Random(seed);
    const sub = r.integer(0, 25);
    assert.equal(ta.subPolicy, sub);
    CIFAR10_POLICY[sub].forEach((step, k) => {
      const applied = r.uniform() < step.probability;
      assert.equal(ta.steps[k].applied, applied);
      if (applied && ta.steps[k].sign !== 0) {
        assert.equal(ta.steps[k].sign, r.uniform() < 0.5 ? -1 : 1);
      }
    });
    if (ta.steps.every((s) => !s.applied)) assert.deepEqual(a, img);
  }
  // Over many draws every sub-policy appears.
  const r = new Random(99);
  const seen = new Set<number>();
  const scratch = new Uint8Array(PER);
  for (let i = 0; i < 1000; i++) seen.add(autoAugment(img.slice(), H, W, r, scratch).subPolicy);
  assert.equal(seen.size, 25);
});

Deno.test("normalisation matches (v/255 − mean)/std in double precision", () => {
  const images = randomImage(9, 4, 4);
  for (const norm of [CIFAR10_NORMALIZATION, CIFAR100_NORMALIZATION]) {
    const x = normalizeImages(images, norm, 4, 4);
    for (let c = 0; c < 3; c++) {
      for (let i = 0; i < 16; i++) {
        const v = images[c * 16 + i];
        assert.equal(x[c * 16 + i], Math.fround((v / 255 - norm.mean[c]) / norm.std[c]));
      }
    }
  }
  // Two images: the channel restarts with each image.
  const two = new Uint8Array(2 * 3 * 4).fill(255);
  const x = normalizeImages(two, { mean: [0, 0.5, 1], std: [1, 0.5, 0.25] }, 2, 2);
  assert.deepEqual(Array.from(x), [...[1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0], ...[
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    0,
    0,
    0,
    0,
  ]]);
  assert.throws(
    () => normalizationTable({ mean: [0, 0, 0], std: [1, 0, 1] }),
    /normalization\.std\[1\] must be a positive number, got 0/,
  );
});

Deno.test("pipeline: validation, cutout after normalisation, determinism", () => {
  checkTransforms(AUTOAUGMENT_CUTOUT);
  assert.throws(
    () => checkTransforms([{ kind: "cutout" }, { kind: "flip" }]),
    /transforms\[1\] \("flip"\) comes after a cutout/,
  );
  assert.throws(
    () => checkTransforms([{ kind: "blur" } as unknown as Transform]),
    /transforms\[0\]\.kind must be/,
  );
  assert.throws(
    () => checkTransforms([{ kind: "crop", padding: -1 }]),
    /transforms\[0\]\.padding must be a non-negative integer/,
  );

  const n = 6;
  const images = new Uint8Array(n * PER);
  for (let i = 0; i < n; i++) images.set(randomImage(100 + i), i * PER);
  const labels = Int32Array.from({ length: n }, (_, i) => i % 3);
  const table = normalizationTable(CIFAR10_NORMALIZATION);
  const indices = Int32Array.of(5, 0, 3);
  const a = assembleBatch(images, labels, indices, AUTOAUGMENT_CUTOUT, table, H, W, 1234);
  const b = assembleBatch(images, labels, indices, AUTOAUGMENT_CUTOUT, table, H, W, 1234);
  const c = assembleBatch(images, labels, indices, AUTOAUGMENT_CUTOUT, table, H, W, 1235);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.x, c.x);
  assert.deepEqual(Array.from(a.labels), [2, 0, 0]);

  // Replaying the documented draws reproduces the batch: crop, flip, autoaugment, normalise,
  // cutout of zeros, image by image.
  const r = new Random(1234);
  const want = new Float32Array(3 * PER);
  const buf = new Uint8Array(PER), tmp = new Uint8Array(PER);
  indices.forEach((i, k) => {
    randomCrop(images.subarray(i * PER, (i + 1) * PER), buf, H, W, 4, r);
    randomHorizontalFlip(buf, buf, H, W, r);
    autoAugment(buf, H, W, r, tmp);
    const x = normalizeImages(buf, CIFAR10_NORMALIZATION);
    const box = cutout(x, H, W, 16, r);
    assert.ok(box.y1 > box.y0);
    want.set(x, k * PER);
  });
  assert.deepEqual(a.x, want);

  // No seed: plain normalisation, whatever the pipeline says.
  const plain = assembleBatch(images, labels, indices, AUTOAUGMENT_CUTOUT, table, H, W, null);
  const ref = normalizeImages(images.subarray(5 * PER, 6 * PER), CIFAR10_NORMALIZATION);
  assert.deepEqual(plain.x.subarray(0, PER), ref);
  // Standard augmentation keeps label order too.
  const s = assembleBatch(images, labels, indices, STANDARD_AUGMENTATION, table, H, W, 3);
  assert.deepEqual(Array.from(s.labels), [2, 0, 0]);
  assert.throws(
    () => assembleBatch(images, labels, Int32Array.of(6), [], table, H, W, null),
    /indices\[0\] must be an image index in 0\.\.5, got 6/,
  );
});
