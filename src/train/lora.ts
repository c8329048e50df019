/**
 * LoRA (Hu et al. 2021) over a frozen base model: each targeted Linear with HF weight W (out, in)
 * computes
 *
 *   y = x Wᵀ + s · dropout(x) Aᵀ Bᵀ,    A (r, in), B (out, r), s = alpha / r,
 *
 * with A ~ U(−1/√in, 1/√in) (PEFT's kaiming_uniform(a = √5)) and B = 0, so a fresh adapter is a
 * no-op. Only A and B train. Tensors carry PEFT's names, so `io/peft.ts` writes a folder that
 * `PeftModel.from_pretrained` loads (and reads one PEFT wrote).
 *
 * `loraTrainable` runs the base model through block kernels that know about the adapter:
 *
 * - The model's params are the MERGED weights W + s·B·A (targeted tensors are copies, refreshed by
 *   `afterUpdate`; everything else is shared with the base). Inference, the KV-cache decoder in
 *   generate.ts (which reads `model.params` directly) and training without dropout all run the
 *   ordinary block kernels on them. The backward runs the ordinary block backward and turns each
 *   targeted dW (out, in) into dA = s·Bᵀ dW and dB = s·dW Aᵀ.
 * - With dropout > 0, a training forward (keep = true) takes a LoRA-aware composed path instead
 *   (the block of blocks.ts with every targeted linear split into its base and adapter paths, and
 *   the MLP as separate gate/up/down products), with dropout masks drawn from a PRNG seeded by
 *   `beginMicroBatch`, so a resumed run replays the same masks.
 */
import type {
  AttnBlockGrads,
  AttnBlockOut,
  AttnWeights,
  BlockDims,
  BlockKernels,
  Kernels,
  MlpBlockGrads,
  MlpBlockOut,
  MlpWeights,
} from "../engine/kernels.js";
import { savedOf } from "../engine/kernels.js";
import {
  addBias,
  addInto,
  addTo,
  fromGrouped,
  rmsnormBackward,
  rmsnormForward,
  swigluBackward,
  swigluForward,
  toGrouped,
} from "../engine/ops.js";
import { mulberry32 } from "../engine/tensor.js";
import { composedBlocks } from "../model/blocks.js";
import type { LlamaConfig } from "../model/config.js";
import { backward, createModel, type LlamaModel } from "../model/llama.js";
import type { LayerParams, LlamaParams, NamedTensor } from "../model/params.js";
import type { Trainable } from "./trainable.js";

export type LoraTarget = "q_proj" | "k_proj" | "v_proj" | "o_proj" | "gate_proj" | "up_proj" | "down_proj";

/** Every Linear of a Llama block, in module order (PEFT's "all-linear" for Llama). */
export const loraTargets: readonly LoraTarget[] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

export interface LoraConfig {
  /** Rank r (default 8). */
  r: number;
  /** lora_alpha (default 16); the adapter path is scaled by s = alpha / r. */
  alpha: number;
  /** lora_dropout on the adapter path's input while training, in [0, 1) (default 0). */
  dropout: number;
  /** Which Linear layers get an adapter (default all seven). */
  targetModules: LoraTarget[];
}

export const defaultLora: LoraConfig = { r: 8, alpha: 16, dropout: 0, targetModules: [...loraTargets] };

/** One adapted Linear: A (r, in), B (out, r), row-major. */
export interface LoraPair {
  A: Float32Array;
  B: Float32Array;
}

export interface LoraAdapter {
  config: LoraConfig;
  /** Per layer, the adapted Linears (exactly config.targetModules). */
  layers: Array<Partial<Record<LoraTarget, LoraPair>>>;
}

/** Where each target sits: its LayerParams field and its module path inside a decoder layer. */
const targetInfo: Record<LoraTarget, { field: keyof LayerParams; module: string }> = {
  q_proj: { field: "wq", module: "self_attn.q_proj" },
  k_proj: { field: "wk", module: "self_attn.k_proj" },
  v_proj: { field: "wv", module: "self_attn.v_proj" },
  o_proj: { field: "wo", module: "self_attn.o_proj" },
  gate_proj: { field: "wGate", module: "mlp.gate_proj" },
  up_proj: { field: "wUp", module: "mlp.up_proj" },
  down_proj: { field: "wDown", module: "mlp.down_proj" },
};

