/**
 * `srlm export <model> --format gguf [--type f32|f16] --out file.gguf [--name text]`: write a builtin
 * model as a llama-architecture GGUF that llama.cpp (and so Ollama, node-llama-cpp) runs.
 *
 * <model> is a model folder srlm wrote (config.json + model.safetensors, the tokenizer in
 * tokenizer.json — the sandbox's `{"type": "char", …}` — or char_tokenizer.json, an optional chat
 * template as Hugging Face keeps it), or a .gguf file srlm can read (to re-export it, e.g. as F16).
 */
import { existsSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { parseArgs } from "node:util";
import { loadGgufModel } from "../io/gguf.js";
import { exportLlamaGguf, type GgufExportType, type LlamaGgufInput } from "../io/gguf-write.js";
import { loadHfModel } from "../io/hf-folder.js";
import { CharTokenizer } from "../tokenizer/char.js";
import { ChatTemplate } from "../tokenizer/chat-template.js";
import { HfTokenizer, readJsonFile } from "../tokenizer/hf.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";

export const exportUsage = "srlm export <model-dir | model.gguf> --format gguf [--type f32|f16] --out file.gguf [--name text]";

export class ExportError extends Error {
  override name = "ExportError";
}

/** The tokenizer of a model folder: the sandbox's character tokenizer, or a Hugging Face tokenizer.json. */
export function folderTokenizer(dir: string): Tokenizer {
  for (const file of ["tokenizer.json", "char_tokenizer.json"]) {
    const path = join(dir, file);
    if (!existsSync(path)) continue;
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(path, "utf8"));
    } catch (e) {
      throw new ExportError(`${path}: not valid JSON (${(e as Error).message})`);
    }
    if ((json as { type?: unknown } | null)?.type === "char") return CharTokenizer.fromJSON(json, path);
    if (file === "tokenizer.json") return HfTokenizer.fromDir(dir);
    throw new ExportError(`${path}: expected a character tokenizer ({"type": "char", …})`);
  }
  throw new ExportError(`${dir}: no tokenizer (looked for tokenizer.json and char_tokenizer.json)`);
}

/** The folder's chat template text, or undefined when it has none (see ChatTemplate.fromDir for where it looks). */
export function folderChatTemplate(dir: string): string | undefined {
  const cfgPath = join(dir, "tokenizer_config.json");
  const has =
    existsSync(join(dir, "chat_template.jinja")) ||
    existsSync(join(dir, "chat_template.json")) ||
    readJsonFile(cfgPath, true)?.chat_template !== undefined;
  return has ? ChatTemplate.fromDir(dir).text : undefined;
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
  const loaded = await loadHfModel(model);
  return {
    config: loaded.config,
    params: loaded.params,
    tokenizer: folderTokenizer(model),
    chatTemplate: folderChatTemplate(model),
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
  const input = await loadForExport(positionals[0]);
  if (values.name) input.name = values.name;
  const bytes = await exportLlamaGguf(values.out, input, { type });
  const c = input.config;
  process.stdout.write(
    `${values.out}: llama GGUF, ${type.toUpperCase()}, ${c.nLayers} layers × ${c.dim}, vocabulary ${c.vocabSize}, ` +
      `${(bytes / 1e6).toFixed(1)} MB${input.chatTemplate !== undefined ? ", with chat template" : ""}\n`,
  );
}
