/**
 * SGEMM throughput: the CPU device's `gemm` (with its default backend) against OpenBLAS's
 * `cblas_sgemm` called directly (the machine's ceiling) and against a CPU device with the
 * pure-TypeScript GEMM, side by side in one process.
 *
 * Run: `deno bench -A bench/gemm_bench.ts`. Besides Deno's timing table, a GFLOP/s summary
 * (2·m·n·k flops per call, averaged over the measured iterations) is printed at the end.
 *
 * @module
 */

import { CBLAS_NO_TRANS, CBLAS_ROW_MAJOR, openBlas, openBlasConfig } from "../ffi/openblas.ts";
import { CpuDevice, cpuDevice } from "../src/device/cpu.ts";
import type { DeviceBuffer, GemmShape } from "../src/device/device.ts";
import { Random } from "../src/random.ts";

const SHAPES: [number, number, number][] = [
  [256, 256, 256],
  [512, 512, 512],
  // A ResNet-32 stage-1 convolution as im2col GEMM: 16 channels × 3×3 × 64 images of 32×32.
  [1024, 1024, 576],
];

const lib = openBlas();
const dev = cpuDevice();
const tsDev = new CpuDevice({ gemm: "typescript" });
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
  const shape: GemmShape = { transA: false, transB: false, m, n, k, alpha: 1, beta: 0 };
  const operands = (d: CpuDevice): [DeviceBuffer, DeviceBuffer, DeviceBuffer] => {
    const a = d.alloc("f32", m * k), b = d.alloc("f32", k * n), c = d.alloc("f32", m * n);
    d.upload(a, ha);
    d.upload(b, hb);
    return [a, b, c];
  };
  const [a, b, c] = operands(dev);
  const [ta, tb, tc] = operands(tsDev);
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
    name: `CPU device gemm (${dev.gemmBackend}) ${group}`,
    group,
    fn: (ctx) =>
      timed(
        `CPU device gemm (${dev.gemmBackend}) ${group}`,
        flops,
        ctx,
        () => dev.gemm(a, b, c, shape),
      ),
  });

  Deno.bench({
    name: `CPU device gemm (typescript) ${group}`,
    group,
    n: tsIterations,
    warmup: 1,
    ignore: dev.gemmBackend === "typescript",
    fn: (ctx) =>
      timed(
        `CPU device gemm (typescript) ${group}`,
        flops,
        ctx,
        () => tsDev.gemm(ta, tb, tc, shape),
      ),
  });
}

globalThis.addEventListener("unload", () => {
  console.log(`\nGEMM throughput (${openBlasConfig() ?? "OpenBLAS not available"}):`);
  console.log(`  device: ${dev.description}`);
  for (const [name, t] of timings) {
    const gflops = (t.flops * t.calls) / (t.ms * 1e6);
    console.log(`  ${name.padEnd(44)} ${gflops.toFixed(2).padStart(8)} GFLOP/s`);
  }
});
