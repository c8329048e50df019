// Model config validation: bad values are rejected with the field named; HF config.json mapping.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError, fromHfConfig, llamaConfig, paramCount, toHfConfig } from "../../src/model/config.js";
import { initParams, paramSpecs, toNamed } from "../../src/model/params.js";

const ok = { vocabSize: 32, dim: 16, nLayers: 2, nHeads: 4, hiddenDim: 40 };

test("defaults: MHA when nKvHeads is absent, head dim from dim / nHeads", () => {
  const c = llamaConfig(ok);
  assert.equal(c.nKvHeads, 4);
  assert.equal(c.headDim, 4);
  assert.equal(c.ropeTheta, 10000);
  assert.equal(c.tieEmbeddings, false);
});

test("bad values are rejected naming the field", () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ ...ok, nHeads: 3 }, /nHeads: nHeads \(3\) must divide dim \(16\)/],
    [{ ...ok, nKvHeads: 3 }, /nKvHeads: nKvHeads \(3\) must divide nHeads \(4\)/],
    [{ ...ok, dim: 12, nHeads: 4 }, /headDim: head dim \(3\) must be even/],
    [{ ...ok, vocabSize: 0 }, /vocabSize: vocabSize must be > 0/],
    [{ ...ok, nLayers: 1.5 }, /nLayers: nLayers must be an integer/],
    [{ ...ok, dim: "16" }, /dim: dim must be a number/],
    [{ ...ok, ropeTheta: -1 }, /ropeTheta: ropeTheta must be > 0/],
    [{ ...ok, hiddenSize: 3 }, /Unrecognized key.*hiddenSize/],
  ];
  for (const [input, re] of cases) {
    assert.throws(
      () => llamaConfig(input),
      (e: unknown) => e instanceof ConfigError && re.test(e.message),
      `expected ${re} for ${JSON.stringify(input)}`,
    );
  }
  const { vocabSize: _, ...missing } = ok;
  assert.throws(() => llamaConfig(missing), /vocabSize/);
});

test("HF config.json round trip, Qwen2 implies q/k/v bias, unsupported fields rejected", () => {
  const c = llamaConfig({ ...ok, nKvHeads: 2, tieEmbeddings: true, qkvBias: true, ropeTheta: 1e6 });
  const hf = toHfConfig(c);
  assert.equal(hf.model_type, "qwen2");
  assert.deepEqual(fromHfConfig(hf), c);
  const llama = toHfConfig(llamaConfig(ok));
  assert.equal(llama.model_type, "llama");
  assert.deepEqual(fromHfConfig({ ...llama, model_type: "qwen2" }).qkvBias, true);
  assert.throws(() => fromHfConfig({ ...llama, model_type: "gpt2" }), /config.json: model_type "gpt2" is not supported/);
  assert.throws(() => fromHfConfig({ ...llama, hidden_act: "gelu" }), /hidden_act "gelu"/);
  assert.throws(() => fromHfConfig({ ...llama, rope_scaling: { type: "linear", factor: 2 } }), /rope_scaling/);
  // plain RoPE spelled out, and transformers 5's rope_parameters
  assert.equal(
    fromHfConfig({ ...llama, rope_scaling: { rope_type: "default" } }).ropeTheta,
    llama.rope_theta,
    "rope_type default is plain RoPE",
  );
  const { rope_theta: _t, ...noTheta } = llama;
  assert.equal(
    fromHfConfig({ ...noTheta, rope_parameters: { rope_theta: 5e5, rope_type: "default" } }).ropeTheta,
    5e5,
    "rope_parameters.rope_theta",
  );
  assert.throws(
    () => fromHfConfig({ ...noTheta, rope_parameters: { rope_theta: 5e5, rope_type: "yarn" } }),
    /rope_parameters.rope_type "yarn"/,
    "scaled RoPE refused",
  );
  // what the decoder does not compute is refused by field
  assert.throws(
    () => fromHfConfig({ ...llama, attention_bias: true }),
    /attention_bias: true.*o_proj/,
    "llama attention_bias includes o_proj",
  );
  assert.equal(
    fromHfConfig({ ...llama, model_type: "qwen2", attention_bias: false }).qkvBias,
    true,
    "qwen2 has q/k/v bias whatever attention_bias says",
  );
  assert.throws(() => fromHfConfig({ ...llama, mlp_bias: true }), /mlp_bias/, "MLP bias refused");
  assert.throws(() => fromHfConfig({ ...llama, model_type: "mistral", sliding_window: 16 }), /sliding_window 16/, "mistral window refused");
  assert.equal(fromHfConfig({ ...llama, model_type: "mistral", sliding_window: null }).qkvBias, false, "mistral without a window loads");
  assert.throws(
    () => fromHfConfig({ ...llama, model_type: "qwen2", use_sliding_window: true, max_window_layers: 0 }),
    /use_sliding_window/,
    "qwen2 window refused",
  );
  assert.equal(
    fromHfConfig({ ...llama, model_type: "qwen2", use_sliding_window: true, max_window_layers: llama.num_hidden_layers }).qkvBias,
    true,
    "a window on no layer (max_window_layers ≥ layers) changes nothing",
  );
});

test("parameter count agrees with the tensors", () => {
  for (const extra of [{}, { tieEmbeddings: true }, { qkvBias: true, nKvHeads: 1 }]) {
    const c = llamaConfig({ ...ok, ...extra });
    const n = toNamed(c, initParams(c, 0)).reduce((a, t) => a + t.data.length, 0);
    assert.equal(paramCount(c), n);
    assert.equal(paramSpecs(c).length, toNamed(c, initParams(c, 0)).length);
  }
});
