/**
 * The successors' stages in the loop (DESIGN §2, docs/methods.md): what each method computes beyond
 * vanilla SR's candidates and judgements, and how it turns them into pairs. The pair rules themselves are
 * pure functions in src/pairs/<method>.ts; here are the model calls they need, each saved to a file of
 * the iteration and skipped when that file exists (so a killed run resumes without redoing them):
 *
 *   spin      —                                        (no judge: chosen = world.reference(p))
 *   cream     candidate_logps.jsonl                    log-probs of M_t's candidates under M_t, M_{t−1}, M_{t−2} as needed
 *             prev_judgements.jsonl                    reward judge, t ≥ 2: M_{t−1} judges M_t's candidates
 *   scir      candidate_logps.jsonl                    M_t and M_{t−1} (M1: M1 only)
 *   meta      meta_judgements.jsonl                    M_t as meta-judge, two orders per prompt
 *   temporal  anchor_candidates.jsonl, anchor_judgements.jsonl   t ≥ 2: M1 samples and judges the prompts
 *             anchored_pairs.jsonl, future/            the temporary future model M_t' = DPO(M_t) on them
 *             future_candidates.jsonl, future_judgements.jsonl  M_t' samples, M_t judges
 *
 * Every stage that loads other weights (M1, M_{t−1}, M_t') loads M_t back before it returns.
 */
import { join } from "node:path";
import { readJsonl, writeJsonl } from "../io/jsonl.js";
import { parseVerdict } from "../judge/parse.js";
import { creamPairs, implicitReward } from "../pairs/cream.js";
import { lengthControlledPair, metaOutcome, metaTarget, type Verdict } from "../pairs/meta.js";
import { scirPair } from "../pairs/scir.js";
import { spinPair } from "../pairs/spin.js";
import { anchoredRejected, bestOf, futureChosen, temporalPair } from "../pairs/temporal.js";
import { progress as progressBar } from "../run/progress.js";
import { sftRow, tokenizeSft } from "../train/data.js";
import { rowLogps } from "../train/logps.js";
import type { Trainable } from "../train/trainable.js";
import type { LoopModels } from "./engines.js";
import { assemblePairs, type Pick, pairsFromJudged, rewardsByPrompt, sideOf } from "./pair-records.js";
import type { Candidate, Judgement, PairRecord } from "./records.js";
import { chunked, exists, groupBy, judgeStage, STAGE, type StageContext, sampleStage, seedOf, trainStage, withWeights } from "./stages.js";
import type { LoopPrompt } from "./world.js";

export interface MethodContext extends StageContext {
  trainable: Trainable;
  /** Switches the trainable and the engine between M1, M_{t−1}, M_t and the future model. */
  models: LoopModels;
  /** modelDirs[k] = the folder holding M_k's weights, k = 1…t (index 0 unused). */
  modelDirs: readonly string[];
  prompts: readonly LoopPrompt[];
  /** M_t's candidates and (judge.by model) their judgements. */
  candidates: readonly Candidate[];
  judgements: readonly Judgement[];
  log: (line: string) => void;
  /** Adds the seconds `f` takes to times.json under `key`. */
  time: <T>(key: string, f: () => Promise<T>) => Promise<T>;
}

export interface MethodPairs {
  pairs: PairRecord[];
  stats: Record<string, number>;
}

/** Does the method judge M_t's candidates (judgements.jsonl)? SPIN alone needs no judge. */
export const judgesCandidates = (method: string) => method !== "spin";

/** The iteration's pairs and stats by `method`; the model holds M_t again when this returns. */
export async function methodPairs(ctx: MethodContext): Promise<MethodPairs> {
  const { cfg } = ctx;
  switch (cfg.method) {
    case "sr":
    case "control":
      return pairsFromJudged(
        { by: cfg.judge.by, minMargin: cfg.pairs.min_margin, iteration: ctx.t, method: cfg.method },
        ctx.prompts,
        ctx.candidates,
        ctx.judgements,
      );
    case "spin":
      return spinPairs(ctx);
    case "cream":
      return creamStage(ctx);
    case "scir":
      return scirStage(ctx);
    case "meta":
      return metaStage(ctx);
    case "temporal":
      return temporalStage(ctx);
  }
}

