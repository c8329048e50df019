/**
 * A GenerationEngine over OpenAI-compatible HTTP servers: vLLM, llama.cpp's llama-server, Ollama, and
 * `srlm serve`. One or more base URLs (as OpenAI clients take them: `http://host:8000/v1`), the
 * completions or the chat endpoint, and what each server can do declared as capabilities:
 *
 *  - `n`: several samples per request. Without it, one request per sample.
 *  - `seed`: per-request seeds. With it, prompt p's requests carry seeds from `seedFor(seed, p, i)`
 *    (i = the sample index, or 0 for a request of n samples), so a deterministic server gives the same
 *    samples again; without it no seed is sent and `capabilities.deterministic` is false.
 *  - `logprobs`: the sampled tokens' log-probs (`logprobs: 1` on completions, `logprobs: true` on chat);
 *    `Sample.logprob` is their sum. Without it `Sample.logprob` is NaN and `capabilities.logprobs` is
 *    false: callers whose rewards need log-probs must refuse (`requireLogprobs`).
 *  - `topK`: the `top_k` extension (vLLM, llama.cpp, srlm); without it a topK > 0 is an error.
 *  - `lora`: vLLM's dynamic LoRA API (`POST /v1/load_lora_adapter`, `/v1/unload_lora_adapter`).
 *    An adapter added with `addLoraAdapter(name, path)` is loaded on a server when a request naming
 *    it there gets 404 (never loaded there, or the server restarted), and the request is sent again.
 *  - `srlmSeeds`: the server draws sample j of a one-prompt request seeded s from seedFor(s, 0, j),
 *    as `srlm serve` does. The engine then sends one request per sample, seeded
 *    requestSeedFor(seedFor(seed, p, i)), so that sample i of prompt p draws from the very stream the
 *    builtin engine gives it: same model and seed, same samples (up to the float bits of batching).
 *
 * `server` picks a row of SERVER_CAPABILITIES as the default, `capabilities` overrides single fields.
 * Token ids never come back (`tokenIds: false`); token-id prompts need the completions mode.
 *
 * Requests are spread over the base URLs (least in flight; a URL that refused a connection is avoided
 * for a while), at most `maxConcurrency` at once. Each has a timeout; 408, 429, 5xx, timeouts and
 * connection errors are retried up to `maxRetries` times with exponential backoff and full jitter
 * (a 429/503's Retry-After is honoured, capped); other statuses fail at once with OpenAIHttpError.
 *
 * Persistence: with `journal` (a file path, e.g. in the run directory) every completed sample is
 * appended there (engine/journal.ts) before `generate` returns it, keyed by model, mode, prompt,
 * sampling settings, seed and sample index; a later call, in this process or after a restart, takes
 * the journaled samples and requests only the missing ones.
 *
 * The API key is read from the environment variable named by `apiKeyEnv` (never from config files),
 * sent as `Authorization: Bearer …`, and never written to errors or logs.
 */
import { z } from "zod";
import { type GenerateOptions, type Prompt, requestSeedFor, type Sample, seedFor } from "../model/generate.js";
import type { EngineCapabilities, GenerationEngine } from "./engine.js";
import { GenerationJournal, type JournalEntry, journalKey } from "./journal.js";

export interface OpenAIServerCapabilities {
  n: boolean;
  seed: boolean;
  logprobs: boolean;
  topK: boolean;
  lora: boolean;
  srlmSeeds: boolean;
}

/**
 * What each server is known to accept on its OpenAI-compatible endpoints (defaults; override per
 * field). vLLM: all of them (its logprobs are the raw model's by default). llama.cpp's llama-server:
 * no n > 1 on chat ("only one completion choice"), so one request per sample; logprobs since late
 * 2024 (pre-sampling probabilities). Ollama: seed and chat logprobs in recent versions, no n; its
 * logprobs are off here because older versions drop the field silently. LoRA hot-loading by path:
 * vLLM (with --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True) and srlm serve (--enable-lora);
 * llama-server only rescales adapters given at its start, Ollama bakes adapters into a model.
 * srlm serve: everything, and its seeds (srlmSeeds).
 */
