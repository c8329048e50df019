// LoRA adapter → llama.cpp adapter GGUF, checked against our own GGUF reader: the metadata llama.cpp's
// loader requires, tensor names and shapes, the q/k row permutation of lora_b, and that the exported
// pieces applied to the exported base reproduce the exported merged model (so the GGUF means what the
// PEFT adapter means). `srlm export <adapter-dir>` finds its base and refuses what does not fit. The
// cross-check against llama.cpp itself is test/model/lora-gguf-llamacpp.test.ts.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { exportCommand } from "../../src/cli/export.js";
import { mulberry32, randn } from "../../src/engine/tensor.js";
import { GGML_TYPE_F16, GGML_TYPE_F32, permuteQK, readGguf } from "../../src/io/gguf.js";
import { exportLlamaGguf, exportLoraGguf, llamaGgufTensors } from "../../src/io/gguf-write.js";
import { saveHfModel } from "../../src/io/hf-folder.js";
import { saveLoraAdapter } from "../../src/io/peft.js";
import { llamaConfig } from "../../src/model/config.js";
import { initParams } from "../../src/model/params.js";
import { sandboxTokenizer } from "../../src/sandbox/forms.js";
import { initLora, type LoraAdapter, type LoraTarget, loraScale, mergeLora } from "../../src/train/lora.js";

const tmp = mkdtempSync(join(tmpdir(), "srlm-lora-gguf-unit-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const tok = sandboxTokenizer();
const config = llamaConfig({ vocabSize: tok.vocabSize, dim: 32, nLayers: 2, nHeads: 4, nKvHeads: 2, hiddenDim: 48, maxSeqLen: 64 });
const GG: Record<LoraTarget, string> = {
  q_proj: "attn_q",
  k_proj: "attn_k",
  v_proj: "attn_v",
  o_proj: "attn_output",
  gate_proj: "ffn_gate",
  up_proj: "ffn_up",
  down_proj: "ffn_down",
};

function randomAdapter(targets: LoraTarget[], seed: number): LoraAdapter {
  const a = initLora(config, { r: 3, alpha: 5, dropout: 0, targetModules: targets }, seed);
  const rng = mulberry32(seed + 1);
  for (const layer of a.layers) for (const p of Object.values(layer)) p?.B.set(randn(rng, p.B.length, 0.3));
  return a;
}

async function quiet(args: string[]): Promise<string> {
  const written: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string) => written.push(s) > 0) as typeof process.stdout.write;
  try {
    await exportCommand(args);
  } finally {
    process.stdout.write = write;
  }
  return written.join("");
}

test("adapter GGUF: llama.cpp's metadata, names, shapes, A as is, B with q/k rows permuted", async () => {
  const adapter = randomAdapter(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], 1);
  const path = join(tmp, "a.gguf");
  await exportLoraGguf(path, { config, adapter, name: "my-adapter" });
  const { header, tensors } = readGguf(path);
  const md = header.metadata;
  assert.equal(md["general.architecture"], "llama", "architecture must equal the base's");
  assert.equal(md["general.type"], "adapter", "general.type");
  assert.equal(md["adapter.type"], "lora", "adapter.type");
  assert.equal(md["adapter.lora.alpha"], 5, "adapter.lora.alpha");
  assert.equal(md["general.name"], "my-adapter", "general.name");
  assert.equal(tensors.size, 2 * 7 * config.nLayers, "a lora_a and a lora_b per adapted Linear");
  for (const info of header.tensors) assert.equal(info.type, GGML_TYPE_F32, `${info.name} is F32`);

  for (let l = 0; l < config.nLayers; l++) {
    for (const [t, g] of Object.entries(GG) as [LoraTarget, string][]) {
      const p = adapter.layers[l][t];
      assert.ok(p, `layer ${l} ${t} adapted`);
      const a = tensors.get(`blk.${l}.${g}.weight.lora_a`);
      const b = tensors.get(`blk.${l}.${g}.weight.lora_b`);
      assert.ok(a && b, `blk.${l}.${g}.weight.lora_a/_b present`);
      const nIn = p.A.length / 3;
      const nOut = p.B.length / 3;
      assert.deepEqual(a.shape, [3, nIn], `${g} lora_a is [r, in]`);
      assert.deepEqual(b.shape, [nOut, 3], `${g} lora_b is [out, r]`);
      assert.deepEqual([...a.data], [...p.A], `${g} lora_a = A`);
      const heads = t === "q_proj" ? config.nHeads : t === "k_proj" ? config.nKvHeads : 0;
      const wantB = heads ? permuteQK(p.B, heads, 3) : p.B;
      assert.deepEqual([...b.data], [...wantB], `${g} lora_b = B${heads ? " with the q/k RoPE row permutation" : ""}`);
    }
  }
});

