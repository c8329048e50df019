// CREAM (src/pairs/cream.ts): Kendall's τ_b against hand-computed values (ties included; checked against
// scipy.stats.kendalltau), the consistency rate, the dyn / avg soft labels and the implicit reward.
import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { loadRunConfig } from "../../src/loop/config.js";
import { methodPairs } from "../../src/loop/methods.js";
import type { Candidate, Judgement } from "../../src/loop/records.js";
import type { LoopPrompt } from "../../src/loop/world.js";
import { consistencyRate, creamPairs, implicitReward, kendallTauB, UNDEFINED_CONSISTENCY } from "../../src/pairs/cream.js";

const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);

test("kendallTauB: hand-computed values without ties", () => {
  close(kendallTauB([1, 2, 3, 4], [10, 20, 30, 40]), 1, "same order");
  close(kendallTauB([1, 2, 3, 4], [4, 3, 2, 1]), -1, "reversed");
  // pairs: (1,3) discordant, the other five concordant → (5 − 1)/6
  close(kendallTauB([1, 2, 3, 4], [1, 3, 2, 4]), 4 / 6, "one swap");
});

test("kendallTauB: ties (τ_b's denominator counts only pairs untied in each list)", () => {
  // x = [1,2,2,3], y = [1,2,3,3]: concordant 4, discordant 0; untied in x 5, in y 5 → 4/5
  close(kendallTauB([1, 2, 2, 3], [1, 2, 3, 3]), 0.8, "ties in both");
  // x = [1,1,2], y = [1,2,2]: concordant 1; untied 2 and 2 → 1/2
  close(kendallTauB([1, 1, 2], [1, 2, 2]), 0.5, "a tie each");
  // x = [3,1,2,2], y = [2,2,1,3]: concordant 2, discordant 2 → 0
  close(kendallTauB([3, 1, 2, 2], [2, 2, 1, 3]), 0, "balanced");
  // judge means vs log-likelihoods: concordant 4, discordant 1; untied 5 (x) and 6 (y) → 3/√30
  close(kendallTauB([4.5, 3, 1.5, 3], [-0.2, -0.5, -0.9, -0.1]), 3 / Math.sqrt(30), "judge rewards vs likelihoods");
});

test("kendallTauB: undefined (NaN) for a constant list or fewer than two items; NaN items left out", () => {
  assert.ok(Number.isNaN(kendallTauB([2, 2, 2], [1, 2, 3])), "constant x");
  assert.ok(Number.isNaN(kendallTauB([1, 2, 3], [5, 5, 5])), "constant y");
  assert.ok(Number.isNaN(kendallTauB([1], [1])), "one item");
  close(kendallTauB([1, Number.NaN, 2, 3], [1, 7, 2, 3]), 1, "the NaN candidate is skipped");
  assert.throws(() => kendallTauB([1, 2], [1]), /2 vs 1 values/, "lengths must match");
});

test("consistencyRate = (τ_b + 1)/2", () => {
  close(consistencyRate([1, 2, 3, 4], [1, 3, 2, 4]), (4 / 6 + 1) / 2, "one swap");
  close(consistencyRate([1, 2, 3], [3, 2, 1]), 0, "reversed");
  close(consistencyRate([3, 1, 2, 2], [2, 2, 1, 3]), 0.5, "τ = 0");
});

test("creamPairs: the pair follows the CURRENT reward; dyn labels per prompt, avg the mean over defined prompts", () => {
  const prompts = [
    { current: [1, 2, 3, 4], previous: [1, 3, 2, 4] }, // pair 3 vs 0, C = 5/6
    { current: [4, 3, 2, 1], previous: [1, 2, 3, 4] }, // pair 0 vs 3, C = 0 (the rankings contradict)
    { current: [2, 2, 2, 2], previous: [1, 2, 3, 4] }, // tie: no pair, C undefined (constant current)
    { current: [1, 5, 3, 3], previous: [0, 0, 0, 0] }, // pair 1 vs 0, C undefined (constant previous)
    { current: [1, 2, 3, 4], previous: [4, 3, 1, 2] }, // pair 3 vs 0, C = (−4/6 + 1)/2 = 1/6
  ];
  const dyn = creamPairs(prompts, "dyn");
  assert.deepEqual(
    dyn.outcomes.map((o) => (o.kind === "pair" ? [o.chosen, o.rejected] : o.kind)),
    [[3, 0], [0, 3], "tie", [1, 0], [3, 0]],
    "SR's best vs worst under the current reward",
  );
  close(dyn.consistency[0], 5 / 6, "C of prompt 0");
  close(dyn.consistency[1], 0, "C of prompt 1");
  assert.ok(Number.isNaN(dyn.consistency[2]) && Number.isNaN(dyn.consistency[3]), "undefined C");
  close(dyn.consistency[4], 1 / 6, "C of prompt 4");
  assert.deepEqual(dyn.labels.slice(0, 2), [dyn.consistency[0], 0], "dyn: each pair's own C");
  assert.ok(Number.isNaN(dyn.labels[2]), "no pair, no label");
  assert.equal(dyn.labels[3], UNDEFINED_CONSISTENCY, "undefined C → 0.5");
  const meanC = (5 / 6 + 0 + 1 / 6) / 3;
  close(dyn.meanConsistency, meanC, "mean over the three defined prompts");
  const avg = creamPairs(prompts, "avg");
  for (const i of [0, 1, 3, 4]) close(avg.labels[i], meanC, `avg: pair ${i} gets the mean`);
});

