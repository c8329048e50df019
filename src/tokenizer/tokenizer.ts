/**
 * The one tokenizer interface the engine uses. Implementations: CharTokenizer (sandbox),
 * SentencePieceTokenizer (from GGUF metadata), HfTokenizer (tokenizer.json via @huggingface/tokenizers).
 */
export interface Tokenizer {
  /** Number of ids the model's embedding must cover. */
  readonly vocabSize: number;
  /** Beginning-of-sequence id, if the vocabulary has one. */
  readonly bosId: number | undefined;
  /** End-of-sequence id; generation stops on it by default. */
  readonly eosId: number | undefined;
  /** Id used to pad batches (loss-masked; any valid id works). */
  readonly padId: number;
  /** Text → ids. `addBos` prepends BOS when the vocabulary has one (default: the tokenizer's own convention). */
  encode(text: string, opts?: { addBos?: boolean }): number[];
  /** Ids → text. Special tokens (BOS/EOS/pad) are dropped unless `keepSpecial`. */
  decode(ids: readonly number[], opts?: { keepSpecial?: boolean }): string;
}
