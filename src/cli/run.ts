/**
 * `srlm run [config.yaml] [--preset sandbox] [--out dir] [--set key=value]…` runs the self-rewarding
 * loop into a run directory; `srlm run --resume <dir>` continues a killed run from its own
 * config.resolved.yaml, redoing nothing that finished.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { parse as parseYaml } from "yaml";
import { createKernels, type KernelsKind } from "../engine/ort.js";
import { loadRunConfig, type RunConfig, runConfig } from "../loop/config.js";
import { iterationLine, runLoop } from "../loop/run.js";

export const runUsage = `srlm run [config.yaml] [--preset sandbox|sandbox-tiny] [--out dir] [--set key=value]… [--kernels ort|reference]
srlm run --resume <run-dir>`;

export async function runCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      preset: { type: "string" },
      out: { type: "string" },
      resume: { type: "string" },
      kernels: { type: "string", default: "ort" },
      set: { type: "string", multiple: true, default: [] },
    },
  });
  if (positionals.length > 1) throw new Error(`expected at most one config file, got ${positionals.join(" ")}\nusage: ${runUsage}`);
  let cfg: RunConfig;
  let out: string;
  if (values.resume) {
    if (positionals.length || values.preset || values.set?.length || values.out) {
      throw new Error("--resume takes the run's own config (config.resolved.yaml): no config file, --preset, --set or --out with it");
    }
    out = values.resume;
    const path = join(out, "config.resolved.yaml");
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch {
      throw new Error(`--resume ${out}: no ${path} (not a run directory?)`);
    }
    cfg = runConfig(parseYaml(text), path);
  } else {
    const file = positionals[0];
    if (!file && !values.preset) throw new Error(`give a config file or --preset\nusage: ${runUsage}`);
    cfg = await loadRunConfig({ file, preset: values.preset, set: values.set });
    out = values.out ?? join("runs", `${cfg.preset ?? "run"}-${new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19)}`);
  }
  await runWithKernels(cfg, out, values.kernels as string, `srlm run ${argv.join(" ")}`);
}

export async function runWithKernels(cfg: RunConfig, out: string, kernelsKind: string, command: string): Promise<void> {
  if (kernelsKind !== "ort" && kernelsKind !== "reference")
    throw new Error(`--kernels must be "ort" or "reference" (got "${kernelsKind}")`);
  const kernels = await createKernels(kernelsKind as KernelsKind);
  const controller = new AbortController();
  const stop = () => {
    process.stderr.write("\nstopping: saving what is finished (run again with --resume to continue)…\n");
    controller.abort();
  };
  process.once("SIGINT", stop);
  const t0 = performance.now();
  try {
    process.stderr.write(`run directory: ${out}\n`);
    const r = await runLoop(cfg, out, { kernels, signal: controller.signal, command });
    const secs = (performance.now() - t0) / 1000;
    process.stdout.write(`\n${r.metrics.map(iterationLine).join("\n")}\n`);
    process.stdout.write(
      `\n${cfg.iterations} iterations in ${secs.toFixed(0)} s; metrics: ${out}/metrics.jsonl; final model: ${r.finalDir}\n`,
    );
    process.stdout.write(`report: srlm report ${out}\n`);
  } finally {
    process.off("SIGINT", stop);
    await kernels.dispose();
  }
}
