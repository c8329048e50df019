// Temporal Self-Rewarding (src/pairs/temporal.ts): the anchored rejected answer, the future-guided
// chosen answer from the future pool alone or from the union with the current one, and when a
// (chosen, anchor) pair is kept.
import assert from "node:assert/strict";
import { test } from "node:test";
import { anchoredRejected, bestOf, futureChosen, temporalPair } from "../../src/pairs/temporal.js";

const N = Number.NaN;

test("anchoredRejected: M1's lowest-judged candidate, earliest among equal; none when nothing is judged", () => {
  assert.equal(anchoredRejected([3, 1, 4, 1]), 1, "lowest, earliest");
  assert.equal(anchoredRejected([N, 2, N]), 1, "unjudged skipped");
  assert.equal(anchoredRejected([N, N]), undefined, "none judged");
  assert.equal(anchoredRejected([]), undefined, "no anchors");
});

test("bestOf: highest, earliest among equal", () => {
  assert.equal(bestOf([2, 5, 5, 1]), 1);
  assert.equal(bestOf([N]), undefined);
});

test("futureChosen: `future` takes the future pool only; `union` the best of both, the future one winning ties", () => {
  assert.deepEqual(
    futureChosen([2, 4, 3], [5, 1], "future"),
    { pool: "future", index: 1, reward: 4 },
    "future only, even if current has a 5",
  );
  assert.deepEqual(futureChosen([2, 4, 3], [5, 1], "union"), { pool: "current", index: 0, reward: 5 }, "union: the current 5");
  assert.deepEqual(futureChosen([2, 5], [5, 1], "union"), { pool: "future", index: 1, reward: 5 }, "union: a tie goes to the future");
  assert.equal(futureChosen([N, N], [5], "future"), undefined, "no judged future candidate");
  assert.deepEqual(futureChosen([], [3, 4], "union"), { pool: "current", index: 1, reward: 4 }, "union without a future model");
  assert.equal(futureChosen([], [], "union"), undefined, "nothing at all");
});

test("temporalPair: chosen must beat the anchor (and by the margin); unjudged sides give no pair", () => {
  assert.deepEqual(temporalPair(4, 1), { kind: "pair", margin: 3 });
  assert.deepEqual(temporalPair(2, 2), { kind: "tie" }, "equal to the anchor");
  assert.deepEqual(temporalPair(1, 2), { kind: "tie" }, "worse than the anchor");
  assert.deepEqual(temporalPair(3, 2, 1.5), { kind: "tie" }, "below the margin");
  assert.deepEqual(temporalPair(undefined, 2), { kind: "unjudged" }, "no chosen");
  assert.deepEqual(temporalPair(3, N), { kind: "unjudged" }, "unjudged anchor");
});
