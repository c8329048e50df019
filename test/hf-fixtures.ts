// Hugging Face checkpoint folders as transformers and the Hub ship them, written by the tests without
// srlm's own writers: safetensors files (sorted names, {"format": "pt"} metadata, space-padded header),
// BF16/F16 rounding, shards with model.safetensors.index.json, byte-level BPE tokenizer.json files with
// added special tokens, and the chat templates of Llama 3, Qwen2 and SmolLM2.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export type StDtype = "F32" | "F16" | "BF16";

export interface HfTensor {
  name: string;
  shape: readonly number[];
  data: Float32Array;
}

/** BF16 bits of each value, round to nearest even (finite inputs). */
export function toBf16Bits(x: Float32Array): Uint16Array {
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const lower = u[i] & 0xffff;
    let upper = u[i] >>> 16;
    if (lower > 0x8000 || (lower === 0x8000 && (upper & 1) === 1)) upper++;
    out[i] = upper;
  }
  return out;
}

export function fromBf16Bits(b: Uint16Array): Float32Array {
  const u = new Uint32Array(b.length);
  for (let i = 0; i < b.length; i++) u[i] = b[i] << 16;
  return new Float32Array(u.buffer);
}

/** F16 bits of each value, by arithmetic on doubles (round half to even; finite inputs within range). */
export function toF16Bits(x: Float32Array): Uint16Array {
  const out = new Uint16Array(x.length);
  const roundEven = (v: number) => {
    const f = Math.floor(v);
    const d = v - f;
    return d > 0.5 || (d === 0.5 && f % 2 === 1) ? f + 1 : f;
  };
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
    const a = Math.abs(v);
    if (a < 2 ** -14) {
      out[i] = sign | roundEven(a / 2 ** -24); // subnormal (1024 carries into the smallest normal)
      continue;
    }
    let e = Math.floor(Math.log2(a));
    if (2 ** e > a) e--;
    if (2 ** (e + 1) <= a) e++;
    let m = roundEven((a / 2 ** e - 1) * 1024);
    if (m === 1024) {
      m = 0;
      e++;
    }
    if (e > 15) throw new RangeError(`${v} overflows F16`);
    out[i] = sign | ((e + 15) << 10) | m;
  }
  return out;
}

export function fromF16Bits(b: Uint16Array): Float32Array {
  const out = new Float32Array(b.length);
  for (let i = 0; i < b.length; i++) {
    const s = b[i] & 0x8000 ? -1 : 1;
    const e = (b[i] >>> 10) & 0x1f;
    const m = b[i] & 0x3ff;
    out[i] = s * (e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15));
  }
  return out;
}

/** The values a tensor holds once stored as `dtype` and read back. */
export function rounded(x: Float32Array, dtype: StDtype): Float32Array {
  if (dtype === "BF16") return fromBf16Bits(toBf16Bits(x));
  if (dtype === "F16") return fromF16Bits(toF16Bits(x));
  return x.slice();
}

const ELEM_BYTES: Record<StDtype, number> = { F32: 4, F16: 2, BF16: 2 };

/** A safetensors file as the Python library writes it: tensors sorted by name, header padded with spaces to 8 bytes. */
export function safetensorsBytes(tensors: readonly HfTensor[], dtype: StDtype, dtypeOf: (name: string) => string = () => dtype): Buffer {
  const sorted = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  const body: Buffer[] = [];
  let off = 0;
  for (const t of sorted) {
    const dt = dtypeOf(t.name) as StDtype;
    let bytes: Buffer;
    if (dt === "F32") bytes = Buffer.from(new Float32Array(t.data).buffer);
    else if (dt === "BF16") bytes = Buffer.from(toBf16Bits(t.data).buffer);
    else if (dt === "F16") bytes = Buffer.from(toF16Bits(t.data).buffer);
    else bytes = Buffer.alloc(t.data.length * 8); // e.g. "F64": zeros, for tests of unsupported dtypes
    header[t.name] = { dtype: dt, shape: [...t.shape], data_offsets: [off, off + bytes.length] };
    body.push(bytes);
    off += bytes.length;
  }
  let json = JSON.stringify(header);
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += " ";
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([prefix, Buffer.from(json), ...body]);
}

export interface HfFolderSpec {
  config: Record<string, unknown>;
  tensors: readonly HfTensor[];
  dtype: StDtype;
  /** 1: model.safetensors; n > 1: model-0000i-of-0000n.safetensors + model.safetensors.index.json. */
  shards: number;
  /** More files (objects as JSON). */
  files?: Record<string, string | Record<string, unknown>>;
  /** Override one tensor's stored dtype (tests of unsupported dtypes). */
  dtypeOf?: (name: string) => string;
}

/** Write a checkpoint folder as transformers' save_pretrained lays it out. Returns the weight file names. */
export function writeHfFolder(dir: string, spec: HfFolderSpec): string[] {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify(spec.config, null, 2));
  for (const [name, v] of Object.entries(spec.files ?? {})) {
    writeFileSync(join(dir, name), typeof v === "string" ? v : JSON.stringify(v, null, 2));
  }
  if (spec.shards === 1) {
    writeFileSync(join(dir, "model.safetensors"), safetensorsBytes(spec.tensors, spec.dtype, spec.dtypeOf));
    return ["model.safetensors"];
  }
  // Contiguous groups in module order, as transformers fills shards up to max_shard_size.
  const per = Math.ceil(spec.tensors.length / spec.shards);
  const weightMap: Record<string, string> = {};
  const names: string[] = [];
  let total = 0;
  for (let s = 0; s < spec.shards; s++) {
    const group = spec.tensors.slice(s * per, (s + 1) * per);
    const file = `model-${String(s + 1).padStart(5, "0")}-of-${String(spec.shards).padStart(5, "0")}.safetensors`;
    writeFileSync(join(dir, file), safetensorsBytes(group, spec.dtype, spec.dtypeOf));
    for (const t of group) {
      weightMap[t.name] = file;
      total += t.data.length * ELEM_BYTES[spec.dtype];
    }
    names.push(file);
  }
  writeFileSync(
    join(dir, "model.safetensors.index.json"),
    JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2),
  );
  return names;
}