/** (in, out) of a target's Linear in this model. */
export function loraDims(model: LlamaConfig, t: LoraTarget): { nIn: number; nOut: number } {
  const C = model.dim;
  const q = model.nHeads * model.headDim;
  const kv = model.nKvHeads * model.headDim;
  const Hm = model.hiddenDim;
  switch (t) {
    case "q_proj":
      return { nIn: C, nOut: q };
    case "k_proj":
    case "v_proj":
      return { nIn: C, nOut: kv };
    case "o_proj":
      return { nIn: q, nOut: C };
    case "gate_proj":
    case "up_proj":
      return { nIn: C, nOut: Hm };
    case "down_proj":
      return { nIn: Hm, nOut: C };
  }
}

/** PEFT's tensor name, e.g. "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight". */
export function loraTensorName(layer: number, t: LoraTarget, which: "A" | "B"): string {
  return `base_model.model.model.layers.${layer}.${targetInfo[t].module}.lora_${which}.weight`;
}

/** The adapter path's scale s = alpha / r. */
export function loraScale(cfg: LoraConfig): number {
  return cfg.alpha / cfg.r;
}

/** Validate a LoraConfig; a RangeError names the offending field. */
export function checkLoraConfig(cfg: LoraConfig): void {
  if (!Number.isSafeInteger(cfg.r) || cfg.r < 1) throw new RangeError(`LoraConfig.r must be a positive integer, got ${cfg.r}`);
  if (typeof cfg.alpha !== "number" || !Number.isFinite(cfg.alpha) || cfg.alpha <= 0) {
    throw new RangeError(`LoraConfig.alpha must be a finite number > 0, got ${cfg.alpha}`);
  }
  if (typeof cfg.dropout !== "number" || !(cfg.dropout >= 0 && cfg.dropout < 1)) {
    throw new RangeError(`LoraConfig.dropout must be in [0, 1), got ${cfg.dropout}`);
  }
  if (!Array.isArray(cfg.targetModules) || cfg.targetModules.length === 0) {
    throw new RangeError("LoraConfig.targetModules must be a non-empty list");
  }
  const seen = new Set<string>();
  for (const t of cfg.targetModules) {
    if (!loraTargets.includes(t)) {
      throw new RangeError(`LoraConfig.targetModules: unknown target module ${JSON.stringify(t)} (known: ${loraTargets.join(", ")})`);
    }
    if (seen.has(t)) throw new RangeError(`LoraConfig.targetModules: ${t} is listed twice`);
    seen.add(t);
  }
}

/** The config's targets in module order. */
function orderedTargets(cfg: LoraConfig): LoraTarget[] {
  return loraTargets.filter((t) => cfg.targetModules.includes(t));
}

/** A fresh adapter: A ~ U(−1/√in, 1/√in), B = 0 (a no-op until trained). */
export function initLora(model: LlamaConfig, cfg: LoraConfig, seed = 0): LoraAdapter {
  checkLoraConfig(cfg);
  const rng = mulberry32(seed);
  const targets = orderedTargets(cfg);
  const layers: LoraAdapter["layers"] = [];
  for (let l = 0; l < model.nLayers; l++) {
    const layer: Partial<Record<LoraTarget, LoraPair>> = {};
    for (const t of targets) {
      const { nIn, nOut } = loraDims(model, t);
      const bound = 1 / Math.sqrt(nIn);
      const A = new Float32Array(cfg.r * nIn);
      for (let i = 0; i < A.length; i++) A[i] = (2 * rng() - 1) * bound;
      layer[t] = { A, B: new Float32Array(nOut * cfg.r) };
    }
    layers.push(layer);
  }
  return { config: { ...cfg, targetModules: targets }, layers };
}

/**
 * The adapter's tensors under PEFT's names, layer by layer, targets in module order, lora_A before
 * lora_B: A [r, in], B [out, r]. Shares memory with the adapter. Throws if the adapter does not fit.
 */
