/**
 * GGUF writer (version 3, little-endian) and the export of builtin Llama models to llama.cpp's
 * "llama" architecture, the inverse of `loadGgufModel` in gguf.ts (same layout notes there).
 *
 * What an exported file holds:
 *  - general.architecture "llama", general.name, general.file_type (0 all F32, 1 mostly F16);
 *  - llama.* hyper-parameters: context, embedding, feed-forward lengths, block count, head counts,
 *    key/value lengths, RoPE dimension count and base, RMSNorm epsilon, vocabulary size;
 *  - the tokenizer as llama.cpp's SentencePiece ("llama") vocabulary: a SentencePieceTokenizer as it
 *    was read, or the sandbox's CharTokenizer mapped onto it (see `charVocab`); or a Hugging Face
 *    byte-level BPE tokenizer.json as llama.cpp's "gpt2" vocabulary with the name of the matching
 *    built-in pre-tokenizer (see `hfBpeVocab`); a chat template as tokenizer.chat_template when there
 *    is one;
 *  - the tensors under llama.cpp's names, q/k rows permuted from Hugging Face's rotate-half RoPE order
 *    to ggml's interleaved order (`permuteQK`), no output.weight when embeddings are tied (llama.cpp
 *    then reuses token_embd). With F16, matrices are stored as F16 and vectors (norms, biases) stay F32,
 *    as llama.cpp's converter does: ggml adds and multiplies vectors in F32 only.
 *
 * And the export of LoRA adapters as llama.cpp LoRA adapter GGUFs (`exportLoraGguf`), with the
 * conventions of llama.cpp's convert_lora_to_gguf.py and of its loader (llama-adapter.cpp):
 *  - general.architecture "llama" (must equal the base model's), general.type "adapter",
 *    adapter.type "lora", adapter.lora.alpha (float32); no hyper-parameters, no vocabulary;
 *  - per adapted Linear, `<base tensor>.lora_a` holding A with PEFT's shape [r, in] and
 *    `<base tensor>.lora_b` holding B [out, r] (ggml ne: a = (in, r), b = (r, out)), e.g.
 *    blk.0.attn_q.weight.lora_a; llama.cpp computes W x + scale·alpha/r · B (A x), r = b's ne[0];
 *  - the q/k RoPE row permutation applied to the base weights applies to the rows of lora_b of
 *    attn_q and attn_k (the converter permutes the LoRA product, whose rows are B's); A is unchanged.
 */
import type { LlamaConfig } from "../model/config.js";
import type { LlamaParams } from "../model/params.js";
import { toNamed } from "../model/params.js";
import { CharTokenizer } from "../tokenizer/char.js";
import { HfTokenizer } from "../tokenizer/hf.js";
import { SentencePieceTokenizer, SpmTokenType } from "../tokenizer/sentencepiece.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { type LoraAdapter, loraTensors } from "../train/lora.js";
import { writeFileAtomic } from "./atomic.js";
import { GGML_TYPE_F16, GGML_TYPE_F32, GgufError, GgufType, hfToGgufName, permuteQK } from "./gguf.js";
import { f32ToF16Array } from "./safetensors.js";

// ---------------------------------------------------------------------------------------------
// Metadata and tensors to write
// ---------------------------------------------------------------------------------------------

/** One metadata entry. Arrays hold strings, or numbers of one GGUF scalar type (`elemType`). */
export type GgufKv =
  | { key: string; type: GgufType.STRING; value: string }
  | { key: string; type: GgufType.BOOL; value: boolean }
  | { key: string; type: GgufType.UINT32 | GgufType.INT32 | GgufType.FLOAT32; value: number }
  | { key: string; type: GgufType.ARRAY; elemType: GgufType.STRING; value: readonly string[] }
  | { key: string; type: GgufType.ARRAY; elemType: GgufType.INT32 | GgufType.FLOAT32; value: ArrayLike<number> };

