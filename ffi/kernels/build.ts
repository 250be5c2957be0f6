/**
 * Builds the PTX module of the project's CUDA kernels: `deno task ptx`.
 *
 * Compiles the single translation unit `ffi/kernels/kernels.cu` with
 * `nvcc -ptx -arch=compute_75 -O3` (sm_75 is the oldest target CUDA 13 supports, so every GPU
 * it drives can JIT the module) and writes `ffi/kernels/ptx.ts`, which exports the PTX text,
 * its SHA-256 and the compiler release that produced it. The output depends only on the sources
 * and the nvcc release (nvcc runs from this folder on a relative file name, so no path leaks in).
 *
 * Flags:
 * - `--check`: compare the freshly compiled module with the committed `ptx.ts` instead of writing
 *   it; exits with status 1 when they differ (CI runs this where nvcc is installed).
 * - `--assemble`: also assemble the PTX with `ptxas -arch=sm_90 -v` and print each kernel's
 *   registers, shared memory, stack and spills; exits with status 1 when ptxas fails.
 * - `--nvcc PATH`, `--ptxas PATH`: the compilers to run (default: from `PATH`).
 *
 * @example
 * ```sh
 * deno task ptx --assemble
 * deno run -A ffi/kernels/build.ts --check
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";

/** Folder holding the kernel sources and the generated module. */
export const KERNEL_DIR: string = new URL(".", import.meta.url).pathname;
/** The translation unit handed to nvcc (relative to {@linkcode KERNEL_DIR}). */
export const KERNEL_SOURCE = "kernels.cu";
/** The generated TypeScript module. */
export const PTX_MODULE_PATH: string = new URL("./ptx.ts", import.meta.url).pathname;
/** nvcc flags after `-ptx`: the sm_75 baseline target, full optimisation. */
export const NVCC_FLAGS: readonly string[] = ["-ptx", "-arch=compute_75", "-O3"];
/** The architecture `--assemble` assembles for (the H100). */
export const PTXAS_ARCH = "sm_90";

/** Resources ptxas reports for one kernel. */
export interface KernelResources {
  /** Entry name. */
  name: string;
  /** Registers per thread. */
  registers: number;
  /** Static shared memory in bytes. */
  sharedBytes: number;
  /** Stack frame in bytes. */
  stackBytes: number;
  /** Bytes of register spill stores. */
  spillStores: number;
  /** Bytes of register spill loads. */
  spillLoads: number;
}

async function run(
  cmd: string,
  args: string[],
  cwd?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`${cmd} was not found; install the CUDA 13 toolkit or pass its path`);
    }
    throw e;
  }
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/**
 * The release line of an nvcc, e.g. `Cuda compilation tools, release 13.0, V13.0.88`, or null
 * when nvcc cannot be run.
 *
 * @param nvcc Command or path.
 * @returns The release line or null.
 *
 * @example
 * ```ts ignore
 * console.log(await nvccRelease());
 * ```
 */
export async function nvccRelease(nvcc = "nvcc"): Promise<string | null> {
  try {
    const { code, stdout } = await run(nvcc, ["--version"]);
    if (code !== 0) return null;
    const line = stdout.split("\n").find((l) => l.startsWith("Cuda compilation tools"));
    return line?.trim() ?? null;
  } catch {
    return null;
  }
}

/**
 * Compiles `kernels.cu` to PTX text (line endings normalised to `\n`).
 *
 * @param nvcc Command or path.
 * @returns The PTX text.
 * @throws {Error} With nvcc's diagnostics when compilation fails.
 *
 * @example
 * ```ts ignore
 * const ptx = await compilePtx();
 * ```
 */
