// The TRL hand-off without TRL: the run config's trainer/trl fields, the DPOConfig and LoraConfig
// values written to dpo_config.yaml (golden text, and what a YAML 1.1 reader gets back), launch.sh,
// train.jsonl's rows, the log tail and progress parsing, and `srlm export-pairs --format trl`.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { parse as parseYaml } from "yaml";
import { exportPairsCommand, trlPairsOfRun } from "../../src/cli/export-pairs.js";
import { configYaml, type RunConfig, runConfig, TRL_MAPPED_FIELDS } from "../../src/loop/config.js";
import type { PairRecord } from "../../src/loop/records.js";
import {
  dpoConfigYaml,
  LogTail,
  launchCommand,
  launchScript,
  peftLoraConfig,
  pyYamlNumber,
  shellQuote,
  tqdmSteps,
  trlDpoConfig,
  trlTrainRows,
} from "../../src/loop/trl.js";
import type { LoopPrompt, World } from "../../src/loop/world.js";
import type { Tokenizer } from "../../src/tokenizer/tokenizer.js";

const tmp = await mkdtemp(join(tmpdir(), "srlm-trl-unit-"));
after(() => rm(tmp, { recursive: true, force: true }));

/** A user-model run with trainer trl, plus `extra` (deep fields replaced whole). */
function trlRun(extra: Record<string, unknown> = {}): RunConfig {
  return runConfig({
    model: { path: "/models/my-llama" },
    prompts: { source: "file", path: "prompts.jsonl", count: 200 },
    trainer: "trl",
    lora: { r: 16, lora_alpha: 32 },
    dpo: { learning_rate: 5e-7, beta: 0.1 },
    ...extra,
  });
}

test("trainer trl fills the trl block with its defaults, and the resolved config reads back as written", () => {
  const c = trlRun();
  assert.deepEqual(c.trl, {
    python: "python3",
    command: null,
    accelerate_config: null,
    launch_args: [],
    env: {},
    bf16: true,
    max_prompt_length: null,
    config: {},
  });
  const text = configYaml(c);
  assert.match(text, /\ntrainer: trl\ntrl:\n {2}python: python3\n/, "trl right after trainer");
  assert.equal(configYaml(runConfig(parseYaml(text))), text, "--resume compares this text");
  // A builtin run's resolved config does not change: no trainer, no trl.
  const builtin = runConfig({ model: { path: "/m" }, prompts: { source: "file", path: "p.jsonl" } });
  assert.equal(builtin.trainer, undefined);
  assert.doesNotMatch(configYaml(builtin), /trainer|trl/);
});

test("trainer trl refuses what TRL's DPOTrainer does not compute, naming the field", () => {
  const bad = (raw: Record<string, unknown>, re: RegExp) => assert.throws(() => runConfig(raw), re);
  bad({ trainer: "trl" }, /model\.path: trainer "trl" trains your own model/);
  bad(
    { trainer: "trl", model: { path: "m.gguf" }, prompts: { source: "file", path: "p" } },
    /model\.path: .*a \.gguf file is not a training checkpoint/,
  );
  const user = { model: { path: "/m" }, prompts: { source: "file", path: "p" } };
  bad({ ...user, trainer: "trl", method: "cream" }, /method: method "cream" needs the soft-label loss/);
  bad({ ...user, trainer: "trl", method: "scir" }, /method: method "scir" adds a consistency penalty/);
  bad({ ...user, trainer: "trl", pairs: { truncate: "first_difference" } }, /pairs\.truncate/);
  bad({ ...user, trainer: "trl", dpo: { length_normalize: true } }, /dpo\.length_normalize: TRL has no length-normalised/);
  bad({ ...user, trl: {} }, /trl: the trl block applies only to trainer "trl"/);
  bad({ ...user, trainer: "trl", trl: { config: { beta: 0.3 } } }, /trl\.config\.beta: srlm writes DPOConfig beta itself/);
  bad({ ...user, trainer: "trl", trl: { env: { "BAD-NAME": "x" } } }, /trl\.env\.BAD-NAME|an environment variable name/);
  bad(
    { ...user, trainer: "trl", trl: { command: "torchrun", accelerate_config: "ds.yaml" } },
    /accelerate_config: is passed as --config_file/,
  );
  bad({ ...user, trainer: "trl", trl: { bf16: "yes" } }, /trl\.bf16/);
  // Answer-pair methods are fine.
  for (const method of ["sr", "spin", "meta", "temporal"]) assert.equal(runConfig({ ...user, trainer: "trl", method }).method, method);
});