export const kvString = (key: string, value: string): GgufKv => ({ key, type: GgufType.STRING, value });
export const kvBool = (key: string, value: boolean): GgufKv => ({ key, type: GgufType.BOOL, value });
export const kvU32 = (key: string, value: number): GgufKv => ({ key, type: GgufType.UINT32, value });
export const kvF32 = (key: string, value: number): GgufKv => ({ key, type: GgufType.FLOAT32, value });
export const kvStrings = (key: string, value: readonly string[]): GgufKv => ({
  key,
  type: GgufType.ARRAY,
  elemType: GgufType.STRING,
  value,
});
export const kvF32s = (key: string, value: ArrayLike<number>): GgufKv => ({ key, type: GgufType.ARRAY, elemType: GgufType.FLOAT32, value });
export const kvI32s = (key: string, value: ArrayLike<number>): GgufKv => ({ key, type: GgufType.ARRAY, elemType: GgufType.INT32, value });

/** A tensor to write: row-major (PyTorch/HF) shape, float32 values, stored as F32 or F16. */
export interface GgufTensorOut {
  name: string;
  shape: readonly number[];
  data: Float32Array;
  type: typeof GGML_TYPE_F32 | typeof GGML_TYPE_F16;
}

/** ggml's GGML_MAX_NAME: a tensor name must fit in 63 bytes plus the terminating zero. */
const MAX_NAME_BYTES = 63;
const MAX_DIMS = 4;
const GGUF_VERSION = 3;
const DEFAULT_ALIGNMENT = 32;

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  // Tensor bytes are written straight from Float32Array/Uint16Array views.
  throw new Error("gguf-write assumes a little-endian host");
}

/** Appends little-endian values to a list of chunks (the header is small; data chunks are views). */
class ByteSink {
  readonly chunks: Uint8Array[] = [];
  length = 0;
  private scratch = Buffer.alloc(8);

  push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.length += bytes.byteLength;
  }
  private fixed(n: number): void {
    this.push(Buffer.from(this.scratch.subarray(0, n)));
  }
  u8(v: number): void {
    this.scratch.writeUInt8(v);
    this.fixed(1);
  }
  u32(v: number): void {
    this.scratch.writeUInt32LE(v);
    this.fixed(4);
  }
  i32(v: number): void {
    this.scratch.writeInt32LE(v);
    this.fixed(4);
  }
  f32(v: number): void {
    this.scratch.writeFloatLE(v);
    this.fixed(4);
  }
  u64(v: number): void {
    this.scratch.writeBigUInt64LE(BigInt(v));
    this.fixed(8);
  }
  string(s: string): void {
    const b = Buffer.from(s, "utf8");
    this.u64(b.length);
    this.push(b);
  }
  padTo(alignment: number): void {
    const n = (alignment - (this.length % alignment)) % alignment;
    if (n > 0) this.push(new Uint8Array(n));
  }
}

function checkKv(kv: GgufKv, path: string): void {
  const fail = (what: string): never => {
    throw new GgufError(`${path}: metadata "${kv.key}": ${what}`);
  };
  if (kv.key.length === 0) throw new GgufError(`${path}: a metadata key is empty`);
  if (kv.type === GgufType.UINT32 && !(Number.isInteger(kv.value) && kv.value >= 0 && kv.value <= 0xffffffff)) {
    fail(`${kv.value} is not a uint32`);
  }
  if (kv.type === GgufType.INT32 && !(Number.isInteger(kv.value) && kv.value >= -(2 ** 31) && kv.value < 2 ** 31)) {
    fail(`${kv.value} is not an int32`);
  }
  if (kv.type === GgufType.FLOAT32 && !Number.isFinite(kv.value)) fail(`${kv.value} is not a finite float`);
  if (kv.type === GgufType.ARRAY && kv.elemType === GgufType.INT32) {
    for (let i = 0; i < kv.value.length; i++) {
      const v = kv.value[i];
      if (!(Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31)) fail(`element ${i} (${v}) is not an int32`);
    }
  }
}

