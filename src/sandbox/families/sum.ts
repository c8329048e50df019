/**
 * Family "sum": the two numbers of a list that add up to a target.
 *
 *   `sum 13: 4 9 2 7 5`  →  `4 9`
 *
 * The list holds 4–6 distinct numbers 1–19 in random order, exactly one pair of which adds up to the
 * target (a number may be half the target: using it twice is wrong, since the answer must ascend).
 * The answer is that pair, smaller first. Adding two numbers up to 19 is a small table a model can
 * learn; finding the pair is a search over all pairs, while checking one is two lookups and one sum.
 *
 * The answer's numbers are its runs of digits (`4, 9` has the numbers 4 and 9 but not the right form);
 * the criteria after the first look at the first two of them.
 *
 * Trace (judge): the answer's shape (each run of digits `n`, each space `s`, anything else `x`; after
 * 8 signs ` ..`), the two numbers looked up in the list with their positions (`@-`: not in the list,
 * `.`: no such number), their order (the true relation between them), then their sum:
 *
 *   answer `4 9`  →  `nsn+ | 4@1 9@2 | 4<9+ 4+9=13+`
 *
 * The empty answer's trace is `empty`; it meets no criterion.
 */
import type { Family, Rng, Task } from "../task.js";
import { pick, randInt, score, shuffled } from "../task.js";

export interface SumSpec {
  /** The sum the two numbers must reach. */
  target: number;
  /** The numbers, in the instruction's order. */
  list: number[];
}

const MAX_ANSWER = 20;
const SHAPE_CAP = 8;

const sign = (ok: boolean): string => (ok ? "+" : "-");

/** The answer's numbers: its runs of ASCII digits, as written. */
export function numberRuns(answer: string): string[] {
  return answer.match(/[0-9]+/g) ?? [];
}

/** A number as the trace shows it: up to 3 digits, longer ones cut with a `.`. */
export function showNumber(run: string | undefined): string {
  if (run === undefined) return ".";
  return run.length <= 3 ? run : `${run.slice(0, 3)}.`;
}

/** The answer's shape: `n` per run of digits, `s` per space, `x` per other character; ` ..` after `cap` signs. */
export function shapeOf(answer: string, cap = SHAPE_CAP): string {
  let out = "";
  let prevDigit = false;
  for (const c of answer) {
    const digit = c >= "0" && c <= "9";
    if (!(digit && prevDigit)) out += digit ? "n" : c === " " ? "s" : "x";
    prevDigit = digit;
    if (out.length > cap) return `${out.slice(0, cap)}..`;
  }
  return out;
}

/** `<`, `=` or `>`: how a compares with b. */
export function relation(a: number, b: number): string {
  return a < b ? "<" : a > b ? ">" : "=";
}

/** 1-based position of `run` in `list` (exact spelling), or 0. */
export function positionIn(list: readonly number[], run: string | undefined): number {
  return run === undefined ? 0 : list.map(String).indexOf(run) + 1;
}

function instruction(spec: SumSpec): string {
  return `sum ${spec.target}: ${spec.list.join(" ")}`;
}

function check(spec: SumSpec, answer: string): boolean[] {
  const [a, b] = numberRuns(answer);
  const both = a !== undefined && b !== undefined;
  return [
    /^[0-9]+ [0-9]+$/.test(answer),
    positionIn(spec.list, a) > 0,
    positionIn(spec.list, b) > 0,
    both && Number(a) < Number(b),
    both && Number(a) + Number(b) === spec.target,
  ];
}

function trace(spec: SumSpec, answer: string): string {
  if (answer.length === 0) return "empty";
  const [a, b] = numberRuns(answer);
  const [c1, c2, c3, c4, c5] = check(spec, answer);
  const look = (run: string | undefined, ok: boolean) => `${showNumber(run)}@${ok ? positionIn(spec.list, run) : "-"}`;
  const both = a !== undefined && b !== undefined;
  const total = both ? Number(a) + Number(b) : Number.NaN;
  const order = `${showNumber(a)}${both ? relation(Number(a), Number(b)) : "<"}${showNumber(b)}${sign(c4)}`;
  const sum = `${showNumber(a)}+${showNumber(b)}=${both && total < 1000 ? total : "."}${sign(c5)}`;
  return `${shapeOf(answer)}${sign(c1)} | ${look(a, c2)} ${look(b, c3)} | ${order} ${sum}`;
}

function generate(rng: Rng): Task<SumSpec> {
  const [x, y] = shuffled(
    rng,
    Array.from({ length: 19 }, (_, i) => i + 1),
  ).slice(0, 2);
  const target = x + y;
  const list = [x, y];
  const n = randInt(rng, 4, 6);
  for (const d of shuffled(
    rng,
    Array.from({ length: 19 }, (_, i) => i + 1),
  )) {
    if (list.length >= n) break;
    if (!list.includes(d) && !list.includes(target - d)) list.push(d);
  }
  const spec: SumSpec = { target, list: shuffled(rng, list) };
  return { family: "sum", instruction: instruction(spec), spec, reference: `${Math.min(x, y)} ${Math.max(x, y)}` };
}