export const SERVER_CAPABILITIES = {
  vllm: { n: true, seed: true, logprobs: true, topK: true, lora: true, srlmSeeds: false },
  "llama.cpp": { n: false, seed: true, logprobs: true, topK: true, lora: false, srlmSeeds: false },
  ollama: { n: false, seed: true, logprobs: false, topK: false, lora: false, srlmSeeds: false },
  srlm: { n: true, seed: true, logprobs: true, topK: true, lora: true, srlmSeeds: true },
} as const satisfies Record<string, OpenAIServerCapabilities>;
export type OpenAIServerKind = keyof typeof SERVER_CAPABILITIES;

export interface OpenAIEngineOptions {
  /** Base URLs as OpenAI clients take them (`http://127.0.0.1:8000/v1`), one per server. */
  baseUrls: readonly string[];
  /** The `model` field of the requests (the base model's name; `useModel` switches it). */
  model: string;
  /** Name of the environment variable holding the API key (none: no Authorization header). */
  apiKeyEnv?: string;
  /** `completions` (default): the prompt as it is; `chat`: the prompt as one user message, the server's chat template applied. */
  mode?: "completions" | "chat";
  /** Default capabilities (default "vllm"). */
  server?: OpenAIServerKind;
  capabilities?: Partial<OpenAIServerCapabilities>;
  /** Per-request timeout (default 120 s). */
  timeoutMs?: number;
  /** Retries after the first attempt (default 6). */
  maxRetries?: number;
  /** Backoff before retry k (k = 0, 1, …): uniform in [0, min(maxMs, baseMs · 2^k)] (defaults 500 ms, 15 s). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Requests in flight at once, over all URLs (default 8 per URL). */
  maxConcurrency?: number;
  /** JSONL journal of completed samples (see above); none: nothing persisted. */
  journal?: string;
  /** One line per retry (default: none). Never contains the API key. */
  log?: (line: string) => void;
  /** For tests: the fetch, the clock's sleep, the jitter's random numbers and the environment. */
  fetch?: typeof fetch;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  random?: () => number;
  env?: Record<string, string | undefined>;
}

export class OpenAIEngineError extends Error {
  override name = "OpenAIEngineError";
}

/** A status that is not retried (4xx other than 408/429), or a retryable one on the last attempt. */
export class OpenAIHttpError extends OpenAIEngineError {
  override name = "OpenAIHttpError";
  constructor(
    readonly status: number,
    readonly url: string,
    readonly body: string,
  ) {
    super(`${url}: HTTP ${status}: ${body.slice(0, 500)}`);
  }
}

/** A response body that is not what the API promises; the message names the field. */
export class OpenAIResponseError extends OpenAIEngineError {
  override name = "OpenAIResponseError";
}

export class OpenAIRetriesExhaustedError extends OpenAIEngineError {
  override name = "OpenAIRetriesExhaustedError";
  constructor(
    readonly attempts: number,
    readonly lastError: Error,
  ) {
    super(`gave up after ${attempts} attempts: ${lastError.message}`);
  }
}

/** Thrown by `requireLogprobs`: a method needs log-probs the engine cannot give. */
export class EngineCapabilityError extends Error {
  override name = "EngineCapabilityError";
}

/** Refuse, with a clear error, to compute `what` (e.g. "CREAM's implicit reward") on an engine without log-probs. */
export function requireLogprobs(engine: GenerationEngine, what: string): void {
  if (!engine.capabilities.logprobs) {
    throw new EngineCapabilityError(
      `${what} needs the samples' log-probs, but engine "${engine.name}" does not return them (capabilities.logprobs is false)`,
    );
  }
}

/** Retried: request timeout, too many requests, and server errors. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/**
 * Backoff before retry `attempt` (0-based): full jitter, uniform in [0, min(maxMs, baseMs · 2^attempt)];
 * a server's Retry-After (ms) raises it to at least that, capped at maxMs.
 */