function writeKv(w: ByteSink, kv: GgufKv): void {
  w.string(kv.key);
  w.u32(kv.type);
  switch (kv.type) {
    case GgufType.STRING:
      w.string(kv.value);
      return;
    case GgufType.BOOL:
      w.u8(kv.value ? 1 : 0);
      return;
    case GgufType.UINT32:
      w.u32(kv.value);
      return;
    case GgufType.INT32:
      w.i32(kv.value);
      return;
    case GgufType.FLOAT32:
      w.f32(kv.value);
      return;
    case GgufType.ARRAY:
      w.u32(kv.elemType);
      w.u64(kv.value.length);
      if (kv.elemType === GgufType.STRING) {
        for (const s of kv.value) w.string(s);
      } else {
        const typed = kv.elemType === GgufType.INT32 ? Int32Array.from(kv.value) : Float32Array.from(kv.value);
        w.push(new Uint8Array(typed.buffer));
      }
      return;
  }
}

/** The bytes a tensor is stored as (F32 as is, F16 rounded to nearest even). */
function tensorBytes(t: GgufTensorOut): Uint8Array {
  if (t.type === GGML_TYPE_F32) return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const half = f32ToF16Array(t.data);
  return new Uint8Array(half.buffer);
}

function checkTensor(t: GgufTensorOut, path: string): void {
  const fail = (what: string): never => {
    throw new GgufError(`${path}: tensor "${t.name}": ${what}`);
  };
  if (Buffer.byteLength(t.name, "utf8") > MAX_NAME_BYTES) fail(`the name is longer than ${MAX_NAME_BYTES} bytes (ggml's limit)`);
  if (t.shape.length < 1 || t.shape.length > MAX_DIMS) fail(`${t.shape.length} dimensions (GGUF allows 1..${MAX_DIMS})`);
  if (t.shape.some((d) => !Number.isInteger(d) || d < 1))
    fail(`shape [${t.shape.join(", ")}] has a dimension that is not a positive integer`);
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (t.data.length !== n) fail(`${t.data.length} values for shape [${t.shape.join(", ")}] (${n} values)`);
  if (t.type !== GGML_TYPE_F32 && t.type !== GGML_TYPE_F16) fail(`ggml type ${t.type} cannot be written (only F32 and F16)`);
}

/**
 * Encode a GGUF file as a list of byte chunks (header, then each tensor's data, every one aligned to
 * `alignment`). F32 tensor chunks are views of the given arrays, not copies.
 */
export function encodeGguf(
  kvs: readonly GgufKv[],
  tensors: readonly GgufTensorOut[],
  opts: { alignment?: number; path?: string } = {},
): Uint8Array[] {
  const path = opts.path ?? "GGUF";
  const alignment = opts.alignment ?? DEFAULT_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment <= 0 || (alignment & (alignment - 1)) !== 0) {
    throw new GgufError(`${path}: alignment must be a positive power of two, got ${alignment}`);
  }
  const all = [...kvs];
  if (alignment !== DEFAULT_ALIGNMENT && !all.some((kv) => kv.key === "general.alignment")) {
    all.push(kvU32("general.alignment", alignment));
  }
  const keys = new Set<string>();
  for (const kv of all) {
    if (keys.has(kv.key)) throw new GgufError(`${path}: metadata "${kv.key}" is given twice`);
    keys.add(kv.key);
    checkKv(kv, path);
  }
  const names = new Set<string>();
  for (const t of tensors) {
    if (names.has(t.name)) throw new GgufError(`${path}: tensor "${t.name}" is given twice`);
    names.add(t.name);
    checkTensor(t, path);
  }

  const w = new ByteSink();
  w.push(Buffer.from("GGUF", "latin1"));
  w.u32(GGUF_VERSION);
  w.u64(tensors.length);
  w.u64(all.length);
  for (const kv of all) writeKv(w, kv);
  const data = tensors.map(tensorBytes);
  let offset = 0;
  tensors.forEach((t, i) => {
    w.string(t.name);
    w.u32(t.shape.length);
    for (let d = t.shape.length - 1; d >= 0; d--) w.u64(t.shape[d]); // GGUF lists ne[0] (row length) first
    w.u32(t.type);
    w.u64(offset);
    offset += Math.ceil(data[i].byteLength / alignment) * alignment;
  });
  w.padTo(alignment);
  for (const bytes of data) {
    w.push(bytes);
    w.padTo(alignment);
  }
  return w.chunks;
}