const opts = (ctx: MethodContext) => ({ by: ctx.cfg.judge.by, iteration: ctx.t, method: ctx.cfg.method });
const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN);
const key = (prompt_id: string, index: number) => `${prompt_id}\u0000${index}`;

// ---- SPIN ---------------------------------------------------------------------------------------

function spinPairs(ctx: MethodContext): MethodPairs {
  const { world, prompts, candidates } = ctx;
  const byPrompt = groupBy(candidates, (c) => c.prompt_id);
  const picks = new Map<string, Pick>();
  for (const p of prompts) {
    const cs = byPrompt.get(p.id) ?? [];
    const ref = world.reference(p);
    const out = spinPair(
      ref,
      cs.map((c) => c.text),
    );
    if (out.kind === "pair") {
      const gold = world.gold(p, ref as string);
      picks.set(p.id, {
        kind: "pair",
        chosen: { text: ref as string, score: null, ...(gold !== undefined ? { gold } : {}) },
        rejected: sideOf(cs[out.rejected], null),
        extra: { source_chosen: "reference" },
      });
    } else picks.set(p.id, out.kind === "unjudged" ? out : { kind: "dropped", reason: out.kind });
  }
  return assemblePairs(opts(ctx), prompts, candidates, ctx.judgements, picks);
}

// ---- log-probs of the candidates under earlier models (CREAM, SCIR) -----------------------------

interface CandidateLogps {
  prompt_id: string;
  index: number;
  /** Target tokens of the candidate's row (its text + EOS). */
  tokens: number;
  /** Σ log π_k(y|x) per model number k. */
  logps: Record<string, number>;
}

/**
 * Σ log π_k(candidate | prompt) for each k in `models` (M_k's weights from modelDirs), over the same
 * rows DPO trains on (answer prompt → text + EOS), into candidate_logps.jsonl.
 */
async function candidateLogps(ctx: MethodContext, models: readonly number[]): Promise<Map<string, CandidateLogps>> {
  const path = join(ctx.dir, "candidate_logps.jsonl");
  let recs: CandidateLogps[];
  if (await exists(path)) recs = await readJsonl<CandidateLogps>(path);
  else {
    const { world, model, prompts, candidates } = ctx;
    const byId = new Map(prompts.map((p) => [p.id, p]));
    const rows = candidates.map((c) => {
      const ex = tokenizeSft(world.tokenizer, { prompt: world.answerPrompt(byId.get(c.prompt_id) as LoopPrompt), completion: c.text });
      return sftRow(ex.prompt, ex.completion, model.config.maxSeqLen).row;
    });
    recs = candidates.map((c) => ({ prompt_id: c.prompt_id, index: c.index, tokens: 0, logps: {} }));
    const current = ctx.modelDirs[ctx.t];
    for (const k of models) {
      const bar = ctx.show ? progressBar(`iteration ${ctx.t}: log-probs under M${k}`, rows.length) : undefined;
      const r = await withWeights(ctx.models, ctx.modelDirs[k], current, () =>
        rowLogps(model, rows, { batchSize: 32, signal: ctx.signal, onProgress: (d) => bar?.update(d) }),
      );
      bar?.finish();
      recs.forEach((rec, i) => {
        rec.logps[String(k)] = r.logps[i];
        rec.tokens = r.tokens[i];
      });
    }
    await writeJsonl(path, recs);
  }
  const out = new Map<string, CandidateLogps>();
  for (const r of recs) {
    for (const k of models)
      if (r.logps[String(k)] === undefined) throw new Error(`${path}: no log-probs under M${k} (another config's file?)`);
    out.set(key(r.prompt_id, r.index), r);
  }
  return out;
}

