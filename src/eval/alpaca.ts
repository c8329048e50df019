/**
 * AlpacaEval-style pairwise evaluation: a model's outputs against reference outputs on the same
 * instructions, judged by a judge engine in both answer orders.
 *
 * Files (AlpacaEval's formats): outputs are a JSON list of {instruction, output, generator, dataset?};
 * annotations are a JSON list of {instruction, output_1, generator_1, output_2, generator_2,
 * annotator, preference, …} with output_1 = the reference, output_2 = the model, and preference in
 * [1, 2] (1 = output_1 better, 2 = output_2 better, 1.5 = tie) or null when it could not be judged.
 *
 * Judging: each pair is shown twice, reference first and model first. Each judgement ends with a
 * line `better: 1`, `better: 2` or `better: tie` (the last such line counts; anything else fails).
 * The pair's preference is the mean of the two orders' preferences, so agreeing orders give 1 or 2,
 * disagreeing orders or two ties give 1.5, and a tie plus a win gives 1.25 or 1.75. If either order
 * fails to parse, the preference is null: the pair is counted as failed and left out of the win
 * rate, never filled in from the one order that parsed (that would bring position bias back).
 */
import { existsSync, readFileSync } from "node:fs";
import { z } from "zod";
import { writeJsonAtomic } from "../io/atomic.js";
import { type Judge, type JudgeOptions, judgeRequests } from "./judge-engine.js";
import { type LengthControlledWinRate, lengthControlledWinRate, type RawWinRate, rawWinRate } from "./win-rate.js";

export const alpacaOutputSchema = z.object({
  instruction: z.string(),
  output: z.string(),
  generator: z.string(),
  dataset: z.string().optional(),
});
export type AlpacaOutput = z.infer<typeof alpacaOutputSchema>;

export const pairVerdictSchema = z.union([z.literal(1), z.literal(2), z.literal("tie")]);

export const alpacaAnnotationSchema = z
  .object({
    instruction: z.string(),
    output_1: z.string(),
    generator_1: z.string(),
    output_2: z.string(),
    generator_2: z.string(),
    annotator: z.string().optional(),
    // AlpacaEval's old files encode a draw as 0.
    preference: z
      .number()
      .refine((p) => p === 0 || (p >= 1 && p <= 2), "must be in [1, 2] (or 0, AlpacaEval's old draw)")
      .nullable(),
    dataset: z.string().optional(),
  })
  .passthrough();
export type AlpacaAnnotation = z.infer<typeof alpacaAnnotationSchema> & {
  /** srlm's judgements, reference first then model first (absent in other tools' files). */
  judgements?: PairJudgement[];
};

export interface PairJudgement {
  /** Which output was shown as "Answer 1". */
  first: "output_1" | "output_2";
  text: string;
  verdict: 1 | 2 | "tie" | null;
  error?: string;
}

/** Read and validate a JSON list with `schema`; errors name the file, the record index and the field. */
export function readJsonList<T>(path: string, schema: z.ZodType<T>): T[] {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new Error(`${path}: cannot read a JSON list (${(e as Error).message})`);
  }
  if (!Array.isArray(json)) throw new Error(`${path}: expected a JSON list of records, got ${json === null ? "null" : typeof json}`);
  return json.map((rec, i) => {
    const r = schema.safeParse(rec);
    if (!r.success) {
      const is = r.error.issues[0];
      throw new Error(`${path}: record ${i}: field "${is.path.join(".") || "(record)"}": ${is.message}`);
    }
    return r.data;
  });
}

export const readAlpacaOutputs = (path: string): AlpacaOutput[] => readJsonList(path, alpacaOutputSchema);
export const readAlpacaAnnotations = (path: string): AlpacaAnnotation[] => readJsonList(path, alpacaAnnotationSchema);

export interface OutputPair {
  instruction: string;
  dataset?: string;
  reference: AlpacaOutput;
  model: AlpacaOutput;
}

/**
 * Pair the model's and the reference's outputs by instruction, in the reference's order. Both sides
 * must hold the same instructions, each once; otherwise the error says how many differ and shows one.
 */
