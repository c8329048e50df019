// A real pretrained model: stories260K (TinyStories, llama.cpp's GGUF) loaded into our engine must
// tokenize and continue "Once upon a time" exactly as llama.cpp does (recorded in ../shared/data).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { createKernels } from "../../src/engine/ort.js";
import { loadGgufModel } from "../../src/io/gguf.js";
import { generate } from "../../src/model/generate.js";
import { createModel } from "../../src/model/llama.js";
import { sharedPath } from "../helpers.js";

const recorded = JSON.parse(readFileSync(sharedPath("data/stories260K_greedy.json"), "utf8")) as {
  prompt: string;
  prompt_tokens_with_bos: number[];
  greedy_tokens: number[];
  greedy_text: string;
};

test("stories260K.gguf: tokens and 64-token greedy continuation equal llama.cpp's, token for token", async () => {
  const g = loadGgufModel(sharedPath("models/stories260K.gguf"));
  const ids = g.tokenizer.encode(recorded.prompt);
  assert.deepEqual(ids, recorded.prompt_tokens_with_bos);
  const kernels = await createKernels("ort");
  const model = createModel(g.config, g.params, kernels);
  const out = await generate(model, g.tokenizer, [ids], { temperature: 0, maxNewTokens: recorded.greedy_tokens.length, stopTokens: [] });
  assert.deepEqual(out[0][0].ids, recorded.greedy_tokens);
  assert.equal(out[0][0].text, recorded.greedy_text);
  await kernels.dispose();
});
