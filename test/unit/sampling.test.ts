// Top-k / top-p / temperature on hand-made distributions, and the categorical draw.
import assert from "node:assert/strict";
import { test } from "node:test";
import { mulberry32 } from "../../src/engine/tensor.js";
import { drawCategorical, makeScratch, sampleToken, samplingDistribution } from "../../src/model/sampling.js";
import { assertClose } from "../helpers.js";

const probs = [0.05, 0.4, 0.1, 0.3, 0.15]; // sorted: 1 (.4), 3 (.3), 4 (.15), 2 (.1), 0 (.05)
const logits = Float32Array.from(probs.map(Math.log));

function dist(topK: number, topP: number, temperature = 1): number[] {
  const s = makeScratch(5);
  samplingDistribution(logits, 0, 5, { temperature, topK, topP }, s);
  return Array.from(s.probs);
}

test("no truncation reproduces the softmax", () => {
  for (const [i, p] of dist(0, 1).entries()) assertClose(p, probs[i], `p[${i}]`, 1e-5, 1e-6);
});

test("top-k keeps the k most likely tokens, renormalised", () => {
  const d = dist(2, 1);
  assertClose(d[1], 0.4 / 0.7, "p1", 1e-5, 1e-6);
  assertClose(d[3], 0.3 / 0.7, "p3", 1e-5, 1e-6);
  assert.deepEqual([d[0], d[2], d[4]], [0, 0, 0]);
});

test("top-p keeps the smallest prefix reaching p", () => {
  // 0.4 < 0.6 ≤ 0.4 + 0.3 → {1, 3}
  const d = dist(0, 0.6);
  assert.deepEqual(
    d.map((p) => p > 0),
    [false, true, false, true, false],
  );
  // exactly reaching the boundary: 0.4 + 0.3 + 0.15 = 0.85
  const e = dist(0, 0.85);
  assert.deepEqual(
    e.map((p) => p > 0),
    [false, true, false, true, true],
  );
  // tiny p keeps the top token only
  assert.deepEqual(
    dist(0, 0.01).map((p) => p > 0),
    [false, true, false, false, false],
  );
  // top-k applies before top-p
  assert.deepEqual(
    dist(1, 0.99).map((p) => p > 0),
    [false, true, false, false, false],
  );
});

test("temperature sharpens and flattens", () => {
  const cold = dist(0, 1, 0.5);
  const hot = dist(0, 1, 2);
  assert.ok(cold[1] > 0.4 && hot[1] < 0.4, "cold[1] > 0.4 && hot[1] < 0.4");
  const z = probs.reduce((a, p) => a + p * p, 0);
  assertClose(cold[1], (0.4 * 0.4) / z, "T=0.5 squares the probabilities", 1e-5, 1e-6);
});

test("temperature 0 is greedy", () => {
  assert.equal(
    sampleToken(logits, 0, 5, { temperature: 0, topK: 0, topP: 1 }, () => 0.99, makeScratch(5)),
    1,
  );
});

test("draws follow the distribution (20k draws, within 4 standard errors)", () => {
  const s = makeScratch(5);
  const rng = mulberry32(42);
  const counts = [0, 0, 0, 0, 0];
  const N = 20000;
  for (let i = 0; i < N; i++) counts[sampleToken(logits, 0, 5, { temperature: 1, topK: 0, topP: 0.85 }, rng, s)]++;
  const target = [0, 0.4 / 0.85, 0, 0.3 / 0.85, 0.15 / 0.85];
  counts.forEach((c, i) => {
    const se = Math.sqrt((target[i] * (1 - target[i])) / N);
    assert.ok(Math.abs(c / N - target[i]) <= 4 * se + 1e-12, `token ${i}: ${c / N} vs ${target[i]}`);
  });
});

test("categorical draw edges", () => {
  const p = Float32Array.from([0, 0.5, 0, 0.5, 0]);
  assert.equal(drawCategorical(p, 5, 0), 1);
  assert.equal(drawCategorical(p, 5, 0.4999), 1);
  assert.equal(drawCategorical(p, 5, 0.5), 3);
  assert.equal(drawCategorical(p, 5, 0.999999999), 3);
});