export function loraTensors(model: LlamaConfig, a: LoraAdapter): NamedTensor[] {
  checkLoraConfig(a.config);
  const { r } = a.config;
  if (a.layers.length !== model.nLayers) {
    throw new RangeError(`LoRA adapter has ${a.layers.length} layers, the model has ${model.nLayers}`);
  }
  const targets = orderedTargets(a.config);
  const out: NamedTensor[] = [];
  a.layers.forEach((layer, l) => {
    for (const key of Object.keys(layer)) {
      if (!targets.includes(key as LoraTarget)) {
        throw new RangeError(`LoRA adapter layer ${l} has an adapter on ${key}, which is not in config.targetModules`);
      }
    }
    for (const t of targets) {
      const p = layer[t];
      if (!p) throw new RangeError(`LoRA adapter layer ${l} has no ${t} adapter`);
      const { nIn, nOut } = loraDims(model, t);
      const check = (which: "A" | "B", data: Float32Array, shape: number[]) => {
        const name = loraTensorName(l, t, which);
        if (!(data instanceof Float32Array) || data.length !== shape[0] * shape[1]) {
          throw new RangeError(`LoRA tensor ${name}: ${data?.length} elements, shape [${shape.join(", ")}] needs ${shape[0] * shape[1]}`);
        }
        out.push({ name, shape, data });
      };
      check("A", p.A, [r, nIn]);
      check("B", p.B, [nOut, r]);
    }
  });
  return out;
}

/**
 * dst (out, in) = W + s · B A, B (out, r), A (r, in), in plain TypeScript for the synchronous
 * `mergeLora`; the trainable's `afterUpdate` does the product on the kernels instead.
 */
function mergeInto(dst: Float32Array, W: Float32Array, p: LoraPair, s: number, nOut: number, nIn: number, r: number): void {
  dst.set(W);
  const { A, B } = p;
  let o = 0;
  // Four output rows at a time share each read of a row of A (about twice as fast as one row).
  for (; o + 4 <= nOut; o += 4) {
    const r0 = o * nIn;
    const r1 = r0 + nIn;
    const r2 = r1 + nIn;
    const r3 = r2 + nIn;
    for (let k = 0; k < r; k++) {
      const b0 = s * B[o * r + k];
      const b1 = s * B[(o + 1) * r + k];
      const b2 = s * B[(o + 2) * r + k];
      const b3 = s * B[(o + 3) * r + k];
      if (b0 === 0 && b1 === 0 && b2 === 0 && b3 === 0) continue;
      const ao = k * nIn;
      for (let i = 0; i < nIn; i++) {
        const a = A[ao + i];
        dst[r0 + i] += b0 * a;
        dst[r1 + i] += b1 * a;
        dst[r2 + i] += b2 * a;
        dst[r3 + i] += b3 * a;
      }
    }
  }
  for (; o < nOut; o++) {
    const row = o * nIn;
    for (let k = 0; k < r; k++) {
      const b = s * B[o * r + k];
      if (b === 0) continue;
      const ao = k * nIn;
      for (let i = 0; i < nIn; i++) dst[row + i] += b * A[ao + i];
    }
  }
}

/** New params with W + s·B·A on the targets (fresh arrays); the base is untouched, other tensors are shared. */
export function mergeLora(model: LlamaConfig, base: LlamaParams, a: LoraAdapter): LlamaParams {
  loraTensors(model, a); // validates the adapter against the model
  const s = loraScale(a.config);
  const targets = orderedTargets(a.config);
  const layers = base.layers.map((lp, l) => {
    const merged: LayerParams = { ...lp };
    for (const t of targets) {
      const { nIn, nOut } = loraDims(model, t);
      const field = targetInfo[t].field;
      const W = lp[field] as Float32Array;
      const dst = new Float32Array(W.length);
      mergeInto(dst, W, a.layers[l][t] as LoraPair, s, nOut, nIn, a.config.r);
      merged[field] = dst;
    }
    return merged;
  });
  return { embed: base.embed, layers, norm: base.norm, lmHead: base.lmHead };
}

/** adapter_config.json for a LoRA config, with the fields PEFT writes (values fixed where srlm has no choice). */
export function peftAdapterConfig(cfg: LoraConfig, baseModel?: string): Record<string, unknown> {
  return {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: baseModel ?? null,
    bias: "none",
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: null,
    layers_to_transform: null,
    lora_alpha: cfg.alpha,
    lora_dropout: cfg.dropout,
    modules_to_save: null,
    peft_type: "LORA",
    r: cfg.r,
    rank_pattern: {},
    revision: null,
    target_modules: loraTargets.filter((t) => cfg.targetModules.includes(t)),
    task_type: "CAUSAL_LM",
    use_dora: false,
    use_rslora: false,
  };
}

