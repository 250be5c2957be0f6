// CPU convolution kernels against naive float64 loops, finite differences and the adjoint identity.

import assert from "node:assert/strict";
import type { Conv2dShape } from "../src/device/device.ts";
import { conv2dBackwardData, conv2dBackwardFilter, conv2dForward } from "../src/device/cpu/conv.ts";
import { cpuDevice } from "../src/device/cpu.ts";

/** Deterministic uniform values in [-1, 1). */
function random(len: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(len);
  for (let i = 0; i < len; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

function geometry(
  n: number,
  cIn: number,
  h: number,
  w: number,
  cOut: number,
  kH: number,
  kW: number,
  strideH: number,
  strideW: number,
  padH: number,
  padW: number,
): Conv2dShape {
  const outH = Math.floor((h + 2 * padH - kH) / strideH) + 1;
  const outW = Math.floor((w + 2 * padW - kW) / strideW) + 1;
  return { n, cIn, h, w, cOut, kH, kW, strideH, strideW, padH, padW, outH, outW };
}

/**
 * Visits every (output element, input element, weight element) triple of the convolution, with
 * zero padding skipped, in float64.
 */
function eachTerm(s: Conv2dShape, f: (yi: number, xi: number, wi: number) => void): void {
  for (let b = 0; b < s.n; b++) {
    for (let k = 0; k < s.cOut; k++) {
      for (let i = 0; i < s.outH; i++) {
        for (let j = 0; j < s.outW; j++) {
          const yi = ((b * s.cOut + k) * s.outH + i) * s.outW + j;
          for (let c = 0; c < s.cIn; c++) {
            for (let r = 0; r < s.kH; r++) {
              const ih = i * s.strideH + r - s.padH;
              if (ih < 0 || ih >= s.h) continue;
              for (let q = 0; q < s.kW; q++) {
                const iw = j * s.strideW + q - s.padW;
                if (iw < 0 || iw >= s.w) continue;
                f(
                  yi,
                  ((b * s.cIn + c) * s.h + ih) * s.w + iw,
                  ((k * s.cIn + c) * s.kH + r) * s.kW + q,
                );
              }
            }
          }
        }
      }
    }
  }
}

interface Reference {
  value: Float64Array;
  /** Σ |term| per element: bounds the float32 rounding error. */
  mag: Float64Array;
}

function refForward(x: Float32Array, w: Float32Array, s: Conv2dShape): Reference {
  const len = s.n * s.cOut * s.outH * s.outW;
  const value = new Float64Array(len), mag = new Float64Array(len);
  eachTerm(s, (yi, xi, wi) => {
    const t = x[xi] * w[wi];
    value[yi] += t;
    mag[yi] += Math.abs(t);
  });
  return { value, mag };
}

function refBackwardData(w: Float32Array, dy: Float32Array, s: Conv2dShape): Reference {
  const len = s.n * s.cIn * s.h * s.w;
  const value = new Float64Array(len), mag = new Float64Array(len);
  eachTerm(s, (yi, xi, wi) => {
    const t = dy[yi] * w[wi];
    value[xi] += t;
    mag[xi] += Math.abs(t);
  });
  return { value, mag };
}

function refBackwardFilter(x: Float32Array, dy: Float32Array, s: Conv2dShape): Reference {
  const len = s.cOut * s.cIn * s.kH * s.kW;
  const value = new Float64Array(len), mag = new Float64Array(len);
  eachTerm(s, (yi, xi, wi) => {
    const t = dy[yi] * x[xi];
    value[wi] += t;
    mag[wi] += Math.abs(t);
  });
  return { value, mag };
}

/** Float32 accumulation of k terms: error well under 1e-5 of Σ|term| for these sizes. */
function assertClose(got: Float32Array, ref: Reference, what: string): void {
  assert.equal(got.length, ref.value.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i] - ref.value[i]);
    const tol = 1e-5 * ref.mag[i] + 1e-12;
    if (!(err <= tol)) {
      assert.fail(`${what}[${i}]: got ${got[i]}, expected ${ref.value[i]} (error ${err} > ${tol})`);
    }
  }
}

function sizes(s: Conv2dShape): { x: number; w: number; y: number } {
  return {
    x: s.n * s.cIn * s.h * s.w,
    w: s.cOut * s.cIn * s.kH * s.kW,
    y: s.n * s.cOut * s.outH * s.outW,
  };
}

