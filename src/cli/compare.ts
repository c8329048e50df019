/**
 * `srlm compare [config.yaml] [--preset p] [--methods sr,temporal,cream,scir,meta,spin] [--seeds 3]
 * [--out runs/compare] [--set key=value]… [--no-reference] [--m1 per-seed|shared]`: every method (plus
 * the oracle and the no-preference control) over seeds, each a resumable run directory under --out
 * (src/loop/compare.ts), then the table: printed, and written as compare.json, compare.md and
 * compare.html. A failed run is reported, the others go on, and the exit code is then 1.
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createKernels, type KernelsKind } from "../engine/ort.js";
import { writeFileAtomic, writeJsonAtomic } from "../io/atomic.js";
import {
  COMPARE_METHODS,
  type CompareMethod,
  type CompareOptions,
  type CompareRunOptions,
  compareNotes,
  planCompare,
  ROW_NOTES,
  runCompare,
} from "../loop/compare.js";
import { rawRunConfig } from "../loop/config.js";
import { ConfigError } from "../model/config.js";
import { aggregateCompare, type CompareDoc, type CompareRunResult, compareHtml, compareMarkdown, compareText } from "../report/compare.js";

export const compareUsage =
  "srlm compare [config.yaml] [--preset sandbox|sandbox-tiny] [--methods sr,temporal,cream,scir,meta,spin] [--seeds 3] [--out runs/compare] [--set key=value]… [--no-reference] [--m1 per-seed|shared] [--kernels ort|reference]";

/** The parsed command line of `srlm compare`. */
export interface CompareArgs {
  file?: string;
  preset?: string;
  set: string[];
  kernels: string;
  options: CompareOptions;
}

/** `--methods a,b`: known names only (the error lists them), no duplicates. */
export function parseMethods(text: string): CompareMethod[] {
  const names = text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  for (const n of names) {
    if (n === "control" || n === "oracle")
      throw new ConfigError(`--methods: "${n}" is a reference row, added unless --no-reference (methods: ${COMPARE_METHODS.join(", ")})`);
    if (!(COMPARE_METHODS as readonly string[]).includes(n))
      throw new ConfigError(`--methods: unknown method "${n}" (known: ${COMPARE_METHODS.join(", ")})`);
  }
  if (new Set(names).size !== names.length) throw new ConfigError(`--methods: a method given twice in "${text}"`);
  if (!names.length) throw new ConfigError("--methods: no methods given");
  return names as CompareMethod[];
}

export function parseCompareArgs(argv: string[]): CompareArgs {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      preset: { type: "string" },
      methods: { type: "string", default: COMPARE_METHODS.join(",") },
      seeds: { type: "string", default: "3" },
      out: { type: "string", default: join("runs", "compare") },
      set: { type: "string", multiple: true, default: [] },
      "no-reference": { type: "boolean", default: false },
      m1: { type: "string", default: "per-seed" },
      kernels: { type: "string", default: "ort" },
    },
  });
  if (positionals.length > 1)
    throw new ConfigError(`expected at most one config file, got ${positionals.join(" ")}\nusage: ${compareUsage}`);
  if (!positionals[0] && !values.preset) throw new ConfigError(`give a config file or --preset\nusage: ${compareUsage}`);
  const seeds = Number(values.seeds);
  if (!Number.isInteger(seeds) || seeds < 1) throw new ConfigError(`--seeds must be a whole number ≥ 1 (got "${values.seeds}")`);
  if (values.m1 !== "per-seed" && values.m1 !== "shared") throw new ConfigError(`--m1 must be "per-seed" or "shared" (got "${values.m1}")`);
  if (values.kernels !== "ort" && values.kernels !== "reference")
    throw new ConfigError(`--kernels must be "ort" or "reference" (got "${values.kernels}")`);
  return {
    file: positionals[0],
    preset: values.preset,
    set: values.set as string[],
    kernels: values.kernels,
    options: {
      methods: parseMethods(values.methods as string),
      seeds,
      out: values.out as string,
      reference: !values["no-reference"],
      m1: values.m1,
    },
  };
}

export interface CompareOutcome {
  results: CompareRunResult[];
  text: string;
  failed: number;
}

/** Plan, run (or resume, or skip) and tabulate; writes compare.json, compare.md and compare.html into --out. */
export async function compare(args: CompareArgs, run: Omit<CompareRunOptions, "command">, command: string): Promise<CompareOutcome> {
  const o = args.options;
  const plan = planCompare(await rawRunConfig({ file: args.file, preset: args.preset, set: args.set }), o);
  const log = run.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  log(
    `srlm compare: ${plan.length} runs (${[...new Set(plan.map((p) => p.row))].join(", ")} × seeds ${[...new Set(plan.map((p) => p.seed))].join(", ")}) in ${o.out}`,
  );
  const results = await runCompare(plan, { ...run, log, command });
  const rows = aggregateCompare(results);
  const doc: CompareDoc = {
    title: `srlm compare — ${o.out}`,
    command,
    notes: compareNotes(plan, o),
    rowNotes: ROW_NOTES,
    rows,
    runs: results,
  };
  await writeJsonAtomic(join(o.out, "compare.json"), {
    command,
    created: new Date().toISOString(),
    options: o,
    notes: doc.notes,
    row_notes: Object.fromEntries(rows.map((r) => [r.row, ROW_NOTES[r.row]])),
    runs: results.map((r) => ({ ...r, m1_seed: plan.find((p) => p.dir === r.dir)?.m1Seed })),
    table: rows,
  });
  await writeFileAtomic(join(o.out, "compare.md"), compareMarkdown(doc));
  await writeFileAtomic(join(o.out, "compare.html"), compareHtml(doc));
  return { results, text: compareText(rows), failed: results.filter((r) => r.status === "failed").length };
}

export async function compareCommand(argv: string[]): Promise<void> {
  const args = parseCompareArgs(argv);
  const kernels = await createKernels(args.kernels as KernelsKind);
  const controller = new AbortController();
  const stop = () => {
    process.stderr.write("\nstopping: saving what is finished (run srlm compare again with the same --out to continue)…\n");
    controller.abort();
  };
  process.once("SIGINT", stop);
  try {
    const r = await compare(args, { kernels, signal: controller.signal }, `srlm compare ${argv.join(" ")}`);
    const out = args.options.out;
    process.stdout.write(
      `\n${r.text}\n\ntable: ${join(out, "compare.md")}, ${join(out, "compare.json")}; report: ${join(out, "compare.html")}\n`,
    );
    if (r.failed > 0) {
      process.stderr.write(`srlm compare: ${r.failed} of ${r.results.length} runs failed (see compare.md)\n`);
      process.exitCode = 1;
    }
  } finally {
    process.off("SIGINT", stop);
    await kernels.dispose();
  }
}