// ---------------------------------------------------------------------------------------------
// The trainable
// ---------------------------------------------------------------------------------------------

/** Stands in for the frozen weights' gradients, which nothing reads (see loraTrainable). */
const NO_GRAD = new Float32Array(0);

type AttnTarget = "q_proj" | "k_proj" | "v_proj" | "o_proj";
type MlpTarget = "gate_proj" | "up_proj" | "down_proj";
const attnGradKey: Record<AttnTarget, "dWq" | "dWk" | "dWv" | "dWo"> = { q_proj: "dWq", k_proj: "dWk", v_proj: "dWv", o_proj: "dWo" };
const mlpGradKey: Record<MlpTarget, "dWGate" | "dWUp" | "dWDown"> = { gate_proj: "dWGate", up_proj: "dWUp", down_proj: "dWDown" };

/** What the dropout path's backward needs of one adapted linear (its input is saved by the block). */
interface AdapterSaved {
  mask: Uint8Array; // (N, in) 1 where the input element was kept
  z: Float32Array; // (N, r) dropout(x) Aᵀ
}
type LoraAttnOut = AttnBlockOut & { lora: Partial<Record<AttnTarget, AdapterSaved>> };
type LoraMlpOut = MlpBlockOut & { lora: Partial<Record<MlpTarget, AdapterSaved>> };

/** The dropout state of an adapted model: p, and the PRNG the masks come from. */
interface Dropout {
  p: number;
  rng: () => number;
}

/** Everything the LoRA block kernels need about one layer's adapters. */
interface LayerAdapters {
  pairs: Partial<Record<LoraTarget, LoraPair>>;
  grads: Partial<Record<LoraTarget, LoraPair>>;
}

/**
 * Train `a` over the frozen `base` (kind "lora"). `model` has the base's config and kernels with
 * LoRA-aware blocks; its params are the merged weights (see the file header), so anything that
 * runs `model` (forward, generate) sees the adapted model. `params`/`grads` are the adapter's
 * tensors in `loraTensors` order; the base's arrays are never written.
 *
 * Wasted work, accepted for simplicity: `backward` runs llama.ts's full backward, which also
 * computes the head, embedding and norm gradients, and (without dropout) the block kernels'
 * gradients of every frozen weight; they are discarded (the block wrapper hands the model empty
 * arrays for the weight matrices, so `backward(trainable.model, …)` returns no base gradients).
 */
