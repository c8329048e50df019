/**
 * Building M1 in the sandbox, stage by stage, into one folder:
 *
 *   data/eval.jsonl, data/ift.jsonl       held-out tasks; IFT records (instruction → reference)
 *   warmup/                               SFT on IFT only (trainer folder; final/ = the weights)
 *   data/eft.jsonl, data/eft_histogram.json
 *                                         EFT: the warm-up model's own answers to the EFT tasks, gold-
 *                                         judged, topped up with graded corruptions to balance 0–5
 *   data/new_task.jsonl                   only when sizes.newTask > 0: few-shot IFT instructions →
 *                                         another IFT instruction (self-instruct, forms.ts)
 *   m1/                                   SFT on IFT + EFT (+ new-task), continuing from the warm-up (final/ = M1)
 *   m1_metrics.json                       M1 against the gold scorer (evaluate.ts)
 *
 * Every stage is skipped when its output exists, and the trainer resumes inside a stage, so a killed
 * run continues where it stopped.
 */
import { access, mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Kernels } from "../engine/kernels.js";
import { writeJsonAtomic } from "../io/atomic.js";
import { readJsonl, writeJsonl } from "../io/jsonl.js";
import { llamaConfig } from "../model/config.js";
import { generate } from "../model/generate.js";
import { createModel, type LlamaModel } from "../model/llama.js";
import { initParams } from "../model/params.js";
import { sftConfig } from "../train/config.js";
import { tokenizeSft } from "../train/data.js";
import { sft } from "../train/sft.js";
import { fullTrainable } from "../train/trainable.js";
import {
  balancedEft,
  type EftCandidate,
  type EftRecord,
  type IftRecord,
  iftRecords,
  newTaskRecords,
  type SandboxTask,
  sandboxSplits,
} from "./data.js";
import { evaluateSandbox, type SandboxMetrics } from "./evaluate.js";
import { allFamilies, familiesByName } from "./families/index.js";
import { answerPrompt, NEW_TASK_SHOTS, sandboxTokenizer, sanitizeAnswer } from "./forms.js";
import type { SandboxPreset } from "./preset.js";

export interface SandboxRunOptions {
  kernels: Kernels;
  /** Progress bars on stderr (default true). */
  progress?: boolean;
  /** One line per finished stage (default: stderr). */
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export interface SandboxM1 {
  model: LlamaModel;
  metrics: SandboxMetrics;
  eftHistogram: Record<string, number[]>;
  seconds: { warmup: number; eft: number; sft: number; eval: number };
}

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

export async function buildM1(p: SandboxPreset, outDir: string, o: SandboxRunOptions): Promise<SandboxM1> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const families = p.families ? familiesByName(p.families) : allFamilies;
  const tok = sandboxTokenizer();
  const config = llamaConfig({ ...p.model, vocabSize: tok.vocabSize }, `preset ${p.name} model`);
  const model = createModel(config, initParams(config, p.seed), o.kernels);
  const dataDir = join(outDir, "data");
  await mkdir(dataDir, { recursive: true });
  await writeJsonAtomic(join(outDir, "preset.json"), p);

  const splits = sandboxSplits(families, p.sizes, p.seed);
  await writeJsonl(join(dataDir, "eval.jsonl"), splits.eval);
  const ift = iftRecords(splits.ift);
  await writeJsonl(join(dataDir, "ift.jsonl"), ift);
  // Only when asked for, so presets without it keep their data and M1 byte for byte.
  const newTask = newTaskRecords(splits.ift, p.sizes.newTask ?? 0, NEW_TASK_SHOTS, p.seed * 3 + 4);
  if (newTask.length > 0) await writeJsonl(join(dataDir, "new_task.jsonl"), newTask);
  const toExamples = (rs: readonly (IftRecord | EftRecord)[]) => rs.map((r) => tokenizeSft(tok, r));
  const train = (dir: string, steps: number, lr: number, batch: number, warmup: number) =>
    sftConfig({
      output_dir: join(outDir, dir),
      learning_rate: lr,
      max_steps: steps,
      per_device_train_batch_size: batch,
      lr_scheduler_type: "cosine",
      warmup_steps: warmup,
      weight_decay: 0.01,
      adam_beta2: 0.99,
      logging_steps: Math.max(1, Math.floor(steps / 20)),
      save_steps: Math.max(50, Math.floor(steps / 5)),
      save_total_limit: 1,
      seed: p.seed,
    });
  const progress = o.progress ?? true;

