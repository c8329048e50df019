// `srlm compare`'s pure parts: mean ± std over seeds with missing values and failed runs, the ranking
// consistency, the compute counted from an iteration's files, the plan of runs, and the rendered tables.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { parseCompareArgs, parseMethods } from "../../src/cli/compare.js";
import { iterationCompute, planCompare, rankingConsistency } from "../../src/loop/compare.js";
import { runPresets } from "../../src/loop/config.js";
import type { Candidate, Judgement } from "../../src/loop/records.js";
import {
  aggregateCompare,
  type CompareRunResult,
  compareHtml,
  compareMarkdown,
  compareText,
  formatStat,
  meanStd,
} from "../../src/report/compare.js";

const close = (a: number | null, b: number, what: string) => assert.ok(a !== null && Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);

test("meanStd: sample std (n − 1); null, NaN and missing values are left out and not counted", () => {
  const s = meanStd([1, 2, 3]);
  close(s.mean, 2, "mean");
  close(s.std, 1, "std");
  assert.equal(s.n, 3);
  assert.deepEqual(meanStd([null, Number.NaN, 4, undefined]), { mean: 4, std: null, n: 1 });
  assert.deepEqual(meanStd([]), { mean: null, std: null, n: 0 });
  assert.equal(formatStat({ mean: 4.25, std: 0.05, n: 3 }, 3), "4.250 ± 0.050");
  assert.equal(formatStat({ mean: 4.25, std: null, n: 1 }, 3), "4.250 (n=1)", "fewer values than runs says so");
  assert.equal(formatStat({ mean: 96, std: 0, n: 2 }, 2), "96 ± 0", "counts stay whole");
  assert.equal(formatStat({ mean: null, std: null, n: 0 }, 2), "n/a");
});

const run = (row: string, seed: number, status: CompareRunResult["status"], gold: (number | null)[]): CompareRunResult => ({
  row,
  seed,
  dir: `out/${row}-seed${seed}`,
  status,
  seconds: 1,
  iterations: gold.map((g, t) => ({ "eval/gold": g, ...(t > 0 ? { "pairs/gold_gap": t === 1 ? 0.5 * seed : null } : {}) })),
});

test("aggregateCompare: per row and iteration over the finished runs; a failed run counts in no mean", () => {
  const rows = aggregateCompare([
    run("sr", 1, "done", [4, 4.2]),
    run("sr", 2, "finished", [4.2, 4.6]),
    run("sr", 3, "failed", [9, 9]),
    run("spin", 1, "done", [4, null]),
    run("spin", 2, "done", [4.4]),
  ]);
  assert.deepEqual(
    rows.map((r) => [r.row, r.ok, r.failed, r.seeds]),
    [
      ["sr", 2, 1, [1, 2, 3]],
      ["spin", 2, 0, [1, 2]],
    ],
  );
  const sr = rows[0];
  close(sr.iterations[0]["eval/gold"].mean, 4.1, "sr it 0 mean (the failed run's 9 left out)");
  close(sr.iterations[1]["eval/gold"].mean, 4.4, "sr it 1 mean");
  close(sr.iterations[1]["eval/gold"].std, Math.sqrt(0.08), "sr it 1 std");
  close(sr.iterations[1]["pairs/gold_gap"].mean, 0.75, "gold gap mean");
  assert.equal(sr.iterations[0]["pairs/gold_gap"].n, 0, "no pairs at iteration 0");
  const spin = rows[1];
  assert.equal(spin.iterations.length, 2, "as many iterations as the longest finished run");
  assert.deepEqual(spin.iterations[1]["eval/gold"], { mean: null, std: null, n: 0 }, "null and missing → n/a");
  const text = compareText(rows);
  assert.match(text, /sr\s+2\/3 \(1 failed\)\s+1\s+4\.400 ± 0\.283/, "the text table marks the failed run");
  assert.match(text, /spin\s+2\/2\s+0\s+4\.200 ± 0\.283/);
  assert.match(text, /spin\s+2\/2\s+1\s+n\/a/);
});

