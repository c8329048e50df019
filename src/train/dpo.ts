/**
 * DPO and its family on preference pairs: per micro-batch, chosen and rejected rows go through the
 * policy in one forward (2·b sequences), their completion log-probs are summed per sequence, the loss
 * (losses.ts) gives d(loss)/d(sequence log-prob), and that value is the gradient at each of the
 * sequence's completion tokens.
 *
 * The reference log-probs are computed once, before the first step, with the model as it is then
 * (M_t, the reference of the paper's iteration), and stored in output_dir so a resumed run uses the
 * very same numbers: no second model sits in memory while training.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { writeJsonAtomic } from "../io/atomic.js";
import { forward, type LlamaModel } from "../model/llama.js";
import type { NamedTensor } from "../model/params.js";
import { dataHash, type LmRow, lengthGroups, type PreferenceExample, padRows, sftRow } from "./data.js";
import { type RowLogps, rowLogps, sumPerRow } from "./logps.js";
import { checkDpoLossConfig, type DpoLossConfig, dpoLoss } from "./losses.js";
import type { RunOptions } from "./sft.js";
import type { Trainable } from "./trainable.js";
import { type Objective, runTrainer, type TrainerConfig, type TrainResult } from "./trainer.js";

export interface DpoConfig extends TrainerConfig, DpoLossConfig {
  /** Longest row (prompt + one response) in tokens; default null = the model's maxSeqLen. */
  maxLength: number | null;
}

/** One pair ready for training: both rows and their reference log-probs. */
export interface DpoRow {
  chosen: LmRow;
  rejected: LmRow;
  refChosen: number;
  refRejected: number;
  weight: number;
  label?: number;
  /** SCIR: the judge's preference probability (the consistency penalty's target). */
  judgeProb?: number;
}

export interface DpoResult extends TrainResult {
  pairs: number;
  truncated: number;
}

export const REFERENCE_FILE = "reference_logps.json";

export function dpoObjective(loss: DpoLossConfig, padId = 0): Objective<DpoRow> {
  return {
    name: "dpo",
    units: () => 1,
    async step(t: Trainable, pairs, denominator, train) {
      // Pairs of similar length run together (less padding); the loss decomposes over pairs.
      const out = { loss: 0, metrics: {} as Record<string, number>, tokens: 0 };
      const lengths = pairs.map((p) => Math.max(p.chosen.ids.length, p.rejected.ids.length));
      for (const group of lengthGroups(lengths, 128)) {
        const r = await pairGroupStep(
          t,
          group.map((i) => pairs[i]),
          denominator,
          train,
          loss,
          padId,
        );
        out.loss += r.loss;
        out.tokens += r.tokens;
        for (const [k, v] of Object.entries(r.metrics)) out.metrics[k] = (out.metrics[k] ?? 0) + v;
      }
      return out;
    },
  };
}

/** One forward (and backward) over a group of pairs: chosen and rejected rows in one (2n, T) batch. */
async function pairGroupStep(
  t: Trainable,
  pairs: readonly DpoRow[],
  denominator: number,
  train: boolean,
  loss: DpoLossConfig,
  padId: number,
) {
  const n = pairs.length;
  const batch = padRows([...pairs.map((p) => p.chosen), ...pairs.map((p) => p.rejected)], padId); // (2n, T)
  const r = await forward(t.model, batch, { train });
  const idx = Array.from({ length: 2 * n }, (_, i) => i);
  const seq = new Float64Array(2 * n);
  const len = new Int32Array(2 * n);
  sumPerRow(r.logp, batch.targets, batch.T, idx, seq, len);
  const res = dpoLoss(
    {
      policyChosen: seq.subarray(0, n),
      policyRejected: seq.subarray(n),
      refChosen: pairs.map((p) => p.refChosen),
      refRejected: pairs.map((p) => p.refRejected),
      chosenTokens: len.subarray(0, n),
      rejectedTokens: len.subarray(n),
      weights: pairs.map((p) => p.weight),
      labels: loss.lossType === "soft_label" ? pairs.map((p) => p.label ?? Number.NaN) : undefined,
      judgeProbs: loss.consistency ? pairs.map((p) => p.judgeProb ?? Number.NaN) : undefined,
    },
    loss,
    denominator,
  );
  if (train && r.tape) {
    const dlogp = new Float32Array(batch.B * batch.T);
    spreadToTokens(res.dPolicyChosen, res.dPolicyRejected, batch.targets, batch.T, dlogp);
    await t.backward(r.tape, dlogp);
  }
  // Metrics are means over this group; weight them by its share of the step.
  const metrics: Record<string, number> = {};
  for (const [k, v] of Object.entries(res.metrics)) if (k !== "loss" && typeof v === "number") metrics[k] = (v * n) / denominator;
  return { loss: res.loss, metrics, tokens: pairs.reduce((a, p) => a + p.chosen.ids.length + p.rejected.ids.length, 0) };
}

