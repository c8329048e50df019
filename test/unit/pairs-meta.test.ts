// Meta-Rewarding (src/pairs/meta.ts, loop/methods.ts metaJudgePairs): length-controlled answer pairs,
// which judgements the meta-judge compares, verdict parsing (fail-closed), both orders combined —
// position-inconsistent verdicts dropped by default — and the judge-training records.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseVerdict } from "../../src/judge/parse.js";
import { type MetaJudgement, metaJudgePairs } from "../../src/loop/methods.js";
import type { Candidate, Judgement } from "../../src/loop/records.js";
import type { LoopPrompt } from "../../src/loop/world.js";
import { lengthControlledPair, metaOutcome, metaTarget } from "../../src/pairs/meta.js";
import { metaJudgePrompt, sandboxTokenizer } from "../../src/sandbox/forms.js";

test("lengthControlledPair: the shortest among rewards within ρ of the best; rejected the lowest", () => {
  const rewards = [5, 4.5, 2, 1];
  const lengths = [20, 8, 3, 15];
  assert.deepEqual(lengthControlledPair(rewards, lengths, 0), { kind: "pair", chosen: 0, rejected: 3, margin: 4 }, "ρ = 0: the best only");
  // ρ = 0.25: threshold 5 − 0.25·4 = 4 → candidates 0, 1 → the shorter is 1
  assert.deepEqual(lengthControlledPair(rewards, lengths, 0.25), { kind: "pair", chosen: 1, rejected: 3, margin: 3.5 }, "ρ = 0.25");
  // ρ = 0.8: threshold 1.8 → 0, 1, 2 → the shortest is 2
  assert.deepEqual(lengthControlledPair(rewards, lengths, 0.8), { kind: "pair", chosen: 2, rejected: 3, margin: 1 }, "ρ = 0.8");
  assert.deepEqual(
    lengthControlledPair([5, 5, 1], [9, 4, 2], 0),
    { kind: "pair", chosen: 1, rejected: 2, margin: 4 },
    "length breaks a tie at the top",
  );
  assert.deepEqual(lengthControlledPair([5, 1], [9, 2], 1), { kind: "tie" }, "ρ = 1: the shortest is the worst itself");
  assert.deepEqual(lengthControlledPair([3, 3], [1, 2], 0.5), { kind: "tie" }, "all tied");
  assert.deepEqual(lengthControlledPair([3, Number.NaN], [1, 2], 0.5), { kind: "unjudged" }, "one judged");
  assert.deepEqual(lengthControlledPair([4, 3], [1, 2], 0, 2), { kind: "tie" }, "min margin");
  assert.throws(() => lengthControlledPair([1, 2], [1, 1], 1.5), /rho must be in \[0, 1\]/);
});

test("metaTarget: the candidate whose judgements spread most, its highest- vs lowest-scored judgement", () => {
  assert.deepEqual(
    metaTarget([
      [3, 3, 3],
      [1, 3, null],
      [1, 5, 3],
    ]),
    { candidate: 2, high: 1, low: 0 },
    "spreads 0, 2, 4: candidate 2, its 5 vs its 1",
  );
});

test("metaTarget: earliest among equal spreads; none when no two parsed judgements differ", () => {
  assert.deepEqual(
    metaTarget([
      [2, 4],
      [0, 2, 1],
    ]),
    { candidate: 0, high: 1, low: 0 },
    "spreads 2 and 2: candidate 0",
  );
  assert.deepEqual(metaTarget([[4, null, 1, 4]]), { candidate: 0, high: 0, low: 2 }, "earliest highest, parse failure skipped");
  assert.equal(metaTarget([[3, 3], [null, 2], []]), undefined, "nothing to decide");
});

test("parseVerdict: fail-closed, the last anchored `better:` line, only 1 or 2", () => {
  assert.deepEqual(parseVerdict("better: 1"), { ok: true, better: 1 });
  assert.deepEqual(parseVerdict("hmm\nbetter: 2\n"), { ok: true, better: 2 });
  assert.equal(parseVerdict("better: 3").ok, false, "out of range");
  assert.equal(parseVerdict("better: 1\nbetter: x").ok, false, "a bad last line is not rescued");
  assert.equal(parseVerdict("the better: 1").ok, false, "not line-anchored");
  assert.equal(parseVerdict("").ok, false, "empty");
});

