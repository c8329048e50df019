/**
 * `srlm export-pairs <run-dir> --format trl [--iteration t] [--out file.jsonl]`: one iteration's
 * preference pairs (iter-<t>/pairs.jsonl) as a clean data set for Hugging Face TRL's DPOTrainer, in
 * TRL's conversational format with an explicit prompt (src/io/trl.ts): `prompt`, `chosen`, `rejected`
 * and nothing else. TRL applies the model's chat template to it.
 *
 * The iteration is the latest one with a pairs.jsonl unless --iteration names one; the file goes to
 * --out (written atomically) or to standard output. Meta-Rewarding's judge-training pairs are left out
 * and counted: their user turn is the judge prompt already rendered for the model, which a chat
 * template would wrap a second time (`trainer: trl` trains them, in TRL's standard format).
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { writeFileAtomic } from "../io/atomic.js";
import { readJsonl } from "../io/jsonl.js";
import { conversationalRow, PairLineSchema, type TrlConversationalRow, trlJsonl } from "../io/trl.js";

export const exportPairsUsage = "srlm export-pairs <run-dir> --format trl [--iteration t] [--out file.jsonl]";

export class ExportPairsError extends Error {
  override name = "ExportPairsError";
}

/** The iterations t ≥ 1 of a run directory that have an iter-<t>/pairs.jsonl, in order. */
export function iterationsWithPairs(runDir: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync(runDir)) {
    const m = /^iter-(\d+)$/.exec(name);
    if (m && Number(m[1]) >= 1 && existsSync(join(runDir, name, "pairs.jsonl"))) out.push(Number(m[1]));
  }
  return out.sort((a, b) => a - b);
}

export interface ExportedPairs {
  iteration: number;
  rows: TrlConversationalRow[];
  /** Meta-Rewarding judge-training pairs left out (see the file header). */
  judgePairs: number;
}

/** Iteration `iteration`'s pairs (default: the latest iteration with a pairs.jsonl) as TRL conversational rows. */
export async function trlPairsOfRun(runDir: string, iteration?: number): Promise<ExportedPairs> {
  if (!existsSync(runDir) || !statSync(runDir).isDirectory()) throw new ExportPairsError(`${runDir}: no such run directory`);
  const have = iterationsWithPairs(runDir);
  const listed = have.length > 0 ? `iterations with pairs: ${have.join(", ")}` : "no iteration has pairs yet";
  let t: number;
  if (iteration === undefined) {
    if (have.length === 0) {
      const why = existsSync(join(runDir, "config.resolved.yaml")) ? "no iteration has reached its pairs stage" : "not a run directory?";
      throw new ExportPairsError(`${runDir}: no iter-<t>/pairs.jsonl (${why})`);
    }
    t = have[have.length - 1];
  } else {
    t = iteration;
    const dir = join(runDir, `iter-${t}`);
    if (!existsSync(dir)) throw new ExportPairsError(`${runDir}: no iteration ${t} (${listed})`);
    if (!existsSync(join(dir, "pairs.jsonl")))
      throw new ExportPairsError(`${dir}: no pairs.jsonl: iteration ${t} has not reached its pairs stage (${listed})`);
  }
  const path = join(runDir, `iter-${t}`, "pairs.jsonl");
  const pairs = await readJsonl(path, PairLineSchema);
  const answerPairs = pairs.filter((p) => p.kind !== "judge");
  const judgePairs = pairs.length - answerPairs.length;
  if (answerPairs.length === 0) {
    const why =
      judgePairs > 0
        ? `only ${judgePairs} judge-training pairs, which the conversational format cannot carry`
        : "it made no pairs (pairs_stats.json says why: ties, unparsed judgements, …)";
    throw new ExportPairsError(`${path}: no pairs to export: ${why}`);
  }
  return { iteration: t, rows: answerPairs.map(conversationalRow), judgePairs };
}

export async function exportPairsCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      format: { type: "string" },
      iteration: { type: "string" },
      out: { type: "string", short: "o" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(`usage: ${exportPairsUsage}\n`);
    return;
  }
  if (positionals.length !== 1) throw new ExportPairsError(`expected one run directory\nusage: ${exportPairsUsage}`);
  if (values.format !== "trl") {
    throw new ExportPairsError(`--format must be "trl" (the only pairs format so far), got ${JSON.stringify(values.format ?? null)}`);
  }
  let iteration: number | undefined;
  if (values.iteration !== undefined) {
    iteration = Number(values.iteration);
    if (!Number.isSafeInteger(iteration) || iteration < 1)
      throw new ExportPairsError(`--iteration must be an iteration number ≥ 1, got "${values.iteration}"`);
  }
  const r = await trlPairsOfRun(positionals[0], iteration);
  const text = trlJsonl(r.rows);
  if (values.out) await writeFileAtomic(values.out, text);
  else process.stdout.write(text);
  const left = r.judgePairs > 0 ? `; ${r.judgePairs} judge-training pairs left out (their prompt is already rendered for the model)` : "";
  process.stderr.write(
    `${values.out ?? "stdout"}: ${r.rows.length} pairs of iteration ${r.iteration}, TRL conversational format (prompt, chosen, rejected)${left}\n`,
  );
}
