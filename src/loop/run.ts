/**
 * The self-rewarding loop (DESIGN §1), on the builtin engine, into one run directory:
 *
 *   config.resolved.yaml, manifest.json     what ran (config after presets and overrides; versions, seed, git sha)
 *   m1/                                     M1 built in the sandbox (pipeline.ts; m1/m1/final = the weights)
 *   iter-0/eval.json                        M1 on the held-out prompts
 *   iter-<t>/ (t = 1…T, from M_t)
 *     prompts.jsonl                         this iteration's prompts
 *     self_instruct.jsonl, .json            source self_instruct: each instruction M_t wrote with its verdict; the counts
 *     candidates.jsonl                      N sampled answers per prompt (with gold scores in the sandbox)
 *     judgements.jsonl                      K judgements per candidate, their parsed score or null (not for spin)
 *     (method files)                        what a successor computes beyond SR (methods.ts lists them)
 *     pairs.jsonl, pairs_stats.json         the method's pairs (TRL conversational format + scores), their stats
 *     train/                                DPO (+ seed rows) from M_t, reference M_t; train/final = M_{t+1}
 *     trl/                                  trainer trl instead: TRL's files, log and metrics (trl.ts); trl/output = M_{t+1}
 *     eval.json                             M_{t+1} on the held-out prompts
 *   metrics.jsonl                           one flat line per model (rebuilt from the files above)
 *
 * Every file is written atomically and every stage is skipped when its file exists; sampling and
 * judging are saved in chunks, and the trainer resumes from its checkpoints — so a run killed at any
 * moment continues where it stopped, and the same seed gives the same files.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import type { GenerationEngine } from "../engine/engine.js";
import type { Kernels } from "../engine/kernels.js";
import { writeFileAtomic, writeJsonAtomic } from "../io/atomic.js";
import { loadGgufModel } from "../io/gguf.js";
import { exportLlamaGguf } from "../io/gguf-write.js";
import { readJsonl, writeJsonl } from "../io/jsonl.js";
import { loadModelFolder } from "../io/model-folder.js";
import { ADAPTER_CONFIG_FILE, saveLoraAdapter } from "../io/peft.js";
import { createModel, type LlamaModel } from "../model/llama.js";
import { progress as progressBar } from "../run/progress.js";
import { allFamilies, familiesByName } from "../sandbox/families/index.js";
import { buildM1 } from "../sandbox/pipeline.js";
import { type SandboxPreset, preset as sandboxPreset } from "../sandbox/preset.js";
import type { ChatTemplate } from "../tokenizer/chat-template.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { initLora, type LoraTarget, loraTrainable } from "../train/lora.js";
import { fullTrainable, type Trainable } from "../train/trainable.js";
import { FINAL_DIR } from "../train/trainer.js";
import { configYaml, deepMerge, type RunConfig, SelfInstructSchema } from "./config.js";
import { builtinModels, type LoopModels, llamaCppModels, openaiEngineFor, openaiModels } from "./engines.js";
import { judgesCandidates, type MethodContext, methodPairs } from "./methods.js";
import type { PairRecord } from "./records.js";
import { flatSandboxMetrics, sandboxWorld } from "./sandbox-world.js";
import { exists, judgeStage, STAGE, type StageContext, sampleStage, seedOf, trainStage } from "./stages.js";
import { trlStage } from "./trl.js";
import { userWorld } from "./user-world.js";
import type { LoopPrompt, World } from "./world.js";

export { pairsFromJudged } from "./pair-records.js";
export type { Candidate, Judgement, PairRecord } from "./records.js";

export interface LoopOptions {
  kernels: Kernels;
  /** Progress bars on stderr (default true). */
  progress?: boolean;
  /** One line per finished stage and iteration (default: stderr). */
  log?: (line: string) => void;
  signal?: AbortSignal;
  /** The command line, for the manifest. */
  command?: string;
}

export interface LoopResult {
  runDir: string;
  metrics: Record<string, unknown>[];
  finalDir: string;
}

/** What the report and compare call the run's kind of pairs. */
export function modeOf(c: RunConfig): "judge" | "oracle" | "control" {
  if (c.method === "control") return "control";
  return c.judge.by === "gold" ? "oracle" : "judge";
}

