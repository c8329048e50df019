/**
 * `srlm eval rewardbench --pairs pairs.jsonl --judge <model-dir|file.gguf> [--out dir]`: accuracy of a
 * judge on preference pairs ({prompt, chosen, rejected} per line): each response graded 1–10 on its
 * own, correct when chosen > rejected (see src/eval/reward-bench.ts). Grades go to <out>/grades.json
 * (resumable), the accuracy to <out>/metrics.json.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { gradeAnswers } from "../eval/mt-bench.js";
import { preferencePairSchema, rewardAccuracy } from "../eval/reward-bench.js";
import { writeJsonAtomic } from "../io/atomic.js";
import { readJsonl } from "../io/jsonl.js";
import { judgeFlags, withJudge } from "./eval-alpaca.js";

export const evalRewardBenchUsage = "srlm eval rewardbench --pairs pairs.jsonl --judge <model-dir|file.gguf> [--out dir] [--limit N]";

export async function evalRewardBenchCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { ...judgeFlags, pairs: { type: "string" } } });
  if (!values.pairs) throw new Error(`--pairs is required\nusage: ${evalRewardBenchUsage}`);
  let pairs = await readJsonl(values.pairs, preferencePairSchema);
  const out = values.out ?? "eval-rewardbench";
  mkdirSync(out, { recursive: true });
  await withJudge(values, "grading", async (judge, opts) => {
    if (opts.limit) pairs = pairs.slice(0, opts.limit);
    const items = pairs.flatMap((p) => [
      { instruction: p.prompt, output: p.chosen },
      { instruction: p.prompt, output: p.rejected },
    ]);
    const grades = await gradeAnswers(judge, items, join(out, "grades.json"), opts);
    const r = rewardAccuracy(
      pairs.map((_, i) => grades[2 * i].rating ?? Number.NaN),
      pairs.map((_, i) => grades[2 * i + 1].rating ?? Number.NaN),
    );
    await writeJsonAtomic(join(out, "metrics.json"), {
      accuracy: r.accuracy,
      standard_error: r.standardError,
      accuracy_ties_half: r.tiesHalf,
      n_correct: r.correct,
      n_ties: r.ties,
      n_failed: r.failed,
      n_total: r.n,
      annotator: judge.name,
    });
    process.stdout.write(
      `accuracy ${(r.accuracy * 100).toFixed(2)} ± ${(r.standardError * 100).toFixed(2)} %  (${r.correct} of ${r.n}; ${r.ties} ties, ${r.failed} pairs with an unparsed grade; ties as half: ${(r.tiesHalf * 100).toFixed(2)} %)\n`,
    );
  });
}
