// Self-instruct: the new-task seed records M1 can learn from, the sandbox world's few-shot prompts and
// filter, and the loop's pure selection of model-written instructions.
import assert from "node:assert/strict";
import { mkdir, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { writeJsonl } from "../../src/io/jsonl.js";
import { selectSelfInstructed, selfInstructMetrics } from "../../src/loop/run.js";
import { sandboxWorld } from "../../src/loop/sandbox-world.js";
import { generateTasks, iftRecords, newTaskRecords, sandboxSplits } from "../../src/sandbox/data.js";
import { allFamilies } from "../../src/sandbox/families/index.js";
import { NEW_TASK_SHOTS, SANDBOX_ALPHABET } from "../../src/sandbox/forms.js";

const sizes = { eval: 60, ift: 120, eft: 60 };

/** The example instructions of a new-task prompt ("new:a\nnew:b\nnew:"). */
function examplesOf(prompt: string): string[] {
  assert.ok(prompt.endsWith("new:"), `prompt ends with the open "new:" line: ${JSON.stringify(prompt)}`);
  const lines = prompt.split("\n");
  assert.equal(lines.at(-1), "new:", `last line is the open one: ${JSON.stringify(prompt)}`);
  return lines.slice(0, -1).map((l) => {
    assert.ok(l.startsWith("new:"), `example line starts with "new:": ${JSON.stringify(l)}`);
    return l.slice("new:".length);
  });
}

test("newTaskRecords: few-shot IFT instructions → another IFT instruction, never a held-out one", () => {
  const s = sandboxSplits(allFamilies, sizes, 2);
  const ift = new Set(s.ift.map((t) => t.instruction));
  const held = new Set(s.eval.map((t) => t.instruction));
  const recs = newTaskRecords(s.ift, 300, NEW_TASK_SHOTS, 9);
  assert.equal(recs.length, 300, "n records, wrapping around the 120 tasks");
  const alphabet = new Set(SANDBOX_ALPHABET);
  for (const r of recs) {
    assert.ok(ift.has(r.completion), `${r.id}: completion ${JSON.stringify(r.completion)} is an IFT instruction`);
    assert.ok(!held.has(r.completion), `${r.id}: completion is not held out`);
    const ex = examplesOf(r.prompt);
    assert.equal(ex.length, NEW_TASK_SHOTS, `${r.id}: ${NEW_TASK_SHOTS} examples`);
    for (const e of ex) assert.ok(ift.has(e) && !held.has(e), `${r.id}: example ${JSON.stringify(e)} is an IFT instruction`);
    assert.equal(new Set([...ex, r.completion]).size, NEW_TASK_SHOTS + 1, `${r.id}: examples and completion all differ`);
    assert.equal(r.family, s.ift.find((t) => t.instruction === r.completion)?.family, `${r.id}: family of the completion`);
    const full = r.prompt + r.completion;
    assert.ok(
      [...full].every((ch) => alphabet.has(ch)),
      `${r.id}: only alphabet characters`,
    );
    assert.ok(full.length + 2 <= 192, `${r.id}: ${full.length} characters + BOS + EOS fit the 192-token context`);
  }
  assert.equal(new Set(recs.map((r) => r.id)).size, recs.length, "ids unique");
  assert.equal(new Set(recs.slice(0, 120).map((r) => r.completion)).size, 120, "every IFT task is a completion once before any repeats");
  const mixed = recs.filter((r) => new Set(examplesOf(r.prompt).map((e) => s.ift.find((t) => t.instruction === e)?.family)).size > 1);
  assert.ok(mixed.length > recs.length / 2, `examples mix families (${mixed.length} of ${recs.length} prompts)`);
});

test("newTaskRecords is deterministic under its seed, changes with it, and n = 0 gives none", () => {
  const s = sandboxSplits(allFamilies, sizes, 2);
  assert.deepEqual(newTaskRecords(s.ift, 50, 3, 4), newTaskRecords(s.ift, 50, 3, 4), "same seed → same records");
  assert.notDeepEqual(newTaskRecords(s.ift, 50, 3, 4), newTaskRecords(s.ift, 50, 3, 5), "other seed → other records");
  assert.deepEqual(newTaskRecords(s.ift, 0, 3, 4), [], "n = 0 → no records");
  assert.throws(() => newTaskRecords(s.ift.slice(0, 3), 1, 3, 4), /3 shots and a completion need 4 tasks/, "too few tasks");
});

test("selectSelfInstructed keeps parsable, new, distinct instructions in order, up to count", () => {
  const accept = (x: string) => x.startsWith("ok");
  const excluded = (x: string) => x.endsWith("held");
  const texts = ["ok a", "bad", "ok held", "ok b", "ok a", "", "ok held", "ok c", "ok d", "ok e"];
  const r = selectSelfInstructed(texts, accept, excluded, 3);
  assert.deepEqual(r.accepted, ["ok a", "ok b", "ok c"], "first three kept, in the order written");
  assert.deepEqual(
    r.verdicts,
    ["accepted", "unparsable", "excluded", "accepted", "duplicate", "unparsable", "excluded", "accepted", "unused", "unused"],
    "one verdict per text; an excluded text written twice stays excluded",
  );
  assert.deepEqual(r.counts, { generated: 10, accepted: 3, unparsable: 2, excluded: 2, duplicate: 1, unused: 2 }, "counts of the verdicts");
  const all = selectSelfInstructed(texts, accept, excluded, 100);
  assert.deepEqual(all.accepted, ["ok a", "ok b", "ok c", "ok d", "ok e"], "no cap reached: every good text kept");
  assert.equal(all.counts.unused, 0, "nothing unused below the cap");
  const none = selectSelfInstructed(["x", "y"], accept, excluded, 5);
  assert.deepEqual(none.accepted, [], "nothing parses → nothing kept");
  assert.deepEqual(selectSelfInstructed([], accept, excluded, 5).counts.generated, 0, "no texts");
});

test("selfInstructMetrics: rates are shares of the instructions looked at", () => {
  const m = selfInstructMetrics({ generated: 10, accepted: 3, unparsable: 2, excluded: 2, duplicate: 1, unused: 2 });
  assert.deepEqual(
    m,
    {
      "prompts/generated": 10,
      "prompts/accepted": 3,
      "prompts/unparsable_rate": 2 / 8,
      "prompts/excluded_rate": 2 / 8,
      "prompts/duplicate_rate": 1 / 8,
    },
    "flat metrics",
  );
  const empty = selfInstructMetrics({ generated: 0, accepted: 0, unparsable: 0, excluded: 0, duplicate: 0, unused: 0 });
  assert.ok(Number.isNaN(empty["prompts/unparsable_rate"]), "no texts → NaN rate (null in metrics.jsonl)");
});

test("sandbox world: few-shot prompts from IFT instructions, parse filter, held-out and seen instructions excluded", async () => {
  const dir = await mkdtemp(join(tmpdir(), "srlm-si-"));
  const s = sandboxSplits(allFamilies, sizes, 3);
  await mkdir(join(dir, "data"));
  await writeJsonl(join(dir, "data", "eval.jsonl"), s.eval);
  await writeJsonl(join(dir, "data", "ift.jsonl"), iftRecords(s.ift));
  await writeJsonl(join(dir, "data", "eft.jsonl"), []);
  const world = await sandboxWorld(allFamilies, dir);
  const ift = new Set(s.ift.map((t) => t.instruction));
  const p = world.newTaskPrompt(17, 5);
  assert.equal(world.newTaskPrompt(17, 5), p, "deterministic in (seed, index)");
  assert.notEqual(world.newTaskPrompt(17, 6), p, "another index → other examples");
  assert.notEqual(world.newTaskPrompt(18, 5), p, "another seed → other examples");
  const ex = examplesOf(p);
  assert.equal(new Set(ex).size, NEW_TASK_SHOTS, `${NEW_TASK_SHOTS} distinct examples`);
  for (const e of ex) assert.ok(ift.has(e), `example ${JSON.stringify(e)} is an IFT instruction`);
  const fresh = generateTasks(allFamilies, 6, 12345, "fresh", new Set([...ift, ...s.eval.map((t) => t.instruction)]));
  for (const t of fresh) {
    assert.ok(world.accepts(t.instruction), `fresh task ${JSON.stringify(t.instruction)} parses`);
    assert.ok(!world.excluded(t.instruction), `fresh task ${JSON.stringify(t.instruction)} is not excluded`);
  }
  assert.ok(!world.accepts("write a poem"), "free text does not parse");
  assert.ok(world.excluded(s.eval[0].instruction), "held-out instruction excluded");
  assert.ok(world.excluded(s.ift[0].instruction), "IFT instruction excluded");
});
