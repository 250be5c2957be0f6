// The CPU kernel variants (vector width and register blocking per CPU): the choice from the CPU's
// flags on synthetic /proc/cpuinfo texts, the errors for bad or unsupported requests, and, for
// every variant this CPU runs, the direct convolution against a float64 reference and the same
// bits on any thread count.

import assert from "node:assert/strict";
import {
  cpuFeatures,
  defaultVariant,
  missingFlags,
  parseCpuinfo,
  resolveVariant,
  variantFlagSets,
} from "../ffi/cpu_kernels/variant.ts";
import { findCompiler } from "../ffi/cpu_kernels/compile.ts";
import { CpuDevice } from "../src/device/cpu.ts";
import type { Conv2dShape, Device, DeviceBuffer } from "../src/device/device.ts";

const cpuinfo = (vendor: string, family: number, flags: string, model = "Test CPU") =>
  `processor\t: 0\nvendor_id\t: ${vendor}\ncpu family\t: ${family}\nmodel name\t: ${model}\n` +
  `flags\t\t: fpu sse sse2 ${flags}\n\nprocessor\t: 1\nflags\t\t: nothing\n`;
const AVX512 = "avx avx2 fma avx512f avx512cd avx512bw avx512dq avx512vl";

Deno.test("the default variant follows the CPU's vendor, family and flags", () => {
  const cases: [string, string, CpuVariantName][] = [
    ["Intel with AVX-512", cpuinfo("GenuineIntel", 6, AVX512), "avx512"],
    ["AMD Zen 5 (family 26)", cpuinfo("AuthenticAMD", 26, AVX512), "avx512"],
    ["AMD Zen 4 (family 25): 512-bit halves", cpuinfo("AuthenticAMD", 25, AVX512), "avx2"],
    ["AVX2 without AVX-512", cpuinfo("GenuineIntel", 6, "avx avx2 fma"), "avx2"],
    ["AVX2 without FMA", cpuinfo("GenuineIntel", 6, "avx avx2"), "portable"],
    ["SSE only", cpuinfo("GenuineIntel", 6, "sse3 ssse3"), "portable"],
    ["unreadable /proc/cpuinfo", "", "portable"],
  ];
  for (const [what, text, expected] of cases) {
    assert.equal(defaultVariant(parseCpuinfo(text, "x86_64")), expected, what);
  }
  const arm = parseCpuinfo("Features\t: fp asimd avx2 fma avx512f\n", "aarch64");
  assert.equal(defaultVariant(arm), "portable", "flags of another architecture are not x86 ones");
  assert.deepEqual(missingFlags("avx2", arm), ["avx2", "fma"]);
});

type CpuVariantName = "avx512" | "avx2" | "portable";

Deno.test("a bad or unsupported variant is an error naming the value or the missing flags", () => {
  const avx2Only = parseCpuinfo(cpuinfo("GenuineIntel", 6, "avx avx2 fma", "Core i7"), "x86_64");
  assert.throws(() => resolveVariant("sse9", avx2Only), {
    name: "RangeError",
    message: 'EQL_CPU_VARIANT must be "auto", "avx512", "avx2" or "portable", got "sse9"',
  });
  assert.throws(() => resolveVariant("avx512", avx2Only, "CpuDevice: options.variant"), {
    name: "RangeError",
    message: 'CpuDevice: options.variant is "avx512", but this CPU (Core i7) cannot run that ' +
      "variant: it lacks the flag avx512f",
  });
  const old = parseCpuinfo(cpuinfo("GenuineIntel", 6, "sse4_2"), "x86_64");
  assert.throws(() => resolveVariant("AVX2", old), /lacks the flags avx2, fma/);
  const arm = parseCpuinfo("", "aarch64");
  assert.throws(() => resolveVariant("avx2", arm), /not an x86-64 CPU \(aarch64\)/);
  assert.equal(resolveVariant(" Portable ", arm), "portable");
  assert.equal(resolveVariant("auto", avx2Only), "avx2");
  assert.throws(() => new CpuDevice({ variant: "fast" as "auto" }), {
    name: "RangeError",
    message:
      'CpuDevice: options.variant must be "auto", "avx512", "avx2" or "portable", got "fast"',
  });
});