// ---- corruptions -------------------------------------------------------------------------------

/** An answer under repair: its numbers and the separator between them. */
interface Draft {
  nums: string[];
  sep: string;
}

type Op = (rng: Rng, spec: SumSpec, d: Draft) => Draft;

const other = (rng: Rng, spec: SumSpec, not: string | undefined): string => {
  const pool = spec.list.map(String).filter((v) => v !== not);
  return pick(rng, pool.length > 0 ? pool : ["1"]);
};
const setAt = (d: Draft, i: number, v: string): Draft => ({ ...d, nums: d.nums.map((x, j) => (j === i ? v : x)) });

const OPS: readonly Op[] = [
  // the two swapped
  (_rng, _s, d) => ({ ...d, nums: [...d.nums].reverse() }),
  // one changed to another number of the list
  (rng, s, d) =>
    d.nums.length === 0
      ? { ...d, nums: [other(rng, s, undefined)] }
      : ((i) => setAt(d, i, other(rng, s, d.nums[i])))(randInt(rng, 0, d.nums.length - 1)),
  // one off by a little (an addition slip)
  (rng, _s, d) => {
    if (d.nums.length === 0) return d;
    const i = randInt(rng, 0, d.nums.length - 1);
    return setAt(d, i, String(Math.max(0, Number(d.nums[i]) + pick(rng, [-2, -1, 1, 2]))));
  },
  // one dropped
  (rng, _s, d) =>
    d.nums.length === 0 ? d : ((i) => ({ ...d, nums: d.nums.filter((_, j) => j !== i) }))(randInt(rng, 0, d.nums.length - 1)),
  // one more of the list added
  (rng, s, d) => ({ ...d, nums: [...d.nums, other(rng, s, undefined)] }),
  // one number used twice
  (rng, _s, d) => (d.nums.length === 0 ? d : ((v) => ({ ...d, nums: [v, v] }))(pick(rng, d.nums))),
  // the wrong separator
  (rng, _s, d) => ({ ...d, sep: pick(rng, [",", ", ", "  ", "+", "-", ""]) }),
  // a number not in the list at all
  (rng, _s, d) =>
    d.nums.length === 0
      ? { ...d, nums: [String(randInt(rng, 20, 40))] }
      : setAt(d, randInt(rng, 0, d.nums.length - 1), String(randInt(rng, 20, 40))),
];

/** Strings a model writes when it has not got the task at all. */
function base(rng: Rng, spec: SumSpec): string {
  switch (randInt(rng, 0, 4)) {
    case 0: // a piece of the instruction
      return pick(rng, ["sum", `sum ${spec.target}`, `${spec.target}:`, `${spec.target}`, `sum ${spec.target}: ${spec.list[0]}`]);
    case 1: // the list, or its start
      return spec.list.slice(0, randInt(rng, 2, spec.list.length)).join(" ");
    case 2: // the target split in a wrong way
      return `${spec.target} ${randInt(rng, 0, 9)}`;
    case 3: // words
      return pick(rng, ["none", "no", "yes", "sum", "add"]);
    default: // numbers out of range
      return `${randInt(rng, 20, 60)} ${randInt(rng, 1, 19)}`;
  }
}

/** The closest in gold score to round(5 · (1 − severity)) among a few mutation chains. */
function corrupt(spec: SumSpec, reference: string, rng: Rng, severity: number): string {
  const s = Number.isFinite(severity) ? Math.min(1, Math.max(0, severity)) : 1;
  const target = Math.round(5 * (1 - s));
  if (target === 5) return reference; // the pair is unique: the only answer meeting all five
  let best = "";
  let bestGap = Number.POSITIVE_INFINITY;
  for (let k = 0; k < 40 && bestGap > 0; k++) {
    let w: string;
    if (rng() < 0.1 + 0.4 * s) w = base(rng, spec);
    else {
      let d: Draft = { nums: numberRuns(reference), sep: " " };
      const n = 1 + Math.floor(rng() * (5 - target));
      for (let i = 0; i < n; i++) d = pick(rng, OPS)(rng, spec, d);
      w = d.nums.join(d.sep);
    }
    if (w === reference || w.length > MAX_ANSWER) continue;
    const gap = Math.abs(score(sumFamily, spec, w).score - target);
    if (gap < bestGap) {
      best = w;
      bestGap = gap;
    }
  }
  return best;
}

export const sumFamily: Family<SumSpec> = {
  name: "sum",
  description: "Write the two numbers of the list that add up to the target, smaller first.",
  criteria: [
    "two numbers separated by one space",
    "the first number is in the list",
    "the second number is in the list",
    "the first is smaller than the second",
    "they add up to the target",
  ],
  generate,
  check,
  trace,
  corrupt,
};
