/**
 * The OpenAI-compatible request bodies `srlm serve` accepts, validated with zod at the boundary.
 *
 * Unknown fields are ignored (OpenAI clients send `user`, `stream_options`, …, as vLLM also ignores
 * extras), but a field srlm does not implement is refused when it asks for a non-default behaviour
 * (`frequency_penalty: 0.5`, `echo: true`, …), so a client never gets silently different sampling.
 */
import { z } from "zod";

const tokenIds = z.array(z.number().int().min(0)).min(1);

/** Sampling fields shared by both endpoints (OpenAI names; `top_k` is vLLM's and llama.cpp's extension). */
const sampling = {
  model: z.string().min(1),
  /** Most tokens per sample; OpenAI's default for completions is 16. */
  max_tokens: z.number().int().min(1).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  /** -1 or 0 = off (vLLM uses -1). */
  top_k: z.number().int().min(-1).nullish(),
  n: z.number().int().min(1).nullish(),
  /** Any integer; the sample streams use it modulo 2^32. Absent: a random seed per request. */
  seed: z.number().int().nullish(),
  stop: z.union([z.string(), z.array(z.string()).max(16)]).nullish(),
  stream: z.boolean().nullish(),
  frequency_penalty: z.number().nullish(),
  presence_penalty: z.number().nullish(),
  logit_bias: z.record(z.string(), z.number()).nullish(),
};

export const CompletionRequestSchema = z
  .object({
    ...sampling,
    /** A string, a list of strings, a list of token ids, or a list of token-id lists (one choice group per prompt). */
    prompt: z.union([z.string(), z.array(z.string()).min(1), tokenIds, z.array(tokenIds).min(1)]),
    /** Return the sampled tokens' log-probs and the k most likely at each step (OpenAI allows 0–5; we allow up to 20). */
    logprobs: z.number().int().min(0).max(20).nullish(),
    echo: z.boolean().nullish(),
    best_of: z.number().int().min(1).nullish(),
    suffix: z.string().nullish(),
  })
  .loose();
export type CompletionRequest = z.infer<typeof CompletionRequestSchema>;

const textPart = z.object({ type: z.literal("text"), text: z.string() }).loose();

export const ChatMessageSchema = z
  .object({
    role: z.enum(["system", "developer", "user", "assistant"]),
    content: z.union([z.string(), z.array(textPart)]),
  })
  .loose();

export const ChatRequestSchema = z
  .object({
    ...sampling,
    messages: z.array(ChatMessageSchema).min(1),
    /** OpenAI's newer name for max_tokens. */
    max_completion_tokens: z.number().int().min(1).nullish(),
    logprobs: z.boolean().nullish(),
    top_logprobs: z.number().int().min(0).max(20).nullish(),
    tools: z.array(z.unknown()).nullish(),
  })
  .loose();
export type ChatRequest = z.infer<typeof ChatRequestSchema>;

/** The first zod issue as `field: message`, the field as a dotted path (`messages.0.role`). */
export function describeZodError(e: z.ZodError): { param: string; message: string } {
  const issue = e.issues[0];
  const param = issue.path.map(String).join(".") || "(body)";
  return { param, message: `${param}: ${issue.message}` };
}

/** Fields srlm accepts only at their default value; each entry says what the default is. */
export function unsupportedField(body: Record<string, unknown>): { param: string; message: string } | undefined {
  const checks: [string, (v: unknown) => boolean, string][] = [
    ["frequency_penalty", (v) => v === 0, "0"],
    ["presence_penalty", (v) => v === 0, "0"],
    ["logit_bias", (v) => typeof v === "object" && v !== null && Object.keys(v).length === 0, "{}"],
    ["echo", (v) => v === false, "false"],
    ["best_of", (v) => v === 1 || v === body.n, "1 (or n)"],
    ["suffix", (v) => v === "", '""'],
    ["tools", (v) => Array.isArray(v) && v.length === 0, "[]"],
    ["stream", (v) => v === false, "false (streaming is not implemented)"],
  ];
  for (const [field, ok, allowed] of checks) {
    const v = body[field];
    if (v === undefined || v === null || ok(v)) continue;
    return { param: field, message: `${field}: not supported by srlm serve; only ${allowed} is accepted, got ${JSON.stringify(v)}` };
  }
  return undefined;
}

/** A chat message's text: its string content, or its text parts joined. */
export function messageText(m: z.infer<typeof ChatMessageSchema>): string {
  return typeof m.content === "string" ? m.content : m.content.map((p) => p.text).join("");
}

/** vLLM's `POST /v1/load_lora_adapter` body (its LoadLoRAAdapterRequest). */
export const LoadLoraRequestSchema = z
  .object({
    lora_name: z.string().min(1),
    /** A PEFT adapter folder (adapter_config.json + adapter_model.safetensors), as the server's file system sees it. */
    lora_path: z.string().min(1),
    /** Replace an adapter already loaded under this name (vLLM ≥ 0.10); otherwise that is a 400. */
    load_inplace: z.boolean().nullish(),
  })
  .loose();

/** vLLM's `POST /v1/unload_lora_adapter` body (by name; vLLM's lora_int_id is not used by srlm). */
export const UnloadLoraRequestSchema = z.object({ lora_name: z.string().min(1) }).loose();
