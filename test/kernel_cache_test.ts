// The CPU kernel cache and the environment switches, each case in a fresh process: a damaged cached
// library is rebuilt (never mapped), a hanging compiler is stopped, a failing one is quoted, old
// build debris is swept, and bad EQL_* values are errors that name the variable.
//
// One real compile (through a wrapper compiler that can be told to be slow or to fail) fills a
// golden cache; each case works on a copy of it.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { findCompiler } from "../ffi/cpu_kernels/compile.ts";

const root = Deno.makeTempDirSync({ prefix: "eql-kernel-cache-test-" });
globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(root, { recursive: true });
  } catch {
    // already gone
  }
});

const realCompiler = findCompiler();
const noCompiler = realCompiler === undefined || Deno.build.os === "windows";
const unix = Deno.build.os !== "windows";

/** Writes an executable shell script and returns its path. */
function script(name: string, body: string): string {
  const path = `${root}/${name}`;
  Deno.writeTextFileSync(path, `#!/bin/sh\n${body}\n`);
  Deno.chmodSync(path, 0o755);
  return path;
}

/**
 * The compiler every cache test uses (its path is part of the cache key): the real one, slowed
 * down by 1.2 s when `EQL_TEST_CC=slow`, refusing with a message when `EQL_TEST_CC=fail`.
 */
const wrapper = unix
  ? script(
    "wrapper-cc",
    `case "$EQL_TEST_CC" in
  slow) sleep 1.2 ;;
  fail) echo "wrapper-cc: refusing to compile (EQL_TEST_CC=fail)" >&2; exit 1 ;;
esac
exec ${realCompiler ?? "cc"} "$@"`,
  )
  : "";

/**
 * Runs a snippet in a fresh Deno with extra environment (and `EQL_CPU_KERNELS=auto` unless given,
 * whatever this process runs with); returns its exit code, its output and how long it took.
 */
async function runSnippet(
  code: string,
  env: Record<string, string>,
): Promise<{ code: number; signal: string | null; text: string; seconds: number }> {
  const start = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-check", code],
    env: { EQL_CPU_KERNELS: "auto", EQL_TEST_CC: "", ...env, NO_COLOR: "1" },
    cwd: new URL("..", import.meta.url).pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { code: out.code, signal: out.signal, text, seconds: (performance.now() - start) / 1000 };
}

/** Runs ReLU through the CPU device's kernels; prints which kernels ran and the result. */
const snippet = `
import { reluForward } from "./src/device/cpu/elementwise.ts";
import { cpuKernels } from "./ffi/cpu_kernels.ts";
const y = new Float32Array(5);
reluForward(new Float32Array([-1, 2, -3, 4.5, -0.25]), y, 5);
console.log("kernels", cpuKernels() === null ? "typescript" : "native");
console.log("relu", Array.from(y).join(","));`;
const RELU = /relu 0,2,0,4\.5,0/;

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** The cached library in a cache folder (there is one). */
function libraryIn(dir: string): string {
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
    /\.(so|dylib)$/.test(n)
  );
  assert.equal(names.length, 1, `one library in ${dir}: ${names.join(", ")}`);
  return `${dir}/${names[0]}`;
}

/** Names in a folder that look like build debris (temporary files and source folders). */
function temporaries(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".tmp"));
}

let golden: Promise<{ dir: string; text: string }> | undefined;

/** The golden cache, built once (slowly, so the "compiling" notice shows) by a fresh process. */
function goldenCache(): Promise<{ dir: string; text: string }> {
  golden ??= (async () => {
    const dir = `${root}/golden`;
    const r = await runSnippet(snippet, {
      EQL_CACHE_DIR: dir,
      EQL_CC: wrapper,
      EQL_TEST_CC: "slow",
      EQL_CPU_KERNELS: "native",
    });
    assert.equal(r.code, 0, r.text);
    assert.match(r.text, /kernels native/);
    assert.match(r.text, RELU);
    return { dir, text: r.text };
  })();
  return golden;
}

let copies = 0;

/** A fresh copy of the golden cache. */
async function cacheCopy(): Promise<string> {
  const { dir } = await goldenCache();
  const copy = `${root}/cache-${copies++}`;
  Deno.mkdirSync(copy);
  for (const e of Deno.readDirSync(dir)) {
    if (e.isFile) Deno.copyFileSync(`${dir}/${e.name}`, `${copy}/${e.name}`);
  }
  return copy;
}

