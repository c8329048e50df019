// The run config's engine openai and its `openai:` block: defaults, a resolved YAML that survives
// --resume, refusals that name the field, and the API key kept out of the config (only its variable's
// name is there; the engine reads the key from the environment).
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { parse as parseYaml } from "yaml";
import { configYaml, loadRunConfig, runConfig } from "../../src/loop/config.js";
import { GENERATIONS_JOURNAL, openaiEngineFor } from "../../src/loop/engines.js";
import { ConfigError } from "../../src/model/config.js";

const roundTrip = (c: Parameters<typeof configYaml>[0]) => configYaml(runConfig(parseYaml(configYaml(c))));
const server = ["engine=openai", "openai.base_urls=http://127.0.0.1:8000/v1", "openai.model=m1"];

test("engine openai: the block's defaults, LoRA filled in, one URL given as a string becomes a list, stable YAML", async () => {
  const c = await loadRunConfig({ preset: "sandbox-tiny", set: server });
  assert.equal(c.engine, "openai");
  assert.deepEqual(c.openai, {
    base_urls: ["http://127.0.0.1:8000/v1"],
    model: "m1",
    server: "vllm",
    api_key_env: null,
    timeout_s: 120,
    retries: 6,
    concurrency: 8,
  });
  assert.equal(c.lora?.r, 8, "training stays builtin: a LoRA adapter over M1");
  assert.equal(c.llama_cpp, undefined);
  assert.equal(roundTrip(c), configYaml(c));

  const two = await loadRunConfig({
    preset: "sandbox-tiny",
    set: [...server, "openai.base_urls=[http://10.0.0.1:8000/v1, https://10.0.0.2/v1]", "openai.server=srlm", "openai.concurrency=32"],
  });
  assert.deepEqual(two.openai?.base_urls, ["http://10.0.0.1:8000/v1", "https://10.0.0.2/v1"]);
  assert.equal(roundTrip(two), configYaml(two));
});

test("the API key: only its environment variable's name is in the config; a missing variable is named, the key never shown", async () => {
  const c = await loadRunConfig({ preset: "sandbox-tiny", set: [...server, "openai.api_key_env=VLLM_API_KEY"] });
  assert.equal(c.openai?.api_key_env, "VLLM_API_KEY");
  const secret = "sk-test-0123456789";
  const settings = c.openai as NonNullable<typeof c.openai>;
  const calls: RequestInit[] = [];
  const fetch = (async (_url: string, init: RequestInit) => {
    calls.push(init);
    return new Response(JSON.stringify({ choices: [{ index: 0, text: "x", finish_reason: "stop", logprobs: { token_logprobs: [-1] } }] }));
  }) as unknown as typeof globalThis.fetch;
  const runDir = mkdtempSync(join(tmpdir(), "srlm-config-openai-"));
  try {
    const engine = openaiEngineFor(settings, { runDir, fetch, env: { VLLM_API_KEY: secret } });
    await engine.generate(["p"], { seed: 1 });
    await engine.dispose();
    assert.equal((calls[0].headers as Record<string, string>).authorization, `Bearer ${secret}`, "the key goes to the server");
    const journal = readFileSync(join(runDir, GENERATIONS_JOURNAL), "utf8");
    assert.equal(journal.trim().split("\n").length, 1, "the generation journaled in the run directory");
    for (const text of [configYaml(c), journal]) assert.doesNotMatch(text, new RegExp(secret));
  } finally {
    rmSync(runDir, { recursive: true, force: true });
  }
  assert.throws(
    () => openaiEngineFor(settings, { runDir, env: {} }),
    (e: Error) => {
      assert.match(e.message, /VLLM_API_KEY is not set/);
      return true;
    },
  );
});

test("refusals name the field", async () => {
  const reject = async (set: string[], re: RegExp) => {
    await assert.rejects(loadRunConfig({ preset: "sandbox-tiny", set }), (e: Error) => {
      assert.ok(e instanceof ConfigError, e.message);
      assert.match(e.message, re);
      return true;
    });
  };
  await reject(["engine=openai"], /openai: engine "openai" needs the servers: openai\.base_urls .* openai\.model/);
  await reject(["openai.model=m1", "openai.base_urls=http://h/v1"], /openai: the openai block applies only to engine "openai"/);
  await reject(["engine=openai", "openai.model=m1"], /openai\.base_urls: /);
  await reject(["engine=openai", "openai.base_urls=[]", "openai.model=m1"], /openai\.base_urls: /);
  await reject(
    [...server, "openai.base_urls=[http://ok/v1, ftp://h/v1]"],
    /openai\.base_urls\.1: expected an http:\/\/ or https:\/\/ base URL/,
  );
  await reject([...server, "openai.base_urls=localhost:8000"], /openai\.base_urls\.0: expected an http/);
  await reject(["engine=openai", "openai.base_urls=http://h/v1"], /openai\.model: /);
  await reject([...server, "openai.server=tgi"], /openai\.server: expected one of "vllm", "llama.cpp", "ollama", "srlm"/);
  await reject([...server, "openai.api_key_env=sk-abc123"], /openai\.api_key_env: expected the name of an environment variable/);
  await reject([...server, "openai.timeout_s=0"], /openai\.timeout_s: /);
  await reject([...server, "openai.retries=-1"], /openai\.retries: /);
  await reject([...server, "openai.concurrency=0"], /openai\.concurrency: /);
  await reject([...server, "openai.api_key=sk-abc"], /openai: unknown field\(s\) api_key/);
  await reject([...server, "openai.server=ollama"], /openai\.server: "ollama" servers cannot hot-load LoRA adapters/);
  // One iteration samples only from M1, which any server can run.
  const one = await loadRunConfig({ preset: "sandbox-tiny", set: [...server, "openai.server=ollama", "iterations=1"] });
  assert.equal(one.openai?.server, "ollama");
});