function dot(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}

const cases: [string, Conv2dShape][] = [
  ["3x3 pad 1 stride 1, non-square", geometry(2, 3, 5, 7, 4, 3, 3, 1, 1, 1, 1)],
  ["3x3 pad 1 stride 2", geometry(3, 2, 6, 5, 5, 3, 3, 2, 2, 1, 1)],
  ["3x3 pad 0 stride 1, non-square", geometry(2, 3, 6, 9, 2, 3, 3, 1, 1, 0, 0)],
  ["3x3 pad 2 stride 1", geometry(2, 2, 4, 5, 3, 3, 3, 1, 1, 2, 2)],
  ["3x3 pad 0 stride 2, odd leftover", geometry(2, 3, 8, 7, 4, 3, 3, 2, 2, 0, 0)],
  ["5x3 pad (2,1) stride 1", geometry(2, 4, 7, 6, 3, 5, 3, 1, 1, 2, 1)],
  ["5x3 pad (2,0) stride (2,1)", geometry(3, 2, 9, 6, 3, 5, 3, 2, 1, 2, 0)],
  ["5x3 pad (1,2) stride (1,2)", geometry(2, 3, 6, 7, 2, 5, 3, 1, 2, 1, 2)],
  ["1x1 stride 1 pad 0", geometry(3, 5, 4, 3, 2, 1, 1, 1, 1, 0, 0)],
  ["1x1 stride 2 pad 0", geometry(2, 6, 7, 5, 4, 1, 1, 2, 2, 0, 0)],
  ["1x1 stride 1 pad 2 (pad beyond kernel)", geometry(2, 3, 3, 4, 2, 1, 1, 1, 1, 2, 2)],
  ["kernel as large as the padded input", geometry(2, 2, 3, 3, 3, 5, 5, 1, 1, 1, 1)],
  ["1x3 pad (0,1), no vertical padding", geometry(2, 3, 4, 5, 2, 1, 3, 1, 1, 0, 1)],
  ["3x1 pad (1,0)", geometry(2, 3, 4, 5, 2, 3, 1, 1, 1, 1, 0)],
  ["1x7 pad (0,3) on a 1-wide input", geometry(2, 2, 3, 1, 2, 1, 7, 1, 1, 0, 3)],
  ["5x5 pad 2 on a 2x2 input", geometry(2, 3, 2, 2, 2, 5, 5, 1, 1, 2, 2)],
  ["chunked batch with a partial last chunk", geometry(23, 16, 32, 32, 4, 3, 3, 1, 1, 1, 1)],
  ["chunked thin input with a partial last chunk", geometry(40, 3, 32, 32, 4, 3, 3, 1, 1, 1, 1)],
  ["chunked stride-2 batch", geometry(20, 16, 16, 16, 8, 3, 3, 2, 2, 1, 1)],
  ["one sample per chunk", geometry(2, 64, 32, 32, 3, 3, 3, 1, 1, 1, 1)],
  ["one sample per im2col chunk", geometry(2, 64, 32, 32, 3, 3, 3, 2, 2, 1, 1)],
  ["3-channel stem", geometry(5, 3, 12, 12, 16, 3, 3, 1, 1, 1, 1)],
  // Row lengths that the kernels pad to keep their in-buffer copies clear of 4K aliasing.
  ["stride 2 with a padded column matrix", geometry(2, 2, 32, 32, 2, 3, 3, 2, 2, 1, 1)],
  ["3x3 pad 1 on a 1x1 input (padded packed rows)", geometry(2, 2, 1, 1, 3, 3, 3, 1, 1, 1, 1)],
  ["thin 3x3 pad 1 on a 1x1 input", geometry(2, 1, 1, 1, 3, 3, 3, 1, 1, 1, 1)],
  // Shapes the native direct 3×3 kernel takes (rows of 8k pixels, channels in blocks of 8).
  ["direct 3x3: 8 to 16 channels, 8-wide rows", geometry(3, 8, 4, 8, 16, 3, 3, 1, 1, 1, 1)],
  ["direct 3x3: 16 to 8 channels, 16-wide rows", geometry(2, 16, 2, 16, 8, 3, 3, 1, 1, 1, 1)],
  ["direct 3x3: 24 channels on 8x8, odd batch", geometry(5, 24, 8, 8, 24, 3, 3, 1, 1, 1, 1)],
  ["direct 3x3: 32-wide rows, 9 samples", geometry(9, 8, 3, 32, 8, 3, 3, 1, 1, 1, 1)],
  ["direct 3x3 stride 2: 16x16 to 8x8", geometry(3, 4, 16, 16, 8, 3, 3, 2, 2, 1, 1)],
  ["direct 3x3 stride 2: 4x32 to 2x16, 16 channels", geometry(2, 6, 4, 32, 16, 3, 3, 2, 2, 1, 1)],
  ["direct 3x3 stride 2: 8 input channels", geometry(3, 8, 16, 16, 8, 3, 3, 2, 2, 1, 1)],
  ["direct 3x3: odd output channels (filter remainder)", geometry(2, 8, 4, 8, 3, 3, 3, 1, 1, 1, 1)],
  ["direct 3x3 stride 2: 16 to 32 channels, 32x32", geometry(2, 16, 32, 32, 32, 3, 3, 2, 2, 1, 1)],
];

