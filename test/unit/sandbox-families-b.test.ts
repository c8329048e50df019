import assert from "node:assert/strict";
import { test } from "node:test";
import { mulberry32 } from "../../src/engine/tensor.js";
import { type ConstraintsSpec, constraintsFamily } from "../../src/sandbox/families/constraints.js";
import { type SortSpec, sortFamily } from "../../src/sandbox/families/sort.js";
import { type SpacedSpec, spacedFamily } from "../../src/sandbox/families/spaced.js";
import { judgement, judgePrompt, SANDBOX_ALPHABET } from "../../src/sandbox/forms.js";
import { type Family, score } from "../../src/sandbox/task.js";

const INSTRUCTION_MAX = 40;
const ANSWER_MAX = 20;
const TRACE_MAX = 140;
/** A whole judge example (prompt, trace, bits, score) fits the 192-token context with room to spare. */
const EXAMPLE_MAX = 188;

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
  /**
   * Reads the five criteria off a trace alone (the instruction's spec at hand, no bits), checking on the
   * way that every written sign follows from the operands written next to it and that every copy is in
   * order. `null`: the trace stops (` ..`) before the criterion is decided.
   */
  read: (spec: S, trace: string) => (boolean | null)[];
}

/** `a=b+`-style step: the sign is whether the two operands are equal. */
function readEquality(step: string): boolean {
  const m = /^(.+)=(.+)([+-])$/.exec(step);
  assert.ok(m, `equality step "${step}"`);
  assert.equal(m[3] === "+", m[1] === m[2], `sign of "${step}"`);
  return m[3] === "+";
}

