/**
 * `srlm compare`: the methods side by side (DESIGN §2, §4). Every (row, seed) is a normal run directory
 * of `srlm run`, so each one resumes on its own:
 *
 *   <out>/m1-seed<s>/                  M1 of sandbox seed s, built by the first run that needs it
 *   <out>/<row>-seed<k>/               one run: row = a method, `oracle` (sr, judge.by gold) or `control`
 *   <out>/<row>-seed<k>/m1 → ../m1-seed<s>   a symlink, so the runs of one seed share one M1
 *   <out>/compare.json, compare.md, compare.html
 *
 * Running it again with the same --out skips the finished runs (config.resolved.yaml the same and the
 * last iteration evaluated) and resumes the others; a run whose directory holds another config fails
 * with runLoop's error and the others go on.
 *
 * Seeds: seed k sets the run's `seed` (prompts, sampling, judging, data order) and, with m1 "per-seed",
 * M1's sandbox seed too (its data, initial weights and held-out prompts): the spread over seeds then
 * includes M1's. With m1 "shared", every seed uses the config's own M1.
 */
import { lstat, mkdir, readFile, symlink } from "node:fs/promises";
import { join, relative } from "node:path";
import type { Kernels } from "../engine/kernels.js";
import { readJsonl } from "../io/jsonl.js";
import { ConfigError } from "../model/config.js";
import { kendallTauB } from "../pairs/cream.js";
import type { CompareRunResult } from "../report/compare.js";
import { configYaml, deepMerge, METHODS, type Method, type RunConfig, runConfig } from "./config.js";
import type { Candidate, Judgement } from "./records.js";
import { m1Preset, rebuildMetrics, runLoop } from "./run.js";
import { exists } from "./stages.js";

/** The methods `--methods` takes; `control` and `oracle` are the reference rows (added unless --no-reference). */
export const COMPARE_METHODS = METHODS.filter((m) => m !== "control") as Exclude<Method, "control">[];
export type CompareMethod = (typeof COMPARE_METHODS)[number];

export interface CompareOptions {
  methods: readonly CompareMethod[];
  /** Seeds per row: k = the config's seed, +1, … */
  seeds: number;
  out: string;
  /** Add the oracle (sr with judge.by gold) and the no-preference control rows. */
  reference: boolean;
  /** "per-seed": M1's sandbox seed moves with the run seed; "shared": one M1 (the config's) for every seed. */
  m1: "per-seed" | "shared";
}

export interface PlannedRun {
  row: string;
  seed: number;
  /** M1's sandbox seed, and the folder its M1 is built in. */
  m1Seed: number;
  m1Dir: string;
  dir: string;
  config: RunConfig;
}

const BLOCKS = ["cream", "scir", "meta", "temporal"] as const;
const isPlain = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * The runs of a comparison, from the merged raw config (config.ts `rawRunConfig`): one per row and
 * seed, ordered by seed so that each seed's M1 is built once and its runs finish together. A method's
 * settings block (`cream:` …) goes to that method's runs only; CREAM gets its soft-label loss.
 */
