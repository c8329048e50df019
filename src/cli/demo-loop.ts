/**
 * `srlm demo` (= `npm start`): the sandbox end to end — seed data → M1 → self-rewarding iterations →
 * evaluation after each — into runs/demo. Running it again resumes (or reuses) that run.
 */
import { parseArgs } from "node:util";
import { loadRunConfig } from "../loop/config.js";
import { runWithKernels } from "./run.js";

export async function demoCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      preset: { type: "string", default: "sandbox" },
      out: { type: "string" },
      kernels: { type: "string", default: "ort" },
      set: { type: "string", multiple: true, default: [] },
    },
  });
  const cfg = await loadRunConfig({ preset: values.preset, set: values.set });
  const out = values.out ?? `runs/demo-${values.preset}`;
  process.stderr.write(
    `srlm demo: preset "${values.preset}" — M1 from seed data, then ${cfg.iterations} self-rewarding iterations (${cfg.prompts.count} prompts, N = ${cfg.generate.n}, K = ${cfg.judge.samples})\n`,
  );
  await runWithKernels(cfg, out, values.kernels as string, `srlm demo ${argv.join(" ")}`);
}
