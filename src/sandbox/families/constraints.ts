/**
 * Family "constraints": a word under a set of verifiable constraints, IFEval-like.
 * `w6 b.. ..h has e no t` asks for a 6-letter word that starts with b, ends with h, contains e and
 * does not contain t (e.g. `bearch`).
 *
 * Trace (judge): every step compares operands that sit next to each other, or copies in order (no
 * "find the letter and report where" lookups). An indexed walk of the answer (non-letters shown as
 * `#`) in which each letter is followed by the required letter and whether they are equal, then by
 * the banned letter and whether they are equal; then first letter, last letter and length (the walk's
 * last index) each against the instruction's:
 *
 *   `bearch`  →  `1be-t- 2ee+t- 3ae-t- 4re-t- 5ce-t- 6he-t- | b=b+ h=h+ 6=6+`
 *
 * The required letter is there iff some `e+`, the banned one iff some `t+`. The walk stops after 10
 * characters (` ..` follows, and the length shows as `..`); the empty answer's trace is `empty` and it
 * meets no criterion.
 */
import { mulberry32 } from "../../engine/tensor.js";
import type { Family, Rng, Task } from "../task.js";
import { corruptionTarget, mistakeChain, nearestToTarget, pick, randInt } from "../task.js";
import { inRange } from "./parse-util.js";

export interface ConstraintsSpec {
  /** The exact number of characters (4–7). */
  length: number;
  /** The first letter. */
  first: string;
  /** The last letter. */
  last: string;
  /** A letter the answer must contain (never the first or last letter). */
  has: string;
  /** A letter the answer must not contain (none of the above). */
  no: string;
}

const LETTERS = "abcdefghijklmnopqrstuvwxyz";
const WALK_CAP = 10;
const MAX_ANSWER = 20;
/** The generator's range of lengths. */
const LENGTH: [number, number] = [4, 7];

const isLetter = (c: string | undefined): c is string => c !== undefined && c.length === 1 && c >= "a" && c <= "z";
const show = (c: string | undefined): string => (isLetter(c) ? c : "#");
const sign = (ok: boolean): string => (ok ? "+" : "-");

function randLetter(rng: Rng, except = ""): string {
  const pool = [...LETTERS].filter((c) => !except.includes(c));
  return pick(rng, pool.length > 0 ? pool : [...LETTERS]);
}

function instruction(spec: ConstraintsSpec): string {
  return `w${spec.length} ${spec.first}.. ..${spec.last} has ${spec.has} no ${spec.no}`;
}

/**
 * The spec of a `w` instruction the generator could have written, or undefined. Every such task has
 * answers: a length of 4 or more leaves a middle for the required letter, and the banned letter is
 * none of the three given.
 */
function parseInstruction(text: string): ConstraintsSpec | undefined {
  const m = /^w([1-9][0-9]*) ([a-z])\.\. \.\.([a-z]) has ([a-z]) no ([a-z])$/.exec(text);
  if (!m) return undefined;
  const spec: ConstraintsSpec = { length: Number(m[1]), first: m[2], last: m[3], has: m[4], no: m[5] };
  if (!inRange(spec.length, LENGTH[0], LENGTH[1])) return undefined;
  // The generator draws the banned letter first and keeps it out of the others; `has` is neither end.
  if (spec.no === spec.first || spec.no === spec.last || [spec.no, spec.first, spec.last].includes(spec.has)) return undefined;
  return instruction(spec) === text ? spec : undefined;
}

/** A random word meeting the spec. */
function word(rng: Rng, spec: ConstraintsSpec): string {
  const middle = Array.from({ length: spec.length - 2 }, () => randLetter(rng, spec.no));
  middle[randInt(rng, 0, middle.length - 1)] = spec.has;
  return spec.first + middle.join("") + spec.last;
}

function check(spec: ConstraintsSpec, answer: string): boolean[] {
  const cs = Array.from(answer);
  if (cs.length === 0) return [false, false, false, false, false];
  return [cs[0] === spec.first, cs[cs.length - 1] === spec.last, cs.includes(spec.has), !cs.includes(spec.no), cs.length === spec.length];
}

function trace(spec: ConstraintsSpec, answer: string): string {
  const cs = Array.from(answer);
  if (cs.length === 0) return "empty";
  const walk = cs.slice(0, WALK_CAP).map((c, i) => `${i + 1}${show(c)}${spec.has}${sign(c === spec.has)}${spec.no}${sign(c === spec.no)}`);
  if (cs.length > WALK_CAP) walk.push("..");
  const first = cs[0];
  const last = cs[cs.length - 1];
  const shownLength = cs.length > WALK_CAP ? ".." : String(cs.length);
  const checks = [
    `${show(first)}=${spec.first}${sign(first === spec.first)}`,
    `${show(last)}=${spec.last}${sign(last === spec.last)}`,
    `${shownLength}=${spec.length}${sign(cs.length === spec.length)}`,
  ];
  return `${walk.join(" ")} | ${checks.join(" ")}`;
}

