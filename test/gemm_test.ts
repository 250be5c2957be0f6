import assert from "node:assert/strict";
import { gemmBackend, sgemm, sgemmOpenBlas, sgemmTypeScript } from "../src/device/cpu/gemm.ts";
import { openBlas, openBlasError } from "../ffi/openblas.ts";
import { CpuDevice } from "../src/device/cpu.ts";
import type { GemmShape } from "../src/device/device.ts";
import { Random } from "../src/random.ts";

type Sgemm = typeof sgemm;

const haveBlas = openBlas() !== null;
if (!haveBlas) {
  console.log(
    `OpenBLAS tests skipped: the library could not be loaded.\n${openBlasError()?.message}`,
  );
}

const EPS32 = 2 ** -24;

function randomArray(rng: Random, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.uniform(-1, 1);
  return out;
}

/**
 * Naive float64 reference with a per-element error bound: `bound[i,j]` is the magnitude sum
 * |alpha|·Σ|a||b| + |beta·c| + |bias| that float32 rounding errors scale with.
 */
function reference(
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  b: Float32Array,
  beta: number,
  c0: Float32Array,
  bias?: Float32Array,
): { value: Float64Array; scale: Float64Array } {
  const value = new Float64Array(m * n), scale = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0, sa = 0;
      for (let p = 0; p < k; p++) {
        const av = transA ? a[p * m + i] : a[i * k + p];
        const bv = transB ? b[j * k + p] : b[p * n + j];
        s += av * bv;
        sa += Math.abs(av * bv);
      }
      let v = alpha * s, mag = Math.abs(alpha) * sa;
      if (beta !== 0) {
        v += beta * c0[i * n + j];
        mag += Math.abs(beta * c0[i * n + j]);
      }
      if (bias) {
        v += bias[j];
        mag += Math.abs(bias[j]);
      }
      value[i * n + j] = v;
      scale[i * n + j] = mag;
    }
  }
  return { value, scale };
}

/**
 * Error allowed per element, in units of the float32 rounding unit times the magnitude:
 * float32-accumulating BLAS gets the classical γ_k bound (k + 3 roundings); the TypeScript path
 * accumulates in float64 and rounds once per 256-deep K block, plus alpha/beta/bias roundings.
 */
const blasUnits = (k: number): number => k + 3;
const tsUnits = (k: number): number => Math.ceil(k / 256) * 2 + 3;

function check(
  name: string,
  fn: Sgemm,
  units: (k: number) => number,
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  beta: number,
  withBias: boolean,
  rng: Random,
): void {
  const a = randomArray(rng, m * k), b = randomArray(rng, k * n);
  const c0 = beta === 0 ? new Float32Array(m * n).fill(NaN) : randomArray(rng, m * n);
  const bias = withBias ? randomArray(rng, n) : undefined;
  const c = c0.slice();
  fn(transA, transB, m, n, k, alpha, a, b, beta, c, bias);
  const { value, scale } = reference(transA, transB, m, n, k, alpha, a, b, beta, c0, bias);
  const u = units(k) * EPS32;
  for (let i = 0; i < m * n; i++) {
    const err = Math.abs(c[i] - value[i]);
    if (!(err <= u * scale[i] + 1e-30)) {
      assert.fail(
        `${name} transA=${transA} transB=${transB} m=${m} n=${n} k=${k} alpha=${alpha} ` +
          `beta=${beta} bias=${withBias}: C[${Math.floor(i / n)},${i % n}] = ${c[i]}, ` +
          `expected ${value[i]} (error ${err} > ${u * scale[i]})`,
      );
    }
  }
}

// Sizes hit the 4×4 tile edges (1, 7, 33, 65), more than one K block (k > 256), more than one
// row block (m > 64) and more than one column panel (n > 1024).
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [1, 7, 3],
  [7, 1, 5],
  [7, 33, 65],
  [33, 65, 7],
  [65, 33, 257],
  [70, 9, 300],
  [5, 1030, 3],
  [64, 64, 64],
];
const SCALARS: [number, number][] = [[1, 0], [0.5, 2], [-1.5, 1], [2, -0.25]];

