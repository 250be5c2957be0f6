// The element-wise kernels (ReLU, add and the fused SGD step on both the native and the
// TypeScript kernels, side by side in this process), pooling, the option-A shortcut, and the
// checks the CPU device runs before them.

import assert from "node:assert/strict";
import * as ew from "../src/device/cpu/elementwise.ts";
import type { CpuBackend } from "../src/device/cpu/backend.ts";
import { sgemmTypeScript } from "../src/device/cpu/gemm.ts";
import { cpuKernels } from "../ffi/cpu_kernels.ts";
import { CpuDevice } from "../src/device/cpu.ts";

/** The TypeScript kernels and, where they build, the native ones. */
function backends(): [string, CpuBackend][] {
  const out: [string, CpuBackend][] = [["typescript", { native: null, gemm: sgemmTypeScript }]];
  try {
    out.unshift(["native", { native: cpuKernels("native"), gemm: sgemmTypeScript }]);
  } catch (e) {
    console.log(`elementwise_test.ts: native kernels skipped: ${(e as Error).message}`);
  }
  return out;
}
const BACKENDS = backends();

Deno.test("ReLU forward zeroes negatives and −0, keeps positives bit for bit", () => {
  for (const [name, k] of BACKENDS) {
    const x = new Float32Array([-1, -0, 0, 2.5, -1e-30, 1e30, 3.4e38, -3.4e38, 1e-45]);
    const y = new Float32Array(x.length);
    ew.reluForward(x, y, x.length, k);
    const expected = [0, 0, 0, 2.5, 0, 1e30, 3.4e38, 0, 1e-45].map(Math.fround);
    assert.deepEqual(Array.from(y), expected, name);
    assert.ok(Object.is(y[1], 0), `${name}: −0 becomes +0`);
  }
});

Deno.test("ReLU backward passes dy where the output is positive, in place too", () => {
  for (const [name, k] of BACKENDS) {
    const y = new Float32Array([0, 1, 0, 2e-40, 5]);
    const dy = new Float32Array([1, -2, 3, 4, -5]);
    const dx = new Float32Array(5);
    ew.reluBackward(y, dy, dx, 5, k);
    assert.deepEqual(Array.from(dx), [0, -2, 0, 4, -5], name);
    ew.reluBackward(y, dy, dy, 5, k);
    assert.deepEqual(Array.from(dy), [0, -2, 0, 4, -5], name);
  }
});

Deno.test("ReLU over random data matches a float64 max(x, 0); add matches a float64 sum", () => {
  const n = 10_000;
  const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 43758.5453 % 3);
  const b = Float32Array.from({ length: n }, (_, i) => Math.cos(i * 78.233) * 2.5);
  for (const [name, k] of BACKENDS) {
    const y = new Float32Array(n);
    ew.reluForward(x, y, n, k);
    for (let i = 0; i < n; i++) assert.equal(y[i], Math.max(x[i], 0) || 0, `${name}: y[${i}]`);
    const sum = new Float32Array(n + 1).fill(7);
    ew.add(x, b, sum, n, k);
    for (let i = 0; i < n; i++) assert.equal(sum[i], Math.fround(x[i] + b[i]), `${name}: sum`);
    assert.equal(sum[n], 7, `${name}: add wrote past length`);
  }
});

Deno.test("global average pooling and the option-A shortcut against naive loops", () => {
  const n = 2, c = 3, h = 5, w = 3, hw = h * w;
  const x = Float32Array.from({ length: n * c * hw }, (_, i) => (i * 7) % 11 - 5);
  const pooled = new Float32Array(n * c);
  ew.globalAvgPoolForward(x, pooled, { n, c, hw });
  for (let p = 0; p < n * c; p++) {
    let s = 0;
    for (let k = 0; k < hw; k++) s += x[p * hw + k];
    assert.ok(Math.abs(pooled[p] - s / hw) < 1e-6);
  }
  const dx = new Float32Array(n * c * hw);
  ew.globalAvgPoolBackward(new Float32Array([1, 2, 3, 4, 5, 6]), dx, { n, c, hw });
  assert.equal(dx[hw * 4 + 2], Math.fround(5 / hw));
  const cOut = 7, oh = 3, ow = 2, pad = 2;
  const y = new Float32Array(n * cOut * oh * ow).fill(99);
  ew.shortcutForward(x, y, { n, cIn: c, h, w, cOut });
  for (let b = 0; b < n; b++) {
    for (let co = 0; co < cOut; co++) {
      for (let i = 0; i < oh; i++) {
        for (let j = 0; j < ow; j++) {
          const ci = co - pad;
          const want = ci >= 0 && ci < c ? x[((b * c + ci) * h + 2 * i) * w + 2 * j] : 0;
          assert.equal(y[((b * cOut + co) * oh + i) * ow + j], want);
        }
      }
    }
  }
  const back = new Float32Array(n * c * hw).fill(99);
  ew.shortcutBackward(y, back, { n, cIn: c, h, w, cOut });
  for (let k = 0; k < back.length; k++) {
    const col = k % w, row = Math.floor(k / w) % h;
    assert.equal(back[k], row % 2 === 0 && col % 2 === 0 ? x[k] : 0);
  }
});

