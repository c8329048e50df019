/**
 * Batched sampling with a KV cache, continuously batched.
 *
 * A pool of up to maxBatch cache slots decodes one token per step for every occupied slot together:
 * projections and MLP as matrix products over the active rows, attention over each slot's own cache
 * (one query per head, masked to the slot's filled positions). Whenever finished samples free enough
 * slots, the next prompts of the queue are admitted — whole prompts only, as many as fit: one prefill
 * forward over the prompts admitted at that step (right-padded, logits only at each prompt's last
 * position), each prompt's keys/values copied into its n slots (so the n samples of a prompt share
 * one prefill) — and decoding goes on. So the batch stays full until the queue runs dry, instead of
 * draining a chunk of prompts down to its longest sample before the next chunk starts.
 *
 * The cache: slots come in groups of SLOT_GROUP; each group's keys (and values) are one array per
 * layer with room for maxLen positions per slot and kv head, laid out (slots, KV, L, hd) with a
 * stride L that follows the longest sample in the group (a multiple of 16, re-laid in place when it
 * grows, or falls by ≥ 32). Attention runs per group over its L positions, not maxLen: on the judge
 * workload (prompts 23–47 tokens, samples 1–160, one group of 256 slots) that computes ≈ 0.78 of the
 * positions of a (slots, KV, maxLen, hd) array; a call's cost grows with slots × L.
 *
 * Reproducibility: every sample draws from its own PRNG seeded by (seed, prompt index, sample index),
 * so its random draws do not depend on which other prompts share its batch or when it is admitted.
 * The logits a sample sees are the same in exact arithmetic, and bit for bit with kernels that
 * compute each row on its own (ReferenceKernels). Attention is row-independent with OrtKernels too,
 * for any stride L and group (masked positions get weight exactly 0; checked bit for bit on the
 * judge workload with one group of 256 slots against groups of 32). onnxruntime's matrix products are
 * not always row-independent (observed with onnxruntime-node 1.30, x86-64 AVX2): a product with a
 * single row (M = 1) runs MLAS's M = 1 kernel, which reduces in another order; and with 2 intra-op
 * threads, a product with N = 128 outputs and K ≥ 256 (the MLP down projection at dim 128) gives
 * rows different last bits when it has fewer than N rows (the threads then split N instead of M,
 * which changes MLAS's blocking of K) — with 1 thread only M = 1 differs. So with OrtKernels a row's
 * floats can depend on how many rows share its decode step (active slots) or its prefill (admitted
 * prompts × padded length). Continuous batching groups rows differently from the chunked algorithm
 * it replaced, so a sample's log-prob can differ from that algorithm's in the last bits (judge
 * workload, 768 samples: max |Δ logprob| ≈ 2e-5, ids and texts all equal), and a token could differ
 * where a uniform draw falls within such a rounding difference of a top-p or categorical boundary.
 * The same was already true of the chunked algorithm between different maxBatch values.
 */
import { addBias, addTo, rmsnormForward, ropeRotate } from "../engine/ops.js";
import { mulberry32 } from "../engine/tensor.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { forward, type LlamaModel } from "./llama.js";
import { logSumExp, makeScratch, type SamplingParams, sampleToken } from "./sampling.js";

export interface GenerateOptions {
  /** Most tokens to generate per sample (default 64). Also bounded by the model's maxSeqLen. */
  maxNewTokens?: number;
  /** Softmax temperature (default 1); 0 = greedy. */
  temperature?: number;
  /** Keep the smallest top set with probability ≥ topP (default 1 = off). */
  topP?: number;
  /** Keep the k most likely tokens (default 0 = off). */
  topK?: number;
  /** Samples per prompt (default 1). */
  n?: number;
  /** Seed of the samples' PRNGs (default 0). */
  seed?: number;
  /**
   * The PRNG seed of sample `sample` of prompt `prompt` (default `seedFor(seed, prompt, sample)`).
   * A server batching unrelated requests into one call gives each its own seed this way, so a
   * request's samples do not depend on which other requests share its batch.
   */
  sampleSeed?: (prompt: number, sample: number) => number;
  /** Also return each sampled token's log-prob (`Sample.tokenLogprobs`; default false). */
  tokenLogprobs?: boolean;
  /** Also return the k most likely tokens at each step with their log-probs (`Sample.topLogprobs`; default 0). */
  topLogprobs?: number;
  /** Token ids that end a sample (default: the tokenizer's EOS, if any). Kept in `ids`, not in `text`. */
  stopTokens?: number[];
  /** Strings that end a sample; `text` is cut before the first occurrence. Needs a tokenizer. */
  stopStrings?: string[];
  /** Most sequences decoded together (default 256): the slots of the KV cache, which bound its memory. */
  maxBatch?: number;
  signal?: AbortSignal;
  /** Called after every decode step and after every admission's prefill. */
  onProgress?: (p: { samplesDone: number; samplesTotal: number; tokens: number }) => void;
}

