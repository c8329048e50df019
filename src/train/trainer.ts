/**
 * The trainer shared by SFT and DPO: data order, gradient accumulation, clipping, AdamW with a
 * schedule, logging, evaluation, crash-safe checkpoints and exact resume.
 *
 * Exactness: the examples of optimizer step s depend only on (seed, s) (data.ts `streamIndices`),
 * randomness inside a micro-batch (LoRA dropout) is seeded from (seed, s, micro), and a checkpoint
 * holds the trained tensors and AdamW moments in float32 plus the logging window. So a run resumed
 * from checkpoint-k performs bit for bit the same steps k+1 … as a run that never stopped.
 *
 * Crash safety: a checkpoint is written into a temporary folder, fsynced, then renamed to
 * `checkpoint-<step>`; a crash leaves either the old set of checkpoints or the new one. A
 * non-finite loss or gradient stops the run before the parameters change, and saves nothing.
 */
import { appendFile, mkdir, readdir, readFile, rename, rm, truncate } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic, writeJsonAtomic } from "../io/atomic.js";
import { readSafetensors, writeSafetensors } from "../io/safetensors.js";
import { progress as progressBar } from "../run/progress.js";
import { type AdamWState, adamwInit, adamwStepNamed, clipScale, globalNorm } from "./adamw.js";
import { streamIndices } from "./data.js";
import { type LrSchedulerType, lrAt, warmupStepsOf } from "./schedule.js";
import type { Trainable } from "./trainable.js";

/** The optimisation settings shared by SFT and DPO; camelCase of Hugging Face TrainingArguments. */
export interface TrainerConfig {
  /** Where checkpoints, metrics.jsonl and the final model go. */
  outputDir: string;
  /** Peak learning rate (after warmup). */
  learningRate: number;
  lrSchedulerType: LrSchedulerType;
  /** Fraction of the steps spent warming up (used when warmupSteps is 0). */
  warmupRatio: number;
  warmupSteps: number;
  /** Passes over the data (fractional allowed); ignored when maxSteps > 0. */
  numTrainEpochs: number;
  /** Optimizer steps; > 0 overrides numTrainEpochs. */
  maxSteps: number;
  /** Examples per micro-batch (SFT: rows; DPO: pairs, i.e. 2× sequences). */
  perDeviceTrainBatchSize: number;
  /** Micro-batches per optimizer step. */
  gradientAccumulationSteps: number;
  /** Global-norm clipping threshold (0 = off). */
  maxGradNorm: number;
  weightDecay: number;
  adamBeta1: number;
  adamBeta2: number;
  adamEpsilon: number;
  /** Seeds the data order and in-step randomness. */
  seed: number;
  /** Log (metrics.jsonl, progress) every this many optimizer steps; the values are means over the window. */
  loggingSteps: number;
  /** Evaluate every this many steps (0 = only at the end); needs eval data. */
  evalSteps: number;
  /** Checkpoint every this many steps (0 = none until the end). */
  saveSteps: number;
  /** Keep at most this many checkpoints, dropping the oldest (0 = keep all). */
  saveTotalLimit: number;
}

/**
 * What is optimised, per micro-batch. `step` runs forward (and backward when `train`), adding the
 * gradients of (its examples' loss sum) / `denominator` to the trainable, so that the micro-batches of
 * one optimizer step add up to the step's mean loss. It returns that loss contribution and metric
 * contributions (a metric's step value is the sum over the micro-batches).
 */
export interface Objective<E> {
  readonly name: string;
  /** The normalisation units an example brings (SFT: target tokens; DPO: 1 pair). */
  units(ex: E): number;
  step(t: Trainable, batch: readonly E[], denominator: number, train: boolean): Promise<StepOut>;
}

export interface StepOut {
  loss: number;
  metrics: Record<string, number>;
  /** Tokens processed, padding excluded (for throughput). */
  tokens: number;
}

export interface TrainProgress {
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number;
  learningRate: number;
}

