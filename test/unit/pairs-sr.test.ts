import assert from "node:assert/strict";
import { test } from "node:test";
import { type Candidate, type Judgement, pairsFromJudged } from "../../src/loop/run.js";
import type { LoopPrompt } from "../../src/loop/world.js";
import { bestVsWorst, countOutcomes, meanReward } from "../../src/pairs/sr.js";
import { firstDifference } from "../../src/pairs/truncate.js";

test("meanReward: mean of parsed scores; NaN when none parsed", () => {
  assert.equal(meanReward([4, 5, 3]), 4, "mean of three");
  assert.ok(Number.isNaN(meanReward([])), "no parsed score is no reward, not 0");
});

test("bestVsWorst: best is chosen, worst rejected, earliest wins equal rewards", () => {
  assert.deepEqual(bestVsWorst([2, 5, 1, 3]), { kind: "pair", chosen: 1, rejected: 2, margin: 4 }, "plain case");
  assert.deepEqual(bestVsWorst([5, 1, 5, 1]), { kind: "pair", chosen: 0, rejected: 1, margin: 4 }, "ties inside best and worst: earliest");
});

test("bestVsWorst: ties dropped, unjudged candidates skipped, min margin", () => {
  assert.deepEqual(bestVsWorst([3, 3, 3, 3]), { kind: "tie" }, "all equal is a tie");
  assert.deepEqual(
    bestVsWorst([Number.NaN, 4, Number.NaN, 2]),
    { kind: "pair", chosen: 1, rejected: 3, margin: 2 },
    "NaN candidates are skipped",
  );
  assert.deepEqual(bestVsWorst([Number.NaN, 4, Number.NaN, Number.NaN]), { kind: "unjudged" }, "one judged candidate cannot pair");
  assert.deepEqual(bestVsWorst([]), { kind: "unjudged" }, "no candidates");
  assert.deepEqual(bestVsWorst([3, 3.5], 1), { kind: "tie" }, "gap 0.5 below min margin 1");
  assert.deepEqual(bestVsWorst([3, 4], 1), { kind: "pair", chosen: 1, rejected: 0, margin: 1 }, "gap equal to the margin is kept");
});

test("countOutcomes", () => {
  const c = countOutcomes([bestVsWorst([1, 2]), bestVsWorst([2, 2]), bestVsWorst([Number.NaN, 1]), bestVsWorst([5, 0])]);
  assert.deepEqual(c, { prompts: 4, pairs: 2, ties: 1, unjudged: 1 }, "counts by kind");
});

// Hand-made judged candidates: prompt a has a clear pair, b ties, c has only parse failures but one.
const prompts: LoopPrompt[] = [
  { id: "a", instruction: "task a" },
  { id: "b", instruction: "task b" },
  { id: "c", instruction: "task c" },
];
const cand = (prompt_id: string, index: number, text: string, gold: number): Candidate => ({
  prompt_id,
  index,
  text,
  logprob: -1,
  tokens: 3,
  gold,
});
const candidates = [
  cand("a", 0, "a0", 2),
  cand("a", 1, "a1", 5),
  cand("a", 2, "a2", 1),
  cand("b", 0, "b0", 3),
  cand("b", 1, "b1", 4),
  cand("c", 0, "c0", 0),
  cand("c", 1, "c1", 5),
];
const j = (prompt_id: string, candidate: number, sample: number, score: number | null): Judgement => ({
  prompt_id,
  candidate,
  sample,
  text: score === null ? "garbled" : `trace\nScore: ${score}`,
  score,
});
const judgements = [
  j("a", 0, 0, 3),
  j("a", 0, 1, null), // a0: reward 3 (the failure is dropped, not counted as 0)
  j("a", 1, 0, 4),
  j("a", 1, 1, 5), // a1: 4.5 → chosen
  j("a", 2, 0, 1),
  j("a", 2, 1, 2), // a2: 1.5 → rejected
  j("b", 0, 0, 4),
  j("b", 0, 1, 4),
  j("b", 1, 0, 4),
  j("b", 1, 1, 4), // b: tie → dropped
  j("c", 0, 0, null),
  j("c", 0, 1, null),
  j("c", 1, 0, 2),
  j("c", 1, 1, null), // c: one judged candidate → unjudged
];

