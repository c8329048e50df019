// Training data plumbing: rows and loss masks, packing, padding, the deterministic data stream,
// learning-rate schedules and the TRL-named configs.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError } from "../../src/model/config.js";
import { CharTokenizer } from "../../src/tokenizer/char.js";
import { dpoConfig, sftConfig, toTrlNames } from "../../src/train/config.js";
import { lengthGroups, packRows, padRows, permutation, sftRow, streamIndices, targetCount, tokenizeSft } from "../../src/train/data.js";
import { lrAt } from "../../src/train/schedule.js";

test("sftRow: targets cover exactly the completion tokens", () => {
  const { row, truncated } = sftRow([1, 5, 6], [7, 8, 2], 16);
  assert.equal(truncated, false, "fits");
  assert.deepEqual(Array.from(row.ids), [1, 5, 6, 7, 8, 2], "ids = prompt + completion");
  // position 2 (last prompt token) predicts 7, … position 4 predicts the EOS
  assert.deepEqual(Array.from(row.targets), [-1, -1, 7, 8, 2, -1], "targets");
  assert.equal(targetCount(row.targets), 3, "one target per completion token");
});

test("sftRow: truncation drops the prompt's start first, then the completion's end", () => {
  const a = sftRow([1, 2, 3, 4, 5], [6, 7], 5);
  assert.equal(a.truncated, true, "flagged");
  assert.deepEqual(Array.from(a.row.ids), [3, 4, 5, 6, 7], "prompt kept at its end");
  assert.equal(targetCount(a.row.targets), 2, "whole completion trained");
  const b = sftRow([1, 2, 3], [4, 5, 6, 7, 8, 9], 4);
  assert.deepEqual(Array.from(b.row.ids), [3, 4, 5, 6], "one prompt token kept, completion cut");
  assert.deepEqual(Array.from(b.row.targets), [4, 5, 6, -1], "targets of the kept completion");
  assert.throws(() => sftRow([], [1], 4), /prompt is empty/, "empty prompt");
  assert.throws(() => sftRow([1], [], 4), /completion is empty/, "empty completion");
});

test("tokenizeSft adds BOS to the prompt and EOS to the completion", () => {
  const tok = new CharTokenizer("ab=");
  const ex = tokenizeSft(tok, { prompt: "ab=", completion: "ba" });
  assert.equal(ex.prompt[0], tok.bosId, "BOS first");
  assert.equal(ex.completion.at(-1), tok.eosId, "EOS last");
  assert.equal(ex.completion.length, 3, "two letters + EOS");
});

test("packRows fills rows in order without splitting an example and keeps the masks", () => {
  const rows = [sftRow([1, 2], [3], 8).row, sftRow([1, 4], [5, 6], 8).row, sftRow([1, 7, 7], [8], 8).row];
  const packed = packRows(rows, 7);
  assert.equal(packed.length, 2, "3 + 4 tokens fill the first row; the third starts a new one");
  assert.deepEqual(Array.from(packed[0].ids), [1, 2, 3, 1, 4, 5, 6], "first row ids");
  assert.deepEqual(Array.from(packed[0].targets), [-1, 3, -1, -1, 5, 6, -1], "prompt tokens stay masked");
  assert.equal(
    packed.reduce((a, r) => a + targetCount(r.targets), 0),
    rows.reduce((a, r) => a + targetCount(r.targets), 0),
    "no target lost",
  );
  assert.throws(() => packRows(rows, 3), /exceeds the pack length/, "too long a row");
});

test("padRows right-pads to the longest row with target −1", () => {
  const b = padRows([sftRow([1], [2, 3], 8).row, sftRow([1, 4], [5], 8).row], 0);
  assert.equal(b.T, 3, "T = longest");
  assert.deepEqual(Array.from(b.tokens), [1, 2, 3, 1, 4, 5], "tokens");
  assert.deepEqual(Array.from(b.targets), [2, 3, -1, -1, 5, -1], "targets");
});

test("permutation is a deterministic shuffle per (seed, epoch)", () => {
  const a = permutation(50, 7, 0);
  assert.deepEqual(
    Array.from(a).sort((x, y) => x - y),
    [...Array(50).keys()],
    "a permutation",
  );
  assert.deepEqual(Array.from(permutation(50, 7, 0)), Array.from(a), "same seed and epoch → same order");
  assert.notDeepEqual(Array.from(permutation(50, 7, 1)), Array.from(a), "next epoch reshuffles");
  assert.notDeepEqual(Array.from(permutation(50, 8, 0)), Array.from(a), "other seed → other order");
});

