// LoRA over a frozen base: adapter gradients against finite differences (merged fast path and the
// dropout path), the merged model against the adapted one, B = 0 as a no-op, afterUpdate, and a few
// optimizer steps that train the adapter and leave the base untouched; on both kernel sets.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Kernels } from "../../src/engine/kernels.js";
import { ReferenceKernels } from "../../src/engine/kernels.js";
import { createKernels } from "../../src/engine/ort.js";
import { mulberry32, randn } from "../../src/engine/tensor.js";
import { type LlamaConfigInput, llamaConfig } from "../../src/model/config.js";
import { generate } from "../../src/model/generate.js";
import { createModel, type ForwardInput, forward, type LlamaModel } from "../../src/model/llama.js";
import { initParams, toNamed } from "../../src/model/params.js";
import { adamwInit, adamwStepNamed, defaultAdamW } from "../../src/train/adamw.js";
import {
  checkLoraConfig,
  defaultLora,
  initLora,
  type LoraAdapter,
  type LoraConfig,
  type LoraTarget,
  loraTensors,
  loraTrainable,
  mergeLora,
} from "../../src/train/lora.js";
import { assertAllClose, assertClose, numericGrad, weightedSum } from "../helpers.js";

const GQA: Partial<LlamaConfigInput> = { nHeads: 4, nKvHeads: 2 };
const BIAS: Partial<LlamaConfigInput> = { nHeads: 2, nKvHeads: 2, tieEmbeddings: true, qkvBias: true };

let ort: Kernels;
const ref = new ReferenceKernels();
before(async () => {
  ort = await createKernels("ort", { threads: 2 });
});
after(async () => {
  await ort.dispose();
});

/** A tiny random base (weights far from the 0.02 init) and an adapter whose B is random too. */
function setup(extra: Partial<LlamaConfigInput>, kn: Kernels, lora: Partial<LoraConfig>, bStd = 0.3) {
  const cfg = llamaConfig({ vocabSize: 11, dim: 8, nLayers: 2, hiddenDim: 12, maxSeqLen: 16, nHeads: 2, ...extra });
  const params = initParams(cfg, 1);
  const rng = mulberry32(7);
  for (const t of toNamed(cfg, params)) {
    const noise = randn(rng, t.data.length, 0.3);
    for (let i = 0; i < t.data.length; i++) t.data[i] = t.shape.length === 1 && t.name.includes("norm") ? 1 + noise[i] : noise[i];
  }
  const base = createModel(cfg, params, kn);
  const adapter = initLora(cfg, { ...defaultLora, r: 3, alpha: 6, ...lora }, 5);
  if (bStd > 0) for (const t of loraTensors(cfg, adapter)) if (t.name.includes("lora_B")) t.data.set(randn(rng, t.data.length, bStd));
  return { cfg, base, adapter };
}

const input: ForwardInput & { targets: Int32Array } = {
  tokens: Int32Array.from([1, 4, 7, 2, 9, 3, 3, 8, 0, 0]), // second sequence right-padded to length 3
  targets: Int32Array.from([4, 7, 2, 9, 5, 3, 8, 6, -1, -1]),
  B: 2,
  T: 5,
};
const w = Float32Array.from({ length: 10 }, (_, i) => Math.sin(1 + i));

/** Copies of every base tensor, to check nothing wrote to them. */
function snapshot(m: LlamaModel): Map<string, Float32Array> {
  return new Map(toNamed(m.config, m.params).map((t) => [t.name, t.data.slice()]));
}
function assertUntouched(m: LlamaModel, snap: Map<string, Float32Array>, what: string): void {
  for (const t of toNamed(m.config, m.params)) assert.deepEqual(t.data, snap.get(t.name), `${what}: base tensor ${t.name} was modified`);
}

const fdCases: [string, Partial<LlamaConfigInput>, LoraTarget[], number][] = [
  ["GQA, all targets, no dropout", GQA, [...defaultLora.targetModules], 0],
  ["GQA, q/o/up, dropout 0.3", GQA, ["q_proj", "o_proj", "up_proj"], 0.3],
  ["q/k/v bias + tied, k/v/gate/down, no dropout", BIAS, ["k_proj", "v_proj", "gate_proj", "down_proj"], 0],
  ["q/k/v bias + tied, all targets, dropout 0.3", BIAS, [...defaultLora.targetModules], 0.3],
];