/** Write a GGUF file atomically (a reader never sees a partial file). Returns its size in bytes. */
export async function writeGguf(
  path: string,
  kvs: readonly GgufKv[],
  tensors: readonly GgufTensorOut[],
  opts: { alignment?: number } = {},
): Promise<number> {
  const chunks = encodeGguf(kvs, tensors, { ...opts, path });
  await writeFileAtomic(path, chunks);
  return chunks.reduce((a, c) => a + c.byteLength, 0);
}

// ---------------------------------------------------------------------------------------------
// Tokenizer → tokenizer.ggml.* (llama.cpp's SentencePiece "llama" vocabulary)
// ---------------------------------------------------------------------------------------------

const SPACE_MARK = "\u2581";

/** The vocabulary as llama.cpp's SPM tokenizer reads it. */
export interface SpmVocab {
  tokens: string[];
  scores: Float32Array;
  types: Int32Array;
  bosId?: number;
  eosId?: number;
  unkId?: number;
  padId?: number;
  addBos: boolean;
  addEos: boolean;
  addSpacePrefix: boolean;
}

/**
 * The CharTokenizer as an SPM vocabulary that tokenizes and detokenizes exactly like it: one token per
 * character, a space stored as "▁" (llama.cpp turns every space into "▁" before tokenizing and back
 * when detokenizing), no dummy-prefix space, `<pad> <bos> <eos>` as control tokens and `<unk>` as the
 * unknown token. With single-character tokens no SPM merge can ever apply, so the scores are all 0.
 * A text character outside the alphabet has no byte token to fall back to; llama.cpp's tokenizer
 * then fails, as the CharTokenizer does by default.
 */
export function charVocab(tok: CharTokenizer): SpmVocab {
  const V = tok.vocabSize;
  const tokens: string[] = [];
  const types = new Int32Array(V);
  for (let id = 0; id < V; id++) {
    const text = tok.idToToken(id);
    if (id === tok.unkId) types[id] = SpmTokenType.UNKNOWN;
    else if (id === tok.padId || id === tok.bosId || id === tok.eosId) types[id] = SpmTokenType.CONTROL;
    else {
      if (text === SPACE_MARK) {
        throw new GgufError(`the character tokenizer's alphabet contains "${SPACE_MARK}" (U+2581), which llama.cpp reserves for the space`);
      }
      types[id] = SpmTokenType.NORMAL;
    }
    tokens.push(types[id] === SpmTokenType.NORMAL ? text.replaceAll(" ", SPACE_MARK) : text);
  }
  return {
    tokens,
    scores: new Float32Array(V),
    types,
    bosId: tok.bosId,
    eosId: tok.eosId,
    unkId: tok.unkId,
    padId: tok.padId,
    addBos: tok.addBos,
    addEos: false,
    addSpacePrefix: false,
  };
}

/** A SentencePieceTokenizer (read from GGUF metadata) as it was read. */
export function spmVocab(tok: SentencePieceTokenizer): SpmVocab {
  return {
    tokens: [...tok.tokens],
    scores: tok.scores,
    types: Int32Array.from(tok.types),
    bosId: tok.bosId,
    eosId: tok.eosId,
    unkId: tok.unkId,
    padId: tok.padId,
    addBos: tok.addBos,
    addEos: tok.addEos,
    addSpacePrefix: tok.addSpacePrefix,
  };
}

/**
 * A byte-level BPE vocabulary as llama.cpp's "gpt2" tokenizer model reads it (convert_hf_to_gguf.py's
 * layout): tokens in the byte-to-unicode form tokenizer.json keeps them, merges as "a b" strings,
 * token types NORMAL, CONTROL (added special tokens), USER_DEFINED (added non-special tokens) and
 * UNUSED (ids no token has), and `pre`, the name of llama.cpp's built-in pre-tokenizer.
 */
export interface BpeVocab {
  pre: string;
  tokens: string[];
  types: Int32Array;
  merges: string[];
  bosId?: number;
  eosId?: number;
  unkId?: number;
  padId?: number;
  addBos: boolean;
  addEos: boolean;
}

export type GgufVocab = SpmVocab | BpeVocab;

const isBpe = (v: GgufVocab): v is BpeVocab => "merges" in v;

/** Pre-tokenizer regexes of tokenizer.json files that llama.cpp implements under a name. */
const LLAMA3_SPLIT = String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
const QWEN2_SPLIT = String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined => (v && typeof v === "object" && !Array.isArray(v) ? (v as Obj) : undefined);

