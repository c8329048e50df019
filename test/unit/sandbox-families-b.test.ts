import assert from "node:assert/strict";
import { test } from "node:test";
import { mulberry32 } from "../../src/engine/tensor.js";
import { type ConstraintsSpec, constraintsFamily } from "../../src/sandbox/families/constraints.js";
import { type SortSpec, sortFamily } from "../../src/sandbox/families/sort.js";
import { type SpacedSpec, spacedFamily } from "../../src/sandbox/families/spaced.js";
import { SANDBOX_ALPHABET } from "../../src/sandbox/forms.js";
import { type Family, score } from "../../src/sandbox/task.js";

const INSTRUCTION_MAX = 40;
const ANSWER_MAX = 20;
const TRACE_MAX = 90;

const T = true;
const F = false;

interface Case {
  answer: string;
  expect: boolean[];
  why: string;
}

interface FamilyCases<S> {
  family: Family<S>;
  spec: S;
  cases: Case[];
  /** Exact traces for some answers. */
  traces: [string, string][];
  /** The least number of distinct instructions over 1000 draws. */
  variety: number;
}

const spacedSpec: SpacedSpec = { length: 5, start: "c", end: "o", gap: 3 };
const constraintsSpec: ConstraintsSpec = { length: 6, first: "b", last: "h", has: "e", no: "t" };
const sortSpec: SortSpec = { numbers: [7, 3, 12, 1] };

const spaced: FamilyCases<SpacedSpec> = {
  family: spacedFamily,
  spec: spacedSpec,
  cases: [
    { answer: "cfilo", expect: [T, T, T, T, T], why: "correct" },
    { answer: "bfilo", expect: [F, T, T, T, T], why: "wrong first letter" },
    { answer: "cfilr", expect: [T, F, T, T, T], why: "wrong last letter" },
    { answer: "cfo", expect: [T, T, F, T, T], why: "too short" },
    { answer: "cfilwo", expect: [T, T, F, T, T], why: "too long" },
    { answer: "cfico", expect: [T, T, T, F, T], why: "c twice" },
    { answer: "cfimo", expect: [T, T, T, T, F], why: "m and o are 2 apart" },
    { answer: "cf1lo", expect: [T, T, T, T, F], why: "a digit: a pair with a non-letter fails" },
    { answer: "", expect: [F, F, F, F, F], why: "empty" },
    { answer: "??", expect: [F, F, F, T, F], why: "garbage" },
    { answer: "Ω\nC", expect: [F, F, F, T, F], why: "characters outside the alphabet" },
    { answer: "spaced 5 from c to o", expect: [F, T, F, F, F], why: "the instruction copied (ends with o)" },
    { answer: "cfilocfilocfilocfilocfilo", expect: [T, T, F, F, T], why: "overly long, repeating" },
  ],
  traces: [
    ["cfimo", "1c 2f 3i 4m 5o | cf3+ fi3+ im4+ mo2- | c=c+ o=o+ 5=5+"],
    ["cfico", "1c 2f 3i 4c! 5o | cf3+ fi3+ ic6+ co12+ | c=c+ o=o+ 5=5+"],
    ["d1", "1d 2# | d#- | d=c- #=o- 2=5-"],
    ["c", "1c | none | c=c+ c=o- 1=5-"],
    ["cfilorulfi", "1c 2f 3i 4l 5o 6r 7u .. | cf3+ fi3+ il3+ lo3+ or3+ ru3+ | c=c+ i=o- 10=5-"],
    ["", "empty"],
  ],
  variety: 900,
};

const constraints: FamilyCases<ConstraintsSpec> = {
  family: constraintsFamily,
  spec: constraintsSpec,
  cases: [
    { answer: "bearch", expect: [T, T, T, T, T], why: "correct" },
    { answer: "cearch", expect: [F, T, T, T, T], why: "wrong first letter" },
    { answer: "bearcx", expect: [T, F, T, T, T], why: "wrong last letter" },
    { answer: "barnch", expect: [T, T, F, T, T], why: "no e" },
    { answer: "beatch", expect: [T, T, T, F, T], why: "contains t" },
    { answer: "beach", expect: [T, T, T, T, F], why: "too short" },
    { answer: "", expect: [F, F, F, F, F], why: "empty" },
    { answer: "%%", expect: [F, F, F, T, F], why: "garbage" },
    { answer: "w6 b.. ..h has e no t", expect: [F, F, T, F, F], why: "the instruction copied" },
    { answer: "bearchbearchbearchbearchh", expect: [T, T, T, T, F], why: "overly long" },
  ],
  traces: [
    ["bearch", "1b 2e 3a 4r 5c 6h | b=b+ h=h+ e@2+ t@0+ 6=6+"],
    ["beatch", "1b 2e 3a 4t 5c 6h | b=b+ h=h+ e@2+ t@4- 6=6+"],
    ["b3ach", "1b 2# 3a 4c 5h | b=b+ h=h+ e@0- t@0+ 5=6-"],
    ["bearchbearch", "1b 2e 3a 4r 5c 6h 7b 8e 9a 10r .. | b=b+ h=h+ e@2+ t@0+ 12=6-"],
    ["", "empty"],
  ],
  variety: 900,
};

