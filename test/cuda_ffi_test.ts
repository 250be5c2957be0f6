// Tests of the NVIDIA bindings that need no GPU: library discovery (against fake folders), the
// error types, the cuDNN perf-struct decoding and algorithm ranking, the row-major → column-major
// GEMM mapping (checked against a naive column-major GEMM in float64), the allocator's size
// classes; and, where the libraries exist, that every symbol of every table resolves.

import assert from "node:assert/strict";
import { LibraryNotFoundError } from "../ffi/discovery.ts";
import { NvidiaError } from "../ffi/nvidia_error.ts";
import {
  type DiscoveryEnvironment,
  NVIDIA_LIBRARIES,
  nvidiaCandidates,
  type NvidiaLibraryInfo,
  openNvidiaLibrary,
} from "../ffi/nvidia_paths.ts";
import { checkCuda, cuda, CUDA_SYMBOLS, CudaError } from "../ffi/cuda.ts";
import { checkCublas, cublas, CUBLAS_SYMBOLS, CublasError } from "../ffi/cublas.ts";
import {
  checkCudnn,
  CUDNN,
  cudnn,
  CUDNN_SYMBOLS,
  CudnnError,
  decodeAlgoPerf,
} from "../ffi/cudnn.ts";
import { rankAlgorithms } from "../src/device/cuda/_conv.ts";
import { biasColumnMajor, columnMajor } from "../src/device/cuda/_gemm.ts";
import { sizeClass } from "../src/device/cuda/allocator.ts";

