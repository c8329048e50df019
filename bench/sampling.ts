/**
 * Batched sampling, builtin engine (src/model/generate.ts) against llama.cpp (node-llama-cpp 3.21.1,
 * LlamaCppModel.generate) on the same GGUF: same prompts, n, max tokens, temperature and seeds, no stop
 * token (every sample runs to max tokens, so both produce the same number of tokens). Prints tokens/s
 * per engine and the ratio builtin / llama.cpp, for three models:
 *
 *  - sandbox:  random weights at the `sandbox` preset's shape (dim 128, 4 layers, 4/2 heads, hidden 384),
 *              exported to an F32 GGUF in a temp dir;
 *  - stories260K: ../shared/models/stories260K.gguf (a real pretrained model, loaded by both engines);
 *  - 100M:     a random Llama of ≈ 100M parameters (dim 768, 10 layers, 12/4 heads, hidden 2048,
 *              vocab 16000), exported to an F32 GGUF.
 *
 *   npx tsx bench/sampling.ts                  # ≈ 2–3 minutes on 2 cores
 *   npx tsx bench/sampling.ts --long           # 4× the prompts, 2 rounds
 *   npx tsx bench/sampling.ts --threads 2      # llama.cpp threads (default 1: on 2 cores shared with other
 *                                              # work, 2 spinning llama.cpp threads ran ≈ 30–60× slower)
 *
 * Targets (issue 7): builtin ≥ 1× llama.cpp at sandbox size, ≥ 0.5× at 100M.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { disposeCpuLlama, LlamaCppModel } from "../src/engine/llama-cpp.js";
import { createKernels } from "../src/engine/ort.js";
import { mulberry32 } from "../src/engine/tensor.js";
import { loadGgufModel } from "../src/io/gguf.js";
import { exportLlamaGguf } from "../src/io/gguf-write.js";
import { type LlamaConfig, llamaConfig } from "../src/model/config.js";
import { type GenerateOptions, generate, type Prompt } from "../src/model/generate.js";
import { createModel } from "../src/model/llama.js";
import { initParams, type LlamaParams } from "../src/model/params.js";
import { sandboxTokenizer } from "../src/sandbox/forms.js";
import { preset } from "../src/sandbox/preset.js";
import type { Tokenizer } from "../src/tokenizer/tokenizer.js";

const { values: args } = parseArgs({
  options: {
    long: { type: "boolean", default: false },
    threads: { type: "string", default: "1" },
    models: { type: "string", default: "sandbox,stories260K,100M" },
  },
});
const scale = args.long ? 4 : 1;
const rounds = args.long ? 2 : 1;
const threads = Number(args.threads);
const kernels = await createKernels("ort");
const tmp = await mkdtemp(join(tmpdir(), "srlm-bench-sampling-"));

interface Case {
  name: string;
  config: LlamaConfig;
  params: LlamaParams;
  /** undefined: prompts are token ids and samples are not decoded (random models). */
  tokenizer: Tokenizer | undefined;
  gguf: string;
  prompts: Prompt[];
  opts: GenerateOptions;
}

const randomPrompts = (count: number, len: number, lo: number, hi: number, seed: number): number[][] => {
  const rng = mulberry32(seed);
  return Array.from({ length: count }, () => Array.from({ length: len }, () => lo + Math.floor(rng() * (hi - lo))));
};

async function randomCase(name: string, c: LlamaConfig, prompts: number, n: number, maxNew: number): Promise<Case> {
  const tok = sandboxTokenizer(); // its few ids are padded to the vocabulary in the GGUF
  const params = initParams(c, 1);
  const gguf = join(tmp, `${name}.gguf`);
  await exportLlamaGguf(gguf, { config: c, params, tokenizer: tok, name });
  return {
    name,
    config: c,
    params,
    tokenizer: undefined,
    gguf,
    prompts: randomPrompts(prompts * scale, 16, 4, tok.vocabSize, 7),
    opts: { n, temperature: 0.7, topP: 0.9, maxNewTokens: maxNew, seed: 1, stopTokens: [] },
  };
}