// ── 4: a damaged cached library ───────────────────────────────────────────────────────────────

/** Ways to damage the cached library, each with what the notice should say. */
const damages: { name: string; damage: (lib: string) => void; why: RegExp }[] = [
  {
    name: "truncated to half",
    damage: (lib) => Deno.truncateSync(lib, Math.floor(Deno.statSync(lib).size / 2)),
    why: /bytes long, expected/,
  },
  {
    name: "4 KiB in its middle overwritten",
    damage: (lib) => {
      const bytes = Deno.readFileSync(lib);
      bytes.fill(0xff, bytes.length / 2 - 2048, bytes.length / 2 + 2048);
      Deno.writeFileSync(lib, bytes);
    },
    why: /SHA-256 differs/,
  },
  { name: "emptied", damage: (lib) => Deno.truncateSync(lib, 0), why: /0 bytes long/ },
  {
    name: "replaced by garbage",
    damage: (lib) => Deno.writeTextFileSync(lib, "garbage ".repeat(1000)),
    why: /bytes long, expected|SHA-256 differs/,
  },
  {
    name: "replaced by a directory",
    damage: (lib) => {
      Deno.removeSync(lib);
      Deno.mkdirSync(lib);
      Deno.writeTextFileSync(`${lib}/inside`, "x");
    },
    why: /is a directory/,
  },
  {
    name: "without its checksum file",
    damage: (lib) => Deno.removeSync(`${lib}.sha256`),
    why: /checksum file .* is missing/,
  },
  {
    name: "replaced by garbage with a matching checksum file (it does not load)",
    damage: (lib) => {
      const bytes = new TextEncoder().encode("garbage ".repeat(1000));
      Deno.writeFileSync(lib, bytes);
      Deno.writeTextFileSync(
        `${lib}.sha256`,
        JSON.stringify({ size: bytes.length, sha256: sha256(bytes) }),
      );
    },
    why: /could not be loaded/,
  },
];

Deno.test({
  name: "a damaged cached library is rebuilt, with one notice naming it, and never mapped",
  ignore: noCompiler,
  async fn() {
    const cases = await Promise.all(damages.map(async (d) => {
      const dir = await cacheCopy();
      const lib = libraryIn(dir);
      d.damage(lib);
      return { ...d, dir, lib };
    }));
    // Two at a time: each rebuild is a real compile.
    const results: Awaited<ReturnType<typeof runSnippet>>[] = [];
    for (let i = 0; i < cases.length; i += 2) {
      results.push(
        ...await Promise.all(
          cases.slice(i, i + 2).map((c) =>
            runSnippet(snippet, {
              EQL_CACHE_DIR: c.dir,
              EQL_CC: wrapper,
              EQL_CPU_KERNELS: "native",
            })
          ),
        ),
      );
    }
    cases.forEach((c, i) => {
      const r = results[i];
      const what = `${c.name}: exit ${r.code} (signal ${r.signal})\n${r.text}`;
      assert.equal(r.code, 0, what);
      assert.match(r.text, /kernels native/, what);
      assert.match(r.text, RELU, what);
      const notices = r.text.split("was damaged").length - 1;
      assert.equal(notices, 1, what);
      assert.ok(r.text.includes(`cached CPU kernel library at ${c.lib} was damaged`), what);
      assert.match(r.text, c.why, what);
      assert.match(r.text, /and was rebuilt/, what);
      // The entry is whole again: the library matches its new checksum file, no debris is left.
      const bytes = Deno.readFileSync(c.lib);
      const sum = JSON.parse(Deno.readTextFileSync(`${c.lib}.sha256`));
      assert.deepEqual(sum, { size: bytes.length, sha256: sha256(bytes) }, c.name);
      assert.deepEqual(temporaries(c.dir), [], c.name);
    });
  },
});

Deno.test({
  name: "a damaged cached library that cannot be rebuilt is reported, and then removed",
  ignore: noCompiler,
  async fn() {
    const dir = await cacheCopy();
    const lib = libraryIn(dir);
    Deno.truncateSync(lib, 100);
    const env = { EQL_CACHE_DIR: dir, EQL_CC: wrapper, EQL_TEST_CC: "fail" };
    const native = await runSnippet(snippet, { ...env, EQL_CPU_KERNELS: "native" });
    assert.notEqual(native.code, 0, native.text);
    assert.equal(native.signal, null, native.text);
    assert.match(native.text, /EQL_CPU_KERNELS=native, but the CPU kernels are unavailable/);
    assert.ok(native.text.includes(`the cached library ${lib} was damaged`), native.text);
    assert.match(native.text, /rebuilding it failed/);
    assert.match(native.text, /wrapper-cc: refusing to compile/);
    // The damaged file was removed, so the next run (auto) sees a plain missing build.
    assert.throws(() => Deno.statSync(lib), Deno.errors.NotFound);
    const auto = await runSnippet(snippet, env);
    assert.equal(auto.code, 0, auto.text);
    assert.match(auto.text, /kernels typescript/);
    assert.match(auto.text, RELU);
    assert.match(auto.text, /wrapper-cc: refusing to compile/);
  },
});

