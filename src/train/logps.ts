/**
 * Per-sequence log-probabilities of completions: Σ_t log π(y_t | x, y_<t) over a row's target
 * positions. DPO needs them for the reference model once per data set (computed before training, so
 * no second model sits in memory), CREAM and SCIR use them as the implicit reward.
 */
import { forward, type LlamaModel } from "../model/llama.js";
import { type LmRow, padRows } from "./data.js";

export interface RowLogps {
  /** (n) summed log-prob of each row's targets (nats). */
  logps: Float64Array;
  /** (n) number of target tokens of each row. */
  tokens: Int32Array;
}

export interface RowLogpsOptions {
  /** Rows per forward (default 16). Rows are sorted by length first, so batches pad little. */
  batchSize?: number;
  padId?: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

export async function rowLogps(model: LlamaModel, rows: readonly LmRow[], opts: RowLogpsOptions = {}): Promise<RowLogps> {
  const n = rows.length;
  const bs = Math.max(1, opts.batchSize ?? 16);
  const logps = new Float64Array(n);
  const tokens = new Int32Array(n);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => rows[a].ids.length - rows[b].ids.length || a - b);
  for (let s = 0; s < n; s += bs) {
    opts.signal?.throwIfAborted();
    const idx = order.slice(s, s + bs);
    const batch = padRows(
      idx.map((i) => rows[i]),
      opts.padId,
    );
    const { logp } = await forward(model, batch);
    sumPerRow(logp, batch.targets, batch.T, idx, logps, tokens);
    opts.onProgress?.(Math.min(n, s + bs), n);
  }
  return { logps, tokens };
}

/** For each batch row b: out[idx[b]] = Σ logp over positions with a target. */
export function sumPerRow(
  logp: Float32Array,
  targets: Int32Array,
  T: number,
  idx: readonly number[],
  outLogps: Float64Array,
  outTokens: Int32Array,
): void {
  for (let b = 0; b < idx.length; b++) {
    let s = 0;
    let k = 0;
    for (let t = b * T; t < (b + 1) * T; t++) {
      if (targets[t] >= 0) {
        s += logp[t];
        k++;
      }
    }
    outLogps[idx[b]] = s;
    outTokens[idx[b]] = k;
  }
}