/** The sandbox preset of the run's M1, with the config's overrides applied. */
export function m1Preset(c: RunConfig): SandboxPreset {
  const p = sandboxPreset(c.model.sandbox);
  return deepMerge(p as unknown as Record<string, unknown>, c.model.overrides) as unknown as SandboxPreset;
}

export async function runLoop(cfg: RunConfig, runDir: string, o: LoopOptions): Promise<LoopResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const showProgress = o.progress ?? true;
  await mkdir(runDir, { recursive: true });
  await writeRunFiles(cfg, runDir, o.command);

  // M1: the sandbox's, built into m1/, or the user's model.
  const m1Dir = join(runDir, "m1");
  const m1 = cfg.model.path ? await userM1(cfg.model.path, o.kernels) : await sandboxM1(cfg, m1Dir, o, showProgress, log);
  const world = m1.world;
  // With LoRA, every model of the run is M1's weights plus one adapter (engines.ts); M1's is B = 0.
  const adapter = cfg.lora ? initLora(m1.base.config, loraConfig(cfg), cfg.seed) : undefined;
  const trainable: Trainable = adapter ? loraTrainable(m1.base, adapter) : fullTrainable(m1.base);
  const model = trainable.model;
  let modelDir = m1.dir;
  if (adapter) {
    modelDir = join(m1Dir, "adapter");
    if (!(await exists(join(modelDir, ADAPTER_CONFIG_FILE)))) {
      await saveLoraAdapter(modelDir, m1.base.config, adapter, { ...(cfg.model.path ? { baseModel: cfg.model.path } : {}) });
    }
  }
  const models = await loopModels(cfg, trainable, m1, m1Dir, log);
  try {
    await models.use(modelDir);

    // Iteration 0: M1 on the held-out prompts (pipeline.ts measured it already when the settings agree).
    const eval0 = join(runDir, "iter-0", "eval.json");
    if (!(await exists(eval0))) {
      const full =
        m1.metrics !== undefined
          ? m1.metrics
          : world.evaluate
            ? (
                await world.evaluate(model, {
                  samples: cfg.eval.samples,
                  seed: cfg.seed,
                  signal: o.signal,
                  onProgress: stageBar(showProgress),
                })
              ).full
            : {};
      await mkdir(dirname(eval0), { recursive: true });
      await writeJsonAtomic(eval0, full);
    }
    return await iterate(cfg, runDir, { ...o, log, showProgress, world, trainable, model, models, modelDir });
  } finally {
    await models.dispose();
  }
}

interface IterateContext extends LoopOptions {
  log: (line: string) => void;
  showProgress: boolean;
  world: World;
  trainable: Trainable;
  /** The builtin model the trainable trains (LoRA: base + adapter, merged). */
  model: LlamaModel;
  models: LoopModels;
  /** M1's folder (full weights, or M1's zero adapter). */
  modelDir: string;
}

