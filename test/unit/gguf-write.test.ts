// The GGUF writer and the llama export, checked against our own reader (gguf.ts); the cross-check
// against llama.cpp itself is test/model/gguf-llamacpp.test.ts.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { exportCommand, loadForExport } from "../../src/cli/export.js";
import { GGML_TYPE_F16, GGML_TYPE_F32, GgufType, loadGgufModel, readGguf, readGgufHeader } from "../../src/io/gguf.js";
import { charVocab, encodeGguf, exportLlamaGguf, kvString, kvU32, writeGguf } from "../../src/io/gguf-write.js";
import { saveHfModel } from "../../src/io/hf-folder.js";
import { f16ToF32Array, f32ToF16Array } from "../../src/io/safetensors.js";
import { type LlamaConfigInput, llamaConfig } from "../../src/model/config.js";
import { initParams, toNamed } from "../../src/model/params.js";
import { sandboxTokenizer } from "../../src/sandbox/forms.js";
import { CharTokenizer } from "../../src/tokenizer/char.js";
import { SentencePieceTokenizer } from "../../src/tokenizer/sentencepiece.js";
import { sharedPath } from "../helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "srlm-gguf-write-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const tok = sandboxTokenizer();
const LAYOUTS: Record<string, Partial<LlamaConfigInput>> = {
  gqa: { nHeads: 4, nKvHeads: 2 },
  tied: { nHeads: 4, nKvHeads: 4, tieEmbeddings: true },
  "bias+headDim": { nHeads: 4, nKvHeads: 1, headDim: 12, qkvBias: true },
};
const configFor = (layout: Partial<LlamaConfigInput>) =>
  llamaConfig({ vocabSize: tok.vocabSize, dim: 32, nLayers: 2, hiddenDim: 48, maxSeqLen: 64, ropeTheta: 5000, normEps: 1e-6, ...layout });

/** Random params whose biases are non-zero (initParams leaves them at 0, which would hide a missing permutation). */
function randomParams(layout: Partial<LlamaConfigInput>, seed: number) {
  const config = configFor(layout);
  const params = initParams(config, seed);
  for (const [i, l] of params.layers.entries()) {
    for (const b of [l.bq, l.bk, l.bv]) if (b) for (let j = 0; j < b.length; j++) b[j] = Math.sin(j + i);
  }
  return { config, params };
}

test("export → our reader: config, every tensor and the tokenizer come back (F32 exactly, each layout)", async () => {
  for (const [name, layout] of Object.entries(LAYOUTS)) {
    const { config, params } = randomParams(layout, 3);
    const path = join(tmp, `${name}.gguf`);
    await exportLlamaGguf(path, { config, params, tokenizer: tok, name });
    const g = loadGgufModel(path);
    assert.deepEqual(g.config, { ...config, normEps: Math.fround(config.normEps) }, `${name}: config (rms eps stored as f32)`);
    assert.deepEqual(toNamed(g.config, g.params), toNamed(config, params), `${name}: tensors`);
    assert.equal(g.metadata["general.name"], name, `${name}: general.name`);
    assert.equal(g.metadata["general.file_type"], 0, `${name}: file type ALL_F32`);
    const h = readGgufHeader(path);
    assert.equal(
      h.tensors.some((t) => t.name === "output.weight"),
      !config.tieEmbeddings,
      `${name}: output.weight only when untied`,
    );
    assert.ok(
      h.tensors.every((t) => t.type === GGML_TYPE_F32),
      `${name}: every tensor F32`,
    );
  }
});

test("export F16: matrices F16 (rounded to nearest even), norms and biases F32", async () => {
  const { config, params } = randomParams(LAYOUTS["bias+headDim"], 5);
  const path = join(tmp, "half.gguf");
  await exportLlamaGguf(path, { config, params, tokenizer: tok }, { type: "f16" });
  const h = readGgufHeader(path);
  for (const t of h.tensors) {
    assert.equal(t.type, t.dims.length === 2 ? GGML_TYPE_F16 : GGML_TYPE_F32, `${t.name}: ${t.typeName}`);
  }
  assert.equal(h.metadata["general.file_type"], 1, "file type MOSTLY_F16");
  const g = loadGgufModel(path);
  const round = (a: Float32Array) => f16ToF32Array(f32ToF16Array(a));
  const ours = toNamed(config, params);
  const back = new Map(toNamed(g.config, g.params).map((t) => [t.name, t.data]));
  for (const t of ours) {
    const want = t.shape.length === 2 ? round(t.data) : t.data;
    assert.deepEqual(back.get(t.name), want, `${t.name}: f16-rounded values`);
  }
});

