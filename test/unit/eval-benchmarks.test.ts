// GSM8K final-number parsing (property tests and the real test set), MT-Bench rating parsing,
// RewardBench accuracy.
import assert from "node:assert/strict";
import { test } from "node:test";
import { mulberry32 } from "../../src/engine/tensor.js";
import { exactMatch, gsm8kAccuracy, gsm8kProblemSchema, lastNumber, referenceAnswer } from "../../src/eval/gsm8k.js";
import { parseRating, summariseRatings } from "../../src/eval/mt-bench.js";
import { rewardAccuracy } from "../../src/eval/reward-bench.js";
import { readJsonl } from "../../src/io/jsonl.js";
import { sharedPath } from "../helpers.js";

/** n with thousands commas: 1234567 → "1,234,567". */
const withCommas = (n: number) => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");

test("lastNumber: property — a formatted number after arbitrary prose parses back to its value", () => {
  const rng = mulberry32(7);
  const words = ["so", "the total is", "we get", "answer:", "= ", "(", "that makes", "\n####"];
  for (let t = 0; t < 500; t++) {
    const int = Math.floor(rng() * 10 ** (1 + Math.floor(rng() * 7)));
    const cents = rng() < 0.3 ? Math.floor(rng() * 100) : -1;
    const negative = rng() < 0.3;
    let s = rng() < 0.5 ? withCommas(int) : String(int);
    if (cents >= 0) s += `.${String(cents).padStart(2, "0")}`;
    if (rng() < 0.3) s = `$${s}`;
    if (negative) s = `-${s}`;
    const value = (negative ? -1 : 1) * (int + (cents >= 0 ? cents / 100 : 0));
    const prose = `First 12 + 7 = 19 and 3-1 = 2. ${words[t % words.length]} ${s}${rng() < 0.5 ? "." : ""}`;
    assert.ok(Math.abs((lastNumber(prose) as number) - value) < 1e-9, `${JSON.stringify(prose)} → ${lastNumber(prose)}, want ${value}`);
  }
});

test("lastNumber: edge cases", () => {
  assert.equal(lastNumber("10-3 = 7"), 7);
  assert.equal(lastNumber("it is 10-3"), 3, "the minus between numbers is not a sign");
  assert.equal(lastNumber("costs $1,250.50."), 1250.5);
  assert.equal(lastNumber("lists 1,2,3"), 3, "not a thousands group");
  assert.equal(lastNumber("no digits here"), undefined);
  assert.ok(exactMatch("#### 18.00", 18));
  assert.ok(!exactMatch("about 17", 18));
});

test("GSM8K test set: all 1319 references parse; answering with the reference scores 100%", async () => {
  const problems = await readJsonl(sharedPath("data/gsm8k/test.jsonl"), gsm8kProblemSchema);
  assert.equal(problems.length, 1319);
  const refs = problems.map((p) => referenceAnswer(p.answer));
  assert.ok(refs.every(Number.isInteger));
  assert.ok(refs.includes(-10) && refs.includes(1450000), "signs and thousands commas");
  const self = gsm8kAccuracy(
    problems.map((p) => p.answer),
    refs,
  );
  assert.equal(self.accuracy, 1);
  // Answering every problem with the next problem's reference: right only where the numbers coincide.
  const shifted = gsm8kAccuracy(
    problems.map((_, i) => problems[(i + 1) % problems.length].answer),
    refs,
  );
  const coincide = refs.filter((r, i) => r === refs[(i + 1) % refs.length]).length;
  assert.equal(shifted.correct, coincide);
});

test("MT-Bench ratings: the last `Rating: [[n]]`, in [1, 10], fail-closed", () => {
  assert.deepEqual(parseRating("Solid answer.\nRating: [[8]]"), { ok: true, rating: 8 });
  assert.deepEqual(parseRating("Rating: [[3]] … on reflection Rating: [[6.5]]"), { ok: true, rating: 6.5 });
  assert.equal(parseRating("Rating: [[11]]").ok, false);
  assert.equal(parseRating("Rating: [[0]]").ok, false);
  assert.equal(parseRating("Rating: [[8]]\nRating: [[eight]]").ok, false);
  assert.equal(parseRating("I'd say 8/10").ok, false);
  const s = summariseRatings([8, 6, Number.NaN, 7]);
  assert.deepEqual([s.mean, s.n, s.failed], [7, 3, 1]);
  assert.ok(Math.abs(s.standardError - Math.sqrt(1 / 3)) < 1e-12);
});

test("RewardBench accuracy: chosen strictly higher; ties and failures count 0 (half in tiesHalf)", () => {
  const r = rewardAccuracy([8, 5, 6, Number.NaN, 9], [3, 5, 7, 2, 1]);
  assert.deepEqual([r.correct, r.ties, r.failed, r.n], [2, 1, 1, 5]);
  assert.equal(r.accuracy, 0.4);
  assert.equal(r.tiesHalf, 0.6);
});
