// GGUF export of model folders whose tokenizer is a Hugging Face byte-level BPE tokenizer.json,
// cross-checked against llama.cpp (node-llama-cpp's prebuilt CPU build), for each pre-tokenizer
// llama.cpp implements under a name that srlm recognises: GPT-2's ByteLevel ("gpt-2"), SmolLM's
// Digits + ByteLevel ("smollm"), Llama 3's Split ("llama-bpe"), Qwen2's Split ("qwen2").
//
// The tokenizers' merges are learnt here from text without pre-tokenization (hf-fixtures'
// trainByteBpe), so that many merges cross pre-token boundaries; the ids then depend on how the text is
// pre-tokenized, and the test checks that they do (the same merges under another pre-tokenizer give
// other ids). Per pre-tokenizer: llama.cpp's tokenize equals our HfTokenizer's ids on every test string
// (plain text with digits, contractions, whitespace runs, punctuation, non-ASCII; and special tokens
// when parsed as such), its detokenize gives our decoded text back, BOS/EOS ids and add_bos agree, and
// on a chat prompt llama.cpp's next-token log-probs equal our model's within 1e-4 (F32, F32 KV cache).
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { exportCommand } from "../../src/cli/export.js";
import { disposeCpuLlama, LlamaCppModel } from "../../src/engine/llama-cpp.js";
import { createKernels } from "../../src/engine/ort.js";
import { readGgufHeader } from "../../src/io/gguf.js";
import { saveHfModel } from "../../src/io/hf-folder.js";
import { loadModelFolder } from "../../src/io/model-folder.js";
import { createModel, forward } from "../../src/model/llama.js";
import { HfTokenizer } from "../../src/tokenizer/hf.js";
import { byteBpeTokenizer, chatmlTemplate, LLAMA3_TEMPLATE, type PreTokenizerName, trainByteBpe } from "../hf-fixtures.js";
import { llamaCppMissing, logSoftmaxRows, maxAbsDiff, spreadModel } from "../llama-cpp-fixtures.js";

const skip = llamaCppMissing;
const TOL = 1e-4;
const TEXTS = [
  "hello world",
  "Hello, World! It's 2024: 1234567 apples and 89 pears.",
  "  two spaces,   three\n\nnew lines\n \ttab and trailing   ",
  "don't you'll we've I'M THEY'RE she'd",
  "ünïcödé café 日本語 emoji 🙂 — ok?",
  "a.b,c ... ?! (x+y)*z = 42;",
  "12 345 6789 0.5 -3",
];
const CORPUS = [...TEXTS, ...TEXTS, "the world is 100 000 wide, isn't it?\n\n"].join("\n");
/**
 * Merges that apply only under some pre-tokenizers (upper-case contractions and a letter after
 * punctuation join in Llama 3's and Qwen2's regex, a space before a digit in GPT-2's, whitespace
 * runs and newlines split differently), ahead of those learnt from the corpus.
 */
const BOUNDARY_MERGES = [
  "' M",
  "' R",
  "'R E",
  "( x",
  "Ċ Ċ",
  "Ġ Ċ",
  "Ġ Ġ",
  "ĠĠ Ġ",
  "Ġ 1",
  "Ġ 3",
  "Ġ 6",
  "Ġ 8",
  "Ġ t",
  "- 3",
  "Ġ -",
  ". b",
  ", c",
  "Ġ (",
  "Ċ Ġ",
  "Ġ ĉ",
  "ĉ t",
];
const MERGES = [...BOUNDARY_MERGES, ...trainByteBpe(CORPUS, 220).filter((m) => !BOUNDARY_MERGES.includes(m))];
const CHATML = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
const LLAMA3 = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"];

interface Case {
  specials: string[];
  specialsFirst: boolean;
  bos?: string;
  config: Record<string, unknown>;
  template: string;
  /** Rows of the embedding beyond the tokenizer (Qwen2 pads). */
  pad: number;
  withSpecials: string;
}
const CASES: Record<PreTokenizerName, Case> = {
  "gpt-2": {
    specials: CHATML,
    specialsFirst: false,
    config: { eos_token: "<|endoftext|>", bos_token: "<|endoftext|>", add_bos_token: false, clean_up_tokenization_spaces: true },
    template: chatmlTemplate("You are a model."),
    pad: 0,
    withSpecials: "hi<|im_end|>\n<|im_start|>user",
  },
  smollm: {
    specials: CHATML,
    specialsFirst: true,
    config: {
      bos_token: "<|im_start|>",
      eos_token: "<|im_end|>",
      pad_token: "<|im_end|>",
      unk_token: "<|endoftext|>",
      clean_up_tokenization_spaces: false,
    },
    template: chatmlTemplate("You are a helpful AI assistant named SmolLM"),
    pad: 0,
    withSpecials: "hi<|im_end|>\n<|im_start|>user 12",
  },
  "llama-bpe": {
    specials: LLAMA3,
    specialsFirst: false,
    bos: "<|begin_of_text|>",
    config: { bos_token: "<|begin_of_text|>", eos_token: "<|eot_id|>", clean_up_tokenization_spaces: true },
    template: LLAMA3_TEMPLATE,
    pad: 0,
    withSpecials: "<|start_header_id|>user<|end_header_id|>\n\nhi 2024<|eot_id|>",
  },
  qwen2: {
    specials: CHATML,
    specialsFirst: false,
    config: { bos_token: null, eos_token: "<|im_end|>", pad_token: "<|endoftext|>", clean_up_tokenization_spaces: false },
    template: chatmlTemplate("You are a helpful assistant."),
    pad: 7,
    withSpecials: "hi<|im_end|>\n<|im_start|>user 12",
  },
};

