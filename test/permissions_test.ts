// Runs without some of Deno's permissions: the notices and errors name the missing flag instead of
// blaming a library that is installed or a folder that exists.

import assert from "node:assert/strict";
import { missingPermissions, permissionMessage } from "../ffi/permissions.ts";

const MOD = new URL("../mod.ts", import.meta.url).href;

/** Runs `code` as a module with exactly `flags`, in a fresh cache folder; returns its output. */
async function runWith(
  flags: string[],
  code: string,
  env: Record<string, string> = {},
): Promise<{ code: number; text: string }> {
  const dir = await Deno.makeTempDir();
  try {
    const script = `${dir}/probe.ts`;
    await Deno.writeTextFile(script, code);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...flags, script],
      // Defaults, whatever the suite runs with (CI repeats it with the TypeScript fallbacks).
      env: {
        EQL_CPU_KERNELS: "auto",
        EQL_GEMM: "auto",
        EQL_CACHE_DIR: `${dir}/cache`,
        NO_COLOR: "1",
        ...env,
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(60_000),
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    return { code: out.code, text };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const DESCRIBE_CPU = `import { cpuDevice } from ${JSON.stringify(MOD)};
console.log("device:", cpuDevice().description);`;

Deno.test("without --allow-ffi the CPU notices name that flag, not a missing library", async () => {
  const r = await runWith(["--allow-read", "--allow-write", "--allow-env"], DESCRIBE_CPU);
  assert.equal(r.code, 0, r.text);
  assert.match(r.text, /native CPU kernels cannot be used without Deno's --allow-ffi permission/);
  assert.match(r.text, /OpenBLAS cannot be loaded without Deno's --allow-ffi permission/);
  assert.doesNotMatch(r.text, /OpenBLAS was not found|no cache folder|no C compiler/);
  assert.match(r.text, /device: CPU \(kernels: typescript.*GEMM: typescript\)/);
});

Deno.test("without --allow-env the notice names it instead of blaming HOME", async () => {
  const r = await runWith(["--allow-read", "--allow-write", "--allow-ffi"], DESCRIBE_CPU);
  assert.equal(r.code, 0, r.text);
  assert.match(r.text, /without Deno's --allow-env permission/);
  assert.doesNotMatch(r.text, /no cache folder/);
});

Deno.test("without --allow-run a build that is needed names that flag", async () => {
  const r = await runWith(
    ["--allow-read", "--allow-write", "--allow-env", "--allow-ffi"],
    DESCRIBE_CPU,
  );
  assert.equal(r.code, 0, r.text);
  assert.match(r.text, /must be compiled, which cannot be done without Deno's --allow-run/);
  assert.doesNotMatch(r.text, /no C compiler found/);
});

Deno.test("an explicit request for the native kernels or CUDA without --allow-ffi is an error naming it", async () => {
  const native = await runWith(
    ["--allow-read", "--allow-write", "--allow-env"],
    DESCRIBE_CPU,
    { EQL_CPU_KERNELS: "native" },
  );
  assert.notEqual(native.code, 0);
  assert.match(native.text, /EQL_CPU_KERNELS=native.*--allow-ffi/);
  const cuda = await runWith(
    ["--allow-read", "--allow-write", "--allow-env"],
    `import { chooseDevice } from ${JSON.stringify(MOD)};\nawait chooseDevice();`,
    { EQL_DEVICE: "cuda" },
  );
  assert.notEqual(cuda.code, 0);
  assert.match(cuda.text, /CUDA driver cannot be loaded without Deno's --allow-ffi permission/);
});

Deno.test("permission helpers: nothing is missing under -A, and the message lists every flag", () => {
  assert.deepEqual(
    missingPermissions([{ name: "ffi" }, { name: "env" }, { name: "run", target: "cc" }]),
    [],
  );
  assert.equal(
    permissionMessage("OpenBLAS cannot be loaded", ["ffi"]),
    "OpenBLAS cannot be loaded without Deno's --allow-ffi permission (run with --allow-ffi, or -A)",
  );
  assert.equal(
    permissionMessage("x", ["ffi", "env", "run"]),
    "x without Deno's --allow-ffi, --allow-env and --allow-run permissions " +
      "(run with --allow-ffi --allow-env --allow-run, or -A)",
  );
});
