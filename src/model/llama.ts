/**
 * The Llama-architecture decoder: explicit forward and backward, llm.c style.
 *
 *   tokens (B, T) → embed → [ RMSNorm → q,k,v → RoPE → causal GQA attention → o_proj → +residual
 *                            RMSNorm → SwiGLU MLP → +residual ] × L → RMSNorm → lm_head → logits
 *
 * Every loss srlm trains with (SFT, the DPO family) is a function of the per-token log-probs of the
 * target tokens, so the backward starts from d(loss)/d(logp) of shape (B, T): no general autograd.
 *
 * Batches are right-padded: with causal attention a valid position never sees a later (padded) one,
 * so padding needs no extra mask; padded positions get target −1 and contribute nothing.
 *
 * Attention layout: the G = H/KV query heads sharing one kv head are stacked, so Q for one
 * (batch, kv head) block is (G·T, hd) and QK^T is one batched product over B·KV blocks.
 */
import type { Kernels } from "../engine/kernels.js";
import {
  addBias,
  addInto,
  addTo,
  biasBackward,
  embeddingBackward,
  embeddingForward,
  fromGrouped,
  logSoftmaxGather,
  logSoftmaxGatherBackward,
  rmsnormBackward,
  rmsnormForward,
  ropeTables,
  toGrouped,
} from "../engine/ops.js";
import type { LlamaConfig } from "./config.js";
import type { LayerParams, LlamaParams } from "./params.js";

export interface LlamaModel {
  readonly config: LlamaConfig;
  params: LlamaParams;
  readonly kernels: Kernels;
  /** RoPE tables (maxSeqLen, hd/2). */
  readonly rope: { cos: Float32Array; sin: Float32Array };
}

export function createModel(config: LlamaConfig, params: LlamaParams, kernels: Kernels): LlamaModel {
  return { config, params, kernels, rope: ropeTables(config.maxSeqLen, config.headDim, config.ropeTheta) };
}

export interface ForwardInput {
  /** (B, T) token ids, right-padded with any valid id. */
  tokens: Int32Array;
  B: number;
  T: number;
  /** (B, T) the id whose log-prob is wanted at each position (usually the next token); −1 = ignore. */
  targets?: Int32Array;
}

export interface ForwardOptions {
  /** Keep the activations the backward needs (returned as `tape`). */
  train?: boolean;
  /** Also return the full logits (B·T, V). */
  returnLogits?: boolean;
  /** Compute the head only at these flat rows (b·T + t) and return their logits (R, V); skips `targets`. */
  logitRows?: Int32Array;
  /** Return each layer's post-RoPE keys and values, (B, KV, T, hd), for a KV cache. */
  captureKv?: boolean;
}

export interface LayerTape {
  x: Float32Array; // (N, C) block input
  h1: Float32Array; // (N, C) normed input
  rstd1: Float32Array; // (N)
  q: Float32Array; // (B·KV, G·T, hd) post-RoPE queries, grouped
  k: Float32Array; // (B·KV, T, hd) post-RoPE keys
  v: Float32Array; // (B·KV, T, hd)
  p: Float32Array; // (B·KV, G·T, T) attention probabilities
  attn: Float32Array; // (N, H·hd) attention output before o_proj
  x2: Float32Array; // (N, C) after attention residual
  h2: Float32Array; // (N, C)
  rstd2: Float32Array; // (N)
  gate: Float32Array; // (N, Hm)
  up: Float32Array; // (N, Hm)
  act: Float32Array; // (N, Hm)
}

export interface Tape {
  B: number;
  T: number;
  tokens: Int32Array;
  targets: Int32Array;
  layers: LayerTape[];
  xf: Float32Array; // (N, C) final block output
  hf: Float32Array; // (N, C) after final norm
  rstdf: Float32Array; // (N)
  logits: Float32Array; // (N, V)
  lse: Float32Array; // (N)
}

export interface ForwardResult {
  /** (B, T) log-prob of the target at each position; 0 where the target is −1. */
  logp: Float32Array;
  logits?: Float32Array;
  tape?: Tape;
  kv?: { k: Float32Array; v: Float32Array }[];
}

