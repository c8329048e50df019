/**
 * Training data in token ids: SFT examples (prompt → completion), preference examples (prompt →
 * chosen / rejected), how they become padded rows with loss masks, packing, and the deterministic
 * data order that makes a resumed run continue exactly.
 *
 * Text → ids is the caller's business (tokenizer + chat template); here everything is ids, and the
 * loss always covers the completion only: a row's target at position t is the id at t + 1 when that
 * id belongs to a completion, −1 otherwise (prompt, padding).
 */
import { createHash } from "node:crypto";
import { mulberry32 } from "../engine/tensor.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";

export interface SftExample {
  /** Prompt ids (BOS included if the model uses one). Not trained on. */
  prompt: readonly number[];
  /** Completion ids (EOS included): the loss covers these. */
  completion: readonly number[];
}

export interface PreferenceExample {
  prompt: readonly number[];
  chosen: readonly number[];
  rejected: readonly number[];
  /** Per-pair loss weight (default 1). */
  weight?: number;
  /** Soft label C ∈ [0, 1] for the CREAM loss (`soft_label`). */
  label?: number;
  /** The judge's preference probability q ∈ (0, 1), target of SCIR's consistency penalty. */
  judgeProb?: number;
}

/** One training row: ids and next-token targets (−1 = no loss), same length. */
export interface LmRow {
  ids: Int32Array;
  targets: Int32Array;
}

/** (B, T) right-padded batch ready for `forward`. */
export interface PaddedBatch {
  tokens: Int32Array;
  targets: Int32Array;
  B: number;
  T: number;
}

/** Completion ids with the tokenizer's EOS appended (so the model learns to stop). */
function withEos(tok: Tokenizer, text: string): number[] {
  const ids = tok.encode(text, { addBos: false });
  return tok.eosId === undefined ? ids : [...ids, tok.eosId];
}

/** Text SFT example → ids: BOS + prompt, completion + EOS (when the tokenizer has them). */
export function tokenizeSft(tok: Tokenizer, ex: { prompt: string; completion: string }): SftExample {
  return { prompt: tok.encode(ex.prompt, { addBos: true }), completion: withEos(tok, ex.completion) };
}

/** Text preference example → ids, as tokenizeSft for each side. */
export function tokenizePreference(
  tok: Tokenizer,
  ex: { prompt: string; chosen: string; rejected: string; weight?: number; label?: number; judgeProb?: number },
): PreferenceExample {
  const prompt = tok.encode(ex.prompt, { addBos: true });
  return {
    prompt,
    chosen: withEos(tok, ex.chosen),
    rejected: withEos(tok, ex.rejected),
    ...(ex.weight !== undefined ? { weight: ex.weight } : {}),
    ...(ex.label !== undefined ? { label: ex.label } : {}),
    ...(ex.judgeProb !== undefined ? { judgeProb: ex.judgeProb } : {}),
  };
}

/**
 * Fit prompt + completion into maxLen tokens: the prompt loses tokens from its start first (its end
 * is what the completion follows; TRL's "keep_end"), keeping at least one; then the completion is
 * cut at its end. Returns the row and whether anything was cut.
 */
export function sftRow(prompt: readonly number[], completion: readonly number[], maxLen: number): { row: LmRow; truncated: boolean } {
  if (completion.length === 0) throw new Error("sftRow: the completion is empty (nothing to train on)");
  if (prompt.length === 0) throw new Error("sftRow: the prompt is empty (a completion needs at least one token before it)");
  if (maxLen < 2) throw new Error(`sftRow: maxLen ${maxLen} < 2`);
  let p = prompt;
  let c = completion;
  const truncated = p.length + c.length > maxLen;
  if (truncated) {
    p = p.slice(Math.max(0, p.length - Math.max(1, maxLen - c.length)));
    c = c.slice(0, maxLen - p.length);
  }
  const L = p.length + c.length;
  const ids = new Int32Array(L);
  ids.set(p, 0);
  ids.set(c, p.length);
  const targets = new Int32Array(L).fill(-1);
  // position t predicts ids[t + 1]; completion ids sit at p.length … L − 1
  for (let t = p.length - 1; t < L - 1; t++) targets[t] = ids[t + 1];
  return { row: { ids, targets }, truncated };
}

/**
 * Packing: concatenate rows into rows of exactly up to `T` tokens, in order, starting a new row when
 * the next example does not fit (no example is split). Attention is not masked between the examples
 * sharing a row (as TRL's classic packing); their targets stay where they were, so prompt tokens are
 * never trained on.
 */
