/**
 * The box parameterisation of Fast R-CNN (Girshick 2015), as Detectron2's `Box2BoxTransform`
 * uses it: a target box relative to a proposal is
 *
 *     dx = wx·(gx − px)/pw,  dy = wy·(gy − py)/ph,  dw = ww·log(gw/pw),  dh = wh·log(gh/ph)
 *
 * with centres (px, py), sizes (pw, ph) of the proposal and (gx, gy), (gw, gh) of the target, both
 * given as `[x1, y1, x2, y2]` with width `x2 − x1`. The weights default to Detectron2's
 * `(10, 10, 5, 5)` for the box head.
 *
 * @module
 */

/** Detectron2's default box-head regression weights `(wx, wy, ww, wh)`. */
export const BOX_WEIGHTS: readonly [number, number, number, number] = [10, 10, 5, 5];

// Largest dw/dh accepted when decoding (Detectron2 clamps at log(1000/16)).
const SCALE_CLAMP = Math.log(1000 / 16);

function checkBoxes(name: string, boxes: Float32Array, n?: number): number {
  if (!(boxes instanceof Float32Array)) {
    throw new TypeError(
      `${name} must be a Float32Array, got ${Object.prototype.toString.call(boxes)}`,
    );
  }
  if (boxes.length % 4 !== 0) {
    throw new RangeError(`${name} must hold [N, 4] values, got a length of ${boxes.length}`);
  }
  const rows = boxes.length / 4;
  if (n !== undefined && rows !== n) {
    throw new RangeError(`${name} must hold ${n} boxes ([${n}, 4]), got ${rows}`);
  }
  return rows;
}

/**
 * Encodes target boxes as regression deltas relative to proposals.
 *
 * @param proposals `[N, 4]` proposal boxes `[x1, y1, x2, y2]` with positive width and height.
 * @param targets `[N, 4]` target boxes, same layout, positive width and height.
 * @param weights `(wx, wy, ww, wh)`, default {@linkcode BOX_WEIGHTS}.
 * @returns `[N, 4]` deltas `(dx, dy, dw, dh)`.
 * @throws {RangeError} When the shapes differ or a box has a non-positive (or non-finite) size.
 *
 * @example
 * ```ts
 * import { encodeBoxes } from "@eql/eql/detection";
 * encodeBoxes(new Float32Array([0, 0, 10, 10]), new Float32Array([1, 0, 11, 20]));
 * // Float32Array [1, 5, 0, 3.4657…]  (dx = 10·1/10, dy = 10·5/10, dh = 5·log 2)
 * ```
 */
export function encodeBoxes(
  proposals: Float32Array,
  targets: Float32Array,
  weights: readonly [number, number, number, number] = BOX_WEIGHTS,
): Float32Array {
  const n = checkBoxes("proposals", proposals);
  checkBoxes("targets", targets, n);
  const [wx, wy, ww, wh] = weights;
  const out = new Float32Array(4 * n);
  for (let i = 0; i < n; i++) {
    const o = 4 * i;
    const pw = proposals[o + 2] - proposals[o], ph = proposals[o + 3] - proposals[o + 1];
    const gw = targets[o + 2] - targets[o], gh = targets[o + 3] - targets[o + 1];
    if (!(pw > 0 && ph > 0 && Number.isFinite(pw) && Number.isFinite(ph))) {
      throw new RangeError(
        `proposals[${i}] must have a positive finite width and height, got [${
          Array.from(proposals.subarray(o, o + 4)).join(", ")
        }]`,
      );
    }
    if (!(gw > 0 && gh > 0 && Number.isFinite(gw) && Number.isFinite(gh))) {
      throw new RangeError(
        `targets[${i}] must have a positive finite width and height, got [${
          Array.from(targets.subarray(o, o + 4)).join(", ")
        }]`,
      );
    }
    const px = proposals[o] + 0.5 * pw, py = proposals[o + 1] + 0.5 * ph;
    const gx = targets[o] + 0.5 * gw, gy = targets[o + 1] + 0.5 * gh;
    out[o] = wx * (gx - px) / pw;
    out[o + 1] = wy * (gy - py) / ph;
    out[o + 2] = ww * Math.log(gw / pw);
    out[o + 3] = wh * Math.log(gh / ph);
  }
  return out;
}

/**
 * Applies regression deltas to proposals (the inverse of {@linkcode encodeBoxes}); `dw`, `dh`
 * are clamped at `log(1000/16)` after dividing by their weights, as Detectron2 does.
 *
 * @param proposals `[N, 4]` proposal boxes.
 * @param deltas `[N, 4]` deltas `(dx, dy, dw, dh)`.
 * @param weights `(wx, wy, ww, wh)`, default {@linkcode BOX_WEIGHTS}.
 * @returns `[N, 4]` boxes `[x1, y1, x2, y2]`.
 * @throws {RangeError} When the shapes differ.
 *
 * @example
 * ```ts
 * import { decodeBoxes } from "@eql/eql/detection";
 * decodeBoxes(new Float32Array([0, 0, 10, 10]), new Float32Array([1, 5, 0, 5 * Math.log(2)]));
 * // ≈ Float32Array [1, 0, 11, 20]
 * ```
 */
export function decodeBoxes(
  proposals: Float32Array,
  deltas: Float32Array,
  weights: readonly [number, number, number, number] = BOX_WEIGHTS,
): Float32Array {
  const n = checkBoxes("proposals", proposals);
  checkBoxes("deltas", deltas, n);
  const [wx, wy, ww, wh] = weights;
  const out = new Float32Array(4 * n);
  for (let i = 0; i < n; i++) {
    const o = 4 * i;
    const pw = proposals[o + 2] - proposals[o], ph = proposals[o + 3] - proposals[o + 1];
    const px = proposals[o] + 0.5 * pw, py = proposals[o + 1] + 0.5 * ph;
    const cx = px + (deltas[o] / wx) * pw, cy = py + (deltas[o + 1] / wy) * ph;
    const w = pw * Math.exp(Math.min(deltas[o + 2] / ww, SCALE_CLAMP));
    const h = ph * Math.exp(Math.min(deltas[o + 3] / wh, SCALE_CLAMP));
    out[o] = cx - 0.5 * w;
    out[o + 1] = cy - 0.5 * h;
    out[o + 2] = cx + 0.5 * w;
    out[o + 3] = cy + 0.5 * h;
  }
  return out;
}
