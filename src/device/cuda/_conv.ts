/**
 * Convolutions through cuDNN: NCHW f32 cross-correlation, forward, backward-data and
 * backward-filter. For each geometry (`Conv2dShape`) the four descriptors are built once and
 * kept; each direction's algorithm is chosen once, on first use, from cuDNN's `_v7` heuristic
 * ranking, preferring deterministic algorithms (backward-data algorithm 0 and backward-filter
 * algorithms 0 and 3 accumulate with atomics) and, unless TF32 was asked for, algorithms that run
 * in plain FP32 (the descriptor's math type is `CUDNN_FMA_MATH`: cuDNN's default would allow TF32
 * tensor cores on Ampere and later). One workspace serves every call; it grows when an algorithm
 * needs more and is kept.
 *
 * @module
 */

import {
  type AlgoPerf,
  checkCudnn,
  CUDNN,
  CudnnError,
  type CudnnSymbols,
  decodeAlgoPerf,
} from "../../../ffi/cudnn.ts";
import { handleFrom } from "../../../ffi/cuda.ts";
import type { Conv2dShape } from "../device.ts";
import type { CachingAllocator } from "./allocator.ts";

/** The three convolution directions cuDNN computes. */
export type Direction = "forward" | "backwardData" | "backwardFilter";

/** The cuDNN algorithm in use for one direction of a convolution. */
export interface ConvolutionAlgorithm {
  /** The cuDNN algorithm number (`cudnnConvolution*Algo_t`). */
  algo: number;
  /** The workspace it runs with, in bytes. */
  workspace: number;
}

/** The algorithms in use for one convolution geometry, for each direction that has run. */
export interface ConvolutionAlgorithms {
  /** `cudnnConvolutionForward`. */
  forward?: ConvolutionAlgorithm;
  /** `cudnnConvolutionBackwardData`. */
  backwardData?: ConvolutionAlgorithm;
  /** `cudnnConvolutionBackwardFilter`. */
  backwardFilter?: ConvolutionAlgorithm;
}

interface Choice {
  /** Candidate algorithms still to try, best first; `[0]` is the one in use. */
  candidates: AlgoPerf[];
  /** Workspace bytes of `candidates[0]`. */
  workspace: number;
}

interface Plan {
  x: Deno.PointerObject;
  w: Deno.PointerObject;
  conv: Deno.PointerObject;
  y: Deno.PointerObject;
  choices: Partial<Record<Direction, Choice>>;
}

/** Algorithms that accumulate with atomics (results vary from run to run). */
const NON_DETERMINISTIC: Record<Direction, readonly number[]> = {
  forward: [],
  backwardData: [0],
  backwardFilter: [0, 3],
};

/** Algorithms cuDNN supports for every geometry, tried when the ranking offers nothing usable. */
const FALLBACK: Record<Direction, readonly number[]> = {
  forward: [0, 1],
  backwardData: [1, 0],
  backwardFilter: [1, 0],
};

const REQUEST: Record<Direction, number> = {
  forward: CUDNN.FWD_ALGO_COUNT,
  backwardData: CUDNN.BWD_DATA_ALGO_COUNT,
  backwardFilter: CUDNN.BWD_FILTER_ALGO_COUNT,
};

/**
 * Orders cuDNN's ranking for use: runnable entries within the workspace limit, plain-FP32 ones
 * only unless `tf32`, deterministic ones first (each group in cuDNN's order), then the fallbacks.
 *
 * @param perfs cuDNN's ranking, best first.
 * @param direction Which convolution direction.
 * @param tf32 Whether tensor-core (TF32) algorithms are acceptable.
 * @param maxWorkspace Largest workspace in bytes an algorithm may need.
 * @returns The candidates, best first.
 *
 * @example
 * ```ts
 * import { rankAlgorithms } from "./_conv.ts";
 * const perf = { status: 0, time: 1, memory: 0, determinism: 1, mathType: 3 };
 * rankAlgorithms([{ algo: 0, ...perf, determinism: 0 }, { algo: 1, ...perf }], "backwardData", false, 1 << 30)
 *   .map((p) => p.algo); // [1, 0]
 * ```
 */
