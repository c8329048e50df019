// Shared by the tests that run exported models in llama.cpp (node-llama-cpp).
import { mulberry32, randn } from "../src/engine/tensor.js";
import { type LlamaConfig, type LlamaConfigInput, llamaConfig } from "../src/model/config.js";
import { initParams, type LlamaParams } from "../src/model/params.js";
import { sandboxTokenizer } from "../src/sandbox/forms.js";

/** Why the llama.cpp tests skip, or false when node-llama-cpp is installed (it is after npm ci). */
export const llamaCppMissing: string | false = await import("node-llama-cpp").then(
  () => false,
  (e: Error) => `node-llama-cpp is not installed (${e.message.split("\n")[0]}); npm ci installs it, see the README's install notes`,
);

export const tok = sandboxTokenizer();

/** The layouts the export supports, on sandbox-sized random models. */
export const LAYOUTS: Record<string, Partial<LlamaConfigInput>> = {
  "GQA (4 heads, 2 kv heads), separate lm_head": { nHeads: 4, nKvHeads: 2 },
  "tied embeddings, MHA": { nHeads: 4, nKvHeads: 4, tieEmbeddings: true },
  "MQA, q/k/v bias, head dim 24 ≠ dim/heads": { nHeads: 4, nKvHeads: 1, headDim: 24, qkvBias: true },
};

/**
 * A random model whose next-token distributions are far from uniform (initParams' N(0, 0.02) gives
 * near-uniform logits, which would hide most errors): embeddings and head scaled up so logits spread
 * over ~15 nats, matrices scaled so attention is not uniform, random norm weights and biases, and a
 * RoPE base and epsilon other than the defaults so that the metadata must carry them.
 */
export function spreadModel(layout: Partial<LlamaConfigInput>, seed: number): { config: LlamaConfig; params: LlamaParams } {
  const config = llamaConfig({
    vocabSize: tok.vocabSize,
    dim: 64,
    nLayers: 2,
    hiddenDim: 96,
    maxSeqLen: 256,
    ropeTheta: 5000,
    normEps: 1e-6,
    ...layout,
  });
  const params = initParams(config, seed);
  const rng = mulberry32(seed + 100);
  const scale = (a: Float32Array, s: number) => {
    for (let i = 0; i < a.length; i++) a[i] *= s;
  };
  scale(params.embed, 15);
  if (!config.tieEmbeddings) scale(params.lmHead, 15);
  for (const l of params.layers) {
    for (const w of [l.wq, l.wk, l.wv, l.wo, l.wGate, l.wUp, l.wDown]) scale(w, 6);
    for (const g of [l.inputNorm, l.postNorm]) g.set(randn(rng, g.length, 0.2).map((x) => 1 + x));
    for (const b of [l.bq, l.bk, l.bv]) b?.set(randn(rng, b.length, 0.5));
  }
  return { config, params };
}

/** Row-wise log-softmax of (T, V) logits. */
export function logSoftmaxRows(logits: Float32Array, V: number): Float32Array {
  const out = new Float32Array(logits.length);
  for (let off = 0; off < logits.length; off += V) {
    let mx = Number.NEGATIVE_INFINITY;
    for (let v = 0; v < V; v++) mx = Math.max(mx, logits[off + v]);
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(logits[off + v] - mx);
    const lse = mx + Math.log(s);
    for (let v = 0; v < V; v++) out[off + v] = logits[off + v] - lse;
  }
  return out;
}

/** Largest |a − b| and where (flat index). */
export function maxAbsDiff(a: Float32Array, b: Float32Array): { diff: number; at: number } {
  let diff = 0;
  let at = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= diff)) {
      diff = d;
      at = i;
    }
  }
  return { diff, at };
}
