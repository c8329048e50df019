/**
 * `srlm report`: one self-contained HTML page for one or more run directories — inline CSS, inline
 * SVG line charts (x = iteration, one series per run), a table of every metric per iteration, the
 * manifest and the resolved config. No scripts, fonts, images or styles from anywhere else: the
 * page opens from a file, offline, and a Content-Security-Policy forbids it any network request.
 *
 * Metric values may be missing, null or NaN: such a point is a gap in its line, "—"/"NaN" in the table.
 */
import { readFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { writeFileAtomic } from "../io/atomic.js";

export interface ReportRun {
  /** Series name (the run directory's name). */
  name: string;
  /** config.resolved.yaml, shown verbatim. */
  config?: string;
  /** manifest.json. */
  manifest?: Record<string, unknown>;
  /** metrics.jsonl: one record per evaluated model, `iteration` 0 = M1. */
  metrics: Record<string, unknown>[];
}

export interface ReportOptions {
  title?: string;
}

/** One chart: its main metric, an optional dashed companion, and how its y axis starts. */
export interface ChartSpec {
  metric: string;
  title: string;
  /** Companion metric drawn dashed in the same colour (e.g. likelihood next to judge accuracy). */
  extra?: { metric: string; label: string };
  mainLabel?: string;
  /** The y range always shown (widened when data fall outside). */
  domain?: [number, number];
  /** Keep 0 inside the y range. */
  zero?: boolean;
}

export const CHARTS: readonly ChartSpec[] = [
  { metric: "eval/gold", title: "Gold score on held-out prompts (0–5)", domain: [0, 5] },
  { metric: "eval/exact", title: "Exact match (all 5 criteria met)", domain: [0, 1] },
  {
    metric: "eval/judge_pairwise",
    title: "Judge pairwise accuracy vs gold",
    mainLabel: "judge",
    extra: { metric: "eval/likelihood_pairwise", label: "likelihood" },
    domain: [0, 1],
  },
  { metric: "pairs/count", title: "Preference pairs", zero: true },
  { metric: "pairs/gold_gap", title: "Chosen − rejected gold gap", zero: true },
  { metric: "rewards/margins", title: "DPO reward margin", zero: true },
  { metric: "eval/length", title: "Mean answer length (chars)", zero: true },
];

/** Known metrics, in table order; anything else follows in order of first appearance. */
const KNOWN_ORDER = [
  "eval/gold",
  "eval/exact",
  "eval/judge_pairwise",
  "eval/likelihood_pairwise",
  "eval/judge_parse_failures",
  "eval/length",
  "eval/distinct",
  "pairs/count",
  "pairs/ties_dropped",
  "pairs/gold_gap",
  "pairs/truly_better",
  "pairs/truly_worse",
  "pairs/equal",
  "judge/pairwise_candidates",
  "judge/parse_failures",
  "rewards/chosen",
  "rewards/rejected",
  "rewards/margins",
  "rewards/accuracies",
  "logps/chosen",
  "logps/rejected",
  "time/generate_s",
  "time/judge_s",
  "time/train_s",
  "time/eval_s",
];
const LABEL_KEYS = new Set(["iteration", "model", "method", "mode"]);

/** Tableau 10: distinct, colour-blind friendlier than a rainbow. */
export const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] as string);
}

/** 3 significant digits; integers (counts) stay exact; "—" for missing/null, "NaN"/"∞" spelled out. */
export function formatNumber(v: unknown): string {
  if (v === undefined || v === null) return "—";
  if (typeof v !== "number") return String(v);
  if (Number.isNaN(v)) return "NaN";
  if (!Number.isFinite(v)) return v > 0 ? "∞" : "−∞";
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
  return String(Number(v.toPrecision(3)));
}

function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/** One line on the charts: a run, or a run's method/mode when one run file mixes several. */
export interface Series {
  label: string;
  color: string;
  /** Sorted by iteration, one row per iteration (the last one wins, as after a resume). */
  rows: Record<string, unknown>[];
}