export function retryDelayMs(
  attempt: number,
  policy: { baseMs: number; maxMs: number },
  random: () => number,
  retryAfterMs?: number,
): number {
  const cap = Math.min(policy.maxMs, policy.baseMs * 2 ** attempt);
  const jittered = random() * cap;
  return retryAfterMs !== undefined && retryAfterMs > jittered ? Math.min(retryAfterMs, policy.maxMs) : jittered;
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(v: string | null, now = Date.now()): number | undefined {
  if (!v) return undefined;
  if (/^\d+(\.\d+)?$/.test(v.trim())) return Number(v) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

/** One request: prompt p, `n` samples (sample indices `first`…), with `seed` (or none). */
export interface RequestUnit {
  prompt: number;
  first: number;
  n: number;
  seed: number | undefined;
}

/** The sampling settings of a generate call, as sent. */
interface Settings {
  temperature: number;
  topP: number;
  topK: number;
  maxNewTokens: number;
  stopStrings: string[];
}

function settingsOf(opts: GenerateOptions): Settings {
  return {
    temperature: opts.temperature ?? 1,
    topP: opts.topP ?? 1,
    topK: opts.topK ?? 0,
    maxNewTokens: opts.maxNewTokens ?? 64,
    stopStrings: opts.stopStrings ?? [],
  };
}

/** The JSON body of one request (exported for tests). */
export function buildRequestBody(
  mode: "completions" | "chat",
  model: string,
  prompt: Prompt,
  unit: Pick<RequestUnit, "n" | "seed">,
  s: Settings,
  caps: Pick<OpenAIServerCapabilities, "logprobs">,
): Record<string, unknown> {
  const body: Record<string, unknown> = { model };
  if (mode === "chat") {
    if (typeof prompt !== "string") throw new OpenAIEngineError("chat mode needs text prompts (token-id prompts need mode: completions)");
    body.messages = [{ role: "user", content: prompt }];
  } else body.prompt = typeof prompt === "string" ? prompt : [...prompt];
  body.max_tokens = s.maxNewTokens;
  body.temperature = s.temperature;
  body.top_p = s.topP;
  if (s.topK > 0) body.top_k = s.topK;
  if (unit.n > 1) body.n = unit.n;
  if (unit.seed !== undefined) body.seed = unit.seed;
  if (s.stopStrings.length) body.stop = s.stopStrings;
  if (caps.logprobs) body.logprobs = mode === "chat" ? true : 1;
  return body;
}

const finish = z.string().nullish();
const CompletionResponse = z.object({
  choices: z.array(
    z.object({
      index: z.number().int().min(0),
      text: z.string(),
      finish_reason: finish,
      logprobs: z.object({ token_logprobs: z.array(z.number().nullable()) }).nullish(),
    }),
  ),
  usage: z.object({ completion_tokens: z.number() }).nullish(),
});
const ChatResponse = z.object({
  choices: z.array(
    z.object({
      index: z.number().int().min(0),
      message: z.object({ content: z.string().nullable() }),
      finish_reason: finish,
      logprobs: z.object({ content: z.array(z.object({ logprob: z.number() })).nullable() }).nullish(),
    }),
  ),
  usage: z.object({ completion_tokens: z.number() }).nullish(),
});

/** A request's samples from a response body: text, Σ logprob, finish reason; checks the choice count (exported for tests). */
export function parseChoices(
  mode: "completions" | "chat",
  json: unknown,
  n: number,
  caps: Pick<OpenAIServerCapabilities, "logprobs">,
  where: string,
): Omit<JournalEntry, "key">[] {
  const schema = mode === "chat" ? ChatResponse : CompletionResponse;
  const r = schema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new OpenAIResponseError(`${where}: response field ${issue.path.map(String).join(".") || "(body)"}: ${issue.message}`);
  }
  const choices = [...r.data.choices].sort((a, b) => a.index - b.index);
  if (choices.length !== n) {
    throw new OpenAIResponseError(
      `${where}: ${choices.length} choices for n = ${n}${n > 1 ? " (does the server support n? set capabilities.n: false)" : ""}`,
    );
  }
  const total = r.data.usage?.completion_tokens ?? 0;
  return choices.map((c, i) => {
    let logprob = Number.NaN;
    if (caps.logprobs) {
      const lps =
        "text" in c
          ? (c as z.infer<typeof CompletionResponse>["choices"][number]).logprobs?.token_logprobs
          : (c as z.infer<typeof ChatResponse>["choices"][number]).logprobs?.content?.map((t) => t.logprob);
      if (!lps) {
        throw new OpenAIResponseError(
          `${where}: response field choices.${i}.logprobs: missing although capabilities.logprobs is true (set it false for this server)`,
        );
      }
      logprob = lps.reduce<number>((a, x) => a + (x ?? Number.NaN), 0);
    }
    const text = "text" in c ? (c as { text: string }).text : ((c as { message: { content: string | null } }).message.content ?? "");
    return {
      text,
      logprob,
      finishReason: c.finish_reason === "length" ? "length" : "stop",
      // The server counts tokens per request: the count goes with its first sample, so sums stay exact.
      tokens: i === 0 ? total : 0,
    };
  });
}

const sleepFor = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });

