/**
 * An OpenAI-compatible HTTP server over the builtin engine (`srlm serve`): `GET /v1/models`,
 * `POST /v1/completions`, `POST /v1/chat/completions`, and `GET /health`. node:http only.
 *
 * Sampling is the builtin `generate`'s: a completions request with prompts [p0, p1, …], `n` and
 * `seed` s returns exactly what `generate([p0, p1, …], { n, seed: s })` returns in-process (sample j of
 * prompt k draws from the stream seedFor(s, k, j)), whichever other requests share its batch.
 * Log-probs are the model's own (temperature 1, untruncated), one per sampled token including a final
 * stop token and the tokens of a stop string; their sum is the builtin `Sample.logprob`.
 *
 * Batching: requests that arrive while the model is busy (or within `gatherMs` of an idle model)
 * and share their sampling settings are decoded together by one `generate` call, each with its own
 * seeds (`sampleSeed`). With onnxruntime kernels a row's floats can depend on its batch (see
 * model/generate.ts), so a sample may differ in the last bits between batchings; with
 * `--kernels reference` a request's samples are bit-for-bit independent of its neighbours.
 *
 * Chat: the model folder's chat template renders the messages (generation prompt appended, no BOS
 * added, as transformers does). Without a template: a lone user message is the prompt as it is (so a
 * completion-style model such as the sandbox's answers it as it would on /v1/completions); several
 * messages become `role: content` lines followed by `assistant: `.
 *
 * LoRA adapters (with `enableLora`, `srlm serve --enable-lora`): vLLM's runtime API.
 * `POST /v1/load_lora_adapter {lora_name, lora_path}` reads a PEFT adapter folder for the served model
 * and `POST /v1/unload_lora_adapter {lora_name}` drops it; loaded adapters are listed in /v1/models
 * (with `parent` = the base model), and a request whose `model` names one samples from base + that
 * adapter. The adapted weights are merged as the LoRA trainer merges them (loraTrainable's
 * afterUpdate, on the same kernels), so an adapter served here samples exactly what the builtin
 * engine samples with it in training. Each loaded adapter holds a merged copy of the weights it
 * targets: `maxLoras` (default 4) bounds them. Without `enableLora` both routes get 404, as vLLM's
 * do without VLLM_ALLOW_RUNTIME_LORA_UPDATING. Nothing survives a restart: clients load again.
 *
 * Limits: a body over `maxBodyBytes` gets 413; `max_tokens` over `maxTokensLimit`, `n` over `maxN`, a
 * prompt of `maxSeqLen` tokens or more, and malformed bodies get 400 naming the field; more than
 * `maxQueuedSamples` waiting samples gets 429 with Retry-After. Streaming is not implemented (400).
 */
import { randomBytes, randomInt } from "node:crypto";
import { access } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { z } from "zod";
import { ADAPTER_CONFIG_FILE, loadLoraAdapter } from "../io/peft.js";
import { generate, type Sample, seedFor } from "../model/generate.js";
import type { LlamaModel } from "../model/llama.js";
import type { ChatTemplate } from "../tokenizer/chat-template.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { loraTrainable } from "../train/lora.js";
import {
  type ChatMessageSchema,
  type ChatRequest,
  ChatRequestSchema,
  type CompletionRequest,
  CompletionRequestSchema,
  describeZodError,
  LoadLoraRequestSchema,
  messageText,
  UnloadLoraRequestSchema,
  unsupportedField,
} from "./protocol.js";

/** What the server runs: a loaded model with its tokenizer, end-of-generation ids and chat template. */
export interface ServedModel {
  model: LlamaModel;
  tokenizer: Tokenizer;
  /** Ids that end a sample (the model folder's eosIds). */
  eosIds: readonly number[];
  chatTemplate?: ChatTemplate;
}

