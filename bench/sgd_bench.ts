/**
 * The fused SGD update on the CPU device, native kernel (`ffi/cpu_kernels/elementwise.c`) against
 * the TypeScript loop, side by side in one process, at the parameter counts of the box head
 * (450K) and ResNet-32 for 100 classes (470K), with momentum 0.9, weight decay 5e-4, plain and
 * Nesterov. Both give the same bits (test/elementwise_test.ts); this measures the time per step.
 *
 * Run: `deno bench -A bench/sgd_bench.ts` (`EQL_CPU_THREADS` sets the native kernels' threads).
 *
 * @module
 */

import { CpuDevice } from "../src/device/cpu.ts";
import type { Device } from "../src/device/device.ts";

const SIZES: [string, number][] = [["box head", 450_000], ["ResNet-32", 470_004]];

const DEVICES: [string, Device][] = [
  ["native", new CpuDevice({ kernels: "native" })],
  ["typescript", new CpuDevice({ kernels: "typescript" })],
];

for (const [label, length] of SIZES) {
  for (const nesterov of [false, true]) {
    for (const [name, dev] of DEVICES) {
      const fill = (scale: number) => {
        const b = dev.alloc("f32", length);
        dev.upload(b, Float32Array.from({ length }, (_, i) => scale * Math.sin(i * 0.37)));
        return b;
      };
      const p = fill(0.1), grad = fill(1e-3), buf = fill(1e-2);
      const args = { length, lr: 0.02, momentum: 0.9, weightDecay: 5e-4, nesterov };
      Deno.bench({
        name: `sgdUpdate ${name}`,
        group: `${label} ${length}${nesterov ? " nesterov" : ""}`,
        baseline: name === "typescript",
        fn: () => dev.sgdUpdate(p, grad, buf, args),
      });
    }
  }
}
