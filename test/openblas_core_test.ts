// The OpenBLAS kernel set: the choice of a replacement for a generic fallback core on synthetic
// flag and core-name inputs, a user's OPENBLAS_CORETYPE kept and named in the description, and
// the reopening itself against a small stand-in library that falls back the way OpenBLAS does.

import assert from "node:assert/strict";
import { fallbackCoreFix, type OpenBlasCoreInput } from "../ffi/openblas_core.ts";
import { openBlas } from "../ffi/openblas.ts";
import { findCompiler } from "../ffi/cpu_kernels/compile.ts";
import { cpuFeatures } from "../ffi/cpu_kernels/variant.ts";

const AVX512 = ["avx2", "fma", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"];

Deno.test("a pre-AVX2 fallback core is replaced by the best core the CPU's flags allow", () => {
  const input = (over: Partial<OpenBlasCoreInput>): OpenBlasCoreInput => ({
    arch: "x86_64",
    flags: new Set(AVX512),
    corename: "Prescott",
    userCoretype: undefined,
    ...over,
  });
  const cases: [string, Partial<OpenBlasCoreInput>, string | undefined][] = [
    ["Prescott on AVX-512", {}, "SkylakeX"],
    ["Core2 on AVX-512 (case-insensitive)", { corename: "CORE2" }, "SkylakeX"],
    ["Prescott on AVX2 + FMA", { flags: new Set(["avx2", "fma"]) }, "Haswell"],
    [
      "Sandybridge on AVX2 + FMA",
      { corename: "Sandybridge", flags: new Set(["avx2", "fma"]) },
      "Haswell",
    ],
    ["AVX-512F without BW/VL", { flags: new Set(["avx2", "fma", "avx512f"]) }, "Haswell"],
    ["Prescott on a CPU without AVX2", { flags: new Set(["sse3", "avx"]) }, undefined],
    ["AVX2 without FMA", { flags: new Set(["avx2"]) }, undefined],
    ["its own choice fits: Cooperlake", { corename: "Cooperlake" }, undefined],
    ["its own choice fits: Haswell", { corename: "Haswell" }, undefined],
    ["its own choice fits: Zen", { corename: "Zen" }, undefined],
    ["a core this table does not know", { corename: "SapphireRapids" }, undefined],
    ["the user set OPENBLAS_CORETYPE", { userCoretype: "Prescott" }, undefined],
    ["the user set it to another core", { userCoretype: "haswell" }, undefined],
    ["an empty OPENBLAS_CORETYPE counts as unset", { userCoretype: " " }, "SkylakeX"],
    ["not x86-64", { arch: "aarch64" }, undefined],
  ];
  for (const [what, over, expected] of cases) {
    assert.equal(fallbackCoreFix(input(over)), expected, what);
  }
});

/** Runs a snippet in a fresh Deno process with exactly the given OpenBLAS variables. */
async function runFresh(code: string, env: Record<string, string | undefined>) {
  const cpuUrl = new URL("../src/device/cpu.ts", import.meta.url).href;
  const full = `import { CpuDevice } from "${cpuUrl}";\n${code}`;
  const childEnv: Record<string, string> = { ...Deno.env.toObject(), NO_COLOR: "1" };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete childEnv[k];
    else childEnv[k] = v;
  }
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", full],
    env: childEnv,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** A GEMM through the device whose result is checked in the child: [1 2; 3 4]·[5 6; 7 8]. */
const GEMM_SNIPPET = `
const d = new CpuDevice({ kernels: "typescript", gemm: "openblas" });
const up = (v) => { const b = d.alloc("f32", v.length); d.upload(b, new Float32Array(v)); return b; };
const c = d.alloc("f32", 4);
d.gemm(up([1, 2, 3, 4]), up([5, 6, 7, 8]), c,
  { transA: false, transB: false, m: 2, n: 2, k: 2, alpha: 1, beta: 0 });
const out = new Float32Array(4);
d.download(c, out);
console.log(JSON.stringify({ description: d.description, c: [...out],
  env: Deno.env.get("OPENBLAS_CORETYPE") ?? null }));
`;

Deno.test({
  name: "a user's OPENBLAS_CORETYPE=Prescott is kept, named in the description, and GEMM is right",
  ignore: openBlas() === null,
  async fn() {
    const r = await runFresh(GEMM_SNIPPET, {
      OPENBLAS_CORETYPE: "Prescott",
      EQL_OPENBLAS_PATH: undefined,
    });
    assert.equal(r.code, 0, r.stderr);
    const got = JSON.parse(r.stdout);
    assert.match(got.description, /GEMM: openblas \(OpenBLAS [0-9.]+, Prescott core\)\)$/);
    assert.deepEqual(got.c, [19, 22, 43, 50]);
    assert.equal(got.env, "Prescott");
  },
});