export interface ServeOptions {
  /** Default 127.0.0.1: loopback only. */
  host?: string;
  /** Default 8000; 0 = any free port (read `SrlmServer.port`). */
  port?: number;
  /** The id clients name in `model` (default "srlm"). */
  modelName?: string;
  /** Largest `max_tokens` accepted (default 1024). */
  maxTokensLimit?: number;
  /** Largest request body in bytes (default 1 MiB). */
  maxBodyBytes?: number;
  /** Largest `n` (default 64). */
  maxN?: number;
  /** Samples waiting or decoding beyond which new requests get 429 (default 4096). */
  maxQueuedSamples?: number;
  /** How long an idle model waits for more requests before decoding (default 2 ms). */
  gatherMs?: number;
  /** KV-cache slots of one generate call (default 256). */
  maxBatch?: number;
  /** Serve vLLM's runtime LoRA routes (default false: 404, as vLLM without VLLM_ALLOW_RUNTIME_LORA_UPDATING). */
  enableLora?: boolean;
  /** Adapters loaded at once (default 4); each holds a merged copy of the weights it targets. */
  maxLoras?: number;
  /** One line per request and on start/stop (default: none). */
  log?: (line: string) => void;
}

/** An error that becomes an OpenAI-style error response. */
export class HttpError extends Error {
  override name = "HttpError";
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly type = status === 404 ? "not_found_error" : status === 429 ? "rate_limit_error" : "invalid_request_error",
  ) {
    super(message);
  }
}

interface Sampling {
  temperature: number;
  topP: number;
  topK: number;
  maxNewTokens: number;
  stopStrings: string[];
  n: number;
  topLogprobs: number;
}

/** A model requests can name: the base, or the base with a LoRA adapter merged in. */
interface Named {
  name: string;
  model: LlamaModel;
}

interface Adapter extends Named {
  path: string;
  created: number;
}

interface Job {
  /** The weights this job samples from (jobs of different models never share a batch). */
  model: LlamaModel;
  prompts: number[][];
  seed: number;
  sampling: Sampling;
  key: string;
  resolve: (samples: Sample[][]) => void;
  reject: (e: Error) => void;
}

export interface ServerStats {
  requests: number;
  /** Requests answered with a 4xx/5xx status. */
  errors: number;
  samples: number;
  completionTokens: number;
  /** generate calls, and the requests they served (requests / batches = mean batching). */
  batches: number;
  batchedRequests: number;
}

export class SrlmServer {
  readonly stats: ServerStats = { requests: 0, errors: 0, samples: 0, completionTokens: 0, batches: 0, batchedRequests: 0 };
  private readonly queue: Job[] = [];
  private queuedSamples = 0;
  private running = false;
  private closing = false;
  private idle: (() => void)[] = [];
  private readonly created = Math.floor(Date.now() / 1000);
  private readonly o: Required<Omit<ServeOptions, "log">> & Pick<ServeOptions, "log">;
  private readonly adapters = new Map<string, Adapter>();
  /** Adapter loads in progress, by name, so that a second load of a name waits for the first. */
  private readonly loading = new Map<string, Promise<unknown>>();
  /** Model computations (decoding, merging an adapter) run one at a time on the shared kernels. */
  private computing: Promise<unknown> = Promise.resolve();
  /** Batch keys tell models apart by object: an adapter loaded again in place is another model. */
  private readonly modelIds = new WeakMap<LlamaModel, number>();
  private nextModelId = 0;

  private constructor(
    private readonly served: ServedModel,
    private readonly http: Server,
    opts: ServeOptions,
  ) {
    this.o = {
      host: opts.host ?? "127.0.0.1",
      port: opts.port ?? 8000,
      modelName: opts.modelName ?? "srlm",
      maxTokensLimit: opts.maxTokensLimit ?? 1024,
      maxBodyBytes: opts.maxBodyBytes ?? 1 << 20,
      maxN: opts.maxN ?? 64,
      maxQueuedSamples: opts.maxQueuedSamples ?? 4096,
      gatherMs: opts.gatherMs ?? 2,
      maxBatch: opts.maxBatch ?? 256,
      enableLora: opts.enableLora ?? false,
      maxLoras: opts.maxLoras ?? 4,
      log: opts.log,
    };
  }

