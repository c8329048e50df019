/**
 * Family "spaced": a word under pairwise constraints. `spaced 5 from c to o gap 3` asks for five
 * letters from c to o, no letter twice, neighbours at least 3 apart in the alphabet (e.g. `cfilo`).
 *
 * Every criterion is local to check (an end letter, a neighbour distance, a look back for the same
 * letter) but meeting them all at once needs a search — landing on the last letter after the right
 * number of big enough steps: the generation–verification gap the design asks for. (The end letter
 * also makes the instruction space large: length × start × end × gap ≈ 5,800 instructions, enough
 * for thousands of distinct training tasks.)
 *
 * Trace (judge): every step compares operands that sit next to each other, or copies in order. An
 * indexed walk of the answer, each letter followed by its place in the alphabet (a1 … z26; a
 * non-letter is `#`, with no place) and, from the second on, whether its place is at least the gap
 * from the place just before it (a pair with a non-letter fails); then a scan for repeats, each letter
 * (from the second) against the letters before it copied in order, up to the first repeat (`none`
 * under two letters); then the first letter, the last letter and the length (the walk's last index)
 * against the instruction's:
 *
 *   answer `cfimo`, gap 3  →  `1c3 2f6+ 3i9+ 4m13+ 5o15- | f:c- i:cf- m:cfi- o:cfim- | c=c+ o=o+ 5=5+`
 *
 * The walk stops after 7 characters (` ..` follows, and the length shows as `..`); the empty answer's
 * trace is `empty` and it meets no criterion.
 */
import { mulberry32 } from "../../engine/tensor.js";
import type { Family, Rng, Task } from "../task.js";
import { corruptionTarget, mistakeChain, nearestToTarget, pick, randInt, shuffled } from "../task.js";
import { inRange } from "./parse-util.js";

export interface SpacedSpec {
  /** The exact number of letters (4–6). */
  length: number;
  /** The first letter. */
  start: string;
  /** The last letter (not the first). */
  end: string;
  /** The least alphabet distance between neighbours (2–4). */
  gap: number;
}

const LETTERS = "abcdefghijklmnopqrstuvwxyz";
const WALK_CAP = 7;
const MAX_ANSWER = 20;
/** The generator's ranges of lengths and gaps. */
const LENGTH: [number, number] = [4, 6];
const GAP: [number, number] = [2, 4];

const isLetter = (c: string | undefined): c is string => c !== undefined && c.length === 1 && c >= "a" && c <= "z";
const dist = (a: string, b: string): number => Math.abs(a.charCodeAt(0) - b.charCodeAt(0));
const show = (c: string | undefined): string => (isLetter(c) ? c : "#");
const sign = (ok: boolean): string => (ok ? "+" : "-");

function randLetter(rng: Rng, except = ""): string {
  const pool = [...LETTERS].filter((c) => !except.includes(c));
  return pick(rng, pool.length > 0 ? pool : [...LETTERS]);
}

/** A random word meeting the spec (depth-first search over shuffled letters), or null if none. */
function spacedWord(rng: Rng, spec: SpacedSpec): string | null {
  const word = [spec.start];
  const used = new Set(word);
  if (spec.start === spec.end || spec.length < 2) return null;
  const extend = (): boolean => {
    if (word.length >= spec.length) return true;
    const prev = word[word.length - 1];
    const lastStep = word.length === spec.length - 1;
    for (const c of lastStep ? [spec.end] : shuffled(rng, [...LETTERS])) {
      if (used.has(c) || dist(prev, c) < spec.gap || (!lastStep && c === spec.end)) continue;
      word.push(c);
      used.add(c);
      if (extend()) return true;
      word.pop();
      used.delete(c);
    }
    return false;
  };
  return extend() ? word.join("") : null;
}

function instruction(spec: SpacedSpec): string {
  return `spaced ${spec.length} from ${spec.start} to ${spec.end} gap ${spec.gap}`;
}