/** d(loss)/d(sequence log-prob) is the gradient at every completion token of that sequence. */
function spreadToTokens(dc: Float64Array, dr: Float64Array, targets: Int32Array, T: number, dlogp: Float32Array): void {
  const n = dc.length;
  for (let b = 0; b < 2 * n; b++) {
    const g = b < n ? dc[b] : dr[b - n];
    for (let t = b * T; t < (b + 1) * T; t++) if (targets[t] >= 0) dlogp[t] = g;
  }
}

/** Rows for each pair (prompt + chosen, prompt + rejected), truncated to maxLength as SFT rows are. */
export function preferenceRows(
  data: readonly PreferenceExample[],
  maxLength: number,
): { chosen: LmRow[]; rejected: LmRow[]; truncated: number } {
  let truncated = 0;
  const chosen: LmRow[] = [];
  const rejected: LmRow[] = [];
  for (const [i, ex] of data.entries()) {
    try {
      const c = sftRow(ex.prompt, ex.chosen, maxLength);
      const r = sftRow(ex.prompt, ex.rejected, maxLength);
      if (c.truncated || r.truncated) truncated++;
      chosen.push(c.row);
      rejected.push(r.row);
    } catch (e) {
      throw new Error(`preference example ${i}: ${(e as Error).message}`);
    }
  }
  return { chosen, rejected, truncated };
}

/** Reference log-probs of every chosen and rejected row under `model`. */
export async function referenceLogps(
  model: LlamaModel,
  chosen: readonly LmRow[],
  rejected: readonly LmRow[],
  opts: { batchSize?: number; signal?: AbortSignal } = {},
): Promise<{ chosen: RowLogps; rejected: RowLogps }> {
  const all = await rowLogps(model, [...chosen, ...rejected], opts);
  const n = chosen.length;
  return {
    chosen: { logps: all.logps.slice(0, n), tokens: all.tokens.slice(0, n) },
    rejected: { logps: all.logps.slice(n), tokens: all.tokens.slice(n) },
  };
}

/**
 * Train `trainable` with the configured DPO-family loss. The reference is the model as it is when
 * called (or `opts.reference`, precomputed log-probs per pair). Writes reference_logps.json,
 * checkpoints, metrics.jsonl and final/ to cfg.outputDir.
 */
