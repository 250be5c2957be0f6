// Build-level checks of the CUDA kernels, none of which needs a GPU:
// (a) every launch in src/device/cuda/kernels.ts matches its kernel's parameter list, both in the
//     committed PTX and in the CUDA C sources that kernels.cu includes;
// (b) where nvcc is installed, regenerating the PTX reproduces ffi/kernels/ptx.ts and ptxas
//     assembles it for sm_90 without spills;
// (c) where a host C++ compiler is installed, the kernels' shared device math (mask hash,
//     per-element loss arithmetic) agrees with src/device/mask.ts and with float64 formulas.

import assert from "node:assert/strict";
import { PTX, PTX_NVCC_RELEASE, PTX_SHA256 } from "../ffi/kernels/ptx.ts";
import {
  assemblePtx,
  compilePtx,
  KERNEL_DIR,
  nvccRelease,
  PTX_MODULE_PATH,
  renderPtxModule,
  sha256Hex,
} from "../ffi/kernels/build.ts";
import * as k from "../src/device/cuda/kernels.ts";
import type { KernelArg, KernelLauncher } from "../src/device/cuda/launch.ts";
import { maskDraw } from "../src/device/mask.ts";

type ArgKind = "ptr" | "f32" | "i32" | "u32";

interface Launch {
  name: string;
  grid: readonly [number, number, number];
  block: readonly [number, number, number];
  shared: number;
  args: readonly KernelArg[];
}

class RecordingLauncher implements KernelLauncher {
  readonly calls: Launch[] = [];
  launch(
    name: string,
    grid: readonly [number, number, number],
    block: readonly [number, number, number],
    shared: number,
    args: readonly KernelArg[],
  ): void {
    this.calls.push({ name, grid, block, shared, args });
  }
}

function kindOf(arg: KernelArg): ArgKind {
  if ("ptr" in arg) return "ptr";
  if ("f32" in arg) return "f32";
  if ("i32" in arg) return "i32";
  return "u32";
}

/** `.entry name(.param .u64 ..., ...)` declarations of a PTX module: name → PTX types. */
function ptxEntries(ptx: string): Map<string, string[]> {
  const entries = new Map<string, string[]>();
  for (const m of ptx.matchAll(/\.visible\s+\.entry\s+(\w+)\s*\(([^)]*)\)/g)) {
    const types = [...m[2].matchAll(/\.param\s+\.(\w+)\s+\w+/g)].map((p) => p[1]);
    entries.set(m[1], types);
  }
  return entries;
}

function cKind(param: string): ArgKind {
  if (param.includes("*")) return "ptr";
  if (/\bfloat\b/.test(param)) return "f32";
  if (/\bunsigned\b/.test(param)) return "u32";
  if (/\bint\b/.test(param)) return "i32";
  throw new Error(`unrecognised kernel parameter: ${param}`);
}

function splitParams(list: string): ArgKind[] {
  return list.split(",").map((p) => p.trim()).filter((p) => p.length > 0).map(cKind);
}

/** extern "C" kernels of the CUDA sources, direct or through the entry macros: name → kinds. */
async function cEntries(): Promise<Map<string, ArgKind[]>> {
  const entries = new Map<string, ArgKind[]>();
  const unit = await Deno.readTextFile(`${KERNEL_DIR}kernels.cu`);
  const files = [...unit.matchAll(/^#include "(\w+\.cu)"$/gm)].map((m) => m[1]);
  assert.ok(files.length > 0, "kernels.cu includes the kernel sources");
  for (const file of files) {
    const src = (await Deno.readTextFile(`${KERNEL_DIR}${file}`)).replaceAll("\\\n", " ");
    const macros = new Map<string, ArgKind[]>();
    for (
      const m of src.matchAll(
        /#define\s+(\w+)\(NAME[^)]*\)\s*extern "C" __global__ void\s+\w+\s+NAME\(([^)]*)\)/g,
      )
    ) {
      macros.set(m[1], splitParams(m[2]));
    }
    for (const m of src.matchAll(/^(\w+)\((\w+),[^)\n]*\)\s*$/gm)) {
      const params = macros.get(m[1]);
      if (params) entries.set(m[2], params);
    }
    for (
      const m of src.matchAll(
        /^extern "C" __global__ void\s+(?:__launch_bounds__\([^)]*\)\s+|__maxnreg__\([^)]*\)\s+)?(\w+)\(([^)]*)\)/gm,
      )
    ) {
      entries.set(m[1], splitParams(m[2]));
    }
  }
  return entries;
}

