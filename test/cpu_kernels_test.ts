// The native CPU kernel library: its build and cache, the packing routines against their
// definitions, and results that do not depend on the thread count. (kernel_cache_test.ts drives
// the cache's repairs, the compiler's failures and the environment variables in fresh processes;
// the batch-norm, ReLU, add and convolution tests check the native path against float64
// references whenever it is in use, and CI runs the whole suite a second time with
// EQL_CPU_KERNELS=typescript.)

import assert from "node:assert/strict";
import { cpuKernels, cpuKernelsUnavailableReason } from "../ffi/cpu_kernels.ts";
import { CPU_KERNEL_SOURCES } from "../ffi/cpu_kernels/sources.ts";
import { cachedBuild, findCompiler } from "../ffi/cpu_kernels/compile.ts";
import { conv2dBackwardData, conv2dBackwardFilter, conv2dForward } from "../src/device/cpu/conv.ts";
import { renderSourcesModule, SOURCE_DIR, sourceFiles } from "../ffi/cpu_kernels/build.ts";

const native = cpuKernels();
const ignore = native === null;
if (ignore) {
  console.log(`native CPU kernel tests skipped: ${cpuKernelsUnavailableReason()}`);
}

function random(len: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(len);
  for (let i = 0; i < len; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

function bitsEqual(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: lengths`);
  const ai = new Int32Array(a.buffer, a.byteOffset, a.length);
  const bi = new Int32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ai.length; i++) {
    if (ai[i] !== bi[i]) assert.fail(`${what}: element ${i} is ${a[i]}, expected ${b[i]}`);
  }
}

Deno.test("the embedded sources match the .c and .h files", () => {
  const files: Record<string, string> = {};
  for (const name of sourceFiles()) files[name] = Deno.readTextFileSync(SOURCE_DIR + name);
  assert.deepEqual(Object.keys(CPU_KERNEL_SOURCES).sort(), Object.keys(files).sort());
  const committed = Deno.readTextFileSync(
    new URL("../ffi/cpu_kernels/sources.ts", import.meta.url),
  );
  assert.equal(committed, renderSourcesModule(files), "run deno run -A ffi/cpu_kernels/build.ts");
});

Deno.test({
  name: "a build lands in the cache under its hash, with no temporary file left",
  ignore: findCompiler() === undefined,
  fn() {
    const dir = Deno.makeTempDirSync({ prefix: "eql-cache-test-" });
    const saved = Deno.env.get("EQL_CACHE_DIR");
    Deno.env.set("EQL_CACHE_DIR", dir);
    try {
      const files = { "one.c": "int eql_test_one(void) { return 1; }\n" };
      const first = cachedBuild("libtest", files);
      assert.ok("path" in first, JSON.stringify(first));
      assert.equal(first.built, true);
      const again = cachedBuild("libtest", files);
      assert.deepEqual(again, { path: first.path, built: false }, "the second call reuses it");
      const other = cachedBuild("libtest", { "one.c": "int eql_test_one(void) { return 2; }\n" });
      assert.ok("path" in other && other.path !== first.path, "changed sources get a new file");
      const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
      assert.equal(names.length, 4, names.join(", "));
      for (const n of names) assert.match(n, /^libtest-[0-9a-f]{20}\.(so|dylib|dll)(\.sha256)?$/);
      const lib = Deno.dlopen(first.path, { eql_test_one: { parameters: [], result: "i32" } });
      assert.equal(lib.symbols.eql_test_one(), 1);
      lib.close();
      const broken = cachedBuild("libtest", { "bad.c": "this is not C\n" });
      assert.ok("error" in broken && /failed/.test(broken.error), JSON.stringify(broken));
      assert.equal([...Deno.readDirSync(dir)].length, 4, "a failed build leaves nothing behind");
    } finally {
      if (saved === undefined) Deno.env.delete("EQL_CACHE_DIR");
      else Deno.env.set("EQL_CACHE_DIR", saved);
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "a compiler that rejects -march=native still builds, with the next flag set",
  ignore: findCompiler() === undefined || Deno.build.os === "windows",
  fn() {
    const dir = Deno.makeTempDirSync({ prefix: "eql-cc-test-" });
    const saved = { cache: Deno.env.get("EQL_CACHE_DIR"), cc: Deno.env.get("EQL_CC") };
    const wrapper = `${dir}/picky-cc`;
    Deno.writeTextFileSync(
      wrapper,
      `#!/bin/sh\nfor a in "$@"; do [ "$a" = -march=native ] && { echo "unknown flag $a" >&2; exit 1; }; done\nexec ${findCompiler()} "$@"\n`,
    );
    Deno.chmodSync(wrapper, 0o755);
    Deno.env.set("EQL_CACHE_DIR", `${dir}/cache`);
    Deno.env.set("EQL_CC", wrapper);
    try {
      const built = cachedBuild("libpicky", { "two.c": "int eql_test_two(void) { return 2; }\n" });
      assert.ok("path" in built, JSON.stringify(built));
      const lib = Deno.dlopen(built.path, { eql_test_two: { parameters: [], result: "i32" } });
      assert.equal(lib.symbols.eql_test_two(), 2);
      lib.close();
    } finally {
      for (const [name, value] of [["EQL_CACHE_DIR", saved.cache], ["EQL_CC", saved.cc]]) {
        if (value === undefined) Deno.env.delete(name!);
        else Deno.env.set(name!, value);
      }
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

/** The shifted-plane layout by its definition (see packPlanes in src/device/cpu/conv.ts). */
function refPackPlanes(
  x: Float32Array,
  p: {
    n0: number;
    nb: number;
    cIn: number;
    h: number;
    w: number;
    kH: number;
    kW: number;
    padH: number;
    padW: number;
    block: number;
    len: number;
    full: boolean;
    tail: number;
  },
): Float32Array {
  const rows = p.cIn * p.kW * (p.full ? p.kH : 1);
  const out = new Float32Array(rows * p.len + p.tail);
  for (let c = 0; c < p.cIn; c++) {
    for (let r = 0; r < (p.full ? p.kH : 1); r++) {
      for (let q = 0; q < p.kW; q++) {
        const row = (p.full ? (c * p.kH + r) * p.kW + q : c * p.kW + q) * p.len;
        for (let u = 0; u < p.len; u++) {
          // Position u (plus r rows when full) is sample b, grid row i, column j.
          const t = u + r * p.w;
          const b = Math.floor(t / p.block), rest = t - b * p.block;
          const i = Math.floor(rest / p.w) - p.padH, j = rest % p.w + q - p.padW;
          const inside = b < p.nb && i >= 0 && i < p.h && j >= 0 && j < p.w;
          out[row + u] = inside ? x[(((p.n0 + b) * p.cIn + c) * p.h + i) * p.w + j] : 0;
        }
      }
    }
  }
  return out;
}

Deno.test({
  name: "pack_planes matches its definition (3×3, 5×5, thin 'full' layouts, narrow rows)",
  ignore,
  fn() {
    const k = native!.symbols;
    const cases = [
      { n: 3, n0: 1, nb: 2, cIn: 4, h: 5, w: 6, kH: 3, kW: 3, padH: 1, padW: 1, full: false },
      { n: 2, n0: 0, nb: 2, cIn: 3, h: 7, w: 4, kH: 3, kW: 3, padH: 1, padW: 1, full: true },
      { n: 2, n0: 0, nb: 2, cIn: 2, h: 6, w: 7, kH: 5, kW: 5, padH: 2, padW: 2, full: false },
      { n: 1, n0: 0, nb: 1, cIn: 2, h: 4, w: 1, kH: 3, kW: 3, padH: 1, padW: 1, full: false },
      { n: 2, n0: 1, nb: 1, cIn: 2, h: 4, w: 5, kH: 2, kW: 3, padH: 0, padW: 2, full: true },
    ];
    for (const s of cases) {
      const x = random(s.n * s.cIn * s.h * s.w, s.h * 7 + s.w);
      const block = (s.h + s.padH) * s.w;
      const len = s.nb * block + (s.kH - 1) * s.w + s.kW - 1 + 3;
      const tail = (s.kH - 1) * s.w + s.kW;
      const p = { ...s, block, len, tail };
      const want = refPackPlanes(x, p);
      const got = new Float32Array(want.length).fill(NaN);
      const big = BigInt;
      k.eql_pack_planes(
        x,
        got,
        big(s.n0),
        big(s.nb),
        big(s.cIn),
        big(s.h),
        big(s.w),
        big(s.kH),
        big(s.kW),
        big(s.padH),
        big(s.padW),
        big(block),
        big(len),
        s.full ? 1 : 0,
        big(tail),
      );
      bitsEqual(got, want, `pack_planes ${JSON.stringify(s)}`);
    }
  },
});

Deno.test({
  name: "unpack_grid and pack_grid move exactly the output pixels",
  ignore,
  fn() {
    const k = native!.symbols;
    for (const [w, outH, outW] of [[6, 5, 6], [7, 4, 5]]) {
      const n = 3, n0 = 1, nb = 2, rows = 3, block = (outH + 1) * w, len = nb * block + 5;
      const grid = random(rows * len, w);
      const dst = new Float32Array(n * rows * outH * outW).fill(7);
      const big = BigInt;
      k.eql_unpack_grid(
        grid,
        dst,
        big(n0),
        big(nb),
        big(rows),
        big(w),
        big(outH),
        big(outW),
        big(block),
        big(len),
      );
      const want = new Float32Array(dst.length).fill(7);
      for (let r = 0; r < rows; r++) {
        for (let b = 0; b < nb; b++) {
          for (let i = 0; i < outH; i++) {
            for (let j = 0; j < outW; j++) {
              want[(((n0 + b) * rows + r) * outH + i) * outW + j] =
                grid[r * len + b * block + i * w + j];
            }
          }
        }
      }
      bitsEqual(dst, want, `unpack_grid w=${w}`);
      // pack_grid is its inverse, with zeros wherever no output pixel lands.
      const back = new Float32Array(rows * len).fill(NaN);
      k.eql_pack_grid(
        dst,
        back,
        big(n0),
        big(nb),
        big(rows),
        big(w),
        big(outH),
        big(outW),
        big(block),
        big(len),
      );
      for (let r = 0; r < rows; r++) {
        for (let u = 0; u < len; u++) {
          const b = Math.floor(u / block), i = Math.floor((u % block) / w), j = u % w;
          const pixel = b < nb && i < outH && j < outW;
          assert.equal(back[r * len + u], pixel ? grid[r * len + u] : 0, `pack_grid ${r},${u}`);
        }
      }
    }
  },
});

/**
 * Runs `compute` with the pool at 1, 2 and 5 threads and checks that every output array is bit
 * for bit the same each time.
 */
function sameOnAnyThreadCount(compute: () => Float32Array[]): void {
  const k = native!.symbols;
  const results: Float32Array[][] = [];
  try {
    for (const t of [1, 2, 5]) {
      k.eql_cpu_set_threads(t);
      results.push(compute());
    }
  } finally {
    k.eql_cpu_set_threads(navigator.hardwareConcurrency || 1);
  }
  for (const other of results.slice(1)) {
    other.forEach((a, i) => bitsEqual(a, results[0][i], `output ${i}`));
  }
}

Deno.test({
  name:
    "batch norm (plain and with the residual + ReLU tail) gives the same bits on 1, 2 and 5 threads",
  ignore,
  fn() {
    const k = native!.symbols;
    const n = 6, c = 7, hw = 50, len = n * c * hw;
    const x = random(len, 3), dy = random(len, 4), residual = random(len, 7);
    const gamma = random(c, 5), beta = random(c, 6);
    sameOnAnyThreadCount(() => {
      const out: Float32Array[] = [];
      for (const relu of [false, true]) {
        const y = new Float32Array(len), dx = new Float32Array(len), dRes = new Float32Array(len);
        const rm = new Float32Array(c), rv = new Float32Array(c).fill(1);
        const mean = new Float32Array(c), inv = new Float32Array(c);
        const dg = new Float32Array(c), db = new Float32Array(c);
        const res = relu ? residual : null;
        assert.equal(
          k.eql_bn_forward_training(
            x,
            y,
            res,
            relu ? 1 : 0,
            gamma,
            beta,
            rm,
            rv,
            mean,
            inv,
            n,
            c,
            hw,
            0.1,
            1e-5,
          ),
          0,
        );
        const mask = relu ? y : null, dr = relu ? dRes : null;
        assert.equal(k.eql_bn_backward(x, mask, dy, dx, dr, gamma, dg, db, mean, inv, n, c, hw), 0);
        out.push(y, dx, dRes, rm, rv, mean, inv, dg, db);
      }
      return out;
    });
  },
});

Deno.test({
  name: "the direct convolution gives the same bits on 1, 2 and 5 threads",
  ignore,
  fn() {
    sameOnAnyThreadCount(() => {
      const out: Float32Array[] = [];
      for (const stride of [1, 2]) {
        const n = 7, c = 8, h = 8, w = 16, kOut = 16, oh = h / stride, ow = w / stride;
        const s = {
          n,
          cIn: c,
          h,
          w,
          cOut: kOut,
          kH: 3,
          kW: 3,
          strideH: stride,
          strideW: stride,
          padH: 1,
          padW: 1,
          outH: oh,
          outW: ow,
        };
        const x = random(n * c * h * w, 11), wt = random(kOut * c * 9, 12);
        const dy = random(n * kOut * oh * ow, 13);
        const y = new Float32Array(dy.length), dx = new Float32Array(x.length);
        const dw = new Float32Array(wt.length);
        conv2dForward(x, wt, y, s);
        conv2dBackwardData(wt, dy, dx, s);
        conv2dBackwardFilter(x, dy, dw, s);
        out.push(y, dx, dw);
      }
      return out;
    });
  },
});
