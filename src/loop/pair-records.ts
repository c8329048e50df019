/**
 * From per-prompt picks to pairs.jsonl records and pairs_stats.json, the same for every method, so the
 * metrics and the report read every method alike: how many prompts gave a pair and why the others gave
 * none, the chosen−rejected gold gap, how often chosen is truly better / worse / equal under gold, the
 * judge's parse failures and its pairwise accuracy on the current model's candidates. Pure.
 */
import { pairwiseAccuracy } from "../eval/metrics.js";
import { bestVsWorst, meanReward } from "../pairs/sr.js";
import type { Candidate, Judgement, PairRecord } from "./records.js";
import { groupBy } from "./stages.js";
import type { LoopPrompt } from "./world.js";

/** One side of a pair: its text, the reward that ranked it (null: none) and its gold score if known. */
export interface Side {
  text: string;
  score: number | null;
  gold?: number;
}

/**
 * What a method made of one prompt: a pair (with the method's extra record fields), or why not —
 * `tie` and `unjudged` as in vanilla SR, or a method's own reason (counted as `pairs/dropped_<reason>`).
 */
export type Pick =
  | { kind: "pair"; chosen: Side; rejected: Side; extra?: Partial<PairRecord> }
  | { kind: "tie" }
  | { kind: "unjudged" }
  | { kind: "dropped"; reason: string };

/** Per prompt, the candidates' rewards in candidate order: mean parsed judge score, or gold for oracle runs. */
export function rewardsByPrompt(
  by: "model" | "gold",
  prompts: readonly LoopPrompt[],
  candidates: readonly Candidate[],
  judgements: readonly Judgement[],
): Map<string, { cands: Candidate[]; rewards: number[] }> {
  const cands = groupBy(candidates, (c) => c.prompt_id);
  const judged = groupBy(judgements, (j) => `${j.prompt_id}\u0000${j.candidate}`);
  const out = new Map<string, { cands: Candidate[]; rewards: number[] }>();
  for (const p of prompts) {
    const cs = cands.get(p.id) ?? [];
    const rewards = cs.map((c) =>
      by === "gold"
        ? (c.gold ?? Number.NaN)
        : meanReward((judged.get(`${p.id}\u0000${c.index}`) ?? []).flatMap((j) => (j.score === null ? [] : [j.score]))),
    );
    out.set(p.id, { cands: cs, rewards });
  }
  return out;
}

export const sideOf = (c: Candidate, score: number | null): Side => ({
  text: c.text,
  score,
  ...(c.gold !== undefined ? { gold: c.gold } : {}),
});

/**
 * The records and stats of an iteration. `picks` has one entry per prompt (by id; a missing entry is
 * `unjudged`); `judgePairs` are Meta-Rewarding's judge-training records, written after the answer
 * pairs and counted apart (`pairs/judge_count`). `candidates` and `judgements` are the current model's,
 * for the candidate and judge diagnostics.
 */