test("compareMarkdown and compareHtml: the tables, the runs with their errors, self-contained HTML with error bars", () => {
  const results = [run("sr", 1, "done", [4, 4.2]), run("sr", 2, "done", [4.2, 4.6]), run("oracle", 1, "failed", [])];
  results[2].error = "boom | <b>";
  const doc = {
    title: "t",
    command: "srlm compare x.yaml",
    notes: ["held equal: all"],
    rowNotes: { sr: "the baseline" },
    rows: aggregateCompare(results),
    runs: results,
  };
  const md = compareMarkdown(doc);
  assert.match(md, /\| sr \| 2\/2 \| 1 \| 4\.400 ± 0\.283 \|/);
  assert.match(md, /\| oracle \| 1 \| failed: boom \\\| <b> \|/, "the error, its pipe escaped");
  assert.match(md, /\*\*sr\*\*: the baseline/);
  const html = compareHtml(doc);
  assert.match(html, /Content-Security-Policy" content="default-src 'none'/);
  assert.ok(!/<script|https?:\/\//i.test(html), "no scripts, no links out");
  assert.ok(html.includes("boom | &lt;b&gt;"), "errors escaped");
  assert.ok(/<path class="errbar" data-series="sr \(2 seeds\)" data-metric="eval\/gold"/.test(html), "± std error bars on the gold curve");
  assert.ok(/<svg class="chart" data-metric="pairs\/gold_gap"/.test(html), "a gold-gap chart");
});

const cand = (prompt_id: string, index: number, logprob: number, tokens: number, gold?: number): Candidate => ({
  prompt_id,
  index,
  text: `${prompt_id}${index}`,
  logprob,
  tokens,
  ...(gold !== undefined ? { gold } : {}),
});
const judge = (prompt_id: string, candidate: number, sample: number, score: number | null): Judgement => ({
  prompt_id,
  candidate,
  sample,
  text: "",
  score,
});

test("rankingConsistency: (τ_b + 1)/2 of reward vs length-normalised likelihood, mean over prompts where defined", () => {
  // a: rewards 1 < 2 < 3 and likelihoods −3 < −2 < −1 per token: C = 1. b: reversed: C = 0.
  // c: all rewards tied: τ_b undefined, left out. d: one candidate's judgements all failed, two left, concordant.
  const cands = [
    cand("a", 0, -6, 2),
    cand("a", 1, -4, 2),
    cand("a", 2, -2, 2),
    cand("b", 0, -1, 1),
    cand("b", 1, -2, 1),
    cand("c", 0, -1, 1),
    cand("c", 1, -2, 1),
    cand("d", 0, -1, 1),
    cand("d", 1, -3, 1),
    cand("d", 2, -2, 1),
  ];
  const js = [
    judge("a", 0, 0, 1),
    judge("a", 1, 0, 2),
    judge("a", 2, 0, 2),
    judge("a", 2, 1, 4), // mean 3
    judge("b", 0, 0, 1),
    judge("b", 1, 0, 5),
    judge("c", 0, 0, 3),
    judge("c", 1, 0, 3),
    judge("d", 0, 0, 5),
    judge("d", 1, 0, null),
    judge("d", 2, 0, 2),
  ];
  const r = rankingConsistency(cands, js, "model");
  assert.equal(r.prompts, 3, "a, b and d defined; c tied");
  close(r.consistency, (1 + 0 + 1) / 3, "mean C");
  // Gold ranks instead of the judge (the oracle).
  const g = rankingConsistency([cand("a", 0, -1, 1, 5), cand("a", 1, -2, 1, 1), cand("a", 2, -3, 1, 3)], [], "gold");
  close(g.consistency, (1 / 3 + 1) / 2, "gold vs likelihood: τ_b = 1/3");
  assert.ok(Number.isNaN(rankingConsistency(cands, [], "model").consistency), "no judgements: NaN, shown as n/a");
});

test("iterationCompute: samples, judge calls, log-prob rows, DPO steps and seconds from an iteration's files", async () => {
  const dir = await mkdtemp(join(tmpdir(), "srlm-compare-unit-"));
  try {
    const lines = (n: number, rec: (i: number) => unknown) => `${Array.from({ length: n }, (_, i) => JSON.stringify(rec(i))).join("\n")}\n`;
    await writeFile(
      join(dir, "candidates.jsonl"),
      lines(8, (i) => ({ i })),
    );
    await writeFile(
      join(dir, "future_candidates.jsonl"),
      lines(8, (i) => ({ i })),
    );
    await writeFile(
      join(dir, "judgements.jsonl"),
      lines(16, (i) => ({ i })),
    );
    await writeFile(
      join(dir, "prev_judgements.jsonl"),
      lines(16, (i) => ({ i })),
    );
    await writeFile(
      join(dir, "meta_judgements.jsonl"),
      lines(4, (i) => ({ text: i < 3 ? "better: 1" : null })),
    );
    await writeFile(
      join(dir, "candidate_logps.jsonl"),
      lines(8, () => ({ logps: { "1": -3, "2": -4 } })),
    );
    for (const [sub, steps] of [
      ["train", 5],
      ["future", 3],
    ] as const) {
      await mkdir(join(dir, sub, "final"), { recursive: true });
      await writeFile(join(dir, sub, "final", "trainer_state.json"), JSON.stringify({ global_step: steps }));
    }
    await writeFile(join(dir, "times.json"), JSON.stringify({ "time/generate_s": 1.5, "time/train_s": 2, "time/eval_s": 100 }));
    assert.deepEqual(await iterationCompute(dir), {
      "compute/samples": 16,
      "compute/judge_calls": 35,
      "compute/logp_rows": 16,
      "compute/dpo_steps": 8,
      "compute/seconds": 3.5,
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("planCompare: rows × seeds, method blocks to their own method, CREAM's loss, the M1 seed per seed or shared", () => {
  const raw = { ...structuredClone(runPresets["sandbox-tiny"]), cream: { consistency: "avg" }, temporal: { future_from: "union" } };
  const o = { methods: ["sr", "cream", "temporal"] as const, seeds: 2, out: "out", reference: true, m1: "per-seed" as const };
  const plan = planCompare(raw, { ...o, methods: [...o.methods] });
  assert.deepEqual(
    plan.map((p) => `${p.row}-${p.seed}`),
    ["sr-1", "cream-1", "temporal-1", "oracle-1", "control-1", "sr-2", "cream-2", "temporal-2", "oracle-2", "control-2"],
  );
  const by = (row: string, seed: number) => plan.find((p) => p.row === row && p.seed === seed)!;
  assert.equal(by("cream", 1).config.cream?.consistency, "avg");
  assert.equal(by("cream", 1).config.dpo.loss_type, "soft_label");
  assert.equal(by("temporal", 2).config.temporal?.future_from, "union");
  assert.equal(by("sr", 1).config.cream, undefined, "no cream block on sr");
  assert.equal(by("sr", 1).config.dpo.loss_type, "sigmoid");
  assert.equal(by("oracle", 2).config.judge.by, "gold");
  assert.equal(by("oracle", 2).config.method, "sr");
  assert.equal(by("control", 1).config.method, "control");
  assert.equal(by("sr", 2).config.seed, 2);
  assert.deepEqual(by("sr", 1).config.model.overrides, {}, "the first seed's runs are plain runs");
  assert.deepEqual(by("sr", 2).config.model.overrides, { seed: 2 }, "M1's seed moves with the seed");
  assert.equal(by("cream", 2).m1Dir, join("out", "m1-seed2"));
  assert.equal(by("cream", 2).dir, join("out", "cream-seed2"));
  const shared = planCompare(raw, { ...o, methods: ["sr"], reference: false, m1: "shared" });
  assert.deepEqual(
    shared.map((p) => [p.row, p.seed, p.m1Seed, p.config.model.overrides]),
    [
      ["sr", 1, 1, {}],
      ["sr", 2, 1, {}],
    ],
  );
  assert.throws(() => planCompare({ ...raw, dpo: { loss_type: "soft_label" } }, { ...o, methods: ["sr"] }), /soft_label" is CREAM's/);
});

test("--methods and the command line: unknown names list the known ones; reference rows are flags", () => {
  assert.deepEqual(parseMethods("sr, cream"), ["sr", "cream"]);
  assert.throws(() => parseMethods("sr,dpo"), /unknown method "dpo" \(known: sr, spin, cream, scir, meta, temporal\)/);
  assert.throws(() => parseMethods("control"), /reference row, added unless --no-reference/);
  assert.throws(() => parseMethods("sr,sr"), /twice/);
  const a = parseCompareArgs(["x.yaml", "--seeds", "2", "--no-reference", "--set", "iterations=1"]);
  assert.equal(a.file, "x.yaml");
  assert.deepEqual(a.set, ["iterations=1"]);
  assert.deepEqual(a.options, {
    methods: ["sr", "spin", "cream", "scir", "meta", "temporal"],
    seeds: 2,
    out: join("runs", "compare"),
    reference: false,
    m1: "per-seed",
  });
  assert.throws(() => parseCompareArgs(["--preset", "sandbox", "--seeds", "0"]), /--seeds must be a whole number/);
  assert.throws(() => parseCompareArgs(["--preset", "sandbox", "--m1", "one"]), /--m1 must be/);
  assert.throws(() => parseCompareArgs([]), /give a config file or --preset/);
});