export interface TrainOptions<E> {
  trainable: Trainable;
  objective: Objective<E>;
  config: TrainerConfig;
  train: readonly E[];
  eval?: readonly E[];
  /** Identifies the data (data.ts `dataHash`); resume refuses a checkpoint made on other data. */
  dataHash: string;
  /** JSON files written beside the weights (default: the trainable's config.json / adapter_config.json). */
  configFiles?: Record<string, unknown>;
  /** Continue from the latest checkpoint in outputDir, if any (default true). */
  resume?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: TrainProgress) => void;
  /** Progress bar on a TTY, plain lines otherwise (stderr). Default: on when no onProgress is given. */
  progress?: boolean;
  /** Called with each metrics line as it is logged. */
  onLog?: (line: Record<string, number>) => void;
}

export interface TrainResult {
  /** Optimizer steps done in total (including before a resume). */
  steps: number;
  /** Folder with the final weights (HF model folder or PEFT adapter folder). */
  finalDir: string;
  /** The last logged training metrics and the last evaluation, if any. */
  lastLog?: Record<string, number>;
  lastEval?: Record<string, number>;
  /** Step the run resumed from (0 = fresh). */
  resumedFrom: number;
}

/** A non-finite loss or gradient: the run stopped before the parameters changed. */
export class TrainingDivergedError extends Error {
  override name = "TrainingDivergedError";
  constructor(
    message: string,
    readonly step: number,
    readonly lastCheckpoint: string | null,
  ) {
    super(message);
  }
}

/** A checkpoint that does not belong to this run (other data or settings), or is damaged. */
export class ResumeError extends Error {
  override name = "ResumeError";
}

export const STATE_FILE = "trainer_state.json";
export const OPTIMIZER_FILE = "optimizer.safetensors";
export const METRICS_FILE = "metrics.jsonl";
export const FINAL_DIR = "final";

/** Weights file of a trainable: an HF model or a PEFT adapter. */
export function weightsFile(t: Trainable): string {
  return t.kind === "lora" ? "adapter_model.safetensors" : "model.safetensors";
}

interface TrainerState {
  global_step: number;
  total_steps: number;
  epoch: number;
  seed: number;
  data_hash: string;
  num_examples: number;
  examples_per_step: number;
  /** Sums over the current logging window (so a resumed run logs the same means). */
  log_window: { steps: number; sums: Record<string, number> };
  optimizer_step: number;
}

/** Optimizer steps of a run. */
export function totalStepsOf(cfg: TrainerConfig, n: number): number {
  if (cfg.maxSteps > 0) return cfg.maxSteps;
  const perStep = cfg.perDeviceTrainBatchSize * cfg.gradientAccumulationSteps;
  return Math.max(1, Math.ceil((cfg.numTrainEpochs * n) / perStep));
}

function microSeed(seed: number, step: number, micro: number): number {
  return (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(step + 1, 0x85ebca6b) ^ Math.imul(micro + 1, 0xc2b2ae35)) >>> 0;
}