test("creamPairs: min margin drops close pairs as SR does", () => {
  const r = creamPairs([{ current: [3, 3.5], previous: [0, 1] }], "dyn", 1);
  assert.equal(r.outcomes[0].kind, "tie", "gap 0.5 < 1");
});

test("implicitReward: M1 = length-normalised log-likelihood, M_k = log π_k − log π_{k−1}", () => {
  close(implicitReward(1, { 1: -12 }, 4), -3, "−12 over 4 tokens");
  close(implicitReward(3, { 3: -10, 2: -12, 1: -20 }, 4), 2, "−10 − (−12)");
  assert.throws(() => implicitReward(2, { 2: -1 }, 3), /M2 and M1/, "needs the reference's log-probs");
});

test("methodPairs(cream), t = 1: judge ranking vs M1's length-normalised likelihood; labels in the records", async () => {
  const prompts: LoopPrompt[] = [
    { id: "a", instruction: "task a" },
    { id: "b", instruction: "task b" },
  ];
  const cand = (prompt_id: string, index: number): Candidate => ({
    prompt_id,
    index,
    text: `${prompt_id}${index}`,
    logprob: 0,
    tokens: 1,
    gold: index,
  });
  const candidates = [0, 1, 2].flatMap((i) => [cand("a", i), cand("b", i)]);
  const j = (prompt_id: string, candidate: number, score: number): Judgement => ({ prompt_id, candidate, sample: 0, text: "", score });
  // a: judge 1 < 2 < 3; b: judge 3 > 2 > 1.
  const judgements = [j("a", 0, 1), j("a", 1, 2), j("a", 2, 3), j("b", 0, 3), j("b", 1, 2), j("b", 2, 1)];
  const lp = (prompt_id: string, index: number, logp: number, tokens: number) => ({ prompt_id, index, tokens, logps: { 1: logp } });
  // a: per-token −3, −2, −1 (increasing with the judge); b: −1, −3, −2: (0,1), (0,2) concordant, (1,2)
  // discordant → τ_b = 1/3 → C = 2/3
  const logps = [lp("a", 0, -6, 2), lp("a", 1, -4, 2), lp("a", 2, -2, 2), lp("b", 0, -2, 2), lp("b", 1, -6, 2), lp("b", 2, -4, 2)];
  for (const mode of ["dyn", "avg"] as const) {
    const dir = await mkdtemp(join(tmpdir(), "srlm-cream-"));
    await writeFile(join(dir, "candidate_logps.jsonl"), `${logps.map((l) => JSON.stringify(l)).join("\n")}\n`);
    const cfg = await loadRunConfig({ preset: "sandbox-tiny", set: ["method=cream", `cream.consistency=${mode}`] });
    assert.equal(cfg.dpo.loss_type, "soft_label", "cream implies the soft-label loss");
    const r = await methodPairs({ cfg, t: 1, dir, prompts, candidates, judgements, time: (_k: string, f: () => unknown) => f() } as never);
    assert.deepEqual(
      r.pairs.map((p) => [p.prompt_id, p.chosen[0].content, p.rejected[0].content]),
      [
        ["a", "a2", "a0"],
        ["b", "b0", "b2"],
      ],
      `${mode}: SR's pairs`,
    );
    close(r.pairs[0].consistency as number, 1, "a: C = 1");
    close(r.pairs[1].consistency as number, 2 / 3, "b: C = 2/3");
    const want = mode === "dyn" ? [1, 2 / 3] : [5 / 6, 5 / 6];
    for (const [i, p] of r.pairs.entries()) close(p.label as number, want[i], `${mode}: label of pair ${i}`);
    close(r.stats["cream/consistency"], 5 / 6, "mean C");
  }
});