  let t0 = performance.now();
  const w = p.warmup;
  await sft(fullTrainable(model), toExamples(ift), train("warmup", w.steps, w.learningRate, w.batchSize, Math.ceil(w.steps / 20)), {
    progress,
    signal: o.signal,
  });
  const tWarm = (performance.now() - t0) / 1000;
  log(`warm-up (IFT only, ${w.steps} steps): ${tWarm.toFixed(0)} s`);

  t0 = performance.now();
  const eftPath = join(dataDir, "eft.jsonl");
  const histPath = join(dataDir, "eft_histogram.json");
  let eft: EftRecord[];
  let histogram: Record<string, number[]>;
  if ((await exists(eftPath)) && (await exists(histPath))) {
    eft = await readJsonl<EftRecord>(eftPath);
    histogram = JSON.parse(await readFile(histPath, "utf8")) as Record<string, number[]>;
  } else {
    const samples = await ownSamples(model, tok, splits.eft, w.samplesPerTask, w.temperature, p.seed, o.signal);
    const built = balancedEft(families, splits.eft, samples, p.sizes.eft, p.seed + 5);
    eft = built.records;
    histogram = built.histogram;
    await writeJsonl(eftPath, eft);
    await writeJsonAtomic(histPath, histogram);
  }
  const tEft = (performance.now() - t0) / 1000;
  log(
    `EFT: ${eft.length} judgements; by score 0–5 — own samples ${histogram.sample.join("/")}, corruptions ${histogram.corruption.join("/")}, references ${histogram.reference.join("/")}`,
  );

  t0 = performance.now();
  const s = p.sft;
  await sft(
    fullTrainable(model),
    toExamples([...ift, ...eft, ...newTask]),
    train("m1", s.steps, s.learningRate, s.batchSize, s.warmupSteps),
    {
      progress,
      signal: o.signal,
    },
  );
  await writeJsonAtomic(join(outDir, "m1", "final", "tokenizer.json"), tok.toJSON());
  const tSft = (performance.now() - t0) / 1000;
  log(`M1 = SFT on IFT + EFT${newTask.length > 0 ? ` + ${newTask.length} new-task` : ""} (${s.steps} steps): ${tSft.toFixed(0)} s`);

  t0 = performance.now();
  const metricsPath = join(outDir, "m1_metrics.json");
  let metrics: SandboxMetrics;
  // JSON writes NaN (no parsed judgement → no MAE) as null; read it back as NaN.
  if (await exists(metricsPath))
    metrics = JSON.parse(await readFile(metricsPath, "utf8"), (_, v) => (v === null ? Number.NaN : v)) as SandboxMetrics;
  else {
    metrics = await evaluateSandbox(model, tok, families, splits.eval, { samples: p.evalSamples, seed: p.seed, signal: o.signal });
    await writeJsonAtomic(metricsPath, metrics);
  }
  const tEval = (performance.now() - t0) / 1000;
  return { model, metrics, eftHistogram: histogram, seconds: { warmup: tWarm, eft: tEft, sft: tSft, eval: tEval } };
}

/** The model's own answers to the tasks (sampled), as EFT candidates. */
async function ownSamples(
  model: LlamaModel,
  tok: ReturnType<typeof sandboxTokenizer>,
  tasks: readonly SandboxTask[],
  n: number,
  temperature: number,
  seed: number,
  signal?: AbortSignal,
): Promise<EftCandidate[]> {
  const out = await generate(
    model,
    tok,
    tasks.map((t) => answerPrompt(t.instruction)),
    { n, temperature, seed, maxNewTokens: 32, signal },
  );
  return tasks.flatMap((task, i) => out[i].map((s) => ({ task, answer: sanitizeAnswer(s.text), source: "sample" as const })));
}
