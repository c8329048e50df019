/**
 * MT-Bench-style single-answer grading: the judge rates one answer from 1 to 10 and ends with
 * `Rating: [[n]]`. Parsing is fail-closed: the LAST `Rating: [[x]]` counts, and x must be a number in
 * [1, 10] (decimals allowed, as MT-Bench's parser allows them); anything else is counted as a failure
 * by the caller, never guessed.
 */
import { existsSync } from "node:fs";
import { z } from "zod";
import { writeJsonAtomic } from "../io/atomic.js";
import { readJsonList } from "./alpaca.js";
import { type Judge, type JudgeOptions, judgeRequests } from "./judge-engine.js";
import { rawMean } from "./stats.js";

/** The single-answer grading request (srlm's own wording). */
export function singleGradePrompt(instruction: string, answer: string): string {
  return [
    "Grade the assistant's answer to the user's instruction. Weigh correctness first, then how helpful,",
    "relevant, complete and clear it is. Write a short justification, then give a grade from 1 (useless",
    "or wrong) to 10 (excellent) on a final line in exactly this form: Rating: [[7]]",
    "",
    "[Instruction]",
    instruction,
    "",
    "[Answer]",
    answer,
  ].join("\n");
}

export type ParsedRating = { ok: true; rating: number } | { ok: false; reason: string };

const RATING = /Rating:[ \t]*\[\[([^\]\n]*)\]\]/g;

export function parseRating(text: string): ParsedRating {
  let last: string | undefined;
  for (const m of text.matchAll(RATING)) last = m[1].trim();
  if (last === undefined) return { ok: false, reason: "no 'Rating: [[n]]'" };
  if (!/^\d+(\.\d+)?$/.test(last)) return { ok: false, reason: `the last rating holds ${JSON.stringify(last)}, not a number` };
  const rating = Number(last);
  if (rating < 1 || rating > 10) return { ok: false, reason: `rating ${rating} is outside [1, 10]` };
  return { ok: true, rating };
}

export interface RatingSummary {
  mean: number;
  /** sd/√n with the n − 1 denominator. */
  standardError: number;
  n: number;
  /** Judgements that did not parse (left out of the mean). */
  failed: number;
}

/** Mean rating over parsed judgements (NaN entries are failures). */
export function summariseRatings(ratings: readonly number[]): RatingSummary {
  const ok = ratings.filter((r) => Number.isFinite(r));
  return { ...rawMean(ok), failed: ratings.length - ok.length };
}

export const gradeRecordSchema = z
  .object({
    instruction: z.string(),
    output: z.string(),
    generator: z.string().optional(),
    annotator: z.string(),
    rating: z.number().nullable(),
    raw_completion: z.string(),
    error: z.string().optional(),
  })
  .passthrough();
export type GradeRecord = z.infer<typeof gradeRecordSchema>;

const gradeKey = (instruction: string, output: string, annotator: string) => JSON.stringify([instruction, output, annotator]);

/**
 * Grade each (instruction, output) with the judge and write the grades to `path` (a JSON list)
 * atomically after each batch. Grades already in the file from the same judge are reused, so a killed
 * run resumes; duplicates are graded once. Returns the grades in the order of `items`.
 */
export async function gradeAnswers(
  judge: Judge,
  items: readonly { instruction: string; output: string; generator?: string }[],
  path: string,
  opts: JudgeOptions & { onProgress?: (done: number, total: number) => void } = {},
): Promise<GradeRecord[]> {
  const done = new Map<string, GradeRecord>();
  if (existsSync(path)) for (const g of readJsonList(path, gradeRecordSchema)) done.set(gradeKey(g.instruction, g.output, g.annotator), g);
  const keyOf = (it: { instruction: string; output: string }) => gradeKey(it.instruction, it.output, judge.name);
  const todo = [...new Map(items.filter((it) => !done.has(keyOf(it))).map((it) => [keyOf(it), it])).values()];
  const save = () => writeJsonAtomic(path, [...done.values()]);
  await judgeRequests(
    judge,
    todo.map((it) => singleGradePrompt(it.instruction, it.output)),
    opts,
    async (start, results) => {
      results.forEach((r, k) => {
        const it = todo[start + k];
        const base = {
          instruction: it.instruction,
          output: it.output,
          ...(it.generator ? { generator: it.generator } : {}),
          annotator: judge.name,
        };
        if ("error" in r) done.set(keyOf(it), { ...base, rating: null, raw_completion: "", error: r.error });
        else {
          const p = parseRating(r.text);
          done.set(
            keyOf(it),
            p.ok
              ? { ...base, rating: p.rating, raw_completion: r.text }
              : { ...base, rating: null, raw_completion: r.text, error: p.reason },
          );
        }
      });
      await save();
      opts.onProgress?.(items.length - todo.length + start + results.length, items.length);
    },
  );
  if (todo.length === 0 && !existsSync(path)) await save();
  return items.map((it) => done.get(keyOf(it)) as GradeRecord);
}
