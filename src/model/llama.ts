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
 * Each block runs as two block kernels (attention half, MLP half): one onnxruntime graph call each
 * with OrtKernels, or the TypeScript composition in blocks.ts — the block written out, with shapes.
 */
import type { AttnBlockOut, BlockDims, Kernels, MlpBlockOut } from "../engine/kernels.js";
import {
  addInto,
  embeddingBackward,
  embeddingForward,
  logSoftmaxGather,
  logSoftmaxGatherBackward,
  rmsnormBackward,
  rmsnormForward,
  ropeTables,
} from "../engine/ops.js";
import { composedBlocks } from "./blocks.js";
import type { LlamaConfig } from "./config.js";
import { type LayerParams, type LlamaParams, toNamed } from "./params.js";

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
  x2: Float32Array; // (N, C) after the attention residual
  attn: AttnBlockOut; // saved by the attention half
  mlp: MlpBlockOut; // saved by the MLP half
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

function checkTargets(targets: Int32Array, V: number): void {
  for (let i = 0; i < targets.length; i++) {
    const t = targets[i];
    if (!(t >= -1 && t < V)) throw new RangeError(`targets[${i}] = ${t} is outside [−1, ${V})`);
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
  checkTargets(targets, c.vocabSize);

  // x (N, C) = embed[tokens]
  let x: Float32Array = new Float32Array(N * C);
  embeddingForward(p.embed, tokens, N, C, x);

  const tapes: LayerTape[] = [];
  const kvs: { k: Float32Array; v: Float32Array }[] = [];
  const blocks = kn.blocks ?? composedBlocks(kn);
  const d = dims(model, B, T);
  for (const lp of p.layers) {
    const keep = !!opts.train;
    const attn = await blocks.attnForward(x, lp, d, keep); // attn.out = x2 (N, C)
    const mlp = await blocks.mlpForward(attn.out, lp, d, keep); // mlp.out (N, C)
    if (opts.train) tapes.push({ x, x2: attn.out, attn, mlp });
    if (opts.captureKv) kvs.push({ k: attn.k, v: attn.v });
    x = mlp.out;
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

function dims(model: LlamaModel, B: number, T: number): BlockDims {
  const c = model.config;
  return { B, T, C: c.dim, H: c.nHeads, KV: c.nKvHeads, hd: c.headDim, Hm: c.hiddenDim, eps: c.normEps, rope: model.rope };
}

/**
 * Backward from dlogp (B, T) = d(loss)/d(logp) to every parameter. Without `into`, returns fresh
 * gradients in the params' layout (built from the kernels' outputs: no zero-filling, no adds). With
 * `into` (e.g. from `zerosLike`), ADDS the gradients there and returns it, so micro-batches
 * accumulate. With tied embeddings `lmHead` and `embed` are one array holding both contributions.
 */
export async function backward(model: LlamaModel, tape: Tape, dlogp: Float32Array, into?: LlamaParams): Promise<LlamaParams> {
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
  const dNormF = new Float32Array(C);
  let dx: Float32Array = new Float32Array(N * C);
  rmsnormBackward(dhf, tape.xf, p.norm, tape.rstdf, N, C, dx, dNormF);

  const blocks = kn.blocks ?? composedBlocks(kn);
  const d = dims(model, B, T);
  const layers: LayerParams[] = new Array(c.nLayers);
  for (let l = c.nLayers - 1; l >= 0; l--) {
    const lp = p.layers[l];
    const tp = tape.layers[l];
    const mg = await blocks.mlpBackward(dx, tp.x2, tp.mlp, lp, d);
    const ag = await blocks.attnBackward(mg.dx, tp.x, tp.attn, lp, d);
    layers[l] = {
      inputNorm: ag.dNorm,
      wq: ag.dWq,
      wk: ag.dWk,
      wv: ag.dWv,
      wo: ag.dWo,
      postNorm: mg.dNorm,
      wGate: mg.dWGate,
      wUp: mg.dWUp,
      wDown: mg.dWDown,
      ...(c.qkvBias ? { bq: ag.dbq, bk: ag.dbk, bv: ag.dbv } : {}),
    };
    dx = ag.dx;
  }

  // embedding: scatter-add rows; a tied head adds its gradient to the same matrix
  const dEmbed = c.tieEmbeddings ? dHead : new Float32Array(V * C);
  embeddingBackward(dx, tape.tokens, N, C, dEmbed);
  const grads: LlamaParams = { embed: dEmbed, layers, norm: dNormF, lmHead: c.tieEmbeddings ? dEmbed : dHead };
  if (!into) return grads;
  addGrads(c, into, grads);
  return into;
}

/** into += g, tensor by tensor (tied embeddings added once). */
export function addGrads(c: LlamaConfig, into: LlamaParams, g: LlamaParams): void {
  const src = toNamed(c, g);
  for (const [i, t] of toNamed(c, into).entries()) addInto(t.data, src[i].data);
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
