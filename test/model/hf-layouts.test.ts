// Hugging Face checkpoint layouts: tiny random checkpoints written here the way transformers and the
// Hub ship them (test/hf-fixtures.ts, not srlm's writer) in the Llama 3, Qwen2 and SmolLM2 layouts —
// untied / tied embeddings without lm_head.weight, q/k/v bias, GQA and MQA, sharded with an index,
// BF16 and F16 — each with its tokenizer.json, tokenizer_config.json chat template and generation
// config. Each is loaded with loadModelFolder and checked against the same weights saved by srlm as a
// single F32 model.safetensors:
//  - every tensor equals the checkpoint's values as stored (BF16/F16 rounding, decoded exactly);
//  - the logits on a chat prompt equal, bit for bit, those of the F32 folder holding those values;
//  - against the unrounded F32 weights, next-token log-probs differ by no more than the storage
//    rounding explains: ≤ 0.25 for BF16 (measured 6.2e-2), ≤ 0.03 for F16 (measured 8.0e-3), on
//    log-probs spread over ≈ 20 nats (printed as diagnostics).
// Then the errors: each names the file and the field or tensor that is wrong.
import assert from "node:assert/strict";
import { readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createKernels } from "../../src/engine/ort.js";
import { saveHfModel } from "../../src/io/hf-folder.js";
import { loadModelFolder, type ModelFolder } from "../../src/io/model-folder.js";
import type { LlamaConfig, LlamaConfigInput } from "../../src/model/config.js";
import { createModel, forward } from "../../src/model/llama.js";
import { type LlamaParams, toNamed } from "../../src/model/params.js";
import { HfTokenizer } from "../../src/tokenizer/hf.js";
import { byteBpeTokenizer, chatmlTemplate, type HfTensor, LLAMA3_TEMPLATE, rounded, type StDtype, writeHfFolder } from "../hf-fixtures.js";
import { logSoftmaxRows, maxAbsDiff, spreadModel } from "../llama-cpp-fixtures.js";

const kernels = await createKernels("reference");
let root: string;
let n = 0;
before(async () => {
  root = await mkdtemp(join(tmpdir(), "srlm-hf-layouts-"));
});
after(async () => {
  await kernels.dispose();
  rmSync(root, { recursive: true, force: true });
});
const fresh = () => join(root, `m${n++}`);

const LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"];
const CHATML_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
const BPE_SIZE = 256 + 13; // byte symbols + merges in hf-fixtures

interface Layout {
  /** What loadModelFolder must make of config.json. */
  expected: LlamaConfigInput;
  config: Record<string, unknown>;
  dtype: StDtype;
  shards: number;
  files: Record<string, string | Record<string, unknown>>;
  /** Text the chat template renders for MESSAGES. */
  rendered: string;
  eosIds: number[];
  bosInChat?: number;
}

const MESSAGES = [{ role: "user", content: "hello world, the world is hello" }];
const TOL: Record<StDtype, number> = { F32: 0, BF16: 0.25, F16: 0.03 };

const llamaId = (s: string) => BPE_SIZE + LLAMA3_SPECIALS.indexOf(s);
const qwenId = (s: string) => BPE_SIZE + CHATML_SPECIALS.indexOf(s);
const smolId = (s: string) => CHATML_SPECIALS.indexOf(s);