test("dpo_config.yaml: DPOConfig and LoraConfig under TRL's and PEFT's names (golden)", () => {
  const c = trlRun({ dpo: { learning_rate: 5e-7, beta: 0.1, adam_epsilon: 1e-8 } });
  const text = dpoConfigYaml(c, 2, {
    runDir: "runs/mine",
    modelPath: "/models/my-llama",
    initAdapter: "/work/runs/mine/iter-1/trl/output",
    maxSeqLen: 4096,
  });
  assert.equal(
    text,
    `# srlm run runs/mine, iteration 2: the DPO step M2 → M3 in TRL. train_dpo.py reads this file.
# Written by srlm (src/loop/trl.ts) from the run's dpo:, lora: and trl: blocks: change those, not this file.
# Paths without a leading / are relative to this file's folder.
model_name_or_path: /models/my-llama
init_adapter: /work/runs/mine/iter-1/trl/output
train_file: train.jsonl
output_adapter: output
metrics_file: metrics.jsonl
# peft.LoraConfig: a new adapter's settings when init_adapter is null; M_t's adapter_config.json has the same values.
lora:
  r: 16
  lora_alpha: 32
  lora_dropout: 0
  target_modules: [q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]
  bias: none
  task_type: CAUSAL_LM
# trl.DPOConfig (train_dpo.py adds model_adapter_name and ref_adapter_name when it continues init_adapter).
dpo:
  output_dir: checkpoints
  seed: 1002
  learning_rate: 5.0e-7
  lr_scheduler_type: linear
  warmup_steps: 0
  num_train_epochs: 3
  max_steps: -1
  per_device_train_batch_size: 8
  gradient_accumulation_steps: 1
  max_grad_norm: 1
  weight_decay: 0
  adam_beta1: 0.9
  adam_beta2: 0.999
  adam_epsilon: 1.0e-8
  logging_steps: 10
  save_strategy: steps
  save_steps: 500
  save_total_limit: null
  beta: 0.1
  loss_type: sigmoid
  label_smoothing: 0
  rpo_alpha: null
  max_length: 4096
  max_prompt_length: null
  bf16: true
  report_to: none`,
  );
  // What a YAML reader gets back is the mapping itself (numbers as numbers).
  const back = parseYaml(text) as Record<string, Record<string, unknown>>;
  assert.deepEqual(back.dpo, trlDpoConfig(c, 2, 4096));
  assert.deepEqual(back.lora, peftLoraConfig(c));
});

test("the mapping translates where srlm's meaning and transformers' differ, and passes trl.config through", () => {
  const c = trlRun({
    dpo: {
      learning_rate: 1e-4,
      lr_scheduler_type: "constant",
      warmup_ratio: 0.1,
      save_steps: 0,
      save_total_limit: 2,
      max_length: 512,
      rpo_alpha: 1,
      loss_type: "ipo",
    },
    trl: { bf16: false, max_prompt_length: 256, config: { gradient_checkpointing: true, report_to: "wandb", deepspeed: "/cfg/ds.json" } },
  });
  const d = trlDpoConfig(c, 1, 2048);
  assert.equal(d.lr_scheduler_type, "constant_with_warmup", "srlm's constant schedule keeps its warmup");
  assert.equal(d.warmup_ratio, 0.1);
  assert.equal(d.save_strategy, "no", "save_steps 0 = no checkpoints");
  assert.equal(d.save_steps, undefined);
  assert.equal(d.save_total_limit, 2);
  assert.equal(d.max_length, 512, "dpo.max_length wins over the context");
  assert.equal(d.max_prompt_length, 256);
  assert.equal(d.bf16, false);
  assert.equal(d.rpo_alpha, 1);
  assert.equal(d.loss_type, "ipo");
  assert.equal(d.seed, 1001, "seed × 1000 + t, as the builtin step");
  assert.equal(d.gradient_checkpointing, true);
  assert.equal(d.report_to, "wandb", "trl.config overrides the report_to default");
  assert.equal(d.deepspeed, "/cfg/ds.json");
  // Every field srlm maps itself is refused in trl.config (the list the config validation uses).
  const own = Object.keys(trlDpoConfig(trlRun(), 1, 2048)).filter((k) => k !== "report_to");
  for (const k of own) assert.ok((TRL_MAPPED_FIELDS as readonly string[]).includes(k), `${k} is in TRL_MAPPED_FIELDS`);
});

