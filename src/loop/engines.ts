/**
 * The models a loop works with: one Trainable (full weights or a LoRA adapter over the base) that the
 * builtin engine trains, evaluates and scores log-probs with, and one GenerationEngine that samples and
 * judges. `use(modelDir)` switches both to the model saved in a folder (M1's, a DPO step's final/, the
 * Temporal future model), so a stage that samples with M1 or judges with M_{t−1} reads whichever
 * engine the run chose.
 *
 * With llama.cpp the engine is the base GGUF plus the adapter's GGUF: each adapter folder is exported
 * once (adapter_model.gguf beside adapter_model.safetensors, F32) and llama.cpp is reopened lazily, at
 * the first generation after a switch. Adapters are never stacked: the loop trains one adapter on
 * (continues it from M_t's), so M_t is always base + one adapter (docs/loop.md, "Your own model").
 */
import { join } from "node:path";
import { builtinEngine, type EngineCapabilities, type GenerationEngine } from "../engine/engine.js";
import { LlamaCppModel } from "../engine/llama-cpp.js";
import { exportLoraGguf } from "../io/gguf-write.js";
import { loadLoraAdapter } from "../io/peft.js";
import type { GenerateOptions, Prompt, Sample } from "../model/generate.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import type { Trainable } from "../train/trainable.js";
import { loadWeights, weightsFile } from "../train/trainer.js";
import { exists } from "./stages.js";

export interface LoopModels {
  readonly trainable: Trainable;
  /** Samples and judges with the model `use` loaded last (M1 before any call). */
  readonly engine: GenerationEngine;
  /** Load the model saved in `modelDir` (model.safetensors or adapter_model.safetensors) into the trainable and the engine. */
  use(modelDir: string): Promise<void>;
  dispose(): Promise<void>;
}

/** The GGUF llama.cpp loads for a LoRA adapter folder. */
export const ADAPTER_GGUF = "adapter_model.gguf";

/** Where a model folder's weights are for this trainable (full: model.safetensors; LoRA: adapter_model.safetensors). */
export const weightsIn = (trainable: Trainable, modelDir: string) => join(modelDir, weightsFile(trainable));

/** `stopTokens` applied when a call names none: a user model's end-of-generation ids (Llama 3: end_of_text and eot_id). */
function withStops(
  gen: (prompts: readonly Prompt[], opts?: GenerateOptions) => Promise<Sample[][]>,
  stopTokens?: readonly number[],
): (prompts: readonly Prompt[], opts?: GenerateOptions) => Promise<Sample[][]> {
  if (!stopTokens?.length) return gen;
  return (prompts, opts = {}) => gen(prompts, { ...opts, stopTokens: opts.stopTokens ?? [...stopTokens] });
}

/** Everything on the builtin engine: it samples with the trainable's model, whose weights `use` loads. */
export function builtinModels(trainable: Trainable, tokenizer: Tokenizer, stopTokens?: readonly number[]): LoopModels {
  const inner = builtinEngine(trainable.model, tokenizer);
  return {
    trainable,
    engine: { ...inner, generate: withStops(inner.generate, stopTokens) },
    use: (dir) => loadWeights(trainable, weightsIn(trainable, dir)),
    dispose: () => inner.dispose(),
  };
}

export interface LlamaCppModelsOptions {
  /** The GGUF of the base model (M1 without adapter). */
  baseGguf: string;
  sequences: number;
  exactKv: boolean;
  /** Threads per evaluation (undefined: node-llama-cpp's default). */
  threads?: number;
  stopTokens?: readonly number[];
}

/**
 * Sampling and judging in llama.cpp on base GGUF + the current adapter's GGUF; the LoRA trainable
 * (kind "lora") trains the adapter on the builtin engine over the same base weights.
 */
export function llamaCppModels(trainable: Trainable, tokenizer: Tokenizer, o: LlamaCppModelsOptions): LoopModels {
  if (trainable.kind !== "lora")
    throw new Error("the llama.cpp engine runs base GGUF + a LoRA adapter: the loop must train LoRA (config lora)");
  let wanted: string | undefined; // the adapter GGUF of the model `use` loaded last
  let open: { adapter: string | undefined; model: LlamaCppModel } | undefined;
  const current = async (): Promise<LlamaCppModel> => {
    if (open && open.adapter === wanted) return open.model;
    if (open) await open.model.dispose();
    open = undefined;
    const model = await LlamaCppModel.open(o.baseGguf, {
      sequences: o.sequences,
      exactKv: o.exactKv,
      threads: o.threads,
      ...(wanted ? { lora: [{ path: wanted }] } : {}),
    });
    open = { adapter: wanted, model };
    return model;
  };
  const capabilities: EngineCapabilities = { logprobs: true, tokenIds: true, deterministic: true };
  return {
    trainable,
    engine: {
      name: "llama.cpp",
      capabilities,
      generate: withStops(async (prompts, opts) => (await current()).generate(tokenizer, prompts, opts), o.stopTokens),
      dispose: async () => {
        await open?.model.dispose();
        open = undefined;
      },
    },
    async use(dir) {
      await loadWeights(trainable, weightsIn(trainable, dir));
      const gguf = join(dir, ADAPTER_GGUF);
      // Written once per adapter folder (atomically), so a resumed run reuses it.
      if (!(await exists(gguf))) {
        const config = trainable.model.config;
        await exportLoraGguf(gguf, { config, adapter: await loadLoraAdapter(dir, config), name: dir });
      }
      wanted = gguf;
    },
    async dispose() {
      await open?.model.dispose();
      open = undefined;
    },
  };
}