test("streamIndices: a window of the stream equals the concatenated epoch permutations", () => {
  const n = 7;
  const full = [...permutation(n, 3, 0), ...permutation(n, 3, 1), ...permutation(n, 3, 2)];
  for (const [start, count] of [
    [0, 21],
    [5, 4],
    [13, 8],
  ]) {
    assert.deepEqual(Array.from(streamIndices(n, 3, start, count)), full.slice(start, start + count), `window ${start}+${count}`);
  }
});

test("lrAt: warmup, linear, cosine and constant schedules", () => {
  const s = { lr: 1, warmupSteps: 4, totalSteps: 14 };
  assert.equal(lrAt(0, { ...s, type: "linear" }), 0.25, "first warmup step is lr/warmup, not 0");
  assert.equal(lrAt(3, { ...s, type: "linear" }), 1, "warmup ends at lr");
  assert.equal(lrAt(4, { ...s, type: "linear" }), 1, "decay starts at lr");
  assert.ok(Math.abs(lrAt(9, { ...s, type: "linear" }) - 0.5) < 1e-12, "halfway down");
  assert.ok(Math.abs(lrAt(9, { ...s, type: "cosine" }) - 0.5) < 1e-12, "cosine midpoint is lr/2");
  assert.ok(lrAt(13, { ...s, type: "cosine" }) < 0.03, "cosine near 0 at the end");
  assert.ok(Math.abs(lrAt(14, { ...s, type: "cosine", minLrRatio: 0.1 }) - 0.1) < 1e-12, "cosine floor");
  assert.equal(lrAt(10, { ...s, type: "constant" }), 1, "constant");
});

test("configs take TRL names, fill TRL defaults and name bad fields", () => {
  const d = dpoConfig({ output_dir: "out", beta: 0.5, loss_type: "ipo", per_device_train_batch_size: 4 });
  assert.equal(d.beta, 0.5, "beta");
  assert.equal(d.lossType, "ipo", "loss_type → lossType");
  assert.equal(d.perDeviceTrainBatchSize, 4, "batch size");
  assert.equal(d.learningRate, 1e-6, "TRL DPO default learning rate");
  assert.equal(d.rpoAlpha, null, "rpo off by default");
  assert.equal(sftConfig({ output_dir: "o" }).learningRate, 2e-5, "TRL SFT default learning rate");
  assert.equal(toTrlNames(d).per_device_train_batch_size, 4, "back to TRL names");
  assert.throws(
    () => dpoConfig({ output_dir: "o", loss_type: "kto" }),
    (e: Error) => e instanceof ConfigError && /loss_type/.test(e.message) && /sigmoid/.test(e.message),
    "enum lists the allowed values",
  );
  assert.throws(() => dpoConfig({ output_dir: "o", label_smoothing: 0.5 }), /label_smoothing/, "ε must be < 0.5");
  assert.throws(() => sftConfig({ output_dir: "o", learning_rate: -1 }), /learning_rate/, "negative lr");
  assert.throws(() => sftConfig({ output_dir: "o", learningRate: 1 }), /learningRate/, "camelCase keys are unknown in files");
  assert.throws(() => sftConfig({}), /output_dir/, "output_dir required");
});

test("lengthGroups splits short and long rows when padding costs more than a call", () => {
  const lengths = [40, 160, 45, 150, 42, 158, 44, 155];
  const groups = lengthGroups(lengths, 100);
  assert.deepEqual(
    groups.map((g) => g.map((i) => lengths[i])),
    [
      [40, 42, 44, 45],
      [150, 155, 158, 160],
    ],
    "two groups by length",
  );
  assert.deepEqual(lengthGroups([10, 12, 11], 256), [[0, 2, 1]], "similar lengths stay in one call");
  assert.deepEqual(lengthGroups([], 256), [], "empty");
  const all = lengthGroups([5, 90, 7, 80, 60], 10).flat().sort();
  assert.deepEqual(all, [0, 1, 2, 3, 4], "every row exactly once");
});
