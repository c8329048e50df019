/**
 * Engine benchmark: srlm's builtin engine against plain eager PyTorch (bench/torch_llama.py) on the
 * same architecture and batch, measured in the same run. Prints tokens/s for a training step
 * (forward + backward + AdamW), a forward pass and KV-cache sampling, the share of the step spent in
 * matmul kernels, and the ratio srlm / PyTorch.
 *
 *   npm run bench                 # both configs
 *   npm run bench -- --only sandbox --steps 5 --no-torch
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { createKernels } from "../src/engine/ort.js";
import { mulberry32 } from "../src/engine/tensor.js";
import { TimedKernels } from "../src/engine/timed.js";
import { llamaConfig, paramCount } from "../src/model/config.js";
import { generate } from "../src/model/generate.js";
import { backward, createModel, forward } from "../src/model/llama.js";
import { initParams, zerosLike } from "../src/model/params.js";
import { adamwInit, adamwStep } from "../src/train/adamw.js";

interface BenchConfig {
  name: string;
  dim: number;
  layers: number;
  heads: number;
  kvHeads: number;
  hidden: number;
  vocab: number;
  seq: number;
  batch: number;
}

const configs: BenchConfig[] = [
  { name: "10M", dim: 384, layers: 6, heads: 6, kvHeads: 2, hidden: 1024, vocab: 512, seq: 128, batch: 8 },
  { name: "sandbox", dim: 128, layers: 4, heads: 4, kvHeads: 2, hidden: 384, vocab: 100, seq: 48, batch: 64 },
];

const { values: args } = parseArgs({
  options: {
    only: { type: "string" },
    steps: { type: "string", default: "8" },
    "no-torch": { type: "boolean", default: false },
    python: { type: "string", default: "/usr/bin/python3" },
  },
});
const steps = Number(args.steps);

function fmt(x: number): string {
  return x >= 100 ? x.toFixed(0) : x.toFixed(1);
}

async function benchSrlm(bc: BenchConfig) {
  const cfg = llamaConfig({
    vocabSize: bc.vocab,
    dim: bc.dim,
    nLayers: bc.layers,
    nHeads: bc.heads,
    nKvHeads: bc.kvHeads,
    hiddenDim: bc.hidden,
    maxSeqLen: bc.seq + 1,
  });
  const kernels = new TimedKernels(await createKernels("ort"));
  const model = createModel(cfg, initParams(cfg, 0), kernels);
  const B = bc.batch;
  const T = bc.seq;
  const rng = mulberry32(1);
  // T + 1 random tokens per row so all T positions have a next-token target, as in the torch bench.
  const data = Int32Array.from({ length: B * (T + 1) }, () => Math.floor(rng() * bc.vocab));
  const tokens = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    tokens.set(data.subarray(b * (T + 1), b * (T + 1) + T), b * T);
    targets.set(data.subarray(b * (T + 1) + 1, (b + 1) * (T + 1)), b * T);
  }
  const opt = adamwInit();
  const dlogp = new Float32Array(B * T).fill(-1 / (B * T)); // mean cross-entropy
  const trainStep = async () => {
    const r = await forward(model, { tokens, targets, B, T }, { train: true });
    const grads = zerosLike(cfg);
    await backward(model, r.tape!, dlogp, grads);
    adamwStep(cfg, model.params, grads, opt, { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 });
  };
  for (let i = 0; i < 2; i++) await trainStep();
  kernels.reset();
  let t0 = performance.now();
  for (let i = 0; i < steps; i++) await trainStep();
  const stepMs = (performance.now() - t0) / steps;
  const share = kernels.busyMs / steps / stepMs;
  const byOp = [...kernels.byOp.entries()]
    .sort((a, b) => b[1].ms - a[1].ms)
    .map(([op, e]) => `${op} ${((100 * e.ms) / steps / stepMs).toFixed(0)}% (${fmt(e.flops / e.ms / 1e6)} GFLOP/s)`)
    .join(", ");
  const gflops = kernels.flops / steps / (kernels.busyMs / steps) / 1e6;

  await forward(model, { tokens, targets, B, T });
  t0 = performance.now();
  const nFwd = Math.max(3, steps);
  for (let i = 0; i < nFwd; i++) await forward(model, { tokens, targets, B, T });
  const fwdMs = (performance.now() - t0) / nFwd;

  const promptLen = Math.min(16, T - 1);
  const prompts = Array.from({ length: B }, (_, b) => Array.from(data.subarray(b * (T + 1), b * (T + 1) + promptLen)));
  await generate(model, undefined, prompts, { maxNewTokens: 4, temperature: 1, stopTokens: [] });
  t0 = performance.now();
  const out = await generate(model, undefined, prompts, { maxNewTokens: T - promptLen, temperature: 1, stopTokens: [] });
  const genMs = performance.now() - t0;
  const nNew = out.reduce((a, s) => a + s[0].ids.length, 0);
  await kernels.dispose();
  return {
    params: paramCount(cfg),
    trainTokS: (B * T) / (stepMs / 1000),
    stepMs,
    matmulShare: share,
    byOp,
    matmulGflops: gflops,
    forwardTokS: (B * T) / (fwdMs / 1000),
    sampleTokS: nNew / (genMs / 1000),
  };
}

interface TorchResult {
  matmul_gflops: number;
  train_tok_s: number;
  forward_tok_s: number;
  sample_new_tok_s: number;
  matmul_share_profiler: number | null;
  matmul_share_estimate: number;
}

function benchTorch(bc: BenchConfig): TorchResult | string {
  const script = path.join(import.meta.dirname, "torch_llama.py");
  if (!existsSync(args.python)) return `no ${args.python}`;
  // torch_llama.py sets OMP_WAIT_POLICY=PASSIVE itself: libgomp's spinning threads otherwise fight
  // OpenBLAS's for the two cores and slow torch 2–15× (see bench/README.md).
  const env = { ...process.env };
  const r = spawnSync(
    args.python,
    [
      script,
      ...["--dim", bc.dim, "--layers", bc.layers, "--heads", bc.heads, "--kv-heads", bc.kvHeads, "--hidden", bc.hidden],
      ...["--vocab", bc.vocab, "--seq", bc.seq, "--batch", bc.batch, "--steps", steps, "--threads", 2, "--json"].map(String),
    ].map(String),
    { encoding: "utf8", env, timeout: 600_000 },
  );
  if (r.status !== 0) return `torch bench failed: ${(r.stderr || r.stdout || "").trim().split("\n").slice(-3).join(" | ")}`;
  const line = r.stdout
    .trim()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .pop();
  if (!line) return "torch bench printed no JSON";
  return JSON.parse(line) as TorchResult;
}

for (const bc of configs) {
  if (args.only && args.only !== bc.name) continue;
  console.log(
    `\n== ${bc.name}: dim ${bc.dim}, ${bc.layers} layers, ${bc.heads} heads / ${bc.kvHeads} kv, MLP ${bc.hidden}, vocab ${bc.vocab}, batch ${bc.batch} × ${bc.seq}`,
  );
  const s = await benchSrlm(bc);
  console.log(`srlm   (${(s.params / 1e6).toFixed(2)}M params, onnxruntime kernels, 2 threads)`);
  console.log(`  train step (fwd+bwd+AdamW): ${fmt(s.trainTokS)} tok/s  (${fmt(s.stepMs)} ms/step)`);
  console.log(
    `  matmul share of the step:   ${(s.matmulShare * 100).toFixed(0)}%  (kernels ran at ${fmt(s.matmulGflops)} GFLOP/s while busy)`,
  );
  console.log(`    by kernel: ${s.byOp}`);
  console.log(`  forward:                    ${fmt(s.forwardTokS)} tok/s`);
  console.log(`  sampling (KV cache):        ${fmt(s.sampleTokS)} new tok/s`);
  if (args["no-torch"]) continue;
  const t = benchTorch(bc);
  if (typeof t === "string") {
    console.log(`PyTorch baseline unavailable (${t}). Install it with: apt-get install -y python3-torch libopenblas0-pthread`);
    continue;
  }
  console.log(`PyTorch (eager, 2 threads; its 1024³ matmul: ${fmt(t.matmul_gflops)} GFLOP/s)`);
  console.log(
    `  train step: ${fmt(t.train_tok_s)} tok/s, matmul share ${((t.matmul_share_profiler ?? t.matmul_share_estimate) * 100).toFixed(0)}%`,
  );
  console.log(`  forward:    ${fmt(t.forward_tok_s)} tok/s`);
  console.log(`  sampling:   ${fmt(t.sample_new_tok_s)} new tok/s`);
  console.log(
    `ratio srlm / PyTorch: train ${(s.trainTokS / t.train_tok_s).toFixed(2)}×, forward ${(s.forwardTokS / t.forward_tok_s).toFixed(2)}×, sampling ${(s.sampleTokS / t.sample_new_tok_s).toFixed(2)}×`,
  );
}
