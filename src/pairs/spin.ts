/**
 * SPIN — Self-Play fIne-tuNing (Chen et al. 2024, "Self-Play Fine-Tuning Converts Weak Language Models
 * to Strong Language Models"): the model learns to tell the gold (human / SFT) answer of a prompt from
 * its own answer. chosen = the reference answer, rejected = the model's own sample; the loss is DPO's
 * logistic loss against the previous iteration (the paper's λ plays DPO's β), so M_{t+1} = DPO(M_t) on
 * these pairs with reference M_t, exactly the loop's DPO step. No judge is involved.
 *
 * The paper draws one answer per prompt from M_t and keeps every prompt (50k Ultrachat prompts per
 * iteration). Here the loop samples N candidates per prompt for every method; SPIN takes ONE pair per
 * prompt so that it trains on at most as many pairs (DPO steps) as vanilla SR does. Pure.
 */

export type SpinOutcome =
  /** `rejected`: index of the model's answer set against the reference. */
  | { kind: "pair"; rejected: number }
  /** The world knows no reference answer for this prompt (e.g. free text, or a task no family parses). */
  | { kind: "no_reference" }
  /** No candidate at all. */
  | { kind: "unjudged" }
  /** Every candidate IS the reference: the model already plays the gold answer; nothing to push apart. */
  | { kind: "identical" };

/**
 * chosen = `reference`, rejected = the first candidate (in sampling order, i.e. a random sample) whose
 * text differs from it.
 *
 * Why the first differing one and not a judged-worst one: SPIN has no judge — its rejected answer is
 * simply "what the model says"; picking by a judge would turn it into a reference-anchored SR. Why skip
 * candidates equal to the reference: with chosen = rejected the DPO gradient of the pair is exactly zero
 * (Δ ≡ 0 for identical sequences), so the pair would spend a step for nothing.
 */
export function spinPair(reference: string | undefined, candidates: readonly string[]): SpinOutcome {
  if (reference === undefined) return { kind: "no_reference" };
  if (candidates.length === 0) return { kind: "unjudged" };
  const k = candidates.findIndex((c) => c !== reference);
  return k < 0 ? { kind: "identical" } : { kind: "pair", rejected: k };
}