function buildSeries(runs: ReportRun[]): Series[] {
  const out: Series[] = [];
  for (const run of runs) {
    const groups = new Map<string, Map<number, Record<string, unknown>>>();
    const tags = new Map<string, string>();
    for (const row of run.metrics) {
      const it = num(row.iteration);
      if (it === null) continue;
      const method = typeof row.method === "string" ? row.method : "";
      const mode = typeof row.mode === "string" ? row.mode : "";
      const key = `${method}\u0000${mode}`;
      if (!groups.has(key)) {
        groups.set(key, new Map());
        tags.set(key, [method, mode].filter(Boolean).join("/"));
      }
      groups.get(key)!.set(it, row);
    }
    for (const [key, byIt] of groups) {
      const label = groups.size > 1 ? `${run.name} (${tags.get(key) || "?"})` : run.name;
      const rows = [...byIt.entries()].sort((a, b) => a[0] - b[0]).map(([, r]) => r);
      out.push({ label, color: PALETTE[out.length % PALETTE.length], rows });
    }
  }
  return out;
}

/** ~`count` round tick values covering [lo, hi], and the decimals that print them exactly. */
function niceTicks(lo: number, hi: number, count = 5): { ticks: number[]; decimals: number } {
  const span = hi - lo;
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10) * mag;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9) + (norm > 2 && norm <= 2.5 ? 1 : 0));
  return { ticks, decimals };
}

function yDomain(values: number[], spec: ChartSpec): [number, number] {
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (spec.domain) {
    lo = Math.min(lo, spec.domain[0]);
    hi = Math.max(hi, spec.domain[1]);
  }
  if (spec.zero) {
    lo = Math.min(lo, 0);
    hi = Math.max(hi, 0);
  }
  if (hi - lo < 1e-12) {
    const pad = Math.abs(hi) > 0 ? Math.abs(hi) * 0.1 : 1;
    lo -= pad;
    hi += pad;
  }
  // Round outwards to tick steps so the frame ends on a labelled value.
  const { ticks } = niceTicks(lo, hi);
  const step = ticks.length > 1 ? ticks[1] - ticks[0] : hi - lo;
  return [Math.floor(lo / step + 1e-9) * step, Math.ceil(hi / step - 1e-9) * step];
}

const W = 440;
const M = { left: 54, right: 16, top: 34, bottom: 44 };
const PLOT_H = 180;
const LEGEND_ROW = 16;

interface Line {
  series: Series;
  metric: string;
  label: string;
  dashed: boolean;
  /** `std`: the spread at the point (row key `<metric>:std`, written by srlm compare), drawn as an error bar. */
  points: { it: number; v: number | null; std: number | null }[];
}

