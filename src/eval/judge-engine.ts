/**
 * A judge for evaluation: a generation engine plus how to wrap a request for it (its chat template's
 * user turn, or the plain text when it has none) and whether a request fits its context.
 *
 * `openJudge(path)` takes a model folder (builtin engine: HF or srlm folder with tokenizer and
 * optional chat template) or a `.gguf` file (llama.cpp; tokenizer and chat template from the file).
 * A request that does not fit the judge's context is not sent: it comes back as an error, which the
 * callers count as an unparsable judgement — never truncated, never guessed.
 */
import { basename } from "node:path";
import { builtinEngine, type GenerationEngine } from "../engine/engine.js";
import { createKernels, type KernelsKind } from "../engine/ort.js";
import { readGgufHeader } from "../io/gguf.js";
import { loadModelFolder } from "../io/model-folder.js";
import type { Sample } from "../model/generate.js";
import { createModel } from "../model/llama.js";
import { ChatTemplate } from "../tokenizer/chat-template.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";

export interface Judge {
  /** Written as the annotator / judge name in the output files. */
  readonly name: string;
  readonly engine: GenerationEngine;
  /** Decodes the judgements. */
  readonly tokenizer: Tokenizer;
  /** Tokens a prompt plus its judgement may hold. */
  readonly contextTokens: number;
  /** The request as prompt ids: the chat template's user turn when the judge has one, else the plain text. */
  encode(request: string): number[];
  /** Ids that end a judgement (EOS and the configured end-of-generation ids). */
  readonly stopTokens?: number[];
  dispose(): Promise<void>;
}

export interface JudgeOptions {
  maxNewTokens?: number;
  temperature?: number;
  seed?: number;
  /** Requests per engine call (default 16); results are handed to `onBatch` after each. */
  batch?: number;
  signal?: AbortSignal;
}

export type Judgement = { text: string } | { error: string };

/**
 * Judge every request (greedy by default). `onBatch(start, results)` runs after each engine call so
 * callers can save progress; requests that do not fit the context come back as `{ error }`.
 */
export async function judgeRequests(
  judge: Judge,
  requests: readonly string[],
  opts: JudgeOptions = {},
  onBatch?: (start: number, results: Judgement[]) => Promise<void>,
): Promise<Judgement[]> {
  const maxNewTokens = opts.maxNewTokens ?? 256;
  const batch = opts.batch ?? 16;
  const out: Judgement[] = [];
  for (let start = 0; start < requests.length; start += batch) {
    opts.signal?.throwIfAborted();
    const chunk = requests.slice(start, start + batch).map((r) => judge.encode(r));
    const results: Judgement[] = new Array(chunk.length);
    const send: number[] = [];
    chunk.forEach((prompt, i) => {
      const tokens = prompt.length;
      // At least one generated token must fit, as the engines require.
      if (tokens + 1 > judge.contextTokens)
        results[i] = { error: `the request has ${tokens} tokens; the judge's context holds ${judge.contextTokens}` };
      else send.push(i);
    });
    if (send.length > 0) {
      const samples: Sample[][] = await judge.engine.generate(
        send.map((i) => chunk[i]),
        {
          n: 1,
          temperature: opts.temperature ?? 0,
          maxNewTokens,
          seed: opts.seed ?? 0,
          signal: opts.signal,
          ...(judge.stopTokens ? { stopTokens: judge.stopTokens } : {}),
        },
      );
      send.forEach((i, k) => {
        results[i] = { text: samples[k][0].text };
      });
    }
    out.push(...results);
    await onBatch?.(start, results);
  }
  return out;
}

/** A judge from a model folder (builtin engine) or a .gguf file (llama.cpp). */
export async function openJudge(path: string, opts: { kernels?: KernelsKind; sequences?: number } = {}): Promise<Judge> {
  if (path.endsWith(".gguf")) return openGgufJudge(path, opts.sequences ?? 8);
  const folder = await loadModelFolder(path);
  const kernels = await createKernels(opts.kernels ?? "ort");
  const model = createModel(folder.config, folder.params, kernels);
  return {
    name: basename(path.replace(/\/+$/, "")),
    engine: builtinEngine(model, folder.tokenizer),
    tokenizer: folder.tokenizer,
    contextTokens: folder.config.maxSeqLen,
    encode: (request) => (folder.chatTemplate ? folder.chatIds([{ role: "user", content: request }]) : folder.tokenizer.encode(request)),
    stopTokens: folder.eosIds.length ? folder.eosIds : undefined,
    dispose: () => kernels.dispose(),
  };
}

async function openGgufJudge(path: string, sequences: number): Promise<Judge> {
  const { LlamaCppModel } = await import("../engine/llama-cpp.js");
  const llama = await LlamaCppModel.open(path, { sequences });
  const m = llama.model;
  const md = readGgufHeader(path).metadata;
  const vocab = md["tokenizer.ggml.tokens"];
  const bos = m.tokens.bos === null ? undefined : Number(m.tokens.bos);
  const eos = m.tokens.eos === null ? undefined : Number(m.tokens.eos);
  const withBos = (ids: number[], text: string): number[] =>
    bos !== undefined && m.tokens.shouldPrependBosToken && !(m.tokens.bosString && text.startsWith(m.tokens.bosString))
      ? [bos, ...ids]
      : ids;
  // llama.cpp's own tokenizer, so any vocabulary llama.cpp reads works (not only the ones srlm parses).
  const tokenizer: Tokenizer = {
    vocabSize: Array.isArray(vocab) ? vocab.length : 0,
    bosId: bos,
    eosId: eos,
    padId: 0,
    encode: (text, o) => {
      const ids = m.tokenize(text, false).map(Number);
      return o?.addBos === false ? ids : withBos(ids, text);
    },
    decode: (ids) => m.detokenize(ids as never),
  };
  const tmpl = md["tokenizer.chat_template"];
  const chat =
    typeof tmpl === "string"
      ? new ChatTemplate(`${path} (tokenizer.chat_template)`, tmpl, m.tokens.bosString ?? "", m.tokens.eosString ?? "")
      : undefined;
  return {
    name: basename(path),
    engine: {
      name: "llama.cpp",
      capabilities: { logprobs: true, tokenIds: true, deterministic: true },
      generate: (prompts, o) => llama.generate(tokenizer, prompts, o),
      dispose: async () => {}, // the judge's dispose releases the model
    },
    tokenizer,
    contextTokens: llama.contextSize,
    encode: (request) => {
      if (!chat) return tokenizer.encode(request);
      // The rendered chat holds the template's special tokens as text: parse them as special tokens.
      const text = chat.render([{ role: "user", content: request }]);
      return withBos(m.tokenize(text, true).map(Number), text);
    },
    stopTokens: [...new Set([eos, m.tokens.eot === null ? undefined : Number(m.tokens.eot)])].filter((t): t is number => t !== undefined),
    dispose: () => llama.dispose(),
  };
}