/** Hide credentials a URL may carry (`https://user:secret@host`). */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.username || u.password) {
      u.username = "***";
      u.password = "";
    }
    return u.toString().replace(/\/$/, "");
  } catch {
    return "(invalid URL)";
  }
}

export interface OpenAIEngineStats {
  /** HTTP requests sent (retries included). */
  requests: number;
  retries: number;
  /** Samples taken from the journal instead of a request. */
  journalHits: number;
  /** Samples received from a server. */
  samples: number;
  /** LoRA adapters loaded on a server (each load on each URL counts). */
  loraLoads: number;
}

export class OpenAIEngine implements GenerationEngine {
  readonly name = "openai";
  readonly capabilities: EngineCapabilities;
  readonly server: OpenAIServerCapabilities;
  readonly stats: OpenAIEngineStats = { requests: 0, retries: 0, journalHits: 0, samples: 0, loraLoads: 0 };
  private readonly urls: { base: string; shown: string; inFlight: number; downUntil: number }[];
  private readonly mode: "completions" | "chat";
  private readonly headers: Record<string, string>;
  private readonly o: OpenAIEngineOptions;
  private journal: Promise<GenerationJournal> | undefined;
  private turn = 0;
  private modelName: string;
  /** LoRA adapters this engine may name: lora_name → lora_path (as the server sees the path). */
  private readonly loras = new Map<string, string>();
  /** Loads in flight, by URL and adapter, so that concurrent 404s wait for one load. */
  private readonly loading = new Map<string, Promise<void>>();

  constructor(opts: OpenAIEngineOptions) {
    this.o = opts;
    if (opts.baseUrls.length === 0) throw new OpenAIEngineError("baseUrls: at least one base URL is needed");
    this.urls = opts.baseUrls.map((b, i) => {
      let u: URL;
      try {
        u = new URL(b);
      } catch {
        throw new OpenAIEngineError(`baseUrls.${i}: not a URL`);
      }
      if (u.protocol !== "http:" && u.protocol !== "https:")
        throw new OpenAIEngineError(`baseUrls.${i}: must be http or https, got ${u.protocol}`);
      return { base: b.replace(/\/+$/, ""), shown: redact(b), inFlight: 0, downUntil: 0 };
    });
    if (!opts.model) throw new OpenAIEngineError("model: a model name is needed");
    this.modelName = opts.model;
    this.mode = opts.mode ?? "completions";
    if (this.mode !== "completions" && this.mode !== "chat")
      throw new OpenAIEngineError(`mode: "completions" or "chat", got ${JSON.stringify(this.mode)}`);
    const kind = opts.server ?? "vllm";
    if (!(kind in SERVER_CAPABILITIES))
      throw new OpenAIEngineError(`server: one of ${Object.keys(SERVER_CAPABILITIES).join(", ")}, got "${kind}"`);
    this.server = { ...SERVER_CAPABILITIES[kind], ...opts.capabilities };
    this.capabilities = { logprobs: this.server.logprobs, tokenIds: false, deterministic: this.server.seed };
    this.headers = { "content-type": "application/json" };
    if (opts.apiKeyEnv) {
      const key = (opts.env ?? process.env)[opts.apiKeyEnv];
      if (!key) throw new OpenAIEngineError(`apiKeyEnv: the environment variable ${opts.apiKeyEnv} is not set`);
      this.headers.authorization = `Bearer ${key}`;
    }
    for (const [k, v] of [
      ["timeoutMs", opts.timeoutMs],
      ["maxRetries", opts.maxRetries],
      ["maxConcurrency", opts.maxConcurrency],
    ] as const) {
      if (v !== undefined && !(Number.isInteger(v) && v >= (k === "maxRetries" ? 0 : 1)))
        throw new OpenAIEngineError(`${k}: must be a positive integer, got ${v}`);
    }
  }

