// `srlm serve`'s runtime LoRA routes (vLLM's API) in-process on a tiny model: off without enableLora;
// load, list, sample from base + adapter exactly as the builtin engine samples from the LoRA trainable
// with that adapter, vLLM's answers to a second load, a missing folder and a wrong adapter, the
// adapter limit, and unload.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { Kernels } from "../../src/engine/kernels.js";
import { createKernels } from "../../src/engine/ort.js";
import { mulberry32 } from "../../src/engine/tensor.js";
import { loadModelFolder, type ModelFolder } from "../../src/io/model-folder.js";
import { saveLoraAdapter } from "../../src/io/peft.js";
import { generate } from "../../src/model/generate.js";
import { createModel, type LlamaModel } from "../../src/model/llama.js";
import { SrlmServer } from "../../src/serve/server.js";
import { initLora, type LoraAdapter, loraTrainable } from "../../src/train/lora.js";
import { writeTinyModel } from "../serve-fixtures.js";

const tmp = mkdtempSync(join(tmpdir(), "srlm-serve-lora-"));
let kernels: Kernels;
let folder: ModelFolder;
let model: LlamaModel;
let server: SrlmServer;
let plain: SrlmServer;
let adapter: LoraAdapter;
const adapterDir = join(tmp, "adapter");

before(async () => {
  await writeTinyModel(join(tmp, "m"));
  folder = await loadModelFolder(join(tmp, "m"));
  kernels = await createKernels("reference");
  model = createModel(folder.config, folder.params, kernels);
  // A trained-looking adapter: B ≠ 0 (a fresh one is a no-op).
  adapter = initLora(folder.config, { r: 4, alpha: 8, dropout: 0, targetModules: ["q_proj", "v_proj", "up_proj"] }, 7);
  const rng = mulberry32(11);
  for (const layer of adapter.layers)
    for (const p of Object.values(layer)) for (let i = 0; i < p.B.length; i++) p.B[i] = (2 * rng() - 1) * 0.5;
  await saveLoraAdapter(adapterDir, folder.config, adapter);
  const served = { model, tokenizer: folder.tokenizer, eosIds: folder.eosIds };
  server = await SrlmServer.listen(served, { port: 0, modelName: "tiny", enableLora: true, maxLoras: 2 });
  plain = await SrlmServer.listen(served, { port: 0, modelName: "tiny" });
});
after(async () => {
  await server.close();
  await plain.close();
  await kernels.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

// biome-ignore lint/suspicious/noExplicitAny: response bodies are read field by field in the asserts
async function post(s: SrlmServer, path: string, body: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${s.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

test("without enableLora the LoRA routes are 404 and say how to turn them on", async () => {
  const r = await post(plain, "/load_lora_adapter", { lora_name: "a1", lora_path: adapterDir });
  assert.equal(r.status, 404);
  assert.match(r.json.error.message, /--enable-lora/);
});

test("load, list, sample from base + adapter as the builtin engine does, reload answers, limit, unload", async () => {
  const load = (name: string, path = adapterDir, extra = {}) =>
    post(server, "/load_lora_adapter", { lora_name: name, lora_path: path, ...extra });
  const r = await load("a1");
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.match(r.json, /added successfully/);
  const models = await (await fetch(`${server.url}/models`)).json();
  assert.deepEqual(
    models.data.map((m: { id: string; parent?: string; root?: string }) => [m.id, m.parent ?? null, m.root ?? null]),
    [
      ["tiny", null, null],
      ["a1", "tiny", adapterDir],
    ],
  );
  assert.equal((await fetch(`${server.url}/models/a1`)).status, 200);

  // Base + adapter: exactly the LoRA trainable's samples (same merge, reference kernels).
  const req = { prompt: ["ab", "c=d"], n: 2, seed: 3, max_tokens: 12, temperature: 1, logprobs: 0 };
  const got = await post(server, "/completions", { model: "a1", ...req });
  assert.equal(got.status, 200, JSON.stringify(got.json));
  assert.equal(got.json.model, "a1");
  const tr = loraTrainable(model, adapter);
  await tr.afterUpdate();
  const want = await generate(tr.model, folder.tokenizer, ["ab", "c=d"], {
    n: 2,
    seed: 3,
    maxNewTokens: 12,
    temperature: 1,
    stopTokens: folder.eosIds,
  });
  assert.deepEqual(
    got.json.choices.map((c: { text: string; logprobs: { token_logprobs: number[] } }) => [
      c.text,
      c.logprobs.token_logprobs.reduce((a, b) => a + b, 0),
    ]),
    want.flat().map((s) => [s.text, s.logprob]),
  );
  const base = await post(server, "/completions", { model: "tiny", ...req });
  assert.notDeepEqual(
    base.json.choices.map((c: { logprobs: { token_logprobs: number[] } }) => c.logprobs.token_logprobs),
    got.json.choices.map((c: { logprobs: { token_logprobs: number[] } }) => c.logprobs.token_logprobs),
    "the adapter changes the model",
  );

  // vLLM's answers: a second load of a name is 400 (unless load_inplace), a missing folder 404.
  const again = await load("a1");
  assert.equal(again.status, 400);
  assert.match(again.json.error.message, /The lora adapter 'a1' has already been loaded/);
  assert.equal((await load("a1", adapterDir, { load_inplace: true })).status, 200);
  const missing = await load("a2", join(tmp, "nope"));
  assert.equal(missing.status, 404);
  assert.match(missing.json.error.message, /No adapter found/);
  const baseName = await load("tiny");
  assert.equal(baseName.status, 400);
  assert.equal(baseName.json.error.param, "lora_name");
  const bad = await post(server, "/load_lora_adapter", { lora_name: "", lora_path: adapterDir });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.param, "lora_name");
  // An adapter for another model shape is refused with the reason.
  const wide = initLora({ ...folder.config, dim: 64, headDim: 32 }, { r: 4, alpha: 8, dropout: 0, targetModules: ["q_proj"] }, 1);
  await saveLoraAdapter(join(tmp, "wide"), { ...folder.config, dim: 64, headDim: 32 }, wide);
  const wrong = await load("a3", join(tmp, "wide"));
  assert.equal(wrong.status, 400);
  assert.equal(wrong.json.error.param, "lora_path");
  assert.match(wrong.json.error.message, /shape/);

  // At most maxLoras (2) at once.
  assert.equal((await load("a2")).status, 200);
  const third = await load("a3");
  assert.equal(third.status, 400);
  assert.match(third.json.error.message, /--max-loras/);

  // Unload: gone from the list and from requests; a second unload is 404.
  const un = await post(server, "/unload_lora_adapter", { lora_name: "a1" });
  assert.equal(un.status, 200);
  const after1 = await post(server, "/completions", { model: "a1", prompt: "ab" });
  assert.equal(after1.status, 404);
  assert.equal(after1.json.error.param, "model");
  assert.match(after1.json.error.message, /does not exist .*"tiny", "a2"/);
  assert.equal((await post(server, "/unload_lora_adapter", { lora_name: "a1" })).status, 404);
  assert.equal((await post(server, "/unload_lora_adapter", { lora_name: "a2" })).status, 200);
});
