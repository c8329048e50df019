// The OpenAI engine's LoRA hot-loading (vLLM's runtime API) and srlm's seeds, on a fake fetch: an
// adapter is loaded where a request for it gets 404 (first use, or a restarted server) and the request
// is sent again; concurrent 404s share one load per URL; "already loaded" counts as loaded; a server
// without the routes gets an error that says how to turn them on; unloading goes to every URL.
// With server kind srlm, sample i of prompt p is requested with the seed whose stream is seedFor(seed, p, i).
import assert from "node:assert/strict";
import { test } from "node:test";
import { OpenAIEngineError, OpenAIHttpError, openaiEngine } from "../../src/engine/openai.js";
import { requestSeedFor, seedFor } from "../../src/model/generate.js";

interface Call {
  url: string;
  body: Record<string, unknown>;
}

/** A fake server per URL: models it knows, LoRA routes, and completions whose text names the model and seed. */
function fakeServers(o: { loraRoutes?: boolean } = {}) {
  const calls: Call[] = [];
  const known = new Map<string, Set<string>>(); // URL → loaded adapter names
  const fn = (async (url: string, init: RequestInit) => {
    const body = JSON.parse(init.body as string) as Record<string, unknown>;
    calls.push({ url, body });
    const base = url.slice(0, url.lastIndexOf("/"));
    const loaded = known.get(base) ?? new Set<string>();
    known.set(base, loaded);
    const json = (status: number, x: unknown) => new Response(JSON.stringify(x), { status });
    if (url.endsWith("/load_lora_adapter") || url.endsWith("/unload_lora_adapter")) {
      if (o.loraRoutes === false) return json(404, { detail: "Not Found" });
      const name = body.lora_name as string;
      if (url.endsWith("/unload_lora_adapter")) {
        return loaded.delete(name) ? json(200, "ok") : json(404, { error: { message: `The lora adapter '${name}' cannot be found.` } });
      }
      if (loaded.has(name)) return json(400, { error: { message: `The lora adapter '${name}' has already been loaded.` } });
      loaded.add(name);
      return json(200, `Success: LoRA adapter '${name}' added successfully.`);
    }
    const model = body.model as string;
    if (model !== "base" && !loaded.has(model)) return json(404, { error: { message: `The model \`${model}\` does not exist.` } });
    return json(200, {
      choices: [{ index: 0, text: `${model}|${body.seed}`, finish_reason: "stop", logprobs: { token_logprobs: [-1] } }],
    });
  }) as unknown as typeof fetch;
  return { fn, calls, known };
}

const noSleep = { sleep: async () => {}, random: () => 0 };

test("srlm seeds: one request per sample, seeded so that srlm serve draws seedFor(seed, p, i)", async () => {
  const f = fakeServers();
  const e = openaiEngine({ baseUrls: ["http://a/v1"], model: "base", server: "srlm", fetch: f.fn, ...noSleep });
  const out = await e.generate(["p", "q"], { n: 3, seed: 5 });
  assert.equal(f.calls.length, 6, "2 prompts × 3 samples, no n");
  assert.ok(f.calls.every((c) => c.body.n === undefined));
  for (const p of [0, 1]) {
    for (const i of [0, 1, 2]) {
      const sent = Number(out[p][i].text.split("|")[1]);
      assert.equal(sent, requestSeedFor(seedFor(5, p, i)));
      assert.equal(seedFor(sent, 0, 0), seedFor(5, p, i), "the server's stream for its only sample is the builtin's");
    }
  }
  for (const x of [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 123456789]) assert.equal(seedFor(requestSeedFor(x), 0, 0), x);
});

