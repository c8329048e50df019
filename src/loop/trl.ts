/**
 * `trainer: trl`: the DPO step M_t → M_{t+1} handed to Hugging Face TRL (DPOTrainer with a PEFT LoRA
 * adapter, launched with accelerate, so DeepSpeed/FSDP and many GPUs are the user's accelerate config
 * away). For iteration t everything goes to iter-<t>/trl/:
 *
 *   train.jsonl        the pairs in TRL's standard format: the exact prompt text the loop sampled from
 *                      (chat template applied, BOS as text), chosen and rejected answers (src/io/trl.ts)
 *   dpo_config.yaml    the base model, M_t's adapter, DPOConfig and LoraConfig values under TRL's and
 *                      PEFT's own names, mapped from the run's dpo:, lora: and trl: blocks
 *   train_dpo.py       our script: loads the base model, continues M_t's adapter (a frozen second copy
 *                      is the reference, so the reference model is M_t as in the builtin step), runs
 *                      DPOTrainer, saves the adapter to output/ and the log history to metrics.jsonl
 *   launch.sh          the exact command (env exports, launcher, accelerate config, script)
 *   log.txt            everything launch.sh printed, appended per launch
 *   output/            the PEFT adapter (adapter_config.json + adapter_model.safetensors) = M_{t+1}
 *   checkpoints/       DPOTrainer's checkpoints; a relaunch resumes from the newest
 *
 * The loop runs launch.sh unless output/ holds an adapter already (a resumed run never retrains), then
 * checks the adapter against the run's lora block and hands output/ to LoopModels.use like any other
 * model folder. Why standard rather than conversational rows: TRL would render a conversational prompt
 * with the chat template and add nothing else, which differs from the loop's prompt wherever the model
 * has no template (srlm then uses the plain text and a line break) and for Meta-Rewarding's judge
 * pairs, whose prompt is rendered already; the standard rows carry the very text instead.
 */
import { spawn } from "node:child_process";
import { createWriteStream, existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { StringDecoder } from "node:string_decoder";
import { writeFileAtomic } from "../io/atomic.js";
import { CONFIG_FILE } from "../io/hf-folder.js";
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, loadLoraAdapter } from "../io/peft.js";
import { type TrlStandardRow, trlJsonl } from "../io/trl.js";
import type { LlamaConfig } from "../model/config.js";
import { progress as progressBar } from "../run/progress.js";
import { readJsonFile } from "../tokenizer/hf.js";
import { loraTargets } from "../train/lora.js";
import type { RunConfig, TrlSettings } from "./config.js";
import type { PairRecord } from "./records.js";
import type { LoopPrompt, World } from "./world.js";

/** iter-<t>/trl/ and what goes in it. */
export const TRL_DIR = "trl";
export const TRL_FILES = {
  train: "train.jsonl",
  config: "dpo_config.yaml",
  script: "train_dpo.py",
  launch: "launch.sh",
  log: "log.txt",
  metrics: "metrics.jsonl",
  output: "output",
  checkpoints: "checkpoints",
} as const;

/** The adapter names train_dpo.py gives M_t's adapter: the copy DPO trains, and the frozen reference. */
const TRAIN_ADAPTER = "default";
const REFERENCE_ADAPTER = "reference";

export class TrlError extends Error {
  override name = "TrlError";
}

// ---------------------------------------------------------------------------------------------
// The config mapping (pure)
// ---------------------------------------------------------------------------------------------

/** The run's trl block (trainer trl fills it with defaults). */
function trlOf(cfg: RunConfig): TrlSettings {
  if (!cfg.trl) throw new TrlError('the run config has no trl block (trainer "trl" fills it in)');
  return cfg.trl;
}

/**
 * DPOConfig values for iteration t, TRL's names, from the run's dpo block (the same step the builtin
 * trainer would take), plus trl.bf16, trl.max_prompt_length and trl.config. Where srlm's meaning and
 * transformers' differ the value is translated: srlm's "constant" schedule keeps its warmup
 * (constant_with_warmup), save_steps 0 means no checkpoints (save_strategy "no"), save_total_limit 0
 * keeps them all (None), max_length null is the model's context.
 */
