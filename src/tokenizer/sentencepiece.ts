/**
 * SentencePiece (BPE-style, score-driven) tokenizer as llama.cpp's "llama" (SPM) vocabulary runs it
 * (llm_tokenizer_spm), built from GGUF metadata (`tokenizer.ggml.*`) or from plain arrays.
 *
 * Encoding (llama.cpp `tokenize` with add_special, no special-token parsing by default):
 *  1. user-defined tokens (type 4) — and control tokens (type 3) when `parseSpecial` — are cut out of
 *     the text and emitted as-is (longest first);
 *  2. each remaining text fragment gets a leading space when it is the first fragment or follows a
 *     special token (and `add_space_prefix` is on), then every " " becomes "▁" (U+2581);
 *  3. the fragment is split into Unicode code points; the adjacent pair whose concatenation is a
 *     vocabulary token with the highest score is merged (ties: leftmost), repeatedly, using a
 *     priority queue with lazy invalidation (O(n log n));
 *  4. a remaining symbol that is not a token is emitted as its UTF-8 bytes, `<0xNN>` each.
 *  BOS is prepended when `addBos` (default: `tokenizer.ggml.add_bos_token`, true when absent).
 *
 * Decoding: normal tokens with "▁" → " ", byte tokens → raw bytes (UTF-8 decoded together),
 * user-defined tokens verbatim, control/unknown tokens only with `keepSpecial`, unused tokens never.
 * The dummy-prefix space is removed from the first piece that produces text (see `decode`).
 */
import type { Tokenizer } from "./tokenizer.js";

/** llama.cpp token types (tokenizer.ggml.token_type). */
export enum SpmTokenType {
  UNDEFINED = 0,
  NORMAL = 1,
  UNKNOWN = 2,
  CONTROL = 3,
  USER_DEFINED = 4,
  UNUSED = 5,
  BYTE = 6,
}

export interface SentencePieceOptions {
  tokens: readonly string[];
  /** Merge scores (higher merges first); default 0 for all. */
  scores?: ArrayLike<number>;
  /** Token types (SpmTokenType); default NORMAL for all. */
  types?: ArrayLike<number>;
  /** Defaults are llama.cpp's for the llama vocabulary: bos 1, eos 2, unk 0 (when in range). */
  bosId?: number | null;
  eosId?: number | null;
  unkId?: number | null;
  padId?: number | null;
  /** Prepend BOS by default (tokenizer.ggml.add_bos_token; default true). */
  addBos?: boolean;
  /** Append EOS by default (tokenizer.ggml.add_eos_token; default false). */
  addEos?: boolean;
  /** Prefix each text fragment with a space (tokenizer.ggml.add_space_prefix; default true). */
  addSpacePrefix?: boolean;
}

export interface SpmEncodeOptions {
  /** Prepend BOS (default: the vocabulary's add_bos_token). */
  addBos?: boolean;
  /** Append EOS (default: the vocabulary's add_eos_token, false for llama). */
  addEos?: boolean;
  /** Recognise control tokens such as "<s>" written in the text (llama.cpp parse_special). Default false. */
  parseSpecial?: boolean;
}

export interface SpmDecodeOptions {
  /** Render control/unknown tokens (e.g. "<s>", "</s>") instead of dropping them. Default false. */
  keepSpecial?: boolean;
  /**
   * Remove the dummy-prefix space from the first piece that produces text (when add_space_prefix
   * is on). Default true, so decode(encode(s)) === s with or without BOS. Pass false when decoding a
   * continuation (tokens that follow earlier text), so "▁there" keeps its space.
   */
  stripLeadingSpace?: boolean;
}

const SPACE_MARK = "\u2581";

/** Binary max-heap of bigrams ordered by (score desc, left asc) — llama.cpp's llm_bigram_spm order. */
class BigramHeap {
  private score: Float64Array;
  private left: Int32Array;
  private right: Int32Array;
  private size: Int32Array;
  n = 0;

  constructor(cap: number) {
    cap = Math.max(cap, 16);
    this.score = new Float64Array(cap);
    this.left = new Int32Array(cap);
    this.right = new Int32Array(cap);
    this.size = new Int32Array(cap);
  }

  private grow(): void {
    const cap = this.score.length * 2;
    const s = new Float64Array(cap);
    s.set(this.score);
    const l = new Int32Array(cap);
    l.set(this.left);
    const r = new Int32Array(cap);
    r.set(this.right);
    const z = new Int32Array(cap);
    z.set(this.size);
    this.score = s;
    this.left = l;
    this.right = r;
    this.size = z;
  }

  /** true when element a should come out before element b. */
  private before(a: number, b: number): boolean {
    const sa = this.score[a];
    const sb = this.score[b];
    return sa > sb || (sa === sb && this.left[a] < this.left[b]);
  }

