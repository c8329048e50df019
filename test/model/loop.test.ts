/**
 * The self-rewarding loop end to end on the sandbox-tiny preset: the run directory's files, and a
 * run killed with SIGKILL at several points and resumed that ends identical to an uninterrupted one.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { createKernels } from "../../src/engine/ort.js";
import { readJsonl } from "../../src/io/jsonl.js";
import { loadRunConfig } from "../../src/loop/config.js";
import { type Candidate, type Judgement, type PairRecord, runLoop, type SelfInstructCounts } from "../../src/loop/run.js";
import type { LoopPrompt } from "../../src/loop/world.js";
import { generateTasks } from "../../src/sandbox/data.js";
import { allFamilies } from "../../src/sandbox/families/index.js";

const tmp = await mkdtemp(join(tmpdir(), "srlm-loop-"));
const root = join(import.meta.dirname, "..", "..");

test("sandbox-tiny: the loop writes a complete run directory", async () => {
  const kernels = await createKernels("ort");
  try {
    const cfg = await loadRunConfig({ preset: "sandbox-tiny" });
    const dir = join(tmp, "e2e");
    const r = await runLoop(cfg, dir, { kernels, progress: false, log: () => {} });
    assert.equal(r.metrics.length, cfg.iterations + 1, "one metrics line per model (M1 and one per iteration)");
    const lines = await readJsonl<Record<string, unknown>>(join(dir, "metrics.jsonl"));
    assert.deepEqual(
      lines.map((l) => l.model),
      ["M1", "M2", "M3"],
      "metrics.jsonl models",
    );
    for (const l of lines)
      for (const k of ["eval/gold", "eval/exact", "eval/judge_pairwise", "eval/length"]) assert.ok(k in l, `${l.model}: ${k}`);
    const manifest = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8"));
    assert.equal(manifest.seed, cfg.seed, "manifest seed");
    assert.ok("git_sha" in manifest && "srlm_version" in manifest && "node" in manifest, "manifest fields");
    assert.match(await readFile(join(dir, "config.resolved.yaml"), "utf8"), /preset: sandbox-tiny/, "resolved config");
    const it1 = join(dir, "iter-1");
    const prompts = await readJsonl(join(it1, "prompts.jsonl"));
    const cands = await readJsonl<Candidate>(join(it1, "candidates.jsonl"));
    const judgements = await readJsonl<Judgement>(join(it1, "judgements.jsonl"));
    assert.equal(prompts.length, cfg.prompts.count, "prompts");
    assert.equal(cands.length, cfg.prompts.count * cfg.generate.n, "N candidates per prompt");
    assert.equal(judgements.length, cands.length * cfg.judge.samples, "K judgements per candidate");
    for (const c of cands) assert.ok(Number.isInteger(c.gold), `candidate ${c.prompt_id}/${c.index} has a gold score`);
    const stats = JSON.parse(await readFile(join(it1, "pairs_stats.json"), "utf8"));
    const failures = judgements.filter((j) => j.score === null).length;
    assert.equal(stats["judge/parse_failures"], failures / judgements.length, "parse failures as counted in judgements.jsonl");
    const pairs = await readJsonl<PairRecord>(join(it1, "pairs.jsonl"));
    assert.equal(pairs.length, stats["pairs/count"], "pairs.jsonl holds the counted pairs");
    assert.equal(
      stats["pairs/count"] + stats["pairs/ties_dropped"] + stats["pairs/unjudged"],
      cfg.prompts.count,
      "every prompt accounted for",
    );
    assert.deepEqual(await readdir(join(it1, "parts")), [], "chunk files removed once merged");
  } finally {
    await kernels.dispose();
  }
});

test("prompts from a JSONL file: sandbox tasks get gold scores, other text is judged without gold", async () => {
  const kernels = await createKernels("ort");
  try {
    const file = join(tmp, "prompts.jsonl");
    const tasks = generateTasks(allFamilies, 3, 99, "mine");
    const lines = [...tasks.map((t) => ({ instruction: t.instruction })), { id: "free", instruction: "write a poem" }];
    await writeFile(file, `${lines.map((l) => JSON.stringify(l)).join("\n")}\n`);
    const cfg = await loadRunConfig({ preset: "sandbox-tiny", set: ["iterations=1", "prompts.source=file", `prompts.path=${file}`] });
    const dir = join(tmp, "file");
    await runLoop(cfg, dir, { kernels, progress: false, log: () => {} });
    const prompts = await readJsonl<LoopPrompt>(join(dir, "iter-1", "prompts.jsonl"));
    assert.deepEqual(
      prompts.map((p) => [p.id, p.family]),
      [...tasks.map((t, i) => [`line-${i + 1}`, t.family]), ["free", undefined]],
      "ids from the file (or line numbers) and the families parsed",
    );
    const cands = await readJsonl<Candidate>(join(dir, "iter-1", "candidates.jsonl"));
    for (const c of cands) assert.equal(c.gold === undefined, c.prompt_id === "free", `${c.prompt_id}: gold only for sandbox tasks`);
    const oracle = await loadRunConfig({ preset: "sandbox-tiny", set: ["prompts.source=file", `prompts.path=${file}`, "judge.by=gold"] });
    await assert.rejects(
      runLoop(oracle, join(tmp, "file-oracle"), { kernels, progress: false, log: () => {} }),
      /"write a poem" \(free\) is no sandbox task/,
      "oracle needs gold",
    );
  } finally {
    await kernels.dispose();
  }
});

test("self-instruct prompts: counts add up, and the run completes and resumes even when none are accepted", async () => {
  const kernels = await createKernels("ort");
  try {
    const count = 8;
    const attempts = 2;
    const cfg = await loadRunConfig({
      preset: "sandbox-tiny",
      set: [
        "prompts.source=self_instruct",
        `prompts.count=${count}`,
        `prompts.self_instruct.attempts=${attempts}`,
        "model.overrides={sizes: {newTask: 60}}",
        "judge.by=gold",
      ],
    });
    const dir = join(tmp, "self-instruct");
    const lines: string[] = [];
    const r = await runLoop(cfg, dir, { kernels, progress: false, log: (l) => lines.push(l) });
    assert.equal(r.metrics.length, cfg.iterations + 1, "the run completes: one metrics line per model");
    const newTask = await readJsonl(join(dir, "m1", "data", "new_task.jsonl"));
    assert.equal(newTask.length, 60, "M1 trained on the preset override's new-task records");
    for (let t = 1; t <= cfg.iterations; t++) {
      const it = join(dir, `iter-${t}`);
      const si = JSON.parse(await readFile(join(it, "self_instruct.json"), "utf8")) as SelfInstructCounts & {
        rounds: number;
        families: Record<string, number>;
      };
      const prompts = await readJsonl<LoopPrompt>(join(it, "prompts.jsonl"));
      assert.equal(si.generated, si.rounds * count, `iter ${t}: one round writes count instructions`);
      assert.ok(si.rounds >= 1 && si.rounds <= attempts, `iter ${t}: 1…attempts rounds (got ${si.rounds})`);
      assert.equal(
        si.accepted + si.unparsable + si.excluded + si.duplicate + si.unused,
        si.generated,
        `iter ${t}: every written instruction has one verdict`,
      );
      assert.ok(si.accepted <= count, `iter ${t}: at most count accepted`);
      const written = await readJsonl<{ text: string; verdict: string }>(join(it, "self_instruct.jsonl"));
      assert.equal(written.length, si.generated, `iter ${t}: self_instruct.jsonl has one line per written instruction`);
      assert.equal(written.filter((w) => w.verdict === "accepted").length, si.accepted, `iter ${t}: the accepted verdicts match the count`);
      assert.equal(si.rounds < attempts, si.accepted === count, `iter ${t}: rounds stop early only when count is reached`);
      assert.equal(prompts.length, si.accepted, `iter ${t}: prompts.jsonl holds the accepted instructions`);
      assert.equal(new Set(prompts.map((p) => p.instruction)).size, prompts.length, `iter ${t}: no prompt twice`);
      for (const p of prompts) assert.ok(p.family !== undefined, `iter ${t}: ${JSON.stringify(p.instruction)} is a sandbox task`);
      const perFamily = Object.values(si.families).reduce((a, b) => a + b, 0);
      assert.equal(perFamily, si.accepted, `iter ${t}: per-family counts add up to the accepted ones`);
      const m = r.metrics[t];
      assert.equal(m["prompts/generated"], si.generated, `iter ${t}: metrics carry the generated count`);
      assert.equal(m["prompts/accepted"], si.accepted, `iter ${t}: metrics carry the accepted count`);
      const ev = JSON.parse(await readFile(join(it, "eval.json"), "utf8")) as { model_dir: string };
      if (si.accepted === 0) {
        assert.ok(lines.includes(`iteration ${t}: no prompts, so no pairs and no DPO step: M${t + 1} = M${t}`), `iter ${t}: logged`);
        assert.notEqual(ev.model_dir, join(`iter-${t}`, "train", "final"), `iter ${t}: no prompts → the model is carried forward`);
      }
    }
    // Resume after the last iteration is lost: earlier iterations are read back (their model may be
    // a carried-forward one), and the redone iteration writes the same prompts.
    const last = join(dir, `iter-${cfg.iterations}`);
    const before = await readFile(join(last, "self_instruct.json"), "utf8");
    const promptsBefore = await readFile(join(last, "prompts.jsonl"), "utf8");
    await rm(last, { recursive: true });
    const again = await runLoop(cfg, dir, { kernels, progress: false, log: () => {} });
    assert.equal(again.metrics.length, cfg.iterations + 1, "the resumed run completes");
    assert.equal(await readFile(join(last, "self_instruct.json"), "utf8"), before, "self-instruct is deterministic");
    assert.equal(await readFile(join(last, "prompts.jsonl"), "utf8"), promptsBefore, "same prompts after the redo");
  } finally {
    await kernels.dispose();
  }
});

// Oracle pairs, so every iteration trains (the tiny model's own judgements rarely parse).
const args = ["--preset", "sandbox-tiny", "--set", "judge.by=gold", "--set", "dpo.save_steps=1"];

function srlm(argv: string[], killOn?: RegExp): Promise<{ code: number | null; killed: boolean; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", join(root, "src/cli/srlm.ts"), ...argv], {
      cwd: root,
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    let killed = false;
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      if (killOn && !killed && killOn.test(stderr)) {
        killed = true;
        child.kill("SIGKILL");
      }
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, killed, stderr }));
  });
}

/** Everything a run produced that must not depend on interruptions (timings and paths excluded). */
async function artifacts(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const metrics = await readJsonl<Record<string, unknown>>(join(dir, "metrics.jsonl"));
  out.metrics = JSON.stringify(metrics.map((m) => Object.fromEntries(Object.entries(m).filter(([k]) => !k.startsWith("time/")))));
  for (const t of [1, 2]) {
    for (const f of ["prompts.jsonl", "candidates.jsonl", "pairs.jsonl", "pairs_stats.json", "eval.json"]) {
      out[`iter-${t}/${f}`] = await readFile(join(dir, `iter-${t}`, f), "utf8");
    }
    out[`iter-${t}/weights`] = (await readFile(join(dir, `iter-${t}`, "train", "final", "model.safetensors"))).toString("base64");
  }
  out.m1 = (await readFile(join(dir, "m1", "m1", "final", "model.safetensors"))).toString("base64");
  return out;
}