export function trlDpoConfig(cfg: RunConfig, t: number, maxSeqLen: number): Record<string, unknown> {
  const d = cfg.dpo;
  const trl = trlOf(cfg);
  const warmup = d.warmup_steps > 0 || d.warmup_ratio > 0;
  const out: Record<string, unknown> = {
    output_dir: TRL_FILES.checkpoints,
    // The builtin step's seed (stages.ts): each iteration orders its pairs differently.
    seed: cfg.seed * 1000 + t,
    learning_rate: d.learning_rate,
    lr_scheduler_type: d.lr_scheduler_type === "constant" && warmup ? "constant_with_warmup" : d.lr_scheduler_type,
    // Only when set: recent transformers deprecate warmup_ratio.
    ...(d.warmup_ratio > 0 ? { warmup_ratio: d.warmup_ratio } : {}),
    warmup_steps: d.warmup_steps,
    num_train_epochs: d.num_train_epochs,
    max_steps: d.max_steps,
    per_device_train_batch_size: d.per_device_train_batch_size,
    gradient_accumulation_steps: d.gradient_accumulation_steps,
    max_grad_norm: d.max_grad_norm,
    weight_decay: d.weight_decay,
    adam_beta1: d.adam_beta1,
    adam_beta2: d.adam_beta2,
    adam_epsilon: d.adam_epsilon,
    logging_steps: d.logging_steps,
    save_strategy: d.save_steps > 0 ? "steps" : "no",
    ...(d.save_steps > 0 ? { save_steps: d.save_steps } : {}),
    save_total_limit: d.save_total_limit > 0 ? d.save_total_limit : null,
    beta: d.beta,
    loss_type: d.loss_type,
    label_smoothing: d.label_smoothing,
    rpo_alpha: d.rpo_alpha,
    max_length: d.max_length ?? maxSeqLen,
    max_prompt_length: trl.max_prompt_length,
    bf16: trl.bf16,
    // Nothing is sent anywhere unless the user asks (transformers would pick up any installed tracker).
    report_to: "none",
  };
  return { ...out, ...trl.config };
}

/** peft.LoraConfig values from the run's lora block (PEFT's names). */
export function peftLoraConfig(cfg: RunConfig): Record<string, unknown> {
  const l = cfg.lora;
  if (!l) throw new TrlError('trainer "trl" trains a LoRA adapter, but the run config has no lora block');
  return {
    r: l.r,
    lora_alpha: l.lora_alpha,
    lora_dropout: l.lora_dropout,
    target_modules: loraTargets.filter((m) => l.target_modules.includes(m)),
    bias: "none",
    task_type: "CAUSAL_LM",
  };
}

/** Where iteration t's TRL step reads from: absolute paths outside iter-<t>/trl/. */
export interface TrlInputs {
  /** The run directory (named in the files' headers). */
  runDir: string;
  /** The base model: an HF folder transformers loads. */
  modelPath: string;
  /** M_t's adapter folder, continued (and the reference). */
  initAdapter: string;
  /** The model's context length (max_length when dpo.max_length is null). */
  maxSeqLen: number;
}

/**
 * dpo_config.yaml for iteration t. Paths inside iter-<t>/trl/ are relative to the file (train_dpo.py
 * resolves them there). Written by hand rather than by a YAML library so every float carries a dot
 * and a signed exponent: PyYAML (YAML 1.1) reads `1e-8` as a string.
 */
export function dpoConfigYaml(cfg: RunConfig, t: number, o: TrlInputs): string {
  const top = {
    model_name_or_path: o.modelPath,
    init_adapter: o.initAdapter,
    train_file: TRL_FILES.train,
    output_adapter: TRL_FILES.output,
    metrics_file: TRL_FILES.metrics,
  };
  return [
    `# srlm run ${o.runDir}, iteration ${t}: the DPO step M${t} → M${t + 1} in TRL. train_dpo.py reads this file.`,
    "# Written by srlm (src/loop/trl.ts) from the run's dpo:, lora: and trl: blocks: change those, not this file.",
    "# Paths without a leading / are relative to this file's folder.",
    yamlMapping(top, ""),
    "# peft.LoraConfig: a new adapter's settings when init_adapter is null; M_t's adapter_config.json has the same values.",
    yamlMapping({ lora: peftLoraConfig(cfg) }, ""),
    "# trl.DPOConfig (train_dpo.py adds model_adapter_name and ref_adapter_name when it continues init_adapter).",
    yamlMapping({ dpo: trlDpoConfig(cfg, t, o.maxSeqLen) }, ""),
  ].join("\n");
}

