import assert from "node:assert/strict";
import { test } from "node:test";
import { CharTokenizer } from "../../src/tokenizer/char.js";

test("char tokenizer: ids, specials, round trip", () => {
  const tk = new CharTokenizer("abc é🙂");
  assert.equal(tk.vocabSize, 4 + 6);
  assert.deepEqual([tk.padId, tk.bosId, tk.eosId, tk.unkId], [0, 1, 2, 3]);
  const ids = tk.encode("ab 🙂é");
  assert.deepEqual(ids, [1, 4, 5, 7, 9, 8]);
  assert.equal(tk.decode(ids), "ab 🙂é");
  assert.deepEqual(tk.encode("ca", { addBos: false, addEos: true }), [6, 4, 2]);
  assert.equal(tk.decode([0, 1, 4, 2]), "a");
  assert.equal(tk.decode([0, 1, 4, 2], { keepSpecial: true }), "<pad><bos>a<eos>");
  assert.equal(tk.decode([]), "");
  assert.throws(() => tk.decode([10]), /token id 10 is outside the vocabulary \(0\.\.9\)/);
});

test("char tokenizer: unknown characters throw (naming char and position) or map to <unk>", () => {
  const tk = new CharTokenizer("ab");
  assert.throws(() => tk.encode("ab🙂x"), /character "🙂" \(U\+1F642\) at position 2 is not in the alphabet/);
  const unk = new CharTokenizer("ab", { unknown: "unk" });
  assert.deepEqual(unk.encode("axb", { addBos: false }), [4, 3, 5]);
  assert.equal(unk.decode([4, 3, 5]), "a\uFFFDb");
  assert.equal(unk.decode([4, 3, 5], { keepSpecial: true }), "a<unk>b");
});

test("char tokenizer: invalid alphabets are rejected", () => {
  assert.throws(() => new CharTokenizer(""), /alphabet is empty/);
  assert.throws(() => new CharTokenizer("abca"), /contains "a" \(U\+0061\) twice \(positions 0 and 3\)/);
});

test("char tokenizer: JSON round trip and fromText", () => {
  const tk = CharTokenizer.fromText("hello world\n", { unknown: "unk", addBos: false });
  assert.equal(tk.alphabet, "\n dehlorw");
  const json = JSON.parse(JSON.stringify(tk));
  assert.deepEqual(json, { type: "char", version: 1, alphabet: "\n dehlorw", unknown: "unk", addBos: false });
  const back = CharTokenizer.fromJSON(json);
  assert.deepEqual(back.encode("hello, world"), tk.encode("hello, world"));
  assert.equal(back.vocabSize, tk.vocabSize);
  assert.throws(() => CharTokenizer.fromJSON({ type: "bpe" }, "ckpt/tokenizer.json"), /ckpt\/tokenizer\.json: type is "bpe"/);
  assert.throws(() => CharTokenizer.fromJSON({ type: "char", version: 2, alphabet: "a" }), /unsupported version 2/);
  assert.throws(() => CharTokenizer.fromJSON({ type: "char", version: 1, alphabet: 5 }), /alphabet must be a string/);
});
