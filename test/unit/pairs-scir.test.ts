// SCIR (src/pairs/scir.ts): the judge and implicit preference probabilities, the agreement filter, and
// the consistency penalty (src/train/losses.ts): golden values (computed independently with mpmath at 30
// digits from the KL definitions), its gradient by finite differences, and inside the DPO loss.
import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { loadRunConfig } from "../../src/loop/config.js";
import { methodPairs } from "../../src/loop/methods.js";
import type { Candidate, Judgement } from "../../src/loop/records.js";
import type { LoopPrompt } from "../../src/loop/world.js";
import { implicitPreference, judgePreference, scirPair } from "../../src/pairs/scir.js";
import { consistencyPenalty, defaultDpoLoss, dpoLoss } from "../../src/train/losses.js";

const close = (a: number, b: number, what: string, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

test("preference probabilities: judge σ((s_c − s_r)/τ_J), implicit σ(β·margin)", () => {
  close(judgePreference(4, 2, 1), sigmoid(2), "gap 2, τ 1");
  close(judgePreference(4, 2, 2), sigmoid(1), "gap 2, τ 2");
  close(judgePreference(3, 3, 1), 0.5, "tie");
  close(implicitPreference(5, 0.1), sigmoid(0.5), "β·margin");
  assert.throws(() => judgePreference(1, 0, 0), /temperature must be > 0/);
});

test("scirPair: keeps the SR pair only when the implicit reward orders it the same way", () => {
  const judge = [2, 4.5, 1, 3];
  const agree = scirPair(judge, [-3, -1, -2, -2.5], 1);
  assert.equal(agree.kind, "pair", "implicit(1) − implicit(2) = 1 > 0");
  if (agree.kind === "pair") {
    assert.deepEqual([agree.chosen, agree.rejected], [1, 2], "best vs worst by the judge");
    close(agree.judgeProb, sigmoid(3.5), "q = σ(4.5 − 1)");
    close(agree.implicitMargin, 1, "implicit margin");
  }
  assert.deepEqual(scirPair(judge, [-1, -3, -2, -2.5], 1), { kind: "disagree", implicitMargin: -1 }, "implicit prefers rejected");
  assert.deepEqual(scirPair(judge, [0, -2, -2, 0], 1), { kind: "disagree", implicitMargin: 0 }, "undecided implicit is dropped too");
  assert.deepEqual(scirPair([3, 3], [1, 0], 1), { kind: "tie" }, "judge tie: no pair, as SR");
  assert.deepEqual(scirPair([3, Number.NaN], [1, 0], 1), { kind: "unjudged" }, "one judged candidate");
});

test("consistencyPenalty: golden values (mpmath, from KL(q‖p) + KL(p‖q) and H(p))", () => {
  const cases: [number, number, number, number, number, number][] = [
    // x, q, λ_c, λ_h, value, d/dx
    [0, sigmoid(2), 1, 0.1, 0.8309088740117587, -0.880797077977882],
    [0.5, sigmoid(1), 1, 0.1, 0.12058435557199312, -0.2378512891390273],
    [-1.2, 0.9, 2, 0.5, 4.812784013692081, -2.439007634483567],
    [3, 0.6, 1, 0, 0.9147658740191003, 0.4697865467934096],
  ];
  for (const [x, q, wc, wh, v, d] of cases) {
    const r = consistencyPenalty(x, q, wc, wh);
    close(r.value, v, `value at x=${x}, q=${q}`, 1e-12);
    close(r.dx, d, `d/dx at x=${x}, q=${q}`, 1e-12);
  }
  close(consistencyPenalty(Math.log(3), 0.75, 1, 0).value, 0, "zero at agreement p = q");
  assert.throws(() => consistencyPenalty(0, 1, 1, 0), /must be in \(0, 1\)/, "q = 1 has no logit");
});

test("consistencyPenalty: gradient matches central finite differences", () => {
  for (const q of [0.05, 0.3, 0.5, 0.8, 0.99]) {
    for (const x of [-6, -2, -0.3, 0, 0.7, 2.5, 8]) {
      const h = 1e-5;
      const num = (consistencyPenalty(x + h, q, 1.3, 0.4).value - consistencyPenalty(x - h, q, 1.3, 0.4).value) / (2 * h);
      close(consistencyPenalty(x, q, 1.3, 0.4).dx, num, `x=${x}, q=${q}`, 1e-7);
    }
  }
});

test("dpoLoss with the consistency penalty: golden value and gradients w.r.t. the policy's log-probs", () => {
  const cfg = { ...defaultDpoLoss, consistency: { weight: 1, confidence: 0.1 } };
  const batch = {
    policyChosen: [-10],
    policyRejected: [-12],
    refChosen: [-11],
    refRejected: [-11],
    chosenTokens: [3],
    rejectedTokens: [4],
    judgeProbs: [0.75],
  };
  const r = dpoLoss(batch, cfg);
  // mpmath: softplus(−0.2) + penalty(0.2; q = 0.75), and its derivatives by central differences.
  close(r.loss, 0.8468277061620827, "loss", 1e-12);
  close(r.dPolicyChosen[0], -0.08777037707171724, "d/d policy chosen", 1e-10);
  close(r.dPolicyRejected[0], 0.08777037707171724, "d/d policy rejected", 1e-10);
  assert.ok(r.metrics["scir/penalty"] !== undefined, "penalty metric");
  // Finite differences on a batch with length normalisation and weights.
  const b2 = {
    policyChosen: [-8, -15, -3],
    policyRejected: [-9, -11, -7],
    refChosen: [-8.5, -14, -4],
    refRejected: [-8, -12, -6],
    chosenTokens: [2, 5, 1],
    rejectedTokens: [3, 4, 2],
    weights: [1, 0.5, 2],
    judgeProbs: [0.9, 0.6, 0.55],
  };
  const c2 = { ...cfg, beta: 0.5, lengthNormalize: true, rpoAlpha: 0.3 };
  const g = dpoLoss(b2, c2);
  for (const side of ["policyChosen", "policyRejected"] as const) {
    for (let i = 0; i < 3; i++) {
      const h = 1e-5;
      const plus = structuredClone(b2);
      const minus = structuredClone(b2);
      plus[side][i] += h;
      minus[side][i] -= h;
      const num = (dpoLoss(plus, c2).loss - dpoLoss(minus, c2).loss) / (2 * h);
      const ana = side === "policyChosen" ? g.dPolicyChosen[i] : g.dPolicyRejected[i];
      close(ana, num, `${side}[${i}]`, 1e-8);
    }
  }
  assert.throws(() => dpoLoss({ ...b2, judgeProbs: undefined }, c2), /judgeProbs .* are required/, "the penalty needs q");
  assert.throws(() => dpoLoss({ ...b2, judgeProbs: [0.5, 1, 0.5] }, c2), /judgeProbs\[1\] must be in \(0, 1\)/, "q = 1 refused");
  const off = dpoLoss(b2, { ...c2, consistency: { weight: 0, confidence: 0 } });
  close(off.loss, dpoLoss(b2, { ...c2, consistency: null }).loss, "zero weights = off", 0);
});

test("methodPairs(scir): judge pairs filtered by M1's length-normalised likelihood at t = 1, records carry q and the margin", async () => {
  const dir = await mkdtemp(join(tmpdir(), "srlm-scir-"));
  const cfg = await loadRunConfig({ preset: "sandbox-tiny", set: ["method=scir", "scir.judge_temperature=2"] });
  const prompts: LoopPrompt[] = [
    { id: "a", instruction: "task a" },
    { id: "b", instruction: "task b" },
  ];
  const cand = (prompt_id: string, index: number, gold: number): Candidate => ({
    prompt_id,
    index,
    text: `${prompt_id}${index}`,
    logprob: 0,
    tokens: 2,
    gold,
  });
  const candidates = [cand("a", 0, 1), cand("a", 1, 4), cand("b", 0, 2), cand("b", 1, 3)];
  const j = (prompt_id: string, candidate: number, score: number): Judgement => ({ prompt_id, candidate, sample: 0, text: "", score });
  const judgements = [j("a", 0, 1), j("a", 1, 4), j("b", 0, 2), j("b", 1, 5)];
  // Cached log-probs under M1 (what the stage would compute): a agrees (−2/2 > −6/3), b disagrees.
  const logps = [
    { prompt_id: "a", index: 0, tokens: 3, logps: { 1: -6 } },
    { prompt_id: "a", index: 1, tokens: 2, logps: { 1: -2 } },
    { prompt_id: "b", index: 0, tokens: 2, logps: { 1: -1 } },
    { prompt_id: "b", index: 1, tokens: 2, logps: { 1: -5 } },
  ];
  await writeFile(join(dir, "candidate_logps.jsonl"), `${logps.map((l) => JSON.stringify(l)).join("\n")}\n`);
  const r = await methodPairs({ cfg, t: 1, dir, prompts, candidates, judgements, time: (_k: string, f: () => unknown) => f() } as never);
  assert.deepEqual(
    r.pairs.map((p) => [p.prompt_id, p.chosen[0].content, p.rejected[0].content]),
    [["a", "a1", "a0"]],
    "b dropped",
  );
  close(r.pairs[0].judge_prob as number, sigmoid(3 / 2), "q = σ((4 − 1)/2)");
  close(r.pairs[0].implicit_margin as number, -1 - -2, "−2/2 − (−6/3)");
  assert.equal(r.stats["pairs/dropped_disagree"], 1, "b counted as disagreeing");
  assert.equal(r.stats["scir/agreement"], 0.5, "one of two judge pairs agreed");
});
