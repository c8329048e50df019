// The trainer: SFT learns with the prompt masked, checkpoints are atomic and pruned, a run stopped
// (aborted, or crashed without warning) and resumed ends equal to one that never stopped, a
// non-finite loss stops the run with the last good checkpoint intact, and resume refuses other data.
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ReferenceKernels } from "../../src/engine/kernels.js";
import { loadHfModel } from "../../src/io/hf-folder.js";
import { readSafetensors } from "../../src/io/safetensors.js";
import { llamaConfig } from "../../src/model/config.js";
import { createModel } from "../../src/model/llama.js";
import { initParams, toNamed } from "../../src/model/params.js";
import { CharTokenizer } from "../../src/tokenizer/char.js";
import { sftConfig } from "../../src/train/config.js";
import { type SftExample, tokenizeSft } from "../../src/train/data.js";
import { type SftConfig, sft } from "../../src/train/sft.js";
import { fullTrainable } from "../../src/train/trainable.js";
import { ResumeError, TrainingDivergedError } from "../../src/train/trainer.js";

const tok = new CharTokenizer("abcd=");
const cfg = llamaConfig({ vocabSize: tok.vocabSize, dim: 16, nLayers: 2, nHeads: 2, hiddenDim: 32, maxSeqLen: 24 });
const kernels = new ReferenceKernels();

function reverseData(n: number, seed: number): SftExample[] {
  let s = seed;
  const rnd = () => {
    s = (s * 1103515245 + 12345) >>> 0;
    return s / 2 ** 32;
  };
  return Array.from({ length: n }, () => {
    const w = Array.from({ length: 2 + Math.floor(rnd() * 3) }, () => "abcd"[Math.floor(rnd() * 4)]).join("");
    return tokenizeSft(tok, { prompt: `${w}=`, completion: [...w].reverse().join("") });
  });
}

const data = reverseData(24, 1);
const freshModel = () => createModel(cfg, initParams(cfg, 3), kernels);
const tmp = () => mkdtemp(join(tmpdir(), "srlm-trainer-"));

function config(outputDir: string, extra: Record<string, unknown> = {}): SftConfig {
  return sftConfig({
    output_dir: outputDir,
    learning_rate: 3e-3,
    lr_scheduler_type: "cosine",
    warmup_steps: 2,
    max_steps: 12,
    per_device_train_batch_size: 3,
    gradient_accumulation_steps: 2,
    logging_steps: 2,
    save_steps: 4,
    weight_decay: 0.01,
    seed: 5,
    ...extra,
  });
}

function flat(model: ReturnType<typeof freshModel>): Float32Array[] {
  return toNamed(cfg, model.params).map((t) => t.data.slice());
}

function assertSameParams(a: Float32Array[], b: Float32Array[], what: string): void {
  let worst = 0;
  for (let i = 0; i < a.length; i++) for (let j = 0; j < a[i].length; j++) worst = Math.max(worst, Math.abs(a[i][j] - b[i][j]));
  assert.ok(worst <= 1e-6, `${what}: max |Δ| = ${worst}`);
}

async function metricsLines(dir: string): Promise<Record<string, number>[]> {
  const text = await readFile(join(dir, "metrics.jsonl"), "utf8");
  return text
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, number>)
    .map(({ tokens_per_second: _, ...rest }) => rest);
}

test("SFT lowers the completion loss; outputs: metrics.jsonl, checkpoints, a loadable final model", async () => {
  const dir = await tmp();
  const model = freshModel();
  const res = await sft(
    fullTrainable(model),
    data,
    config(dir, { max_steps: 40, save_steps: 10, save_total_limit: 2, learning_rate: 1e-2 }),
    {
      eval: reverseData(8, 99),
      progress: false,
    },
  );
  assert.equal(res.steps, 40, "40 steps");
  const lines = await metricsLines(dir);
  const train = lines.filter((l) => "loss" in l);
  assert.equal(train.length, 20, "one line per 2 steps");
  for (const k of ["step", "epoch", "loss", "grad_norm", "learning_rate"]) assert.ok(k in train[0], `metrics has ${k}`);
  assert.ok(train.at(-1)!.loss < train[0].loss * 0.75, `loss fell: ${train[0].loss} → ${train.at(-1)!.loss}`);
  assert.ok(typeof res.lastEval?.eval_loss === "number" && res.lastEval.eval_loss > 0, "eval_loss at the end");
  const entries = (await readdir(dir)).sort();
  assert.deepEqual(
    entries.filter((e) => e.startsWith("checkpoint-")),
    ["checkpoint-20", "checkpoint-30"],
    "save_total_limit 2 keeps the newest two",
  );
  assert.ok(!entries.some((e) => e.includes(".tmp")), `no temp folders left: ${entries}`);
  const loaded = await loadHfModel(res.finalDir);
  assertSameParams(
    toNamed(cfg, loaded.params).map((t) => t.data),
    flat(model),
    "final/ holds the trained weights",
  );
  await rm(dir, { recursive: true });
});

