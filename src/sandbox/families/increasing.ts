/**
 * Family "increasing": k numbers of a list that increase and keep the list's order (an increasing
 * subsequence).
 *
 *   `up3: 5 2 8 1 9 4`  →  `5 8 9`  (`2 8 9` is as good)
 *
 * The list holds 5–7 distinct numbers 1–19 in random order and k is 3 or 4. Each task has an
 * increasing subsequence of length k but none longer than k + 1, its first k numbers do not increase,
 * and its k smallest numbers are not in list order: neither copying nor sorting answers it. Each
 * criterion is checked by a scan or a comparison of neighbours; meeting increase and order at once
 * needs a search. The reference is the subsequence with the earliest positions; any answer meeting all five
 * criteria is as good.
 *
 * The answer's numbers are its runs of digits (`5,8,9` has three numbers but not the right form).
 *
 * Trace (judge), every step a comparison of neighbours or a copy in order (see common-a.ts): the
 * answer's shape (each run of digits `n`, each space `s`, anything else `x`; after 8 signs `..`); the
 * chain of its numbers with the true relation between neighbours; then each number, indexed, scanned
 * for in the list, each scan starting right after the place where the number before it was found and
 * going round: `/` marks the passing from the list's end to its start, a number found after it is
 * marked `!` instead of `+` (it comes earlier in the list: the order is broken), and a scan that comes
 * all the way round without a match ends in `-` (not in the list; the next scan starts where this one
 * did); then the count (the last index) against k:
 *
 *   `up3: 5 2 8 1 9 4`, answer `2 8 9`  →  `nsnsn+ | 2<8<9+ | 1:2=5- 2=2+ 2:8=8+ 3:9=1- 9=9+ | 3=3+`
 *   answer `1 2 9`  →  `nsnsn+ | 1<2<9+ | 1:1=5- 1=2- 1=8- 1=1+ 2:2=9- 2=4- / 2=5- 2=2! 3:9=8- 9=1- 9=9+ | 3=3+`
 *
 * The scans stop once both a missing number and one out of order have been seen (`..`: nothing is left
 * to decide), and after 5 numbers (fewer if the judge example would pass 188 characters; about 2% of
 * corruptions, with numbers missing from the list) and `..` follows; the count is still the answer's.
 * Going round costs at most one pass over the list per number, where a scan from the start for each
 * number would cost a pass each even for the reference.
 *
 * The empty answer's trace is `empty`; it meets no criterion.
 */
import type { Family, Rng, Task } from "../task.js";
import { corruptionTarget, nearestToTarget, pick, randInt, shuffled } from "../task.js";
import { judgeLength, MAX_JUDGE, numberRuns, positionIn, relation, shapeOf, showNumber, sign } from "./common-a.js";
import { distinctList, inRange, numberList } from "./parse-util.js";

export interface IncreasingSpec {
  /** How many numbers the answer must have (3 or 4). */
  k: number;
  /** The numbers, in the instruction's order. */
  list: number[];
}

const MAX_ANSWER = 20;
const SHAPE_CAP = 8;
const WALK_CAP = 5;
/** The generator's ranges: the list's length, its values, and k. */
const COUNT: [number, number] = [5, 7];
const VALUES: [number, number] = [1, 19];
const K: [number, number] = [3, 4];

function strictlyIncreasing(xs: readonly number[]): boolean {
  return xs.every((x, i) => i === 0 || xs[i - 1] < x);
}

/** Every increasing subsequence of length k (as lists of values), earliest positions first. */
function increasingSubsequences(list: readonly number[], k: number, limit = Number.POSITIVE_INFINITY): number[][] {
  const out: number[][] = [];
  const walk = (from: number, acc: number[]): void => {
    if (out.length >= limit) return;
    if (acc.length === k) {
      out.push(acc);
      return;
    }
    for (let i = from; i < list.length; i++) if (acc.length === 0 || acc[acc.length - 1] < list[i]) walk(i + 1, [...acc, list[i]]);
  };
  walk(0, []);
  return out;
}

function longestIncreasing(list: readonly number[]): number {
  const best = list.map(() => 1);
  for (let i = 0; i < list.length; i++) for (let j = 0; j < i; j++) if (list[j] < list[i]) best[i] = Math.max(best[i], best[j] + 1);
  return Math.max(0, ...best);
}

function instruction(spec: IncreasingSpec): string {
  return `up${spec.k}: ${spec.list.join(" ")}`;
}

/**
 * Whether the generator keeps a drawn list: it has an increasing subsequence of length k but none
 * longer than k + 1, and neither copying its start nor sorting its k smallest answers it.
 */