for (const [name, s] of cases) {
  Deno.test(`conv2d ${name}: forward and both backwards match float64 loops`, () => {
    const n = sizes(s);
    const x = random(n.x, 1), w = random(n.w, 2), dy = random(n.y, 3);
    const y = new Float32Array(n.y).fill(7);
    conv2dForward(x, w, y, s);
    assertClose(y, refForward(x, w, s), "y");
    const dx = new Float32Array(n.x).fill(7);
    conv2dBackwardData(w, dy, dx, s);
    assertClose(dx, refBackwardData(w, dy, s), "dx");
    const dw = new Float32Array(n.w).fill(7);
    conv2dBackwardFilter(x, dy, dw, s);
    assertClose(dw, refBackwardFilter(x, dy, s), "dw");

    // <conv(x, w), dy> = <x, dx> = <w, dw>: the backwards are the adjoints of the forward.
    const a = dot(y, dy), b = dot(x, dx), c = dot(w, dw);
    const scale = Math.sqrt(n.x * n.w) + 1;
    assert.ok(Math.abs(a - b) <= 1e-5 * scale, `<y,dy> = ${a} but <x,dx> = ${b}`);
    assert.ok(Math.abs(a - c) <= 1e-5 * scale, `<y,dy> = ${a} but <w,dw> = ${c}`);
  });
}

/** L(x, w) = Σ conv(x, w) · dy in float64. */
function loss64(x: Float64Array, w: Float64Array, dy: Float32Array, s: Conv2dShape): number {
  let sum = 0;
  eachTerm(s, (yi, xi, wi) => {
    sum += x[xi] * w[wi] * dy[yi];
  });
  return sum;
}

const tiny: [string, Conv2dShape][] = [
  ["3x3 pad 1 stride 1", geometry(2, 2, 4, 3, 3, 3, 3, 1, 1, 1, 1)],
  ["3x3 pad 1 stride 2", geometry(2, 2, 5, 4, 2, 3, 3, 2, 2, 1, 1)],
  ["5x3 pad (2,0) stride (1,2)", geometry(1, 2, 5, 5, 2, 5, 3, 1, 2, 2, 0)],
  ["1x1", geometry(2, 3, 2, 3, 2, 1, 1, 1, 1, 0, 0)],
  ["direct 3x3 (8 channels, 8-wide rows)", geometry(2, 8, 2, 8, 8, 3, 3, 1, 1, 1, 1)],
  ["direct 3x3 stride 2 (4x16 to 2x8)", geometry(2, 2, 4, 16, 8, 3, 3, 2, 2, 1, 1)],
  ["direct 3x3 stride 2, 8 input channels", geometry(2, 8, 4, 16, 2, 3, 3, 2, 2, 1, 1)],
];

for (const [name, s] of tiny) {
  Deno.test(`conv2d ${name}: backwards match central differences of the float64 loss`, () => {
    const n = sizes(s);
    const x = random(n.x, 11), w = random(n.w, 12), dy = random(n.y, 13);
    const dx = new Float32Array(n.x), dw = new Float32Array(n.w);
    conv2dBackwardData(w, dy, dx, s);
    conv2dBackwardFilter(x, dy, dw, s);
    const x64 = Float64Array.from(x), w64 = Float64Array.from(w);
    const h = 1e-3;
    for (const [param, grad, label] of [[x64, dx, "dx"], [w64, dw, "dw"]] as const) {
      for (let i = 0; i < param.length; i++) {
        const keep = param[i];
        param[i] = keep + h;
        const up = loss64(x64, w64, dy, s);
        param[i] = keep - h;
        const down = loss64(x64, w64, dy, s);
        param[i] = keep;
        const fd = (up - down) / (2 * h);
        assert.ok(
          Math.abs(fd - grad[i]) <= 1e-5 * (1 + Math.abs(fd)),
          `${label}[${i}]: finite difference ${fd}, kernel ${grad[i]}`,
        );
      }
    }
  });
}