/** y (rows, out) = x (rows, in) @ W^T, W (out, in) as stored by HF. */
function linear(kn: Kernels, x: Float32Array, w: Float32Array, rows: number, nIn: number, nOut: number): Promise<Float32Array> {
  return kn.matmul(x, w, rows, nIn, nOut, { transB: true });
}

function checkTokens(tokens: Int32Array, V: number, what: string): void {
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (!(t >= 0 && t < V)) throw new RangeError(`${what}[${i}] = ${t} is outside the vocabulary [0, ${V})`);
  }
}

export async function forward(model: LlamaModel, input: ForwardInput, opts: ForwardOptions = {}): Promise<ForwardResult> {
  const { config: c, params: p, kernels: kn } = model;
  const { B, T, tokens } = input;
  const N = B * T;
  const C = c.dim;
  if (tokens.length !== N) throw new Error(`forward: tokens has ${tokens.length} ids, expected B·T = ${B}·${T}`);
  if (T > c.maxSeqLen) throw new Error(`forward: sequence length ${T} exceeds maxSeqLen ${c.maxSeqLen}`);
  checkTokens(tokens, c.vocabSize, "tokens");
  const targets = input.targets ?? new Int32Array(N).fill(-1);
  if (targets.length !== N) throw new Error(`forward: targets has ${targets.length} ids, expected ${N}`);
  for (let i = 0; i < N; i++) {
    if (targets[i] >= c.vocabSize || targets[i] < -1) throw new RangeError(`targets[${i}] = ${targets[i]} is outside [−1, ${c.vocabSize})`);
  }

  // x (N, C) = embed[tokens]
  let x: Float32Array = new Float32Array(N * C);
  embeddingForward(p.embed, tokens, N, C, x);

  const tapes: LayerTape[] = [];
  const kvs: { k: Float32Array; v: Float32Array }[] = [];
  for (const lp of p.layers) {
    const r = await blockForward(model, lp, x, B, T, !!opts.train);
    if (opts.train) tapes.push(r.tape as LayerTape);
    if (opts.captureKv) kvs.push({ k: r.k, v: r.v });
    x = r.out;
  }

  // Final norm and head.
  const hf = new Float32Array(N * C);
  const rstdf = new Float32Array(N);
  rmsnormForward(x, p.norm, N, C, c.normEps, hf, rstdf);
  const V = c.vocabSize;

  if (opts.logitRows) {
    const R = opts.logitRows.length;
    const rows = new Float32Array(R * C);
    for (let i = 0; i < R; i++) rows.set(hf.subarray(opts.logitRows[i] * C, opts.logitRows[i] * C + C), i * C);
    const logits = await linear(kn, rows, p.lmHead, R, C, V);
    return { logp: new Float32Array(N), logits, kv: opts.captureKv ? kvs : undefined };
  }

  const logits = await linear(kn, hf, p.lmHead, N, C, V); // (N, V)
  const logp = new Float32Array(N);
  const lse = new Float32Array(N);
  logSoftmaxGather(logits, targets, N, V, logp, lse);
  const result: ForwardResult = { logp };
  if (opts.returnLogits) result.logits = logits;
  if (opts.captureKv) result.kv = kvs;
  if (opts.train) result.tape = { B, T, tokens, targets, layers: tapes, xf: x, hf, rstdf, logits, lse };
  return result;
}