export function loraTrainable(base: LlamaModel, a: LoraAdapter): Trainable {
  const c = base.config;
  const params = loraTensors(c, a); // validates
  const cfg = a.config;
  const s = loraScale(cfg);
  const targets = orderedTargets(cfg);
  const grads: NamedTensor[] = params.map((t) => ({ name: t.name, shape: t.shape, data: new Float32Array(t.data.length) }));
  const layerAdapters: LayerAdapters[] = a.layers.map((pairs) => ({ pairs, grads: {} }));
  let gi = 0;
  for (const la of layerAdapters) {
    for (const t of targets) {
      la.grads[t] = { A: grads[gi].data, B: grads[gi + 1].data };
      gi += 2;
    }
  }

  const baseParams = base.params;
  const merged = mergeLora(c, baseParams, a);
  const layerIndex = new Map<object, number>(merged.layers.map((lp, i) => [lp, i]));
  const layerOf = (w: AttnWeights | MlpWeights): number => {
    const i = layerIndex.get(w);
    if (i === undefined)
      throw new Error("LoRA blocks: weights that are not this model's layers were passed in (was model.params replaced?)");
    return i;
  };
  const drop: Dropout = { p: cfg.dropout, rng: mulberry32(0) };
  const kn = base.kernels;
  const inner = kn.blocks ?? composedBlocks(kn);
  const useDropout = (keep: boolean) => keep && drop.p > 0;
  const has = (l: number, ts: readonly LoraTarget[]) => ts.some((t) => layerAdapters[l].pairs[t]);
  const attnTargets: AttnTarget[] = ["q_proj", "k_proj", "v_proj", "o_proj"];
  const mlpTargets: MlpTarget[] = ["gate_proj", "up_proj", "down_proj"];

  const blocks: BlockKernels = {
    async attnForward(x, w, d, keep) {
      const l = layerOf(w);
      if (!useDropout(keep) || !has(l, attnTargets)) return inner.attnForward(x, w, d, keep);
      return loraAttnForward(kn, x, baseParams.layers[l], layerAdapters[l], s, drop, d);
    },
    async attnBackward(dout, x, saved, w, d) {
      const l = layerOf(w);
      const la = layerAdapters[l];
      if ("lora" in saved) return loraAttnBackward(kn, dout, x, saved as LoraAttnOut, baseParams.layers[l], la, s, drop.p, d);
      // Fast path: the forward ran on the merged weights W' = W + s·B·A; chain rule through W'.
      const g = await inner.attnBackward(dout, x, saved, w, d);
      for (const t of attnTargets) if (la.pairs[t]) await accumulateFromMerged(kn, g[attnGradKey[t]], la, t, s, c, cfg.r);
      return { ...g, dWq: NO_GRAD, dWk: NO_GRAD, dWv: NO_GRAD, dWo: NO_GRAD };
    },
    async mlpForward(x, w, d, keep) {
      const l = layerOf(w);
      if (!useDropout(keep) || !has(l, mlpTargets)) return inner.mlpForward(x, w, d, keep);
      return loraMlpForward(kn, x, baseParams.layers[l], layerAdapters[l], s, drop, d);
    },
    async mlpBackward(dout, x, saved, w, d) {
      const l = layerOf(w);
      const la = layerAdapters[l];
      if ("lora" in saved) return loraMlpBackward(kn, dout, x, saved as LoraMlpOut, baseParams.layers[l], la, s, drop.p, d);
      const g = await inner.mlpBackward(dout, x, saved, w, d);
      for (const t of mlpTargets) if (la.pairs[t]) await accumulateFromMerged(kn, g[mlpGradKey[t]], la, t, s, c, cfg.r);
      return { ...g, dWGate: NO_GRAD, dWUp: NO_GRAD, dWDown: NO_GRAD };
    },
  };

  const model = createModel(c, merged, withBlocks(kn, blocks));
  return {
    kind: "lora",
    model,
    configFiles: { "adapter_config.json": peftAdapterConfig(cfg) },
    params,
    grads,
    zeroGrad() {
      for (const g of grads) g.data.fill(0);
    },
    beginMicroBatch(seed: number) {
      drop.rng = mulberry32(seed);
    },
    async backward(tape, dlogp) {
      // The adapter gradients accumulate inside the block wrapper; the returned full gradients are discarded.
      await backward(model, tape, dlogp);
    },
    async afterUpdate() {
      // W' = W + s·(B A): the product on the kernels (O(out·in·r), the bulk), the add in TypeScript.
      for (let l = 0; l < c.nLayers; l++) {
        for (const t of targets) {
          const { nIn, nOut } = loraDims(c, t);
          const field = targetInfo[t].field;
          const p = layerAdapters[l].pairs[t] as LoraPair;
          const sBA = await kn.matmul(p.B, p.A, nOut, cfg.r, nIn, { alpha: s }); // (out, in)
          addWeights(merged.layers[l][field] as Float32Array, baseParams.layers[l][field] as Float32Array, sBA);
        }
      }
    },
  };
}

/** dst = W + D, element-wise. */
function addWeights(dst: Float32Array, W: Float32Array, D: Float32Array): void {
  const n = dst.length;
  for (let i = 0; i < n; i++) dst[i] = W[i] + D[i];
}

/** The base kernels with `blocks` replaced (an explicit delegating object: OrtKernels is a class with private state). */
function withBlocks(kn: Kernels, blocks: BlockKernels): Kernels {
  return {
    name: `${kn.name}+lora`,
    blocks,
    matmul: (...args: Parameters<Kernels["matmul"]>) => kn.matmul(...args),
    batchedMatmul: (...args: Parameters<Kernels["batchedMatmul"]>) => kn.batchedMatmul(...args),
    mlpForward: (...args: Parameters<Kernels["mlpForward"]>) => kn.mlpForward(...args),
    mlpBackward: (...args: Parameters<Kernels["mlpBackward"]>) => kn.mlpBackward(...args),
    attention: (...args: Parameters<Kernels["attention"]>) => kn.attention(...args),
    attentionBackward: (...args: Parameters<Kernels["attentionBackward"]>) => kn.attentionBackward(...args),
    cachedAttention: (...args: Parameters<Kernels["cachedAttention"]>) => kn.cachedAttention(...args),
    // The base model owns the kernels: disposing the adapted model's view must not release them.
    dispose: async () => {},
  };
}