const PTX_TYPE: Record<ArgKind, string> = { ptr: "u64", f32: "f32", i32: "u32", u32: "u32" };

const P = 0x7f0000001000n; // any non-null device address

/** Calls every launch function with valid dummy arguments, covering every kernel variant. */
function launchEverything(l: KernelLauncher): void {
  k.reluForward(l, P, P, 1000);
  k.reluBackward(l, P, P, P, 1000);
  k.add(l, P, P, P, 1000);
  const bn = { n: 128, c: 16, hw: 1024, eps: 1e-5, momentum: 0.1, relu: true };
  k.batchNormTail(l, P, P, P, P, P, P, P, bn, "batch");
  k.batchNormTail(l, P, 0n, P, P, P, P, P, { ...bn, relu: false, hw: 1 }, "running");
  k.globalAvgPoolForward(l, P, P, { n: 128, c: 64, hw: 64 });
  k.globalAvgPoolBackward(l, P, P, { n: 128, c: 64, hw: 64 });
  k.shortcutForward(l, P, P, { n: 128, cIn: 16, h: 32, w: 32, cOut: 32 });
  k.shortcutBackward(l, P, P, { n: 128, cIn: 16, h: 32, w: 32, cOut: 32 });
  const sigmoidBase = {
    n: 512,
    c: 1230,
    scale: 1 / 512,
    backgroundExempt: true,
    focalGamma: 0,
    focalAlpha: -1,
  };
  for (const focal of [{}, { focalGamma: 2, focalAlpha: 0.25 }]) {
    k.sigmoidLoss(l, P, P, P, P, { ...sigmoidBase, ...focal });
    k.sigmoidLoss(l, P, P, P, P, { ...sigmoidBase, ...focal, suppress: P, classWeight: P });
    k.sigmoidLoss(l, P, P, P, P, {
      ...sigmoidBase,
      ...focal,
      suppress: P,
      imageOfRow: P,
      keepMask: P,
    });
  }
  const softmaxBase = {
    n: 128,
    c: 100,
    scale: 1 / 128,
    gammaThreshold: 0,
    seed: 7,
    counter: 3,
  };
  for (const bias of [{}, { logitBias: P }]) {
    k.softmaxLoss(l, P, P, P, P, { ...softmaxBase, ...bias });
    k.softmaxLoss(l, P, P, P, P, {
      ...softmaxBase,
      ...bias,
      suppress: P,
      gammaThreshold: 15938355,
      classWeight: P,
    });
  }
  k.smoothL1Loss(l, P, P, P, P, P, { n: 512, d: 4, beta: 1 / 9, scale: 1 / 512 });
  for (const c of [101, 1231]) {
    k.eqlv2Loss(l, P, P, P, P, P, { n: 512, c, scale: 1 / 512, posWeight: P, negWeight: P });
    k.seesawLoss(l, P, P, P, P, {
      n: 512,
      c: c + 1,
      scale: 1 / 512,
      logCount: P,
      p: 0.8,
      q: 2,
      eps: 1e-2,
    });
  }
  k.sgdUpdate(l, P, P, P, {
    length: 470004,
    lr: 0.1,
    momentum: 0.9,
    weightDecay: 2e-4,
    nesterov: true,
  });
}

Deno.test("kernel launches match the PTX entry points and the CUDA C parameter lists", async () => {
  const ptx = ptxEntries(PTX);
  const c = await cEntries();
  const rec = new RecordingLauncher();
  launchEverything(rec);
  const launched = new Set(rec.calls.map((call) => call.name));
  assert.deepEqual([...launched].sort(), [...ptx.keys()].sort(), "every PTX kernel is launched");
  assert.deepEqual([...c.keys()].sort(), [...ptx.keys()].sort(), "C sources declare the PTX set");
  for (const call of rec.calls) {
    const kinds = call.args.map(kindOf);
    assert.deepEqual(kinds, c.get(call.name), `${call.name}: argument kinds vs C parameters`);
    assert.deepEqual(
      kinds.map((kind) => PTX_TYPE[kind]),
      ptx.get(call.name),
      `${call.name}: argument kinds vs PTX parameters`,
    );
    for (const arg of call.args) {
      if ("ptr" in arg) assert.equal(typeof arg.ptr, "bigint");
      else if ("i32" in arg) assert.ok(Number.isInteger(arg.i32) && Math.abs(arg.i32) < 2 ** 31);
      else if ("u32" in arg) {
        assert.ok(Number.isInteger(arg.u32) && arg.u32 >= 0 && arg.u32 < 2 ** 32);
      }
    }
    const threads = call.block[0] * call.block[1] * call.block[2];
    assert.ok(threads >= 32 && threads <= 1024 && threads % 32 === 0, `${call.name}: block`);
    assert.ok(call.grid.every((g) => Number.isInteger(g) && g >= 1), `${call.name}: grid`);
    assert.equal(call.shared, 0);
  }
});