const LAYOUTS: Record<string, Layout> = {
  "Llama 3 (GQA, untied lm_head, rope_theta 5e5), BF16 in 3 shards": {
    expected: {
      vocabSize: BPE_SIZE + 5,
      dim: 64,
      nLayers: 2,
      nHeads: 4,
      nKvHeads: 2,
      headDim: 16,
      hiddenDim: 96,
      ropeTheta: 500000,
      normEps: 1e-5,
      maxSeqLen: 256,
      tieEmbeddings: false,
      qkvBias: false,
    },
    config: {
      architectures: ["LlamaForCausalLM"],
      attention_bias: false,
      attention_dropout: 0.0,
      bos_token_id: llamaId("<|begin_of_text|>"),
      eos_token_id: [llamaId("<|end_of_text|>"), llamaId("<|eot_id|>")],
      head_dim: 16,
      hidden_act: "silu",
      hidden_size: 64,
      initializer_range: 0.02,
      intermediate_size: 96,
      max_position_embeddings: 256,
      mlp_bias: false,
      model_type: "llama",
      num_attention_heads: 4,
      num_hidden_layers: 2,
      num_key_value_heads: 2,
      pretraining_tp: 1,
      rms_norm_eps: 1e-5,
      rope_scaling: null,
      rope_theta: 500000.0,
      tie_word_embeddings: false,
      torch_dtype: "bfloat16",
      transformers_version: "4.45.0",
      use_cache: true,
      vocab_size: BPE_SIZE + 5,
    },
    dtype: "BF16",
    shards: 3,
    files: {
      "tokenizer.json": byteBpeTokenizer(LLAMA3_SPECIALS, { specialsFirst: false, bos: "<|begin_of_text|>" }),
      "tokenizer_config.json": {
        bos_token: "<|begin_of_text|>",
        eos_token: "<|eot_id|>",
        chat_template: LLAMA3_TEMPLATE,
        clean_up_tokenization_spaces: true,
        model_max_length: 256,
        tokenizer_class: "PreTrainedTokenizerFast",
      },
      "generation_config.json": {
        bos_token_id: llamaId("<|begin_of_text|>"),
        eos_token_id: [llamaId("<|end_of_text|>"), llamaId("<|eot_id|>")],
      },
    },
    rendered:
      "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhello world, the world is hello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
    eosIds: [llamaId("<|end_of_text|>"), llamaId("<|eot_id|>")],
    bosInChat: llamaId("<|begin_of_text|>"),
  },
  "Qwen2 (q/k/v bias, tied, vocab padded beyond the tokenizer), BF16 single file": {
    expected: {
      vocabSize: 288,
      dim: 64,
      nLayers: 2,
      nHeads: 4,
      nKvHeads: 2,
      hiddenDim: 96,
      ropeTheta: 1000000,
      normEps: 1e-6,
      maxSeqLen: 256,
      tieEmbeddings: true,
      qkvBias: true,
    },
    config: {
      architectures: ["Qwen2ForCausalLM"],
      attention_dropout: 0.0,
      bos_token_id: qwenId("<|endoftext|>"),
      eos_token_id: qwenId("<|im_end|>"),
      hidden_act: "silu",
      hidden_size: 64,
      initializer_range: 0.02,
      intermediate_size: 96,
      max_position_embeddings: 256,
      max_window_layers: 2,
      model_type: "qwen2",
      num_attention_heads: 4,
      num_hidden_layers: 2,
      num_key_value_heads: 2,
      rms_norm_eps: 1e-6,
      rope_scaling: null,
      rope_theta: 1000000.0,
      sliding_window: 256,
      tie_word_embeddings: true,
      torch_dtype: "bfloat16",
      transformers_version: "4.43.1",
      use_cache: true,
      use_sliding_window: false,
      vocab_size: 288,
    },
    dtype: "BF16",
    shards: 1,
    files: {
      "tokenizer.json": byteBpeTokenizer(CHATML_SPECIALS, { specialsFirst: false }),
      "tokenizer_config.json": {
        add_prefix_space: false,
        bos_token: null,
        chat_template: chatmlTemplate("You are a helpful assistant."),
        clean_up_tokenization_spaces: false,
        eos_token: "<|im_end|>",
        errors: "replace",
        model_max_length: 256,
        pad_token: "<|endoftext|>",
        split_special_tokens: false,
        tokenizer_class: "Qwen2Tokenizer",
        unk_token: null,
      },
      "generation_config.json": {
        bos_token_id: qwenId("<|endoftext|>"),
        do_sample: true,
        eos_token_id: [qwenId("<|im_end|>"), qwenId("<|endoftext|>")],
        pad_token_id: qwenId("<|endoftext|>"),
        temperature: 0.7,
        top_p: 0.8,
      },
    },
    rendered:
      "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nhello world, the world is hello<|im_end|>\n<|im_start|>assistant\n",
    eosIds: [qwenId("<|endoftext|>"), qwenId("<|im_end|>")],
  },
  "SmolLM2 (llama, MQA, tied, specials first), F16 in 2 shards": {
    expected: {
      vocabSize: BPE_SIZE + 3,
      dim: 64,
      nLayers: 2,
      nHeads: 4,
      nKvHeads: 1,
      hiddenDim: 96,
      ropeTheta: 100000,
      normEps: 1e-5,
      maxSeqLen: 256,
      tieEmbeddings: true,
      qkvBias: false,
    },
    config: {
      architectures: ["LlamaForCausalLM"],
      attention_bias: false,
      attention_dropout: 0.0,
      bos_token_id: smolId("<|im_start|>"),
      eos_token_id: smolId("<|im_end|>"),
      hidden_act: "silu",
      hidden_size: 64,
      initializer_range: 0.041666666666666664,
      intermediate_size: 96,
      is_llama_config: true,
      max_position_embeddings: 256,
      mlp_bias: false,
      model_type: "llama",
      num_attention_heads: 4,
      num_hidden_layers: 2,
      num_key_value_heads: 1,
      pad_token_id: smolId("<|im_end|>"),
      pretraining_tp: 1,
      rms_norm_eps: 1e-5,
      rope_interleaved: false,
      rope_scaling: null,
      rope_theta: 100000,
      tie_word_embeddings: true,
      torch_dtype: "float16",
      transformers_version: "4.42.3",
      use_cache: true,
      vocab_size: BPE_SIZE + 3,
    },
    dtype: "F16",
    shards: 2,
    files: {
      "tokenizer.json": byteBpeTokenizer(CHATML_SPECIALS, { specialsFirst: true }),
      "tokenizer_config.json": {
        add_prefix_space: false,
        bos_token: "<|im_start|>",
        chat_template: chatmlTemplate("You are a helpful AI assistant named SmolLM, trained by Hugging Face"),
        clean_up_tokenization_spaces: false,
        eos_token: "<|im_end|>",
        model_max_length: 256,
        pad_token: "<|im_end|>",
        tokenizer_class: "GPT2Tokenizer",
        unk_token: "<|endoftext|>",
        vocab_size: 49152,
      },
      "generation_config.json": { bos_token_id: smolId("<|im_start|>"), eos_token_id: smolId("<|im_end|>") },
    },
    rendered:
      "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nhello world, the world is hello<|im_end|>\n<|im_start|>assistant\n",
    eosIds: [smolId("<|im_end|>")],
  },
};

