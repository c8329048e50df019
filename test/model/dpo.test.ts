// DPO through the trainer: the objective's parameter gradients match finite differences (so the
// per-sequence gradient reaches exactly the completion tokens), DPO on a small preference set
// raises held-out margins and accuracy, and the reference log-probs are computed once and reused
// by a resumed run, which ends equal to an uninterrupted one.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ReferenceKernels } from "../../src/engine/kernels.js";
import { mulberry32 } from "../../src/engine/tensor.js";
import { loadLoraAdapter } from "../../src/io/peft.js";
import { llamaConfig } from "../../src/model/config.js";
import { createModel, forward, type LlamaModel } from "../../src/model/llama.js";
import { initParams, toNamed } from "../../src/model/params.js";
import { CharTokenizer } from "../../src/tokenizer/char.js";
import { dpoConfig, sftConfig } from "../../src/train/config.js";
import { type PreferenceExample, tokenizePreference, tokenizeSft } from "../../src/train/data.js";
import { dpo, dpoObjective, preferenceRows, REFERENCE_FILE, referenceLogps } from "../../src/train/dpo.js";
import { initLora, loraTensors, loraTrainable, mergeLora } from "../../src/train/lora.js";
import { type DpoLossConfig, defaultDpoLoss } from "../../src/train/losses.js";
import { sft } from "../../src/train/sft.js";
import { fullTrainable } from "../../src/train/trainable.js";
import { assertClose, numericGrad } from "../helpers.js";

const tok = new CharTokenizer("abcd=");
const cfg = llamaConfig({ vocabSize: tok.vocabSize, dim: 16, nLayers: 2, nHeads: 2, nKvHeads: 1, hiddenDim: 32, maxSeqLen: 24 });
const kernels = new ReferenceKernels();
const tmp = () => mkdtemp(join(tmpdir(), "srlm-dpo-"));

function words(n: number, seed: number): string[] {
  const rng = mulberry32(seed);
  return Array.from({ length: n }, () => Array.from({ length: 3 + Math.floor(rng() * 2) }, () => "abcd"[Math.floor(rng() * 4)]).join(""));
}
const rev = (w: string) => [...w].reverse().join("");
/** chosen: the reversal; rejected: the word copied unchanged. */
function pairs(ws: string[]): PreferenceExample[] {
  return ws.filter((w) => rev(w) !== w).map((w) => tokenizePreference(tok, { prompt: `${w}=`, chosen: rev(w), rejected: w }));
}

for (const [name, loss] of [
  ["sigmoid + RPO + length normalisation", { ...defaultDpoLoss, beta: 0.5, rpoAlpha: 0.3, lengthNormalize: true }],
  ["ipo, weighted", { ...defaultDpoLoss, beta: 0.5, lossType: "ipo" }],
  ["soft_label (CREAM)", { ...defaultDpoLoss, beta: 0.5, lossType: "soft_label" }],
] as [string, DpoLossConfig][]) {
  test(`DPO objective: parameter gradients match finite differences (${name})`, async () => {
    const params = initParams(cfg, 11);
    const rng = mulberry32(4);
    for (const t of toNamed(cfg, params)) if (t.shape.length === 2) for (let i = 0; i < t.data.length; i++) t.data[i] = (rng() - 0.5) * 0.6;
    const model = createModel(cfg, params, kernels);
    const data = pairs(["abc", "dbca", "cab"]).map((p, i) => ({ ...p, weight: 0.5 + i, label: 0.2 + 0.3 * i }));
    const { chosen, rejected } = preferenceRows(data, 24);
    // a reference other than the policy, so Δ ≠ 0
    const ref = await referenceLogps(createModel(cfg, initParams(cfg, 12), kernels), chosen, rejected);
    const rows = data.map((p, i) => ({
      chosen: chosen[i],
      rejected: rejected[i],
      refChosen: ref.chosen.logps[i],
      refRejected: ref.rejected.logps[i],
      weight: p.weight ?? 1,
      label: p.label,
    }));
    const obj = dpoObjective(loss);
    const tr = fullTrainable(model);
    tr.zeroGrad();
    await obj.step(tr, rows, rows.length, true);
    const f = async () => (await obj.step(tr, rows, rows.length, false)).loss;
    const grads = new Map(tr.grads.map((g) => [g.name, g.data]));
    let checked = 0;
    for (const t of tr.params) {
      const g = grads.get(t.name) as Float32Array;
      for (const i of [0, Math.floor(t.data.length / 2), t.data.length - 1]) {
        const num = await numericGrad(t.data, i, f, 1e-2);
        assertClose(g[i], num, `${t.name}[${i}]`, 3e-2, 2e-4);
        checked++;
      }
    }
    assert.ok(checked > 30, `checked ${checked} entries`);
  });
}

