// Each AutoAugment operation on tiny images, against results worked out by hand (the derivation
// is in the comments). Images are built from per-channel 2-D arrays.

import assert from "node:assert/strict";
import {
  AFFINE_FILL,
  autoContrast,
  brightness,
  color,
  contrast,
  equalize,
  invert,
  posterize,
  rotate,
  sharpness,
  shearX,
  shearY,
  solarize,
  translateX,
  translateY,
} from "../src/data/image_ops.ts";
import { applyAutoAugmentOp, autoAugmentParameter } from "../src/data/autoaugment.ts";

const F = AFFINE_FILL;

/** CHW image from three row-major planes. */
function image(r: number[][], g: number[][], b: number[][]): Uint8Array {
  return Uint8Array.from([...r.flat(), ...g.flat(), ...b.flat()]);
}

/** The plane of channel `c` as rows. */
function plane(img: Uint8Array, c: number, h: number, w: number): number[][] {
  return Array.from(
    { length: h },
    (_, y) => Array.from(img.subarray(c * h * w + y * w, c * h * w + (y + 1) * w)),
  );
}

/** 4×4 test pattern: red = 10·row + col + 1, green = red + 100, blue = red + 200. */
const P = (y: number, x: number): number => 10 * y + x + 1;
const grid = (f: (y: number, x: number) => number, h = 4, w = 4): number[][] =>
  Array.from({ length: h }, (_, y) => Array.from({ length: w }, (_, x) => f(y, x)));
const pattern = image(grid(P), grid((y, x) => P(y, x) + 100), grid((y, x) => P(y, x) + 200));

/** Expected planes from a map of output pixel → source (row, col) or fill. */
function expectGeometric(
  out: Uint8Array,
  map: ([number, number] | null)[][],
  message: string,
): void {
  for (let c = 0; c < 3; c++) {
    const want = map.map((row) => row.map((s) => s === null ? F : P(s[0], s[1]) + 100 * c));
    assert.deepEqual(plane(out, c, 4, 4), want, `${message}, channel ${c}`);
  }
}

function run(
  op: (src: Uint8Array, dst: Uint8Array, h: number, w: number, v: number) => void,
  src: Uint8Array,
  h: number,
  w: number,
  v = 0,
): Uint8Array {
  const dst = new Uint8Array(src.length);
  op(src, dst, h, w, v);
  return dst;
}

Deno.test("ShearX: output (x, y) reads source floor(x + ½ + s·(y + ½))", () => {
  // s = 0.3: rows 0,1 shift by floor(0.65), floor(0.95) = 0; rows 2,3 by floor(1.25), floor(1.55) = 1.
  expectGeometric(run(shearX, pattern, 4, 4, 0.3), [
    [[0, 0], [0, 1], [0, 2], [0, 3]],
    [[1, 0], [1, 1], [1, 2], [1, 3]],
    [[2, 1], [2, 2], [2, 3], null],
    [[3, 1], [3, 2], [3, 3], null],
  ], "shear 0.3");
  // s = −0.3: x + 0.5 − 0.15, − 0.45, − 0.75, − 1.05 → shifts 0, 0, −1 (x=0 reads −0.25: fill), −1.
  expectGeometric(run(shearX, pattern, 4, 4, -0.3), [
    [[0, 0], [0, 1], [0, 2], [0, 3]],
    [[1, 0], [1, 1], [1, 2], [1, 3]],
    [null, [2, 0], [2, 1], [2, 2]],
    [null, [3, 0], [3, 1], [3, 2]],
  ], "shear -0.3");
});

Deno.test("ShearY: output (x, y) reads source row floor(y + ½ + s·(x + ½))", () => {
  // Columns 0, 1 stay (0.15, 0.45), columns 2, 3 move up by one (0.75 → 1.25, 1.05 → 1.55).
  expectGeometric(run(shearY, pattern, 4, 4, 0.3), [
    [[0, 0], [0, 1], [1, 2], [1, 3]],
    [[1, 0], [1, 1], [2, 2], [2, 3]],
    [[2, 0], [2, 1], [3, 2], [3, 3]],
    [[3, 0], [3, 1], null, null],
  ], "shearY 0.3");
});

