// The OpenAI-compatible engine against a fake fetch: request bodies, the n and logprobs fallbacks,
// retries with backoff (429, 5xx, connection errors; 4xx fails at once), response checks naming the
// field, the API key from the environment only, load spreading, and the journal's replay.
import assert from "node:assert/strict";
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { GenerationJournal } from "../../src/engine/journal.js";
import {
  buildRequestBody,
  OpenAIHttpError,
  OpenAIResponseError,
  OpenAIRetriesExhaustedError,
  openaiEngine,
  parseRetryAfter,
  retryDelayMs,
} from "../../src/engine/openai.js";
import { seedFor } from "../../src/model/generate.js";

const tmp = mkdtempSync(join(tmpdir(), "srlm-openai-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const ALL = { n: true, seed: true, logprobs: true, topK: true };
const S = { temperature: 0.7, topP: 0.9, topK: 0, maxNewTokens: 32, stopStrings: ["\n"] };

type Reply = { status?: number; body?: unknown; headers?: Record<string, string> } | Error;

/** A fetch that answers from `reply(call)` and records each call's URL and body. A completion's text names its seed. */
interface ReqBody {
  prompt?: unknown;
  messages?: { content: string }[];
  seed?: number;
  n?: number;
  logprobs?: unknown;
}

function fakeFetch(reply: (body: ReqBody, url: string, call: number) => Reply = () => ({})) {
  const calls: { url: string; body: ReqBody; headers: Record<string, string> }[] = [];
  const fn = (async (url: string, init: RequestInit) => {
    const body = JSON.parse(init.body as string) as ReqBody;
    calls.push({ url, body, headers: init.headers as Record<string, string> });
    const r = reply(body, url, calls.length - 1);
    if (r instanceof Error) throw r;
    const n = body.n ?? 1;
    const text = (i: number) => `${body.prompt ?? body.messages?.[0].content}|${body.seed}|${i}`;
    const json = r.body ?? {
      choices: Array.from({ length: n }, (_, k) => {
        const i = n - 1 - k; // out of order on purpose
        return body.messages
          ? { index: i, message: { role: "assistant", content: text(i) }, finish_reason: "length", logprobs: null }
          : { index: i, text: text(i), finish_reason: "length", logprobs: { token_logprobs: [-0.5, -0.25] } };
      }),
      usage: { completion_tokens: 2 * n },
    };
    return new Response(JSON.stringify(json), { status: r.status ?? 200, headers: r.headers });
  }) as unknown as typeof fetch;
  return { fn, calls };
}

const noSleep = { sleep: async () => {}, random: () => 0.5 };

test("request bodies: completions and chat, n only above 1, logprobs and top_k when declared", () => {
  const c = buildRequestBody("completions", "m", "hi", { n: 4, seed: 7 }, { ...S, topK: 5 }, ALL);
  assert.deepEqual(c, {
    model: "m",
    prompt: "hi",
    max_tokens: 32,
    temperature: 0.7,
    top_p: 0.9,
    top_k: 5,
    n: 4,
    seed: 7,
    stop: ["\n"],
    logprobs: 1,
  });
  const chat = buildRequestBody("chat", "m", "hi", { n: 1, seed: undefined }, S, { ...ALL, logprobs: false });
  assert.deepEqual(chat, {
    model: "m",
    messages: [{ role: "user", content: "hi" }],
    max_tokens: 32,
    temperature: 0.7,
    top_p: 0.9,
    stop: ["\n"],
  });
  assert.deepEqual(buildRequestBody("completions", "m", [1, 2], { n: 1, seed: 1 }, S, ALL).prompt, [1, 2], "token-id prompt");
  assert.throws(() => buildRequestBody("chat", "m", [1, 2], { n: 1, seed: 1 }, S, ALL), /chat mode needs text prompts/);
});

test("backoff: full jitter under an exponential cap, Retry-After honoured up to the cap", () => {
  const p = { baseMs: 100, maxMs: 1000 };
  assert.equal(
    retryDelayMs(0, p, () => 1),
    100,
  );
  assert.equal(
    retryDelayMs(3, p, () => 0.5),
    400,
  );
  assert.equal(
    retryDelayMs(10, p, () => 1),
    1000,
    "capped",
  );
  assert.equal(
    retryDelayMs(0, p, () => 0, 700),
    700,
    "Retry-After raises it",
  );
  assert.equal(
    retryDelayMs(0, p, () => 0, 5000),
    1000,
    "Retry-After capped",
  );
  assert.equal(parseRetryAfter("2"), 2000);
  assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4000), 6000);
  assert.equal(parseRetryAfter(null), undefined);
});

