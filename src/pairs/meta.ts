/**
 * Meta-Rewarding (Wu et al. 2024, "Meta-Rewarding Language Models: Self-Improving Alignment with
 * LLM-as-a-Meta-Judge"). Vanilla SR trains only the actor: the judge improves, if at all, by accident,
 * and the paper shows SR's judging saturates. Meta-Rewarding lets the model also judge its own
 * judgements: for an answer with two judgements that disagree, the model as META-JUDGE compares the two,
 * and the preferred judgement vs the other becomes a DPO pair that trains the judge (prompt = the judge
 * prompt of that answer), alongside the usual answer pairs.
 *
 * - Position bias: the meta-judge sees the two judgements in both orders. A verdict counts only when it
 *   names the same judgement in both orders (`consistent`, our default, the paper's filter); `votes`
 *   also accepts a single parsed order when the other fails to parse.
 * - Which judgements: the paper scores all K judgements of an answer against each other (Elo) and pairs
 *   the highest with the lowest. With the loop's K = 3 we take, per prompt, the candidate whose parsed
 *   judge scores spread the most and its highest- vs lowest-scored judgement: two meta-judge calls per
 *   prompt (one per order), at most one judge pair per prompt.
 * - Length control for the answer pairs: judges favour long answers, so among candidates whose reward is
 *   in [S_max − ρ·(S_max − S_min), S_max] the SHORTEST is chosen (ρ = 0: only the best-scored ones
 *   compete, and length breaks their tie); rejected is the lowest-reward candidate.
 * Pure functions.
 */
import type { PairOutcome } from "./sr.js";

/**
 * Answer pair with length control ρ ∈ [0, 1]: chosen = the shortest candidate (earliest among equal
 * lengths) with reward ≥ S_max − ρ(S_max − S_min); rejected = the lowest reward (earliest among equal).
 * Ties (S_max = S_min) and gaps below `minMargin` give no pair. NaN rewards are skipped.
 */
export function lengthControlledPair(rewards: readonly number[], lengths: readonly number[], rho: number, minMargin = 0): PairOutcome {
  if (!(rho >= 0 && rho <= 1)) throw new RangeError(`lengthControlledPair: rho must be in [0, 1] (got ${rho})`);
  let max = Number.NEGATIVE_INFINITY;
  let min = Number.POSITIVE_INFINITY;
  let worst = -1;
  let judged = 0;
  for (let i = 0; i < rewards.length; i++) {
    const r = rewards[i];
    if (!Number.isFinite(r)) continue;
    judged++;
    if (r > max) max = r;
    if (r < min) {
      min = r;
      worst = i;
    }
  }
  if (judged < 2) return { kind: "unjudged" };
  if (!(max > min)) return { kind: "tie" };
  const threshold = max - rho * (max - min);
  let chosen = -1;
  for (let i = 0; i < rewards.length; i++) {
    if (!Number.isFinite(rewards[i]) || rewards[i] < threshold) continue;
    if (chosen < 0 || lengths[i] < lengths[chosen]) chosen = i;
  }
  const margin = rewards[chosen] - rewards[worst];
  // With ρ = 1 the shortest overall may be the worst itself (or score as low): no preference left.
  if (chosen === worst || margin <= 0 || margin < minMargin) return { kind: "tie" };
  return { kind: "pair", chosen, rejected: worst, margin };
}

/** Which two judgements of which candidate the meta-judge compares. */
export interface MetaTarget {
  /** Candidate index (position in the prompt's candidate list). */
  candidate: number;
  /** Judgement sample indices: `high` got the higher parsed score, `low` the lower. */
  high: number;
  low: number;
}

/**
 * Per prompt: `scores[c][k]` is the parsed score of judgement k of candidate c (null = failed to parse).
 * Chooses the candidate with the widest spread of parsed scores (earliest among equal spreads), and its
 * earliest highest- and earliest lowest-scored judgements. Undefined when no candidate has two parsed
 * judgements with different scores (nothing for a meta-judge to decide).
 */
export function metaTarget(scores: readonly (readonly (number | null)[])[]): MetaTarget | undefined {
  let best: MetaTarget | undefined;
  let bestSpread = 0;
  for (let c = 0; c < scores.length; c++) {
    let high = -1;
    let low = -1;
    for (let k = 0; k < scores[c].length; k++) {
      const s = scores[c][k];
      if (s === null) continue;
      if (high < 0 || s > (scores[c][high] as number)) high = k;
      if (low < 0 || s < (scores[c][low] as number)) low = k;
    }
    if (high < 0) continue;
    const spread = (scores[c][high] as number) - (scores[c][low] as number);
    if (spread > bestSpread) {
      bestSpread = spread;
      best = { candidate: c, high, low };
    }
  }
  return best;
}

/** A parsed verdict of one order: which position (1 = shown first, 2 = second) won, or null (no parse). */
export type Verdict = 1 | 2 | null;

export type MetaOutcome =
  /** `preferred`: judgement A or B (A = shown first in order 1, second in order 2). */
  | { kind: "pair"; preferred: "a" | "b" }
  /** The two orders name different judgements (position bias), or votes tie. */
  | { kind: "inconsistent" }
  /** Too few verdicts parsed for the rule. */
  | { kind: "unparsed" };

/**
 * Combine the verdicts of order 1 (A shown first, B second) and order 2 (B first, A second).
 * `consistent` (default): both must parse and name the same judgement. `votes`: each parsed order votes
 * for the judgement it names; the majority wins, a 1–1 split is inconsistent, no vote is unparsed.
 */
export function metaOutcome(order1: Verdict, order2: Verdict, rule: "consistent" | "votes" = "consistent"): MetaOutcome {
  const vote1 = order1 === null ? null : order1 === 1 ? "a" : "b";
  const vote2 = order2 === null ? null : order2 === 1 ? "b" : "a";
  if (rule === "consistent") {
    if (vote1 === null || vote2 === null) return { kind: "unparsed" };
    return vote1 === vote2 ? { kind: "pair", preferred: vote1 } : { kind: "inconsistent" };
  }
  if (vote1 === null && vote2 === null) return { kind: "unparsed" };
  if (vote1 !== null && vote2 !== null && vote1 !== vote2) return { kind: "inconsistent" };
  return { kind: "pair", preferred: (vote1 ?? vote2) as "a" | "b" };
}
