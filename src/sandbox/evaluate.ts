/**
 * Measuring a sandbox model against the gold scorer, on held-out tasks:
 *   answers — greedy answers' mean gold score, exact-match rate (all five criteria), length; N sampled
 *             answers per prompt (temperature 0.7, top-p 0.9, as self-rewarding samples) and how many
 *             of them are distinct;
 *   judge   — the model judges (greedy) two kinds of answer sets per prompt: graded corruptions of
 *             the reference, and its own N samples (the set that decides whether self-rewarding can
 *             work); against gold: MAE, Spearman, pairwise accuracy, best-of-N accuracy, parse failures;
 *   likelihood baseline — the same pairwise accuracy when the own samples are ranked by their mean
 *             per-token log-prob instead of by the judge: the judge must beat it to add information.
 */
import { mulberry32 } from "../engine/tensor.js";
import { bestOfNAccuracy, mean, meanAbsoluteError, pairwiseAccuracy, type ScoredGroup, spearman } from "../eval/metrics.js";
import { parseScore } from "../judge/parse.js";
import { generate } from "../model/generate.js";
import type { LlamaModel } from "../model/llama.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { familyByName, type SandboxTask } from "./data.js";
import { answerPrompt, judgement, judgePrompt, sanitizeAnswer } from "./forms.js";
import { type Family, score } from "./task.js";

export interface SandboxEvalOptions {
  /** Sampled answers per prompt (default 4, the SR paper's N). */
  samples?: number;
  temperature?: number;
  topP?: number;
  seed?: number;
  /** Token limits of an answer and of a judgement (defaults 32 and 128). */
  answerTokens?: number;
  judgeTokens?: number;
  signal?: AbortSignal;
  onProgress?: (stage: string, done: number, total: number) => void;
}

export interface JudgeQuality {
  /** Judgements made, and the share that did not parse. */
  judged: number;
  parseFailureRate: number;
  mae: number;
  spearman: number;
  pairwiseAccuracy: number;
  /** Pairs with different gold scores the accuracy is over. */
  pairs: number;
  bestOfNAccuracy: number;
  /** Share of judgements whose trace (everything before the criterion bits) equals the gold trace. */
  traceExact: number;
  /** Per criterion (easiest first): share of judgements whose bit equals the gold bit. */
  bitAccuracy: number[];
}

export interface SandboxMetrics {
  tasks: number;
  /** Greedy answers. */
  gold: number;
  exact: number;
  length: number;
  /** Per family: greedy gold and exact match; the judge's and the likelihood's pairwise accuracy on own samples. */
  perFamily: Record<string, { gold: number; exact: number; n: number; judgeOwnPairwise: number; likelihoodPairwise: number }>;
  /** Sampled answers: mean gold, and distinct answers per prompt out of `samples`. */
  sampledGold: number;
  distinct: number;
  /** The judge on its own samples, and on graded corruptions of the references. */
  judgeOwn: JudgeQuality;
  judgeCorrupt: JudgeQuality;
  /** Pairwise accuracy of ranking the own samples by mean per-token log-prob. */
  likelihoodPairwiseAccuracy: number;
  /** Mean gold-score criteria met on the own samples, per criterion (index 0 = easiest). */
  criteriaMet: number[];
}

export async function judgeGroups(
  model: LlamaModel,
  tok: Tokenizer,
  families: readonly Family[],
  groups: readonly { task: SandboxTask; answers: readonly string[] }[],
  opts: SandboxEvalOptions = {},
): Promise<{ quality: JudgeQuality; scored: ScoredGroup[] }> {
  const prompts = groups.flatMap((g) => g.answers.map((a) => judgePrompt(g.task.instruction, a)));
  const out = await generate(model, tok, prompts, {
    temperature: 0,
    maxNewTokens: opts.judgeTokens ?? 128,
    signal: opts.signal,
    onProgress: (p) => opts.onProgress?.("judge", p.samplesDone, p.samplesTotal),
  });
  let k = 0;
  let failures = 0;
  let traceExact = 0;
  const bits = [0, 0, 0, 0, 0];
  const scored = groups.map((g) => {
    const f = familyByName(families, g.task.family);
    const gold = g.answers.map((a) => score(f, g.task.spec, a).score);
    const judged = g.answers.map((a) => {
      const text = out[k++][0].text;
      const r = parseScore(text);
      if (!r.ok) failures++;
      // Step by step against the gold judgement: is the trace right, is each criterion bit right?
      const want = judgement(f, g.task.spec, a).text.split("\n");
      const got = text.split("\n");
      if (got[0] === want[0]) traceExact++;
      for (let c = 0; c < 5; c++) if (got[1]?.[c] === want[1][c]) bits[c]++;
      return r.ok ? r.score : Number.NaN;
    });
    return { gold, judged };
  });
  const goldAll = scored.flatMap((s) => s.gold);
  const judgedAll = scored.flatMap((s) => s.judged);
  const pw = pairwiseAccuracy(scored);
  return {
    scored,
    quality: {
      judged: prompts.length,
      parseFailureRate: prompts.length ? failures / prompts.length : Number.NaN,
      mae: meanAbsoluteError(goldAll, judgedAll),
      spearman: spearman(goldAll, judgedAll),
      pairwiseAccuracy: pw.accuracy,
      pairs: pw.pairs,
      bestOfNAccuracy: bestOfNAccuracy(scored).accuracy,
      traceExact: traceExact / Math.max(1, prompts.length),
      bitAccuracy: bits.map((b) => b / Math.max(1, prompts.length)),
    },
  };
}

