// The native kernels' thread pool under more threads than cores: every part of every job runs
// exactly once whatever the scheduling, and a model's outputs do not change from one run to the
// next. (A worker descheduled between seeing a new job and reading it once ran parts twice, lost
// them or deadlocked: on 2 cores the first test then hung at 3 threads and the second crashed.)

import assert from "node:assert/strict";
import { cpuKernels, cpuKernelsUnavailableReason } from "../ffi/cpu_kernels.ts";
import { resnet } from "../src/nn/resnet.ts";
import { tensor } from "../src/tensor.ts";

const native = cpuKernels();
const ignore = native === null;
if (ignore) console.log(`thread pool tests skipped: ${cpuKernelsUnavailableReason()}`);

/** Runs `body` with the pool at `threads`, then puts the default back. */
function withThreads<T>(threads: number, body: () => T): T {
  const k = native!.symbols;
  assert.equal(k.eql_cpu_set_threads(threads), threads, "threads in effect");
  try {
    return body();
  } finally {
    k.eql_cpu_set_threads(navigator.hardwareConcurrency || 1);
  }
}

Deno.test({
  name: "the pool runs every part of thousands of jobs exactly once on 1, 2, 3, 8 and 16 threads",
  ignore,
  fn() {
    for (const threads of [1, 2, 3, 8, 16]) {
      // Loop lengths cycle through 1..24 with grain 1, so part counts change from job to job and
      // some workers sit out some jobs: the case the old worker loop got wrong.
      const wrong = withThreads(threads, () => native!.symbols.eql_pool_check(3000n, 24n, 1n));
      assert.equal(wrong, 0n, `${threads} threads: (job, index) pairs not covered exactly once`);
    }
  },
});

function gaussian(len: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(len);
  for (let i = 0; i < len; i += 2) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u = (s + 1) / 2 ** 32;
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const v = s / 2 ** 32;
    const r = Math.sqrt(-2 * Math.log(u));
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < len) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
}

Deno.test({
  name: "a ResNet's evaluation logits are the same bits over 100 runs at 8 threads",
  ignore,
  fn() {
    const net = resnet({ depth: 8, numClasses: 10, seed: 7 });
    const x = tensor(gaussian(16 * 3 * 32 * 32, 3), [16, 3, 32, 32]);
    try {
      net.forward(x, true); // running statistics away from their initial values
      const reference = withThreads(1, () => net.logits(x).toArray() as Float32Array);
      const expected = new Int32Array(reference.buffer);
      withThreads(8, () => {
        for (let run = 0; run < 100; run++) {
          const z = net.logits(x);
          const got = new Int32Array((z.toArray() as Float32Array).buffer);
          z.dispose();
          for (let i = 0; i < got.length; i++) {
            if (got[i] !== expected[i]) {
              assert.fail(`run ${run}: logit ${i} differs from the one-thread result`);
            }
          }
        }
      });
    } finally {
      x.dispose();
      net.dispose();
    }
  },
});