export async function dpo(
  trainable: Trainable,
  data: readonly PreferenceExample[],
  cfg: DpoConfig,
  opts: RunOptions & { eval?: readonly PreferenceExample[]; reference?: { chosen: ArrayLike<number>; rejected: ArrayLike<number> } } = {},
): Promise<DpoResult> {
  checkDpoLossConfig(cfg);
  const maxLength = cfg.maxLength ?? trainable.model.config.maxSeqLen;
  if (maxLength > trainable.model.config.maxSeqLen) {
    throw new RangeError(`dpo.max_length ${maxLength} exceeds the model's max_position_embeddings ${trainable.model.config.maxSeqLen}`);
  }
  if (cfg.lossType === "soft_label") {
    for (const [i, ex] of data.entries()) {
      if (ex.label === undefined || !(ex.label >= 0 && ex.label <= 1)) {
        throw new RangeError(`preference example ${i}: loss_type "soft_label" needs a label in [0, 1] (got ${ex.label})`);
      }
    }
  }
  const { chosen, rejected, truncated } = preferenceRows(data, maxLength);
  const hash = dataHash([...chosen, ...rejected].flatMap((r) => [r.ids, r.targets]));
  const ref = opts.reference
    ? { chosen: Array.from(opts.reference.chosen), rejected: Array.from(opts.reference.rejected) }
    : await cachedReference(trainable, chosen, rejected, join(cfg.outputDir, REFERENCE_FILE), hash, cfg.perDeviceTrainBatchSize * 2, opts);
  if (ref.chosen.length !== data.length || ref.rejected.length !== data.length) {
    throw new RangeError(`dpo: ${data.length} pairs but ${ref.chosen.length} / ${ref.rejected.length} reference log-probs`);
  }
  const rows = (d: readonly PreferenceExample[], c: LmRow[], r: LmRow[], rc: ArrayLike<number>, rr: ArrayLike<number>): DpoRow[] =>
    d.map((ex, i) => ({
      chosen: c[i],
      rejected: r[i],
      refChosen: rc[i],
      refRejected: rr[i],
      weight: ex.weight ?? 1,
      label: ex.label,
      judgeProb: ex.judgeProb,
    }));
  const train = rows(data, chosen, rejected, ref.chosen, ref.rejected);
  let evalRows: DpoRow[] | undefined;
  if (opts.eval && opts.eval.length > 0) {
    // Evaluation pairs are scored against the same reference model, computed now (before training).
    const e = preferenceRows(opts.eval, maxLength);
    const er = await referenceLogps(trainable.model, e.chosen, e.rejected, { batchSize: cfg.perDeviceTrainBatchSize * 2 });
    evalRows = rows(opts.eval, e.chosen, e.rejected, er.chosen.logps, er.rejected.logps);
  }
  const { eval: _e, reference: _r, ...run } = opts;
  const res = await runTrainer({ ...run, trainable, objective: dpoObjective(cfg), config: cfg, train, eval: evalRows, dataHash: hash });
  return { ...res, pairs: data.length, truncated };
}

/**
 * Reference log-probs, computed once and kept in output_dir for resumes. They are reused only for the
 * same data and the same starting weights (a resumed run is called with its initial model again).
 */
export async function cachedReference(
  tr: Trainable,
  chosen: LmRow[],
  rejected: LmRow[],
  path: string,
  hash: string,
  batchSize: number,
  opts: { signal?: AbortSignal; resume?: boolean },
): Promise<{ chosen: number[]; rejected: number[] }> {
  const weights = paramsHash(tr.params);
  if (opts.resume !== false) {
    try {
      const saved = JSON.parse(await readFile(path, "utf8")) as {
        data_hash: string;
        weights_hash: string;
        chosen: number[];
        rejected: number[];
      };
      if (saved.data_hash === hash && saved.weights_hash === weights) return saved;
    } catch {
      // absent or torn: compute
    }
  }
  const r = await referenceLogps(tr.model, chosen, rejected, { batchSize, signal: opts.signal });
  const out = { data_hash: hash, weights_hash: weights, chosen: Array.from(r.chosen.logps), rejected: Array.from(r.rejected.logps) };
  await mkdir(dirname(path), { recursive: true });
  await writeJsonAtomic(path, out, { space: 0 });
  return out;
}

/** A fingerprint of the starting weights (resume reuses reference log-probs only for the same ones). */
function paramsHash(params: readonly NamedTensor[]): string {
  const h = createHash("sha256");
  for (const t of params) h.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  return h.digest("hex").slice(0, 16);
}