for (const [name, extra, targetModules, dropout] of fdCases) {
  test(`LoRA gradients match finite differences: ${name}`, async () => {
    const { base, adapter } = setup(extra, ref, { targetModules, dropout });
    const snap = snapshot(base);
    const tr = loraTrainable(base, adapter);
    assert.equal(tr.kind, "lora", "kind is lora");
    const seed = 1234;
    const f = async () => {
      await tr.afterUpdate();
      tr.beginMicroBatch(seed); // the same dropout masks in every evaluation
      return weightedSum((await forward(tr.model, input, { train: true })).logp, w);
    };
    tr.zeroGrad();
    tr.beginMicroBatch(seed);
    const r = await forward(tr.model, input, { train: true });
    await tr.backward(r.tape!, w);
    const analytic = tr.grads.map((g) => g.data.slice());

    const pick = mulberry32(3);
    let checked = 0;
    for (const [ti, t] of tr.params.entries()) {
      assert.equal(tr.grads[ti].name, t.name, `grads[${ti}] is named like params[${ti}]`);
      const n = t.data.length;
      for (let j = 0; j < 4; j++) {
        const i = Math.floor(pick() * n);
        assertClose(analytic[ti][i], await numericGrad(t.data, i, f), `${t.name}[${i}]`, 3e-2, 2e-3);
        checked++;
      }
    }
    assert.equal(checked, tr.params.length * 4, "every adapter tensor was checked");
    assert.equal(tr.params.length, 2 * 2 * targetModules.length, "A and B per target per layer");

    // backward ADDS: a second pass over the same tape doubles the gradients (numericGrad restored
    // the last entry after its last evaluation, so the merged weights need a refresh first)
    await tr.afterUpdate();
    await tr.backward(r.tape!, w);
    for (const [ti, g] of tr.grads.entries())
      assertAllClose(
        g.data,
        analytic[ti].map((x) => 2 * x),
        `${g.name} after two backward passes`,
      );
    tr.zeroGrad();
    assert.ok(
      tr.grads.every((g) => g.data.every((x) => x === 0)),
      "zeroGrad zeroes every gradient",
    );
    assertUntouched(base, snap, name);
  });
}

for (const kind of ["reference", "ort"] as const) {
  test(`merged model equals the adapted model (${kind})`, async () => {
    const kn = kind === "ort" ? ort : ref;
    for (const [layout, extra] of [
      ["GQA", GQA],
      ["bias", BIAS],
    ] as const) {
      const { cfg, base, adapter } = setup(extra, kn, {});
      const merged = createModel(cfg, mergeLora(cfg, base.params, adapter), kn);
      const want = (await forward(merged, input, { returnLogits: true })).logits!;
      const tr = loraTrainable(base, adapter);
      const evalOut = (await forward(tr.model, input, { returnLogits: true })).logits!;
      assertAllClose(evalOut, want, `${layout}: adapted (eval) vs merged logits`, 1e-5, 1e-5);
      const trainOut = (await forward(tr.model, input, { train: true, returnLogits: true })).logits!;
      assertAllClose(trainOut, want, `${layout}: adapted (train, no dropout) vs merged logits`, 1e-5, 1e-5);

      // The dropout path with (almost) nothing dropped: x Wᵀ + s·(x Aᵀ) Bᵀ computed apart, against the merged W + s·B·A.
      const split = loraTrainable(base, { ...adapter, config: { ...adapter.config, dropout: 1e-12 } });
      split.beginMicroBatch(9);
      const splitOut = (await forward(split.model, input, { train: true, returnLogits: true })).logits!;
      assertAllClose(splitOut, want, `${layout}: split base + adapter paths vs merged logits`, 1e-5, 1e-5);

      // and the merge by hand: W' = W + s · B A
      const s = adapter.config.alpha / adapter.config.r;
      const mp = mergeLora(cfg, base.params, adapter);
      const { A, B } = adapter.layers[1].down_proj!;
      const r = adapter.config.r;
      for (const [o, i] of [
        [0, 0],
        [7, 11],
        [3, 5],
      ]) {
        let ba = 0;
        for (let k = 0; k < r; k++) ba += B[o * r + k] * A[k * cfg.hiddenDim + i];
        const idx = o * cfg.hiddenDim + i;
        assertClose(
          mp.layers[1].wDown[idx],
          base.params.layers[1].wDown[idx] + s * ba,
          `${layout}: merged down_proj[${o}, ${i}]`,
          1e-6,
          1e-6,
        );
      }
      assert.equal(mp.embed, base.params.embed, `${layout}: untargeted tensors are shared`);
      assert.notEqual(mp.layers[0].wq, base.params.layers[0].wq, `${layout}: targeted tensors are fresh arrays`);
    }
  });

  test(`B = 0: the adapter is a no-op, with and without dropout (${kind})`, async () => {
    const kn = kind === "ort" ? ort : ref;
    const { base, adapter } = setup(GQA, kn, { dropout: 0.3 }, 0);
    const want = (await forward(base, input)).logp;
    const tr = loraTrainable(base, adapter);
    assertAllClose((await forward(tr.model, input)).logp, want, "eval logp, B = 0", 0, 1e-6);
    tr.beginMicroBatch(5);
    assertAllClose((await forward(tr.model, input, { train: true })).logp, want, "train logp (dropout path), B = 0", 1e-6, 1e-6);
  });
}