export function planCompare(raw: Record<string, unknown>, o: CompareOptions): PlannedRun[] {
  if (o.methods.length === 0) throw new ConfigError("--methods: no methods given");
  if (!Number.isInteger(o.seeds) || o.seeds < 1) throw new ConfigError(`--seeds must be a whole number ≥ 1 (got ${o.seeds})`);
  const rows: { row: string; method: Method; gold: boolean }[] = o.methods.map((m) => ({ row: m, method: m, gold: false }));
  if (o.reference) rows.push({ row: "oracle", method: "sr", gold: true }, { row: "control", method: "control", gold: false });
  const seen = new Set<string>();
  for (const r of rows) {
    if (seen.has(r.row)) throw new ConfigError(`--methods: "${r.row}" given twice`);
    seen.add(r.row);
  }

  const derive = (method: Method, gold: boolean, set: Record<string, unknown>, what: string): RunConfig => {
    let r: Record<string, unknown> = structuredClone(raw);
    for (const b of BLOCKS) if (b !== method) delete r[b];
    r = deepMerge(r, { ...set, method });
    if (gold) r = deepMerge(r, { judge: { by: "gold" } });
    const dpo = isPlain(r.dpo) ? r.dpo : {};
    if (method === "cream") r.dpo = { ...dpo, loss_type: "soft_label" };
    else if (dpo.loss_type === "soft_label")
      throw new ConfigError(`dpo.loss_type "soft_label" is CREAM's; the other methods of the comparison need another loss (${what})`);
    return runConfig(r, `compare run ${what}`);
  };

  const base = derive("sr", false, {}, "base");
  if (base.model.path !== undefined)
    throw new ConfigError("model.path: srlm compare measures every run against the sandbox's gold scorer, which a user model has none of");
  if (o.m1 === "shared" && base.lora !== undefined)
    throw new ConfigError(
      "--m1 shared with LoRA: the adapter in m1/ is initialised from the run seed, so seeds cannot share one M1 folder",
    );
  const presetSeed = m1Preset(base).seed;
  const plan: PlannedRun[] = [];
  for (let i = 0; i < o.seeds; i++) {
    const seed = base.seed + i;
    const m1Seed = o.m1 === "shared" ? presetSeed : presetSeed + i;
    // Only a moved M1 seed is written into the config, so seed 0's runs equal a plain `srlm run`.
    const set: Record<string, unknown> = { seed, ...(m1Seed !== presetSeed ? { model: { overrides: { seed: m1Seed } } } : {}) };
    for (const r of rows) {
      const config = derive(r.method, r.gold, set, `${r.row} seed ${seed}`);
      plan.push({ row: r.row, seed, m1Seed, m1Dir: join(o.out, `m1-seed${m1Seed}`), dir: join(o.out, `${r.row}-seed${seed}`), config });
    }
  }
  return plan;
}

/** Is the run finished with exactly this config (nothing left to do)? */
export async function runFinished(p: PlannedRun): Promise<boolean> {
  try {
    const text = await readFile(join(p.dir, "config.resolved.yaml"), "utf8");
    return text === configYaml(p.config) && (await exists(join(p.dir, `iter-${p.config.iterations}`, "eval.json")));
  } catch {
    return false;
  }
}

/**
 * <run>/m1 → the seed's shared M1 folder (a relative symlink), unless the run has its own m1/ already.
 * The shared folder must hold this preset's M1: a folder built with other settings is refused rather
 * than half reused.
 */
async function linkM1(p: PlannedRun): Promise<void> {
  await mkdir(p.m1Dir, { recursive: true });
  const presetPath = join(p.m1Dir, "preset.json");
  if (await exists(presetPath)) {
    const have = JSON.parse(await readFile(presetPath, "utf8"));
    if (JSON.stringify(have) !== JSON.stringify(m1Preset(p.config)))
      throw new Error(`${presetPath}: this M1 was built with other settings than ${p.row} seed ${p.seed} asks for; choose a new --out`);
  }
  await mkdir(p.dir, { recursive: true });
  const link = join(p.dir, "m1");
  try {
    await lstat(link);
    return; // there already: our link from an earlier call, or the run's own M1
  } catch {
    await symlink(relative(p.dir, p.m1Dir), link, "dir");
  }
}

export interface CompareRunOptions {
  kernels: Kernels;
  progress?: boolean;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
  signal?: AbortSignal;
  command?: string;
}

/**
 * Runs (or resumes, or skips) every planned run in order; a run that throws is reported and the others
 * go on, except on abort. Returns what each run holds now.
 */