Deno.test({
  name: "an intact cache is loaded as it is: no notice, no compile",
  ignore: noCompiler,
  async fn() {
    const dir = await cacheCopy();
    const lib = libraryIn(dir);
    const before = Deno.statSync(lib).mtime;
    // A compiler that would fail shows that none runs.
    const r = await runSnippet(snippet, {
      EQL_CACHE_DIR: dir,
      EQL_CC: wrapper,
      EQL_TEST_CC: "fail",
      EQL_CPU_KERNELS: "native",
    });
    assert.equal(r.code, 0, r.text);
    assert.match(r.text, /kernels native/);
    assert.doesNotMatch(r.text, /Note|Warning/);
    assert.deepEqual(Deno.statSync(lib).mtime, before);
  },
});

// ── 6: a compiler that hangs or is slow ───────────────────────────────────────────────────────

Deno.test({
  name: "a compiler that hangs is stopped at EQL_CC_TIMEOUT_S, with no temporary folder left",
  ignore: !unix,
  async fn() {
    const dir = `${root}/hang-cache`;
    const pidFile = `${root}/hang.pid`;
    const hang = script("hanging-cc", `echo $$ > ${pidFile}\nexec sleep 60`);
    const env = { EQL_CACHE_DIR: dir, EQL_CC: hang, EQL_CC_TIMEOUT_S: "2" };
    const r = await runSnippet(snippet, { ...env, EQL_CPU_KERNELS: "native" });
    assert.notEqual(r.code, 0, r.text);
    assert.ok(r.seconds < 20, `took ${r.seconds} s`);
    assert.ok(r.text.includes(`the C compiler ${hang} did not finish within 2 s`), r.text);
    assert.match(r.text, /EQL_CC_TIMEOUT_S/);
    assert.match(r.text, /compiling the CPU kernels…/);
    assert.deepEqual(temporaries(dir), []);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), []);
    // The compiler itself was stopped.
    const pid = Deno.readTextFileSync(pidFile).trim();
    let state = "gone";
    try {
      state = Deno.readTextFileSync(`/proc/${pid}/status`).match(/^State:\s*(\S)/m)?.[1] ?? "";
    } catch {
      // no such process
    }
    assert.ok(state === "gone" || state === "Z" || state === "X", `compiler ${pid}: ${state}`);
    // In auto mode the same is a notice, and the TypeScript kernels run.
    const auto = await runSnippet(snippet, env);
    assert.equal(auto.code, 0, auto.text);
    assert.match(auto.text, RELU);
    assert.match(auto.text, /did not finish within 2 s and was stopped/);
  },
});

Deno.test({
  name: "a compile that takes over a second says so once; a quick load says nothing",
  ignore: noCompiler,
  async fn() {
    const { text } = await goldenCache();
    assert.equal(text.split("compiling the CPU kernels…").length - 1, 1, text);
    assert.doesNotMatch(text, /damaged/);
  },
});

// ── 11: build debris ──────────────────────────────────────────────────────────────────────────

Deno.test({
  name: "temporary files older than an hour are removed at start, younger ones kept",
  ignore: noCompiler,
  async fn() {
    const dir = await cacheCopy();
    const lib = libraryIn(dir);
    const old = new Date(Date.now() - 2 * 3600_000);
    const staleLib = `${lib}.4242.0badc0de.tmp`;
    const staleSum = `${lib}.sha256.4242.0badc0de.tmp`;
    const staleSrc = `${dir}/.eql-src.4242.0badc0de.tmp`;
    const fresh = `${lib}.4343.0badc0de.tmp`;
    const unrelated = `${dir}/notes.txt`;
    for (const f of [staleLib, staleSum, fresh, unrelated]) Deno.writeTextFileSync(f, "x");
    Deno.mkdirSync(staleSrc);
    Deno.writeTextFileSync(`${staleSrc}/pool.c`, "x");
    for (const p of [staleLib, staleSum, staleSrc, unrelated]) Deno.utimeSync(p, old, old);
    const r = await runSnippet(snippet, { EQL_CACHE_DIR: dir, EQL_CC: wrapper });
    assert.equal(r.code, 0, r.text);
    assert.match(r.text, /kernels native/);
    const left = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    for (const gone of [staleLib, staleSum, staleSrc]) {
      assert.ok(!left.includes(gone.slice(dir.length + 1)), `${gone} is still there`);
    }
    for (const kept of [fresh, unrelated]) {
      assert.ok(left.includes(kept.slice(dir.length + 1)), `${kept} was removed`);
    }
  },
});