Deno.test("row-wise launch shapes cover each row in one batch and match EQL_ROW_ITEMS", async () => {
  const src = await Deno.readTextFile(`${KERNEL_DIR}losses.cu`);
  const items = Number(/#define EQL_ROW_ITEMS (\d+)/.exec(src)?.[1]);
  assert.equal(items, k.ROW_ITEMS);
  for (const c of [0, 1, 10, 100, 255, 256, 257, 1000, 1203, 1230, 5000, 8192, 8193, 20000]) {
    const { grid, block } = k.rowLaunchShape(300, c);
    if (c <= 32 * items) {
      assert.deepEqual(block, [32, k.WARP_ROWS, 1]);
      assert.equal(grid[0], Math.ceil(300 / k.WARP_ROWS));
    } else {
      assert.equal(block[1], 1);
      assert.equal(block[0] % 32, 0);
      assert.ok(block[0] <= 1024);
      assert.equal(grid[0], 300);
      // one batch per thread while possible; the smallest such block
      if (c <= 1024 * items) {
        assert.ok(block[0] * items >= c && (block[0] - 32) * items < c, `c=${c}`);
      } else assert.equal(block[0], 1024);
    }
  }
  assert.deepEqual(k.rowLaunchShape(8192, 1230), { grid: [8192, 1, 1], block: [160, 1, 1] });
});

Deno.test("kernel variants are picked from the options in use", () => {
  const s = {
    n: 4,
    c: 4,
    scale: 1,
    backgroundExempt: true,
    classWeight: P,
    focalGamma: 0,
    focalAlpha: -1,
  };
  assert.equal(k.sigmoidKernelName(s), "sigmoid_loss");
  assert.equal(k.sigmoidKernelName({ ...s, suppress: P }), "sigmoid_loss_suppress");
  assert.equal(
    k.sigmoidKernelName({ ...s, suppress: P, imageOfRow: P, keepMask: P }),
    "sigmoid_loss_keep",
  );
  // a keep mask without suppression changes nothing, so the plain kernel runs
  assert.equal(k.sigmoidKernelName({ ...s, imageOfRow: P, keepMask: P }), "sigmoid_loss");
  assert.equal(k.sigmoidKernelName({ ...s, focalAlpha: 0.25 }), "sigmoid_loss_focal");
  assert.equal(
    k.sigmoidKernelName({ ...s, focalGamma: 0.5, suppress: P }),
    "sigmoid_loss_focal_suppress",
  );
  const x = { n: 4, c: 4, scale: 1, gammaThreshold: 0, seed: 0, counter: 0 };
  assert.equal(k.softmaxKernelName(x), "softmax_loss");
  // suppression with γ = 0 masks nothing
  assert.equal(k.softmaxKernelName({ ...x, suppress: P }), "softmax_loss");
  assert.equal(k.softmaxKernelName({ ...x, suppress: P, gammaThreshold: 1 }), "softmax_loss_mask");
  assert.equal(k.softmaxKernelName({ ...x, logitBias: P }), "softmax_loss_bias");
  assert.equal(
    k.softmaxKernelName({ ...x, suppress: P, gammaThreshold: 16777216, logitBias: P }),
    "softmax_loss_mask_bias",
  );
});

Deno.test("launches carry the record's values, absent arrays as null pointers", () => {
  const l = new RecordingLauncher();
  k.sigmoidLoss(l, P, P + 1n, P + 2n, P + 3n, {
    n: 3,
    c: 5,
    scale: 0.25,
    suppress: P + 4n,
    backgroundExempt: false,
    focalGamma: 2,
    focalAlpha: 0.5,
  });
  assert.deepEqual(l.calls[0].args, [
    { ptr: P },
    { ptr: P + 1n },
    { ptr: P + 2n },
    { ptr: P + 3n },
    { i32: 3 },
    { i32: 5 },
    { f32: 0.25 },
    { ptr: P + 4n },
    { i32: 0 },
    { ptr: 0n },
    { f32: 2 },
    { f32: 0.5 },
    { ptr: 0n },
    { ptr: 0n },
  ]);
  const shape = { n: 2, c: 3, hw: 5, eps: 1e-3, momentum: 0.1, relu: false };
  k.batchNormTail(l, P, 0n, P + 1n, P + 2n, P + 3n, P + 4n, P + 5n, shape, "running");
  assert.equal(l.calls[1].name, "batch_norm_tail");
  assert.deepEqual(l.calls[1].args.slice(7), [
    { i32: 2 },
    { i32: 3 },
    { i32: 5 },
    { f32: 1e-3 },
    { i32: 1 },
    { i32: 0 },
  ]);
  assert.deepEqual(l.calls[1].args[1], { ptr: 0n });
});

Deno.test("nothing is launched when there is no work (a CUDA grid cannot be empty)", () => {
  const l = new RecordingLauncher();
  k.reluForward(l, 0n, 0n, 0);
  k.reluBackward(l, 0n, 0n, 0n, 0);
  k.add(l, 0n, 0n, 0n, 0);
  k.sgdUpdate(l, 0n, 0n, 0n, { length: 0, lr: 1, momentum: 0, weightDecay: 0, nesterov: false });
  assert.equal(l.calls.length, 0);
  // grids stay within their limits for the largest sizes a buffer can have
  k.add(l, P, P, P, 2 ** 31 - 1);
  k.shortcutForward(l, P, P, { n: 1, cIn: 1, h: 46340, w: 46340, cOut: 1 });
  k.globalAvgPoolForward(l, P, P, { n: 2 ** 31 - 1, c: 1, hw: 1 });
  k.sigmoidLoss(l, P, P, P, P, {
    n: 2 ** 21,
    c: 1000,
    scale: 1,
    backgroundExempt: true,
    focalGamma: 0,
    focalAlpha: -1,
  });
  for (const call of l.calls) {
    assert.ok(call.grid.every((g) => Number.isInteger(g) && g >= 1 && g <= 2 ** 31 - 1));
  }
  assert.equal(l.calls.length, 4);
});

// ── (b) regeneration with nvcc, assembly with ptxas ─────────────────────────────────────────

async function tool(cmd: string, args: string[]): Promise<boolean> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).output();
    return out.code === 0;
  } catch {
    return false;
  }
}

