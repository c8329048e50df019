/**
 * Vanilla Self-Rewarding pairs (Yuan et al. 2024): a candidate's reward is the mean of its parsed
 * judge scores (failed parses are dropped, never guessed); per prompt the highest-reward candidate
 * is chosen and the lowest rejected; prompts whose best and worst tie (or differ by less than a
 * minimum margin) give no pair. Pure functions: the loop feeds them judged candidates.
 */

export interface JudgedCandidate {
  /** The answer text. */
  text: string;
  /** Parsed scores of its K judgements (a failed parse is absent from the list, not a guess). */
  scores: readonly number[];
}

/** The candidate's reward: mean parsed score, or NaN when no judgement parsed. */
export function meanReward(scores: readonly number[]): number {
  if (scores.length === 0) return Number.NaN;
  let s = 0;
  for (const x of scores) s += x;
  return s / scores.length;
}

export type PairOutcome =
  | { kind: "pair"; chosen: number; rejected: number; margin: number }
  /** Fewer than two candidates with a reward. */
  | { kind: "unjudged" }
  /** Best and worst rewards equal, or closer than the minimum margin. */
  | { kind: "tie" };

/**
 * Best vs worst by reward among the candidates that have one. Among equal rewards the earliest
 * candidate wins both roles (deterministic). `minMargin` > 0 also drops pairs with a smaller gap.
 */
export function bestVsWorst(rewards: readonly number[], minMargin = 0): PairOutcome {
  let best = -1;
  let worst = -1;
  let judged = 0;
  for (let i = 0; i < rewards.length; i++) {
    const r = rewards[i];
    if (!Number.isFinite(r)) continue;
    judged++;
    if (best < 0 || r > rewards[best]) best = i;
    if (worst < 0 || r < rewards[worst]) worst = i;
  }
  if (judged < 2) return { kind: "unjudged" };
  const margin = rewards[best] - rewards[worst];
  if (margin <= 0 || margin < minMargin) return { kind: "tie" };
  return { kind: "pair", chosen: best, rejected: worst, margin };
}

/** Counts over a set of prompts: pairs made and why the others made none. */
export interface PairCounts {
  prompts: number;
  pairs: number;
  ties: number;
  unjudged: number;
}

export function countOutcomes(outcomes: readonly PairOutcome[]): PairCounts {
  const c: PairCounts = { prompts: outcomes.length, pairs: 0, ties: 0, unjudged: 0 };
  for (const o of outcomes) {
    if (o.kind === "pair") c.pairs++;
    else if (o.kind === "tie") c.ties++;
    else c.unjudged++;
  }
  return c;
}
