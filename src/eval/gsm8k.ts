/**
 * GSM8K-style exact match on the final number.
 *
 * The reference's answer is the number after its `#### ` line. A model's answer is the LAST number
 * in its text: thousands commas ("1,250"), a sign ("-3", not the minus of "10-3"), decimals
 * ("2.50", and "18." as 18), and "$" are handled; a trailing sentence period is not a decimal
 * point. Numbers compare by value, so "18.00" matches "18". No number means no match.
 */
import { z } from "zod";

export const gsm8kProblemSchema = z.object({ question: z.string(), answer: z.string() });
export type Gsm8kProblem = z.infer<typeof gsm8kProblemSchema>;

// A number: optional sign and "$", digits with proper thousands groups or plain digits, optional decimals.
const NUMBER = /(-)?\$?\s?(\d{1,3}(?:,\d{3})+(?!\d)|\d+)(\.\d+)?/g;

/** The value of the last number in `text`, or undefined when there is none. */
export function lastNumber(text: string): number | undefined {
  let last: number | undefined;
  for (const m of text.matchAll(NUMBER)) {
    const at = m.index;
    // "-" is a sign only at the start or after a space or an opening bracket, not in "10-3".
    const before = at > 0 ? text[at - 1] : " ";
    const negative = m[1] === "-" && !/[\w)\]]/.test(before);
    const value = Number(m[2].replaceAll(",", "") + (m[3] ?? ""));
    last = negative ? -value : value;
  }
  return last;
}

/** The reference's final answer: the number after `#### `; throws when the answer has none. */
export function referenceAnswer(answer: string): number {
  const m = /####\s*(.*)$/m.exec(answer);
  const v = m ? lastNumber(m[1]) : undefined;
  if (v === undefined) throw new Error(`no "#### <number>" line in the reference answer ${JSON.stringify(answer.slice(-60))}`);
  return v;
}

/** Whether the last number of `output` equals the reference's final answer. */
export function exactMatch(output: string, reference: number): boolean {
  const v = lastNumber(output);
  return v !== undefined && Math.abs(v - reference) <= 1e-9 * Math.max(1, Math.abs(reference));
}

export interface Gsm8kResult {
  accuracy: number;
  /** Binomial standard error √(acc(1 − acc)/n). */
  standardError: number;
  correct: number;
  /** Outputs with no number at all. */
  noNumber: number;
  n: number;
}

export function gsm8kAccuracy(outputs: readonly string[], references: readonly number[]): Gsm8kResult {
  if (outputs.length !== references.length) throw new RangeError(`${outputs.length} outputs for ${references.length} problems`);
  let correct = 0;
  let noNumber = 0;
  outputs.forEach((o, i) => {
    if (lastNumber(o) === undefined) noNumber++;
    else if (exactMatch(o, references[i])) correct++;
  });
  const n = outputs.length;
  const accuracy = n > 0 ? correct / n : Number.NaN;
  return { accuracy, standardError: Math.sqrt((accuracy * (1 - accuracy)) / n), correct, noNumber, n };
}
