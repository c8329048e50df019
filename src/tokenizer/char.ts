/**
 * Character-level tokenizer for the sandbox. Ids: `<pad>`=0, `<bos>`=1, `<eos>`=2, `<unk>`=3, then
 * one id per alphabet character (Unicode code points, in alphabet order) starting at 4.
 *
 * Characters outside the alphabet: by default `encode` throws an error naming the character (as a
 * JSON string and its U+ code) and its code-point position in the text; with `unknown: "unk"` they
 * map to `<unk>`, which decodes to U+FFFD (or "<unk>" with keepSpecial).
 *
 * `toJSON()` / `CharTokenizer.fromJSON()` round-trip the tokenizer so it can be saved beside a
 * checkpoint (e.g. `tokenizer.json` containing `{ "type": "char", ... }`).
 */
import type { Tokenizer } from "./tokenizer.js";

export const CHAR_SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>"] as const;
const N_SPECIAL = CHAR_SPECIALS.length;

export interface CharTokenizerJSON {
  type: "char";
  version: 1;
  alphabet: string;
  unknown: "error" | "unk";
  addBos: boolean;
}

export interface CharTokenizerOptions {
  /** What to do with characters outside the alphabet (default "error"). */
  unknown?: "error" | "unk";
  /** Prepend `<bos>` by default (default true). */
  addBos?: boolean;
}

export class CharTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly padId = 0;
  readonly bosId = 1;
  readonly eosId = 2;
  readonly unkId = 3;
  readonly alphabet: string;
  readonly unknown: "error" | "unk";
  readonly addBos: boolean;
  private readonly chars: string[];
  private readonly toId = new Map<string, number>();

  constructor(alphabet: string, opts: CharTokenizerOptions = {}) {
    this.chars = Array.from(alphabet);
    if (this.chars.length === 0) throw new Error("CharTokenizer: the alphabet is empty");
    this.chars.forEach((c, i) => {
      if (this.toId.has(c)) {
        throw new Error(`CharTokenizer: the alphabet contains ${describe(c)} twice (positions ${this.toId.get(c)! - N_SPECIAL} and ${i})`);
      }
      const code = c.codePointAt(0) as number;
      if (code >= 0xd800 && code <= 0xdfff)
        throw new Error(`CharTokenizer: the alphabet contains a lone surrogate ${describe(c)} at position ${i}`);
      this.toId.set(c, i + N_SPECIAL);
    });
    this.alphabet = alphabet;
    this.vocabSize = this.chars.length + N_SPECIAL;
    this.unknown = opts.unknown ?? "error";
    if (this.unknown !== "error" && this.unknown !== "unk")
      throw new Error(`CharTokenizer: unknown must be "error" or "unk", got ${JSON.stringify(this.unknown)}`);
    this.addBos = opts.addBos ?? true;
  }

  /** Alphabet = the distinct characters of `text`, sorted by code point. */
  static fromText(text: string, opts: CharTokenizerOptions = {}): CharTokenizer {
    const set = [...new Set(Array.from(text))].sort((a, b) => (a.codePointAt(0) as number) - (b.codePointAt(0) as number));
    return new CharTokenizer(set.join(""), opts);
  }

  encode(text: string, opts: { addBos?: boolean; addEos?: boolean } = {}): number[] {
    const out: number[] = [];
    if (opts.addBos ?? this.addBos) out.push(this.bosId);
    let pos = 0;
    for (const c of text) {
      const id = this.toId.get(c);
      if (id !== undefined) out.push(id);
      else if (this.unknown === "unk") out.push(this.unkId);
      else throw new Error(`CharTokenizer: character ${describe(c)} at position ${pos} is not in the alphabet`);
      pos++;
    }
    if (opts.addEos) out.push(this.eosId);
    return out;
  }

  decode(ids: readonly number[], opts: { keepSpecial?: boolean } = {}): string {
    let s = "";
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new Error(`CharTokenizer: token id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`);
      }
      if (id >= N_SPECIAL) s += this.chars[id - N_SPECIAL];
      else if (opts.keepSpecial) s += CHAR_SPECIALS[id];
      else if (id === this.unkId) s += "\uFFFD";
    }
    return s;
  }

  /** Token text for an id ("<bos>", "a", …). */
  idToToken(id: number): string {
    return id < N_SPECIAL ? CHAR_SPECIALS[id] : this.chars[id - N_SPECIAL];
  }

  toJSON(): CharTokenizerJSON {
    return { type: "char", version: 1, alphabet: this.alphabet, unknown: this.unknown, addBos: this.addBos };
  }

  static fromJSON(json: unknown, source = "char tokenizer JSON"): CharTokenizer {
    const j = json as Partial<CharTokenizerJSON> | null;
    if (!j || typeof j !== "object") throw new Error(`${source}: expected an object`);
    if (j.type !== "char") throw new Error(`${source}: type is ${JSON.stringify(j.type)}, expected "char"`);
    if (j.version !== 1) throw new Error(`${source}: unsupported version ${JSON.stringify(j.version)} (expected 1)`);
    if (typeof j.alphabet !== "string") throw new Error(`${source}: alphabet must be a string`);
    if (j.unknown !== undefined && j.unknown !== "error" && j.unknown !== "unk") {
      throw new Error(`${source}: unknown must be "error" or "unk", got ${JSON.stringify(j.unknown)}`);
    }
    if (j.addBos !== undefined && typeof j.addBos !== "boolean") throw new Error(`${source}: addBos must be a boolean`);
    return new CharTokenizer(j.alphabet, { unknown: j.unknown, addBos: j.addBos });
  }
}

function describe(c: string): string {
  return `${JSON.stringify(c)} (U+${(c.codePointAt(0) as number).toString(16).toUpperCase().padStart(4, "0")})`;
}
