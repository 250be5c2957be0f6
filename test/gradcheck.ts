// Finite-difference gradient checks for layers: the loss L = Σ y·r is computed in float64 from the
// downloaded f32 outputs, each probed element is moved by ±eps (the move actually stored in f32 is
// used as the denominator), and the central difference is compared with the layer's backward.
//
// The absolute tolerance comes from the f32 rounding noise of the loss, measured: a few elements
// are moved by a couple of ulps, where the true change is the first-order one to far below the
// noise, and the largest deviation seen (times 4, and at least 2⁻²⁴·Σ|y·r|) is taken as the noise
// of one loss evaluation. A central difference then carries at most 2·noise / (2·eps).

import assert from "node:assert/strict";
import type { Layer } from "../src/nn/layer.ts";
import { type Tensor, tensor } from "../src/tensor.ts";
import { Random } from "../src/random.ts";

/** `count` draws from N(0, std²), stored as f32. */
export function gaussian(count: number, seed: number, std = 1): Float32Array {
  const r = new Random(seed);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = r.normal(0, std);
  return out;
}

/** Gaussian values pushed at least `gap` away from zero (keeps ReLU kinks away from probes). */
export function awayFromZero(count: number, seed: number, gap: number): Float32Array {
  const v = gaussian(count, seed);
  for (let i = 0; i < count; i++) v[i] = Math.sign(v[i] || 1) * (gap + Math.abs(v[i]));
  return v;
}

/** Float64 Σ y·r over the layer's training-mode output. */
export function probeLoss(layer: Layer, x: Tensor<"f32">, r: Float32Array): number {
  const y = layer.forward(x, true).toArray() as Float32Array;
  assert.equal(y.length, r.length, "probe vector length");
  let s = 0;
  for (let i = 0; i < y.length; i++) s += y[i] * r[i];
  return s;
}

/** One tensor whose gradient is checked. */
export interface Target {
  /** Label for messages. */
  name: string;
  /** The tensor perturbed (the input or a parameter value). */
  value: Tensor<"f32">;
  /** The analytic gradient, copied to the host right after backward. */
  analytic: Float32Array;
}

/** Options of {@linkcode checkGradients}. */
export interface CheckOptions {
  /** Probe step. */
  eps: number;
  /** Relative tolerance (truncation error of the central difference). */
  rtol: number;
  /** How many elements of each target to probe (all when larger than the tensor). */
  samples?: number;
  /** Seed for the choice of probed elements. */
  seed?: number;
  /**
   * For networks with ReLUs: also take the central difference at eps/2 and skip the probe when
   * the two disagree by more than the tolerance (a kink lies inside the step); otherwise the
   * eps/2 difference is compared.
   */
  skipKinks?: boolean;
}

/** Sets element i of a target (host copy `host`) to v and uploads it. */
function setElement(t: Target, host: Float32Array, i: number, v: number): void {
  host[i] = v;
  t.value.device.upload(t.value.buffer, host);
}

/** Runs forward and backward once with dy = r; returns the targets and Σ|y·r|, L at the point. */
function analytic(
  layer: Layer,
  x: Tensor<"f32">,
  r: Float32Array,
  targets: (dx: Float32Array) => Target[],
): { list: Target[]; scale: number; l0: number } {
  const y = layer.forward(x, true);
  const yHost = y.toArray() as Float32Array;
  let scale = 0, l0 = 0;
  for (let i = 0; i < yHost.length; i++) {
    scale += Math.abs(yHost[i] * r[i]);
    l0 += yHost[i] * r[i];
  }
  const dy = tensor(r, y.shape, x.device);
  const dx = (layer.backward(dy).toArray() as Float32Array).slice();
  dy.dispose();
  return { list: targets(dx), scale, l0 };
}

/** Measured f32 noise of one loss evaluation (see the file comment). */
function lossNoise(
  layer: Layer,
  x: Tensor<"f32">,
  r: Float32Array,
  list: Target[],
  scale: number,
  l0: number,
): number {
  let worst = 0;
  for (const t of list) {
    const host = t.value.toArray() as Float32Array;
    for (const i of [0, host.length >> 1, host.length - 1]) {
      const v = host[i];
      const moved = Math.fround(v + Math.max(Math.abs(v), 1e-3) * 2 ** -22);
      setElement(t, host, i, moved);
      const l = probeLoss(layer, x, r);
      setElement(t, host, i, v);
      worst = Math.max(worst, Math.abs(l - l0 - t.analytic[i] * (moved - v)));
    }
  }
  return Math.max(4 * worst, scale * 2 ** -24);
}

/**
 * Compares every target's gradient with central differences.
 *
 * @returns How many probes were compared and how many were skipped at a kink.
 */