export async function runCompare(plan: readonly PlannedRun[], o: CompareRunOptions): Promise<CompareRunResult[]> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const out: CompareRunResult[] = [];
  for (const [i, p] of plan.entries()) {
    const tag = `[${i + 1}/${plan.length}] ${p.row} seed ${p.seed}`;
    if (o.signal?.aborted) break;
    if (await runFinished(p)) {
      log(`${tag}: finished already (${p.dir})`);
      out.push({ ...(await collectRun(p)), status: "finished", seconds: 0 });
      continue;
    }
    log(`${tag}: running in ${p.dir}`);
    const t0 = performance.now();
    try {
      await linkM1(p);
      await runLoop(p.config, p.dir, {
        kernels: o.kernels,
        progress: o.progress,
        log: (l) => log(`  ${p.row}-seed${p.seed}: ${l}`),
        signal: o.signal,
        command: o.command,
      });
      const seconds = (performance.now() - t0) / 1000;
      log(`${tag}: done in ${seconds.toFixed(0)} s`);
      out.push({ ...(await collectRun(p)), status: "done", seconds });
    } catch (e) {
      if (o.signal?.aborted) throw e;
      const seconds = (performance.now() - t0) / 1000;
      const error = (e as Error).message;
      log(`${tag}: FAILED after ${seconds.toFixed(0)} s: ${error}`);
      // Its values count in no mean; and its directory may hold another config's run, not to be rewritten.
      out.push({ row: p.row, seed: p.seed, dir: p.dir, iterations: [], status: "failed", error, seconds });
    }
  }
  return out;
}

/** A run's table values per finished iteration: metrics.jsonl (rebuilt from the files), consistency and compute. */
export async function collectRun(p: PlannedRun): Promise<Omit<CompareRunResult, "status" | "seconds">> {
  const metrics = await rebuildMetrics(p.config, p.dir);
  const iterations: Record<string, number | null>[] = [];
  for (const m of metrics) {
    const t = m.iteration as number;
    const row: Record<string, number | null> = {};
    for (const k of ["eval/gold", "eval/exact", "eval/judge_pairwise", "pairs/gold_gap", "pairs/count"]) row[k] = finite(m[k]);
    if (t > 0) {
      const dir = join(p.dir, `iter-${t}`);
      Object.assign(row, await iterationCompute(dir));
      row["compare/consistency"] = finite((await iterationConsistency(dir, p.config)).consistency);
    }
    iterations[t] = row;
  }
  return { row: p.row, seed: p.seed, dir: p.dir, iterations };
}

const finite = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);

async function jsonLines(path: string): Promise<Record<string, unknown>[]> {
  return (await exists(path)) ? readJsonl<Record<string, unknown>>(path) : [];
}

async function trainerSteps(trainDir: string): Promise<number> {
  try {
    return (JSON.parse(await readFile(join(trainDir, "final", "trainer_state.json"), "utf8")) as { global_step: number }).global_step;
  } catch {
    return 0; // no pairs, so no trainer
  }
}

/**
 * The compute an iteration spent, counted from its files (the evaluation is the same for every method
 * and left out):
 *   compute/samples      generations of answers and prompts: M_t's candidates, Temporal's anchors (M1)
 *                        and future candidates, self-instructed prompts
 *   compute/judge_calls  judgements generated: K per judged candidate (M_t's, CREAM's previous judge,
 *                        Temporal's anchors and future candidates) and meta-judge verdicts
 *   compute/logp_rows    candidate rows scored by a forward pass, once per model (CREAM, SCIR)
 *   compute/dpo_steps    optimizer steps of the iteration's trainers (Temporal's future model too)
 *   compute/seconds      the iteration's stage times (times.json) without the evaluation
 */
