/**
 * The `srlm` command: one subcommand per file.
 *   srlm run [config.yaml] [--preset …] [--out dir] [--set k=v]…   the self-rewarding loop (run.ts)
 *   srlm run --resume <run-dir>                                      continue a killed run
 *   srlm compare [config.yaml] [--methods …] [--seeds 3]             methods side by side over seeds (compare.ts)
 *   srlm demo                                                        the sandbox loop end to end (demo-loop.ts)
 *   srlm sandbox sft [--preset sandbox] [--out dir]                  build M1 in the sandbox and measure it
 *   srlm eval <model-dir> --run <run-dir>                            a sandbox model against the gold scorer
 *   srlm eval alpaca|gsm8k|mt-bench|rewardbench …                    real-model benchmarks (eval-*.ts)
 *   srlm report <run-dir>…                                           a self-contained HTML report
 *   srlm export <model-dir> --format gguf --out file.gguf            a model for llama.cpp (export.ts)
 *   srlm export <adapter-dir> --format gguf --base … --out lora.gguf a LoRA adapter for llama.cpp
 *   srlm export-pairs <run-dir> --format trl [--iteration t]         an iteration's pairs as a TRL data set (export-pairs.ts)
 *   srlm serve <model-dir> [--port 8000] [--enable-lora]             an OpenAI-compatible server, vLLM's LoRA routes (serve.ts)
 */
import { compareCommand, compareUsage } from "./compare.js";
import { demoCommand } from "./demo-loop.js";
import { evalCommand, evalUsage } from "./eval.js";
import { evalAlpacaCommand, evalAlpacaUsage } from "./eval-alpaca.js";
import { evalGsm8kCommand, evalGsm8kUsage } from "./eval-gsm8k.js";
import { evalMtBenchCommand, evalMtBenchUsage } from "./eval-mt-bench.js";
import { evalRewardBenchCommand, evalRewardBenchUsage } from "./eval-rewardbench.js";
import { exportCommand, exportUsage } from "./export.js";
import { exportPairsCommand, exportPairsUsage } from "./export-pairs.js";
import { reportCommand } from "./report.js";
import { runCommand, runUsage } from "./run.js";
import { sandboxSftCommand } from "./sandbox-sft.js";
import { serveCommand, serveUsage } from "./serve.js";

const usage = `usage:
  ${runUsage.split("\n").join("\n  ")}
  ${compareUsage}
  srlm demo [--out runs/demo-<preset>] [--preset sandbox]
  ${evalUsage}
  ${evalAlpacaUsage}
  ${evalGsm8kUsage}
  ${evalMtBenchUsage}
  ${evalRewardBenchUsage}
  srlm sandbox sft [--preset sandbox|sandbox-tiny] [--out runs/<preset>] [--set key=value]… [--kernels ort|reference]
  srlm report <run-dir> [more run dirs…] [--out report.html]
  ${exportUsage}
  ${exportPairsUsage}
  ${serveUsage}
`;

async function main(argv: string[]): Promise<void> {
  const [cmd, sub, ...rest] = argv;
  if (cmd === "run") return runCommand(argv.slice(1));
  if (cmd === "compare") return compareCommand(argv.slice(1));
  if (cmd === "demo") return demoCommand(argv.slice(1));
  if (cmd === "eval" && sub === "alpaca") return evalAlpacaCommand(rest);
  if (cmd === "eval" && sub === "gsm8k") return evalGsm8kCommand(rest);
  if (cmd === "eval" && sub === "mt-bench") return evalMtBenchCommand(rest);
  if (cmd === "eval" && sub === "rewardbench") return evalRewardBenchCommand(rest);
  if (cmd === "eval") return evalCommand(argv.slice(1));
  if (cmd === "report") return reportCommand(argv.slice(1));
  if (cmd === "export") return exportCommand(argv.slice(1));
  if (cmd === "export-pairs") return exportPairsCommand(argv.slice(1));
  if (cmd === "serve") return serveCommand(argv.slice(1));
  if (cmd === "sandbox" && sub === "sft") return sandboxSftCommand(rest);
  process.stderr.write(cmd ? `srlm: unknown command "${[cmd, sub].filter(Boolean).join(" ")}"\n${usage}` : usage);
  process.exitCode = 2;
}

main(process.argv.slice(2)).catch((e: Error) => {
  process.stderr.write(`srlm: ${e.message}\n`);
  process.exitCode = 1;
});