  /** The model requests name now (the base model, or an adapter after `useModel`). */
  get model(): string {
    return this.modelName;
  }

  /** Name `model` in the requests of later `generate` calls: the base model or an adapter added with `addLoraAdapter`. */
  useModel(model: string): void {
    if (!model) throw new OpenAIEngineError("model: a model name is needed");
    this.modelName = model;
  }

  /**
   * Let requests name the LoRA adapter `name`, whose PEFT folder the servers read at `path` (vLLM's
   * `lora_name` and `lora_path`). Nothing is sent now: a server gets the adapter when a request for
   * it there returns 404, which also covers a server restarted since. `name` must identify the
   * adapter's contents: a server that already has `name` is not asked to load it again.
   */
  addLoraAdapter(name: string, path: string): void {
    if (!this.server.lora) {
      throw new OpenAIEngineError(
        `LoRA adapter "${name}": this server cannot hot-load adapters (capabilities.lora is false; vLLM and srlm serve can)`,
      );
    }
    this.loras.set(name, path);
  }

  /**
   * Forget the adapter and unload it from every server (`POST /unload_lora_adapter`). Failures are
   * logged, not thrown: unloading only frees server memory, and a server that restarted (404) has
   * nothing to unload.
   */
  async removeLoraAdapter(name: string): Promise<void> {
    if (!this.loras.delete(name)) return;
    await Promise.all(
      this.urls.map(async (url) => {
        try {
          const res = await this.post(url, "/unload_lora_adapter", { lora_name: name }, AbortSignal.timeout(this.o.timeoutMs ?? 120_000));
          if (!res.ok && res.status !== 404)
            this.o.log?.(`openai engine: unloading "${name}" from ${url.shown}: HTTP ${res.status}: ${res.text.slice(0, 200)}`);
        } catch (e) {
          this.o.log?.(`openai engine: unloading "${name}" from ${url.shown}: ${(e as Error).message}${causeOf(e)}`);
        }
      }),
    );
  }