Deno.test("TranslateX / TranslateY: whole and fractional offsets", () => {
  expectGeometric(run(translateX, pattern, 4, 4, 1), [
    [[0, 1], [0, 2], [0, 3], null],
    [[1, 1], [1, 2], [1, 3], null],
    [[2, 1], [2, 2], [2, 3], null],
    [[3, 1], [3, 2], [3, 3], null],
  ], "translateX 1");
  // Level 9 on a 4-pixel image: 150/331·4 = 1.8127 px. Negative: x + 0.5 − 1.8127 reads
  // −1.31, −0.31 (fill), 0.69 → 0, 1.69 → 1: a shift of 2 to the right.
  const t = autoAugmentParameter("TranslateX", 9, 4, 4);
  assert.ok(Math.abs(t - 600 / 331) < 1e-12);
  expectGeometric(run(translateX, pattern, 4, 4, -t), [
    [null, null, [0, 0], [0, 1]],
    [null, null, [1, 0], [1, 1]],
    [null, null, [2, 0], [2, 1]],
    [null, null, [3, 0], [3, 1]],
  ], "translateX -1.81");
  expectGeometric(run(translateY, pattern, 4, 4, -1), [
    [null, null, null, null],
    [[0, 0], [0, 1], [0, 2], [0, 3]],
    [[1, 0], [1, 1], [1, 2], [1, 3]],
    [[2, 0], [2, 1], [2, 2], [2, 3]],
  ], "translateY -1");
});

Deno.test("Rotate: counter-clockwise about the centre, nearest, fill 128", () => {
  // 90°: out (x, y) reads (row x, col 3 − y); the top-right corner lands top-left.
  expectGeometric(run(rotate, pattern, 4, 4, 90), [
    [[0, 3], [1, 3], [2, 3], [3, 3]],
    [[0, 2], [1, 2], [2, 2], [3, 2]],
    [[0, 1], [1, 1], [2, 1], [3, 1]],
    [[0, 0], [1, 0], [2, 0], [3, 0]],
  ], "rotate 90");
  // 30°: source = c + Rᵀ(p − c) with c = (2, 2), Rᵀ = [cos −sin; sin cos]. E.g. out (0, 0):
  // p − c = (−1.5, −1.5) → x = 2 − 1.299 + 0.75 = 1.451, y = 2 − 0.75 − 1.299 = −0.049: fill.
  // out (1, 0): (−0.5, −1.5) → x = 2.317, y = 0.451 → (row 0, col 2).
  expectGeometric(run(rotate, pattern, 4, 4, 30), [
    [null, [0, 2], [0, 3], null],
    [[0, 0], [1, 1], [1, 2], [2, 3]],
    [[1, 0], [2, 1], [2, 2], [3, 3]],
    [null, [3, 0], [3, 1], null],
  ], "rotate 30");
  expectGeometric(run(rotate, pattern, 4, 4, -30), [
    [null, [0, 0], [0, 1], null],
    [[2, 0], [1, 1], [1, 2], [0, 3]],
    [[3, 0], [2, 1], [2, 2], [1, 3]],
    [null, [3, 2], [3, 3], null],
  ], "rotate -30");
  // Any size works, including 1×1 (the centre pixel maps to itself).
  assert.deepEqual(run(rotate, Uint8Array.of(5, 6, 7), 1, 1, 17), Uint8Array.of(5, 6, 7));
});