test("exported base + s · lora_b · lora_a = the exported merged model, tensor by tensor", async () => {
  const params = initParams(config, 3);
  const adapter = randomAdapter(["q_proj", "k_proj", "down_proj"], 4);
  const path = join(tmp, "b.gguf");
  await exportLoraGguf(path, { config, adapter });
  const lora = readGguf(path).tensors;
  const base = new Map(llamaGgufTensors(config, params, "f32").map((t) => [t.name, t]));
  const merged = new Map(llamaGgufTensors(config, mergeLora(config, params, adapter), "f32").map((t) => [t.name, t]));
  const s = loraScale(adapter.config);
  let checked = 0;
  for (const [name, m] of merged) {
    const a = lora.get(`${name}.lora_a`);
    const b = lora.get(`${name}.lora_b`);
    const w = base.get(name)?.data as Float32Array;
    if (!a || !b) {
      assert.deepEqual([...m.data], [...w], `${name}: not adapted, unchanged`);
      continue;
    }
    const [out, r] = b.shape;
    const nIn = a.shape[1];
    let worst = 0;
    for (let o = 0; o < out; o++) {
      for (let i = 0; i < nIn; i++) {
        let acc = w[o * nIn + i];
        for (let k = 0; k < r; k++) acc += s * b.data[o * r + k] * a.data[k * nIn + i];
        worst = Math.max(worst, Math.abs(acc - m.data[o * nIn + i]));
      }
    }
    assert.ok(worst < 1e-6, `${name}: base + s·B·A differs from the merged export by ${worst}`);
    checked++;
  }
  assert.equal(checked, 3 * config.nLayers, "every adapted tensor checked");
});

test("F16 adapter: every LoRA tensor F16", async () => {
  const path = join(tmp, "c.gguf");
  await exportLoraGguf(path, { config, adapter: randomAdapter(["v_proj"], 5) }, { type: "f16" });
  const { header } = readGguf(path);
  assert.equal(header.metadata["general.file_type"], 1, "file type MOSTLY_F16");
  assert.ok(header.tensors.length === 4 && header.tensors.every((t) => t.type === GGML_TYPE_F16), "F16 tensors");
});

test("srlm export <adapter-dir>: base from --base (GGUF or folder) or adapter_config.json; clear errors", async () => {
  const params = initParams(config, 6);
  const baseGguf = join(tmp, "base.gguf");
  await exportLlamaGguf(baseGguf, { config, params, tokenizer: tok });
  const baseDir = join(tmp, "base-model");
  await saveHfModel(baseDir, config, params);
  const adapterDir = join(tmp, "adapter");
  await saveLoraAdapter(adapterDir, config, randomAdapter(["q_proj", "v_proj"], 7), { baseModel: "../base-model" });
  const out = join(tmp, "cli.gguf");

  let summary = await quiet([adapterDir, "--format", "gguf", "--base", baseGguf, "--out", out]);
  assert.match(summary, /cli\.gguf: llama\.cpp LoRA adapter GGUF, F32, r = 3, alpha = 5, q_proj\/v_proj in 2 layers/, "summary");
  assert.equal(readGguf(out).header.metadata["general.name"], "adapter", "name from the folder");
  const bytesGguf = readFileSync(out);
  summary = await quiet([adapterDir, "--format", "gguf", "--base", baseDir, "--out", out, "--type", "f16"]);
  assert.match(summary, /F16/, "--type f16");
  // base_model_name_or_path "../base-model", relative to the adapter folder
  summary = await quiet([adapterDir, "--format", "gguf", "--out", out]);
  assert.match(summary, /base-model/, "base found through adapter_config.json");
  assert.deepEqual(readFileSync(out), bytesGguf, "same bytes whichever way the base was given");

  const cfgPath = join(adapterDir, "adapter_config.json");
  const cfg = JSON.parse(readFileSync(cfgPath, "utf8"));
  writeFileSync(cfgPath, JSON.stringify({ ...cfg, base_model_name_or_path: "meta-llama/Llama-3.2-1B" }));
  await assert.rejects(
    quiet([adapterDir, "--format", "gguf", "--out", out]),
    (e: Error) => e.message.includes(cfgPath) && e.message.includes("meta-llama/Llama-3.2-1B") && e.message.includes("--base"),
    "a hub id is not a local base: the error names adapter_config.json, the id and --base",
  );
  await assert.rejects(
    quiet([adapterDir, "--format", "gguf", "--base", join(tmp, "nope"), "--out", out]),
    /--base .*nope: no such file/,
    "missing --base",
  );

  // a base the adapter does not fit: the error names the adapter's weights file and the tensor
  const other = llamaConfig({ ...config, dim: 48, nHeads: 4, nKvHeads: 2 });
  const otherDir = join(tmp, "other-model");
  await saveHfModel(otherDir, other, initParams(other, 8));
  await assert.rejects(
    quiet([adapterDir, "--format", "gguf", "--base", otherDir, "--out", out]),
    (e: Error) => e.message.includes("adapter_model.safetensors") && /lora_A\.weight" has shape/.test(e.message),
    "adapter shapes checked against the base config",
  );
  // an unsupported base config names config.json
  const badDir = join(tmp, "bad-model");
  mkdirSync(badDir, { recursive: true });
  writeFileSync(join(badDir, "config.json"), JSON.stringify({ model_type: "gpt2" }));
  await assert.rejects(
    quiet([adapterDir, "--format", "gguf", "--base", badDir, "--out", out]),
    /config\.json: model_type "gpt2"/,
    "base config errors",
  );
  // --base on a model folder is a mistake
  await assert.rejects(
    quiet([baseDir, "--format", "gguf", "--base", baseGguf, "--out", out]),
    /--base is only for a LoRA adapter folder/,
    "--base misuse",
  );
});
