/**
 * Hugging Face tokenizer (tokenizer.json, optionally with tokenizer_config.json) via
 * @huggingface/tokenizers.
 *
 * Conventions:
 *  - `encode` runs the tokenizer without its post-processor specials (add_special_tokens: false) and
 *    prepends BOS itself when `addBos` — default: tokenizer_config.json's `add_bos_token` when it is a
 *    boolean, otherwise whether the tokenizer.json post-processor inserts BOS. EOS is never appended.
 *    Added special tokens written in the text (e.g. "<|im_start|>") are recognised, as in HF.
 *  - `decode` drops special tokens unless `keepSpecial`; `clean_up_tokenization_spaces` follows
 *    tokenizer_config.json and is off when it is not set there (the library default would be on).
 *  - bos/eos/pad tokens come from tokenizer_config.json (`bos_token`, `eos_token`, `pad_token`: a
 *    string or an AddedToken object with `content`); without a config bos_token, the special token a
 *    TemplateProcessing post-processor puts first (e.g. "<s>") is taken as BOS. pad falls back to
 *    eos, then unk, then 0.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer as HfLibTokenizer } from "@huggingface/tokenizers";
import type { Tokenizer } from "./tokenizer.js";

/** `bos_token` etc. in tokenizer_config.json: a string, an AddedToken dict, or null. */
export function specialTokenText(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as { content?: unknown }).content === "string") {
    return (v as { content: string }).content;
  }
  return undefined;
}

/** Parse a JSON file; errors name the file. `undefined` when optional and absent. */
export function readJsonFile(path: string, optional: true): Record<string, unknown> | undefined;
export function readJsonFile(path: string, optional?: false): Record<string, unknown>;
export function readJsonFile(path: string, optional = false): Record<string, unknown> | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    if (optional && (e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Error(`${path}: cannot read: ${(e as Error).message}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: invalid JSON: ${(e as Error).message}`);
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) throw new Error(`${path}: expected a JSON object`);
  return v as Record<string, unknown>;
}

export class HfTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly padId: number;
  readonly unkId: number | undefined;
  readonly bosToken: string | undefined;
  readonly eosToken: string | undefined;
  readonly padToken: string | undefined;
  /** Default for `encode`'s addBos. */
  readonly addBos: boolean;
  /** The parsed tokenizer_config.json ({} when absent). */
  readonly config: Record<string, unknown>;
  readonly lib: HfLibTokenizer;
  /** The parsed tokenizer.json (for exporters that need its model, merges and pre-tokenizer). */
  readonly json: Record<string, unknown>;
  /** Names the tokenizer in errors (the folder or file it came from). */
  readonly source: string;
  /** clean_up_tokenization_spaces as `decode` applies it. */
  readonly cleanUpSpaces: boolean;

  /**
   * @param tokenizerJson parsed tokenizer.json
   * @param tokenizerConfig parsed tokenizer_config.json ({} if none)
   * @param source names the tokenizer in errors (e.g. the folder)
   */
  constructor(tokenizerJson: Record<string, unknown>, tokenizerConfig: Record<string, unknown> = {}, source = "tokenizer.json") {
    const tj = { added_tokens: [], normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, ...tokenizerJson };
    try {
      this.lib = new HfLibTokenizer(tj, tokenizerConfig);
    } catch (e) {
      throw new Error(`${source}: cannot build the tokenizer: ${(e as Error).message}`);
    }
    this.config = tokenizerConfig;
    this.json = tokenizerJson;
    this.source = source;
    let maxId = -1;
    for (const id of this.lib.get_vocab(true).values()) if (id > maxId) maxId = id;
    if (maxId < 0) throw new Error(`${source}: the vocabulary is empty`);
    this.vocabSize = maxId + 1;

    const idOf = (field: string): { text?: string; id?: number } => {
      const text = specialTokenText(tokenizerConfig[field]);
      if (text === undefined) return {};
      const id = this.lib.token_to_id(text);
      if (id === undefined) throw new Error(`${source}: ${field} ${JSON.stringify(text)} is not in the vocabulary`);
      return { text, id };
    };
    let bos = idOf("bos_token");
    if (bos.text === undefined) {
      // No tokenizer_config.json bos_token: take the special token a TemplateProcessing post-processor puts first.
      const first = templateFirstSpecial(tj.post_processor);
      const id = first === undefined ? undefined : this.lib.token_to_id(first);
      if (first !== undefined && id !== undefined) bos = { text: first, id };
    }
    const eos = idOf("eos_token");
    const pad = idOf("pad_token");
    const unk = idOf("unk_token");
    this.bosToken = bos.text;
    this.bosId = bos.id;
    this.eosToken = eos.text;
    this.eosId = eos.id;
    this.padToken = pad.text;
    this.unkId = unk.id;
    this.padId = pad.id ?? eos.id ?? unk.id ?? 0;

    const cfgBos = tokenizerConfig.add_bos_token;
    if (typeof cfgBos === "boolean") this.addBos = cfgBos && this.bosId !== undefined;
    else if (this.bosId === undefined) this.addBos = false;
    else {
      // Does the post-processor insert BOS?
      const withSpecial = this.lib.encode("a", { add_special_tokens: true }).ids;
      const without = this.lib.encode("a", { add_special_tokens: false }).ids;
      this.addBos = withSpecial[0] === this.bosId && without[0] !== this.bosId;
    }
    const cu = tokenizerConfig.clean_up_tokenization_spaces;
    this.cleanUpSpaces = typeof cu === "boolean" ? cu : false;
  }

  /** Load `tokenizer.json` (+ `tokenizer_config.json` when present) from a model folder. */
  static fromDir(dir: string): HfTokenizer {
    const tj = readJsonFile(join(dir, "tokenizer.json"));
    const cfg = readJsonFile(join(dir, "tokenizer_config.json"), true) ?? {};
    return new HfTokenizer(tj, cfg, dir);
  }

  encode(text: string, opts: { addBos?: boolean } = {}): number[] {
    const ids = this.lib.encode(text, { add_special_tokens: false }).ids;
    if ((opts.addBos ?? this.addBos) && this.bosId !== undefined) return [this.bosId, ...ids];
    return ids;
  }

  decode(ids: readonly number[], opts: { keepSpecial?: boolean } = {}): string {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new Error(`HfTokenizer: token id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`);
      }
    }
    if (ids.length === 0) return "";
    return this.lib.decode([...ids], {
      skip_special_tokens: !(opts.keepSpecial ?? false),
      clean_up_tokenization_spaces: this.cleanUpSpaces,
    });
  }

  tokenToId(token: string): number | undefined {
    return this.lib.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.lib.id_to_token(id);
  }
}

/** The special token a TemplateProcessing post-processor (possibly inside a Sequence) places first for single inputs. */
function templateFirstSpecial(pp: unknown): string | undefined {
  const p = pp as { type?: string; single?: unknown[]; processors?: unknown[] } | null;
  if (!p || typeof p !== "object") return undefined;
  if (p.type === "Sequence" && Array.isArray(p.processors)) {
    for (const q of p.processors) {
      const t = templateFirstSpecial(q);
      if (t !== undefined) return t;
    }
    return undefined;
  }
  if (p.type !== "TemplateProcessing" || !Array.isArray(p.single) || p.single.length === 0) return undefined;
  const first = p.single[0] as { SpecialToken?: { id?: unknown } };
  return typeof first?.SpecialToken?.id === "string" ? first.SpecialToken.id : undefined;
}
