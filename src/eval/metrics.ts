/**
 * Judge-quality and answer-quality statistics against a gold scorer, as pure functions:
 * mean absolute error, Spearman correlation, pairwise accuracy, best-of-N accuracy (RewardBench 2),
 * win rate. A "group" is the answers to one prompt: comparisons are only made within a group.
 */

export interface ScoredGroup {
  /** Gold score of each answer. */
  gold: readonly number[];
  /** Judged score of each answer (NaN = the judgement did not parse). */
  judged: readonly number[];
}

export function mean(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Mean |judged − gold| over parsed judgements. */
export function meanAbsoluteError(gold: readonly number[], judged: readonly number[]): number {
  const d: number[] = [];
  for (let i = 0; i < gold.length; i++) if (Number.isFinite(judged[i])) d.push(Math.abs(judged[i] - gold[i]));
  return mean(d);
}

/** Ranks 1…n with ties given their average rank. */
export function averageRanks(xs: readonly number[]): number[] {
  const order = xs.map((x, i) => [x, i] as const).sort((a, b) => a[0] - b[0]);
  const ranks = new Array<number>(xs.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && order[j + 1][0] === order[i][0]) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[order[k][1]] = r;
    i = j + 1;
  }
  return ranks;
}

function pearson(a: readonly number[], b: readonly number[]): number {
  const ma = mean(a);
  const mb = mean(b);
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < a.length; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return saa > 0 && sbb > 0 ? sab / Math.sqrt(saa * sbb) : Number.NaN;
}

/** Spearman's ρ (Pearson on average ranks) over parsed judgements; NaN when either side is constant. */
export function spearman(gold: readonly number[], judged: readonly number[]): number {
  const g: number[] = [];
  const j: number[] = [];
  for (let i = 0; i < gold.length; i++) {
    if (Number.isFinite(judged[i])) {
      g.push(gold[i]);
      j.push(judged[i]);
    }
  }
  return pearson(averageRanks(g), averageRanks(j));
}

/**
 * Pairwise accuracy: over pairs of answers to the same prompt whose gold scores differ, the share the
 * judge orders the same way; a judged tie counts half, an unparsed judgement counts as wrong (it
 * cannot rank). Returns NaN when no pair differs in gold.
 */
export function pairwiseAccuracy(groups: readonly ScoredGroup[]): { accuracy: number; pairs: number } {
  let credit = 0;
  let pairs = 0;
  for (const { gold, judged } of groups) {
    for (let a = 0; a < gold.length; a++) {
      for (let b = a + 1; b < gold.length; b++) {
        if (gold[a] === gold[b]) continue;
        pairs++;
        const ja = judged[a];
        const jb = judged[b];
        if (!Number.isFinite(ja) || !Number.isFinite(jb)) continue;
        if (ja === jb) credit += 0.5;
        else if (ja > jb === gold[a] > gold[b]) credit += 1;
      }
    }
  }
  return { accuracy: pairs > 0 ? credit / pairs : Number.NaN, pairs };
}

/**
 * Best-of-N accuracy as RewardBench 2 counts it: over groups with a unique gold-best answer, credit
 * 1/m when the best answer is among the m answers sharing the highest judged score (ties share
 * credit), 0 otherwise. An unparsed judgement ranks below every parsed one, and the best answer's
 * own judgement must parse to earn credit.
 */
export function bestOfNAccuracy(groups: readonly ScoredGroup[]): { accuracy: number; groups: number } {
  let credit = 0;
  let counted = 0;
  for (const { gold, judged } of groups) {
    const top = Math.max(...gold);
    const best = gold.flatMap((g, i) => (g === top ? [i] : []));
    if (best.length !== 1) continue;
    counted++;
    const j = judged.map((x) => (Number.isFinite(x) ? x : Number.NEGATIVE_INFINITY));
    const jt = Math.max(...j);
    if (!Number.isFinite(j[best[0]]) || j[best[0]] !== jt) continue;
    credit += 1 / j.filter((x) => x === jt).length;
  }
  return { accuracy: counted > 0 ? credit / counted : Number.NaN, groups: counted };
}

/** Win rate of A over B on paired scores: A higher wins, ties count half. */
export function winRate(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) throw new RangeError(`winRate: ${a.length} scores for A, ${b.length} for B`);
  let w = 0;
  for (let i = 0; i < a.length; i++) w += a[i] > b[i] ? 1 : a[i] === b[i] ? 0.5 : 0;
  return a.length > 0 ? w / a.length : Number.NaN;
}