  private swap(a: number, b: number): void {
    let t: number = this.score[a];
    this.score[a] = this.score[b];
    this.score[b] = t;
    t = this.left[a];
    this.left[a] = this.left[b];
    this.left[b] = t;
    t = this.right[a];
    this.right[a] = this.right[b];
    this.right[b] = t;
    t = this.size[a];
    this.size[a] = this.size[b];
    this.size[b] = t;
  }

  push(score: number, left: number, right: number, size: number): void {
    if (this.n === this.score.length) this.grow();
    let i = this.n++;
    this.score[i] = score;
    this.left[i] = left;
    this.right[i] = right;
    this.size[i] = size;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  /** Pop the top into `out` = [left, right, size]. */
  pop(out: Int32Array): void {
    out[0] = this.left[0];
    out[1] = this.right[0];
    out[2] = this.size[0];
    const last = --this.n;
    if (last > 0) {
      this.score[0] = this.score[last];
      this.left[0] = this.left[last];
      this.right[0] = this.right[last];
      this.size[0] = this.size[last];
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < last && this.before(l, best)) best = l;
        if (r < last && this.before(r, best)) best = r;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
  }
}

export class SentencePieceTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly unkId: number | undefined;
  readonly padId: number;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly addSpacePrefix: boolean;
  readonly tokens: readonly string[];
  readonly scores: Float32Array;
  readonly types: Uint8Array;

  private readonly tokenToId = new Map<string, number>();
  private readonly byteIds = new Int32Array(256).fill(-1);
  /** For decoding: id → UTF-8 bytes of the piece ("▁" → " "), or the byte value for BYTE tokens. */
  private readonly pieceCache: (Uint8Array | undefined)[];
  /** Tokens cut out of the text before SPM: user-defined always, control with parseSpecial. Longest first. */
  private readonly userDefined: { text: string; id: number }[];
  private readonly controlTokens: { text: string; id: number }[];

