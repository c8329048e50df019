// PEFT adapter folders: save → load round trip, the exact file, tensor and config names PEFT uses
// for LlamaForCausalLM, and strict loading (every error names the file and the field or tensor).
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { mulberry32, randn } from "../../src/engine/tensor.js";
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, loadLoraAdapter, saveLoraAdapter } from "../../src/io/peft.js";
import { CheckpointError, readSafetensors, readSafetensorsHeader, writeSafetensors } from "../../src/io/safetensors.js";
import { llamaConfig } from "../../src/model/config.js";
import { defaultLora, initLora, type LoraAdapter, loraTensors } from "../../src/train/lora.js";

const cfg = llamaConfig({ vocabSize: 11, dim: 8, nLayers: 2, hiddenDim: 12, maxSeqLen: 16, nHeads: 4, nKvHeads: 2 });
const tmpRoot = await mkdtemp(join(tmpdir(), "srlm-peft-"));
after(async () => {
  await rm(tmpRoot, { recursive: true, force: true });
});
let dirCount = 0;
const freshDir = () => join(tmpRoot, `a${dirCount++}`);

/** An adapter with every tensor random (B too), so a round trip is a real check. */
function adapter(targetModules = defaultLora.targetModules, r = 2): LoraAdapter {
  const a = initLora(cfg, { r, alpha: 5, dropout: 0.05, targetModules }, 1);
  const rng = mulberry32(2);
  for (const t of loraTensors(cfg, a)) t.data.set(randn(rng, t.data.length, 0.5));
  return a;
}

async function saved(a = adapter()): Promise<string> {
  const dir = freshDir();
  await saveLoraAdapter(dir, cfg, a, { baseModel: "org/tiny-llama" });
  return dir;
}

async function editConfig(dir: string, patch: Record<string, unknown>): Promise<void> {
  const path = join(dir, ADAPTER_CONFIG_FILE);
  const json = JSON.parse(await readFile(path, "utf8"));
  await writeFile(path, JSON.stringify({ ...json, ...patch }));
}

async function editTensors(dir: string, edit: (m: Map<string, { shape: number[]; data: Float32Array }>) => void): Promise<void> {
  const path = join(dir, ADAPTER_WEIGHTS_FILE);
  const m = new Map([...(await readSafetensors(path)).tensors].map(([name, t]) => [name, { shape: t.shape, data: t.data }]));
  edit(m);
  await writeSafetensors(
    path,
    [...m].map(([name, t]) => ({ name, ...t })),
  );
}

async function rejects(dir: string, file: string, re: RegExp, what: string): Promise<void> {
  await assert.rejects(
    loadLoraAdapter(dir, cfg),
    (e: unknown) => {
      assert.ok(e instanceof CheckpointError, `${what}: a CheckpointError, got ${e}`);
      assert.ok(e.message.includes(join(dir, file)), `${what}: the message names ${file}: ${e.message}`);
      assert.match(e.message, re, `${what}: message`);
      assert.equal(e.file, join(dir, file), `${what}: error.file`);
      return true;
    },
    what,
  );
}

test("save → load round trip is exact", async () => {
  for (const targets of [defaultLora.targetModules, ["v_proj", "q_proj", "down_proj"] as const]) {
    const a = adapter([...targets]);
    const b = await loadLoraAdapter(await saved(a), cfg);
    assert.deepEqual(b.config, a.config, `config round trip (${targets})`);
    const ta = loraTensors(cfg, a);
    const tb = loraTensors(cfg, b);
    assert.deepEqual(
      tb.map((t) => t.name),
      ta.map((t) => t.name),
      `tensor names round trip (${targets})`,
    );
    for (const [i, t] of ta.entries()) assert.deepEqual(tb[i].data, t.data, `${t.name} round trip`);
  }
});

