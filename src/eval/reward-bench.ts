/**
 * RewardBench-style accuracy of a judge on preference pairs: the judge grades the chosen and the
 * rejected response separately (MT-Bench single grading, 1–10), and a pair is correct when the
 * chosen one gets the strictly higher grade. This is RewardBench's convention for reward models that
 * score each response (`chosen > rejected`): an equal grade earns nothing, and so does a pair where
 * either grade did not parse. (RewardBench's pairwise generative judges instead count a tie or an
 * unparsed verdict as half; `tiesHalf` reports that reading too.)
 */
import { z } from "zod";

export const preferencePairSchema = z.object({ prompt: z.string(), chosen: z.string(), rejected: z.string() }).passthrough();
export type PreferencePair = z.infer<typeof preferencePairSchema>;

export interface RewardAccuracy {
  /** Share of pairs with grade(chosen) > grade(rejected); ties and failures count 0. */
  accuracy: number;
  /** Binomial standard error of `accuracy`. */
  standardError: number;
  /** Ties and pairs with an unparsed grade counted as half instead. */
  tiesHalf: number;
  correct: number;
  ties: number;
  /** Pairs where either grade did not parse. */
  failed: number;
  n: number;
}

/** Accuracy from the grades of each pair's chosen and rejected response (NaN = did not parse). */
export function rewardAccuracy(chosen: readonly number[], rejected: readonly number[]): RewardAccuracy {
  if (chosen.length !== rejected.length) throw new RangeError(`${chosen.length} chosen grades, ${rejected.length} rejected`);
  let correct = 0;
  let ties = 0;
  let failed = 0;
  chosen.forEach((c, i) => {
    const r = rejected[i];
    if (!Number.isFinite(c) || !Number.isFinite(r)) failed++;
    else if (c > r) correct++;
    else if (c === r) ties++;
  });
  const n = chosen.length;
  const accuracy = n > 0 ? correct / n : Number.NaN;
  return {
    accuracy,
    standardError: Math.sqrt((accuracy * (1 - accuracy)) / n),
    tiesHalf: n > 0 ? (correct + 0.5 * (ties + failed)) / n : Number.NaN,
    correct,
    ties,
    failed,
    n,
  };
}
