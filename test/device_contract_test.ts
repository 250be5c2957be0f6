// The device contract, checked the same way on every device (the CPU device with native and with
// TypeScript kernels, and the CUDA device when a GPU is present):
//
// - every entry point rejects a buffer that is too short, of the wrong dtype, of another device or
//   freed, and a size that is not an integer, with a message that names the operation and the
//   argument. One table row per operation builds valid arguments; the mutations are generic.
// - the fused batch-norm tail (`shape.relu`, the residual, `dResidual`) equals its composition from
//   the plain operations (batch norm without relu, `add`, `reluForward`; backward `reluBackward`
//   then the plain batch-norm backward), and both agree with a float64 reference.

import assert from "node:assert/strict";
import { CpuDevice } from "../src/device/cpu.ts";
import { cudaDevice } from "../src/device/cuda.ts";
import type {
  BatchNormGrads,
  BatchNormParams,
  BatchNormShape,
  Device,
  DeviceBuffer,
  DType,
} from "../src/device/device.ts";
import { cudaAvailable } from "../src/device/auto.ts";
import { assertClose, gpu, Rng } from "./cuda_fixtures.ts";

// ── the devices ─────────────────────────────────────────────────────────────────────────────

/** A device under test, or the reason it cannot be tested here. */
interface Subject {
  name: string;
  device?: Device;
  skip?: string;
}

function open(name: string, make: () => Device): Subject {
  try {
    return { name, device: make() };
  } catch (e) {
    return { name, skip: (e as Error).message.split("\n")[0] };
  }
}

const SUBJECTS: Subject[] = [
  open("CPU, native kernels", () => new CpuDevice({ kernels: "native" })),
  open(
    "CPU, TypeScript kernels",
    () => new CpuDevice({ kernels: "typescript", gemm: "typescript" }),
  ),
  gpu ? open("CUDA", () => cudaDevice()) : { name: "CUDA", skip: cudaAvailable().reason },
];

for (const s of SUBJECTS) {
  if (s.skip !== undefined) console.log(`device_contract_test.ts: ${s.name} skipped: ${s.skip}`);
}

/** A device other than `d`, for buffers that must be refused as foreign. */
function otherDevice(d: Device): Device {
  return d.kind === "cpu"
    ? new CpuDevice({ kernels: "typescript", gemm: "typescript" })
    : new CpuDevice();
}

// ── allocation with clean-up ────────────────────────────────────────────────────────────────

/** Allocates on one device and frees everything at the end of a case. */
class Alloc {
  readonly device: Device;
  #live: DeviceBuffer[] = [];
  #rng: Rng;

  constructor(device: Device, seed = 1) {
    this.device = device;
    this.#rng = new Rng(seed);
  }

  /** A buffer of zeros on `device` (default: this one). */
  zeros(dtype: DType, length: number, device: Device = this.device): DeviceBuffer {
    const b = device.alloc(dtype, length);
    this.#live.push(b);
    return b;
  }

