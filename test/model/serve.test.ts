// `srlm serve`'s HTTP server in-process on a tiny model: the OpenAI routes, 4xx errors naming the
// field, samples equal to the builtin generate (same seeds, log-probs summing to Sample.logprob), the
// chat fallback, and batching of concurrent requests without changing any request's samples.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { Kernels } from "../../src/engine/kernels.js";
import { createKernels } from "../../src/engine/ort.js";
import { loadModelFolder } from "../../src/io/model-folder.js";
import { generate } from "../../src/model/generate.js";
import { createModel, type LlamaModel } from "../../src/model/llama.js";
import { SrlmServer } from "../../src/serve/server.js";
import { tinyTok, writeTinyModel } from "../serve-fixtures.js";

const tmp = mkdtempSync(join(tmpdir(), "srlm-serve-"));
let kernels: Kernels;
let model: LlamaModel;
let server: SrlmServer;

before(async () => {
  await writeTinyModel(join(tmp, "m"));
  const f = await loadModelFolder(join(tmp, "m"));
  kernels = await createKernels("reference");
  model = createModel(f.config, f.params, kernels);
  server = await SrlmServer.listen(
    { model, tokenizer: f.tokenizer, eosIds: f.eosIds },
    { port: 0, modelName: "tiny", maxTokensLimit: 40, maxBodyBytes: 4096, gatherMs: 20 },
  );
});
after(async () => {
  await server.close();
  await kernels.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

async function post(
  path: string,
  body: unknown,
): Promise<{
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are read field by field in the asserts
  json: any;
}> {
  const res = await fetch(`${server.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

test("routes: /v1/models, unknown model and route 404, wrong method 405", async () => {
  assert.equal(server.url, `http://127.0.0.1:${server.port}/v1`, "bound to loopback");
  const models = await (await fetch(`${server.url}/models`)).json();
  assert.deepEqual(
    models.data.map((m: { id: string; max_model_len: number }) => [m.id, m.max_model_len]),
    [["tiny", 96]],
  );
  assert.equal((await fetch(`${server.url}/models/other`)).status, 404);
  assert.equal((await fetch(`${server.url}/nope`)).status, 404);
  assert.equal((await fetch(`${server.url}/completions`)).status, 405);
  const r = await post("/completions", { model: "other", prompt: "ab" });
  assert.equal(r.status, 404);
  assert.equal(r.json.error.param, "model");
});

test("bad requests: 400 naming the field, 413 for a large body", async () => {
  const cases: [unknown, string, RegExp][] = [
    [{ model: "tiny" }, "prompt", /prompt/],
    [{ model: "tiny", prompt: "ab", temperature: "hot" }, "temperature", /temperature/],
    [{ model: "tiny", prompt: "ab", max_tokens: 41 }, "max_tokens", /over this server's limit of 40/],
    [{ model: "tiny", prompt: "ab", n: 0 }, "n", /n/],
    [{ model: "tiny", prompt: "ab", frequency_penalty: 0.5 }, "frequency_penalty", /not supported/],
    [{ model: "tiny", prompt: "ab", stream: true }, "stream", /streaming is not implemented/],
    [{ model: "tiny", prompt: "AB" }, "prompt", /cannot be tokenized/],
    [{ model: "tiny", prompt: "a".repeat(200) }, "prompt", /context is 96/],
    [{ model: "tiny", messages: [{ role: "robot", content: "x" }] }, "messages.0.role", /messages\.0\.role/],
  ];
  for (const [body, param, msg] of cases) {
    const path = "messages" in (body as object) ? "/chat/completions" : "/completions";
    const r = await post(path, body);
    assert.equal(r.status, 400, `${JSON.stringify(body).slice(0, 60)}: status`);
    assert.equal(r.json.error.param, param, `${JSON.stringify(body).slice(0, 60)}: param`);
    assert.match(r.json.error.message, msg);
  }
  assert.equal((await post("/completions", "{nope")).status, 400, "invalid JSON");
  const big = await post("/completions", { model: "tiny", prompt: "a", pad: "x".repeat(5000) });
  assert.equal(big.status, 413);
});

test("completions equal the builtin generate: prompts, n, seed, log-probs summing to Sample.logprob", async () => {
  const prompts = ["ab=", "hello;", "q"];
  const opts = { n: 3, seed: 11, temperature: 0.8, topP: 0.9, maxNewTokens: 24, stopStrings: [";"] };
  const want = await generate(model, tinyTok, prompts, { ...opts, stopTokens: [tinyTok.eosId] });
  const r = await post("/completions", {
    model: "tiny",
    prompt: prompts,
    n: 3,
    seed: 11,
    temperature: 0.8,
    top_p: 0.9,
    max_tokens: 24,
    stop: ";",
    logprobs: 2,
  });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.equal(r.json.choices.length, 9);
  for (const c of r.json.choices) {
    const w = want[Math.floor(c.index / 3)][c.index % 3];
    assert.equal(c.text, w.text, `choice ${c.index} text`);
    assert.equal(c.finish_reason, w.finishReason, `choice ${c.index} finish`);
    assert.equal(c.logprobs.token_logprobs.length, w.ids.length, `choice ${c.index}: one log-prob per sampled token`);
    const sum = c.logprobs.token_logprobs.reduce((a: number, x: number) => a + x, 0);
    assert.equal(sum, w.logprob, `choice ${c.index}: Σ token log-probs = Sample.logprob`);
    for (const [t, top] of c.logprobs.top_logprobs.entries())
      assert.equal(Object.keys(top).length <= 2 && Object.keys(top).length >= 1, true, `top ${t}`);
  }
  assert.equal(
    r.json.usage.completion_tokens,
    want.flat().reduce((a, s) => a + s.ids.length, 0),
    "usage",
  );
});

test("chat without a template: a lone user message is the prompt as it is", async () => {
  const body = { model: "tiny", seed: 5, max_tokens: 16, temperature: 0.7 };
  const chat = await post("/chat/completions", { ...body, messages: [{ role: "user", content: "ab=" }], logprobs: true });
  const comp = await post("/completions", { ...body, prompt: "ab=", logprobs: 0 });
  assert.equal(chat.status, 200, JSON.stringify(chat.json));
  assert.equal(chat.json.choices[0].message.content, comp.json.choices[0].text);
  assert.deepEqual(
    chat.json.choices[0].logprobs.content.map((t: { logprob: number }) => t.logprob),
    comp.json.choices[0].logprobs.token_logprobs,
  );
});

test("concurrent requests are batched, and each gets the samples it gets alone", async () => {
  const prompts = Array.from({ length: 12 }, (_, i) => `a${i}=`);
  const body = (p: string, seed: number) => ({ model: "tiny", prompt: p, seed, n: 2, max_tokens: 12, temperature: 1 });
  const alone = [];
  for (const [i, p] of prompts.entries())
    alone.push((await post("/completions", body(p, i))).json.choices.map((c: { text: string }) => c.text));
  const before = { ...server.stats };
  const together = await Promise.all(
    prompts.map(async (p, i) => (await post("/completions", body(p, i))).json.choices.map((c: { text: string }) => c.text)),
  );
  assert.deepEqual(together, alone, "same samples batched or alone");
  const batches = server.stats.batches - before.batches;
  assert.ok(batches < prompts.length, `12 concurrent requests decoded in ${batches} generate calls`);
});