export function rankAlgorithms(
  perfs: readonly AlgoPerf[],
  direction: Direction,
  tf32: boolean,
  maxWorkspace: number,
): AlgoPerf[] {
  const avoid = NON_DETERMINISTIC[direction];
  const usable = perfs.filter((p) =>
    p.status === CUDNN.STATUS_SUCCESS && p.memory <= maxWorkspace &&
    (tf32 || (p.mathType !== CUDNN.TENSOR_OP_MATH &&
      p.mathType !== CUDNN.TENSOR_OP_MATH_ALLOW_CONVERSION))
  );
  const deterministic = usable.filter((p) =>
    p.determinism === CUDNN.DETERMINISTIC && !avoid.includes(p.algo)
  );
  const rest = usable.filter((p) => !deterministic.includes(p));
  const out = [...deterministic, ...rest];
  for (const algo of FALLBACK[direction]) {
    if (!out.some((p) => p.algo === algo)) {
      out.push({
        algo,
        status: 0,
        time: -1,
        memory: 0,
        determinism: avoid.includes(algo) ? 0 : 1,
        mathType: CUDNN.FMA_MATH,
      });
    }
  }
  return out;
}

/** Options of {@linkcode CudnnConvolutions}. */
export interface CudnnConvolutionOptions {
  /** Allow TF32 tensor-core algorithms (faster, ~1e-3 relative error). */
  tf32: boolean;
  /** Largest workspace an algorithm may use, in bytes. */
  maxWorkspaceBytes: number;
}

function isNotSupported(status: number): boolean {
  return status >= 3000 && status < 4000;
}

/**
 * cuDNN convolutions with per-geometry descriptor and algorithm caches.
 *
 * @example
 * ```ts ignore
 * const convs = new CudnnConvolutions(cudnn(), handle, allocator, { tf32: false, maxWorkspaceBytes: 1 << 30 });
 * convs.forward(xPtr, wPtr, yPtr, shape);
 * ```
 */
export class CudnnConvolutions {
  #dnn: CudnnSymbols;
  #handle: Deno.PointerObject;
  #allocator: CachingAllocator;
  #options: CudnnConvolutionOptions;
  #plans = new Map<string, Plan>();
  #workspace = 0n;
  #workspaceBytes = 0;
  #one = new Float32Array([1]);
  #zero = new Float32Array([0]);
  #slot = new BigUint64Array(1);
  #count = new Int32Array(1);
  #perf = new Uint8Array(CUDNN.ALGO_PERF_BYTES * 8);

  /**
   * Wraps a cuDNN handle; descriptors and algorithms are created on first use.
   *
   * @param dnn The cuDNN symbols.
   * @param handle A cuDNN handle bound to the device's stream.
   * @param allocator The device's allocator (for the workspace).
   * @param options TF32 and the workspace limit.
   */
  constructor(
    dnn: CudnnSymbols,
    handle: Deno.PointerObject,
    allocator: CachingAllocator,
    options: CudnnConvolutionOptions,
  ) {
    this.#dnn = dnn;
    this.#handle = handle;
    this.#allocator = allocator;
    this.#options = options;
  }

  /** Number of geometries with cached descriptors. */
  get cachedShapes(): number {
    return this.#plans.size;
  }

  /** Current workspace size in bytes. */
  get workspaceBytes(): number {
    return this.#workspaceBytes;
  }

