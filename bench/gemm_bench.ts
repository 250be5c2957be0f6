/**
 * SGEMM throughput: the CPU device's `gemm` against OpenBLAS's `cblas_sgemm` called directly
 * (the machine's ceiling) and against the pure-TypeScript fallback.
 *
 * Run: `deno bench -A bench/gemm_bench.ts`. Besides Deno's timing table, a GFLOP/s summary
 * (2·m·n·k flops per call, averaged over the measured iterations) is printed at the end.
 *
 * @module
 */

import { CBLAS_NO_TRANS, CBLAS_ROW_MAJOR, openBlas, openBlasConfig } from "../ffi/openblas.ts";
import { gemmBackend, sgemmTypeScript } from "../src/device/cpu/gemm.ts";
import { cpuDevice } from "../src/device/cpu.ts";
import { Random } from "../src/random.ts";

const SHAPES: [number, number, number][] = [
  [256, 256, 256],
  [512, 512, 512],
  // A ResNet-32 stage-1 convolution as im2col GEMM: 16 channels × 3×3 × 64 images of 32×32.
  [1024, 1024, 576],
];

const lib = openBlas();
const dev = cpuDevice();
const rng = new Random(0);

/** Wall time per measured call, by bench name, for the GFLOP/s summary. */
const timings = new Map<string, { flops: number; ms: number; calls: number }>();

function timed(name: string, flops: number, b: Deno.BenchContext, work: () => void): void {
  const t0 = performance.now();
  b.start();
  work();
  b.end();
  const entry = timings.get(name) ?? { flops, ms: 0, calls: 0 };
  entry.ms += performance.now() - t0;
  entry.calls++;
  timings.set(name, entry);
}

for (const [m, n, k] of SHAPES) {
  const group = `${m}x${n}x${k}`;
  const flops = 2 * m * n * k;
  const ha = new Float32Array(m * k).map(() => rng.uniform(-1, 1));
  const hb = new Float32Array(k * n).map(() => rng.uniform(-1, 1));
  const hc = new Float32Array(m * n);
  const a = dev.alloc("f32", m * k), b = dev.alloc("f32", k * n), c = dev.alloc("f32", m * n);
  dev.upload(a, ha);
  dev.upload(b, hb);
  // Big products take a second or more in TypeScript: fewer iterations keep the run short.
  const tsIterations = flops > 5e8 ? 4 : flops > 1e8 ? 10 : 30;

  Deno.bench({
    name: `cblas_sgemm direct ${group}`,
    group,
    baseline: true,
    ignore: lib === null,
    fn: (ctx) =>
      timed(`cblas_sgemm direct ${group}`, flops, ctx, () =>
        lib!.symbols.cblas_sgemm(
          CBLAS_ROW_MAJOR,
          CBLAS_NO_TRANS,
          CBLAS_NO_TRANS,
          m,
          n,
          k,
          1,
          ha,
          k,
          hb,
          n,
          0,
          hc,
          n,
        )),
  });

  Deno.bench({
    name: `CPU device gemm (${gemmBackend()}) ${group}`,
    group,
    fn: (ctx) =>
      timed(
        `CPU device gemm (${gemmBackend()}) ${group}`,
        flops,
        ctx,
        () => dev.gemm(false, false, m, n, k, 1, a, b, 0, c),
      ),
  });

  Deno.bench({
    name: `TypeScript fallback ${group}`,
    group,
    n: tsIterations,
    warmup: 1,
    fn: (ctx) =>
      timed(
        `TypeScript fallback ${group}`,
        flops,
        ctx,
        () => sgemmTypeScript(false, false, m, n, k, 1, ha, hb, 0, hc),
      ),
  });
}

globalThis.addEventListener("unload", () => {
  console.log(`\nGEMM throughput (${openBlasConfig() ?? "OpenBLAS not available"}):`);
  for (const [name, t] of timings) {
    const gflops = (t.flops * t.calls) / (t.ms * 1e6);
    console.log(`  ${name.padEnd(44)} ${gflops.toFixed(2).padStart(8)} GFLOP/s`);
  }
});