Deno.test("fused SGD follows PyTorch's update over several steps (float64 reference)", () => {
  for (const nesterov of [false, true]) {
    const p = new Float32Array([1, -2, 0.5]), buf = new Float32Array(3);
    const ref = [1, -2, 0.5], refBuf = [0, 0, 0];
    for (let step = 0; step < 4; step++) {
      const g = new Float32Array([0.3 - step, 0.1 * step, -0.7]);
      ew.sgdUpdate(p, g, buf, { length: 3, lr: 0.1, momentum: 0.9, weightDecay: 1e-2, nesterov });
      for (let i = 0; i < 3; i++) {
        const gi = g[i] + 1e-2 * ref[i];
        refBuf[i] = 0.9 * refBuf[i] + gi;
        ref[i] -= 0.1 * (nesterov ? gi + 0.9 * refBuf[i] : refBuf[i]);
      }
    }
    for (let i = 0; i < 3; i++) assert.ok(Math.abs(p[i] - ref[i]) < 1e-6, `${p[i]} vs ${ref[i]}`);
  }
});

/** Random floats of varied magnitude and both signs (some exact zeros), from a fixed seed. */
function spread(len: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(len);
  for (let i = 0; i < len; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u = s / 2 ** 32;
    out[i] = i % 97 === 5 ? 0 : (u - 0.5) * 2 ** ((s >>> 7) % 24 - 12);
  }
  return out;
}

