/**
 * CREAM — Consistency Regularized sElf-rewarding lAnguage Models (Wang et al., ICLR 2025). Vanilla SR
 * trusts every pair its judge makes; for small models the self-reward is noisy and over-confident.
 * CREAM ranks each prompt's candidates twice — under the current model's reward and under the previous
 * iteration model's reward — and measures how much the two rankings agree with Kendall's τ:
 *
 *   C = (τ + 1) / 2 ∈ [0, 1]
 *
 * The pair (best vs worst under the CURRENT reward, as in SR) is then trained with the soft-label DPO
 * loss (src/train/losses.ts, loss_type `soft_label`):
 *
 *   L = C·(−log σ(βΔ)) + (1 − C)·(−log σ(−βΔ))
 *
 * so a pair the two rankings agree on (C → 1) is plain DPO, and a pair they contradict (C → 0.5 or
 * below) is taught towards "no preference" instead of a confident guess. C per pair is the paper's
 * `consistency_dyn`; the mean C over the iteration's prompts is `consistency_avg` (the paper reports avg
 * as the more stable one). Pure functions; the loop supplies both rewards.
 */
import { bestVsWorst, type PairOutcome } from "./sr.js";

/**
 * Kendall's τ_b of two score lists over the same items (ties handled):
 *
 *   τ_b = (n_c − n_d) / sqrt((n_0 − n_1)(n_0 − n_2))
 *
 * n_c / n_d: concordant / discordant pairs; n_0 = n(n−1)/2; n_1, n_2: pairs tied in x, in y. A pair
 * tied in either list is neither concordant nor discordant. NaN when fewer than two items, or when
 * one list is constant (τ_b is 0/0: a ranking without any order says nothing), as scipy returns.
 * Items with a non-finite value in either list are left out first.
 */
export function kendallTauB(x: readonly number[], y: readonly number[]): number {
  if (x.length !== y.length) throw new RangeError(`kendallTauB: ${x.length} vs ${y.length} values`);
  const idx: number[] = [];
  for (let i = 0; i < x.length; i++) if (Number.isFinite(x[i]) && Number.isFinite(y[i])) idx.push(i);
  let concordant = 0;
  let discordant = 0;
  let untiedX = 0;
  let untiedY = 0;
  for (let a = 0; a < idx.length; a++) {
    for (let b = a + 1; b < idx.length; b++) {
      const sx = Math.sign(x[idx[a]] - x[idx[b]]);
      const sy = Math.sign(y[idx[a]] - y[idx[b]]);
      if (sx !== 0) untiedX++;
      if (sy !== 0) untiedY++;
      if (sx * sy > 0) concordant++;
      else if (sx * sy < 0) discordant++;
    }
  }
  if (untiedX === 0 || untiedY === 0) return Number.NaN;
  return (concordant - discordant) / Math.sqrt(untiedX * untiedY);
}

/** C = (τ_b + 1)/2; NaN where τ_b is undefined. */
export function consistencyRate(current: readonly number[], previous: readonly number[]): number {
  return (kendallTauB(current, previous) + 1) / 2;
}

/**
 * The label of a prompt whose τ_b is undefined (the previous ranking is constant, or fewer than two
 * candidates have both rewards). Ours, the paper does not say: 0.5 = "the previous model gives no
 * evidence for this preference", which makes the soft-label loss pull Δ towards 0 for that pair.
 */
export const UNDEFINED_CONSISTENCY = 0.5;

export interface CreamPrompt {
  /** The current model's reward per candidate (NaN = none). Chooses the pair, as in SR. */
  current: readonly number[];
  /** The previous iteration model's reward of the same candidates. */
  previous: readonly number[];
}

export interface CreamResult {
  /** Per prompt: the SR pair under the current reward (or why none). */
  outcomes: PairOutcome[];
  /** Per prompt: C = (τ_b + 1)/2, NaN where undefined. */
  consistency: number[];
  /** Per prompt: the soft label its pair is trained with (NaN for prompts without a pair). */
  labels: number[];
  /** Mean C over the prompts where it is defined (NaN if none): the `avg` label. */
  meanConsistency: number;
}

/**
 * Pairs and soft labels of an iteration. `mode` `dyn`: each pair's own C (UNDEFINED_CONSISTENCY where
 * undefined); `avg`: every pair gets the mean C over all prompts whose C is defined — prompts without a
 * pair included, as the reference code averages τ over the whole sampled set.
 */
export function creamPairs(prompts: readonly CreamPrompt[], mode: "dyn" | "avg", minMargin = 0): CreamResult {
  const outcomes = prompts.map((p) => bestVsWorst(p.current, minMargin));
  const consistency = prompts.map((p) => consistencyRate(p.current, p.previous));
  const defined = consistency.filter((c) => Number.isFinite(c));
  const meanConsistency = defined.length ? defined.reduce((a, b) => a + b, 0) / defined.length : Number.NaN;
  const avgLabel = Number.isFinite(meanConsistency) ? meanConsistency : UNDEFINED_CONSISTENCY;
  const labels = outcomes.map((o, i) => {
    if (o.kind !== "pair") return Number.NaN;
    if (mode === "avg") return avgLabel;
    return Number.isFinite(consistency[i]) ? consistency[i] : UNDEFINED_CONSISTENCY;
  });
  return { outcomes, consistency, labels, meanConsistency };
}

/**
 * The implicit reward of model M_k for one candidate, as CREAM's reference code ranks with it:
 * log π_k(y|x) − log π_{k−1}(y|x) (the DPO implicit reward up to β, which does not change a ranking),
 * and for the first model, which has no reference, its length-normalised log-likelihood
 * log π_1(y|x) / |y|. `logps[k]` is Σ log π_k(y|x) over y's tokens.
 */
export function implicitReward(k: number, logps: Readonly<Record<number, number>>, tokens: number): number {
  if (k <= 1) return logps[1] / Math.max(1, tokens);
  const a = logps[k];
  const b = logps[k - 1];
  if (a === undefined || b === undefined) throw new RangeError(`implicitReward: M${k} needs the log-probs of M${k} and M${k - 1}`);
  return a - b;
}
