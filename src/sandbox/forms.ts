/**
 * The text forms the sandbox model learns, over one small character alphabet:
 *
 *   answer    "<instruction>\n>"                 →  "<answer>"
 *   judge     "<instruction>\n><answer>\n?"      →  "<trace>\n<criterion bits>\nScore: <k>"
 *   new task  "new:<instruction>\n…new:"         →  "<instruction>"   (self-instruct, few-shot)
 *   meta-judge "<instruction>\n><answer>\n?1:<judgement>\n?2:<judgement>\n!"  →  "better: 1|2"
 *                                                   (Meta-Rewarding; M1 is never trained on it)
 *
 * The judge writes its verification trace first (local steps, see task.ts), then one bit per
 * criterion (`+` met, `-` not), then the score, which is the number of `+`: each step of the
 * judgement is a local operation, as the design asks.
 */
import { CharTokenizer } from "../tokenizer/char.js";
import type { Family, Scored } from "./task.js";
import { score } from "./task.js";

/** Every character a sandbox text may contain. */
export const SANDBOX_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789 \n:+-=<>|.,;?!*#@()/S";

const ALPHABET_SET = new Set(SANDBOX_ALPHABET);

/**
 * A model's answer as the judge sees it: one line of the alphabet. Characters outside it (decoded
 * special tokens) and line breaks become "#", so the answer fits the judge form and can be re-encoded.
 */
export function sanitizeAnswer(text: string): string {
  let out = "";
  for (const ch of text) out += ch === "\n" || !ALPHABET_SET.has(ch) ? "#" : ch;
  return out;
}

export function sandboxTokenizer(): CharTokenizer {
  return new CharTokenizer(SANDBOX_ALPHABET);
}

export function answerPrompt(instruction: string): string {
  return `${instruction}\n>`;
}

export function judgePrompt(instruction: string, answer: string): string {
  return `${instruction}\n>${answer}\n?`;
}

/**
 * The meta-judge form (Meta-Rewarding, Wu et al. 2024): the model compares two of its judgements of the
 * same answer and names the better, `better: 1` or `better: 2`. Each judgement is flattened to one line
 * (sanitizeAnswer: line breaks and foreign characters become "#") so the form keeps its structure.
 * Note: the sandbox's seed data holds no meta-judge records, so M1 never learned this form; its verdicts
 * are whatever its answer/judge training makes of the prompt (the loop keeps only position-consistent
 * verdicts by default, parsed fail-closed by judge/parse.ts `parseVerdict`).
 */
export function metaJudgePrompt(instruction: string, answer: string, first: string, second: string): string {
  return `${instruction}\n>${answer}\n?1:${sanitizeAnswer(first)}\n?2:${sanitizeAnswer(second)}\n!`;
}

/** The gold judgement of `answer`: trace, criterion bits, score. */
export function judgement<S>(family: Family<S>, spec: S, answer: string): { text: string; scored: Scored } {
  const scored = score(family, spec, answer);
  const bits = scored.criteria.map((c) => (c ? "+" : "-")).join("");
  return { text: `${family.trace(spec, answer)}\n${bits}\nScore: ${scored.score}`, scored };
}

/**
 * Example instructions in a new-task prompt. Few enough that prompt and completion fit the sandbox's
 * 192-token context with room (instructions are at most ≈ 34 characters), enough that the examples
 * mix families, so the model learns to continue the form rather than copy one family.
 */
export const NEW_TASK_SHOTS = 3;

/** Few-shot prompt for writing a new instruction (self-instruct). */
export function newTaskPrompt(examples: readonly string[]): string {
  return `${examples.map((e) => `new:${e}\n`).join("")}new:`;
}
