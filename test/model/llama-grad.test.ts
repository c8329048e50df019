// Whole-model gradient check: backward() against central finite differences of forward(),
// on tiny random models in each supported layout (GQA, tied embeddings, Qwen2-style q/k/v bias),
// with a right-padded batch.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ReferenceKernels } from "../../src/engine/kernels.js";
import { mulberry32, randn } from "../../src/engine/tensor.js";
import { type LlamaConfigInput, llamaConfig } from "../../src/model/config.js";
import { backward, createModel, forward } from "../../src/model/llama.js";
import { initParams, toNamed, zerosLike } from "../../src/model/params.js";
import { assertClose, numericGrad, weightedSum } from "../helpers.js";

const layouts: [string, Partial<LlamaConfigInput>][] = [
  ["GQA (4 heads, 2 kv heads)", { nHeads: 4, nKvHeads: 2 }],
  ["MHA, tied embeddings, q/k/v bias", { nHeads: 2, nKvHeads: 2, tieEmbeddings: true, qkvBias: true }],
  ["MQA (1 kv head)", { nHeads: 4, nKvHeads: 1 }],
];

for (const [name, extra] of layouts) {
  test(`whole-model gradient matches finite differences: ${name}`, async () => {
    const cfg = llamaConfig({ vocabSize: 11, dim: 8, nLayers: 2, hiddenDim: 12, maxSeqLen: 16, nHeads: 2, ...extra });
    const params = initParams(cfg, 1);
    // Larger weights than the 0.02 init so attention and norms are far from trivial.
    const rng = mulberry32(7);
    for (const t of toNamed(cfg, params)) {
      const noise = randn(rng, t.data.length, 0.3);
      for (let i = 0; i < t.data.length; i++) t.data[i] = t.shape.length === 1 && t.name.includes("norm") ? 1 + noise[i] : noise[i];
    }
    const model = createModel(cfg, params, new ReferenceKernels());
    const B = 2;
    const T = 5;
    const tokens = Int32Array.from([1, 4, 7, 2, 9, 3, 3, 8, 0, 0]); // second sequence has length 3
    const targets = Int32Array.from([4, 7, 2, 9, 5, 3, 8, 6, -1, -1]);
    const w = Float32Array.from({ length: B * T }, (_, i) => Math.sin(1 + i));
    const f = async () => weightedSum((await forward(model, { tokens, targets, B, T })).logp, w);

    const r = await forward(model, { tokens, targets, B, T }, { train: true });
    assert.equal(r.logp[8], 0);
    const grads = zerosLike(cfg);
    await backward(model, r.tape!, w, grads);

    const gNamed = new Map(toNamed(cfg, grads).map((t) => [t.name, t.data]));
    const pick = mulberry32(3);
    let checked = 0;
    for (const t of toNamed(cfg, params)) {
      const g = gNamed.get(t.name)!;
      // every entry of small tensors, a random sample of the larger ones
      const n = t.data.length;
      const idx = n <= 24 ? [...Array(n).keys()] : Array.from({ length: 24 }, () => Math.floor(pick() * n));
      for (const i of idx) {
        assertClose(g[i], await numericGrad(t.data, i, f), `${t.name}[${i}]`, 3e-2, 2e-3);
        checked++;
      }
    }
    assert.ok(checked > 200, "checked > 200");
  });
}

test("padding does not change the valid positions' log-probs", async () => {
  const cfg = llamaConfig({ vocabSize: 11, dim: 8, nLayers: 1, nHeads: 2, hiddenDim: 12, maxSeqLen: 16 });
  const model = createModel(cfg, initParams(cfg, 2), new ReferenceKernels());
  const a = await forward(model, { tokens: Int32Array.from([3, 5, 7]), targets: Int32Array.from([5, 7, 1]), B: 1, T: 3 });
  const b = await forward(model, {
    tokens: Int32Array.from([3, 5, 7, 0, 0, 9]),
    targets: Int32Array.from([5, 7, 1, -1, -1, -1]),
    B: 1,
    T: 6,
  });
  for (let i = 0; i < 3; i++) assertClose(a.logp[i], b.logp[i], `logp[${i}]`, 1e-6, 1e-6);
});

test("bad inputs are rejected with a clear message", async () => {
  const cfg = llamaConfig({ vocabSize: 11, dim: 8, nLayers: 1, nHeads: 2, hiddenDim: 12, maxSeqLen: 4 });
  const model = createModel(cfg, initParams(cfg, 2), new ReferenceKernels());
  await assert.rejects(forward(model, { tokens: Int32Array.from([3, 11]), B: 1, T: 2 }), /tokens\[1\] = 11 is outside the vocabulary/);
  await assert.rejects(forward(model, { tokens: new Int32Array(5), B: 1, T: 5 }), /exceeds maxSeqLen 4/);
  await assert.rejects(forward(model, { tokens: new Int32Array(5), B: 2, T: 2 }), /expected B·T/);
});
