/**
 * `srlm sandbox sft [--preset sandbox] [--out runs/sandbox] [--set sft.steps=4000]…`: build M1 in
 * the sandbox (seed data → warm-up → EFT from its own samples → SFT on IFT + EFT) and print its
 * metrics against the gold scorer, with the preset's targets. Re-running with the same --out resumes.
 */
import { parseArgs } from "node:util";
import { createKernels, type KernelsKind } from "../engine/ort.js";
import { llamaConfig, paramCount } from "../model/config.js";
import type { JudgeQuality, SandboxMetrics } from "../sandbox/evaluate.js";
import { sandboxTokenizer } from "../sandbox/forms.js";
import { buildM1 } from "../sandbox/pipeline.js";
import { preset } from "../sandbox/preset.js";

export async function sandboxSftCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      preset: { type: "string", default: "sandbox" },
      out: { type: "string" },
      kernels: { type: "string", default: "ort" },
      set: { type: "string", multiple: true, default: [] },
    },
  });
  const p = preset(values.preset as string);
  for (const kv of values.set ?? []) setPath(p as unknown as Record<string, unknown>, kv);
  const out = values.out ?? `runs/${p.name}`;
  const kind = values.kernels as KernelsKind;
  if (kind !== "ort" && kind !== "reference") throw new Error(`--kernels must be "ort" or "reference" (got "${kind}")`);
  const kernels = await createKernels(kind);
  const cfg = llamaConfig({ ...p.model, vocabSize: sandboxTokenizer().vocabSize });
  process.stderr.write(
    `sandbox preset "${p.name}": ${(paramCount(cfg) / 1e6).toFixed(2)}M parameters, ${p.sizes.ift} IFT + ${p.sizes.eft} EFT, ${p.sizes.eval} held-out prompts → ${out}\n`,
  );
  const t0 = performance.now();
  try {
    const r = await buildM1(p, out, { kernels });
    const total = (performance.now() - t0) / 1000;
    process.stdout.write(formatMetrics(r.metrics, p.evalSamples));
    process.stdout.write(
      `time: warm-up ${r.seconds.warmup.toFixed(0)} s, EFT ${r.seconds.eft.toFixed(0)} s, SFT ${r.seconds.sft.toFixed(0)} s, evaluation ${r.seconds.eval.toFixed(0)} s, total ${total.toFixed(0)} s\n`,
    );
    process.stdout.write(`M1: ${out}/m1/final (HF folder + tokenizer.json); metrics: ${out}/m1_metrics.json\n`);
  } finally {
    await kernels.dispose();
  }
}

/** `--set sft.steps=4000`: overwrite one existing field of the preset (the value parsed as JSON when it can be). */
export function setPath(obj: Record<string, unknown>, assignment: string): void {
  const eq = assignment.indexOf("=");
  if (eq < 1) throw new Error(`--set ${assignment}: expected key=value`);
  const keys = assignment.slice(0, eq).split(".");
  const raw = assignment.slice(eq + 1);
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    value = raw;
  }
  let o: Record<string, unknown> = obj;
  for (const [i, k] of keys.entries()) {
    if (!(k in o))
      throw new Error(
        `--set ${assignment}: "${keys.slice(0, i + 1).join(".")}" is not a preset field (fields here: ${Object.keys(o).join(", ")})`,
      );
    if (i === keys.length - 1) {
      if (typeof o[k] !== typeof value)
        throw new Error(`--set ${assignment}: "${keys.join(".")}" is a ${typeof o[k]}, got ${JSON.stringify(value)}`);
      o[k] = value;
    } else o = o[k] as Record<string, unknown>;
  }
}

const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "n/a");

function judgeLine(name: string, q: JudgeQuality): string {
  return (
    `  judge on ${name.padEnd(15)} pairwise ${f2(q.pairwiseAccuracy)} (${q.pairs} pairs)  best-of-N ${f2(q.bestOfNAccuracy)}  MAE ${f2(q.mae)}  Spearman ${f2(q.spearman)}  parse failures ${f2(q.parseFailureRate)}\n` +
    `  ${"".padEnd(24)} trace exact ${f2(q.traceExact)}  criterion bits right ${q.bitAccuracy.map(f2).join(" ")}\n`
  );
}

export function formatMetrics(m: SandboxMetrics, n: number, o: { title?: string; targets?: boolean } = {}): string {
  const ok = (b: boolean) => (b ? "met" : "NOT met");
  let s = `\n${o.title ?? "M1"} on ${m.tasks} held-out prompts\n`;
  s += `  gold score (greedy)      ${f2(m.gold)} / 5    exact match ${f2(m.exact)}    answer length ${f2(m.length)}\n`;
  s += `  sampled answers (T 0.7)  gold ${f2(m.sampledGold)}    distinct ${f2(m.distinct)} of ${n}    criteria met ${m.criteriaMet.map(f2).join(" ")}\n`;
  s += judgeLine("own samples", m.judgeOwn);
  s += judgeLine("corruptions", m.judgeCorrupt);
  s += `  likelihood ranking of own samples: pairwise ${f2(m.likelihoodPairwiseAccuracy)}\n`;
  s += "  per family            gold   exact  judge pairwise (own)  likelihood pairwise\n";
  for (const [name, pf] of Object.entries(m.perFamily)) {
    s += `    ${name.padEnd(18)}  ${f2(pf.gold)}   ${f2(pf.exact)}   ${f2(pf.judgeOwnPairwise)}                  ${f2(pf.likelihoodPairwise)}\n`;
  }
  if (o.targets === false) return s;
  s += `targets: gold in [2, 4] ${ok(m.gold >= 2 && m.gold <= 4)}; judge pairwise on own samples ≥ 0.65 ${ok(m.judgeOwn.pairwiseAccuracy >= 0.65)}; above the likelihood ranking ${ok(m.judgeOwn.pairwiseAccuracy > m.likelihoodPairwiseAccuracy + 0.05)}\n`;
  return s;
}