  /** Start listening; resolves once the port is bound. */
  static async listen(served: ServedModel, opts: ServeOptions = {}): Promise<SrlmServer> {
    const http = createServer();
    const s = new SrlmServer(served, http, opts);
    http.on("request", (req, res) => void s.handle(req, res));
    // Keep-alive sockets outlive a response; a short timeout lets close() finish soon after the last one.
    http.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      http.once("error", reject);
      http.listen(s.o.port, s.o.host, () => {
        http.off("error", reject);
        resolve();
      });
    });
    return s;
  }

  get port(): number {
    return (this.http.address() as AddressInfo).port;
  }

  /** Base URL as OpenAI clients take it (`http://127.0.0.1:8000/v1`). */
  get url(): string {
    const host = this.o.host.includes(":") ? `[${this.o.host}]` : this.o.host;
    return `http://${host}:${this.port}/v1`;
  }

  get modelName(): string {
    return this.o.modelName;
  }

  /**
   * Stop accepting connections, finish the requests already queued or decoding, then close. After
   * `graceMs` (default 30 s) the remaining connections are cut.
   */
  async close(graceMs = 30_000): Promise<void> {
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeIdleConnections();
    const drained = new Promise<void>((resolve) => {
      if (!this.running && this.queue.length === 0) resolve();
      else this.idle.push(resolve);
    });
    const timer = setTimeout(() => this.http.closeAllConnections(), graceMs);
    await drained;
    this.http.closeIdleConnections();
    await closed;
    clearTimeout(timer);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const t0 = performance.now();
    this.stats.requests++;
    let status = 200;
    const note: { model?: string } = {};
    try {
      const body = await this.route(req, note);
      send(res, 200, body);
    } catch (e) {
      const err = e instanceof HttpError ? e : new HttpError(500, `internal error: ${(e as Error).message}`, null, "server_error");
      status = err.status;
      this.stats.errors++;
      const headers: Record<string, string> = err.status === 429 ? { "retry-after": "1" } : {};
      if (err.status === 413) headers.connection = "close";
      send(res, err.status, { error: { message: err.message, type: err.type, param: err.param, code: null } }, headers);
    }
    this.o.log?.(`${req.method} ${req.url} ${status} ${(performance.now() - t0).toFixed(0)} ms${note.model ? ` model=${note.model}` : ""}`);
  }

  /** The response body of a request; `note.model` is set to the model a generation request named. */
  private async route(req: IncomingMessage, note: { model?: string }): Promise<unknown> {
    const path = (req.url ?? "/").split("?")[0].replace(/\/+$/, "");
    const method = req.method ?? "GET";
    const only = (m: string) => {
      if (method !== m) throw new HttpError(405, `${path}: method ${method} not allowed (use ${m})`);
    };
    if (path === "/health") {
      only("GET");
      return { status: "ok" };
    }
    if (path === "/v1/models") {
      only("GET");
      return { object: "list", data: [this.modelCard(), ...[...this.adapters.values()].map((a) => this.adapterCard(a))] };
    }
    if (path.startsWith("/v1/models/")) {
      only("GET");
      const id = decodeURIComponent(path.slice("/v1/models/".length));
      const a = this.adapters.get(id);
      if (a) return this.adapterCard(a);
      this.resolveModel(id);
      return this.modelCard();
    }
    if (path === "/v1/completions") {
      only("POST");
      return this.completions(parseBody(await readBody(req, this.o.maxBodyBytes), CompletionRequestSchema), note);
    }
    if (path === "/v1/chat/completions") {
      only("POST");
      return this.chat(parseBody(await readBody(req, this.o.maxBodyBytes), ChatRequestSchema), note);
    }
    if ((path === "/v1/load_lora_adapter" || path === "/v1/unload_lora_adapter") && this.o.enableLora) {
      only("POST");
      const text = await readBody(req, this.o.maxBodyBytes);
      return path === "/v1/load_lora_adapter"
        ? this.loadAdapter(parseBody(text, LoadLoraRequestSchema))
        : this.unloadAdapter(parseBody(text, UnloadLoraRequestSchema));
    }
    if (path === "/v1/load_lora_adapter" || path === "/v1/unload_lora_adapter") {
      throw new HttpError(404, `${path}: runtime LoRA loading is off (start srlm serve with --enable-lora)`);
    }
    const lora = this.o.enableLora ? ", POST /v1/load_lora_adapter, POST /v1/unload_lora_adapter" : "";
    throw new HttpError(
      404,
      `no route ${method} ${path} (routes: GET /v1/models, POST /v1/completions, POST /v1/chat/completions${lora}, GET /health)`,
    );
  }

  private modelCard() {
    return {
      id: this.o.modelName,
      object: "model",
      created: this.created,
      owned_by: "srlm",
      max_model_len: this.served.model.config.maxSeqLen,
    };
  }

  /** An adapter as vLLM lists it: `root` = where it was read from, `parent` = the base model. */
  private adapterCard(a: Adapter) {
    return { id: a.name, object: "model", created: a.created, owned_by: "srlm", root: a.path, parent: this.o.modelName };
  }

  /** The base model or a loaded adapter named `name`; 404 naming what exists otherwise. */
  private resolveModel(name: string): Named {
    if (name === this.o.modelName) return { name, model: this.served.model };
    const a = this.adapters.get(name);
    if (a) return a;
    const known = [this.o.modelName, ...this.adapters.keys()].map((m) => `"${m}"`).join(", ");
    throw new HttpError(404, `The model \`${name}\` does not exist (this server has ${known}).`, "model");
  }

  private modelId(m: LlamaModel): number {
    let id = this.modelIds.get(m);
    if (id === undefined) {
      id = this.nextModelId++;
      this.modelIds.set(m, id);
    }
    return id;
  }

  /** Run `f` after every model computation started before it (decoding and merging share the kernels). */
  private exclusive<T>(f: () => Promise<T>): Promise<T> {
    const run = this.computing.then(f, f);
    this.computing = run.catch(() => undefined);
    return run;
  }

  /**
   * vLLM's load: read the PEFT folder at `lora_path` (relative paths: from the server's working
   * directory), check it against the model, merge it. Answers as vLLM does: 400 "has already been
   * loaded" for a name in use (unless `load_inplace`), 404 "No adapter found" for a missing folder.
   */
  private async loadAdapter(b: z.infer<typeof LoadLoraRequestSchema>): Promise<string> {
    const name = b.lora_name;
    if (name === this.o.modelName) throw new HttpError(400, `lora_name: "${name}" is the base model's name`, "lora_name");
    const pending = this.loading.get(name);
    if (pending) await pending.catch(() => undefined);
    if (this.adapters.has(name) && !b.load_inplace) {
      throw new HttpError(400, `The lora adapter '${name}' has already been loaded.`, "lora_name");
    }
    // Loads in progress count too, so that concurrent loads cannot pass the limit together.
    if (!this.adapters.has(name) && this.adapters.size + this.loading.size >= this.o.maxLoras) {
      throw new HttpError(
        400,
        `lora_name: ${this.adapters.size} adapters are loaded, the limit (--max-loras); unload one first: ${[...this.adapters.keys()].join(", ")}`,
        "lora_name",
      );
    }
    const load = (async () => {
      const path = b.lora_path;
      try {
        await access(join(path, ADAPTER_CONFIG_FILE));
      } catch {
        throw new HttpError(404, `No adapter found at ${path} (no ${ADAPTER_CONFIG_FILE} there)`, "lora_path");
      }
      const base = this.served.model;
      let trainable: ReturnType<typeof loraTrainable>;
      try {
        trainable = loraTrainable(base, await loadLoraAdapter(path, base.config));
      } catch (e) {
        throw new HttpError(400, `lora_path: ${(e as Error).message}`, "lora_path");
      }
      // The trainer's merge (W + s·B·A on the kernels), so the served weights are the training run's.
      await this.exclusive(async () => trainable.afterUpdate());
      this.adapters.set(name, { name, model: trainable.model, path, created: Math.floor(Date.now() / 1000) });
      this.o.log?.(`loaded LoRA adapter "${name}" from ${path}`);
    })();
    this.loading.set(name, load);
    try {
      await load;
    } finally {
      this.loading.delete(name);
    }
    return `Success: LoRA adapter '${name}' added successfully.`;
  }

  /** vLLM's unload: queued requests for the adapter still finish (their jobs hold its weights). */
  private async unloadAdapter(b: z.infer<typeof UnloadLoraRequestSchema>): Promise<string> {
    const pending = this.loading.get(b.lora_name);
    if (pending) await pending.catch(() => undefined);
    if (!this.adapters.delete(b.lora_name)) {
      throw new HttpError(404, `The lora adapter '${b.lora_name}' cannot be found.`, "lora_name");
    }
    this.o.log?.(`unloaded LoRA adapter "${b.lora_name}"`);
    return `Success: LoRA adapter '${b.lora_name}' removed successfully.`;
  }

  /** Checks shared by both endpoints; returns the sampling settings. */
  private sampling(
    b: CompletionRequest | ChatRequest,
    maxTokens: number | null | undefined,
    defaultMax: number,
    topLogprobs: number,
  ): Sampling {
    const bad = unsupportedField(b as Record<string, unknown>);
    if (bad) throw new HttpError(400, bad.message, bad.param);
    const max = maxTokens ?? defaultMax;
    if (max > this.o.maxTokensLimit) {
      throw new HttpError(
        400,
        `max_tokens: ${max} is over this server's limit of ${this.o.maxTokensLimit} (--max-tokens-limit)`,
        "max_tokens",
      );
    }
    const n = b.n ?? 1;
    if (n > this.o.maxN) throw new HttpError(400, `n: ${n} is over this server's limit of ${this.o.maxN}`, "n");
    const topK = b.top_k ?? 0;
    const stop = b.stop === undefined || b.stop === null ? [] : typeof b.stop === "string" ? [b.stop] : b.stop;
    if (stop.some((s) => s.length === 0)) throw new HttpError(400, "stop: empty strings are not allowed", "stop");
    return {
      temperature: b.temperature ?? 1,
      topP: b.top_p ?? 1,
      topK: Math.max(topK, 0),
      maxNewTokens: max,
      stopStrings: stop,
      n,
      topLogprobs,
    };
  }

  private encode(text: string, param: string, addBos?: boolean): number[] {
    try {
      return this.served.tokenizer.encode(text, addBos === undefined ? undefined : { addBos });
    } catch (e) {
      throw new HttpError(400, `${param}: cannot be tokenized: ${(e as Error).message}`, param);
    }
  }

  private checkPrompt(ids: number[], param: string): number[] {
    if (ids.length === 0) throw new HttpError(400, `${param}: empty (no tokens)`, param);
    const max = this.served.model.config.maxSeqLen;
    if (ids.length >= max) throw new HttpError(400, `${param}: ${ids.length} tokens; the model's context is ${max}`, param);
    const V = this.served.model.config.vocabSize;
    const bad = ids.find((t) => t >= V);
    if (bad !== undefined) throw new HttpError(400, `${param}: token id ${bad} is outside the vocabulary (${V} ids)`, param);
    return ids;
  }

  private async completions(b: CompletionRequest, note: { model?: string }): Promise<unknown> {
    note.model = b.model;
    const m = this.resolveModel(b.model);
    const s = this.sampling(b, b.max_tokens, 16, b.logprobs ?? 0);
    const raw = b.prompt;
    const list: (string | number[])[] =
      typeof raw === "string" ? [raw] : typeof raw[0] === "number" ? [raw as number[]] : (raw as (string | number[])[]);
    const prompts = list.map((p, k) => {
      const param = list.length > 1 ? `prompt.${k}` : "prompt";
      return this.checkPrompt(typeof p === "string" ? this.encode(p, param) : p, param);
    });
    const samples = await this.submit(m.model, prompts, b.seed, s);
    const tok = this.served.tokenizer;
    const choices = samples.flatMap((row, k) =>
      row.map((x, j) => ({
        index: k * s.n + j,
        text: x.text,
        logprobs: b.logprobs === undefined || b.logprobs === null ? null : completionLogprobs(tok, x),
        finish_reason: x.finishReason,
      })),
    );
    return {
      id: `cmpl-${randomBytes(12).toString("hex")}`,
      object: "text_completion",
      created: Math.floor(Date.now() / 1000),
      model: m.name,
      choices,
      usage: usage(prompts, samples),
    };
  }

  private async chat(b: ChatRequest, note: { model?: string }): Promise<unknown> {
    note.model = b.model;
    const m = this.resolveModel(b.model);
    const s = this.sampling(b, b.max_completion_tokens ?? b.max_tokens, this.o.maxTokensLimit, b.logprobs ? (b.top_logprobs ?? 0) : 0);
    if (b.top_logprobs && !b.logprobs) throw new HttpError(400, "top_logprobs: needs logprobs: true", "top_logprobs");
    const ids = this.checkPrompt(this.renderChat(b.messages), "messages");
    const samples = await this.submit(m.model, [ids], b.seed, s);
    const tok = this.served.tokenizer;
    const choices = samples[0].map((x, j) => ({
      index: j,
      message: { role: "assistant", content: x.text },
      logprobs: b.logprobs ? { content: chatLogprobs(tok, x) } : null,
      finish_reason: x.finishReason,
    }));
    return {
      id: `chatcmpl-${randomBytes(12).toString("hex")}`,
      object: "chat.completion",
      created: Math.floor(Date.now() / 1000),
      model: m.name,
      choices,
      usage: usage([ids], samples),
    };
  }

  private renderChat(messages: z.infer<typeof ChatMessageSchema>[]): number[] {
    const plain = messages.map((m) => ({ role: m.role, content: messageText(m) }));
    const template = this.served.chatTemplate;
    if (template) {
      let text: string;
      try {
        text = template.render(plain, { addGenerationPrompt: true });
      } catch (e) {
        throw new HttpError(400, `messages: ${(e as Error).message}`, "messages");
      }
      return this.encode(text, "messages", false);
    }
    if (plain.length === 1 && plain[0].role === "user") return this.encode(plain[0].content, "messages.0.content");
    return this.encode(`${plain.map((m) => `${m.role}: ${m.content}\n`).join("")}assistant: `, "messages");
  }

  /** Queue a request's prompts; resolves with its samples once its batch has been decoded. */
  private submit(model: LlamaModel, prompts: number[][], seed: number | null | undefined, sampling: Sampling): Promise<Sample[][]> {
    if (this.closing) throw new HttpError(503, "the server is shutting down", null, "server_error");
    const count = prompts.length * sampling.n;
    if (this.queuedSamples + count > this.o.maxQueuedSamples) {
      throw new HttpError(429, `the server is busy (${this.queuedSamples} samples queued, limit ${this.o.maxQueuedSamples}); retry later`);
    }
    this.queuedSamples += count;
    return new Promise<Sample[][]>((resolve, reject) => {
      this.queue.push({
        model,
        prompts,
        // The sample streams take 32-bit seeds; ToUint32 maps any integer (negative or ≥ 2^32) onto one.
        seed: seed === undefined || seed === null ? randomInt(2 ** 32 - 1) : seed >>> 0,
        sampling,
        // Same model object and settings: one batch.
        key: `${this.modelId(model)}\u0000${JSON.stringify(sampling)}`,
        resolve,
        reject,
      });
      void this.pump();
    }).finally(() => {
      this.queuedSamples -= count;
    });
  }

  /** Decode queued requests, one batch of same-settings requests per generate call, until the queue is empty. */
  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      if (this.o.gatherMs > 0) await new Promise((r) => setTimeout(r, this.o.gatherMs));
      while (this.queue.length > 0) {
        const key = this.queue[0].key;
        const batch: Job[] = [];
        let samples = 0;
        for (let i = 0; i < this.queue.length; ) {
          const j = this.queue[i];
          const c = j.prompts.length * j.sampling.n;
          // Cap a batch at a few cache-fulls so that requests with other settings are not starved.
          if (j.key === key && (batch.length === 0 || samples + c <= 4 * this.o.maxBatch)) {
            batch.push(j);
            samples += c;
            this.queue.splice(i, 1);
          } else i++;
        }
        await this.exclusive(() => this.decode(batch));
      }
    } finally {
      this.running = false;
      for (const f of this.idle.splice(0)) f();
    }
  }

  private async decode(batch: Job[]): Promise<void> {
    const s = batch[0].sampling;
    const prompts: number[][] = [];
    const seeds: number[] = [];
    const within: number[] = [];
    for (const j of batch) {
      j.prompts.forEach((p, k) => {
        prompts.push(p);
        seeds.push(j.seed);
        within.push(k);
      });
    }
    let out: Sample[][];
    try {
      out = await generate(batch[0].model, this.served.tokenizer, prompts, {
        n: s.n,
        temperature: s.temperature,
        topP: s.topP,
        topK: s.topK,
        maxNewTokens: s.maxNewTokens,
        stopStrings: s.stopStrings,
        stopTokens: [...this.served.eosIds],
        maxBatch: this.o.maxBatch,
        // Each request's own streams: prompt k of a request seeded s draws seedFor(s, k, j), as in-process.
        sampleSeed: (p, i) => seedFor(seeds[p], within[p], i),
        tokenLogprobs: true,
        topLogprobs: s.topLogprobs,
      });
    } catch (e) {
      for (const j of batch) j.reject(e as Error);
      return;
    }
    this.stats.batches++;
    this.stats.batchedRequests += batch.length;
    let at = 0;
    for (const j of batch) {
      const rows = out.slice(at, at + j.prompts.length).map((row, k) => row.map((x) => ({ ...x, promptIndex: k })));
      at += j.prompts.length;
      for (const row of rows) for (const x of row) this.stats.completionTokens += x.ids.length;
      this.stats.samples += j.prompts.length * s.n;
      j.resolve(rows);
    }
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

async function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const declared = Number(req.headers["content-length"]);
  const tooBig = () => new HttpError(413, `request body over ${limit} bytes (--max-body-bytes)`, null);
  if (declared > limit) {
    req.resume(); // discard, so the response can be read by the client
    throw tooBig();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      req.resume();
      throw tooBig();
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function parseBody<T>(text: string, schema: z.ZodType<T>): T {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new HttpError(400, `body: not valid JSON (${(e as Error).message})`, null);
  }
  const r = schema.safeParse(json);
  if (!r.success) {
    const { param, message } = describeZodError(r.error);
    throw new HttpError(400, message, param);
  }
  return r.data;
}

function tokenText(tok: Tokenizer, id: number): string {
  return tok.decode([id], { keepSpecial: true });
}

function completionLogprobs(tok: Tokenizer, x: Sample) {
  const tokens = x.ids.map((id) => tokenText(tok, id));
  const offsets: number[] = [];
  let off = 0;
  for (const t of tokens) {
    offsets.push(off);
    off += t.length;
  }
  return {
    tokens,
    token_logprobs: x.tokenLogprobs ?? [],
    top_logprobs: x.topLogprobs
      ? x.topLogprobs.map((step) => Object.fromEntries(step.map((e) => [tokenText(tok, e.id), e.logprob])))
      : null,
    text_offset: offsets,
  };
}

function chatLogprobs(tok: Tokenizer, x: Sample) {
  const entry = (id: number, logprob: number) => {
    const token = tokenText(tok, id);
    return { token, logprob, bytes: [...Buffer.from(token, "utf8")] };
  };
  return x.ids.map((id, t) => ({
    ...entry(id, x.tokenLogprobs?.[t] ?? Number.NaN),
    top_logprobs: (x.topLogprobs?.[t] ?? []).map((e) => entry(e.id, e.logprob)),
  }));
}

function usage(prompts: number[][], samples: Sample[][]) {
  const prompt = prompts.reduce((a, p) => a + p.length, 0);
  const completion = samples.reduce((a, row) => a + row.reduce((b, x) => b + x.ids.length, 0), 0);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}