Deno.test("conv2d through the CPU device matches the kernels", () => {
  const s = geometry(3, 4, 6, 6, 5, 3, 3, 2, 2, 1, 1);
  const n = sizes(s);
  const x = random(n.x, 21), w = random(n.w, 22), dy = random(n.y, 23);
  const dev = cpuDevice();
  const bx = dev.alloc("f32", n.x), bw = dev.alloc("f32", n.w), bdy = dev.alloc("f32", n.y);
  const by = dev.alloc("f32", n.y), bdx = dev.alloc("f32", n.x), bdw = dev.alloc("f32", n.w);
  dev.upload(bx, x);
  dev.upload(bw, w);
  dev.upload(bdy, dy);
  dev.conv2dForward(bx, bw, by, s);
  dev.conv2dBackwardData(bw, bdy, bdx, s);
  dev.conv2dBackwardFilter(bx, bdy, bdw, s);
  const y = new Float32Array(n.y), dx = new Float32Array(n.x), dw = new Float32Array(n.w);
  dev.download(by, y);
  dev.download(bdx, dx);
  dev.download(bdw, dw);
  assertClose(y, refForward(x, w, s), "y");
  assertClose(dx, refBackwardData(w, dy, s), "dx");
  assertClose(dw, refBackwardFilter(x, dy, s), "dw");
  for (const b of [bx, bw, bdy, by, bdx, bdw]) dev.free(b);
});

Deno.test("conv2d rejects buffers whose length does not match the geometry", () => {
  const s = geometry(2, 3, 4, 4, 2, 3, 3, 1, 1, 1, 1);
  const n = sizes(s);
  const x = new Float32Array(n.x), w = new Float32Array(n.w), y = new Float32Array(n.y);
  const short = (len: number) => new Float32Array(len - 1);
  assert.throws(() => conv2dForward(short(n.x), w, y, s), {
    name: "RangeError",
    message: /conv2dForward: x must hold n·cIn·h·w = 96 elements, got 95/,
  });
  assert.throws(() => conv2dForward(x, short(n.w), y, s), {
    name: "RangeError",
    message: /w must hold cOut·cIn·kH·kW = 54 elements, got 53/,
  });
  assert.throws(() => conv2dForward(x, w, new Float32Array(n.y + 1), s), {
    name: "RangeError",
    message: /y must hold n·cOut·outH·outW = 64 elements, got 65/,
  });
  assert.throws(() => conv2dBackwardData(w, short(n.y), x, s), {
    name: "RangeError",
    message: /conv2dBackwardData: dy must hold .* = 64 elements, got 63/,
  });
  assert.throws(() => conv2dBackwardData(w, y, short(n.x), s), {
    name: "RangeError",
    message: /conv2dBackwardData: dx must hold/,
  });
  assert.throws(() => conv2dBackwardFilter(x, y, short(n.w), s), {
    name: "RangeError",
    message: /conv2dBackwardFilter: dw must hold .* = 54 elements, got 53/,
  });
  assert.throws(() => conv2dForward(x, w, y, { ...s, outH: 3 }), {
    name: "RangeError",
    message: /shape\.outH must be .* = 4 .*, got 3/,
  });
  const shared = new Float32Array(n.x + n.y);
  assert.throws(
    () => conv2dForward(shared.subarray(0, n.x), w, shared.subarray(n.x - 1, n.x + n.y - 1), s),
    {
      name: "RangeError",
      message: /conv2dForward: y must not share memory with x/,
    },
  );
  assert.throws(() => conv2dBackwardFilter(x, y, y.subarray(0, n.w), s), {
    name: "RangeError",
    message: /conv2dBackwardFilter: dw must not share memory with dy/,
  });
  assert.throws(() => conv2dForward(x, w, y, { ...s, strideW: 0 }), {
    name: "RangeError",
    message: /shape\.strideW must be an integer >= 1, got 0/,
  });
});
