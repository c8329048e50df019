// The llama.cpp engine (src/engine/llama-cpp.ts) keeps the builtin generate's contract: on an exported
// F32 model (F32 KV cache, log-probs within ~1e-5 of ours) it returns the same samples — greedy and
// sampled, since both draw from the same PRNG streams — with the same stop rules and log-probs.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { disposeCpuLlama, LlamaCppError, LlamaCppModel } from "../../src/engine/llama-cpp.js";
import { createKernels } from "../../src/engine/ort.js";
import { exportLlamaGguf } from "../../src/io/gguf-write.js";
import { type GenerateOptions, generate, type Sample } from "../../src/model/generate.js";
import { createModel } from "../../src/model/llama.js";
import { LAYOUTS, llamaCppMissing, spreadModel, tok } from "../llama-cpp-fixtures.js";

const skip = llamaCppMissing;
const tmp = mkdtempSync(join(tmpdir(), "srlm-llamacpp-engine-"));
const kernels = await createKernels("ort");
after(async () => {
  await kernels.dispose();
  await disposeCpuLlama();
  rmSync(tmp, { recursive: true, force: true });
});

const PROMPTS = ["abc 12+7=19\n>", "hello world;", "q"];

/** Same samples apart from log-probs, which must agree to `tol` (sums of ≤ 24 float32 log-probs). */
function assertSameSamples(a: Sample[][], b: Sample[][], what: string, tol = 1e-3): void {
  assert.equal(b.length, a.length, `${what}: prompts`);
  a.forEach((row, p) => {
    assert.equal(b[p].length, row.length, `${what}: samples of prompt ${p}`);
    row.forEach((s, i) => {
      const o = b[p][i];
      const where = `${what}: prompt ${p} sample ${i}`;
      assert.deepEqual(o.ids, s.ids, `${where}: ids`);
      assert.equal(o.text, s.text, `${where}: text`);
      assert.equal(o.finishReason, s.finishReason, `${where}: finish reason`);
      assert.deepEqual([o.promptIndex, o.sampleIndex], [s.promptIndex, s.sampleIndex], `${where}: indices`);
      assert.ok(Math.abs(o.logprob - s.logprob) <= tol, `${where}: logprob ${o.logprob} vs ours ${s.logprob}`);
    });
  });
}

test("llama.cpp engine: same samples as the builtin generate (greedy, sampled, stop strings)", { skip }, async () => {
  const { config, params } = spreadModel(LAYOUTS["GQA (4 heads, 2 kv heads), separate lm_head"], 5);
  const path = join(tmp, "m.gguf");
  await exportLlamaGguf(path, { config, params, tokenizer: tok });
  const ours = createModel(config, params, kernels);
  const theirs = await LlamaCppModel.open(path, { sequences: 4, threads: 1, exactKv: true });
  try {
    assert.equal(theirs.contextSize, config.maxSeqLen, "context = the model's maxSeqLen");
    const cases: [string, GenerateOptions][] = [
      ["greedy", { temperature: 0, maxNewTokens: 24 }],
      ["T 0.7, top-p 0.9, n 4", { temperature: 0.7, topP: 0.9, n: 4, seed: 3, maxNewTokens: 16 }],
      ["T 1, top-k 5, stop strings", { temperature: 1, topK: 5, n: 2, seed: 9, maxNewTokens: 16, stopStrings: ["a", "\n"] }],
    ];
    for (const [what, opts] of cases) {
      const a = await generate(ours, tok, PROMPTS, opts);
      const b = await theirs.generate(tok, PROMPTS, opts);
      assertSameSamples(a, b, what);
    }
    // The cases above must exercise every way a sample ends.
    const all = (await theirs.generate(tok, PROMPTS, cases[2][1])).flat();
    assert.ok(
      all.some((s) => s.finishReason === "stop"),
      "some sample stopped on a stop string",
    );
    assert.ok(
      all.some((s) => s.finishReason === "length"),
      "some sample ran to maxNewTokens",
    );
  } finally {
    await theirs.dispose();
  }
});

test("llama.cpp engine: argument and file errors are typed and name what is wrong", { skip }, async () => {
  await assert.rejects(
    LlamaCppModel.open(join(tmp, "missing.gguf")),
    (e: Error) => e instanceof LlamaCppError && /missing\.gguf/.test(e.message),
  );
  const { config, params } = spreadModel(LAYOUTS["tied embeddings, MHA"], 6);
  const path = join(tmp, "small.gguf");
  await exportLlamaGguf(path, { config, params, tokenizer: tok });
  const m = await LlamaCppModel.open(path, { sequences: 1, threads: 1 });
  try {
    await assert.rejects(m.generate(undefined, ["text"]), /prompt 0 is text but no tokenizer was given/, "text prompt without tokenizer");
    await assert.rejects(m.generate(tok, ["a"], { topP: 0 }), /topP must be in \(0, 1\]/, "topP range");
    await assert.rejects(m.generate(tok, [[]]), /prompt 0 is empty/, "empty prompt");
    const [[s]] = await m.generate(undefined, [[1, 5, 6]], { temperature: 0, maxNewTokens: 3, stopTokens: [] });
    assert.equal(s.ids.length, 3, "token prompts work without a tokenizer");
    assert.equal(s.text, "", "no text without a tokenizer");
  } finally {
    await m.dispose();
  }
});
