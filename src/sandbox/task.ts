/**
 * The sandbox's task families: small text tasks generated from a seed, each with a gold scorer of
 * five checkable criteria ordered from easiest to hardest (mirroring the additive 5-point rubric:
 * the gold score is the number of criteria met, 0–5).
 *
 * Families are chosen for a generation–verification gap: every criterion is a LOCAL check (a lookup
 * in the instruction, a comparison of neighbours) while meeting all of them at once needs search or
 * a global view. The judge is taught to write a verification trace (`trace`) that turns each check
 * into such local steps before it scores, so judging is easier for the model than answering.
 */

/** A uniform source in [0, 1) (mulberry32 from engine/tensor.ts). */
export type Rng = () => number;

export interface Task<S = unknown> {
  /** The family's name. */
  family: string;
  /** The instruction the model sees (the sandbox alphabet only; one line). */
  instruction: string;
  /** Everything the scorer needs (plain JSON data). */
  spec: S;
  /** One answer meeting all five criteria. */
  reference: string;
}

export interface Family<S = unknown> {
  /** Short lowercase name, used in instructions' ids, files and tables. */
  readonly name: string;
  /** One sentence: what the model must do. */
  readonly description: string;
  /** The five criteria in words, easiest first (the docs table; the order of `check`'s result). */
  readonly criteria: readonly [string, string, string, string, string];
  /** A task drawn from `rng`; the same rng state gives the same task. */
  generate(rng: Rng): Task<S>;
  /** Gold: which of the five criteria `answer` meets (an answer may be any string, even empty). */
  check(spec: S, answer: string): boolean[];
  /**
   * The judge's verification steps for `answer`: short, one step per local check, written so that
   * each step needs only a lookup or a comparison of neighbours (e.g. an indexed walk of the answer
   * so a length is read, not counted). No criterion bits, no score: forms.ts adds those.
   */
  trace(spec: S, answer: string): string;
  /**
   * A wrong answer in the way a model goes wrong: a near miss of `reference` (a letter or number
   * changed, dropped, added or swapped; a copy of the instruction's material) with about
   * `severity` ∈ [0, 1] of it damaged. Its gold score is whatever `check` says.
   */
  corrupt(spec: S, reference: string, rng: Rng, severity: number): string;
  /**
   * The spec of an instruction this family's generator could have written, or undefined (another
   * family's instruction, malformed text, values outside the generator's ranges, or a task with no
   * answer meeting all five criteria). Never throws.
   */
  parse(instruction: string): S | undefined;
  /**
   * One answer meeting all five criteria for `spec` (the reference solver; deterministic), or undefined
   * if the solver finds none. Used where a prompt arrives without its generated reference (SPIN's gold
   * answer for loop prompts, which may come from a file or from self-instruct).
   */
  solve(spec: S): string | undefined;
}

export interface Scored {
  /** Which criteria are met, in the family's order. */
  criteria: boolean[];
  /** Number of criteria met, 0–5. */
  score: number;
}

export function score<S>(family: Family<S>, spec: S, answer: string): Scored {
  const criteria = family.check(spec, answer);
  if (criteria.length !== 5) throw new Error(`sandbox family "${family.name}": check returned ${criteria.length} criteria, expected 5`);
  return { criteria, score: criteria.filter(Boolean).length };
}

/** Integer in [lo, hi] (inclusive). */
export function randInt(rng: Rng, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

/** A random element. */
export function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[Math.floor(rng() * xs.length)];
}

/** Fisher–Yates shuffle of a copy. */
export function shuffled<T>(rng: Rng, xs: readonly T[]): T[] {
  const a = xs.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** The corruption convention shared by the families: severity s ∈ [0, 1] aims at gold score round(5·(1 − s)). */
export function corruptionTarget(severity: number): { s: number; target: number } {
  const s = Number.isFinite(severity) ? Math.min(1, Math.max(0, severity)) : 1;
  return { s, target: Math.round(5 * (1 - s)) };
}

/**
 * Of up to 40 drafts (each a chain of mistakes from `draft`), the one whose gold score is nearest
 * `target`, stopping at the first exact hit; drafts equal to the reference or longer than `maxLen`
 * are skipped ("" if every draft was).
 */
export function nearestToTarget<S>(
  family: Family<S>,
  spec: S,
  reference: string,
  target: number,
  maxLen: number,
  draft: () => string,
): string {
  let best = "";
  let bestGap = Number.POSITIVE_INFINITY;
  for (let k = 0; k < 40 && bestGap > 0; k++) {
    const w = draft();
    if (w === reference || w.length > maxLen) continue;
    const gap = Math.abs(score(family, spec, w).score - target);
    if (gap < bestGap) {
      best = w;
      bestGap = gap;
    }
  }
  return best;
}

/**
 * One draft of a wrong answer for string families: with probability 0.1 + 0.4·s an off-task answer
 * (`base`), else the reference, then 1 … 5 − target mistakes drawn from `ops`.
 */
export function mistakeChain<S>(
  rng: Rng,
  spec: S,
  reference: string,
  s: number,
  target: number,
  base: (rng: Rng, spec: S) => string,
  ops: readonly ((rng: Rng, spec: S, w: string) => string)[],
): string {
  let w = rng() < 0.1 + 0.4 * s ? base(rng, spec) : reference;
  const n = 1 + Math.floor(rng() * (5 - target));
  for (let i = 0; i < n; i++) w = pick(rng, ops)(rng, spec, w);
  return w;
}
