/**
 * Convolution throughput of the CPU kernel variants, alternated in one run: the 3×3 layers of a
 * ResNet-32 training step at batch 128 (forward, backward-data, backward-filter), each build
 * timed in turn within every round so that load from other processes hits them alike.
 *
 * A build is a variant (`avx512`, `avx2`, `portable`), optionally followed by extra compiler
 * flags after colons to try other blocking constants (see `ffi/cpu_kernels/conv_direct.c`), e.g.
 * `avx512:-DEQL_KB16=16:-DEQL_NG16=1`. Each is compiled into a temporary folder (not the cache).
 *
 * Usage: `deno run -A tools/conv_variants.ts [--threads 1,2] [--rounds 5] [build ...]`
 * (default builds: the variants this CPU runs). Prints per round and build the step-weighted
 * convolution milliseconds and GFLOP/s, then the median and range of each build's ratio to the
 * first build.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { compileLibrary, findCompiler } from "../ffi/cpu_kernels/compile.ts";
import { CPU_KERNEL_SOURCES } from "../ffi/cpu_kernels/sources.ts";
import { CPU_KERNEL_SYMBOLS, type CpuKernelLibrary } from "../ffi/cpu_kernels.ts";
import {
  CPU_VARIANTS,
  cpuFeatures,
  type CpuVariant,
  missingFlags,
} from "../ffi/cpu_kernels/variant.ts";
import { type Conv2dShape, convOutputSize } from "../src/device/device.ts";
import * as conv from "../src/device/cpu/conv.ts";
import type { CpuBackend } from "../src/device/cpu/backend.ts";
import { sgemmOpenBlas } from "../src/device/cpu/gemm.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  options: {
    threads: { type: "string", default: "1,2" },
    rounds: { type: "string", default: "5" },
  },
  allowPositionals: true,
});
const threadCounts = values.threads.split(",").map(Number);
const rounds = Number(values.rounds);
const BATCH = 128;

function conv3x3(cIn: number, size: number, cOut: number, stride: number): Conv2dShape {
  const out = convOutputSize(size, 3, stride, 1);
  return {
    n: BATCH,
    cIn,
    h: size,
    w: size,
    cOut,
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

/** Geometry and how often one ResNet-32 step runs it (the stem is left out: it is not direct). */
const CONVS: [Conv2dShape, number][] = [
  [conv3x3(16, 32, 16, 1), 10],
  [conv3x3(16, 32, 32, 2), 1],
  [conv3x3(32, 16, 32, 1), 9],
  [conv3x3(32, 16, 64, 2), 1],
  [conv3x3(64, 8, 64, 1), 9],
];

const features = cpuFeatures();
const buildSpecs = positionals.length > 0
  ? positionals
  : CPU_VARIANTS.filter((v) => missingFlags(v, features).length === 0);
const compiler = findCompiler();
if (compiler === undefined) throw new Error("no C compiler found (set EQL_CC)");
const dir = Deno.makeTempDirSync({ prefix: "eql-conv-variants-" });

interface Build {
  name: string;
  backend: CpuBackend;
  lib: CpuKernelLibrary;
}

const builds: Build[] = [];
try {
  for (const spec of buildSpecs) {
    const [variant, ...extra] = spec.split(":");
    if (!(CPU_VARIANTS as readonly string[]).includes(variant)) {
      throw new Error(`unknown variant "${variant}" in "${spec}"`);
    }
    const out = `${dir}/lib${builds.length}.so`;
    const r = compileLibrary(CPU_KERNEL_SOURCES, compiler, out, extra, {
      variant: variant as CpuVariant,
    });
    if (!r.ok) throw new Error(`${spec} did not compile:\n${r.log}`);
    const lib = Deno.dlopen(out, CPU_KERNEL_SYMBOLS);
    builds.push({ name: spec, lib, backend: { native: lib, gemm: sgemmOpenBlas } });
  }
} finally {
  Deno.removeSync(dir, { recursive: true });
}

function filled(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    a[i] = (s / 2 ** 32) * 2 - 1;
  }
  return a;
}

const data = CONVS.map(([s]) => ({
  x: filled(s.n * s.cIn * s.h * s.w, 1),
  w: filled(s.cOut * s.cIn * 9, 2),
  y: filled(s.n * s.cOut * s.outH * s.outW, 3),
  dx: new Float32Array(s.n * s.cIn * s.h * s.w),
  dw: new Float32Array(s.cOut * s.cIn * 9),
}));

/** Milliseconds of one step's direct convolutions (all three passes, step-weighted). */
function stepMs(b: Build): number {
  let ms = 0;
  CONVS.forEach(([s, weight], i) => {
    const d = data[i];
    const t0 = performance.now();
    conv.conv2dForward(d.x, d.w, d.y, s, b.backend);
    conv.conv2dBackwardData(d.w, d.y, d.dx, s, b.backend);
    conv.conv2dBackwardFilter(d.x, d.y, d.dw, s, b.backend);
    ms += (performance.now() - t0) * weight;
  });
  return ms;
}

const stepFlops = CONVS.reduce(
  (sum, [s, weight]) => sum + 3 * 2 * s.n * s.cOut * s.outH * s.outW * s.cIn * 9 * weight,
  0,
);

console.log(`CPU: ${features.model}; builds: ${builds.map((b) => b.name).join(", ")}`);
for (const threads of threadCounts) {
  for (const b of builds) {
    b.lib.symbols.eql_cpu_set_threads(threads);
    stepMs(b); // warm-up
  }
  const ratios = builds.map(() => [] as number[]);
  for (let r = 1; r <= rounds; r++) {
    const ms = builds.map((b) => stepMs(b));
    const line = builds.map((b, i) =>
      `${b.name} ${ms[i].toFixed(0)} ms (${(stepFlops / ms[i] / 1e6).toFixed(0)} GFLOP/s)`
    );
    console.log(`threads ${threads} round ${r}: ${line.join(", ")}`);
    ms.forEach((m, i) => ratios[i].push(ms[0] / m));
  }
  builds.forEach((b, i) => {
    const sorted = [...ratios[i]].sort((p, q) => p - q);
    const median = sorted[Math.floor(sorted.length / 2)];
    console.log(
      `threads ${threads}: ${b.name} speed vs ${builds[0].name}: median ${median.toFixed(2)}×, ` +
        `range ${sorted[0].toFixed(2)}–${sorted[sorted.length - 1].toFixed(2)}×`,
    );
  });
}
