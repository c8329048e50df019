import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { mulberry32 } from "../../src/engine/tensor.js";
import { readGgufHeader } from "../../src/io/gguf.js";
import { SentencePieceTokenizer, SpmTokenType } from "../../src/tokenizer/sentencepiece.js";
import { sharedPath } from "../helpers.js";

const GGUF = sharedPath("models", "stories260K.gguf");
const REF = JSON.parse(readFileSync(sharedPath("data", "stories260K_greedy.json"), "utf8")) as {
  prompt: string;
  prompt_tokens_with_bos: number[];
  greedy_tokens: number[];
  greedy_text: string;
};

let cached: SentencePieceTokenizer | undefined;
function stories(): SentencePieceTokenizer {
  cached ??= SentencePieceTokenizer.fromGgufMetadata(readGgufHeader(GGUF).metadata, GGUF);
  return cached;
}

/** Straightforward O(n²) version of llama.cpp's SPM merge loop, used as a reference. */
function naiveEncode(tk: SentencePieceTokenizer, text: string): number[] {
  if (text === "") return [tk.bosId as number];
  const syms = Array.from(` ${text}`.replaceAll(" ", "\u2581"));
  for (;;) {
    let best = -1;
    let bestScore = -Infinity;
    for (let i = 0; i + 1 < syms.length; i++) {
      const id = tk.tokenId(syms[i] + syms[i + 1]);
      if (id !== undefined && tk.scores[id] > bestScore) {
        bestScore = tk.scores[id];
        best = i;
      }
    }
    if (best < 0) break;
    syms.splice(best, 2, syms[best] + syms[best + 1]);
  }
  const out = [tk.bosId as number];
  for (const s of syms) {
    const id = tk.tokenId(s);
    if (id !== undefined) out.push(id);
    else
      for (const b of new TextEncoder().encode(s)) out.push(tk.tokenId(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`) as number);
  }
  return out;
}

const POOL = [
  ..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
  ..."     .,;:!?'\"-()[]{}<>/\\@#$%^&*_+=|~`",
  "\n",
  "\t",
  "\r",
  "\0",
  "é",
  "ü",
  "ß",
  "中",
  "文",
  "日本",
  "🙂",
  "👍🏽",
  "\u00a0",
  "\u200b",
  "<s>",
  "</s>",
  "<unk>",
  "Once",
  " upon",
  " a time",
  " Lily",
];

function randomText(rng: () => number, maxLen: number): string {
  const n = Math.floor(rng() * maxLen);
  let s = "";
  for (let i = 0; i < n; i++) s += POOL[Math.floor(rng() * POOL.length)];
  return s;
}

test("stories260K: vocabulary metadata is read as llama.cpp does", () => {
  const tk = stories();
  assert.equal(tk.vocabSize, 512);
  assert.equal(tk.bosId, 1);
  assert.equal(tk.eosId, 2);
  assert.equal(tk.unkId, 0);
  assert.equal(tk.padId, 0);
  assert.equal(tk.addBos, true);
  assert.equal(tk.addSpacePrefix, true);
  assert.equal(tk.types[1], SpmTokenType.CONTROL);
  assert.equal(tk.types[3], SpmTokenType.BYTE);
  assert.equal(tk.tokenId("<0x0A>"), 13);
});

test("stories260K: prompt encodes exactly as llama.cpp, greedy tokens decode exactly", () => {
  const tk = stories();
  assert.deepEqual(tk.encode(REF.prompt), REF.prompt_tokens_with_bos);
  assert.deepEqual(tk.encode(REF.prompt, { addBos: false }), REF.prompt_tokens_with_bos.slice(1));
  assert.equal(tk.decode(REF.greedy_tokens), REF.greedy_text);
  assert.equal(tk.decode(REF.prompt_tokens_with_bos), REF.prompt);
  assert.equal(tk.decode([...REF.prompt_tokens_with_bos, ...REF.greedy_tokens]), REF.prompt + REF.greedy_text);
  // a continuation keeps its leading space when asked
  const there = tk.tokenId("▁there") as number;
  assert.ok(there !== undefined, "stories260K has a ▁there token");
  assert.equal(tk.decode([there]), "there");
  assert.equal(tk.decode([there], { stripLeadingSpace: false }), " there");
  assert.equal(tk.decode([1, 2, 0], { keepSpecial: true }), "<s></s><unk>");
  assert.equal(tk.decode([1, 2, 0]), "");
  assert.throws(() => tk.decode([512]), /token id 512 is outside the vocabulary \(0\.\.511\)/);
});

test("stories260K: empty text, BOS, EOS and the add_bos default", () => {
  const tk = stories();
  assert.deepEqual(tk.encode(""), [1]);
  assert.deepEqual(tk.encode("", { addBos: false }), []);
  assert.deepEqual(tk.encode("a", { addEos: true }).at(-1), 2);
  assert.equal(tk.decode(tk.encode(" ")), " ");
});

test("stories260K: decode(encode(s)) === s for random strings (unicode, bytes not in vocab)", () => {
  const tk = stories();
  const rng = mulberry32(1234);
  for (let trial = 0; trial < 400; trial++) {
    const s = randomText(rng, 40);
    const ids = tk.encode(s);
    assert.equal(ids[0], 1);
    assert.equal(tk.decode(ids), s, `round trip of ${JSON.stringify(s)} via [${ids.join(", ")}]`);
    assert.equal(tk.decode(tk.encode(s, { addBos: false })), s);
    assert.deepEqual(ids, naiveEncode(tk, s), `heap vs naive merge order for ${JSON.stringify(s)}`);
  }
});

test("stories260K: long text encodes in near-linear time", () => {
  const tk = stories();
  const rng = mulberry32(7);
  let s = "";
  while (s.length < 200_000) s += `${randomText(rng, 30)} Once upon a time there was a little girl. `;
  const t0 = performance.now();
  const ids = tk.encode(s);
  const ms = performance.now() - t0;
  assert.equal(tk.decode(ids), s);
  assert.ok(ms < 3000, `encoding ${s.length} chars took ${ms.toFixed(0)} ms`);
});

// A hand-made vocabulary to pin down merge order, ties, byte fallback and special-token handling.
function toy(opts: { bytes?: boolean; unk?: boolean } = {}): SentencePieceTokenizer {
  const tokens = ["<unk>", "<s>", "</s>", "▁", "a", "b", "c", "ab", "bc", "abc", "▁a", "<sep>"];
  const scores = [0, 0, 0, -1, -2, -2, -2, -5, -1, -3, -0.5, 0];
  const types = [2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4];
  if (opts.bytes) {
    for (let b = 0; b < 256; b++) {
      tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
      scores.push(0);
      types.push(6);
    }
  }
  return new SentencePieceTokenizer({ tokens, scores, types, unkId: opts.unk === false ? null : 0 });
}

test("toy vocab: highest score merges first, ties go to the leftmost pair", () => {
  const tk = toy();
  // "▁abc": pairs ▁a(-0.5) ab(-5) bc(-1) → ▁a, then (▁a,b)? not a token; bc(-1) → [▁a][bc]
  assert.deepEqual(tk.encode("abc", { addBos: false }), [10, 8]);
  // "▁ab": ▁a first → [▁a][b]
  assert.deepEqual(tk.encode("ab", { addBos: false }), [10, 5]);
  // no space prefix: "abc": ab(-5) vs bc(-1) → a + bc, then "abc" is a token → [abc]
  const noPrefix = new SentencePieceTokenizer({ tokens: [...tk.tokens], scores: tk.scores, types: tk.types, addSpacePrefix: false });
  assert.deepEqual(noPrefix.encode("abc", { addBos: false }), [9]);
  assert.deepEqual(noPrefix.encode("abb", { addBos: false }), [7, 5]);
  // equal scores: "bcbc" → pairs bc, cb(x), bc: both -1, leftmost first, then the other
  assert.deepEqual(noPrefix.encode("bcbc", { addBos: false }), [8, 8]);
  assert.equal(noPrefix.decode(noPrefix.encode("a b")), "a b");
});

test("toy vocab: byte fallback, <unk> fallback, and a clear error when neither exists", () => {
  assert.deepEqual(toy({ bytes: true }).encode("aé", { addBos: false }), [10, 12 + 0xc3, 12 + 0xa9]);
  assert.equal(toy({ bytes: true }).decode([10, 12 + 0xc3, 12 + 0xa9]), "aé");
  assert.equal(toy({ bytes: true }).decode([12 + 0xc3]), "\uFFFD"); // a lone lead byte
  assert.deepEqual(toy().encode("aé", { addBos: false }), [10, 0, 0]);
  assert.throws(
    () => toy({ unk: false }).encode("aé"),
    /character "é" is not in the vocabulary and there is no byte token <0xC3> or <unk>/,
  );
});

test("toy vocab: user-defined tokens are split out; control tokens only with parseSpecial", () => {
  const tk = toy();
  // user-defined <sep>: emitted as-is, and the text after it gets a new space prefix (llama.cpp)
  assert.deepEqual(tk.encode("a<sep>a", { addBos: false }), [10, 11, 10]);
  assert.equal(tk.decode([10, 11, 10]), "a<sep> a");
  // control "<s>" in text is plain characters by default (here: not in the vocabulary → <unk>s)
  assert.deepEqual(tk.encode("a</s>", { addBos: false }), [10, 0, 0, 0, 0]);
  assert.deepEqual(tk.encode("a</s>", { addBos: false, parseSpecial: true }), [10, 2]);
  assert.deepEqual(tk.encode("<s>a", { parseSpecial: true }), [1, 1, 10]);
});

test("constructor validation", () => {
  assert.throws(() => new SentencePieceTokenizer({ tokens: [] }), /empty vocabulary/);
  assert.throws(() => new SentencePieceTokenizer({ tokens: ["a"], bosId: 3 }), /special token id 3 is outside the vocabulary/);
  assert.throws(() => new SentencePieceTokenizer({ tokens: ["a", "b"], scores: [0] }), /1 scores for 2 tokens/);
  assert.throws(() => new SentencePieceTokenizer({ tokens: ["<0xZZ>"], types: [6] }), /byte token 0 has text "<0xZZ>"/);
  assert.throws(
    () => SentencePieceTokenizer.fromGgufMetadata({ "tokenizer.ggml.model": "gpt2" }, "m.gguf"),
    /m\.gguf: tokenizer\.ggml\.model is "gpt2"/,
  );
  const t = new SentencePieceTokenizer({ tokens: ["x", "y"] }); // defaults bos 1, eos 2 (absent), unk 0
  assert.equal(t.bosId, 1);
  assert.equal(t.eosId, undefined);
});