async function blockForward(
  model: LlamaModel,
  lp: LayerParams,
  x: Float32Array, // (N, C)
  B: number,
  T: number,
  keep: boolean,
): Promise<{ out: Float32Array; tape?: LayerTape; k: Float32Array; v: Float32Array }> {
  const { config: c, kernels: kn, rope } = model;
  const N = B * T;
  const C = c.dim;
  const H = c.nHeads;
  const KV = c.nKvHeads;
  const G = H / KV;
  const hd = c.headDim;
  const Hm = c.hiddenDim;

  // --- attention ---
  const h1 = new Float32Array(N * C);
  const rstd1 = new Float32Array(N);
  rmsnormForward(x, lp.inputNorm, N, C, c.normEps, h1, rstd1);
  const qf = await linear(kn, h1, lp.wq, N, C, H * hd); // (N, H·hd)
  const kf = await linear(kn, h1, lp.wk, N, C, KV * hd); // (N, KV·hd)
  const vf = await linear(kn, h1, lp.wv, N, C, KV * hd); // (N, KV·hd)
  if (lp.bq) addBias(qf, lp.bq, N, H * hd);
  if (lp.bk) addBias(kf, lp.bk, N, KV * hd);
  if (lp.bv) addBias(vf, lp.bv, N, KV * hd);

  // Rotate and regroup: q → (B·KV, G·T, hd) with row g·T + t for head h = kv·G + g; k, v → (B·KV, T, hd).
  const q = new Float32Array(N * H * hd);
  const k = new Float32Array(N * KV * hd);
  const v = new Float32Array(N * KV * hd);
  toGrouped(qf, q, B, T, H, G, hd, rope);
  toGrouped(kf, k, B, T, KV, 1, hd, rope);
  toGrouped(vf, v, B, T, KV, 1, hd);

  // p (B·KV, G·T, T) = causal softmax(q k^T / sqrt(hd)); o (B·KV, G·T, hd) = p v
  const { p: pr, o } = await kn.attention(q, k, v, B * KV, G, T, hd, 1 / Math.sqrt(hd));
  // back to (N, H·hd)
  const attn = new Float32Array(N * H * hd);
  fromGrouped(o, attn, B, T, H, G, hd);
  const y = await linear(kn, attn, lp.wo, N, H * hd, C); // (N, C)
  const x2 = y; // (N, C) residual, in place
  addTo(x2, x, y);

  // --- MLP ---
  const h2 = new Float32Array(N * C);
  const rstd2 = new Float32Array(N);
  rmsnormForward(x2, lp.postNorm, N, C, c.normEps, h2, rstd2);
  const { gate, up, act, out: m } = await kn.mlpForward(h2, lp.wGate, lp.wUp, lp.wDown, N, C, Hm); // m (N, C)
  addTo(m, m, x2);

  const tape = keep ? { x, h1, rstd1, q, k, v, p: pr, attn, x2, h2, rstd2, gate, up, act } : undefined;
  return { out: m, tape, k, v };
}

/**
 * Backward from dlogp (B, T) = d(loss)/d(logp) to every parameter. Gradients are ADDED into
 * `grads` (same layout as the params; use `zerosLike`), so micro-batches accumulate. With tied
 * embeddings grads.lmHead and grads.embed are the same array and both contributions land there.
 */
export async function backward(model: LlamaModel, tape: Tape, dlogp: Float32Array, grads: LlamaParams): Promise<void> {
  const { config: c, params: p, kernels: kn } = model;
  const { B, T } = tape;
  const N = B * T;
  const C = c.dim;
  const V = c.vocabSize;
  if (dlogp.length !== N) throw new Error(`backward: dlogp has ${dlogp.length} entries, expected ${N}`);

  const dlogits = new Float32Array(N * V);
  logSoftmaxGatherBackward(dlogp, tape.logits, tape.lse, tape.targets, N, V, dlogits);
  // dW_head (V, C) = dlogits^T @ hf ; dhf (N, C) = dlogits @ W_head
  const dHead = await kn.matmul(dlogits, tape.hf, V, N, C, { transA: true });
  const dhf = await kn.matmul(dlogits, p.lmHead, N, V, C);
  addInto(grads.lmHead, dHead);
  let dx: Float32Array = new Float32Array(N * C);
  rmsnormBackward(dhf, tape.xf, p.norm, tape.rstdf, N, C, dx, grads.norm);

  for (let l = c.nLayers - 1; l >= 0; l--) {
    dx = await blockBackward(model, p.layers[l], tape.layers[l], grads.layers[l], dx, B, T);
  }

  // embedding: scatter-add rows
  embeddingBackward(dx, tape.tokens, N, C, grads.embed);
}