function fits(list: readonly number[], k: number): boolean {
  const lis = longestIncreasing(list);
  if (lis < k || lis > k + 1) return false;
  if (strictlyIncreasing(list.slice(0, k))) return false; // copying the start would do
  const smallest = [...list].sort((a, b) => a - b).slice(0, k);
  return !strictlyIncreasing(smallest.map((v) => list.indexOf(v))); // else sorting would do
}

/** The spec of an `up` instruction the generator could have written, or undefined. */
function parseInstruction(text: string): IncreasingSpec | undefined {
  const m = /^up([1-9][0-9]*): (.*)$/.exec(text);
  const list = m ? numberList(m[2]) : undefined;
  if (m === null || list === undefined) return undefined;
  const spec: IncreasingSpec = { k: Number(m[1]), list };
  if (!inRange(spec.k, K[0], K[1]) || !distinctList(list, COUNT, VALUES) || !fits(list, spec.k)) return undefined;
  return instruction(spec) === text ? spec : undefined;
}

function check(spec: IncreasingSpec, answer: string): boolean[] {
  const runs = numberRuns(answer);
  const found = runs.map((r) => positionIn(spec.list, r)).filter((p) => p > 0);
  return [
    /^[0-9]+( [0-9]+)*$/.test(answer),
    runs.length > 0 && found.length === runs.length,
    runs.length === spec.k,
    runs.length >= 2 && strictlyIncreasing(runs.map(Number)),
    found.length >= 2 && strictlyIncreasing(found),
  ];
}

/**
 * The scans of the numbers `runs` over the list, going round from where the last one was found; they
 * stop (`..`) once a number is missing and one is out of order, since nothing is left to decide.
 */
function scans(spec: IncreasingSpec, runs: readonly string[]): { text: string; stopped: boolean } {
  const list = spec.list.map(String);
  const n = list.length;
  let from = 0;
  let missing = false;
  let back = false;
  const out: string[] = [];
  for (const [i, r] of runs.entries()) {
    if (missing && back) return { text: `${out.join(" ")} ..`, stopped: true };
    const steps: string[] = [];
    let found = false;
    for (let j = 0; j < n; j++) {
      const at = from + j;
      if (at === n) steps.push("/");
      const item = list[at % n];
      const eq = item === r;
      const mark = eq ? (at >= n ? "!" : "+") : "-";
      steps.push(`${showNumber(r)}=${item}${mark}`);
      if (eq) {
        from = (at % n) + 1;
        found = true;
        back ||= at >= n;
        break;
      }
    }
    missing ||= !found;
    out.push(`${i + 1}:${steps.join(" ")}`);
  }
  return { text: out.join(" "), stopped: false };
}

function traceWith(spec: IncreasingSpec, answer: string, cap: number): string {
  const runs = numberRuns(answer);
  const [c1, , c3, c4] = check(spec, answer);
  const shown = runs.slice(0, cap);
  const more = runs.length > cap ? " .." : "";
  const values = shown.map(Number);
  const chain =
    shown.length === 0
      ? "."
      : shown.map((r, i) => (i === 0 ? showNumber(r) : `${relation(values[i - 1], values[i])}${showNumber(r)}`)).join("");
  const sc = scans(spec, shown);
  const walk = shown.length === 0 ? "none" : sc.text + (sc.stopped ? "" : more);
  return `${shapeOf(answer, SHAPE_CAP)}${sign(c1)} | ${chain}${more ? ".." : ""}${sign(c4)} | ${walk} | ${runs.length}=${spec.k}${sign(c3)}`;
}

function trace(spec: IncreasingSpec, answer: string): string {
  if (answer.length === 0) return "empty";
  // Long answers walk fewer numbers, so that the judge example fits the context.
  for (let cap = WALK_CAP; cap > 1; cap--) {
    const t = traceWith(spec, answer, cap);
    if (judgeLength(instruction(spec), answer, t) <= MAX_JUDGE) return t;
  }
  return traceWith(spec, answer, 1);
}

function generate(rng: Rng): Task<IncreasingSpec> {
  for (;;) {
    const n = randInt(rng, COUNT[0], COUNT[1]);
    const k = randInt(rng, K[0], K[1]);
    const list = shuffled(
      rng,
      Array.from({ length: VALUES[1] - VALUES[0] + 1 }, (_, i) => i + VALUES[0]),
    ).slice(0, n);
    if (!fits(list, k)) continue;
    const spec: IncreasingSpec = { k, list };
    const reference = increasingSubsequences(list, k, 1)[0].join(" ");
    return { family: "increasing", instruction: instruction(spec), spec, reference };
  }
}

// ---- corruptions -------------------------------------------------------------------------------

type Op = (rng: Rng, spec: IncreasingSpec, nums: string[]) => string[];