  constructor(opts: SentencePieceOptions) {
    const n = opts.tokens.length;
    if (n === 0) throw new Error("SentencePieceTokenizer: empty vocabulary");
    this.vocabSize = n;
    this.tokens = opts.tokens;
    this.scores = new Float32Array(n);
    if (opts.scores) {
      if (opts.scores.length < n) throw new Error(`SentencePieceTokenizer: ${opts.scores.length} scores for ${n} tokens`);
      for (let i = 0; i < n; i++) this.scores[i] = opts.scores[i];
    }
    this.types = new Uint8Array(n).fill(SpmTokenType.NORMAL);
    if (opts.types) {
      if (opts.types.length < n) throw new Error(`SentencePieceTokenizer: ${opts.types.length} token types for ${n} tokens`);
      for (let i = 0; i < n; i++) this.types[i] = opts.types[i];
    }
    for (let i = 0; i < n; i++) {
      let t = opts.tokens[i];
      if (t === "") t = `[EMPTY_${i}]`; // as llama.cpp does
      this.tokenToId.set(t, i); // later duplicates win, as in llama.cpp's token_to_id
    }
    for (let b = 0; b < 256; b++) {
      const id = this.tokenToId.get(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
      if (id !== undefined) this.byteIds[b] = id;
    }
    const pick = (v: number | null | undefined, dflt: number): number | undefined => {
      if (v === null) return undefined;
      const id = v ?? dflt;
      if (!Number.isInteger(id) || id < 0 || id >= n) {
        if (v === undefined) return undefined; // default not present in this vocabulary
        throw new Error(`SentencePieceTokenizer: special token id ${id} is outside the vocabulary (0..${n - 1})`);
      }
      return id;
    };
    this.bosId = pick(opts.bosId, 1);
    this.eosId = pick(opts.eosId, 2);
    this.unkId = pick(opts.unkId, 0);
    this.padId = pick(opts.padId, -1) ?? this.unkId ?? this.eosId ?? 0;
    this.addBos = opts.addBos ?? true;
    this.addEos = opts.addEos ?? false;
    this.addSpacePrefix = opts.addSpacePrefix ?? true;

    const enc = new TextEncoder();
    this.pieceCache = new Array(n);
    const user: { text: string; id: number }[] = [];
    const ctrl: { text: string; id: number }[] = [];
    for (let i = 0; i < n; i++) {
      const type = this.types[i];
      const text = opts.tokens[i];
      if (type === SpmTokenType.BYTE) {
        const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(text);
        if (!m) throw new Error(`SentencePieceTokenizer: byte token ${i} has text ${JSON.stringify(text)}, expected <0xNN>`);
        this.pieceCache[i] = Uint8Array.of(Number.parseInt(m[1], 16));
      } else if (type === SpmTokenType.NORMAL || type === SpmTokenType.UNDEFINED) {
        this.pieceCache[i] = enc.encode(text.replaceAll(SPACE_MARK, " "));
      } else {
        this.pieceCache[i] = enc.encode(text);
      }
      if (text.length > 0 && type === SpmTokenType.USER_DEFINED) user.push({ text, id: i });
      if (text.length > 0 && type === SpmTokenType.CONTROL) ctrl.push({ text, id: i });
    }
    const byLen = (a: { text: string }, b: { text: string }) => b.text.length - a.text.length;
    this.userDefined = user.sort(byLen);
    this.controlTokens = [...ctrl, ...user].sort(byLen);
  }

  /** Build from GGUF metadata (`tokenizer.ggml.*`); `source` names the file in errors. */
  static fromGgufMetadata(md: Record<string, unknown>, source = "GGUF"): SentencePieceTokenizer {
    const model = md["tokenizer.ggml.model"];
    if (model !== "llama") {
      throw new Error(
        `${source}: tokenizer.ggml.model is ${JSON.stringify(model)}; only the SentencePiece "llama" vocabulary is supported`,
      );
    }
    const tokens = md["tokenizer.ggml.tokens"];
    if (!Array.isArray(tokens) || tokens.some((t) => typeof t !== "string")) {
      throw new Error(`${source}: tokenizer.ggml.tokens is missing or not an array of strings`);
    }
    const arr = (key: string): ArrayLike<number> | undefined => {
      const v = md[key];
      if (v === undefined) return undefined;
      if (ArrayBuffer.isView(v) && !(v instanceof BigInt64Array) && !(v instanceof BigUint64Array) && !(v instanceof DataView)) {
        return v as unknown as ArrayLike<number>;
      }
      if (Array.isArray(v) && v.every((x) => typeof x === "number")) return v as number[];
      throw new Error(`${source}: ${key} is not a numeric array`);
    };
    const id = (key: string): number | undefined => {
      const v = md[key];
      if (v === undefined) return undefined;
      if (typeof v !== "number") throw new Error(`${source}: ${key} is not a number`);
      return v;
    };
    const flag = (key: string): boolean | undefined => {
      const v = md[key];
      if (v === undefined) return undefined;
      if (typeof v !== "boolean") throw new Error(`${source}: ${key} is not a bool`);
      return v;
    };
    const n = tokens.length;
    const okId = (key: string, dflt: number): number | null | undefined => {
      const v = id(key);
      if (v === undefined) return undefined;
      // llama.cpp warns and keeps its default for out-of-range ids
      return v >= 0 && v < n ? v : dflt < n ? dflt : null;
    };
    try {
      return new SentencePieceTokenizer({
        tokens: tokens as string[],
        scores: arr("tokenizer.ggml.scores"),
        types: arr("tokenizer.ggml.token_type"),
        bosId: okId("tokenizer.ggml.bos_token_id", 1),
        eosId: okId("tokenizer.ggml.eos_token_id", 2),
        unkId: okId("tokenizer.ggml.unknown_token_id", 0),
        padId: okId("tokenizer.ggml.padding_token_id", -1),
        addBos: flag("tokenizer.ggml.add_bos_token"),
        addEos: flag("tokenizer.ggml.add_eos_token"),
        addSpacePrefix: flag("tokenizer.ggml.add_space_prefix"),
      });
    } catch (e) {
      throw new Error(`${source}: ${(e as Error).message}`);
    }
  }

  /** Id of a token text, if present. */
  tokenId(text: string): number | undefined {
    return this.tokenToId.get(text);
  }

  encode(text: string, opts: SpmEncodeOptions = {}): number[] {
    const out: number[] = [];
    const addBos = opts.addBos ?? this.addBos;
    if (addBos && this.bosId !== undefined) out.push(this.bosId);
    const specials = opts.parseSpecial ? this.controlTokens : this.userDefined;
    const fragments: (string | number)[] = text.length === 0 ? [] : splitSpecial(text, specials);
    let prevSpecial = true;
    for (const f of fragments) {
      if (typeof f === "number") {
        out.push(f);
        prevSpecial = true;
      } else {
        const t = this.addSpacePrefix && prevSpecial ? ` ${f}` : f;
        this.encodeFragment(t.replaceAll(" ", SPACE_MARK), out);
        prevSpecial = false;
      }
    }
    if ((opts.addEos ?? this.addEos) && this.eosId !== undefined) out.push(this.eosId);
    return out;
  }

  /** llm_tokenizer_spm_session::tokenize on an already-escaped fragment. */
  private encodeFragment(text: string, out: number[]): void {
    // Symbols: one per code point, as [start, len) in UTF-16 units, linked by prev/next.
    const nUnits = text.length;
    const start = new Int32Array(nUnits);
    const len = new Int32Array(nUnits);
    let nSym = 0;
    for (let i = 0; i < nUnits; ) {
      const c = text.charCodeAt(i);
      const w = c >= 0xd800 && c <= 0xdbff && i + 1 < nUnits && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00 ? 2 : 1;
      start[nSym] = i;
      len[nSym] = w;
      nSym++;
      i += w;
    }
    if (nSym === 0) return;
    const prev = new Int32Array(nSym);
    const next = new Int32Array(nSym);
    for (let i = 0; i < nSym; i++) {
      prev[i] = i - 1;
      next[i] = i + 1 < nSym ? i + 1 : -1;
    }
    const heap = new BigramHeap(nSym * 2);
    const tryAdd = (l: number, r: number): void => {
      if (l < 0 || r < 0) return;
      const s = start[l];
      const n = len[l] + len[r];
      const id = this.tokenToId.get(text.slice(s, s + n));
      if (id === undefined) return;
      heap.push(this.scores[id], l, r, n);
    };
    for (let i = 1; i < nSym; i++) tryAdd(i - 1, i);
    const top = new Int32Array(3);
    while (heap.n > 0) {
      heap.pop(top);
      const l = top[0];
      const r = top[1];
      // stale when either side has changed since the bigram was queued
      if (len[l] === 0 || len[r] === 0 || len[l] + len[r] !== top[2]) continue;
      len[l] += len[r];
      len[r] = 0;
      next[l] = next[r];
      if (next[r] >= 0) prev[next[r]] = l;
      tryAdd(prev[l], l);
      tryAdd(l, next[l]);
    }
    const enc = new TextEncoder();
    for (let i = 0; i !== -1; i = next[i]) {
      const piece = text.slice(start[i], start[i] + len[i]);
      const id = this.tokenToId.get(piece);
      if (id !== undefined) {
        out.push(id);
        continue;
      }
      // Only single code points reach here (merged symbols are always tokens): byte fallback.
      for (const b of enc.encode(piece)) {
        const bid = this.byteIds[b];
        if (bid >= 0) out.push(bid);
        else if (this.unkId !== undefined) out.push(this.unkId);
        else {
          throw new Error(
            `SentencePieceTokenizer: character ${JSON.stringify(piece)} is not in the vocabulary and there is no byte token <0x${b
              .toString(16)
              .toUpperCase()
              .padStart(2, "0")}> or <unk> to fall back on`,
          );
        }
      }
    }
  }

  /** UTF-8 bytes a token decodes to (ignoring leading-space stripping and special-token dropping). */
  pieceBytes(id: number): Uint8Array {
    this.checkId(id);
    return this.pieceCache[id] as Uint8Array;
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new Error(`SentencePieceTokenizer: token id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`);
    }
  }

