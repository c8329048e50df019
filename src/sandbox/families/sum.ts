/**
 * Family "sum": the two numbers of a list that add up to a target.
 *
 *   `sum 13: 4 9 2 7 5`  →  `4 9`
 *
 * The list holds 4–6 distinct numbers 1–19 in random order, exactly one pair of which adds up to the
 * target (a number may be half the target: using it twice is wrong, since the answer must ascend).
 * The answer is that pair, smaller first. Finding the pair is a search over all pairs, while checking
 * one is two scans, one comparison and one addition.
 *
 * The answer's numbers are its runs of digits (`4, 9` has the numbers 4 and 9 but not the right form);
 * the criteria after the first look at the first two of them, a and b.
 *
 * Trace (judge), every step a comparison of neighbours or a copy in order (see common-a.ts):
 * the answer's shape (each run of digits `n`, each space `s`, anything else `x`; after 6 signs `..`);
 * a scan of the list for a, then one for b (`.`: no such number); a against b (the true relation);
 * then the addition a + b column by column, units first (`x+y=s`, then `x+y+carry=s` with a missing
 * digit written 0), the sum read off the columns (the last column's sum, then the other columns' last
 * digits) and compared with the target (`.-`: no such pair):
 *
 *   `sum 13: 4 9 2 7 5`, answer `4 9`  →  `nsn+ | 4=4+ | 9=4- 9=9+ | 4<9+ 4+9=13 13=13+`
 *   `sum 27: 19 1 15 9 18`, answer `9 18`  →  `nsn+ | 9=19- 9=1- 9=15- 9=9+ | 18=19- 18=1- 18=15- 18=9- 18=18+ | 9<18+ 9+8=17 0+1+1=2 27=27+`
 *
 * A scan that would push the judge example past 188 characters (numbers of 3 digits and more) stops
 * early and `..` follows.
 *
 * Why columns: a model trained on the plain sum (`9+18=27`) wrote `25`; one digit plus one digit
 * (plus a carry) is a table of 200 facts that every task exercises, and each column's digits sit in
 * the two numbers just written before it.
 *
 * The empty answer's trace is `empty`; it meets no criterion.
 */
import type { Family, Rng, Task } from "../task.js";
import { corruptionTarget, nearestToTarget, pick, randInt, shuffled } from "../task.js";
import { judgeLength, MAX_JUDGE, numberRuns, positionIn, relation, scan, shapeOf, showNumber, sign } from "./common-a.js";
import { distinctList, numberList } from "./parse-util.js";

export interface SumSpec {
  /** The sum the two numbers must reach. */
  target: number;
  /** The numbers, in the instruction's order. */
  list: number[];
}

const MAX_ANSWER = 20;
const SHAPE_CAP = 6;
/** The generator's ranges: the list's length and its values. */
const COUNT: [number, number] = [4, 6];
const VALUES: [number, number] = [1, 19];

/** The column addition of a and b (values under 1000): `9+8=17 0+1+1=2`, and the sum it reads `27`. */
export function columns(a: number, b: number): { text: string; total: string } {
  const da = [...String(a)].reverse();
  const db = [...String(b)].reverse();
  const w = Math.max(da.length, db.length);
  const steps: string[] = [];
  let carry = 0;
  let digits = "";
  for (let i = 0; i < w; i++) {
    const x = da[i] ?? "0";
    const y = db[i] ?? "0";
    const s = Number(x) + Number(y) + carry;
    steps.push(i === 0 ? `${x}+${y}=${s}` : `${x}+${y}+${carry}=${s}`);
    if (i < w - 1) {
      digits = String(s % 10) + digits;
      carry = Math.floor(s / 10);
    } else digits = String(s) + digits;
  }
  return { text: steps.join(" "), total: digits };
}

function instruction(spec: SumSpec): string {
  return `sum ${spec.target}: ${spec.list.join(" ")}`;
}

/**
 * The spec of a `sum` instruction the generator could have written, or undefined: exactly one pair
 * of the list adds up to the target (none: no answer; more: the generator never writes it, and
 * `corrupt` relies on the pair being unique).
 */
function parseInstruction(text: string): SumSpec | undefined {
  const m = /^sum ([1-9][0-9]*): (.*)$/.exec(text);
  const list = m ? numberList(m[2]) : undefined;
  if (m === null || list === undefined || !distinctList(list, COUNT, VALUES)) return undefined;
  const spec: SumSpec = { target: Number(m[1]), list };
  let pairs = 0;
  for (let i = 0; i < list.length; i++) for (let j = i + 1; j < list.length; j++) if (list[i] + list[j] === spec.target) pairs++;
  if (pairs !== 1) return undefined;
  return instruction(spec) === text ? spec : undefined;
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

function traceWith(spec: SumSpec, answer: string, cap: number): string {
  const [a, b] = numberRuns(answer);
  const [c1, , , c4, c5] = check(spec, answer);
  const items = spec.list.map(String);
  const look = (run: string | undefined): string => {
    if (run === undefined) return ".";
    const s = scan(showNumber(run), items.slice(0, cap), (x) => x === run);
    return s.found || cap >= items.length ? s.text : `${s.text} ..`;
  };
  let steps = ".- .-";
  if (a !== undefined && b !== undefined) {
    const [x, y] = [Number(a), Number(b)];
    const order = `${showNumber(a)}${relation(x, y)}${showNumber(b)}${sign(c4)}`;
    // Numbers of 4 digits or more (never in the list, never adding up to a target under 40) are not added.
    const add = x < 1000 && y < 1000 ? ((c) => `${c.text} ${c.total}=${spec.target}${sign(c5)}`)(columns(x, y)) : `.${sign(c5)}`;
    steps = `${order} ${add}`;
  }
  return `${shapeOf(answer, SHAPE_CAP)}${sign(c1)} | ${look(a)} | ${look(b)} | ${steps}`;
}

function trace(spec: SumSpec, answer: string): string {
  if (answer.length === 0) return "empty";
  // Absurd answers (long numbers) scan fewer items, so that the judge example fits the context.
  for (let cap = spec.list.length; cap > 1; cap--) {
    const t = traceWith(spec, answer, cap);
    if (judgeLength(instruction(spec), answer, t) <= MAX_JUDGE) return t;
  }
  return traceWith(spec, answer, 1);
}

function generate(rng: Rng): Task<SumSpec> {
  const values = Array.from({ length: VALUES[1] - VALUES[0] + 1 }, (_, i) => i + VALUES[0]);
  const [x, y] = shuffled(rng, values).slice(0, 2);
  const target = x + y;
  const list = [x, y];
  const n = randInt(rng, COUNT[0], COUNT[1]);
  for (const d of shuffled(rng, values)) {
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
  const { s, target } = corruptionTarget(severity);
  if (target === 5) return reference; // the pair is unique: the only answer meeting all five
  return nearestToTarget(sumFamily, spec, reference, target, MAX_ANSWER, () => {
    if (rng() < 0.1 + 0.4 * s) return base(rng, spec);
    let d: Draft = { nums: numberRuns(reference), sep: " " };
    const n = 1 + Math.floor(rng() * (5 - target));
    for (let i = 0; i < n; i++) d = pick(rng, OPS)(rng, spec, d);
    return d.nums.join(d.sep);
  });
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
  parse: parseInstruction,
  solve(spec) {
    for (let i = 0; i < spec.list.length; i++)
      for (let j = i + 1; j < spec.list.length; j++) {
        const [x, y] = [spec.list[i], spec.list[j]];
        if (x + y === spec.target) return `${Math.min(x, y)} ${Math.max(x, y)}`;
      }
    return undefined;
  },
};