  /** An f32 buffer of uniforms in [lo, hi). */
  f32(length: number, lo = -1, hi = 1): DeviceBuffer {
    const b = this.zeros("f32", length);
    this.device.upload(b, this.#rng.f32(length, lo, hi));
    return b;
  }

  /** An i32 buffer of zeros. */
  i32(length: number): DeviceBuffer {
    return this.zeros("i32", length);
  }

  /** A buffer that has already been freed. */
  freed(dtype: DType, length: number): DeviceBuffer {
    const b = this.device.alloc(dtype, length);
    this.device.free(b);
    return b;
  }

  /** Host copy of a buffer. */
  read(b: DeviceBuffer): Float32Array {
    const out = new Float32Array(b.length);
    this.device.download(b, out);
    return out;
  }

  /** Frees every live buffer. */
  release(): void {
    for (const b of this.#live) if (!b.freed) b.device.free(b);
    this.#live = [];
  }
}

// ── the table ───────────────────────────────────────────────────────────────────────────────

/** Every operation of the contract that takes arguments (`sync` and `dispose` take none). */
type Op = Exclude<keyof Device, "kind" | "description" | "collectsGarbage" | "sync" | "dispose">;

/** How to call one operation with valid arguments, and which generic mutations do not apply. */
interface Row {
  /** The argument names, in order (records' fields become `name.field`). */
  names: readonly string[];
  /** Valid arguments. */
  args(a: Alloc): unknown[];
  /** Buffers the operation does not read (no case for them). */
  unused?: readonly string[];
  /** Buffers of any length (no too-short case). */
  anyLength?: readonly string[];
  /** Buffers of any dtype (no wrong-dtype case). */
  anyDtype?: readonly string[];
  /** Another name a wrong-dtype message may use: the argument the dtype is compared with. */
  dtypeAlso?: Readonly<Record<string, string>>;
  /** Cases the generic mutations do not cover. */
  extra?: (a: Alloc) => Case[];
}

/** A call expected to fail. */
interface Case {
  label: string;
  args: unknown[];
  /** The names of which the message must contain one. */
  names: string[];
  cls: new (...args: never[]) => Error;
}

const CONV = {
  n: 2,
  cIn: 2,
  h: 4,
  w: 4,
  cOut: 3,
  kH: 3,
  kW: 3,
  strideH: 1,
  strideW: 1,
  padH: 1,
  padW: 1,
  outH: 4,
  outW: 4,
};
const CONV_X = 2 * 2 * 4 * 4, CONV_W = 3 * 2 * 3 * 3, CONV_Y = 2 * 3 * 4 * 4;

const BN: BatchNormShape = { n: 2, c: 3, hw: 4, eps: 1e-5, momentum: 0.1, relu: true };
const BN_LEN = 2 * 3 * 4;

function bnParams(a: Alloc, c: number): BatchNormParams {
  return {
    gamma: a.f32(c, 0.5, 1.5),
    beta: a.f32(c),
    runningMean: a.f32(c),
    runningVar: a.f32(c, 0.5, 1.5),
    saveMean: a.f32(c),
    saveInvStd: a.f32(c, 0.5, 1.5),
  };
}

const SHORTCUT = { n: 2, cIn: 2, h: 4, w: 4, cOut: 4 };

const ROWS: Record<Op, Row> = {
  // memory
  alloc: {
    names: ["dtype", "length"],
    args: () => ["f32", 4],
    extra: () => [
      { label: "an unknown dtype", args: ["f64", 4], names: ["dtype"], cls: TypeError },
      { label: "a negative length", args: ["f32", -1], names: ["length"], cls: RangeError },
    ],
  },
  free: {
    names: ["buffer"],
    args: (a) => [a.f32(4)],
    anyLength: ["buffer"],
    anyDtype: ["buffer"],
  },
  upload: {
    names: ["buffer", "data", "offset"],
    args: (a) => [a.f32(4), new Float32Array(3), 1],
    dtypeAlso: { buffer: "data" },
  },
  download: {
    names: ["buffer", "out", "offset"],
    args: (a) => [a.f32(4), new Float32Array(3), 1],
    dtypeAlso: { buffer: "out" },
  },
  copy: {
    names: ["dst", "src", "length", "dstOffset", "srcOffset"],
    args: (a) => [a.f32(5), a.f32(6), 3, 2, 3],
    dtypeAlso: { dst: "src", src: "dst" },
  },
  fill: {
    names: ["buffer", "value", "length", "offset"],
    args: (a) => [a.f32(5), 7, 3, 2],
    anyDtype: ["buffer"],
  },
  // dense algebra and convolution
  gemm: {
    names: ["a", "b", "c", "shape", "bias"],
    args: (a) => [a.f32(2 * 4), a.f32(4 * 3), a.f32(2 * 3), {
      transA: false,
      transB: false,
      m: 2,
      n: 3,
      k: 4,
      alpha: 1,
      beta: 0.5,
    }, a.f32(3)],
  },
  conv2dForward: {
    names: ["x", "w", "y", "shape"],
    args: (a) => [a.f32(CONV_X), a.f32(CONV_W), a.f32(CONV_Y), { ...CONV }],
  },
  conv2dBackwardData: {
    names: ["w", "dy", "dx", "shape"],
    args: (a) => [a.f32(CONV_W), a.f32(CONV_Y), a.f32(CONV_X), { ...CONV }],
  },
  conv2dBackwardFilter: {
    names: ["x", "dy", "dw", "shape"],
    args: (a) => [a.f32(CONV_X), a.f32(CONV_Y), a.f32(CONV_W), { ...CONV }],
  },
  // batch normalisation
  batchNormForwardTraining: {
    names: ["x", "y", "params", "shape", "residual"],
    args: (a) => [a.f32(BN_LEN), a.f32(BN_LEN), bnParams(a, 3), { ...BN }, a.f32(BN_LEN)],
  },
  batchNormForwardInference: {
    names: ["x", "y", "params", "shape", "residual"],
    args: (a) => [a.f32(BN_LEN), a.f32(BN_LEN), bnParams(a, 3), { ...BN }, a.f32(BN_LEN)],
    unused: ["params.saveMean", "params.saveInvStd"],
  },
  batchNormBackward: {
    names: ["x", "y", "dy", "grads", "params", "shape"],
    args: (a) => [
      a.f32(BN_LEN),
      a.f32(BN_LEN),
      a.f32(BN_LEN),
      { dx: a.f32(BN_LEN), dGamma: a.f32(3), dBeta: a.f32(3), dResidual: a.f32(BN_LEN) },
      bnParams(a, 3),
      { ...BN },
    ],
    unused: ["params.beta", "params.runningMean", "params.runningVar"],
  },
  // element-wise and small ops
  reluForward: { names: ["x", "y", "length"], args: (a) => [a.f32(5), a.f32(5), 5] },
  reluBackward: {
    names: ["y", "dy", "dx", "length"],
    args: (a) => [a.f32(5), a.f32(5), a.f32(5), 5],
  },
  add: { names: ["a", "b", "out", "length"], args: (a) => [a.f32(5), a.f32(5), a.f32(5), 5] },
  globalAvgPoolForward: {
    names: ["x", "y", "shape"],
    args: (a) => [a.f32(2 * 3 * 4), a.f32(2 * 3), { n: 2, c: 3, hw: 4 }],
  },
  globalAvgPoolBackward: {
    names: ["dy", "dx", "shape"],
    args: (a) => [a.f32(2 * 3), a.f32(2 * 3 * 4), { n: 2, c: 3, hw: 4 }],
  },
  shortcutForward: {
    names: ["x", "y", "shape"],
    args: (a) => [a.f32(2 * 2 * 4 * 4), a.f32(2 * 4 * 2 * 2), { ...SHORTCUT }],
  },
  shortcutBackward: {
    names: ["dy", "dx", "shape"],
    args: (a) => [a.f32(2 * 4 * 2 * 2), a.f32(2 * 2 * 4 * 4), { ...SHORTCUT }],
  },
  // losses
  sigmoidLoss: {
    names: ["logits", "labels", "grad", "rowLoss", "params"],
    args: (a) => [a.f32(2 * 3), a.i32(2), a.f32(2 * 3), a.f32(2), {
      n: 2,
      c: 3,
      scale: 0.5,
      suppress: a.f32(3, 0, 1),
      backgroundExempt: true,
      classWeight: a.f32(3, 0.5, 1.5),
      focalGamma: 0,
      focalAlpha: -1,
      imageOfRow: a.i32(2),
      keepMask: a.i32(3),
    }],
  },
  softmaxLoss: {
    names: ["logits", "labels", "grad", "rowLoss", "params"],
    args: (a) => [a.f32(2 * 3), a.i32(2), a.f32(2 * 3), a.f32(2), {
      n: 2,
      c: 3,
      scale: 0.5,
      suppress: a.f32(3, 0, 1),
      gammaThreshold: 2 ** 23,
      seed: 7,
      counter: 1,
      classWeight: a.f32(3, 0.5, 1.5),
      logitBias: a.f32(3),
    }],
  },
  eqlv2Loss: {
    names: ["logits", "labels", "grad", "rowLoss", "gradStats", "params"],
    args: (a) => [a.f32(2 * 3), a.i32(2), a.f32(2 * 3), a.f32(2), a.f32(2 * 3), {
      n: 2,
      c: 3,
      scale: 0.5,
      posWeight: a.f32(3, 1, 5),
      negWeight: a.f32(3, 0, 1),
    }],
  },
  seesawLoss: {
    names: ["logits", "labels", "grad", "rowLoss", "params"],
    args: (a) => [a.f32(2 * 4), a.i32(2), a.f32(2 * 4), a.f32(2), {
      n: 2,
      c: 4,
      scale: 0.5,
      logCount: a.f32(2, 0, 3),
      p: 0.8,
      q: 2,
      eps: 0.01,
    }],
  },
  smoothL1Loss: {
    names: ["pred", "target", "rowWeight", "grad", "rowLoss", "shape"],
    args: (a) => [a.f32(2 * 4), a.f32(2 * 4), a.f32(2, 0, 1), a.f32(2 * 4), a.f32(2), {
      n: 2,
      d: 4,
      beta: 1,
      scale: 0.5,
    }],
  },
  // optimisation
  sgdUpdate: {
    names: ["param", "grad", "momentumBuf", "args"],
    args: (a) => [a.f32(5), a.f32(5), a.f32(5), {
      length: 5,
      lr: 0.1,
      momentum: 0.9,
      weightDecay: 1e-4,
      nesterov: false,
    }],
  },
};

/** Fields and positional arguments that are sizes, counts or offsets: integers. */
const INTEGER_NAMES = new Set([
  "length",
  "offset",
  "dstOffset",
  "srcOffset",
  "n",
  "c",
  "hw",
  "m",
  "k",
  "d",
  "cIn",
  "cOut",
  "h",
  "w",
  "kH",
  "kW",
  "strideH",
  "strideW",
  "padH",
  "padW",
  "outH",
  "outW",
  "gammaThreshold",
  "seed",
  "counter",
]);

function isBuffer(v: unknown): v is DeviceBuffer {
  return v !== null && typeof v === "object" && "device" in v && "dtype" in v && "length" in v &&
    "freed" in v;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !isBuffer(v) && !ArrayBuffer.isView(v);
}

/** A buffer or an integer the mutations can replace, by its path (`x`, `params.gamma`). */
type Site =
  | { path: string; kind: "buffer"; buffer: DeviceBuffer }
  | { path: string; kind: "integer"; value: number };

function sitesOf(names: readonly string[], args: unknown[]): Site[] {
  const sites: Site[] = [];
  const visit = (path: string, key: string, v: unknown): void => {
    if (isBuffer(v)) sites.push({ path, kind: "buffer", buffer: v });
    else if (typeof v === "number" && INTEGER_NAMES.has(key)) {
      sites.push({ path, kind: "integer", value: v });
    }
  };
  args.forEach((v, i) => {
    if (isRecord(v)) { for (const [k, f] of Object.entries(v)) visit(`${names[i]}.${k}`, k, f); }
    else visit(names[i], names[i], v);
  });
  return sites;
}

/** `args` with the value at `path` replaced (records are copied, never changed in place). */
function replaced(
  names: readonly string[],
  args: unknown[],
  path: string,
  value: unknown,
): unknown[] {
  const [head, field] = path.split(".");
  const i = names.indexOf(head);
  assert.ok(i >= 0, `no argument ${head}`);
  const out = [...args];
  out[i] = field === undefined ? value : { ...(args[i] as object), [field]: value };
  return out;
}

/** The generic cases of one row, built on fresh valid arguments. */
function casesOf(op: Op, row: Row, a: Alloc, other: Device): Case[] {
  const args = row.args(a);
  const cases: Case[] = [];
  for (const site of sitesOf(row.names, args)) {
    const { path } = site;
    if (row.unused?.includes(path)) continue;
    const at = (label: string, value: unknown, cls: Case["cls"], names = [path]): void => {
      cases.push({
        label: `${path}: ${label}`,
        args: replaced(row.names, args, path, value),
        names,
        cls,
      });
    };
    if (site.kind === "integer") {
      at(`${site.value + 0.5} for ${site.value}`, site.value + 0.5, RangeError);
      continue;
    }
    const { dtype, length } = site.buffer;
    if (!row.anyLength?.includes(path)) {
      assert.ok(length > 0, `${op}: the valid ${path} must not be empty`);
      at(`${length - 1} elements`, a.zeros(dtype, length - 1), RangeError);
    }
    if (!row.anyDtype?.includes(path)) {
      const wrong: DType = dtype === "f32" ? "i32" : "f32";
      const also = row.dtypeAlso?.[path];
      at(`dtype ${wrong}`, a.zeros(wrong, length), TypeError, also ? [path, also] : [path]);
    }
    at("a buffer of another device", a.zeros(dtype, length, other), TypeError);
    at("a freed buffer", a.freed(dtype, length), Error);
  }
  return cases.concat(row.extra?.(a) ?? []);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Whether `message` names `name` as a word (for `a`, not the article of "a buffer" and so on). */
function names(message: string, name: string): boolean {
  const article = name === "a" ? "(?! (?:buffer|finite|boolean|number|non|typed|plain|live))" : "";
  return new RegExp(`(?<![\\w.])${escapeRegExp(name)}(?![\\w])${article}`).test(message);
}

/** Calls `op`; a buffer it returns (alloc) is freed at once. */
function call(d: Device, op: Op, args: unknown[]): void {
  const result = (d[op] as (...a: unknown[]) => unknown).apply(d, args);
  if (isBuffer(result)) d.free(result);
}

function checkRejected(d: Device, op: Op, c: Case): void {
  let error: unknown;
  try {
    call(d, op, c.args);
  } catch (e) {
    error = e;
  }
  const what = `${op} with ${c.label}`;
  assert.ok(error !== undefined, `${what} did not throw`);
  assert.ok(error instanceof c.cls, `${what} threw ${error}, expected a ${c.cls.name}`);
  const message = (error as Error).message;
  assert.ok(names(message, op), `${what}: the message does not name ${op}: "${message}"`);
  assert.ok(
    c.names.some((n) => names(message, n)),
    `${what}: the message does not name ${c.names.join(" or ")}: "${message}"`,
  );
}

for (const subject of SUBJECTS) {
  Deno.test({
    name:
      `${subject.name}: every entry point refuses bad buffers and sizes, naming the op and the argument`,
    ignore: subject.device === undefined,
    fn: async (t) => {
      const d = subject.device!;
      const other = otherDevice(d);
      for (const op of Object.keys(ROWS) as Op[]) {
        assert.equal(typeof d[op], "function", `the device has no ${op}`);
        await t.step(op, () => {
          const row = ROWS[op];
          const a = new Alloc(d);
          try {
            // The valid arguments pass, so each failure below is the mutation's.
            call(d, op, row.args(a));
            const cases = casesOf(op, row, a, other);
            assert.ok(cases.length > 0, `${op}: no cases`);
            for (const c of cases) checkRejected(d, op, c);
          } finally {
            a.release();
          }
        });
      }
    },
  });
}

// ── the fused batch-norm tail against its composition ───────────────────────────────────────

/** The float64 reference of a batch-norm forward with its tail, and the training statistics. */
function bnReference(
  x: Float32Array,
  p: Record<keyof BatchNormParams, Float32Array>,
  s: BatchNormShape,
  training: boolean,
  residual?: Float32Array,
): {
  y: Float64Array;
  mean: Float64Array;
  invStd: Float64Array;
  runningMean: Float64Array;
  runningVar: Float64Array;
} {
  const { n, c, hw, eps, momentum } = s, m = n * hw;
  const y = new Float64Array(x.length);
  const mean = new Float64Array(c), invStd = new Float64Array(c);
  const runningMean = Float64Array.from(p.runningMean),
    runningVar = Float64Array.from(p.runningVar);
  for (let ch = 0; ch < c; ch++) {
    const idx = (i: number, j: number): number => (i * c + ch) * hw + j;
    let mu: number, is: number;
    if (training) {
      let sum = 0;
      for (let i = 0; i < n; i++) for (let j = 0; j < hw; j++) sum += x[idx(i, j)];
      mu = sum / m;
      let sq = 0;
      for (let i = 0; i < n; i++) for (let j = 0; j < hw; j++) sq += (x[idx(i, j)] - mu) ** 2;
      const variance = sq / m;
      is = 1 / Math.sqrt(variance + eps);
      runningMean[ch] = (1 - momentum) * runningMean[ch] + momentum * mu;
      runningVar[ch] = (1 - momentum) * runningVar[ch] + momentum * variance * m / (m - 1);
    } else {
      mu = p.runningMean[ch];
      is = 1 / Math.sqrt(p.runningVar[ch] + eps);
    }
    mean[ch] = mu;
    invStd[ch] = is;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < hw; j++) {
        const k = idx(i, j);
        let v = p.gamma[ch] * (x[k] - mu) * is + p.beta[ch] + (residual ? residual[k] : 0);
        if (s.relu) v = Math.max(v, 0);
        y[k] = v;
      }
    }
  }
  return { y, mean, invStd, runningMean, runningVar };
}

/** The float64 reference of the batch-norm backward with its tail. */
function bnBackwardReference(
  x: Float32Array,
  y: ArrayLike<number>,
  dy: Float32Array,
  gamma: Float32Array,
  mean: Float64Array,
  invStd: Float64Array,
  s: BatchNormShape,
): { dx: Float64Array; dGamma: Float64Array; dBeta: Float64Array; g: Float64Array } {
  const { n, c, hw } = s, m = n * hw;
  const g = new Float64Array(dy.length);
  for (let k = 0; k < dy.length; k++) g[k] = s.relu && !(y[k] > 0) ? 0 : dy[k];
  const dx = new Float64Array(x.length), dGamma = new Float64Array(c), dBeta = new Float64Array(c);
  for (let ch = 0; ch < c; ch++) {
    const idx = (i: number, j: number): number => (i * c + ch) * hw + j;
    let sg = 0, sgx = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < hw; j++) {
        const k = idx(i, j);
        sg += g[k];
        sgx += g[k] * (x[k] - mean[ch]) * invStd[ch];
      }
    }
    dBeta[ch] = sg;
    dGamma[ch] = sgx;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < hw; j++) {
        const k = idx(i, j);
        const xhat = (x[k] - mean[ch]) * invStd[ch];
        dx[k] = gamma[ch] * invStd[ch] / m * (m * g[k] - sg - xhat * sgx);
      }
    }
  }
  return { dx, dGamma, dBeta, g };
}

