/**
 * The one small interface the loop samples and judges through. The builtin model (`builtinEngine`),
 * llama.cpp (`LlamaCppModel`) and an OpenAI-compatible server each implement it; training stays with
 * the builtin engine (or is handed to TRL), so this interface only generates.
 *
 * The contract is the builtin `generate`'s (model/generate.ts): samples grouped per prompt
 * (result[p][i]), per-sample seeds from `seedFor(seed, p, i)`, text cut before a stop string.
 * Engines that cannot give something say so in `capabilities` rather than inventing it.
 */
import { type GenerateOptions, generate, type Prompt, type Sample } from "../model/generate.js";
import type { LlamaModel } from "../model/llama.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";

export interface EngineCapabilities {
  /** `Sample.logprob` is the real Σ log p of the sample under the model (else NaN). */
  logprobs: boolean;
  /** `Sample.ids` are the model's token ids (else empty: an HTTP server returned text only). */
  tokenIds: boolean;
  /** The same seed gives the same samples. */
  deterministic: boolean;
}

export interface GenerationEngine {
  readonly name: string;
  readonly capabilities: EngineCapabilities;
  /** Text prompts are complete: the world's form (answer or judge prompt) already applied. */
  generate(prompts: readonly Prompt[], opts?: GenerateOptions): Promise<Sample[][]>;
  /** Frees what the engine holds (contexts, sockets); the engine is unusable afterwards. */
  dispose(): Promise<void>;
}

/** The builtin engine over a loaded model. Disposing it leaves the model alone (the trainer owns it). */
export function builtinEngine(model: LlamaModel, tokenizer: Tokenizer): GenerationEngine {
  return {
    name: "builtin",
    capabilities: { logprobs: true, tokenIds: true, deterministic: true },
    generate: (prompts, opts) => generate(model, tokenizer, prompts, opts),
    dispose: async () => {},
  };
}
