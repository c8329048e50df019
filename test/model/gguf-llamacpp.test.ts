// GGUF export cross-checked against llama.cpp (node-llama-cpp's prebuilt CPU build): random models in
// every supported layout give llama.cpp the same next-token distributions and greedy continuations as
// the builtin engine, and stories260K survives import → export → llama.cpp with its recorded greedy text.
//
// Tolerances, on next-token log-probabilities (logits up to the constant the softmax removes), over
// every position of a 25-token prompt and every vocabulary entry, with log-probs down to ≈ −20:
//  - F32 export, llama.cpp with an F32 KV cache: |Δ log p| ≤ 1e-4 (measured ≈ 5–7e-6: float32 sums
//    in another order);
//  - F16 export, llama.cpp's default F16 KV cache: ≤ 5e-2 against our F32 model (measured ≈ 1.1–1.5e-2:
//    ggml rounds the activations to F16 too, so this is looser than the weights' own rounding).
// Greedy continuations (up to 32 tokens or EOS) must agree token for token; with F16, where they part,
// our top-two logit margin there must be below twice the tolerance (a near tie the rounding may break
// either way) and at least 8 tokens must agree before.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { disposeCpuLlama, LlamaCppModel } from "../../src/engine/llama-cpp.js";
import { createKernels } from "../../src/engine/ort.js";
import { loadGgufModel } from "../../src/io/gguf.js";
import { exportLlamaGguf, type GgufExportType } from "../../src/io/gguf-write.js";
import { generate } from "../../src/model/generate.js";
import { createModel, forward, type LlamaModel } from "../../src/model/llama.js";
import { sharedPath } from "../helpers.js";
import { LAYOUTS, llamaCppMissing, logSoftmaxRows, maxAbsDiff, spreadModel, tok } from "../llama-cpp-fixtures.js";

const skip = llamaCppMissing;
const TOL: Record<GgufExportType, number> = { f32: 1e-4, f16: 5e-2 };
const PROMPT = "abc 12+7=19\nhello world;";
const GREEDY_TOKENS = 32;

const tmp = mkdtempSync(join(tmpdir(), "srlm-gguf-llamacpp-"));
const kernels = await createKernels("ort");
after(async () => {
  await kernels.dispose();
  await disposeCpuLlama();
  rmSync(tmp, { recursive: true, force: true });
});

/** Our next-token log-probs (T, V) after every position of `ids`. */
async function ourLogprobs(model: LlamaModel, ids: number[]): Promise<Float32Array> {
  const { logits } = await forward(model, { tokens: Int32Array.from(ids), B: 1, T: ids.length }, { returnLogits: true });
  return logSoftmaxRows(logits as Float32Array, model.config.vocabSize);
}

/** Top-1 minus top-2 logit at each row. */
function margins(logp: Float32Array, V: number): number[] {
  const out: number[] = [];
  for (let off = 0; off < logp.length; off += V) {
    const row = Array.from(logp.subarray(off, off + V)).sort((a, b) => b - a);
    out.push(row[0] - row[1]);
  }
  return out;
}

for (const [layout, shape] of Object.entries(LAYOUTS)) {
  for (const type of ["f32", "f16"] as const) {
    test(`${layout}, ${type.toUpperCase()}: llama.cpp's next-token log-probs and greedy tokens equal ours`, { skip }, async (t) => {
      const { config, params } = spreadModel(shape, 11);
      const path = join(tmp, `${type}-${Object.keys(LAYOUTS).indexOf(layout)}.gguf`);
      await exportLlamaGguf(path, { config, params, tokenizer: tok }, { type });
      const ours = createModel(config, params, kernels);
      const theirs = await LlamaCppModel.open(path, { sequences: 1, threads: 1, exactKv: type === "f32" });
      try {
        const ids = tok.encode(PROMPT);
        assert.deepEqual(theirs.model.tokenize(PROMPT), ids.slice(1), "llama.cpp tokenizes like the CharTokenizer (BOS aside)");
        assert.equal(theirs.model.tokens.bos, tok.bosId, "BOS id");
        assert.equal(theirs.model.detokenize(ids.slice(1) as never), PROMPT, "llama.cpp detokenizes like the CharTokenizer");

        const V = config.vocabSize;
        const a = await ourLogprobs(ours, ids);
        const b = await theirs.logprobs(ids);
        assert.equal(b.length, a.length, "one vocabulary-sized row per prompt position");
        const { diff, at } = maxAbsDiff(a, b);
        const spread = a.reduce((m, x) => Math.min(m, x), 0);
        assert.ok(
          diff <= TOL[type],
          `max |Δ log p| ${diff.toExponential(2)} > ${TOL[type]} at position ${Math.floor(at / V)}, token ${at % V} (ours ${a[at]}, llama.cpp ${b[at]})`,
        );
        assert.ok(spread < -10, `the test model's log-probs should spread (lowest ${spread.toFixed(1)})`);

        const [[g]] = await generate(ours, tok, [ids], { temperature: 0, maxNewTokens: GREEDY_TOKENS, stopTokens: [tok.eosId] });
        const native = await theirs.greedyNative(ids, GREEDY_TOKENS);
        const path2 = [...ids, ...g.ids];
        const m = margins(await ourLogprobs(ours, path2), V).slice(ids.length - 1);
        let same = 0;
        while (same < g.ids.length && g.ids[same] === native[same]) same++;
        t.diagnostic(`max |Δ log p| ${diff.toExponential(2)}; greedy: ${same} of ${g.ids.length} tokens agree`);
        if (type === "f32") {
          assert.deepEqual(native, g.ids, "greedy continuation, token for token");
        } else if (same < g.ids.length) {
          assert.ok(
            m[same] < 2 * TOL[type],
            `greedy tokens part at step ${same}: ours ${g.ids[same]}, llama.cpp ${native[same]}, our top-2 margin ${m[same].toFixed(4)} is no near tie`,
          );
          assert.ok(same >= Math.min(8, g.ids.length), `only ${same} greedy tokens agree`);
        } else {
          assert.deepEqual(native, g.ids, "greedy continuation, token for token");
        }
      } finally {
        await theirs.dispose();
      }
    });
  }
}

test("stories260K: import → export → llama.cpp gives the recorded tokens and 64-token greedy text", { skip }, async () => {
  const recorded = JSON.parse(readFileSync(sharedPath("data/stories260K_greedy.json"), "utf8")) as {
    prompt: string;
    prompt_tokens_with_bos: number[];
    greedy_tokens: number[];
    greedy_text: string;
  };
  const g = loadGgufModel(sharedPath("models/stories260K.gguf"));
  const path = join(tmp, "stories.gguf");
  await exportLlamaGguf(path, { config: g.config, params: g.params, tokenizer: g.tokenizer });
  // llama.cpp's defaults (F16 KV cache), as the recording was made.
  const m = await LlamaCppModel.open(path, { sequences: 1, threads: 1 });
  try {
    const ids = [m.model.tokens.bos as number, ...m.model.tokenize(recorded.prompt)];
    assert.deepEqual(ids, recorded.prompt_tokens_with_bos, "prompt tokens");
    const out = await m.greedyNative(ids, recorded.greedy_tokens.length);
    assert.deepEqual(out, recorded.greedy_tokens, "64 greedy tokens");
    assert.equal(m.model.detokenize(out as never), recorded.greedy_text, "greedy text");
  } finally {
    await m.dispose();
  }
});
