/**
 * The table of `srlm compare` (src/loop/compare.ts runs the methods): per row (a method, the oracle or
 * the control) and iteration, the mean ± sample standard deviation over seeds of each metric, as
 * aligned text, Markdown and a self-contained HTML page with one curve per row and ± std error bars.
 * Everything here is a pure function of the collected per-run values.
 *
 * A value that a run did not produce (null, NaN, missing) is left out of the mean and counted: the cell
 * says on how many seeds it stands when that is fewer than the row's finished runs, and "n/a" when none.
 * Failed runs count in no mean; the row says how many failed.
 */
import { type ChartSpec, CSS, escapeHtml, formatNumber, PALETTE, renderChart, type Series } from "./html.js";

/** One run's values per iteration (index = iteration, 0 = M1), as collected from its directory. */
export interface CompareRunResult {
  /** The table row: a method name, `oracle` or `control`. */
  row: string;
  seed: number;
  /** The run directory. */
  dir: string;
  /** `done`: ran now; `finished`: found finished, nothing redone; `failed`: threw (`error`). */
  status: "done" | "finished" | "failed";
  error?: string;
  /** Wall time of this invocation's work on the run (0 when found finished). */
  seconds: number;
  iterations: Record<string, number | null>[];
}

/** The quality metrics of the table, in order, with their column titles. */
export const QUALITY_METRICS: readonly { key: string; title: string }[] = [
  { key: "eval/gold", title: "gold" },
  { key: "eval/exact", title: "exact" },
  { key: "eval/judge_pairwise", title: "judge pairwise" },
  { key: "pairs/gold_gap", title: "chosen−rejected gold" },
  { key: "compare/consistency", title: "ranking consistency" },
];

/** The compute actually spent per iteration, measured from the run's files (src/loop/compare.ts). */
export const COMPUTE_METRICS: readonly { key: string; title: string }[] = [
  { key: "compute/samples", title: "samples" },
  { key: "compute/judge_calls", title: "judge calls" },
  { key: "compute/logp_rows", title: "log-prob rows" },
  { key: "compute/dpo_steps", title: "DPO steps" },
  { key: "pairs/count", title: "pairs" },
  { key: "compute/seconds", title: "seconds" },
];

export interface Stat {
  mean: number | null;
  /** Sample standard deviation (n − 1); null for fewer than two values. */
  std: number | null;
  /** Finite values the statistic stands on. */
  n: number;
}

/** Mean and sample standard deviation of the finite values; the rest are left out and not counted in n. */
export function meanStd(values: readonly (number | null | undefined)[]): Stat {
  const xs = values.filter((v): v is number => typeof v === "number" && Number.isFinite(v));
  const n = xs.length;
  if (n === 0) return { mean: null, std: null, n: 0 };
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { mean, std: null, n };
  const ss = xs.reduce((a, b) => a + (b - mean) ** 2, 0);
  return { mean, std: Math.sqrt(ss / (n - 1)), n };
}

export interface CompareRow {
  row: string;
  /** Seeds planned for the row, and how many of its runs finished or failed. */
  seeds: number[];
  ok: number;
  failed: number;
  /** Per iteration: metric → statistic over the row's finished runs. */
  iterations: Record<string, Stat>[];
}

/** Rows in the order of first appearance in `results`; per iteration, every metric's mean ± std over the finished runs. */
export function aggregateCompare(
  results: readonly CompareRunResult[],
  metrics: readonly string[] = [...QUALITY_METRICS, ...COMPUTE_METRICS].map((m) => m.key),
): CompareRow[] {
  const rows = new Map<string, CompareRunResult[]>();
  for (const r of results) {
    const list = rows.get(r.row);
    if (list) list.push(r);
    else rows.set(r.row, [r]);
  }
  return [...rows].map(([row, runs]) => {
    const ok = runs.filter((r) => r.status !== "failed");
    const T = Math.max(0, ...ok.map((r) => r.iterations.length));
    const iterations = Array.from({ length: T }, (_, t) =>
      Object.fromEntries(metrics.map((m) => [m, meanStd(ok.map((r) => r.iterations[t]?.[m]))])),
    );
    return { row, seeds: runs.map((r) => r.seed), ok: ok.length, failed: runs.length - ok.length, iterations };
  });
}

/** "4.27 ± 0.05"; "4.27" on one value; "(n=2)" appended when fewer values than finished runs; "n/a" on none. */
export function formatStat(s: Stat | undefined, runs: number): string {
  if (!s || s.mean === null) return "n/a";
  const body = s.std === null ? fmt(s.mean) : `${fmt(s.mean)} ± ${fmt(s.std)}`;
  return s.n < runs ? `${body} (n=${s.n})` : body;
}