export async function runTrainer<E>(o: TrainOptions<E>): Promise<TrainResult> {
  const { trainable: tr, objective, config: cfg } = o;
  const n = o.train.length;
  if (n === 0) throw new Error(`${objective.name}: the training set is empty`);
  const perStep = cfg.perDeviceTrainBatchSize * cfg.gradientAccumulationSteps;
  const total = totalStepsOf(cfg, n);
  const schedule = {
    lr: cfg.learningRate,
    type: cfg.lrSchedulerType,
    warmupSteps: warmupStepsOf(total, cfg.warmupSteps, cfg.warmupRatio),
    totalSteps: total,
  };
  const adam = { lr: cfg.learningRate, beta1: cfg.adamBeta1, beta2: cfg.adamBeta2, eps: cfg.adamEpsilon, weightDecay: cfg.weightDecay };
  const files = o.configFiles ?? tr.configFiles;
  await mkdir(cfg.outputDir, { recursive: true });
  const metricsPath = join(cfg.outputDir, METRICS_FILE);

  const fresh: TrainerState = {
    global_step: 0,
    total_steps: total,
    epoch: 0,
    seed: cfg.seed,
    data_hash: o.dataHash,
    num_examples: n,
    examples_per_step: perStep,
    log_window: { steps: 0, sums: {} },
    optimizer_step: 0,
  };
  let state = fresh;
  let opt = adamwInit();
  let lastCheckpoint: string | null = null;
  const finalDir = join(cfg.outputDir, FINAL_DIR);

  if (o.resume !== false) {
    const done = await readState(finalDir);
    if (done) {
      checkCompatible(done, fresh, finalDir);
      await loadWeights(tr, join(finalDir, weightsFile(tr)));
      return { steps: done.global_step, finalDir, resumedFrom: done.global_step };
    }
    const ck = await latestCheckpoint(cfg.outputDir);
    if (ck) {
      const s = await readState(ck.dir);
      if (!s) throw new ResumeError(`${ck.dir}: ${STATE_FILE} is missing`);
      checkCompatible(s, fresh, ck.dir);
      await loadWeights(tr, join(ck.dir, weightsFile(tr)));
      opt = await loadOptimizer(join(ck.dir, OPTIMIZER_FILE), s.optimizer_step);
      state = s;
      lastCheckpoint = ck.dir;
      await trimMetrics(metricsPath, s.global_step);
    } else {
      await rm(metricsPath, { force: true });
    }
  } else {
    await rm(metricsPath, { force: true });
  }
  const resumedFrom = state.global_step;

  const bar = (o.progress ?? !o.onProgress) ? progressBar(objective.name, total) : undefined;
  let lastLog: Record<string, number> | undefined;
  let lastEval: Record<string, number> | undefined;
  let windowStart = performance.now();
  let windowTokens = 0;

  const save = async (step: number) => {
    lastCheckpoint = await writeCheckpoint(cfg.outputDir, step, tr, opt, { ...state, global_step: step }, files);
    await pruneCheckpoints(cfg.outputDir, cfg.saveTotalLimit);
  };

  for (let step = state.global_step; step < total; step++) {
    if (o.signal?.aborted) {
      // Stop at a step boundary with everything saved: a resume continues from here.
      await save(step);
      bar?.finish("aborted");
      throw o.signal.reason ?? new Error("aborted");
    }
    const idx = streamIndices(n, cfg.seed, step * perStep, perStep);
    let denominator = 0;
    for (const i of idx) denominator += objective.units(o.train[i]);
    if (denominator <= 0) throw new Error(`${objective.name}: step ${step + 1} has no training signal (0 units)`);
    tr.zeroGrad();
    let loss = 0;
    const metrics: Record<string, number> = {};
    for (let micro = 0; micro < cfg.gradientAccumulationSteps; micro++) {
      const mb = Array.from(
        idx.subarray(micro * cfg.perDeviceTrainBatchSize, (micro + 1) * cfg.perDeviceTrainBatchSize),
        (i) => o.train[i],
      );
      tr.beginMicroBatch(microSeed(cfg.seed, step, micro));
      const r = await objective.step(tr, mb, denominator, true);
      loss += r.loss;
      windowTokens += r.tokens;
      for (const [k, v] of Object.entries(r.metrics)) metrics[k] = (metrics[k] ?? 0) + v;
    }
    const norm = globalNorm(tr.grads);
    if (!Number.isFinite(loss) || !Number.isFinite(norm)) {
      bar?.finish("diverged");
      throw new TrainingDivergedError(
        `${objective.name}: step ${step + 1} gave a non-finite ${Number.isFinite(loss) ? `gradient norm (${norm})` : `loss (${loss})`}; ` +
          `the parameters were not updated; ${lastCheckpoint ? `the last good checkpoint is ${lastCheckpoint}` : "no checkpoint was written yet"}. ` +
          "Lower the learning rate or check the data.",
        step + 1,
        lastCheckpoint,
      );
    }
    const lr = lrAt(step, schedule);
    adamwStepNamed(tr.params, tr.grads, opt, adam, lr, clipScale(norm, cfg.maxGradNorm));
    await tr.afterUpdate();

    const done = step + 1;
    state.global_step = done;
    state.optimizer_step = opt.step;
    state.epoch = (done * perStep) / n;
    const w = state.log_window;
    w.steps++;
    for (const [k, v] of Object.entries({ ...metrics, loss, grad_norm: norm, learning_rate: lr })) w.sums[k] = (w.sums[k] ?? 0) + v;
    o.onProgress?.({ step: done, totalSteps: total, epoch: state.epoch, loss, learningRate: lr });
    bar?.update(done, `loss ${loss.toFixed(4)} lr ${lr.toExponential(2)}`);

    if (done % Math.max(1, cfg.loggingSteps) === 0 || done === total) {
      const secs = (performance.now() - windowStart) / 1000;
      const line: Record<string, number> = { step: done, epoch: round6(state.epoch) };
      for (const [k, v] of Object.entries(w.sums)) line[k] = v / w.steps;
      line.tokens_per_second = secs > 0 ? Math.round(windowTokens / secs) : 0;
      await appendFile(metricsPath, `${JSON.stringify(line)}\n`);
      o.onLog?.(line);
      lastLog = line;
      state.log_window = { steps: 0, sums: {} };
      windowStart = performance.now();
      windowTokens = 0;
    }
    const evalNow = o.eval && o.eval.length > 0 && ((cfg.evalSteps > 0 && done % cfg.evalSteps === 0) || done === total);
    if (evalNow && o.eval) {
      lastEval = await evaluate(tr, objective, o.eval, cfg.perDeviceTrainBatchSize, o.signal);
      const line = { step: done, epoch: round6(state.epoch), ...lastEval };
      await appendFile(metricsPath, `${JSON.stringify(line)}\n`);
      o.onLog?.(line);
    }
    if (cfg.saveSteps > 0 && done % cfg.saveSteps === 0 && done < total) await save(done);
  }
  bar?.finish(lastLog ? `loss ${lastLog.loss.toFixed(4)}` : undefined);
  await writeFinal(finalDir, tr, state, files);
  return { steps: state.global_step, finalDir, lastLog, lastEval, resumedFrom };
}

