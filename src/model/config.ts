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
  /** Bias on q/k/v projections, as in Qwen2 (HF `attention_bias`, implied by model_type qwen2). */
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

/** Our config from an HF config.json object; `source` names the file in errors. */
export function fromHfConfig(hf: Record<string, unknown>, source = "config.json"): LlamaConfig {
  const modelType = String(hf.model_type ?? "llama");
  const known = ["llama", "qwen2", "mistral"];
  if (!known.includes(modelType)) {
    throw new ConfigError(`${source}: model_type "${modelType}" is not supported (supported: ${known.join(", ")})`);
  }
  if (hf.hidden_act !== undefined && hf.hidden_act !== "silu") {
    throw new ConfigError(`${source}: hidden_act "${String(hf.hidden_act)}" is not supported (only "silu")`);
  }
  if (hf.rope_scaling != null) {
    throw new ConfigError(`${source}: rope_scaling is not supported yet`);
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
      ropeTheta: hf.rope_theta ?? 10000,
      normEps: hf.rms_norm_eps ?? 1e-6,
      maxSeqLen: hf.max_position_embeddings ?? 2048,
      tieEmbeddings: hf.tie_word_embeddings ?? false,
      qkvBias: modelType === "qwen2" ? true : (hf.attention_bias ?? false),
    },
    source,
  );
}