  #create(fn: (slot: BigUint64Array) => number, call: string): Deno.PointerObject {
    checkCudnn(fn(this.#slot), call);
    return handleFrom(this.#slot, call);
  }

  #plan(s: Conv2dShape): Plan {
    const key =
      `${s.n},${s.cIn},${s.h},${s.w},${s.cOut},${s.kH},${s.kW},${s.strideH},${s.strideW},${s.padH},${s.padW}`;
    const cached = this.#plans.get(key);
    if (cached) return cached;
    const d = this.#dnn;
    const x = this.#create((p) => d.cudnnCreateTensorDescriptor(p), "cudnnCreateTensorDescriptor");
    const w = this.#create((p) => d.cudnnCreateFilterDescriptor(p), "cudnnCreateFilterDescriptor");
    const conv = this.#create(
      (p) => d.cudnnCreateConvolutionDescriptor(p),
      "cudnnCreateConvolutionDescriptor",
    );
    const y = this.#create((p) => d.cudnnCreateTensorDescriptor(p), "cudnnCreateTensorDescriptor");
    const plan: Plan = { x, w, conv, y, choices: {} };
    // Registered before the setters run, so dispose() destroys the descriptors even if one fails.
    this.#plans.set(key, plan);
    try {
      const { NCHW, FLOAT } = { NCHW: CUDNN.TENSOR_NCHW, FLOAT: CUDNN.DATA_FLOAT };
      checkCudnn(
        d.cudnnSetTensor4dDescriptor(x, NCHW, FLOAT, s.n, s.cIn, s.h, s.w),
        `cudnnSetTensor4dDescriptor(x [${s.n}, ${s.cIn}, ${s.h}, ${s.w}])`,
      );
      checkCudnn(
        d.cudnnSetFilter4dDescriptor(w, FLOAT, NCHW, s.cOut, s.cIn, s.kH, s.kW),
        `cudnnSetFilter4dDescriptor(w [${s.cOut}, ${s.cIn}, ${s.kH}, ${s.kW}])`,
      );
      checkCudnn(
        d.cudnnSetConvolution2dDescriptor(
          conv,
          s.padH,
          s.padW,
          s.strideH,
          s.strideW,
          1,
          1,
          CUDNN.CROSS_CORRELATION,
          FLOAT,
        ),
        `cudnnSetConvolution2dDescriptor(pad ${s.padH}×${s.padW}, stride ${s.strideH}×${s.strideW})`,
      );
      const math = this.#options.tf32 ? CUDNN.DEFAULT_MATH : CUDNN.FMA_MATH;
      checkCudnn(
        d.cudnnSetConvolutionMathType(conv, math),
        `cudnnSetConvolutionMathType(${math})`,
      );
      checkCudnn(
        d.cudnnSetTensor4dDescriptor(y, NCHW, FLOAT, s.n, s.cOut, s.outH, s.outW),
        `cudnnSetTensor4dDescriptor(y [${s.n}, ${s.cOut}, ${s.outH}, ${s.outW}])`,
      );
    } catch (e) {
      this.#plans.delete(key);
      this.#destroyPlan(plan);
      throw e;
    }
    return plan;
  }

  #query(plan: Plan, dir: Direction): AlgoPerf[] {
    const d = this.#dnn, h = this.#handle, n = REQUEST[dir];
    this.#perf.fill(0);
    this.#count[0] = 0;
    const status = dir === "forward"
      ? d.cudnnGetConvolutionForwardAlgorithm_v7(
        h,
        plan.x,
        plan.w,
        plan.conv,
        plan.y,
        n,
        this.#count,
        this.#perf,
      )
      : dir === "backwardData"
      ? d.cudnnGetConvolutionBackwardDataAlgorithm_v7(
        h,
        plan.w,
        plan.y,
        plan.conv,
        plan.x,
        n,
        this.#count,
        this.#perf,
      )
      : d.cudnnGetConvolutionBackwardFilterAlgorithm_v7(
        h,
        plan.x,
        plan.y,
        plan.conv,
        plan.w,
        n,
        this.#count,
        this.#perf,
      );
    checkCudnn(status, `cudnnGetConvolution${dirName(dir)}Algorithm_v7`);
    return decodeAlgoPerf(this.#perf, Math.min(this.#count[0], n));
  }