/** Whole numbers (counts, and a std of 0) stay whole; others get 3 decimals, fewer from 10 up. */
function fmt(v: number): string {
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return v.toFixed(a >= 100 ? 0 : a >= 10 ? 1 : 3);
}

/** The cells of one table: a header and one line per (row, iteration). */
function tableCells(rows: readonly CompareRow[], metrics: readonly { key: string; title: string }[], fromIteration: number): string[][] {
  const out: string[][] = [["row", "runs", "it", ...metrics.map((m) => m.title)]];
  for (const r of rows) {
    const runs = `${r.ok}/${r.seeds.length}${r.failed ? ` (${r.failed} failed)` : ""}`;
    if (r.iterations.length <= fromIteration) out.push([r.row, runs, "–", ...metrics.map(() => "n/a")]);
    r.iterations.forEach((it, t) => {
      if (t < fromIteration) return;
      out.push([r.row, runs, String(t), ...metrics.map((m) => formatStat(it[m.key], r.ok))]);
    });
  }
  return out;
}

/** Aligned plain-text tables (quality, then compute) for the terminal. */
export function compareText(rows: readonly CompareRow[]): string {
  const align = (cells: string[][]) => {
    const w = cells[0].map((_, j) => Math.max(...cells.map((r) => [...r[j]].length)));
    const line = (r: string[]) => r.map((c, j) => (j < 3 ? c.padEnd(w[j]) : c.padStart(w[j]))).join("  ");
    return [line(cells[0]), w.map((x) => "-".repeat(x)).join("  "), ...cells.slice(1).map(line)].join("\n");
  };
  return [
    "Held-out quality and pairs, mean ± std over seeds (iteration 0 = M1; pair metrics from iteration 1):",
    align(tableCells(rows, QUALITY_METRICS, 0)),
    "",
    "Compute spent per iteration (measured from the run files; evaluation excluded):",
    align(tableCells(rows, COMPUTE_METRICS, 1)),
  ].join("\n");
}

/** Markdown pipe tables. */
export function markdownTable(
  rows: readonly CompareRow[],
  metrics: readonly { key: string; title: string }[],
  fromIteration: number,
): string {
  const cells = tableCells(rows, metrics, fromIteration);
  const line = (r: string[]) => `| ${r.map((c) => c.replace(/\|/g, "\\|")).join(" | ")} |`;
  return [line(cells[0]), `| ${cells[0].map((_, j) => (j < 3 ? "---" : "---:")).join(" | ")} |`, ...cells.slice(1).map(line)].join("\n");
}

export interface CompareDoc {
  title: string;
  /** The command that made the comparison. */
  command: string;
  /** Prose lines: what was held equal, how seeds vary, how consistency is defined. */
  notes: readonly string[];
  /** Per row: what differs in its compute from SR. */
  rowNotes: Readonly<Record<string, string>>;
  rows: readonly CompareRow[];
  runs: readonly CompareRunResult[];
}

/** compare.md: the notes, both tables and the runs with their status. */
export function compareMarkdown(d: CompareDoc): string {
  const out = [`# ${d.title}`, "", "```sh", d.command, "```", "", ...d.notes.map((n) => `- ${n}`), ""];
  out.push("## Held-out quality and pairs (mean ± std over seeds)", "", markdownTable(d.rows, QUALITY_METRICS, 0), "");
  out.push("## Compute per iteration (measured)", "", markdownTable(d.rows, COMPUTE_METRICS, 1), "");
  out.push("## What differs per row", "", ...d.rows.map((r) => `- **${r.row}**: ${d.rowNotes[r.row] ?? "—"}`), "");
  out.push("## Runs", "", "| row | seed | status | seconds | directory |", "| --- | ---: | --- | ---: | --- |");
  for (const r of d.runs) {
    const status = r.status === "failed" ? `failed: ${(r.error ?? "").replace(/\s+/g, " ").replace(/\|/g, "\\|")}` : r.status;
    out.push(`| ${r.row} | ${r.seed} | ${status} | ${r.seconds.toFixed(0)} | ${r.dir} |`);
  }
  return `${out.join("\n")}\n`;
}