export function checkGradients(
  layer: Layer,
  x: Tensor<"f32">,
  r: Float32Array,
  targets: (dx: Float32Array) => Target[],
  options: CheckOptions,
): { checked: number; skipped: number } {
  const { list, scale, l0 } = analytic(layer, x, r, targets);
  const noise = lossNoise(layer, x, r, list, scale, l0);
  const pick = new Random(options.seed ?? 99);
  // Central difference at step h: the stored f32 displacement is the denominator.
  // One-sided slopes are kept too: a ReLU kink inside [v − h, v + h] shows up as a jump between
  // the left and the right slope, which a second central difference alone can miss.
  let oneSidedGap = 0;
  const central = (t: Target, host: Float32Array, i: number, h: number): number => {
    const v = host[i];
    const plus = Math.fround(v + h), minus = Math.fround(v - h);
    setElement(t, host, i, plus);
    const lp = probeLoss(layer, x, r);
    setElement(t, host, i, minus);
    const lm = probeLoss(layer, x, r);
    setElement(t, host, i, v);
    oneSidedGap = Math.abs((lp - l0) / (plus - v) - (l0 - lm) / (v - minus));
    return (lp - lm) / (plus - minus);
  };
  let checked = 0, skipped = 0;
  for (const t of list) {
    const host = t.value.toArray() as Float32Array;
    assert.equal(t.analytic.length, host.length, `${t.name}: gradient length`);
    const count = Math.min(options.samples ?? host.length, host.length);
    const indices = count === host.length
      ? Array.from({ length: count }, (_, i) => i)
      : Array.from(pick.permutation(host.length).subarray(0, count));
    for (const i of indices) {
      const an = t.analytic[i];
      let fd = central(t, host, i, options.eps);
      let h = options.eps;
      const tolAt = (step: number, d: number): number =>
        noise / step + options.rtol * Math.max(Math.abs(d), Math.abs(an));
      if (options.skipKinks) {
        const gapAtEps = oneSidedGap;
        const half = central(t, host, i, options.eps / 2);
        const kinked = Math.abs(half - fd) > tolAt(options.eps / 2, half) ||
          Math.max(gapAtEps, oneSidedGap) > 2 * tolAt(options.eps / 2, half);
        if (kinked) {
          skipped++;
          continue;
        }
        fd = half;
        h = options.eps / 2;
      }
      const err = Math.abs(fd - an), tol = tolAt(h, fd);
      assert.ok(
        err <= tol,
        `${t.name}[${i}]: analytic ${an} vs finite difference ${fd} (error ${err}, tolerance ${tol})`,
      );
      checked++;
    }
  }
  return { checked, skipped };
}

/**
 * Directional check over several tensors at once: moves every target along a random direction v
 * by ±eps and compares L⁺ − L⁻ with the first-order change Σ grad·(stored move). When the
 * central changes at eps and eps/2 disagree beyond the tolerance (a ReLU kink inside the step),
 * the step is divided by 4 and the check repeated (at most 3 times). The noise allowance must stay
 * below 5 % of the predicted change, so the check keeps its teeth.
 *
 * @returns The step finally used.
 */
export function checkDirectional(
  layer: Layer,
  x: Tensor<"f32">,
  r: Float32Array,
  targets: (dx: Float32Array) => Target[],
  eps: number,
  rtol: number,
  seed = 5,
): number {
  const { list, scale, l0 } = analytic(layer, x, r, targets);
  const noise = lossNoise(layer, x, r, list, scale, l0);
  const base = list.map((t) => t.value.toArray() as Float32Array);
  const dirs = list.map((t, k) => gaussian(t.analytic.length, seed + k));
  // Moves every target by ±step·v and returns [L⁺ − L⁻, Σ grad·(stored⁺ − stored⁻)].
  const change = (step: number): [number, number] => {
    let predicted = 0;
    const losses = [1, -1].map((sign) => {
      list.forEach((t, k) => {
        const moved = new Float32Array(base[k].length);
        for (let i = 0; i < moved.length; i++) {
          moved[i] = base[k][i] + sign * step * dirs[k][i];
          predicted += sign * t.analytic[i] * (moved[i] - base[k][i]);
        }
        t.value.device.upload(t.value.buffer, moved);
      });
      return probeLoss(layer, x, r);
    });
    list.forEach((t, k) => t.value.device.upload(t.value.buffer, base[k]));
    return [losses[0] - losses[1], predicted];
  };
  for (let attempt = 0;; attempt++, eps /= 4) {
    const [measured, predicted] = change(eps);
    const [measuredHalf, predictedHalf] = change(eps / 2);
    const tol = rtol * Math.abs(predicted) + 2 * noise;
    const kink = Math.abs(measured / predicted - measuredHalf / predictedHalf) > 2 * rtol;
    if (kink && attempt < 3) continue;
    assert.ok(
      2 * noise < 0.05 * Math.abs(predicted),
      `directional derivative: the change ${predicted} is too small against the f32 noise ${noise}`,
    );
    const err = Math.abs(measured - predicted);
    assert.ok(
      err <= tol,
      `directional derivative (step ${eps}): analytic change ${predicted} vs measured ` +
        `${measured} (error ${err}, tolerance ${tol})`,
    );
    return eps;
  }
}