export function assemblePairs(
  o: { by: "model" | "gold"; iteration: number; method: string },
  prompts: readonly LoopPrompt[],
  candidates: readonly Candidate[],
  judgements: readonly Judgement[],
  picks: ReadonlyMap<string, Pick>,
  judgePairs: readonly PairRecord[] = [],
): { pairs: PairRecord[]; stats: Record<string, number> } {
  const pairs: PairRecord[] = [];
  let better = 0;
  let worse = 0;
  let equal = 0;
  let gap = 0;
  let goldPairs = 0;
  let margin = 0;
  let margins = 0;
  let ties = 0;
  let unjudged = 0;
  const dropped: Record<string, number> = {};
  for (const p of prompts) {
    const pick: Pick = picks.get(p.id) ?? { kind: "unjudged" };
    if (pick.kind === "tie") ties++;
    else if (pick.kind === "unjudged") unjudged++;
    else if (pick.kind === "dropped") dropped[pick.reason] = (dropped[pick.reason] ?? 0) + 1;
    if (pick.kind !== "pair") continue;
    const { chosen: ch, rejected: rj } = pick;
    if (ch.score !== null && rj.score !== null) {
      margin += ch.score - rj.score;
      margins++;
    }
    if (ch.gold !== undefined && rj.gold !== undefined) {
      goldPairs++;
      const d = ch.gold - rj.gold;
      gap += d;
      if (d > 0) better++;
      else if (d < 0) worse++;
      else equal++;
    }
    pairs.push({
      prompt: [{ role: "user", content: p.instruction }],
      chosen: [{ role: "assistant", content: ch.text }],
      rejected: [{ role: "assistant", content: rj.text }],
      prompt_id: p.id,
      score_chosen: ch.score,
      score_rejected: rj.score,
      ...(ch.gold !== undefined ? { gold_chosen: ch.gold, gold_rejected: rj.gold } : {}),
      iteration: o.iteration,
      method: o.method,
      ...(pick.extra ?? {}),
    });
  }
  const n = pairs.length;
  // Gold diagnostics over the pairs whose both sides have a gold score (none without a sandbox: NaN, not 0).
  const share = (x: number) => (goldPairs ? x / goldPairs : Number.NaN);
  const withGold = candidates.filter((c) => c.gold !== undefined);
  const parseFailures = judgements.filter((j) => j.score === null).length;
  const groups: { gold: number[]; judged: number[] }[] = [];
  // No judgements at all (SPIN does not judge): no judge diagnostics.
  if (o.by === "model" && judgements.length > 0) {
    for (const { cands, rewards } of rewardsByPrompt(o.by, prompts, candidates, judgements).values()) {
      if (cands.length > 0 && cands.every((c) => c.gold !== undefined))
        groups.push({ gold: cands.map((c) => c.gold as number), judged: rewards });
    }
  }
  const stats: Record<string, number> = {
    "pairs/count": n,
    "pairs/ties_dropped": ties,
    "pairs/unjudged": unjudged,
  };
  for (const [reason, k] of Object.entries(dropped).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) stats[`pairs/dropped_${reason}`] = k;
  Object.assign(stats, {
    "pairs/reward_margin": margins ? margin / margins : Number.NaN,
    "pairs/gold_gap": share(gap),
    "pairs/truly_better": share(better),
    "pairs/truly_worse": share(worse),
    "pairs/equal": share(equal),
    "candidates/gold": withGold.length ? withGold.reduce((a, c) => a + (c.gold as number), 0) / withGold.length : Number.NaN,
    "candidates/length": candidates.length ? candidates.reduce((a, c) => a + c.text.length, 0) / candidates.length : Number.NaN,
    "judge/judgements": judgements.length,
    "judge/parse_failures": judgements.length ? parseFailures / judgements.length : Number.NaN,
    "judge/pairwise_candidates": o.by === "model" && groups.length ? pairwiseAccuracy(groups).accuracy : Number.NaN,
  });
  if (judgePairs.length > 0) stats["pairs/judge_count"] = judgePairs.length;
  pairs.push(...judgePairs);
  return { pairs, stats };
}

/**
 * Vanilla SR (and the control, which trains on the same pairs' step count): rewards per candidate,
 * best vs worst per prompt, ties and prompts with fewer than two judged candidates dropped.
 */
export function pairsFromJudged(
  o: { by: "model" | "gold"; minMargin: number; iteration: number; method: string },
  prompts: readonly LoopPrompt[],
  candidates: readonly Candidate[],
  judgements: readonly Judgement[],
): { pairs: PairRecord[]; stats: Record<string, number> } {
  const picks = new Map<string, Pick>();
  for (const [id, { cands, rewards }] of rewardsByPrompt(o.by, prompts, candidates, judgements)) {
    const out = bestVsWorst(rewards, o.minMargin);
    picks.set(
      id,
      out.kind === "pair"
        ? {
            kind: "pair",
            chosen: sideOf(cands[out.chosen], rewards[out.chosen]),
            rejected: sideOf(cands[out.rejected], rewards[out.rejected]),
          }
        : out,
    );
  }
  return assemblePairs(o, prompts, candidates, judgements, picks);
}
