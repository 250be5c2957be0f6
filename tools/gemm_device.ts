/**
 * SGEMM throughput through the CPU device (its default GEMM backend), for
 * `tools/gemm_vs_pytorch.sh`: square products of the given sizes, the median of several timed
 * calls after a warm-up. Prints the device description, then one line per size:
 * `gemm 512: 123.4 GFLOP/s`. OpenBLAS's threads follow `OPENBLAS_NUM_THREADS`, its kernel set
 * `OPENBLAS_CORETYPE` (or the library's own choice, corrected as `ffi/openblas.ts` describes).
 *
 * Usage: `deno run -A tools/gemm_device.ts [--sizes 512,1024] [--reps 10]`
 *
 * @module
 */

import { parseArgs } from "node:util";
import { cpuDevice } from "../src/device/cpu.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    sizes: { type: "string", default: "512,1024" },
    reps: { type: "string", default: "10" },
  },
});
const reps = Number(values.reps);
const dev = cpuDevice();
console.log(`device: ${dev.description}`);
for (const n of values.sizes.split(",").map(Number)) {
  const fill = (seed: number) => {
    const v = new Float32Array(n * n);
    for (let i = 0; i < v.length; i++) v[i] = ((i * 2654435761 + seed) % 1000) / 500 - 1;
    return v;
  };
  const a = dev.alloc("f32", n * n), b = dev.alloc("f32", n * n), c = dev.alloc("f32", n * n);
  dev.upload(a, fill(1));
  dev.upload(b, fill(2));
  const shape = { transA: false, transB: false, m: n, n, k: n, alpha: 1, beta: 0 };
  for (let i = 0; i < 3; i++) dev.gemm(a, b, c, shape);
  const ms: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    dev.gemm(a, b, c, shape);
    ms.push(performance.now() - t0);
  }
  ms.sort((p, q) => p - q);
  const median = ms[Math.floor(ms.length / 2)];
  console.log(`gemm ${n}: ${(2 * n ** 3 / median / 1e6).toFixed(1)} GFLOP/s`);
}
