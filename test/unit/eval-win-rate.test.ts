// Win rates on synthetic data with known answers and on the real AlpacaEval annotations in ../shared.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  alpacaMetrics,
  combineOrders,
  pairOutputs,
  parsePairVerdict,
  readAlpacaAnnotations,
  readAlpacaOutputs,
} from "../../src/eval/alpaca.js";
import { lengthControlledWinRate, rawWinRate } from "../../src/eval/win-rate.js";
import { sharedPath } from "../helpers.js";

const logit = (p: number) => Math.log(p / (1 - p));
const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

test("raw win rate: mean of preference − 1, sem with n − 1, counts", () => {
  const r = rawWinRate([1, 2, 1.5, 2]);
  assert.equal(r.winRate, 0.625);
  // y = 0, 1, .5, 1: var (n−1) = (0.390625 + 0.140625 + 0.015625 + 0.140625) / 3
  assert.ok(Math.abs(r.standardError - Math.sqrt(0.6875 / 3 / 4)) < 1e-12);
  assert.deepEqual([r.nWins, r.nWinsBase, r.nDraws, r.n], [2, 1, 1, 4]);
  assert.throws(() => rawWinRate([0.5]), /preference 0 is 0.5/);
});

test("LC win rate: a balanced two-group design has a closed form", () => {
  // m records at length difference +d won with probability p+, m at −d with p−. The saturated fit
  // gives σ(a ± b·x) = p±, so a = (logit p+ + logit p−)/2 and var(a) = (1/(m p+ q+) + 1/(m p− q−))/4.
  const m = 40;
  const [pPlus, pMinus] = [0.8, 0.3];
  const prefs: number[] = [];
  const lens: [number, number][] = [];
  for (let i = 0; i < m; i++) {
    prefs.push(1 + (i < 0.8 * m ? 1 : 0), 1 + (i < 0.3 * m ? 1 : 0));
    lens.push([100, 150], [150, 100]);
  }
  const lc = lengthControlledWinRate(prefs, lens);
  const a = (logit(pPlus) + logit(pMinus)) / 2;
  assert.ok(lc.converged);
  assert.ok(Math.abs(lc.intercept - a) < 1e-9, `intercept ${lc.intercept} vs ${a}`);
  assert.ok(Math.abs(lc.winRate - sigmoid(a)) < 1e-9);
  const varA = (1 / (m * pPlus * (1 - pPlus)) + 1 / (m * pMinus * (1 - pMinus))) / 4;
  const se = sigmoid(a) * (1 - sigmoid(a)) * Math.sqrt(varA);
  assert.ok(Math.abs(lc.standardError - se) < 1e-9, `se ${lc.standardError} vs ${se}`);
  assert.ok(lc.slope > 0, "longer answers won more often here");
});

test("LC win rate: equal lengths reduce to the raw win rate; flipping roles gives 1 − win rate", () => {
  const prefs = [1, 2, 1.2, 1.9, 1.5, 1, 1.7];
  const same = lengthControlledWinRate(
    prefs,
    prefs.map(() => [10, 10]),
  );
  assert.ok(Math.abs(same.winRate - rawWinRate(prefs).winRate) < 1e-9);
  const lens: [number, number][] = [
    [10, 40],
    [30, 5],
    [22, 22],
    [7, 90],
    [60, 61],
    [3, 1],
    [45, 20],
  ];
  const fwd = lengthControlledWinRate(prefs, lens);
  const back = lengthControlledWinRate(
    prefs.map((p) => 3 - p),
    lens.map(([a, b]) => [b, a]),
  );
  assert.ok(Math.abs(fwd.winRate + back.winRate - 1) < 1e-9);
  assert.ok(Math.abs(fwd.standardError - back.standardError) < 1e-9);
});

test("verdicts: the last `better:` line, fail-closed; two orders averaged", () => {
  assert.deepEqual(parsePairVerdict("Answer 1 is vague.\nbetter: 2"), { ok: true, verdict: 2 });
  assert.deepEqual(parsePairVerdict("better: 1\nbetter: tie"), { ok: true, verdict: "tie" });
  assert.equal(parsePairVerdict("better: 2\nbetter: both").ok, false);
  assert.equal(parsePairVerdict("I prefer answer 2").ok, false);
  assert.equal(combineOrders(2, 1), 2, "model wins in both orders");
  assert.equal(combineOrders(1, 1), 1.5, "position bias: the first answer always wins");
  assert.equal(combineOrders("tie", 1), 1.75);
  assert.equal(combineOrders(2, null), null);
});

test("real AlpacaEval files: 805 pairs, the real judge's raw and LC win rates", () => {
  const ref = readAlpacaOutputs(sharedPath("data/alpaca_eval/reference_outputs.json"));
  const model = readAlpacaOutputs(sharedPath("data/alpaca_eval/text_davinci_003_outputs.json"));
  assert.equal(pairOutputs(model, ref).length, 805);
  assert.throws(() => pairOutputs(model.slice(1), ref), /1 of 805 reference instructions have no model output/);
  const ann = readAlpacaAnnotations(sharedPath("data/alpaca_eval/annotations_text_davinci_003_vs_reference.json"));
  const m = alpacaMetrics(ann);
  assert.equal(m.raw.n, 805);
  assert.equal(m.nFailed, 0);
  // Independent sums: the mean of preference − 1 over the file.
  const mean = ann.reduce((s, a) => s + (a.preference as number) - 1, 0) / ann.length;
  assert.ok(Math.abs(m.raw.winRate - mean) < 1e-12);
  assert.ok(Math.abs(m.raw.winRate - 0.019621) < 1e-5, `raw ${m.raw.winRate}`);
  // scipy BFGS on the same likelihood (see docs/evaluation.md): a = −2.482217, LC = 7.7114% ± 2.3259%.
  assert.ok(m.lengthControlled.converged);
  assert.ok(Math.abs(m.lengthControlled.intercept + 2.482217) < 1e-5, `intercept ${m.lengthControlled.intercept}`);
  assert.ok(Math.abs(m.lengthControlled.standardError - 0.023259) < 1e-5);
  // text_davinci_003's answers are shorter than the reference's; controlling for that raises its win rate.
  assert.ok(m.lengthControlled.winRate > m.raw.winRate);
});