/** Random weights with spread-out logits (llama-cpp-fixtures' spreadModel) for `c`. */
function weights(c: LlamaConfigInput, seed: number): { config: LlamaConfig; params: LlamaParams; tensors: HfTensor[] } {
  const { config, params } = spreadModel(c, seed);
  return { config, params, tensors: toNamed(config, params) };
}

/** The params with every tensor as stored in `dtype` and read back. */
function roundedParams(config: LlamaConfig, params: LlamaParams, dtype: StDtype): LlamaParams {
  const { params: copy } = spreadModel(config, 0);
  const dst = toNamed(config, copy);
  toNamed(config, params).forEach((t, i) => {
    dst[i].data.set(rounded(t.data, dtype));
  });
  return copy;
}

async function logits(config: LlamaConfig, params: LlamaParams, ids: number[]): Promise<Float32Array> {
  const model = createModel(config, params, kernels);
  const r = await forward(model, { tokens: Int32Array.from(ids), B: 1, T: ids.length }, { returnLogits: true });
  return r.logits as Float32Array;
}

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

describe("Hugging Face layouts load with their tokenizer and chat template; logits equal the F32 single-file folder's", () => {
  for (const [name, L] of Object.entries(LAYOUTS)) {
    test(name, async (t) => {
      const dir = fresh();
      const { config, params, tensors } = weights(L.expected, 7);
      const written = writeHfFolder(dir, { config: L.config, tensors, dtype: L.dtype, shards: L.shards, files: L.files });
      assert.equal(written.length, L.shards, "weight files written");
      if (config.tieEmbeddings) assert.ok(!tensors.some((x) => x.name === "lm_head.weight"), "tied checkpoints carry no lm_head.weight");

      const f: ModelFolder = await loadModelFolder(dir);
      assert.deepEqual(f.config, config, "config.json maps onto the expected config");
      assert.equal(f.files.length, L.shards, "every shard read");
      assert.ok(f.tokenizer instanceof HfTokenizer, "tokenizer.json read as a Hugging Face tokenizer");
      assert.equal(
        f.tokenizer.vocabSize,
        BPE_SIZE + (L.files["tokenizer.json"] as { added_tokens: unknown[] }).added_tokens.length,
        "tokenizer size",
      );
      assert.ok(f.tokenizer.vocabSize <= config.vocabSize, "tokenizer fits the embedding");
      assert.deepEqual(f.eosIds, L.eosIds, "end-of-generation ids from the tokenizer, config.json and generation_config.json");
      if (config.tieEmbeddings) assert.equal(f.params.lmHead, f.params.embed, "tied: lm_head is the embedding");

      // Chat template → ids: the specials are single tokens, BOS only once (from the template).
      assert.equal(f.chatTemplate?.render(MESSAGES), L.rendered, "chat template from tokenizer_config.json");
      const ids = f.chatIds(MESSAGES);
      assert.equal(f.tokenizer.decode(ids, { keepSpecial: true }), L.rendered, "chat ids decode to the rendered text");
      const imStart =
        f.tokenizer instanceof HfTokenizer
          ? f.tokenizer.tokenToId(L.bosInChat === undefined ? "<|im_start|>" : "<|start_header_id|>")
          : undefined;
      assert.ok(imStart !== undefined && ids.filter((x) => x === imStart).length >= 2, "turn markers are single special tokens");
      if (L.bosInChat !== undefined) {
        assert.equal(ids[0], L.bosInChat, "BOS first");
        assert.equal(ids.filter((x) => x === L.bosInChat).length, 1, "BOS once (the template writes it; chatIds adds none)");
        assert.equal(f.tokenizer.encode("hello")[0], L.bosInChat, "plain encode adds BOS by the post-processor's convention");
      } else {
        assert.equal(ids[0], imStart, "no BOS before the first turn");
      }
      const hello = (f.tokenizer as HfTokenizer).tokenToId("hello");
      assert.ok(hello !== undefined && ids.includes(hello), 'BPE merges applied ("hello" is one token)');

      // Every tensor holds the stored (rounded) values, exactly.
      const want = roundedParams(config, params, L.dtype);
      const got = toNamed(config, f.params);
      toNamed(config, want).forEach((w, i) => {
        assert.deepEqual(bits(got[i].data), bits(w.data), `tensor ${w.name} equals the ${L.dtype} values`);
      });

      // The same values as a single-file F32 folder saved by srlm: identical logits, bit for bit.
      const ref = fresh();
      await saveHfModel(ref, config, want, { extraFiles: L.files });
      const r = await loadModelFolder(ref);
      assert.deepEqual(r.chatIds(MESSAGES), ids, "reference folder tokenizes the chat the same way");
      const a = await logits(f.config, f.params, ids);
      const b = await logits(r.config, r.params, ids);
      assert.deepEqual(bits(a), bits(b), "logits equal the F32 single-file folder's, bit for bit");

      // Against the unrounded weights: within what BF16/F16 storage explains.
      const V = config.vocabSize;
      const exact = logSoftmaxRows(await logits(config, params, ids), V);
      const stored = logSoftmaxRows(a, V);
      const { diff, at } = maxAbsDiff(stored, exact);
      const lowest = exact.reduce((m, x) => Math.min(m, x), 0);
      t.diagnostic(
        `${L.dtype}: max |Δ log p| vs unrounded F32 weights ${diff.toExponential(2)} over ${ids.length} positions (log-probs down to ${lowest.toFixed(1)})`,
      );
      assert.ok(lowest < -10, `the test model's log-probs should spread (lowest ${lowest.toFixed(1)})`);
      assert.ok(
        diff <= TOL[L.dtype],
        `${L.dtype}: max |Δ log p| ${diff.toExponential(2)} > ${TOL[L.dtype]} at position ${Math.floor(at / V)}, token ${at % V}`,
      );
      assert.ok(L.dtype === "F32" || diff > 0, "rounding changes the logits at all (else the comparison is vacuous)");
    });
  }
});

