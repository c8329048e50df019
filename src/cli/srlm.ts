/**
 * The `srlm` command: one subcommand per file.
 *   srlm sandbox sft [--preset sandbox] [--out dir]   build M1 in the sandbox and measure it
 */
import { sandboxSftCommand } from "./sandbox-sft.js";

const usage = `usage:
  srlm sandbox sft [--preset sandbox|sandbox-tiny] [--out runs/<preset>] [--set key=value]… [--kernels ort|reference]
`;

async function main(argv: string[]): Promise<void> {
  const [cmd, sub, ...rest] = argv;
  if (cmd === "sandbox" && sub === "sft") return sandboxSftCommand(rest);
  process.stderr.write(cmd ? `srlm: unknown command "${[cmd, sub].filter(Boolean).join(" ")}"\n${usage}` : usage);
  process.exitCode = 2;
}

main(process.argv.slice(2)).catch((e: Error) => {
  process.stderr.write(`srlm: ${e.message}\n`);
  process.exitCode = 1;
});