test("LoRA: loaded on each URL at its first 404, once for concurrent requests, and again after a restart", async () => {
  const f = fakeServers();
  const log: string[] = [];
  const e = openaiEngine({
    baseUrls: ["http://a/v1", "http://b/v1"],
    model: "base",
    server: "vllm",
    fetch: f.fn,
    maxConcurrency: 8,
    log: (l) => log.push(l),
    ...noSleep,
  });
  e.addLoraAdapter("m2", "/runs/x/iter-1/train/final");
  e.useModel("m2");
  assert.equal(e.model, "m2");
  const out = await e.generate(
    Array.from({ length: 8 }, (_, i) => `p${i}`),
    { seed: 1 },
  );
  assert.ok(
    out.flat().every((s) => s.text.startsWith("m2|")),
    "every sample from the adapter",
  );
  const loads = f.calls.filter((c) => c.url.endsWith("/load_lora_adapter"));
  assert.deepEqual(loads.map((c) => c.url).sort(), ["http://a/v1/load_lora_adapter", "http://b/v1/load_lora_adapter"], "one load per URL");
  assert.deepEqual(loads[0].body, { lora_name: "m2", lora_path: "/runs/x/iter-1/train/final" });
  assert.equal(e.stats.loraLoads, 2);

  // Server a restarts: it forgets the adapter; the next request there loads it again.
  f.known.get("http://a/v1")?.clear();
  const before = f.calls.length;
  await e.generate(["p", "q", "r", "s"], { seed: 2 });
  const reloads = f.calls.slice(before).filter((c) => c.url.endsWith("/load_lora_adapter"));
  assert.deepEqual(
    reloads.map((c) => c.url),
    ["http://a/v1/load_lora_adapter"],
  );

  // Back to the base model: no adapter needed; removing the adapter unloads it everywhere (404s ignored).
  e.useModel("base");
  await e.generate(["p"], { seed: 3 });
  f.known.get("http://b/v1")?.clear();
  await e.removeLoraAdapter("m2");
  const unloads = f.calls.filter((c) => c.url.endsWith("/unload_lora_adapter"));
  assert.deepEqual(unloads.map((c) => c.url).sort(), ["http://a/v1/unload_lora_adapter", "http://b/v1/unload_lora_adapter"]);
  assert.equal(f.known.get("http://a/v1")?.size, 0);
  assert.ok(!log.some((l) => /unloading "m2"/.test(l)), "a 404 on unload (nothing to unload) is not reported");
  // An adapter the engine no longer has: its 404 fails at once.
  e.useModel("m2");
  await assert.rejects(e.generate(["p"], { seed: 4 }), (err: Error) => err instanceof OpenAIHttpError && err.status === 404);
});

test("LoRA: 'already been loaded' counts as loaded; a server without the routes says how to enable them; kinds without LoRA refuse", async () => {
  const f = fakeServers();
  f.known.set("http://a/v1", new Set());
  // Another client loaded it meanwhile: the model 404s once (stale), the load answers 400 "already loaded".
  let first = true;
  const racing = (async (url: string, init: RequestInit) => {
    if (url.endsWith("/completions") && first) {
      first = false;
      f.known.get("http://a/v1")?.add("m2");
      return new Response(JSON.stringify({ error: { message: "The model `m2` does not exist." } }), { status: 404 });
    }
    return f.fn(url, init);
  }) as unknown as typeof fetch;
  const e2 = openaiEngine({ baseUrls: ["http://a/v1"], model: "base", fetch: racing, ...noSleep });
  e2.addLoraAdapter("m2", "/p");
  e2.useModel("m2");
  const [[s]] = await e2.generate(["p"], { seed: 1 });
  assert.match(s.text, /^m2\|/);
  assert.equal(e2.stats.loraLoads, 0, "not loaded by this engine");

  const off = fakeServers({ loraRoutes: false });
  const e3 = openaiEngine({ baseUrls: ["http://a/v1"], model: "base", fetch: off.fn, ...noSleep });
  e3.addLoraAdapter("m2", "/p");
  e3.useModel("m2");
  await assert.rejects(e3.generate(["p"], { seed: 1 }), (err: Error) => {
    assert.ok(err instanceof OpenAIHttpError && err.status === 404);
    assert.match(err.message, /load_lora_adapter: HTTP 404/);
    assert.match(err.message, /--enable-lora/);
    assert.match(err.message, /VLLM_ALLOW_RUNTIME_LORA_UPDATING=True/);
    return true;
  });

  for (const server of ["llama.cpp", "ollama"] as const) {
    const x = openaiEngine({ baseUrls: ["http://a/v1"], model: "base", server, fetch: f.fn });
    assert.throws(
      () => x.addLoraAdapter("m2", "/p"),
      (err: Error) => err instanceof OpenAIEngineError && /capabilities\.lora is false/.test(err.message),
    );
  }
});
