/**
 * Mini-batches for training and evaluation.
 *
 * {@linkcode BatchLoader} shuffles the training set each epoch, augments and normalises each
 * batch, and prepares the next batches in Web Workers while the current one trains (`workers ≥
 * 1`), or on the calling thread (`workers: 0`). Both produce identical batches for the same seed:
 * every random choice is a function of `(seed, epoch, batch)`, never of which thread ran it.
 *
 * Seeding: epoch `e` gets the `(e+1)`-th draw of `Random(seed)` (`integer(0, 2^53 − 1)`) as its
 * own seed; the epoch's generator draws the permutation of the images (when shuffling), then one
 * seed per batch in batch order; a batch's generator drives its augmentations (see
 * `pipeline.ts`). So epoch `e` can be produced without producing epochs `0 … e−1`, which makes a
 * resumed run see the same batches as an uninterrupted one.
 *
 * {@linkcode evalBatches} walks a dataset in order without augmentation, keeping the last
 * partial batch.
 *
 * Memory: the workers read the images in place when they are on a `SharedArrayBuffer` (what
 * `loadCifar`, `makeLongTailed` and `subsetDataset` return), so any number of loaders over one
 * set (one per loss in a comparison) share a single copy; other images are copied into shared
 * memory once per loader, when its workers first start. A worker holds only its pipeline and the
 * batch it is building.
 *
 * How the loader and the kernels share the cores: the CPU device's native kernels run on a pool
 * of `EQL_CPU_THREADS` threads (default: one per logical CPU) while the main thread waits for
 * them; the loader's workers are further threads that the operating system time-slices in among
 * them. With 32×32 images the whole paper pipeline (crop, flip, AutoAugment, normalisation,
 * Cutout) costs a few hundredths of a millisecond per image, a few milliseconds per batch of 128,
 * against hundreds of milliseconds for a ResNet-32 step on two cores: one worker (the default)
 * builds the next `prefetch` batches while the kernels compute, taking under 1 % of the cores, so
 * the pool keeps every core and the loop never waits for data. More workers only help when a
 * batch costs more to build than a step to compute (large images, a GPU device); on the calling
 * thread (`workers: 0`) the build is added to each step instead of overlapped with it.
 *
 * @module
 */

import { Random } from "../random.ts";
import { typeName } from "./dataset.ts";
import type { BatchRequest, InitMessage, WorkerReply } from "./loader_worker.ts";
import { type Normalization, normalizationTable } from "./normalize.ts";
import { assembleBatch, type Batch, checkTransforms, type Transform } from "./pipeline.ts";

export type { Batch } from "./pipeline.ts";

/** Images and labels to draw batches from (an `ImageDataset` fits). */
export interface LabelledImages {
  /** uint8 CHW images back to back; a SharedArrayBuffer-backed array avoids one copy. */
  images: Uint8Array;
  /** One label per image. */
  labels: Int32Array;
}

/** Options for {@linkcode BatchLoader}. */
export interface LoaderOptions {
  /** Images per batch. */
  batchSize: number;
  /** Channel statistics for normalisation. */
  normalization: Normalization;
  /** Augmentation pipeline (default none). */
  transforms?: readonly Transform[];
  /** Seed of the shuffles and augmentations (default 0). */
  seed?: number;
  /** Shuffle every epoch (default true). */
  shuffle?: boolean;
  /** Skip the last batch when it is smaller than `batchSize` (default false). */
  dropLast?: boolean;
  /** Worker threads; 0 builds batches on the calling thread (default 1). */
  workers?: number;
  /** Batches requested ahead of the one being consumed, with workers (default max(2, workers)). */
  prefetch?: number;
  /** Image height (default 32). */
  height?: number;
  /** Image width (default 32). */
  width?: number;
  /**
   * Milliseconds without a batch in flight after which the workers stop (default 5000); they
   * start again on the next request. A loader that is never closed thus does not keep the
   * process alive once it is no longer used.
   */
  idleTimeout?: number;
}

/** The order and batch seeds of one epoch. */
export interface EpochPlan {
  /** Image indices in the order they are served. */
  order: Int32Array;
  /** Seed of each batch's augmentation generator. */
  seeds: number[];
}

interface Pending {
  resolve: (batch: Batch) => void;
  reject: (error: Error) => void;
}

const MAX_SEED = Number.MAX_SAFE_INTEGER;