test("the character tokenizer as a SentencePiece vocabulary encodes and decodes exactly like the CharTokenizer", async () => {
  const { config, params } = randomParams(LAYOUTS.gqa, 1);
  const path = join(tmp, "tok.gguf");
  await exportLlamaGguf(path, { config, params, tokenizer: tok });
  const spm = loadGgufModel(path).tokenizer;
  assert.equal(spm.vocabSize, tok.vocabSize, "vocabulary size");
  const md = readGgufHeader(path).metadata;
  assert.equal(md["tokenizer.ggml.add_space_prefix"], false, "no dummy-prefix space");
  assert.equal(md["tokenizer.ggml.bos_token_id"], tok.bosId, "bos id");
  assert.equal(md["tokenizer.ggml.eos_token_id"], tok.eosId, "eos id");
  for (const text of ["abc 12+7=19\nhello world;", " leading and trailing ", tok.alphabet, "a  b\n\nc"]) {
    assert.deepEqual(spm.encode(text), tok.encode(text), `encode ${JSON.stringify(text)}`);
    assert.equal(spm.decode(tok.encode(text)), text, `decode ${JSON.stringify(text)}`);
  }
  assert.deepEqual(spm.encode("ab", { addBos: false }), tok.encode("ab", { addBos: false }), "without BOS");
  assert.throws(() => charVocab(new CharTokenizer("ab\u2581")), /U\+2581/, "the space mark cannot be a character");
});

test("the vocabulary is padded to the embedding with unused [PAD] tokens; a larger tokenizer is refused", async () => {
  const small = new CharTokenizer("abc");
  const config = configFor({ nHeads: 2, vocabSize: small.vocabSize + 3 });
  const params = initParams(config, 2);
  const path = join(tmp, "padded.gguf");
  await exportLlamaGguf(path, { config, params, tokenizer: small });
  const md = readGgufHeader(path).metadata;
  assert.deepEqual((md["tokenizer.ggml.tokens"] as string[]).slice(-4), ["c", "[PAD7]", "[PAD8]", "[PAD9]"], "padding tokens");
  assert.deepEqual(Array.from(md["tokenizer.ggml.token_type"] as Int32Array).slice(-4), [1, 5, 5, 5], "NORMAL, then UNUSED");
  const big = configFor({ nHeads: 2, vocabSize: small.vocabSize - 1 });
  await assert.rejects(
    exportLlamaGguf(join(tmp, "short.gguf"), { config: big, params: initParams(big, 2), tokenizer: small }),
    /short\.gguf: the tokenizer has 7 tokens but the model's embedding only 6 rows/,
    "tokenizer larger than the embedding",
  );
});

test("stories260K: import → export reproduces every tensor byte for byte and the tokenizer metadata", async () => {
  const src = sharedPath("models", "stories260K.gguf");
  const input = await loadForExport(src);
  assert.equal(input.name, "tinyllamas-stories-260k", "general.name carried over");
  const path = join(tmp, "stories.gguf");
  await exportLlamaGguf(path, input);
  const a = readGguf(src);
  const b = readGguf(path);
  assert.deepEqual([...b.tensors.keys()].sort(), [...a.tensors.keys()].sort(), "same tensor names");
  for (const [name, t] of a.tensors) {
    assert.deepEqual(b.tensors.get(name)?.shape, t.shape, `${name}: shape`);
    assert.deepEqual(b.tensors.get(name)?.data, t.data, `${name}: values (q/k permuted back exactly)`);
  }
  for (const key of ["tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type"]) {
    assert.deepEqual(b.header.metadata[key], a.header.metadata[key], key);
  }
  const spm = SentencePieceTokenizer.fromGgufMetadata(b.header.metadata);
  assert.deepEqual(spm.encode("Once upon a time"), input.tokenizer.encode("Once upon a time"), "same tokenization");
});

