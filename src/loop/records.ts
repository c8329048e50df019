/**
 * The records the loop writes per iteration (candidates.jsonl, judgements.jsonl, pairs.jsonl), shared
 * by the loop, its stages and the pair builders of every method.
 */

export interface Candidate {
  prompt_id: string;
  index: number;
  text: string;
  /** Σ log p of the sampled tokens, and their count. */
  logprob: number;
  tokens: number;
  /** Gold score (sandbox). */
  gold?: number;
}

export interface Judgement {
  prompt_id: string;
  candidate: number;
  sample: number;
  text: string;
  /** The parsed score, or null when the judgement did not parse (counted, never guessed). */
  score: number | null;
}

/**
 * One line of pairs.jsonl: TRL's conversational preference format plus our fields. Every method
 * writes this shape; the optional fields say what the method added.
 */
export interface PairRecord {
  prompt: { role: "user"; content: string }[];
  chosen: { role: "assistant"; content: string }[];
  rejected: { role: "assistant"; content: string }[];
  prompt_id: string;
  /** The rewards that ranked the pair (null where the method ranks without a judge: SPIN). */
  score_chosen: number | null;
  score_rejected: number | null;
  gold_chosen?: number;
  gold_rejected?: number;
  iteration: number;
  method: string;
  /**
   * `judge` (Meta-Rewarding): a judge-training pair; the prompt is the judge prompt of
   * `judged_answer`, chosen and rejected are two judgements of it. Absent = an answer pair.
   */
  kind?: "judge";
  judged_answer?: string;
  /** Where chosen / rejected came from when not the current model's candidates (spin, temporal). */
  source_chosen?: "reference" | "current" | "future";
  source_rejected?: "current" | "anchor";
  /** CREAM: the soft label C of the soft-label DPO loss (per pair, or the data set's mean). */
  label?: number;
  /** CREAM: this prompt's own consistency rate (τ_b + 1)/2, whatever label was used. */
  consistency?: number;
  /** SCIR: the judge's preference probability (the target of the consistency penalty). */
  judge_prob?: number;
  /** SCIR: the implicit-reward margin of the pair under M_t (reference M_{t−1}; M1: length-normalised). */
  implicit_margin?: number;
}