function fullSweep(name: string, fn: Sgemm, units: (k: number) => number, seed: number): void {
  const rng = new Random(seed);
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      for (const [m, n, k] of SHAPES) {
        for (const [alpha, beta] of SCALARS) {
          check(name, fn, units, transA, transB, m, n, k, alpha, beta, false, rng);
        }
        check(name, fn, units, transA, transB, m, n, k, 1, 0, true, rng);
        check(name, fn, units, transA, transB, m, n, k, 0.75, 1.5, true, rng);
      }
    }
  }
}

Deno.test("TypeScript GEMM matches a float64 loop: all transposes, edge sizes, alpha/beta, bias", () => {
  fullSweep("typescript", sgemmTypeScript, tsUnits, 1);
});

Deno.test({
  name: "OpenBLAS GEMM matches a float64 loop: all transposes, edge sizes, alpha/beta, bias",
  ignore: !haveBlas,
  fn: () => fullSweep("openblas", sgemmOpenBlas, blasUnits, 2),
});

Deno.test("sgemm (active backend) matches a float64 loop and reports its backend", () => {
  const backend = gemmBackend();
  assert.ok(backend === "openblas" || backend === "typescript");
  const units = backend === "openblas" ? blasUnits : tsUnits;
  const rng = new Random(3);
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      check(backend, sgemm, units, transA, transB, 33, 65, 7, 1, 0, true, rng);
      check(backend, sgemm, units, transA, transB, 65, 7, 300, -0.5, 0.5, false, rng);
    }
  }
});

for (const [name, fn] of [["typescript", sgemmTypeScript], ["openblas", sgemmOpenBlas]] as const) {
  Deno.test({
    name: `${name}: beta = 0 overwrites NaN-filled C, alpha = 0 and k = 0 only scale C`,
    ignore: name === "openblas" && !haveBlas,
    fn: () => {
      const a = new Float32Array([1, 2, 3, 4, 5, 6]); // 2×3
      const b = new Float32Array([1, 0, 0, 1, 1, 1]); // 3×2
      const c = new Float32Array(4).fill(NaN);
      fn(false, false, 2, 2, 3, 1, a, b, 0, c);
      assert.deepEqual([...c], [4, 5, 10, 11]);
      // alpha = 0: A and B are not read, even if they hold NaN.
      const nanA = new Float32Array(6).fill(NaN);
      const c2 = new Float32Array([1, 2, 3, 4]);
      fn(false, false, 2, 2, 3, 0, nanA, b, 2, c2, new Float32Array([10, 20]));
      assert.deepEqual([...c2], [12, 24, 16, 28]);
      const c3 = new Float32Array(4).fill(NaN);
      fn(false, false, 2, 2, 3, 0, a, b, 0, c3);
      assert.deepEqual([...c3], [0, 0, 0, 0]);
      // k = 0: C = beta·C + bias with empty A and B.
      const c4 = new Float32Array([1, 2, 3, 4]);
      fn(true, true, 2, 2, 0, 1, new Float32Array(0), new Float32Array(0), 0.5, c4);
      assert.deepEqual([...c4], [0.5, 1, 1.5, 2]);
      const c5 = new Float32Array(4).fill(NaN);
      fn(false, false, 2, 2, 0, 1, new Float32Array(0), new Float32Array(0), 0, c5, b);
      assert.deepEqual([...c5], [1, 0, 1, 0]);
      // m = 0 or n = 0: nothing to do, zero-length arrays are fine.
      const empty = new Float32Array(0);
      fn(false, false, 0, 3, 4, 1, empty, new Float32Array(12), 0, empty);
      fn(false, false, 3, 0, 4, 1, new Float32Array(12), empty, 0, empty);
    },
  });

  Deno.test({
    name: `${name}: views with a byte offset read and write the right elements`,
    ignore: name === "openblas" && !haveBlas,
    fn: () => {
      const rng = new Random(4);
      const m = 9, n = 6, k = 11;
      const pool = randomArray(rng, 3 + m * k + 5 + k * n + 7 + m * n + 2);
      const a = pool.subarray(3, 3 + m * k);
      const b = pool.subarray(3 + m * k + 5, 3 + m * k + 5 + k * n);
      const cStart = 3 + m * k + 5 + k * n + 7;
      const c = pool.subarray(cStart, cStart + m * n);
      const before = pool.slice();
      const { value, scale } = reference(false, true, m, n, k, 1, a, b, 0, c);
      fn(false, true, m, n, k, 1, a, b, 0, c);
      for (let i = 0; i < pool.length; i++) {
        if (i >= cStart && i < cStart + m * n) {
          const r = i - cStart;
          assert.ok(Math.abs(pool[i] - value[r]) <= blasUnits(k) * EPS32 * scale[r]);
        } else {
          assert.equal(pool[i], before[i], `element ${i} outside C was changed`);
        }
      }
    },
  });
}