function sameBits(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: lengths`);
  const ai = new Int32Array(a.buffer, a.byteOffset, a.length);
  const bi = new Int32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ai.length; i++) {
    if (ai[i] !== bi[i]) assert.fail(`${what}: element ${i} is ${a[i]}, expected ${b[i]}`);
  }
}

/** The SGD settings the bit-for-bit checks run: nesterov on/off, weight decay 0 and > 0, μ = 0. */
const SGD_CASES = [
  { lr: 0.1, momentum: 0.9, weightDecay: 5e-4, nesterov: false },
  { lr: 0.1, momentum: 0.9, weightDecay: 5e-4, nesterov: true },
  { lr: 0.37, momentum: 0.9, weightDecay: 0, nesterov: false },
  { lr: 0.37, momentum: 0.9, weightDecay: 0, nesterov: true },
  { lr: 0.02, momentum: 0, weightDecay: 1e-2, nesterov: false },
  { lr: 0.02, momentum: 0, weightDecay: 0, nesterov: true },
];
const SGD_LENGTHS = [0, 1, 17, 100_003];

/**
 * Two SGD steps in float64 written out here, each store rounded to float32: what the update
 * is defined to compute (PyTorch's order of operations, the look-ahead on the unrounded buffer).
 */
function sgdReference(
  p0: Float32Array,
  grads: Float32Array[],
  buf0: Float32Array,
  o: { lr: number; momentum: number; weightDecay: number; nesterov: boolean },
): { p: Float32Array; buf: Float32Array } {
  const p = Float64Array.from(p0), buf = Float64Array.from(buf0);
  for (const grad of grads) {
    for (let i = 0; i < p.length; i++) {
      const g = grad[i] + o.weightDecay * p[i];
      const m = o.momentum * buf[i] + g;
      buf[i] = Math.fround(m);
      const step = o.nesterov ? g + o.momentum * m : m;
      p[i] = Math.fround(p[i] - o.lr * step);
    }
  }
  return { p: Float32Array.from(p), buf: Float32Array.from(buf) };
}

Deno.test("fused SGD: native and TypeScript give the same bits as a float64 reference", () => {
  for (const len of SGD_LENGTHS) {
    const p0 = spread(len, 11), buf0 = spread(len, 12);
    const grads = [spread(len, 13), spread(len, 14)];
    for (const o of SGD_CASES) {
      const want = sgdReference(p0, grads, buf0, o);
      for (const [name, k] of BACKENDS) {
        // One spare element each, to catch a write past the length.
        const p = new Float32Array(len + 1), buf = new Float32Array(len + 1);
        p.set(p0), buf.set(buf0);
        p[len] = 7, buf[len] = 7;
        for (const g of grads) ew.sgdUpdate(p, g, buf, { length: len, ...o }, k);
        const what = `${name}, length ${len}, ${JSON.stringify(o)}`;
        sameBits(p.subarray(0, len), want.p, `${what}: p`);
        sameBits(buf.subarray(0, len), want.buf, `${what}: buf`);
        assert.deepEqual([p[len], buf[len]], [7, 7], `${what}: wrote past length`);
      }
    }
  }
});

Deno.test({
  name: "fused SGD through the CPU device gives the same bits on 1, 2 and 5 threads",
  ignore: BACKENDS.length === 1,
  fn() {
    const ts = new CpuDevice({ kernels: "typescript" });
    const devices = [
      ts,
      ...[1, 2, 5, 2, 1].map((threads) => new CpuDevice({ kernels: "native", threads })),
    ];
    for (const len of SGD_LENGTHS) {
      const p0 = spread(len, 21), buf0 = spread(len, 22), grad = spread(len, 23);
      for (const o of SGD_CASES) {
        const results = devices.map((d) => {
          const up = (a: Float32Array) => {
            const b = d.alloc("f32", len);
            d.upload(b, a);
            return b;
          };
          const p = up(p0), buf = up(buf0), g = up(grad);
          d.sgdUpdate(p, g, buf, { length: len, ...o });
          const out = [new Float32Array(len), new Float32Array(len)];
          d.download(p, out[0]);
          d.download(buf, out[1]);
          return out;
        });
        for (const [i, r] of results.entries()) {
          const what = `${devices[i].description}, length ${len}, ${JSON.stringify(o)}`;
          sameBits(r[0], results[0][0], `${what}: p`);
          sameBits(r[1], results[0][1], `${what}: buf`);
        }
      }
    }
  },
});

Deno.test("the CPU device checks pooling and shortcut geometry before running", () => {
  const dev = new CpuDevice({ kernels: "typescript" });
  const f = (len: number) => dev.alloc("f32", len);
  // A y too short for [n, c] once went through silently (NaN in the pooled values); now named.
  assert.throws(() => dev.globalAvgPoolForward(f(24), f(5), { n: 2, c: 3, hw: 4 }), {
    name: "RangeError",
    message: "globalAvgPoolForward: y must hold at least 6 elements, got 5",
  });
  assert.throws(() => dev.globalAvgPoolBackward(f(6), f(23), { n: 2, c: 3, hw: 4 }), {
    name: "RangeError",
    message: "globalAvgPoolBackward: dx must hold at least 24 elements, got 23",
  });
  assert.throws(() => dev.globalAvgPoolForward(f(24), f(6), { n: 2, c: 3, hw: 0 }), {
    name: "RangeError",
    message: /globalAvgPoolForward: shape\.hw must be an integer in \[1, \d+\], got 0/,
  });
  // cOut < cIn once went through silently.
  const shortcut = { n: 1, cIn: 4, h: 4, w: 4, cOut: 2 };
  assert.throws(() => dev.shortcutForward(f(64), f(8), shortcut), {
    name: "RangeError",
    message: /shortcutForward: shape\.cOut must be at least shape\.cIn \(4\).*got 2/,
  });
  assert.throws(() => dev.shortcutBackward(f(8), f(64), { ...shortcut, cOut: 5 }), {
    name: "RangeError",
    message: /shortcutBackward: shape\.cOut .* even number, got 5/,
  });
  assert.throws(() => dev.shortcutForward(f(64), f(15), { ...shortcut, cOut: 4 }), {
    name: "RangeError",
    message: "shortcutForward: y must hold at least 16 elements, got 15",
  });
  // The valid calls run.
  const y = f(6);
  dev.globalAvgPoolForward(f(24), y, { n: 2, c: 3, hw: 4 });
  dev.shortcutForward(f(64), f(24), { ...shortcut, cOut: 6 });
});