export function renderChart(spec: ChartSpec, series: Series[], xRange: [number, number]): string | null {
  const lines: Line[] = [];
  const metrics = spec.extra ? [spec.metric, spec.extra.metric] : [spec.metric];
  for (const s of series) {
    for (const metric of metrics) {
      const points = s.rows.map((r) => ({ it: r.iteration as number, v: num(r[metric]), std: num(r[`${metric}:std`]) }));
      if (!points.some((p) => p.v !== null)) continue;
      const dashed = metric !== spec.metric;
      const what = dashed ? spec.extra!.label : spec.mainLabel;
      lines.push({ series: s, metric, label: what ? `${s.label} — ${what}` : s.label, dashed, points });
    }
  }
  if (!lines.length) return null;

  const values = lines.flatMap((l) => l.points.flatMap((p) => (p.v === null ? [] : p.std === null ? [p.v] : [p.v - p.std, p.v + p.std])));
  const [y0, y1] = yDomain(values, spec);
  let [x0, x1] = xRange;
  if (x1 - x0 < 1) {
    x0 -= 0.5;
    x1 += 0.5;
  }
  const plotW = W - M.left - M.right;
  const H = M.top + PLOT_H + M.bottom + lines.length * LEGEND_ROW + 6;
  const sx = (x: number) => M.left + ((x - x0) / (x1 - x0)) * plotW;
  const sy = (y: number) => M.top + PLOT_H - ((y - y0) / (y1 - y0)) * PLOT_H;
  const f = (v: number) => v.toFixed(1);

  const parts: string[] = [];
  parts.push(
    `<svg class="chart" data-metric="${escapeHtml(spec.metric)}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeHtml(spec.title)}">`,
  );
  parts.push(`<title>${escapeHtml(spec.title)}</title>`);
  parts.push(`<text class="ctitle" x="${M.left}" y="16">${escapeHtml(spec.title)}</text>`);
  parts.push(`<text class="cmetric" x="${M.left}" y="28">${escapeHtml([...new Set(lines.map((l) => l.metric))].join(", "))}</text>`);

  // y grid, ticks and labels
  const yt = niceTicks(y0, y1);
  for (const v of yt.ticks) {
    const y = f(sy(v));
    parts.push(`<line class="grid" x1="${M.left}" x2="${M.left + plotW}" y1="${y}" y2="${y}"/>`);
    parts.push(
      `<text class="tick" x="${M.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${v.toFixed(yt.decimals)}</text>`,
    );
  }
  if (y0 < 0 && y1 > 0) parts.push(`<line class="zero" x1="${M.left}" x2="${M.left + plotW}" y1="${f(sy(0))}" y2="${f(sy(0))}"/>`);
  // x ticks: whole iterations
  const xStep = Math.max(1, Math.ceil((xRange[1] - xRange[0]) / 10));
  for (let it = Math.ceil(xRange[0]); it <= xRange[1]; it += xStep) {
    const x = f(sx(it));
    parts.push(`<line class="tickmark" x1="${x}" x2="${x}" y1="${M.top + PLOT_H}" y2="${M.top + PLOT_H + 5}"/>`);
    parts.push(`<text class="tick" x="${x}" y="${M.top + PLOT_H + 17}" text-anchor="middle">${it}</text>`);
  }
  // axes
  parts.push(`<line class="axis" x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${M.top + PLOT_H}"/>`);
  parts.push(`<line class="axis" x1="${M.left}" x2="${M.left + plotW}" y1="${M.top + PLOT_H}" y2="${M.top + PLOT_H}"/>`);
  parts.push(
    `<text class="alabel" x="${M.left + plotW / 2}" y="${M.top + PLOT_H + 34}" text-anchor="middle">iteration (0 = M1, the SFT model)</text>`,
  );

  // series: one path each, broken at missing values; a circle per present value
  // Earlier series are drawn wider and first, so a later series on top of one leaves it visible as a rim.
  const under = (l: Line) => Math.min(3, series.length - 1 - series.indexOf(l.series));
  for (const l of lines) {
    const width = 2 + 1.5 * under(l);
    const radius = 3.5 + 1.2 * under(l);
    let d = "";
    let penDown = false;
    for (const p of l.points) {
      if (p.v === null) {
        penDown = false;
        continue;
      }
      d += `${penDown ? "L" : "M"}${f(sx(p.it))} ${f(sy(p.v))} `;
      penDown = true;
    }
    const dash = l.dashed ? ` stroke-dasharray="6 4"` : "";
    parts.push(
      `<path class="series${l.dashed ? " dashed" : ""}" data-series="${escapeHtml(l.series.label)}" data-metric="${escapeHtml(l.metric)}" d="${d.trim()}" stroke="${l.series.color}" stroke-width="${width}"${dash}/>`,
    );
    for (const p of l.points) {
      if (p.v === null || p.std === null) continue;
      // ± std over seeds: a vertical bar with caps, under the point.
      const [x, lo, hi] = [sx(p.it), sy(p.v - p.std), sy(p.v + p.std)];
      parts.push(
        `<path class="errbar" data-series="${escapeHtml(l.series.label)}" data-metric="${escapeHtml(l.metric)}" d="M${f(x)} ${f(lo)} L${f(x)} ${f(hi)} M${f(x - 4)} ${f(lo)} L${f(x + 4)} ${f(lo)} M${f(x - 4)} ${f(hi)} L${f(x + 4)} ${f(hi)}" stroke="${l.series.color}"/>`,
      );
    }
    for (const p of l.points) {
      if (p.v === null) continue;
      const fill = l.dashed ? "#fff" : l.series.color;
      parts.push(
        `<circle class="point" data-series="${escapeHtml(l.series.label)}" data-metric="${escapeHtml(l.metric)}" data-iteration="${p.it}" cx="${f(sx(p.it))}" cy="${f(sy(p.v))}" r="${radius}" fill="${fill}" stroke="${l.series.color}"><title>${escapeHtml(`${l.label} · iteration ${p.it}: ${formatNumber(p.v)}${p.std !== null ? ` ± ${formatNumber(p.std)}` : ""}`)}</title></circle>`,
      );
    }
  }

  // legend
  const ly = M.top + PLOT_H + M.bottom + 4;
  lines.forEach((l, i) => {
    const y = ly + i * LEGEND_ROW;
    const dash = l.dashed ? ` stroke-dasharray="6 4"` : "";
    parts.push(`<g class="legend-item">`);
    parts.push(`<line x1="${M.left}" x2="${M.left + 24}" y1="${y}" y2="${y}" stroke="${l.series.color}" stroke-width="2"${dash}/>`);
    parts.push(`<circle cx="${M.left + 12}" cy="${y}" r="3" fill="${l.dashed ? "#fff" : l.series.color}" stroke="${l.series.color}"/>`);
    parts.push(`<text class="ltext" x="${M.left + 30}" y="${y}" dominant-baseline="middle">${escapeHtml(l.label)}</text>`);
    parts.push(`</g>`);
  });
  parts.push("</svg>");
  return parts.join("\n");
}