async function sftModel(): Promise<LlamaModel> {
  const model = createModel(cfg, initParams(cfg, 1), kernels);
  const dir = await tmp();
  const data = words(64, 1).map((w) => tokenizeSft(tok, { prompt: `${w}=`, completion: rev(w) }));
  await sft(
    fullTrainable(model),
    data,
    sftConfig({ output_dir: dir, learning_rate: 1e-2, max_steps: 30, per_device_train_batch_size: 8, save_steps: 0 }),
    {
      progress: false,
    },
  );
  await rm(dir, { recursive: true });
  return model;
}

test("DPO raises held-out reward margins and accuracy on a small preference set", async () => {
  const model = await sftModel();
  const dir = await tmp();
  const train = pairs(words(48, 2));
  const heldOut = pairs(words(40, 3));
  const res = await dpo(
    fullTrainable(model),
    train,
    dpoConfig({
      output_dir: dir,
      learning_rate: 1e-2,
      beta: 0.5,
      max_steps: 40,
      per_device_train_batch_size: 8,
      logging_steps: 5,
      eval_steps: 10,
    }),
    { eval: heldOut, progress: false },
  );
  const lines = (await readFile(join(dir, "metrics.jsonl"), "utf8"))
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, number>);
  const train0 = lines.find((l) => "rewards/margins" in l);
  assert.ok(train0, "training lines carry TRL's reward metrics");
  for (const k of ["rewards/chosen", "rewards/rejected", "rewards/accuracies", "logps/chosen", "logps/rejected", "loss", "grad_norm"]) {
    assert.ok(k in train0, `metrics.jsonl has ${k}`);
  }
  const ev = res.lastEval ?? {};
  assert.ok(ev["eval_rewards/margins"] > 0.5, `held-out margin ${ev["eval_rewards/margins"]}`);
  assert.ok(ev["eval_rewards/accuracies"] >= 0.8, `held-out accuracy ${ev["eval_rewards/accuracies"]}`);
  assert.ok(ev.eval_loss < Math.log(2), `held-out loss ${ev.eval_loss} below log 2 (its value at the start)`);
  await rm(dir, { recursive: true });
});