const tmp = mkdtempSync(join(tmpdir(), "srlm-gguf-bpe-"));
const kernels = await createKernels("ort");
after(async () => {
  await kernels.dispose();
  await disposeCpuLlama();
  rmSync(tmp, { recursive: true, force: true });
});

async function quietExport(args: string[]): Promise<string> {
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

for (const [i, [pre, c]] of (Object.entries(CASES) as [PreTokenizerName, Case][]).entries()) {
  test(`tokenizer.json with the "${pre}" pre-tokenizer: llama.cpp tokenizes, detokenizes and scores like srlm`, { skip }, async (t) => {
    const tokenizerJson = byteBpeTokenizer(c.specials, { specialsFirst: c.specialsFirst, bos: c.bos, merges: MERGES, pre });
    const tokenizerConfig = { ...c.config, chat_template: c.template };
    const tok = new HfTokenizer(tokenizerJson, tokenizerConfig, `${pre} tokenizer`);

    // The pre-tokenizer decides the ids: under each of the other three, the same merges give other ids
    // for some test strings (for gpt-2/smollm and llama-bpe/qwen2, which differ only in digits, the digit strings).
    const differs: string[] = [];
    for (const p of Object.keys(CASES) as PreTokenizerName[]) {
      if (p === pre) continue;
      const other = new HfTokenizer(
        byteBpeTokenizer(c.specials, { specialsFirst: c.specialsFirst, bos: c.bos, merges: MERGES, pre: p }),
        tokenizerConfig,
      );
      const n = TEXTS.filter(
        (s) => JSON.stringify(tok.encode(s, { addBos: false })) !== JSON.stringify(other.encode(s, { addBos: false })),
      ).length;
      assert.ok(n >= 2, `"${p}" instead of "${pre}" should change the ids of test strings (changed ${n})`);
      differs.push(`${p} ${n}`);
    }

    const dir = join(tmp, `model-${i}`);
    mkdirSync(dir, { recursive: true });
    const { config, params } = spreadModel(
      { vocabSize: tok.vocabSize + c.pad, nHeads: 4, nKvHeads: 2, tieEmbeddings: pre !== "llama-bpe" },
      30 + i,
    );
    await saveHfModel(dir, config, params, { extraFiles: { "tokenizer.json": tokenizerJson, "tokenizer_config.json": tokenizerConfig } });
    const out = join(tmp, `bpe-${i}.gguf`);
    const summary = await quietExport([dir, "--format", "gguf", "--out", out]);
    assert.match(summary, /with chat template/, "export summary");
    const md = readGgufHeader(out).metadata;
    assert.equal(md["tokenizer.ggml.model"], "gpt2", "llama.cpp's byte-level BPE model");
    assert.equal(md["tokenizer.ggml.pre"], pre, "pre-tokenizer name");
    assert.equal((md["tokenizer.ggml.merges"] as string[]).length, MERGES.length, "every merge");
    assert.equal((md["tokenizer.ggml.tokens"] as string[]).length, config.vocabSize, "vocabulary padded to the embedding");

    const m = await LlamaCppModel.open(out, { sequences: 1, threads: 1, exactKv: true });
    try {
      const lm = m.model;
      assert.equal(lm.tokens.bos ?? undefined, tok.bosId, "BOS id");
      assert.equal(lm.tokens.eos ?? undefined, tok.eosId, "EOS id");
      for (const s of TEXTS) {
        const ours = tok.encode(s, { addBos: false });
        assert.deepEqual([...lm.tokenize(s)], ours, `llama.cpp tokenizes ${JSON.stringify(s)} like tokenizer.json`);
        assert.equal(lm.detokenize(ours as never), tok.decode(ours), `llama.cpp detokenizes ${JSON.stringify(s)} like tokenizer.json`);
      }
      const sp = tok.encode(c.withSpecials, { addBos: false });
      assert.deepEqual([...lm.tokenize(c.withSpecials, true)], sp, "special tokens parsed as single ids");
      assert.equal(lm.detokenize(sp as never, true), tok.decode(sp, { keepSpecial: true }), "special tokens detokenized");

      const f = await loadModelFolder(dir);
      const ids = f.chatIds([{ role: "user", content: "It's 2024: hello world, 1234567 apples?" }]);
      const ours = createModel(config, params, kernels);
      const { logits } = await forward(ours, { tokens: Int32Array.from(ids), B: 1, T: ids.length }, { returnLogits: true });
      const a = logSoftmaxRows(logits as Float32Array, config.vocabSize);
      const b = await m.logprobs(ids);
      const { diff } = maxAbsDiff(a, b);
      assert.ok(diff <= TOL, `max |Δ log p| ${diff.toExponential(2)} > ${TOL} over ${ids.length} chat-prompt positions`);
      t.diagnostic(
        `${MERGES.length} merges; test strings of ${TEXTS.length} tokenized otherwise under ${differs.join(", ")}; max |Δ log p| ${diff.toExponential(2)} over ${ids.length} positions`,
      );
    } finally {
      await m.dispose();
    }
  });
}