/** ByteLevel without a prefix space; `regex`: whether it splits with GPT-2's regex itself. */
function isByteLevel(v: unknown, regex: boolean): boolean {
  const o = obj(v);
  return o?.type === "ByteLevel" && o.add_prefix_space !== true && (o.use_regex ?? true) === regex;
}

/**
 * llama.cpp's name (tokenizer.ggml.pre) for a tokenizer.json pre-tokenizer, recognised by structure:
 *  - "gpt-2": ByteLevel with GPT-2's regex (GPT-2, the byte-level BPE of many small models);
 *  - "smollm": Digits (one per digit), then ByteLevel with GPT-2's regex (SmolLM, SmolLM2);
 *  - "llama-bpe": Split on Llama 3's regex, then ByteLevel without regex (Llama 3.x);
 *  - "qwen2": Split on Qwen2's regex (digits one by one), then ByteLevel without regex (Qwen2, Qwen2.5).
 * Undefined for anything else.
 */
export function llamaCppPreTokenizer(pre: unknown): string | undefined {
  if (isByteLevel(pre, true)) return "gpt-2";
  const o = obj(pre);
  const seq = o?.type === "Sequence" && Array.isArray(o.pretokenizers) ? (o.pretokenizers as unknown[]) : undefined;
  if (seq?.length !== 2) return undefined;
  const [first, second] = seq.map(obj);
  if (first?.type === "Digits" && first.individual_digits === true && isByteLevel(second, true)) return "smollm";
  if (first?.type === "Split" && isByteLevel(second, false) && first.behavior === "Isolated" && first.invert !== true) {
    const regex = obj(first.pattern)?.Regex;
    if (regex === LLAMA3_SPLIT) return "llama-bpe";
    if (regex === QWEN2_SPLIT) return "qwen2";
  }
  return undefined;
}

/**
 * The byte-level BPE vocabulary of a Hugging Face tokenizer.json for llama.cpp, refusing, with the
 * field named, what llama.cpp would tokenize differently: a model other than BPE, byte fallback,
 * subword prefixes or suffixes, a normalizer other than none or NFC (llama.cpp applies none; text
 * already in NFC tokenizes the same), a pre-tokenizer llama.cpp has no built-in equivalent of, a
 * decoder other than ByteLevel, ignore_merges other than llama.cpp's choice for that pre-tokenizer.
 *
 * Detokenizing, llama.cpp cleans up spaces before punctuation for "gpt-2" and "llama-bpe" and not for
 * "smollm" and "qwen2" whatever tokenizer_config.json's clean_up_tokenization_spaces says (GGUF has
 * no key for it); token ids, and so everything srlm computes, are unaffected.
 */
