/**
 * The chunked `generate` as it was before continuous batching (a verbatim copy of src/model/generate.ts
 * then, renamed, with its decode step): chunks of maxBatch / n prompts, each prefilled together and
 * decoded until all its slots finish, over one (slots, KV, maxLen, hd) cache per chunk. Kept as the
 * "before" of bench/generate.ts and as the reference that test/model/generate.test.ts compares the
 * continuous-batching `generate` with, sample for sample.
 */
import { addBias, addTo, rmsnormForward, ropeRotate } from "../src/engine/ops.js";
import { mulberry32 } from "../src/engine/tensor.js";
import { type GenerateOptions, type Prompt, type Sample, seedFor } from "../src/model/generate.js";
import { forward, type LlamaModel } from "../src/model/llama.js";
import { logSumExp, makeScratch, type SamplingParams, sampleToken } from "../src/model/sampling.js";
import type { Tokenizer } from "../src/tokenizer/tokenizer.js";

interface Slot {
  prompt: number;
  sample: number;
  pos: number; // position of the next token to feed (= tokens in cache)
  last: number; // last sampled token (to feed next)
  ids: number[];
  logprob: number;
  rng: () => number;
  done: boolean;
  finish: "stop" | "length";
  textEnd: number; // where `text` is cut for a stop string (−1 = none)
}

/** The chunked `generate` (before continuous batching): chunks of maxBatch / n prompts, each decoded until all its slots finish. */
export async function generateChunked(
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

  const maxBatch = Math.max(opts.maxBatch ?? 256, n);
  const perChunk = Math.max(1, Math.floor(maxBatch / n));
  const out: Sample[][] = [];
  const total = ids.length * n;
  let doneSamples = 0;
  let tokens = 0;
  for (let p0 = 0; p0 < ids.length; p0 += perChunk) {
    const chunk = ids.slice(p0, p0 + perChunk);
    const res = await generateChunk(
      model,
      tokenizer,
      chunk,
      p0,
      n,
      maxNew,
      sp,
      stopTokens,
      stopStrings,
      opts.seed ?? 0,
      opts.signal,
      (t, d) => {
        opts.onProgress?.({ samplesDone: doneSamples + d, samplesTotal: total, tokens: tokens + t });
      },
    );
    for (const r of res) {
      out.push(r);
      doneSamples += r.length;
      for (const s of r) tokens += s.ids.length;
    }
  }
  return out;
}