  #workspaceFor(plan: Plan, dir: Direction, algo: number): number {
    const d = this.#dnn, h = this.#handle, s = this.#slot;
    s[0] = 0n;
    const status = dir === "forward"
      ? d.cudnnGetConvolutionForwardWorkspaceSize(h, plan.x, plan.w, plan.conv, plan.y, algo, s)
      : dir === "backwardData"
      ? d.cudnnGetConvolutionBackwardDataWorkspaceSize(
        h,
        plan.w,
        plan.y,
        plan.conv,
        plan.x,
        algo,
        s,
      )
      : d.cudnnGetConvolutionBackwardFilterWorkspaceSize(
        h,
        plan.x,
        plan.y,
        plan.conv,
        plan.w,
        algo,
        s,
      );
    return status === 0 ? Number(s[0]) : -status;
  }

  /** Picks the first candidate whose workspace cuDNN can size; drops the ones before it. */
  #settle(plan: Plan, dir: Direction, candidates: AlgoPerf[]): Choice {
    const refused: string[] = [];
    while (candidates.length > 0) {
      const ws = this.#workspaceFor(plan, dir, candidates[0].algo);
      if (ws >= 0 && ws <= this.#options.maxWorkspaceBytes) {
        const choice = { candidates, workspace: ws };
        plan.choices[dir] = choice;
        return choice;
      }
      refused.push(`algo ${candidates[0].algo}: ${ws < 0 ? `status ${-ws}` : `${ws} bytes`}`);
      candidates = candidates.slice(1);
    }
    throw new CudnnError(
      `cudnnGetConvolution${dirName(dir)}WorkspaceSize`,
      CUDNN.STATUS_NOT_SUPPORTED,
      "CUDNN_STATUS_NOT_SUPPORTED",
      `no algorithm is usable for this geometry (${refused.join("; ")})`,
    );
  }

  #choice(plan: Plan, dir: Direction): Choice {
    const known = plan.choices[dir];
    if (known) return known;
    const ranked = rankAlgorithms(
      this.#query(plan, dir),
      dir,
      this.#options.tf32,
      this.#options.maxWorkspaceBytes,
    );
    return this.#settle(plan, dir, ranked);
  }

  // The old block goes back to the allocator's cache: work already queued on the stream finishes
  // with it before anything queued later can reuse it.
  #ensureWorkspace(bytes: number): bigint {
    if (bytes <= this.#workspaceBytes) return this.#workspace;
    if (this.#workspace !== 0n) {
      this.#allocator.free(this.#workspace);
      this.#workspace = 0n;
      this.#workspaceBytes = 0;
    }
    this.#workspace = this.#allocator.alloc(bytes);
    this.#workspaceBytes = bytes;
    return this.#workspace;
  }

  #run(
    s: Conv2dShape,
    dir: Direction,
    a: bigint,
    b: bigint,
    out: bigint,
  ): void {
    const plan = this.#plan(s);
    let choice = this.#choice(plan, dir);
    for (;;) {
      const algo = choice.candidates[0].algo;
      const ws = choice.workspace > 0 ? this.#ensureWorkspace(choice.workspace) : 0n;
      const wsBytes = BigInt(choice.workspace);
      const d = this.#dnn, h = this.#handle;
      const status = dir === "forward"
        ? d.cudnnConvolutionForward(
          h,
          this.#one,
          plan.x,
          a,
          plan.w,
          b,
          plan.conv,
          algo,
          ws,
          wsBytes,
          this.#zero,
          plan.y,
          out,
        )
        : dir === "backwardData"
        ? d.cudnnConvolutionBackwardData(
          h,
          this.#one,
          plan.w,
          a,
          plan.y,
          b,
          plan.conv,
          algo,
          ws,
          wsBytes,
          this.#zero,
          plan.x,
          out,
        )
        : d.cudnnConvolutionBackwardFilter(
          h,
          this.#one,
          plan.x,
          a,
          plan.y,
          b,
          plan.conv,
          algo,
          ws,
          wsBytes,
          this.#zero,
          plan.w,
          out,
        );
      if (status === 0) return;
      // An algorithm the heuristic offered but the engine refuses: move on to the next one.
      if (isNotSupported(status) && choice.candidates.length > 1) {
        choice = this.#settle(plan, dir, choice.candidates.slice(1));
        continue;
      }
      checkCudnn(
        status,
        `cudnnConvolution${
          dirName(dir)
        }(algo ${algo}, x [${s.n}, ${s.cIn}, ${s.h}, ${s.w}], w [${s.cOut}, ${s.cIn}, ${s.kH}, ${s.kW}], stride ${s.strideH}×${s.strideW}, pad ${s.padH}×${s.padW})`,
      );
    }
  }

  /**
   * `y = conv(x, w)`.
   *
   * @param x Device address of x [n, cIn, h, w].
   * @param w Device address of w [cOut, cIn, kH, kW].
   * @param y Device address of y [n, cOut, outH, outW] (overwritten).
   * @param shape The geometry.
   */
  forward(x: bigint, w: bigint, y: bigint, shape: Conv2dShape): void {
    this.#run(shape, "forward", x, w, y);
  }

  /**
   * `dx = ∂L/∂x` from `w` and `dy`.
   *
   * @param w Device address of w.
   * @param dy Device address of dy.
   * @param dx Device address of dx (overwritten).
   * @param shape The geometry.
   */
  backwardData(w: bigint, dy: bigint, dx: bigint, shape: Conv2dShape): void {
    this.#run(shape, "backwardData", w, dy, dx);
  }

  /**
   * `dw = ∂L/∂w` from `x` and `dy`.
   *
   * @param x Device address of x.
   * @param dy Device address of dy.
   * @param dw Device address of dw (overwritten).
   * @param shape The geometry.
   */
  backwardFilter(x: bigint, dy: bigint, dw: bigint, shape: Conv2dShape): void {
    this.#run(shape, "backwardFilter", x, dy, dw);
  }

  /**
   * The algorithms in use for a geometry (for reports and tests).
   *
   * @param shape The geometry.
   * @returns The algorithm per direction that has run, with its workspace bytes.
   */
  algorithms(shape: Conv2dShape): ConvolutionAlgorithms {
    const plan = this.#plan(shape);
    const out: ConvolutionAlgorithms = {};
    for (const dir of ["forward", "backwardData", "backwardFilter"] as const) {
      const c = plan.choices[dir];
      if (c) out[dir] = { algo: c.candidates[0].algo, workspace: c.workspace };
    }
    return out;
  }

  #destroyPlan(p: Plan): void {
    const d = this.#dnn;
    checkCudnn(d.cudnnDestroyTensorDescriptor(p.x), "cudnnDestroyTensorDescriptor");
    checkCudnn(d.cudnnDestroyFilterDescriptor(p.w), "cudnnDestroyFilterDescriptor");
    checkCudnn(d.cudnnDestroyConvolutionDescriptor(p.conv), "cudnnDestroyConvolutionDescriptor");
    checkCudnn(d.cudnnDestroyTensorDescriptor(p.y), "cudnnDestroyTensorDescriptor");
  }

  /** Destroys every descriptor and returns the workspace (the caller has waited for the stream). */
  dispose(): void {
    for (const p of this.#plans.values()) this.#destroyPlan(p);
    this.#plans.clear();
    if (this.#workspace !== 0n) this.#allocator.free(this.#workspace);
    this.#workspace = 0n;
    this.#workspaceBytes = 0;
  }
}

function dirName(dir: Direction): string {
  return dir === "forward" ? "Forward" : dir === "backwardData" ? "BackwardData" : "BackwardFilter";
}
