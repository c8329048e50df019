import assert from "node:assert/strict";
import { copyFile, mkdtemp, readdir, readFile, rm, stat, truncate, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { INDEX_FILE, loadHfModel, SINGLE_FILE, saveHfModel } from "../../src/io/hf-folder.js";
import { CheckpointError, f16ToF32Array, f32ToF16Array, readSafetensors, writeSafetensors } from "../../src/io/safetensors.js";
import { ConfigError, type LlamaConfig, llamaConfig } from "../../src/model/config.js";
import { initParams, type LlamaParams, toNamed } from "../../src/model/params.js";

let root: string;
let n = 0;
before(async () => {
  root = await mkdtemp(join(tmpdir(), "srlm-hf-"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});
const fresh = () => join(root, `m${n++}`);

/** GQA (4 query heads, 2 kv heads), tied embeddings, qkv bias (Qwen2-style). */
const qwenish = llamaConfig({
  vocabSize: 37,
  dim: 16,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  hiddenDim: 24,
  maxSeqLen: 64,
  tieEmbeddings: true,
  qkvBias: true,
});
/** Llama-style: untied, no bias. */
const llamaish = llamaConfig({ vocabSize: 29, dim: 8, nLayers: 1, nHeads: 2, hiddenDim: 12, maxSeqLen: 32, ropeTheta: 500000 });

/** initParams leaves norms at 1 and biases at 0; randomise everything so equality means something. */
function randomParams(c: LlamaConfig, seed: number): LlamaParams {
  const p = initParams(c, seed);
  let s = seed + 1;
  for (const t of toNamed(c, p)) {
    if (t.name.endsWith("norm.weight") || t.name.endsWith(".bias")) {
      for (let i = 0; i < t.data.length; i++) {
        s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
        t.data[i] = s / 2 ** 32 - 0.5;
      }
    }
  }
  return p;
}

function assertSameParams(c: LlamaConfig, a: LlamaParams, b: LlamaParams): void {
  const na = toNamed(c, a);
  const nb = toNamed(c, b);
  assert.deepEqual(
    na.map((t) => t.name),
    nb.map((t) => t.name),
  );
  for (let i = 0; i < na.length; i++) {
    assert.deepEqual(nb[i].shape, na[i].shape, na[i].name);
    assert.deepEqual(
      new Uint32Array(nb[i].data.buffer, nb[i].data.byteOffset, nb[i].data.length),
      new Uint32Array(na[i].data.buffer, na[i].data.byteOffset, na[i].data.length),
      na[i].name,
    );
  }
  if (c.tieEmbeddings) assert.equal(b.lmHead, b.embed, "tied lm_head shares the embedding");
}

async function rejectsWith(p: Promise<unknown>, ...fragments: (string | RegExp)[]): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof Error, String(e));
    for (const f of fragments) {
      if (typeof f === "string") assert.ok(e.message.includes(f), `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(f)}`);
      else assert.match(e.message, f);
    }
    return true;
  });
}

async function editJson(path: string, edit: (j: Record<string, unknown>) => void): Promise<void> {
  const j = JSON.parse(await readFile(path, "utf8"));
  edit(j);
  await writeFile(path, JSON.stringify(j));
}