async function generateChunk(
  model: LlamaModel,
  tokenizer: Tokenizer | undefined,
  prompts: number[][],
  promptOffset: number,
  n: number,
  maxNew: number,
  sp: SamplingParams,
  stopTokens: Set<number>,
  stopStrings: string[],
  seed: number,
  signal: AbortSignal | undefined,
  progress: (tokens: number, done: number) => void,
): Promise<Sample[][]> {
  const c = model.config;
  const V = c.vocabSize;
  const KV = c.nKvHeads;
  const hd = c.headDim;
  const P = prompts.length;
  const Tp = Math.max(...prompts.map((p) => p.length));
  const maxLen = Math.min(c.maxSeqLen, Tp + maxNew);

  // Prefill the distinct prompts: right-padded (P, Tp), logits at each last position.
  const tok = new Int32Array(P * Tp);
  const lastRows = new Int32Array(P);
  prompts.forEach((p, i) => {
    tok.set(p, i * Tp);
    lastRows[i] = i * Tp + p.length - 1;
  });
  const pre = await forward(model, { tokens: tok, B: P, T: Tp }, { logitRows: lastRows, captureKv: true });
  const preLogits = pre.logits as Float32Array;

  // KV cache: per layer (S, KV, maxLen, hd); slot s = prompt·n + sample.
  const S = P * n;
  const kCache: Float32Array[] = [];
  const vCache: Float32Array[] = [];
  for (const kv of pre.kv ?? []) {
    const kc = new Float32Array(S * KV * maxLen * hd);
    const vc = new Float32Array(S * KV * maxLen * hd);
    for (let s = 0; s < S; s++) {
      const pi = (s / n) | 0;
      const len = prompts[pi].length;
      for (let h = 0; h < KV; h++) {
        const src = (pi * KV + h) * Tp * hd;
        const dst = (s * KV + h) * maxLen * hd;
        kc.set(kv.k.subarray(src, src + len * hd), dst);
        vc.set(kv.v.subarray(src, src + len * hd), dst);
      }
    }
    kCache.push(kc);
    vCache.push(vc);
  }

  const scratch = makeScratch(V);
  const slots: Slot[] = [];
  for (let s = 0; s < S; s++) {
    const pi = (s / n) | 0;
    slots.push({
      prompt: pi,
      sample: s % n,
      pos: prompts[pi].length,
      last: -1,
      ids: [],
      logprob: 0,
      rng: mulberry32(seedFor(seed, promptOffset + pi, s % n)),
      done: false,
      finish: "length",
      textEnd: -1,
    });
  }

  // Choose a token for slot s from a logits row, and decide whether it finishes.
  const accept = (slot: Slot, logits: Float32Array, off: number) => {
    const t = sampleToken(logits, off, V, sp, slot.rng, scratch);
    slot.logprob += logits[off + t] - logSumExp(logits, off, V);
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

  for (let s = 0; s < S; s++) accept(slots[s], preLogits, slots[s].prompt * V);
  let tokens = S;
  progress(tokens, slots.filter((s) => s.done).length);

  for (;;) {
    signal?.throwIfAborted();
    const active = slots.map((s, i) => (s.done ? -1 : i)).filter((i) => i >= 0);
    if (active.length === 0) break;
    const logits = await decodeStep(
      model,
      kCache,
      vCache,
      maxLen,
      active,
      active.map((i) => slots[i].last),
      active.map((i) => slots[i].pos),
    );
    for (let a = 0; a < active.length; a++) {
      const slot = slots[active[a]];
      slot.pos++;
      accept(slot, logits, a * V);
    }
    tokens += active.length;
    progress(tokens, slots.filter((s) => s.done).length);
  }

  const res: Sample[][] = Array.from({ length: P }, () => []);
  for (const s of slots) {
    let text = "";
    if (tokenizer) {
      const body = s.finish === "stop" && stopTokens.has(s.ids[s.ids.length - 1]) ? s.ids.slice(0, -1) : s.ids;
      text = tokenizer.decode(body);
      if (s.textEnd >= 0) text = text.slice(0, s.textEnd);
    }
    res[s.prompt].push({
      promptIndex: promptOffset + s.prompt,
      sampleIndex: s.sample,
      ids: s.ids,
      text,
      logprob: s.logprob,
      finishReason: s.finish,
    });
  }
  return res;
}

/**
 * One decode step: feed token `tokens[a]` at position `pos[a]` for each active slot, append its
 * key/value to the slot's cache, return next-token logits (A, V).
 */
async function decodeStep(
  model: LlamaModel,
  kCache: Float32Array[],
  vCache: Float32Array[],
  maxLen: number,
  slots: number[],
  tokens: number[],
  pos: number[],
): Promise<Float32Array> {
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
  // Attention runs over the contiguous range of cache slots that holds every active slot (a view,
  // no copy); slots in the range that are finished or idle are masked to their first position.
  let lo = slots[0];
  let hi = slots[0];
  for (const s of slots) {
    if (s < lo) lo = s;
    if (s > hi) hi = s;
  }
  const R = hi - lo + 1;
  const mask = new Float32Array(R * KV * maxLen).fill(Number.NEGATIVE_INFINITY);
  for (let r = 0; r < R; r++) for (let kh = 0; kh < KV; kh++) mask[(r * KV + kh) * maxLen] = 0;
  for (let a = 0; a < A; a++) {
    const r = slots[a] - lo;
    for (let kh = 0; kh < KV; kh++) mask.fill(0, (r * KV + kh) * maxLen, (r * KV + kh) * maxLen + pos[a] + 1);
  }
  const qAll = new Float32Array(R * H * hd); // (R·KV, G, hd): head h = kv·G + g of slot lo + r
  const att = new Float32Array(A * H * hd);
  const span = KV * maxLen * hd;

  for (let l = 0; l < c.nLayers; l++) {
    const lp = p.layers[l];
    const kc = kCache[l];
    const vc = vCache[l];
    rmsnormForward(x, lp.inputNorm, A, C, c.normEps, h, rstd);
    const q = await kn.matmul(h, lp.wq, A, C, H * hd, { transB: true });
    const k = await kn.matmul(h, lp.wk, A, C, KV * hd, { transB: true });
    const v = await kn.matmul(h, lp.wv, A, C, KV * hd, { transB: true });
    if (lp.bq) addBias(q, lp.bq, A, H * hd);
    if (lp.bk) addBias(k, lp.bk, A, KV * hd);
    if (lp.bv) addBias(v, lp.bv, A, KV * hd);
    appendKv(q, k, v, qAll, kc, vc, slots, pos, lo, H, KV, hd, maxLen, rope);
    const o = await kn.cachedAttention(
      qAll,
      kc.subarray(lo * span, (hi + 1) * span),
      vc.subarray(lo * span, (hi + 1) * span),
      mask,
      R * KV,
      G,
      maxLen,
      hd,
      scale,
    );
    gatherRows(o, att, slots, lo, H * hd);
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
 * Rotate the new keys and queries by their positions, append keys/values to each slot's cache, and
 * place the queries in the (R·KV, G, hd) layout of the slot range starting at `lo`.
 * (A plain function, not inside the async step: see ops.ts toGrouped.)
 */
function appendKv(
  q: Float32Array, // (A, H·hd)
  k: Float32Array, // (A, KV·hd)
  v: Float32Array, // (A, KV·hd)
  qAll: Float32Array, // (R, H·hd)
  kc: Float32Array, // (S, KV, maxLen, hd)
  vc: Float32Array,
  slots: number[],
  pos: number[],
  lo: number,
  H: number,
  KV: number,
  hd: number,
  maxLen: number,
  rope: { cos: Float32Array; sin: Float32Array },
): void {
  const half = hd / 2;
  for (let a = 0; a < slots.length; a++) {
    const s = slots[a];
    const t = pos[a];
    for (let kh = 0; kh < KV; kh++) {
      const base = ((s * KV + kh) * maxLen + t) * hd;
      const src = (a * KV + kh) * hd;
      ropeRotate(k, src, kc, base, t, half, rope.cos, rope.sin, 1);
      for (let i = 0; i < hd; i++) vc[base + i] = v[src + i];
    }
    for (let qh = 0; qh < H; qh++) ropeRotate(q, (a * H + qh) * hd, qAll, ((s - lo) * H + qh) * hd, t, half, rope.cos, rope.sin, 1);
  }
}

/** dst row a = src row (slots[a] − lo), rows of width w. */
function gatherRows(src: Float32Array, dst: Float32Array, slots: number[], lo: number, w: number): void {
  for (let a = 0; a < slots.length; a++) {
    const so = (slots[a] - lo) * w;
    const d = a * w;
    for (let i = 0; i < w; i++) dst[d + i] = src[so + i];
  }
}
