/**
 * The loss functions alone, with the tensor they take: sigmoid and softmax cross-entropy, the
 * Equalization Loss (`eqlLoss`, sigmoid, for detectors) and its softmax form (`seqlLoss`, for
 * classification), focal loss, class-balanced weights, logit adjustment and smooth-L1. Each is one
 * fused device operation that returns the mean loss and the gradient with respect to the logits.
 *
 * This entry point loads only the tensor, the CPU device and the losses; `@eql/eql` holds the same
 * names and, besides, the layers, models, optimisers and checkpoints.
 *
 * @example
 * ```ts
 * import { eqlLoss, tensor } from "@eql/eql/losses";
 * const logits = tensor(new Float32Array(2 * 3), [2, 3]);
 * const labels = new Int32Array([0, 3]); // 3 = background
 * using result = eqlLoss(logits, labels, { frequencies: [0.5, 1e-4, 1e-3] });
 * console.log(result.loss, result.grad.shape); // 3 logits per row: [2, 3]
 * ```
 *
 * @module
 */

export * from "./src/losses/mod.ts";
export * from "./src/_core.ts";
