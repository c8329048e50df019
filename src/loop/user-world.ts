/**
 * The loop's world around the user's own model (`model.path`): prompts come from the user's file, the
 * model answers each instruction as a chat turn (its chat template when the folder has one), and judges
 * with the project's additive 5-point rubric (DESIGN §1, written in our own words). There is no gold
 * scorer, no reference answer, no seed data and no held-out evaluation: gold-based stats stay empty
 * (NaN) and only the judge's rewards rank the candidates.
 */
import type { ChatTemplate } from "../tokenizer/chat-template.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import type { LoopPrompt, World } from "./world.js";

/** The judge's instructions: one point per criterion, in order of difficulty; the score is the last `Score:` line. */
export const RUBRIC = `Read the instruction and the answer below, then grade the answer with this additive 5-point scale.
- Add 1 point if the answer is relevant to the instruction, even if it is incomplete.
- Add a 2nd point if it covers a substantial part of what was asked.
- Add a 3rd point if it answers the basic elements of the instruction usefully.
- Add a 4th point if it is direct, complete and well organised.
- Add a 5th point if it is impeccable: expert, precise, with nothing missing and nothing superfluous.`;

export function judgeText(instruction: string, answer: string): string {
  return `${RUBRIC}\n\nInstruction:\n${instruction}\n\nAnswer:\n${answer}\n\nJustify your grade in a few sentences, then end with a line of the form "Score: <0-5>".`;
}

export function metaJudgeText(instruction: string, answer: string, first: string, second: string): string {
  return `Two reviews of the same answer follow. Decide which review grades the answer more accurately against this scale.\n\n${RUBRIC}\n\nInstruction:\n${instruction}\n\nAnswer:\n${answer}\n\nReview 1:\n${first}\n\nReview 2:\n${second}\n\nEnd with a line "better: 1" or "better: 2".`;
}

/**
 * A user message as the model sees it: rendered by the chat template with the assistant opener, or
 * the plain text followed by a line break when there is no template. A BOS the template writes is
 * dropped, because training and sampling add the tokenizer's own BOS (no BOS twice).
 */
export function chatForm(tokenizer: Tokenizer, template: ChatTemplate | undefined, content: string): string {
  if (!template) return `${content}\n`;
  const text = template.render([{ role: "user", content }], { addGenerationPrompt: true });
  const bos = (tokenizer as { bosToken?: string }).bosToken;
  return bos && text.startsWith(bos) ? text.slice(bos.length) : text;
}

const noGenerator = (what: string) => () => {
  throw new Error(`model.path: a user model has no task generator, so ${what} (use prompts.source "file")`);
};

export function userWorld(tokenizer: Tokenizer, template: ChatTemplate | undefined): World {
  return {
    tokenizer,
    answerPrompt: (p) => chatForm(tokenizer, template, p.instruction),
    judgePrompt: (p, a) => chatForm(tokenizer, template, judgeText(p.instruction, a)),
    cleanAnswer: (text) => text.trim(),
    prompts: noGenerator("it cannot draw fresh prompts"),
    newTaskPrompt: noGenerator("it cannot self-instruct"),
    accepts: () => true,
    excluded: () => false,
    fromInstructions: (items) => items.map((it): LoopPrompt => ({ id: it.id, instruction: it.instruction })),
    gold: () => undefined,
    reference: () => undefined,
    metaJudgePrompt: (p, answer, first, second) => chatForm(tokenizer, template, metaJudgeText(p.instruction, answer, first, second)),
    seedData: async () => [],
  };
}