test("n: one request of n samples when declared, else one request per sample with seedFor seeds", async () => {
  const a = fakeFetch();
  const withN = openaiEngine({ baseUrls: ["http://h:1/v1"], model: "m", capabilities: ALL, fetch: a.fn, ...noSleep });
  const [[x0, x1, x2]] = await withN.generate(["p"], { n: 3, seed: 4 });
  assert.equal(a.calls.length, 1);
  assert.equal(a.calls[0].url, "http://h:1/v1/completions");
  assert.deepEqual(
    [x0.text, x1.text, x2.text],
    [0, 1, 2].map((i) => `p|${seedFor(4, 0, 0)}|${i}`),
    "choices placed by index",
  );
  assert.equal(x0.logprob, -0.75, "Σ token log-probs");
  assert.deepEqual([x2.promptIndex, x2.sampleIndex, x2.finishReason, x2.ids], [0, 2, "length", []]);

  const b = fakeFetch();
  const perSample = openaiEngine({ baseUrls: ["http://h:1/v1"], model: "m", server: "llama.cpp", fetch: b.fn, ...noSleep });
  const out = await perSample.generate(["p", "q"], { n: 2, seed: 4 });
  assert.equal(b.calls.length, 4, "2 prompts × 2 samples");
  assert.deepEqual(
    out.map((row) => row.map((s) => s.text)),
    [0, 1].map((p) => [0, 1].map((i) => `${["p", "q"][p]}|${seedFor(4, p, i)}|0`)),
  );
  assert.ok(
    b.calls.every((c) => c.body.n === undefined),
    "no n sent",
  );

  const c = fakeFetch();
  const noLogprobs = openaiEngine({ baseUrls: ["http://h:1/v1"], model: "m", server: "ollama", mode: "chat", fetch: c.fn, ...noSleep });
  const [[y]] = await noLogprobs.generate(["p"], {});
  assert.ok(Number.isNaN(y.logprob), "no logprobs capability: NaN");
  assert.equal(noLogprobs.capabilities.logprobs, false);
  assert.equal(c.calls[0].url, "http://h:1/v1/chat/completions");
  assert.equal(c.calls[0].body.logprobs, undefined);
});

test("retries: 429, 503 and a refused connection are retried with backoff; a 400 fails at once", async () => {
  const refused = Object.assign(new TypeError("fetch failed"), { cause: { code: "ECONNREFUSED" } });
  const replies: Reply[] = [{ status: 429, body: {}, headers: { "retry-after": "1" } }, { status: 503, body: {} }, refused, {}];
  const f = fakeFetch((_b, _u, i) => replies[i]);
  const delays: number[] = [];
  const log: string[] = [];
  const e = openaiEngine({
    baseUrls: ["http://h:1/v1"],
    model: "m",
    capabilities: ALL,
    fetch: f.fn,
    random: () => 0.5,
    sleep: async (ms) => void delays.push(ms),
    retryBaseMs: 100,
    log: (l) => log.push(l),
  });
  const [[s]] = await e.generate(["p"], { seed: 1 });
  assert.equal(s.text, `p|${seedFor(1, 0, 0)}|0`);
  assert.equal(f.calls.length, 4);
  assert.deepEqual(delays, [1000, 100, 200], "Retry-After 1 s, then 0.5 × 100 × 2^k");
  assert.equal(e.stats.retries, 3);
  assert.match(log[2], /ECONNREFUSED/);

  const bad = fakeFetch(() => ({ status: 400, body: { error: { message: "max_tokens: too big" } } }));
  const e2 = openaiEngine({ baseUrls: ["http://h:1/v1"], model: "m", fetch: bad.fn, ...noSleep });
  await assert.rejects(
    e2.generate(["p"]),
    (err: Error) => err instanceof OpenAIHttpError && err.status === 400 && /too big/.test(err.message),
  );
  assert.equal(bad.calls.length, 1, "not retried");

  const down = fakeFetch(() => refused);
  const e3 = openaiEngine({ baseUrls: ["http://h:1/v1"], model: "m", maxRetries: 2, fetch: down.fn, ...noSleep });
  await assert.rejects(e3.generate(["p"]), (err: Error) => err instanceof OpenAIRetriesExhaustedError && err.attempts === 3);
  assert.equal(down.calls.length, 3, "first attempt + 2 retries");
});

test("responses are checked: the choice count and declared logprobs", async () => {
  const few = fakeFetch(() => ({ body: { choices: [{ index: 0, text: "x", finish_reason: "stop" }] } }));
  const e = openaiEngine({ baseUrls: ["http://h:1/v1"], model: "m", capabilities: { ...ALL, logprobs: false }, fetch: few.fn, ...noSleep });
  await assert.rejects(
    e.generate(["p"], { n: 2 }),
    (err: Error) => err instanceof OpenAIResponseError && /1 choices for n = 2.*capabilities\.n/.test(err.message),
  );
  const e2 = openaiEngine({ baseUrls: ["http://h:1/v1"], model: "m", capabilities: ALL, fetch: few.fn, ...noSleep });
  await assert.rejects(e2.generate(["p"]), /choices\.0\.logprobs: missing although capabilities\.logprobs is true/);
  const junk = fakeFetch(() => ({ body: { choices: [{ index: 0 }] } }));
  const e3 = openaiEngine({ baseUrls: ["http://h:1/v1"], model: "m", fetch: junk.fn, ...noSleep });
  await assert.rejects(e3.generate(["p"]), /response field choices\.0\.text/);
});