/** From the merged weight's gradient dW (out, in): dA += s·Bᵀ dW (r, in), dB += s·dW Aᵀ (out, r). */
async function accumulateFromMerged(
  kn: Kernels,
  dW: Float32Array,
  la: LayerAdapters,
  t: LoraTarget,
  s: number,
  c: LlamaConfig,
  r: number,
): Promise<void> {
  const { nIn, nOut } = loraDims(c, t);
  const p = la.pairs[t] as LoraPair;
  const g = la.grads[t] as LoraPair;
  const dA = await kn.matmul(p.B, dW, r, nOut, nIn, { transA: true, alpha: s }); // (r, in)
  const dB = await kn.matmul(dW, p.A, nOut, nIn, r, { transB: true, alpha: s }); // (out, r)
  addInto(g.A, dA);
  addInto(g.B, dB);
}

// ---------------------------------------------------------------------------------------------
// The dropout path: blocks.ts with each targeted linear split into base and adapter paths
// ---------------------------------------------------------------------------------------------

/** Inverted dropout mask (N·in): 1 = kept (then scaled by 1/(1−p)), 0 = dropped. */
function dropMask(drop: Dropout, n: number): Uint8Array {
  const m = new Uint8Array(n);
  const { p, rng } = drop;
  for (let i = 0; i < n; i++) m[i] = rng() >= p ? 1 : 0;
  return m;
}

/** u = x ⊙ mask / (1−p). */
function applyMask(x: Float32Array, mask: Uint8Array, p: number): Float32Array {
  const k = 1 / (1 - p);
  const u = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) if (mask[i]) u[i] = x[i] * k;
  return u;
}

/**
 * y (N, out) = x Wᵀ + s · (u Aᵀ) Bᵀ with u = dropout(x) (N, in); the adapter path's saved state
 * when `ad` is given (else a plain linear).
 */
async function adaptedLinear(
  kn: Kernels,
  x: Float32Array,
  W: Float32Array,
  ad: LoraPair | undefined,
  N: number,
  nIn: number,
  nOut: number,
  s: number,
  drop: Dropout,
): Promise<{ y: Float32Array; saved?: AdapterSaved }> {
  const y = await kn.matmul(x, W, N, nIn, nOut, { transB: true }); // (N, out) base path
  if (!ad) return { y };
  const r = ad.A.length / nIn;
  const mask = dropMask(drop, N * nIn);
  const u = applyMask(x, mask, drop.p); // (N, in)
  const z = await kn.matmul(u, ad.A, N, nIn, r, { transB: true }); // (N, r) = u Aᵀ
  const ya = await kn.matmul(z, ad.B, N, r, nOut, { transB: true, alpha: s }); // (N, out) = s · z Bᵀ
  addTo(y, y, ya);
  return { y, saved: { mask, z } };
}

/**
 * Backward of `adaptedLinear` from dy (N, out): returns dx (N, in) (base and adapter paths); adds
 * the adapter's gradients to `g`. The frozen W gets no gradient.
 *
 *   dB (out, r) = s · dyᵀ z       dz (N, r) = s · dy B
 *   dA (r, in)  = dzᵀ u           dx += (dz A) ⊙ mask / (1−p)
 */
async function adaptedLinearBackward(
  kn: Kernels,
  dy: Float32Array,
  x: Float32Array,
  W: Float32Array,
  ad: LoraPair | undefined,
  saved: AdapterSaved | undefined,
  g: LoraPair | undefined,
  N: number,
  nIn: number,
  nOut: number,
  s: number,
  p: number,
): Promise<Float32Array> {
  const dx = await kn.matmul(dy, W, N, nOut, nIn); // (N, in) = dy W, base path
  if (!ad || !saved || !g) return dx;
  const r = ad.A.length / nIn;
  const dB = await kn.matmul(dy, saved.z, nOut, N, r, { transA: true, alpha: s }); // (out, r)
  const dz = await kn.matmul(dy, ad.B, N, nOut, r, { alpha: s }); // (N, r)
  const u = applyMask(x, saved.mask, p); // (N, in), recomputed rather than saved
  const dA = await kn.matmul(dz, u, r, N, nIn, { transA: true }); // (r, in)
  const du = await kn.matmul(dz, ad.A, N, r, nIn); // (N, in)
  const k = 1 / (1 - p);
  for (let i = 0; i < dx.length; i++) if (saved.mask[i]) dx[i] += du[i] * k;
  addInto(g.A, dA);
  addInto(g.B, dB);
  return dx;
}