Deno.test("AutoContrast: each channel stretched to 0..255, constant channels kept", () => {
  const img = image([[50, 100], [150, 200]], [[7, 7], [7, 7]], [[0, 1], [2, 3]]);
  const out = run(autoContrast, img, 2, 2);
  // (v − 50)·255/150: 0, 85, 170, 255; blue (v·255/3): 0, 85, 170, 255.
  assert.deepEqual(plane(out, 0, 2, 2), [[0, 85], [170, 255]]);
  assert.deepEqual(plane(out, 1, 2, 2), [[7, 7], [7, 7]]);
  assert.deepEqual(plane(out, 2, 2, 2), [[0, 85], [170, 255]]);
  // floor, not round: lo = 0, hi = 7 → 1·255/7 = 36.43 → 36, 3·255/7 = 109.29 → 109.
  const odd = run(autoContrast, image([[0, 1], [3, 7]], [[0, 0], [0, 0]], [[0, 0], [0, 0]]), 2, 2);
  assert.deepEqual(plane(odd, 0, 2, 2), [[0, 36], [109, 255]]);
});

Deno.test("Invert", () => {
  const out = run(invert, image([[0, 255]], [[1, 254]], [[100, 128]]), 1, 2);
  assert.deepEqual(Array.from(out), [255, 0, 254, 1, 155, 127]);
});

Deno.test("Equalize: PIL histogram equalisation per channel", () => {
  const h = 32, w = 32, n = h * w;
  // Red: 512 × 10, 512 × 20 → step = (1024 − 512) div 256 = 2; lut[10] = 1 div 2 = 0,
  //      lut[20] = (1 + 512) div 2 = 256 → 255.
  // Green: 256 × 0, 256 × 100, 512 × 200 → step 2; 0 → 0, 100 → 257 div 2 = 128, 200 → 255.
  // Blue: 256 each of 5, 6, 7, 8 → step = 768 div 256 = 3; 5 → 1 div 3 = 0, 6 → 257 div 3 = 85,
  //       7 → 513 div 3 = 171, 8 → 769 div 3 = 256 → 255.
  const img = new Uint8Array(3 * n);
  for (let i = 0; i < n; i++) {
    img[i] = i < 512 ? 10 : 20;
    img[n + i] = i < 256 ? 0 : i < 512 ? 100 : 200;
    img[2 * n + i] = 5 + Math.floor(i / 256);
  }
  const out = run(equalize, img, h, w);
  for (let i = 0; i < n; i++) {
    assert.equal(out[i], i < 512 ? 0 : 255);
    assert.equal(out[n + i], i < 256 ? 0 : i < 512 ? 128 : 255);
    assert.equal(out[2 * n + i], [0, 85, 171, 255][Math.floor(i / 256)]);
  }
  // Tiny images: step = 0 → unchanged (as PIL).
  const tiny = image([[1, 2], [3, 4]], [[9, 9], [9, 9]], [[0, 255], [0, 255]]);
  assert.deepEqual(run(equalize, tiny, 2, 2), tiny);
});

Deno.test("Solarize: values ≥ threshold inverted", () => {
  const img = image([[0, 127]], [[128, 200]], [[255, 64]]);
  assert.deepEqual(Array.from(run(solarize, img, 1, 2, 128)), [0, 127, 127, 55, 0, 64]);
  assert.deepEqual(run(solarize, img, 1, 2, 256), img);
  assert.deepEqual(Array.from(run(solarize, img, 1, 2, 0)), [255, 128, 127, 55, 0, 191]);
  // Non-integer thresholds from the magnitude levels: 256 − 256·2/9 = 199.1 → 200 inverted.
  assert.deepEqual(
    Array.from(run(solarize, img, 1, 2, autoAugmentParameter("Solarize", 2, 1, 2))),
    [0, 127, 128, 55, 0, 64],
  );
});

