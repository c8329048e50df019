// Golden values from PyTorch (bench/torch_golden.py, float64, Hugging Face Llama/Qwen2 semantics):
// our float32 forward and backward must agree with an independent implementation.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { ReferenceKernels } from "../../src/engine/kernels.js";
import { createKernels } from "../../src/engine/ort.js";
import { llamaConfig } from "../../src/model/config.js";
import { backward, createModel, forward } from "../../src/model/llama.js";
import { fromNamed, toNamed, zerosLike } from "../../src/model/params.js";
import { assertAllClose } from "../helpers.js";

interface GoldenModel {
  name: string;
  note: string;
  config: Record<string, unknown>;
  shapes: Record<string, number[]>;
  params: Record<string, number[]>;
  batch: number;
  seqLen: number;
  tokens: number[][];
  targets: number[][];
  logits: number[];
  logprobs: number[];
  weights: number[];
  grads: Record<string, number[]>;
}

const golden = JSON.parse(readFileSync(path.join(import.meta.dirname, "../fixtures/golden-llama.json"), "utf8")) as {
  models: GoldenModel[];
};

for (const kind of ["reference", "ort"] as const) {
  for (const g of golden.models) {
    test(`matches PyTorch golden values, model ${g.name} (${g.note}), ${kind} kernels`, async () => {
      const cfg = llamaConfig(g.config, "golden config");
      const tensors = new Map(
        Object.entries(g.params).map(([name, data]) => [name, { shape: g.shapes[name], data: Float32Array.from(data) }]),
      );
      const kernels = kind === "ort" ? await createKernels("ort") : new ReferenceKernels();
      const model = createModel(cfg, fromNamed(cfg, tensors, "golden"), kernels);
      const B = g.batch;
      const T = g.seqLen;
      const tokens = Int32Array.from(g.tokens.flat());
      const targets = Int32Array.from(g.targets.flat().map((t) => (t < 0 ? -1 : t)));
      const r = await forward(model, { tokens, targets, B, T }, { train: true, returnLogits: true });
      // Logits at padded positions are not defined by the golden model's mask convention; compare valid ones.
      const V = cfg.vocabSize;
      for (let i = 0; i < B * T; i++) {
        if (targets[i] < 0) continue;
        assertAllClose(r.logits!.subarray(i * V, (i + 1) * V), g.logits.slice(i * V, (i + 1) * V), `logits row ${i}`, 1e-4, 1e-5);
      }
      assertAllClose(r.logp, g.logprobs, "logprobs", 1e-4, 1e-5);
      const grads = zerosLike(cfg);
      await backward(model, r.tape!, Float32Array.from(g.weights), grads);
      const names = toNamed(cfg, grads);
      assert.equal(names.length, Object.keys(g.grads).length);
      for (const t of names) assertAllClose(t.data, g.grads[t.name], `grad ${t.name}`, 1e-3, 1e-5);
      // fresh gradients (no accumulator) are the same numbers
      const fresh = toNamed(cfg, await backward(model, r.tape!, Float32Array.from(g.weights)));
      for (const [i, t] of fresh.entries()) assertAllClose(t.data, names[i].data, `fresh grad ${t.name}`, 1e-6, 1e-7);
      await kernels.dispose();
    });
  }
}
