/**
 * llama.cpp through node-llama-cpp (pinned 3.21.1): a GGUF model on the CPU, next-token log-probs,
 * and batched sampling with the builtin engine's `generate` contract (same options, same `Sample`s).
 *
 * Binaries: node-llama-cpp ships a prebuilt CPU build of llama.cpp for linux-x64 (and others) in its
 * npm packages. srlm always asks for that build (`gpu: false`) and never lets node-llama-cpp build
 * from source or download anything (`build: "never"`, `skipDownload: true`), so that a machine without
 * a compiler or network fails with an error instead of a long attempt.
 *
 * Sampling: each step asks llama.cpp for the full next-token distribution (its greedy chain leaves
 * the logits untouched, so the probabilities are the plain softmax) and draws the token here with the
 * builtin sampler (temperature → top-k → top-p, Hugging Face's order) from the builtin's per-sample
 * PRNG streams (`seedFor`). So both engines sample the same distribution from the same random numbers,
 * and `logprob` is the untruncated log-probability the loop needs. llama.cpp's own sampler chain
 * applies top-p before the temperature, which would change what "top-p 0.9 at temperature 0.7" means.
 * The price is one vocabulary-sized transfer per token, small next to a forward pass of a real model.
 */
import type { ControlledEvaluateInputItem, Llama, LlamaContext, LlamaContextSequence, LlamaModel, Token } from "node-llama-cpp";
import type { GenerateOptions, Prompt, Sample } from "../model/generate.js";
import { seedFor } from "../model/generate.js";
import { logSumExp, makeScratch, type SamplingParams, sampleToken } from "../model/sampling.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { mulberry32 } from "./tensor.js";

export class LlamaCppError extends Error {
  override name = "LlamaCppError";
}

type NodeLlamaCpp = typeof import("node-llama-cpp");

/** The node-llama-cpp module, or a LlamaCppError saying how to install it. */
export async function importNodeLlamaCpp(): Promise<NodeLlamaCpp> {
  try {
    return await import("node-llama-cpp");
  } catch (e) {
    throw new LlamaCppError(
      `node-llama-cpp is not installed (${(e as Error).message.split("\n")[0]}); run npm ci in the srlm folder (see the README's install notes)`,
    );
  }
}

let llamaPromise: Promise<Llama> | undefined;

/**
 * The process's llama.cpp instance (CPU build, created once). `maxThreads` caps the threads of every
 * context (default: node-llama-cpp's, the cores useful for math).
 */
export function cpuLlama(opts: { maxThreads?: number } = {}): Promise<Llama> {
  llamaPromise ??= (async () => {
    const nlc = await importNodeLlamaCpp();
    try {
      return await nlc.getLlama({
        gpu: false,
        build: "never",
        skipDownload: true,
        usePrebuiltBinaries: true,
        progressLogs: false,
        logLevel: nlc.LlamaLogLevel.error,
        maxThreads: opts.maxThreads,
      });
    } catch (e) {
      throw new LlamaCppError(
        `node-llama-cpp has no working prebuilt CPU binary for ${process.platform}-${process.arch} (${(e as Error).message}); srlm does not build llama.cpp from source`,
      );
    }
  })();
  llamaPromise.catch(() => {
    llamaPromise = undefined; // let a later call try again
  });
  return llamaPromise;
}

/** Release the process's llama.cpp instance (and every model loaded with it). */
export async function disposeCpuLlama(): Promise<void> {
  const p = llamaPromise;
  llamaPromise = undefined;
  if (p) await (await p).dispose();
}

export interface LlamaCppOpenOptions {
  /** Sequences decoded together in one batch (default 8); bounds the KV cache's memory. */
  sequences?: number;
  /** Tokens per sequence (default: the model's training context, llama.context_length). */
  contextSize?: number;
  /** Threads per evaluation (default: node-llama-cpp's). */
  threads?: number;
  /**
   * Keep the KV cache in F32 instead of llama.cpp's default F16 (and no flash attention): slower and
   * larger, but then an F32 model's log-probs agree with the builtin engine's to ~1e-5.
   */
  exactKv?: boolean;
  /**
   * llama.cpp LoRA adapter GGUFs (`exportLoraGguf`, `srlm export <adapter-dir>`) applied to every
   * sequence of the context, each at `scale` (default 1: the adapter's own alpha / r).
   */
  lora?: readonly { path: string; scale?: number }[];
}

/** A GGUF model loaded in llama.cpp with one context of `sequences` parallel sequences. */
export class LlamaCppModel {
  private readonly free: LlamaContextSequence[];
  private vocab = 0;

  private constructor(
    readonly path: string,
    readonly model: LlamaModel,
    readonly context: LlamaContext,
  ) {
    this.free = [];
    for (let i = 0; i < context.totalSequences; i++) this.free.push(context.getSequence());
  }

