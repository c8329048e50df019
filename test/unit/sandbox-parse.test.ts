import assert from "node:assert/strict";
import { test } from "node:test";
import { mulberry32 } from "../../src/engine/tensor.js";
import { constraintsFamily } from "../../src/sandbox/families/constraints.js";
import { increasingFamily } from "../../src/sandbox/families/increasing.js";
import { allFamilies } from "../../src/sandbox/families/index.js";
import { pathFamily } from "../../src/sandbox/families/path.js";
import { sortFamily } from "../../src/sandbox/families/sort.js";
import { spacedFamily } from "../../src/sandbox/families/spaced.js";
import { sumFamily } from "../../src/sandbox/families/sum.js";
import { SANDBOX_ALPHABET } from "../../src/sandbox/forms.js";
import { parseTask } from "../../src/sandbox/parse.js";
import type { Family, Rng, Task } from "../../src/sandbox/task.js";

const SEVERITIES = [0, 0.2, 0.5, 0.8, 1];

function tasks<S>(f: Family<S>, n: number, seed: number): Task<S>[] {
  const rng = mulberry32(seed);
  return Array.from({ length: n }, () => f.generate(rng));
}

/** A string of the sandbox alphabet, sometimes long. */
function randomText(rng: Rng): string {
  const n = Math.floor(rng() * (rng() < 0.1 ? 80 : 24));
  return Array.from({ length: n }, () => SANDBOX_ALPHABET[Math.floor(rng() * SANDBOX_ALPHABET.length)]).join("");
}

/** `text` with 1–3 characters of the alphabet changed, inserted or deleted: near misses of real instructions. */
function mutate(rng: Rng, text: string): string {
  let w = text;
  const edits = 1 + Math.floor(rng() * 3);
  for (let k = 0; k < edits; k++) {
    const i = Math.floor(rng() * (w.length + 1));
    const c = SANDBOX_ALPHABET[Math.floor(rng() * SANDBOX_ALPHABET.length)];
    const op = Math.floor(rng() * 3);
    w = op === 0 ? w.slice(0, i) + c + w.slice(i + 1) : op === 1 ? w.slice(0, i) + c + w.slice(i) : w.slice(0, i) + w.slice(i + 1);
  }
  return w;
}

test("sandbox parse: the spec read back from a generated instruction scores and traces every answer alike", () => {
  const rng = mulberry32(99);
  for (const f of allFamilies) {
    for (const [i, t] of tasks(f, 150, 21).entries()) {
      const what = `${f.name} task ${i} ${JSON.stringify(t.instruction)}`;
      const spec = f.parse(t.instruction);
      assert.ok(spec !== undefined, `${what}: parse rejects a generated instruction`);
      assert.deepEqual(spec, t.spec, `${what}: parse gives another spec`);
      const answers = [t.reference, "", ...SEVERITIES.map((s) => f.corrupt(t.spec, t.reference, rng, s)), randomText(rng), randomText(rng)];
      for (const a of answers) {
        assert.deepEqual(f.check(spec, a), f.check(t.spec, a), `${what}: check of ${JSON.stringify(a)}`);
        assert.equal(f.trace(spec, a), f.trace(t.spec, a), `${what}: trace of ${JSON.stringify(a)}`);
      }
    }
  }
});

test("sandbox parse: every family rejects the other families' instructions", () => {
  for (const f of allFamilies) {
    for (const t of tasks(f, 200, 5)) {
      for (const g of allFamilies) {
        if (g === f) continue;
        assert.equal(g.parse(t.instruction), undefined, `${g.name} accepts the ${f.name} instruction ${JSON.stringify(t.instruction)}`);
      }
    }
  }
});

