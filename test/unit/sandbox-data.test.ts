// Sandbox seed data: deterministic splits, held-out prompts disjoint from training, gold judgements
// that parse to their score, EFT balanced over the scores with the model's own samples first.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseScore } from "../../src/judge/parse.js";
import { balancedEft, type EftCandidate, iftRecords, sandboxSplits } from "../../src/sandbox/data.js";
import { allFamilies, familiesByName } from "../../src/sandbox/families/index.js";
import { judgement, judgePrompt, SANDBOX_ALPHABET, sanitizeAnswer } from "../../src/sandbox/forms.js";
import { score } from "../../src/sandbox/task.js";

const sizes = { eval: 120, ift: 600, eft: 600 };

test("splits are deterministic under a seed and change with it", () => {
  const a = sandboxSplits(allFamilies, sizes, 7);
  const b = sandboxSplits(allFamilies, sizes, 7);
  const c = sandboxSplits(allFamilies, sizes, 8);
  assert.deepEqual(a, b, "same seed → same tasks");
  assert.notDeepEqual(
    a.ift.map((t) => t.instruction),
    c.ift.map((t) => t.instruction),
    "other seed → other tasks",
  );
  assert.equal(a.eval.length, 120, "eval size");
  assert.equal(a.ift.length, 600, "IFT size");
  for (const f of allFamilies) assert.equal(a.ift.filter((t) => t.family === f.name).length, 100, `${f.name}: families in turn`);
});

test("held-out prompts are disjoint from every training prompt, and no prompt repeats", () => {
  const s = sandboxSplits(allFamilies, sizes, 3);
  const evalSet = new Set(s.eval.map((t) => t.instruction));
  assert.equal(evalSet.size, s.eval.length, "eval prompts distinct");
  for (const t of [...s.ift, ...s.eft])
    assert.ok(!evalSet.has(t.instruction), `training prompt ${JSON.stringify(t.instruction)} is held out`);
  const train = [...s.ift, ...s.eft].map((t) => t.instruction);
  assert.equal(new Set(train).size, train.length, "IFT and EFT prompts distinct");
  const ids = [...s.eval, ...s.ift, ...s.eft].map((t) => t.id);
  assert.equal(new Set(ids).size, ids.length, "ids unique");
});

test("IFT completions are the references (gold 5); gold judgements parse to their score and fit the context", () => {
  const s = sandboxSplits(allFamilies, sizes, 4);
  const ift = iftRecords(s.ift);
  for (const [i, r] of ift.entries()) {
    const t = s.ift[i];
    assert.equal(r.completion, t.reference, "completion = reference");
    assert.equal(score(familiesByName([t.family])[0], t.spec, r.completion).score, 5, `${t.id}: reference scores 5`);
  }
  const alphabet = new Set(SANDBOX_ALPHABET);
  for (const t of s.eft.slice(0, 300)) {
    const f = familiesByName([t.family])[0];
    for (const answer of [t.reference, f.corrupt(t.spec, t.reference, () => 0.3, 0.6), "", "zz 99"]) {
      const j = judgement(f, t.spec, answer);
      const parsed = parseScore(j.text);
      assert.deepEqual(parsed, { ok: true, score: j.scored.score }, `${t.id} ${JSON.stringify(answer)}: ${JSON.stringify(j.text)}`);
      const full = judgePrompt(t.instruction, answer) + j.text;
      assert.ok(
        [...full].every((ch) => alphabet.has(ch)),
        `${t.id}: only alphabet characters in ${JSON.stringify(full)}`,
      );
      assert.ok(full.length + 2 <= 192, `${t.id}: judge example of ${full.length} chars fits the 192-token context`);
    }
  }
});

test("EFT is balanced over the scores 0–5 and takes the model's own samples first", () => {
  const s = sandboxSplits(allFamilies, sizes, 5);
  // Stand-in "own samples": the references (score 5) and a truncation of each (some lower score).
  const samples: EftCandidate[] = s.eft.flatMap((task) => [
    { task, answer: task.reference, source: "sample" as const },
    { task, answer: task.reference.slice(0, 2), source: "sample" as const },
  ]);
  const { records, histogram } = balancedEft(allFamilies, s.eft, samples, 600, 1);
  const perScore = [0, 1, 2, 3, 4, 5].map((k) => records.filter((r) => r.score === k).length);
  assert.deepEqual(perScore, [100, 100, 100, 100, 100, 100], `per-score counts ${perScore}`);
  const total = [0, 1, 2, 3, 4, 5].map((k) => histogram.sample[k] + histogram.corruption[k] + histogram.reference[k]);
  assert.deepEqual(total, perScore, "histogram adds up to the records");
  assert.equal(histogram.sample[5], 100, "score 5 filled from own samples before references");
  for (const r of records) assert.equal(parseScore(r.completion).ok, true, "every EFT completion parses");
  assert.deepEqual(balancedEft(allFamilies, s.eft, samples, 600, 1).records, records, "deterministic");
});

test("sanitizeAnswer keeps one line of the alphabet", () => {
  assert.equal(sanitizeAnswer("ab\ncd\uFFFDe"), "ab#cd#e", "newline and unknown become #");
  assert.equal(sanitizeAnswer("1 2 3"), "1 2 3", "clean text unchanged");
});
