/**
 * Hugging Face model folders: config.json plus model.safetensors, or model.safetensors.index.json
 * with shards named model-00001-of-0000N.safetensors.
 *
 * Loading is strict: every tensor the config needs must be present with the config's shape, the index
 * must agree with the shards, and a tensor the model does not use is an error (a mismatched checkpoint
 * never loads silently). Only rotary-embedding buffers (`*rotary_emb.*`, recomputed anyway) are ignored,
 * and with tied embeddings a `lm_head.weight` equal to the embedding is accepted.
 */
import { randomUUID } from "node:crypto";
import { mkdir, readdir, readFile, stat, unlink } from "node:fs/promises";
import { basename, join } from "node:path";
import { ConfigError, fromHfConfig, type LlamaConfig, toHfConfig } from "../model/config.js";
import { fromNamed, type LlamaParams, paramSpecs, toNamed } from "../model/params.js";
import { writeFileAtomic, writeJsonAtomic } from "./atomic.js";
import {
  CheckpointError,
  type FloatDtype,
  readSafetensors,
  readSafetensorsHeader,
  type SafetensorsEntry,
  type SafetensorsTensor,
  SUPPORTED_DTYPES,
  tensorBytes,
  writeSafetensors,
} from "./safetensors.js";

export const CONFIG_FILE = "config.json";
export const GENERATION_CONFIG_FILE = "generation_config.json";
export const SINGLE_FILE = "model.safetensors";
export const INDEX_FILE = "model.safetensors.index.json";
/** HF shard file names: model-00001-of-00003.safetensors. */
export const SHARD_RE = /^model-\d{5}-of-\d{5}\.safetensors$/;
/** Default shard limit, as in transformers ("5GB"). Counts tensor bytes, not headers. */
export const DEFAULT_MAX_SHARD_BYTES = 5e9;

/** Buffers some exporters save that the model recomputes; ignored on load. */
const IGNORED_RE = /(^|\.)rotary_emb\./;

export interface LoadedHfModel {
  config: LlamaConfig;
  params: LlamaParams;
  /** config.json as parsed (keeps fields we do not model, e.g. bos_token_id). */
  hfConfig: Record<string, unknown>;
  /** Weight files read, absolute or relative as `dir` was given. */
  files: string[];
}

export interface SaveHfOptions {
  /** Split into shards + index when the tensors exceed this many bytes (default 5e9). */
  maxShardBytes?: number;
  /** Storage dtype of the weights (default F32). */
  dtype?: FloatDtype;
  /** Extra keys for config.json (e.g. bos_token_id, eos_token_id); must not contradict `config`. */
  hfConfigExtra?: Record<string, unknown>;
  /** Written as generation_config.json when given. */
  generationConfig?: Record<string, unknown>;
  /** More files to write into the folder (plain file names): strings and bytes as is, objects as JSON. */
  extraFiles?: Record<string, string | Uint8Array | Record<string, unknown>>;
}

