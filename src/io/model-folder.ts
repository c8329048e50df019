/**
 * A model folder with everything needed to run it: the weights and config.json (`loadHfModel`), the
 * tokenizer, the chat template, and the ids that end a generation.
 *
 * Layouts: Hugging Face folders of Llama (1–3, no RoPE scaling), SmolLM/SmolLM2 (llama with tied
 * embeddings), Qwen2/Qwen2.5 (q/k/v bias, usually tied) and Mistral (no sliding window) checkpoints —
 * one model.safetensors or model.safetensors.index.json + shards, F32/F16/BF16 tensors (converted to
 * F32 on load) — and the folders srlm itself saves.
 *
 *  - tokenizer: `tokenizer.json` — a Hugging Face tokenizer (via @huggingface/tokenizers), or the
 *    sandbox's character tokenizer (`{"type": "char", …}`, also accepted as `char_tokenizer.json`);
 *  - chat template: `chat_template.jinja`, `chat_template.json`, or tokenizer_config.json's
 *    `chat_template` (see ChatTemplate.fromDir); optional;
 *  - end-of-generation ids: the tokenizer's EOS plus every `eos_token_id` of config.json and
 *    generation_config.json (a number or a list, as in Llama 3 and Qwen2 instruct models).
 *
 * The tokenizer must fit the embedding (models often pad vocab_size beyond the tokenizer, e.g. Qwen2;
 * the reverse is an error naming both files), and every special id must be inside the vocabulary.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CharTokenizer } from "../tokenizer/char.js";
import { type ChatMessage, ChatTemplate, type RenderOptions } from "../tokenizer/chat-template.js";
import { HfTokenizer, readJsonFile } from "../tokenizer/hf.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { CONFIG_FILE, GENERATION_CONFIG_FILE, type LoadedHfModel, loadHfModel } from "./hf-folder.js";
import { CheckpointError } from "./safetensors.js";

export const TOKENIZER_FILES = ["tokenizer.json", "char_tokenizer.json"] as const;

/** The tokenizer of a model folder and the file it came from. */
export function folderTokenizerWithFile(dir: string): { tokenizer: Tokenizer; file: string } {
  for (const name of TOKENIZER_FILES) {
    const path = join(dir, name);
    if (!existsSync(path)) continue;
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(path, "utf8"));
    } catch (e) {
      throw new CheckpointError(`${path}: not valid JSON (${(e as Error).message})`, { file: path });
    }
    if ((json as { type?: unknown } | null)?.type === "char") return { tokenizer: CharTokenizer.fromJSON(json, path), file: path };
    if (name === "tokenizer.json") return { tokenizer: HfTokenizer.fromDir(dir), file: path };
    throw new CheckpointError(`${path}: expected a character tokenizer ({"type": "char", …})`, { file: path });
  }
  throw new CheckpointError(`${dir}: no tokenizer (looked for ${TOKENIZER_FILES.join(" and ")})`, { file: dir });
}

/** The tokenizer of a model folder: the sandbox's character tokenizer, or a Hugging Face tokenizer.json. */
export function folderTokenizer(dir: string): Tokenizer {
  return folderTokenizerWithFile(dir).tokenizer;
}

/** The folder's chat template, or undefined when it has none (see ChatTemplate.fromDir for where it looks). */
export function folderChatTemplate(dir: string): ChatTemplate | undefined {
  const has =
    existsSync(join(dir, "chat_template.jinja")) ||
    existsSync(join(dir, "chat_template.json")) ||
    readJsonFile(join(dir, "tokenizer_config.json"), true)?.chat_template !== undefined;
  return has ? ChatTemplate.fromDir(dir) : undefined;
}

export interface ModelFolder extends LoadedHfModel {
  dir: string;
  tokenizer: Tokenizer;
  /** The file the tokenizer was read from. */
  tokenizerFile: string;
  chatTemplate?: ChatTemplate;
  /** Ids that end a generation (tokenizer EOS, config.json and generation_config.json eos_token_id), ascending. */
  eosIds: number[];
  /**
   * Token ids of a chat rendered with the folder's template. The rendered text is encoded without
   * adding BOS (as transformers' apply_chat_template does: templates write BOS themselves).
   */
  chatIds(messages: readonly ChatMessage[], opts?: RenderOptions): number[];
}

/** `eos_token_id` of a config file: a number or a list of numbers, each inside the vocabulary. */
function eosField(json: Record<string, unknown> | undefined, file: string, vocabSize: number): number[] {
  const v = json?.eos_token_id;
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  for (const id of list) {
    if (!(typeof id === "number" && Number.isInteger(id) && id >= 0 && id < vocabSize)) {
      throw new CheckpointError(`${file}: eos_token_id ${JSON.stringify(v)} is not a token id of the ${vocabSize}-entry vocabulary`, {
        file,
      });
    }
  }
  return list as number[];
}

/** Load a model folder: weights, config, tokenizer, chat template and end-of-generation ids (see the module comment). */
export async function loadModelFolder(dir: string): Promise<ModelFolder> {
  const loaded = await loadHfModel(dir);
  const { tokenizer, file: tokenizerFile } = folderTokenizerWithFile(dir);
  const V = loaded.config.vocabSize;
  if (tokenizer.vocabSize > V) {
    throw new CheckpointError(
      `${tokenizerFile}: the tokenizer has ${tokenizer.vocabSize} token ids, but ${join(dir, CONFIG_FILE)} vocab_size is ${V} (the embedding has ${V} rows)`,
      { file: tokenizerFile },
    );
  }
  const chatTemplate = folderChatTemplate(dir);
  const genPath = join(dir, GENERATION_CONFIG_FILE);
  let gen: Record<string, unknown> | undefined;
  try {
    gen = readJsonFile(genPath, true);
  } catch (e) {
    throw new CheckpointError((e as Error).message, { file: genPath });
  }
  const eos = new Set<number>([
    ...(tokenizer.eosId !== undefined ? [tokenizer.eosId] : []),
    ...eosField(loaded.hfConfig, join(dir, CONFIG_FILE), V),
    ...eosField(gen, genPath, V),
  ]);
  const chatIds = (messages: readonly ChatMessage[], opts?: RenderOptions): number[] => {
    if (!chatTemplate) {
      throw new CheckpointError(
        `${dir}: no chat template (looked for chat_template.jinja, chat_template.json, and a "chat_template" field in tokenizer_config.json)`,
        { file: dir },
      );
    }
    return tokenizer.encode(chatTemplate.render(messages, opts), { addBos: false });
  };
  return { ...loaded, dir, tokenizer, tokenizerFile, chatTemplate, eosIds: [...eos].sort((a, b) => a - b), chatIds };
}
