/**
 * Temporal Self-Rewarding (decoupling chosen and rejected via past and future). In vanilla SR chosen and
 * rejected come from the same model, so they improve together: their quality gap shrinks every round
 * and the DPO signal fades. Temporal SR pulls them apart in time:
 *
 * - Anchored Rejection: rejected = the lowest-judged of the INITIAL model's (M1's) candidates for the
 *   prompt, a fixed point of the past that does not improve with the model.
 * - Future-Guided Chosen: first train a temporary "future" model M_t' = DPO(M_t) on the anchored pairs
 *   (chosen = the best of M_t's candidates, rejected = the anchor), sample and judge its candidates, and
 *   take the best as chosen: a glimpse of the next model's best answer.
 * - Then M_{t+1} = DPO(M_t) on (future chosen, anchored rejected); M_t' is thrown away.
 *
 * The paper reports Llama-3.1-8B at 29.44 vs 19.69 (SR) AlpacaEval 2.0 length-controlled win rate. Not
 * known from what we have: whether chosen comes from the future model alone or from the union with the
 * current model's candidates — `future_from` (`future` default, as the method's name says; `union`
 * keeps the current best when the future model does worse). Pure functions; the loop supplies rewards.
 */

/** Which of M1's candidates anchors the rejected side: the lowest reward (earliest among equal); undefined if none is judged. */
export function anchoredRejected(anchorRewards: readonly number[]): number | undefined {
  let worst: number | undefined;
  for (let i = 0; i < anchorRewards.length; i++) {
    const r = anchorRewards[i];
    if (!Number.isFinite(r)) continue;
    if (worst === undefined || r < anchorRewards[worst]) worst = i;
  }
  return worst;
}

/** The best candidate of a pool: highest reward, earliest among equal; undefined if none is judged. */
export function bestOf(rewards: readonly number[]): number | undefined {
  let best: number | undefined;
  for (let i = 0; i < rewards.length; i++) {
    const r = rewards[i];
    if (!Number.isFinite(r)) continue;
    if (best === undefined || r > rewards[best]) best = i;
  }
  return best;
}

export interface PoolPick {
  pool: "current" | "future";
  index: number;
  reward: number;
}

/**
 * Future-guided chosen: the best future candidate, or with `union` the best over the future and the
 * current candidates (a future candidate wins equal rewards: it is the one the method is about).
 */
export function futureChosen(future: readonly number[], current: readonly number[], from: "future" | "union"): PoolPick | undefined {
  const f = bestOf(future);
  const fromFuture: PoolPick | undefined = f === undefined ? undefined : { pool: "future", index: f, reward: future[f] };
  if (from === "future") return fromFuture;
  const c = bestOf(current);
  const fromCurrent: PoolPick | undefined = c === undefined ? undefined : { pool: "current", index: c, reward: current[c] };
  if (!fromFuture) return fromCurrent;
  if (!fromCurrent) return fromFuture;
  return fromCurrent.reward > fromFuture.reward ? fromCurrent : fromFuture;
}

export type TemporalOutcome =
  | { kind: "pair"; margin: number }
  /** chosen does not beat the anchor by the margin (no preference to teach). */
  | { kind: "tie" }
  /** No judged chosen candidate or no judged anchor. */
  | { kind: "unjudged" };

/**
 * A (chosen, anchored rejected) pair is kept when chosen's reward beats the anchor's by more than 0
 * and at least `minMargin` — as SR drops ties. Both rewards are on the judge's absolute 0–5 rubric.
 */
export function temporalPair(chosenReward: number | undefined, anchorReward: number | undefined, minMargin = 0): TemporalOutcome {
  if (chosenReward === undefined || anchorReward === undefined || !Number.isFinite(chosenReward) || !Number.isFinite(anchorReward)) {
    return { kind: "unjudged" };
  }
  const margin = chosenReward - anchorReward;
  return margin > 0 && margin >= minMargin ? { kind: "pair", margin } : { kind: "tie" };
}