test("srlm export: a saved sandbox model folder with a chat template → GGUF; argument errors", async () => {
  const { config, params } = randomParams(LAYOUTS.tied, 4);
  const dir = join(tmp, "folder");
  mkdirSync(dir, { recursive: true });
  await saveHfModel(dir, config, params);
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tok.toJSON()));
  const template = "{% for m in messages %}{{ m.content }}\n>{% endfor %}";
  writeFileSync(join(dir, "chat_template.jinja"), template);
  const out = join(tmp, "cli.gguf");
  const written: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string) => written.push(s) > 0) as typeof process.stdout.write;
  try {
    await exportCommand([dir, "--format", "gguf", "--type", "f16", "--out", out]);
  } finally {
    process.stdout.write = write;
  }
  assert.match(written.join(""), /cli\.gguf: llama GGUF, F16, 2 layers × 32, vocabulary 61, .* MB, with chat template/, "summary line");
  const h = readGgufHeader(out);
  assert.equal(h.metadata["tokenizer.chat_template"], template, "chat template in the metadata");
  assert.equal(h.metadata["general.name"], "folder", "name from the folder");
  assert.equal(loadGgufModel(out).config.tieEmbeddings, true, "tied embeddings survive");

  await assert.rejects(exportCommand([dir, "--out", out]), /--format must be "gguf"/, "format required");
  await assert.rejects(exportCommand([dir, "--format", "gguf", "--type", "q8", "--out", out]), /--type must be "f32" or "f16"/, "type");
  await assert.rejects(exportCommand([dir, "--format", "gguf"]), /--out is required/, "out required");
  rmSync(join(dir, "tokenizer.json"));
  await assert.rejects(exportCommand([dir, "--format", "gguf", "--out", out]), /folder: no tokenizer/, "tokenizer required");
});

test("writer: metadata and tensor checks name the file and the entry", () => {
  const t = { name: "x", shape: [2, 3], data: new Float32Array(6), type: GGML_TYPE_F32 } as const;
  assert.throws(
    () => encodeGguf([kvU32("a", 1), kvU32("a", 2)], [], { path: "f.gguf" }),
    /f\.gguf: metadata "a" is given twice/,
    "dup key",
  );
  assert.throws(() => encodeGguf([kvU32("a", -1)], [], { path: "f.gguf" }), /f\.gguf: metadata "a": -1 is not a uint32/, "u32 range");
  assert.throws(() => encodeGguf([], [t, t], { path: "f.gguf" }), /f\.gguf: tensor "x" is given twice/, "dup tensor");
  assert.throws(() => encodeGguf([], [{ ...t, name: "n".repeat(64) }]), /longer than 63 bytes/, "name length");
  assert.throws(() => encodeGguf([], [{ ...t, data: new Float32Array(5) }]), /tensor "x": 5 values for shape \[2, 3\]/, "size");
  assert.throws(() => encodeGguf([], [], { alignment: 24 }), /alignment must be a positive power of two/, "alignment");
});

test("writer: alignment 64 is recorded and honoured; strings and typed arrays round-trip", async () => {
  const path = join(tmp, "aligned.gguf");
  const data = Float32Array.from({ length: 7 }, (_, i) => i - 3.5);
  await writeGguf(
    path,
    [kvString("s", "héllo ▁ 🙂"), { key: "f", type: GgufType.ARRAY, elemType: GgufType.FLOAT32, value: [0.5, -2] }],
    [
      { name: "a", shape: [7], data, type: GGML_TYPE_F32 },
      { name: "b", shape: [1, 7], data, type: GGML_TYPE_F16 },
    ],
    { alignment: 64 },
  );
  const { header, tensors } = readGguf(path);
  assert.equal(header.alignment, 64, "alignment read back");
  assert.ok(
    header.tensors.every((t) => t.fileOffset % 64 === 0),
    "tensor data aligned",
  );
  assert.equal(header.metadata.s, "héllo ▁ 🙂", "string");
  assert.deepEqual(header.metadata.f, Float32Array.from([0.5, -2]), "f32 array");
  assert.deepEqual(tensors.get("a")?.data, data, "F32 tensor");
  assert.deepEqual(tensors.get("b")?.data, data, "F16 tensor (values exact in f16)");
  assert.equal(readFileSync(path).length, header.fileSize, "file size");
});