test("files, tensor names and shapes are PEFT's", async () => {
  const dir = await saved();
  assert.deepEqual((await readdir(dir)).sort(), [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE], "exactly the two PEFT files, no temp files");
  assert.equal(ADAPTER_CONFIG_FILE, "adapter_config.json", "config file name");
  assert.equal(ADAPTER_WEIGHTS_FILE, "adapter_model.safetensors", "weights file name");
  const h = await readSafetensorsHeader(join(dir, ADAPTER_WEIGHTS_FILE));
  assert.deepEqual(h.metadata, { format: "pt" }, "safetensors metadata as torch writes it");
  const want = new Map<string, number[]>();
  const modules: [string, number, number][] = [
    ["self_attn.q_proj", 8, 8],
    ["self_attn.k_proj", 8, 4],
    ["self_attn.v_proj", 8, 4],
    ["self_attn.o_proj", 8, 8],
    ["mlp.gate_proj", 8, 12],
    ["mlp.up_proj", 8, 12],
    ["mlp.down_proj", 12, 8],
  ];
  for (let l = 0; l < 2; l++) {
    for (const [m, nIn, nOut] of modules) {
      want.set(`base_model.model.model.layers.${l}.${m}.lora_A.weight`, [2, nIn]);
      want.set(`base_model.model.model.layers.${l}.${m}.lora_B.weight`, [nOut, 2]);
    }
  }
  assert.equal(h.entries.length, want.size, "one A and one B per module per layer");
  for (const e of h.entries) {
    assert.deepEqual(e.shape, want.get(e.name), `shape of ${e.name}`);
    assert.equal(e.dtype, "F32", `${e.name} is F32`);
  }
});

test("adapter_config.json has PEFT's fields", async () => {
  const dir = await saved(adapter(["q_proj", "v_proj"]));
  const json = JSON.parse(await readFile(join(dir, ADAPTER_CONFIG_FILE), "utf8"));
  const want: Record<string, unknown> = {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    r: 2,
    lora_alpha: 5,
    lora_dropout: 0.05,
    target_modules: ["q_proj", "v_proj"],
    bias: "none",
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    use_rslora: false,
    use_dora: false,
    modules_to_save: null,
    layers_to_transform: null,
    rank_pattern: {},
    alpha_pattern: {},
    base_model_name_or_path: "org/tiny-llama",
    revision: null,
  };
  for (const [k, v] of Object.entries(want)) assert.deepEqual(json[k], v, `adapter_config.json "${k}"`);

  const dir2 = freshDir();
  await saveLoraAdapter(dir2, cfg, adapter());
  const json2 = JSON.parse(await readFile(join(dir2, ADAPTER_CONFIG_FILE), "utf8"));
  assert.equal(json2.base_model_name_or_path, null, "base_model_name_or_path is null without opts.baseModel");
});

test('target_modules may be "all-linear"; list order does not matter', async () => {
  const a = adapter();
  const dir = await saved(a);
  await editConfig(dir, { target_modules: "all-linear" });
  assert.deepEqual((await loadLoraAdapter(dir, cfg)).config.targetModules, defaultLora.targetModules, '"all-linear" is all seven');
  await editConfig(dir, { target_modules: ["down_proj", "up_proj", "gate_proj", "o_proj", "v_proj", "k_proj", "q_proj"] });
  assert.deepEqual(
    (await loadLoraAdapter(dir, cfg)).config.targetModules,
    defaultLora.targetModules,
    "a shuffled list loads in module order",
  );
});

test("bad adapter_config.json fields are rejected, naming the file and the field", async () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ peft_type: "PREFIX_TUNING" }, /"peft_type" is "PREFIX_TUNING"; only "LORA"/],
    [{ task_type: "SEQ_CLS" }, /"task_type" is "SEQ_CLS"/],
    [{ rank_pattern: { q_proj: 4 } }, /"rank_pattern" is \{"q_proj":4\}/],
    [{ alpha_pattern: { "model.layers.0.mlp.up_proj": 2 } }, /"alpha_pattern"/],
    [{ use_dora: true }, /"use_dora" is true; only false/],
    [{ use_rslora: true }, /"use_rslora" is true/],
    [{ bias: "all" }, /"bias" is "all"; only "none"/],
    [{ modules_to_save: ["lm_head"] }, /"modules_to_save"/],
    [{ layers_to_transform: [0] }, /"layers_to_transform"/],
    [{ target_modules: ["q_proj", "lm_head"] }, /"target_modules" names the unknown target module "lm_head"/],
    [{ target_modules: ".*q_proj" }, /"target_modules" is the pattern ".\*q_proj"/],
    [{ target_modules: [] }, /"target_modules" must be a non-empty list/],
    [{ r: 0 }, /"r" must be a positive integer/],
    [{ lora_alpha: "16" }, /"lora_alpha" must be a number > 0/],
    [{ lora_dropout: 1 }, /"lora_dropout" must be a number in \[0, 1\)/],
  ];
  for (const [patch, re] of cases) {
    const dir = await saved();
    await editConfig(dir, patch);
    await rejects(dir, ADAPTER_CONFIG_FILE, re, JSON.stringify(patch));
  }
});

