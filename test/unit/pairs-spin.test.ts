// SPIN's pair builder (src/pairs/spin.ts), its loop records, and the sandbox's reference solver that
// gives SPIN its chosen side for any sandbox prompt.
import assert from "node:assert/strict";
import { test } from "node:test";
import { loadRunConfig } from "../../src/loop/config.js";
import { methodPairs } from "../../src/loop/methods.js";
import type { Candidate } from "../../src/loop/records.js";
import type { LoopPrompt, World } from "../../src/loop/world.js";
import { spinPair } from "../../src/pairs/spin.js";
import { generateTasks } from "../../src/sandbox/data.js";
import { allFamilies } from "../../src/sandbox/families/index.js";
import { parseTask } from "../../src/sandbox/parse.js";
import { score } from "../../src/sandbox/task.js";

test("spinPair: rejected = the first candidate that differs from the reference", () => {
  assert.deepEqual(spinPair("1 2 3", ["1 2 3", "3 2 1", "1 2"]), { kind: "pair", rejected: 1 }, "a copy of the reference is skipped");
  assert.deepEqual(spinPair("1 2 3", ["9", "1 2 3"]), { kind: "pair", rejected: 0 }, "the first sample when it differs");
});

test("spinPair: dropped without a reference, without candidates, or when every answer is the reference", () => {
  assert.deepEqual(spinPair(undefined, ["a"]), { kind: "no_reference" }, "unknown reference");
  assert.deepEqual(spinPair("a", []), { kind: "unjudged" }, "no candidates");
  assert.deepEqual(spinPair("a", ["a", "a"]), { kind: "identical" }, "the model already plays the reference");
});

test("every family's solve() meets all five criteria on generated and parsed tasks", () => {
  const tasks = generateTasks(allFamilies, 120, 4242, "solve");
  for (const t of tasks) {
    const f = allFamilies.find((x) => x.name === t.family);
    assert.ok(f);
    const answer = f.solve(t.spec);
    assert.ok(answer !== undefined, `${t.id}: solved`);
    assert.equal(score(f, t.spec, answer).score, 5, `${t.id}: ${JSON.stringify(answer)} meets all five criteria`);
    const parsed = parseTask(allFamilies, t.instruction);
    assert.ok(parsed, `${t.id}: parses`);
    assert.equal(score(f, parsed.spec, f.solve(parsed.spec) as string).score, 5, `${t.id}: solved from the parsed spec`);
  }
});

test("methodPairs(spin): chosen = world.reference, pairs_stats counts every prompt, no judge needed", async () => {
  const cfg = await loadRunConfig({ preset: "sandbox-tiny", set: ["method=spin"] });
  const prompts: LoopPrompt[] = [
    { id: "a", instruction: "task a" },
    { id: "b", instruction: "task b" },
    { id: "c", instruction: "free text" },
  ];
  const refs: Record<string, string> = { a: "gold a", b: "gold b" };
  const world = {
    reference: (p: LoopPrompt) => refs[p.id],
    gold: (p: LoopPrompt, answer: string) => (p.id === "c" ? undefined : answer.startsWith("gold") ? 5 : 2),
  } as unknown as World;
  const cand = (prompt_id: string, index: number, text: string, gold?: number): Candidate => ({
    prompt_id,
    index,
    text,
    logprob: -1,
    tokens: 2,
    ...(gold !== undefined ? { gold } : {}),
  });
  const candidates = [cand("a", 0, "gold a", 5), cand("a", 1, "wrong", 2), cand("b", 0, "gold b", 5), cand("c", 0, "x")];
  const r = await methodPairs({ cfg, world, t: 1, prompts, candidates, judgements: [] } as never);
  assert.deepEqual(
    r.pairs.map((p) => [p.prompt_id, p.chosen[0].content, p.rejected[0].content, p.source_chosen, p.score_chosen]),
    [["a", "gold a", "wrong", "reference", null]],
    "a: reference vs the first differing sample; b: only the reference itself was sampled; c: no reference",
  );
  assert.equal(r.pairs[0].gold_chosen, 5, "gold of the reference");
  assert.equal(r.pairs[0].method, "spin", "method field");
  assert.equal(r.stats["pairs/count"], 1, "one pair");
  assert.equal(r.stats["pairs/dropped_identical"], 1, "b dropped: identical");
  assert.equal(r.stats["pairs/dropped_no_reference"], 1, "c dropped: no reference");
  assert.equal(r.stats["pairs/gold_gap"], 3, "5 − 2");
  assert.ok(Number.isNaN(r.stats["judge/parse_failures"]), "no judgements");
});