async function makeCase(name: string): Promise<Case> {
  if (name === "sandbox") {
    const tok = sandboxTokenizer();
    return randomCase("sandbox", llamaConfig({ vocabSize: tok.vocabSize, ...preset("sandbox").model }), 32, 4, 64);
  }
  if (name === "100M") {
    const c = llamaConfig({ vocabSize: 16000, dim: 768, nLayers: 10, nHeads: 12, nKvHeads: 4, hiddenDim: 2048, maxSeqLen: 256 });
    return randomCase("100M", c, 4, 4, 32);
  }
  if (name === "stories260K") {
    const gguf = join(import.meta.dirname, "..", "..", "shared", "models", "stories260K.gguf");
    const g = loadGgufModel(gguf);
    const texts = ["Once upon a time", "The little dog", "Lily and Ben", "One day, a girl"];
    return {
      name,
      config: g.config,
      params: g.params,
      tokenizer: g.tokenizer,
      gguf,
      prompts: Array.from({ length: 8 * scale }, (_, i) => texts[i % texts.length]),
      opts: { n: 4, temperature: 0.7, topP: 0.9, maxNewTokens: 128, seed: 1, stopTokens: [] },
    };
  }
  throw new Error(`unknown model ${name} (sandbox, stories260K, 100M)`);
}

const nParams = (c: LlamaConfig, p: LlamaParams) =>
  p.embed.length +
  (c.tieEmbeddings ? 0 : p.lmHead.length) +
  p.layers.reduce((a, l) => a + [l.wq, l.wk, l.wv, l.wo, l.wGate, l.wUp, l.wDown].reduce((b, w) => b + w.length, 0), 0);

const rows: string[] = [];
console.log(`kernels ort; llama.cpp CPU build, ${threads} thread(s), F16 KV cache; ${rounds} round(s)`);
for (const name of args.models.split(",")) {
  const k = await makeCase(name);
  const model = createModel(k.config, k.params, kernels);
  const samples = k.prompts.length * (k.opts.n ?? 1);
  const llama = await LlamaCppModel.open(k.gguf, { sequences: Math.min(samples, 64), threads });
  const countTokens = (out: { ids: number[] }[][]) => out.flat().reduce((a, s) => a + s.ids.length, 0);
  // Warm-up: the first call pays for kernel sessions and llama.cpp's graph reservation.
  await generate(model, k.tokenizer, k.prompts.slice(0, 1), { ...k.opts, n: 1, maxNewTokens: 4 });
  await llama.generate(k.tokenizer, k.prompts.slice(0, 1), { ...k.opts, n: 1, maxNewTokens: 4 });
  const rate = { builtin: [] as number[], llama: [] as number[] };
  for (let r = 0; r < rounds; r++) {
    let t0 = performance.now();
    const a = await generate(model, k.tokenizer, k.prompts, k.opts);
    rate.builtin.push(countTokens(a) / ((performance.now() - t0) / 1000));
    t0 = performance.now();
    const b = await llama.generate(k.tokenizer, k.prompts, k.opts);
    rate.llama.push(countTokens(b) / ((performance.now() - t0) / 1000));
    const same = a.flat().filter((s, i) => s.ids.join() === b.flat()[i].ids.join()).length;
    console.log(
      `${name} round ${r}: builtin ${rate.builtin[r].toFixed(0)} tok/s, llama.cpp ${rate.llama[r].toFixed(0)} tok/s (${countTokens(a)} tokens; ${same}/${samples} samples identical)`,
    );
  }
  await llama.dispose();
  const best = (xs: number[]) => Math.max(...xs);
  rows.push(
    `| ${name} | ${(nParams(k.config, k.params) / 1e6).toFixed(2)}M | ${k.prompts.length} × ${k.opts.n} × ${k.opts.maxNewTokens} | ${best(rate.builtin).toFixed(0)} | ${best(rate.llama).toFixed(0)} | ${(best(rate.builtin) / best(rate.llama)).toFixed(2)}× |`,
  );
}
console.log(
  "\n| model | parameters | prompts × n × tokens | builtin tok/s | llama.cpp tok/s | builtin / llama.cpp |\n|---|---|---|---|---|---|",
);
console.log(rows.join("\n"));
await disposeCpuLlama();
await kernels.dispose();
await rm(tmp, { recursive: true, force: true });