// ── 9: what a failure says ────────────────────────────────────────────────────────────────────

Deno.test({
  name: "a failing compiler's own messages are in the error and in the notice, trimmed",
  ignore: !unix,
  async fn() {
    const noisy = script(
      "noisy-cc",
      `i=1; while [ $i -le 30 ]; do echo "noisy.c:$i: error: complaint number $i" >&2; i=$((i+1)); done; exit 1`,
    );
    const cache = `${root}/noisy-cache`;
    const env = { EQL_CACHE_DIR: cache, EQL_CC: noisy };
    const [native, auto] = await Promise.all([
      runSnippet(snippet, { ...env, EQL_CPU_KERNELS: "native" }),
      runSnippet(snippet, env),
    ]);
    assert.notEqual(native.code, 0, native.text);
    assert.equal(auto.code, 0, auto.text);
    assert.match(auto.text, RELU);
    for (const r of [native, auto]) {
      assert.ok(r.text.includes(`compiling with ${noisy} failed`), r.text);
      assert.match(r.text, /noisy\.c:1: error: complaint number 1\n/);
      assert.match(r.text, /noisy\.c:20: error: complaint number 20\n/);
      assert.doesNotMatch(r.text, /complaint number 21/);
      assert.match(r.text, /more characters of compiler output/);
    }
  },
});

Deno.test("without a compiler the CPU device says so once and runs in TypeScript", async () => {
  const cache = `${root}/nocc-auto`;
  const r = await runSnippet(snippet, { EQL_CC: "/nonexistent/cc", EQL_CACHE_DIR: cache });
  assert.equal(r.code, 0, r.text);
  assert.match(r.text, RELU);
  assert.equal(r.text.split("native CPU kernels could not be built").length - 1, 1, r.text);
  assert.match(r.text, /could not run \/nonexistent\/cc/);
});

Deno.test("EQL_CPU_KERNELS=native without a compiler is an error naming the compiler", async () => {
  const r = await runSnippet(snippet, {
    EQL_CC: "/nonexistent/cc",
    EQL_CACHE_DIR: `${root}/nocc-native`,
    EQL_CPU_KERNELS: "native",
  });
  assert.notEqual(r.code, 0);
  assert.match(r.text, /EQL_CPU_KERNELS=native, but the CPU kernels are unavailable/);
  assert.match(r.text, /\/nonexistent\/cc/);
});

const gemmSnippet = `
import { sgemm, gemmBackend } from "./src/device/cpu/gemm.ts";
const c = new Float32Array(1);
sgemm(false, false, 1, 1, 2, 1, new Float32Array([1, 2]), new Float32Array([3, 4]), 0, c);
console.log("gemm", gemmBackend(), c[0]);`;

Deno.test("an EQL_OPENBLAS_PATH that does not load is named, with its path, reason and fix", async () => {
  const bad = `${root}/not-openblas.so`;
  Deno.writeTextFileSync(bad, "this is not a shared library");
  const missing = `${root}/missing/libopenblas.so.0`;
  const [garbage, absent, required] = await Promise.all([
    runSnippet(gemmSnippet, { EQL_OPENBLAS_PATH: bad, EQL_GEMM: "auto" }),
    runSnippet(gemmSnippet, { EQL_OPENBLAS_PATH: missing, EQL_GEMM: "auto" }),
    runSnippet(gemmSnippet, { EQL_OPENBLAS_PATH: bad, EQL_GEMM: "openblas" }),
  ]);
  for (const [r, path] of [[garbage, bad], [absent, missing]] as const) {
    assert.equal(r.code, 0, r.text);
    assert.match(r.text, /gemm typescript 11/);
    assert.ok(r.text.includes(`Warning: EQL_OPENBLAS_PATH is set to "${path}"`), r.text);
    assert.match(r.text, /could not be loaded \(.+\)/);
    assert.match(r.text, /or unset it/);
  }
  assert.notEqual(required.code, 0, required.text);
  assert.ok(required.text.includes(`EQL_OPENBLAS_PATH is set to "${bad}"`), required.text);
  assert.match(required.text, /unset it to search the usual places/);
});