function checkInteger(value: unknown, name: string, min: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min) {
    throw new RangeError(`${name} must be an integer >= ${min}, got ${value}`);
  }
  return value;
}

/**
 * Seeded, shuffled, augmented mini-batches, built ahead of time in workers.
 *
 * @example
 * ```ts
 * import { BatchLoader } from "@eql/eql/data";
 * import { CIFAR10_NORMALIZATION } from "@eql/eql/data";
 * import { STANDARD_AUGMENTATION } from "@eql/eql/data";
 * const data = { images: new Uint8Array(10 * 3072), labels: new Int32Array(10) };
 * using loader = new BatchLoader(data, {
 *   batchSize: 4,
 *   normalization: CIFAR10_NORMALIZATION,
 *   transforms: STANDARD_AUGMENTATION,
 *   seed: 1,
 *   workers: 0,
 * });
 * for await (const { x, labels, size } of loader.epoch(0)) {
 *   console.log(size, x.length, labels.length); // 4 …, 4 …, 2 …
 * }
 * ```
 */
export class BatchLoader {
  #images: Uint8Array;
  #labels: Int32Array;
  #batchSize: number;
  #transforms: Transform[];
  #table: Float32Array;
  #seed: number;
  #shuffle: boolean;
  #dropLast: boolean;
  #workerCount: number;
  #prefetch: number;
  #height: number;
  #width: number;
  #workers: Worker[] = [];
  #pending = new Map<number, Pending>();
  #nextId = 0;
  #closed = false;
  #failure: Error | null = null;
  #idleTimeout: number;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  #lastUse = 0;