/** The spec of a `spaced` instruction the generator could have written (one with an answer), or undefined. */
function parseInstruction(text: string): SpacedSpec | undefined {
  const m = /^spaced ([1-9][0-9]*) from ([a-z]) to ([a-z]) gap ([1-9][0-9]*)$/.exec(text);
  if (!m) return undefined;
  const spec: SpacedSpec = { length: Number(m[1]), start: m[2], end: m[3], gap: Number(m[4]) };
  if (!inRange(spec.length, LENGTH[0], LENGTH[1]) || !inRange(spec.gap, GAP[0], GAP[1]) || spec.start === spec.end) return undefined;
  // The search is exhaustive, so any rng finds a word iff one exists; a fixed one keeps parse pure.
  if (spacedWord(() => 0, spec) === null) return undefined;
  return instruction(spec) === text ? spec : undefined;
}

function check(spec: SpacedSpec, answer: string): boolean[] {
  const cs = Array.from(answer);
  if (cs.length === 0) return [false, false, false, false, false];
  const letters = cs.filter(isLetter);
  return [
    cs[0] === spec.start,
    cs[cs.length - 1] === spec.end,
    cs.length === spec.length,
    new Set(letters).size === letters.length,
    cs.every((c, i) => i === 0 || (isLetter(cs[i - 1]) && isLetter(c) && dist(cs[i - 1], c) >= spec.gap)),
  ];
}

/** A letter's place in the alphabet (a1 … z26). */
const place = (c: string): number => c.charCodeAt(0) - 96;

function trace(spec: SpacedSpec, answer: string): string {
  const cs = Array.from(answer);
  if (cs.length === 0) return "empty";
  const shown = cs.slice(0, WALK_CAP);
  // The walk: index, letter, its alphabet place, and (from the second on) whether it is at least the
  // gap from the place just before it (a non-letter on either side fails).
  const walk = shown.map((c, i) => {
    const item = `${i + 1}${show(c)}${isLetter(c) ? place(c) : ""}`;
    if (i === 0) return item;
    const prev = shown[i - 1];
    return `${item}${sign(isLetter(prev) && isLetter(c) && dist(prev, c) >= spec.gap)}`;
  });
  if (cs.length > WALK_CAP) walk.push("..");
  // Repeats: each letter against the letters before it (copied in order); stop at the first repeat.
  const letters = shown.filter(isLetter);
  const scans: string[] = [];
  for (let i = 1; i < letters.length; i++) {
    const again = letters.slice(0, i).includes(letters[i]);
    scans.push(`${letters[i]}:${letters.slice(0, i).join("")}${sign(again)}`);
    if (again) break;
  }
  const first = `${show(cs[0])}=${spec.start}${sign(cs[0] === spec.start)}`;
  const last = `${show(cs[cs.length - 1])}=${spec.end}${sign(cs[cs.length - 1] === spec.end)}`;
  const length = `${cs.length > WALK_CAP ? ".." : cs.length}=${spec.length}${sign(cs.length === spec.length)}`;
  return `${walk.join(" ")} | ${scans.length > 0 ? scans.join(" ") : "none"} | ${first} ${last} ${length}`;
}

// ---- corruptions -------------------------------------------------------------------------------

type Op = (rng: Rng, spec: SpacedSpec, w: string) => string;

const at = (rng: Rng, w: string, from = 0): number => randInt(rng, Math.min(from, Math.max(0, w.length - 1)), Math.max(0, w.length - 1));
const put = (w: string, i: number, s: string): string => w.slice(0, i) + s + w.slice(i + 1);
const insert = (w: string, i: number, s: string): string => w.slice(0, i) + s + w.slice(i);

