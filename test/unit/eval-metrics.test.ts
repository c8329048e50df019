// Judge-quality statistics on hand-computed cases.
import assert from "node:assert/strict";
import { test } from "node:test";
import { averageRanks, bestOfNAccuracy, meanAbsoluteError, pairwiseAccuracy, spearman, winRate } from "../../src/eval/metrics.js";

const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);

test("average ranks share ties", () => {
  assert.deepEqual(averageRanks([10, 20, 20, 5]), [2, 3.5, 3.5, 1], "ties get the mean rank");
});

test("MAE and Spearman skip unparsed judgements", () => {
  close(meanAbsoluteError([1, 2, 3], [2, Number.NaN, 1]), 1.5, "MAE over parsed");
  close(spearman([1, 2, 3, 4], [10, 20, 30, 40]), 1, "monotone → 1");
  close(spearman([1, 2, 3, 4], [4, 3, 2, 1]), -1, "reversed → −1");
  // gold ranks 1,2,3.5,3.5 vs judged ranks 1,3,2,4 → hand: Pearson of the rank vectors
  const gr = [1, 2, 3.5, 3.5];
  const jr = [1, 3, 2, 4];
  const m = 2.5;
  const num = gr.reduce((s, g, i) => s + (g - m) * (jr[i] - m), 0);
  const den = Math.sqrt(gr.reduce((s, g) => s + (g - m) ** 2, 0) * jr.reduce((s, j) => s + (j - m) ** 2, 0));
  close(spearman([1, 2, 5, 5], [0, 2, 1, 3]), num / den, "with ties");
  assert.ok(Number.isNaN(spearman([1, 1], [1, 2])), "constant gold → NaN");
});

test("pairwise accuracy: gold ties skipped, judged ties half, unparsed wrong", () => {
  const r = pairwiseAccuracy([
    { gold: [5, 3, 3], judged: [4, 4, 1] }, // (0,1) judged tie → 0.5; (0,2) right → 1; (1,2) gold tie → skipped
    { gold: [0, 2], judged: [Number.NaN, 1] }, // unparsed → 0
  ]);
  assert.equal(r.pairs, 3, "three pairs with different gold");
  close(r.accuracy, 1.5 / 3, "credit");
});

test("best-of-N accuracy: unique gold best required, judged ties share credit", () => {
  const r = bestOfNAccuracy([
    { gold: [5, 2, 1, 0], judged: [4, 4, 1, 0] }, // best tied with one other at the top → 1/2
    { gold: [3, 4, 1, 0], judged: [5, 4, 1, 0] }, // best not on top → 0
    { gold: [5, 5, 1, 0], judged: [5, 4, 1, 0] }, // no unique best → skipped
    { gold: [1, 4, 0, 2], judged: [1, 3, Number.NaN, 2] }, // best strictly on top → 1
    { gold: [5, 1], judged: [Number.NaN, Number.NaN] }, // nothing parsed → 0, not a shared tie
  ]);
  assert.equal(r.groups, 4, "groups with a unique best");
  close(r.accuracy, 1.5 / 4, "credit");
});

test("win rate counts ties half", () => {
  close(winRate([3, 2, 5], [1, 2, 5]), (1 + 0.5 + 0.5) / 3, "win, tie, tie");
  assert.throws(() => winRate([1], [1, 2]), /1 scores for A, 2 for B/, "length mismatch");
});
