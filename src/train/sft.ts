/**
 * Supervised fine-tuning: mean next-token cross-entropy over completion tokens only (the prompt is
 * masked), rows padded per micro-batch or packed to max_length.
 */
import { forward } from "../model/llama.js";
import { dataHash, type LmRow, lengthGroups, packRows, padRows, type SftExample, sftRow, targetCount } from "./data.js";
import type { Trainable } from "./trainable.js";
import { type Objective, runTrainer, type TrainerConfig, type TrainProgress, type TrainResult } from "./trainer.js";

export interface SftConfig extends TrainerConfig {
  /** Longest row in tokens, prompt + completion (default null = the model's maxSeqLen). */
  maxLength: number | null;
  /** Pack several examples into each row of maxLength tokens (TRL `packing`, default false). */
  packing: boolean;
}

export interface RunOptions {
  signal?: AbortSignal;
  onProgress?: (p: TrainProgress) => void;
  progress?: boolean;
  onLog?: (line: Record<string, number>) => void;
  /** Continue from the latest checkpoint in output_dir (default true). */
  resume?: boolean;
}

export interface SftResult extends TrainResult {
  /** Rows trained on (after packing) and examples that had to be truncated to fit. */
  rows: number;
  truncated: number;
}

/** Mean NLL per completion token; the denominator is the step's number of completion tokens. */
export function sftObjective(padId = 0): Objective<LmRow> {
  return {
    name: "sft",
    units: (row) => targetCount(row.targets),
    async step(t: Trainable, rows, denominator, train) {
      // Rows of similar length run together (less padding); the loss is a sum, so groups add up.
      let loss = 0;
      for (const group of lengthGroups(rows.map((r) => r.ids.length))) {
        const batch = padRows(
          group.map((i) => rows[i]),
          padId,
        );
        const r = await forward(t.model, batch, { train });
        const { targets } = batch;
        const N = batch.B * batch.T;
        let sum = 0;
        for (let i = 0; i < N; i++) if (targets[i] >= 0) sum -= r.logp[i];
        if (train && r.tape) {
          // d(Σ NLL / denominator)/d(logp) = −1/denominator at each completion token
          const dlogp = new Float32Array(N);
          for (let i = 0; i < N; i++) if (targets[i] >= 0) dlogp[i] = -1 / denominator;
          await t.backward(r.tape, dlogp);
        }
        loss += sum / denominator;
      }
      return { loss, metrics: {}, tokens: rows.reduce((a, row) => a + row.ids.length, 0) };
    },
  };
}

/** Build the rows an SFT run trains on. */
export function sftRows(data: readonly SftExample[], maxLength: number, packing: boolean): { rows: LmRow[]; truncated: number } {
  let truncated = 0;
  const rows = data.map((ex, i) => {
    try {
      const r = sftRow(ex.prompt, ex.completion, maxLength);
      if (r.truncated) truncated++;
      return r.row;
    } catch (e) {
      throw new Error(`SFT example ${i}: ${(e as Error).message}`);
    }
  });
  return { rows: packing ? packRows(rows, maxLength) : rows, truncated };
}

/** Fine-tune `trainable` on prompt → completion examples. Writes checkpoints, metrics.jsonl and final/ to cfg.outputDir. */
export async function sft(
  trainable: Trainable,
  data: readonly SftExample[],
  cfg: SftConfig,
  opts: RunOptions & { eval?: readonly SftExample[] } = {},
): Promise<SftResult> {
  const maxLength = cfg.maxLength ?? trainable.model.config.maxSeqLen;
  if (maxLength > trainable.model.config.maxSeqLen) {
    throw new RangeError(`sft.max_length ${maxLength} exceeds the model's max_position_embeddings ${trainable.model.config.maxSeqLen}`);
  }
  const { rows, truncated } = sftRows(data, maxLength, cfg.packing);
  const evalRows = opts.eval ? sftRows(opts.eval, maxLength, false).rows : undefined;
  const hash = dataHash(rows.flatMap((r) => [r.ids, r.targets]));
  const { eval: _, ...run } = opts;
  const res = await runTrainer({ ...run, trainable, objective: sftObjective(), config: cfg, train: rows, eval: evalRows, dataHash: hash });
  return { ...res, rows: rows.length, truncated };
}