/** Implicit reward of model k for each candidate of a prompt (cream.ts `implicitReward`). */
function implicitRewards(cands: readonly Candidate[], logps: Map<string, CandidateLogps>, k: number): number[] {
  return cands.map((c) => {
    const r = logps.get(key(c.prompt_id, c.index)) as CandidateLogps;
    return implicitReward(k, Object.fromEntries(Object.entries(r.logps).map(([m, v]) => [Number(m), v])), r.tokens);
  });
}

// ---- CREAM --------------------------------------------------------------------------------------

async function creamStage(ctx: MethodContext): Promise<MethodPairs> {
  const { cfg, t, prompts, candidates, judgements } = ctx;
  const c = cfg.cream ?? { reward: "judge", consistency: "dyn" };
  // Which models' log-probs: R(M1) = its length-normalised log-likelihood; R(M_k) = log π_k − log π_{k−1}.
  const need = new Set<number>();
  const needReward = (k: number) => {
    need.add(k);
    if (k > 1) need.add(k - 1);
  };
  if (t === 1) needReward(1);
  if (c.reward === "implicit") {
    needReward(t);
    if (t > 1) needReward(t - 1);
  }
  const logps = need.size
    ? await ctx.time("time/logps_s", () =>
        candidateLogps(
          ctx,
          [...need].sort((a, b) => b - a),
        ),
      )
    : new Map();
  // Previous model's judge (reward judge, t ≥ 2): M_{t−1} judges M_t's candidates.
  let prevJudgements: Judgement[] = [];
  if (c.reward === "judge" && t > 1 && cfg.judge.by === "model") {
    prevJudgements = await ctx.time("time/judge_s", () =>
      withWeights(ctx.models, ctx.modelDirs[t - 1], ctx.modelDirs[t], () =>
        judgeStage(ctx, prompts, candidates, { name: "prev_judgements", stage: STAGE.previousJudgements, label: `judge by M${t - 1}` }),
      ),
    );
  }
  const current = rewardsByPrompt(cfg.judge.by, prompts, candidates, judgements);
  const previous = rewardsByPrompt(cfg.judge.by, prompts, candidates, prevJudgements);
  const perPrompt = prompts.map((p) => {
    const { cands, rewards } = current.get(p.id) as { cands: Candidate[]; rewards: number[] };
    const cur = c.reward === "implicit" ? implicitRewards(cands, logps, t) : rewards;
    const prev =
      t === 1
        ? implicitRewards(cands, logps, 1)
        : c.reward === "implicit"
          ? implicitRewards(cands, logps, t - 1)
          : (previous.get(p.id)?.rewards ?? []);
    return { cands, current: cur, previous: prev };
  });
  const res = creamPairs(perPrompt, c.consistency, cfg.pairs.min_margin);
  const picks = new Map<string, Pick>();
  prompts.forEach((p, i) => {
    const o = res.outcomes[i];
    const { cands, current: cur } = perPrompt[i];
    if (o.kind !== "pair") picks.set(p.id, o);
    else
      picks.set(p.id, {
        kind: "pair",
        chosen: sideOf(cands[o.chosen], cur[o.chosen]),
        rejected: sideOf(cands[o.rejected], cur[o.rejected]),
        extra: {
          label: res.labels[i],
          ...(Number.isFinite(res.consistency[i]) ? { consistency: res.consistency[i] } : {}),
        },
      });
  });
  const out = assemblePairs(opts(ctx), prompts, candidates, judgements, picks);
  const labels = res.labels.filter((l) => Number.isFinite(l));
  Object.assign(out.stats, {
    "cream/consistency": res.meanConsistency,
    "cream/undefined": res.consistency.filter((x) => !Number.isFinite(x)).length,
    "cream/label": mean(labels),
  });
  return out;
}

// ---- SCIR ---------------------------------------------------------------------------------------