/** A shell word: as is when it is plainly safe, single-quoted otherwise. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The launch command line (the last line of launch.sh), run in iter-<t>/trl/. */
export function launchCommand(trl: TrlSettings): string {
  // launch.sh runs in iter-<t>/trl/: relative paths are taken from srlm's working directory instead.
  const python = trl.python.includes("/") ? resolve(trl.python) : trl.python;
  const launcher = trl.command ?? `${shellQuote(python)} -m accelerate.commands.launch`;
  const words = [
    ...(trl.accelerate_config !== null ? ["--config_file", resolve(trl.accelerate_config)] : []),
    ...trl.launch_args,
    TRL_FILES.script,
    TRL_FILES.config,
  ];
  return `${launcher} ${words.map(shellQuote).join(" ")}`;
}

/** launch.sh for iteration t: the environment, then the launcher, in the script's own folder. */
export function launchScript(cfg: RunConfig, t: number, runDir: string): string {
  const trl = trlOf(cfg);
  return [
    "#!/usr/bin/env bash",
    `# srlm run ${runDir}, iteration ${t}: the DPO step M${t} → M${t + 1} in TRL.`,
    "# Written by srlm (src/loop/trl.ts) from the run's trl: block; srlm runs it and appends its output to log.txt.",
    `# To train again by hand: remove ${TRL_FILES.output}/ and run this file (a relaunch resumes from ${TRL_FILES.checkpoints}/).`,
    "set -euo pipefail",
    'cd "$(dirname "$0")"',
    ...Object.entries(trl.env).map(([k, v]) => `export ${k}=${shellQuote(v)}`),
    `exec ${launchCommand(trl)}`,
    "",
  ].join("\n");
}

/**
 * The pairs as TRL standard rows: each prompt exactly as the builtin trainer tokenizes it (the world's
 * answer prompt, or for a judge pair its judge prompt, after the tokenizer's BOS written as text —
 * TRL tokenizes without adding special tokens and parses special tokens in the text).
 */
export function trlTrainRows(world: World, prompts: readonly LoopPrompt[], pairs: readonly PairRecord[]): TrlStandardRow[] {
  const tok = world.tokenizer;
  const bos = tok.bosId !== undefined ? tok.decode([tok.bosId], { keepSpecial: true }) : "";
  const byId = new Map(prompts.map((p) => [p.id, p]));
  return pairs.map((pr) => {
    const p = byId.get(pr.prompt_id);
    if (!p) throw new TrlError(`pair for prompt ${pr.prompt_id}, which is not among the iteration's prompts`);
    const text = pr.kind === "judge" ? world.judgePrompt(p, pr.judged_answer ?? "") : world.answerPrompt(p);
    return { prompt: bos + text, chosen: pr.chosen[0].content, rejected: pr.rejected[0].content };
  });
}

// ---------------------------------------------------------------------------------------------
// YAML that PyYAML reads back as written
// ---------------------------------------------------------------------------------------------

/** A number PyYAML parses as the same number: floats keep a dot and a signed exponent (1.0e-8, not 1e-8). */
export function pyYamlNumber(x: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? ".nan" : x < 0 ? "-.inf" : ".inf";
  const s = JSON.stringify(x);
  if (Number.isInteger(x) && !s.includes("e")) return s;
  const [mantissa, exponent] = s.split("e");
  const m = mantissa.includes(".") ? mantissa : `${mantissa}.0`;
  if (exponent === undefined) return m;
  return `${m}e${/^[-+]/.test(exponent) ? exponent : `+${exponent}`}`;
}

const YAML_11_WORDS = /^(y|n|yes|no|on|off|true|false|null|~)$/i;