describe("errors name the file and the field or tensor", () => {
  const qwen = LAYOUTS["Qwen2 (q/k/v bias, tied, vocab padded beyond the tokenizer), BF16 single file"];
  const llama = LAYOUTS["Llama 3 (GQA, untied lm_head, rope_theta 5e5), BF16 in 3 shards"];

  async function rejects(dir: string, what: string, ...fragments: string[]): Promise<void> {
    await assert.rejects(loadModelFolder(dir), (e: unknown) => {
      assert.ok(e instanceof Error, `${what}: an Error, got ${String(e)}`);
      for (const f of fragments)
        assert.ok(e.message.includes(f), `${what}: message ${JSON.stringify(e.message)} lacks ${JSON.stringify(f)}`);
      return true;
    });
  }

  test("config.json: unsupported model_type, o_proj/MLP bias, sliding window, RoPE scaling", async () => {
    const { tensors } = weights(qwen.expected, 3);
    const cases: [string, Layout, Record<string, unknown>, string[]][] = [
      ["model_type", qwen, { model_type: "gemma2" }, ['model_type "gemma2" is not supported']],
      ["attention_bias on llama", llama, { attention_bias: true }, ["attention_bias: true", "o_proj"]],
      ["mlp_bias", llama, { mlp_bias: true }, ["mlp_bias: true"]],
      ["Qwen2 sliding window", qwen, { use_sliding_window: true, max_window_layers: 1 }, ["use_sliding_window: true", "from layer 1"]],
      ["Llama 3.1 RoPE", llama, { rope_scaling: { rope_type: "llama3", factor: 8 } }, ["rope_scaling", "llama3"]],
      ["hidden_act", llama, { hidden_act: "gelu" }, ['hidden_act "gelu"']],
    ];
    for (const [what, L, edit, fragments] of cases) {
      const dir = fresh();
      const ts = L === qwen ? tensors : weights(L.expected, 3).tensors;
      writeHfFolder(dir, { config: { ...L.config, ...edit }, tensors: ts, dtype: "BF16", shards: 1, files: L.files });
      await rejects(dir, what, join(dir, "config.json"), ...fragments);
    }
  });

  test("shards: wrong shape, unsupported dtype, missing tensor", async () => {
    const { tensors } = weights(llama.expected, 4);
    const shard = (i: number) => `model-0000${i}-of-00003.safetensors`;
    // wrong shape: layer 1's k_proj with the query heads' rows
    let dir = fresh();
    const bad = tensors.map((x) =>
      x.name === "model.layers.1.self_attn.k_proj.weight" ? { name: x.name, shape: [64, 64], data: new Float32Array(64 * 64) } : x,
    );
    writeHfFolder(dir, { config: llama.config, tensors: bad, dtype: "BF16", shards: 3, files: llama.files });
    const index = JSON.parse(readFileSync(join(dir, "model.safetensors.index.json"), "utf8")).weight_map as Record<string, string>;
    const kFile = index["model.layers.1.self_attn.k_proj.weight"];
    await rejects(dir, "wrong shape", join(dir, kFile), '"model.layers.1.self_attn.k_proj.weight"', "[64, 64]", "[32, 64]");

    // unsupported dtype (F64) in one shard
    dir = fresh();
    writeHfFolder(dir, {
      config: llama.config,
      tensors,
      dtype: "BF16",
      shards: 3,
      files: llama.files,
      dtypeOf: (name) => (name === "model.norm.weight" ? "F64" : "BF16"),
    });
    await rejects(dir, "F64", shard(3), '"model.norm.weight"', "unsupported dtype F64");

    // a tensor neither in the index nor in any shard
    dir = fresh();
    writeHfFolder(dir, {
      config: llama.config,
      tensors: tensors.filter((x) => x.name !== "model.layers.0.mlp.down_proj.weight"),
      dtype: "BF16",
      shards: 3,
      files: llama.files,
    });
    await rejects(dir, "missing tensor", join(dir, "model.safetensors.index.json"), "missing", '"model.layers.0.mlp.down_proj.weight"');
  });

  test("tokenizer larger than the embedding; eos_token_id outside the vocabulary; no tokenizer", async () => {
    const { tensors } = weights(qwen.expected, 5);
    let dir = fresh();
    writeHfFolder(dir, {
      config: { ...qwen.config, vocab_size: 260 },
      tensors: weights({ ...qwen.expected, vocabSize: 260 }, 5).tensors,
      dtype: "BF16",
      shards: 1,
      files: qwen.files,
    });
    await rejects(dir, "tokenizer too large", join(dir, "tokenizer.json"), `${BPE_SIZE + 3} token ids`, "vocab_size is 260");

    dir = fresh();
    writeHfFolder(dir, {
      config: qwen.config,
      tensors,
      dtype: "BF16",
      shards: 1,
      files: { ...qwen.files, "generation_config.json": { eos_token_id: [qwenId("<|im_end|>"), 999] } },
    });
    await rejects(dir, "eos out of range", join(dir, "generation_config.json"), "eos_token_id", "999");

    dir = fresh();
    writeHfFolder(dir, { config: qwen.config, tensors, dtype: "BF16", shards: 1, files: qwen.files });
    unlinkSync(join(dir, "tokenizer.json"));
    await rejects(dir, "no tokenizer", dir, "no tokenizer");
    writeFileSync(join(dir, "tokenizer.json"), "{ nope");
    await rejects(dir, "bad tokenizer.json", join(dir, "tokenizer.json"), "not valid JSON");
  });
});
