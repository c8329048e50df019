// A Hugging Face byte-level BPE tokenizer.json as llama.cpp's "gpt2" vocabulary: token types, merges,
// special ids, and the refusals (each naming the tokenizer and the field) for what llama.cpp would
// tokenize differently. The cross-check against llama.cpp is test/model/gguf-bpe-llamacpp.test.ts.
import assert from "node:assert/strict";
import { test } from "node:test";
import { GgufType } from "../../src/io/gguf.js";
import { type BpeVocab, hfBpeVocab, llamaCppPreTokenizer, llamaGgufMetadata } from "../../src/io/gguf-write.js";
import { llamaConfig } from "../../src/model/config.js";
import { initParams } from "../../src/model/params.js";
import { HfTokenizer } from "../../src/tokenizer/hf.js";
import { SpmTokenType } from "../../src/tokenizer/sentencepiece.js";
import { BPE_MERGES, byteBpeTokenizer, preTokenizer } from "../hf-fixtures.js";

const CHATML = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

function tokenizer(edit: (j: Record<string, unknown>) => void = () => {}, cfg: Record<string, unknown> = {}): HfTokenizer {
  const j = byteBpeTokenizer(CHATML, { specialsFirst: false, pre: "qwen2" });
  edit(j);
  return new HfTokenizer(j, { eos_token: "<|im_end|>", pad_token: "<|endoftext|>", ...cfg }, "my-model");
}

test("vocabulary: byte-level tokens as stored, specials CONTROL, non-special added USER_DEFINED, merges as 'a b'", () => {
  const tok = tokenizer((j) => {
    (j.added_tokens as Record<string, unknown>[])[0].special = false; // <|endoftext|> as a plain added token
    // the newer tokenizers format keeps merges as pairs
    (j.model as Record<string, unknown>).merges = BPE_MERGES.map((m) => m.split(" "));
  });
  const v: BpeVocab = hfBpeVocab(tok);
  assert.equal(v.pre, "qwen2", "pre-tokenizer recognised");
  assert.equal(v.tokens.length, tok.vocabSize, "one token per id");
  assert.equal(v.tokens[tok.tokenToId("Ġworld") as number], "Ġworld", "byte-level form kept");
  assert.equal(v.types[tok.tokenToId("Ġworld") as number], SpmTokenType.NORMAL, "NORMAL");
  assert.equal(v.types[tok.tokenToId("<|im_end|>") as number], SpmTokenType.CONTROL, "special → CONTROL");
  assert.equal(v.types[tok.tokenToId("<|endoftext|>") as number], SpmTokenType.USER_DEFINED, "non-special added → USER_DEFINED");
  assert.deepEqual(v.merges, BPE_MERGES, "merges as 'a b' strings");
  assert.equal(v.eosId, tok.tokenToId("<|im_end|>"), "EOS");
  assert.equal(v.padId, tok.tokenToId("<|endoftext|>"), "PAD from pad_token");
  assert.equal(v.bosId, undefined, "no BOS");
  assert.equal(v.addBos, false, "no BOS added");

  const config = llamaConfig({ vocabSize: tok.vocabSize + 2, dim: 16, nLayers: 1, nHeads: 2, hiddenDim: 24 });
  const md = new Map(llamaGgufMetadata({ config, params: initParams(config, 1), tokenizer: tok }, "f32").map((kv) => [kv.key, kv]));
  assert.equal(md.get("tokenizer.ggml.model")?.value, "gpt2", "tokenizer.ggml.model");
  assert.equal(md.get("tokenizer.ggml.pre")?.value, "qwen2", "tokenizer.ggml.pre");
  assert.equal(md.get("tokenizer.ggml.merges")?.type, GgufType.ARRAY, "merges array");
  assert.deepEqual(
    ((md.get("tokenizer.ggml.tokens")?.value ?? []) as string[]).slice(-2),
    [`[PAD${tok.vocabSize}]`, `[PAD${tok.vocabSize + 1}]`],
    "padded",
  );
  assert.equal(md.has("tokenizer.ggml.scores"), false, "no scores for BPE");
  assert.equal(md.has("tokenizer.ggml.add_space_prefix"), false, "no space prefix for BPE");
});

test("pre-tokenizers recognised by structure", () => {
  for (const name of ["gpt-2", "smollm", "llama-bpe", "qwen2"] as const) {
    assert.equal(llamaCppPreTokenizer(preTokenizer(name)), name, `${name} recognised`);
  }
  assert.equal(llamaCppPreTokenizer({ type: "Metaspace", replacement: "▁" }), undefined, "Metaspace is not byte-level");
  assert.equal(llamaCppPreTokenizer({ type: "ByteLevel", add_prefix_space: true, use_regex: true }), undefined, "prefix space");
  const split = preTokenizer("qwen2") as { pretokenizers: Record<string, unknown>[] };
  const edited = { ...split, pretokenizers: [{ ...split.pretokenizers[0], pattern: { Regex: "\\s+" } }, split.pretokenizers[1]] };
  assert.equal(llamaCppPreTokenizer(edited), undefined, "an unknown Split regex");
});

test("refusals name the tokenizer and the field", () => {
  const cases: [string, (j: Record<string, unknown>) => void, RegExp][] = [
    ["WordPiece", (j) => ((j.model as Record<string, unknown>).type = "WordPiece"), /model type is "WordPiece"/],
    ["byte fallback", (j) => ((j.model as Record<string, unknown>).byte_fallback = true), /byte_fallback/],
    ["subword prefix", (j) => ((j.model as Record<string, unknown>).continuing_subword_prefix = "##"), /continuing_subword_prefix/],
    ["lowercase normalizer", (j) => (j.normalizer = { type: "Lowercase" }), /normalizer "Lowercase"/],
    [
      "Metaspace",
      (j) => (j.pre_tokenizer = { type: "Metaspace", replacement: "▁", prepend_scheme: "first" }),
      /pre_tokenizer .*Metaspace.* is none that llama\.cpp implements/,
    ],
    [
      "ignore_merges",
      (j) => ((j.model as Record<string, unknown>).ignore_merges = true),
      /ignore_merges is true, but llama\.cpp's "qwen2"/,
    ],
    ["decoder", (j) => (j.decoder = { type: "Metaspace", replacement: "▁" }), /decoder "Metaspace"/],
  ];
  for (const [what, edit, re] of cases) {
    assert.throws(
      () => hfBpeVocab(tokenizer(edit)),
      (e: Error) => e.message.startsWith("my-model: tokenizer.json") && re.test(e.message),
      `${what}: refused with a message naming it`,
    );
  }
  // NFC (Qwen2's normalizer) is accepted
  assert.equal(hfBpeVocab(tokenizer((j) => (j.normalizer = { type: "NFC" }))).pre, "qwen2", "NFC accepted");
});