export async function iterationCompute(dir: string): Promise<Record<string, number>> {
  const count = async (names: string[]) => {
    let n = 0;
    for (const name of names) n += (await jsonLines(join(dir, name))).length;
    return n;
  };
  const samples = await count(["candidates.jsonl", "anchor_candidates.jsonl", "future_candidates.jsonl", "self_instruct.jsonl"]);
  const judged = await count(["judgements.jsonl", "prev_judgements.jsonl", "anchor_judgements.jsonl", "future_judgements.jsonl"]);
  // A meta prompt too long for the context is skipped, not generated (text null).
  const meta = (await jsonLines(join(dir, "meta_judgements.jsonl"))).filter((m) => m.text !== null).length;
  const logpRows = (await jsonLines(join(dir, "candidate_logps.jsonl"))).reduce(
    (a, r) => a + Object.keys((r.logps as Record<string, number>) ?? {}).length,
    0,
  );
  const steps = (await trainerSteps(join(dir, "train"))) + (await trainerSteps(join(dir, "future")));
  let seconds = 0;
  try {
    const times = JSON.parse(await readFile(join(dir, "times.json"), "utf8")) as Record<string, number>;
    for (const [k, v] of Object.entries(times)) if (k !== "time/eval_s") seconds += v;
  } catch {
    seconds = Number.NaN; // an iteration from before times.json
  }
  return {
    "compute/samples": samples,
    "compute/judge_calls": judged + meta,
    "compute/logp_rows": logpRows,
    "compute/dpo_steps": steps,
    "compute/seconds": seconds,
  };
}

/**
 * Ranking consistency of one iteration's candidates, the same for every method and cheap (no model
 * call): per prompt, C = (τ_b + 1)/2 between the reward that ranked M_t's candidates (the mean parsed
 * judge score; the gold score for the oracle) and M_t's own length-normalised log-likelihood of them
 * (logprob / tokens, recorded when they were sampled). CREAM's iteration-1 consistency is this, with
 * the judge in place of its implicit reward; SCIR asks the same two rewards to agree. Mean over the
 * prompts where τ_b is defined (NaN when none). Pure.
 *
 * Not CREAM's cross-iteration consistency (M_{t−1} judging M_t's candidates): only CREAM records that
 * (metrics.jsonl `cream/consistency`), and for the others it would cost P·N·K more judge calls.
 * SPIN ranks nothing (no judge): NaN.
 */
export function rankingConsistency(
  candidates: readonly Candidate[],
  judgements: readonly Judgement[],
  by: "model" | "gold",
): { consistency: number; prompts: number } {
  const scores = new Map<string, number[]>();
  for (const j of judgements) {
    if (j.score === null) continue;
    const k = `${j.prompt_id}\u0000${j.candidate}`;
    const list = scores.get(k);
    if (list) list.push(j.score);
    else scores.set(k, [j.score]);
  }
  const byPrompt = new Map<string, { reward: number; likelihood: number }[]>();
  for (const c of candidates) {
    let reward = Number.NaN;
    if (by === "gold") reward = c.gold ?? Number.NaN;
    else {
      const s = scores.get(`${c.prompt_id}\u0000${c.index}`);
      if (s) reward = s.reduce((a, b) => a + b, 0) / s.length;
    }
    const item = { reward, likelihood: c.tokens > 0 ? c.logprob / c.tokens : Number.NaN };
    const list = byPrompt.get(c.prompt_id);
    if (list) list.push(item);
    else byPrompt.set(c.prompt_id, [item]);
  }
  let sum = 0;
  let n = 0;
  for (const items of byPrompt.values()) {
    const tau = kendallTauB(
      items.map((x) => x.reward),
      items.map((x) => x.likelihood),
    );
    if (Number.isNaN(tau)) continue;
    sum += (tau + 1) / 2;
    n++;
  }
  return { consistency: n ? sum / n : Number.NaN, prompts: n };
}

/** rankingConsistency of an iteration directory, by the run's config. */
export async function iterationConsistency(dir: string, cfg: RunConfig): Promise<{ consistency: number; prompts: number }> {
  if (cfg.method === "spin") return { consistency: Number.NaN, prompts: 0 };
  const candidates = (await jsonLines(join(dir, "candidates.jsonl"))) as unknown as Candidate[];
  const judgements = cfg.judge.by === "model" ? ((await jsonLines(join(dir, "judgements.jsonl"))) as unknown as Judgement[]) : [];
  return rankingConsistency(candidates, judgements, cfg.judge.by);
}