  /**
   * Ids → text, as llama.cpp's detokenize with these differences/choices: control and unknown tokens
   * (BOS, EOS, <unk>, …) are dropped unless `keepSpecial`; the dummy-prefix space is stripped from
   * the first piece that yields text even after a dropped BOS (llama.cpp strips it only when the
   * sequence does not start with BOS, and keeps " Once" after BOS) — pass `stripLeadingSpace: false`
   * for continuations. Invalid UTF-8 from byte tokens becomes U+FFFD.
   */
  decode(ids: readonly number[], opts: SpmDecodeOptions = {}): string {
    const keepSpecial = opts.keepSpecial ?? false;
    let strip = (opts.stripLeadingSpace ?? true) && this.addSpacePrefix;
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (const id of ids) {
      this.checkId(id);
      const type = this.types[id];
      if (type === SpmTokenType.UNUSED) continue;
      if ((type === SpmTokenType.CONTROL || type === SpmTokenType.UNKNOWN) && !keepSpecial) continue;
      let piece = this.pieceCache[id] as Uint8Array;
      if (piece.length === 0) continue;
      if (strip) {
        if (piece[0] === 0x20) piece = piece.subarray(1);
        strip = false;
      }
      chunks.push(piece);
      total += piece.length;
    }
    const bytes = new Uint8Array(total);
    let o = 0;
    for (const c of chunks) {
      bytes.set(c, o);
      o += c.length;
    }
    return new TextDecoder("utf-8").decode(bytes);
  }
}

/** Split text into raw-text fragments and special-token ids, longest special token first (llama.cpp tokenizer_st_partition). */
function splitSpecial(text: string, specials: readonly { text: string; id: number }[]): (string | number)[] {
  let frags: (string | number)[] = [text];
  for (const sp of specials) {
    let touched = false;
    const nextFrags: (string | number)[] = [];
    for (const f of frags) {
      if (typeof f === "number" || !f.includes(sp.text)) {
        nextFrags.push(f);
        continue;
      }
      touched = true;
      const parts = f.split(sp.text);
      parts.forEach((p, k) => {
        if (k > 0) nextFrags.push(sp.id);
        if (p.length > 0) nextFrags.push(p);
      });
    }
    if (touched) frags = nextFrags;
  }
  return frags;
}
