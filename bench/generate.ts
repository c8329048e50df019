/**
 * Sampling benchmark: the continuous-batching `generate` (src/model/generate.ts) against the chunked
 * one it replaced (bench/generate-chunked.ts), alternating in the same process, round after round
 * (the first of each round alternates too), on the same prompts and seed. Prints per run the wall
 * time, tokens/s, decode steps and mean active slots per decode step, then the medians and the
 * new/old speedup per round; and checks that both return the same samples (ids, text, finish reason;
 * log-probs compared bit for bit, reported apart).
 *
 *   npx tsx bench/generate.ts                          # the real judge workload (see below), 3 rounds
 *   npx tsx bench/generate.ts --model random           # random sandbox-sized model, mixed lengths
 *   npx tsx bench/generate.ts --prompts 64 --rounds 2 --max-batch 96
 *
 * "sb3" (default when present): the trained sandbox model runs/sb3/m1/final judging the first
 * `--prompts` candidates of runs/T-sr/iter-1 with n = 3, temperature 0.7, top-p 0.9, 160 new tokens:
 * the loop's judge step. "random": dim 128, 4 layers, 4/2 heads, hidden 384, vocab 60, maxSeqLen 192,
 * prompts of 8–60 random tokens, stop token 3, which a random model draws at varying steps (mean
 * sample ≈ vocab tokens), capped at 160.
 */
import { existsSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { Kernels } from "../src/engine/kernels.js";
import { createKernels } from "../src/engine/ort.js";
import { mulberry32 } from "../src/engine/tensor.js";
import { readJsonl } from "../src/io/jsonl.js";
import { fromHfConfig, llamaConfig } from "../src/model/config.js";
import { type GenerateOptions, generate, type Prompt, type Sample } from "../src/model/generate.js";
import { createModel, type LlamaModel } from "../src/model/llama.js";
import { fromNamed, initParams } from "../src/model/params.js";
import { judgePrompt, sandboxTokenizer } from "../src/sandbox/forms.js";
import type { Tokenizer } from "../src/tokenizer/tokenizer.js";
import { generateChunked } from "./generate-chunked.js";

const SB3 = "runs/sb3/m1/final";
const { values: args } = parseArgs({
  options: {
    model: { type: "string", default: existsSync(`${SB3}/model.safetensors`) ? "sb3" : "random" },
    prompts: { type: "string", default: "256" },
    n: { type: "string", default: "3" },
    rounds: { type: "string", default: "3" },
    "max-batch": { type: "string", default: "256" },
    "max-new": { type: "string", default: "160" },
    threads: { type: "string" },
  },
});
const nPrompts = Number(args.prompts);
const rounds = Number(args.rounds);

const kernels = await createKernels("ort", args.threads ? { threads: Number(args.threads) } : {});
let model: LlamaModel;
let tok: Tokenizer | undefined;
let prompts: Prompt[];
let opts: GenerateOptions;
if (args.model === "sb3") {
  const { readSafetensors } = await import("../src/io/safetensors.js");
  const cfg = fromHfConfig(JSON.parse(readFileSync(`${SB3}/config.json`, "utf8")));
  model = createModel(cfg, fromNamed(cfg, (await readSafetensors(`${SB3}/model.safetensors`)).tensors), kernels);
  tok = sandboxTokenizer();
  const cands = (await readJsonl<{ prompt_id: string; text: string }>("runs/T-sr/iter-1/candidates.jsonl")).slice(0, nPrompts);
  const byId = new Map((await readJsonl<{ id: string; instruction: string }>("runs/T-sr/iter-1/prompts.jsonl")).map((p) => [p.id, p]));
  prompts = cands.map((c) => judgePrompt(byId.get(c.prompt_id)?.instruction ?? "", c.text));
  opts = { n: Number(args.n), temperature: 0.7, topP: 0.9, seed: 1, maxNewTokens: Number(args["max-new"]) };
} else {
  const cfg = llamaConfig({ vocabSize: 60, dim: 128, nLayers: 4, nHeads: 4, nKvHeads: 2, hiddenDim: 384, maxSeqLen: 192 });
  model = createModel(cfg, initParams(cfg, 1), kernels);
  tok = undefined;
  const rng = mulberry32(5);
  prompts = Array.from({ length: nPrompts }, () => Array.from({ length: 8 + Math.floor(rng() * 53) }, () => 4 + Math.floor(rng() * 56)));
  opts = { n: Number(args.n), temperature: 1, seed: 1, maxNewTokens: Number(args["max-new"]), stopTokens: [3] };
}
opts.maxBatch = Number(args["max-batch"]);

/** Counts decode steps: every step calls `mlpForward` once per layer (the prefill runs the block kernels). */
function counting(k: Kernels): { kernels: Kernels; calls: () => number } {
  let calls = 0;
  const wrapped = Object.create(k) as Kernels;
  wrapped.mlpForward = (...a: Parameters<Kernels["mlpForward"]>) => {
    calls++;
    return k.mlpForward(...a);
  };
  return { kernels: wrapped, calls: () => calls };
}

type Gen = typeof generate;
const impls: [string, Gen][] = [
  ["old (chunked)", generateChunked],
  ["new (continuous)", generate],
];
const results = new Map<string, Sample[][]>();
const rates = new Map<string, number[]>();
const P = prompts.length;
const n = opts.n ?? 1;
console.log(
  `model ${args.model}, ${P} prompts × n=${n}, maxBatch ${opts.maxBatch}, maxNew ${opts.maxNewTokens}, ${rounds} rounds, kernels ort`,
);
for (let r = 0; r < rounds; r++) {
  const order = r % 2 === 0 ? impls : [...impls].reverse();
  for (const [name, fn] of order) {
    const c = counting(kernels);
    const m: LlamaModel = { ...model, kernels: c.kernels };
    let tokens = 0;
    const t0 = performance.now();
    const out = await fn(m, tok, prompts, {
      ...opts,
      onProgress: (p) => {
        tokens = p.tokens;
      },
    });
    const dt = (performance.now() - t0) / 1000;
    const steps = c.calls() / model.config.nLayers;
    const active = (tokens - P * n) / steps; // tokens drawn in decode steps (the first comes from the prefill)
    console.log(
      `round ${r} ${name.padEnd(17)} ${dt.toFixed(2)} s  ${tokens} tokens  ${(tokens / dt).toFixed(0)} tok/s  ${steps} decode steps  mean active ${active.toFixed(1)} of ${opts.maxBatch}`,
    );
    rates.set(name, [...(rates.get(name) ?? []), tokens / dt]);
    results.set(name, out);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const [o, nw] = impls.map(([name]) => rates.get(name) as number[]);
console.log(`median tok/s: old ${median(o).toFixed(0)}, new ${median(nw).toFixed(0)}`);
console.log(
  `speedup new/old per round: ${o.map((x, i) => (nw[i] / x).toFixed(2)).join(" ")}, median ${median(o.map((x, i) => nw[i] / x)).toFixed(2)}`,
);

// Same samples?
const a = results.get(impls[0][0]) as Sample[][];
const b = results.get(impls[1][0]) as Sample[][];
let differ = 0;
let lpDiffer = 0;
let maxLp = 0;
let lengths = 0;
for (let p = 0; p < P; p++) {
  for (let i = 0; i < n; i++) {
    const x = a[p][i];
    const y = b[p][i];
    lengths += x.ids.length;
    if (x.ids.join() !== y.ids.join() || x.text !== y.text || x.finishReason !== y.finishReason) differ++;
    else if (x.logprob !== y.logprob) {
      lpDiffer++;
      maxLp = Math.max(maxLp, Math.abs(x.logprob - y.logprob));
    }
  }
}
console.log(
  `samples: ${P * n}, mean length ${(lengths / (P * n)).toFixed(1)}; different ids/text: ${differ}; same ids but logprob not bit-equal: ${lpDiffer} (max |Δ| ${maxLp.toExponential(2)})`,
);
await kernels.dispose();
