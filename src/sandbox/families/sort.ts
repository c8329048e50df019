/**
 * Family "sort": `sort: 7 3 12 1` (4–6 distinct numbers 1–19) asks for `1 3 7 12`.
 *
 * The answer's numbers are its maximal runs of digits (compared as written: `07` is not `7`), so a
 * wrong separator costs only the format criterion.
 *
 * Trace (judge): a walk of the answer's numbers indexed by letters (a, b, c, …), each marked `+` if it
 * is in the list and, from the second on, `<` if it is larger than the number before it (`>` smaller,
 * `=` equal); any other text between them shown as `#`. Then a walk of the list, each number marked
 * `+` if it is in the answer; then the answer's count against the list's, as their last index letters:
 *
 *   `1 3 7 12`, list 7 3 12 1  →  `a1+ b3+< c7+< d12+< | a7+ b3+ c12+ d1+ | d=d+`
 *
 * The walk stops after 7 items (` ..` follows); the empty answer's trace is `empty` and it meets no
 * criterion.
 */
import type { Family, Rng, Task } from "../task.js";
import { pick, randInt, score, shuffled } from "../task.js";

export interface SortSpec {
  /** The list in the instruction's order (distinct, 1–19). */
  numbers: number[];
}

const WALK_CAP = 7;
const MAX_ANSWER = 20;
const FORMAT = /^[0-9]+( [0-9]+)*$/;

const sign = (ok: boolean): string => (ok ? "+" : "-");
const letter = (i: number): string => String.fromCharCode(97 + Math.min(25, i));
/** The last index letter of n items; `0` for none. */
const countLetter = (n: number): string => (n === 0 ? "0" : letter(n - 1));
/** A number as the trace shows it: at most three characters. */
const showNumber = (s: string): string => (s.length <= 3 ? s : `${s.slice(0, 2)}.`);

/** Numeric comparison of digit strings of any length. */
function compare(a: string, b: string): number {
  const x = a.replace(/^0+(?=.)/, "");
  const y = b.replace(/^0+(?=.)/, "");
  if (x.length !== y.length) return x.length - y.length;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** The answer cut into numbers (digit runs) and the text around them. */
function parse(answer: string): { parts: { num: boolean; text: string }[]; nums: string[] } {
  const parts = (answer.match(/[0-9]+|[^0-9]+/g) ?? []).map((text) => ({ num: /^[0-9]/.test(text), text }));
  return { parts, nums: parts.filter((p) => p.num).map((p) => p.text) };
}

function instruction(spec: SortSpec): string {
  return `sort: ${spec.numbers.join(" ")}`;
}

function reference(spec: SortSpec): string {
  return spec.numbers
    .slice()
    .sort((a, b) => a - b)
    .join(" ");
}

function check(spec: SortSpec, answer: string): boolean[] {
  if (answer.length === 0) return [false, false, false, false, false];
  const { nums } = parse(answer);
  const list = spec.numbers.map(String);
  return [
    FORMAT.test(answer),
    nums.length === list.length,
    nums.every((n) => list.includes(n)),
    list.every((n) => nums.includes(n)),
    nums.every((n, i) => i === 0 || compare(nums[i - 1], n) < 0),
  ];
}

function trace(spec: SortSpec, answer: string): string {
  if (answer.length === 0) return "empty";
  const { parts, nums } = parse(answer);
  const list = spec.numbers.map(String);
  const walk: string[] = [];
  let k = 0;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (walk.length >= WALK_CAP) {
      walk.push("..");
      break;
    }
    if (!p.num) {
      // A single space between two numbers is the separator; anything else is shown.
      if (!(p.text === " " && i > 0 && i < parts.length - 1)) walk.push("#");
      continue;
    }
    const order = k === 0 ? "" : ((c) => (c < 0 ? "<" : c > 0 ? ">" : "="))(compare(nums[k - 1], p.text));
    walk.push(`${letter(k)}${showNumber(p.text)}${sign(list.includes(p.text))}${order}`);
    k++;
  }
  const lookups = list.map((n, i) => `${letter(i)}${n}${sign(nums.includes(n))}`);
  const count = `${countLetter(nums.length)}=${countLetter(list.length)}${sign(nums.length === list.length)}`;
  return `${walk.join(" ")} | ${lookups.join(" ")} | ${count}`;
}

// ---- corruptions -------------------------------------------------------------------------------

type NumOp = (rng: Rng, spec: SortSpec, xs: string[]) => string[];
type TextOp = (rng: Rng, spec: SortSpec, w: string) => string;

const swapAt = (xs: string[], i: number): string[] => {
  const ys = xs.slice();
  [ys[i], ys[i + 1]] = [ys[i + 1], ys[i]];
  return ys;
};