const MALFORMED: { family: Family; valid: string; cases: [instruction: string, why: string][] }[] = [
  {
    family: pathFamily,
    valid: "path a-e: ab bd ce cf de",
    cases: [
      ["path a-e: ab bd ce cf de ", "trailing space"],
      ["path a-e:  ab bd ce cf de", "two spaces"],
      ["path a-e ab bd ce cf de", "no colon"],
      ["path a-e: ab bd ce cf ed", "an edge's letters not in alphabetical order"],
      ["path a-e: ab bd cf ce de", "edge list not sorted"],
      ["path a-e: ab ab bd ce cf de", "an edge twice"],
      ["path a-e: ab bd ce de", "4 edges"],
      ["path a-e: ab ac bc bd cd ce cf de df", "9 edges"],
      ["path a-e: ab bd ce cf de dg gh", "8 nodes"],
      ["path a-e: ab ae bd ce cf de", "source and target are neighbours"],
      ["path a-e: ab bd cf de fg", "not connected"],
      ["path a-f: ab bc cd de ef", "source and target 5 hops apart"],
      ["path a-a: ab bd ce cf de", "source is the target"],
      ["path a-g: ab bd ce cf de", "target not in the graph"],
      ["path a-i: ab bd ce cf de", "a letter past h"],
      ["path a-e: ab bd ce cf dei", "an edge of three letters"],
    ],
  },
  {
    family: sumFamily,
    valid: "sum 13: 4 9 2 7 5",
    cases: [
      ["sum 13: 4 9 2 7 6", "two pairs add up to the target"],
      ["sum 30: 4 9 2 7 5", "no pair adds up to the target"],
      ["sum 13: 4 9 2", "3 numbers"],
      ["sum 13: 4 9 2 7 5 1 3", "7 numbers"],
      ["sum 13: 4 9 2 7 7", "a number twice"],
      ["sum 21: 2 19 20 5 4", "20 is past 19"],
      ["sum 13: 4 9 2 7 05", "a leading zero"],
      ["sum 013: 4 9 2 7 5", "a leading zero in the target"],
      ["sum 13:  4 9 2 7 5", "two spaces"],
      ["sum 13: 4 9 2 7 5 ", "trailing space"],
      ["sum 13: 4, 9, 2, 7, 5", "commas"],
      ["sum13: 4 9 2 7 5", "no space after sum"],
    ],
  },
  {
    family: increasingFamily,
    valid: "up3: 5 2 8 1 9 4",
    cases: [
      ["up5: 5 2 8 1 9 4", "k = 5"],
      ["up2: 5 2 8 1 9 4", "k = 2"],
      ["up4: 5 2 8 1 9 4", "no increasing subsequence of 4 (no answer)"],
      ["up3: 5 1 2 3 4 6", "an increasing subsequence of 5, longer than k + 1"],
      ["up3: 1 2 3 9 8 7", "copying the first 3 answers it"],
      ["up3: 8 1 2 9 3 4", "sorting the 3 smallest answers it"],
      ["up3: 5 2 8 1", "4 numbers"],
      ["up3: 5 2 8 1 9 4 3 7", "8 numbers"],
      ["up3: 5 2 8 2 9 4", "a number twice"],
      ["up3: 5 2 8 1 9 04", "a leading zero"],
      ["up3: 5 2 8 1 20 4", "20 is past 19"],
      ["up 3: 5 2 8 1 9 4", "a space after up"],
    ],
  },
  {
    family: spacedFamily,
    valid: "spaced 5 from c to o gap 3",
    cases: [
      ["spaced 7 from c to o gap 3", "length 7"],
      ["spaced 3 from c to o gap 3", "length 3"],
      ["spaced 5 from c to o gap 5", "gap 5"],
      ["spaced 5 from c to o gap 1", "gap 1"],
      ["spaced 5 from c to c gap 3", "the same first and last letter"],
      ["spaced 5 from C to o gap 3", "an upper-case letter"],
      ["spaced 05 from c to o gap 3", "a leading zero"],
      ["spaced  5 from c to o gap 3", "two spaces"],
      ["spaced 5 from co to o gap 3", "two letters"],
      ["spaced 5 from c to o", "no gap"],
    ],
  },
  {
    family: constraintsFamily,
    valid: "w6 b.. ..h has e no t",
    cases: [
      ["w8 b.. ..h has e no t", "length 8"],
      ["w3 b.. ..h has e no t", "length 3"],
      ["w6 b.. ..h has e no b", "the banned letter is the first"],
      ["w6 b.. ..t has e no t", "the banned letter is the last"],
      ["w6 b.. ..h has e no e", "the required letter is banned (no answer)"],
      ["w6 b.. ..h has b no t", "the required letter is the first"],
      ["w6 b.. ..h has h no t", "the required letter is the last"],
      ["w6 b..  ..h has e no t", "two spaces"],
      ["w6 b. ..h has e no t", "one dot"],
      ["w06 b.. ..h has e no t", "a leading zero"],
      ["w6 b.. ..h has e", "no banned letter"],
    ],
  },
  {
    family: sortFamily,
    valid: "sort: 7 3 12 1",
    cases: [
      ["sort: 7 3 12", "3 numbers"],
      ["sort: 7 3 12 1 5 6 8", "7 numbers"],
      ["sort: 7 3 12 3", "a number twice"],
      ["sort: 7 3 20 1", "20 is past 19"],
      ["sort: 7 3 0 1", "a zero"],
      ["sort: 7 3 012 1", "a leading zero"],
      ["sort: 7, 3, 12, 1", "commas"],
      ["sort 7 3 12 1", "no colon"],
      ["sort: 7 3 12 1 ", "trailing space"],
      ["sort:  7 3 12 1", "two spaces"],
      ["sort: -7 3 12 1", "a minus sign"],
    ],
  },
];

test("sandbox parse: hand-written instructions: the valid one is read, malformed ones are rejected", () => {
  for (const { family, valid, cases } of MALFORMED) {
    assert.ok(family.parse(valid) !== undefined, `${family.name}: rejects the valid ${JSON.stringify(valid)}`);
    assert.ok(cases.length >= 4, `${family.name}: at least 4 malformed cases`);
    for (const [instruction, why] of cases) {
      assert.equal(family.parse(instruction), undefined, `${family.name} accepts ${JSON.stringify(instruction)} (${why})`);
    }
  }
});