export function hfBpeVocab(tok: HfTokenizer): BpeVocab {
  const fail = (what: string): never => {
    throw new GgufError(`${tok.source}: tokenizer.json ${what}; llama.cpp could not tokenize like it, so it is not exported`);
  };
  const j = tok.json;
  const model = obj(j.model);
  if (model?.type !== "BPE") fail(`model type is ${JSON.stringify(model?.type ?? null)}, not "BPE"`);
  const m = model as Obj;
  if (m.byte_fallback === true) fail("model.byte_fallback is true (SentencePiece-style BPE)");
  for (const k of ["continuing_subword_prefix", "end_of_word_suffix"]) {
    if (m[k] !== null && m[k] !== undefined && m[k] !== "") fail(`model.${k} is ${JSON.stringify(m[k])}`);
  }
  if (m.dropout !== null && m.dropout !== undefined && m.dropout !== 0) fail(`model.dropout is ${JSON.stringify(m.dropout)}`);
  const norm = obj(j.normalizer);
  if (norm && norm.type !== "NFC") fail(`normalizer ${JSON.stringify(norm.type)} is not supported (only none or NFC)`);
  const pre = llamaCppPreTokenizer(j.pre_tokenizer);
  if (!pre) {
    fail(
      `pre_tokenizer ${JSON.stringify(j.pre_tokenizer).slice(0, 200)} is none that llama.cpp implements (srlm recognises GPT-2's ByteLevel, SmolLM's Digits + ByteLevel, Llama 3's and Qwen2's Split + ByteLevel)`,
    );
  }
  if (!isByteLevel(j.decoder, true) && !isByteLevel(j.decoder, false))
    fail(`decoder ${JSON.stringify(obj(j.decoder)?.type ?? null)} is not ByteLevel`);
  const ignoreMerges = m.ignore_merges === true;
  if (ignoreMerges !== (pre === "llama-bpe")) {
    fail(`model.ignore_merges is ${ignoreMerges}, but llama.cpp's "${pre}" pre-tokenizer implies ${pre === "llama-bpe"}`);
  }

  const V = tok.vocabSize;
  const tokens: (string | undefined)[] = new Array(V);
  const types = new Int32Array(V).fill(SpmTokenType.UNUSED);
  const vocab = obj(m.vocab) ?? fail("model.vocab is not an object");
  for (const [text, id] of Object.entries(vocab)) {
    if (!Number.isInteger(id) || (id as number) < 0 || (id as number) >= V)
      fail(`model.vocab gives "${text}" the id ${JSON.stringify(id)}`);
    tokens[id as number] = text;
    types[id as number] = SpmTokenType.NORMAL;
  }
  for (const a of Array.isArray(j.added_tokens) ? (j.added_tokens as Obj[]) : []) {
    const id = a.id as number;
    if (!Number.isInteger(id) || id < 0 || id >= V || typeof a.content !== "string")
      fail(`added_tokens has the entry ${JSON.stringify(a)}`);
    tokens[id] = a.content as string;
    types[id] = a.special === true ? SpmTokenType.CONTROL : SpmTokenType.USER_DEFINED;
  }
  const merges = (Array.isArray(m.merges) ? (m.merges as unknown[]) : fail("model.merges is not a list")).map((x, i) => {
    if (typeof x === "string" && x.indexOf(" ", 1) > 0) return x;
    if (Array.isArray(x) && x.length === 2 && x.every((p) => typeof p === "string" && !p.includes(" "))) return `${x[0]} ${x[1]}`;
    return fail(`model.merges[${i}] is ${JSON.stringify(x)}, not "a b" or ["a", "b"]`);
  });
  return {
    pre: pre as string,
    tokens: tokens.map((t, i) => t ?? `[PAD${i}]`),
    types,
    merges,
    bosId: tok.bosId,
    eosId: tok.eosId,
    unkId: tok.unkId,
    padId: tok.padToken !== undefined ? tok.padId : undefined,
    addBos: tok.addBos,
    addEos: false,
  };
}

/** The vocabulary of a tokenizer srlm can export; other tokenizers are refused by name. */
export function vocabOf(tok: Tokenizer): GgufVocab {
  if (tok instanceof CharTokenizer) return charVocab(tok);
  if (tok instanceof SentencePieceTokenizer) return spmVocab(tok);
  if (tok instanceof HfTokenizer) return hfBpeVocab(tok);
  throw new GgufError(
    `GGUF export supports the character tokenizer, SentencePiece vocabularies read from GGUF and byte-level BPE tokenizer.json files; a ${tok.constructor.name} cannot be exported yet`,
  );
}

/**
 * Pad the vocabulary to the embedding's rows, as llama.cpp's converter does for checkpoints whose
 * embedding is larger than the tokenizer: "[PAD<i>]" tokens of type UNUSED (never produced by the
 * tokenizer or the detokenizer). A tokenizer larger than the embedding is an error.
 */
function padVocab<T extends GgufVocab>(v: T, rows: number): T {
  const n = v.tokens.length;
  if (n > rows) throw new GgufError(`the tokenizer has ${n} tokens but the model's embedding only ${rows} rows`);
  if (n === rows) return v;
  const tokens = [...v.tokens];
  const types = new Int32Array(rows).fill(SpmTokenType.UNUSED);
  types.set(v.types);
  for (let i = n; i < rows; i++) tokens.push(`[PAD${i}]`);
  if (isBpe(v)) return { ...v, tokens, types };
  const scores = new Float32Array(rows);
  scores.set(v.scores);
  return { ...v, tokens, scores, types };
}