/** A string as a YAML scalar: plain when nothing could misread it, JSON-quoted (valid YAML) otherwise. */
function yamlString(s: string): string {
  return /^[A-Za-z_/.][A-Za-z0-9_/.-]*$/.test(s) && !YAML_11_WORDS.test(s) ? s : JSON.stringify(s);
}

/** Any JSON-like value in YAML flow style (nested values of trl.config too). */
function yamlFlow(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (typeof v === "boolean") return String(v);
  if (typeof v === "number") return pyYamlNumber(v);
  if (typeof v === "string") return yamlString(v);
  if (Array.isArray(v)) return `[${v.map(yamlFlow).join(", ")}]`;
  if (typeof v === "object")
    return `{${Object.entries(v as Record<string, unknown>)
      .map(([k, x]) => `${yamlString(k)}: ${yamlFlow(x)}`)
      .join(", ")}}`;
  throw new TrlError(`cannot write ${typeof v} into YAML`);
}

/** A block mapping: nested plain objects as indented blocks, everything else in flow style. */
function yamlMapping(o: Record<string, unknown>, indent: string): string {
  return Object.entries(o)
    .map(([k, v]) => {
      const isBlock = typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length > 0;
      return isBlock
        ? `${indent}${yamlString(k)}:\n${yamlMapping(v as Record<string, unknown>, `${indent}  `)}`
        : `${indent}${yamlString(k)}: ${yamlFlow(v)}`;
    })
    .join("\n");
}

// ---------------------------------------------------------------------------------------------
// The stage
// ---------------------------------------------------------------------------------------------

export interface TrlStageOptions {
  cfg: RunConfig;
  t: number;
  runDir: string;
  /** iter-<t>/ */
  dir: string;
  world: World;
  prompts: readonly LoopPrompt[];
  pairs: readonly PairRecord[];
  /** M_t's adapter folder: train_dpo.py continues it, and a frozen copy is the reference. */
  initAdapter: string;
  /** The base model's config (the adapter's shapes; max_length when dpo.max_length is null). */
  modelConfig: LlamaConfig;
  show: boolean;
  log: (line: string) => void;
  signal?: AbortSignal;
}

/** Whether a folder holds a saved adapter (the script renames it into place whole, so both files mean complete). */
export function hasAdapter(dir: string): boolean {
  return existsSync(join(dir, ADAPTER_CONFIG_FILE)) && existsSync(join(dir, ADAPTER_WEIGHTS_FILE));
}

/**
 * Iteration t's DPO step in TRL; returns the folder of M_{t+1}'s adapter (iter-<t>/trl/output). Skips
 * the launch when that folder holds an adapter already.
 */
export async function trlStage(o: TrlStageOptions): Promise<string> {
  const { cfg, t } = o;
  const trlDir = join(o.dir, TRL_DIR);
  const outDir = join(trlDir, TRL_FILES.output);
  if (hasAdapter(outDir)) {
    await checkTrlAdapter(outDir, o.modelConfig, cfg);
    o.log(`iteration ${t}: TRL's adapter for M${t + 1} is in ${outDir} already: not trained again`);
    return outDir;
  }
  const modelPath = trlBaseModel(cfg);
  await mkdir(trlDir, { recursive: true });
  const inputs: TrlInputs = {
    runDir: o.runDir,
    modelPath,
    initAdapter: resolve(o.initAdapter),
    maxSeqLen: o.modelConfig.maxSeqLen,
  };
  // Every file is rewritten on each launch (the same content for the same run), so launch.sh always
  // matches the run's config.
  await writeFileAtomic(join(trlDir, TRL_FILES.train), trlJsonl(trlTrainRows(o.world, o.prompts, o.pairs)));
  await writeFileAtomic(join(trlDir, TRL_FILES.config), `${dpoConfigYaml(cfg, t, inputs)}\n`);
  await writeFileAtomic(join(trlDir, TRL_FILES.script), TRAIN_DPO_PY, { mode: 0o755 });
  await writeFileAtomic(join(trlDir, TRL_FILES.launch), launchScript(cfg, t, o.runDir), { mode: 0o755 });
  o.log(
    `iteration ${t}: training M${t + 1} in TRL on ${o.pairs.length} pairs: ${join(trlDir, TRL_FILES.launch)} (log: ${join(trlDir, TRL_FILES.log)})`,
  );
  await runLaunch(trlDir, `iteration ${t}: TRL DPO`, o.show, o.signal);
  if (!hasAdapter(outDir)) {
    throw new TrlError(
      `iteration ${t}: ${TRL_FILES.launch} exited 0 but saved no adapter in ${outDir} ` +
        `(expected ${ADAPTER_CONFIG_FILE} and ${ADAPTER_WEIGHTS_FILE}); see ${join(trlDir, TRL_FILES.log)}`,
    );
  }
  await checkTrlAdapter(outDir, o.modelConfig, cfg);
  return outDir;
}