Deno.test("each variant has its own define and flags; only AVX-512 asks for 512-bit vectors", () => {
  const joined = (v: CpuVariantName) => variantFlagSets(v).map((s) => s.join(" "));
  assert.ok(joined("avx512").every((s) => s.includes("-DEQL_VARIANT=2")));
  assert.ok(joined("avx512")[0].includes("-mprefer-vector-width=512"));
  assert.ok(joined("avx2").every((s) => s.includes("-DEQL_VARIANT=1")));
  assert.ok(joined("avx2")[0].includes("-mno-avx512f"));
  assert.ok(joined("portable").every((s) => s.includes("-DEQL_VARIANT=0") && !/-march/.test(s)));
});

// ── every variant this CPU runs ───────────────────────────────────────────────────────────────

const features = cpuFeatures();
const runnable = (["avx512", "avx2", "portable"] as const).filter((v) =>
  missingFlags(v, features).length === 0
);
const noCompiler = findCompiler() === undefined;
if (noCompiler) console.log("variant kernel tests skipped: no C compiler found");

function random(len: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(len);
  for (let i = 0; i < len; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

function shape(n: number, c: number, size: number, k: number, stride: number): Conv2dShape {
  const out = size / stride;
  return {
    n,
    cIn: c,
    h: size,
    w: size,
    cOut: k,
    kH: 3,
    kW: 3,
    strideH: stride,
    strideW: stride,
    padH: 1,
    padW: 1,
    outH: out,
    outW: out,
  };
}

/** Float64 forward, backward-data and backward-filter, with Σ|term| for each output. */
function reference(s: Conv2dShape, x: Float32Array, w: Float32Array, dy: Float32Array) {
  const y = new Float64Array(s.n * s.cOut * s.outH * s.outW), yMag = new Float64Array(y.length);
  const dx = new Float64Array(x.length), dxMag = new Float64Array(x.length);
  const dw = new Float64Array(w.length), dwMag = new Float64Array(w.length);
  for (let b = 0; b < s.n; b++) {
    for (let k = 0; k < s.cOut; k++) {
      for (let i = 0; i < s.outH; i++) {
        for (let j = 0; j < s.outW; j++) {
          const yi = ((b * s.cOut + k) * s.outH + i) * s.outW + j;
          for (let c = 0; c < s.cIn; c++) {
            for (let r = 0; r < 3; r++) {
              const hi = i * s.strideH + r - 1;
              if (hi < 0 || hi >= s.h) continue;
              for (let q = 0; q < 3; q++) {
                const wj = j * s.strideW + q - 1;
                if (wj < 0 || wj >= s.w) continue;
                const xi = ((b * s.cIn + c) * s.h + hi) * s.w + wj;
                const wi = ((k * s.cIn + c) * 3 + r) * 3 + q;
                y[yi] += x[xi] * w[wi];
                yMag[yi] += Math.abs(x[xi] * w[wi]);
                dx[xi] += dy[yi] * w[wi];
                dxMag[xi] += Math.abs(dy[yi] * w[wi]);
                dw[wi] += dy[yi] * x[xi];
                dwMag[wi] += Math.abs(dy[yi] * x[xi]);
              }
            }
          }
        }
      }
    }
  }
  return [[y, yMag], [dx, dxMag], [dw, dwMag]] as const;
}

function upload(d: Device, data: Float32Array): DeviceBuffer {
  const b = d.alloc("f32", data.length);
  d.upload(b, data);
  return b;
}

function read(d: Device, b: DeviceBuffer): Float32Array {
  const out = new Float32Array(b.length);
  d.download(b, out);
  return out;
}

function runConv(d: Device, s: Conv2dShape, x: Float32Array, w: Float32Array, dy: Float32Array) {
  const bx = upload(d, x), bw = upload(d, w), bdy = upload(d, dy);
  const y = d.alloc("f32", dy.length), dx = d.alloc("f32", x.length), dw = d.alloc("f32", w.length);
  d.conv2dForward(bx, bw, y, s);
  d.conv2dBackwardData(bw, bdy, dx, s);
  d.conv2dBackwardFilter(bx, bdy, dw, s);
  return [read(d, y), read(d, dx), read(d, dw)];
}

// The ResNet-32 layer kinds at small batches: rows of 32 and 16 pixels (16-float vectors in the
// AVX-512 build), rows of 8 (8-float vectors in every build), stride 1 and 2.
const SHAPES: [string, Conv2dShape][] = [
  ["16→16 32×32", shape(3, 16, 32, 16, 1)],
  ["16→32 32×32 stride 2", shape(2, 16, 32, 32, 2)],
  ["32→32 16×16", shape(3, 32, 16, 32, 1)],
  ["32→64 16×16 stride 2", shape(2, 32, 16, 64, 2)],
  ["64→64 8×8", shape(3, 64, 8, 64, 1)],
  ["8→24 16×16", shape(9, 8, 16, 24, 1)],
];

for (const variant of runnable) {
  Deno.test({
    name: `variant ${variant}: the direct convolution matches float64 and gives the same bits on ` +
      "1, 2 and 3 threads",
    ignore: noCompiler,
    fn() {
      const devices = [1, 2, 3].map((threads) =>
        new CpuDevice({ kernels: "native", variant, threads })
      );
      assert.equal(devices[0].variant, variant);
      assert.match(devices[0].description, new RegExp(`kernels: native ${variant}, threads: 1`));
      SHAPES.forEach(([label, s], i) => {
        const x = random(s.n * s.cIn * s.h * s.w, 10 + i);
        const w = random(s.cOut * s.cIn * 9, 20 + i);
        const dy = random(s.n * s.cOut * s.outH * s.outW, 30 + i);
        const results = devices.map((d) => runConv(d, s, x, w, dy));
        const ref = reference(s, x, w, dy);
        ["y", "dx", "dw"].forEach((what, p) => {
          const [value, mag] = ref[p];
          const got = results[0][p];
          for (let e = 0; e < got.length; e++) {
            // Float32 accumulation of at most 9·64·n terms: well under 1e-5 of Σ|term|.
            const err = Math.abs(got[e] - value[e]), tol = 1e-5 * mag[e] + 1e-12;
            if (!(err <= tol)) {
              assert.fail(`${variant} ${label} ${what}[${e}]: ${got[e]} vs ${value[e]} (> ${tol})`);
            }
          }
          for (const other of results.slice(1)) {
            const a = new Uint32Array(got.buffer), b = new Uint32Array(other[p].buffer);
            const at = a.findIndex((v, e) => v !== b[e]);
            assert.equal(at, -1, `${variant} ${label} ${what}: bits differ by thread count`);
          }
        });
      });
    },
  });
}

Deno.test({
  name: "devices of different variants run side by side, each on its own library",
  ignore: noCompiler || runnable.length < 2,
  fn() {
    const [a, b] = runnable.slice(0, 2).map((variant) =>
      new CpuDevice({ kernels: "native", variant, threads: 2 })
    );
    assert.notEqual(a.variant, b.variant);
    const s = shape(2, 16, 16, 16, 1);
    const x = random(s.n * s.cIn * 256, 1), w = random(s.cOut * s.cIn * 9, 2);
    const dy = random(s.n * s.cOut * 256, 3);
    const [ra, rb] = [a, b].map((d) => runConv(d, s, x, w, dy));
    // The forward sums each output in the same order in every build.
    assert.deepEqual(ra[0], rb[0]);
  },
});