// ---------------------------------------------------------------------------------------------
// Tokenizers and chat templates
// ---------------------------------------------------------------------------------------------

/** GPT-2's byte → printable-character table used by ByteLevel pre-tokenizers. */
export function bytesToUnicode(): string[] {
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

export const BPE_MERGES = ["h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "Ġwor l", "Ġworl d", "Ġ t", "Ġt he", "i s", "Ġ is"];

/**
 * A byte-level BPE tokenizer.json (GPT-2/Llama 3/Qwen2/SmolLM2 family): 256 byte symbols and a few
 * merges, with `specials` as added special tokens placed first (SmolLM2: ids 0, 1, …) or after the
 * BPE vocabulary (Llama 3, Qwen2). `bos`: a TemplateProcessing post-processor puts it first (Llama 3).
 */
export function byteBpeTokenizer(
  specials: readonly string[],
  opts: { specialsFirst: boolean; bos?: string; merges?: readonly string[]; pre?: PreTokenizerName },
): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  let next = 0;
  const addSpecials = () => {
    for (const s of specials) vocab[s] = next++;
  };
  if (opts.specialsFirst) addSpecials();
  for (const ch of bytesToUnicode()) vocab[ch] = next++;
  const merges = opts.merges ?? BPE_MERGES;
  for (const m of merges) {
    const merged = m.replace(" ", "");
    if (!(merged in vocab)) vocab[merged] = next++;
  }
  if (!opts.specialsFirst) addSpecials();
  const added = specials.map((content) => ({
    id: vocab[content],
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  const bos = opts.bos;
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: preTokenizer(opts.pre ?? "gpt-2"),
    post_processor:
      bos === undefined
        ? byteLevel
        : {
            type: "Sequence",
            processors: [
              { ...byteLevel, trim_offsets: false },
              {
                type: "TemplateProcessing",
                single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
                pair: [
                  { SpecialToken: { id: bos, type_id: 0 } },
                  { Sequence: { id: "A", type_id: 0 } },
                  { SpecialToken: { id: bos, type_id: 1 } },
                  { Sequence: { id: "B", type_id: 1 } },
                ],
                special_tokens: { [bos]: { id: bos, ids: [vocab[bos]], tokens: [bos] } },
              },
            ],
          },
    decoder: byteLevel,
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: opts.pre === "llama-bpe",
      vocab,
      merges,
    },
  };
}

export type PreTokenizerName = "gpt-2" | "smollm" | "llama-bpe" | "qwen2";

/** The pre_tokenizer of tokenizer.json files of the GPT-2, SmolLM2, Llama 3 and Qwen2 families. */
export function preTokenizer(name: PreTokenizerName): Record<string, unknown> {
  const byteLevel = (useRegex: boolean) => ({ type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: useRegex });
  const split = (regex: string) => ({ type: "Split", pattern: { Regex: regex }, behavior: "Isolated", invert: false });
  switch (name) {
    case "gpt-2":
      return byteLevel(true);
    case "smollm":
      return { type: "Sequence", pretokenizers: [{ type: "Digits", individual_digits: true }, byteLevel(true)] };
    case "llama-bpe":
      return {
        type: "Sequence",
        pretokenizers: [
          split(
            String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
          ),
          byteLevel(false),
        ],
      };
    case "qwen2":
      return {
        type: "Sequence",
        pretokenizers: [
          split(String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`),
          byteLevel(false),
        ],
      };
  }
}

/**
 * Byte-level BPE merges learnt from `corpus` as one unsplit sequence, so that many merges cross the
 * boundaries a pre-tokenizer draws (a space and the digit after it, a word and the punctuation after
 * it, digit groups longer than three): whether such a merge applies depends on the pre-tokenizer, so
 * two tokenizers agree on the ids only if they pre-tokenize alike. Most frequent pair first, ties by
 * the pair's text.
 */
export function trainByteBpe(corpus: string, nMerges: number): string[] {
  const table = bytesToUnicode();
  let seq = [...Buffer.from(corpus, "utf8")].map((b) => table[b]);
  const merges: string[] = [];
  for (let m = 0; m < nMerges; m++) {
    const counts = new Map<string, number>();
    for (let i = 0; i + 1 < seq.length; i++) {
      const k = `${seq[i]} ${seq[i + 1]}`;
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    let best = "";
    let bestN = 1;
    for (const [k, c] of counts) if (c > bestN || (c === bestN && best !== "" && k < best)) [best, bestN] = [k, c];
    if (best === "") break;
    merges.push(best);
    const [a, b] = best.split(" ");
    const out: string[] = [];
    for (let i = 0; i < seq.length; i++) {
      if (i + 1 < seq.length && seq[i] === a && seq[i + 1] === b) {
        out.push(a + b);
        i++;
      } else out.push(seq[i]);
    }
    seq = out;
  }
  return merges;
}

/** Llama 3 instruct's template (BOS written by the template). */
export const LLAMA3_TEMPLATE =
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

/** ChatML with a default system prompt, as Qwen2 and SmolLM2 instruct models ship it. */
export function chatmlTemplate(system: string): string {
  return `{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\n${system}<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}`;
}