/** Mean loss and metrics over a data set, without training; keys prefixed `eval_` as in TRL. */
export async function evaluate<E>(
  tr: Trainable,
  objective: Objective<E>,
  data: readonly E[],
  batchSize: number,
  signal?: AbortSignal,
): Promise<Record<string, number>> {
  let denominator = 0;
  for (const ex of data) denominator += objective.units(ex);
  let loss = 0;
  const sums: Record<string, number> = {};
  for (let s = 0; s < data.length; s += batchSize) {
    signal?.throwIfAborted();
    const r = await objective.step(tr, data.slice(s, s + batchSize), denominator, false);
    loss += r.loss;
    for (const [k, v] of Object.entries(r.metrics)) sums[k] = (sums[k] ?? 0) + v;
  }
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(sums)) out[`eval_${k}`] = v;
  out.eval_loss = loss;
  return out;
}

const round6 = (x: number) => Math.round(x * 1e6) / 1e6;

// ── checkpoints ────────────────────────────────────────────────────────────────────────────────

async function writeCheckpoint(
  outputDir: string,
  step: number,
  tr: Trainable,
  opt: AdamWState,
  state: TrainerState,
  files: Record<string, unknown>,
): Promise<string> {
  const dir = join(outputDir, `checkpoint-${step}`);
  const tmp = join(outputDir, `.checkpoint-${step}.tmp-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  await writeWeights(tmp, tr, files);
  const moments = [];
  for (const t of tr.params) {
    const m = opt.m.get(t.name);
    const v = opt.v.get(t.name);
    if (m && v)
      moments.push({ name: `${t.name}.exp_avg`, shape: t.shape, data: m }, { name: `${t.name}.exp_avg_sq`, shape: t.shape, data: v });
  }
  await writeSafetensors(join(tmp, OPTIMIZER_FILE), moments, { optimizer: "adamw", step: String(opt.step) });
  await writeJsonAtomic(join(tmp, STATE_FILE), state);
  // Replace a same-step checkpoint from an earlier attempt, then publish with one rename.
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  return dir;
}

async function writeWeights(dir: string, tr: Trainable, files: Record<string, unknown>): Promise<void> {
  await writeSafetensors(
    join(dir, weightsFile(tr)),
    tr.params.map((t) => ({ name: t.name, shape: t.shape, data: t.data })),
    { format: "pt" },
  );
  for (const [name, value] of Object.entries(files)) await writeJsonAtomic(join(dir, name), value);
}

async function writeFinal(finalDir: string, tr: Trainable, state: TrainerState, files: Record<string, unknown>): Promise<void> {
  const tmp = `${finalDir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  await writeWeights(tmp, tr, files);
  await writeJsonAtomic(join(tmp, STATE_FILE), state);
  await rm(finalDir, { recursive: true, force: true });
  await rename(tmp, finalDir);
}

/** The checkpoint with the highest step in `outputDir` (complete ones only: they are renamed into place last). */
export async function latestCheckpoint(outputDir: string): Promise<{ dir: string; step: number } | undefined> {
  const all = await listCheckpoints(outputDir);
  return all.at(-1);
}

async function listCheckpoints(outputDir: string): Promise<{ dir: string; step: number }[]> {
  let names: string[];
  try {
    names = await readdir(outputDir);
  } catch {
    return [];
  }
  return names
    .map((name) => ({ name, m: /^checkpoint-(\d+)$/.exec(name) }))
    .filter((x) => x.m)
    .map((x) => ({ dir: join(outputDir, x.name), step: Number(x.m?.[1]) }))
    .sort((a, b) => a.step - b.step);
}

async function pruneCheckpoints(outputDir: string, limit: number): Promise<void> {
  if (limit <= 0) return;
  const all = await listCheckpoints(outputDir);
  for (const ck of all.slice(0, Math.max(0, all.length - limit))) await rm(ck.dir, { recursive: true, force: true });
}

async function readState(dir: string): Promise<TrainerState | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, STATE_FILE), "utf8");
  } catch {
    return undefined;
  }
  try {
    return JSON.parse(text) as TrainerState;
  } catch (e) {
    throw new ResumeError(`${join(dir, STATE_FILE)}: not valid JSON (${(e as Error).message})`);
  }
}

