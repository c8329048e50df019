/**
 * LoRA adapters in PEFT's on-disk layout, as `PeftModel.save_pretrained` writes them for
 * LlamaForCausalLM:
 *
 *   adapter_config.json          peft_type "LORA", r, lora_alpha, lora_dropout, target_modules, …
 *   adapter_model.safetensors    base_model.model.model.layers.{i}.self_attn.{q,k,v,o}_proj.lora_{A,B}.weight
 *                                base_model.model.model.layers.{i}.mlp.{gate,up,down}_proj.lora_{A,B}.weight
 *                                lora_A [r, in], lora_B [out, r]
 *
 * Loading is strict: anything srlm's LoRA does not compute (DoRA, rsLoRA, per-module rank or alpha
 * patterns, trained biases, extra saved modules, a subset of layers, regex targets) is an error, as
 * is a missing, misshapen or unexpected tensor. Every error is a CheckpointError naming the file
 * and the field or tensor.
 */
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { LlamaConfig } from "../model/config.js";
import {
  type LoraAdapter,
  type LoraConfig,
  type LoraPair,
  type LoraTarget,
  loraDims,
  loraTargets,
  loraTensorName,
  loraTensors,
  peftAdapterConfig,
} from "../train/lora.js";
import { writeJsonAtomic } from "./atomic.js";
import { CheckpointError, readSafetensors, writeSafetensors } from "./safetensors.js";

export const ADAPTER_CONFIG_FILE = "adapter_config.json";
export const ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors";

export { peftAdapterConfig };

/**
 * Write `a` to `dir` (created if needed) as adapter_model.safetensors (F32) and adapter_config.json,
 * each atomically; the config goes last, so a folder with a config has its weights.
 */
export async function saveLoraAdapter(dir: string, model: LlamaConfig, a: LoraAdapter, opts: { baseModel?: string } = {}): Promise<void> {
  const tensors = loraTensors(model, a); // validates the adapter against the model
  await mkdir(dir, { recursive: true });
  await writeSafetensors(join(dir, ADAPTER_WEIGHTS_FILE), tensors, { format: "pt" });
  await writeJsonAtomic(join(dir, ADAPTER_CONFIG_FILE), peftAdapterConfig(a.config, opts.baseModel));
}