test("pairsFromJudged: pairs, ties dropped, parse failures counted never guessed", () => {
  const r = pairsFromJudged({ by: "model", minMargin: 0, iteration: 1, method: "sr" }, prompts, candidates, judgements);
  assert.equal(r.pairs.length, 1, "one pair (prompt a)");
  const p = r.pairs[0];
  assert.deepEqual(p.prompt, [{ role: "user", content: "task a" }], "TRL conversational prompt");
  assert.deepEqual(p.chosen, [{ role: "assistant", content: "a1" }], "chosen = highest mean score");
  assert.deepEqual(p.rejected, [{ role: "assistant", content: "a2" }], "rejected = lowest mean score");
  assert.equal(p.score_chosen, 4.5, "chosen reward");
  assert.equal(p.score_rejected, 1.5, "rejected reward");
  assert.equal(p.gold_chosen, 5, "gold of chosen kept");
  assert.equal(p.iteration, 1, "iteration field");
  assert.equal(p.method, "sr", "method field");
  assert.equal(r.stats["pairs/count"], 1, "count");
  assert.equal(r.stats["pairs/ties_dropped"], 1, "prompt b tied");
  assert.equal(r.stats["pairs/unjudged"], 1, "prompt c had one judged candidate");
  assert.equal(r.stats["judge/judgements"], 14, "all judgements counted");
  assert.equal(r.stats["judge/parse_failures"], 4 / 14, "4 failures of 14");
  assert.equal(r.stats["pairs/gold_gap"], 4, "gold 5 − 1");
  assert.equal(r.stats["pairs/truly_better"], 1, "the pair is truly better");
  // Pairwise accuracy on candidates vs gold: a: (a0,a1) ✓ (a0,a2) ✓ (a1,a2) ✓; b: (b0,b1) tie in judge → 0.5;
  // c: c0 unparsed vs c1 → wrong. (3 + 0.5 + 0) / 5.
  assert.equal(r.stats["judge/pairwise_candidates"], 3.5 / 5, "judge pairwise accuracy on the ranked candidates");
});

test("pairsFromJudged: oracle pairs by gold, min margin", () => {
  const r = pairsFromJudged({ by: "gold", minMargin: 2, iteration: 2, method: "sr" }, prompts, candidates, []);
  assert.deepEqual(
    r.pairs.map((p) => [p.prompt_id, p.chosen[0].content, p.rejected[0].content]),
    [
      ["a", "a1", "a2"],
      ["c", "c1", "c0"],
    ],
    "a: 5 vs 1; b: gap 1 < 2 dropped; c: 5 vs 0",
  );
  assert.equal(r.stats["pairs/ties_dropped"], 1, "b dropped by the margin");
  assert.ok(Number.isNaN(r.stats["judge/parse_failures"]), "no judgements in oracle mode");
});

test("firstDifference: shared prefix joins the prompt, one decision token each", () => {
  const ex = { prompt: [1, 2], chosen: [5, 6, 7, 9], rejected: [5, 6, 8, 9] };
  assert.deepEqual(firstDifference(ex), { prompt: [1, 2, 5, 6], chosen: [7], rejected: [8] }, "differ at the third token");
  assert.deepEqual(
    firstDifference({ prompt: [1], chosen: [3, 0], rejected: [4, 4, 0], weight: 2 }),
    { prompt: [1], chosen: [3], rejected: [4], weight: 2 },
    "differ at once; extra fields kept",
  );
  assert.deepEqual(
    firstDifference({ prompt: [1], chosen: [3, 0], rejected: [3, 3, 0] }),
    { prompt: [1, 3], chosen: [0], rejected: [3] },
    "EOS against a longer answer",
  );
  assert.equal(firstDifference({ prompt: [1], chosen: [3, 4, 0], rejected: [3, 4, 0] }), undefined, "identical answers: nothing to prefer");
  assert.equal(
    firstDifference({ prompt: [1], chosen: [3, 4], rejected: [3, 4, 5] }),
    undefined,
    "a prefix without EOS has no differing token",
  );
});