/** What each row spends beyond SR (docs/methods.md "compute vs SR"); the compute table measures it. */
export const ROW_NOTES: Readonly<Record<string, string>> = {
  sr: "the baseline: P·N samples, P·N·K judge calls, one pair per prompt whose best and worst differ; the pairs set the DPO steps",
  oracle: "sr with judge.by gold: the gold scorer ranks the same candidates (no judge calls), the most these pairs can teach",
  control: "sr's samples, judge calls and DPO steps, each step on the mixed-in seed rows only (the preference term off)",
  spin: "no judge calls; chosen = the reference answer, so nearly every prompt gives a pair: usually more DPO steps than sr",
  cream:
    "sr's pairs with soft labels; from iteration 2 the previous model judges too (2× judge calls with reward judge); forward passes for M1's log-likelihood at t = 1",
  scir: "sr's samples and judge calls plus forward passes under M_t and M_{t−1}; a subset of sr's pairs, so fewer DPO steps",
  meta: "sr's samples and judge calls plus ≤ 2·P meta-judge calls; judge pairs on top of the answer pairs: up to 2× DPO steps",
  temporal:
    "2× samples and judge calls at t = 1 (the future model's candidates), 3× from t = 2 (M1's anchors too); about 2× DPO steps (the future model's)",
};

/** The comparison's general notes: what is held equal, what is not, the seeds, the consistency. */
export function compareNotes(plan: readonly PlannedRun[], o: CompareOptions): string[] {
  const c = plan[0]?.config;
  if (!c) return [];
  const seeds = [...new Set(plan.map((p) => p.seed))];
  const m1Seeds = [...new Set(plan.map((p) => p.m1Seed))];
  return [
    `Held equal in every run of a seed: the prompts (${c.prompts.count} per iteration from prompts.source ${c.prompts.source}), M1, ${c.iterations} iteration(s), N = ${c.generate.n} candidates, K = ${c.judge.samples} judgements per judged candidate, the sampling settings, the DPO step (${c.dpo.num_train_epochs} epoch(s), batch ${c.dpo.per_device_train_batch_size}, learning rate ${c.dpo.learning_rate}, β ${c.dpo.beta}${c.dpo.max_steps > 0 ? `, max_steps ${c.dpo.max_steps}` : ""}), ${c.mix.rows_per_pair} seed row(s) per pair, and the evaluation.`,
    "Not held equal: the pairs a method makes (hence its DPO steps, epochs being fixed) and its extra calls. The compute table counts them from each run's files, so the claim is measured: samples, judge calls, log-prob rows, DPO steps, pairs and seconds per iteration (the evaluation, equal for all, excluded).",
    `Seeds ${seeds.join(", ")}: each sets the run's seed (prompts, sampling, judging, data order); M1 ${o.m1 === "shared" ? `is the same for every seed (sandbox seed ${m1Seeds[0]})` : `moves with it (sandbox seeds ${m1Seeds.join(", ")}: data, initial weights and held-out prompts), so the spread includes M1's`}. Mean ± sample standard deviation over the seeds whose run finished.`,
    "Ranking consistency: per prompt (τ_b + 1)/2 between the reward that ranked M_t's candidates (the mean judge score; gold for the oracle) and M_t's own length-normalised log-likelihood of them, averaged over prompts where τ_b is defined; n/a for spin (no ranking) and where no judgement parsed. CREAM's own cross-iteration consistency is cream/consistency in its metrics.jsonl.",
    "Pair metrics (chosen−rejected gold, consistency, compute) belong to iteration t's pairs, made from M_t's candidates; the held-out metrics of iteration t are M_{t+1}'s (0 = M1).",
  ];
}