test("API key from the named environment variable only, never in errors", async () => {
  assert.throws(
    () => openaiEngine({ baseUrls: ["http://h:1/v1"], model: "m", apiKeyEnv: "SRLM_TEST_KEY", env: {} }),
    /SRLM_TEST_KEY is not set/,
  );
  const f = fakeFetch(() => ({ status: 401, body: { error: { message: "bad key" } } }));
  const e = openaiEngine({
    baseUrls: ["http://u:pw@h:1/v1"],
    model: "m",
    apiKeyEnv: "K",
    env: { K: "sk-secret" },
    fetch: f.fn,
    ...noSleep,
  });
  assert.equal(f.calls.length, 0);
  const err = await e.generate(["p"]).catch((x: Error) => x);
  assert.equal(f.calls[0].headers.authorization, "Bearer sk-secret");
  assert.ok(err instanceof OpenAIHttpError);
  assert.ok(!/sk-secret|pw/.test(err.message), `no secret in: ${err.message}`);
});

test("load spreading over base URLs, and a refusing URL is avoided", async () => {
  const f = fakeFetch((_b, url) => (url.startsWith("http://bad") ? new TypeError("fetch failed") : {}));
  const e = openaiEngine({
    baseUrls: ["http://a:1/v1", "http://b:1/v1", "http://bad:1/v1"],
    model: "m",
    capabilities: { ...ALL, n: false },
    maxConcurrency: 6,
    fetch: f.fn,
    ...noSleep,
  });
  const out = await e.generate(
    Array.from({ length: 30 }, (_, i) => `p${i}`),
    { n: 2 },
  );
  assert.equal(out.flat().length, 60, "every sample returned");
  const per = (h: string) => f.calls.filter((c) => c.url.startsWith(`http://${h}:`)).length;
  assert.ok(per("a") >= 20 && per("b") >= 20, `spread: a ${per("a")}, b ${per("b")}`);
  // Only its share of the first concurrent round (6 requests over 3 URLs) reaches it before it is avoided.
  assert.ok(per("bad") <= 3, `the refusing URL was tried ${per("bad")} times`);
});

test("journal: a second engine replays completed samples and requests only the missing ones", async () => {
  const path = join(tmp, "j.jsonl");
  const f1 = fakeFetch((_b, _u, i) => (i >= 5 ? { status: 400, body: {} } : {}));
  const e1 = openaiEngine({
    baseUrls: ["http://h:1/v1"],
    model: "m",
    server: "llama.cpp",
    journal: path,
    maxConcurrency: 1,
    fetch: f1.fn,
    ...noSleep,
  });
  const prompts = ["a", "b", "c", "d"];
  await assert.rejects(e1.generate(prompts, { n: 2, seed: 9 }), OpenAIHttpError);
  await e1.dispose();
  assert.equal(readFileSync(path, "utf8").trim().split("\n").length, 5, "five samples journaled before the failure");

  appendFileSync(path, '{"key":"torn'); // a torn last line (power loss mid-write)
  const f2 = fakeFetch();
  const e2 = openaiEngine({ baseUrls: ["http://h:1/v1"], model: "m", server: "llama.cpp", journal: path, fetch: f2.fn, ...noSleep });
  const out = await e2.generate(prompts, { n: 2, seed: 9 });
  await e2.dispose();
  assert.equal(f2.calls.length, 3, "only the 3 missing samples requested");
  assert.equal(e2.stats.journalHits, 5);
  assert.deepEqual(
    out.map((row, p) => row.map((s, i) => s.text === `${prompts[p]}|${seedFor(9, p, i)}|0`)),
    prompts.map(() => [true, true]),
  );
  const lines = readFileSync(path, "utf8").split("\n");
  assert.equal(lines.pop(), "", "ends on a line boundary");
  assert.equal(new Set(lines.map((l) => JSON.parse(l).key)).size, 8, "8 distinct samples, none twice");

  const f3 = fakeFetch();
  const e3 = openaiEngine({ baseUrls: ["http://h:1/v1"], model: "m", server: "llama.cpp", journal: path, fetch: f3.fn, ...noSleep });
  await e3.generate(prompts, { n: 2, seed: 10 });
  await e3.dispose();
  assert.equal(f3.calls.length, 8, "another seed is another key");

  writeFileSync(join(tmp, "bad.jsonl"), "not json\n");
  await assert.rejects(GenerationJournal.open(join(tmp, "bad.jsonl")), /bad\.jsonl:1: not a JSON line/);
});