export interface Sample {
  promptIndex: number;
  sampleIndex: number;
  /** Generated ids (prompt excluded), including a final stop token if one was produced. */
  ids: number[];
  /** Decoded generated text (stop token and stop string excluded); "" without a tokenizer. */
  text: string;
  /** Σ log p(id) of `ids` under the model's own distribution (temperature 1, no truncation). */
  logprob: number;
  /** log p of each id of `ids` (same distribution as `logprob`, which is their sum); only with `tokenLogprobs`. */
  tokenLogprobs?: number[];
  /** At each step, the `topLogprobs` most likely ids and their log-probs, most likely first; only with `topLogprobs`. */
  topLogprobs?: { id: number; logprob: number }[][];
  finishReason: "stop" | "length";
}

/** Each prompt is text (needs a tokenizer; BOS follows the tokenizer's convention) or token ids. */
export type Prompt = string | readonly number[];

interface Slot {
  prompt: number;
  sample: number;
  pos: number; // position of the next token to feed (= tokens in cache)
  last: number; // last sampled token (to feed next)
  ids: number[];
  logprob: number;
  tokenLogprobs: number[] | undefined;
  topLogprobs: { id: number; logprob: number }[][] | undefined;
  rng: () => number;
  done: boolean;
  finish: "stop" | "length";
  textEnd: number; // where `text` is cut for a stop string (−1 = none)
}

/** Ids of the k largest entries of row[off, off + V), largest first (ties: lower id first); k is small. */
function topK(row: Float32Array, off: number, V: number, k: number): number[] {
  const best: number[] = [];
  for (let v = 0; v < V && k > 0; v++) {
    const x = row[off + v];
    if (best.length === k && x <= row[off + best[k - 1]]) continue;
    let at = best.length === k ? k - 1 : best.length;
    while (at > 0 && row[off + best[at - 1]] < x) at--;
    best.splice(at, 0, v);
    if (best.length > k) best.pop();
  }
  return best;
}