// ── bad values of the switches, and 10: the thread count ──────────────────────────────────────

Deno.test("bad EQL_* values are errors naming the variable, the allowed values and the value", async () => {
  const cases: [Record<string, string>, RegExp][] = [
    [
      { EQL_CPU_KERNELS: "fast" },
      /EQL_CPU_KERNELS must be "auto", "native" or "typescript", got "fast"/,
    ],
    [{ EQL_GEMM: "blas", EQL_CPU_KERNELS: "typescript" }, /EQL_GEMM must be .*, got "blas"/],
    [
      { EQL_CPU_VARIANT: "sse9" },
      /EQL_CPU_VARIANT must be "auto", "avx512", "avx2" or "portable", got "sse9"/,
    ],
    [
      { EQL_CPU_VARIANT: "sse9", EQL_CPU_KERNELS: "typescript" },
      /EQL_CPU_VARIANT must be "auto", "avx512", "avx2" or "portable", got "sse9"/,
    ],
    [{ EQL_CPU_THREADS: "abc" }, /EQL_CPU_THREADS must be a whole number from 1 to 256, got "abc"/],
    [{ EQL_CPU_THREADS: "0" }, /EQL_CPU_THREADS must be a whole number from 1 to 256, got "0"/],
    [
      { EQL_CPU_THREADS: "1000" },
      /EQL_CPU_THREADS must be a whole number from 1 to 256, got "1000"/,
    ],
    [
      { EQL_CPU_THREADS: "2.5" },
      /EQL_CPU_THREADS must be a whole number from 1 to 256, got "2\.5"/,
    ],
    [
      { EQL_CPU_THREADS: "1000", EQL_CPU_KERNELS: "typescript" },
      /EQL_CPU_THREADS must be a whole number from 1 to 256, got "1000"/,
    ],
    [
      { EQL_CC_TIMEOUT_S: "abc" },
      /EQL_CC_TIMEOUT_S must be a number of seconds above 0 and at most 1800, got "abc"/,
    ],
    [{ EQL_CC_TIMEOUT_S: "0" }, /EQL_CC_TIMEOUT_S must be .*, got "0"/],
  ];
  const code = snippet + gemmSnippet; // ReLU, then a GEMM
  const results = await Promise.all(
    cases.map(([env]) => runSnippet(code, { EQL_CACHE_DIR: `${root}/unused`, ...env })),
  );
  cases.forEach(([env, message], i) => {
    const r = results[i];
    assert.notEqual(r.code, 0, `${JSON.stringify(env)}: ${r.text}`);
    assert.match(r.text, message, JSON.stringify(env));
  });
  const ok = await runSnippet(code, { EQL_CPU_KERNELS: "typescript", EQL_GEMM: "typescript" });
  assert.equal(ok.code, 0, ok.text);
  assert.match(ok.text, RELU);
  assert.doesNotMatch(ok.text, /Note|Warning/);
});

Deno.test({
  name: "more threads than logical CPUs are allowed, with one notice",
  ignore: noCompiler,
  async fn() {
    const cores = navigator.hardwareConcurrency || 1;
    const many = Math.min(Math.max(8, cores + 1), 256);
    assert.ok(many > cores, "this machine has 256 logical CPUs or more");
    const dir = await cacheCopy();
    const env = { EQL_CACHE_DIR: dir, EQL_CC: wrapper, EQL_CPU_KERNELS: "native" };
    const [over, exact] = await Promise.all([
      runSnippet(snippet, { ...env, EQL_CPU_THREADS: String(many) }),
      runSnippet(snippet, { ...env, EQL_CPU_THREADS: String(cores) }),
    ]);
    assert.equal(over.code, 0, over.text);
    assert.match(over.text, RELU);
    const notice = `EQL_CPU_THREADS=${many} is more than the ${cores} logical CPUs`;
    assert.equal(over.text.split(notice).length - 1, 1, over.text);
    assert.match(over.text, /slow the CPU kernels down/);
    assert.equal(exact.code, 0, exact.text);
    assert.doesNotMatch(exact.text, /Note/);
  },
});