/** Iterations 1…T from M1 (each skipped when its eval.json exists). */
async function iterate(cfg: RunConfig, runDir: string, x: IterateContext): Promise<LoopResult> {
  const { log, showProgress, world, trainable, model, models } = x;
  const o = x;
  let metrics = await rebuildMetrics(cfg, runDir);
  log(iterationLine(metrics[0]));

  let modelDir = x.modelDir;
  // modelDirs[k]: where M_k's weights are (CREAM, SCIR and Temporal look back at earlier models).
  const modelDirs: string[] = ["", modelDir];
  for (let t = 1; t <= cfg.iterations; t++) {
    const dir = join(runDir, `iter-${t}`);
    const trainDir = join(dir, "train");
    if (await exists(join(dir, "eval.json"))) {
      // The model this iteration ended with: its DPO output, or M_t itself when it had no pairs.
      const done = JSON.parse(await readFile(join(dir, "eval.json"), "utf8")) as { model_dir: string };
      modelDir = join(runDir, done.model_dir);
      modelDirs[t + 1] = modelDir;
      continue;
    }
    // M_t: the weights the previous iteration ended with (in the trainable and the engine).
    await models.use(modelDir);
    await mkdir(dir, { recursive: true });
    const times: Record<string, number> = {};
    const time = async <T>(key: string, f: () => Promise<T>): Promise<T> => {
      const t0 = performance.now();
      const r = await f();
      times[key] = (times[key] ?? 0) + (performance.now() - t0) / 1000;
      return r;
    };
    const stage: StageContext = { model, engine: models.engine, world, cfg, t, dir, show: showProgress, signal: o.signal };

    const prompts = await time("time/prompts_s", () => iterationPrompts(models.engine, world, cfg, t, dir, showProgress, log, o.signal));
    const candidates = await time("time/generate_s", () =>
      sampleStage(stage, prompts, { name: "candidates", stage: STAGE.candidates, label: "sample" }),
    );
    const judgements =
      cfg.judge.by === "model" && judgesCandidates(cfg.method)
        ? await time("time/judge_s", () =>
            judgeStage(stage, prompts, candidates, { name: "judgements", stage: STAGE.judgements, label: "judge" }),
          )
        : [];
    const { pairs, stats } = await buildPairs({
      ...stage,
      trainable,
      models,
      modelDirs,
      prompts,
      candidates,
      judgements,
      log,
      time,
    });

    if (pairs.length > 0 && cfg.trainer === "trl") {
      const trl = { cfg, t, runDir, dir, world, prompts, pairs, initAdapter: modelDir, modelConfig: model.config, log, signal: o.signal };
      modelDir = await time("time/train_s", () => trlStage({ ...trl, show: showProgress }));
      // M_{t+1} into the trainable and the engine, where a builtin step leaves it.
      await models.use(modelDir);
    } else if (pairs.length > 0) {
      await time("time/train_s", () => trainStage({ ...stage, trainable }, prompts, pairs, trainDir, cfg.seed * 1000 + t));
      modelDir = join(trainDir, FINAL_DIR);
    } else if (prompts.length === 0) {
      log(`iteration ${t}: no prompts, so no pairs and no DPO step: M${t + 1} = M${t}`);
    } else {
      const dropped = Object.entries(stats)
        .filter(([k]) => k.startsWith("pairs/dropped_"))
        .map(([k, v]) => `, ${v} ${k.slice("pairs/dropped_".length)}`)
        .join("");
      log(
        `iteration ${t}: no pairs (${stats["pairs/ties_dropped"]} ties, ${stats["pairs/unjudged"]} unjudged${dropped}): M${t + 1} = M${t}`,
      );
    }
    modelDirs[t + 1] = modelDir;

    // The trainable holds M_{t+1} (or still M_t when there was no DPO step).
    const ev = world.evaluate
      ? await time("time/eval_s", () =>
          (world.evaluate as NonNullable<World["evaluate"]>)(model, {
            samples: cfg.eval.samples,
            seed: cfg.seed,
            signal: o.signal,
            onProgress: stageBar(showProgress),
          }),
        )
      : { full: {} };
    await writeJsonAtomic(join(dir, "times.json"), times);
    await writeJsonAtomic(join(dir, "eval.json"), { model_dir: relative(runDir, modelDir), ...(ev.full as object) });
    metrics = await rebuildMetrics(cfg, runDir);
    log(iterationLine(metrics[t]));
  }
  metrics = await rebuildMetrics(cfg, runDir);
  return { runDir, metrics, finalDir: modelDir };
}

/** M1 and the world around it: the base model the trainable starts from, and where M1's weights are. */
interface M1 {
  /** M1 as the builtin engine runs it (LoRA: the frozen base). */
  base: LlamaModel;
  world: World;
  /** M1's weights folder (full fine-tuning starts here). */
  dir: string;
  /** The held-out evaluation the sandbox pipeline already made (when its settings agree with the run's). */
  metrics?: unknown;
  /** The GGUF of M1 if M1 came as one (llama.cpp loads it as is). */
  gguf?: string;
  chatTemplate?: ChatTemplate;
  /** Ids that end a generation when not the tokenizer's EOS alone (HF folders: config eos_token_id). */
  stopTokens?: number[];
}

async function sandboxM1(cfg: RunConfig, m1Dir: string, o: LoopOptions, show: boolean, log: (l: string) => void): Promise<M1> {
  const p = m1Preset(cfg);
  const families = p.families ? familiesByName(p.families) : allFamilies;
  const m1 = await buildM1(p, m1Dir, { kernels: o.kernels, progress: show, log, signal: o.signal });
  return {
    base: m1.model,
    world: await sandboxWorld(families, m1Dir),
    dir: join(m1Dir, "m1", FINAL_DIR),
    ...(p.evalSamples === cfg.eval.samples && p.seed === cfg.seed ? { metrics: m1.metrics } : {}),
  };
}

