/**
 * Preference data as Hugging Face TRL's DPOTrainer reads it: JSON Lines, one pair per line, with
 * exactly the columns `prompt`, `chosen` and `rejected` (TRL's "preference, explicit prompt" type).
 * Two of TRL's formats are used:
 *
 *   conversational  {"prompt": [{"role": "user", "content": …}], "chosen": [{"role": "assistant", "content": …}], "rejected": […]}
 *                   TRL renders each with the tokenizer's chat template (the prompt with the assistant
 *                   opener). `srlm export-pairs --format trl` writes this: a data set for a TRL run of
 *                   your own, on a model with a chat template.
 *   standard        {"prompt": "<text>", "chosen": "<text>", "rejected": "<text>"}
 *                   TRL tokenizes the strings as they are (no BOS added; EOS appended to chosen and
 *                   rejected). `trainer: trl` writes this, with the prompt the loop sampled from
 *                   (src/loop/trl.ts), so TRL trains on the very tokens the builtin trainer would.
 *
 * pairs.jsonl holds the conversational records plus srlm's own fields (scores, iteration, method, …);
 * the extra columns are left out here because DPOTrainer has no use for them.
 */
import { z } from "zod";

export interface TrlMessage {
  role: "user" | "assistant";
  content: string;
}

export interface TrlConversationalRow {
  prompt: TrlMessage[];
  chosen: TrlMessage[];
  rejected: TrlMessage[];
}

export interface TrlStandardRow {
  prompt: string;
  chosen: string;
  rejected: string;
}

const turn = (role: "user" | "assistant") => z.object({ role: z.literal(role), content: z.string() });

/**
 * One line of an iteration's pairs.jsonl, as far as a TRL data set needs it (other fields are
 * dropped). `kind: "judge"` marks Meta-Rewarding's judge-training pairs, whose user turn is the judge
 * prompt already rendered for the model (its chat template applied), not a chat message.
 */
export const PairLineSchema = z.object({
  prompt: z.array(turn("user")).length(1),
  chosen: z.array(turn("assistant")).length(1),
  rejected: z.array(turn("assistant")).length(1),
  kind: z.literal("judge").optional(),
});
export type PairLine = z.output<typeof PairLineSchema>;

/** A pairs.jsonl record as a clean conversational TRL row (copies; srlm's extra fields left out). */
export function conversationalRow(p: PairLine): TrlConversationalRow {
  return {
    prompt: [{ role: "user", content: p.prompt[0].content }],
    chosen: [{ role: "assistant", content: p.chosen[0].content }],
    rejected: [{ role: "assistant", content: p.rejected[0].content }],
  };
}

/** The JSON Lines text of `rows` (one object per line, a final line break; empty for no rows). */
export function trlJsonl(rows: readonly (TrlConversationalRow | TrlStandardRow)[]): string {
  return rows.length === 0 ? "" : `${rows.map((r) => JSON.stringify(r)).join("\n")}\n`;
}
