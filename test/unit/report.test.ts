// `srlm report`: the HTML holds one chart per present metric with one point per present value,
// escapes every text, loads nothing from the network, and loadRun names file and line of bad input.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { reportCommand } from "../../src/cli/report.js";
import { formatNumber, loadRun, type ReportRun, renderReport, writeReport } from "../../src/report/html.js";

const runA: ReportRun = {
  name: "sr-judge",
  config: 'model: tiny\nnote: "<script>alert(1)</script>"\n',
  manifest: { srlm_version: "0.1.0", seed: 1, git_sha: null, created: "2025-01-01T00:00:00Z", command: "srlm run --preset sandbox" },
  metrics: [
    {
      iteration: 0,
      model: "M1",
      method: "sr",
      mode: "judge",
      "eval/gold": 2.5,
      "eval/exact": 0.1,
      "eval/judge_pairwise": 0.6,
      "eval/length": 120,
    },
    {
      iteration: 1,
      model: "M2",
      method: "sr",
      mode: "judge",
      "eval/gold": 3.1234,
      "eval/exact": Number.NaN,
      "eval/judge_pairwise": 0.65,
      "eval/length": 131.5,
      "pairs/count": 812,
      "pairs/gold_gap": 0.8,
      "rewards/margins": 0.25,
    },
    {
      iteration: 2,
      model: "M3",
      method: "sr",
      mode: "judge",
      "eval/gold": 3.4,
      "eval/exact": 0.3,
      "eval/judge_pairwise": null,
      "eval/length": 140,
      "pairs/count": 700,
      "pairs/gold_gap": 0.7,
      "rewards/margins": 0.5,
    },
  ],
};

const runB: ReportRun = {
  name: "oracle <b>",
  metrics: [
    { iteration: 0, model: "M1", mode: "oracle", "eval/gold": 2.5, "eval/likelihood_pairwise": 0.55 },
    { iteration: 1, model: "M2", mode: "oracle", "eval/gold": 3.6, "eval/likelihood_pairwise": 0.58, "pairs/count": 900 },
  ],
};

/** Each `<svg class="chart" …>…</svg>` by its data-metric. */
function charts(html: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of html.matchAll(/<svg class="chart" data-metric="([^"]+)"[\s\S]*?<\/svg>/g)) out.set(m[1], m[0]);
  return out;
}

function points(svg: string, metric: string, series?: string): number {
  let n = 0;
  for (const m of svg.matchAll(/<circle class="point" data-series="([^"]*)" data-metric="([^"]*)"/g)) {
    if (m[2] === metric && (series === undefined || m[1] === series)) n++;
  }
  return n;
}