describe("HF folder round trip", () => {
  test("single file: GQA + tied embeddings + qkv bias", async () => {
    const dir = fresh();
    const p = randomParams(qwenish, 1);
    const saved = await saveHfModel(dir, qwenish, p, {
      generationConfig: { eos_token_id: 2 },
      extraFiles: { "README.md": "hi", "tokenizer_config.json": { x: 1 } },
    });
    assert.deepEqual(saved.files, ["config.json", "generation_config.json", "README.md", "tokenizer_config.json", SINGLE_FILE]);
    const files = (await readdir(dir)).sort();
    assert.deepEqual(files, ["README.md", "config.json", "generation_config.json", SINGLE_FILE, "tokenizer_config.json"].sort());
    const cfg = JSON.parse(await readFile(join(dir, "config.json"), "utf8"));
    assert.equal(cfg.model_type, "qwen2");
    assert.equal(cfg.num_key_value_heads, 2);
    assert.equal(cfg.tie_word_embeddings, true);
    const st = await readSafetensors(join(dir, SINGLE_FILE));
    assert.equal(st.tensors.has("lm_head.weight"), false, "tied: lm_head omitted as HF does");
    assert.equal(st.metadata.format, "pt");
    const loaded = await loadHfModel(dir);
    assert.deepEqual(loaded.config, qwenish);
    assert.equal(loaded.hfConfig.model_type, "qwen2");
    assertSameParams(qwenish, p, loaded.params);
  });

  test("untied Llama without bias", async () => {
    const dir = fresh();
    const p = randomParams(llamaish, 2);
    await saveHfModel(dir, llamaish, p);
    const loaded = await loadHfModel(dir);
    assert.deepEqual(loaded.config, llamaish);
    assertSameParams(llamaish, p, loaded.params);
    assert.notEqual(loaded.params.lmHead, loaded.params.embed);
  });

  test("sharded (small maxShardBytes): index + model-0000i-of-0000N files, loads back equal", async () => {
    const dir = fresh();
    const p = randomParams(qwenish, 3);
    const saved = await saveHfModel(dir, qwenish, p, { maxShardBytes: 3000 });
    const shards = saved.files.filter((f) => f.startsWith("model-"));
    assert.ok(shards.length > 2, `expected several shards, got ${shards.length}`);
    for (const [i, f] of shards.entries()) {
      assert.equal(f, `model-${String(i + 1).padStart(5, "0")}-of-${String(shards.length).padStart(5, "0")}.safetensors`);
    }
    const index = JSON.parse(await readFile(join(dir, INDEX_FILE), "utf8"));
    assert.equal(Object.keys(index.weight_map).length, toNamed(qwenish, p).length);
    assert.equal(
      index.metadata.total_size,
      toNamed(qwenish, p).reduce((a, t) => a + t.data.length * 4, 0),
    );
    assert.equal(await stat(join(dir, SINGLE_FILE)).catch(() => null), null);
    const loaded = await loadHfModel(dir);
    assert.equal(loaded.files.length, shards.length);
    assertSameParams(qwenish, p, loaded.params);

    // re-saving as one file removes the stale shards and index; and back again
    const again = await saveHfModel(dir, qwenish, p);
    assert.deepEqual(again.removed.sort(), [...shards, INDEX_FILE].sort());
    assertSameParams(qwenish, p, (await loadHfModel(dir)).params);
    const third = await saveHfModel(dir, qwenish, p, { maxShardBytes: 3000 });
    assert.deepEqual(third.removed, [SINGLE_FILE]);
    assertSameParams(qwenish, p, (await loadHfModel(dir)).params);
  });

  test("F16 storage: config says float16, loaded values are the rounded ones", async () => {
    const dir = fresh();
    const p = randomParams(llamaish, 4);
    await saveHfModel(dir, llamaish, p, { dtype: "F16" });
    assert.equal(JSON.parse(await readFile(join(dir, "config.json"), "utf8")).torch_dtype, "float16");
    const loaded = await loadHfModel(dir);
    assert.deepEqual([...loaded.params.layers[0].wq], [...f16ToF32Array(f32ToF16Array(p.layers[0].wq))]);
  });

  test("rotary_emb buffers are ignored; a tied lm_head equal to the embedding is accepted", async () => {
    const dir = fresh();
    const p = randomParams(qwenish, 5);
    await saveHfModel(dir, qwenish, p);
    const named = toNamed(qwenish, p);
    await writeSafetensors(join(dir, SINGLE_FILE), [
      ...named,
      { name: "model.rotary_emb.inv_freq", shape: [2], data: new Float32Array([1, 0.5]) },
      { name: "model.layers.0.self_attn.rotary_emb.inv_freq", shape: [2], data: new Float32Array([1, 0.5]) },
      { name: "lm_head.weight", shape: [37, 16], data: p.embed },
    ]);
    assertSameParams(qwenish, p, (await loadHfModel(dir)).params);
  });

  test("hfConfigExtra adds fields but may not contradict the config", async () => {
    const dir = fresh();
    const p = randomParams(llamaish, 6);
    await saveHfModel(dir, llamaish, p, { hfConfigExtra: { bos_token_id: 1, eos_token_id: 2 } });
    assert.equal((await loadHfModel(dir)).hfConfig.eos_token_id, 2);
    await assert.rejects(saveHfModel(fresh(), llamaish, p, { hfConfigExtra: { hidden_size: 32 } }), ConfigError);
    await assert.rejects(saveHfModel(fresh(), llamaish, p, { extraFiles: { "config.json": "{}" } }), /would overwrite/);
    await assert.rejects(saveHfModel(fresh(), llamaish, p, { extraFiles: { "../x": "{}" } }), /plain file name/);
  });

  test("params that do not fit the config are refused on save, naming the tensor", async () => {
    const p = randomParams(llamaish, 7);
    p.layers[0].wUp = new Float32Array(3);
    await rejectsWith(saveHfModel(fresh(), llamaish, p), '"model.layers.0.mlp.up_proj.weight"', "3 elements");
  });
});