const release = await nvccRelease();
const hasPtxas = await tool("ptxas", ["--version"]);
const gxx = await tool("g++", ["--version"]);
const sameRelease = release === PTX_NVCC_RELEASE;
if (release === null) console.log("nvcc not found: PTX regeneration check skipped");
else if (!sameRelease) {
  console.log(
    `nvcc is "${release}", ptx.ts was made by "${PTX_NVCC_RELEASE}": regeneration check skipped`,
  );
}
if (!hasPtxas) console.log("ptxas not found: PTX assembly check skipped");
if (!gxx && release === null) console.log("no g++ or nvcc: host math check skipped");

Deno.test("ptx.ts carries the SHA-256 of its PTX", async () => {
  assert.equal(await sha256Hex(PTX), PTX_SHA256);
  assert.match(PTX, /^\.target sm_75$/m);
});

Deno.test({
  name: "regenerating the PTX with nvcc reproduces ffi/kernels/ptx.ts exactly",
  ignore: release === null || !sameRelease,
  fn: async () => {
    const ptx = await compilePtx();
    const module = await renderPtxModule(ptx, release!);
    assert.equal(module, await Deno.readTextFile(PTX_MODULE_PATH));
  },
});

Deno.test({
  name: "ptxas assembles the PTX for sm_90; loss kernels fit 1024-thread blocks without spills",
  ignore: !hasPtxas,
  fn: async () => {
    const kernels = await assemblePtx(PTX);
    assert.deepEqual(kernels.map((r) => r.name).sort(), [...ptxEntries(PTX).keys()].sort());
    for (const r of kernels) {
      // rowLaunchShape may ask for 1024 threads: 1024 · registers must fit the 64K register file
      assert.ok(r.registers > 0 && r.registers <= 64, `${r.name}: ${r.registers} registers`);
      if (sameRelease) {
        assert.equal(r.spillStores + r.spillLoads, 0, `${r.name} spills`);
        assert.equal(r.stackBytes, 0, `${r.name} uses local memory`);
      }
    }
  },
});