test("renderReport: one chart per present metric, one point per present value", () => {
  const html = renderReport([runA, runB], { title: "A vs B" });
  const c = charts(html);
  assert.deepEqual(
    [...c.keys()].sort(),
    ["eval/exact", "eval/gold", "eval/judge_pairwise", "eval/length", "pairs/count", "pairs/gold_gap", "rewards/margins"],
    "charts for exactly the metrics present in some run",
  );
  const gold = c.get("eval/gold")!;
  assert.equal(points(gold, "eval/gold", "sr-judge"), 3, "run A has 3 gold points");
  assert.equal(points(gold, "eval/gold", "oracle &lt;b&gt;"), 2, "run B has 2 gold points (escaped name)");
  assert.equal((gold.match(/class="series/g) ?? []).length, 2, "two gold series");
  assert.equal(points(c.get("eval/exact")!, "eval/exact"), 2, "NaN exact is a gap, not a point");
  const exactPath = c.get("eval/exact")!.match(/<path class="series"[^>]* d="([^"]*)"/)![1];
  assert.equal((exactPath.match(/M/g) ?? []).length, 2, `NaN splits the exact line into two pieces: ${exactPath}`);
  assert.ok(!/NaN/.test(exactPath), "no NaN coordinates in a path");
  const pw = c.get("eval/judge_pairwise")!;
  assert.equal(points(pw, "eval/judge_pairwise"), 2, "null judge pairwise is a gap");
  assert.equal(points(pw, "eval/likelihood_pairwise"), 2, "likelihood points of run B");
  assert.match(pw, /<path class="series dashed"[^>]*data-metric="eval\/likelihood_pairwise"/, "likelihood drawn dashed");
  assert.equal(points(c.get("pairs/count")!, "pairs/count"), 3, "pairs: 2 in A (none at iteration 0) + 1 in B");
  assert.equal(points(c.get("rewards/margins")!, "rewards/margins"), 2, "margins only in A");
  assert.ok(!/\bNaN\b/.test([...c.values()].join("")), "no NaN anywhere in the SVG");
  const colours = new Set([...gold.matchAll(/<path class="series"[^>]* stroke="(#[0-9a-f]{6})"/g)].map((m) => m[1]));
  assert.equal(colours.size, 2, "the two runs have distinct colours");
  assert.match(gold, /class="legend-item"[\s\S]*sr-judge/, "chart legend names run A");
  for (const [metric, svg] of c) {
    assert.match(svg, /class="axis"/, `${metric}: has axes`);
    assert.match(svg, /class="tick"/, `${metric}: has tick labels`);
    assert.match(svg, /iteration/, `${metric}: x axis label`);
  }
});

test("renderReport: escapes text and references nothing on the network", () => {
  const html = renderReport([runA, runB]);
  assert.ok(!html.includes("<script>alert(1)</script>"), "config <script> is escaped");
  assert.ok(html.includes("&lt;script&gt;alert(1)&lt;/script&gt;"), "config shown verbatim, escaped");
  assert.ok(!html.includes("oracle <b>"), "run name escaped");
  assert.ok(!/<script/i.test(html), "no script elements at all");
  assert.ok(!/\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?\/\//i.test(html), "no src=/href= to the network");
  assert.ok(!/https?:\/\//i.test(html), "no http(s):// anywhere");
  assert.ok(!/@import|url\(/i.test(html), "no CSS imports or url()");
  assert.match(html, /<td>srlm run --preset sandbox<\/td>/, "manifest field shown");
  assert.match(html, /<th scope="row">git_sha<\/th><td>—<\/td>/, "null manifest field shown as —");
  assert.match(html, /<td class="n">3\.12<\/td>/, "table shows 3 significant digits");
  assert.match(html, /<td class="n bad">NaN<\/td>/, "table shows NaN");
  assert.match(html, /<th scope="row">pairs\/count<\/th><td class="n missing">—<\/td><td class="n">812<\/td>/, "missing value as —");
  assert.match(html, /<title>srlm report — sr-judge, oracle &lt;b&gt;<\/title>/, "default title names the runs");
});

test("renderReport: tolerates empty, odd and metric-less runs", () => {
  const html = renderReport([{ name: "empty", metrics: [] }]);
  assert.equal(charts(html).size, 0, "no charts without metrics");
  assert.match(html, /No plottable metrics yet/, "says so");
  const one = renderReport([{ name: "one", metrics: [{ iteration: 0, "eval/gold": 3 }] }]);
  assert.equal(points(charts(one).get("eval/gold")!, "eval/gold"), 1, "single point plotted");
  const mixed = renderReport([
    {
      name: "mix",
      metrics: [
        { iteration: 0, mode: "judge", "eval/gold": 1 },
        { iteration: 0, mode: "control", "eval/gold": 1 },
        { iteration: 1, mode: "judge", "eval/gold": 2 },
        { iteration: 1, mode: "judge", "eval/gold": 2.5 }, // a resumed run's rewrite: the last wins
        { iteration: 1, mode: "control", "eval/gold": 1.5, weird: { a: 1 }, note: "<i>" },
      ],
    },
  ]);
  const g = charts(mixed).get("eval/gold")!;
  assert.equal(points(g, "eval/gold", "mix (judge)"), 2, "one series per mode, one point per iteration");
  assert.equal(points(g, "eval/gold", "mix (control)"), 2, "control series");
  assert.match(mixed, /&lt;i&gt;/, "string metric escaped in table");
});

test("formatNumber: 3 significant digits, integers exact, gaps spelled", () => {
  const cases: [unknown, string][] = [
    [3.4567, "3.46"],
    [0.012345, "0.0123"],
    [812, "812"],
    [123456, "123456"],
    [1234.5, "1230"],
    [-0.5, "-0.5"],
    [null, "—"],
    [undefined, "—"],
    [Number.NaN, "NaN"],
  ];
  for (const [v, s] of cases) assert.equal(formatNumber(v), s, `formatNumber(${String(v)})`);
});

test("loadRun / writeReport / reportCommand: files, errors naming file and line", async () => {
  const dir = await mkdtemp(join(tmpdir(), "srlm-report-"));
  try {
    const run = join(dir, "run1");
    await mkdir(run);
    await assert.rejects(loadRun(run), (e: Error) => e.message.includes(join(run, "metrics.jsonl")), "missing metrics.jsonl is named");

    await writeFile(join(run, "metrics.jsonl"), '{"iteration":0,"eval/gold":2}\n\n{"iteration":1,"eval/gold":\n');
    await assert.rejects(
      loadRun(run),
      (e: Error) => e.message.startsWith(`${join(run, "metrics.jsonl")}:3:`) && /not valid JSON/.test(e.message),
      "bad line named by file:line",
    );
    await writeFile(join(run, "metrics.jsonl"), '{"iteration":0}\n[1,2]\n');
    await assert.rejects(loadRun(run), /metrics\.jsonl:2: expected a JSON object/, "non-object line named");
    await writeFile(join(run, "metrics.jsonl"), '{"model":"M1"}\n');
    await assert.rejects(loadRun(run), /metrics\.jsonl:1: no numeric "iteration"/, "missing iteration named");

    await writeFile(
      join(run, "metrics.jsonl"),
      '{"iteration":0,"eval/gold":2,"eval/exact":NaN}\n{"iteration":1,"eval/gold":3,"note":"NaN"}\n',
    );
    const r = await loadRun(run);
    assert.equal(r.name, "run1", "name = directory name");
    assert.equal(r.metrics.length, 2, "two records");
    assert.equal(r.metrics[0]["eval/exact"], null, "bare NaN (Python json) read as null");
    assert.equal(r.metrics[1].note, "NaN", "the string NaN untouched");
    assert.equal(r.config, undefined, "config optional");
    assert.equal(r.manifest, undefined, "manifest optional");

    await writeFile(join(run, "manifest.json"), "{oops");
    await assert.rejects(loadRun(run), (e: Error) => e.message.includes(join(run, "manifest.json")), "bad manifest named");
    await writeFile(join(run, "manifest.json"), '{"seed": 7}');
    await writeFile(join(run, "config.resolved.yaml"), "seed: 7\n");
    const out = join(dir, "out.html");
    await writeReport([run], out);
    const html = await readFile(out, "utf8");
    assert.match(html, /data-metric="eval\/gold"/, "written report has the gold chart");
    assert.match(html, /<pre class="config">seed: 7\n<\/pre>/, "config shown");

    const logs: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((s: string) => {
      logs.push(String(s));
      return true;
    }) as typeof process.stdout.write;
    try {
      await reportCommand([run]);
    } finally {
      process.stdout.write = write;
    }
    assert.equal(logs.join("").trim(), join(run, "report.html"), "prints the default output path");
    assert.match(await readFile(join(run, "report.html"), "utf8"), /<svg class="chart"/, "default output written");
    await assert.rejects(reportCommand([]), /at least one run directory/, "no run dir: usage error");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