describe("HF folder rejects mismatched or damaged checkpoints", () => {
  test("tensor shape differs from config.json: names file, tensor and shapes", async () => {
    const dir = fresh();
    await saveHfModel(dir, qwenish, randomParams(qwenish, 10));
    await editJson(join(dir, "config.json"), (j) => {
      j.intermediate_size = 20;
    });
    await rejectsWith(loadHfModel(dir), SINGLE_FILE, '"model.layers.0.mlp.gate_proj.weight"', "[24, 16]", "[20, 16]");
    await editJson(join(dir, "config.json"), (j) => {
      j.intermediate_size = 24;
      j.num_key_value_heads = 4;
    });
    await rejectsWith(loadHfModel(dir), SINGLE_FILE, '"model.layers.0.self_attn.k_proj.weight"', "[8, 16]", "[16, 16]");
  });

  test("missing tensor", async () => {
    const dir = fresh();
    const p = randomParams(llamaish, 11);
    await saveHfModel(dir, llamaish, p);
    const named = toNamed(llamaish, p).filter((t) => t.name !== "model.layers.0.post_attention_layernorm.weight");
    await writeSafetensors(join(dir, SINGLE_FILE), named);
    await assert.rejects(loadHfModel(dir), CheckpointError);
    await rejectsWith(loadHfModel(dir), SINGLE_FILE, "missing", '"model.layers.0.post_attention_layernorm.weight"');
    // untied config, lm_head absent
    await writeSafetensors(
      join(dir, SINGLE_FILE),
      toNamed(llamaish, p).filter((t) => t.name !== "lm_head.weight"),
    );
    await rejectsWith(loadHfModel(dir), "missing", '"lm_head.weight"');
  });

  test("unexpected extra tensors are an error naming them (e.g. bias tensors for a no-bias config, an extra layer)", async () => {
    const dir = fresh();
    const p = randomParams(llamaish, 12);
    await saveHfModel(dir, llamaish, p);
    await writeSafetensors(join(dir, SINGLE_FILE), [
      ...toNamed(llamaish, p),
      { name: "model.layers.0.self_attn.q_proj.bias", shape: [8], data: new Float32Array(8) },
      { name: "model.layers.1.input_layernorm.weight", shape: [8], data: new Float32Array(8) },
    ]);
    await rejectsWith(
      loadHfModel(dir),
      SINGLE_FILE,
      "2 tensor(s)",
      '"model.layers.0.self_attn.q_proj.bias"',
      '"model.layers.1.input_layernorm.weight"',
    );
  });

  test("tied config but a different lm_head.weight", async () => {
    const dir = fresh();
    const p = randomParams(qwenish, 13);
    await saveHfModel(dir, qwenish, p);
    const head = p.embed.slice();
    head[5] += 1;
    await writeSafetensors(join(dir, SINGLE_FILE), [...toNamed(qwenish, p), { name: "lm_head.weight", shape: [37, 16], data: head }]);
    await rejectsWith(loadHfModel(dir), '"lm_head.weight" differs', "tie_word_embeddings");
  });

  test("truncated shard", async () => {
    const dir = fresh();
    await saveHfModel(dir, qwenish, randomParams(qwenish, 14), { maxShardBytes: 3000 });
    const shard = join(dir, (await readdir(dir)).find((f) => f.startsWith("model-00002-of-")) as string);
    const size = (await stat(shard)).size;
    await truncate(shard, size - 10);
    await rejectsWith(loadHfModel(dir), shard, /tensor ".+"/, "truncated");
  });

  test("index problems: missing shard, tensor not where the index says, shard from another save", async () => {
    const dir = fresh();
    const p = randomParams(qwenish, 15);
    await saveHfModel(dir, qwenish, p, { maxShardBytes: 3000 });
    const indexPath = join(dir, INDEX_FILE);
    const index = JSON.parse(await readFile(indexPath, "utf8"));
    const shards = [...new Set(Object.values(index.weight_map) as string[])];

    // wrong shard for one tensor
    await editJson(indexPath, (j) => {
      (j.weight_map as Record<string, string>)["model.norm.weight"] = shards[0];
    });
    await rejectsWith(loadHfModel(dir), INDEX_FILE, '"model.norm.weight"', shards[0]);
    // a tensor the index does not list
    await editJson(indexPath, (j) => {
      delete (j.weight_map as Record<string, string>)["model.norm.weight"];
    });
    await rejectsWith(loadHfModel(dir), '"model.norm.weight"', "does not list it");
    // a path outside the folder
    await editJson(indexPath, (j) => {
      (j.weight_map as Record<string, string>)["model.norm.weight"] = "../evil.safetensors";
    });
    await rejectsWith(loadHfModel(dir), INDEX_FILE, "not a plain file name");
    await writeFile(indexPath, JSON.stringify(index));
    assertSameParams(qwenish, p, (await loadHfModel(dir)).params);

    // missing shard
    await copyFile(join(dir, shards[1]), join(root, "keep.safetensors"));
    await unlink(join(dir, shards[1]));
    await rejectsWith(loadHfModel(dir), INDEX_FILE, `"${shards[1]}"`, "does not exist");

    // a shard left over from a different save of the same layout
    const other = fresh();
    await saveHfModel(other, qwenish, randomParams(qwenish, 99), { maxShardBytes: 3000 });
    await copyFile(join(other, shards[1]), join(dir, shards[1]));
    await rejectsWith(loadHfModel(dir), shards[1], "different save", "interrupted");
    await copyFile(join(root, "keep.safetensors"), join(dir, shards[1]));
    assertSameParams(qwenish, p, (await loadHfModel(dir)).params);

    // broken index JSON
    await writeFile(indexPath, "{ nope");
    await rejectsWith(loadHfModel(dir), INDEX_FILE, "not valid JSON");
    await writeFile(indexPath, JSON.stringify({ weight_map: [] }));
    await rejectsWith(loadHfModel(dir), INDEX_FILE, "weight_map");
  });

  test("config.json problems name config.json and the field", async () => {
    const dir = fresh();
    await saveHfModel(dir, llamaish, randomParams(llamaish, 16));
    const cfgPath = join(dir, "config.json");
    const good = await readFile(cfgPath, "utf8");
    await editJson(cfgPath, (j) => {
      delete j.hidden_size;
    });
    await rejectsWith(loadHfModel(dir), "config.json", "hidden_size");
    await editJson(cfgPath, (j) => {
      j.hidden_size = 8;
      j.num_key_value_heads = 3;
    });
    await rejectsWith(loadHfModel(dir), "config.json", "num_key_value_heads");
    await editJson(cfgPath, (j) => {
      j.num_key_value_heads = 2;
      j.model_type = "gpt2";
    });
    await rejectsWith(loadHfModel(dir), "config.json", 'model_type "gpt2"');
    await writeFile(cfgPath, "not json");
    await rejectsWith(loadHfModel(dir), "config.json", "not valid JSON");
    await unlink(cfgPath);
    await rejectsWith(loadHfModel(dir), "config.json", "file not found");
    await writeFile(cfgPath, good);
    await loadHfModel(dir);
  });

  test("no weights, or ambiguous weights", async () => {
    const dir = fresh();
    await saveHfModel(dir, llamaish, randomParams(llamaish, 17));
    await writeFile(join(dir, INDEX_FILE), JSON.stringify({ weight_map: {} }));
    await rejectsWith(loadHfModel(dir), "ambiguous");
    await unlink(join(dir, INDEX_FILE));
    await unlink(join(dir, SINGLE_FILE));
    await writeFile(join(dir, "pytorch_model.bin"), "x");
    await rejectsWith(loadHfModel(dir), `no ${SINGLE_FILE}`, "PyTorch .bin");
  });

  test("unsupported dtype of a needed tensor names it", async () => {
    const dir = fresh();
    const p = randomParams(llamaish, 18);
    await saveHfModel(dir, llamaish, p);
    // hand-craft model.norm.weight as I32 bytes of the right size
    const named = toNamed(llamaish, p).filter((t) => t.name !== "model.norm.weight");
    await writeSafetensors(join(dir, SINGLE_FILE), named);
    const bytes = await readFile(join(dir, SINGLE_FILE));
    const hlen = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + hlen).toString("utf8"));
    const end = bytes.length - 8 - hlen;
    header["model.norm.weight"] = { dtype: "I32", shape: [8], data_offsets: [end, end + 32] };
    const h = Buffer.from(JSON.stringify(header));
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(h.length));
    await writeFile(join(dir, SINGLE_FILE), Buffer.concat([prefix, h, bytes.subarray(8 + hlen), Buffer.alloc(32)]));
    await rejectsWith(loadHfModel(dir), SINGLE_FILE, '"model.norm.weight"', "unsupported dtype I32");
  });
});
