// The loop's training step (train/dpo-mix.ts): gradients of DPO + mixed seed-row NLL match finite
// differences; with no seed rows it is plain DPO (same weights as dpo()); the no-preference control
// trains on the seed rows alone at the same step count, and its loss is their mean per-token NLL.
import assert from "node:assert/strict";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ReferenceKernels } from "../../src/engine/kernels.js";
import { mulberry32 } from "../../src/engine/tensor.js";
import { llamaConfig } from "../../src/model/config.js";
import { createModel } from "../../src/model/llama.js";
import { initParams, toNamed } from "../../src/model/params.js";
import { CharTokenizer } from "../../src/tokenizer/char.js";
import { dpoConfig } from "../../src/train/config.js";
import { type PreferenceExample, sftRow, tokenizePreference, tokenizeSft } from "../../src/train/data.js";
import { dpo, preferenceRows, referenceLogps } from "../../src/train/dpo.js";
import { dpoMix, dpoMixObjective } from "../../src/train/dpo-mix.js";
import { rowLogps } from "../../src/train/logps.js";
import { defaultDpoLoss } from "../../src/train/losses.js";
import { fullTrainable } from "../../src/train/trainable.js";
import { assertClose, numericGrad } from "../helpers.js";

const tok = new CharTokenizer("abcd=");
const cfg = llamaConfig({ vocabSize: tok.vocabSize, dim: 16, nLayers: 2, nHeads: 2, nKvHeads: 1, hiddenDim: 32, maxSeqLen: 24 });
const kernels = new ReferenceKernels();
const tmp = () => mkdtemp(join(tmpdir(), "srlm-dpomix-"));
const rev = (w: string) => [...w].reverse().join("");
const ws = ["abc", "dbca", "cab", "bdda", "acd", "dcab", "bca", "adbc"];
const pairs: PreferenceExample[] = ws.map((w) => tokenizePreference(tok, { prompt: `${w}=`, chosen: rev(w), rejected: w }));
const seed = ["ab", "cdc", "bbad", "dca", "a"].map((w) => tokenizeSft(tok, { prompt: `${w}=`, completion: `${w}${w}` }));

function randomModel(s: number) {
  const params = initParams(cfg, s);
  const rng = mulberry32(s + 1);
  for (const t of toNamed(cfg, params)) if (t.shape.length === 2) for (let i = 0; i < t.data.length; i++) t.data[i] = (rng() - 0.5) * 0.6;
  return createModel(cfg, params, kernels);
}

test("DPO + seed rows: parameter gradients match finite differences", async () => {
  const model = randomModel(3);
  const { chosen, rejected } = preferenceRows(pairs.slice(0, 3), 24);
  const ref = await referenceLogps(randomModel(9), chosen, rejected);
  const rows = seed.map((s) => sftRow(s.prompt, s.completion, 24).row);
  const items = [0, 1, 2].map((i) => ({
    pair: { chosen: chosen[i], rejected: rejected[i], refChosen: ref.chosen.logps[i], refRejected: ref.rejected.logps[i], weight: 1 },
    rows: [rows[i], rows[(i + 1) % rows.length]],
  }));
  const obj = dpoMixObjective({ ...defaultDpoLoss, beta: 0.5 }, { rowsPerPair: 2, weight: 0.7, preference: true }, 5.5);
  const tr = fullTrainable(model);
  tr.zeroGrad();
  await obj.step(tr, items, items.length, true);
  const f = async () => (await obj.step(tr, items, items.length, false)).loss;
  const grads = new Map(tr.grads.map((g) => [g.name, g.data]));
  let checked = 0;
  for (const t of tr.params) {
    const g = grads.get(t.name) as Float32Array;
    for (const i of [0, Math.floor(t.data.length / 2), t.data.length - 1]) {
      assertClose(g[i], await numericGrad(t.data, i, f, 1e-2), `${t.name}[${i}]`, 3e-2, 2e-4);
      checked++;
    }
  }
  assert.ok(checked > 30, `checked ${checked} entries`);
});

const train = (dir: string) =>
  dpoConfig({
    output_dir: dir,
    learning_rate: 1e-2,
    beta: 0.5,
    num_train_epochs: 1,
    per_device_train_batch_size: 4,
    save_steps: 0,
    logging_steps: 1,
    seed: 5,
  });

test("with no seed rows, dpoMix is plain DPO (identical weights)", async () => {
  const a = randomModel(4);
  const b = randomModel(4);
  await dpo(fullTrainable(a), pairs, train(await tmp()), { progress: false });
  await dpoMix(fullTrainable(b), pairs, [], train(await tmp()), { rowsPerPair: 0, weight: 1, preference: true }, { progress: false });
  const pa = toNamed(cfg, a.params);
  const pb = toNamed(cfg, b.params);
  for (let k = 0; k < pa.length; k++) assert.deepEqual(pb[k].data, pa[k].data, `${pa[k].name} equal to dpo()'s`);
});

test("the no-preference control: seed rows only, same step count, loss = their mean per-token NLL", async () => {
  const model = randomModel(6);
  // Before training: the mean over items of (Σ NLL of the item's rows) / (mean tokens per item).
  const rows = seed.map((s) => sftRow(s.prompt, s.completion, 24).row);
  const lp = await rowLogps(model, rows);
  let tokens = 0;
  for (const n of lp.tokens) tokens += n;
  const dir = await tmp();
  const res = await dpoMix(
    fullTrainable(model),
    pairs,
    seed,
    train(dir),
    { rowsPerPair: 1, weight: 1, preference: false },
    { progress: false },
  );
  assert.equal(res.steps, 2, "8 pairs, batch 4, one epoch: 2 steps, as DPO would take");
  const lines = (await readFile(join(dir, "metrics.jsonl"), "utf8"))
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.ok(!("rewards/margins" in lines[0]), "no DPO metrics in the control");
  // Step 1 trains items 0–3; their rows come from the seeded permutation; check against all rows' mean instead
  // by bounding: the step loss is a mean over 4 rows of Σ NLL / (mean tokens per row).
  const perRow = Array.from(lp.logps, (l) => -l / (tokens / rows.length));
  const lo = Math.min(...perRow);
  const hi = Math.max(...perRow);
  assert.ok(
    lines[0].loss >= lo - 1e-6 && lines[0].loss <= hi + 1e-6,
    `step-1 loss ${lines[0].loss} within per-row normalised NLLs [${lo}, ${hi}]`,
  );
  assert.ok(lines[0]["nll/seed"] > 0 && Math.abs(lines[0]["nll/seed"] - lines[0].loss) < 1e-9, "nll/seed equals the loss when weight is 1");
});

test("dpoMix refuses a control without seed rows", async () => {
  await assert.rejects(
    dpoMix(fullTrainable(randomModel(7)), pairs, seed, train(await tmp()), { rowsPerPair: 0, weight: 1, preference: false }),
    /control trains only on mixed seed rows/,
    "control with rows_per_pair 0",
  );
});