async function scirStage(ctx: MethodContext): Promise<MethodPairs> {
  const { cfg, t, prompts, candidates, judgements } = ctx;
  const s = cfg.scir ?? { judge_temperature: 1, consistency_weight: 1, confidence_weight: 0.1 };
  const logps = await ctx.time("time/logps_s", () => candidateLogps(ctx, t === 1 ? [1] : [t, t - 1]));
  const picks = new Map<string, Pick>();
  let kept = 0;
  let disagreed = 0;
  for (const [id, { cands, rewards }] of rewardsByPrompt(cfg.judge.by, prompts, candidates, judgements)) {
    const o = scirPair(rewards, implicitRewards(cands, logps, t), s.judge_temperature, cfg.pairs.min_margin);
    if (o.kind === "disagree") {
      disagreed++;
      picks.set(id, { kind: "dropped", reason: "disagree" });
    } else if (o.kind !== "pair") picks.set(id, o);
    else {
      kept++;
      picks.set(id, {
        kind: "pair",
        chosen: sideOf(cands[o.chosen], rewards[o.chosen]),
        rejected: sideOf(cands[o.rejected], rewards[o.rejected]),
        extra: { judge_prob: o.judgeProb, implicit_margin: o.implicitMargin },
      });
    }
  }
  const out = assemblePairs(opts(ctx), prompts, candidates, judgements, picks);
  out.stats["scir/agreement"] = kept + disagreed ? kept / (kept + disagreed) : Number.NaN;
  return out;
}

// ---- Meta-Rewarding -----------------------------------------------------------------------------

/** One meta-judge generation: order 1 shows `high` first, order 2 shows `low` first. */
export interface MetaJudgement {
  prompt_id: string;
  candidate: number;
  /** Judgement samples compared: `high` scored higher than `low`. */
  high: number;
  low: number;
  order: 1 | 2;
  /** The verdict text, or null when the meta-judge prompt did not fit the context (skipped). */
  text: string | null;
  verdict: Verdict;
}

/**
 * The meta-judge stage: per prompt, the candidate whose judgements disagree most (pairs/meta.ts
 * `metaTarget`), its highest- vs lowest-scored judgement, shown to M_t in both orders. Exported for the
 * model test (the tiny M1's own judgements rarely parse, so the loop alone seldom reaches this stage).
 */
export async function metaJudgeStage(
  ctx: StageContext,
  prompts: readonly LoopPrompt[],
  candidates: readonly Candidate[],
  judgements: readonly Judgement[],
): Promise<MetaJudgement[]> {
  const { model, engine, world, cfg, t, dir, signal } = ctx;
  const m = cfg.meta ?? { rho: 0, verdicts: "consistent", max_new_tokens: 12 };
  const cands = groupBy(candidates, (c) => c.prompt_id);
  const judged = groupBy(judgements, (j) => key(j.prompt_id, j.candidate));
  const targets = prompts.flatMap((p) => {
    const cs = cands.get(p.id) ?? [];
    const texts = cs.map((c) => {
      const js = judged.get(key(p.id, c.index)) ?? [];
      const bySample: (Judgement | undefined)[] = [];
      for (const j of js) bySample[j.sample] = j;
      return bySample;
    });
    const target = metaTarget(texts.map((js) => Array.from(js, (j) => (j ? j.score : null))));
    if (!target) return [];
    const c = cs[target.candidate];
    const high = texts[target.candidate][target.high] as Judgement;
    const low = texts[target.candidate][target.low] as Judgement;
    return [{ p, c, high, low }];
  });
  const bar = ctx.show ? progressBar(`iteration ${t}: meta-judge`, targets.length * 2) : undefined;
  let before = 0;
  const out = await chunked<MetaJudgement>(dir, "meta_judgements", targets.length, cfg.prompts.chunk, async (start, end, chunk) => {
    const items = targets.slice(start, end).flatMap(({ p, c, high, low }) =>
      ([1, 2] as const).map((order) => ({
        p,
        c,
        high,
        low,
        order,
        text: order === 1 ? world.metaJudgePrompt(p, c.text, high.text, low.text) : world.metaJudgePrompt(p, c.text, low.text, high.text),
      })),
    );
    // Fail closed on the context: a prompt that leaves no room for the verdict is skipped, not cut.
    const fits = items.map((it) => world.tokenizer.encode(it.text).length + m.max_new_tokens <= model.config.maxSeqLen);
    const res = await engine.generate(
      items.filter((_, i) => fits[i]).map((it) => it.text),
      {
        n: 1,
        temperature: cfg.judge.temperature,
        topP: cfg.judge.top_p,
        maxNewTokens: m.max_new_tokens,
        seed: seedOf(cfg.seed, t, STAGE.metaJudgements, chunk),
        signal,
        onProgress: (pr) => bar?.update(before + pr.samplesDone),
      },
    );
    before += items.length;
    let k = 0;
    return items.map((it, i) => {
      const text = fits[i] ? res[k++][0].text : null;
      const v = text === null ? null : parseVerdict(text);
      return {
        prompt_id: it.p.id,
        candidate: it.c.index,
        high: it.high.sample,
        low: it.low.sample,
        order: it.order,
        text,
        verdict: v?.ok ? v.better : null,
      };
    });
  });
  bar?.finish();
  return out;
}

