// CPU convolution against the float64 reference loops, finite differences and the adjoint
// identity, on a device with the native kernels (when they build) and one with the TypeScript
// kernels, side by side in this process.

import assert from "node:assert/strict";
import { type Conv2dShape, convOutputSize, type Device } from "../src/device/device.ts";
import {
  referenceConv2dBackwardData,
  referenceConv2dBackwardFilter,
  referenceConv2dForward,
} from "../src/device/conv_reference.ts";
import { CpuDevice } from "../src/device/cpu.ts";

/** The two kernel variants (the GEMM backend is the environment's default). */
function variants(): [string, Device][] {
  const out: [string, Device][] = [[
    "TypeScript kernels",
    new CpuDevice({ kernels: "typescript" }),
  ]];
  try {
    out.unshift(["native kernels", new CpuDevice({ kernels: "native" })]);
  } catch (e) {
    console.log(`conv_test.ts: native kernels skipped: ${(e as Error).message.split("\n")[0]}`);
  }
  return out;
}
const DEVICES = variants();

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
  const outH = convOutputSize(h, kH, strideH, padH);
  const outW = convOutputSize(w, kW, strideW, padW);
  return { n, cIn, h, w, cOut, kH, kW, strideH, strideW, padH, padW, outH, outW };
}

interface Reference {
  value: Float64Array;
  /** Σ |term| per element: bounds the float32 rounding error. */
  mag: Float64Array;
}

type Pass = typeof referenceConv2dForward;

function reference(pass: Pass, a: Float32Array, b: Float32Array, s: Conv2dShape, len: number) {
  const mag = new Float64Array(len);
  return { value: pass(a, b, s, mag), mag };
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

type ConvOp = "conv2dForward" | "conv2dBackwardData" | "conv2dBackwardFilter";

/** Runs one pass on `dev`: uploads the two inputs, fills the output with 7, returns it. */
function runPass(
  dev: Device,
  op: ConvOp,
  first: Float32Array,
  second: Float32Array,
  outLength: number,
  s: Conv2dShape,
): Float32Array {
  const a = dev.alloc("f32", first.length), b = dev.alloc("f32", second.length);
  const out = dev.alloc("f32", outLength);
  dev.upload(a, first);
  dev.upload(b, second);
  dev.fill(out, 7, outLength);
  dev[op](a, b, out, s);
  const host = new Float32Array(outLength);
  dev.download(out, host);
  for (const buf of [a, b, out]) dev.free(buf);
  return host;
}

for (const [name, s] of cases) {
  Deno.test(`conv2d ${name}: forward and both backwards match float64 loops`, () => {
    const n = sizes(s);
    const x = random(n.x, 1), w = random(n.w, 2), dy = random(n.y, 3);
    const refY = reference(referenceConv2dForward, x, w, s, n.y);
    const refDx = reference(referenceConv2dBackwardData, w, dy, s, n.x);
    const refDw = reference(referenceConv2dBackwardFilter, x, dy, s, n.w);
    for (const [label, dev] of DEVICES) {
      const y = runPass(dev, "conv2dForward", x, w, n.y, s);
      assertClose(y, refY, `${label}: y`);
      const dx = runPass(dev, "conv2dBackwardData", w, dy, n.x, s);
      assertClose(dx, refDx, `${label}: dx`);
      const dw = runPass(dev, "conv2dBackwardFilter", x, dy, n.w, s);
      assertClose(dw, refDw, `${label}: dw`);

      // <conv(x, w), dy> = <x, dx> = <w, dw>: the backwards are the adjoints of the forward.
      const a = dot(y, dy), b = dot(x, dx), c = dot(w, dw);
      const scale = Math.sqrt(n.x * n.w) + 1;
      assert.ok(Math.abs(a - b) <= 1e-5 * scale, `${label}: <y,dy> = ${a} but <x,dx> = ${b}`);
      assert.ok(Math.abs(a - c) <= 1e-5 * scale, `${label}: <y,dy> = ${a} but <w,dw> = ${c}`);
    }
  });
}

/** L(x, w) = Σ conv(x, w) · dy in float64. */
function loss64(x: Float64Array, w: Float64Array, dy: Float32Array, s: Conv2dShape): number {
  const y = referenceConv2dForward(x, w, s);
  let sum = 0;
  for (let i = 0; i < y.length; i++) sum += y[i] * dy[i];
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
    for (const [label, dev] of DEVICES) {
      const dx = runPass(dev, "conv2dBackwardData", w, dy, n.x, s);
      const dw = runPass(dev, "conv2dBackwardFilter", x, dy, n.w, s);
      const x64 = Float64Array.from(x), w64 = Float64Array.from(w);
      const h = 1e-3;
      for (const [param, grad, what] of [[x64, dx, "dx"], [w64, dw, "dw"]] as const) {
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
            `${label}: ${what}[${i}]: finite difference ${fd}, kernel ${grad[i]}`,
          );
        }
      }
    }
  });
}

