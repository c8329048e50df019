/**
 * The loop's generation stages, shared by every method: sampling candidates and judging them, each
 * saved in chunks (a kill loses at most one chunk), each chunk seeded by (run seed, iteration, stage,
 * chunk) only so a resumed run writes the same records. Methods that sample or judge more than vanilla
 * SR (Temporal's anchors and future candidates, CREAM's previous judge) call the same stages under
 * another file name and stage number.
 */
import { access, mkdir, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { GenerationEngine } from "../engine/engine.js";
import { readJsonl, writeJsonl } from "../io/jsonl.js";
import { parseScore } from "../judge/parse.js";
import type { LlamaModel } from "../model/llama.js";
import { firstDifference } from "../pairs/truncate.js";
import { progress as progressBar } from "../run/progress.js";
import { dpoConfig } from "../train/config.js";
import { tokenizePreference, tokenizeSft } from "../train/data.js";
import { dpoMix } from "../train/dpo-mix.js";
import type { Trainable } from "../train/trainable.js";
import type { RunConfig } from "./config.js";
import type { LoopModels } from "./engines.js";
import type { Candidate, Judgement, PairRecord } from "./records.js";
import type { LoopPrompt, World } from "./world.js";

export const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

/** What a stage needs: the model (with whatever weights the caller loaded), the world and where to write. */
export interface StageContext {
  /** The builtin model: trains, scores log-probs, and gives the context length. */
  model: LlamaModel;
  /** Samples and judges, with the same weights as `model` (engines.ts). */
  engine: GenerationEngine;
  world: World;
  cfg: RunConfig;
  /** The iteration. */
  t: number;
  /** The iteration's directory. */
  dir: string;
  show: boolean;
  signal?: AbortSignal;
}

/**
 * Runs `work` over the prompts in chunks, each chunk's records saved in parts/ as it finishes, then
 * all of them in `<name>.jsonl`: a kill loses at most the chunk in flight. Chunk c's seed depends on
 * c only, so the records do not depend on where a run was interrupted.
 */
export async function chunked<R>(
  dir: string,
  name: string,
  nPrompts: number,
  chunkPrompts: number,
  work: (start: number, end: number, chunk: number) => Promise<R[]>,
): Promise<R[]> {
  const path = join(dir, `${name}.jsonl`);
  if (await exists(path)) return readJsonl<R>(path);
  const parts = join(dir, "parts");
  await mkdir(parts, { recursive: true });
  const out: R[] = [];
  for (let c = 0, start = 0; start < nPrompts; c++, start += chunkPrompts) {
    const part = join(parts, `${name}-${String(c).padStart(4, "0")}.jsonl`);
    if (await exists(part)) {
      out.push(...(await readJsonl<R>(part)));
      continue;
    }
    const recs = await work(start, Math.min(nPrompts, start + chunkPrompts), c);
    await writeJsonl(part, recs);
    out.push(...recs);
  }
  await writeJsonl(path, out);
  for (const f of await readdir(parts)) if (f.startsWith(`${name}-`)) await rm(join(parts, f), { force: true });
  return out;
}

/** A seed for (run seed, iteration, stage, chunk). */
export const seedOf = (seed: number, t: number, stage: number, chunk: number) =>
  (((seed * 1_000_003 + t * 10_007 + stage * 101 + chunk) >>> 0) % 2_147_483_647) + 1;

/**
 * Seed stages: 1 candidates, 2 judgements, 3–4 self-instruct (run.ts); 5 anchor candidates, 6 their
 * judgements, 7 future candidates, 8 their judgements (temporal); 9 previous model's judgements
 * (cream); 10 meta-judgements (meta).
 */
export const STAGE = {
  candidates: 1,
  judgements: 2,
  anchorCandidates: 5,
  anchorJudgements: 6,
  futureCandidates: 7,
  futureJudgements: 8,
  previousJudgements: 9,
  metaJudgements: 10,
} as const;

export function groupBy<T>(xs: readonly T[], key: (x: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const x of xs) {
    const k = key(x);
    const list = m.get(k);
    if (list) list.push(x);
    else m.set(k, [x]);
  }
  return m;
}

/** N sampled answers per prompt (generate.*), with gold scores where the world knows them, into `<name>.jsonl`. */
export async function sampleStage(
  ctx: StageContext,
  prompts: readonly LoopPrompt[],
  o: { name: string; stage: number; label: string },
): Promise<Candidate[]> {
  const { engine, world, cfg, t, dir, show, signal } = ctx;
  const g = cfg.generate;
  const bar = show ? progressBar(`iteration ${t}: ${o.label}`, prompts.length * g.n) : undefined;
  let before = 0;
  const out = await chunked<Candidate>(dir, o.name, prompts.length, cfg.prompts.chunk, async (start, end, c) => {
    const chunk = prompts.slice(start, end);
    const res = await engine.generate(
      chunk.map((p) => world.answerPrompt(p)),
      {
        n: g.n,
        temperature: g.temperature,
        topP: g.top_p,
        maxNewTokens: g.max_new_tokens,
        seed: seedOf(cfg.seed, t, o.stage, c),
        signal,
        onProgress: (pr) => bar?.update(before + pr.samplesDone),
      },
    );
    before += chunk.length * g.n;
    return chunk.flatMap((p, i) =>
      res[i].map((s, k) => {
        const text = world.cleanAnswer(s.text);
        const gold = world.gold(p, text);
        return {
          prompt_id: p.id,
          index: k,
          text,
          logprob: s.logprob,
          tokens: s.ids.length,
          ...(gold !== undefined ? { gold } : {}),
        };
      }),
    );
  });
  bar?.finish();
  return out;
}

/** K judgements (judge.*) of every candidate by the model as loaded, into `<name>.jsonl`. */
export async function judgeStage(
  ctx: StageContext,
  prompts: readonly LoopPrompt[],
  candidates: readonly Candidate[],
  o: { name: string; stage: number; label: string },
): Promise<Judgement[]> {
  const { engine, world, cfg, t, dir, show, signal } = ctx;
  const j = cfg.judge;
  const byPrompt = groupBy(candidates, (c) => c.prompt_id);
  const bar = show ? progressBar(`iteration ${t}: ${o.label}`, candidates.length * j.samples) : undefined;
  let before = 0;
  const out = await chunked<Judgement>(dir, o.name, prompts.length, cfg.prompts.chunk, async (start, end, c) => {
    const cands = prompts.slice(start, end).flatMap((p) => (byPrompt.get(p.id) ?? []).map((cand) => ({ p, cand })));
    const res = await engine.generate(
      cands.map(({ p, cand }) => world.judgePrompt(p, cand.text)),
      {
        n: j.samples,
        temperature: j.temperature,
        topP: j.top_p,
        maxNewTokens: j.max_new_tokens,
        seed: seedOf(cfg.seed, t, o.stage, c),
        signal,
        onProgress: (pr) => bar?.update(before + pr.samplesDone),
      },
    );
    before += cands.length * j.samples;
    return cands.flatMap(({ p, cand }, i) =>
      res[i].map((s, k) => {
        const r = parseScore(s.text);
        return { prompt_id: p.id, candidate: cand.index, sample: k, text: s.text, score: r.ok ? r.score : null };
      }),
    );
  });
  bar?.finish();
  return out;
}

/**
 * Runs `f` with the model saved in `modelDir` loaded (in the trainable and the engine), then loads
 * `restoreDir` (M_t) again, also when `f` throws: a method that scores or samples with another model
 * (M1, M_{t−1}, the future model) leaves the loop's model as it found it.
 */
export async function withWeights<T>(models: LoopModels, modelDir: string, restoreDir: string, f: () => Promise<T>): Promise<T> {
  await models.use(modelDir);
  try {
    return await f();
  } finally {
    await models.use(restoreDir);
  }
}

/**
 * The loop's training step on an iteration's pairs: DPO-family loss (reference = the model as loaded),
 * seed rows mixed in (mix.*), into `outDir` (final/ = the trained model). Answer pairs train the answer
 * form; Meta-Rewarding's judge pairs (`kind: "judge"`) train the judge form of their answer. CREAM's
 * labels and SCIR's judge probabilities travel with each pair; SCIR switches on the consistency penalty.
 */
export async function trainStage(
  ctx: StageContext & { trainable: Trainable },
  prompts: readonly LoopPrompt[],
  pairs: readonly PairRecord[],
  outDir: string,
  seed: number,
): Promise<void> {
  const { world, cfg } = ctx;
  const tok = world.tokenizer;
  const seedRows = (await world.seedData()).map((r) => tokenizeSft(tok, r));
  const byId = new Map(prompts.map((p) => [p.id, p]));
  const full = pairs.map((pr) => {
    const p = byId.get(pr.prompt_id);
    if (!p) throw new Error(`pair for prompt ${pr.prompt_id}, which is not among the iteration's prompts`);
    return tokenizePreference(tok, {
      prompt: pr.kind === "judge" ? world.judgePrompt(p, pr.judged_answer ?? "") : world.answerPrompt(p),
      chosen: pr.chosen[0].content,
      rejected: pr.rejected[0].content,
      ...(pr.label !== undefined ? { label: pr.label } : {}),
      ...(pr.judge_prob !== undefined ? { judgeProb: pr.judge_prob } : {}),
    });
  });
  const data = cfg.pairs.truncate === "first_difference" ? full.flatMap((ex) => firstDifference(ex) ?? []) : full;
  const dcfg = dpoConfig({ ...cfg.dpo, output_dir: outDir, seed }, "run config dpo");
  if (cfg.method === "scir" && cfg.scir) dcfg.consistency = { weight: cfg.scir.consistency_weight, confidence: cfg.scir.confidence_weight };
  await dpoMix(
    ctx.trainable,
    data,
    seedRows,
    dcfg,
    { rowsPerPair: cfg.mix.rows_per_pair, weight: cfg.mix.weight, preference: cfg.method !== "control" },
    { progress: ctx.show, signal: ctx.signal },
  );
}
