/**
 * `srlm export <model> --format gguf [--type f32|f16] --out file.gguf [--name text]`: write a builtin
 * model as a llama-architecture GGUF that llama.cpp (and so Ollama, node-llama-cpp) runs.
 *
 * <model> is a model folder (see io/model-folder.ts: config.json + model.safetensors or shards, the
 * tokenizer in tokenizer.json — a Hugging Face byte-level BPE tokenizer (GPT-2, SmolLM, Llama 3, Qwen2
 * pre-tokenizers) or the sandbox's `{"type": "char", …}` — or char_tokenizer.json, an optional chat
 * template as Hugging Face keeps it), or a .gguf file srlm can read (to re-export it, e.g. as F16).
 *
 * `srlm export <adapter-dir> --format gguf [--base <model-dir | model.gguf>] --out lora.gguf`: write a
 * PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors) as a llama.cpp LoRA
 * adapter GGUF, to be loaded with the base model's GGUF (llama-cli --lora, node-llama-cpp's context
 * `lora` option). The base (its config alone is read) is --base, or else adapter_config.json's
 * base_model_name_or_path when that is a local folder or .gguf file.
 */
import { existsSync } from "node:fs";
import { basename, isAbsolute, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { llamaFromMetadata, loadGgufModel, readGgufHeader } from "../io/gguf.js";
import { exportLlamaGguf, exportLoraGguf, type GgufExportType, type LlamaGgufInput } from "../io/gguf-write.js";
import { CONFIG_FILE } from "../io/hf-folder.js";
import { loadModelFolder } from "../io/model-folder.js";
import { ADAPTER_CONFIG_FILE, loadLoraAdapter } from "../io/peft.js";
import { type ConfigError, fromHfConfig, type LlamaConfig } from "../model/config.js";
import { readJsonFile } from "../tokenizer/hf.js";

export const exportUsage =
  "srlm export <model-dir | model.gguf> --format gguf [--type f32|f16] --out file.gguf [--name text]\n" +
  "  srlm export <adapter-dir> --format gguf [--base <model-dir | model.gguf>] [--type f32|f16] --out lora.gguf [--name text]";

export class ExportError extends Error {
  override name = "ExportError";
}

/** Everything the GGUF needs from a model folder or a .gguf file. */
export async function loadForExport(model: string): Promise<LlamaGgufInput> {
  if (model.endsWith(".gguf")) {
    const g = loadGgufModel(model);
    const template = g.metadata["tokenizer.chat_template"];
    const name = g.metadata["general.name"];
    return {
      config: g.config,
      params: g.params,
      tokenizer: g.tokenizer,
      chatTemplate: typeof template === "string" ? template : undefined,
      name: typeof name === "string" ? name : basename(model, ".gguf"),
    };
  }
  const loaded = await loadModelFolder(model);
  return {
    config: loaded.config,
    params: loaded.params,
    tokenizer: loaded.tokenizer,
    chatTemplate: loaded.chatTemplate?.text,
    name: basename(model.replace(/\/+$/, "")),
  };
}

export async function exportCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      format: { type: "string" },
      type: { type: "string", default: "f32" },
      out: { type: "string", short: "o" },
      name: { type: "string" },
      base: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(`usage: ${exportUsage}\n`);
    return;
  }
  if (positionals.length !== 1) throw new ExportError(`expected one model folder or .gguf file\nusage: ${exportUsage}`);
  if (values.format !== "gguf") {
    throw new ExportError(`--format must be "gguf" (the only export format so far), got ${JSON.stringify(values.format ?? null)}`);
  }
  const type = values.type as GgufExportType;
  if (type !== "f32" && type !== "f16") throw new ExportError(`--type must be "f32" or "f16", got "${values.type}"`);
  if (!values.out) throw new ExportError(`--out is required (the .gguf file to write)\nusage: ${exportUsage}`);
  if (isAdapterDir(positionals[0])) {
    await exportAdapter(positionals[0], values.out, type, values.base, values.name);
    return;
  }
  if (values.base !== undefined) throw new ExportError(`--base is only for a LoRA adapter folder (one with ${ADAPTER_CONFIG_FILE})`);
  const input = await loadForExport(positionals[0]);
  if (values.name) input.name = values.name;
  const bytes = await exportLlamaGguf(values.out, input, { type });
  const c = input.config;
  process.stdout.write(
    `${values.out}: llama GGUF, ${type.toUpperCase()}, ${c.nLayers} layers × ${c.dim}, vocabulary ${c.vocabSize}, ` +
      `${(bytes / 1e6).toFixed(1)} MB${input.chatTemplate !== undefined ? ", with chat template" : ""}\n`,
  );
}

/** A PEFT adapter folder (has adapter_config.json). */
export function isAdapterDir(path: string): boolean {
  return existsSync(join(path, ADAPTER_CONFIG_FILE));
}

/** The config of a base model: a model folder's config.json or a llama GGUF's header (no weights are read). */
export function baseModelConfig(base: string): LlamaConfig {
  if (base.endsWith(".gguf")) return llamaFromMetadata(readGgufHeader(base)).config;
  const path = join(base, CONFIG_FILE);
  let json: Record<string, unknown>;
  try {
    json = readJsonFile(path);
  } catch (e) {
    throw new ExportError(`base model ${base}: ${(e as Error).message}`);
  }
  try {
    return fromHfConfig(json, path);
  } catch (e) {
    throw new ExportError((e as ConfigError).message);
  }
}

/** --base, or adapter_config.json's base_model_name_or_path when it names a local folder or .gguf (as given, or relative to the adapter). */
export function resolveAdapterBase(adapterDir: string, base: string | undefined): string {
  if (base !== undefined) {
    if (!existsSync(base)) throw new ExportError(`--base ${base}: no such file or folder`);
    return base;
  }
  const cfgPath = join(adapterDir, ADAPTER_CONFIG_FILE);
  const named = readJsonFile(cfgPath).base_model_name_or_path;
  if (typeof named === "string" && named.length > 0) {
    for (const p of isAbsolute(named) ? [named] : [named, resolve(adapterDir, named)]) if (existsSync(p)) return p;
  }
  throw new ExportError(
    `${cfgPath}: base_model_name_or_path ${JSON.stringify(named ?? null)} is not a local model folder or .gguf file; ` +
      "name the base model with --base <model-dir | model.gguf> (only its config is read)",
  );
}

async function exportAdapter(
  dir: string,
  out: string,
  type: GgufExportType,
  base: string | undefined,
  name: string | undefined,
): Promise<void> {
  const basePath = resolveAdapterBase(dir, base);
  const config = baseModelConfig(basePath);
  const adapter = await loadLoraAdapter(dir, config);
  const bytes = await exportLoraGguf(out, { config, adapter, name: name ?? basename(dir.replace(/\/+$/, "")) }, { type });
  const { r, alpha, targetModules } = adapter.config;
  process.stdout.write(
    `${out}: llama.cpp LoRA adapter GGUF, ${type.toUpperCase()}, r = ${r}, alpha = ${alpha}, ${targetModules.join("/")} in ${config.nLayers} layers, ` +
      `for the base ${basePath}, ${(bytes / 1e6).toFixed(2)} MB\n`,
  );
}