export async function compilePtx(nvcc = "nvcc"): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "eql-ptx-" });
  try {
    const out = `${dir}/kernels.ptx`;
    const res = await run(nvcc, [...NVCC_FLAGS, KERNEL_SOURCE, "-o", out], KERNEL_DIR);
    if (res.code !== 0) {
      throw new Error(`nvcc failed (exit ${res.code}):\n${res.stderr}${res.stdout}`);
    }
    return (await Deno.readTextFile(out)).replaceAll("\r\n", "\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Lower-case hex SHA-256 of a string's UTF-8 bytes.
 *
 * @param text Input.
 * @returns 64 hex digits.
 *
 * @example
 * ```ts
 * import { sha256Hex } from "./build.ts";
 * (await sha256Hex("")).slice(0, 8); // "e3b0c442"
 * ```
 */
export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The text of `ptx.ts` for a PTX string: a generated-file header naming the command and the
 * compiler release, then `PTX`, `PTX_SHA256` and `PTX_NVCC_RELEASE`.
 *
 * @param ptx PTX text.
 * @param release nvcc release line.
 * @returns The module source.
 *
 * @example
 * ```ts
 * import { renderPtxModule } from "./build.ts";
 * const src = await renderPtxModule(".version 9.0\n", "Cuda compilation tools, release 13.0, V13.0.88");
 * src.includes("export const PTX: string"); // true
 * ```
 */
export async function renderPtxModule(ptx: string, release: string): Promise<string> {
  // A template literal keeps the PTX readable in diffs; escape what a template would interpret.
  const body = ptx.replaceAll("\\", "\\\\").replaceAll("`", "\\`").replaceAll("${", "\\${");
  const sha = await sha256Hex(ptx);
  return [
    "// GENERATED FILE — do not edit. Regenerate with `deno task ptx`, which runs",
    `// \`nvcc ${NVCC_FLAGS.join(" ")} ${KERNEL_SOURCE}\` in ffi/kernels/`,
    `// (${release}).`,
    "",
    "/** PTX of the project's CUDA kernels (ffi/kernels/kernels.cu), `.target sm_75`. */",
    `export const PTX: string = \`${body}\`;`,
    "",
    "/** SHA-256 (hex) of the UTF-8 bytes of {@linkcode PTX}. */",
    `export const PTX_SHA256: string = "${sha}";`,
    "",
    "/** The nvcc release that generated {@linkcode PTX}. */",
    `export const PTX_NVCC_RELEASE: string = ${JSON.stringify(release)};`,
    "",
  ].join("\n");
}

/**
 * Assembles PTX with `ptxas -v` and returns each kernel's resources.
 *
 * @param ptx PTX text.
 * @param ptxas Command or path.
 * @param arch Target architecture.
 * @returns One entry per kernel, in ptxas's order.
 * @throws {Error} With ptxas's diagnostics when assembly fails.
 *
 * @example
 * ```ts ignore
 * const kernels = await assemblePtx(await compilePtx());
 * ```
 */
export async function assemblePtx(
  ptx: string,
  ptxas = "ptxas",
  arch = PTXAS_ARCH,
): Promise<KernelResources[]> {
  const dir = await Deno.makeTempDir({ prefix: "eql-ptxas-" });
  try {
    await Deno.writeTextFile(`${dir}/kernels.ptx`, ptx);
    const res = await run(ptxas, [
      `-arch=${arch}`,
      "-v",
      `${dir}/kernels.ptx`,
      "-o",
      `${dir}/kernels.cubin`,
    ]);
    if (res.code !== 0) {
      throw new Error(`ptxas failed (exit ${res.code}):\n${res.stderr}${res.stdout}`);
    }
    return parsePtxasReport(res.stderr + res.stdout);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Parses the `ptxas -v` report into per-kernel resources.
 *
 * @param report ptxas's diagnostic output.
 * @returns One entry per compiled entry function.
 *
 * @example
 * ```ts
 * import { parsePtxasReport } from "./build.ts";
 * parsePtxasReport([
 *   "ptxas info    : Compiling entry function 'add' for 'sm_90'",
 *   "ptxas info    : Function properties for add",
 *   "    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads",
 *   "ptxas info    : Used 24 registers, used 0 barriers",
 * ].join("\n"))[0].registers; // 24
 * ```
 */
export function parsePtxasReport(report: string): KernelResources[] {
  const kernels: KernelResources[] = [];
  let current: KernelResources | undefined;
  for (const line of report.split("\n")) {
    const entry = /Compiling entry function '([^']+)'/.exec(line);
    if (entry) {
      current = {
        name: entry[1],
        registers: 0,
        sharedBytes: 0,
        stackBytes: 0,
        spillStores: 0,
        spillLoads: 0,
      };
      kernels.push(current);
      continue;
    }
    if (!current) continue;
    const frame = /(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads/
      .exec(line);
    if (frame) {
      current.stackBytes = Number(frame[1]);
      current.spillStores = Number(frame[2]);
      current.spillLoads = Number(frame[3]);
    }
    const regs = /Used (\d+) registers/.exec(line);
    if (regs) current.registers = Number(regs[1]);
    const smem = /(\d+) bytes smem/.exec(line);
    if (smem) current.sharedBytes = Number(smem[1]);
  }
  return kernels;
}

function table(kernels: readonly KernelResources[]): string {
  const head = ["kernel", "registers", "smem B", "stack B", "spill st B", "spill ld B"];
  const rows = kernels.map((k) => [
    k.name,
    String(k.registers),
    String(k.sharedBytes),
    String(k.stackBytes),
    String(k.spillStores),
    String(k.spillLoads),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (r: string[]): string =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [fmt(head), ...rows.map(fmt)].join("\n");
}

async function writeAtomically(path: string, text: string): Promise<void> {
  const tmp = `${path}.${Deno.pid}.tmp`;
  await Deno.writeTextFile(tmp, text);
  await Deno.rename(tmp, path);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      check: { type: "boolean", default: false },
      assemble: { type: "boolean", default: false },
      nvcc: { type: "string", default: "nvcc" },
      ptxas: { type: "string", default: "ptxas" },
    },
  });
  const release = await nvccRelease(values.nvcc);
  if (release === null) {
    console.error(`${values.nvcc} could not be run; install the CUDA 13 toolkit or pass --nvcc`);
    return 1;
  }
  const ptx = await compilePtx(values.nvcc);
  const module = await renderPtxModule(ptx, release);
  let status = 0;
  if (values.check) {
    let committed = "";
    try {
      committed = await Deno.readTextFile(PTX_MODULE_PATH);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    if (committed === module) {
      console.log(`ffi/kernels/ptx.ts is up to date (${release})`);
    } else {
      const was = /^export const PTX_NVCC_RELEASE: string = (.*);$/m.exec(committed)?.[1];
      console.error(
        `ffi/kernels/ptx.ts differs from a fresh build with ${release}` +
          (was ? ` (committed file: ${was})` : " (committed file missing or malformed)") +
          "; run `deno task ptx` and commit the result",
      );
      status = 1;
    }
  } else {
    await writeAtomically(PTX_MODULE_PATH, module);
    console.log(`wrote ffi/kernels/ptx.ts (${ptx.length} characters of PTX, ${release})`);
  }
  if (values.assemble) {
    const kernels = await assemblePtx(ptx, values.ptxas);
    console.log(`ptxas -arch=${PTXAS_ARCH}: ${kernels.length} kernels assembled`);
    console.log(table(kernels));
    const spilling = kernels.filter((k) => k.spillStores > 0 || k.spillLoads > 0);
    if (spilling.length > 0) {
      console.warn(`register spills in: ${spilling.map((k) => k.name).join(", ")}`);
    }
  }
  return status;
}

if (import.meta.main) {
  Deno.exit(await main());
}