test("ort and reference kernels agree on the adapter gradients", async () => {
  for (const dropout of [0, 0.3]) {
    const grads: Float32Array[][] = [];
    for (const kn of [ref, ort]) {
      const { base, adapter } = setup(BIAS, kn, { dropout });
      const tr = loraTrainable(base, adapter);
      tr.beginMicroBatch(77);
      const r = await forward(tr.model, input, { train: true });
      await tr.backward(r.tape!, w);
      grads.push(tr.grads.map((g) => g.data));
    }
    for (let i = 0; i < grads[0].length; i++)
      assertAllClose(grads[1][i], grads[0][i], `dropout ${dropout}: gradient ${i}, ort vs reference`, 1e-3, 1e-5);
  }
});

test("afterUpdate refreshes the merged weights after A and B change", async () => {
  const { cfg, base, adapter } = setup(GQA, ref, { targetModules: ["v_proj", "gate_proj"] });
  const tr = loraTrainable(base, adapter);
  const before = (await forward(tr.model, input)).logp;
  const rng = mulberry32(11);
  for (const t of tr.params) {
    const noise = randn(rng, t.data.length, 0.2);
    for (let i = 0; i < t.data.length; i++) t.data[i] += noise[i];
  }
  assertAllClose((await forward(tr.model, input)).logp, before, "outputs are unchanged until afterUpdate", 0, 0);
  await tr.afterUpdate();
  const after = (await forward(tr.model, input)).logp;
  const want = (await forward(createModel(cfg, mergeLora(cfg, base.params, adapter), ref), input)).logp;
  assertAllClose(after, want, "after afterUpdate: equals a fresh merge of the changed adapter", 1e-5, 1e-6);
  assert.ok(
    after.some((x, i) => Math.abs(x - before[i]) > 1e-4),
    "the changed adapter changes the outputs",
  );
});

test("dropout masks replay from the micro-batch seed and are off in eval", async () => {
  const { base, adapter } = setup(GQA, ref, { dropout: 0.3 });
  const tr = loraTrainable(base, adapter);
  const run = async (seed: number) => {
    tr.beginMicroBatch(seed);
    return (await forward(tr.model, input, { train: true })).logp;
  };
  const a = await run(1);
  assertAllClose(await run(1), a, "same seed, same masks", 0, 0);
  const b = await run(2);
  assert.ok(
    b.some((x, i) => Math.abs(x - a[i]) > 1e-5),
    "another seed draws other masks",
  );
  tr.beginMicroBatch(1);
  const e1 = (await forward(tr.model, input)).logp;
  tr.beginMicroBatch(2);
  assertAllClose((await forward(tr.model, input)).logp, e1, "eval forward does not depend on the seed", 0, 0);
});

