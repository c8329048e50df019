/**
 * The `srlm` command: one subcommand per file.
 *   srlm run [config.yaml] [--preset …] [--out dir] [--set k=v]…   the self-rewarding loop (run.ts)
 *   srlm run --resume <run-dir>                                      continue a killed run
 *   srlm demo                                                        the sandbox loop end to end (demo-loop.ts)
 *   srlm sandbox sft [--preset sandbox] [--out dir]                  build M1 in the sandbox and measure it
 *   srlm eval <model-dir> --run <run-dir>                            a sandbox model against the gold scorer
 *   srlm report <run-dir>…                                           a self-contained HTML report
 *   srlm export <model-dir> --format gguf --out file.gguf            a model for llama.cpp (export.ts)
 *   srlm export <adapter-dir> --format gguf --base … --out lora.gguf a LoRA adapter for llama.cpp
 */
import { demoCommand } from "./demo-loop.js";
import { evalCommand, evalUsage } from "./eval.js";
import { exportCommand, exportUsage } from "./export.js";
import { reportCommand } from "./report.js";
import { runCommand, runUsage } from "./run.js";
import { sandboxSftCommand } from "./sandbox-sft.js";

const usage = `usage:
  ${runUsage.split("\n").join("\n  ")}
  srlm demo [--out runs/demo-<preset>] [--preset sandbox]
  ${evalUsage}
  srlm sandbox sft [--preset sandbox|sandbox-tiny] [--out runs/<preset>] [--set key=value]… [--kernels ort|reference]
  srlm report <run-dir> [more run dirs…] [--out report.html]
  ${exportUsage}
`;

async function main(argv: string[]): Promise<void> {
  const [cmd, sub, ...rest] = argv;
  if (cmd === "run") return runCommand(argv.slice(1));
  if (cmd === "demo") return demoCommand(argv.slice(1));
  if (cmd === "eval") return evalCommand(argv.slice(1));
  if (cmd === "report") return reportCommand(argv.slice(1));
  if (cmd === "export") return exportCommand(argv.slice(1));
  if (cmd === "sandbox" && sub === "sft") return sandboxSftCommand(rest);
  process.stderr.write(cmd ? `srlm: unknown command "${[cmd, sub].filter(Boolean).join(" ")}"\n${usage}` : usage);
  process.exitCode = 2;
}

main(process.argv.slice(2)).catch((e: Error) => {
  process.stderr.write(`srlm: ${e.message}\n`);
  process.exitCode = 1;
});
