/**
 * SCIR — self-consistent internal rewards. One model holds two reward models: its judge (the scores it
 * writes) and its implicit DPO reward r(y) = β·(log π_t(y|x) − log π_ref(y|x)). In vanilla SR the two
 * can disagree, and DPO then trains the implicit reward towards a preference the model's own likelihood
 * contradicts. SCIR (i) keeps only the pairs on which the two agree, and (ii) adds to the DPO loss a
 * penalty that pulls the two preference probabilities together and towards confidence.
 *
 * The two preference probabilities of a pair (chosen c, rejected r):
 *
 *   judge      q = σ((s_c − s_r) / τ_J)      s = mean judge score, τ_J = scir.judge_temperature (default 1:
 *                                            a 1-point gap → 0.73, 2 → 0.88, 4 → 0.98)
 *   implicit   p = σ(β·Δ),  Δ = [log π(c) − log π_ref(c)] − [log π(r) − log π_ref(r)]
 *
 * Filter (at pair time): p is the implicit reward of M_t against ITS reference M_{t−1} (for M1, which
 * has none, its length-normalised log-likelihood, as CREAM's reference code does); a pair is kept when
 * q and p lie on the same side of 1/2. The SR pair has s_c > s_r, so q > 1/2 and the test is Δ > 0;
 * Δ = 0 (undecided) is dropped too.
 *
 * Penalty (during the DPO step M_t → M_{t+1}, where p = σ(βΔ_θ) is the policy's implicit reward against
 * the step's reference M_t): the published method's exact penalty is not known to us; ours is
 *
 *   P = λ_c·[KL(q‖p) + KL(p‖q)] + λ_h·H(p) = λ_c·(q − p)(logit q − βΔ_θ) + λ_h·H(p)
 *
 * added to each pair's DPO loss (src/train/losses.ts `consistencyPenalty`, gradient checked by finite
 * differences in test/unit/pairs-scir.test.ts). Why a symmetric KL: it is zero exactly at agreement and
 * penalises the implicit reward both for lagging a confident judge and for overshooting a hesitant one
 * (plain cross-entropy to q only does the former, and would be CREAM's soft label again). Why an entropy
 * term: a self-consistent reward should also be decisive; at Δ = 0 its gradient is 0, so it only
 * sharpens a direction the data already chose. Defaults λ_c = 1, λ_h = 0.1 are ours. Pure functions.
 */
import { bestVsWorst, type PairOutcome } from "./sr.js";

const sigmoid = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));

/** q = σ((s_chosen − s_rejected)/τ_J): the judge's probability that chosen beats rejected. */
export function judgePreference(scoreChosen: number, scoreRejected: number, temperature: number): number {
  if (!(temperature > 0)) throw new RangeError(`judgePreference: temperature must be > 0 (got ${temperature})`);
  return sigmoid((scoreChosen - scoreRejected) / temperature);
}

/** p = σ(β·margin): the implicit reward's probability that chosen beats rejected. */
export function implicitPreference(margin: number, beta: number): number {
  return sigmoid(beta * margin);
}

export type ScirOutcome =
  | { kind: "pair"; chosen: number; rejected: number; margin: number; judgeProb: number; implicitMargin: number }
  | { kind: "tie" }
  | { kind: "unjudged" }
  /** The implicit reward prefers rejected (or neither): the two internal rewards disagree. */
  | { kind: "disagree"; implicitMargin: number };

/**
 * One prompt: the SR pair under the judge's rewards, kept only if the implicit rewards order it the same
 * way. `implicit[i]` is candidate i's implicit reward under M_t (any positive scale: only its sign of
 * difference matters here).
 */
export function scirPair(judge: readonly number[], implicit: readonly number[], judgeTemperature: number, minMargin = 0): ScirOutcome {
  const o: PairOutcome = bestVsWorst(judge, minMargin);
  if (o.kind !== "pair") return o;
  const implicitMargin = implicit[o.chosen] - implicit[o.rejected];
  if (!(implicitMargin > 0)) return { kind: "disagree", implicitMargin };
  return {
    kind: "pair",
    chosen: o.chosen,
    rejected: o.rejected,
    margin: o.margin,
    judgeProb: judgePreference(judge[o.chosen], judge[o.rejected], judgeTemperature),
    implicitMargin,
  };
}
