/**
 * One language-modelling step: mean next-token cross-entropy over the target positions, backward,
 * global-norm clipping, AdamW. The full trainer (schedules, accumulation, checkpoints) builds on it.
 */
import { backward, forward, type LlamaModel } from "../model/llama.js";
import { type AdamWConfig, type AdamWState, adamwStep, clipFactor } from "./adamw.js";

export interface LmBatch {
  /** (B, T) input ids, right-padded. */
  tokens: Int32Array;
  /** (B, T) next-token targets; −1 = not trained on (prompt or padding). */
  targets: Int32Array;
  B: number;
  T: number;
}

export interface LmStepResult {
  /** Mean negative log-likelihood per target token (nats). */
  loss: number;
  /** Gradient norm before clipping. */
  gradNorm: number;
  tokens: number;
}

export async function lmStep(
  model: LlamaModel,
  batch: LmBatch,
  opt: AdamWState,
  cfg: AdamWConfig,
  opts: { lr?: number; maxGradNorm?: number } = {},
): Promise<LmStepResult> {
  const { B, T, targets } = batch;
  const r = await forward(model, batch, { train: true });
  const logp = r.logp;
  let count = 0;
  let sum = 0;
  for (let i = 0; i < B * T; i++) {
    if (targets[i] >= 0) {
      sum -= logp[i];
      count++;
    }
  }
  if (count === 0) throw new Error("lmStep: the batch has no target tokens");
  // d(mean NLL)/d(logp) = −1/count at every target position
  const dlogp = new Float32Array(B * T);
  for (let i = 0; i < B * T; i++) if (targets[i] >= 0) dlogp[i] = -1 / count;
  const grads = await backward(model, r.tape!, dlogp);
  const { norm: gradNorm, scale } = clipFactor(model.config, grads, opts.maxGradNorm ?? 1);
  const loss = sum / count;
  if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
    throw new Error(`lmStep: non-finite loss (${loss}) or gradient norm (${gradNorm}); parameters left unchanged`);
  }
  adamwStep(model.config, model.params, grads, opt, cfg, opts.lr ?? cfg.lr, scale);
  return { loss, gradNorm, tokens: count };
}