test("a run killed with SIGKILL at several points and resumed ends identical to an uninterrupted run", async () => {
  const whole = join(tmp, "whole");
  const a = await srlm(["run", ...args, "--out", whole]);
  assert.equal(a.code, 0, `uninterrupted run failed:\n${a.stderr}`);

  const cut = join(tmp, "cut");
  // Kill points: inside M1's SFT, while sampling, inside the first DPO step's checkpoints, in the second iteration's evaluation.
  const points = [/^sft \d+\/\d+/m, /iteration 1: sample/, /^dpo\+sft \d+\/\d+/m, /iteration 2: sample[\s\S]*eval judge/];
  let r = await srlm(["run", ...args, "--out", cut], points[0]);
  let kills = r.killed ? 1 : 0;
  for (const p of points.slice(1)) {
    r = await srlm(["run", "--resume", cut], p);
    if (r.killed) kills++;
    else assert.equal(r.code, 0, `resume failed:\n${r.stderr}`);
  }
  if (r.killed) {
    r = await srlm(["run", "--resume", cut]);
    assert.equal(r.code, 0, `final resume failed:\n${r.stderr}`);
  }
  assert.ok(kills >= 2, `the run was killed ${kills} times (expected several)`);
  const want = await artifacts(whole);
  const got = await artifacts(cut);
  for (const k of Object.keys(want)) assert.equal(got[k], want[k], `${k} differs after kills and resumes`);
});

test("srlm run: clear errors for bad command lines and configs", async () => {
  const cases: [string[], RegExp][] = [
    [["run"], /give a config file or --preset/],
    [["run", "--resume", tmp], /no .*config\.resolved\.yaml \(not a run directory\?\)/],
    [["run", "--resume", tmp, "--set", "seed=2"], /--resume takes the run's own config/],
    [["run", "--preset", "sandbox", "--set", "judge.by=oracle"], /judge\.by: expected one of "model", "gold"/],
    [["run", "--preset", "sandbox-tiny", "--set", "prompts.source=file"], /prompts\.path: prompts\.source "file" needs prompts\.path/],
  ];
  for (const [argv, want] of cases) {
    const r = await srlm(argv);
    assert.equal(r.code, 1, `${argv.join(" ")}: exit code`);
    assert.match(r.stderr, want, `${argv.join(" ")}: message`);
  }
});