/** The CPU devices of both GEMM backends (OpenBLAS only where it loads), side by side. */
const DEVICES: [string, CpuDevice, (k: number) => number][] = [
  ["typescript", new CpuDevice({ gemm: "typescript" }), tsUnits],
];
if (haveBlas) DEVICES.unshift(["openblas", new CpuDevice({ gemm: "openblas" }), blasUnits]);

Deno.test("the CPU devices' gemm (OpenBLAS and TypeScript) has the same semantics", () => {
  const rng = new Random(5);
  const m = 17, n = 13, k = 29;
  const ha = randomArray(rng, k * m), hb = randomArray(rng, k * n), hbias = randomArray(rng, n);
  const shape: GemmShape = { transA: true, transB: false, m, n, k, alpha: 1, beta: 0 };
  const ref = reference(true, false, m, n, k, 1, ha, hb, 0, new Float32Array(0), hbias);
  for (const [name, dev, units] of DEVICES) {
    assert.equal(dev.gemmBackend, name);
    assert.match(dev.description, new RegExp(`GEMM: ${name}`));
    const a = dev.alloc("f32", k * m), b = dev.alloc("f32", k * n);
    const bias = dev.alloc("f32", n), c = dev.alloc("f32", m * n + 3);
    dev.upload(a, ha);
    dev.upload(b, hb);
    dev.upload(bias, hbias);
    dev.fill(c, NaN, m * n + 3);
    dev.gemm(a, b, c, shape, bias);
    const out = new Float32Array(m * n + 3);
    dev.download(c, out);
    for (let i = 0; i < m * n; i++) {
      assert.ok(
        Math.abs(out[i] - ref.value[i]) <= units(k) * EPS32 * ref.scale[i],
        `${name}: C[${i}] = ${out[i]}, expected ${ref.value[i]}`,
      );
    }
    assert.ok(out.subarray(m * n).every(Number.isNaN), `${name}: C past m·n was written`);
    for (const buf of [a, b, bias, c]) dev.free(buf);
  }
});