/** Runs `fn`, asserts it throws an instance of `cls`, and returns the error. */
function thrown<T extends Error>(fn: () => unknown, cls: new (...args: never[]) => T): T {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${e}`);
    return e;
  }
  assert.fail(`expected ${cls.name} to be thrown`);
}

// ── discovery ────────────────────────────────────────────────────────────────────────────────

function fakeEnv(
  vars: Record<string, string>,
  dirs: Record<string, string[]> = {},
  python: string[] = [],
): DiscoveryEnvironment & { pythonCalls: number } {
  const env = {
    pythonCalls: 0,
    env: (name: string) => vars[name],
    listDir: (path: string) => dirs[path] ?? [],
    pythonSites: () => {
      env.pythonCalls++;
      return python;
    },
  };
  return env;
}

Deno.test("discovery: cuBLAS candidates come in the documented order", () => {
  const env = fakeEnv(
    {
      CUDA_HOME: "/opt/cuda",
      CUDA_PATH: "/opt/cuda-path",
      NVIDIA_SITE: "/site/nv",
      VIRTUAL_ENV: "/venv",
      CONDA_PREFIX: "/conda",
    },
    { "/venv/lib": ["python3.12", "not-python", "python3.9"], "/conda/lib": ["python3.11"] },
    ["/usr/py/site-packages"],
  );
  const paths = nvidiaCandidates("cublas", env).map((c) => c.path);
  assert.deepEqual(paths, [
    "libcublas.so.13",
    "/opt/cuda/lib64/libcublas.so.13",
    "/opt/cuda/lib/libcublas.so.13",
    "/opt/cuda/targets/x86_64-linux/lib/libcublas.so.13",
    "/opt/cuda-path/lib64/libcublas.so.13",
    "/opt/cuda-path/lib/libcublas.so.13",
    "/opt/cuda-path/targets/x86_64-linux/lib/libcublas.so.13",
    "/usr/local/cuda/lib64/libcublas.so.13",
    "/usr/local/cuda/lib/libcublas.so.13",
    "/usr/local/cuda/targets/x86_64-linux/lib/libcublas.so.13",
    "/site/nv/nvidia/cu13/lib/libcublas.so.13",
    "/venv/lib/python3.12/site-packages/nvidia/cu13/lib/libcublas.so.13",
    "/venv/lib/python3.9/site-packages/nvidia/cu13/lib/libcublas.so.13",
    "/conda/lib/python3.11/site-packages/nvidia/cu13/lib/libcublas.so.13",
    "/usr/py/site-packages/nvidia/cu13/lib/libcublas.so.13",
  ]);
});

Deno.test("discovery: cuDNN uses the cudnn wheel folder; duplicates are dropped", () => {
  const env = fakeEnv({ NVIDIA_SITE: "/s" }, {}, ["/s", "/t"]);
  const c = nvidiaCandidates("cudnn", env);
  assert.deepEqual(c.map((x) => x.path).slice(-2), [
    "/s/nvidia/cudnn/lib/libcudnn.so.9",
    "/t/nvidia/cudnn/lib/libcudnn.so.9",
  ]);
  assert.equal(c.at(-2)!.source, "NVIDIA_SITE");
  assert.equal(c.at(-1)!.source, "python3 on PATH");
  assert.equal(new Set(c.map((x) => x.path)).size, c.length);
});

Deno.test("discovery: the driver is never looked for in a toolkit (stubs) or a wheel", () => {
  const env = fakeEnv({ CUDA_HOME: "/opt/cuda", NVIDIA_SITE: "/s" }, {}, ["/p"]);
  const paths = nvidiaCandidates("driver", env).map((c) => c.path);
  assert.equal(paths[0], "libcuda.so.1");
  assert.ok(paths.includes("/usr/lib/x86_64-linux-gnu/libcuda.so.1"));
  assert.ok(paths.includes("/usr/local/nvidia/lib64/libcuda.so.1"));
  assert.ok(
    paths.every((p) => !p.includes("/opt/cuda") && !p.startsWith("/s") && !p.includes("stubs")),
  );
  assert.equal(env.pythonCalls, 0);
});

Deno.test("discovery: python3 is only asked when asked for", () => {
  const env = fakeEnv({}, {}, ["/p"]);
  const without = nvidiaCandidates("cublas", env, false);
  assert.equal(env.pythonCalls, 0);
  assert.ok(without.every((c) => !c.path.startsWith("/p/")));
  const withPy = nvidiaCandidates("cublas", env, true);
  assert.equal(env.pythonCalls, 1);
  assert.equal(withPy.at(-1)!.path, "/p/nvidia/cu13/lib/libcublas.so.13");
});

/** A fake library tree: `<root>/<site>/nvidia/cu13/lib/<file>` holding a file that is no ELF. */
function fakeTree(file: string): { root: string; site: string; lib: string } {
  const root = Deno.makeTempDirSync({ prefix: "eql_nvidia_" });
  const site = `${root}/venv/lib/python3.12/site-packages`;
  const lib = `${site}/nvidia/cu13/lib`;
  Deno.mkdirSync(lib, { recursive: true });
  Deno.writeTextFileSync(`${lib}/${file}`, "not a shared object");
  return { root, site, lib };
}

const FAKE: NvidiaLibraryInfo = {
  library: "Fake cuBLAS",
  file: "libeql_fake_cublas.so.13",
  envVar: "EQL_FAKE_CUBLAS_PATH",
  pipDir: "nvidia/cu13/lib",
  companions: ["libeql_fake_cublasLt.so.13"],
};

Deno.test("discovery: the missing-library error lists every place looked and the variable", () => {
  const { root, lib } = fakeTree(FAKE.file);
  Deno.writeTextFileSync(`${lib}/${FAKE.companions[0]}`, "also not a shared object");
  try {
    const env = fakeEnv({ VIRTUAL_ENV: `${root}/venv`, CUDA_HOME: `${root}/cuda` }, {
      [`${root}/venv/lib`]: ["python3.12"],
    });
    const e = thrown(
      () => openNvidiaLibrary(FAKE, { f: { parameters: [], result: "void" } }, env),
      LibraryNotFoundError,
    );
    assert.equal(e.envVar, "EQL_FAKE_CUBLAS_PATH");
    assert.match(e.message, /Fake cuBLAS could not be loaded/);
    assert.match(e.message, /Set EQL_FAKE_CUBLAS_PATH to the full path/);
    // Every candidate appears, in order, each with where it came from.
    const expected = nvidiaCandidates(FAKE, env, true).map((c) => c.path);
    let at = -1;
    for (const p of expected) {
      const i = e.tried.findIndex((t) => t.startsWith(`${p}:`));
      assert.ok(i > at, `${p} should be listed after the previous candidate`);
      at = i;
    }
    assert.ok(
      e.tried.some((t) => t.includes(`${lib}/${FAKE.file}:`) && t.includes("[VIRTUAL_ENV]")),
    );
    // The companion beside the wheel's copy was tried first, and its failure is reported.
    assert.ok(e.tried.some((t) => t.includes(`${lib}/${FAKE.companions[0]} (needed beside it)`)));
    assert.ok(
      e.tried.some((t) => t.includes("not set, so not searched: NVIDIA_SITE, CONDA_PREFIX")),
    );
    assert.ok(e.tried.some((t) => t.includes('no "nvidia" package')));
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("discovery: the override variable is used alone", () => {
  const { root, lib } = fakeTree("libcublas.so.13");
  const before = Deno.env.get("EQL_CUBLAS_PATH");
  try {
    Deno.env.set("EQL_CUBLAS_PATH", `${lib}/libcublas.so.13`);
    const e = thrown(() => openNvidiaLibrary("cublas", CUBLAS_SYMBOLS), LibraryNotFoundError);
    assert.equal(e.tried.length, 1);
    assert.match(e.tried[0], new RegExp(`^${lib}/libcublas.so.13 \\(from EQL_CUBLAS_PATH\\): `));
    assert.match(e.message, /Set EQL_CUBLAS_PATH/);
  } finally {
    if (before === undefined) Deno.env.delete("EQL_CUBLAS_PATH");
    else Deno.env.set("EQL_CUBLAS_PATH", before);
    Deno.removeSync(root, { recursive: true });
  }
});

const CUDART = "/usr/local/cuda/lib64/libcudart.so.13";
const haveCudart = (() => {
  try {
    return Deno.statSync(CUDART).isFile;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "discovery: a real library in a wheel folder is found after the failed candidates",
  ignore: !haveCudart,
  fn() {
    const root = Deno.makeTempDirSync({ prefix: "eql_nvidia_" });
    try {
      const lib = `${root}/site/nvidia/cu13/lib`;
      Deno.mkdirSync(lib, { recursive: true });
      Deno.symlinkSync(CUDART, `${lib}/libeql_real_test.so.1`);
      Deno.symlinkSync(CUDART, `${lib}/libeql_real_companion.so.1`);
      const info: NvidiaLibraryInfo = {
        library: "Real test library",
        file: "libeql_real_test.so.1",
        envVar: "EQL_REAL_TEST_PATH",
        pipDir: "nvidia/cu13/lib",
        companions: ["libeql_real_companion.so.1"],
      };
      const env = fakeEnv({ NVIDIA_SITE: `${root}/site` });
      const opened = openNvidiaLibrary(info, {
        // const char* cudaGetErrorString(cudaError_t error)
        cudaGetErrorString: { parameters: ["i32"], result: "pointer" },
      }, env);
      const p = opened.symbols.cudaGetErrorString(0);
      assert.ok(p !== null);
      assert.equal(Deno.UnsafePointerView.getCString(p), "no error");
      assert.equal(env.pythonCalls, 0, "python3 is not asked when an earlier candidate loads");
      opened.close();
    } finally {
      Deno.removeSync(root, { recursive: true });
    }
  },
});

Deno.test("discovery: every library has its documented override variable", () => {
  assert.equal(NVIDIA_LIBRARIES.driver.envVar, "EQL_CUDA_DRIVER_PATH");
  assert.equal(NVIDIA_LIBRARIES.cublas.envVar, "EQL_CUBLAS_PATH");
  assert.equal(NVIDIA_LIBRARIES.cudnn.envVar, "EQL_CUDNN_PATH");
  assert.deepEqual(NVIDIA_LIBRARIES.cublas.companions, ["libcublasLt.so.13"]);
});

// ── errors ───────────────────────────────────────────────────────────────────────────────────

Deno.test("errors: CudaError carries the call, the code, the name and the description", () => {
  assert.doesNotThrow(() => checkCuda(0, "cuInit"));
  const e = thrown(() => checkCuda(100, "cuInit"), CudaError);
  assert.equal(e.code, 100);
  assert.equal(e.call, "cuInit");
  assert.equal(e.errorName, "CUDA_ERROR_NO_DEVICE");
  assert.match(e.message, /^cuInit failed: CUDA_ERROR_NO_DEVICE \(100\): /);
  assert.equal(e.name, "CudaError");
});

Deno.test("errors: CublasError names the status", () => {
  assert.doesNotThrow(() => checkCublas(0, "cublasCreate_v2"));
  const e = thrown(() => checkCublas(7, "cublasSgemm_v2(m 1)"), CublasError);
  assert.equal(e.code, 7);
  assert.equal(e.errorName, "CUBLAS_STATUS_INVALID_VALUE");
  assert.match(e.message, /^cublasSgemm_v2\(m 1\) failed: CUBLAS_STATUS_INVALID_VALUE \(7\)/);
});

Deno.test("errors: CudnnError carries the status and the call", () => {
  assert.doesNotThrow(() => checkCudnn(0, "cudnnCreate"));
  const e = thrown(() => checkCudnn(2000, "cudnnSetStream"), CudnnError);
  assert.equal(e.code, 2000);
  assert.equal(e.call, "cudnnSetStream");
  // Without the library the name is the bare number; with it, cuDNN's own name.
  assert.match(e.errorName, /^(cudnnStatus_t 2000|CUDNN_STATUS_BAD_PARAM)$/);
  assert.match(e.message, /^cudnnSetStream failed: /);
});

Deno.test("errors: the three libraries' errors are one NvidiaError with the same fields", () => {
  const errors = [
    thrown(() => checkCuda(2, "cuMemAlloc_v2(64 bytes)"), CudaError),
    thrown(() => checkCublas(13, "cublasSgemm_v2"), CublasError),
    thrown(() => checkCudnn(4000, "cudnnConvolutionForward"), CudnnError),
  ];
  const names = ["CudaError", "CublasError", "CudnnError"];
  errors.forEach((e, i) => {
    assert.ok(e instanceof NvidiaError);
    assert.equal(e.name, names[i]);
    assert.equal(typeof e.description, "string");
    assert.ok(e.errorName.length > 0);
    assert.ok(
      e.message.startsWith(`${e.call} failed: ${e.errorName} (${e.code})`),
      `${e.name}: ${e.message}`,
    );
  });
  assert.equal(errors[0].code, 2);
  assert.equal(errors[1].errorName, "CUBLAS_STATUS_EXECUTION_FAILED");
  assert.ok(!(errors[0] instanceof CublasError) && !(errors[1] instanceof CudnnError));
  // an empty description leaves the message at the status
  const bare = new CudnnError("cudnnCreate", 1001, "CUDNN_STATUS_NOT_INITIALIZED", "");
  assert.equal(bare.message, "cudnnCreate failed: CUDNN_STATUS_NOT_INITIALIZED (1001)");
});

// ── cuDNN algorithm selection ────────────────────────────────────────────────────────────────

Deno.test("cuDNN: the 48-byte perf structs decode field by field", () => {
  const bytes = new Uint8Array(2 * CUDNN.ALGO_PERF_BYTES);
  const v = new DataView(bytes.buffer);
  const put = (
    i: number,
    algo: number,
    status: number,
    time: number,
    mem: bigint,
    det: number,
    math: number,
  ) => {
    const o = i * 48;
    v.setInt32(o, algo, true);
    v.setInt32(o + 4, status, true);
    v.setFloat32(o + 8, time, true);
    v.setInt32(o + 12, -1, true); // padding must be ignored
    v.setBigUint64(o + 16, mem, true);
    v.setInt32(o + 24, det, true);
    v.setInt32(o + 28, math, true);
  };
  put(0, 6, 0, 0.25, 123456789012n, 1, 3);
  put(1, 1, 3000, -1, 0n, 0, 1);
  assert.deepEqual(decodeAlgoPerf(bytes, 2), [
    { algo: 6, status: 0, time: 0.25, memory: 123456789012, determinism: 1, mathType: 3 },
    { algo: 1, status: 3000, time: -1, memory: 0, determinism: 0, mathType: 1 },
  ]);
});

Deno.test("cuDNN: ranking prefers deterministic FP32 algorithms and falls back safely", () => {
  const p = (
    algo: number,
    o: Partial<{ status: number; memory: number; determinism: number; mathType: number }> = {},
  ) => ({
    algo,
    status: o.status ?? 0,
    time: 1,
    memory: o.memory ?? 0,
    determinism: o.determinism ?? 1,
    mathType: o.mathType ?? CUDNN.FMA_MATH,
  });
  // Backward-filter: 0 and 3 are non-deterministic, 5 needs too much workspace, 6 failed, 2 is TF32.
  const perfs = [
    p(0, { determinism: 0 }),
    p(3, { determinism: 0 }),
    p(5, { memory: 2 ** 31 }),
    p(6, { status: 3000 }),
    p(2, { mathType: CUDNN.TENSOR_OP_MATH }),
    p(1),
  ];
  assert.deepEqual(rankAlgorithms(perfs, "backwardFilter", false, 2 ** 30).map((x) => x.algo), [
    1,
    0,
    3,
  ]);
  // With TF32 allowed, the tensor-op entry is usable and keeps cuDNN's order among the deterministic.
  assert.deepEqual(rankAlgorithms(perfs, "backwardFilter", true, 2 ** 30).map((x) => x.algo), [
    2,
    1,
    0,
    3,
  ]);
  // Backward-data: algo 0 is avoided even when reported deterministic.
  assert.deepEqual(rankAlgorithms([p(0), p(1)], "backwardData", false, 0).map((x) => x.algo), [
    1,
    0,
  ]);
  // Nothing usable: the always-supported fallbacks.
  assert.deepEqual(rankAlgorithms([], "forward", false, 0).map((x) => x.algo), [0, 1]);
});

// ── GEMM mapping ─────────────────────────────────────────────────────────────────────────────

/** Column-major `C = alpha·op(A)·op(B) + beta·C` exactly as the BLAS defines it, in float64. */
function naiveColumnMajor(
  transa: number,
  transb: number,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float64Array,
  lda: number,
  b: Float64Array,
  ldb: number,
  beta: number,
  c: Float64Array,
  ldc: number,
): void {
  // The BLAS argument rules that cuBLAS enforces.
  assert.ok(lda >= Math.max(1, transa === 0 ? m : k), `lda ${lda}`);
  assert.ok(ldb >= Math.max(1, transb === 0 ? k : n), `ldb ${ldb}`);
  assert.ok(ldc >= Math.max(1, m), `ldc ${ldc}`);
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < m; i++) {
      let s = 0;
      for (let l = 0; l < k; l++) {
        const av = transa === 0 ? a[i + l * lda] : a[l + i * lda];
        const bv = transb === 0 ? b[l + j * ldb] : b[j + l * ldb];
        s += av * bv;
      }
      c[i + j * ldc] = alpha * s + beta * c[i + j * ldc];
    }
  }
}

function rand(n: number, seed: number): Float64Array {
  const out = new Float64Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 2 - 1;
  }
  return out;
}

Deno.test("GEMM: the row-major → column-major mapping matches a row-major product", () => {
  for (const [m, n, k] of [[3, 5, 4], [1, 7, 2], [6, 1, 1], [4, 4, 0]]) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        const a = rand(m * k, 1), b = rand(k * n, 2), c0 = rand(m * n, 3);
        const alpha = 0.75, beta = -0.5;
        // Row-major reference.
        const want = new Float64Array(m * n);
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            let s = 0;
            for (let l = 0; l < k; l++) {
              s += (transA ? a[l * m + i] : a[i * k + l]) * (transB ? b[j * k + l] : b[l * n + j]);
            }
            want[i * n + j] = alpha * s + beta * c0[i * n + j];
          }
        }
        const g = columnMajor(transA, transB, m, n, k);
        const got = c0.slice();
        naiveColumnMajor(
          g.transa,
          g.transb,
          g.m,
          g.n,
          g.k,
          alpha,
          b,
          g.lda,
          a,
          g.ldb,
          beta,
          got,
          g.ldc,
        );
        for (let i = 0; i < m * n; i++) {
          assert.ok(
            Math.abs(got[i] - want[i]) < 1e-12,
            `m${m} n${n} k${k} tA${transA} tB${transB} at ${i}`,
          );
        }
      }
    }
  }
});

Deno.test("GEMM: the bias mapping adds bias[j] to every row", () => {
  const m = 4, n = 3;
  const c = rand(m * n, 5), bias = rand(n, 6), ones = new Float64Array(m).fill(1);
  const want = c.map((v, i) => v + bias[i % n]);
  const r = biasColumnMajor(m, n);
  naiveColumnMajor(r.transa, r.transb, r.m, r.n, r.k, 1, bias, r.lda, ones, r.ldb, 1, c, r.ldc);
  for (let i = 0; i < m * n; i++) assert.ok(Math.abs(c[i] - want[i]) < 1e-12);
});

// ── allocator ────────────────────────────────────────────────────────────────────────────────

Deno.test("allocator: size classes cover the request with bounded waste", () => {
  assert.equal(sizeClass(1), 512);
  assert.equal(sizeClass(512), 512);
  assert.equal(sizeClass(513), 1024);
  assert.equal(sizeClass(1 << 20), 1 << 20);
  assert.equal(sizeClass((1 << 20) + 1), (1 << 20) + (1 << 17));
  assert.equal(sizeClass(3 * 2 ** 20 + 1), 3.25 * 2 ** 20);
  for (const bytes of [7, 1000, 123457, 2 ** 20 + 3, 5e6, 123456789, 3e9]) {
    const s = sizeClass(bytes);
    assert.ok(s >= bytes && s % 512 === 0, `${bytes} → ${s}`);
    assert.ok(bytes < 1 << 20 ? s - bytes < 512 : s - bytes <= bytes / 8, `${bytes} → ${s}`);
  }
});

// ── the real libraries, where they exist ─────────────────────────────────────────────────────

function tryOpen(label: string, open: () => unknown): boolean {
  try {
    open();
    return true;
  } catch (e) {
    if (!(e instanceof LibraryNotFoundError)) throw e;
    console.log(`skipping the ${label} symbol test: ${e.message.split("\n")[0]}`);
    return false;
  }
}

const haveDriver = tryOpen("CUDA driver", cuda);
const haveCublas = tryOpen("cuBLAS", cublas);
const haveCudnn = tryOpen("cuDNN", cudnn);

function assertSymbols(
  table: Deno.ForeignLibraryInterface,
  symbols: Record<string, unknown>,
  label: string,
): void {
  for (const [name, def] of Object.entries(table)) {
    const optional = "optional" in def && def.optional === true;
    if (symbols[name] === null && optional) {
      console.log(`${label}: optional symbol ${name} is not exported by this version`);
      continue;
    }
    assert.equal(typeof symbols[name], "function", `${label}: ${name} resolves`);
  }
}

Deno.test({
  name: "symbols: every driver API symbol resolves",
  ignore: !haveDriver,
  fn() {
    assertSymbols(CUDA_SYMBOLS, cuda() as unknown as Record<string, unknown>, "libcuda");
  },
});

Deno.test({
  name: "symbols: every cuBLAS symbol resolves",
  ignore: !haveCublas,
  fn() {
    assertSymbols(CUBLAS_SYMBOLS, cublas() as unknown as Record<string, unknown>, "libcublas");
  },
});

Deno.test({
  name: "symbols: every cuDNN symbol resolves and the version is 9.x",
  ignore: !haveCudnn,
  fn() {
    assertSymbols(CUDNN_SYMBOLS, cudnn() as unknown as Record<string, unknown>, "libcudnn");
    const v = Number(cudnn().cudnnGetVersion());
    assert.ok(v >= 90000 && v < 100000, `cuDNN version ${v}`);
    const name = cudnn().cudnnGetErrorString(2000);
    assert.ok(name !== null && Deno.UnsafePointerView.getCString(name).startsWith("CUDNN_STATUS"));
  },
});

Deno.test({
  name: "symbols: the driver names its own errors",
  ignore: !haveDriver,
  fn() {
    const e = thrown(() => checkCuda(2, "cuMemAlloc_v2"), CudaError);
    assert.equal(e.errorName, "CUDA_ERROR_OUT_OF_MEMORY");
    assert.notEqual(e.description, "(no description available)");
  },
});

Deno.test({
  name: "missing library: without libcuda.so.1 the error names it and EQL_CUDA_DRIVER_PATH",
  ignore: haveDriver,
  fn() {
    const e = thrown(() => cuda(), LibraryNotFoundError);
    assert.equal(e.library, "CUDA driver");
    assert.equal(e.envVar, "EQL_CUDA_DRIVER_PATH");
    assert.ok(e.tried.some((t) => t.startsWith("libcuda.so.1")));
    assert.ok(e.tried.some((t) => t.startsWith("/usr/lib/x86_64-linux-gnu/libcuda.so.1")));
    assert.match(e.message, /Set EQL_CUDA_DRIVER_PATH/);
  },
});

Deno.test({
  name: "missing library: without cuBLAS the error lists the toolkit and wheel folders",
  ignore: haveCublas,
  fn() {
    const e = thrown(() => cublas(), LibraryNotFoundError);
    assert.equal(e.envVar, "EQL_CUBLAS_PATH");
    assert.ok(e.tried.some((t) => t.startsWith("libcublas.so.13")));
    assert.ok(e.tried.some((t) => t.startsWith("/usr/local/cuda/lib64/libcublas.so.13")));
    assert.match(e.message, /Set EQL_CUBLAS_PATH/);
  },
});