async function loraAttnForward(
  kn: Kernels,
  x: Float32Array,
  w: LayerParams,
  la: LayerAdapters,
  s: number,
  drop: Dropout,
  d: BlockDims,
): Promise<LoraAttnOut> {
  const { B, T, C, H, KV, hd } = d;
  const N = B * T;
  const G = H / KV;
  const h = new Float32Array(N * C);
  const rstd = new Float32Array(N);
  rmsnormForward(x, w.inputNorm, N, C, d.eps, h, rstd);
  const lq = await adaptedLinear(kn, h, w.wq, la.pairs.q_proj, N, C, H * hd, s, drop); // (N, H·hd)
  const lk = await adaptedLinear(kn, h, w.wk, la.pairs.k_proj, N, C, KV * hd, s, drop); // (N, KV·hd)
  const lv = await adaptedLinear(kn, h, w.wv, la.pairs.v_proj, N, C, KV * hd, s, drop); // (N, KV·hd)
  if (w.bq) addBias(lq.y, w.bq, N, H * hd);
  if (w.bk) addBias(lk.y, w.bk, N, KV * hd);
  if (w.bv) addBias(lv.y, w.bv, N, KV * hd);

  // Rotate and regroup as in blocks.ts: q → (B·KV, G·T, hd); k, v → (B·KV, T, hd).
  const q = new Float32Array(N * H * hd);
  const k = new Float32Array(N * KV * hd);
  const v = new Float32Array(N * KV * hd);
  toGrouped(lq.y, q, B, T, H, G, hd, d.rope);
  toGrouped(lk.y, k, B, T, KV, 1, hd, d.rope);
  toGrouped(lv.y, v, B, T, KV, 1, hd);
  const { p, o } = await kn.attention(q, k, v, B * KV, G, T, hd, 1 / Math.sqrt(hd));
  const attn = new Float32Array(N * H * hd); // (N, H·hd)
  fromGrouped(o, attn, B, T, H, G, hd);
  const lo = await adaptedLinear(kn, attn, w.wo, la.pairs.o_proj, N, H * hd, C, s, drop); // (N, C)
  const out = lo.y;
  addTo(out, out, x); // residual
  return { out, k, v, saved: { h, rstd, q, p, attn }, lora: { q_proj: lq.saved, k_proj: lk.saved, v_proj: lv.saved, o_proj: lo.saved } };
}

async function loraAttnBackward(
  kn: Kernels,
  dout: Float32Array,
  x: Float32Array,
  fwd: LoraAttnOut,
  w: LayerParams,
  la: LayerAdapters,
  s: number,
  p: number,
  d: BlockDims,
): Promise<AttnBlockGrads> {
  const { B, T, C, H, KV, hd } = d;
  const sv = savedOf(fwd, "LoRA attention backward");
  const N = B * T;
  const G = H / KV;
  const L = fwd.lora;
  const dattn = await adaptedLinearBackward(kn, dout, sv.attn, w.wo, la.pairs.o_proj, L.o_proj, la.grads.o_proj, N, H * hd, C, s, p); // (N, H·hd)
  const dO = new Float32Array(N * H * hd); // grouped (B·KV, G·T, hd)
  toGrouped(dattn, dO, B, T, H, G, hd);
  const g = await kn.attentionBackward(dO, sv.q, fwd.k, fwd.v, sv.p, B * KV, G, T, hd, 1 / Math.sqrt(hd));
  const dq = new Float32Array(N * H * hd); // (N, H·hd)
  const dk = new Float32Array(N * KV * hd); // (N, KV·hd)
  const dv = new Float32Array(N * KV * hd);
  fromGrouped(g.dq, dq, B, T, H, G, hd, d.rope, -1);
  fromGrouped(g.dk, dk, B, T, KV, 1, hd, d.rope, -1);
  fromGrouped(g.dv, dv, B, T, KV, 1, hd);
  // The biases are frozen: the bias adds contribute nothing here (dy passes through unchanged).
  const dh = await adaptedLinearBackward(kn, dq, sv.h, w.wq, la.pairs.q_proj, L.q_proj, la.grads.q_proj, N, C, H * hd, s, p); // (N, C)
  const dhk = await adaptedLinearBackward(kn, dk, sv.h, w.wk, la.pairs.k_proj, L.k_proj, la.grads.k_proj, N, C, KV * hd, s, p);
  const dhv = await adaptedLinearBackward(kn, dv, sv.h, w.wv, la.pairs.v_proj, L.v_proj, la.grads.v_proj, N, C, KV * hd, s, p);
  addTo(dh, dh, dhk);
  addTo(dh, dh, dhv);
  const dx = dout.slice(); // residual path, plus the norm's backward below
  const dNorm = new Float32Array(C);
  rmsnormBackward(dh, x, w.inputNorm, sv.rstd, N, C, dx, dNorm);
  return { dx, dWq: NO_GRAD, dWk: NO_GRAD, dWv: NO_GRAD, dWo: NO_GRAD, dbq: NO_GRAD, dbk: NO_GRAD, dbv: NO_GRAD, dNorm };
}

