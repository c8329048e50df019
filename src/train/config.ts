/**
 * The training configs as they enter from files and the command line: TRL's snake_case names
 * (learning_rate, per_device_train_batch_size, beta, loss_type, …) validated with zod, turned into
 * the camelCase objects the code uses. Errors name the field and the allowed values.
 *
 * Defaults are TRL's where TRL has the field (SFTConfig / DPOConfig); they suit billion-parameter
 * models. Tiny models (the sandbox) need far larger learning rates; its presets set them.
 */
import { z } from "zod";
import { ConfigError } from "../model/config.js";
import type { DpoConfig } from "./dpo.js";
import type { SftConfig } from "./sft.js";

const int = (min: number) => z.number().int().min(min);

const trainerFields = {
  /** Where checkpoints, metrics.jsonl, reference_logps.json and final/ go. */
  output_dir: z.string().min(1),
  /** Peak learning rate (TRL: 2e-5 for SFT, 1e-6 for DPO). */
  learning_rate: z.number().positive(),
  /** "linear" (HF default) decays to 0; "cosine" half a cosine to 0; "constant" after warmup. */
  lr_scheduler_type: z.enum(["constant", "linear", "cosine"]).default("linear"),
  /** Fraction of the steps warming up linearly (used when warmup_steps is 0). Default 0. */
  warmup_ratio: z.number().min(0).max(1).default(0),
  warmup_steps: int(0).default(0),
  /** Passes over the data (default 3, as HF). Ignored when max_steps > 0. */
  num_train_epochs: z.number().positive().default(3),
  /** Optimizer steps; > 0 overrides num_train_epochs. Default −1. */
  max_steps: z.number().int().default(-1),
  /** Examples per micro-batch (DPO: pairs). Default 8. */
  per_device_train_batch_size: int(1).default(8),
  /** Micro-batches per optimizer step. Default 1. */
  gradient_accumulation_steps: int(1).default(1),
  /** Global-norm gradient clipping (0 = off). Default 1. */
  max_grad_norm: z.number().min(0).default(1),
  /** AdamW decoupled weight decay on matrices. Default 0. */
  weight_decay: z.number().min(0).default(0),
  adam_beta1: z.number().min(0).lt(1).default(0.9),
  adam_beta2: z.number().min(0).lt(1).default(0.999),
  adam_epsilon: z.number().positive().default(1e-8),
  /** Seeds the data order and dropout. Default 42 (HF). */
  seed: int(0).default(42),
  /** Log every this many steps (means over the window). Default 10 (TRL). */
  logging_steps: int(1).default(10),
  /** Evaluate every this many steps; 0 = at the end only. Default 0. */
  eval_steps: int(0).default(0),
  /** Checkpoint every this many steps; 0 = none. Default 500 (HF). */
  save_steps: int(0).default(500),
  /** Keep only the newest this many checkpoints; 0 = all. Default 0. */
  save_total_limit: int(0).default(0),
  /** Longest row (prompt + completion) in tokens; null = the model's context. */
  max_length: int(2).nullable().default(null),
};

export const SftConfigSchema = z
  .object({
    ...trainerFields,
    learning_rate: trainerFields.learning_rate.default(2e-5),
    /** Pack examples into rows of max_length tokens (TRL). Default false. */
    packing: z.boolean().default(false),
  })
  .strict();

export const DpoConfigSchema = z
  .object({
    ...trainerFields,
    learning_rate: trainerFields.learning_rate.default(1e-6),
    /** β of the implicit reward β·log(π/π_ref) (Rafailov et al. 2023). Default 0.1. */
    beta: z.number().positive().default(0.1),
    /** sigmoid (DPO), ipo (Azar et al.), hinge (SLiC), robust (Chowdhury et al.), soft_label (CREAM). */
    loss_type: z.enum(["sigmoid", "ipo", "hinge", "robust", "soft_label"]).default("sigmoid"),
    /** ε of cDPO / robust DPO: the assumed rate of flipped labels, in [0, 0.5). Default 0. */
    label_smoothing: z.number().min(0).lt(0.5).default(0),
    /** Weight of the NLL term on chosen (RPO, Pang et al. 2024); null = off. */
    rpo_alpha: z.number().min(0).nullable().default(null),
    /** Use per-token mean log-probs instead of sums (IPO always does). Default false. */
    length_normalize: z.boolean().default(false),
  })
  .strict();

export type SftConfigInput = z.input<typeof SftConfigSchema>;
export type DpoConfigInput = z.input<typeof DpoConfigSchema>;

function parse<T extends z.ZodType>(schema: T, input: unknown, source: string): z.output<T> {
  const r = schema.safeParse(input);
  if (!r.success) {
    const msgs = r.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new ConfigError(`invalid ${source}: ${msgs.join("; ")}`);
  }
  return r.data;
}

const camel = (s: string) => s.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
const snake = (s: string) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

function toCamel<T>(o: Record<string, unknown>): T {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [camel(k), v])) as T;
}

/** Config object → TRL's snake_case names (what checkpoints and run directories record). */
export function toTrlNames(cfg: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(cfg).map(([k, v]) => [snake(k), v]));
}

/** Validate an SFT config given with TRL names (from a file or the CLI). */
export function sftConfig(input: unknown, source = "SFT config"): SftConfig {
  return toCamel<SftConfig>(parse(SftConfigSchema, input, source));
}

/** Validate a DPO config given with TRL names (from a file or the CLI). */
export function dpoConfig(input: unknown, source = "DPO config"): DpoConfig {
  return toCamel<DpoConfig>(parse(DpoConfigSchema, input, source));
}