test("a run aborted at step 6, or crashed at step 7, and resumed equals the uninterrupted run", async () => {
  const dirA = await tmp();
  const a = freshModel();
  await sft(fullTrainable(a), data, config(dirA), { progress: false });
  const want = flat(a);
  const wantMetrics = await metricsLines(dirA);

  // Abort: the trainer saves checkpoint-6 at the step boundary and rethrows the reason.
  const dirB = await tmp();
  const ac = new AbortController();
  await assert.rejects(
    sft(fullTrainable(freshModel()), data, config(dirB), {
      signal: ac.signal,
      onProgress: (p) => p.step === 6 && ac.abort(new Error("stop here")),
    }),
    /stop here/,
    "abort propagates",
  );
  assert.ok((await readdir(dirB)).includes("checkpoint-6"), "checkpoint saved on abort");
  const b = freshModel();
  const rb = await sft(fullTrainable(b), data, config(dirB), { progress: false });
  assert.equal(rb.resumedFrom, 6, "resumed from step 6");
  assertSameParams(flat(b), want, "abort + resume");
  assert.deepEqual(await metricsLines(dirB), wantMetrics, "metrics.jsonl as if never stopped");

  // Crash: an exception mid-run, nothing saved after checkpoint-4; steps 5–7 are redone.
  const dirC = await tmp();
  await assert.rejects(
    sft(fullTrainable(freshModel()), data, config(dirC), {
      onProgress: (p) => {
        if (p.step === 7) throw new Error("power cut");
      },
    }),
    /power cut/,
    "crash propagates",
  );
  const c = freshModel();
  const rc = await sft(fullTrainable(c), data, config(dirC), { progress: false });
  assert.equal(rc.resumedFrom, 4, "resumed from the last checkpoint");
  assertSameParams(flat(c), want, "crash + resume");
  assert.deepEqual(await metricsLines(dirC), wantMetrics, "metrics after a crash: the torn window is replayed");

  // A finished run resumes to its final weights without training.
  const d = freshModel();
  const rd = await sft(fullTrainable(d), data, config(dirA), { progress: false });
  assert.equal(rd.resumedFrom, 12, "nothing left to do");
  assertSameParams(flat(d), want, "final weights loaded");
  for (const dir of [dirA, dirB, dirC]) await rm(dir, { recursive: true });
});

test("resume refuses a checkpoint made on other data or settings, naming the field", async () => {
  const dir = await tmp();
  const ac = new AbortController();
  await assert.rejects(
    sft(fullTrainable(freshModel()), data, config(dir), { signal: ac.signal, onProgress: (p) => p.step === 4 && ac.abort() }),
    "aborted",
  );
  await assert.rejects(
    sft(fullTrainable(freshModel()), reverseData(24, 2), config(dir), { progress: false }),
    (e: Error) => e instanceof ResumeError && /data_hash/.test(e.message) && /checkpoint-4/.test(e.message),
    "other data",
  );
  await assert.rejects(
    sft(fullTrainable(freshModel()), data, config(dir, { seed: 6 }), { progress: false }),
    (e: Error) => e instanceof ResumeError && /seed/.test(e.message),
    "other seed",
  );
  await rm(dir, { recursive: true });
});

test("a non-finite loss stops the run before the update and leaves the last checkpoint intact", async () => {
  const dir = await tmp();
  const model = freshModel();
  let before: Float32Array | undefined;
  const err = await sft(fullTrainable(model), data, config(dir), {
    onProgress: (p) => {
      if (p.step === 5) {
        model.params.embed[tok.encode("a", { addBos: false })[0] * cfg.dim] = Number.NaN; // poison one weight
        before = model.params.layers[0].wq.slice();
      }
    },
  }).catch((e: Error) => e);
  assert.ok(err instanceof TrainingDivergedError, `a TrainingDivergedError, got ${err}`);
  assert.equal(err.step, 6, "the step that diverged");
  assert.match(err.message, /non-finite/, "says what happened");
  assert.match(err.message, /checkpoint-4/, "names the last good checkpoint");
  assert.deepEqual(model.params.layers[0].wq, before, "parameters not updated by the failing step");
  const ck = await readSafetensors(join(dir, "checkpoint-4", "model.safetensors"));
  for (const [name, t] of ck.tensors) assert.ok(t.data.every(Number.isFinite), `checkpoint tensor ${name} is finite`);
  assert.ok(!(await readdir(dir)).includes("final"), "no final model from a diverged run");
  await rm(dir, { recursive: true });
});

test("epochs set the step count; packing puts several examples in each row", async () => {
  const dir = await tmp();
  const res = await sft(fullTrainable(freshModel()), data, config(dir, { max_steps: -1, num_train_epochs: 2, save_steps: 0 }), {
    progress: false,
  });
  assert.equal(res.steps, 8, "2 epochs × 24 examples / (3 × 2 per step)");
  const lines = await metricsLines(dir);
  assert.equal(lines.at(-1)?.epoch, 2, "ends at epoch 2");
  const dir2 = await tmp();
  const packed = await sft(fullTrainable(freshModel()), data, config(dir2, { packing: true, max_length: 24, max_steps: 4 }), {
    progress: false,
  });
  assert.ok(packed.rows <= data.length / 2, `${data.length} examples of 7–11 tokens packed into ${packed.rows} rows of ≤ 24`);
  for (const d of [dir, dir2]) await rm(d, { recursive: true });
});
