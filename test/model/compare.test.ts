/**
 * `srlm compare` end to end on sandbox-tiny (its numbers mean nothing): sr and spin plus the oracle and
 * control rows over two seeds, one short iteration each. One M1 per seed, shared by symlink; a run that
 * throws is reported and the others finish; the table, compare.json and compare.html are written; a
 * second call skips every finished run and runs only the one that failed.
 */
import assert from "node:assert/strict";
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { compare, parseCompareArgs } from "../../src/cli/compare.js";
import type { Kernels } from "../../src/engine/kernels.js";
import { createKernels } from "../../src/engine/ort.js";

const tmp = await mkdtemp(join(tmpdir(), "srlm-compare-"));
let kernels: Kernels;
before(async () => {
  kernels = await createKernels("ort");
});
after(async () => {
  await kernels.dispose();
  await rm(tmp, { recursive: true, force: true });
});

test("sandbox-tiny: compare runs rows × seeds, reports a failed run, and a rerun skips what finished", async () => {
  const out = join(tmp, "cmp");
  const argv = [
    "--preset",
    "sandbox-tiny",
    "--methods",
    "sr,spin",
    "--seeds",
    "2",
    "--out",
    out,
    ...["iterations=1", "prompts.count=8", "judge.samples=1", "judge.max_new_tokens=48"].flatMap((s) => ["--set", s]),
  ];
  const args = parseCompareArgs(argv);
  // A directory holding another run's config: that run must fail, the others go on.
  await mkdir(join(out, "control-seed2"), { recursive: true });
  await writeFile(join(out, "control-seed2", "config.resolved.yaml"), "seed: 99\n");

  const lines: string[] = [];
  const first = await compare(args, { kernels, progress: false, log: (l) => lines.push(l) }, "srlm compare (test)");
  assert.deepEqual(
    first.results.map((r) => `${r.row}-${r.seed}:${r.status}`),
    ["sr-1:done", "spin-1:done", "oracle-1:done", "control-1:done", "sr-2:done", "spin-2:done", "oracle-2:done", "control-2:failed"],
  );
  assert.equal(first.failed, 1);
  assert.match(first.results[7].error ?? "", /holds a run with another config/);
  assert.ok(
    lines.some((l) => /^\[8\/8\] control seed 2: FAILED/.test(l)),
    "a progress line names the failed run",
  );
  assert.match(first.text, /control\s+1\/2 \(1 failed\)/, "the table marks the failure");

  // One M1 per seed, linked into each run.
  const entries = (await readdir(out)).sort();
  assert.deepEqual(
    entries.filter((e) => e.startsWith("m1-")),
    ["m1-seed1", "m1-seed2"],
  );
  assert.ok((await lstat(join(out, "spin-seed2", "m1"))).isSymbolicLink());
  assert.equal(await readlink(join(out, "spin-seed2", "m1")), join("..", "m1-seed2"));
  assert.match(await readFile(join(out, "spin-seed2", "config.resolved.yaml"), "utf8"), /overrides:\n\s+seed: 2/, "seed 2's M1 seed");

  // The files: JSON with measured compute, Markdown table, HTML with curves.
  const json = JSON.parse(await readFile(join(out, "compare.json"), "utf8"));
  assert.equal(json.runs.length, 8);
  const spin1 = json.runs.find((r: { row: string; seed: number }) => r.row === "spin" && r.seed === 1);
  const sr1 = json.runs.find((r: { row: string; seed: number }) => r.row === "sr" && r.seed === 1);
  assert.equal(sr1.iterations[1]["compute/samples"], 8 * 4, "P·N samples");
  assert.equal(sr1.iterations[1]["compute/judge_calls"], 8 * 4 * 1, "P·N·K judge calls");
  assert.equal(spin1.iterations[1]["compute/judge_calls"], 0, "spin judges nothing");
  assert.ok(spin1.iterations[1]["compute/dpo_steps"] > 0, "spin trains on reference pairs");
  assert.equal(spin1.iterations[1]["compare/consistency"], null, "spin ranks nothing: n/a");
  assert.deepEqual(
    json.table.map((r: { row: string }) => r.row),
    ["sr", "spin", "oracle", "control"],
  );
  const md = await readFile(join(out, "compare.md"), "utf8");
  assert.match(md, /\| oracle \| 2\/2 \| 1 \| /);
  const html = await readFile(join(out, "compare.html"), "utf8");
  assert.ok(html.includes('data-metric="eval/gold"') && html.includes('data-series="spin (2 seeds)"'), "gold curves per row");

  // Rerun: the finished runs are skipped (nothing rewritten in their iterations), the failed one runs.
  await rm(join(out, "control-seed2"), { recursive: true });
  const evalBefore = await readFile(join(out, "sr-seed1", "iter-1", "eval.json"), "utf8");
  const second = await compare(args, { kernels, progress: false, log: () => {} }, "srlm compare (test)");
  assert.deepEqual(
    second.results.map((r) => r.status),
    ["finished", "finished", "finished", "finished", "finished", "finished", "finished", "done"],
  );
  assert.equal(second.failed, 0);
  assert.equal(await readFile(join(out, "sr-seed1", "iter-1", "eval.json"), "utf8"), evalBefore);
  assert.match(second.text, /control\s+2\/2\s+1\s/, "the table now has both control seeds");
});
