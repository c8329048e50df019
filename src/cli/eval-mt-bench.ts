/**
 * `srlm eval mt-bench --outputs model.json --judge <model-dir|file.gguf> [--out dir]`: MT-Bench-style
 * single-answer grading (1–10) of AlpacaEval-format outputs; grades go to <out>/grades.json
 * (resumable), the mean ± standard error to <out>/metrics.json.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { readAlpacaOutputs } from "../eval/alpaca.js";
import { gradeAnswers, summariseRatings } from "../eval/mt-bench.js";
import { writeJsonAtomic } from "../io/atomic.js";
import { judgeFlags, withJudge } from "./eval-alpaca.js";

export const evalMtBenchUsage = "srlm eval mt-bench --outputs model.json --judge <model-dir|file.gguf> [--out dir] [--limit N]";

export async function evalMtBenchCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { ...judgeFlags, outputs: { type: "string" } } });
  if (!values.outputs) throw new Error(`--outputs is required\nusage: ${evalMtBenchUsage}`);
  let outputs = readAlpacaOutputs(values.outputs);
  const out = values.out ?? "eval-mt-bench";
  mkdirSync(out, { recursive: true });
  await withJudge(values, "grading", async (judge, opts) => {
    if (opts.limit) outputs = outputs.slice(0, opts.limit);
    const grades = await gradeAnswers(judge, outputs, join(out, "grades.json"), opts);
    const s = summariseRatings(grades.map((g) => g.rating ?? Number.NaN));
    await writeJsonAtomic(join(out, "metrics.json"), {
      mean_rating: s.mean,
      standard_error: s.standardError,
      n_graded: s.n,
      n_failed: s.failed,
      annotator: judge.name,
    });
    process.stdout.write(
      `mean rating ${s.mean.toFixed(2)} ± ${s.standardError.toFixed(2)} over ${s.n} answers; ${s.failed} gradings did not parse\n`,
    );
  });
}
