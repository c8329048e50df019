/**
 * `srlm eval <model-dir> (--run <run-dir> | --preset sandbox)`: measure a sandbox model (an HF folder
 * written by srlm) on held-out prompts against the gold scorer — answers, the judge on its own samples
 * and on corruptions, the likelihood baseline. The held-out tasks come from a run's M1 data, or are
 * regenerated from a sandbox preset's seed (the same tasks its M1 was measured on).
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createKernels, type KernelsKind } from "../engine/ort.js";
import { writeJsonAtomic } from "../io/atomic.js";
import { loadHfModel } from "../io/hf-folder.js";
import { readJsonl } from "../io/jsonl.js";
import { createModel } from "../model/llama.js";
import { type SandboxTask, sandboxSplits } from "../sandbox/data.js";
import { evaluateSandbox } from "../sandbox/evaluate.js";
import { allFamilies, familiesByName } from "../sandbox/families/index.js";
import { sandboxTokenizer } from "../sandbox/forms.js";
import { preset } from "../sandbox/preset.js";
import { formatMetrics } from "./sandbox-sft.js";

export const evalUsage =
  "srlm eval <model-dir> (--run <run-dir> | --preset sandbox|sandbox-tiny) [--samples 4] [--seed 1] [--out metrics.json]";

export async function evalCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      run: { type: "string" },
      preset: { type: "string" },
      samples: { type: "string", default: "4" },
      seed: { type: "string", default: "1" },
      out: { type: "string" },
      kernels: { type: "string", default: "ort" },
    },
  });
  if (positionals.length !== 1) throw new Error(`expected one model folder\nusage: ${evalUsage}`);
  if (!values.run === !values.preset)
    throw new Error(`give exactly one of --run and --preset (where the held-out prompts come from)\nusage: ${evalUsage}`);
  const samples = Number(values.samples);
  const seed = Number(values.seed);
  if (!Number.isInteger(samples) || samples < 2) throw new Error(`--samples must be an integer ≥ 2 (got "${values.samples}")`);
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`--seed must be a non-negative integer (got "${values.seed}")`);
  let tasks: SandboxTask[];
  let families = allFamilies;
  if (values.run) {
    const path = join(values.run, "m1", "data", "eval.jsonl");
    tasks = await readJsonl<SandboxTask>(path).catch((e: Error) => {
      throw new Error(`--run ${values.run}: cannot read the held-out prompts (${e.message})`);
    });
  } else {
    const p = preset(values.preset as string);
    if (p.families) families = familiesByName(p.families);
    tasks = sandboxSplits(families, p.sizes, p.seed).eval;
  }
  const kind = values.kernels as KernelsKind;
  if (kind !== "ort" && kind !== "reference") throw new Error(`--kernels must be "ort" or "reference" (got "${kind}")`);
  const kernels = await createKernels(kind);
  try {
    const loaded = await loadHfModel(positionals[0]);
    const model = createModel(loaded.config, loaded.params, kernels);
    const m = await evaluateSandbox(model, sandboxTokenizer(), families, tasks, { samples, seed });
    process.stdout.write(formatMetrics(m, samples, { title: positionals[0], targets: false }));
    if (values.out) {
      await writeJsonAtomic(values.out, m);
      process.stdout.write(`metrics: ${values.out}\n`);
    }
  } finally {
    await kernels.dispose();
  }
}