export function pairOutputs(model: readonly AlpacaOutput[], reference: readonly AlpacaOutput[]): OutputPair[] {
  const index = (list: readonly AlpacaOutput[], what: string) => {
    const m = new Map<string, AlpacaOutput>();
    list.forEach((r, i) => {
      if (m.has(r.instruction))
        throw new Error(`${what}: record ${i} repeats the instruction ${JSON.stringify(r.instruction.slice(0, 80))}`);
      m.set(r.instruction, r);
    });
    return m;
  };
  const byModel = index(model, "model outputs");
  const byRef = index(reference, "reference outputs");
  const missing = reference.filter((r) => !byModel.has(r.instruction));
  const extra = model.filter((r) => !byRef.has(r.instruction));
  if (missing.length || extra.length) {
    const example = (missing[0] ?? extra[0]).instruction.slice(0, 80);
    throw new Error(
      `the outputs do not match the reference by instruction: ${missing.length} of ${reference.length} reference instructions have no model output, ` +
        `${extra.length} of ${model.length} model outputs have no reference (e.g. ${JSON.stringify(example)})`,
    );
  }
  return reference.map((r) => ({ instruction: r.instruction, dataset: r.dataset, reference: r, model: byModel.get(r.instruction)! }));
}

/** The pairwise judging request (srlm's own wording). */
export function pairwiseJudgePrompt(instruction: string, answer1: string, answer2: string): string {
  return [
    "Two assistants answered the same instruction. Decide which answer serves the user better: correct,",
    "helpful, complete where it matters, and clear. Do not let the order of the answers or their length",
    "sway you on their own.",
    "",
    "[Instruction]",
    instruction,
    "",
    "[Answer 1]",
    answer1,
    "",
    "[Answer 2]",
    answer2,
    "",
    "Explain your comparison in a few sentences. Then end with exactly one line: `better: 1`, `better: 2`,",
    "or `better: tie`.",
  ].join("\n");
}

export type ParsedPairVerdict = { ok: true; verdict: 1 | 2 | "tie" } | { ok: false; reason: string };

const BETTER_LINE = /^[ \t]*`?better:[ \t]*(.*?)`?[ \t]*$/gm;

/** Fail-closed: the LAST line-anchored `better: x`; x must be exactly 1, 2 or tie. */
export function parsePairVerdict(text: string): ParsedPairVerdict {
  let last: string | undefined;
  for (const m of text.matchAll(BETTER_LINE)) last = m[1];
  if (last === undefined) return { ok: false, reason: "no line starting with 'better:'" };
  if (last === "1" || last === "2") return { ok: true, verdict: last === "1" ? 1 : 2 };
  if (last === "tie") return { ok: true, verdict: "tie" };
  return { ok: false, reason: `the last 'better:' line holds ${JSON.stringify(last)}, not 1, 2 or tie` };
}

/**
 * AlpacaEval preference (1 = output_1 better, 2 = output_2 better) from the two orders' verdicts:
 * the mean of the two, or null when either is missing.
 */
export function combineOrders(referenceFirst: 1 | 2 | "tie" | null, modelFirst: 1 | 2 | "tie" | null): number | null {
  if (referenceFirst === null || modelFirst === null) return null;
  // Reference first: answer 1 is output_1. Model first: answer 1 is output_2, so the verdict flips.
  const a = referenceFirst === "tie" ? 1.5 : referenceFirst;
  const b = modelFirst === "tie" ? 1.5 : 3 - modelFirst;
  return (a + b) / 2;
}

/** Key of an annotation: the same instruction and outputs are judged once. */
const annotationKey = (instruction: string, output1: string, output2: string) => JSON.stringify([instruction, output1, output2]);

export interface AlpacaJudgeResult {
  annotations: AlpacaAnnotation[];
  /** Pairs judged in this call (the rest came from the annotations file). */
  judgedNow: number;
}

/**
 * Judge every pair in both orders and write the annotations to `annotationsPath` after each batch
 * (atomically). Pairs already in that file with the same annotator are kept, not judged again, so a
 * killed run resumes where it stopped.
 */
