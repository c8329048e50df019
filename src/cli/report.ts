/**
 * `srlm report <run-dir> [more run dirs…] [--out file.html] [--title text]`: one self-contained HTML
 * page (inline SVG charts, metric tables, manifest, config) for one run or several side by side.
 * Default output: <first run-dir>/report.html.
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { writeReport } from "../report/html.js";

export const reportUsage = "srlm report <run-dir> [more run dirs…] [--out report.html] [--title text]";

export async function reportCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      out: { type: "string", short: "o" },
      title: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(`usage: ${reportUsage}\n`);
    return;
  }
  if (!positionals.length) throw new Error(`give at least one run directory\nusage: ${reportUsage}`);
  const out = values.out ?? join(positionals[0], "report.html");
  await writeReport(positionals, out, { title: values.title });
  process.stdout.write(`${out}\n`);
}