export interface SavedHfModel {
  /** File names written, in order. */
  files: string[];
  /** File names of stale weight files removed (an earlier save with a different layout). */
  removed: string[];
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function readJsonObject(path: string, what: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CheckpointError(`${path}: cannot read ${what} (${code === "ENOENT" ? "file not found" : (e as Error).message})`, {
      file: path,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(`${path}: ${what} is not valid JSON (${(e as Error).message})`, { file: path });
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new CheckpointError(`${path}: ${what} must be a JSON object`, { file: path });
  }
  return json as Record<string, unknown>;
}

const HF_FIELD: [string, string][] = [
  ["vocabSize", "vocab_size"],
  ["dim", "hidden_size"],
  ["nLayers", "num_hidden_layers"],
  ["nHeads", "num_attention_heads"],
  ["nKvHeads", "num_key_value_heads"],
  ["headDim", "head_dim"],
  ["hiddenDim", "intermediate_size"],
  ["ropeTheta", "rope_theta"],
  ["normEps", "rms_norm_eps"],
  ["maxSeqLen", "max_position_embeddings"],
  ["tieEmbeddings", "tie_word_embeddings"],
  ["qkvBias", "attention_bias"],
];

/** Our config from config.json; ConfigError messages also give the config.json field names. */
function configFromHf(hf: Record<string, unknown>, source: string): LlamaConfig {
  try {
    return fromHfConfig(hf, source);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    const hints = HF_FIELD.filter(([ours]) => new RegExp(`\\b${ours}\\b`).test(e.message)).map(
      ([ours, hfName]) => `${ours} is "${hfName}"`,
    );
    throw hints.length ? new ConfigError(`${e.message} (in ${basename(source)}: ${hints.join(", ")})`) : e;
  }
}

function shapeStr(s: readonly number[]): string {
  return `[${s.join(", ")}]`;
}

function listNames(names: string[], max = 8): string {
  const shown = names.slice(0, max).map((n) => `"${n}"`);
  return names.length > max ? `${shown.join(", ")} and ${names.length - max} more` : shown.join(", ");
}

/** Where every tensor of the checkpoint lives (file + validated header entry). */
type Located = Map<string, { file: string; entry: SafetensorsEntry }>;

async function locateSharded(dir: string, indexPath: string): Promise<{ located: Located; files: string[] }> {
  const index = await readJsonObject(indexPath, "the shard index");
  const wm = index.weight_map;
  if (typeof wm !== "object" || wm === null || Array.isArray(wm)) {
    throw new CheckpointError(`${indexPath}: "weight_map" must be an object mapping tensor names to shard files`, { file: indexPath });
  }
  const weightMap = wm as Record<string, unknown>;
  const byShard = new Map<string, string[]>();
  for (const [name, shard] of Object.entries(weightMap)) {
    if (typeof shard !== "string" || shard.length === 0 || shard !== basename(shard) || shard === "." || shard === "..") {
      throw new CheckpointError(
        `${indexPath}: tensor "${name}" maps to ${JSON.stringify(shard)}, which is not a plain file name in the folder`,
        {
          file: indexPath,
          tensor: name,
        },
      );
    }
    const list = byShard.get(shard) ?? [];
    list.push(name);
    byShard.set(shard, list);
  }
  if (byShard.size === 0) throw new CheckpointError(`${indexPath}: "weight_map" is empty`, { file: indexPath });
  const meta = index.metadata;
  const saveId = typeof meta === "object" && meta !== null ? (meta as Record<string, unknown>).srlm_save_id : undefined;

  const located: Located = new Map();
  const files: string[] = [];
  for (const [shard, names] of byShard) {
    const path = join(dir, shard);
    if (!(await exists(path))) {
      throw new CheckpointError(`${indexPath}: shard "${shard}" (holding ${listNames(names, 3)}) does not exist`, {
        file: indexPath,
        tensor: names[0],
      });
    }
    const header = await readSafetensorsHeader(path);
    if (typeof saveId === "string" && header.metadata.srlm_save_id !== saveId) {
      throw new CheckpointError(
        `${path}: shard belongs to a different save than ${basename(indexPath)} (save id ${JSON.stringify(header.metadata.srlm_save_id ?? null)} vs ${JSON.stringify(saveId)}; interrupted save?)`,
        { file: path },
      );
    }
    const inShard = new Map(header.entries.map((e) => [e.name, e]));
    for (const name of names) {
      const entry = inShard.get(name);
      if (!entry) {
        throw new CheckpointError(`${indexPath}: tensor "${name}" is mapped to shard "${shard}", but ${path} has no such tensor`, {
          file: path,
          tensor: name,
        });
      }
      located.set(name, { file: path, entry });
    }
    for (const e of header.entries) {
      const mapped = weightMap[e.name];
      if (mapped !== shard) {
        const why =
          mapped === undefined ? `${basename(indexPath)} does not list it` : `${basename(indexPath)} maps it to "${String(mapped)}"`;
        throw new CheckpointError(`${path}: tensor "${e.name}" is in this shard but ${why}`, { file: path, tensor: e.name });
      }
    }
    files.push(path);
  }
  return { located, files };
}

/** Load a Llama/Qwen2/Mistral-architecture model from a Hugging Face folder (safetensors only). */
export async function loadHfModel(dir: string): Promise<LoadedHfModel> {
  const configPath = join(dir, CONFIG_FILE);
  const hfConfig = await readJsonObject(configPath, CONFIG_FILE);
  const config = configFromHf(hfConfig, configPath);

  const singlePath = join(dir, SINGLE_FILE);
  const indexPath = join(dir, INDEX_FILE);
  const hasSingle = await exists(singlePath);
  const hasIndex = await exists(indexPath);
  let located: Located;
  let files: string[];
  let checkpoint: string; // names the checkpoint in "missing tensor" errors
  if (hasSingle && hasIndex) {
    throw new CheckpointError(
      `${dir}: has both ${SINGLE_FILE} and ${INDEX_FILE}; it is ambiguous which holds the weights (stale files from an interrupted save?)`,
      {
        file: dir,
      },
    );
  } else if (hasSingle) {
    const header = await readSafetensorsHeader(singlePath);
    located = new Map(header.entries.map((entry) => [entry.name, { file: singlePath, entry }]));
    files = [singlePath];
    checkpoint = singlePath;
  } else if (hasIndex) {
    ({ located, files } = await locateSharded(dir, indexPath));
    checkpoint = indexPath;
  } else {
    const bin = (await exists(join(dir, "pytorch_model.bin"))) || (await exists(join(dir, "pytorch_model.bin.index.json")));
    throw new CheckpointError(
      `${dir}: no ${SINGLE_FILE} or ${INDEX_FILE}${bin ? " (only PyTorch .bin weights, which are not supported; convert them to safetensors)" : ""}`,
      { file: dir },
    );
  }

  // Names and shapes against the config, before any data is read.
  const specs = new Map(paramSpecs(config).map((s) => [s.name, s.shape]));
  const unexpected: string[] = [];
  for (const [name, { file, entry }] of located) {
    let want = specs.get(name);
    if (!want && name === "lm_head.weight" && config.tieEmbeddings) want = [config.vocabSize, config.dim];
    if (!want) {
      if (!IGNORED_RE.test(name)) unexpected.push(name);
      continue;
    }
    if (entry.shape.length !== want.length || entry.shape.some((d, i) => d !== want[i])) {
      throw new CheckpointError(
        `${file}: tensor "${name}" has shape ${shapeStr(entry.shape)}, but ${CONFIG_FILE} needs ${shapeStr(want)}`,
        {
          file,
          tensor: name,
        },
      );
    }
    if (!SUPPORTED_DTYPES.includes(entry.dtype as FloatDtype)) {
      throw new CheckpointError(`${file}: tensor "${name}": unsupported dtype ${entry.dtype} (srlm reads ${SUPPORTED_DTYPES.join(", ")})`, {
        file,
        tensor: name,
      });
    }
  }
  if (unexpected.length > 0) {
    const where = [...new Set(unexpected.map((n) => located.get(n)?.file))].join(", ");
    throw new CheckpointError(
      `${where}: ${unexpected.length} tensor(s) that a ${String(hfConfig.model_type ?? "llama")} model with this ${CONFIG_FILE} does not use: ${listNames(unexpected)}`,
      { file: located.get(unexpected[0])?.file, tensor: unexpected[0] },
    );
  }
  const missing = [...specs.keys()].filter((n) => !located.has(n));
  if (missing.length > 0) {
    throw new CheckpointError(`${checkpoint}: ${missing.length} tensor(s) missing: ${listNames(missing)}`, {
      file: checkpoint,
      tensor: missing[0],
    });
  }

  const tensors = new Map<string, SafetensorsTensor>();
  for (const file of files) {
    const r = await readSafetensors(file, { include: (name) => specs.has(name) || name === "lm_head.weight" });
    for (const [name, t] of r.tensors) tensors.set(name, t);
  }
  const extraHead = config.tieEmbeddings ? tensors.get("lm_head.weight") : undefined;
  if (extraHead) {
    const embed = tensors.get("model.embed_tokens.weight")?.data as Float32Array;
    const same = extraHead.data.every((v, i) => v === embed[i] || (Number.isNaN(v) && Number.isNaN(embed[i])));
    if (!same) {
      const file = located.get("lm_head.weight")?.file;
      throw new CheckpointError(
        `${file}: tensor "lm_head.weight" differs from "model.embed_tokens.weight", but ${CONFIG_FILE} says tie_word_embeddings: true`,
        { file, tensor: "lm_head.weight" },
      );
    }
    tensors.delete("lm_head.weight");
  }
  const params = fromNamed(config, tensors, checkpoint);
  return { config, params, hfConfig, files };
}

function sameConfig(a: LlamaConfig, b: LlamaConfig): keyof LlamaConfig | undefined {
  for (const k of Object.keys(a) as (keyof LlamaConfig)[]) if (a[k] !== b[k]) return k;
  return undefined;
}

/**
 * Save `params` as a Hugging Face folder: config.json, the weights (one file, or shards + index when
 * larger than maxShardBytes), optional generation_config.json and extra files. Each file is written
 * atomically; weight files of an earlier save with another layout are removed afterwards. Sharded saves
 * tag the index and every shard with one save id, so a shard left from an interrupted save is detected.
 */
export async function saveHfModel(dir: string, config: LlamaConfig, params: LlamaParams, opts: SaveHfOptions = {}): Promise<SavedHfModel> {
  const maxShardBytes = opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  if (!(maxShardBytes > 0)) throw new RangeError(`saveHfModel: maxShardBytes must be > 0, got ${maxShardBytes}`);
  const dtype = opts.dtype ?? "F32";
  if (!SUPPORTED_DTYPES.includes(dtype)) throw new RangeError(`saveHfModel: dtype must be one of ${SUPPORTED_DTYPES.join(", ")}`);

  const torchDtype = { F32: "float32", F16: "float16", BF16: "bfloat16" }[dtype];
  const hfConfig = { ...toHfConfig(config), torch_dtype: torchDtype, ...opts.hfConfigExtra };
  const roundTrip = fromHfConfig(hfConfig, `${dir}/${CONFIG_FILE}`);
  const diff = sameConfig(config, roundTrip);
  if (diff) throw new ConfigError(`saveHfModel: hfConfigExtra changes ${diff} (${String(config[diff])} → ${String(roundTrip[diff])})`);

  const reserved = (name: string) =>
    name === CONFIG_FILE ||
    name === SINGLE_FILE ||
    name === INDEX_FILE ||
    SHARD_RE.test(name) ||
    (name === GENERATION_CONFIG_FILE && !!opts.generationConfig);
  for (const name of Object.keys(opts.extraFiles ?? {})) {
    if (name !== basename(name) || name === "." || name === ".." || name.length === 0) {
      throw new RangeError(`saveHfModel: extra file ${JSON.stringify(name)} must be a plain file name`);
    }
    if (reserved(name)) throw new RangeError(`saveHfModel: extra file "${name}" would overwrite a file saveHfModel writes`);
  }

  const named = toNamed(config, params);
  for (const t of named) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (!(t.data instanceof Float32Array) || t.data.length !== n) {
      const got = t.data instanceof Float32Array ? `${t.data.length} elements` : "nothing";
      throw new CheckpointError(
        `saveHfModel: tensor "${t.name}": params have ${got}, config needs shape ${shapeStr(t.shape)} (${n} elements)`,
        {
          tensor: t.name,
        },
      );
    }
  }

  // Greedy sharding in parameter order, as transformers does.
  const shards: (typeof named)[] = [];
  let cur: typeof named = [];
  let curBytes = 0;
  let total = 0;
  for (const t of named) {
    const b = tensorBytes(t.shape, dtype);
    total += b;
    if (cur.length > 0 && curBytes + b > maxShardBytes) {
      shards.push(cur);
      cur = [];
      curBytes = 0;
    }
    cur.push(t);
    curBytes += b;
  }
  if (cur.length > 0) shards.push(cur);

  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  await writeJsonAtomic(join(dir, CONFIG_FILE), hfConfig);
  written.push(CONFIG_FILE);
  if (opts.generationConfig) {
    await writeJsonAtomic(join(dir, GENERATION_CONFIG_FILE), opts.generationConfig);
    written.push(GENERATION_CONFIG_FILE);
  }
  for (const [name, content] of Object.entries(opts.extraFiles ?? {})) {
    if (typeof content === "string" || content instanceof Uint8Array) await writeFileAtomic(join(dir, name), content);
    else await writeJsonAtomic(join(dir, name), content);
    written.push(name);
  }

  const toTensors = (list: typeof named) => list.map((t) => ({ name: t.name, shape: t.shape, data: t.data, dtype }));
  const keep = new Set<string>();
  if (shards.length <= 1) {
    await writeSafetensors(join(dir, SINGLE_FILE), toTensors(shards[0] ?? []), { format: "pt" });
    written.push(SINGLE_FILE);
    keep.add(SINGLE_FILE);
  } else {
    const saveId = randomUUID();
    const n = shards.length;
    const pad = (i: number) => String(i).padStart(5, "0");
    const weightMap: Record<string, string> = {};
    for (let i = 0; i < n; i++) {
      const file = `model-${pad(i + 1)}-of-${pad(n)}.safetensors`;
      await writeSafetensors(join(dir, file), toTensors(shards[i]), { format: "pt", srlm_save_id: saveId });
      for (const t of shards[i]) weightMap[t.name] = file;
      written.push(file);
      keep.add(file);
    }
    await writeJsonAtomic(join(dir, INDEX_FILE), { metadata: { total_size: total, srlm_save_id: saveId }, weight_map: weightMap });
    written.push(INDEX_FILE);
    keep.add(INDEX_FILE);
  }

  // Remove weight files of an earlier save with another layout (only names this module writes).
  const removed: string[] = [];
  for (const name of await readdir(dir)) {
    if ((name === SINGLE_FILE || name === INDEX_FILE || SHARD_RE.test(name)) && !keep.has(name)) {
      await unlink(join(dir, name));
      removed.push(name);
    }
  }
  return { files: written, removed };
}