Deno.test("gemm rejects bad shapes and buffers with messages naming the argument", () => {
  for (const [name, dev] of DEVICES) {
    const f = (len: number) => dev.alloc("f32", len);
    const a = f(6), b = f(6), c = f(4);
    const s = (over: Partial<GemmShape>): GemmShape => ({
      transA: false,
      transB: false,
      m: 2,
      n: 2,
      k: 3,
      alpha: 1,
      beta: 0,
      ...over,
    });
    const cases: [() => void, RegExp][] = [
      [() => dev.gemm(a, b, c, s({ m: -1 })), /gemm: shape\.m must be an integer in \[0, .*got -1/],
      [() => dev.gemm(a, b, c, s({ n: 2.5 })), /gemm: shape\.n must be an integer .*got 2\.5/],
      [() => dev.gemm(a, b, c, s({ k: 4 })), /gemm: a must hold at least 8 elements, got 6/],
      [() => dev.gemm(a, b, c, s({ n: 3 })), /gemm: b must hold at least 9 elements, got 6/],
      [() => dev.gemm(a, b, f(3), s({})), /gemm: c must hold at least 4 elements, got 3/],
      [() => dev.gemm(a, b, c, s({}), f(1)), /gemm: bias must hold at least 2 elements, got 1/],
      [() => dev.gemm(a, b, c, s({ alpha: NaN })), /gemm: shape\.alpha must be a finite number/],
      [() => dev.gemm(a, b, c, s({ beta: Infinity })), /gemm: shape\.beta must be a finite/],
      [() => dev.gemm(a, b, a, s({ k: 2, m: 3 })), /gemm: c must not be the same buffer as a/],
    ];
    for (const [call, message] of cases) {
      assert.throws(call, { name: "RangeError", message }, name);
    }
    assert.throws(() => dev.gemm(a, dev.alloc("i32", 6), c, s({})), {
      name: "TypeError",
      message: /gemm: b must be an f32 buffer, got an i32 one/,
    });
  }
});

Deno.test({
  name: "auto picks OpenBLAS when it is installed",
  ignore: !haveBlas,
  fn: () => {
    assert.equal(new CpuDevice({ gemm: "auto" }).gemmBackend, "openblas");
    assert.equal(gemmBackend("auto"), "openblas");
  },
});

Deno.test("a bad gemm option is rejected, naming the option and the allowed values", () => {
  assert.throws(() => new CpuDevice({ gemm: "cublas" as "auto" }), {
    name: "RangeError",
    message: 'CpuDevice: options.gemm must be "auto", "openblas" or "typescript", got "cublas"',
  });
});

/** Runs a snippet in a fresh Deno process (fresh module caches) with extra environment. */
async function runFresh(
  code: string,
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const gemmUrl = new URL("../src/device/cpu/gemm.ts", import.meta.url).href;
  const blasUrl = new URL("../ffi/openblas.ts", import.meta.url).href;
  const full = `import * as gemm from "${gemmUrl}";\nimport * as blas from "${blasUrl}";\n${code}`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", full],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

const MISSING = "/nonexistent/dir/libopenblas-missing.so.0";

Deno.test("EQL_OPENBLAS_PATH to a missing file gives LibraryNotFoundError listing that path", async () => {
  const r = await runFresh(
    `try { blas.loadOpenBlas(); console.log("loaded"); } catch (e) {
       console.log(JSON.stringify({ name: e.name, message: e.message, tried: e.tried,
         envVar: e.envVar, isNull: blas.openBlas() === null }));
     }`,
    { EQL_OPENBLAS_PATH: MISSING, EQL_GEMM: "" },
  );
  assert.equal(r.code, 0, r.stderr);
  const e = JSON.parse(r.stdout);
  assert.equal(e.name, "LibraryNotFoundError");
  assert.equal(e.envVar, "EQL_OPENBLAS_PATH");
  assert.equal(e.tried.length, 1);
  assert.ok(e.tried[0].startsWith(MISSING), e.tried[0]);
  assert.ok(e.message.includes(MISSING) && e.message.includes("EQL_OPENBLAS_PATH"), e.message);
  assert.equal(e.isNull, true);
});

Deno.test("an OpenBLAS that does not load falls back to TypeScript with exactly one notice", async () => {
  const r = await runFresh(
    `const c = new Float32Array(1);
     gemm.sgemm(false, false, 1, 1, 2, 1, new Float32Array([1, 2]), new Float32Array([3, 4]), 0, c);
     gemm.sgemm(false, false, 1, 1, 2, 1, new Float32Array([1, 2]), new Float32Array([3, 4]), 0, c);
     console.log(gemm.gemmBackend(), c[0]);`,
    { EQL_OPENBLAS_PATH: MISSING, EQL_GEMM: "" },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), "typescript 11");
  // The override's own warning says why and how to fix it; no second, generic notice.
  assert.equal(r.stderr.split("EQL_OPENBLAS_PATH is set to").length - 1, 1, r.stderr);
  assert.match(r.stderr, /so OpenBLAS is not used/);
  assert.doesNotMatch(r.stderr, /OpenBLAS was not found/);
});

Deno.test("EQL_GEMM=typescript forces the fallback silently; bad values are rejected", async () => {
  const forced = await runFresh(`console.log(gemm.gemmBackend());`, { EQL_GEMM: "typescript" });
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal(forced.stdout.trim(), "typescript");
  assert.equal(forced.stderr, "");

  const bad = await runFresh(
    `try { gemm.gemmBackend(); } catch (e) { console.log(e.name, e.message); }`,
    { EQL_GEMM: "cublas" },
  );
  assert.match(bad.stdout, /RangeError EQL_GEMM must be .* got "cublas"/);

  const required = await runFresh(
    `try { gemm.gemmBackend(); console.log("ok"); } catch (e) { console.log(e.name); }`,
    { EQL_GEMM: "openblas", EQL_OPENBLAS_PATH: MISSING },
  );
  assert.equal(required.stdout.trim(), "LibraryNotFoundError");
});