test("floats keep a dot and a signed exponent, which YAML 1.1 (PyYAML) needs to read them as floats", () => {
  assert.equal(pyYamlNumber(1e-8), "1.0e-8");
  assert.equal(pyYamlNumber(1.5e-7), "1.5e-7");
  assert.equal(pyYamlNumber(1e21), "1.0e+21");
  assert.equal(pyYamlNumber(0.000001), "0.000001");
  assert.equal(pyYamlNumber(0.1), "0.1");
  assert.equal(pyYamlNumber(3), "3");
  assert.equal(pyYamlNumber(-2), "-2");
  // The float pattern of PyYAML's resolver (YAML 1.1): a dot is required, an exponent needs its sign.
  const pyFloat = /^[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?$/;
  for (const x of [1e-8, 1.5e-7, 1e21, 5e-7, 0.1, 2.5]) assert.match(pyYamlNumber(x), pyFloat, String(x));
});

test("launch.sh: the environment, the launcher (default: accelerate through the configured Python), the script", () => {
  const c = trlRun();
  assert.equal(
    launchScript(c, 1, "runs/mine"),
    `#!/usr/bin/env bash
# srlm run runs/mine, iteration 1: the DPO step M1 → M2 in TRL.
# Written by srlm (src/loop/trl.ts) from the run's trl: block; srlm runs it and appends its output to log.txt.
# To train again by hand: remove output/ and run this file (a relaunch resumes from checkpoints/).
set -euo pipefail
cd "$(dirname "$0")"
exec python3 -m accelerate.commands.launch train_dpo.py dpo_config.yaml
`,
  );
  const multi = trlRun({
    trl: {
      python: "/opt/venv/bin/python",
      accelerate_config: "/cfg/deepspeed zero2.yaml",
      launch_args: ["--num_processes", 8],
      env: { CUDA_VISIBLE_DEVICES: "0,1,2,3,4,5,6,7", HF_HOME: "/data/hf cache", NOTE: "it's" },
    },
  });
  const text = launchScript(multi, 3, "runs/big");
  assert.match(text, /\nexport CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6,7\nexport HF_HOME='\/data\/hf cache'\nexport NOTE='it'\\''s'\n/);
  assert.ok(
    text.endsWith(
      "\nexec /opt/venv/bin/python -m accelerate.commands.launch --config_file '/cfg/deepspeed zero2.yaml' --num_processes 8 train_dpo.py dpo_config.yaml\n",
    ),
    text,
  );
  assert.equal(
    launchCommand(trlRun({ trl: { command: "accelerate launch", accelerate_config: "/cfg/fsdp.yaml" } }).trl!),
    "accelerate launch --config_file /cfg/fsdp.yaml train_dpo.py dpo_config.yaml",
  );
  assert.equal(
    launchCommand(trlRun({ trl: { command: "torchrun --nproc_per_node 8" } }).trl!),
    "torchrun --nproc_per_node 8 train_dpo.py dpo_config.yaml",
  );
  assert.equal(shellQuote("a b"), "'a b'");
  assert.equal(shellQuote("/x/y.z"), "/x/y.z");
});

test("train.jsonl rows: the prompt the loop sampled from, BOS as text, the judge prompt for judge pairs", () => {
  const tok = {
    bosId: 1,
    decode: (ids: readonly number[]) => (ids[0] === 1 ? "<s>" : "?"),
  } as unknown as Tokenizer;
  const world = {
    tokenizer: tok,
    answerPrompt: (p: LoopPrompt) => `[user] ${p.instruction} [assistant]`,
    judgePrompt: (p: LoopPrompt, a: string) => `[user] judge ${a} for ${p.instruction} [assistant]`,
  } as unknown as World;
  const prompts: LoopPrompt[] = [{ id: "a", instruction: "sort 3 1 2" }];
  const pair = (extra: Partial<PairRecord>): PairRecord => ({
    prompt: [{ role: "user", content: "sort 3 1 2" }],
    chosen: [{ role: "assistant", content: "1 2 3" }],
    rejected: [{ role: "assistant", content: "3 2 1" }],
    prompt_id: "a",
    score_chosen: 5,
    score_rejected: 1,
    iteration: 1,
    method: "meta",
    ...extra,
  });
  assert.deepEqual(trlTrainRows(world, prompts, [pair({}), pair({ kind: "judge", judged_answer: "1 2 3" })]), [
    { prompt: "<s>[user] sort 3 1 2 [assistant]", chosen: "1 2 3", rejected: "3 2 1" },
    { prompt: "<s>[user] judge 1 2 3 for sort 3 1 2 [assistant]", chosen: "1 2 3", rejected: "3 2 1" },
  ]);
  const noBos = { ...world, tokenizer: { ...tok, bosId: undefined } } as unknown as World;
  assert.equal(trlTrainRows(noBos, prompts, [pair({})])[0].prompt, "[user] sort 3 1 2 [assistant]");
  assert.throws(() => trlTrainRows(world, [], [pair({})]), /prompt a, which is not among/);
});

test("progress and the log tail follow tqdm's redrawn lines", () => {
  assert.deepEqual(tqdmSteps(" 40%|████      | 2/5 [00:03<00:04,  1.50s/it]"), { done: 2, total: 5 });
  assert.equal(tqdmSteps("Map: 100%|██████████| 4/4 [00:00<00:00, 200 examples/s]"), undefined, "data set bars are labelled");
  const tail = new LogTail(3);
  tail.push("a\nb\n  0%|  | 0/5 [\r 20%|  | 1/5 [\r");
  tail.push(" 100%|  | 5/5 [\nTraceback (most recent call last):\n  File x\nValueError: bad");
  assert.equal(tail.text(), "Traceback (most recent call last):\n  File x\nValueError: bad");
  const t2 = new LogTail(5);
  t2.push("one\n 10%| | 1/9 [\r 50%| | 4/9 [\ntwo\n");
  assert.equal(t2.text(), "one\n 50%| | 4/9 [\ntwo", "a redrawn line counts once, as last drawn");
});

test("export-pairs: clean conversational rows of the latest (or a named) iteration; clear errors", async () => {
  const run = join(tmp, "run");
  await mkdir(join(run, "iter-1"), { recursive: true });
  await mkdir(join(run, "iter-2"), { recursive: true });
  await mkdir(join(run, "iter-3"), { recursive: true });
  await writeFile(join(run, "config.resolved.yaml"), "seed: 1\n");
  const rec = (i: number, extra: Record<string, unknown> = {}) => ({
    prompt: [{ role: "user", content: `q${i}` }],
    chosen: [{ role: "assistant", content: `good${i}` }],
    rejected: [{ role: "assistant", content: `bad${i}` }],
    prompt_id: `p${i}`,
    score_chosen: 4,
    score_rejected: 1,
    iteration: 1,
    method: "meta",
    ...extra,
  });
  const lines = (rs: unknown[]) => rs.map((r) => `${JSON.stringify(r)}\n`).join("");
  await writeFile(join(run, "iter-1", "pairs.jsonl"), lines([rec(1), rec(2), rec(3, { kind: "judge", judged_answer: "x" })]));
  await writeFile(join(run, "iter-2", "pairs.jsonl"), "");
  // iter-3 has not reached its pairs stage.

  const r1 = await trlPairsOfRun(run, 1);
  assert.equal(r1.judgePairs, 1, "judge pairs left out and counted");
  assert.deepEqual(r1.rows[0], {
    prompt: [{ role: "user", content: "q1" }],
    chosen: [{ role: "assistant", content: "good1" }],
    rejected: [{ role: "assistant", content: "bad1" }],
  });
  await assert.rejects(
    trlPairsOfRun(run),
    /iter-2\/pairs\.jsonl: no pairs to export: it made no pairs/,
    "latest with pairs.jsonl is 2, which is empty",
  );
  await assert.rejects(
    trlPairsOfRun(run, 3),
    /iter-3: no pairs\.jsonl: iteration 3 has not reached its pairs stage \(iterations with pairs: 1, 2\)/,
  );
  await assert.rejects(trlPairsOfRun(run, 7), /no iteration 7 \(iterations with pairs: 1, 2\)/);
  await assert.rejects(trlPairsOfRun(join(tmp, "nope")), /nope: no such run directory/);
  const fresh = join(tmp, "fresh");
  await mkdir(fresh);
  await assert.rejects(trlPairsOfRun(fresh), /no iter-<t>\/pairs\.jsonl \(not a run directory\?\)/);

  const out = join(tmp, "pairs.trl.jsonl");
  const stderr = process.stderr.write;
  let said = "";
  process.stderr.write = ((s: string) => {
    said += s;
    return true;
  }) as typeof process.stderr.write;
  try {
    await exportPairsCommand([run, "--format", "trl", "--iteration", "1", "--out", out]);
  } finally {
    process.stderr.write = stderr;
  }
  assert.match(said, /2 pairs of iteration 1, TRL conversational format .*1 judge-training pairs left out/);
  const written = (await readFile(out, "utf8"))
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.equal(written.length, 2);
  assert.deepEqual(Object.keys(written[1]), ["prompt", "chosen", "rejected"], "no srlm fields");
  await assert.rejects(exportPairsCommand([run, "--format", "csv"]), /--format must be "trl"/);
  await assert.rejects(exportPairsCommand([run, "--format", "trl", "--iteration", "0"]), /--iteration must be an iteration number/);
});
