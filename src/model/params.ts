import { mulberry32, randn } from "../engine/tensor.js";
import type { LlamaConfig } from "./config.js";

/** One transformer block's weights. Linear weights are (out, in) as in PyTorch/HF: y = x W^T (+ b). */
export interface LayerParams {
  inputNorm: Float32Array; // (C)            model.layers.{i}.input_layernorm.weight
  wq: Float32Array; // (H*hd, C)            self_attn.q_proj.weight
  wk: Float32Array; // (KV*hd, C)           self_attn.k_proj.weight
  wv: Float32Array; // (KV*hd, C)           self_attn.v_proj.weight
  wo: Float32Array; // (C, H*hd)            self_attn.o_proj.weight
  bq?: Float32Array; // (H*hd)             self_attn.q_proj.bias (Qwen2)
  bk?: Float32Array; // (KV*hd)            self_attn.k_proj.bias
  bv?: Float32Array; // (KV*hd)            self_attn.v_proj.bias
  postNorm: Float32Array; // (C)            post_attention_layernorm.weight
  wGate: Float32Array; // (Hm, C)           mlp.gate_proj.weight
  wUp: Float32Array; // (Hm, C)             mlp.up_proj.weight
  wDown: Float32Array; // (C, Hm)           mlp.down_proj.weight
}

export interface LlamaParams {
  embed: Float32Array; // (V, C)  model.embed_tokens.weight
  layers: LayerParams[];
  norm: Float32Array; // (C)      model.norm.weight
  /** (V, C) lm_head.weight; the same array as `embed` when embeddings are tied. */
  lmHead: Float32Array;
}

export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

const layerFields: [keyof LayerParams, string][] = [
  ["inputNorm", "input_layernorm.weight"],
  ["wq", "self_attn.q_proj.weight"],
  ["bq", "self_attn.q_proj.bias"],
  ["wk", "self_attn.k_proj.weight"],
  ["bk", "self_attn.k_proj.bias"],
  ["wv", "self_attn.v_proj.weight"],
  ["bv", "self_attn.v_proj.bias"],
  ["wo", "self_attn.o_proj.weight"],
  ["postNorm", "post_attention_layernorm.weight"],
  ["wGate", "mlp.gate_proj.weight"],
  ["wUp", "mlp.up_proj.weight"],
  ["wDown", "mlp.down_proj.weight"],
];

/** Every parameter under its Hugging Face name with its shape, in a stable order.
 * With tied embeddings `lm_head.weight` is omitted (HF omits it too). */
export function paramSpecs(c: LlamaConfig): { name: string; shape: number[] }[] {
  const q = c.nHeads * c.headDim;
  const kv = c.nKvHeads * c.headDim;
  const shapes: Record<string, number[]> = {
    "input_layernorm.weight": [c.dim],
    "self_attn.q_proj.weight": [q, c.dim],
    "self_attn.q_proj.bias": [q],
    "self_attn.k_proj.weight": [kv, c.dim],
    "self_attn.k_proj.bias": [kv],
    "self_attn.v_proj.weight": [kv, c.dim],
    "self_attn.v_proj.bias": [kv],
    "self_attn.o_proj.weight": [c.dim, q],
    "post_attention_layernorm.weight": [c.dim],
    "mlp.gate_proj.weight": [c.hiddenDim, c.dim],
    "mlp.up_proj.weight": [c.hiddenDim, c.dim],
    "mlp.down_proj.weight": [c.dim, c.hiddenDim],
  };
  const out = [{ name: "model.embed_tokens.weight", shape: [c.vocabSize, c.dim] }];
  for (let i = 0; i < c.nLayers; i++) {
    for (const [field, suffix] of layerFields) {
      if (!c.qkvBias && (field === "bq" || field === "bk" || field === "bv")) continue;
      out.push({ name: `model.layers.${i}.${suffix}`, shape: shapes[suffix] });
    }
  }
  out.push({ name: "model.norm.weight", shape: [c.dim] });
  if (!c.tieEmbeddings) out.push({ name: "lm_head.weight", shape: [c.vocabSize, c.dim] });
  return out;
}