export async function evaluateSandbox(
  model: LlamaModel,
  tok: Tokenizer,
  families: readonly Family[],
  tasks: readonly SandboxTask[],
  opts: SandboxEvalOptions = {},
): Promise<SandboxMetrics> {
  const N = opts.samples ?? 4;
  const prompts = tasks.map((t) => answerPrompt(t.instruction));
  const progress = (stage: string) => (p: { samplesDone: number; samplesTotal: number }) =>
    opts.onProgress?.(stage, p.samplesDone, p.samplesTotal);
  const greedy = await generate(model, tok, prompts, {
    temperature: 0,
    maxNewTokens: opts.answerTokens ?? 32,
    signal: opts.signal,
    onProgress: progress("answer"),
  });
  const sampled = await generate(model, tok, prompts, {
    n: N,
    temperature: opts.temperature ?? 0.7,
    topP: opts.topP ?? 0.9,
    seed: opts.seed ?? 0,
    maxNewTokens: opts.answerTokens ?? 32,
    signal: opts.signal,
    onProgress: progress("sample"),
  });

  const perFamily: SandboxMetrics["perFamily"] = {};
  const golds: number[] = [];
  const sampledGolds: number[] = [];
  const criteria = [0, 0, 0, 0, 0];
  let distinct = 0;
  for (const [i, t] of tasks.entries()) {
    const f = familyByName(families, t.family);
    const g = score(f, t.spec, sanitizeAnswer(greedy[i][0].text)).score;
    golds.push(g);
    const pf = (perFamily[t.family] ??= { gold: 0, exact: 0, n: 0, judgeOwnPairwise: Number.NaN, likelihoodPairwise: Number.NaN });
    pf.gold += g;
    pf.exact += g === 5 ? 1 : 0;
    pf.n++;
    for (const s of sampled[i]) {
      const sc = score(f, t.spec, sanitizeAnswer(s.text));
      sampledGolds.push(sc.score);
      sc.criteria.forEach((c, j) => {
        criteria[j] += c ? 1 : 0;
      });
    }
    distinct += new Set(sampled[i].map((s) => sanitizeAnswer(s.text))).size;
  }
  for (const pf of Object.values(perFamily)) {
    pf.gold /= pf.n;
    pf.exact /= pf.n;
  }

  // The judge on the model's own samples; the likelihood ranking of the same samples.
  const own = await judgeGroups(
    model,
    tok,
    families,
    tasks.map((t, i) => ({ task: t, answers: sampled[i].map((s) => sanitizeAnswer(s.text)) })),
    opts,
  );
  const byLikelihood = own.scored.map((g, i) => ({ gold: g.gold, judged: sampled[i].map((s) => s.logprob / Math.max(1, s.ids.length)) }));
  const likelihood = pairwiseAccuracy(byLikelihood);
  for (const [name, pf] of Object.entries(perFamily)) {
    const mine = (_: unknown, i: number) => tasks[i].family === name;
    pf.judgeOwnPairwise = pairwiseAccuracy(own.scored.filter(mine)).accuracy;
    pf.likelihoodPairwise = pairwiseAccuracy(byLikelihood.filter(mine)).accuracy;
  }
  // The judge on graded corruptions of the reference (severities spread over [0, 1]).
  const rng = mulberry32((opts.seed ?? 0) + 17);
  const corrupted = tasks.map((t) => {
    const f = familyByName(families, t.family);
    return { task: t, answers: [t.reference, ...[0.25, 0.5, 0.9].map((s) => f.corrupt(t.spec, t.reference, rng, s))] };
  });
  const corrupt = await judgeGroups(model, tok, families, corrupted, opts);

  const nSamples = sampledGolds.length;
  return {
    tasks: tasks.length,
    gold: mean(golds),
    exact: golds.filter((g) => g === 5).length / golds.length,
    length: mean(greedy.map((g) => sanitizeAnswer(g[0].text).length)),
    perFamily,
    sampledGold: mean(sampledGolds),
    distinct: distinct / tasks.length,
    judgeOwn: own.quality,
    judgeCorrupt: corrupt.quality,
    likelihoodPairwiseAccuracy: likelihood.accuracy,
    criteriaMet: criteria.map((c) => c / nSamples),
  };
}