test("reference log-probs are computed once; an aborted DPO run resumes to the uninterrupted result", async () => {
  const base = await sftModel();
  const copy = () => createModel(cfg, structuredClone(base.params), kernels);
  const data = pairs(words(24, 5));
  const conf = (dir: string) =>
    dpoConfig({
      output_dir: dir,
      learning_rate: 2e-3,
      max_steps: 8,
      per_device_train_batch_size: 4,
      gradient_accumulation_steps: 2,
      save_steps: 2,
      loss_type: "robust",
      label_smoothing: 0.1,
    });
  const dirA = await tmp();
  const a = copy();
  await dpo(fullTrainable(a), data, conf(dirA), { progress: false });
  const saved = JSON.parse(await readFile(join(dirA, REFERENCE_FILE), "utf8")) as { chosen: number[]; rejected: number[] };
  assert.equal(saved.chosen.length, data.length, "one reference log-prob per chosen answer");
  assert.ok(
    saved.rejected.every((x) => x < 0),
    "log-probs are negative",
  );

  const dirB = await tmp();
  const ac = new AbortController();
  await assert.rejects(
    dpo(fullTrainable(copy()), data, conf(dirB), { signal: ac.signal, onProgress: (p) => p.step === 3 && ac.abort() }),
    "aborted",
  );
  const b = copy();
  const r = await dpo(fullTrainable(b), data, conf(dirB), { progress: false });
  assert.equal(r.resumedFrom, 3, "resumed at step 3");
  const pa = toNamed(cfg, a.params);
  const pb = toNamed(cfg, b.params);
  for (let i = 0; i < pa.length; i++) {
    let worst = 0;
    for (let j = 0; j < pa[i].data.length; j++) worst = Math.max(worst, Math.abs(pa[i].data[j] - pb[i].data[j]));
    assert.ok(worst <= 1e-6, `${pa[i].name}: max |Δ| ${worst}`);
  }
  await rm(dirA, { recursive: true });
  await rm(dirB, { recursive: true });
});

test("LoRA DPO with dropout: aborted and resumed equals uninterrupted; final/ is a PEFT adapter that merges to the trained model", async () => {
  const base = await sftModel();
  const baseCopy = structuredClone(base.params);
  const data = pairs(words(24, 6));
  const lora = { r: 4, alpha: 8, dropout: 0.1, targetModules: ["q_proj", "v_proj", "up_proj", "down_proj"] } as const;
  const conf = (dir: string) =>
    dpoConfig({
      output_dir: dir,
      learning_rate: 5e-3,
      max_steps: 6,
      per_device_train_batch_size: 4,
      gradient_accumulation_steps: 2,
      save_steps: 2,
    });
  const dirA = await tmp();
  const a = initLora(cfg, { ...lora, targetModules: [...lora.targetModules] }, 1);
  const trA = loraTrainable(base, a);
  const res = await dpo(trA, data, conf(dirA), { progress: false });

  const dirB = await tmp();
  const ac = new AbortController();
  await assert.rejects(
    dpo(loraTrainable(base, initLora(cfg, { ...lora, targetModules: [...lora.targetModules] }, 1)), data, conf(dirB), {
      signal: ac.signal,
      onProgress: (p) => p.step === 3 && ac.abort(),
    }),
    "aborted",
  );
  const b = initLora(cfg, { ...lora, targetModules: [...lora.targetModules] }, 1);
  await dpo(loraTrainable(base, b), data, conf(dirB), { progress: false });
  const ta = loraTensors(cfg, a);
  const tb = loraTensors(cfg, b);
  for (let i = 0; i < ta.length; i++) {
    let worst = 0;
    for (let j = 0; j < ta[i].data.length; j++) worst = Math.max(worst, Math.abs(ta[i].data[j] - tb[i].data[j]));
    assert.ok(worst <= 1e-6, `${ta[i].name}: max |Δ| ${worst}`);
  }
  assert.deepEqual(base.params, baseCopy, "the base model is frozen");

  const loaded = await loadLoraAdapter(res.finalDir, cfg);
  const merged = createModel(cfg, mergeLora(cfg, base.params, loaded), kernels);
  const batch = { tokens: Int32Array.from([1, 4, 5, 6, 8, 6, 5]), B: 1, T: 7 };
  batch.tokens[0] = tok.bosId ?? 1;
  const want = (await forward(trA.model, batch, { returnLogits: true })).logits as Float32Array;
  const got = (await forward(merged, batch, { returnLogits: true })).logits as Float32Array;
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(want[i] - got[i]) < 1e-4, `logit ${i}: ${got[i]} vs ${want[i]}`);
  await rm(dirA, { recursive: true });
  await rm(dirB, { recursive: true });
});