const NUM_OPS: readonly NumOp[] = [
  // neighbours out of order
  (rng, _s, xs) => (xs.length < 2 ? xs : swapAt(xs, randInt(rng, 0, xs.length - 2))),
  // a number dropped
  (rng, _s, xs) => {
    if (xs.length <= 1) return xs;
    const j = randInt(rng, 0, xs.length - 1);
    return xs.filter((_, i) => i !== j);
  },
  // a listed number twice
  (rng, s, xs) => {
    const n = String(pick(rng, s.numbers));
    const i = xs.findIndex((x) => compare(x, n) >= 0);
    const ys = xs.slice();
    ys.splice(i < 0 ? ys.length : i, 0, n);
    return ys;
  },
  // a number that is not in the list, in its sorted place
  (rng, s, xs) => {
    let n = randInt(rng, 1, 25);
    while (s.numbers.includes(n)) n = randInt(rng, 1, 25);
    const i = xs.findIndex((x) => compare(x, String(n)) >= 0);
    const ys = xs.slice();
    ys.splice(i < 0 ? ys.length : i, 0, String(n));
    return ys;
  },
  // a number off by one (or with a digit lost)
  (rng, _s, xs) => {
    if (xs.length === 0) return xs;
    const i = randInt(rng, 0, xs.length - 1);
    const v = Number(xs[i]);
    const ys = xs.slice();
    ys[i] = rng() < 0.3 && xs[i].length > 1 ? xs[i].slice(1) : String(Math.max(0, v + (rng() < 0.5 ? -1 : 1)));
    return ys;
  },
  // the whole list backwards
  (_rng, _s, xs) => xs.slice().reverse(),
  // the list as given
  (_rng, s, _xs) => s.numbers.map(String),
];

const TEXT_OPS: readonly TextOp[] = [
  // a separator wrong: comma, two spaces, none
  (rng, _s, w) => {
    const spaces = [...w.matchAll(/ /g)].map((m) => m.index ?? 0);
    if (spaces.length === 0) return `${w} `;
    const i = pick(rng, spaces);
    return w.slice(0, i) + pick(rng, [",", ", ", "  ", "", "-"]) + w.slice(i + 1);
  },
  // commas everywhere
  (_rng, _s, w) => w.replaceAll(" ", ", "),
  // a stray space or dot at an end
  (rng, _s, w) => (rng() < 0.5 ? `${w}${pick(rng, [" ", "."])}` : ` ${w}`),
  // the instruction's word copied
  (_rng, _s, w) => `sort ${w}`,
];

/** The closest in gold score to round(5 · (1 − severity)) among a few mutation chains. */
function corrupt(spec: SortSpec, ref: string, rng: Rng, severity: number): string {
  const s = Number.isFinite(severity) ? Math.min(1, Math.max(0, severity)) : 1;
  const target = Math.round(5 * (1 - s));
  if (target === 5) return ref; // the sorted list is the only correct answer
  let best = "";
  let bestGap = Number.POSITIVE_INFINITY;
  for (let k = 0; k < 40 && bestGap > 0; k++) {
    let xs = parse(ref).nums;
    if (rng() < 0.1 + 0.4 * s) {
      // Not got the task at all: the list as given, or random numbers.
      xs =
        rng() < 0.5
          ? shuffled(rng, spec.numbers).map(String)
          : Array.from({ length: randInt(rng, 2, 7) }, () => String(randInt(rng, 1, 25)));
    }
    const n = 1 + Math.floor(rng() * (5 - target));
    const textOps: TextOp[] = [];
    for (let i = 0; i < n; i++) {
      if (rng() < 0.3) textOps.push(pick(rng, TEXT_OPS));
      else xs = pick(rng, NUM_OPS)(rng, spec, xs);
    }
    let w = xs.join(" ");
    for (const op of textOps) w = op(rng, spec, w);
    if (w === ref || w.length > MAX_ANSWER) continue;
    const gap = Math.abs(score(sortFamily, spec, w).score - target);
    if (gap < bestGap) {
      best = w;
      bestGap = gap;
    }
  }
  return best;
}

export const sortFamily: Family<SortSpec> = {
  name: "sort",
  description: "Write the listed numbers in ascending order, separated by single spaces.",
  criteria: [
    "numbers separated by single spaces",
    "as many numbers as the list",
    "every number in the answer is in the list",
    "every number in the list is in the answer",
    "each number larger than the one before",
  ],
  generate(rng: Rng): Task<SortSpec> {
    const count = randInt(rng, 4, 6);
    const numbers = shuffled(
      rng,
      Array.from({ length: 19 }, (_, i) => i + 1),
    ).slice(0, count);
    const spec: SortSpec = { numbers };
    return { family: "sort", instruction: instruction(spec), spec, reference: reference(spec) };
  },
  check,
  trace,
  corrupt,
};