Deno.test("Posterize: keep the top bits", () => {
  const img = image([[255, 128]], [[127, 15]], [[16, 200]]);
  // 4 bits: & 0xF0.
  assert.deepEqual(Array.from(run(posterize, img, 1, 2, 4)), [240, 128, 112, 0, 16, 192]);
  // 1 bit: & 0x80.
  assert.deepEqual(Array.from(run(posterize, img, 1, 2, 1)), [128, 128, 0, 0, 0, 128]);
  assert.deepEqual(run(posterize, img, 1, 2, 8), img);
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((m) => autoAugmentParameter("Posterize", m, 32, 32)),
    [
      8,
      8,
      7,
      7,
      6,
      6,
      5,
      5,
      4,
      4,
    ],
  );
});

Deno.test("Brightness: blend with black, truncated and clamped", () => {
  const img = image([[100, 101]], [[200, 3]], [[0, 255]]);
  // 0.5: 50, 50.5 → 50, 100, 1.5 → 1, 0, 127.5 → 127.
  assert.deepEqual(Array.from(run(brightness, img, 1, 2, 0.5)), [50, 50, 100, 1, 0, 127]);
  // 1.5: 150, 151.5 → 151, 300 → 255, 4.5 → 4, 0, 382.5 → 255.
  assert.deepEqual(Array.from(run(brightness, img, 1, 2, 1.5)), [150, 151, 255, 4, 0, 255]);
  assert.deepEqual(run(brightness, img, 1, 2, 1), img);
});

Deno.test("Color: blend with the PIL luma image", () => {
  // Red pixel: L = (255·19595 + 32768) >> 16 = 76. Green: (255·38470 + 32768) >> 16 = 150.
  const img = image([[255, 0]], [[0, 255]], [[0, 0]]);
  assert.deepEqual(Array.from(run(color, img, 1, 2, 0)), [76, 150, 76, 150, 76, 150]);
  // 0.5: red pixel → 76 + 0.5·179 = 165.5 → 165, 76 − 38 = 38, 38;
  //      green pixel → 150 − 75 = 75, 150 + 52.5 = 202.5 → 202, 75.
  assert.deepEqual(Array.from(run(color, img, 1, 2, 0.5)), [165, 75, 38, 202, 38, 75]);
  // 1.5: red → 76 + 268.5 → 255, 76 − 114 → 0, 0; green → 150 − 225 → 0, 150 + 157.5 → 255, 0.
  assert.deepEqual(Array.from(run(color, img, 1, 2, 1.5)), [255, 0, 0, 255, 0, 0]);
  // Grey pixels are fixed points.
  const grey = image([[90]], [[90]], [[90]]);
  assert.deepEqual(run(color, grey, 1, 1, 1.9), grey);
});

Deno.test("Contrast: blend with the rounded mean luma", () => {
  // Greys 0, 50, 100, 250: mean luma 100. Factor 1.5: 100 + 1.5·(v − 100) → −50 → 0, 25, 100,
  // 325 → 255.
  const g = [[0, 50], [100, 250]];
  const out = run(contrast, image(g, g, g), 2, 2, 1.5);
  for (let c = 0; c < 3; c++) assert.deepEqual(plane(out, c, 2, 2), [[0, 25], [100, 255]]);
  // Red and green pixels: lumas 76 and 150, mean 113 (113.0 → 113). Factor 0.5: 113 + ½(v − 113):
  // 255 → 184, 0 → 56.5 → 56.
  const rg = run(contrast, image([[255, 0]], [[0, 255]], [[0, 0]]), 1, 2, 0.5);
  assert.deepEqual(Array.from(rg), [184, 56, 56, 184, 56, 56]);
  // Mean rounds half up: greys 0 and 1 → mean 0.5 → 1; factor 0 gives a flat 1.
  const half = run(contrast, image([[0, 1]], [[0, 1]], [[0, 1]]), 1, 2, 0);
  assert.deepEqual(Array.from(half), [1, 1, 1, 1, 1, 1]);
});

