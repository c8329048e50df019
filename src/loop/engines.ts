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
 *
 * With OpenAI-compatible servers (vLLM, `srlm serve`) the servers run M1 and each adapter folder is
 * hot-loaded by path (vLLM's runtime LoRA API) under a name derived from its weights; requests then
 * name the adapter. Completed generations are journaled in the run directory (generations.jsonl).
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { basename, isAbsolute, join, relative, resolve } from "node:path";
import { builtinEngine, type EngineCapabilities, type GenerationEngine } from "../engine/engine.js";
import { LlamaCppModel } from "../engine/llama-cpp.js";
import { type OpenAIEngine, openaiEngine } from "../engine/openai.js";
import { exportLoraGguf } from "../io/gguf-write.js";
import { ADAPTER_WEIGHTS_FILE, loadLoraAdapter } from "../io/peft.js";
import type { GenerateOptions, Prompt, Sample } from "../model/generate.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import type { Trainable } from "../train/trainable.js";
import { loadWeights, weightsFile } from "../train/trainer.js";
import type { OpenAISettings } from "./config.js";
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

/** The run directory's journal of every generation an OpenAI-compatible server completed (engine/journal.ts). */
export const GENERATIONS_JOURNAL = "generations.jsonl";

export interface OpenAIModelsOptions {
  /** The run directory: the journal goes there, and adapter names are paths relative to it. */
  runDir: string;
  /** M1's (zero) adapter folder: while it is loaded, requests name the base model (`openai.model`). */
  m1Adapter: string;
  /**
   * Adapters kept loaded on the servers (default 3: M_t, and the M1 / M_{t−1} / future model a method
   * switches to and back); beyond that the least recently used is unloaded, since each one costs
   * server memory (a merged weight copy in srlm serve, a LoRA slot in vLLM).
   */
  keepLoaded?: number;
  /** Retries, adapter loads and a summary at the end (default: none). */
  log?: (line: string) => void;
  /** For tests: the engine's fetch and environment. */
  fetch?: typeof fetch;
  env?: Record<string, string | undefined>;
}

/** The OpenAI engine the `openai:` block describes, journaling into the run directory. */
export function openaiEngineFor(settings: OpenAISettings, o: Pick<OpenAIModelsOptions, "runDir" | "log" | "fetch" | "env">): OpenAIEngine {
  return openaiEngine({
    baseUrls: settings.base_urls,
    model: settings.model,
    server: settings.server,
    // The loop's prompts are complete texts (the world's form applied): no chat template on the server.
    mode: "completions",
    ...(settings.api_key_env !== null ? { apiKeyEnv: settings.api_key_env } : {}),
    timeoutMs: Math.max(1, Math.round(settings.timeout_s * 1000)),
    maxRetries: settings.retries,
    maxConcurrency: settings.concurrency,
    journal: join(o.runDir, GENERATIONS_JOURNAL),
    ...(o.log ? { log: o.log } : {}),
    ...(o.fetch ? { fetch: o.fetch } : {}),
    ...(o.env ? { env: o.env } : {}),
  });
}

/**
 * The name an adapter folder is served under: its path in the run with dashes, and the first 12 hex
 * digits of its weights' SHA-256. The same adapter gets the same name in a resumed run (so the journal
 * finds its generations), and two adapters never share one (a server that already has a name is not
 * asked to load it again, and two runs may share a server).
 */
export async function adapterName(dir: string, runDir: string): Promise<string> {
  const hash = createHash("sha256")
    .update(await readFile(join(dir, ADAPTER_WEIGHTS_FILE)))
    .digest("hex")
    .slice(0, 12);
  const rel = relative(resolve(runDir), resolve(dir));
  const where = rel === "" || rel.startsWith("..") || isAbsolute(rel) ? basename(resolve(dir)) : rel;
  return `${where.replace(/[^A-Za-z0-9._]+/g, "-")}-${hash}`;
}

/**
 * Sampling and judging on OpenAI-compatible servers that run M1; the LoRA trainable (kind "lora")
 * trains the adapter on the builtin engine over the same base weights. `use(dir)` loads the adapter
 * into the trainable and points the engine at it: M1's adapter is the base model itself; any other
 * folder is registered under `adapterName` and requests name it, so each server loads it (by absolute
 * path: the servers must see the run directory) at its first request there, and again after a restart.
 */
export function openaiModels(trainable: Trainable, engine: OpenAIEngine, o: OpenAIModelsOptions): LoopModels {
  if (trainable.kind !== "lora") throw new Error("the openai engine serves M1 + a LoRA adapter: the loop must train LoRA (config lora)");
  const base = engine.model;
  const keep = o.keepLoaded ?? 3;
  const loaded: string[] = []; // adapter names registered with the engine, least recently used first
  return {
    trainable,
    engine,
    async use(dir) {
      await loadWeights(trainable, weightsIn(trainable, dir));
      if (resolve(dir) === resolve(o.m1Adapter)) {
        engine.useModel(base);
        return;
      }
      const name = await adapterName(dir, o.runDir);
      const at = loaded.indexOf(name);
      if (at >= 0) loaded.splice(at, 1);
      else engine.addLoraAdapter(name, resolve(dir));
      loaded.push(name);
      engine.useModel(name);
      while (loaded.length > keep) await engine.removeLoraAdapter(loaded.shift() as string);
    },
    async dispose() {
      for (const name of loaded.splice(0)) await engine.removeLoraAdapter(name);
      const st = engine.stats;
      o.log?.(
        `openai engine: ${st.requests} requests (${st.retries} retried), ${st.samples} samples received, ${st.journalHits} from the journal, ${st.loraLoads} adapter loads`,
      );
      await engine.dispose();
    },
  };
}