test("unreadable adapter_config.json is rejected, naming the file", async () => {
  const dir = await saved();
  await writeFile(join(dir, ADAPTER_CONFIG_FILE), "{ not json");
  await rejects(dir, ADAPTER_CONFIG_FILE, /not valid JSON/, "invalid JSON");
  await rm(join(dir, ADAPTER_CONFIG_FILE));
  await rejects(dir, ADAPTER_CONFIG_FILE, /file not found/, "missing config");
});

test("bad tensors are rejected, naming the file and the tensor", async () => {
  const qA0 = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight";
  const cases: [string, (m: Map<string, { shape: number[]; data: Float32Array }>) => void, RegExp][] = [
    ["missing tensor", (m) => m.delete(qA0), /tensor "base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight" is missing/],
    [
      "wrong shape",
      (m) => m.set(qA0, { shape: [3, 8], data: new Float32Array(24) }),
      /tensor "base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight" has shape \[3, 8\], expected \[2, 8\]/,
    ],
    [
      "layer that does not exist",
      (m) => m.set("base_model.model.model.layers.2.self_attn.q_proj.lora_A.weight", { shape: [2, 8], data: new Float32Array(16) }),
      /tensor "base_model\.model\.model\.layers\.2\.self_attn\.q_proj\.lora_A\.weight" is for layer 2, but the model has 2 layers/,
    ],
    [
      "unknown module",
      (m) => m.set("base_model.model.model.layers.0.self_attn.qkv_proj.lora_A.weight", { shape: [2, 8], data: new Float32Array(16) }),
      /tensor "base_model\.model\.model\.layers\.0\.self_attn\.qkv_proj\.lora_A\.weight" is for the unknown target module "qkv_proj"/,
    ],
    [
      "not a LoRA tensor",
      (m) => m.set("base_model.model.lm_head.weight", { shape: [11, 8], data: new Float32Array(88) }),
      /tensor "base_model\.model\.lm_head\.weight" is not a LoRA tensor/,
    ],
  ];
  for (const [what, edit, re] of cases) {
    const dir = await saved();
    await editTensors(dir, edit);
    await rejects(dir, ADAPTER_WEIGHTS_FILE, re, what);
  }

  // a module the file has but the config does not target
  const dir = await saved(adapter(["q_proj", "k_proj", "v_proj"]));
  await editConfig(dir, { target_modules: ["q_proj", "v_proj"] });
  await rejects(
    dir,
    ADAPTER_WEIGHTS_FILE,
    /self_attn\.k_proj\.lora_A\.weight" is for k_proj, which is not in adapter_config\.json's target_modules/,
    "untargeted module",
  );
  // and a config whose rank disagrees with the tensors
  await editConfig(dir, { r: 3, target_modules: ["q_proj", "k_proj", "v_proj"] });
  await rejects(dir, ADAPTER_WEIGHTS_FILE, /has shape \[2, 8\], expected \[3, 8\]/, "rank mismatch");
  // a missing weights file
  await rm(join(dir, ADAPTER_WEIGHTS_FILE));
  await rejects(dir, ADAPTER_WEIGHTS_FILE, /file not found/, "missing weights file");
});

test("saving an adapter that does not fit the model fails before writing", async () => {
  const a = adapter();
  const dir = freshDir();
  await assert.rejects(saveLoraAdapter(dir, { ...cfg, nLayers: 3 }, a), /2 layers, the model has 3/, "layer count mismatch");
  await assert.rejects(readdir(dir), /ENOENT/, "nothing was created");
});
