/**
 * Engine benchmark: srlm's builtin engine against plain eager PyTorch (bench/torch_llama.py) on the
 * same architecture and batch, alternating in the same run. Prints tokens/s for a training step
 * (forward + backward + AdamW), a forward pass and KV-cache sampling, the share of the step spent in
 * kernels (per kernel), one DPO optimizer step with full-parameter and with LoRA training, and the
 * ratio srlm / PyTorch per round and its median.
 *
 *   npm run bench                                  # both configs, 3 rounds
 *   npm run bench -- --only sandbox --steps 5 --no-torch
 *   npm run bench -- --dpo-steps 0                 # skip the DPO rows
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
import { initParams } from "../src/model/params.js";
import { adamwInit, adamwStep, adamwStepNamed, clipScale, globalNorm } from "../src/train/adamw.js";
import { type LmRow, sftRow } from "../src/train/data.js";
import { type DpoRow, dpoObjective, referenceLogps } from "../src/train/dpo.js";
import { initLora, loraTargets, loraTrainable } from "../src/train/lora.js";
import { defaultDpoLoss } from "../src/train/losses.js";
import { fullTrainable, type Trainable } from "../src/train/trainable.js";

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
    rounds: { type: "string", default: "3" },
    python: { type: "string", default: "/usr/bin/python3" },
    // DPO rows: timed optimizer steps per mode (after one warm-up step); 0 skips them.
    "dpo-steps": { type: "string", default: "4" },
  },
});
const steps = Number(args.steps);
const dpoSteps = Number(args["dpo-steps"]);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function timed(f: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

function fmt(x: number): string {
  return x >= 100 ? x.toFixed(0) : x.toFixed(1);
}

function benchModelConfig(bc: BenchConfig) {
  return llamaConfig({
    vocabSize: bc.vocab,
    dim: bc.dim,
    nLayers: bc.layers,
    nHeads: bc.heads,
    nKvHeads: bc.kvHeads,
    hiddenDim: bc.hidden,
    maxSeqLen: bc.seq + 1,
  });
}

async function benchSrlm(bc: BenchConfig) {
  const cfg = benchModelConfig(bc);
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
    const grads = await backward(model, r.tape!, dlogp);
    adamwStep(cfg, model.params, grads, opt, { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 });
  };
  for (let i = 0; i < 2; i++) await trainStep();
  kernels.reset();
  const stepTimes: number[] = [];
  for (let i = 0; i < steps; i++) stepTimes.push(await timed(trainStep));
  const total = stepTimes.reduce((a, b) => a + b, 0);
  const stepMs = median(stepTimes); // medians throughout, as bench/torch_llama.py reports
  const share = kernels.busyMs / total;
  const byOp = [...kernels.byOp.entries()]
    .sort((a, b) => b[1].ms - a[1].ms)
    .map(([op, e]) => `${op} ${((100 * e.ms) / total).toFixed(0)}% (${fmt(e.flops / e.ms / 1e6)} GFLOP/s)`)
    .join(", ");
  const gflops = kernels.flops / steps / (kernels.busyMs / steps) / 1e6;

  await forward(model, { tokens, targets, B, T });
  const fwdTimes: number[] = [];
  for (let i = 0; i < Math.max(3, steps); i++) fwdTimes.push(await timed(() => forward(model, { tokens, targets, B, T })));
  const fwdMs = median(fwdTimes);

  const promptLen = Math.min(16, T - 1);
  const prompts = Array.from({ length: B }, (_, b) => Array.from(data.subarray(b * (T + 1), b * (T + 1) + promptLen)));
  await generate(model, undefined, prompts, { maxNewTokens: 4, temperature: 1, stopTokens: [] });
  let nNew = 0;
  const genTimes: number[] = [];
  for (let i = 0; i < 3; i++) {
    genTimes.push(
      await timed(async () => {
        const out = await generate(model, undefined, prompts, { maxNewTokens: T - promptLen, temperature: 1, stopTokens: [], seed: i });
        nNew = out.reduce((a, s) => a + s[0].ids.length, 0);
      }),
    );
  }
  const genMs = median(genTimes);
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

/** One DPO workload's numbers: tokens/s over both sequences of every pair, and where the step went. */
interface DpoBench {
  tokS: number;
  stepMs: number;
  /** Median ms of the step's parts: forward + loss + backward, global norm + AdamW, afterUpdate. */
  fwdBwdMs: number;
  optMs: number;
  afterMs: number;
  trainedParams: number;
  kernelShare: number;
  byOp: string;
}

/** DPO shapes: batch / 2 pairs, so chosen + rejected rows make the train row's B × T; the completion is the second half. */
function dpoShape(bc: BenchConfig): { pairs: number; T: number; prompt: number } {
  return { pairs: Math.max(1, bc.batch >> 1), T: bc.seq, prompt: bc.seq >> 1 };
}

const dpoAdam = { lr: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };
const dpoMaxGradNorm = 1;