const sort: FamilyCases<SortSpec> = {
  family: sortFamily,
  spec: sortSpec,
  cases: [
    { answer: "1 3 7 12", expect: [T, T, T, T, T], why: "correct" },
    { answer: "1, 3, 7, 12", expect: [F, T, T, T, T], why: "commas" },
    { answer: "1 3 7 12 ", expect: [F, T, T, T, T], why: "trailing space" },
    { answer: "1 3  7 12", expect: [F, T, T, T, T], why: "two spaces" },
    { answer: "1 3 3 7 12", expect: [T, F, T, T, F], why: "3 twice (a count alone cannot fail)" },
    { answer: "1 3 7 12 15", expect: [T, F, F, T, T], why: "a number not in the list added" },
    { answer: "1 3 07 12", expect: [T, T, F, F, T], why: "07 is not 7" },
    { answer: "1 3 12", expect: [T, F, T, F, T], why: "7 left out" },
    { answer: "1 7 3 12", expect: [T, T, T, T, F], why: "7 before 3" },
    { answer: "", expect: [F, F, F, F, F], why: "empty" },
    { answer: "abc", expect: [F, F, T, F, T], why: "no numbers at all" },
    { answer: "sort: 7 3 12 1", expect: [F, T, T, T, F], why: "the instruction copied" },
    { answer: "1 3 7 12 1 3 7 12 1 3 7 12", expect: [T, F, T, T, F], why: "overly long" },
  ],
  traces: [
    ["1 3 7 12", "a1+ b3+< c7+< d12+< | a7+ b3+ c12+ d1+ | d=d+"],
    ["1 7 3 12", "a1+ b7+< c3+> d12+< | a7+ b3+ c12+ d1+ | d=d+"],
    ["1, 3 3 12.", "a1+ # b3+< c3+= d12+< # | a7- b3+ c12+ d1+ | d=d+"],
    ["abc", "# | a7- b3- c12- d1- | 0=d-"],
    ["1 2 3 4 5 6 7 8 9", "a1+ b2-< c3+< d4-< e5-< f6-< g7+< .. | a7+ b3+ c12- d1+ | i=d-"],
    ["", "empty"],
  ],
  variety: 900,
};

// biome-ignore lint/suspicious/noExplicitAny: a heterogeneous list of families
const ALL: FamilyCases<any>[] = [spaced, constraints, sort];

function onlyAlphabet(s: string): boolean {
  return [...s].every((c) => SANDBOX_ALPHABET.includes(c));
}

/** Random garbage, inside and outside the alphabet. */
function garbage(rng: () => number): string {
  const pool = `${SANDBOX_ALPHABET}ABCXYZΩé\t\r🙂`;
  const pieces = [...pool];
  const n = Math.floor(rng() * 41);
  let s = "";
  for (let i = 0; i < n; i++) s += pieces[Math.floor(rng() * pieces.length)];
  return s;
}