/** The user's M1 (model.path): a GGUF file or a Hugging Face model folder, with a world without gold. */
async function userM1(path: string, kernels: Kernels): Promise<M1> {
  if (path.endsWith(".gguf")) {
    const g = loadGgufModel(path);
    return { base: createModel(g.config, g.params, kernels), world: userWorld(g.tokenizer, undefined), dir: dirname(path), gguf: path };
  }
  const f = await loadModelFolder(path);
  return {
    base: createModel(f.config, f.params, kernels),
    world: userWorld(f.tokenizer, f.chatTemplate),
    dir: path,
    chatTemplate: f.chatTemplate,
    stopTokens: f.eosIds,
  };
}

/** The run's lora block as a LoraConfig. */
function loraConfig(cfg: RunConfig) {
  const l = cfg.lora as NonNullable<RunConfig["lora"]>;
  return { r: l.r, alpha: l.lora_alpha, dropout: l.lora_dropout, targetModules: [...l.target_modules] as LoraTarget[] };
}

/**
 * The engine pair of the run. llama.cpp needs M1 as GGUF: the user's file as is, otherwise M1's base
 * weights exported once (F32, so llama.cpp computes what the builtin engine does) to m1/model.gguf.
 * OpenAI-compatible servers already run M1 (openai.model); M1's zero adapter stands for it.
 */
async function loopModels(cfg: RunConfig, trainable: Trainable, m1: M1, m1Dir: string, log: (line: string) => void): Promise<LoopModels> {
  const tok: Tokenizer = m1.world.tokenizer;
  if (cfg.engine === "openai" && cfg.openai) {
    const runDir = dirname(m1Dir);
    return openaiModels(trainable, openaiEngineFor(cfg.openai, { runDir, log }), { runDir, m1Adapter: join(m1Dir, "adapter"), log });
  }
  if (cfg.engine !== "llama.cpp") return builtinModels(trainable, tok, m1.stopTokens);
  let gguf = m1.gguf;
  if (!gguf) {
    gguf = join(m1Dir, "model.gguf");
    if (!(await exists(gguf))) {
      await mkdir(m1Dir, { recursive: true });
      await exportLlamaGguf(gguf, {
        config: m1.base.config,
        params: m1.base.params,
        tokenizer: tok,
        chatTemplate: m1.chatTemplate?.text,
        name: "srlm-m1",
      });
    }
  }
  const lc = cfg.llama_cpp ?? { sequences: 8, exact_kv: false, threads: 0 };
  return llamaCppModels(trainable, tok, {
    baseGguf: gguf,
    sequences: lc.sequences,
    exactKv: lc.exact_kv,
    threads: lc.threads > 0 ? lc.threads : autoLlamaThreads(),
    stopTokens: m1.stopTokens,
  });
}

/** config.resolved.yaml and manifest.json; a resumed run must carry the very same config. */
async function writeRunFiles(cfg: RunConfig, runDir: string, command?: string): Promise<void> {
  const yamlPath = join(runDir, "config.resolved.yaml");
  const text = configYaml(cfg);
  if (await exists(yamlPath)) {
    const old = await readFile(yamlPath, "utf8");
    if (old !== text) {
      throw new Error(
        `${runDir} holds a run with another config (${yamlPath}); resume it with \`srlm run --resume ${runDir}\` or choose a new --out`,
      );
    }
  } else await writeFileAtomic(yamlPath, text);
  const manifestPath = join(runDir, "manifest.json");
  if (!(await exists(manifestPath))) {
    await writeJsonAtomic(manifestPath, {
      srlm_version: packageVersion(),
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      git_sha: gitSha(),
      seed: cfg.seed,
      created: new Date().toISOString(),
      command: command ?? null,
    });
  }
}

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

function packageVersion(): string | null {
  try {
    return (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }).version;
  } catch {
    return null;
  }
}