test("sandbox parse: the hand-written valid instructions give the expected specs", () => {
  assert.deepEqual(pathFamily.parse("path a-e: ab bd ce cf de"), { source: "a", target: "e", edges: ["ab", "bd", "ce", "cf", "de"] });
  assert.deepEqual(sumFamily.parse("sum 13: 4 9 2 7 5"), { target: 13, list: [4, 9, 2, 7, 5] });
  assert.deepEqual(increasingFamily.parse("up3: 5 2 8 1 9 4"), { k: 3, list: [5, 2, 8, 1, 9, 4] });
  assert.deepEqual(spacedFamily.parse("spaced 5 from c to o gap 3"), { length: 5, start: "c", end: "o", gap: 3 });
  assert.deepEqual(constraintsFamily.parse("w6 b.. ..h has e no t"), { length: 6, first: "b", last: "h", has: "e", no: "t" });
  assert.deepEqual(sortFamily.parse("sort: 7 3 12 1"), { numbers: [7, 3, 12, 1] });
});

test("sandbox parse: never throws, on random text, near misses of real instructions and odd strings", () => {
  const rng = mulberry32(7);
  const odd = [
    "",
    " ",
    "\n",
    "sort: 7 3 12 1\n",
    "sort: ７ 3 12 1",
    "sort: 7 3 12 1🙂",
    "path a-e: ab bd ce cf de\u0000",
    `sort: ${"1 ".repeat(50_000)}1`,
    `path a-e: ${"ab ".repeat(50_000)}ab`,
    `sum ${"9".repeat(400)}: 4 9 2 7 5`,
    `spaced ${"9".repeat(400)} from c to o gap 3`,
    `w${"9".repeat(400)} b.. ..h has e no t`,
    `up${"9".repeat(400)}: 5 2 8 1 9 4`,
    "new:sort: 7 3 12 1",
  ];
  const texts = [...odd, ...Array.from({ length: 1500 }, () => randomText(rng))];
  for (const f of allFamilies) for (const t of tasks(f, 100, 13)) texts.push(mutate(rng, t.instruction));
  let accepted = 0;
  for (const text of texts) {
    const owners = allFamilies.filter((f) => {
      const spec = f.parse(text);
      if (spec === undefined) return false;
      // What parse accepts is a working spec: the scorer and the judge's trace run on it.
      assert.equal(f.check(spec, "abc 1 2").length, 5, `${f.name} ${JSON.stringify(text)}: check on the parsed spec`);
      assert.equal(typeof f.trace(spec, "abc 1 2"), "string", `${f.name} ${JSON.stringify(text)}: trace on the parsed spec`);
      return true;
    });
    assert.ok(owners.length <= 1, `${JSON.stringify(text)} accepted by ${owners.map((f) => f.name).join(" and ")}`);
    for (const f of owners) assert.deepEqual(f.parse(text), f.parse(text), `${f.name} ${JSON.stringify(text)}: parse is stable`);
    accepted += owners.length;
  }
  for (const text of odd) assert.equal(parseTask(allFamilies, text), undefined, `odd string ${JSON.stringify(text.slice(0, 40))}`);
  // Some near misses are still valid instructions (a number changed to another in range).
  assert.ok(accepted > 0, "no mutated instruction was accepted: the fuzz does not reach valid text");
});

test("sandbox parse: parseTask returns the first family that reads the instruction", () => {
  for (const f of allFamilies) {
    for (const t of tasks(f, 30, 17)) {
      const got = parseTask(allFamilies, t.instruction);
      assert.deepEqual(got, { family: f.name, instruction: t.instruction, spec: t.spec }, `parseTask ${JSON.stringify(t.instruction)}`);
      const others = allFamilies.filter((g) => g !== f);
      assert.equal(parseTask(others, t.instruction), undefined, `parseTask without ${f.name}: ${JSON.stringify(t.instruction)}`);
    }
  }
  assert.equal(parseTask([], "sort: 7 3 12 1"), undefined, "no families");
  assert.equal(parseTask(allFamilies, "sort: 7 3 12"), undefined, "a malformed instruction");
  assert.equal(parseTask(allFamilies, "new:sort: 7 3 12 1"), undefined, "the self-instruct prompt's prefix left on");
  assert.deepEqual(parseTask([sortFamily, pathFamily], "sort: 7 3 12 1"), {
    family: "sort",
    instruction: "sort: 7 3 12 1",
    spec: { numbers: [7, 3, 12, 1] },
  });
  // First in the given order: a family that accepts everything placed first wins.
  const greedy: Family = { ...sortFamily, name: "greedy", parse: (s: string) => ({ text: s }) };
  assert.equal(parseTask([greedy, sortFamily], "sort: 7 3 12 1")?.family, "greedy", "order: the first accepting family");
  assert.equal(parseTask([sortFamily, greedy], "sort: 7 3 12 1")?.family, "sort", "order: the first accepting family");
});