/**
 * One DPO optimizer step as the trainer runs it (trainer.ts): zeroGrad, beginMicroBatch, the DPO
 * objective's step (one forward of chosen + rejected, summed completion log-probs, sigmoid loss
 * against precomputed reference log-probs, backward), global norm, AdamW with the clip factor,
 * afterUpdate. Measured for full-parameter training and for LoRA (r 8, alpha 16, no dropout, all
 * seven Linear layers).
 */
async function benchDpo(bc: BenchConfig): Promise<{ full: DpoBench; lora: DpoBench }> {
  const cfg = benchModelConfig(bc);
  const kernels = new TimedKernels(await createKernels("ort"));
  const { pairs, T, prompt } = dpoShape(bc);
  const rng = mulberry32(2);
  const rand = (n: number) => Array.from({ length: n }, () => Math.floor(rng() * bc.vocab));
  const chosen: LmRow[] = [];
  const rejected: LmRow[] = [];
  for (let i = 0; i < pairs; i++) {
    const p = rand(prompt);
    chosen.push(sftRow(p, rand(T - prompt), T).row);
    rejected.push(sftRow(p, rand(T - prompt), T).row);
  }
  // Reference log-probs: the initial model (a fresh LoRA adapter is a no-op, so the same for both), once.
  const ref = await referenceLogps(createModel(cfg, initParams(cfg, 0), kernels), chosen, rejected, { batchSize: 2 * pairs });
  const rows: DpoRow[] = chosen.map((c, i) => ({
    chosen: c,
    rejected: rejected[i],
    refChosen: ref.chosen.logps[i],
    refRejected: ref.rejected.logps[i],
    weight: 1,
  }));
  const objective = dpoObjective(defaultDpoLoss);

  const run = async (tr: Trainable): Promise<DpoBench> => {
    const opt = adamwInit();
    let seed = 0;
    const step = async () => {
      const t0 = performance.now();
      tr.zeroGrad();
      tr.beginMicroBatch(seed++);
      const r = await objective.step(tr, rows, rows.length, true);
      const t1 = performance.now();
      const norm = globalNorm(tr.grads);
      if (!Number.isFinite(r.loss) || !Number.isFinite(norm)) throw new Error(`dpo bench: loss ${r.loss}, gradient norm ${norm}`);
      adamwStepNamed(tr.params, tr.grads, opt, dpoAdam, dpoAdam.lr, clipScale(norm, dpoMaxGradNorm));
      const t2 = performance.now();
      await tr.afterUpdate();
      const t3 = performance.now();
      return { total: t3 - t0, fwdBwd: t1 - t0, opt: t2 - t1, after: t3 - t2, tokens: r.tokens };
    };
    await step(); // warm-up: first-call kernel setup, AdamW moments
    kernels.reset();
    const ts = [];
    for (let i = 0; i < dpoSteps; i++) ts.push(await step());
    const total = ts.reduce((a, t) => a + t.total, 0);
    const stepMs = median(ts.map((t) => t.total));
    return {
      tokS: ts[0].tokens / (stepMs / 1000),
      stepMs,
      fwdBwdMs: median(ts.map((t) => t.fwdBwd)),
      optMs: median(ts.map((t) => t.opt)),
      afterMs: median(ts.map((t) => t.after)),
      trainedParams: tr.params.reduce((a, t) => a + t.data.length, 0),
      kernelShare: kernels.busyMs / total,
      byOp: [...kernels.byOp.entries()]
        .sort((a, b) => b[1].ms - a[1].ms)
        .map(([op, e]) => `${op} ${((100 * e.ms) / total).toFixed(0)}%`)
        .join(", "),
    };
  };
  const full = await run(fullTrainable(createModel(cfg, initParams(cfg, 0), kernels)));
  const adapter = initLora(cfg, { r: 8, alpha: 16, dropout: 0, targetModules: [...loraTargets] }, 0);
  const lora = await run(loraTrainable(createModel(cfg, initParams(cfg, 0), kernels), adapter));
  await kernels.dispose();
  return { full, lora };
}

interface TorchResult {
  matmul_gflops: number;
  train_tok_s: number;
  forward_tok_s: number;
  sample_new_tok_s: number;
  matmul_share_profiler: number | null;
  matmul_share_estimate: number;
  /** Present when run with --dpo-steps > 0. */
  dpo?: { full: TorchDpo; lora: TorchDpo };
}

