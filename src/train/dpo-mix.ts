/**
 * The loop's training step: DPO on the iteration's pairs with seed-data rows (M1's IFT + EFT) mixed
 * into every step, so the model keeps answering and judging in the form it learned:
 *
 *   loss = dpo_loss(pairs) + weight · (mean per-token NLL of the mixed seed rows)
 *
 * Each example is one pair plus `rowsPerPair` seed rows, assigned by a seeded permutation. With the
 * preference term off (`preference: false`) the same steps train on the seed rows alone: the
 * no-preference control that self-rewarding must beat (DESIGN §4), at exactly the same step count.
 */

import { join } from "node:path";
import { forward } from "../model/llama.js";
import {
  dataHash,
  type LmRow,
  lengthGroups,
  type PreferenceExample,
  padRows,
  permutation,
  type SftExample,
  sftRow,
  targetCount,
} from "./data.js";
import { cachedReference, type DpoConfig, type DpoResult, type DpoRow, dpoObjective, preferenceRows, REFERENCE_FILE } from "./dpo.js";
import { checkDpoLossConfig, type DpoLossConfig } from "./losses.js";
import type { RunOptions } from "./sft.js";
import type { Trainable } from "./trainable.js";
import { type Objective, runTrainer } from "./trainer.js";

export interface MixOptions {
  /** Seed rows per pair (0 = none). */
  rowsPerPair: number;
  /** Weight of the seed rows' mean per-token NLL. */
  weight: number;
  /** The DPO term on (false = the no-preference control: seed rows only, same steps). */
  preference: boolean;
}

export interface MixItem {
  pair: DpoRow;
  rows: readonly LmRow[];
}

/**
 * Per item: the DPO loss of its pair (when `preference`) plus weight · Σ NLL(rows) / tokensPerItem,
 * where tokensPerItem is the mean completion tokens of an item's rows over the whole data, so the
 * NLL term is a per-token mean in expectation without depending on which rows share a step.
 */
export function dpoMixObjective(loss: DpoLossConfig, mix: MixOptions, tokensPerItem: number, padId = 0): Objective<MixItem> {
  const dpo = dpoObjective(loss, padId);
  return {
    name: mix.preference ? "dpo+sft" : "sft (control)",
    units: () => 1,
    async step(t: Trainable, items, denominator, train) {
      const out = mix.preference
        ? await dpo.step(
            t,
            items.map((it) => it.pair),
            denominator,
            train,
          )
        : { loss: 0, metrics: {} as Record<string, number>, tokens: 0 };
      const rows = items.flatMap((it) => it.rows);
      if (rows.length > 0 && mix.weight > 0) {
        const scale = mix.weight / (tokensPerItem * denominator);
        let nll = 0;
        for (const group of lengthGroups(rows.map((r) => r.ids.length))) {
          const batch = padRows(
            group.map((i) => rows[i]),
            padId,
          ); // (b, T)
          const r = await forward(t.model, batch, { train });
          const N = batch.B * batch.T;
          let sum = 0;
          for (let i = 0; i < N; i++) if (batch.targets[i] >= 0) sum -= r.logp[i];
          if (train && r.tape) {
            const dlogp = new Float32Array(N);
            for (let i = 0; i < N; i++) if (batch.targets[i] >= 0) dlogp[i] = -scale;
            await t.backward(r.tape, dlogp);
          }
          nll += sum;
          out.tokens += group.reduce((a, i) => a + rows[i].ids.length, 0);
        }
        out.loss += nll * scale;
        out.metrics["nll/seed"] = (out.metrics["nll/seed"] ?? 0) + nll / (tokensPerItem * denominator);
      }
      return out;
    },
  };
}

/**
 * Train on `pairs` (DPO-family loss, reference = the model as it is when called) with `seed` rows
 * mixed in. Writes reference_logps.json (when the preference term is on), checkpoints, metrics.jsonl
 * and final/ to cfg.outputDir; resumes from its checkpoints.
 */
export async function dpoMix(
  trainable: Trainable,
  pairs: readonly PreferenceExample[],
  seed: readonly SftExample[],
  cfg: DpoConfig,
  mix: MixOptions,
  opts: RunOptions = {},
): Promise<DpoResult> {
  checkDpoLossConfig(cfg);
  if (mix.rowsPerPair > 0 && seed.length === 0) throw new RangeError("mix.rows_per_pair > 0 but there are no seed rows to mix in");
  if (!mix.preference && (mix.rowsPerPair === 0 || mix.weight === 0)) {
    throw new RangeError("the no-preference control trains only on mixed seed rows: set mix.rows_per_pair > 0 and mix.weight > 0");
  }
  const maxLength = cfg.maxLength ?? trainable.model.config.maxSeqLen;
  const { chosen, rejected, truncated } = preferenceRows(pairs, maxLength);
  const seedRows = seed.map((ex, i) => {
    try {
      return sftRow(ex.prompt, ex.completion, maxLength).row;
    } catch (e) {
      throw new Error(`seed row ${i}: ${(e as Error).message}`);
    }
  });
  // Item i takes the next rowsPerPair rows of one seeded pass over the seed data (wrapping around).
  const order = permutation(Math.max(1, seedRows.length), cfg.seed, 0);
  const rowsOf = (i: number) =>
    Array.from({ length: mix.rowsPerPair }, (_, j) => seedRows[order[(i * mix.rowsPerPair + j) % seedRows.length]]);
  const assigned = pairs.map((_, i) => rowsOf(i));
  let tokensPerItem = 1;
  if (mix.rowsPerPair > 0) {
    let tokens = 0;
    for (const r of seedRows) tokens += targetCount(r.targets);
    tokensPerItem = Math.max(1, (tokens / seedRows.length) * mix.rowsPerPair);
  }
  const hash = dataHash([...chosen, ...rejected, ...assigned.flat()].flatMap((r) => [r.ids, r.targets]));
  const ref = mix.preference
    ? await cachedReference(trainable, chosen, rejected, join(cfg.outputDir, REFERENCE_FILE), hash, cfg.perDeviceTrainBatchSize * 2, opts)
    : { chosen: pairs.map(() => 0), rejected: pairs.map(() => 0) };
  const items: MixItem[] = pairs.map((ex, i) => ({
    pair: {
      chosen: chosen[i],
      rejected: rejected[i],
      refChosen: ref.chosen[i],
      refRejected: ref.rejected[i],
      weight: ex.weight ?? 1,
      label: ex.label,
      judgeProb: ex.judgeProb,
    },
    rows: assigned[i],
  }));
  const res = await runTrainer({
    ...opts,
    trainable,
    objective: dpoMixObjective(cfg, mix, tokensPerItem),
    config: cfg,
    train: items,
    dataHash: hash,
  });
  return { ...res, pairs: pairs.length, truncated };
}