  async generate(prompts: readonly Prompt[], opts: GenerateOptions = {}): Promise<Sample[][]> {
    if (opts.stopTokens?.length) {
      throw new OpenAIEngineError(
        "stopTokens: token ids cannot be sent to an OpenAI-compatible server; the server stops at its model's EOS (use stopStrings for more)",
      );
    }
    const s = settingsOf(opts);
    if (s.topK > 0 && !this.server.topK)
      throw new OpenAIEngineError(`topK: ${s.topK}, but this server does not take top_k (capabilities.topK is false)`);
    const n = opts.n ?? 1;
    if (!(Number.isInteger(n) && n >= 1)) throw new RangeError(`n must be an integer ≥ 1, got ${n}`);
    const seed = opts.seed ?? 0;
    if (this.mode === "chat") {
      const i = prompts.findIndex((p) => typeof p !== "string");
      if (i >= 0) throw new OpenAIEngineError(`prompt ${i}: chat mode needs text prompts (token ids need mode: completions)`);
    }
    const journal = this.o.journal ? await (this.journal ??= GenerationJournal.open(this.o.journal)) : undefined;
    // One model for the whole call, whatever useModel does meanwhile.
    const model = this.modelName;

    const units: RequestUnit[] = [];
    const caps = this.server;
    for (let p = 0; p < prompts.length; p++) {
      if (caps.seed && caps.srlmSeeds) {
        // srlm serve draws sample 0 of a request seeded r from seedFor(r, 0, 0): choose r so that it is the builtin's stream.
        for (let i = 0; i < n; i++) units.push({ prompt: p, first: i, n: 1, seed: requestSeedFor(seedFor(seed, p, i)) });
      } else if (caps.n && n > 1) units.push({ prompt: p, first: 0, n, seed: caps.seed ? seedFor(seed, p, 0) : undefined });
      else for (let i = 0; i < n; i++) units.push({ prompt: p, first: i, n: 1, seed: caps.seed ? seedFor(seed, p, i) : undefined });
    }
    const out: Sample[][] = prompts.map(() => new Array<Sample>(n));
    const keyOf = (u: RequestUnit, j: number) =>
      journalKey({ v: 1, model, mode: this.mode, prompt: prompts[u.prompt], ...s, n: u.n, seed: u.seed ?? null, sample: j });
    let done = 0;
    let tokens = 0;
    const place = (u: RequestUnit, e: Omit<JournalEntry, "key">[]) => {
      e.forEach((x, j) => {
        out[u.prompt][u.first + j] = {
          promptIndex: u.prompt,
          sampleIndex: u.first + j,
          ids: [],
          text: x.text,
          logprob: x.logprob,
          finishReason: x.finishReason,
        };
        tokens += x.tokens;
      });
      done += e.length;
      opts.onProgress?.({ samplesDone: done, samplesTotal: prompts.length * n, tokens });
    };
    const todo: RequestUnit[] = [];
    for (const u of units) {
      const hit = journal && Array.from({ length: u.n }, (_, j) => journal.get(keyOf(u, j)));
      if (hit?.every((e) => e !== undefined)) {
        this.stats.journalHits += u.n;
        place(u, hit as JournalEntry[]);
      } else todo.push(u);
    }

    // A pool of workers; the first permanent error stops the others (their completed units stay journaled).
    const stop = new AbortController();
    const signal = opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal;
    let next = 0;
    let failure: Error | undefined;
    const worker = async () => {
      while (next < todo.length && !signal.aborted) {
        const u = todo[next++];
        const body = buildRequestBody(this.mode, model, prompts[u.prompt], u, s, this.server);
        const got = await this.request(body, model, u.n, signal);
        this.stats.samples += got.length;
        if (journal) await journal.append(got.map((e, j) => ({ key: keyOf(u, j), ...e })));
        place(u, got);
      }
    };
    const workers = Math.min(todo.length, this.o.maxConcurrency ?? 8 * this.urls.length);
    await Promise.all(
      Array.from({ length: workers }, () =>
        worker().catch((e: Error) => {
          failure ??= e;
          stop.abort(e);
        }),
      ),
    );
    opts.signal?.throwIfAborted();
    if (failure) throw failure;
    return out;
  }

  /** The least busy URL that is not cooling down after a refused connection (round robin among equals). */
  private pick() {
    const now = Date.now();
    const up = this.urls.filter((u) => u.downUntil <= now);
    const pool = up.length ? up : this.urls;
    const start = this.turn++ % pool.length;
    let best = pool[start];
    for (let k = 1; k < pool.length; k++) {
      const u = pool[(start + k) % pool.length];
      if (u.inFlight < best.inFlight) best = u;
    }
    return best;
  }

  /** POST one body with timeout and bounded retries; returns its samples. */
  private async request(
    body: Record<string, unknown>,
    model: string,
    n: number,
    signal: AbortSignal,
  ): Promise<Omit<JournalEntry, "key">[]> {
    const path = this.mode === "chat" ? "/chat/completions" : "/completions";
    const maxRetries = this.o.maxRetries ?? 6;
    const policy = { baseMs: this.o.retryBaseMs ?? 500, maxMs: this.o.retryMaxMs ?? 15_000 };
    const fetchFn = this.o.fetch ?? fetch;
    const sleep = this.o.sleep ?? sleepFor;
    const random = this.o.random ?? Math.random;
    const timeoutMs = this.o.timeoutMs ?? 120_000;
    const text = JSON.stringify(body);
    let last: Error = new OpenAIEngineError("no attempt made");
    for (let attempt = 0; ; attempt++) {
      const url = this.pick();
      const where = `${url.shown}${path}`;
      let retryAfter: number | undefined;
      url.inFlight++;
      this.stats.requests++;
      const timeout = AbortSignal.timeout(timeoutMs);
      try {
        const res = await fetchFn(`${url.base}${path}`, {
          method: "POST",
          headers: this.headers,
          body: text,
          signal: AbortSignal.any([signal, timeout]),
        });
        const raw = await res.text();
        if (res.ok) {
          let json: unknown;
          try {
            json = JSON.parse(raw);
          } catch {
            throw new OpenAIResponseError(`${where}: response is not JSON: ${raw.slice(0, 200)}`);
          }
          return parseChoices(this.mode, json, n, this.server, where);
        }
        const err = new OpenAIHttpError(res.status, where, raw);
        if (res.status === 404 && this.loras.has(model) && attempt < maxRetries) {
          // The server does not know the adapter: not loaded there yet, or the server restarted. Load it, ask again.
          await this.ensureLora(url, model, signal);
          this.stats.retries++;
          continue;
        }
        if (!isRetryableStatus(res.status)) throw err;
        last = err;
        retryAfter = parseRetryAfter(res.headers.get("retry-after"));
      } catch (e) {
        if (signal.aborted) throw signal.reason ?? e;
        if (e instanceof OpenAIEngineError) throw e;
        // fetch failed: refused, reset, DNS, or our timeout. Avoid this URL for a while.
        last = new OpenAIEngineError(
          timeout.aborted ? `${where}: no response within ${timeoutMs} ms` : `${where}: ${(e as Error).message}${causeOf(e)}`,
        );
        url.downUntil = Date.now() + policy.baseMs * 2 ** Math.min(attempt, 6);
      } finally {
        url.inFlight--;
      }
      if (attempt >= maxRetries) throw new OpenAIRetriesExhaustedError(attempt + 1, last);
      const delay = retryDelayMs(attempt, policy, random, retryAfter);
      this.stats.retries++;
      this.o.log?.(`openai engine: ${last.message.slice(0, 200)}; retry ${attempt + 1}/${maxRetries} in ${delay.toFixed(0)} ms`);
      await sleep(delay, signal);
    }
  }