/** Flatten to HF-named tensors (shares memory with `p`). */
export function toNamed(c: LlamaConfig, p: LlamaParams): NamedTensor[] {
  const byName = new Map<string, Float32Array>();
  byName.set("model.embed_tokens.weight", p.embed);
  p.layers.forEach((l, i) => {
    for (const [field, suffix] of layerFields) {
      const t = l[field];
      if (t) byName.set(`model.layers.${i}.${suffix}`, t);
    }
  });
  byName.set("model.norm.weight", p.norm);
  byName.set("lm_head.weight", p.lmHead);
  return paramSpecs(c).map((s) => ({ ...s, data: byName.get(s.name) as Float32Array }));
}

/**
 * Build params from HF-named tensors (shares memory). Errors name the missing tensor or the
 * mismatched shape; `source` names the file. With tied embeddings a present `lm_head.weight` is ignored.
 */
export function fromNamed(
  c: LlamaConfig,
  tensors: Map<string, { shape: number[]; data: Float32Array }>,
  source = "checkpoint",
): LlamaParams {
  const get = (name: string, shape: number[]): Float32Array => {
    const t = tensors.get(name);
    if (!t) throw new Error(`${source}: tensor "${name}" is missing`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new Error(`${source}: tensor "${name}" has shape [${t.shape.join(", ")}], the config needs [${shape.join(", ")}]`);
    }
    return t.data;
  };
  const specs = new Map(paramSpecs(c).map((s) => [s.name, s.shape]));
  const embed = get("model.embed_tokens.weight", specs.get("model.embed_tokens.weight") as number[]);
  const layers: LayerParams[] = [];
  for (let i = 0; i < c.nLayers; i++) {
    const l: Partial<LayerParams> = {};
    for (const [field, suffix] of layerFields) {
      const name = `model.layers.${i}.${suffix}`;
      const shape = specs.get(name);
      if (shape) l[field] = get(name, shape);
    }
    layers.push(l as LayerParams);
  }
  const norm = get("model.norm.weight", [c.dim]);
  const lmHead = c.tieEmbeddings ? embed : get("lm_head.weight", [c.vocabSize, c.dim]);
  return { embed, layers, norm, lmHead };
}

/** Zero-filled params of the same layout (for gradients and optimizer state). Tied → shared lmHead. */
export function zerosLike(c: LlamaConfig): LlamaParams {
  const named = new Map(paramSpecs(c).map((s) => [s.name, { shape: s.shape, data: new Float32Array(s.shape.reduce((a, b) => a * b, 1)) }]));
  return fromNamed(c, named);
}

/**
 * Random initialisation as in GPT-2/nanoGPT: N(0, 0.02) for matrices, with the residual output
 * projections (o_proj, down_proj) scaled by 1/sqrt(2·layers) so the residual stream does not grow
 * with depth; norms start at 1; biases at 0.
 */
export function initParams(c: LlamaConfig, seed = 0): LlamaParams {
  const rng = mulberry32(seed);
  const p = zerosLike(c);
  const std = 0.02;
  const resid = std / Math.sqrt(2 * c.nLayers);
  p.embed.set(randn(rng, p.embed.length, std));
  for (const l of p.layers) {
    l.inputNorm.fill(1);
    l.postNorm.fill(1);
    l.wq.set(randn(rng, l.wq.length, std));
    l.wk.set(randn(rng, l.wk.length, std));
    l.wv.set(randn(rng, l.wv.length, std));
    l.wo.set(randn(rng, l.wo.length, resid));
    l.wGate.set(randn(rng, l.wGate.length, std));
    l.wUp.set(randn(rng, l.wUp.length, std));
    l.wDown.set(randn(rng, l.wDown.length, resid));
  }
  p.norm.fill(1);
  if (!c.tieEmbeddings) p.lmHead.set(randn(rng, p.lmHead.length, std));
  return p;
}