for (const dropout of [0, 0.2]) {
  test(`AdamW steps on the adapter lower the loss and leave the base untouched (dropout ${dropout})`, async () => {
    const { base, adapter } = setup(GQA, ref, { r: 4, alpha: 8, dropout }, 0);
    const snap = snapshot(base);
    const tr = loraTrainable(base, adapter);
    const B = input.B;
    const T = input.T;
    const tokens = Int32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const targets = Int32Array.from([2, 3, 4, 5, -1, 7, 8, 9, 10, -1]);
    const meanW = Float32Array.from(targets, (t) => (t < 0 ? 0 : 1 / 8)); // mean NLL over the 8 targets
    const dlogp = meanW.map((x) => -x); // d(loss)/d(logp)
    const evalLoss = async () => -weightedSum((await forward(tr.model, { tokens, targets, B, T })).logp, meanW);
    const loss0 = await evalLoss();
    const state = adamwInit();
    for (let step = 0; step < 15; step++) {
      tr.zeroGrad();
      tr.beginMicroBatch(step);
      const r = await forward(tr.model, { tokens, targets, B, T }, { train: true });
      await tr.backward(r.tape!, dlogp);
      adamwStepNamed(tr.params, tr.grads, state, { ...defaultAdamW, lr: 2e-2 });
      await tr.afterUpdate();
    }
    const loss1 = await evalLoss();
    assert.ok(loss1 < loss0 - 0.1, `loss went from ${loss0} to ${loss1}`);
    assertUntouched(base, snap, `after training (dropout ${dropout})`);
  });
}

test("checkLoraConfig names the bad field", () => {
  const bad: [Partial<LoraConfig>, RegExp][] = [
    [{ r: 0 }, /LoraConfig\.r must be a positive integer/],
    [{ r: 2.5 }, /LoraConfig\.r/],
    [{ alpha: Number.NaN }, /LoraConfig\.alpha/],
    [{ alpha: 0 }, /LoraConfig\.alpha/],
    [{ dropout: 1 }, /LoraConfig\.dropout must be in \[0, 1\)/],
    [{ dropout: -0.1 }, /LoraConfig\.dropout/],
    [{ targetModules: [] }, /LoraConfig\.targetModules must be a non-empty list/],
    [{ targetModules: ["lm_head" as LoraTarget] }, /LoraConfig\.targetModules: unknown target module "lm_head"/],
    [{ targetModules: ["q_proj", "q_proj"] }, /LoraConfig\.targetModules: q_proj is listed twice/],
  ];
  for (const [patch, re] of bad) {
    assert.throws(
      () => checkLoraConfig({ ...defaultLora, ...patch }),
      (e: unknown) => e instanceof RangeError && re.test(e.message),
      `${JSON.stringify(patch)} → ${re}`,
    );
  }
  assert.doesNotThrow(() => checkLoraConfig(defaultLora), "the default config is valid");
  assert.deepEqual(
    defaultLora,
    { r: 8, alpha: 16, dropout: 0, targetModules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] },
    "defaults",
  );
});

test("initLora and loraTensors: PEFT names, shapes, A ~ U(±1/√in), B = 0", () => {
  const cfg = llamaConfig({ vocabSize: 11, dim: 8, nLayers: 2, hiddenDim: 12, maxSeqLen: 16, nHeads: 4, nKvHeads: 2 });
  const a: LoraAdapter = initLora(cfg, { ...defaultLora, r: 2, targetModules: ["down_proj", "q_proj", "v_proj"] }, 3);
  assert.deepEqual(a.config.targetModules, ["q_proj", "v_proj", "down_proj"], "targets kept in module order");
  const ts = loraTensors(cfg, a);
  assert.deepEqual(
    ts.map((t) => [t.name, t.shape]),
    [0, 1].flatMap((l) => [
      [`base_model.model.model.layers.${l}.self_attn.q_proj.lora_A.weight`, [2, 8]],
      [`base_model.model.model.layers.${l}.self_attn.q_proj.lora_B.weight`, [8, 2]],
      [`base_model.model.model.layers.${l}.self_attn.v_proj.lora_A.weight`, [2, 8]],
      [`base_model.model.model.layers.${l}.self_attn.v_proj.lora_B.weight`, [4, 2]],
      [`base_model.model.model.layers.${l}.mlp.down_proj.lora_A.weight`, [2, 12]],
      [`base_model.model.model.layers.${l}.mlp.down_proj.lora_B.weight`, [8, 2]],
    ]),
    "names and shapes",
  );
  assert.equal(ts[0].data, a.layers[0].q_proj!.A, "loraTensors shares memory with the adapter");
  for (const t of ts) {
    if (t.name.includes("lora_B"))
      assert.ok(
        t.data.every((x) => x === 0),
        `${t.name} starts at 0`,
      );
    else {
      const bound = 1 / Math.sqrt(t.shape[1]);
      assert.ok(
        t.data.every((x) => Math.abs(x) <= bound),
        `${t.name} within ±1/√in`,
      );
      assert.ok(Math.max(...t.data.map(Math.abs)) > bound / 2, `${t.name} is not degenerate`);
    }
  }
  assert.throws(() => loraTensors({ ...cfg, nLayers: 3 }, a), /2 layers, the model has 3/, "layer count mismatch is reported");
  const broken: LoraAdapter = {
    ...a,
    layers: [a.layers[0], { ...a.layers[1], q_proj: { A: new Float32Array(3), B: a.layers[1].q_proj!.B } }],
  };
  assert.throws(
    () => loraTensors(cfg, broken),
    /layers\.1\.self_attn\.q_proj\.lora_A\.weight: 3 elements/,
    "wrong size is reported with the tensor name",
  );
});