// ── (c) the shared device math on the host ──────────────────────────────────────────────────

async function buildHostCheck(): Promise<string[]> {
  const dir = await Deno.makeTempDir({ prefix: "eql-hostcheck-" });
  const binaries: string[] = [];
  const src = `${KERNEL_DIR}host_check.cpp`;
  if (gxx) {
    const out = await new Deno.Command("g++", {
      args: ["-O2", "-std=c++17", "-o", `${dir}/gxx`, src],
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    binaries.push(`${dir}/gxx`);
  }
  if (release !== null) {
    // the same headers compiled as CUDA (__host__ __device__ functions)
    const out = await new Deno.Command("nvcc", {
      args: ["-x", "cu", "-O2", "-std=c++17", "-o", `${dir}/nvcc`, src],
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    binaries.push(`${dir}/nvcc`);
  }
  return binaries;
}

async function runHost(binary: string, commands: string[]): Promise<string[]> {
  const child = new Deno.Command(binary, { stdin: "piped", stdout: "piped", stderr: "piped" })
    .spawn();
  // Read while writing: a full output pipe would otherwise block the child and then the writer.
  const output = child.output();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(commands.join("\n") + "\n"));
  await writer.close();
  const out = await output;
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  assert.equal(lines.length, commands.length);
  return lines;
}

/** Small deterministic generator for test inputs (xorshift32). */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

/** Distance in float32 ulps of the reference's magnitude. */
function ulps(got: number, ref: number): number {
  const r = Math.fround(ref);
  if (got === r) return 0;
  const a = Math.abs(r) || 1.401298464324817e-45;
  const e = Math.max(Math.floor(Math.log2(a)), -126);
  return Math.abs(got - ref) / 2 ** (e - 23);
}

const sigma = (z: number): number =>
  z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));

/** Float64 sigmoid-family element: weighted loss α_t q^γ BCE. */
function sigmoidLoss64(z: number, y: number, w: number, gamma: number, alpha: number): number {
  const bce = Math.max(z, 0) - z * y + Math.log1p(Math.exp(-Math.abs(z)));
  const q = y === 1 ? sigma(-z) : sigma(z);
  const at = alpha < 0 ? 1 : y === 1 ? alpha : 1 - alpha;
  return w * at * (gamma === 0 ? 1 : q ** gamma) * bce;
}

/** Float64 closed-form gradient of `sigmoidLoss64` times `scale`. */
function sigmoidGrad64(
  z: number,
  y: number,
  w: number,
  scale: number,
  gamma: number,
  alpha: number,
): number {
  const bce = Math.max(z, 0) - z * y + Math.log1p(Math.exp(-Math.abs(z)));
  const pt = y === 1 ? sigma(z) : sigma(-z);
  const q = 1 - pt < 0.5 ? (y === 1 ? sigma(-z) : sigma(z)) : 1 - pt;
  const at = alpha < 0 ? 1 : y === 1 ? alpha : 1 - alpha;
  const s = y === 1 ? 1 : -1;
  return -scale * w * at * s * (gamma === 0 ? 1 : q ** gamma) * (gamma * pt * bce + q);
}

Deno.test({
  name: "host build of mask.cuh draws exactly what src/device/mask.ts draws",
  ignore: !gxx && release === null,
  fn: async () => {
    const bins = await buildHostCheck();
    const next = rng(12345);
    const tuples: number[][] = [
      [0, 0, 0, 0],
      [7, 0, 3, 5],
      [0xffffffff, 0xffffffff, 0x7fffffff, 0xffffffff],
      [0x9e3779b9, 0, 0, 0],
    ];
    for (let i = 0; i < 3000; i++) {
      tuples.push([next(), next() % 100000, next() % 65536, next() % 20000]);
    }
    const commands = tuples.map((t) => `draw ${t.join(" ")}`);
    for (const bin of bins) {
      const lines = await runHost(bin, commands);
      tuples.forEach((t, i) => {
        assert.equal(Number(lines[i]), maskDraw(t[0], t[1], t[2], t[3]), `draw(${t})`);
      });
    }
  },
});

Deno.test({
  name: "host build of loss_math.cuh matches float64 references and finite differences",
  ignore: !gxx && release === null,
  fn: async () => {
    const bins = await buildHostCheck();
    // log1p_unit on [0, 1]: within 2 ulp.
    const xs: number[] = [0, 1, 1e-45, 1e-38, 1e-30, 1e-12, 6e-8, 0.5, 0.25];
    const next = rng(99);
    for (let i = 0; i < 4000; i++) xs.push(Math.fround(next() / 2 ** 32));
    for (let i = 0; i < 1000; i++) {
      xs.push(Math.fround(2 ** -(1 + (next() % 120)) * (1 + next() / 2 ** 32)));
    }
    // exp_shifted: exp(zHi + zLo − m) within expf's error.
    const ex: number[][] = [];
    for (let i = 0; i < 3000; i++) {
      const m = Math.fround((next() / 2 ** 32 - 0.3) * 60);
      const zHi = Math.fround(m - (next() / 2 ** 32) * 80);
      const zLo = Math.fround(zHi * 2 ** -26 * (next() / 2 ** 32 - 0.5));
      ex.push([zHi, zLo, m]);
    }
    // sigmoid_term over logits, targets, weights and focal settings.
    const zs = [0, -0.5, 0.5, -3, 3, -15, 15, -40, 40, -88, 88, -100, 100, 1e-6, -1e-6];
    for (let i = 0; i < 120; i++) zs.push(Math.fround((next() / 2 ** 32 - 0.5) * 24));
    const settings = [
      { focal: 0, gamma: 0, alpha: -1 },
      { focal: 1, gamma: 2, alpha: 0.25 },
      { focal: 1, gamma: 0.5, alpha: -1 },
      { focal: 1, gamma: 1, alpha: 0.75 },
      { focal: 1, gamma: 0, alpha: 0.25 },
      { focal: 1, gamma: 1.5, alpha: 0.4 },
    ];
    const sig: {
      z: number;
      y: number;
      w: number;
      scale: number;
      gamma: number;
      alpha: number;
      focal: number;
    }[] = [];
    for (const z of zs) {
      for (const y of [0, 1]) {
        for (const w of [1, Math.fround(0.37), 0]) {
          for (const st of settings) sig.push({ z, y, w, scale: Math.fround(1 / 512), ...st });
        }
      }
    }
    // smooth_l1_term
    const sl: number[][] = [];
    for (const beta of [0, Math.fround(1 / 9), 1]) {
      for (const d of [0, -0, beta, -beta, Math.fround(beta / 2), 3, -3, 1e-7, -1e-7]) {
        sl.push([Math.fround(d), beta]);
      }
    }
    const commands = [
      ...xs.map((x) => `log1p ${x}`),
      ...ex.map((e) => `exps ${e.join(" ")}`),
      ...sig.map((s) => `sig ${s.z} ${s.y} ${s.w} ${s.scale} ${s.focal} ${s.gamma} ${s.alpha}`),
      ...sl.map((s) => `sl1 ${s[0]} ${s[1]}`),
    ];
    for (const bin of bins) {
      const lines = await runHost(bin, commands);
      let at = 0;
      let worst = 0;
      for (const x of xs) {
        const u = ulps(Number(lines[at++]), Math.log1p(x));
        worst = Math.max(worst, u);
        assert.ok(u <= 2, `log1p_unit(${x}) is ${u} ulp off`);
      }
      for (const [zHi, zLo, m] of ex) {
        const ref = Math.exp(zHi + zLo - m);
        const got = Number(lines[at++]);
        if (ref < 1.2e-38) assert.ok(Math.abs(got - ref) <= 1.5e-45 * 2, `exp_shifted denormal`);
        else {assert.ok(
            ulps(got, ref) <= 3,
            `exp_shifted(${zHi}, ${zLo}, ${m}): ${ulps(got, ref)} ulp`,
          );}
      }
      for (const s of sig) {
        const [loss, grad] = lines[at++].split(" ").map(Number);
        const refLoss = sigmoidLoss64(s.z, s.y, s.w, s.gamma, s.alpha);
        const refGrad = sigmoidGrad64(s.z, s.y, s.w, s.scale, s.gamma, s.alpha);
        const where = `sigmoid_term(${s.z}, y=${s.y}, w=${s.w}, γ=${s.gamma}, α=${s.alpha})`;
        assert.ok(
          Math.abs(loss - refLoss) <= 1e-6 * Math.abs(refLoss) + 1e-37,
          `${where} loss ${loss} vs ${refLoss}`,
        );
        assert.ok(
          Math.abs(grad - refGrad) <= 1e-6 * Math.abs(refGrad) + 1e-37,
          `${where} grad ${grad} vs ${refGrad}`,
        );
        // the closed form is the derivative: central differences of the float64 loss
        if (Math.abs(s.z) <= 30 && s.w > 0) {
          const h = 1e-5 * Math.max(1, Math.abs(s.z));
          const fd = s.scale *
            (sigmoidLoss64(s.z + h, s.y, s.w, s.gamma, s.alpha) -
              sigmoidLoss64(s.z - h, s.y, s.w, s.gamma, s.alpha)) /
            (2 * h);
          assert.ok(
            Math.abs(fd - refGrad) <= 1e-6 * Math.abs(refGrad) + 1e-12 * s.scale,
            `${where} vs finite differences: ${fd} vs ${refGrad}`,
          );
        }
      }
      for (const [d, beta] of sl) {
        const [loss, grad] = lines[at++].split(" ").map(Number);
        const a = Math.abs(d);
        const refLoss = a < beta ? (0.5 * d * d) / beta : a - 0.5 * beta;
        const refGrad = a < beta ? d / beta : Math.sign(d) || 0;
        assert.ok(
          Math.abs(loss - refLoss) <= 1e-7 * Math.abs(refLoss) + 1e-45,
          `smooth_l1(${d}, ${beta}) loss`,
        );
        assert.ok(
          Math.abs(grad - refGrad) <= 1e-7 * Math.abs(refGrad) + 1e-45,
          `smooth_l1(${d}, ${beta}) grad`,
        );
      }
      assert.equal(at, lines.length);
      assert.ok(worst > 0, "log1p_unit is checked against a reference it does not copy");
    }
  },
});

Deno.test({
  name: "host build of bn_math.cuh: a batch-norm tail element is within 8 ulp of float64",
  ignore: !gxx && release === null,
  fn: async () => {
    const bins = await buildHostCheck();
    const next = rng(4242);
    const uni = (lo: number, hi: number) => Math.fround(lo + (hi - lo) * (next() / 2 ** 32));
    const cases: number[][] = [];
    for (let i = 0; i < 3000; i++) {
      const fromVar = i % 2;
      const stat = fromVar ? uni(0.001, 4) : uni(0.2, 10);
      cases.push([
        uni(-5, 5), // x
        uni(-2, 2), // mean
        stat,
        i % 7 === 0 ? uni(-1.5, -0.5) : uni(0.5, 1.5), // gamma (sometimes negative)
        uni(-1, 1), // beta
        Math.fround(1e-5), // eps
        fromVar,
        (i >> 1) % 2, // add the residual
        uni(-3, 3), // residual
        (i >> 2) % 2, // relu
      ]);
    }
    // the ReLU's edge: an input that normalises to exactly zero
    cases.push([1, 1, 2, 1, 0, Math.fround(1e-5), 0, 0, 0, 1]);
    const commands = cases.map((c) => `bnt ${c.join(" ")}`);
    const u = 2 ** -24;
    for (const bin of bins) {
      const lines = await runHost(bin, commands);
      cases.forEach(([x, mean, stat, gamma, beta, eps, fromVar, add, r, relu], i) => {
        const invStd = fromVar ? 1 / Math.sqrt(stat + eps) : stat;
        const product = gamma * (x - mean) * invStd;
        let want = product + beta + (add ? r : 0);
        if (relu) want = want > 0 ? want : 0;
        const got = Number(lines[i]);
        const bound = 8 * u * (Math.abs(product) + Math.abs(beta) + (add ? Math.abs(r) : 0));
        assert.ok(
          Math.abs(got - want) <= bound,
          `bnt ${cases[i].join(" ")}: ${got}, expected ${want} ± ${bound}`,
        );
        if (relu) assert.ok(got >= 0 && !Object.is(got, -0), `bnt ${cases[i].join(" ")}: ${got}`);
      });
    }
  },
});