Deno.test("conv2d writes only its own elements of longer buffers", () => {
  const s = geometry(3, 4, 6, 6, 5, 3, 3, 2, 2, 1, 1);
  const n = sizes(s);
  const x = random(n.x, 21), w = random(n.w, 22), dy = random(n.y, 23);
  for (const [label, dev] of DEVICES) {
    for (
      const [op, first, second, len, ref] of [
        ["conv2dForward", x, w, n.y, reference(referenceConv2dForward, x, w, s, n.y)],
        ["conv2dBackwardData", w, dy, n.x, reference(referenceConv2dBackwardData, w, dy, s, n.x)],
        [
          "conv2dBackwardFilter",
          x,
          dy,
          n.w,
          reference(referenceConv2dBackwardFilter, x, dy, s, n.w),
        ],
      ] as const
    ) {
      const out = runPass(dev, op, first, second, len + 5, s);
      assertClose(out.subarray(0, len), ref, `${label}: ${op}`);
      assert.deepEqual([...out.subarray(len)], [7, 7, 7, 7, 7], `${label}: ${op} past the end`);
    }
  }
});

Deno.test("conv2d rejects buffers and geometries that do not fit, naming them", () => {
  const s = geometry(2, 3, 4, 4, 2, 3, 3, 1, 1, 1, 1);
  const n = sizes(s);
  for (const [label, dev] of DEVICES) {
    const x = dev.alloc("f32", n.x), w = dev.alloc("f32", n.w), y = dev.alloc("f32", n.y);
    const short = dev.alloc("f32", n.x - 1), shortW = dev.alloc("f32", n.w - 1);
    assert.throws(() => dev.conv2dForward(short, w, y, s), {
      name: "RangeError",
      message: /conv2dForward: x must hold at least 96 elements, got 95/,
    }, label);
    assert.throws(() => dev.conv2dBackwardData(w, y, short, s), {
      name: "RangeError",
      message: /conv2dBackwardData: dx must hold at least 96 elements, got 95/,
    }, label);
    assert.throws(() => dev.conv2dBackwardFilter(x, y, shortW, s), {
      name: "RangeError",
      message: /conv2dBackwardFilter: dw must hold at least 54 elements, got 53/,
    }, label);
    assert.throws(() => dev.conv2dForward(x, w, y, { ...s, outH: 3 }), {
      name: "RangeError",
      message: /shape\.outH × shape\.outW must be 4 × 4 for this geometry, got 3 × 4/,
    }, label);
    assert.throws(() => dev.conv2dForward(x, w, y, { ...s, strideW: 0 }), {
      name: "RangeError",
      message: /shape\.strideW must be an integer in \[1, \d+\], got 0/,
    }, label);
    assert.throws(() => dev.conv2dForward(x, w, x, s), {
      name: "RangeError",
      message: /conv2dForward: y must not be the same buffer as x/,
    }, label);
    for (const b of [x, w, y, short, shortW]) dev.free(b);
  }
});
