import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { mulberry32 } from "../../src/engine/tensor.js";
import { ChatTemplate, renderChat } from "../../src/tokenizer/chat-template.js";
import { HfTokenizer } from "../../src/tokenizer/hf.js";

const tmp = mkdtempSync(join(tmpdir(), "srlm-hf-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** GPT-2's byte → printable-char table used by ByteLevel pre-tokenizers. */
function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const table: string[] = new Array(256);
  bs.forEach((b, i) => {
    table[b] = String.fromCodePoint(cs[i]);
  });
  return table;
}

/** A tiny byte-level BPE tokenizer.json: <s>=0, </s>=1, <pad>=2, 256 byte symbols, a few merges. */
function tinyTokenizerJson(withBosTemplate: boolean): Record<string, unknown> {
  const special = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  const vocab: Record<string, number> = { "<s>": 0, "</s>": 1, "<pad>": 2 };
  let next = 3;
  for (const ch of bytesToUnicode()) vocab[ch] = next++;
  const merges = ["h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "Ġwor l", "Ġworl d"];
  for (const m of merges) vocab[m.replace(" ", "")] = next++;
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [special(0, "<s>"), special(1, "</s>"), special(2, "<pad>")],
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: withBosTemplate
      ? {
          type: "TemplateProcessing",
          single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
          pair: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }],
          special_tokens: { "<s>": { id: "<s>", ids: [0], tokens: ["<s>"] } },
        }
      : { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    decoder: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
}

function folder(name: string, files: Record<string, unknown>): string {
  const dir = join(tmp, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const [f, v] of Object.entries(files)) writeFileSync(join(dir, f), typeof v === "string" ? v : JSON.stringify(v));
  return dir;
}

test("HfTokenizer: tokenizer.json only — BPE merges, BOS taken from the post-processor", () => {
  const dir = folder("plain", { "tokenizer.json": tinyTokenizerJson(true) });
  const tk = HfTokenizer.fromDir(dir);
  assert.equal(tk.vocabSize, 3 + 256 + 9);
  assert.equal(tk.bosId, 0);
  assert.equal(tk.eosId, undefined);
  assert.equal(tk.addBos, true);
  const hello = tk.tokenToId("hello") as number;
  const world = tk.tokenToId("Ġworld") as number;
  assert.deepEqual(tk.encode("hello world"), [0, hello, world]);
  assert.deepEqual(tk.encode("hello world", { addBos: false }), [hello, world]);
  assert.equal(tk.decode([0, hello, world]), "hello world");
  assert.equal(tk.decode([0, hello, world], { keepSpecial: true }), "<s>hello world");
  assert.equal(tk.decode([]), "");
  assert.throws(() => tk.decode([9999]), /token id 9999 is outside the vocabulary/);
});

test("HfTokenizer: tokenizer_config.json sets bos/eos/pad and add_bos_token", () => {
  const dir = folder("cfg", {
    "tokenizer.json": tinyTokenizerJson(false),
    "tokenizer_config.json": {
      bos_token: { content: "<s>", __type: "AddedToken" },
      eos_token: "</s>",
      pad_token: "<pad>",
      add_bos_token: false,
    },
  });
  const tk = HfTokenizer.fromDir(dir);
  assert.deepEqual([tk.bosId, tk.eosId, tk.padId], [0, 1, 2]);
  assert.equal(tk.addBos, false);
  assert.equal(tk.encode("hello")[0], tk.tokenToId("hello"));
  assert.equal(tk.encode("hello", { addBos: true })[0], 0);
  // special tokens written in the text are recognised; decode drops them unless keepSpecial
  const ids = tk.encode("hello</s>");
  assert.equal(ids.at(-1), 1);
  assert.equal(tk.decode(ids), "hello");
  assert.equal(tk.decode(ids, { keepSpecial: true }), "hello</s>");
  // no clean-up of " ." etc. unless the config asks for it
  assert.equal(tk.decode(tk.encode("a . b , c")), "a . b , c");
});

test("HfTokenizer: decode(encode(s)) === s for random byte-level text", () => {
  const tk = HfTokenizer.fromDir(folder("rt", { "tokenizer.json": tinyTokenizerJson(true) }));
  const pool = [..."helo wrd HELLO,.!?'\n\t0123", "é", "中", "🙂", "  ", "hello", " world"];
  const rng = mulberry32(99);
  for (let t = 0; t < 200; t++) {
    let s = "";
    const n = Math.floor(rng() * 30);
    for (let i = 0; i < n; i++) s += pool[Math.floor(rng() * pool.length)];
    assert.equal(tk.decode(tk.encode(s)), s, JSON.stringify(s));
  }
});

test("HfTokenizer: errors name the file", () => {
  const dir = folder("bad", { "tokenizer_config.json": { bos_token: "<s>" } });
  assert.throws(() => HfTokenizer.fromDir(dir), new RegExp(`${join(dir, "tokenizer.json").replaceAll("/", "\\/")}: cannot read`));
  const dir2 = folder("bad2", { "tokenizer.json": "{not json" });
  assert.throws(() => HfTokenizer.fromDir(dir2), /tokenizer\.json: invalid JSON/);
  const dir3 = folder("bad3", { "tokenizer.json": tinyTokenizerJson(false), "tokenizer_config.json": { bos_token: "<bos>" } });
  assert.throws(() => HfTokenizer.fromDir(dir3), /bos_token "<bos>" is not in the vocabulary/);
});

const TEMPLATE =
  "{{ bos_token }}{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{{ eos_token }}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";

test("chat template: chat_template.jinja with bos/eos from tokenizer_config.json, add_generation_prompt", () => {
  const dir = folder("chat1", {
    "tokenizer.json": tinyTokenizerJson(false),
    "tokenizer_config.json": { bos_token: "<s>", eos_token: "</s>", chat_template: "IGNORED" },
    "chat_template.jinja": TEMPLATE,
  });
  const msgs = [
    { role: "system", content: "Be brief." },
    { role: "user", content: "Hi" },
  ];
  assert.equal(renderChat(dir, msgs), "<s><|system|>Be brief.</s><|user|>Hi</s><|assistant|>");
  assert.equal(renderChat(dir, msgs, { addGenerationPrompt: false }), "<s><|system|>Be brief.</s><|user|>Hi</s>");
  // rendered text tokenises with the special tokens recognised
  const tk = HfTokenizer.fromDir(dir);
  const ids = tk.encode(renderChat(dir, msgs, { addGenerationPrompt: false }), { addBos: false });
  assert.equal(ids[0], 0);
  assert.equal(ids.filter((i) => i === 1).length, 2);
});

test("chat template: from the tokenizer_config.json field (string or named list)", () => {
  const dir = folder("chat2", {
    "tokenizer_config.json": {
      eos_token: "</s>",
      chat_template:
        "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}",
    },
  });
  assert.equal(renderChat(dir, [{ role: "user", content: "2+2?" }]), "[user] 2+2?\n[assistant] ");
  const dir2 = folder("chat3", {
    "tokenizer_config.json": {
      chat_template: [
        { name: "tool_use", template: "T" },
        { name: "default", template: "D{{ messages|length }}" },
      ],
    },
  });
  assert.equal(ChatTemplate.fromDir(dir2).render([{ role: "user", content: "x" }]), "D1");
});

test("chat template: clear errors when missing, unparsable, or raising", () => {
  const dir = folder("nochat", { "tokenizer.json": tinyTokenizerJson(false), "tokenizer_config.json": { bos_token: "<s>" } });
  assert.throws(() => renderChat(dir, []), new RegExp(`${dir.replaceAll("/", "\\/")}: no chat template found`));
  const dir2 = folder("badchat", { "chat_template.jinja": "{% for m in messages %}" });
  assert.throws(() => ChatTemplate.fromDir(dir2), /chat_template\.jinja: cannot parse the chat template/);
  const dir3 = folder("raising", {
    "chat_template.jinja": "{% if messages[0].role != 'user' %}{{ raise_exception('first message must be from the user') }}{% endif %}ok",
  });
  assert.throws(
    () => renderChat(dir3, [{ role: "assistant", content: "x" }]),
    /rendering the chat template failed: .*first message must be from the user/,
  );
  assert.equal(renderChat(dir3, [{ role: "user", content: "x" }]), "ok");
});