/** model.path as an absolute folder that transformers can load: config.json and a Hugging Face tokenizer.json. */
export function trlBaseModel(cfg: RunConfig): string {
  const path = cfg.model.path;
  if (path === undefined || path.endsWith(".gguf"))
    throw new TrlError('trainer "trl" needs model.path: a Hugging Face model folder (config validation says so too)');
  const dir = resolve(path);
  if (!existsSync(join(dir, CONFIG_FILE)))
    throw new TrlError(`trainer "trl": ${dir} has no ${CONFIG_FILE}, so transformers cannot load it`);
  const tokenizer = readJsonFile(join(dir, "tokenizer.json"), true);
  if (tokenizer === undefined || tokenizer.type === "char") {
    throw new TrlError(
      `trainer "trl": ${dir} has no Hugging Face tokenizer.json (the sandbox's character tokenizer is srlm's own), so transformers cannot load its tokenizer`,
    );
  }
  return dir;
}

/** The adapter TRL saved must be what M_t's was (rank, alpha, modules): loadWeights copies tensors by name and size only. */
export async function checkTrlAdapter(dir: string, model: LlamaConfig, cfg: RunConfig): Promise<void> {
  const a = await loadLoraAdapter(dir, model); // strict: PEFT options srlm does not compute, shapes, names
  const want = peftLoraConfig(cfg);
  const got = { r: a.config.r, lora_alpha: a.config.alpha, target_modules: a.config.targetModules };
  const same =
    got.r === want.r && got.lora_alpha === want.lora_alpha && JSON.stringify(got.target_modules) === JSON.stringify(want.target_modules);
  if (!same) {
    throw new TrlError(
      `${dir}: TRL saved an adapter with r = ${got.r}, lora_alpha = ${got.lora_alpha}, target_modules ${got.target_modules.join(",")}, ` +
        `but the run's lora block says r = ${want.r}, lora_alpha = ${want.lora_alpha}, target_modules ${(want.target_modules as string[]).join(",")}`,
    );
  }
}

/** The last lines a process printed (a tqdm line redrawn with \r counts once, as last drawn). */
export class LogTail {
  private lines: string[] = [];
  private partial = "";
  constructor(private readonly keep: number) {}
  push(text: string): void {
    const parts = (this.partial + text).split("\n");
    this.partial = parts.pop() ?? "";
    for (const line of parts) this.add(line);
  }
  private add(line: string): void {
    const shown = line.slice(line.lastIndexOf("\r") + 1).trimEnd();
    if (shown === "") return;
    this.lines.push(shown);
    if (this.lines.length > this.keep) this.lines.shift();
  }
  text(): string {
    const last = this.partial.slice(this.partial.lastIndexOf("\r") + 1).trimEnd();
    return [...this.lines, ...(last ? [last] : [])].slice(-this.keep).join("\n");
  }
}

