// LoRA adapters exported to GGUF cross-checked against llama.cpp (node-llama-cpp's prebuilt CPU
// build): a random base model exported as a GGUF and a random non-zero PEFT adapter on every Linear
// exported with `srlm export <adapter-dir> --format gguf --base <base.gguf>`, loaded together in
// llama.cpp (the context's `lora` option), give the next-token log-probs and greedy continuation of
// our model with the adapter merged (W + alpha/r · B A), in every layout the model export supports.
//
// Tolerance, on next-token log-probs over every position of a 25-token prompt and every vocabulary
// entry (log-probs down to ≈ −20), F32 base and adapter, F32 KV cache: |Δ log p| ≤ 1e-4 (measured
// 8e-6–1.3e-5; llama.cpp adds the adapter path B (A x) to W x instead of merging, float32 in another
// order). The adapter moves the log-probs by ≥ 1 nat somewhere, so the comparison is not vacuous, and
// an adapter scale of 0.5 in llama.cpp equals our merge with half the alpha. Greedy continuations
// (32 tokens or EOS) agree token for token.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { exportCommand } from "../../src/cli/export.js";
import { disposeCpuLlama, LlamaCppModel } from "../../src/engine/llama-cpp.js";
import { createKernels } from "../../src/engine/ort.js";
import { mulberry32, randn } from "../../src/engine/tensor.js";
import { exportLlamaGguf } from "../../src/io/gguf-write.js";
import { saveLoraAdapter } from "../../src/io/peft.js";
import type { LlamaConfig } from "../../src/model/config.js";
import { generate } from "../../src/model/generate.js";
import { createModel, forward, type LlamaModel } from "../../src/model/llama.js";
import type { LlamaParams } from "../../src/model/params.js";
import { initLora, type LoraAdapter, loraTargets, mergeLora } from "../../src/train/lora.js";
import { LAYOUTS, llamaCppMissing, logSoftmaxRows, maxAbsDiff, spreadModel, tok } from "../llama-cpp-fixtures.js";

const skip = llamaCppMissing;
const TOL = 1e-4;
const PROMPT = "abc 12+7=19\nhello world;";
const GREEDY_TOKENS = 32;

const tmp = mkdtempSync(join(tmpdir(), "srlm-lora-gguf-"));
const kernels = await createKernels("ort");
after(async () => {
  await kernels.dispose();
  await disposeCpuLlama();
  rmSync(tmp, { recursive: true, force: true });
});

async function ourLogprobs(model: LlamaModel, ids: number[]): Promise<Float32Array> {
  const { logits } = await forward(model, { tokens: Int32Array.from(ids), B: 1, T: ids.length }, { returnLogits: true });
  return logSoftmaxRows(logits as Float32Array, model.config.vocabSize);
}

/** A LoRA on all seven Linears with random A and B (B ≠ 0, unlike a fresh adapter), r = 4, alpha = 6. */
function randomAdapter(config: LlamaConfig, seed: number): LoraAdapter {
  const a = initLora(config, { r: 4, alpha: 6, dropout: 0, targetModules: [...loraTargets] }, seed);
  const rng = mulberry32(seed + 1);
  for (const layer of a.layers) for (const p of Object.values(layer)) p?.B.set(randn(rng, p.B.length, 0.5));
  return a;
}

/** Run `srlm export` quietly. */
async function srlmExport(args: string[]): Promise<string> {
  const written: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string) => written.push(s) > 0) as typeof process.stdout.write;
  try {
    await exportCommand(args);
  } finally {
    process.stdout.write = write;
  }
  return written.join("");
}

function merged(config: LlamaConfig, params: LlamaParams, a: LoraAdapter, alphaScale = 1): LlamaModel {
  const scaled: LoraAdapter = { ...a, config: { ...a.config, alpha: a.config.alpha * alphaScale } };
  return createModel(config, mergeLora(config, params, scaled), kernels);
}

for (const [i, [layout, shape]] of Object.entries(LAYOUTS).entries()) {
  test(`${layout}: llama.cpp with the exported LoRA GGUF gives our merged model's log-probs and greedy tokens`, { skip }, async (t) => {
    const { config, params } = spreadModel(shape, 21 + i);
    const basePath = join(tmp, `base-${i}.gguf`);
    await exportLlamaGguf(basePath, { config, params, tokenizer: tok });
    const adapter = randomAdapter(config, 40 + i);
    const adapterDir = join(tmp, `adapter-${i}`);
    await saveLoraAdapter(adapterDir, config, adapter, { baseModel: "not/a/local/path" });
    const loraPath = join(tmp, `lora-${i}.gguf`);
    const summary = await srlmExport([adapterDir, "--format", "gguf", "--base", basePath, "--out", loraPath]);
    assert.match(summary, /LoRA adapter GGUF, F32, r = 4, alpha = 6/, "export summary line");

    const ids = tok.encode(PROMPT);
    const V = config.vocabSize;
    const ours = merged(config, params, adapter);
    const a = await ourLogprobs(ours, ids);
    const base = await ourLogprobs(createModel(config, params, kernels), ids);
    const moved = maxAbsDiff(a, base).diff;
    assert.ok(moved > 1, `the adapter should move some log-prob by > 1 nat (moved ${moved.toFixed(3)})`);

    const theirs = await LlamaCppModel.open(basePath, { sequences: 1, threads: 1, exactKv: true, lora: [{ path: loraPath }] });
    try {
      const b = await theirs.logprobs(ids);
      assert.equal(b.length, a.length, "one vocabulary-sized row per prompt position");
      const { diff, at } = maxAbsDiff(a, b);
      assert.ok(
        diff <= TOL,
        `max |Δ log p| ${diff.toExponential(2)} > ${TOL} at position ${Math.floor(at / V)}, token ${at % V} (ours ${a[at]}, llama.cpp ${b[at]})`,
      );
      const [[g]] = await generate(ours, tok, [ids], { temperature: 0, maxNewTokens: GREEDY_TOKENS, stopTokens: [tok.eosId] });
      const native = await theirs.greedyNative(ids, GREEDY_TOKENS);
      assert.deepEqual(native, g.ids, "greedy continuation with the adapter, token for token");
      t.diagnostic(
        `adapter moves log p by up to ${moved.toFixed(2)}; max |Δ log p| vs llama.cpp ${diff.toExponential(2)}; ${g.ids.length} greedy tokens agree`,
      );
    } finally {
      await theirs.dispose();
    }

    if (i === 0) {
      // scale 0.5 in llama.cpp = our merge with alpha / 2
      const half = await LlamaCppModel.open(basePath, { sequences: 1, threads: 1, exactKv: true, lora: [{ path: loraPath, scale: 0.5 }] });
      try {
        const ah = await ourLogprobs(merged(config, params, adapter, 0.5), ids);
        const { diff } = maxAbsDiff(ah, await half.logprobs(ids));
        assert.ok(diff <= TOL, `scale 0.5: max |Δ log p| ${diff.toExponential(2)} > ${TOL}`);
        t.diagnostic(`scale 0.5: max |Δ log p| ${diff.toExponential(2)}`);
      } finally {
        await half.dispose();
      }
    }
  });
}