function cell(v: unknown): string {
  if (v === undefined || v === null || typeof v === "number") return formatNumber(v);
  if (typeof v === "string") return v;
  return JSON.stringify(v);
}

function metricsTable(s: Series): string {
  const keys: string[] = [];
  const seen = new Set<string>();
  const present = new Set(s.rows.flatMap((r) => Object.keys(r)));
  const add = (k: string) => {
    if (seen.has(k) || LABEL_KEYS.has(k)) return;
    keys.push(k);
    seen.add(k);
  };
  for (const k of KNOWN_ORDER) if (present.has(k)) add(k);
  for (const r of s.rows) for (const k of Object.keys(r)) add(k);
  const head = s.rows.map((r) => {
    const model = typeof r.model === "string" ? ` · ${escapeHtml(r.model)}` : "";
    return `<th scope="col">it ${escapeHtml(formatNumber(r.iteration))}${model}</th>`;
  });
  const body: string[] = [];
  for (const k of ["method", "mode"]) {
    if (s.rows.some((r) => r[k] !== undefined)) {
      body.push(`<tr class="label"><th scope="row">${k}</th>${s.rows.map((r) => `<td>${escapeHtml(cell(r[k]))}</td>`).join("")}</tr>`);
    }
  }
  for (const k of keys) {
    const tds = s.rows.map((r) => {
      const v = r[k];
      const cls = typeof v === "number" ? (Number.isFinite(v) ? "n" : "n bad") : v === undefined || v === null ? "n missing" : "";
      return `<td${cls ? ` class="${cls}"` : ""}>${escapeHtml(cell(v))}</td>`;
    });
    body.push(`<tr><th scope="row">${escapeHtml(k)}</th>${tds.join("")}</tr>`);
  }
  return `<div class="scroll"><table class="metrics" data-series="${escapeHtml(s.label)}"><thead><tr><th scope="col">metric</th>${head.join("")}</tr></thead><tbody>${body.join("")}</tbody></table></div>`;
}

function manifestTable(m: Record<string, unknown>): string {
  const rows = Object.entries(m).map(([k, v]) => {
    const text =
      v === undefined || v === null ? "—" : typeof v === "string" ? v : typeof v === "number" ? formatNumber(v) : JSON.stringify(v);
    return `<tr><th scope="row">${escapeHtml(k)}</th><td>${escapeHtml(text)}</td></tr>`;
  });
  return `<table class="manifest"><tbody>${rows.join("")}</tbody></table>`;
}