Deno.test("Sharpness: blend with the 3×3 smoothed image, border kept", () => {
  // 3×3 of 10 with a 62 centre: smoothed centre = (8·10 + 5·62)/13 = 390/13 = 30.
  const g = [[10, 10, 10], [10, 62, 10], [10, 10, 10]];
  const img = image(g, g, g);
  const at = (f: number): number[][] => plane(run(sharpness, img, 3, 3, f), 0, 3, 3);
  assert.deepEqual(at(0), [[10, 10, 10], [10, 30, 10], [10, 10, 10]]);
  assert.deepEqual(at(0.5), [[10, 10, 10], [10, 46, 10], [10, 10, 10]]); // 30 + 16
  assert.deepEqual(at(2), [[10, 10, 10], [10, 94, 10], [10, 10, 10]]); // 30 + 64
  assert.deepEqual(at(1), g);
  // The smoothed value is rounded: centre 2 in zeros → 10/13 = 0.77 → 1 (truncation would say 0).
  const z = [[0, 0, 0], [0, 2, 0], [0, 0, 0]];
  assert.equal(plane(run(sharpness, image(z, z, z), 3, 3, 0), 0, 3, 3)[1][1], 1);
  // 4×4: every interior pixel uses its own neighbourhood. Ramp 0..15 row-major: interior (1,1)
  // sum = 0+1+2+4+6+8+9+10 + 5·5 = 65 → 5, i.e. a linear ramp is a fixed point.
  const ramp = grid((y, x) => 4 * y + x);
  const r = run(sharpness, image(ramp, ramp, ramp), 4, 4, 0);
  assert.deepEqual(plane(r, 0, 4, 4), ramp);
  // Images under 3×3 have no interior: unchanged.
  const small = image([[1, 200]], [[3, 4]], [[5, 6]]);
  assert.deepEqual(run(sharpness, small, 1, 2, 0), small);
});

Deno.test("applyAutoAugmentOp: levels, signs and enhancement factors", () => {
  const img = image([[100, 100]], [[100, 100]], [[100, 100]]);
  const dst = new Uint8Array(6);
  // Brightness level 9 = 1 ± 0.9: −1 → 0.1 → 10; +1 → 1.9 → 190.
  applyAutoAugmentOp("Brightness", img, dst, 1, 2, autoAugmentParameter("Brightness", 9, 1, 2), -1);
  assert.deepEqual(Array.from(dst), [10, 10, 10, 10, 10, 10]);
  applyAutoAugmentOp("Brightness", img, dst, 1, 2, autoAugmentParameter("Brightness", 9, 1, 2), 1);
  assert.deepEqual(Array.from(dst), [190, 190, 190, 190, 190, 190]);
  // Level 0 of an enhancement is the identity.
  const same = new Uint8Array(pattern.length);
  applyAutoAugmentOp(
    "Contrast",
    pattern,
    same,
    4,
    4,
    autoAugmentParameter("Contrast", 0, 4, 4),
    -1,
  );
  assert.deepEqual(same, pattern);
  // Signed geometric ops: sign −1 at level 9 is rotate(−30°), shear −0.3.
  const rot = new Uint8Array(pattern.length);
  applyAutoAugmentOp("Rotate", pattern, rot, 4, 4, autoAugmentParameter("Rotate", 9, 4, 4), -1);
  assert.deepEqual(rot, run(rotate, pattern, 4, 4, -30));
  const sh = new Uint8Array(pattern.length);
  applyAutoAugmentOp("ShearX", pattern, sh, 4, 4, autoAugmentParameter("ShearX", 9, 4, 4), -1);
  assert.deepEqual(sh, run(shearX, pattern, 4, 4, -0.3));
  // Unsigned ops ignore the sign.
  const inv = new Uint8Array(pattern.length);
  applyAutoAugmentOp("Invert", pattern, inv, 4, 4, 0, -1);
  assert.deepEqual(inv, run(invert, pattern, 4, 4));
});