async function blockBackward(
  model: LlamaModel,
  lp: LayerParams,
  tp: LayerTape,
  g: LayerParams,
  dout: Float32Array, // (N, C) gradient on the block output
  B: number,
  T: number,
): Promise<Float32Array> {
  const { config: c, kernels: kn, rope } = model;
  const N = B * T;
  const C = c.dim;
  const H = c.nHeads;
  const KV = c.nKvHeads;
  const G = H / KV;
  const hd = c.headDim;
  const Hm = c.hiddenDim;

  // --- MLP: out = x2 + down(silu(gate)·up) ---
  const mg = await kn.mlpBackward(dout, tp.h2, tp, lp.wGate, lp.wUp, lp.wDown, N, C, Hm);
  addInto(g.wGate, mg.dWGate);
  addInto(g.wUp, mg.dWUp);
  addInto(g.wDown, mg.dWDown);
  const dx2 = dout; // residual path: accumulate the norm's gradient into dout in place
  rmsnormBackward(mg.dh, tp.x2, lp.postNorm, tp.rstd2, N, C, dx2, g.postNorm);

  // --- attention: x2 = x + o_proj(attn) ---
  const dWo = await kn.matmul(dx2, tp.attn, C, N, H * hd, { transA: true }); // (C, H·hd)
  const dattn = await kn.matmul(dx2, lp.wo, N, C, H * hd); // (N, H·hd)
  addInto(g.wo, dWo);
  // dO in the grouped layout (B·KV, G·T, hd)
  const dO = new Float32Array(N * H * hd);
  toGrouped(dattn, dO, B, T, H, G, hd);
  const { dq: dQ, dk: dK, dv: dV } = await kn.attentionBackward(dO, tp.q, tp.k, tp.v, tp.p, B * KV, G, T, hd, 1 / Math.sqrt(hd));
  // Un-rotate and ungroup to (N, H·hd) and (N, KV·hd).
  const dq = new Float32Array(N * H * hd);
  const dk = new Float32Array(N * KV * hd);
  const dv = new Float32Array(N * KV * hd);
  fromGrouped(dQ, dq, B, T, H, G, hd, rope, -1);
  fromGrouped(dK, dk, B, T, KV, 1, hd, rope, -1);
  fromGrouped(dV, dv, B, T, KV, 1, hd);
  if (g.bq) biasBackward(dq, N, H * hd, g.bq);
  if (g.bk) biasBackward(dk, N, KV * hd, g.bk);
  if (g.bv) biasBackward(dv, N, KV * hd, g.bv);

  const dWq = await kn.matmul(dq, tp.h1, H * hd, N, C, { transA: true });
  const dWk = await kn.matmul(dk, tp.h1, KV * hd, N, C, { transA: true });
  const dWv = await kn.matmul(dv, tp.h1, KV * hd, N, C, { transA: true });
  const dh1q = await kn.matmul(dq, lp.wq, N, H * hd, C);
  const dh1k = await kn.matmul(dk, lp.wk, N, KV * hd, C);
  const dh1v = await kn.matmul(dv, lp.wv, N, KV * hd, C);
  addInto(g.wq, dWq);
  addInto(g.wk, dWk);
  addInto(g.wv, dWv);
  addInto(dh1q, dh1k);
  addInto(dh1q, dh1v);
  const dx = dx2; // residual: dx = dx2 + norm backward
  rmsnormBackward(dh1q, tp.x, lp.inputNorm, tp.rstd1, N, C, dx, g.inputNorm);
  return dx;
}

/**
 * Convenience for causal LM: per-sequence sum of next-token log-probs over a mask.
 * tokens (B, T); `lossMask` (B, T) 1 where position t's NEXT token (t+1) counts. Returns targets for forward.
 */
export function nextTokenTargets(tokens: Int32Array, B: number, T: number, lossMask?: Uint8Array): Int32Array {
  const targets = new Int32Array(B * T).fill(-1);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t + 1 < T; t++) {
      const i = b * T + t;
      if (!lossMask || lossMask[i]) targets[i] = tokens[i + 1];
    }
  }
  return targets;
}