// A stand-in for OpenBLAS that, like a DYNAMIC_ARCH build on a CPU model it does not know, picks
// "Prescott" as it loads unless OPENBLAS_CORETYPE names a core; its GEMM is a plain loop.
const STAND_IN = `
#include <stdlib.h>
#include <string.h>
static char core[64] = "Prescott";
__attribute__((constructor)) static void pick(void) {
  const char *forced = getenv("OPENBLAS_CORETYPE");
  if (forced && *forced) { strncpy(core, forced, sizeof core - 1); }
}
const char *openblas_get_corename(void) { return core; }
const char *openblas_get_config(void) { return "OpenBLAS 0.0.1 DYNAMIC_ARCH stand-in"; }
void cblas_sgemm(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a,
                 int lda, const float *b, int ldb, float beta, float *c, int ldc) {
  (void)order;
  for (int i = 0; i < m; i++) {
    for (int j = 0; j < n; j++) {
      float s = 0;
      for (int p = 0; p < k; p++) {
        s += (ta == 112 ? a[p * lda + i] : a[i * lda + p]) *
             (tb == 112 ? b[j * ldb + p] : b[p * ldb + j]);
      }
      c[i * ldc + j] = alpha * s + (beta == 0 ? 0 : beta * c[i * ldc + j]);
    }
  }
}
`;

const compiler = findCompiler();

Deno.test({
  name: "a library that fell back to Prescott is reopened with the core the CPU's flags allow",
  ignore: compiler === undefined,
  async fn() {
    const dir = Deno.makeTempDirSync({ prefix: "eql-openblas-stand-in-" });
    try {
      Deno.writeTextFileSync(`${dir}/blas.c`, STAND_IN);
      const cc = await new Deno.Command(compiler!, {
        args: ["-O1", "-shared", "-fPIC", "-o", `${dir}/libopenblas.so.0`, `${dir}/blas.c`],
        stderr: "piped",
      }).output();
      assert.equal(cc.code, 0, new TextDecoder().decode(cc.stderr));
      const f = cpuFeatures();
      const expected = fallbackCoreFix({
        arch: f.arch,
        flags: f.flags,
        corename: "Prescott",
        userCoretype: undefined,
      });
      const r = await runFresh(GEMM_SNIPPET, {
        OPENBLAS_CORETYPE: undefined,
        EQL_OPENBLAS_PATH: `${dir}/libopenblas.so.0`,
      });
      assert.equal(r.code, 0, r.stderr);
      const got = JSON.parse(r.stdout);
      assert.deepEqual(got.c, [19, 22, 43, 50]);
      assert.equal(got.env, null, "the variable is set only while the library reopens");
      if (expected === undefined) {
        // A CPU without AVX2: the fallback is all it can run.
        assert.match(got.description, /OpenBLAS 0\.0\.1, Prescott core\)\)$/);
      } else {
        assert.match(
          got.description,
          new RegExp(
            `OpenBLAS 0\\.0\\.1, ${expected} core in place of its Prescott fallback\\)\\)$`,
          ),
        );
      }
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