Deno.test("ops validate their arguments", () => {
  const img = new Uint8Array(12);
  assert.throws(() => shearX(img, img, 2, 2, 0.1), /shearX|affine: dst must be a different array/);
  assert.throws(
    () => invert(img, new Uint8Array(11), 2, 2),
    /invert: dst must be a Uint8Array of 3 \* 2 \* 2 = 12 bytes/,
  );
  assert.throws(
    () => posterize(img, img, 2, 2, 0),
    /posterize: bits must be an integer in 1\.\.8, got 0/,
  );
  assert.throws(
    () => solarize(img, img, 2, 2, 300),
    /solarize: threshold must be in 0\.\.256, got 300/,
  );
  assert.throws(
    () => brightness(img, img, 2, 2, -1),
    /brightness: factor must be a finite number >= 0, got -1/,
  );
  assert.throws(
    () => rotate(img, new Uint8Array(12), 2, 2, NaN),
    /rotate: degrees must be a finite number/,
  );
  assert.throws(
    () => autoAugmentParameter("Rotate", 10, 2, 2),
    /magnitude must be an integer in 0\.\.9, got 10/,
  );
  assert.throws(
    () => applyAutoAugmentOp("Blur" as "Rotate", img, new Uint8Array(12), 2, 2, 1),
    /op must be an AutoAugment operation name, got "Blur"/,
  );
});

Deno.test("enhancements and solarize equal a per-pixel float32 blend at every AutoAugment level", () => {
  // The reference blends every pixel itself, as PIL does: trunc(clamp(D + f·(I − D))) in
  // single precision with D the degenerate value; the operations use lookup tables instead.
  const blend = (d: number, v: number, f: number): number => {
    const x = Math.fround(d + Math.fround(Math.fround(f) * (v - d)));
    return x <= 0 ? 0 : x >= 255 ? 255 : Math.trunc(x);
  };
  const lumaOf = (r: number, g: number, b: number): number =>
    (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
  let state = 12345;
  const next = (): number => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) >>> 24;
  for (const [h, w] of [[32, 32], [5, 7], [2, 3], [1, 1]]) {
    const n = h * w;
    const src = Uint8Array.from({ length: 3 * n }, next);
    let sum = 0;
    const luma = Array.from({ length: n }, (_, i) => lumaOf(src[i], src[i + n], src[i + 2 * n]));
    for (const l of luma) sum += l;
    const mean = Math.floor(sum / n + 0.5);
    const factors = [0, 1, 2, 0.37];
    for (let m = 0; m <= 9; m++) factors.push(1 + 0.9 * m / 9, 1 - 0.9 * m / 9);
    for (const f of factors) {
      const want = {
        brightness: Array.from(src, (v) => blend(0, v, f)),
        contrast: Array.from(src, (v) => blend(mean, v, f)),
        color: Array.from(src, (v, i) => blend(luma[i % n], v, f)),
        sharpness: Array.from(src, (v, i) => {
          const o = Math.floor(i / n) * n;
          const y = Math.floor((i - o) / w);
          const x = (i - o) % w;
          if (y === 0 || x === 0 || y === h - 1 || x === w - 1) return v;
          let s = 4 * v;
          for (let dy = -1; dy <= 1; dy++) {
            for (let dx = -1; dx <= 1; dx++) s += src[o + (y + dy) * w + x + dx];
          }
          return blend(Math.floor(s / 13 + 0.5), v, f);
        }),
      };
      for (
        const [name, op] of [["brightness", brightness], ["contrast", contrast], [
          "color",
          color,
        ], ["sharpness", sharpness]] as const
      ) {
        assert.deepEqual(Array.from(run(op, src, h, w, f)), want[name], `${name} ${f} ${h}×${w}`);
      }
    }
    for (let m = 0; m <= 9; m++) {
      const t = 256 - 256 * m / 9;
      const want = Array.from(src, (v) => (v >= t ? 255 - v : v));
      assert.deepEqual(Array.from(run(solarize, src, h, w, t)), want, `solarize ${t}`);
    }
  }
});