/** Steps done and total of a training progress line as tqdm draws it ("  40%|████      | 2/5 [00:03<00:04, …]"). */
export function tqdmSteps(segment: string): { done: number; total: number } | undefined {
  // No label before the percentage: the trainer's bar. The data set bars are labelled ("Map: 100%|…").
  const m = /^\s*\d{1,3}%\|[^|]*\|\s*(\d+)\/(\d+)\s*\[/.exec(segment);
  return m ? { done: Number(m[1]), total: Number(m[2]) } : undefined;
}

/** Follows tqdm's training bar in a stream of output and redraws it as srlm's progress line. */
function trainingBar(label: string): (text: string) => void {
  let bar: ReturnType<typeof progressBar> | undefined;
  let total = -1;
  let partial = "";
  return (text) => {
    const segments = (partial + text).split(/[\r\n]/);
    partial = segments.pop() ?? "";
    for (const s of segments) {
      const p = tqdmSteps(s);
      if (!p) continue;
      if (p.total !== total) {
        bar?.finish();
        bar = progressBar(label, p.total);
        total = p.total;
      }
      if (p.done >= p.total) {
        bar?.finish();
        bar = undefined;
      } else bar?.update(p.done);
    }
  };
}

/**
 * Runs launch.sh in its folder: output appended to log.txt and followed for progress, the process
 * group killed on abort (accelerate starts one worker per GPU), a non-zero exit an error with the
 * log's last lines.
 */
async function runLaunch(trlDir: string, label: string, show: boolean, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted();
  const logPath = join(trlDir, TRL_FILES.log);
  const log = createWriteStream(logPath, { flags: "a" });
  log.write(`\n=== srlm: ${TRL_FILES.launch} started ${new Date().toISOString()} ===\n`);
  const tail = new LogTail(30);
  const follow = show ? trainingBar(label) : undefined;
  // Its own process group (detached), so an abort stops the launcher and every worker it started.
  const child = spawn("bash", [TRL_FILES.launch], { cwd: trlDir, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  for (const stream of [child.stdout, child.stderr]) {
    const decoder = new StringDecoder("utf8");
    stream.on("data", (chunk: Buffer) => {
      log.write(chunk);
      const text = decoder.write(chunk);
      tail.push(text);
      follow?.(text);
    });
  }
  const kill = () => {
    if (child.pid !== undefined && child.exitCode === null) {
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {
        // already gone
      }
    }
  };
  signal?.addEventListener("abort", kill, { once: true });
  let exit: { code: number | null; signal: NodeJS.Signals | null };
  try {
    exit = await new Promise((res, rej) => {
      child.once("error", rej);
      child.once("close", (code, sig) => res({ code, signal: sig }));
    });
  } finally {
    signal?.removeEventListener("abort", kill);
    await new Promise<void>((res) => log.end(res));
  }
  signal?.throwIfAborted();
  if (exit.code !== 0) {
    const how = exit.code !== null ? `exited with code ${exit.code}` : `was killed by ${exit.signal}`;
    throw new TrlError(
      `${label}: ${join(trlDir, TRL_FILES.launch)} ${how} (full log: ${logPath}). Its last lines:\n${tail
        .text()
        .split("\n")
        .map((l) => `  ${l}`)
        .join("\n")}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// train_dpo.py
// ---------------------------------------------------------------------------------------------

/**
 * The Python side, kept short: what TRL needs and nothing srlm could do itself. Written for TRL ≥ 0.12
 * (processing_class; older versions took tokenizer=), transformers and PEFT of the same era; a None
 * DPOConfig field that this TRL does not have is dropped (None means "no limit", which a TRL without
 * the field does anyway), any other unknown field is an error naming it.
 */
export const TRAIN_DPO_PY = `#!/usr/bin/env python3
"""srlm's DPO step in TRL: one iteration M_t -> M_{t+1} of the self-rewarding loop.

Written by srlm (src/loop/trl.ts) into <run>/iter-<t>/trl/ and started by launch.sh. It reads
dpo_config.yaml (argument 1, default: beside this file): the base model folder, M_t's PEFT LoRA
adapter, train.jsonl (TRL's standard preference format: the exact prompt text the loop sampled from),
and DPOConfig / LoraConfig values. It continues M_t's adapter with DPO, the reference being M_t itself
(the same adapter loaded a second time, frozen), saves the trained adapter to output/ (written to
output.tmp/ and renamed, so output/ is complete or absent) and the trainer's log history to
metrics.jsonl. A relaunch resumes from the newest checkpoint in DPOConfig's output_dir.

Needs torch, transformers, datasets, peft, trl (>= 0.12), accelerate and PyYAML.
"""
import dataclasses
import inspect
import json
import os
import shutil
import sys

NEEDS = "torch transformers datasets peft trl accelerate pyyaml"


def main() -> int:
    config_path = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "dpo_config.yaml"))
    here = os.path.dirname(config_path)
    try:
        import torch
        import transformers
        import trl
        import yaml
        from datasets import load_dataset
        from packaging.version import Version
        from peft import LoraConfig, PeftModel, get_peft_model
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from trl import DPOConfig, DPOTrainer
    except ImportError as e:
        print(f"train_dpo.py: {e}. The TRL trainer needs {NEEDS} in {sys.executable} (pip install {NEEDS})", file=sys.stderr)
        return 3

    with open(config_path) as f:
        cfg = yaml.safe_load(f)
    at = lambda p: p if os.path.isabs(p) else os.path.join(here, p)  # noqa: E731
    dpo = dict(cfg["dpo"])
    dpo["output_dir"] = at(dpo["output_dir"])
    init = cfg.get("init_adapter")
    if init:
        # DPO's reference is M_t = base + adapter_t: the adapter is trained as "default" and a frozen
        # copy named "reference" is switched on for the reference log-probs.
        dpo["model_adapter_name"] = "${TRAIN_ADAPTER}"
        dpo["ref_adapter_name"] = "${REFERENCE_ADAPTER}"
    fields = {f.name for f in dataclasses.fields(DPOConfig)}
    unknown = [k for k in dpo if k not in fields]
    bad = [k for k in unknown if dpo[k] is not None]
    if bad:
        print(f"train_dpo.py: DPOConfig of TRL {trl.__version__} has no field(s) {', '.join(bad)} ({config_path})", file=sys.stderr)
        return 2
    for k in unknown:
        del dpo[k]
    args = DPOConfig(**dpo)

    model_path = cfg["model_name_or_path"]
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # DPOTrainer pads with pad_token_id; padding is masked out
    dtype_arg = "dtype" if Version(transformers.__version__) >= Version("4.56.0") else "torch_dtype"
    dtype = torch.bfloat16 if args.bf16 else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_path, **{dtype_arg: dtype})
    if init:
        model = PeftModel.from_pretrained(model, init, adapter_name="${TRAIN_ADAPTER}", is_trainable=True)
        model.load_adapter(init, adapter_name="${REFERENCE_ADAPTER}", is_trainable=False)
        model.set_adapter("${TRAIN_ADAPTER}")
    else:
        model = get_peft_model(model, LoraConfig(**cfg["lora"]))

    train = load_dataset("json", data_files=at(cfg["train_file"]), split="train")
    tok_arg = "processing_class" if "processing_class" in inspect.signature(DPOTrainer.__init__).parameters else "tokenizer"
    trainer = DPOTrainer(model=model, args=args, train_dataset=train, **{tok_arg: tokenizer})
    out = at(cfg["output_adapter"])
    tmp = out.rstrip("/") + ".tmp"
    if trainer.accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    resume = os.path.isdir(args.output_dir) and any(n.startswith("checkpoint-") for n in os.listdir(args.output_dir))
    trainer.train(resume_from_checkpoint=True if resume else None)
    trainer.save_model(tmp)  # every adapter of the model; with DeepSpeed ZeRO-3 the weights are gathered
    trainer.accelerator.wait_for_everyone()
    if trainer.accelerator.is_main_process:
        shutil.rmtree(os.path.join(tmp, "${REFERENCE_ADAPTER}"), ignore_errors=True)  # M_t's, unchanged
        metrics = at(cfg["metrics_file"])
        with open(metrics + ".tmp", "w") as f:
            for entry in trainer.state.log_history:
                # JSON has no NaN (srlm reads this file): a NaN metric is written as null.
                clean = {k: (None if isinstance(v, float) and v != v else v) for k, v in entry.items()}
                f.write(json.dumps(clean) + "\\n")
        os.replace(metrics + ".tmp", metrics)
        shutil.rmtree(out, ignore_errors=True)
        os.replace(tmp, out)
    trainer.accelerator.wait_for_everyone()
    return 0


if __name__ == "__main__":
    sys.exit(main())
`;
