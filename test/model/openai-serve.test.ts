// The OpenAI-compatible engine against `srlm serve` as a child process: a run during which the server
// is SIGKILLed and restarted returns every sample once, identical to the builtin generate with the
// same seed (server kind srlm: one request per sample, seeded so that the server draws the builtin's
// stream, requestSeedFor); and a load test (64 requests, at most 16 in flight) that reports throughput, loses no
// request, and ends with a graceful SIGTERM.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { openaiEngine } from "../../src/engine/openai.js";
import { createKernels } from "../../src/engine/ort.js";
import { loadModelFolder } from "../../src/io/model-folder.js";
import { generate } from "../../src/model/generate.js";
import { createModel } from "../../src/model/llama.js";
import { type ServeChild, startServe, writeTinyModel } from "../serve-fixtures.js";

const tmp = mkdtempSync(join(tmpdir(), "srlm-openai-serve-"));
const dir = join(tmp, "tiny");
await writeTinyModel(dir);
const children: ServeChild[] = [];
after(() => {
  for (const c of children) c.proc.kill("SIGKILL");
  rmSync(tmp, { recursive: true, force: true });
});

test("server SIGKILLed and restarted mid-run: every sample once, identical to the builtin generate", async () => {
  const first = await startServe(dir, ["--port", "0", "--kernels", "reference", "--quiet", "--model-name", "tiny"]);
  children.push(first);
  const prompts = Array.from({ length: 24 }, (_, i) => `q${i}=${"ab".repeat(i % 4)}`);
  const opts = { n: 2, seed: 7, temperature: 0.9, topP: 0.95, maxNewTokens: 24, stopStrings: [";"] };
  const journal = join(tmp, "journal.jsonl");
  const engine = openaiEngine({
    baseUrls: [first.url],
    model: "tiny",
    server: "srlm",
    // srlm's seeds (server "srlm"): one request per sample, 48 requests.
    journal,
    maxConcurrency: 4,
    retryBaseMs: 100,
    retryMaxMs: 1000,
    maxRetries: 40,
  });
  let killedAt = -1;
  let restarted: Promise<ServeChild> | undefined;
  const out = await engine.generate(prompts, {
    ...opts,
    onProgress: ({ samplesDone }) => {
      if (killedAt < 0 && samplesDone >= 16) {
        killedAt = samplesDone;
        first.proc.kill("SIGKILL");
        restarted = first.exited.then(() =>
          startServe(dir, ["--port", String(first.port), "--kernels", "reference", "--quiet", "--model-name", "tiny"]),
        );
        restarted.then((c) => children.push(c));
      }
    },
  });
  await engine.dispose();
  assert.ok(killedAt >= 16 && killedAt < 48, `killed after ${killedAt} of 48 samples`);
  assert.ok(engine.stats.retries > 0, "requests were retried while the server was down");
  const second = await (restarted as Promise<ServeChild>);

  // The same samples in-process, in one call: sample i of prompt p draws from seedFor(7, p, i) in both.
  const f = await loadModelFolder(dir);
  const kernels = await createKernels("reference");
  try {
    const model = createModel(f.config, f.params, kernels);
    const builtin = await generate(model, f.tokenizer, prompts, { ...opts, stopTokens: f.eosIds });
    for (const p of prompts.keys()) {
      for (let i = 0; i < 2; i++) {
        const want = builtin[p][i];
        const got = out[p][i];
        assert.deepEqual(
          [got.text, got.logprob, got.finishReason],
          [want.text, want.logprob, want.finishReason],
          `prompt ${p} sample ${i}`,
        );
      }
    }
  } finally {
    await kernels.dispose();
  }
  const keys = readFileSync(journal, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l).key);
  assert.equal(keys.length, 48, "48 journal lines");
  assert.equal(new Set(keys).size, 48, "no sample journaled twice");

  // A restarted engine (same journal) redoes none of them.
  const again = openaiEngine({ baseUrls: [second.url], model: "tiny", server: "srlm", journal });
  const replay = await again.generate(prompts, opts);
  await again.dispose();
  assert.equal(again.stats.requests, 0, "no request after a restart of the engine");
  assert.deepEqual(replay, out);
  second.proc.kill("SIGTERM");
  assert.equal(await second.exited, 0, "graceful exit on SIGTERM");
});

test("load: 64 requests, at most 16 in flight, none lost; throughput reported", async (t) => {
  const server = await startServe(dir, ["--port", "0", "--model-name", "tiny"]);
  children.push(server);
  // Without srlm's per-sample seeds: one request of n = 2 per prompt.
  const engine = openaiEngine({
    baseUrls: [server.url],
    model: "tiny",
    server: "srlm",
    capabilities: { srlmSeeds: false },
    maxConcurrency: 16,
    maxRetries: 0,
  });
  const prompts = Array.from({ length: 64 }, (_, i) => `load ${i}=`);
  let tokens = 0;
  const t0 = performance.now();
  const out = await engine.generate(prompts, {
    n: 2,
    seed: 1,
    temperature: 1,
    maxNewTokens: 32,
    onProgress: (p) => {
      tokens = p.tokens;
    },
  });
  const s = (performance.now() - t0) / 1000;
  assert.equal(out.flat().filter((x) => x !== undefined).length, 128, "every sample returned");
  assert.equal(engine.stats.requests, 64, "64 requests, none retried");
  server.proc.kill("SIGTERM");
  assert.equal(await server.exited, 0, "graceful exit on SIGTERM");
  const stats = /served (\d+) requests \((\d+) errors\), (\d+) samples, (\d+) tokens, (\d+) batches/.exec(server.stderr());
  assert.ok(stats, `final stats line in: ${server.stderr().slice(-300)}`);
  assert.deepEqual([Number(stats[1]), Number(stats[2]), Number(stats[3])], [64, 0, 128], "the server answered all 64, no errors");
  const line = `load: 64 requests (n 2, ≤ 32 tokens) in ${s.toFixed(2)} s: ${(64 / s).toFixed(1)} req/s, ${(tokens / s).toFixed(0)} tokens/s; server batches ${stats[5]}`;
  t.diagnostic(line);
  console.log(line);
});