async function metaStage(ctx: MethodContext): Promise<MethodPairs> {
  const { cfg, world, prompts, candidates, judgements } = ctx;
  const m = cfg.meta ?? { rho: 0, verdicts: "consistent" as const, max_new_tokens: 12 };
  // Answer pairs: SR's rewards, length-controlled chosen.
  const picks = new Map<string, Pick>();
  for (const [id, { cands, rewards }] of rewardsByPrompt(cfg.judge.by, prompts, candidates, judgements)) {
    const o = lengthControlledPair(
      rewards,
      cands.map((c) => c.text.length),
      m.rho,
      cfg.pairs.min_margin,
    );
    picks.set(
      id,
      o.kind === "pair"
        ? { kind: "pair", chosen: sideOf(cands[o.chosen], rewards[o.chosen]), rejected: sideOf(cands[o.rejected], rewards[o.rejected]) }
        : o,
    );
  }
  // Judge pairs: only the model's own judgements can be meta-judged (an oracle run has none).
  const metas = cfg.judge.by === "model" ? await ctx.time("time/meta_s", () => metaJudgeStage(ctx, prompts, candidates, judgements)) : [];
  const built = metaJudgePairs(ctx.t, cfg.method, m.verdicts, prompts, candidates, judgements, metas, (p, a) => world.judgePrompt(p, a));
  const out = assemblePairs(opts(ctx), prompts, candidates, judgements, picks, built.pairs);
  Object.assign(out.stats, built.stats);
  return out;
}

/**
 * Judge-training pairs from the meta-judgements (pure): per meta-judged candidate, the two orders'
 * verdicts combine by `rule` (pairs/meta.ts `metaOutcome`); the preferred judgement is chosen, the other
 * rejected, the prompt is the judge prompt of the answer. Stats: targets, pairs, position-inconsistent,
 * unparsed, skipped (too long), the verdicts' parse-failure rate, and — where gold is known — how often
 * the chosen judgement's score is strictly closer to the answer's gold score than the rejected one's.
 */