export const CSS = `
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #222; background: #fff; margin: 0; padding: 20px 28px 40px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 10px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.sub { color: #666; margin: 0 0 10px; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 18px; margin: 8px 0 0; padding: 0; list-style: none; }
.legend li { display: flex; align-items: center; gap: 6px; }
.count { color: #666; }
.swatch { display: inline-block; width: 22px; height: 4px; border-radius: 2px; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(440px, 1fr)); gap: 14px; }
figure { margin: 0; padding: 6px; border: 1px solid #e4e4e4; border-radius: 6px; background: #fcfcfc; }
svg.chart { display: block; width: 100%; height: auto; max-width: 560px; overflow: visible; }
svg.chart text { font-family: inherit; }
.ctitle { font-size: 13px; font-weight: 600; fill: #222; }
.cmetric { font-size: 10px; fill: #888; font-family: ui-monospace, Menlo, Consolas, monospace; }
.tick { font-size: 10px; fill: #555; }
.alabel { font-size: 11px; fill: #555; }
.ltext { font-size: 11px; fill: #333; }
.grid { stroke: #eee; stroke-width: 1; }
.zero { stroke: #999; stroke-width: 1; stroke-dasharray: 2 2; }
.axis, .tickmark { stroke: #444; stroke-width: 1; }
path.errbar { fill: none; stroke-width: 1.5; opacity: 0.7; }
path.series { fill: none; stroke-linejoin: round; stroke-linecap: round; }
circle.point { stroke-width: 1.5; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 12.5px; }
th, td { padding: 3px 9px; border-bottom: 1px solid #eee; text-align: left; vertical-align: top; }
thead th { border-bottom: 2px solid #ccc; white-space: nowrap; }
tbody th { font-weight: normal; font-family: ui-monospace, Menlo, Consolas, monospace; color: #333; white-space: nowrap; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
td.missing { color: #bbb; }
td.bad { color: #c33; }
tr.label td { color: #555; }
table.manifest td { font-family: ui-monospace, Menlo, Consolas, monospace; word-break: break-all; }
pre.config { background: #f6f8fa; border: 1px solid #e4e4e4; border-radius: 6px; padding: 10px 12px; font: 12px/1.4 ui-monospace, Menlo, Consolas, monospace; overflow-x: auto; max-height: 520px; }
.empty { color: #888; font-style: italic; }
`;

/** The whole report as one HTML string; `runs` become the series of every chart. */
export function renderReport(runs: ReportRun[], opts: ReportOptions = {}): string {
  const title = opts.title ?? `srlm report — ${runs.map((r) => r.name).join(", ") || "no runs"}`;
  const series = buildSeries(runs);
  const its = series.flatMap((s) => s.rows.map((r) => r.iteration as number));
  const xRange: [number, number] = its.length ? [Math.min(...its), Math.max(...its)] : [0, 1];

  const charts = CHARTS.map((spec) => renderChart(spec, series, xRange)).filter((c): c is string => c !== null);
  const legend = series
    .map(
      (s) =>
        `<li><span class="swatch" style="background:${s.color}"></span>${escapeHtml(s.label)} <span class="count">(${s.rows.length} models)</span></li>`,
    )
    .join("");

  const out: string[] = [];
  out.push("<!doctype html>");
  out.push('<html lang="en"><head><meta charset="utf-8">');
  out.push(`<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`);
  out.push('<meta name="viewport" content="width=device-width, initial-scale=1">');
  out.push(`<meta name="generator" content="srlm report">`);
  out.push(`<title>${escapeHtml(title)}</title>`);
  out.push(`<style>${CSS}</style></head><body>`);
  out.push(`<header><h1>${escapeHtml(title)}</h1>`);
  out.push(
    `<p class="sub">${runs.length} run${runs.length === 1 ? "" : "s"}; x axis: iteration t (0 = M1 after SFT, t = the model after t self-rewarding iterations).</p>`,
  );
  if (series.length) out.push(`<ul class="legend">${legend}</ul>`);
  out.push("</header>");

  out.push('<section><h2 id="charts">Metrics by iteration</h2>');
  out.push(
    charts.length
      ? `<div class="charts">${charts.map((c) => `<figure>${c}</figure>`).join("\n")}</div>`
      : '<p class="empty">No plottable metrics yet.</p>',
  );
  out.push("</section>");

  out.push('<section><h2 id="tables">All metrics</h2>');
  if (!series.length) out.push('<p class="empty">No metrics yet.</p>');
  for (const s of series)
    out.push(`<h3><span class="swatch" style="background:${s.color}"></span> ${escapeHtml(s.label)}</h3>${metricsTable(s)}`);
  out.push("</section>");

  out.push('<section><h2 id="runs">Runs</h2>');
  for (const run of runs) {
    out.push(`<h3>${escapeHtml(run.name)}</h3>`);
    out.push(run.manifest && Object.keys(run.manifest).length ? manifestTable(run.manifest) : '<p class="empty">No manifest.json.</p>');
    out.push(
      run.config !== undefined
        ? `<details open><summary>config.resolved.yaml</summary><pre class="config">${escapeHtml(run.config)}</pre></details>`
        : '<p class="empty">No config.resolved.yaml.</p>',
    );
  }
  out.push("</section>");
  out.push("</body></html>\n");
  return out.join("\n");
}

