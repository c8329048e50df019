/**
 * Family "sort": `sort: 7 3 12 1` (4–6 distinct numbers 1–19) asks for `1 3 7 12`.
 *
 * The answer's numbers are its maximal runs of digits (compared as written: `07` is not `7`), so a
 * wrong separator costs only the format criterion.
 *
 * Trace (judge): every step compares operands that sit next to each other, or copies in order (no
 * "is this number somewhere in that list" lookups). A walk of the answer's numbers indexed by letters
 * (a, b, c, …), any text other than a single space between two numbers shown as `#`. From the second
 * number on, the step starts with the pair `previous<this` and whether it holds. Then the list is
 * crossed off: after `:` come the list numbers not yet crossed off, copied in order, each marked `+`
 * if it equals this number (it is then crossed off) or `-` (the first scan letters them, so the list's
 * count is read off its last letter). A number that is not among them is either written twice — `/`
 * and the numbers found before, up to the equal one — or not in the list at all: crossing off stops
 * there and the later steps are just the pairs. Then the list numbers left (`0`: none), each looked
 * for among the numbers after the stop, up to the first not there (`-`); then the answer's count
 * against the list's, as their last index letters:
 *
 *   `1 3 7 12`, list 7 3 12 1  →  `a1:a7-b3-c12-d1+ b1<3+:7-3+12- c3<7+:7+12- d7<12+:12+|0|d=d+`
 *   `1 3 3 12`                 →  `a1:a7-b3-c12-d1+ b1<3+:7-3+12- c3<3-:7-12-/1-3+ d3<12+:7-12+|7:-|d=d+`
 *
 * The answer's numbers are all listed iff every step finds a `+` (no stray); the list's are all in the
 * answer iff none is left or every one left is found. The walk stops after one number more than the
 * list has (` ..` follows, the count shows as `..`), and a trace that would not fit the judge example
 * (188 characters in all) is cut after its last whole step with ` ..` — only long answers with stray
 * or repeated numbers; the empty answer's trace is `empty` and it meets no criterion.
 */
import type { Family, Rng, Task } from "../task.js";
import { corruptionTarget, nearestToTarget, pick, randInt, shuffled } from "../task.js";
import { distinctList, numberList } from "./parse-util.js";

export interface SortSpec {
  /** The list in the instruction's order (distinct, 1–19). */
  numbers: number[];
}

/** Crossing off stops at the first number not in the list. */
const STRAYS = 1;
/**
 * The whole judge example (prompt, trace, bits, score) fits this many characters: a trace that would
 * run past it is cut at the last step that fits, with ` ..` (only long answers with stray numbers).
 */
const EXAMPLE_MAX = 188;
/** What a judge example adds to instruction, answer and trace: `\n>`, `\n?`, `\n` + 5 bits, `\nScore: k`. */
const EXAMPLE_FRAME = 4 + 6 + 9;
/** The least a cut trace keeps (for absurdly long answers). */
const TRACE_MIN = 40;
const MAX_ANSWER = 20;
/** The generator's ranges: how many numbers the list has, and their values. */
const COUNT: [number, number] = [4, 6];
const VALUES: [number, number] = [1, 19];
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

/** The spec of a `sort:` instruction the generator could have written (any such list sorts), or undefined. */
function parseInstruction(text: string): SortSpec | undefined {
  const m = /^sort: (.*)$/.exec(text);
  const numbers = m ? numberList(m[1]) : undefined;
  if (numbers === undefined || !distinctList(numbers, COUNT, VALUES)) return undefined;
  const spec: SortSpec = { numbers };
  return instruction(spec) === text ? spec : undefined;
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
  let left = list.slice(); // the list numbers not crossed off yet
  const crossed: string[] = []; // the answer's numbers found so far, in order
  const after: string[] = []; // the answer's numbers once crossing off has stopped
  let crossing = true;
  let strays = 0; // numbers met that are not in the list
  let k = 0;
  let prev = "";
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (!p.num) {
      // A single space between two numbers is the separator; anything else is shown.
      if (!(p.text === " " && i > 0 && i < parts.length - 1)) walk.push("#");
      continue;
    }
    if (k > list.length) {
      // Two numbers past the list's count: the count is wrong already; the walk stops.
      walk.push("..");
      break;
    }
    const x = p.text;
    // The head: index letter, then the pair (number before < this one) and whether it holds.
    let item = k === 0 ? `${letter(0)}${showNumber(x)}` : `${letter(k)}${showNumber(prev)}<${showNumber(x)}${sign(compare(prev, x) < 0)}`;
    if (crossing) {
      // Crossing off: the list numbers left, in order, each compared with this number (the first
      // scan letters them, so the list's count is read off it).
      const hit = left.indexOf(x);
      item += `:${left.map((n, j) => `${k === 0 ? letter(j) : ""}${n}${sign(j === hit)}`).join("")}`;
      if (hit >= 0) {
        left = left.filter((_, j) => j !== hit);
        crossed.push(x);
      } else {
        // Not among those left: a list number written twice (one of the numbers found before) or
        // a number not in the list, after which crossing off stops.
        const dup = crossed.indexOf(x);
        if (crossed.length > 0 && strays === 0) {
          item += `/${crossed
            .slice(0, dup < 0 ? crossed.length : dup + 1)
            .map((n) => `${showNumber(n)}${sign(n === x)}`)
            .join("")}`;
        }
        if (dup < 0 && ++strays >= STRAYS) crossing = false;
      }
    } else after.push(x);
    walk.push(item);
    prev = x;
    k++;
  }
  const capped = walk[walk.length - 1] === "..";
  // The list numbers left: none (`0`), or each looked for among the numbers written after crossing
  // off stopped, up to the first one not there.
  let rest = "0";
  if (left.length > 0) {
    const looks: string[] = [];
    for (const n of left) {
      const hit = after.indexOf(n);
      const seen = after.slice(0, hit < 0 ? after.length : hit + 1).map((m) => `${showNumber(m)}${sign(m === n)}`);
      looks.push(`${n}:${seen.length > 0 ? seen.join("") : "-"}`);
      if (hit < 0) break;
    }
    rest = looks.join(" ");
  }
  const count = `${capped ? ".." : countLetter(nums.length)}=${countLetter(list.length)}${sign(nums.length === list.length)}`;
  const full = `${walk.join(" ")}|${rest}|${count}`;
  const room = Math.max(TRACE_MIN, EXAMPLE_MAX - EXAMPLE_FRAME - instruction(spec).length - answer.length);
  if (full.length <= room) return full;
  const cut = full.slice(0, room - 2);
  return `${cut.slice(0, Math.max(0, cut.lastIndexOf(" ")))} ..`;
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
  const { s, target } = corruptionTarget(severity);
  if (target === 5) return ref; // the sorted list is the only correct answer
  return nearestToTarget(sortFamily, spec, ref, target, MAX_ANSWER, () => {
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
    return w;
  });
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
    const count = randInt(rng, COUNT[0], COUNT[1]);
    const numbers = shuffled(
      rng,
      Array.from({ length: VALUES[1] - VALUES[0] + 1 }, (_, i) => i + VALUES[0]),
    ).slice(0, count);
    const spec: SortSpec = { numbers };
    return { family: "sort", instruction: instruction(spec), spec, reference: reference(spec) };
  },
  check,
  trace,
  corrupt,
  parse: parseInstruction,
  solve: reference,
};
