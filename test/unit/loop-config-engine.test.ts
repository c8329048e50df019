// The loop config's engine, model.path and lora fields: defaults, refusals, and resolved configs that
// survive --resume (config.resolved.yaml parsed again gives the same text).
import assert from "node:assert/strict";
import { test } from "node:test";
import { parse as parseYaml } from "yaml";
import { configYaml, loadRunConfig, runConfig } from "../../src/loop/config.js";
import { ConfigError } from "../../src/model/config.js";

const roundTrip = (c: Parameters<typeof configYaml>[0]) => configYaml(runConfig(parseYaml(configYaml(c))));

test("a sandbox run without engine fields resolves as before: no engine, lora or llama_cpp keys", async () => {
  const c = await loadRunConfig({ preset: "sandbox-tiny" });
  assert.equal(c.engine, undefined);
  assert.equal(c.lora, undefined);
  assert.doesNotMatch(configYaml(c), /engine|lora|llama_cpp/);
});

test("engine llama.cpp fills lora and llama_cpp with their defaults; the resolved YAML is stable", async () => {
  const c = await loadRunConfig({ preset: "sandbox-tiny", set: ["engine=llama.cpp"] });
  assert.equal(c.engine, "llama.cpp");
  assert.deepEqual(c.lora, {
    r: 8,
    lora_alpha: 16,
    lora_dropout: 0,
    target_modules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
  });
  assert.deepEqual(c.llama_cpp, { sequences: 8, exact_kv: false, threads: 0 });
  assert.equal(roundTrip(c), configYaml(c));
});

test("model.path: lora filled, mix.rows_per_pair defaults to 0, prompts must come from a file", async () => {
  const c = await loadRunConfig({
    preset: "sandbox-tiny",
    set: ["model.path=/x/model", "prompts.source=file", "prompts.path=/x/p.jsonl", "lora.r=4"],
  });
  assert.equal(c.lora?.r, 4);
  assert.equal(c.mix.rows_per_pair, 0);
  assert.equal(roundTrip(c), configYaml(c));
  await assert.rejects(loadRunConfig({ preset: "sandbox-tiny", set: ["model.path=/x/model"] }), (e: Error) => {
    assert.ok(e instanceof ConfigError);
    assert.match(e.message, /prompts\.source: model\.path .* "file"/);
    return true;
  });
  await assert.rejects(
    loadRunConfig({ preset: "sandbox-tiny", set: ["model.path=/x", "prompts.source=file", "prompts.path=/p", "mix.rows_per_pair=1"] }),
    /mix\.rows_per_pair: model\.path .* no seed data/,
  );
});

test("refusals name the field: unknown engine, llama_cpp without llama.cpp, bad lora", async () => {
  await assert.rejects(loadRunConfig({ preset: "sandbox-tiny", set: ["engine=vllm"] }), /engine: expected one of "builtin", "llama.cpp"/);
  await assert.rejects(
    loadRunConfig({ preset: "sandbox-tiny", set: ["llama_cpp.sequences=2"] }),
    /llama_cpp: the llama_cpp block applies only/,
  );
  await assert.rejects(loadRunConfig({ preset: "sandbox-tiny", set: ["lora.target_modules=[qproj]"] }), /lora\.target_modules\.0/);
  await assert.rejects(loadRunConfig({ preset: "sandbox-tiny", set: ["lora.lora_dropout=1"] }), /lora\.lora_dropout/);
});

test("lora alone on the builtin engine trains an adapter over the sandbox M1", async () => {
  const c = await loadRunConfig({ preset: "sandbox-tiny", set: ["lora.r=2"] });
  assert.equal(c.engine, undefined);
  assert.equal(c.lora?.r, 2);
  assert.equal(roundTrip(c), configYaml(c));
});
