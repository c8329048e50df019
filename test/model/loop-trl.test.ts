/**
 * trainer: trl end to end, with a fake trainer in place of TRL (test/fake-trl-trainer.ts; no Python
 * stack here): a tiny random Llama 3–layout HF folder as model.path, two iterations. A random model's
 * judgements never parse, so the first run makes no pairs; its iteration-1 judgements are then
 * replaced by parsed ones and the iterations redone. Checked: the files srlm writes to iter-1/trl/, a
 * failing trainer's error with the log's tail, the adapter the trainer saves loaded as M2 (iteration
 * 2 samples with it: other log-probs than M1's on the same prompts and seeds), TRL's metrics in
 * metrics.jsonl, and a resume that finds the adapter and does not launch again.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { createKernels } from "../../src/engine/ort.js";
import { readJsonl, writeJsonl } from "../../src/io/jsonl.js";
import { loadRunConfig } from "../../src/loop/config.js";
import { type Candidate, type Judgement, type PairRecord, runLoop } from "../../src/loop/run.js";
import { shellQuote } from "../../src/loop/trl.js";
import { toNamed } from "../../src/model/params.js";
import { byteBpeTokenizer, LLAMA3_TEMPLATE, writeHfFolder } from "../hf-fixtures.js";
import { spreadModel } from "../llama-cpp-fixtures.js";

const tmp = await mkdtemp(join(tmpdir(), "srlm-loop-trl-"));
after(() => rm(tmp, { recursive: true, force: true }));

const SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"];
const BPE_SIZE = 256 + 13; // byte symbols + hf-fixtures' merges
const id = (s: string) => BPE_SIZE + SPECIALS.indexOf(s);

/** A tiny random Llama 3–layout folder, long enough for the rubric's judge prompt. */
function llama3Folder(dir: string): void {
  const { config, params } = spreadModel(
    { vocabSize: BPE_SIZE + 5, dim: 32, hiddenDim: 48, nHeads: 4, nKvHeads: 2, maxSeqLen: 1024, ropeTheta: 500000 },
    5,
  );
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

const fake = fileURLToPath(new URL("../fake-trl-trainer.ts", import.meta.url));
const fakeCommand = `${shellQuote(process.execPath)} --import ${shellQuote(import.meta.resolve("tsx"))} ${shellQuote(fake)}`;

test("trainer trl: files handed to the trainer, its adapter loaded as the next model, no relaunch on resume", async () => {
  const kernels = await createKernels("ort");
  try {
    const model = join(tmp, "llama3");
    llama3Folder(model);
    const promptsFile = join(tmp, "prompts.jsonl");
    const lines = ["hello world", "tell the world", "is the world hello", "hello hello"].map((instruction) => ({ instruction }));
    await writeFile(promptsFile, `${lines.map((l) => JSON.stringify(l)).join("\n")}\n`);
    const cfg = await loadRunConfig({
      set: [
        "iterations=2",
        `model.path=${model}`,
        "prompts.source=file",
        `prompts.path=${promptsFile}`,
        "prompts.count=4",
        "generate.n=2",
        "generate.max_new_tokens=6",
        "judge.samples=1",
        "judge.max_new_tokens=4",
        "lora.r=4",
        "trainer=trl",
        `trl.command=${JSON.stringify(fakeCommand)}`,
        "trl.env={SRLM_FAKE_TRL_FROM_CONFIG: exported}",
        'trl.launch_args=[--fake_flag, "1"]',
      ],
    });
    const dir = join(tmp, "run");
    const it1 = join(dir, "iter-1");
    const it2 = join(dir, "iter-2");
    const trlDir = join(it1, "trl");
    const quiet = { kernels, progress: false, log: () => {} };

    // Run 1: no judgement parses, so no pairs and no TRL step; M1's iteration-2 samples are the baseline.
    const r1 = await runLoop(cfg, dir, quiet);
    assert.equal(r1.finalDir, join(dir, "m1", "adapter"));
    assert.ok(!existsSync(trlDir), "no pairs, no TRL launch");
    const m1Samples = await readJsonl<Candidate>(join(it2, "candidates.jsonl"));

    // A judge that parses: candidate 0 gets 4, candidate 1 gets 1. Iteration 1 from its pairs on, and iteration 2, run again.
    const judgements = await readJsonl<Judgement>(join(it1, "judgements.jsonl"));
    await writeJsonl(
      join(it1, "judgements.jsonl"),
      judgements.map((j) => ({ ...j, text: `ok\nScore: ${j.candidate === 0 ? 4 : 1}`, score: j.candidate === 0 ? 4 : 1 })),
    );
    for (const f of ["pairs.jsonl", "pairs_stats.json", "eval.json", "times.json"]) await rm(join(it1, f), { force: true });
    await rm(it2, { recursive: true, force: true });

    // Run 2: the trainer fails; the error carries the log's tail and names the log.
    process.env.SRLM_FAKE_TRL_FAIL = "1";
    try {
      await assert.rejects(runLoop(cfg, dir, quiet), (e: Error) => {
        assert.match(e.message, /iteration 1: TRL DPO: .*launch\.sh exited with code 1 \(full log: .*log\.txt\)/);
        assert.match(e.message, /\n {2}RuntimeError: fake trainer: failing as asked/);
        return true;
      });
    } finally {
      delete process.env.SRLM_FAKE_TRL_FAIL;
    }
    assert.ok(!existsSync(join(trlDir, "output")), "no adapter after a failure");

    // The files srlm handed over.
    const pairs = await readJsonl<PairRecord>(join(it1, "pairs.jsonl"));
    assert.ok(pairs.length > 0);
    const rows = await readJsonl<{ prompt: string; chosen: string; rejected: string }>(join(trlDir, "train.jsonl"));
    assert.equal(rows.length, pairs.length, "one train.jsonl row per pair");
    assert.ok(rows[0].prompt.startsWith("<|begin_of_text|><|start_header_id|>user<|end_header_id|>"), rows[0].prompt);
    assert.ok(rows[0].prompt.endsWith("<|start_header_id|>assistant<|end_header_id|>\n\n"), "the chat template's assistant opener");
    assert.equal(rows[0].chosen, pairs[0].chosen[0].content);
    const dpoYaml = parseYaml(await readFile(join(trlDir, "dpo_config.yaml"), "utf8"));
    assert.equal(dpoYaml.model_name_or_path, model);
    assert.equal(dpoYaml.init_adapter, join(dir, "m1", "adapter"), "M1's (zero) adapter is continued");
    assert.equal(dpoYaml.lora.r, 4);
    assert.equal(dpoYaml.dpo.max_length, 1024, "the model's context when dpo.max_length is null");
    const launch = await readFile(join(trlDir, "launch.sh"), "utf8");
    assert.ok(launch.includes("\nexport SRLM_FAKE_TRL_FROM_CONFIG=exported\n"));
    assert.ok(launch.endsWith(`\nexec ${fakeCommand} --fake_flag 1 train_dpo.py dpo_config.yaml\n`), launch);
    assert.match(await readFile(join(trlDir, "train_dpo.py"), "utf8"), /DPOTrainer\(model=model, args=args/);

    // Run 3: the trainer succeeds; its adapter is M2 and iteration 2 samples with it.
    const logs: string[] = [];
    const r3 = await runLoop(cfg, dir, { kernels, progress: false, log: (l) => logs.push(l) });
    assert.equal(
      (await readFile(join(trlDir, "calls.txt"), "utf8")).trim().split("\n").length,
      2,
      "launched twice: the failure, then this",
    );
    assert.ok(logs.some((l) => /iteration 1: training M2 in TRL on \d+ pairs: .*launch\.sh/.test(l)));
    const ev1 = JSON.parse(await readFile(join(it1, "eval.json"), "utf8"));
    assert.equal(ev1.model_dir, join("iter-1", "trl", "output"), "M2 = the adapter TRL saved");
    assert.equal(r3.finalDir, join(trlDir, "output"), "iteration 2 made no pairs: M3 = M2");
    const m2Samples = await readJsonl<Candidate>(join(it2, "candidates.jsonl"));
    assert.equal(m2Samples.length, m1Samples.length);
    const moved = m2Samples.filter((c, i) => Math.abs(c.logprob - m1Samples[i].logprob) > 1e-4).length;
    assert.ok(moved > 0, "iteration 2 sampled with the TRL adapter: its log-probs differ from M1's on the same prompts and seeds");
    const m2 = r3.metrics[1];
    assert.equal(m2["train/steps"], 2, "TRL's log history in metrics.jsonl");
    assert.ok(Math.abs((m2["rewards/margins"] as number) - 0.06) < 1e-9, "mean of the logged margins");
    const log = await readFile(join(trlDir, "log.txt"), "utf8");
    assert.equal(log.match(/=== srlm: launch\.sh started/g)?.length, 2, "each launch appended to log.txt");
    assert.match(log, /fake trainer: saved/);

    // Run 4: killed after the TRL step, before iteration 1 was recorded: the adapter is reused, not retrained.
    await rm(join(it1, "eval.json"));
    await rm(join(it1, "times.json"));
    const logs4: string[] = [];
    const r4 = await runLoop(cfg, dir, { kernels, progress: false, log: (l) => logs4.push(l) });
    assert.equal((await readFile(join(trlDir, "calls.txt"), "utf8")).trim().split("\n").length, 2, "no third launch");
    assert.ok(logs4.some((l) => /iteration 1: TRL's adapter for M2 is in .* already: not trained again/.test(l)));
    assert.deepEqual(JSON.parse(await readFile(join(it1, "eval.json"), "utf8")), ev1);
    assert.equal(r4.finalDir, r3.finalDir);
  } finally {
    await kernels.dispose();
  }
});