export async function judgeAlpaca(
  judge: Judge,
  pairs: readonly OutputPair[],
  annotationsPath: string,
  opts: JudgeOptions & { onProgress?: (done: number, total: number) => void } = {},
): Promise<AlpacaJudgeResult> {
  const done = new Map<string, AlpacaAnnotation>();
  if (existsSync(annotationsPath)) {
    for (const a of readAlpacaAnnotations(annotationsPath))
      if (a.annotator === judge.name) done.set(annotationKey(a.instruction, a.output_1, a.output_2), a);
  }
  const todo = pairs.filter((p) => !done.has(annotationKey(p.instruction, p.reference.output, p.model.output)));
  const ordered = () =>
    pairs.flatMap((p) => {
      const a = done.get(annotationKey(p.instruction, p.reference.output, p.model.output));
      return a ? [a] : [];
    });
  // Two requests per pair, kept adjacent so a batch holds whole pairs (the batch size is even).
  const requests = todo.flatMap((p) => [
    pairwiseJudgePrompt(p.instruction, p.reference.output, p.model.output),
    pairwiseJudgePrompt(p.instruction, p.model.output, p.reference.output),
  ]);
  const batch = 2 * Math.max(1, Math.floor((opts.batch ?? 16) / 2));
  await judgeRequests(judge, requests, { ...opts, batch }, async (start, results) => {
    for (let k = 0; k < results.length; k += 2) {
      const p = todo[(start + k) / 2];
      const js = [results[k], results[k + 1]].map((r, o): PairJudgement => {
        const first = o === 0 ? "output_1" : "output_2";
        if ("error" in r) return { first, text: "", verdict: null, error: r.error };
        const v = parsePairVerdict(r.text);
        return v.ok ? { first, text: r.text, verdict: v.verdict } : { first, text: r.text, verdict: null, error: v.reason };
      });
      done.set(annotationKey(p.instruction, p.reference.output, p.model.output), {
        instruction: p.instruction,
        ...(p.dataset !== undefined ? { dataset: p.dataset } : {}),
        output_1: p.reference.output,
        generator_1: p.reference.generator,
        output_2: p.model.output,
        generator_2: p.model.generator,
        annotator: judge.name,
        preference: combineOrders(js[0].verdict, js[1].verdict),
        judgements: js,
      });
    }
    await writeJsonAtomic(annotationsPath, ordered());
    opts.onProgress?.(pairs.length - todo.length + Math.min(todo.length, (start + results.length) / 2), pairs.length);
  });
  const annotations = ordered();
  if (todo.length === 0 && !existsSync(annotationsPath)) await writeJsonAtomic(annotationsPath, annotations);
  return { annotations, judgedNow: todo.length };
}

export interface AlpacaMetrics {
  raw: RawWinRate;
  lengthControlled: LengthControlledWinRate;
  /** Annotations whose preference is null (a judgement did not parse, or a request did not fit). */
  nFailed: number;
  /** Mean characters of output_2 (the model) over all annotations. */
  avgLength: number;
  generator: string;
  reference: string;
  annotator: string;
}

/** Length in Unicode code points, as Python's len() (AlpacaEval's lengths), not UTF-16 units. */
export function charLength(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/**
 * Win rates of output_2 over output_1 from annotations. AlpacaEval's old encoding of a draw as 0 is
 * read as 1.5; null preferences are counted as failed and left out.
 */
export function alpacaMetrics(annotations: readonly AlpacaAnnotation[]): AlpacaMetrics {
  const judged = annotations.filter((a) => a.preference !== null && a.preference !== undefined);
  const prefs = judged.map((a) => (a.preference === 0 ? 1.5 : (a.preference as number)));
  const lengths = judged.map((a) => [charLength(a.output_1), charLength(a.output_2)] as [number, number]);
  const names = (f: (a: AlpacaAnnotation) => string | undefined) => [...new Set(annotations.map(f))].join(", ");
  return {
    raw: rawWinRate(prefs),
    lengthControlled: lengthControlledWinRate(prefs, lengths),
    nFailed: annotations.length - judged.length,
    avgLength: annotations.reduce((s, a) => s + charLength(a.output_2), 0) / Math.max(1, annotations.length),
    generator: names((a) => a.generator_2),
    reference: names((a) => a.generator_1),
    annotator: names((a) => a.annotator ?? "?"),
  };
}

/** The metrics as an AlpacaEval leaderboard row (percent scale, AlpacaEval's column names). */
export function leaderboardRow(m: AlpacaMetrics): Record<string, number | string | boolean> {
  return {
    generator: m.generator,
    reference: m.reference,
    annotator: m.annotator,
    win_rate: m.raw.winRate * 100,
    standard_error: m.raw.standardError * 100,
    n_wins: m.raw.nWins,
    n_wins_base: m.raw.nWinsBase,
    n_draws: m.raw.nDraws,
    n_total: m.raw.n,
    n_failed: m.nFailed,
    avg_length: Math.round(m.avgLength),
    length_controlled_winrate: m.lengthControlled.winRate * 100,
    lc_standard_error: m.lengthControlled.standardError * 100,
    lc_length_slope: m.lengthControlled.slope,
    lc_converged: m.lengthControlled.converged,
  };
}
