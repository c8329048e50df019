/**
 * `srlm eval alpaca`: AlpacaEval-style win rate of a model's outputs against reference outputs.
 *   --outputs model.json --reference ref.json --judge <model-dir|file.gguf> [--out dir]
 *       judge every pair in both orders, write <out>/annotations.json (resumable) and <out>/leaderboard.json
 *   --annotations annotations.json
 *       metrics only, from annotations in AlpacaEval's format (srlm's or AlpacaEval's own)
 * Also holds the judge flags and the judge/abort plumbing the other `srlm eval <benchmark>` commands share.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  type AlpacaMetrics,
  alpacaMetrics,
  judgeAlpaca,
  leaderboardRow,
  pairOutputs,
  readAlpacaAnnotations,
  readAlpacaOutputs,
} from "../eval/alpaca.js";
import { type Judge, type JudgeOptions, openJudge } from "../eval/judge-engine.js";
import { writeJsonAtomic } from "../io/atomic.js";
import { progress } from "../run/progress.js";

export const evalAlpacaUsage =
  "srlm eval alpaca (--outputs model.json --reference ref.json --judge <model-dir|file.gguf> [--out dir] | --annotations annotations.json)";

/** Flags every judged benchmark takes. */
export const judgeFlags = {
  judge: { type: "string" },
  out: { type: "string" },
  limit: { type: "string" },
  batch: { type: "string", default: "16" },
  "max-new-tokens": { type: "string", default: "256" },
  kernels: { type: "string", default: "ort" },
} as const;

function positiveInt(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be an integer ≥ 1 (got "${v}")`);
  return n;
}

export interface JudgeFlagValues {
  judge?: string;
  out?: string;
  limit?: string;
  batch?: string;
  "max-new-tokens"?: string;
  kernels?: string;
}

/**
 * Open the judge named by --judge, run `f` with judging options (batch, tokens, an AbortSignal tied to
 * Ctrl-C, a progress line), and release the judge afterwards.
 */
export async function withJudge<T>(
  values: JudgeFlagValues,
  label: string,
  f: (judge: Judge, opts: JudgeOptions & { onProgress: (done: number, total: number) => void; limit?: number }) => Promise<T>,
): Promise<T> {
  if (!values.judge) throw new Error("--judge <model-dir|file.gguf> is required");
  const kernels = values.kernels;
  if (kernels !== "ort" && kernels !== "reference") throw new Error(`--kernels must be "ort" or "reference" (got "${kernels}")`);
  const opts = {
    batch: positiveInt(values.batch, "--batch"),
    maxNewTokens: positiveInt(values["max-new-tokens"], "--max-new-tokens"),
    limit: positiveInt(values.limit, "--limit"),
  };
  const judge = await openJudge(values.judge, { kernels });
  const controller = new AbortController();
  const stop = () => {
    process.stderr.write("\nstopping: what is judged is saved; run the same command again to continue\n");
    controller.abort();
  };
  process.once("SIGINT", stop);
  let bar: ReturnType<typeof progress> | undefined;
  try {
    return await f(judge, {
      ...opts,
      signal: controller.signal,
      onProgress: (done, total) => {
        bar ??= progress(label, total);
        bar.update(done);
      },
    });
  } finally {
    bar?.finish();
    process.off("SIGINT", stop);
    await judge.dispose();
  }
}

export function formatAlpacaMetrics(m: AlpacaMetrics): string {
  const pct = (x: number) => (x * 100).toFixed(2);
  const lc = m.lengthControlled;
  return [
    `${m.generator} vs ${m.reference}, judged by ${m.annotator}`,
    `  win rate             ${pct(m.raw.winRate)} ± ${pct(m.raw.standardError)} %  (${m.raw.nWins} wins, ${m.raw.nWinsBase} losses, ${m.raw.nDraws} draws of ${m.raw.n})`,
    `  length-controlled    ${pct(lc.winRate)} ± ${pct(lc.standardError)} %  (slope ${lc.slope.toFixed(3)} per sd of ${lc.lengthDiffStd.toFixed(0)} chars${lc.converged ? "" : "; DID NOT CONVERGE"})`,
    `  failed pairs         ${m.nFailed}${m.nFailed ? " (a judgement did not parse or did not fit; left out)" : ""}`,
    `  mean length          ${m.avgLength.toFixed(0)} chars`,
    "",
  ].join("\n");
}

export async function evalAlpacaCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { ...judgeFlags, outputs: { type: "string" }, reference: { type: "string" }, annotations: { type: "string" } },
  });
  if (values.annotations) {
    if (values.outputs || values.reference || values.judge)
      throw new Error(`--annotations takes no --outputs/--reference/--judge\nusage: ${evalAlpacaUsage}`);
    const m = alpacaMetrics(readAlpacaAnnotations(values.annotations));
    process.stdout.write(formatAlpacaMetrics(m));
    if (values.out) {
      mkdirSync(values.out, { recursive: true });
      await writeJsonAtomic(join(values.out, "leaderboard.json"), leaderboardRow(m));
    }
    return;
  }
  if (!values.outputs || !values.reference) throw new Error(`give --outputs and --reference (or --annotations)\nusage: ${evalAlpacaUsage}`);
  let pairs = pairOutputs(readAlpacaOutputs(values.outputs), readAlpacaOutputs(values.reference));
  const out = values.out ?? "eval-alpaca";
  mkdirSync(out, { recursive: true });
  await withJudge(values, "judging", async (judge, opts) => {
    if (opts.limit) pairs = pairs.slice(0, opts.limit);
    const annotationsPath = join(out, "annotations.json");
    const { annotations, judgedNow } = await judgeAlpaca(judge, pairs, annotationsPath, opts);
    const m = alpacaMetrics(annotations);
    await writeJsonAtomic(join(out, "leaderboard.json"), leaderboardRow(m));
    process.stdout.write(formatAlpacaMetrics(m));
    process.stdout.write(`${judgedNow} pairs judged now, ${pairs.length - judgedNow} from ${annotationsPath}\n`);
  });
}