/** The MLP half as separate gate/up/down products (not the fused kernel), so each can carry an adapter. */
async function loraMlpForward(
  kn: Kernels,
  x: Float32Array,
  w: LayerParams,
  la: LayerAdapters,
  s: number,
  drop: Dropout,
  d: BlockDims,
): Promise<LoraMlpOut> {
  const { B, T, C, Hm } = d;
  const N = B * T;
  const h = new Float32Array(N * C);
  const rstd = new Float32Array(N);
  rmsnormForward(x, w.postNorm, N, C, d.eps, h, rstd);
  const lg = await adaptedLinear(kn, h, w.wGate, la.pairs.gate_proj, N, C, Hm, s, drop); // (N, Hm)
  const lu = await adaptedLinear(kn, h, w.wUp, la.pairs.up_proj, N, C, Hm, s, drop); // (N, Hm)
  const act = new Float32Array(N * Hm); // silu(gate) · up
  swigluForward(lg.y, lu.y, act, N * Hm);
  const ld = await adaptedLinear(kn, act, w.wDown, la.pairs.down_proj, N, Hm, C, s, drop); // (N, C)
  const out = ld.y;
  addTo(out, out, x); // residual
  return {
    out,
    saved: { h, rstd, gate: lg.y, up: lu.y, act },
    lora: { gate_proj: lg.saved, up_proj: lu.saved, down_proj: ld.saved },
  };
}

async function loraMlpBackward(
  kn: Kernels,
  dout: Float32Array,
  x: Float32Array,
  fwd: LoraMlpOut,
  w: LayerParams,
  la: LayerAdapters,
  s: number,
  p: number,
  d: BlockDims,
): Promise<MlpBlockGrads> {
  const { B, T, C, Hm } = d;
  const sv = savedOf(fwd, "LoRA MLP backward");
  const N = B * T;
  const L = fwd.lora;
  const dact = await adaptedLinearBackward(kn, dout, sv.act, w.wDown, la.pairs.down_proj, L.down_proj, la.grads.down_proj, N, Hm, C, s, p); // (N, Hm)
  const dgate = new Float32Array(N * Hm);
  const dup = new Float32Array(N * Hm);
  swigluBackward(dact, sv.gate, sv.up, dgate, dup, N * Hm);
  const dh = await adaptedLinearBackward(kn, dgate, sv.h, w.wGate, la.pairs.gate_proj, L.gate_proj, la.grads.gate_proj, N, C, Hm, s, p); // (N, C)
  const dhu = await adaptedLinearBackward(kn, dup, sv.h, w.wUp, la.pairs.up_proj, L.up_proj, la.grads.up_proj, N, C, Hm, s, p); // (N, C)
  addTo(dh, dh, dhu);
  const dx = dout.slice(); // residual path, plus the norm's backward below
  const dNorm = new Float32Array(C);
  rmsnormBackward(dh, x, w.postNorm, sv.rstd, N, C, dx, dNorm);
  return { dx, dWGate: NO_GRAD, dWUp: NO_GRAD, dWDown: NO_GRAD, dNorm };
}