function vocabKvs(v: GgufVocab): GgufKv[] {
  const kvs: GgufKv[] = isBpe(v)
    ? [
        kvString("tokenizer.ggml.model", "gpt2"),
        kvString("tokenizer.ggml.pre", v.pre),
        kvStrings("tokenizer.ggml.tokens", v.tokens),
        kvI32s("tokenizer.ggml.token_type", v.types),
        kvStrings("tokenizer.ggml.merges", v.merges),
      ]
    : [
        kvString("tokenizer.ggml.model", "llama"),
        kvStrings("tokenizer.ggml.tokens", v.tokens),
        kvF32s("tokenizer.ggml.scores", v.scores),
        kvI32s("tokenizer.ggml.token_type", v.types),
      ];
  const ids: [string, number | undefined][] = [
    ["tokenizer.ggml.bos_token_id", v.bosId],
    ["tokenizer.ggml.eos_token_id", v.eosId],
    ["tokenizer.ggml.unknown_token_id", v.unkId],
    ["tokenizer.ggml.padding_token_id", v.padId],
  ];
  for (const [key, id] of ids) if (id !== undefined) kvs.push(kvU32(key, id));
  kvs.push(kvBool("tokenizer.ggml.add_bos_token", v.addBos), kvBool("tokenizer.ggml.add_eos_token", v.addEos));
  if (!isBpe(v)) kvs.push(kvBool("tokenizer.ggml.add_space_prefix", v.addSpacePrefix));
  return kvs;
}

// ---------------------------------------------------------------------------------------------
// Llama model → GGUF
// ---------------------------------------------------------------------------------------------

export type GgufExportType = "f32" | "f16";

export interface LlamaGgufInput {
  config: LlamaConfig;
  /** Hugging Face layout (rotate-half q/k rows), as the builtin engine holds them. */
  params: LlamaParams;
  tokenizer: Tokenizer;
  /** Jinja chat template (Hugging Face style), written as tokenizer.chat_template. */
  chatTemplate?: string;
  /** general.name (default "srlm-model"). */
  name?: string;
}

/** The metadata of a llama-architecture GGUF for `config` and `tokenizer`. */
export function llamaGgufMetadata(input: LlamaGgufInput, type: GgufExportType): GgufKv[] {
  const c = input.config;
  const vocab = padVocab(vocabOf(input.tokenizer), c.vocabSize);
  const kvs: GgufKv[] = [
    kvString("general.architecture", "llama"),
    kvString("general.name", input.name ?? "srlm-model"),
    kvU32("general.file_type", type === "f16" ? 1 : 0), // llama_ftype: ALL_F32 = 0, MOSTLY_F16 = 1
    kvU32("llama.vocab_size", c.vocabSize),
    kvU32("llama.context_length", c.maxSeqLen),
    kvU32("llama.embedding_length", c.dim),
    kvU32("llama.block_count", c.nLayers),
    kvU32("llama.feed_forward_length", c.hiddenDim),
    kvU32("llama.attention.head_count", c.nHeads),
    kvU32("llama.attention.head_count_kv", c.nKvHeads),
    // Written always: llama.cpp otherwise derives the head width as embedding_length / head_count.
    kvU32("llama.attention.key_length", c.headDim),
    kvU32("llama.attention.value_length", c.headDim),
    kvU32("llama.rope.dimension_count", c.headDim),
    kvF32("llama.rope.freq_base", c.ropeTheta),
    kvF32("llama.attention.layer_norm_rms_epsilon", c.normEps),
    ...vocabKvs(vocab),
  ];
  if (input.chatTemplate !== undefined) kvs.push(kvString("tokenizer.chat_template", input.chatTemplate));
  return kvs;
}

