// The native CPU kernel library: its build and cache, the packing routines against their
// definitions, results that do not depend on the thread count, and the CPU device's kernel and
// thread options. (kernel_cache_test.ts drives the cache's repairs, the compiler's failures and
// the environment variables in fresh processes; the batch-norm, ReLU, add and convolution tests
// run the native and the TypeScript kernels side by side against float64 references.)

import assert from "node:assert/strict";
import { cpuKernels, cpuPoolThreads } from "../ffi/cpu_kernels.ts";
import { CPU_KERNEL_SOURCES } from "../ffi/cpu_kernels/sources.ts";
import { cachedBuild, findCompiler } from "../ffi/cpu_kernels/compile.ts";
import { renderSourcesModule, SOURCE_DIR, sourceFiles } from "../ffi/cpu_kernels/build.ts";
import { CpuDevice } from "../src/device/cpu.ts";
import type { Conv2dShape, Device, DeviceBuffer } from "../src/device/device.ts";

function loadNative(): ReturnType<typeof cpuKernels> {
  try {
    return cpuKernels("native");
  } catch (e) {
    console.log(`native CPU kernel tests skipped: ${(e as Error).message}`);
    return null;
  }
}
const native = loadNative();
const ignore = native === null;

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
      for (const n of names) {
        assert.match(n, /^libtest-portable-[0-9a-f]{20}\.(so|dylib|dll)(\.sha256)?$/);
      }
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

/** The shifted-plane layout by its definition (see packPlanes in src/device/cpu/conv_shifted.ts). */
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

/** A device with the native kernels on `threads` threads. */
function nativeDevice(threads: number): Device {
  return new CpuDevice({ kernels: "native", threads });
}

/** Uploads host data into a fresh buffer of `d`. */
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

/**
 * Runs `compute` on devices with 1, 2 and 5 threads, each in turn and then again in the reverse
 * order (so every device finds the pool set by another), and checks that every output array is
 * bit for bit the same each time.
 */
function sameOnAnyThreadCount(compute: (d: Device) => Float32Array[]): void {
  const devices = [1, 2, 5].map(nativeDevice);
  const results = [...devices, ...devices.reverse()].map((d) => compute(d));
  for (const other of results.slice(1)) {
    other.forEach((a, i) => bitsEqual(a, results[0][i], `output ${i}`));
  }
}

Deno.test({
  name:
    "batch norm (plain and with the residual + ReLU tail) gives the same bits on 1, 2 and 5 threads",
  ignore,
  fn() {
    const n = 6, c = 7, hw = 50, len = n * c * hw;
    const x = random(len, 3), dy = random(len, 4), residual = random(len, 7);
    const gamma = random(c, 5), beta = random(c, 6);
    sameOnAnyThreadCount((d) => {
      const out: Float32Array[] = [];
      for (const relu of [false, true]) {
        const shape = { n, c, hw, eps: 1e-5, momentum: 0.1, relu };
        const p = {
          gamma: upload(d, gamma),
          beta: upload(d, beta),
          runningMean: d.alloc("f32", c),
          runningVar: upload(d, new Float32Array(c).fill(1)),
          saveMean: d.alloc("f32", c),
          saveInvStd: d.alloc("f32", c),
        };
        const g = {
          dx: d.alloc("f32", len),
          dGamma: d.alloc("f32", c),
          dBeta: d.alloc("f32", c),
          dResidual: d.alloc("f32", len),
        };
        const bx = upload(d, x), by = d.alloc("f32", len), bdy = upload(d, dy);
        d.batchNormForwardTraining(bx, by, p, shape, relu ? upload(d, residual) : undefined);
        d.batchNormBackward(bx, by, bdy, g, p, shape);
        out.push(read(d, by), ...Object.values(g).map((b) => read(d, b)));
        out.push(...Object.values(p).map((b) => read(d, b)));
      }
      return out;
    });
  },
});

Deno.test({
  name: "the direct convolution gives the same bits on 1, 2 and 5 threads",
  ignore,
  fn() {
    sameOnAnyThreadCount((d) => {
      const out: Float32Array[] = [];
      for (const stride of [1, 2]) {
        const n = 7, c = 8, h = 8, w = 16, kOut = 16, oh = h / stride, ow = w / stride;
        const s: Conv2dShape = {
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
        const x = upload(d, random(n * c * h * w, 11)), wt = upload(d, random(kOut * c * 9, 12));
        const dy = upload(d, random(n * kOut * oh * ow, 13));
        const y = d.alloc("f32", dy.length), dx = d.alloc("f32", x.length);
        const dw = d.alloc("f32", wt.length);
        d.conv2dForward(x, wt, y, s);
        d.conv2dBackwardData(wt, dy, dx, s);
        d.conv2dBackwardFilter(x, dy, dw, s);
        out.push(read(d, y), read(d, dx), read(d, dw));
      }
      return out;
    });
  },
});

Deno.test({
  name: "a device sets the process-wide pool to its own thread count before a native kernel",
  ignore,
  fn() {
    const one = nativeDevice(1), three = nativeDevice(3);
    assert.match(three.description, /kernels: native (avx512|avx2|portable), threads: 3/);
    const run = (d: Device) => {
      const b = upload(d, new Float32Array([-1, 2]));
      d.reluForward(b, b, 2);
      assert.deepEqual([...read(d, b)], [0, 2]);
    };
    run(three);
    assert.equal(cpuPoolThreads(), 3);
    run(one);
    assert.equal(cpuPoolThreads(), 1);
    run(three);
    assert.equal(cpuPoolThreads(), 3);
    const plain = new CpuDevice({ kernels: "typescript", threads: 2 });
    run(plain);
    assert.equal(cpuPoolThreads(), 3, "a TypeScript device leaves the pool alone");
    assert.match(plain.description, /^CPU \(kernels: typescript, GEMM: \w+( \(OpenBLAS .*\))?\)$/);
  },
});

Deno.test("bad kernel and thread options are rejected, naming the option", () => {
  assert.throws(() => new CpuDevice({ kernels: "fast" as "auto" }), {
    name: "RangeError",
    message: 'CpuDevice: options.kernels must be "auto", "native" or "typescript", got "fast"',
  });
  for (const threads of [0, 257, 2.5]) {
    assert.throws(() => new CpuDevice({ threads }), {
      name: "RangeError",
      message: `CpuDevice: options.threads must be an integer in [1, 256], got ${threads}`,
    });
  }
  assert.equal(new CpuDevice({ kernels: "typescript" }).kernels, "typescript");
});
