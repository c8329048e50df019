import { z } from "zod";

/**
 * Llama-architecture model configuration (camelCase in code; `toHfConfig`/`fromHfConfig` map to the
 * snake_case names of Hugging Face's config.json).
 */
export interface LlamaConfig {
  /** Vocabulary size (rows of the embedding and of lm_head). */
  vocabSize: number;
  /** Model width C (HF `hidden_size`). */
  dim: number;
  /** Number of transformer blocks (HF `num_hidden_layers`). */
  nLayers: number;
  /** Query heads (HF `num_attention_heads`). */
  nHeads: number;
  /** Key/value heads for grouped-query attention; must divide nHeads (HF `num_key_value_heads`). */
  nKvHeads: number;
  /** Per-head width; dim / nHeads unless the checkpoint says otherwise (HF `head_dim`). */
  headDim: number;
  /** SwiGLU hidden width (HF `intermediate_size`). */
  hiddenDim: number;
  /** RoPE base frequency (HF `rope_theta`); 10000 in Llama 1/2, 500000 in Llama 3. */
  ropeTheta: number;
  /** RMSNorm epsilon (HF `rms_norm_eps`). */
  normEps: number;
  /** Longest sequence the model may see (HF `max_position_embeddings`); sizes the RoPE tables and KV cache. */
  maxSeqLen: number;
  /** lm_head shares the embedding matrix (HF `tie_word_embeddings`); small models save parameters. */
  tieEmbeddings: boolean;
  /** Bias on q/k/v projections, as in Qwen2 (HF: model_type "qwen2"). */
  qkvBias: boolean;
}

const positiveInt = (field: string) =>
  z
    .number({ error: `${field} must be a number` })
    .int(`${field} must be an integer`)
    .positive(`${field} must be > 0`);

export const LlamaConfigSchema = z
  .object({
    vocabSize: positiveInt("vocabSize"),
    dim: positiveInt("dim"),
    nLayers: positiveInt("nLayers"),
    nHeads: positiveInt("nHeads"),
    nKvHeads: positiveInt("nKvHeads").optional(),
    headDim: positiveInt("headDim").optional(),
    hiddenDim: positiveInt("hiddenDim"),
    ropeTheta: z.number().positive("ropeTheta must be > 0").default(10000),
    normEps: z.number().positive("normEps must be > 0").default(1e-5),
    maxSeqLen: positiveInt("maxSeqLen").default(2048),
    tieEmbeddings: z.boolean().default(false),
    qkvBias: z.boolean().default(false),
  })
  .strict()
  .superRefine((c, ctx) => {
    const kv = c.nKvHeads ?? c.nHeads;
    if (c.nHeads % kv !== 0) {
      ctx.addIssue({
        code: "custom",
        path: ["nKvHeads"],
        message: `nKvHeads (${kv}) must divide nHeads (${c.nHeads}) for grouped-query attention`,
      });
    }
    if (c.headDim === undefined && c.dim % c.nHeads !== 0) {
      ctx.addIssue({ code: "custom", path: ["nHeads"], message: `nHeads (${c.nHeads}) must divide dim (${c.dim})` });
    }
    const hd = c.headDim ?? c.dim / c.nHeads;
    if (hd % 2 !== 0) {
      ctx.addIssue({ code: "custom", path: ["headDim"], message: `head dim (${hd}) must be even for RoPE` });
    }
  });

export type LlamaConfigInput = z.input<typeof LlamaConfigSchema>;

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Validate a user-supplied config; errors name the field and what is wrong. */
export function llamaConfig(input: unknown, source = "model config"): LlamaConfig {
  const r = LlamaConfigSchema.safeParse(input);
  if (!r.success) {
    const msgs = r.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new ConfigError(`invalid ${source}: ${msgs.join("; ")}`);
  }
  const c = r.data;
  return {
    ...c,
    nKvHeads: c.nKvHeads ?? c.nHeads,
    headDim: c.headDim ?? c.dim / c.nHeads,
  };
}

/** Parameter count (tied embeddings counted once). */
export function paramCount(c: LlamaConfig): number {
  const q = c.nHeads * c.headDim;
  const kv = c.nKvHeads * c.headDim;
  let perLayer = 2 * c.dim + c.dim * q + 2 * c.dim * kv + q * c.dim + 3 * c.dim * c.hiddenDim;
  if (c.qkvBias) perLayer += q + 2 * kv;
  return c.vocabSize * c.dim * (c.tieEmbeddings ? 1 : 2) + c.nLayers * perLayer + c.dim;
}