export function packRows(rows: readonly LmRow[], T: number): LmRow[] {
  const out: LmRow[] = [];
  let ids: number[] = [];
  let targets: number[] = [];
  const flush = () => {
    if (ids.length > 0) out.push({ ids: Int32Array.from(ids), targets: Int32Array.from(targets) });
    ids = [];
    targets = [];
  };
  for (const r of rows) {
    if (r.ids.length > T) throw new Error(`packRows: a row of ${r.ids.length} tokens exceeds the pack length ${T}`);
    if (ids.length + r.ids.length > T) flush();
    for (let i = 0; i < r.ids.length; i++) {
      ids.push(r.ids[i]);
      targets.push(r.targets[i]);
    }
  }
  flush();
  return out;
}

/** Right-pad rows into one (B, T) batch, T = the longest row. Padding uses `padId` with target −1. */
export function padRows(rows: readonly LmRow[], padId = 0): PaddedBatch {
  const B = rows.length;
  let T = 1;
  for (const r of rows) T = Math.max(T, r.ids.length);
  const tokens = new Int32Array(B * T).fill(padId);
  const targets = new Int32Array(B * T).fill(-1);
  for (const [b, r] of rows.entries()) {
    tokens.set(r.ids, b * T);
    targets.set(r.targets, b * T);
  }
  return { tokens, targets, B, T };
}

/** Number of positions with a target (the tokens a row trains on). */
export function targetCount(targets: Int32Array): number {
  let n = 0;
  for (let i = 0; i < targets.length; i++) if (targets[i] >= 0) n++;
  return n;
}

/**
 * A permutation of 0 … n−1 that depends only on (seed, epoch): Fisher–Yates driven by mulberry32.
 * Every epoch reshuffles; a resumed run recomputes exactly the order it had.
 */
export function permutation(n: number, seed: number, epoch: number): Int32Array {
  const rng = mulberry32((Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca6b)) >>> 0);
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/**
 * The data stream: example index k of the run (k = 0, 1, … across epochs) is example
 * permutation(n, seed, ⌊k/n⌋)[k mod n]. An optimizer step takes the next batch·accumulation
 * indices, so its examples depend only on (seed, step): the key to exact resume.
 */
export function streamIndices(n: number, seed: number, start: number, count: number): Int32Array {
  const out = new Int32Array(count);
  let epoch = -1;
  let perm: Int32Array = new Int32Array(0);
  for (let i = 0; i < count; i++) {
    const k = start + i;
    const e = Math.floor(k / n);
    if (e !== epoch) {
      epoch = e;
      perm = permutation(n, seed, e);
    }
    out[i] = perm[k - e * n];
  }
  return out;
}

/** A short stable hash of a data set's ids (resume refuses to continue on different data). */
export function dataHash(parts: Iterable<ArrayLike<number>>): string {
  const h = createHash("sha256");
  for (const p of parts) {
    const a = Int32Array.from(p as ArrayLike<number>);
    h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
    h.update("|");
  }
  return h.digest("hex").slice(0, 16);
}

/**
 * Split a micro-batch into groups of similar length so padding wastes less: sort by length, then
 * choose the cut points that minimise Σ (rows in group × longest row in group) + callCost per group
 * (one forward/backward call costs about `callCost` tokens of work in fixed overhead). Returns
 * groups of indices into `lengths`, shortest first. A mix of short answer rows and long judge rows
 * typically splits in two, nearly halving the padded tokens.
 */
export function lengthGroups(lengths: readonly number[], callCost = 256): number[][] {
  const n = lengths.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => lengths[a] - lengths[b] || a - b);
  const len = order.map((i) => lengths[i]);
  // best[j] = least cost of the first j sorted rows; cut[j] = where its last group starts
  const best = new Float64Array(n + 1).fill(Number.POSITIVE_INFINITY);
  const cut = new Int32Array(n + 1);
  best[0] = 0;
  for (let j = 1; j <= n; j++) {
    for (let i = 0; i < j; i++) {
      const c = best[i] + (j - i) * len[j - 1] + callCost;
      if (c < best[j]) {
        best[j] = c;
        cut[j] = i;
      }
    }
  }
  const groups: number[][] = [];
  for (let j = n; j > 0; j = cut[j]) groups.unshift(order.slice(cut[j], j));
  return groups;
}