function readSpaced(spec: SpacedSpec, trace: string): (boolean | null)[] {
  if (trace === "empty") return [F, F, F, F, F];
  const [walkPart, repeatPart, summaryPart, ...extra] = trace.split(" | ");
  assert.equal(extra.length, 0, `three sections in "${trace}"`);
  const items = walkPart.split(" ");
  const capped = items[items.length - 1] === "..";
  const letters: string[] = [];
  let gapsOk = true;
  let prevPlace: number | null = null;
  for (const [i, item] of (capped ? items.slice(0, -1) : items).entries()) {
    const m = /^(\d+)([a-z#])(\d*)([+-]?)$/.exec(item);
    assert.ok(m && Number(m[1]) === i + 1, `walk step ${i + 1} "${item}" of "${trace}"`);
    const place = m[2] === "#" ? null : Number(m[3]);
    if (place !== null) {
      assert.equal(place, m[2].charCodeAt(0) - 96, `place of ${m[2]}`);
      letters.push(m[2]);
    }
    if (i > 0) {
      const ok: boolean = prevPlace !== null && place !== null && Math.abs(place - prevPlace) >= spec.gap;
      assert.equal(m[4] === "+", ok, `gap sign of "${item}" after place ${prevPlace} in "${trace}"`);
      gapsOk &&= ok;
    } else assert.equal(m[4], "", "no sign on the first step");
    prevPlace = place;
  }
  let repeat = false;
  if (repeatPart !== "none") {
    for (const [j, scan] of repeatPart.split(" ").entries()) {
      const m = /^([a-z]):([a-z]+)([+-])$/.exec(scan);
      assert.ok(m, `repeat scan "${scan}"`);
      assert.equal(m[1], letters[j + 1], `scan ${j} copies the walk's letters in order`);
      assert.equal(m[2], letters.slice(0, j + 1).join(""), `scan ${j} lists the letters before`);
      assert.equal(m[3] === "+", m[2].includes(m[1]), `sign of "${scan}"`);
      assert.ok(!repeat, "the scan stops at the first repeat");
      repeat ||= m[3] === "+";
    }
    if (!repeat) assert.equal(repeatPart.split(" ").length, letters.length - 1, "a scan per letter after the first");
  } else assert.ok(letters.length < 2, "none: under two letters");
  const summary = summaryPart.split(" ");
  assert.equal(summary.length, 3, `summary of "${trace}"`);
  assert.equal(summary[0][0], items[0][1], "first letter copied from the walk");
  if (!capped) assert.equal(summary[2].split("=")[0], String(items.length), "length is the walk's last index");
  else assert.equal(summary[2].split("=")[0], "..", "length of a capped walk");
  return [
    readEquality(summary[0]),
    readEquality(summary[1]),
    readEquality(summary[2]),
    repeat ? false : capped ? null : true,
    !gapsOk ? false : capped ? null : true,
  ];
}

function readConstraints(spec: ConstraintsSpec, trace: string): (boolean | null)[] {
  if (trace === "empty") return [F, F, F, F, F];
  const [walkPart, summaryPart, ...extra] = trace.split(" | ");
  assert.equal(extra.length, 0, `two sections in "${trace}"`);
  const items = walkPart.split(" ");
  const capped = items[items.length - 1] === "..";
  let has = false;
  let banned = false;
  for (const [i, item] of (capped ? items.slice(0, -1) : items).entries()) {
    const m = /^(\d+)([a-z#])([a-z])([+-])([a-z])([+-])$/.exec(item);
    assert.ok(m && Number(m[1]) === i + 1, `walk step ${i + 1} "${item}" of "${trace}"`);
    assert.ok(m[3] === spec.has && m[5] === spec.no, `operands of "${item}"`);
    assert.equal(m[4] === "+", m[2] === m[3], `required-letter sign of "${item}"`);
    assert.equal(m[6] === "+", m[2] === m[5], `banned-letter sign of "${item}"`);
    has ||= m[4] === "+";
    banned ||= m[6] === "+";
  }
  const summary = summaryPart.split(" ");
  assert.equal(summary.length, 3, `summary of "${trace}"`);
  assert.equal(summary[0][0], items[0][1], "first letter copied from the walk");
  assert.equal(summary[2].split("=")[0], capped ? ".." : String(items.length), "length read off the walk");
  return [
    readEquality(summary[0]),
    readEquality(summary[1]),
    has ? true : capped ? null : false,
    banned ? false : capped ? null : true,
    readEquality(summary[2]),
  ];
}

function readSort(spec: SortSpec, trace: string): (boolean | null)[] {
  if (trace === "empty") return [F, F, F, F, F];
  const list = spec.numbers.map(String);
  const cut = trace.endsWith(" ..") && trace.split("|").length < 3;
  const sections = (cut ? trace.slice(0, -3) : trace).split("|");
  const walkDone = sections.length >= 2; // not cut inside the walk
  const elements = (s: string) => [...s.matchAll(/([a-z]?)([0-9]+\.?)([+-])/g)].map((m) => ({ letter: m[1], n: m[2], hit: m[3] === "+" }));
  let hash = false;
  let capped = false;
  let stray = false;
  let orderBad = false;
  let left = list.slice();
  const crossed: string[] = [];
  const after: string[] = [];
  let prev = "";
  let k = 0;
  for (const token of sections[0].split(" ").filter((t) => t.length > 0)) {
    if (token === "#") {
      hash = true;
      continue;
    }
    if (token === "..") {
      capped = true;
      continue;
    }
    const m = /^([a-z])(?:([0-9]+\.?)<)?([0-9]+\.?)([+-]?)(?::(.*))?$/.exec(token);
    assert.ok(m && m[1] === String.fromCharCode(97 + k), `step ${k} "${token}" of "${trace}"`);
    const x = m[3];
    if (k > 0) {
      assert.equal(m[2], prev, `pair in "${token}" copies the number before`);
      if (!x.includes(".") && !prev.includes(".")) assert.equal(m[4] === "+", Number(prev) < Number(x), `order sign of "${token}"`);
      orderBad ||= m[4] === "-";
    } else assert.ok(m[2] === undefined && m[4] === "", "the first step has no pair");
    if (stray) {
      assert.equal(m[5], undefined, "no crossing off after a stray number");
      after.push(x);
    } else {
      assert.ok(m[5] !== undefined, `crossing off in "${token}"`);
      const [scanLeft, scanCrossed] = m[5].split("/");
      const es = elements(scanLeft);
      assert.deepEqual(
        es.map((e) => e.n),
        left,
        `"${token}" copies the numbers left in order`,
      );
      for (const [j, e] of es.entries()) {
        assert.equal(e.letter, k === 0 ? String.fromCharCode(97 + j) : "", "the first scan letters the list");
        assert.equal(e.hit, e.n === x, `sign of ${e.n} against ${x}`);
      }
      const hit = es.findIndex((e) => e.hit);
      if (hit >= 0) {
        left = left.filter((_, j) => j !== hit);
        crossed.push(x);
      } else if (scanCrossed !== undefined) {
        const cs = elements(scanCrossed);
        assert.ok(cs.length > 0, `rescan in "${token}"`);
        for (const [j, e] of cs.entries()) {
          assert.equal(e.n, crossed[j], "the rescan copies the numbers found before");
          assert.equal(e.hit, e.n === x, `sign of ${e.n} against ${x}`);
        }
        stray = !cs.some((e) => e.hit);
      } else {
        assert.equal(crossed.length, 0, `"${token}": no rescan only when nothing was found before`);
        stray = true;
      }
    }
    prev = x;
    k++;
  }
  const walkComplete = walkDone && !capped;
  let listed: boolean | null = null;
  if (sections.length >= 2) {
    if (sections[1] === "0") {
      assert.equal(left.length, 0, "0: none left");
      listed = true;
    } else {
      const looks = sections[1].split(" ");
      let allFound = true;
      for (const [j, look] of looks.entries()) {
        const m = /^([0-9]+):(.*)$/.exec(look);
        assert.ok(m && m[1] === left[j], `look-up ${j} "${look}" copies the numbers left`);
        if (m[2] === "-") {
          assert.equal(after.length, 0, "`-`: nothing after the stop");
          allFound = false;
          continue;
        }
        const es = elements(m[2]);
        for (const [i, e] of es.entries()) {
          assert.equal(e.n, after[i], "a look-up copies the numbers after the stop");
          assert.equal(e.hit, e.n === m[1], `sign of ${e.n} against ${m[1]}`);
        }
        if (!es.some((e) => e.hit)) allFound = false;
      }
      if (!allFound) listed = walkComplete ? false : null;
      else listed = looks.length === left.length ? true : null; // every one looked up found; a cut hides the rest
    }
  }
  return [
    hash ? false : walkComplete ? true : null,
    sections.length >= 3 ? readEquality(sections[2]) : null,
    stray ? false : walkComplete ? true : null,
    listed,
    orderBad ? false : walkComplete ? true : null,
  ];
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
    ["cfilo", "1c3 2f6+ 3i9+ 4l12+ 5o15+ | f:c- i:cf- l:cfi- o:cfil- | c=c+ o=o+ 5=5+"],
    ["cfimo", "1c3 2f6+ 3i9+ 4m13+ 5o15- | f:c- i:cf- m:cfi- o:cfim- | c=c+ o=o+ 5=5+"],
    ["cfico", "1c3 2f6+ 3i9+ 4c3+ 5o15+ | f:c- i:cf- c:cfi+ | c=c+ o=o+ 5=5+"],
    ["d1", "1d4 2#- | none | d=c- #=o- 2=5-"],
    ["c", "1c3 | none | c=c+ c=o- 1=5-"],
    ["cf1lo", "1c3 2f6+ 3#- 4l12- 5o15+ | f:c- l:cf- o:cfl- | c=c+ o=o+ 5=5+"],
    ["cfilorulfi", "1c3 2f6+ 3i9+ 4l12+ 5o15+ 6r18+ 7u21+ .. | f:c- i:cf- l:cfi- o:cfil- r:cfilo- u:cfilor- | c=c+ i=o- ..=5-"],
    ["", "empty"],
  ],
  variety: 900,
  read: readSpaced,
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
    ["bearch", "1be-t- 2ee+t- 3ae-t- 4re-t- 5ce-t- 6he-t- | b=b+ h=h+ 6=6+"],
    ["beatch", "1be-t- 2ee+t- 3ae-t- 4te-t+ 5ce-t- 6he-t- | b=b+ h=h+ 6=6+"],
    ["b3ach", "1be-t- 2#e-t- 3ae-t- 4ce-t- 5he-t- | b=b+ h=h+ 5=6-"],
    ["bearchbearch", "1be-t- 2ee+t- 3ae-t- 4re-t- 5ce-t- 6he-t- 7be-t- 8ee+t- 9ae-t- 10re-t- .. | b=b+ h=h+ ..=6-"],
    ["", "empty"],
  ],
  variety: 900,
  read: readConstraints,
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
    ["1 3 7 12", "a1:a7-b3-c12-d1+ b1<3+:7-3+12- c3<7+:7+12- d7<12+:12+|0|d=d+"],
    ["1 7 3 12", "a1:a7-b3-c12-d1+ b1<7+:7+3-12- c7<3-:3+12- d3<12+:12+|0|d=d+"],
    ["1 3 3 12", "a1:a7-b3-c12-d1+ b1<3+:7-3+12- c3<3-:7-12-/1-3+ d3<12+:7-12+|7:-|d=d+"],
    ["1, 3 3 12.", "a1:a7-b3-c12-d1+ # b1<3+:7-3+12- c3<3-:7-12-/1-3+ d3<12+:7-12+ #|7:-|d=d+"],
    ["1 3 07 12", "a1:a7-b3-c12-d1+ b1<3+:7-3+12- c3<07+:7-12-/1-3- d07<12+|7:12-|d=d+"],
    ["5 1 3 7 12", "a5:a7-b3-c12-d1- b5<1- c1<3+ d3<7+ e7<12+|7:1-3-7+ 3:1-3+ 12:1-3-7-12+ 1:1+|e=d-"],
    ["1 3 7 12 15", "a1:a7-b3-c12-d1+ b1<3+:7-3+12- c3<7+:7+12- d7<12+:12+ e12<15+:/1-3-7-12-|0|e=d-"],
    ["1 3 12", "a1:a7-b3-c12-d1+ b1<3+:7-3+12- c3<12+:7-12+|7:-|c=d-"],
    ["abc", "#|7:-|0=d-"],
    ["1 2 3 4 5 6 7 8 9", "a1:a7-b3-c12-d1+ b1<2+:7-3-12-/1- c2<3+ d3<4+ e4<5+ ..|7:3-4-5-|..=d-"],
    ["", "empty"],
  ],
  variety: 900,
  read: readSort,
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

  test(`${f.name}: the criteria can be read off the trace alone, every step local`, () => {
    const rng = mulberry32(31);
    let read = 0;
    let undecided = 0;
    const answers: [unknown, string, string][] = fc.traces.map(([a]) => [fc.spec, a, "hand-written"]);
    for (const c of fc.cases) answers.push([fc.spec, c.answer, c.why]);
    for (let i = 0; i < 500; i++) {
      const t = f.generate(rng);
      answers.push([t.spec, t.reference, "reference"]);
      answers.push([t.spec, f.corrupt(t.spec, t.reference, rng, rng()), "corruption"]);
      answers.push([t.spec, f.corrupt(t.spec, t.reference, rng, rng()), "corruption"]);
      answers.push([t.spec, garbage(rng), "garbage"]);
    }
    for (const [spec, answer, what] of answers) {
      const trace = f.trace(spec, answer);
      const got = fc.read(spec, trace);
      const gold = f.check(spec, answer);
      for (let c = 0; c < 5; c++) {
        if (got[c] === null) {
          if (what !== "garbage") undecided++;
          assert.ok(
            / \.\.( |\||$)/.test(trace),
            `${f.name} ${what} "${answer}": criterion ${c + 1} undecided in "${trace}", which does not stop`,
          );
          assert.notEqual(what, "reference", `${f.name}: a reference's trace decides every criterion ("${trace}")`);
        } else assert.equal(got[c], gold[c], `${f.name} ${what} "${answer}": criterion ${c + 1} read off "${trace}"`);
      }
      read++;
    }
    assert.ok(read > 1000, `${read} traces read`);
    assert.ok(undecided < 0.05 * 5 * read, `${undecided} criteria of references and corruptions undecided over ${read} traces`);
  });

  test(`${f.name}: whole judge examples fit ${EXAMPLE_MAX} characters (2000 tasks × reference and 3 corruptions)`, () => {
    const rng = mulberry32(41);
    let max = 0;
    for (let i = 0; i < 2000; i++) {
      const t = f.generate(rng);
      for (const answer of [t.reference, ...[0, 1, 2].map(() => f.corrupt(t.spec, t.reference, rng, rng()))]) {
        const example = judgePrompt(t.instruction, answer) + judgement(f, t.spec, answer).text;
        assert.ok(onlyAlphabet(example), `${f.name}: "${example}" leaves the alphabet`);
        assert.ok(example.length <= EXAMPLE_MAX, `${f.name}: ${example.length} characters: ${JSON.stringify(example)}`);
        max = Math.max(max, example.length);
      }
    }
    assert.ok(max > 0);
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
        onlyAlphabet(tr) && !tr.includes("\n") && tr.length <= TRACE_MAX,
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