interface TorchDpo {
  tok_s: number;
  step_ms: number;
  fwd_bwd_ms: number;
  opt_ms: number;
  trained_params: number;
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
      ...["--dpo-steps", dpoSteps, "--dpo-pairs", dpoShape(bc).pairs, "--dpo-prompt", dpoShape(bc).prompt].map(String),
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

/** srlm tok/s ÷ PyTorch tok/s per workload (> 1: srlm is faster). */
interface Ratios {
  train: number;
  forward: number;
  sample: number;
  "dpo-full"?: number;
  "dpo-lora"?: number;
}
const ratioKeys = ["train", "forward", "sample", "dpo-full", "dpo-lora"] as const;
const label: Record<keyof Ratios, string> = {
  train: "train",
  forward: "forward",
  sample: "sampling",
  "dpo-full": "dpo-full",
  "dpo-lora": "dpo-lora",
};

// The machines this runs on are shared and noisy: run srlm and PyTorch alternately, `rounds` times,
// and report every round's ratio and their median.
const rounds = Number(args.rounds);
for (const bc of configs) {
  if (args.only && args.only !== bc.name) continue;
  console.log(
    `\n== ${bc.name}: dim ${bc.dim}, ${bc.layers} layers, ${bc.heads} heads / ${bc.kvHeads} kv, MLP ${bc.hidden}, vocab ${bc.vocab}, batch ${bc.batch} × ${bc.seq}`,
  );
  const ratios: Ratios[] = [];
  for (let round = 1; round <= (args["no-torch"] ? 1 : rounds); round++) {
    if (!args["no-torch"]) console.log(`-- round ${round}/${rounds}`);
    const s = await benchSrlm(bc);
    console.log(`srlm   (${(s.params / 1e6).toFixed(2)}M params, onnxruntime kernels, 2 threads)`);
    console.log(`  train step (fwd+bwd+AdamW): ${fmt(s.trainTokS)} tok/s  (median ${fmt(s.stepMs)} ms/step)`);
    console.log(
      `  kernel share of the step:   ${(s.matmulShare * 100).toFixed(0)}%  (matrix products at ${fmt(s.matmulGflops)} GFLOP/s of kernel time)`,
    );
    console.log(`    by kernel: ${s.byOp}`);
    console.log(`  forward:                    ${fmt(s.forwardTokS)} tok/s`);
    console.log(`  sampling (KV cache):        ${fmt(s.sampleTokS)} new tok/s`);
    const dpo = dpoSteps > 0 ? await benchDpo(bc) : undefined;
    if (dpo) {
      const { pairs, T } = dpoShape(bc);
      for (const [mode, d] of [
        ["full", dpo.full],
        ["lora", dpo.lora],
      ] as const) {
        console.log(
          `  dpo-${mode} step (${pairs} pairs × 2 × ${T}): ${fmt(d.tokS)} tok/s  (median ${fmt(d.stepMs)} ms/step: fwd+loss+bwd ${fmt(d.fwdBwdMs)}, norm+AdamW ${fmt(d.optMs)}, afterUpdate ${fmt(d.afterMs)}; ${(d.trainedParams / 1e6).toFixed(3)}M trained)`,
        );
        console.log(`    kernels ${(d.kernelShare * 100).toFixed(0)}% of the step: ${d.byOp}`);
      }
    }
    if (args["no-torch"]) continue;
    const t = benchTorch(bc);
    if (typeof t === "string") {
      console.log(`PyTorch baseline unavailable (${t}). Install it with: apt-get install -y python3-torch libopenblas0-pthread`);
      break;
    }
    console.log(`PyTorch (eager, 2 threads; its 1024³ matmul: ${fmt(t.matmul_gflops)} GFLOP/s)`);
    console.log(
      `  train step: ${fmt(t.train_tok_s)} tok/s, matmul share ${((t.matmul_share_profiler ?? t.matmul_share_estimate) * 100).toFixed(0)}%`,
    );
    console.log(`  forward:    ${fmt(t.forward_tok_s)} tok/s`);
    console.log(`  sampling:   ${fmt(t.sample_new_tok_s)} new tok/s`);
    if (t.dpo) {
      for (const [mode, d] of [
        ["full", t.dpo.full],
        ["lora", t.dpo.lora],
      ] as const) {
        console.log(
          `  dpo-${mode}:   ${fmt(d.tok_s)} tok/s  (median ${fmt(d.step_ms)} ms/step: fwd+loss+bwd ${fmt(d.fwd_bwd_ms)}, clip+AdamW ${fmt(d.opt_ms)}; ${(d.trained_params / 1e6).toFixed(3)}M trained)`,
        );
      }
    }
    const r: Ratios = {
      train: s.trainTokS / t.train_tok_s,
      forward: s.forwardTokS / t.forward_tok_s,
      sample: s.sampleTokS / t.sample_new_tok_s,
    };
    if (dpo && t.dpo) {
      r["dpo-full"] = dpo.full.tokS / t.dpo.full.tok_s;
      r["dpo-lora"] = dpo.lora.tokS / t.dpo.lora.tok_s;
    }
    ratios.push(r);
    console.log(
      `ratio srlm / PyTorch: ${ratioKeys
        .filter((k) => r[k] !== undefined)
        .map((k) => `${label[k]} ${r[k]?.toFixed(2)}×`)
        .join(", ")}`,
    );
  }
  if (ratios.length > 1) {
    const m = (k: keyof Ratios) => median(ratios.map((r) => r[k] ?? Number.NaN)).toFixed(2);
    const keys = ratioKeys.filter((k) => ratios.every((r) => r[k] !== undefined));
    console.log(
      `${bc.name}: median ratio srlm / PyTorch over ${ratios.length} rounds: ${keys.map((k) => `${label[k]} ${m(k)}×`).join(", ")}`,
    );
  }
}