/** Seed of sample `sample` of prompt `prompt` (exported so that other engines draw the same streams). */
export function seedFor(seed: number, prompt: number, sample: number): number {
  // Mix with odd constants so neighbouring (prompt, sample) pairs get unrelated streams.
  let h = (seed ^ 0x9e3779b9) >>> 0;
  h = Math.imul(h ^ (prompt + 0x7f4a7c15), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (sample + 0x165667b1), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** The inverse of odd `a` modulo 2^32 (Newton's iteration; each step doubles the correct low bits, from 3). */
function inverseMod32(a: number): number {
  let x = a >>> 0;
  for (let i = 0; i < 5; i++) x = Math.imul(x, (2 - Math.imul(a, x)) >>> 0) >>> 0;
  return x;
}
const INV_M1 = inverseMod32(0x85ebca6b);
const INV_M2 = inverseMod32(0xc2b2ae35);

/**
 * The seed s with seedFor(s, 0, 0) = `stream`: a generate call of one prompt and one sample, seeded
 * s, draws from `stream`. For fixed (prompt, sample) seedFor is a bijection of 32-bit seeds (xors,
 * multiplications by odd constants, an xor-shift by 16), so every stream has exactly one such seed.
 * The OpenAI engine uses it to make `srlm serve` draw sample i of prompt p from seedFor(seed, p, i),
 * one request per sample, as the builtin engine does in one call.
 */
export function requestSeedFor(stream: number): number {
  let h = stream >>> 0;
  h = (h ^ (h >>> 16)) >>> 0; // an xor-shift by half the width is its own inverse
  h = (Math.imul(h, INV_M2) ^ 0x165667b1) >>> 0;
  h = (Math.imul(h, INV_M1) ^ 0x7f4a7c15) >>> 0;
  return (h ^ 0x9e3779b9) >>> 0;
}

/** Sample continuations of each prompt. Returns samples grouped per prompt: result[p][i]. */
export async function generate(
  model: LlamaModel,
  tokenizer: Tokenizer | undefined,
  prompts: readonly Prompt[],
  opts: GenerateOptions = {},
): Promise<Sample[][]> {
  const c = model.config;
  const n = opts.n ?? 1;
  const maxNew = opts.maxNewTokens ?? 64;
  const temperature = opts.temperature ?? 1;
  const sp: SamplingParams = { temperature, topK: opts.topK ?? 0, topP: opts.topP ?? 1 };
  if (!(temperature >= 0)) throw new RangeError(`temperature must be ≥ 0, got ${temperature}`);
  if (!(sp.topP > 0 && sp.topP <= 1)) throw new RangeError(`topP must be in (0, 1], got ${sp.topP}`);
  if (!(Number.isInteger(sp.topK) && sp.topK >= 0)) throw new RangeError(`topK must be an integer ≥ 0, got ${sp.topK}`);
  if (!(Number.isInteger(n) && n >= 1)) throw new RangeError(`n must be an integer ≥ 1, got ${n}`);
  if (!(Number.isInteger(maxNew) && maxNew >= 1)) throw new RangeError(`maxNewTokens must be an integer ≥ 1, got ${maxNew}`);
  const stopStrings = opts.stopStrings ?? [];
  if (stopStrings.length && !tokenizer) throw new Error("stopStrings need a tokenizer");
  const stopTokens = new Set(opts.stopTokens ?? (tokenizer?.eosId !== undefined ? [tokenizer.eosId] : []));
  const ids = prompts.map((p, i) => {
    if (typeof p !== "string") return Array.from(p);
    if (!tokenizer) throw new Error(`prompt ${i} is text but no tokenizer was given`);
    return tokenizer.encode(p);
  });
  ids.forEach((p, i) => {
    if (p.length === 0) throw new Error(`prompt ${i} is empty (no tokens)`);
    if (p.length >= c.maxSeqLen) throw new Error(`prompt ${i} has ${p.length} tokens; the model's maxSeqLen is ${c.maxSeqLen}`);
  });
  const P = ids.length;
  if (P === 0) return [];
  const seed = opts.seed ?? 0;
  const topLogprobs = opts.topLogprobs ?? 0;
  if (!(Number.isInteger(topLogprobs) && topLogprobs >= 0)) throw new RangeError(`topLogprobs must be an integer ≥ 0, got ${topLogprobs}`);
  const sampleSeed = opts.sampleSeed ?? ((p: number, i: number) => seedFor(seed, p, i));
  const signal = opts.signal;
  const V = c.vocabSize;
  const KV = c.nKvHeads;
  const hd = c.headDim;

  // The pool: S cache slots. Memory: 2 · nLayers · S · KV · maxLen · hd · 4 bytes (keys and values),
  // allocated once (e.g. 4 layers, 256 slots, 2 kv heads of 32, maxLen 192: 100 MB), plus the
  // prefill's captured keys/values of the prompts admitted at one step, (k, KV, Tp, hd) per layer.
  const S = Math.min(Math.max(opts.maxBatch ?? 256, n), P * n);
  const maxLen = Math.min(c.maxSeqLen, Math.max(...ids.map((p) => p.length)) + maxNew);
  const cache = kvPool(c.nLayers, S, KV, hd, maxLen);

  const scratch = makeScratch(V);
  const out: Sample[][] = ids.map(() => new Array<Sample>(n));
  const slots: (Slot | undefined)[] = new Array(S).fill(undefined);
  let next = 0; // next prompt to admit
  let samplesDone = 0;
  let tokens = 0;
  const progress = () => opts.onProgress?.({ samplesDone, samplesTotal: P * n, tokens });

  // Choose a token for a slot from a logits row, and decide whether it finishes.
  const accept = (slot: Slot, logits: Float32Array, off: number) => {
    const t = sampleToken(logits, off, V, sp, slot.rng, scratch);
    const lse = logSumExp(logits, off, V);
    const lp = logits[off + t] - lse;
    slot.logprob += lp;
    slot.tokenLogprobs?.push(lp);
    slot.topLogprobs?.push(topK(logits, off, V, topLogprobs).map((id) => ({ id, logprob: logits[off + id] - lse })));
    slot.ids.push(t);
    slot.last = t;
    if (stopTokens.has(t)) {
      slot.done = true;
      slot.finish = "stop";
    } else if (stopStrings.length && tokenizer) {
      const text = tokenizer.decode(slot.ids);
      let cut = -1;
      for (const ss of stopStrings) {
        const at = text.indexOf(ss);
        if (at >= 0 && (cut < 0 || at < cut)) cut = at;
      }
      if (cut >= 0) {
        slot.done = true;
        slot.finish = "stop";
        slot.textEnd = cut;
      }
    }
    // prompt + sample must fit in maxSeqLen, so that training can later read it back whole
    if (!slot.done && (slot.ids.length >= maxNew || slot.pos + 1 >= c.maxSeqLen)) slot.done = true;
  };

  // Record the sample of a finished slot and free the slot.
  const retire = (s: number) => {
    const slot = slots[s] as Slot;
    let text = "";
    if (tokenizer) {
      const body = slot.finish === "stop" && stopTokens.has(slot.ids[slot.ids.length - 1]) ? slot.ids.slice(0, -1) : slot.ids;
      text = tokenizer.decode(body);
      if (slot.textEnd >= 0) text = text.slice(0, slot.textEnd);
    }
    out[slot.prompt][slot.sample] = {
      promptIndex: slot.prompt,
      sampleIndex: slot.sample,
      ids: slot.ids,
      text,
      logprob: slot.logprob,
      ...(slot.tokenLogprobs ? { tokenLogprobs: slot.tokenLogprobs } : {}),
      ...(slot.topLogprobs ? { topLogprobs: slot.topLogprobs } : {}),
      finishReason: slot.finish,
    };
    slots[s] = undefined;
    samplesDone++;
  };

  // Positions the occupied slots of group g need for the next decode step (0 if none is occupied).
  const groupNeed = (g: number) => {
    let need = 0;
    for (let s = g * SLOT_GROUP; s < Math.min(S, (g + 1) * SLOT_GROUP); s++) {
      const slot = slots[s];
      if (slot && slot.pos + 1 > need) need = slot.pos + 1;
    }
    return need;
  };

  // Admit prompts next … next + k − 1 into the free slots `free` (n consecutive entries per prompt):
  // one prefill forward over them (right-padded (k, Tp), logits at each last position), each prompt's
  // keys/values copied into its n slots, and the first token of every sample drawn.
  const admit = async (k: number, free: number[]) => {
    const group = ids.slice(next, next + k);
    const Tp = Math.max(...group.map((p) => p.length));
    const tok = new Int32Array(k * Tp);
    const lastRows = new Int32Array(k);
    group.forEach((p, j) => {
      tok.set(p, j * Tp);
      lastRows[j] = j * Tp + p.length - 1;
    });
    const pre = await forward(model, { tokens: tok, B: k, T: Tp }, { logitRows: lastRows, captureKv: true });
    const preLogits = pre.logits as Float32Array;
    const kv = pre.kv ?? [];
    for (let j = 0; j < k; j++) {
      const len = group[j].length;
      for (let i = 0; i < n; i++) {
        const s = free[j * n + i];
        const g = (s / SLOT_GROUP) | 0;
        // room for the prompt and the next token, and for what the group's other slots hold
        fitGroup(cache, g, Math.max(len + 1, groupNeed(g)));
        const L = cache.L[g];
        const r = s - g * SLOT_GROUP;
        for (let l = 0; l < kv.length; l++) {
          for (let h = 0; h < KV; h++) {
            const src = (j * KV + h) * Tp * hd;
            const dst = (r * KV + h) * L * hd;
            cache.k[l][g].set(kv[l].k.subarray(src, src + len * hd), dst);
            cache.v[l][g].set(kv[l].v.subarray(src, src + len * hd), dst);
          }
        }
        const slot: Slot = {
          prompt: next + j,
          sample: i,
          pos: len,
          last: -1,
          ids: [],
          logprob: 0,
          tokenLogprobs: opts.tokenLogprobs ? [] : undefined,
          topLogprobs: topLogprobs > 0 ? [] : undefined,
          rng: mulberry32(sampleSeed(next + j, i)),
          done: false,
          finish: "length",
          textEnd: -1,
        };
        slots[s] = slot;
        accept(slot, preLogits, j * V);
      }
    }
    next += k;
    tokens += k * n;
  };

  for (;;) {
    signal?.throwIfAborted();
    // Admit as many whole prompts as the free slots hold, once ADMIT_MIN of the pool is free (or all
    // prompts left fit): fewer, larger prefills, at a negligible cost in occupancy.
    const free: number[] = [];
    for (let s = 0; s < S; s++) if (!slots[s]) free.push(s);
    const k = Math.min(Math.floor(free.length / n), P - next);
    if (k > 0 && (free.length >= ADMIT_MIN * S || k === P - next)) {
      await admit(k, free);
      for (let s = 0; s < S; s++) if (slots[s]?.done) retire(s);
      progress();
    }
    const active: number[] = [];
    for (let s = 0; s < S; s++) if (slots[s]) active.push(s);
    if (active.length === 0) {
      if (next >= P) break;
      continue; // every admitted sample finished at its first token: admit more
    }
    signal?.throwIfAborted();
    const live = active.map((s) => slots[s] as Slot);
    for (let g = 0; g < cache.L.length; g++) fitGroup(cache, g, groupNeed(g));
    const logits = await decodeStep(
      model,
      cache,
      active,
      live.map((sl) => sl.last),
      live.map((sl) => sl.pos),
    );
    for (let a = 0; a < active.length; a++) {
      const slot = live[a];
      slot.pos++;
      accept(slot, logits, a * V);
      if (slot.done) retire(active[a]);
    }
    tokens += active.length;
    progress();
  }
  return out;
}

/**
 * Least share of the pool that is admitted at once (see generate). On the judge workload (768 samples,
 * 256 slots) 1/16 cut the prefill calls from 88 to 29, for 358 decode steps instead of 352.
 */
const ADMIT_MIN = 1 / 16;

/**
 * Slots per cache group: attention runs once per group over the group's own stride L. Smaller groups
 * compute fewer masked positions (judge workload: 0.57 of one 192-stride pool with groups of 32, 0.65
 * with 64, 0.78 with 256) but make more calls; measured with interleaved rounds on the judge workload
 * (dim 128, 2 threads), the attention time was lowest with 256 (2.7–3.2 s against 3.3–3.7 s with 64
 * and 3.4–4.4 s with 32) and the totals were within noise of each other from 64 up.
 */
export const SLOT_GROUP = 256;

/**
 * The KV cache of the slot pool: k[l][g] and v[l][g] are group g's keys and values at layer l, room
 * for (slots of g) × KV × maxLen × hd floats, used as (slots of g, KV, L[g], hd).
 */
export interface KvPool {
  k: Float32Array[][];
  v: Float32Array[][];
  L: number[];
  KV: number;
  hd: number;
  maxLen: number;
}

export function kvPool(nLayers: number, S: number, KV: number, hd: number, maxLen: number): KvPool {
  const G = Math.ceil(S / SLOT_GROUP);
  const size = (g: number) => (Math.min(S, (g + 1) * SLOT_GROUP) - g * SLOT_GROUP) * KV * maxLen * hd;
  const arrays = () => Array.from({ length: nLayers }, () => Array.from({ length: G }, (_, g) => new Float32Array(size(g))));
  return { k: arrays(), v: arrays(), L: new Array<number>(G).fill(0), KV, hd, maxLen };
}

/**
 * Make group g's stride fit `need` positions: grow to the next multiple of 16 (at most maxLen) when
 * it is short, shrink when it is ≥ 32 too long (not on every finished sample), and move each (slot,
 * kv head) row of positions in place to the new stride. Rows beyond a slot's filled positions hold
 * stale but finite values of the model, which attention masks to weight 0.
 */
export function fitGroup(pool: KvPool, g: number, need: number): void {
  const old = pool.L[g];
  if (need === 0 || (need <= old && need > old - 32)) return;
  const L = Math.min(pool.maxLen, Math.ceil(need / 16) * 16);
  if (L === old) return;
  pool.L[g] = L;
  if (old === 0) return;
  const w = pool.hd;
  const rows = pool.k[0][g].length / (pool.maxLen * w);
  const keep = Math.min(old, L) * w;
  for (const arrays of [pool.k, pool.v]) {
    for (const layer of arrays) {
      const a = layer[g];
      // growing moves rows up (last first), shrinking moves them down (first first): no row is
      // overwritten before it has been moved
      if (L > old) for (let r = rows - 1; r > 0; r--) a.copyWithin(r * L * w, r * old * w, r * old * w + keep);
      else for (let r = 1; r < rows; r++) a.copyWithin(r * L * w, r * old * w, r * old * w + keep);
    }
  }
}

/**
 * One decode step: feed token `tokens[a]` at position `pos[a]` for each active slot `slots[a]`
 * (ascending), append its key/value to the slot's cache, return next-token logits (A, V). Every
 * group holding an active slot must have a stride L > pos of its active slots (see fitGroup).
 */
export async function decodeStep(model: LlamaModel, pool: KvPool, slots: number[], tokens: number[], pos: number[]): Promise<Float32Array> {
  const { config: c, params: p, kernels: kn, rope } = model;
  const A = slots.length;
  const C = c.dim;
  const H = c.nHeads;
  const KV = c.nKvHeads;
  const G = H / KV;
  const hd = c.headDim;
  const Hm = c.hiddenDim;
  const scale = 1 / Math.sqrt(hd);

  const x = new Float32Array(A * C); // (A, C)
  for (let a = 0; a < A; a++) x.set(p.embed.subarray(tokens[a] * C, tokens[a] * C + C), a * C);
  const h = new Float32Array(A * C);
  const rstd = new Float32Array(A);
  // Per group holding active slots: attention runs over the contiguous range of its slots that holds
  // every active one (a view, no copy), L = the group's stride; slots in the range that are free are
  // masked to their first position. Active rows a0 ≤ a < a1 of `slots` lie in the group.
  const parts: { g: number; lo: number; R: number; L: number; a0: number; a1: number; mask: Float32Array; q: Float32Array }[] = [];
  for (let a0 = 0; a0 < A; ) {
    const g = (slots[a0] / SLOT_GROUP) | 0;
    let a1 = a0 + 1;
    while (a1 < A && ((slots[a1] / SLOT_GROUP) | 0) === g) a1++;
    const lo = slots[a0] - g * SLOT_GROUP;
    const R = slots[a1 - 1] - g * SLOT_GROUP - lo + 1;
    const L = pool.L[g];
    const mask = new Float32Array(R * KV * L).fill(Number.NEGATIVE_INFINITY);
    for (let r = 0; r < R; r++) for (let kh = 0; kh < KV; kh++) mask[(r * KV + kh) * L] = 0;
    for (let a = a0; a < a1; a++) {
      if (!(pos[a] < L)) throw new Error(`decodeStep: position ${pos[a]} of slot ${slots[a]} is beyond its group's stride ${L}`);
      const r = slots[a] - g * SLOT_GROUP - lo;
      for (let kh = 0; kh < KV; kh++) mask.fill(0, (r * KV + kh) * L, (r * KV + kh) * L + pos[a] + 1);
    }
    parts.push({ g, lo, R, L, a0, a1, mask, q: new Float32Array(R * H * hd) });
    a0 = a1;
  }
  const att = new Float32Array(A * H * hd);

  for (let l = 0; l < c.nLayers; l++) {
    const lp = p.layers[l];
    rmsnormForward(x, lp.inputNorm, A, C, c.normEps, h, rstd);
    const q = await kn.matmul(h, lp.wq, A, C, H * hd, { transB: true });
    const k = await kn.matmul(h, lp.wk, A, C, KV * hd, { transB: true });
    const v = await kn.matmul(h, lp.wv, A, C, KV * hd, { transB: true });
    if (lp.bq) addBias(q, lp.bq, A, H * hd);
    if (lp.bk) addBias(k, lp.bk, A, KV * hd);
    if (lp.bv) addBias(v, lp.bv, A, KV * hd);
    for (const pt of parts) {
      const kc = pool.k[l][pt.g];
      const vc = pool.v[l][pt.g];
      const base = pt.g * SLOT_GROUP + pt.lo;
      appendKv(q, k, v, pt.q, kc, vc, slots, pos, pt.a0, pt.a1, base, H, KV, hd, pt.L, rope);
      const span = KV * pt.L * hd;
      const o = await kn.cachedAttention(
        pt.q,
        kc.subarray(pt.lo * span, (pt.lo + pt.R) * span),
        vc.subarray(pt.lo * span, (pt.lo + pt.R) * span),
        pt.mask,
        pt.R * KV,
        G,
        pt.L,
        hd,
        scale,
      );
      gatherRows(o, att, slots, pt.a0, pt.a1, base, H * hd);
    }
    const y = await kn.matmul(att, lp.wo, A, H * hd, C, { transB: true });
    addTo(x, x, y);
    rmsnormForward(x, lp.postNorm, A, C, c.normEps, h, rstd);
    const { out: m } = await kn.mlpForward(h, lp.wGate, lp.wUp, lp.wDown, A, C, Hm);
    addTo(x, x, m);
  }
  rmsnormForward(x, p.norm, A, C, c.normEps, h, rstd);
  return kn.matmul(h, p.lmHead, A, C, c.vocabSize, { transB: true });
}

/**
 * Rotate the new keys and queries of active rows a0 ≤ a < a1 (slots of one group) by their
 * positions, append keys/values to each slot's cache (rows of the group, stride L), and place the
 * queries in the (R·KV, G, hd) layout of the slot range starting at slot `base`.
 * (A plain function, not inside the async step: see ops.ts toGrouped.)
 */
function appendKv(
  q: Float32Array, // (A, H·hd)
  k: Float32Array, // (A, KV·hd)
  v: Float32Array, // (A, KV·hd)
  qR: Float32Array, // (R, H·hd)
  kc: Float32Array, // (slots of the group, KV, L, hd)
  vc: Float32Array,
  slots: number[],
  pos: number[],
  a0: number,
  a1: number,
  base: number,
  H: number,
  KV: number,
  hd: number,
  L: number,
  rope: { cos: Float32Array; sin: Float32Array },
): void {
  const half = hd / 2;
  const g0 = base - (base % SLOT_GROUP); // the group's first slot
  for (let a = a0; a < a1; a++) {
    const s = slots[a];
    const t = pos[a];
    for (let kh = 0; kh < KV; kh++) {
      const dst = (((s - g0) * KV + kh) * L + t) * hd;
      const src = (a * KV + kh) * hd;
      ropeRotate(k, src, kc, dst, t, half, rope.cos, rope.sin, 1);
      for (let i = 0; i < hd; i++) vc[dst + i] = v[src + i];
    }
    for (let qh = 0; qh < H; qh++) ropeRotate(q, (a * H + qh) * hd, qR, ((s - base) * H + qh) * hd, t, half, rope.cos, rope.sin, 1);
  }
}

/** dst row a = src row (slots[a] − base) for a0 ≤ a < a1, rows of width w. */
function gatherRows(src: Float32Array, dst: Float32Array, slots: number[], a0: number, a1: number, base: number, w: number): void {
  for (let a = a0; a < a1; a++) {
    const so = (slots[a] - base) * w;
    const d = a * w;
    for (let i = 0; i < w; i++) dst[d + i] = src[so + i];
  }
}