  /** POST a JSON body to `base + path` with the engine's headers; the response's status and text. */
  private async post(
    url: { base: string },
    path: string,
    body: Record<string, unknown>,
    signal: AbortSignal,
  ): Promise<{ ok: boolean; status: number; text: string }> {
    const res = await (this.o.fetch ?? fetch)(`${url.base}${path}`, {
      method: "POST",
      headers: this.headers,
      body: JSON.stringify(body),
      signal,
    });
    return { ok: res.ok, status: res.status, text: await res.text() };
  }

  /** Load adapter `name` on one URL, once however many requests found it missing there at the same time. */
  private ensureLora(url: { base: string; shown: string }, name: string, signal: AbortSignal): Promise<void> {
    const key = `${url.base}\u0000${name}`;
    let p = this.loading.get(key);
    if (!p) {
      p = this.loadLora(url, name, signal).finally(() => this.loading.delete(key));
      this.loading.set(key, p);
    }
    return p;
  }

  private async loadLora(url: { base: string; shown: string }, name: string, signal: AbortSignal): Promise<void> {
    const path = this.loras.get(name) as string;
    const timeoutMs = this.o.timeoutMs ?? 120_000;
    const res = await this.post(
      url,
      "/load_lora_adapter",
      { lora_name: name, lora_path: path },
      AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
    );
    // vLLM answers 400 "has already been loaded" to a second load of a name (another worker, or another run on this server).
    if (res.ok || (res.status === 400 && /already been loaded/.test(res.text))) {
      if (res.ok) this.stats.loraLoads++;
      this.o.log?.(`openai engine: LoRA adapter "${name}" ${res.ok ? "loaded" : "already loaded"} on ${url.shown}`);
      return;
    }
    const hint =
      res.status === 404 || res.status === 405
        ? " (is runtime LoRA loading on? srlm serve needs --enable-lora; vLLM needs --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True; and the server must be able to read lora_path)"
        : "";
    // The body first, cut short, so that the hint survives OpenAIHttpError's cut at 500 characters.
    throw new OpenAIHttpError(res.status, `${url.shown}/load_lora_adapter`, `${res.text.slice(0, 250)}${hint}`);
  }

  async dispose(): Promise<void> {
    const j = this.journal;
    this.journal = undefined;
    if (j) await (await j).close();
  }
}

function causeOf(e: unknown): string {
  const c = (e as { cause?: { code?: string; message?: string } }).cause;
  return c ? ` (${c.code ?? c.message})` : "";
}

/** An OpenAI-compatible engine (see the module comment). */
export function openaiEngine(opts: OpenAIEngineOptions): OpenAIEngine {
  return new OpenAIEngine(opts);
}