  /**
   * Creates a loader; workers start on the first epoch.
   *
   * @param data Images and labels (not copied, except into shared memory for workers when
   * `data.images` is not already backed by a SharedArrayBuffer).
   * @param options Batch size, normalisation, pipeline, seed and threading.
   * @throws {RangeError} On inconsistent data or invalid options.
   */
  constructor(data: LabelledImages, options: LoaderOptions) {
    const { images, labels } = data ?? ({} as LabelledImages);
    if (!(images instanceof Uint8Array)) {
      throw new TypeError(`data.images must be a Uint8Array, got ${typeName(images)}`);
    }
    if (!(labels instanceof Int32Array)) {
      throw new TypeError(`data.labels must be an Int32Array, got ${typeName(labels)}`);
    }
    this.#height = checkInteger(options.height ?? 32, "options.height", 1);
    this.#width = checkInteger(options.width ?? 32, "options.width", 1);
    const per = 3 * this.#height * this.#width;
    if (images.length !== labels.length * per) {
      throw new RangeError(
        `data.images must hold data.labels.length * 3 * ${this.#height} * ${this.#width} = ` +
          `${labels.length * per} bytes, got ${images.length}`,
      );
    }
    if (labels.length === 0) throw new RangeError("data must hold at least one image, got 0");
    this.#batchSize = checkInteger(options.batchSize, "options.batchSize", 1);
    this.#seed = checkInteger(options.seed ?? 0, "options.seed", 0);
    if (!Number.isSafeInteger(this.#seed)) {
      throw new RangeError(`options.seed must be a safe integer, got ${this.#seed}`);
    }
    this.#workerCount = checkInteger(options.workers ?? 1, "options.workers", 0);
    this.#prefetch = checkInteger(
      options.prefetch ?? Math.max(2, this.#workerCount),
      "options.prefetch",
      1,
    );
    const transforms = options.transforms ?? [];
    checkTransforms(transforms, "options.transforms");
    this.#transforms = transforms.map((t) => ({ ...t }));
    this.#table = normalizationTable(options.normalization);
    this.#shuffle = options.shuffle ?? true;
    this.#dropLast = options.dropLast ?? false;
    if (this.#dropLast && this.#batchSize > labels.length) {
      throw new RangeError(
        `options.batchSize must be at most the number of images (${labels.length}) when ` +
          `options.dropLast is set, or an epoch holds no batch; got ${this.#batchSize}`,
      );
    }
    this.#idleTimeout = checkInteger(options.idleTimeout ?? 5000, "options.idleTimeout", 1);
    this.#images = images;
    this.#labels = labels;
  }

  /** Number of images. */
  get length(): number {
    return this.#labels.length;
  }

  /** Batches in one epoch (the last one smaller unless `dropLast`). */
  get batchesPerEpoch(): number {
    const n = this.#labels.length;
    return this.#dropLast ? Math.floor(n / this.#batchSize) : Math.ceil(n / this.#batchSize);
  }

  /**
   * The image order and batch seeds of an epoch (what {@linkcode BatchLoader.epoch} serves).
   *
   * @param epoch Epoch number, a non-negative integer.
   * @returns The plan.
   */
  epochPlan(epoch: number): EpochPlan {
    checkInteger(epoch, "epoch", 0);
    const master = new Random(this.#seed);
    let epochSeed = 0;
    for (let e = 0; e <= epoch; e++) epochSeed = master.integer(0, MAX_SEED);
    const rng = new Random(epochSeed);
    const n = this.#labels.length;
    let order: Int32Array;
    if (this.#shuffle) {
      order = rng.permutation(n);
    } else {
      order = new Int32Array(n);
      for (let i = 0; i < n; i++) order[i] = i;
    }
    const seeds: number[] = [];
    for (let b = 0; b < this.batchesPerEpoch; b++) seeds.push(rng.integer(0, MAX_SEED));
    return { order, seeds };
  }

  /**
   * The batches of one epoch. With workers, up to `prefetch` batches are being built while the
   * caller works on the current one.
   *
   * @param epoch Epoch number, a non-negative integer.
   * @returns The batches in order.
   * @throws {Error} When the loader is closed or a worker failed.
   */
  async *epoch(epoch: number): AsyncGenerator<Batch, void, undefined> {
    if (this.#closed) throw new Error("the batch loader is closed");
    const { order, seeds } = this.epochPlan(epoch);
    const count = seeds.length;
    const slice = (b: number): Int32Array =>
      order.slice(b * this.#batchSize, Math.min(order.length, (b + 1) * this.#batchSize));
    if (this.#workerCount === 0) {
      for (let b = 0; b < count; b++) {
        yield assembleBatch(
          this.#images,
          this.#labels,
          slice(b),
          this.#transforms,
          this.#table,
          this.#height,
          this.#width,
          seeds[b],
        );
      }
      return;
    }
    this.#startWorkers();
    const queue: Promise<Batch>[] = [];
    let next = 0;
    const request = (): void => {
      queue.push(this.#request(next % this.#workerCount, slice(next), seeds[next]));
      next++;
    };
    while (next < count && queue.length < this.#prefetch) request();
    for (let b = 0; b < count; b++) {
      const batch = await queue.shift()!;
      if (next < count) request();
      yield batch;
    }
  }

  /** Stops the workers; pending batches are rejected. Safe to call more than once. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopWorkers();
    const error = new Error("the batch loader was closed");
    for (const p of this.#pending.values()) p.reject(error);
    this.#pending.clear();
  }

  /** Same as {@linkcode BatchLoader.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Terminates the workers (they start again on demand) and cancels the idle check. */
  #stopWorkers(): void {
    for (const w of this.#workers) w.terminate();
    this.#workers = [];
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
  }

  /**
   * Notes activity and makes sure an idle check is scheduled. The check's timer is unref'd, so
   * it never keeps the process alive itself; the workers do, until the check stops them.
   */
  #touch(): void {
    this.#lastUse = performance.now();
    if (this.#idleTimer !== undefined || this.#workers.length === 0) return;
    const check = (): void => {
      this.#idleTimer = undefined;
      if (this.#workers.length === 0) return;
      const quiet = performance.now() - this.#lastUse;
      if (this.#pending.size === 0 && quiet >= this.#idleTimeout) {
        this.#stopWorkers();
      } else {
        this.#schedule(check, Math.max(1, this.#idleTimeout - quiet));
      }
    };
    this.#schedule(check, this.#idleTimeout);
  }

  #schedule(check: () => void, ms: number): void {
    const timer = setTimeout(check, ms);
    Deno.unrefTimer(timer);
    this.#idleTimer = timer;
  }

  #startWorkers(): void {
    if (this.#workers.length > 0) return;
    let images = this.#images;
    if (!(images.buffer instanceof SharedArrayBuffer)) {
      // One copy into shared memory, then every worker reads it in place.
      const shared = new Uint8Array(new SharedArrayBuffer(images.length));
      shared.set(images);
      images = shared;
      this.#images = shared;
    }
    const init: InitMessage = {
      type: "init",
      images,
      labels: this.#labels,
      transforms: this.#transforms,
      table: this.#table,
      height: this.#height,
      width: this.#width,
    };
    for (let i = 0; i < this.#workerCount; i++) {
      const worker = new Worker(new URL("./loader_worker.ts", import.meta.url), { type: "module" });
      worker.onmessage = (event: MessageEvent<WorkerReply>) => this.#onReply(event.data);
      worker.onerror = (event: ErrorEvent) => {
        event.preventDefault();
        this.#fail(new Error(`batch loader worker ${i} failed: ${event.message}`));
      };
      worker.onmessageerror = () => {
        this.#fail(new Error(`batch loader worker ${i} sent a message that could not be read`));
      };
      worker.postMessage(init);
      this.#workers.push(worker);
    }
  }

  #request(worker: number, indices: Int32Array, seed: number): Promise<Batch> {
    if (this.#failure !== null) return Promise.reject(this.#failure);
    if (this.#closed) return Promise.reject(new Error("the batch loader was closed"));
    const id = this.#nextId++;
    const promise = new Promise<Batch>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
    });
    // A batch abandoned by a consumer that stopped early must not become an unhandled rejection.
    promise.catch(() => {});
    const message: BatchRequest = { type: "batch", id, indices, seed };
    this.#startWorkers(); // after an idle stop
    this.#workers[worker].postMessage(message, [indices.buffer as ArrayBuffer]);
    this.#touch();
    return promise;
  }

  #onReply(reply: WorkerReply): void {
    this.#touch();
    const pending = this.#pending.get(reply.id);
    if (pending === undefined) return;
    this.#pending.delete(reply.id);
    if (reply.type === "batch") {
      pending.resolve({ x: reply.x, labels: reply.labels, size: reply.size });
    } else {
      pending.reject(new Error(reply.message));
    }
  }

  #fail(error: Error): void {
    this.#failure = error;
    for (const p of this.#pending.values()) p.reject(error);
    this.#pending.clear();
  }
}

/** Options for {@linkcode evalBatches}. */
export interface EvalOptions {
  /** Images per batch. */
  batchSize: number;
  /** Channel statistics for normalisation. */
  normalization: Normalization;
  /** Image height (default 32). */
  height?: number;
  /** Image width (default 32). */
  width?: number;
}

/**
 * Batches of a dataset in order, normalised, without augmentation; the last batch holds the
 * remainder.
 *
 * @param data Images and labels.
 * @param options Batch size and normalisation.
 * @returns A generator of batches.
 *
 * @example
 * ```ts
 * import { evalBatches } from "@eql/eql/data";
 * import { CIFAR10_NORMALIZATION } from "@eql/eql/data";
 * const data = { images: new Uint8Array(5 * 3072), labels: new Int32Array(5) };
 * for (const batch of evalBatches(data, { batchSize: 2, normalization: CIFAR10_NORMALIZATION })) {
 *   console.log(batch.size); // 2, 2, 1
 * }
 * ```
 */
export function* evalBatches(
  data: LabelledImages,
  options: EvalOptions,
): Generator<Batch, void, undefined> {
  const { images, labels } = data ?? ({} as LabelledImages);
  if (!(images instanceof Uint8Array)) {
    throw new TypeError(`data.images must be a Uint8Array, got ${typeName(images)}`);
  }
  if (!(labels instanceof Int32Array)) {
    throw new TypeError(`data.labels must be an Int32Array, got ${typeName(labels)}`);
  }
  const height = checkInteger(options.height ?? 32, "options.height", 1);
  const width = checkInteger(options.width ?? 32, "options.width", 1);
  const per = 3 * height * width;
  if (images.length !== labels.length * per) {
    throw new RangeError(
      `data.images must hold data.labels.length * 3 * ${height} * ${width} = ` +
        `${labels.length * per} bytes, got ${images.length}`,
    );
  }
  const batchSize = checkInteger(options.batchSize, "options.batchSize", 1);
  const table = normalizationTable(options.normalization);
  for (let start = 0; start < labels.length; start += batchSize) {
    const end = Math.min(labels.length, start + batchSize);
    const indices = new Int32Array(end - start);
    for (let i = 0; i < indices.length; i++) indices[i] = start + i;
    yield assembleBatch(images, labels, indices, [], table, height, width, null);
  }
}