export function metaJudgePairs(
  iteration: number,
  method: string,
  rule: "consistent" | "votes",
  prompts: readonly LoopPrompt[],
  candidates: readonly Candidate[],
  judgements: readonly Judgement[],
  metas: readonly MetaJudgement[],
  judgePrompt: (p: LoopPrompt, answer: string) => string,
): { pairs: PairRecord[]; stats: Record<string, number> } {
  const byId = new Map(prompts.map((p) => [p.id, p]));
  const cand = new Map(candidates.map((c) => [key(c.prompt_id, c.index), c]));
  const judgement = new Map(judgements.map((j) => [`${key(j.prompt_id, j.candidate)}\u0000${j.sample}`, j]));
  const groups = groupBy(metas, (m) => key(m.prompt_id, m.candidate));
  const pairs: PairRecord[] = [];
  let inconsistent = 0;
  let unparsed = 0;
  let skipped = 0;
  let closer = 0;
  let withGold = 0;
  for (const ms of groups.values()) {
    const o1 = ms.find((m) => m.order === 1);
    const o2 = ms.find((m) => m.order === 2);
    if (!o1 || !o2) continue;
    if (o1.text === null || o2.text === null) {
      skipped++;
      continue;
    }
    const out = metaOutcome(o1.verdict, o2.verdict, rule);
    if (out.kind === "inconsistent") inconsistent++;
    if (out.kind === "unparsed") unparsed++;
    if (out.kind !== "pair") continue;
    const p = byId.get(o1.prompt_id) as LoopPrompt;
    const c = cand.get(key(o1.prompt_id, o1.candidate)) as Candidate;
    const jOf = (sample: number) => judgement.get(`${key(o1.prompt_id, o1.candidate)}\u0000${sample}`) as Judgement;
    const [ch, rj] = out.preferred === "a" ? [jOf(o1.high), jOf(o1.low)] : [jOf(o1.low), jOf(o1.high)];
    if (c.gold !== undefined && ch.score !== null && rj.score !== null) {
      withGold++;
      if (Math.abs(ch.score - c.gold) < Math.abs(rj.score - c.gold)) closer++;
    }
    pairs.push({
      prompt: [{ role: "user", content: judgePrompt(p, c.text) }],
      chosen: [{ role: "assistant", content: ch.text }],
      rejected: [{ role: "assistant", content: rj.text }],
      prompt_id: p.id,
      score_chosen: ch.score,
      score_rejected: rj.score,
      iteration,
      method,
      kind: "judge",
      judged_answer: c.text,
    });
  }
  const generated = metas.filter((m) => m.text !== null);
  return {
    pairs,
    stats: {
      "meta/targets": groups.size,
      "meta/judge_pairs": pairs.length,
      "meta/inconsistent": inconsistent,
      "meta/unparsed": unparsed,
      "meta/too_long": skipped,
      "meta/verdict_parse_failures": generated.length ? generated.filter((m) => m.verdict === null).length / generated.length : Number.NaN,
      "meta/chosen_closer_to_gold": withGold ? closer / withGold : Number.NaN,
    },
  };
}

// ---- Temporal SR --------------------------------------------------------------------------------