test("mergeLora is W + s·B·A entry by entry, also for row counts that are not multiples of 4", () => {
  // q_proj 12 rows, k/v 6, gate/up 10, o/down 12: exercises the merge's 4-row blocks and its remainder
  const cfg = llamaConfig({ vocabSize: 11, dim: 12, nLayers: 1, hiddenDim: 10, maxSeqLen: 8, nHeads: 2, nKvHeads: 1 });
  const base = initParams(cfg, 4);
  const a = initLora(cfg, { ...defaultLora, r: 3, alpha: 4 }, 6);
  const rng = mulberry32(8);
  for (const t of loraTensors(cfg, a)) if (t.name.includes("lora_B")) t.data.set(randn(rng, t.data.length, 0.5));
  const merged = mergeLora(cfg, base, a);
  const s = 4 / 3;
  const fields = {
    q_proj: "wq",
    k_proj: "wk",
    v_proj: "wv",
    o_proj: "wo",
    gate_proj: "wGate",
    up_proj: "wUp",
    down_proj: "wDown",
  } as const;
  for (const [t, field] of Object.entries(fields) as [LoraTarget, (typeof fields)[LoraTarget]][]) {
    const { A, B } = a.layers[0][t]!;
    const W = base.layers[0][field];
    const M = merged.layers[0][field];
    const nIn = A.length / 3;
    const nOut = B.length / 3;
    assert.equal(W.length, nOut * nIn, `${t}: W is (out, in)`);
    for (let o = 0; o < nOut; o++) {
      for (let i = 0; i < nIn; i++) {
        let ba = 0;
        for (let k = 0; k < 3; k++) ba += B[o * 3 + k] * A[k * nIn + i];
        assertClose(M[o * nIn + i], W[o * nIn + i] + s * ba, `${t}[${o}, ${i}]`, 1e-6, 1e-6);
      }
    }
  }
});

test("generation (KV-cache decoding reads model.params) runs the adapted model", async () => {
  const { cfg, base, adapter } = setup(GQA, ref, { dropout: 0.1 }, 0.8);
  const tr = loraTrainable(base, adapter);
  const opts = { temperature: 1, maxNewTokens: 8, n: 2, seed: 3 };
  const prompts = [[1, 2, 3], [4]];
  const got = await generate(tr.model, undefined, prompts, opts);
  const want = await generate(createModel(cfg, mergeLora(cfg, base.params, adapter), ref), undefined, prompts, opts);
  const plain = await generate(base, undefined, prompts, opts);
  const ids = (r: typeof got) => r.map((p) => p.map((x) => x.ids));
  assert.deepEqual(ids(got), ids(want), "same samples as the merged model");
  for (const [p, row] of got.entries()) {
    for (const [i, smp] of row.entries()) assertClose(smp.logprob, want[p][i].logprob, `logprob of sample ${p}/${i}`, 1e-4, 1e-4);
  }
  assert.notDeepEqual(ids(got), ids(plain), "and not the base model's samples");
});
