// The native kernels' thread pool under more threads than cores: every part of every job runs
// exactly once whatever the scheduling, and a model's outputs do not change from one run to the
// next. (A worker descheduled between seeing a new job and reading it once ran parts twice, lost
// them or deadlocked: on 2 cores the first test then hung at 3 threads and the second crashed.)

import assert from "node:assert/strict";
import { cpuKernels, setCpuThreads } from "../ffi/cpu_kernels.ts";
import { CpuDevice } from "../src/device/cpu.ts";
import { resnet } from "../src/nn/resnet.ts";
import { tensor } from "../src/tensor.ts";
import { gaussian } from "./gradcheck.ts";

function loadNative(): ReturnType<typeof cpuKernels> {
  try {
    return cpuKernels("native");
  } catch (e) {
    console.log(`thread pool tests skipped: ${(e as Error).message}`);
    return null;
  }
}
const native = loadNative();
const ignore = native === null;

Deno.test({
  name: "the pool runs every part of thousands of jobs exactly once on 1, 2, 3, 8 and 16 threads",
  ignore,
  fn() {
    for (const threads of [1, 2, 3, 8, 16]) {
      // Loop lengths cycle through 1..24 with grain 1, so part counts change from job to job and
      // some workers sit out some jobs: the case the old worker loop got wrong.
      assert.equal(setCpuThreads(threads), threads, "threads in effect");
      const wrong = native!.symbols.eql_pool_check(3000n, 24n, 1n);
      assert.equal(wrong, 0n, `${threads} threads: (job, index) pairs not covered exactly once`);
    }
  },
});

Deno.test({
  name: "a ResNet's evaluation logits are the same bits over 100 runs at 8 threads",
  ignore,
  fn() {
    // The same network on a one-thread and an eight-thread device, side by side.
    const [single, many] = [1, 8].map((threads) => {
      const device = new CpuDevice({ kernels: "native", threads });
      const net = resnet({ depth: 8, numClasses: 10, seed: 7, device });
      const x = tensor(gaussian(16 * 3 * 32 * 32, 3), [16, 3, 32, 32], device);
      net.forward(x, true); // running statistics away from their initial values
      return { net, x };
    });
    try {
      const reference = single.net.logits(single.x).toArray() as Float32Array;
      const expected = new Int32Array(reference.buffer);
      for (let run = 0; run < 100; run++) {
        const z = many.net.logits(many.x);
        const got = new Int32Array((z.toArray() as Float32Array).buffer);
        z.dispose();
        for (let i = 0; i < got.length; i++) {
          if (got[i] !== expected[i]) {
            assert.fail(`run ${run}: logit ${i} differs from the one-thread result`);
          }
        }
      }
    } finally {
      for (const { net, x } of [single, many]) {
        x.dispose();
        net.dispose();
      }
    }
  },
});