/** Python's json writes bare NaN/Infinity; read them as null (a gap) rather than refusing the line. */
function parseLenient(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch (e) {
    const patched = line.replace(/"(?:[^"\\]|\\.)*"|-?\bInfinity\b|\bNaN\b/g, (m) => (m.startsWith('"') ? m : "null"));
    if (patched === line) throw e;
    return JSON.parse(patched);
  }
}

/** Parse metrics.jsonl text; errors name `source` and the 1-based line. */
export function parseMetrics(text: string, source: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    let value: unknown;
    try {
      value = parseLenient(line);
    } catch (e) {
      throw new Error(`${source}:${i + 1}: not valid JSON (${(e as Error).message})`);
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error(`${source}:${i + 1}: expected a JSON object`);
    const it = (value as Record<string, unknown>).iteration;
    if (typeof it !== "number" || !Number.isFinite(it)) throw new Error(`${source}:${i + 1}: no numeric "iteration"`);
    out.push(value as Record<string, unknown>);
  }
  return out;
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

/** Read a run directory: metrics.jsonl (required), manifest.json and config.resolved.yaml (optional). */
export async function loadRun(dir: string): Promise<ReportRun> {
  const metricsPath = join(dir, "metrics.jsonl");
  const text = await readOptional(metricsPath);
  if (text === undefined) throw new Error(`${metricsPath}: no such file (metrics.jsonl is required; is ${dir} a run directory?)`);
  const metrics = parseMetrics(text, metricsPath);
  const config = await readOptional(join(dir, "config.resolved.yaml"));
  const manifestPath = join(dir, "manifest.json");
  const manifestText = await readOptional(manifestPath);
  let manifest: Record<string, unknown> | undefined;
  if (manifestText !== undefined) {
    let value: unknown;
    try {
      value = JSON.parse(manifestText);
    } catch (e) {
      throw new Error(`${manifestPath}: not valid JSON (${(e as Error).message})`);
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error(`${manifestPath}: expected a JSON object`);
    manifest = value as Record<string, unknown>;
  }
  return { name: basename(resolve(dir)), config, manifest, metrics };
}

/** Load the runs, render them into one page and write it atomically to `out`. */
export async function writeReport(dirs: string[], out: string, opts: ReportOptions = {}): Promise<void> {
  if (!dirs.length) throw new Error("writeReport: no run directories");
  const runs = await Promise.all(dirs.map((d) => loadRun(d)));
  // Two runs named alike (runs/a/run, runs/b/run): tell them apart by the path given.
  const names = runs.map((r) => r.name);
  runs.forEach((r, i) => {
    if (names.indexOf(r.name) !== names.lastIndexOf(r.name)) r.name = dirs[i];
  });
  await writeFileAtomic(out, renderReport(runs, opts));
}