const setAt = (nums: readonly string[], i: number, v: string): string[] => nums.map((x, j) => (j === i ? v : x));
const someIndex = (rng: Rng, nums: readonly string[]): number => randInt(rng, 0, Math.max(0, nums.length - 1));
const listPick = (rng: Rng, spec: IncreasingSpec, not?: string): string => {
  const pool = spec.list.map(String).filter((v) => v !== not);
  return pick(rng, pool.length > 0 ? pool : ["1"]);
};
/** k positions of the list, chosen at random, in list order. */
const randomPositions = (rng: Rng, spec: IncreasingSpec): number[] =>
  shuffled(
    rng,
    spec.list.map((_, i) => i),
  )
    .slice(0, spec.k)
    .sort((a, b) => a - b);

const OPS: readonly Op[] = [
  // one changed to another number of the list
  (rng, s, nums) => (nums.length === 0 ? [listPick(rng, s)] : ((i) => setAt(nums, i, listPick(rng, s, nums[i])))(someIndex(rng, nums))),
  // one changed to a number not in the list
  (rng, s, nums) => {
    const outside = Array.from({ length: 25 }, (_, i) => String(i + 1)).filter((v) => !s.list.map(String).includes(v));
    return nums.length === 0 ? [pick(rng, outside)] : setAt(nums, someIndex(rng, nums), pick(rng, outside));
  },
  // one dropped
  (rng, _s, nums) => ((i) => nums.filter((_, j) => j !== i))(someIndex(rng, nums)),
  // one more of the list added
  (rng, s, nums) => ((i) => [...nums.slice(0, i), listPick(rng, s), ...nums.slice(i)])(randInt(rng, 0, nums.length)),
  // neighbours swapped
  (rng, _s, nums) => {
    if (nums.length < 2) return nums;
    const i = randInt(rng, 0, nums.length - 2);
    return [...nums.slice(0, i), nums[i + 1], nums[i], ...nums.slice(i + 2)];
  },
  // a number used twice
  (rng, _s, nums) => (nums.length < 2 ? [...nums, ...nums] : ((i) => setAt(nums, i, nums[i - 1]))(randInt(rng, 1, nums.length - 1))),
  // k numbers of the list sorted (increasing, but maybe not in list order)
  (rng, s) =>
    shuffled(rng, s.list)
      .slice(0, s.k)
      .sort((a, b) => a - b)
      .map(String),
  // k numbers of the list in list order (but maybe not increasing)
  (rng, s) => randomPositions(rng, s).map((i) => String(s.list[i])),
  // backwards
  (_rng, _s, nums) => [...nums].reverse(),
];

const SEPARATORS = [",", ", ", "  ", ";", "-", "<"];

/** Strings a model writes when it has not got the task at all. */
function base(rng: Rng, spec: IncreasingSpec): string {
  switch (randInt(rng, 0, 3)) {
    case 0: // a piece of the instruction
      return pick(rng, [`up${spec.k}`, `up${spec.k}:`, `up${spec.k}: ${spec.list[0]}`, `up ${spec.list.slice(0, 2).join(" ")}`]);
    case 1: // the whole list, or its start
      return spec.list.slice(0, randInt(rng, 2, spec.list.length)).join(" ");
    case 2: // words
      return pick(rng, ["up", "none", "no", "yes"]);
    default: // counting up
      return Array.from({ length: spec.k }, (_, i) => String(i + 1)).join(pick(rng, [" ", ","]));
  }
}

/** The closest in gold score to round(5 · (1 − severity)) among a few mutation chains. */
function corrupt(spec: IncreasingSpec, reference: string, rng: Rng, severity: number): string {
  const { s, target } = corruptionTarget(severity);
  if (target === 5) {
    // Not damaged: another increasing subsequence where there is one.
    const others = increasingSubsequences(spec.list, spec.k)
      .map((xs) => xs.join(" "))
      .filter((w) => w !== reference);
    return others.length > 0 && rng() < 0.7 ? pick(rng, others) : reference;
  }
  return nearestToTarget(increasingFamily, spec, reference, target, MAX_ANSWER, () => {
    if (rng() < 0.1 + 0.4 * s) return base(rng, spec);
    let nums = numberRuns(reference);
    const n = 1 + Math.floor(rng() * (5 - target));
    for (let i = 0; i < n; i++) nums = pick(rng, OPS)(rng, spec, nums);
    return nums.join(rng() < 0.2 * (1 + s) ? pick(rng, SEPARATORS) : " ");
  });
}

export const increasingFamily: Family<IncreasingSpec> = {
  name: "increasing",
  description: "Write k numbers of the list that increase from left to right and keep the list's order.",
  criteria: [
    "numbers separated by single spaces",
    "every number is in the list",
    "exactly k numbers",
    "each number larger than the one before",
    "the numbers keep the list's order",
  ],
  generate,
  check,
  trace,
  corrupt,
  parse: parseInstruction,
  solve: (spec) => increasingSubsequences(spec.list, spec.k, 1)[0]?.join(" "),
};