async function temporalStage(ctx: MethodContext): Promise<MethodPairs> {
  const { cfg, t, prompts, candidates, judgements, dir } = ctx;
  const from = cfg.temporal?.future_from ?? "future";
  const byModel = cfg.judge.by === "model";
  const m1 = ctx.modelDirs[1];
  const current = ctx.modelDirs[t];
  // Anchors: M1's candidates for these prompts, judged by M1. At t = 1, M_t is M1: its own candidates.
  let anchorCands = candidates;
  let anchorJudgements = judgements;
  if (t > 1) {
    anchorCands = await ctx.time("time/generate_s", () =>
      withWeights(ctx.models, m1, current, () =>
        sampleStage(ctx, prompts, { name: "anchor_candidates", stage: STAGE.anchorCandidates, label: "sample by M1 (anchors)" }),
      ),
    );
    anchorJudgements = byModel
      ? await ctx.time("time/judge_s", () =>
          withWeights(ctx.models, m1, current, () =>
            judgeStage(ctx, prompts, anchorCands, {
              name: "anchor_judgements",
              stage: STAGE.anchorJudgements,
              label: "judge by M1 (anchors)",
            }),
          ),
        )
      : [];
  }
  const cur = rewardsByPrompt(cfg.judge.by, prompts, candidates, judgements);
  const anc = rewardsByPrompt(cfg.judge.by, prompts, anchorCands, anchorJudgements);
  const anchorOf = (id: string) => {
    const a = anc.get(id) as { cands: Candidate[]; rewards: number[] };
    const i = anchoredRejected(a.rewards);
    return i === undefined ? undefined : { cand: a.cands[i], reward: a.rewards[i] };
  };

  // Anchored pairs (best of M_t vs the anchor) train the temporary future model M_t'.
  const anchoredPath = join(dir, "anchored_pairs.jsonl");
  let anchored: PairRecord[];
  if (await exists(anchoredPath)) anchored = await readJsonl<PairRecord>(anchoredPath);
  else {
    const picks = new Map<string, Pick>();
    for (const p of prompts) {
      const { cands, rewards } = cur.get(p.id) as { cands: Candidate[]; rewards: number[] };
      const b = bestOf(rewards);
      const a = anchorOf(p.id);
      const o = temporalPair(b === undefined ? undefined : rewards[b], a?.reward, cfg.pairs.min_margin);
      picks.set(
        p.id,
        o.kind === "pair" && b !== undefined && a
          ? {
              kind: "pair",
              chosen: sideOf(cands[b], rewards[b]),
              rejected: sideOf(a.cand, a.reward),
              extra: { source_chosen: "current", source_rejected: "anchor" },
            }
          : { kind: o.kind === "pair" ? "unjudged" : o.kind },
      );
    }
    anchored = assemblePairs(opts(ctx), prompts, candidates, judgements, picks).pairs;
    await writeJsonl(anchoredPath, anchored);
  }

  // The future model: DPO(M_t) on the anchored pairs, then its candidates (judged by M_t).
  let futureCands: Candidate[] = [];
  let futureJudgements: Judgement[] = [];
  const futureCandsPath = join(dir, "future_candidates.jsonl");
  if (anchored.length > 0) {
    if (!(await exists(futureCandsPath))) {
      const futureDir = join(dir, "future");
      await ctx.time("time/future_train_s", () => trainStage(ctx, prompts, anchored, futureDir, cfg.seed * 1000 + t + 500));
      futureCands = await ctx.time("time/generate_s", () =>
        withWeights(ctx.models, join(futureDir, "final"), current, () =>
          sampleStage(ctx, prompts, { name: "future_candidates", stage: STAGE.futureCandidates, label: "sample by the future model" }),
        ),
      );
    } else futureCands = await readJsonl<Candidate>(futureCandsPath);
    if (byModel) {
      futureJudgements = await ctx.time("time/judge_s", () =>
        judgeStage(ctx, prompts, futureCands, {
          name: "future_judgements",
          stage: STAGE.futureJudgements,
          label: "judge the future candidates",
        }),
      );
    }
  } else ctx.log(`iteration ${t}: no anchored pairs, so no future model`);
  const fut = rewardsByPrompt(cfg.judge.by, prompts, futureCands, futureJudgements);

  // Final pairs: future-guided chosen vs anchored rejected.
  const picks = new Map<string, Pick>();
  let fromFuture = 0;
  for (const p of prompts) {
    const c = cur.get(p.id) as { cands: Candidate[]; rewards: number[] };
    const f = fut.get(p.id) as { cands: Candidate[]; rewards: number[] };
    const pick = futureChosen(f.rewards, c.rewards, from);
    const a = anchorOf(p.id);
    const o = temporalPair(pick?.reward, a?.reward, cfg.pairs.min_margin);
    if (o.kind !== "pair" || !pick || !a) {
      picks.set(p.id, { kind: o.kind === "pair" ? "unjudged" : o.kind });
      continue;
    }
    const chosen = (pick.pool === "future" ? f : c).cands[pick.index];
    if (pick.pool === "future") fromFuture++;
    picks.set(p.id, {
      kind: "pair",
      chosen: sideOf(chosen, pick.reward),
      rejected: sideOf(a.cand, a.reward),
      extra: { source_chosen: pick.pool, source_rejected: "anchor" },
    });
  }
  const out = assemblePairs(opts(ctx), prompts, candidates, judgements, picks);
  const golds = (cs: readonly Candidate[]) => mean(cs.flatMap((x) => (x.gold === undefined ? [] : [x.gold])));
  Object.assign(out.stats, {
    "temporal/anchored_pairs": anchored.length,
    "temporal/anchor_gold": golds(anchorCands),
    "temporal/future_gold": golds(futureCands),
    "temporal/chosen_from_future": out.pairs.length ? fromFuture / out.pairs.length : Number.NaN,
  });
  return out;
}