const OPS: readonly Op[] = [
  // a letter changed at random
  (rng, _s, w) => (w.length === 0 ? randLetter(rng) : put(w, at(rng, w, 1), randLetter(rng))),
  // a letter too close to its left neighbour
  (rng, s, w) => {
    if (w.length < 2) return w + w;
    const i = at(rng, w, 1);
    const prev = w[i - 1];
    const close = [...LETTERS].filter((c) => isLetter(prev) && c !== prev && dist(prev, c) < s.gap);
    return close.length > 0 ? put(w, i, pick(rng, close)) : put(w, i, prev);
  },
  // a letter dropped
  (rng, _s, w) => (w.length <= 1 ? w : ((i) => w.slice(0, i) + w.slice(i + 1))(at(rng, w, 1))),
  // a letter added at random
  (rng, _s, w) => insert(w, randInt(rng, 1, Math.max(1, w.length)), randLetter(rng)),
  // one letter too many, but a good one (only the length is wrong)
  (rng, s, w) => {
    const last = w[w.length - 1];
    const ok = [...LETTERS].filter((c) => !w.includes(c) && (!isLetter(last) || dist(last, c) >= s.gap));
    return w + (ok.length > 0 ? pick(rng, ok) : randLetter(rng));
  },
  // neighbours swapped
  (rng, _s, w) => {
    if (w.length < 2) return w;
    const i = randInt(rng, 0, w.length - 2);
    return w.slice(0, i) + w[i + 1] + w[i] + w.slice(i + 2);
  },
  // a letter used twice (an earlier one again)
  (rng, _s, w) => {
    if (w.length < 2) return w + w;
    const i = at(rng, w, 1);
    return put(w, i, w[randInt(rng, 0, i - 1)]);
  },
  // a letter doubled
  (rng, _s, w) => {
    if (w.length === 0) return w;
    const i = at(rng, w);
    return insert(w, i, w[i]);
  },
  // wrong first letter
  (rng, s, w) => put(w.length > 0 ? w : "x", 0, randLetter(rng, s.start)),
  // wrong last letter
  (rng, s, w) => (w.length === 0 ? randLetter(rng, s.end) : put(w, w.length - 1, randLetter(rng, s.end))),
  // a non-letter (digit, space, sign)
  (rng, _s, w) => {
    const c = pick(rng, [..."0123456789 .-"]);
    return rng() < 0.5 ? insert(w, randInt(rng, 0, w.length), c) : put(w, at(rng, w), c);
  },
  // cut short
  (rng, _s, w) => w.slice(0, randInt(rng, 1, Math.max(1, w.length - 1))),
];

/** Strings a model writes when it has not got the task at all. */
function base(rng: Rng, spec: SpacedSpec): string {
  const code = spec.start.charCodeAt(0);
  switch (randInt(rng, 0, 4)) {
    case 0: // an alphabet run from the start letter
      return Array.from({ length: spec.length }, (_, i) => String.fromCharCode(((code - 97 + i) % 26) + 97)).join("");
    case 1: // the instruction's words
      return pick(rng, [
        "spaced",
        "from",
        `${spec.start}${spec.end}`,
        `${spec.start}to${spec.end}`,
        `${spec.start}${spec.gap}`,
        `from ${spec.start}`,
      ]);
    case 2: // the start letter over and over
      return spec.start.repeat(randInt(rng, 2, spec.length));
    default: // a random plausible word
      return Array.from({ length: randInt(rng, 2, 8) }, () => randLetter(rng)).join("");
  }
}

/** The closest in gold score to round(5 · (1 − severity)) among a few mutation chains. */
function corrupt(spec: SpacedSpec, reference: string, rng: Rng, severity: number): string {
  const { s, target } = corruptionTarget(severity);
  if (target === 5) {
    // Not damaged: another correct answer where there is one.
    for (let k = 0; k < 5; k++) {
      const w = spacedWord(rng, spec);
      if (w !== null && w !== reference) return w;
    }
    return reference;
  }
  return nearestToTarget(spacedFamily, spec, reference, target, MAX_ANSWER, () => mistakeChain(rng, spec, reference, s, target, base, OPS));
}

export const spacedFamily: Family<SpacedSpec> = {
  name: "spaced",
  description: "Write a word of the given length from one letter to another, no letter twice, neighbours at least the gap apart.",
  criteria: [
    "starts with the given letter",
    "ends with the given letter",
    "exactly the given number of letters",
    "no letter twice",
    "every neighbour pair at least the gap apart in the alphabet",
  ],
  generate(rng: Rng): Task<SpacedSpec> {
    for (;;) {
      const start = pick(rng, [...LETTERS]);
      const spec: SpacedSpec = {
        length: randInt(rng, LENGTH[0], LENGTH[1]),
        start,
        end: randLetter(rng, start),
        gap: randInt(rng, GAP[0], GAP[1]),
      };
      const reference = spacedWord(rng, spec);
      if (reference !== null) return { family: "spaced", instruction: instruction(spec), spec, reference };
    }
  },
  check,
  trace,
  corrupt,
  parse: parseInstruction,
  // A depth-first search over a fixed letter order; null (no word exists) becomes undefined.
  solve: (spec) => spacedWord(mulberry32(1), spec) ?? undefined,
};