function gitSha(): string | null {
  try {
    return execFileSync("git", ["rev-parse", "HEAD"], { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return null;
  }
}

function stageBar(show: boolean) {
  if (!show) return undefined;
  // A new bar whenever a stage starts again (the judge runs twice: own samples, corruptions).
  let current: { stage: string; bar: ReturnType<typeof progressBar>; finished: boolean } | undefined;
  return (stage: string, done: number, total: number) => {
    if (!current || current.stage !== stage || current.finished) {
      if (current && !current.finished) current.bar.finish();
      current = { stage, bar: progressBar(`eval ${stage}`, total), finished: false };
    }
    if (done >= total) {
      current.bar.finish();
      current.finished = true;
    } else current.bar.update(done);
  };
}

/**
 * Iteration t's prompts, by `prompts.source`. prompts.jsonl is the stage's output (self_instruct.json
 * is written before it): when it is missing the stage runs again, which gives the same prompts.
 */
async function iterationPrompts(
  engine: GenerationEngine,
  world: World,
  cfg: RunConfig,
  t: number,
  dir: string,
  show: boolean,
  log: (line: string) => void,
  signal?: AbortSignal,
): Promise<LoopPrompt[]> {
  const path = join(dir, "prompts.jsonl");
  if (await exists(path)) return readJsonl<LoopPrompt>(path);
  const source = cfg.prompts.source;
  const prompts =
    source === "file"
      ? await filePrompts(world, cfg, t)
      : source === "self_instruct"
        ? await selfInstructPrompts(engine, world, cfg, t, dir, show, log, signal)
        : world.prompts(t, cfg.prompts.count, cfg.seed);
  if (cfg.judge.by === "gold") {
    const blind = prompts.find((p) => p.family === undefined);
    if (blind)
      throw new Error(`judge.by "gold" needs a gold scorer for every prompt, but "${blind.instruction}" (${blind.id}) is no sandbox task`);
  }
  await writeJsonl(path, prompts);
  return prompts;
}

const PromptLine = z.object({ id: z.string().min(1).optional(), instruction: z.string().min(1) });

/**
 * Iteration t's prompts from the user's JSONL file (`{"instruction": …, "id"?: …}` per line): the
 * t-th slice of `count` lines, wrapping around, so iterations see different prompts while the file
 * lasts.
 */
async function filePrompts(world: World, cfg: RunConfig, t: number): Promise<LoopPrompt[]> {
  const path = cfg.prompts.path as string;
  const lines = await readJsonl(path, PromptLine);
  if (lines.length === 0) throw new Error(`${path}: no prompts`);
  const n = Math.min(cfg.prompts.count, lines.length);
  const items = Array.from({ length: n }, (_, k) => {
    const i = ((t - 1) * n + k) % lines.length;
    return { id: lines[i].id ?? `line-${i + 1}`, instruction: lines[i].instruction };
  });
  return world.fromInstructions(items);
}

export type SelfInstructVerdict = "accepted" | "unparsable" | "excluded" | "duplicate" | "unused";

export interface SelfInstructCounts {
  /** Instructions the model wrote. */
  generated: number;
  /** Kept as prompts (at most `count`). */
  accepted: number;
  /** Rejected by the world's filter (the sandbox: no family parses them). */
  unparsable: number;
  /** Held out for evaluation or seen by M1 in training. */
  excluded: number;
  /** The same text as an instruction accepted before it. */
  duplicate: number;
  /** Written after `count` were accepted, so never looked at. */
  unused: number;
}

/**
 * Self-instruct's selection, in the order written: an instruction is kept if the world accepts it,
 * it is not excluded, and it was not kept already, until `count` are kept. Each text gets one verdict,
 * checked in that order (a held-out instruction written twice is excluded twice, not a duplicate).
 * Pure.
 */
export function selectSelfInstructed(
  texts: readonly string[],
  accept: (instruction: string) => boolean,
  excluded: (instruction: string) => boolean,
  count: number,
): { accepted: string[]; verdicts: SelfInstructVerdict[]; counts: SelfInstructCounts } {
  const kept = new Set<string>();
  const accepted: string[] = [];
  const verdicts = texts.map((text): SelfInstructVerdict => {
    if (accepted.length >= count) return "unused";
    if (!accept(text)) return "unparsable";
    if (excluded(text)) return "excluded";
    if (kept.has(text)) return "duplicate";
    kept.add(text);
    accepted.push(text);
    return "accepted";
  });
  const n = (v: SelfInstructVerdict) => verdicts.filter((x) => x === v).length;
  return {
    accepted,
    verdicts,
    counts: {
      generated: texts.length,
      accepted: accepted.length,
      unparsable: n("unparsable"),
      excluded: n("excluded"),
      duplicate: n("duplicate"),
      unused: n("unused"),
    },
  };
}

/**
 * Source self_instruct: M_t writes instructions from few-shot seed instructions, `count` per round,
 * until `count` pass selectSelfInstructed or `attempts` rounds are spent. Writes self_instruct.json
 * (the counts, and the accepted prompts per family). May return fewer than `count` prompts, or none.
 */
async function selfInstructPrompts(
  engine: GenerationEngine,
  world: World,
  cfg: RunConfig,
  t: number,
  dir: string,
  show: boolean,
  log: (line: string) => void,
  signal?: AbortSignal,
): Promise<LoopPrompt[]> {
  const si = cfg.prompts.self_instruct ?? SelfInstructSchema.parse({});
  const count = cfg.prompts.count;
  const select = (texts: readonly string[]) =>
    selectSelfInstructed(
      texts,
      (x) => world.accepts(x),
      (x) => world.excluded(x),
      count,
    );
  const bar = show ? progressBar(`iteration ${t}: self-instruct`, count * si.attempts) : undefined;
  const texts: string[] = [];
  let sel = select(texts);
  let rounds = 0;
  while (rounds < si.attempts && sel.accepted.length < count) {
    const start = texts.length;
    // Instruction i's examples depend on i only, its sample on (round, i): the same seed gives the same texts.
    const res = await engine.generate(
      Array.from({ length: count }, (_, i) => world.newTaskPrompt(seedOf(cfg.seed, t, 3, 0), start + i)),
      {
        n: 1,
        temperature: si.temperature,
        topP: si.top_p,
        maxNewTokens: si.max_new_tokens,
        seed: seedOf(cfg.seed, t, 4, rounds),
        stopStrings: ["\n"],
        signal,
        onProgress: (pr) => bar?.update(start + pr.samplesDone),
      },
    );
    for (const r of res) texts.push(firstLine(r[0].text));
    sel = select(texts);
    rounds++;
  }
  bar?.finish();
  const prompts = world.fromInstructions(sel.accepted.map((instruction, k) => ({ id: `iter${t}-self-${k}`, instruction })));
  const families: Record<string, number> = {};
  for (const p of prompts) if (p.family !== undefined) families[p.family] = (families[p.family] ?? 0) + 1;
  // Every written instruction with its verdict, to see what the model writes and why it was dropped.
  await writeJsonl(
    join(dir, "self_instruct.jsonl"),
    texts.map((text, i) => ({ text, verdict: sel.verdicts[i] })),
  );
  await writeJsonAtomic(join(dir, "self_instruct.json"), { ...sel.counts, rounds, families });
  const c = sel.counts;
  log(
    `iteration ${t}: self-instruct kept ${c.accepted} of ${c.generated} written instructions (${c.unparsable} unparsable, ${c.excluded} held out or seen, ${c.duplicate} duplicates)`,
  );
  return prompts;
}

const firstLine = (text: string) => {
  const nl = text.indexOf("\n");
  return nl < 0 ? text : text.slice(0, nl);
};

/** Flat metrics of self_instruct.json; the rates are shares of the instructions looked at (generated − unused). */
export function selfInstructMetrics(c: SelfInstructCounts): Record<string, number> {
  const looked = c.generated - c.unused;
  const rate = (x: number) => (looked > 0 ? x / looked : Number.NaN);
  return {
    "prompts/generated": c.generated,
    "prompts/accepted": c.accepted,
    "prompts/unparsable_rate": rate(c.unparsable),
    "prompts/excluded_rate": rate(c.excluded),
    "prompts/duplicate_rate": rate(c.duplicate),
  };
}

/** pairs.jsonl and pairs_stats.json by the config's method (methods.ts), or as saved. */
async function buildPairs(ctx: MethodContext): Promise<{ pairs: PairRecord[]; stats: Record<string, number> }> {
  const pairsPath = join(ctx.dir, "pairs.jsonl");
  const statsPath = join(ctx.dir, "pairs_stats.json");
  if ((await exists(pairsPath)) && (await exists(statsPath))) {
    return { pairs: await readJsonl<PairRecord>(pairsPath), stats: JSON.parse(await readFile(statsPath, "utf8")) };
  }
  const r = await methodPairs(ctx);
  await writeJsonl(pairsPath, r.pairs);
  await writeJsonAtomic(statsPath, r.stats);
  return r;
}

/** Means of the DPO metrics over the iteration's logged training lines (TRL names). */
async function trainStats(trainDir: string): Promise<Record<string, number>> {
  let lines: Record<string, number>[];
  try {
    lines = await readJsonl<Record<string, number>>(join(trainDir, "metrics.jsonl"));
  } catch {
    return {};
  }
  const keys = [
    "loss",
    "rewards/chosen",
    "rewards/rejected",
    "rewards/margins",
    "rewards/accuracies",
    "logps/chosen",
    "logps/rejected",
    "nll/seed",
    "scir/penalty",
  ];
  const out: Record<string, number> = {};
  for (const k of keys) {
    const v = lines.filter((l) => typeof l[k] === "number" && !("eval_loss" in l)).map((l) => l[k]);
    if (v.length) out[k === "loss" ? "train/loss" : k] = v.reduce((a, b) => a + b, 0) / v.length;
  }
  const last = lines.at(-1);
  if (last?.step !== undefined) out["train/steps"] = last.step;
  return out;
}

/** metrics.jsonl: one line per evaluated model, from the files of the finished iterations. */
export async function rebuildMetrics(cfg: RunConfig, runDir: string): Promise<Record<string, unknown>[]> {
  const rows: Record<string, unknown>[] = [];
  for (let t = 0; t <= cfg.iterations; t++) {
    const dir = join(runDir, `iter-${t}`);
    let ev: Parameters<typeof flatSandboxMetrics>[0];
    try {
      ev = JSON.parse(await readFile(join(dir, "eval.json"), "utf8"));
    } catch {
      break;
    }
    const row: Record<string, unknown> = {
      iteration: t,
      model: `M${t + 1}`,
      method: cfg.method,
      mode: modeOf(cfg),
      // A user model has no held-out evaluation (eval.json holds only model_dir).
      ...(ev.judgeOwn !== undefined ? flatSandboxMetrics(ev) : {}),
    };
    if (t > 0) {
      const selfInstruct = join(dir, "self_instruct.json");
      if (await exists(selfInstruct)) Object.assign(row, selfInstructMetrics(JSON.parse(await readFile(selfInstruct, "utf8"))));
      Object.assign(row, JSON.parse(await readFile(join(dir, "pairs_stats.json"), "utf8")));
      Object.assign(row, await trainStats(join(dir, cfg.trainer === "trl" ? "trl" : "train")));
      try {
        Object.assign(row, JSON.parse(await readFile(join(dir, "times.json"), "utf8")));
      } catch {
        // older iteration without times
      }
    }
    rows.push(row);
  }
  await writeJsonl(join(runDir, "metrics.jsonl"), rows.map(nullNaN));
  return rows;
}

/** JSON has no NaN: write null. */
function nullNaN(r: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === "number" && !Number.isFinite(v) ? null : v]));
}

