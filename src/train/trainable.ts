/**
 * What an optimizer step trains: the whole model (full fine-tuning) or a LoRA adapter over a frozen
 * base (lora.ts). The trainer only sees this interface: run the model forward, hand the backward a
 * d(loss)/d(logp), read the accumulated gradients, update `params`, save.
 */
import { toHfConfig } from "../model/config.js";
import { backward, type LlamaModel, type Tape } from "../model/llama.js";
import { type LlamaParams, type NamedTensor, toNamed, zerosLike } from "../model/params.js";

export interface Trainable {
  /** "full" or "lora": what `save` writes (an HF model folder or a PEFT adapter folder). */
  readonly kind: "full" | "lora";
  /** Forward and backward run through this model (for LoRA: the base with the adapter applied). */
  readonly model: LlamaModel;
  /** The tensors the optimizer updates, named as on disk, in a stable order. Shares memory. */
  readonly params: readonly NamedTensor[];
  /** JSON files written beside the weights so other tools load them (config.json / adapter_config.json). */
  readonly configFiles: Record<string, unknown>;
  /** Accumulated gradients, same names and order as `params`. */
  readonly grads: readonly NamedTensor[];
  /** Zero the accumulated gradients. */
  zeroGrad(): void;
  /**
   * Called before each micro-batch's forward with a seed that is a pure function of (run seed,
   * optimizer step, micro-batch), so randomness (LoRA dropout) replays exactly after a resume.
   */
  beginMicroBatch(seed: number): void;
  /** Backward of one micro-batch from d(loss)/d(logp) (B, T), ADDING to `grads`. */
  backward(tape: Tape, dlogp: Float32Array): Promise<void>;
  /** Called after the optimizer changed `params` (LoRA refreshes its merged weights here). */
  afterUpdate(): void | Promise<void>;
}

/**
 * Full fine-tuning: every parameter of the model is trained (tied embeddings appear once). The first
 * micro-batch after `zeroGrad` keeps the backward's fresh gradient arrays as the accumulator (no
 * zero-fill, no add); later micro-batches add into them.
 */
export function fullTrainable(model: LlamaModel): Trainable {
  const c = model.config;
  let acc: LlamaParams = zerosLike(c);
  let grads = toNamed(c, acc);
  let empty = false;
  return {
    kind: "full",
    model,
    configFiles: { "config.json": toHfConfig(c) },
    params: toNamed(c, model.params),
    get grads() {
      if (empty) {
        for (const g of grads) g.data.fill(0);
        empty = false;
      }
      return grads;
    },
    zeroGrad() {
      empty = true;
    },
    beginMicroBatch() {},
    async backward(tape, dlogp) {
      if (empty) {
        acc = await backward(model, tape, dlogp);
        grads = toNamed(c, acc);
        empty = false;
      } else await backward(model, tape, dlogp, acc);
    },
    afterUpdate() {},
  };
}
