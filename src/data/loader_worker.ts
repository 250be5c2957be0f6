/**
 * The worker side of the batch loader (`loader.ts`): holds the dataset (shared memory, not copied) and
 * the pipeline, and answers each batch request with the augmented, normalised batch, whose
 * buffers it transfers back.
 *
 * Messages in: `{ type: "init", images, labels, transforms, table, height, width }` once, then
 * `{ type: "batch", id, indices, seed }`. Messages out: `{ type: "batch", id, x, labels, size }`
 * or `{ type: "error", id, message }`.
 *
 * @module
 */

import { assembleBatch, type Transform } from "./pipeline.ts";

/** The first message: the dataset and the pipeline. */
export interface InitMessage {
  /** Discriminator. */
  type: "init";
  /** All images, backed by a SharedArrayBuffer. */
  images: Uint8Array;
  /** All labels. */
  labels: Int32Array;
  /** Augmentation pipeline. */
  transforms: Transform[];
  /** Normalisation lookup table. */
  table: Float32Array;
  /** Image height. */
  height: number;
  /** Image width. */
  width: number;
}

/** A request for one batch. */
export interface BatchRequest {
  /** Discriminator. */
  type: "batch";
  /** Request number, echoed in the reply. */
  id: number;
  /** Image indices of the batch. */
  indices: Int32Array;
  /** Seed of the batch's random generator, or null for no augmentation. */
  seed: number | null;
}

/** A reply: a batch or an error. */
export type WorkerReply =
  | { type: "batch"; id: number; x: Float32Array; labels: Int32Array; size: number }
  | { type: "error"; id: number; message: string };

interface WorkerScope {
  onmessage: ((event: MessageEvent<InitMessage | BatchRequest>) => void) | null;
  postMessage(message: WorkerReply, transfer?: Transferable[]): void;
}

let init: InitMessage | null = null;
const scope = globalThis as unknown as WorkerScope;

scope.onmessage = (event) => {
  const message = event.data;
  if (message.type === "init") {
    init = message;
    return;
  }
  try {
    if (init === null) throw new Error("batch requested before the loader worker was initialised");
    const { images, labels, transforms, table, height, width } = init;
    const batch = assembleBatch(
      images,
      labels,
      message.indices,
      transforms,
      table,
      height,
      width,
      message.seed,
    );
    scope.postMessage(
      { type: "batch", id: message.id, x: batch.x, labels: batch.labels, size: batch.size },
      [batch.x.buffer as ArrayBuffer, batch.labels.buffer as ArrayBuffer],
    );
  } catch (e) {
    scope.postMessage({
      type: "error",
      id: message.id,
      message: e instanceof Error ? `${e.name}: ${e.message}` : String(e),
    });
  }
};