const f3 = (x: unknown) => (typeof x === "number" && Number.isFinite(x) ? x.toFixed(3) : "  –  ");

/** The per-iteration line the demo prints. */
export function iterationLine(m: Record<string, unknown>): string {
  const it = m.iteration as number;
  const head = `${String(m.model).padEnd(3)} gold ${f3(m["eval/gold"])}  exact ${f3(m["eval/exact"])}  judge pairwise ${f3(m["eval/judge_pairwise"])}  parse fail ${f3(m["eval/judge_parse_failures"])}  length ${typeof m["eval/length"] === "number" ? m["eval/length"].toFixed(1) : "–"}`;
  if (it === 0) return head;
  const written = typeof m["prompts/accepted"] === "number" ? `  | self-instruct ${m["prompts/accepted"]}/${m["prompts/generated"]}` : "";
  return `${head}${written}  | pairs ${m["pairs/count"]}  chosen−rejected gold ${f3(m["pairs/gold_gap"])}  truly better/worse ${f3(m["pairs/truly_better"])}/${f3(m["pairs/truly_worse"])}`;
}

/**
 * llama_cpp.threads 0: leave one core to the process that trains and scores (and to the OS), at most 8.
 * ggml's threads spin while they wait for each other, so on a machine with 2 busy cores the
 * all-cores default ran 500× slower than 1 thread (39 s against 0.07 s for 8 × 24 tokens).
 */
export function autoLlamaThreads(cores = availableParallelism()): number {
  return Math.max(1, Math.min(8, cores - 1));
}