/** HF config.json (LlamaForCausalLM / Qwen2ForCausalLM) from our config. */
export function toHfConfig(c: LlamaConfig): Record<string, unknown> {
  const qwen = c.qkvBias;
  return {
    architectures: [qwen ? "Qwen2ForCausalLM" : "LlamaForCausalLM"],
    model_type: qwen ? "qwen2" : "llama",
    vocab_size: c.vocabSize,
    hidden_size: c.dim,
    intermediate_size: c.hiddenDim,
    num_hidden_layers: c.nLayers,
    num_attention_heads: c.nHeads,
    num_key_value_heads: c.nKvHeads,
    head_dim: c.headDim,
    hidden_act: "silu",
    max_position_embeddings: c.maxSeqLen,
    rms_norm_eps: c.normEps,
    rope_theta: c.ropeTheta,
    tie_word_embeddings: c.tieEmbeddings,
    attention_bias: c.qkvBias,
    torch_dtype: "float32",
  };
}

/** rope_scaling / rope_parameters.rope_type values that mean plain RoPE. */
const PLAIN_ROPE = new Set(["default", "none"]);

/**
 * Our config from an HF config.json object; `source` names the file in errors. Accepts the
 * `llama` (Llama 1–3 without RoPE scaling, SmolLM, TinyLlama), `qwen2` and `mistral` model types, and
 * refuses, naming the field, what the builtin decoder does not compute: a bias on o_proj or the MLP
 * (`attention_bias` on llama/mistral, `mlp_bias`), sliding-window attention that can take effect
 * (Qwen2's `use_sliding_window`, Mistral's `sliding_window` below max_position_embeddings), RoPE
 * scaling, another activation.
 */
export function fromHfConfig(hf: Record<string, unknown>, source = "config.json"): LlamaConfig {
  const modelType = String(hf.model_type ?? "llama");
  const known = ["llama", "qwen2", "mistral"];
  const fail = (msg: string): never => {
    throw new ConfigError(`${source}: ${msg}`);
  };
  if (!known.includes(modelType)) fail(`model_type "${modelType}" is not supported (supported: ${known.join(", ")})`);
  if (hf.hidden_act !== undefined && hf.hidden_act !== "silu") fail(`hidden_act "${String(hf.hidden_act)}" is not supported (only "silu")`);
  // transformers ≥ 5 keeps rope_theta (and the scaling type) in rope_parameters.
  const rp = hf.rope_parameters;
  let ropeTheta = hf.rope_theta;
  if (rp !== undefined && rp !== null) {
    if (typeof rp !== "object" || Array.isArray(rp)) fail(`rope_parameters must be an object, got ${JSON.stringify(rp)}`);
    const r = rp as Record<string, unknown>;
    const type = r.rope_type ?? r.type ?? "default";
    if (!PLAIN_ROPE.has(String(type))) fail(`rope_parameters.rope_type "${String(type)}" (RoPE scaling) is not supported yet`);
    ropeTheta ??= r.rope_theta;
  }
  const rs = hf.rope_scaling;
  if (rs !== undefined && rs !== null) {
    const type = typeof rs === "object" ? ((rs as Record<string, unknown>).rope_type ?? (rs as Record<string, unknown>).type) : undefined;
    if (!PLAIN_ROPE.has(String(type))) fail(`rope_scaling ${JSON.stringify(rs)} is not supported yet (only plain RoPE)`);
  }
  if (hf.mlp_bias === true) fail("mlp_bias: true (a bias on the MLP projections) is not supported");
  if (modelType === "qwen2") {
    // Qwen2 puts bias on q/k/v only, whatever attention_bias says; sliding windows on layers ≥ max_window_layers.
    const layers = Number(hf.num_hidden_layers);
    const from = typeof hf.max_window_layers === "number" ? hf.max_window_layers : 0;
    if (hf.use_sliding_window === true && from < layers) {
      fail(`use_sliding_window: true (sliding-window attention from layer ${from}, window ${String(hf.sliding_window)}) is not supported`);
    }
  } else {
    // Llama/Mistral's attention_bias puts a bias on o_proj as well as on q/k/v.
    if (hf.attention_bias === true) {
      fail(`attention_bias: true on a ${modelType} model (a bias on q/k/v and o_proj) is not supported; only Qwen2's q/k/v bias is`);
    }
    const win = hf.sliding_window;
    const maxPos = typeof hf.max_position_embeddings === "number" ? hf.max_position_embeddings : 2048;
    if (typeof win === "number" && win < maxPos) {
      fail(`sliding_window ${win} < max_position_embeddings ${maxPos} (sliding-window attention) is not supported`);
    }
  }
  return llamaConfig(
    {
      vocabSize: hf.vocab_size,
      dim: hf.hidden_size,
      nLayers: hf.num_hidden_layers,
      nHeads: hf.num_attention_heads,
      nKvHeads: hf.num_key_value_heads ?? undefined,
      headDim: hf.head_dim ?? undefined,
      hiddenDim: hf.intermediate_size,
      ropeTheta: ropeTheta ?? 10000,
      normEps: hf.rms_norm_eps ?? 1e-6,
      maxSeqLen: hf.max_position_embeddings ?? 2048,
      tieEmbeddings: hf.tie_word_embeddings ?? false,
      qkvBias: modelType === "qwen2",
    },
    source,
  );
}