const TAILS: { label: string; relu: boolean; residual: boolean }[] = [
  { label: "relu with a residual", relu: true, residual: true },
  { label: "relu without a residual", relu: true, residual: false },
  { label: "a residual without relu", relu: false, residual: true },
];

/** Fused vs composed agree to float rounding; both are within float32 accuracy of float64. */
const FUSED_TOL = { rtol: 1e-5, atol: 1e-5 };
const REF_TOL = { rtol: 1e-4, atol: 1e-4 };

for (const subject of SUBJECTS) {
  for (const tail of TAILS) {
    Deno.test({
      name:
        `${subject.name}: batch norm with ${tail.label} equals its composition (training, inference, backward)`,
      ignore: subject.device === undefined,
      fn: () => {
        const d = subject.device!;
        const a = new Alloc(d, 11);
        try {
          runTailComparison(a, tail.relu, tail.residual);
        } finally {
          a.release();
        }
      },
    });
  }
}

function runTailComparison(a: Alloc, relu: boolean, withResidual: boolean): void {
  const d = a.device;
  const fused: BatchNormShape = { n: 3, c: 4, hw: 5, eps: 1e-5, momentum: 0.1, relu };
  const plain: BatchNormShape = { ...fused, relu: false };
  const len = fused.n * fused.c * fused.hw, c = fused.c;
  const x = a.f32(len, -2, 3), dy = a.f32(len);
  const residual = withResidual ? a.f32(len) : undefined;
  // Two parameter sets with the same values: the training forward updates the running statistics.
  const p1 = bnParams(a, c), p2 = bnParams(a, c);
  for (const k of Object.keys(p1) as (keyof BatchNormParams)[]) d.copy(p2[k], p1[k], c);
  const host = Object.fromEntries(
    (Object.keys(p1) as (keyof BatchNormParams)[]).map((k) => [k, a.read(p1[k])]),
  ) as Record<keyof BatchNormParams, Float32Array>;
  const xHost = a.read(x), dyHost = a.read(dy);
  const resHost = residual ? a.read(residual) : undefined;

  // Inference forward (before training changes the running statistics).
  const yi1 = a.zeros("f32", len), yi2 = a.zeros("f32", len);
  d.batchNormForwardInference(x, yi1, p1, fused, residual);
  d.batchNormForwardInference(x, yi2, p2, plain);
  composeTail(d, yi2, residual, relu, len);
  const refI = bnReference(xHost, host, fused, false, resHost);
  assertClose(
    "inference y: fused vs composed",
    a.read(yi1),
    a.read(yi2),
    FUSED_TOL.rtol,
    FUSED_TOL.atol,
  );
  assertClose("inference y: fused vs float64", a.read(yi1), refI.y, REF_TOL.rtol, REF_TOL.atol);

  // Training forward.
  const y1 = a.zeros("f32", len), y2 = a.zeros("f32", len);
  d.batchNormForwardTraining(x, y1, p1, fused, residual);
  d.batchNormForwardTraining(x, y2, p2, plain);
  composeTail(d, y2, residual, relu, len);
  const ref = bnReference(xHost, host, fused, true, resHost);
  const y1Host = a.read(y1);
  assertClose("training y: fused vs composed", y1Host, a.read(y2), FUSED_TOL.rtol, FUSED_TOL.atol);
  assertClose("training y: fused vs float64", y1Host, ref.y, REF_TOL.rtol, REF_TOL.atol);
  const stats: [keyof BatchNormParams, Float64Array][] = [
    ["saveMean", ref.mean],
    ["saveInvStd", ref.invStd],
    ["runningMean", ref.runningMean],
    ["runningVar", ref.runningVar],
  ];
  for (const [k, want] of stats) {
    assertClose(
      `${k}: fused vs composed`,
      a.read(p1[k]),
      a.read(p2[k]),
      FUSED_TOL.rtol,
      FUSED_TOL.atol,
    );
    assertClose(`${k}: fused vs float64`, a.read(p1[k]), want, REF_TOL.rtol, REF_TOL.atol);
  }

  // Backward: fused (with dResidual when there was a residual) against reluBackward + plain backward.
  const g1: BatchNormGrads = {
    dx: a.zeros("f32", len),
    dGamma: a.zeros("f32", c),
    dBeta: a.zeros("f32", c),
  };
  if (withResidual) g1.dResidual = a.zeros("f32", len);
  d.batchNormBackward(x, y1, dy, g1, p1, fused);
  let masked = dy;
  if (relu) {
    masked = a.zeros("f32", len);
    d.reluBackward(y2, dy, masked, len);
  }
  const g2: BatchNormGrads = {
    dx: a.zeros("f32", len),
    dGamma: a.zeros("f32", c),
    dBeta: a.zeros("f32", c),
  };
  d.batchNormBackward(x, y2, masked, g2, p2, plain);
  const refB = bnBackwardReference(xHost, ref.y, dyHost, host.gamma, ref.mean, ref.invStd, fused);
  for (const k of ["dx", "dGamma", "dBeta"] as const) {
    const got = a.read(g1[k]!);
    assertClose(`${k}: fused vs composed`, got, a.read(g2[k]!), FUSED_TOL.rtol, FUSED_TOL.atol);
    assertClose(`${k}: fused vs float64`, got, refB[k], REF_TOL.rtol, REF_TOL.atol);
  }
  if (withResidual) {
    const got = a.read(g1.dResidual!);
    assertClose(
      "dResidual: fused vs composed",
      got,
      a.read(masked),
      FUSED_TOL.rtol,
      FUSED_TOL.atol,
    );
    assertClose("dResidual: fused vs float64", got, refB.g, REF_TOL.rtol, REF_TOL.atol);
  }
  // The test must be able to fail: the relu tail really masks something here.
  if (relu) assert.ok(y1Host.some((v) => v === 0), "expected some outputs clipped by the relu");
}

/** The unfused tail, in place on y: `add` the residual, then `reluForward`. */
function composeTail(
  d: Device,
  y: DeviceBuffer,
  residual: DeviceBuffer | undefined,
  relu: boolean,
  len: number,
): void {
  if (residual) d.add(y, residual, y, len);
  if (relu) d.reluForward(y, y, len);
}