for (const fc of ALL) {
  const f = fc.family;

  test(`${f.name}: the reference meets all five criteria on 500 generated tasks`, () => {
    const rng = mulberry32(11);
    for (let i = 0; i < 500; i++) {
      const t = f.generate(rng);
      assert.equal(t.family, f.name, `task ${i} names its family`);
      const s = score(f, t.spec, t.reference);
      assert.equal(s.score, 5, `task ${i} "${t.instruction}": reference "${t.reference}" scores ${s.score} (${s.criteria})`);
    }
  });

  test(`${f.name}: hand-written answers give the expected criterion vectors`, () => {
    assert.equal(f.criteria.length, 5, "five criteria");
    for (const c of fc.cases) {
      assert.deepEqual(f.check(fc.spec, c.answer), c.expect, `${f.name} "${c.answer}" (${c.why})`);
    }
  });

  test(`${f.name}: exact traces for hand-written answers`, () => {
    for (const [answer, expected] of fc.traces) {
      assert.equal(f.trace(fc.spec, answer), expected, `${f.name} trace of "${answer}"`);
    }
  });

  test(`${f.name}: the trace differs when a criterion's outcome differs`, () => {
    const all = [...fc.cases, ...fc.traces.map(([answer]) => ({ answer, expect: f.check(fc.spec, answer), why: "trace case" }))];
    for (const a of all) {
      for (const b of all) {
        if (a.expect.join() === b.expect.join()) continue;
        assert.notEqual(
          f.trace(fc.spec, a.answer),
          f.trace(fc.spec, b.answer),
          `${f.name}: "${a.answer}" vs "${b.answer}" have the same trace`,
        );
      }
    }
    // And along a single criterion, on generated tasks: the reference against each corruption that scores lower.
    const rng = mulberry32(5);
    for (let i = 0; i < 200; i++) {
      const t = f.generate(rng);
      const w = f.corrupt(t.spec, t.reference, rng, rng());
      if (score(f, t.spec, w).score < 5) {
        assert.notEqual(f.trace(t.spec, w), f.trace(t.spec, t.reference), `${f.name} "${t.instruction}": "${w}" traced like the reference`);
      }
    }
  });

  test(`${f.name}: generation is deterministic and varied`, () => {
    const draw = (seed: number, n: number) => {
      const rng = mulberry32(seed);
      return Array.from({ length: n }, () => f.generate(rng));
    };
    assert.deepEqual(draw(3, 50), draw(3, 50), "same seed, same tasks");
    assert.notDeepEqual(
      draw(3, 50).map((t) => t.instruction),
      draw(4, 50).map((t) => t.instruction),
      "different seed, different tasks",
    );
    const distinct = new Set(draw(7, 1000).map((t) => t.instruction)).size;
    assert.ok(distinct >= fc.variety, `${distinct} distinct instructions over 1000 draws (want ≥ ${fc.variety})`);
  });

  test(`${f.name}: texts use only the sandbox alphabet and stay short`, () => {
    const rng = mulberry32(21);
    for (let i = 0; i < 1000; i++) {
      const t = f.generate(rng);
      const corrupted = f.corrupt(t.spec, t.reference, rng, rng());
      const junk = garbage(rng);
      for (const [what, s, max] of [
        ["instruction", t.instruction, INSTRUCTION_MAX],
        ["reference", t.reference, ANSWER_MAX],
        ["corruption", corrupted, ANSWER_MAX],
        ["reference trace", f.trace(t.spec, t.reference), TRACE_MAX],
        ["corruption trace", f.trace(t.spec, corrupted), TRACE_MAX],
        ["garbage trace", f.trace(t.spec, junk), TRACE_MAX],
      ] as const) {
        assert.ok(onlyAlphabet(s) && !s.includes("\n"), `${f.name} ${what} "${s}" leaves the alphabet or breaks the line`);
        assert.ok(s.length <= max, `${f.name} ${what} "${s}" is ${s.length} characters (max ${max})`);
      }
      assert.equal(f.check(t.spec, junk).length, 5, `${f.name} check of garbage "${junk}" gives five criteria`);
    }
  });

  test(`${f.name}: check and trace take any string`, () => {
    const rng = mulberry32(9);
    const t = f.generate(rng);
    const huge = "9z ".repeat(20000);
    for (const s of ["", " ", "\n", "\u0000", "🙂", "\ud800", huge, "0".repeat(500), "1 ".repeat(500)]) {
      const c = f.check(t.spec, s);
      assert.ok(c.length === 5 && c.every((x) => typeof x === "boolean"), `${f.name} check of ${JSON.stringify(s.slice(0, 20))}`);
      const tr = f.trace(t.spec, s);
      assert.ok(
        onlyAlphabet(tr) && !tr.includes("\n") && tr.length <= 100,
        `${f.name} trace of ${JSON.stringify(s.slice(0, 20))}: "${tr}"`,
      );
    }
  });

  test(`${f.name}: corruptions cover every gold score 0–5`, () => {
    const rng = mulberry32(13);
    const hist = [0, 0, 0, 0, 0, 0];
    const n = 2000;
    for (let i = 0; i < n; i++) {
      const t = f.generate(rng);
      const w = f.corrupt(t.spec, t.reference, rng, rng());
      hist[score(f, t.spec, w).score]++;
    }
    for (let k = 0; k <= 5; k++) {
      assert.ok(hist[k] >= 0.04 * n, `${f.name} corruption scores 0–5: ${hist.join("/")} (score ${k} under 4%)`);
    }
  });

  test(`${f.name}: corruption is deterministic and mostly wrong at high severity`, () => {
    const t = f.generate(mulberry32(17));
    const a = Array.from({ length: 20 }, (_, i) => f.corrupt(t.spec, t.reference, mulberry32(i), 0.9));
    const b = Array.from({ length: 20 }, (_, i) => f.corrupt(t.spec, t.reference, mulberry32(i), 0.9));
    assert.deepEqual(a, b, `${f.name}: same rng, same corruptions`);
    const mean = a.reduce((s, w) => s + score(f, t.spec, w).score, 0) / a.length;
    assert.ok(mean < 2.5, `${f.name}: mean score ${mean} at severity 0.9 (${a.join(" / ")})`);
  });
}
