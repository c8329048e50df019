/**
 * The loop on the user's own model: a tiny random Llama 3–layout checkpoint (test/hf-fixtures.ts, the
 * way transformers writes it), prompts from a JSONL file, no gold scorer, LoRA training on the builtin
 * engine. A random model's judgements never parse, so the first run ends with no pairs (M2 = M1); then
 * its judgements are replaced by parsed ones (what a real judge would write) and the resumed run
 * builds pairs without gold, trains the LoRA adapter and saves it in PEFT's layout.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { createKernels } from "../../src/engine/ort.js";
import { readJsonl, writeJsonl } from "../../src/io/jsonl.js";
import { loadRunConfig } from "../../src/loop/config.js";
import { type Candidate, type Judgement, type PairRecord, runLoop } from "../../src/loop/run.js";
import { toNamed } from "../../src/model/params.js";
import { byteBpeTokenizer, LLAMA3_TEMPLATE, writeHfFolder } from "../hf-fixtures.js";
import { spreadModel } from "../llama-cpp-fixtures.js";

const tmp = await mkdtemp(join(tmpdir(), "srlm-loop-hf-"));
after(() => rm(tmp, { recursive: true, force: true }));

const SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"];
const BPE_SIZE = 256 + 13; // byte symbols + hf-fixtures' merges
const id = (s: string) => BPE_SIZE + SPECIALS.indexOf(s);

function llama3Folder(dir: string): void {
  // Long enough for the rubric's judge prompt (byte-level BPE with few merges: ≈ 1 token per byte).
  const { config, params } = spreadModel({ vocabSize: BPE_SIZE + 5, nHeads: 4, nKvHeads: 2, maxSeqLen: 1024, ropeTheta: 500000 }, 3);
  writeHfFolder(dir, {
    config: {
      architectures: ["LlamaForCausalLM"],
      model_type: "llama",
      hidden_size: config.dim,
      intermediate_size: config.hiddenDim,
      num_attention_heads: config.nHeads,
      num_key_value_heads: config.nKvHeads,
      num_hidden_layers: config.nLayers,
      max_position_embeddings: config.maxSeqLen,
      rms_norm_eps: config.normEps,
      rope_theta: config.ropeTheta,
      tie_word_embeddings: false,
      vocab_size: config.vocabSize,
      bos_token_id: id("<|begin_of_text|>"),
      eos_token_id: [id("<|end_of_text|>"), id("<|eot_id|>")],
      torch_dtype: "float32",
    },
    tensors: toNamed(config, params),
    dtype: "F32",
    shards: 1,
    files: {
      "tokenizer.json": byteBpeTokenizer(SPECIALS, { specialsFirst: false, bos: "<|begin_of_text|>" }),
      "tokenizer_config.json": { bos_token: "<|begin_of_text|>", eos_token: "<|eot_id|>", chat_template: LLAMA3_TEMPLATE },
    },
  });
}

test("model.path: an HF folder, prompts from a file, no gold; LoRA DPO on the builtin engine", async () => {
  const kernels = await createKernels("ort");
  try {
    const model = join(tmp, "llama3");
    llama3Folder(model);
    const promptsFile = join(tmp, "prompts.jsonl");
    const lines = ["hello world", "tell the world", "is the world hello", "hello hello"].map((instruction) => ({ instruction }));
    await writeFile(promptsFile, `${lines.map((l) => JSON.stringify(l)).join("\n")}\n`);
    const cfg = await loadRunConfig({
      set: [
        "iterations=1",
        `model.path=${model}`,
        "prompts.source=file",
        `prompts.path=${promptsFile}`,
        "prompts.count=4",
        "generate.n=2",
        "generate.max_new_tokens=6",
        "judge.samples=1",
        "judge.max_new_tokens=6",
        "lora.r=4",
        "dpo.learning_rate=1e-2",
        "dpo.per_device_train_batch_size=2",
        "dpo.beta=0.5",
      ],
    });
    const dir = join(tmp, "run");
    const logs: string[] = [];
    const r1 = await runLoop(cfg, dir, { kernels, progress: false, log: (l) => logs.push(l) });
    const it1 = join(dir, "iter-1");
    const cands = await readJsonl<Candidate>(join(it1, "candidates.jsonl"));
    assert.equal(cands.length, 8, "N = 2 candidates for each of the 4 prompts");
    assert.ok(
      cands.every((c) => c.gold === undefined),
      "no gold without a sandbox",
    );
    const prompts = await readJsonl<{ instruction: string; family?: string }>(join(it1, "prompts.jsonl"));
    assert.deepEqual(
      prompts.map((p) => [p.instruction, p.family]),
      lines.map((l) => [l.instruction, undefined]),
    );
    assert.ok(
      logs.some((l) => /iteration 1: no pairs/.test(l)),
      "random judgements do not parse: no pairs, M2 = M1",
    );
    assert.equal(r1.finalDir, join(dir, "m1", "adapter"), "M2 = M1 = base + the zero adapter");

    // A judge that parses: candidate 0 gets 4, candidate 1 gets 1 (the random model cannot write this itself).
    const judgements = await readJsonl<Judgement>(join(it1, "judgements.jsonl"));
    await writeJsonl(
      join(it1, "judgements.jsonl"),
      judgements.map((j) => ({ ...j, text: `ok\nScore: ${j.candidate === 0 ? 4 : 1}`, score: j.candidate === 0 ? 4 : 1 })),
    );
    for (const f of ["pairs.jsonl", "pairs_stats.json", "eval.json", "times.json"]) await rm(join(it1, f), { force: true });
    const r2 = await runLoop(cfg, dir, { kernels, progress: false, log: () => {} });

    const pairs = await readJsonl<PairRecord>(join(it1, "pairs.jsonl"));
    const distinct = new Set(cands.filter((c) => c.index === 0).map((c) => c.prompt_id)).size;
    assert.equal(pairs.length, distinct, "one pair per prompt");
    assert.ok(pairs.every((p) => p.gold_chosen === undefined && p.score_chosen === 4 && p.score_rejected === 1));
    const stats = JSON.parse(await readFile(join(it1, "pairs_stats.json"), "utf8"));
    assert.ok(Number.isNaN(stats["pairs/gold_gap"] ?? Number.NaN), "no gold gap without gold");
    assert.equal(r2.finalDir, join(it1, "train", "final"));
    // The DPO step trained a LoRA adapter in PEFT's layout; the user's folder is untouched.
    const adapterConfig = JSON.parse(await readFile(join(r2.finalDir, "adapter_config.json"), "utf8"));
    assert.equal(adapterConfig.r, 4);
    assert.equal(adapterConfig.peft_type, "LORA");
    assert.ok((await stat(join(r2.finalDir, "adapter_model.safetensors"))).size > 0);
    const m2 = r2.metrics[1];
    assert.equal(m2["pairs/count"], pairs.length);
    assert.ok((m2["train/steps"] as number) >= 1, "DPO steps ran");
    assert.ok((m2["rewards/margins"] as number) > 0, `the adapter learned the pairs (mean margin ${m2["rewards/margins"]})`);
    assert.equal(m2["eval/gold"], undefined, "no held-out evaluation of a user model");
  } finally {
    await kernels.dispose();
  }
});