  static async open(path: string, opts: LlamaCppOpenOptions = {}): Promise<LlamaCppModel> {
    const sequences = opts.sequences ?? 8;
    if (!(Number.isInteger(sequences) && sequences >= 1)) throw new RangeError(`sequences must be an integer ≥ 1, got ${sequences}`);
    const llama = await cpuLlama();
    let model: LlamaModel;
    try {
      model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
    } catch (e) {
      throw new LlamaCppError(`${path}: llama.cpp cannot load the model: ${(e as Error).message}`);
    }
    try {
      const context = await model.createContext({
        sequences,
        contextSize: opts.contextSize ?? model.trainContextSize,
        threads: opts.threads,
        ...(opts.exactKv ? { flashAttention: false, experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32" } : {}),
        ...(opts.lora?.length ? { lora: { adapters: opts.lora.map((a) => ({ filePath: a.path, scale: a.scale ?? 1 })) } } : {}),
      });
      return new LlamaCppModel(path, model, context);
    } catch (e) {
      await model.dispose();
      const adapters = opts.lora?.length ? ` with the LoRA adapter(s) ${opts.lora.map((a) => a.path).join(", ")}` : "";
      throw new LlamaCppError(`${path}: llama.cpp cannot create a context${adapters}: ${(e as Error).message}`);
    }
  }

  /**
   * Tokens a sequence may hold (prompt + generated): the model's training context, as the builtin
   * engine's maxSeqLen, unless the context is smaller (llama.cpp rounds context sizes up to 256).
   */
  get contextSize(): number {
    return Math.min(this.context.contextSize, this.model.trainContextSize);
  }

  async dispose(): Promise<void> {
    await this.context.dispose();
    await this.model.dispose();
  }

  private async withSequence<T>(f: (seq: LlamaContextSequence) => Promise<T>): Promise<T> {
    const seq = this.free.pop();
    if (!seq) throw new LlamaCppError(`${this.path}: all ${this.context.totalSequences} sequences are busy`);
    try {
      await seq.clearHistory();
      return await f(seq);
    } finally {
      this.free.push(seq);
    }
  }

  /**
   * Feed `ids` to `seq` and return the next-token log-probabilities after each position in `want`
   * (indices into `ids`), each a vocabulary-sized row.
   */
  private async evaluate(seq: LlamaContextSequence, ids: readonly number[], want: readonly number[]): Promise<Float32Array[]> {
    const wanted = new Set(want);
    const input = ids.map(
      (t, i): ControlledEvaluateInputItem => (wanted.has(i) ? [t as Token, { generateNext: { probabilities: true } }] : (t as Token)),
    );
    const out = await seq.controlledEvaluate(input);
    return want.map((i) => {
      const probs = out[i]?.next.probabilities;
      if (!probs) throw new LlamaCppError(`${this.path}: llama.cpp returned no distribution at position ${i}`);
      if (this.vocab === 0) this.vocab = probs.size;
      const row = new Float32Array(this.vocab).fill(Number.NEGATIVE_INFINITY);
      for (const [t, p] of probs) row[t] = Math.log(p);
      return row;
    });
  }

  /** Next-token log-probs after every position of `ids`: (T, V) row-major. */
  async logprobs(ids: readonly number[]): Promise<Float32Array> {
    if (ids.length === 0) throw new RangeError("logprobs: no tokens");
    if (ids.length > this.contextSize) throw new RangeError(`logprobs: ${ids.length} tokens exceed the context (${this.contextSize})`);
    const rows = await this.withSequence((seq) =>
      this.evaluate(
        seq,
        ids,
        ids.map((_, i) => i),
      ),
    );
    const V = rows[0].length;
    const out = new Float32Array(ids.length * V);
    for (const [i, r] of rows.entries()) out.set(r, i * V);
    return out;
  }

  /**
   * Greedy continuation by llama.cpp's own sampler (not srlm's): up to `maxNew` tokens, ending after
   * an end-of-generation token (kept). For checking an exported model against llama.cpp itself.
   */
  async greedyNative(ids: readonly number[], maxNew: number): Promise<number[]> {
    return this.withSequence(async (seq) => {
      const out: number[] = [];
      for await (const t of seq.evaluate(ids as Token[], { temperature: 0, yieldEogToken: true })) {
        out.push(t);
        if (out.length >= maxNew || this.model.isEogToken(t)) break;
      }
      return out;
    });
  }

  /**
   * Sample continuations of each prompt with the builtin `generate`'s contract: same options, same
   * stop rules (stop tokens kept in `ids`, text cut before a stop string, prompt + sample within the
   * context), same per-sample seeds. Text prompts are encoded with `tokenizer` (BOS by its
   * convention); without one, prompts must be token ids and `text` is "".
   */
  async generate(tokenizer: Tokenizer | undefined, prompts: readonly Prompt[], opts: GenerateOptions = {}): Promise<Sample[][]> {
    const n = opts.n ?? 1;
    const maxNew = opts.maxNewTokens ?? 64;
    const sp: SamplingParams = { temperature: opts.temperature ?? 1, topK: opts.topK ?? 0, topP: opts.topP ?? 1 };
    if (!(sp.temperature >= 0)) throw new RangeError(`temperature must be ≥ 0, got ${sp.temperature}`);
    if (!(sp.topP > 0 && sp.topP <= 1)) throw new RangeError(`topP must be in (0, 1], got ${sp.topP}`);
    if (!(Number.isInteger(sp.topK) && sp.topK >= 0)) throw new RangeError(`topK must be an integer ≥ 0, got ${sp.topK}`);
    if (!(Number.isInteger(n) && n >= 1)) throw new RangeError(`n must be an integer ≥ 1, got ${n}`);
    if (!(Number.isInteger(maxNew) && maxNew >= 1)) throw new RangeError(`maxNewTokens must be an integer ≥ 1, got ${maxNew}`);
    const stopStrings = opts.stopStrings ?? [];
    if (stopStrings.length && !tokenizer) throw new Error("stopStrings need a tokenizer");
    const stopTokens = new Set(opts.stopTokens ?? (tokenizer?.eosId !== undefined ? [tokenizer.eosId] : []));
    const maxLen = this.contextSize;
    const ids = prompts.map((p, i) => {
      if (typeof p !== "string") return Array.from(p);
      if (!tokenizer) throw new Error(`prompt ${i} is text but no tokenizer was given`);
      return tokenizer.encode(p);
    });
    ids.forEach((p, i) => {
      if (p.length === 0) throw new Error(`prompt ${i} is empty (no tokens)`);
      if (p.length >= maxLen) throw new Error(`prompt ${i} has ${p.length} tokens; the context holds ${maxLen}`);
    });

    const seed = opts.seed ?? 0;
    const total = ids.length * n;
    let done = 0;
    let tokens = 0;
    const sampleOne = async (prompt: number, sample: number): Promise<Sample> => {
      const rng = mulberry32(seedFor(seed, prompt, sample));
      const out: number[] = [];
      let logprob = 0;
      const { finish, textEnd } = await this.withSequence(async (seq) => {
        let input = ids[prompt];
        let pos = input.length; // tokens in the cache once `input` is fed
        for (;;) {
          opts.signal?.throwIfAborted();
          const [row] = await this.evaluate(seq, input, [input.length - 1]);
          const V = row.length;
          const t = sampleToken(row, 0, V, sp, rng, scratchFor(V));
          logprob += row[t] - logSumExp(row, 0, V);
          out.push(t);
          tokens++;
          opts.onProgress?.({ samplesDone: done, samplesTotal: total, tokens });
          if (stopTokens.has(t)) return { finish: "stop" as const, textEnd: -1 };
          if (stopStrings.length && tokenizer) {
            const cut = firstStop(tokenizer.decode(out), stopStrings);
            if (cut >= 0) return { finish: "stop" as const, textEnd: cut };
          }
          // prompt + sample must fit in the context, as the builtin keeps them within maxSeqLen
          if (out.length >= maxNew || pos + 1 >= maxLen) return { finish: "length" as const, textEnd: -1 };
          input = [t];
          pos++;
        }
      });
      done++;
      let text = "";
      if (tokenizer) {
        text = tokenizer.decode(finish === "stop" && stopTokens.has(out[out.length - 1]) ? out.slice(0, -1) : out);
        if (textEnd >= 0) text = text.slice(0, textEnd);
      }
      return { promptIndex: prompt, sampleIndex: sample, ids: out, text, logprob, finishReason: finish };
    };

    // Every sequence runs its own loop; node-llama-cpp batches the steps that are queued together.
    const jobs: [number, number][] = [];
    for (let p = 0; p < ids.length; p++) for (let s = 0; s < n; s++) jobs.push([p, s]);
    const results: Sample[][] = ids.map(() => []);
    let next = 0;
    const worker = async () => {
      while (next < jobs.length) {
        const [p, s] = jobs[next++];
        results[p][s] = await sampleOne(p, s);
      }
    };
    const width = Math.min(this.context.totalSequences, opts.maxBatch ?? Number.POSITIVE_INFINITY, jobs.length);
    await Promise.all(Array.from({ length: Math.max(1, width) }, worker));
    return results;
  }
}

const scratches = new Map<number, ReturnType<typeof makeScratch>>();
/** One sampling scratch per vocabulary size; sampling is synchronous, so sharing it is safe. */
function scratchFor(V: number): ReturnType<typeof makeScratch> {
  let s = scratches.get(V);
  if (!s) {
    s = makeScratch(V);
    scratches.set(V, s);
  }
  return s;
}

function firstStop(text: string, stops: readonly string[]): number {
  let cut = -1;
  for (const s of stops) {
    const at = text.indexOf(s);
    if (at >= 0 && (cut < 0 || at < cut)) cut = at;
  }
  return cut;
}