/** The tensors of a llama-architecture GGUF: llama.cpp names, q/k permuted, F16 for matrices when asked. */
export function llamaGgufTensors(config: LlamaConfig, params: LlamaParams, type: GgufExportType): GgufTensorOut[] {
  return toNamed(config, params).map((t) => {
    const name = hfToGgufName(t.name);
    if (!name) throw new GgufError(`GGUF export: no llama.cpp name for tensor "${t.name}"`);
    let data = t.data;
    const q = /\.attn_q\.(weight|bias)$/.test(name);
    const k = /\.attn_k\.(weight|bias)$/.test(name);
    if (q || k) data = permuteQK(data, q ? config.nHeads : config.nKvHeads, t.shape.length === 2 ? t.shape[1] : 1);
    const matrix = t.shape.length >= 2;
    return { name, shape: t.shape, data, type: type === "f16" && matrix ? GGML_TYPE_F16 : GGML_TYPE_F32 };
  });
}

/** Export a builtin model as a llama-architecture GGUF that llama.cpp runs. Returns the file size. */
export async function exportLlamaGguf(path: string, input: LlamaGgufInput, opts: { type?: GgufExportType } = {}): Promise<number> {
  const type = opts.type ?? "f32";
  if (type !== "f32" && type !== "f16")
    throw new GgufError(`${path}: GGUF export type must be "f32" or "f16", got ${JSON.stringify(type)}`);
  let kvs: GgufKv[];
  try {
    kvs = llamaGgufMetadata(input, type);
  } catch (e) {
    throw e instanceof GgufError && !e.message.startsWith(path) ? new GgufError(`${path}: ${e.message}`) : e;
  }
  return writeGguf(path, kvs, llamaGgufTensors(input.config, input.params, type));
}

// ---------------------------------------------------------------------------------------------
// LoRA adapter → GGUF adapter
// ---------------------------------------------------------------------------------------------

export interface LoraGgufInput {
  /** The base model's config (the adapter is checked against it; the q/k permutation needs its heads). */
  config: LlamaConfig;
  adapter: LoraAdapter;
  /** general.name (default "srlm-lora"). */
  name?: string;
}

/** The metadata of a llama.cpp LoRA adapter GGUF. */
export function loraGgufMetadata(input: LoraGgufInput, type: GgufExportType): GgufKv[] {
  return [
    kvString("general.architecture", "llama"),
    kvString("general.type", "adapter"),
    kvString("general.name", input.name ?? "srlm-lora"),
    kvU32("general.file_type", type === "f16" ? 1 : 0),
    kvString("adapter.type", "lora"),
    kvF32("adapter.lora.alpha", input.adapter.config.alpha),
  ];
}

/** The adapter's tensors under llama.cpp's names: `<base>.lora_a` = A [r, in], `<base>.lora_b` = B [out, r], q/k rows of B permuted. */
export function loraGgufTensors(config: LlamaConfig, adapter: LoraAdapter, type: GgufExportType): GgufTensorOut[] {
  const r = adapter.config.r;
  return loraTensors(config, adapter).map((t) => {
    const m = /^base_model\.model\.(model\.layers\.\d+\..+)\.lora_([AB])\.weight$/.exec(t.name);
    const base = m ? hfToGgufName(`${m[1]}.weight`) : undefined;
    if (!m || !base) throw new GgufError(`GGUF adapter export: no llama.cpp name for LoRA tensor "${t.name}"`);
    let data = t.data;
    if (m[2] === "B" && /\.attn_[qk]\.weight$/.test(base)) {
      data = permuteQK(data, base.endsWith("attn_q.weight") ? config.nHeads : config.nKvHeads, r);
    }
    return { name: `${base}.lora_${m[2].toLowerCase()}`, shape: t.shape, data, type: type === "f16" ? GGML_TYPE_F16 : GGML_TYPE_F32 };
  });
}

/** Export a LoRA adapter as a llama.cpp LoRA adapter GGUF for the llama-architecture GGUF of its base. Returns the file size. */
export async function exportLoraGguf(path: string, input: LoraGgufInput, opts: { type?: GgufExportType } = {}): Promise<number> {
  const type = opts.type ?? "f32";
  if (type !== "f32" && type !== "f16")
    throw new GgufError(`${path}: GGUF export type must be "f32" or "f16", got ${JSON.stringify(type)}`);
  let tensors: GgufTensorOut[];
  try {
    tensors = loraGgufTensors(input.config, input.adapter, type);
  } catch (e) {
    throw new GgufError(`${path}: ${(e as Error).message}`);
  }
  return writeGguf(path, loraGgufMetadata(input, type), tensors);
}
