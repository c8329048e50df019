/**
 * The successors end to end on the sandbox-tiny preset (docs/methods.md): each method runs 1–2
 * iterations through `runLoop`, writes its own files, pairs.jsonl in TRL's format with the method's
 * fields, pairs_stats.json that accounts for every prompt, and trains when it has pairs. M1 is built
 * once and copied into each run. The tiny M1's judgements almost never parse, so the methods that rank
 * by a judge run with `judge.by: gold` here (the oracle judge), and the meta-judge stage is driven
 * directly with hand-made judgements.
 */
import assert from "node:assert/strict";
import { cp, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { builtinEngine } from "../../src/engine/engine.js";
import type { Kernels } from "../../src/engine/kernels.js";
import { createKernels } from "../../src/engine/ort.js";
import { readJsonl } from "../../src/io/jsonl.js";
import { loadRunConfig } from "../../src/loop/config.js";
import { metaJudgePairs, metaJudgeStage } from "../../src/loop/methods.js";
import type { Candidate, Judgement, PairRecord } from "../../src/loop/records.js";
import { runLoop } from "../../src/loop/run.js";
import { sandboxWorld } from "../../src/loop/sandbox-world.js";
import { trainStage } from "../../src/loop/stages.js";
import type { LoopPrompt } from "../../src/loop/world.js";
import { allFamilies } from "../../src/sandbox/families/index.js";
import { buildM1 } from "../../src/sandbox/pipeline.js";
import { preset } from "../../src/sandbox/preset.js";
import { fullTrainable } from "../../src/train/trainable.js";

const tmp = await mkdtemp(join(tmpdir(), "srlm-methods-"));
const m1Dir = join(tmp, "shared-m1");
let kernels: Kernels;

before(async () => {
  kernels = await createKernels("ort");
  await buildM1(preset("sandbox-tiny"), m1Dir, { kernels, progress: false, log: () => {} });
});
after(async () => {
  await kernels.dispose();
});

async function run(name: string, set: string[]) {
  const cfg = await loadRunConfig({ preset: "sandbox-tiny", set });
  const dir = join(tmp, name);
  await cp(m1Dir, join(dir, "m1"), { recursive: true });
  const lines: string[] = [];
  const r = await runLoop(cfg, dir, { kernels, progress: false, log: (l) => lines.push(l) });
  assert.equal(r.metrics.length, cfg.iterations + 1, `${name}: one metrics line per model`);
  return { cfg, dir, r, lines };
}

async function iteration(dir: string, t: number) {
  const it = join(dir, `iter-${t}`);
  const pairs = await readJsonl<PairRecord>(join(it, "pairs.jsonl"));
  const stats = JSON.parse(await readFile(join(it, "pairs_stats.json"), "utf8")) as Record<string, number>;
  const files = await readdir(it);
  return { it, pairs, stats, files };
}

/** count + ties + unjudged + every method-specific drop = prompts; answer pairs match the count. */
function accounted(stats: Record<string, number>, pairs: PairRecord[], prompts: number, what: string) {
  const dropped = Object.entries(stats)
    .filter(([k]) => k.startsWith("pairs/dropped_"))
    .reduce((a, [, v]) => a + v, 0);
  assert.equal(
    stats["pairs/count"] + stats["pairs/ties_dropped"] + stats["pairs/unjudged"] + dropped,
    prompts,
    `${what}: every prompt accounted for`,
  );
  assert.equal(pairs.filter((p) => p.kind !== "judge").length, stats["pairs/count"], `${what}: answer pairs = pairs/count`);
  for (const p of pairs) {
    assert.equal(p.prompt[0].role, "user", `${what}: TRL conversational prompt`);
    assert.equal(p.chosen[0].role, "assistant", `${what}: chosen`);
    assert.equal(p.rejected[0].role, "assistant", `${what}: rejected`);
  }
}

/** The iteration trained (train/final) iff it had pairs, and eval.json names the model it ended with. */
async function trainedIfPairs(it: string, pairs: PairRecord[], what: string) {
  const ev = JSON.parse(await readFile(join(it, "eval.json"), "utf8")) as { model_dir: string };
  assert.equal(ev.model_dir.endsWith(join("train", "final")), pairs.length > 0, `${what}: trained iff it had pairs`);
}

test("spin: chosen = the sandbox's reference answer, rejected = the model's, no judging", async () => {
  const { cfg, dir } = await run("spin", ["method=spin"]);
  for (const t of [1, 2]) {
    const { it, pairs, stats, files } = await iteration(dir, t);
    assert.ok(!files.includes("judgements.jsonl"), `iter ${t}: SPIN does not judge`);
    accounted(stats, pairs, cfg.prompts.count, `spin iter ${t}`);
    assert.ok(pairs.length > 0, `iter ${t}: the tiny model never plays the reference, so there are pairs`);
    for (const p of pairs) {
      assert.equal(p.method, "spin");
      assert.equal(p.source_chosen, "reference");
      assert.equal(p.gold_chosen, 5, "the reference meets all five criteria");
      assert.notEqual(p.chosen[0].content, p.rejected[0].content);
    }
    await trainedIfPairs(it, pairs, `spin iter ${t}`);
  }
});

test("cream (judge reward, oracle judge): soft labels from M1's likelihood at t = 1, the previous judge at t = 2", async () => {
  const { cfg, dir } = await run("cream", ["method=cream", "judge.by=gold"]);
  assert.equal(cfg.dpo.loss_type, "soft_label");
  const one = await iteration(dir, 1);
  assert.ok(one.files.includes("candidate_logps.jsonl"), "t = 1: M1's log-probs of the candidates");
  const logps = await readJsonl<{ logps: Record<string, number> }>(join(one.it, "candidate_logps.jsonl"));
  assert.deepEqual(Object.keys(logps[0].logps), ["1"], "under M1 only");
  for (const t of [1, 2]) {
    const { it, pairs, stats } = await iteration(dir, t);
    accounted(stats, pairs, cfg.prompts.count, `cream iter ${t}`);
    assert.ok(pairs.length > 0, `iter ${t}: gold pairs`);
    for (const p of pairs) assert.ok((p.label as number) >= 0 && (p.label as number) <= 1, `iter ${t}: label in [0, 1]`);
    assert.ok(Number.isFinite(stats["cream/consistency"]), `iter ${t}: mean consistency`);
    await trainedIfPairs(it, pairs, `cream iter ${t}`);
  }
  // t = 2 under the oracle: the previous "judge" is gold too, so every defined C is 1.
  const two = await iteration(dir, 2);
  for (const p of two.pairs) assert.ok(p.consistency === undefined || p.consistency === 1, "oracle rankings agree");
});

test("cream (implicit reward, avg): log-probs under M2 and M1 at t = 2, one label for every pair", async () => {
  const { cfg, dir } = await run("cream-implicit", ["method=cream", "judge.by=gold", "cream.reward=implicit", "cream.consistency=avg"]);
  const two = await iteration(dir, 2);
  const logps = await readJsonl<{ logps: Record<string, number> }>(join(two.it, "candidate_logps.jsonl"));
  assert.deepEqual(Object.keys(logps[0].logps).sort(), ["1", "2"], "M2 (current) and M1 (its reference and the previous model)");
  accounted(two.stats, two.pairs, cfg.prompts.count, "cream-implicit iter 2");
  assert.equal(new Set(two.pairs.map((p) => p.label)).size, two.pairs.length > 0 ? 1 : 0, "avg: the same label for all");
});

test("scir (oracle judge): pairs where the implicit reward agrees, the penalty in the DPO metrics", async () => {
  const { cfg, dir } = await run("scir", ["method=scir", "judge.by=gold"]);
  let trained = 0;
  for (const t of [1, 2]) {
    const { it, pairs, stats } = await iteration(dir, t);
    accounted(stats, pairs, cfg.prompts.count, `scir iter ${t}`);
    for (const p of pairs) {
      assert.ok((p.implicit_margin as number) > 0, `iter ${t}: kept pairs agree`);
      assert.ok((p.judge_prob as number) > 0.5 && (p.judge_prob as number) < 1, `iter ${t}: q`);
    }
    await trainedIfPairs(it, pairs, `scir iter ${t}`);
    if (pairs.length > 0) {
      trained++;
      const m = await readJsonl<Record<string, number>>(join(it, "train", "metrics.jsonl"));
      assert.ok(
        m.some((l) => typeof l["scir/penalty"] === "number"),
        `iter ${t}: the penalty is logged`,
      );
    }
  }
  assert.ok(trained > 0, "at least one iteration trained");
});

test("meta (oracle judge): length-controlled answer pairs; no judge pairs without model judgements", async () => {
  const { cfg, dir } = await run("meta", ["method=meta", "judge.by=gold", "iterations=1", "meta.rho=0.5"]);
  const { it, pairs, stats } = await iteration(dir, 1);
  accounted(stats, pairs, cfg.prompts.count, "meta");
  assert.ok(pairs.length > 0 && pairs.every((p) => p.kind === undefined), "answer pairs only");
  await trainedIfPairs(it, pairs, "meta");
});

test("meta: the meta-judge stage on M1 with hand-made judgements: two orders per target, fail-closed verdicts", async () => {
  const { cfg, dir } = await run("meta-model", ["method=meta", "iterations=1"]);
  const world = await sandboxWorld(allFamilies, join(dir, "m1"));
  const { model } = await buildM1(preset("sandbox-tiny"), join(dir, "m1"), { kernels, progress: false, log: () => {} });
  const prompts = await readJsonl<LoopPrompt>(join(dir, "iter-1", "prompts.jsonl"));
  const candidates = (await readJsonl<Candidate>(join(dir, "iter-1", "candidates.jsonl"))).filter(
    (c) => c.prompt_id === prompts[0].id || c.prompt_id === prompts[1].id,
  );
  // Two parsed judgements that disagree on candidate 0 of the first two prompts.
  const judgements: Judgement[] = prompts.slice(0, 2).flatMap((p) => [
    { prompt_id: p.id, candidate: 0, sample: 0, text: "+++--\nScore: 3", score: 3 },
    { prompt_id: p.id, candidate: 0, sample: 1, text: "+----\nScore: 1", score: 1 },
  ]);
  const out = join(dir, "meta-stage");
  const metas = await metaJudgeStage(
    { model, engine: builtinEngine(model, world.tokenizer), world, cfg, t: 1, dir: out, show: false },
    prompts.slice(0, 2),
    candidates,
    judgements,
  );
  assert.equal(metas.length, 4, "two targets × two orders");
  assert.deepEqual(
    metas.map((m) => [m.prompt_id, m.order, m.high, m.low]),
    prompts.slice(0, 2).flatMap((p) => [
      [p.id, 1, 0, 1],
      [p.id, 2, 0, 1],
    ]),
  );
  for (const m of metas) {
    assert.equal(typeof m.text, "string", "the prompts fit the context");
    assert.ok(m.verdict === null || m.verdict === 1 || m.verdict === 2, "a verdict is 1, 2 or a counted failure");
  }
  assert.ok((await readdir(out)).includes("meta_judgements.jsonl"), "saved");
  // The judge pairs train the judge form: a position-consistent verdict (forced here) gives a judge pair,
  // and the DPO step trains on it beside an answer pair.
  const forced = metas.map((m) => ({ ...m, verdict: (m.order === 1 ? 2 : 1) as 1 | 2 }));
  const built = metaJudgePairs(1, "meta", "consistent", prompts, candidates, judgements, forced, (p, a) => world.judgePrompt(p, a));
  assert.equal(built.pairs.length, 2, "one judge pair per target");
  assert.ok(
    built.pairs.every((p) => p.kind === "judge" && p.chosen[0].content === "+----\nScore: 1"),
    "the low judgement preferred in both orders",
  );
  const answer: PairRecord = {
    ...built.pairs[0],
    kind: undefined,
    judged_answer: undefined,
    chosen: [{ role: "assistant", content: "1 2" }],
    rejected: [{ role: "assistant", content: "x" }],
  };
  const trainDir = join(dir, "meta-train");
  await trainStage(
    { model, engine: builtinEngine(model, world.tokenizer), world, cfg, t: 1, dir: out, show: false, trainable: fullTrainable(model) },
    prompts,
    [...built.pairs, answer],
    trainDir,
    7,
  );
  assert.ok((await readdir(join(trainDir, "final"))).includes("model.safetensors"), "trained on judge and answer pairs");
});

test("temporal (oracle judge): anchors from M1, a future model, chosen from its candidates vs the anchor", async () => {
  const { cfg, dir } = await run("temporal", ["method=temporal", "judge.by=gold"]);
  const one = await iteration(dir, 1);
  assert.ok(!one.files.includes("anchor_candidates.jsonl"), "t = 1: M_t is M1, its candidates are the anchors");
  const two = await iteration(dir, 2);
  for (const f of ["anchor_candidates.jsonl", "anchored_pairs.jsonl", "future_candidates.jsonl", "future"])
    assert.ok(two.files.includes(f), `t = 2: ${f}`);
  const anchors = await readJsonl<Candidate>(join(two.it, "anchor_candidates.jsonl"));
  assert.equal(anchors.length, cfg.prompts.count * cfg.generate.n, "M1 samples N per prompt");
  const anchorTexts = new Set(anchors.map((a) => `${a.prompt_id}\u0000${a.text}`));
  const future = await readJsonl<Candidate>(join(two.it, "future_candidates.jsonl"));
  const futureTexts = new Set(future.map((a) => `${a.prompt_id}\u0000${a.text}`));
  accounted(two.stats, two.pairs, cfg.prompts.count, "temporal iter 2");
  assert.ok(two.pairs.length > 0, "pairs");
  for (const p of two.pairs) {
    assert.equal(p.source_rejected, "anchor");
    assert.equal(p.source_chosen, "future", "future_from: future");
    assert.ok(anchorTexts.has(`${p.prompt_id}\u0000${p.rejected[0].content}`), "rejected is one of M1's answers");
    assert.ok(futureTexts.has(`${p.prompt_id}\u0000${p.chosen[0].content}`), "chosen is one of the future model's answers");
    assert.ok((p.gold_chosen as number) > (p.gold_rejected as number), "oracle: chosen beats the anchor");
  }
  assert.equal(two.stats["temporal/chosen_from_future"], 1);
  await trainedIfPairs(two.it, two.pairs, "temporal iter 2");
  // Resume: redo the future model, its candidates, the pairs and the step from the saved anchors; the
  // same files come out (every stage that loads other weights restores M_t).
  const pairsBefore = await readFile(join(two.it, "pairs.jsonl"), "utf8");
  const weightsBefore = await readFile(join(two.it, "train", "final", "model.safetensors"));
  for (const f of ["future", "future_candidates.jsonl", "pairs.jsonl", "pairs_stats.json", "train", "eval.json", "times.json"]) {
    await rm(join(two.it, f), { recursive: true, force: true });
  }
  await runLoop(cfg, dir, { kernels, progress: false, log: () => {} });
  assert.equal(await readFile(join(two.it, "pairs.jsonl"), "utf8"), pairsBefore, "same pairs after the redo");
  assert.ok(weightsBefore.equals(await readFile(join(two.it, "train", "final", "model.safetensors"))), "same M3");
});
