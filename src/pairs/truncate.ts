/**
 * First-difference truncation of a preference pair (our option, not in the papers): the shared
 * prefix of chosen and rejected moves into the prompt and both keep only their first differing token.
 *
 * Why: sandbox answers that differ in one number share most tokens; after the point where they part,
 * the rejected answer's tokens are often right *given* its mistake (e.g. copying the rest of a list).
 * Sequence-level DPO pushes all of them down and damages that skill — with oracle pairs it lowered
 * the gold score of the sort family by a full point (docs/loop.md). Keeping only the decision
 * token leaves DPO's preference where the answers actually differ.
 */
import type { PreferenceExample } from "../train/data.js";

/** The truncated pair, or undefined when there is no token where the two answers differ. */
export function firstDifference(ex: PreferenceExample): PreferenceExample | undefined {
  const { chosen, rejected } = ex;
  let k = 0;
  while (k < chosen.length && k < rejected.length && chosen[k] === rejected[k]) k++;
  // Identical answers (or, without EOS, one a prefix of the other) have no differing token.
  if (k === chosen.length || k === rejected.length) return undefined;
  return { ...ex, prompt: [...ex.prompt, ...chosen.slice(0, k)], chosen: [chosen[k]], rejected: [rejected[k]] };
}