test("metaOutcome: both orders must name the same judgement (default); votes accept a single parsed order", () => {
  // order 1 shows A first; order 2 shows B first.
  assert.deepEqual(metaOutcome(1, 2), { kind: "pair", preferred: "a" }, "A first then second: A both times");
  assert.deepEqual(metaOutcome(2, 1), { kind: "pair", preferred: "b" }, "B both times");
  assert.deepEqual(metaOutcome(1, 1), { kind: "inconsistent" }, "always the first shown: position bias");
  assert.deepEqual(metaOutcome(2, 2), { kind: "inconsistent" }, "always the second shown");
  assert.deepEqual(metaOutcome(1, null), { kind: "unparsed" }, "consistent rule needs both");
  assert.deepEqual(metaOutcome(1, null, "votes"), { kind: "pair", preferred: "a" }, "votes: one parsed order");
  assert.deepEqual(metaOutcome(null, 1, "votes"), { kind: "pair", preferred: "b" }, "votes: order 2 names B");
  assert.deepEqual(metaOutcome(1, 1, "votes"), { kind: "inconsistent" }, "votes: 1–1 split");
  assert.deepEqual(metaOutcome(null, null, "votes"), { kind: "unparsed" }, "votes: none");
});

test("metaJudgePrompt: one line per judgement, in the sandbox alphabet", () => {
  const text = metaJudgePrompt("sort: 3 1", "1 3", "trace\n++\nScore: 2", "t\nScore: 5");
  assert.equal(text, "sort: 3 1\n>1 3\n?1:trace#++#Score: 2\n?2:t#Score: 5\n!");
  assert.ok(sandboxTokenizer().encode(text).length > 0, "encodes");
});

test("metaJudgePairs: both orders → judge pair (prompt = the judge prompt); inconsistent, unparsed and skipped ones dropped", () => {
  const prompts: LoopPrompt[] = ["a", "b", "c", "d"].map((id) => ({ id, instruction: `task ${id}` }));
  const candidates: Candidate[] = prompts.map((p) => ({ prompt_id: p.id, index: 0, text: `ans ${p.id}`, logprob: 0, tokens: 1, gold: 4 }));
  const judgements: Judgement[] = prompts.flatMap((p) => [
    { prompt_id: p.id, candidate: 0, sample: 0, text: `${p.id} says 5\nScore: 5`, score: 5 },
    { prompt_id: p.id, candidate: 0, sample: 1, text: `${p.id} says 1\nScore: 1`, score: 1 },
  ]);
  const m = (prompt_id: string, order: 1 | 2, verdict: 1 | 2 | null, text: string | null = "better: ?"): MetaJudgement => ({
    prompt_id,
    candidate: 0,
    high: 0,
    low: 1,
    order,
    text,
    verdict,
  });
  const metas = [
    m("a", 1, 1),
    m("a", 2, 2), // a: the high judgement (A) both times
    m("b", 1, 2),
    m("b", 2, 1), // b: the low judgement (B) both times
    m("c", 1, 1),
    m("c", 2, 1), // c: always the first shown: inconsistent
    m("d", 1, null, null),
    m("d", 2, null, null), // d: did not fit the context
  ];
  const r = metaJudgePairs(3, "meta", "consistent", prompts, candidates, judgements, metas, (p, a) => `${p.instruction}|${a}`);
  assert.deepEqual(
    r.pairs.map((p) => [p.prompt_id, p.prompt[0].content, p.chosen[0].content, p.rejected[0].content, p.kind, p.judged_answer]),
    [
      ["a", "task a|ans a", "a says 5\nScore: 5", "a says 1\nScore: 1", "judge", "ans a"],
      ["b", "task b|ans b", "b says 1\nScore: 1", "b says 5\nScore: 5", "judge", "ans b"],
    ],
    "judge pairs",
  );
  assert.equal(r.pairs[0].iteration, 3);
  assert.equal(r.stats["meta/targets"], 4);
  assert.equal(r.stats["meta/judge_pairs"], 2);
  assert.equal(r.stats["meta/inconsistent"], 1, "c");
  assert.equal(r.stats["meta/too_long"], 1, "d");
  assert.equal(r.stats["meta/unparsed"], 0);
  // gold 4: a's chosen says 5 (|1|) vs 1 (|3|): closer; b's chosen says 1: farther.
  assert.equal(r.stats["meta/chosen_closer_to_gold"], 0.5);
  const votes = metaJudgePairs(1, "meta", "votes", prompts, candidates, judgements, [m("a", 1, 1), m("a", 2, null)], (_p, a) => a);
  assert.equal(votes.pairs.length, 1, "votes: a single parsed order suffices");
  const strict = metaJudgePairs(1, "meta", "consistent", prompts, candidates, judgements, [m("a", 1, 1), m("a", 2, null)], (_p, a) => a);
  assert.equal(strict.pairs.length, 0, "consistent: dropped");
  assert.equal(strict.stats["meta/unparsed"], 1);
  assert.equal(strict.stats["meta/verdict_parse_failures"], 0.5, "one of two generated verdicts failed");
});