// ---- corruptions -------------------------------------------------------------------------------

type Op = (rng: Rng, spec: ConstraintsSpec, w: string) => string;

const at = (rng: Rng, w: string): number => randInt(rng, 0, Math.max(0, w.length - 1));
const inner = (rng: Rng, w: string): number => (w.length <= 2 ? at(rng, w) : randInt(rng, 1, w.length - 2));
const put = (w: string, i: number, s: string): string => w.slice(0, i) + s + w.slice(i + 1);
const insert = (w: string, i: number, s: string): string => w.slice(0, i) + s + w.slice(i);

const OPS: readonly Op[] = [
  // a letter changed at random
  (rng, _s, w) => (w.length === 0 ? randLetter(rng) : put(w, at(rng, w), randLetter(rng))),
  // a letter dropped
  (rng, _s, w) => ((i) => w.slice(0, i) + w.slice(i + 1))(inner(rng, w)),
  // a letter added inside
  (rng, s, w) => insert(w, randInt(rng, 1, Math.max(1, w.length - 1)), randLetter(rng, s.no)),
  // neighbours swapped
  (rng, _s, w) => {
    if (w.length < 2) return w;
    const i = randInt(rng, 0, w.length - 2);
    return w.slice(0, i) + w[i + 1] + w[i] + w.slice(i + 2);
  },
  // wrong first letter
  (rng, s, w) => put(w.length > 0 ? w : "x", 0, randLetter(rng, s.first)),
  // wrong last letter
  (rng, s, w) => (w.length === 0 ? randLetter(rng, s.last) : put(w, w.length - 1, randLetter(rng, s.last))),
  // the banned letter used (in place, or added)
  (rng, s, w) => (rng() < 0.6 ? put(w, inner(rng, w), s.no) : insert(w, randInt(rng, 0, w.length), s.no)),
  // the required letter forgotten
  (rng, s, w) => [...w].map((c) => (c === s.has ? randLetter(rng, s.has + s.no) : c)).join(""),
  // cut short
  (rng, _s, w) => w.slice(0, randInt(rng, 1, Math.max(1, w.length - 1))),
  // run on
  (rng, s, w) => w + Array.from({ length: randInt(rng, 1, 3) }, () => randLetter(rng, s.no)).join(""),
  // a non-letter (digit, space, dot)
  (rng, _s, w) => insert(w, randInt(rng, 0, w.length), pick(rng, [..."0123456789 ."])),
];

/** Strings a model writes when it has not got the task at all: the instruction's material, a guess. */
function base(rng: Rng, spec: ConstraintsSpec): string {
  switch (randInt(rng, 0, 3)) {
    case 0:
      return pick(rng, [
        `${spec.first}${spec.last}`,
        `${spec.first}..${spec.last}`,
        `${spec.first}${spec.has}${spec.last}`,
        `${spec.first}${spec.has}${spec.no}${spec.last}`,
        `${spec.has}${spec.no}`,
        `w${spec.length}`,
        `has ${spec.has}`,
      ]);
    case 1: // the constraint letters strung together
      return `${spec.first}${spec.has}${spec.last}${spec.no}`;
    default: // a random plausible word
      return Array.from({ length: randInt(rng, 2, 9) }, () => randLetter(rng)).join("");
  }
}

/** The closest in gold score to round(5 · (1 − severity)) among a few mutation chains. */
function corrupt(spec: ConstraintsSpec, reference: string, rng: Rng, severity: number): string {
  const { s, target } = corruptionTarget(severity);
  if (target === 5) {
    // Not damaged: another correct answer where there is one.
    for (let k = 0; k < 5; k++) {
      const w = word(rng, spec);
      if (w !== reference) return w;
    }
    return reference;
  }
  return nearestToTarget(constraintsFamily, spec, reference, target, MAX_ANSWER, () =>
    mistakeChain(rng, spec, reference, s, target, base, OPS),
  );
}

export const constraintsFamily: Family<ConstraintsSpec> = {
  name: "constraints",
  description: "Write a word of the given length with the given first and last letter that contains one letter and avoids another.",
  criteria: [
    "starts with the given letter",
    "ends with the given letter",
    "contains the required letter",
    "does not contain the banned letter",
    "exactly the given number of characters",
  ],
  generate(rng: Rng): Task<ConstraintsSpec> {
    const length = randInt(rng, LENGTH[0], LENGTH[1]);
    const no = randLetter(rng);
    const first = randLetter(rng, no);
    const last = randLetter(rng, no);
    const has = randLetter(rng, no + first + last);
    const spec: ConstraintsSpec = { length, first, last, has, no };
    return { family: "constraints", instruction: instruction(spec), spec, reference: word(rng, spec) };
  },
  check,
  trace,
  corrupt,
  parse: parseInstruction,
  // The generator's word drawn from a fixed stream: any word meeting the spec is a reference.
  solve: (spec) => word(mulberry32(1), spec),
};