const CHART_SPECS: readonly ChartSpec[] = [
  { metric: "eval/gold", title: "Gold score on held-out prompts (0–5)", domain: [0, 5] },
  { metric: "eval/exact", title: "Exact match (all 5 criteria met)", domain: [0, 1] },
  { metric: "eval/judge_pairwise", title: "Judge pairwise accuracy vs gold", domain: [0, 1] },
  { metric: "pairs/gold_gap", title: "Chosen − rejected gold gap", zero: true },
  { metric: "compare/consistency", title: "Ranking consistency (reward vs likelihood)", domain: [0, 1] },
  { metric: "compute/samples", title: "Generated samples per iteration", zero: true },
  { metric: "compute/judge_calls", title: "Judge calls per iteration", zero: true },
  { metric: "compute/dpo_steps", title: "DPO steps per iteration", zero: true },
  { metric: "compute/seconds", title: "Seconds per iteration (evaluation excluded)", zero: true },
];

/** One series per row: the means as the line, `<metric>:std` as its error bars (html.ts draws them). */
function compareSeries(rows: readonly CompareRow[]): Series[] {
  return rows.map((r, i) => ({
    label: `${r.row} (${r.ok} seed${r.ok === 1 ? "" : "s"})`,
    color: PALETTE[i % PALETTE.length],
    rows: r.iterations.map((it, t) => {
      const row: Record<string, unknown> = { iteration: t };
      for (const [k, s] of Object.entries(it)) {
        row[k] = s.mean;
        row[`${k}:std`] = s.std;
      }
      return row;
    }),
  }));
}

/** compare.html: self-contained (inline CSS and SVG, a CSP that forbids every request). */
export function compareHtml(d: CompareDoc): string {
  const series = compareSeries(d.rows);
  const its = series.flatMap((s) => s.rows.map((r) => r.iteration as number));
  const xRange: [number, number] = its.length ? [Math.min(...its), Math.max(...its)] : [0, 1];
  const charts = CHART_SPECS.map((spec) => renderChart(spec, series, xRange)).filter((c): c is string => c !== null);
  const table = (metrics: readonly { key: string; title: string }[], from: number) => {
    const cells = tableCells(d.rows, metrics, from);
    const head = cells[0].map((c) => `<th scope="col">${escapeHtml(c)}</th>`).join("");
    const body = cells
      .slice(1)
      .map(
        (r) =>
          `<tr>${r.map((c, j) => (j < 3 ? `<th scope="row">${escapeHtml(c)}</th>` : `<td class="n">${escapeHtml(c)}</td>`)).join("")}</tr>`,
      )
      .join("");
    return `<div class="scroll"><table class="compare"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table></div>`;
  };
  const out: string[] = [];
  out.push("<!doctype html>");
  out.push('<html lang="en"><head><meta charset="utf-8">');
  out.push(`<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`);
  out.push('<meta name="viewport" content="width=device-width, initial-scale=1">');
  out.push('<meta name="generator" content="srlm compare">');
  out.push(`<title>${escapeHtml(d.title)}</title><style>${CSS}</style></head><body>`);
  out.push(`<header><h1>${escapeHtml(d.title)}</h1><p class="sub"><code>${escapeHtml(d.command)}</code></p>`);
  out.push(`<ul>${d.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join("")}</ul></header>`);
  out.push('<section><h2 id="charts">Curves (mean over seeds; bars: ± 1 std)</h2>');
  out.push(
    charts.length
      ? `<div class="charts">${charts.map((c) => `<figure>${c}</figure>`).join("\n")}</div>`
      : '<p class="empty">No finished runs yet.</p>',
  );
  out.push("</section>");
  out.push(`<section><h2 id="quality">Held-out quality and pairs</h2>${table(QUALITY_METRICS, 0)}</section>`);
  out.push(`<section><h2 id="compute">Compute per iteration (measured)</h2>${table(COMPUTE_METRICS, 1)}</section>`);
  out.push(
    `<section><h2 id="rows">What differs per row</h2><ul>${d.rows.map((r) => `<li><b>${escapeHtml(r.row)}</b>: ${escapeHtml(d.rowNotes[r.row] ?? "—")}</li>`).join("")}</ul></section>`,
  );
  const runRows = d.runs
    .map(
      (r) =>
        `<tr><th scope="row">${escapeHtml(r.row)}</th><td class="n">${r.seed}</td><td${r.status === "failed" ? ' class="bad"' : ""}>${escapeHtml(r.status === "failed" ? `failed: ${r.error ?? ""}` : r.status)}</td><td class="n">${formatNumber(Math.round(r.seconds))}</td><td>${escapeHtml(r.dir)}</td></tr>`,
    )
    .join("");
  out.push(
    `<section><h2 id="runs">Runs</h2><table><thead><tr><th>row</th><th>seed</th><th>status</th><th>seconds</th><th>directory</th></tr></thead><tbody>${runRows}</tbody></table></section>`,
  );
  out.push("</body></html>\n");
  return out.join("\n");
}