function checkCompatible(s: TrainerState, now: TrainerState, dir: string): void {
  const fields = ["data_hash", "num_examples", "seed", "examples_per_step", "total_steps"] as const;
  for (const f of fields) {
    if (s[f] !== now[f]) {
      throw new ResumeError(
        `${dir}: cannot resume, ${f} was ${JSON.stringify(s[f])} and is now ${JSON.stringify(now[f])} ` +
          "(a resumed run must use the same data and settings; use another output_dir or resume: false to start over)",
      );
    }
  }
}

export async function loadWeights(tr: Trainable, path: string): Promise<void> {
  const f = await readSafetensors(path);
  for (const t of tr.params) {
    const src = f.tensors.get(t.name);
    if (!src) throw new ResumeError(`${path}: tensor "${t.name}" is missing`);
    if (src.data.length !== t.data.length)
      throw new ResumeError(`${path}: tensor "${t.name}" has ${src.data.length} values, expected ${t.data.length}`);
    t.data.set(src.data);
  }
  await tr.afterUpdate();
}

async function loadOptimizer(path: string, step: number): Promise<AdamWState> {
  const f = await readSafetensors(path);
  const opt = adamwInit();
  opt.step = step;
  for (const [name, t] of f.tensors) {
    if (name.endsWith(".exp_avg")) opt.m.set(name.slice(0, -".exp_avg".length), t.data);
    else if (name.endsWith(".exp_avg_sq")) opt.v.set(name.slice(0, -".exp_avg_sq".length), t.data);
    else throw new ResumeError(`${path}: unexpected tensor "${name}"`);
  }
  return opt;
}

/** Keep the metrics lines of steps ≤ `step` (a resumed run rewrites what came after), dropping a torn last line. */
async function trimMetrics(path: string, step: number): Promise<void> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    return;
  }
  const keep: string[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      const rec = JSON.parse(line) as { step?: number };
      if (typeof rec.step === "number" && rec.step <= step) keep.push(line);
    } catch {
      // a line torn by the crash
    }
  }
  if (keep.length === 0) {
    await truncate(path, 0);
    return;
  }
  await writeFileAtomic(path, `${keep.join("\n")}\n`);
}
