// The element-wise kernels (ReLU and add on both the native and the TypeScript kernels, side by
// side in this process), pooling, the option-A shortcut and the fused SGD step, and the checks
// the CPU device runs before them.

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
