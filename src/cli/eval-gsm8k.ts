/**
 * `srlm eval gsm8k --problems test.jsonl (--outputs outputs.json | --model <model-dir|file.gguf>) [--out dir]`:
 * exact match on the final number. Outputs are AlpacaEval-format records whose instruction is the
 * problem's question; with --model, srlm generates them greedily (resumable) into <out>/outputs.json.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type AlpacaOutput, pairOutputs, readAlpacaOutputs } from "../eval/alpaca.js";
import { gsm8kAccuracy, gsm8kProblemSchema, referenceAnswer } from "../eval/gsm8k.js";
import { judgeRequests } from "../eval/judge-engine.js";
import { writeJsonAtomic } from "../io/atomic.js";
import { readJsonl } from "../io/jsonl.js";
import { judgeFlags, withJudge } from "./eval-alpaca.js";

export const evalGsm8kUsage =
  "srlm eval gsm8k --problems test.jsonl (--outputs outputs.json | --model <model-dir|file.gguf>) [--out dir] [--limit N]";

/** The request a model answers (srlm's wording): the question and where to put the final number. */
export const gsm8kPrompt = (question: string): string =>
  `${question}\n\nSolve the problem step by step, then give the final answer as a number on the last line, in the form: #### <number>`;

export async function evalGsm8kCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { ...judgeFlags, problems: { type: "string" }, outputs: { type: "string" }, model: { type: "string" } },
  });
  if (!values.problems || !values.outputs === !values.model)
    throw new Error(`give --problems and exactly one of --outputs and --model\nusage: ${evalGsm8kUsage}`);
  let problems = await readJsonl(values.problems, gsm8kProblemSchema);
  if (values.limit) problems = problems.slice(0, Number(values.limit));
  const refs = problems.map((p, i) => {
    try {
      return referenceAnswer(p.answer);
    } catch (e) {
      throw new Error(`${values.problems}: record ${i}: field "answer": ${(e as Error).message}`);
    }
  });
  const out = values.out ?? "eval-gsm8k";
  let outputs: AlpacaOutput[];
  if (values.outputs) {
    outputs = readAlpacaOutputs(values.outputs);
    // With --limit, outputs for the problems left out are not an error.
    if (values.limit) {
      const asked = new Set(problems.map((p) => p.question));
      outputs = outputs.filter((o) => asked.has(o.instruction));
    }
  } else {
    mkdirSync(out, { recursive: true });
    const path = join(out, "outputs.json");
    const have = existsSync(path) ? readAlpacaOutputs(path) : [];
    const done = new Map(have.map((o) => [o.instruction, o]));
    outputs = await withJudge({ ...values, judge: values.model }, "answering", async (model, opts) => {
      const todo = problems.filter((p) => !done.has(p.question));
      await judgeRequests(
        model,
        todo.map((p) => gsm8kPrompt(p.question)),
        { ...opts, maxNewTokens: opts.maxNewTokens ?? 256 },
        async (start, results) => {
          results.forEach((r, k) => {
            // A question that does not fit the context gets an empty answer: it counts as wrong.
            done.set(todo[start + k].question, {
              instruction: todo[start + k].question,
              output: "text" in r ? r.text : "",
              generator: model.name,
            });
          });
          await writeJsonAtomic(path, [...done.values()]);
          opts.onProgress(problems.length - todo.length + start + results.length, problems.length);
        },
      );
      return problems.map((p) => done.get(p.question) as AlpacaOutput);
    });
  }
  // Pair by question so the outputs may come in any order; every problem needs an output.
  const asRef = problems.map((p) => ({ instruction: p.question, output: p.answer, generator: "gsm8k" }));
  const pairs = pairOutputs(outputs, asRef);
  const r = gsm8kAccuracy(
    pairs.map((p) => p.model.output),
    refs,
  );
  process.stdout.write(
    `GSM8K exact match: ${(r.accuracy * 100).toFixed(2)} ± ${(r.standardError * 100).toFixed(2)} %  (${r.correct} of ${r.n}; ${r.noNumber} answers without a number)\n`,
  );
  if (values.out) {
    mkdirSync(values.out, { recursive: true });
    await writeJsonAtomic(join(values.out, "metrics.json"), {
      exact_match: r.accuracy,
      standard_error: r.standardError,
      n_correct: r.correct,
      n_no_number: r.noNumber,
      n_total: r.n,
    });
  }
}