async function readJsonObject(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CheckpointError(`${path}: cannot read the adapter config (${code === "ENOENT" ? "file not found" : (e as Error).message})`, {
      file: path,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(`${path}: not valid JSON (${(e as Error).message})`, { file: path });
  }
  if (typeof json !== "object" || json === null || Array.isArray(json))
    throw new CheckpointError(`${path}: must be a JSON object`, { file: path });
  return json as Record<string, unknown>;
}

const isEmpty = (v: unknown): boolean =>
  v === undefined || v === null || (Array.isArray(v) && v.length === 0) || (typeof v === "object" && Object.keys(v as object).length === 0);

/** Parse adapter_config.json into a LoraConfig, rejecting every PEFT option srlm does not implement. */
export function parsePeftConfig(json: Record<string, unknown>, path: string): LoraConfig {
  const fail = (field: string, msg: string): never => {
    throw new CheckpointError(`${path}: "${field}" ${msg}`, { file: path });
  };
  const show = (v: unknown) => JSON.stringify(v);
  if (json.peft_type !== "LORA") fail("peft_type", `is ${show(json.peft_type)}; only "LORA" adapters are supported`);
  if (json.task_type !== undefined && json.task_type !== null && json.task_type !== "CAUSAL_LM") {
    fail("task_type", `is ${show(json.task_type)}; only "CAUSAL_LM" is supported`);
  }
  const r = json.r;
  if (typeof r !== "number" || !Number.isSafeInteger(r) || r < 1) fail("r", `must be a positive integer, got ${show(r)}`);
  const alpha = json.lora_alpha;
  if (typeof alpha !== "number" || !Number.isFinite(alpha) || alpha <= 0) fail("lora_alpha", `must be a number > 0, got ${show(alpha)}`);
  const dropout = json.lora_dropout ?? 0;
  if (typeof dropout !== "number" || !(dropout >= 0 && dropout < 1))
    fail("lora_dropout", `must be a number in [0, 1), got ${show(dropout)}`);
  if (json.bias !== undefined && json.bias !== "none") fail("bias", `is ${show(json.bias)}; only "none" is supported (no trained biases)`);
  for (const flag of ["use_dora", "use_rslora", "fan_in_fan_out", "lora_bias", "use_qalora"]) {
    if (json[flag] !== undefined && json[flag] !== null && json[flag] !== false)
      fail(flag, `is ${show(json[flag])}; only false is supported`);
  }
  for (const field of [
    "rank_pattern",
    "alpha_pattern",
    "modules_to_save",
    "layers_to_transform",
    "layer_replication",
    "exclude_modules",
    "target_parameters",
    "trainable_token_indices",
    "alora_invocation_tokens",
  ]) {
    if (!isEmpty(json[field])) fail(field, `is ${show(json[field])}; only an empty value is supported`);
  }

  const tm = json.target_modules;
  let targetModules: LoraTarget[];
  if (tm === "all-linear") targetModules = [...loraTargets];
  else if (typeof tm === "string") fail("target_modules", `is the pattern ${show(tm)}; give a list of module names or "all-linear"`);
  else if (!Array.isArray(tm) || tm.length === 0)
    fail("target_modules", `must be a non-empty list of module names or "all-linear", got ${show(tm)}`);
  else {
    for (const t of tm) {
      if (!loraTargets.includes(t as LoraTarget))
        fail("target_modules", `names the unknown target module ${show(t)} (known: ${loraTargets.join(", ")})`);
    }
    targetModules = loraTargets.filter((t) => (tm as unknown[]).includes(t));
  }
  return { r: r as number, alpha: alpha as number, dropout: dropout as number, targetModules: targetModules! };
}

const TENSOR_RE = /^base_model\.model\.model\.layers\.(\d+)\.(self_attn|mlp)\.([a-z_]+)\.lora_([AB])\.weight$/;

/**
 * Read a PEFT LoRA adapter folder for `model`. Every targeted Linear of every layer must have both
 * tensors with the shapes the config and the model give; any other tensor is an error.
 */
export async function loadLoraAdapter(dir: string, model: LlamaConfig): Promise<LoraAdapter> {
  const configPath = join(dir, ADAPTER_CONFIG_FILE);
  const cfg = parsePeftConfig(await readJsonObject(configPath), configPath);
  const path = join(dir, ADAPTER_WEIGHTS_FILE);
  const file = await readSafetensors(path);
  const fail = (tensor: string, msg: string): never => {
    throw new CheckpointError(`${path}: tensor "${tensor}" ${msg}`, { file: path, tensor });
  };

  const expected = new Set<string>();
  const layers: LoraAdapter["layers"] = [];
  for (let l = 0; l < model.nLayers; l++) {
    const layer: Partial<Record<LoraTarget, LoraPair>> = {};
    for (const t of cfg.targetModules) {
      const { nIn, nOut } = loraDims(model, t);
      const get = (which: "A" | "B", shape: number[]): Float32Array => {
        const name = loraTensorName(l, t, which);
        expected.add(name);
        const e = file.tensors.get(name);
        if (!e) return fail(name, `is missing (${ADAPTER_CONFIG_FILE} targets ${t} in ${model.nLayers} layers)`);
        if (e.shape.length !== 2 || e.shape[0] !== shape[0] || e.shape[1] !== shape[1]) {
          fail(name, `has shape [${e.shape.join(", ")}], expected [${shape.join(", ")}] (r = ${cfg.r} and the model's dimensions)`);
        }
        return e.data;
      };
      layer[t] = { A: get("A", [cfg.r, nIn]), B: get("B", [nOut, cfg.r]) };
    }
    layers.push(layer);
  }
  for (const name of file.tensors.keys()) {
    if (expected.has(name)) continue;
    const m = TENSOR_RE.exec(name);
    if (!m) fail(name, "is not a LoRA tensor of a Llama decoder layer");
    const [, layer, , module] = m as RegExpExecArray;
    if (Number(layer) >= model.nLayers) fail(name, `is for layer ${layer}, but the model has ${model.nLayers} layers`);
    if (!loraTargets.includes(module as LoraTarget)) fail(name, `is for the unknown target module ${JSON.stringify(module)}`);
    if (cfg.targetModules.includes(module as LoraTarget)) fail(name, `is not where PEFT's Llama layout puts ${module}`);
    fail(name, `is for ${module}, which is not in ${ADAPTER_CONFIG_FILE}'s target_modules`);
  }
  return { config: cfg, layers };
}
