import assert from "node:assert/strict";
import { test } from "node:test";
import { mulberry32 } from "../../src/engine/tensor.js";
import { type IncreasingSpec, increasingFamily } from "../../src/sandbox/families/increasing.js";
import { type PathSpec, pathFamily } from "../../src/sandbox/families/path.js";
import { type SumSpec, sumFamily } from "../../src/sandbox/families/sum.js";
import { SANDBOX_ALPHABET } from "../../src/sandbox/forms.js";
import type { Family, Rng, Task } from "../../src/sandbox/task.js";
import { score } from "../../src/sandbox/task.js";

const FAMILIES: Family[] = [pathFamily, sumFamily, increasingFamily];
const MAX_INSTRUCTION = 40;
const MAX_ANSWER = 20;
const MAX_TRACE = 90;

const bits = (s: string): boolean[] => [...s].map((c) => c === "1");
const show = (v: readonly boolean[]): string => v.map((b) => (b ? "1" : "0")).join("");

function inAlphabet(s: string): boolean {
  return [...s].every((c) => SANDBOX_ALPHABET.includes(c));
}

/** A line of the trace or an answer: sandbox alphabet, no newline, no double space. */
function assertLine(s: string, max: number, what: string): void {
  assert.ok(inAlphabet(s), `${what} ${JSON.stringify(s)} uses a character outside SANDBOX_ALPHABET`);
  assert.ok(!s.includes("\n"), `${what} ${JSON.stringify(s)} contains a newline`);
  assert.ok(s.length <= max, `${what} ${JSON.stringify(s)} is ${s.length} characters, more than ${max}`);
}

function tasks<S>(f: Family<S>, n: number, seed: number): Task<S>[] {
  const rng = mulberry32(seed);
  return Array.from({ length: n }, () => f.generate(rng));
}

/** Strings a model might write, or worse. */
function fuzz(rng: Rng): string {
  const pool = `${SANDBOX_ALPHABET}ABCé🙂\t`;
  const n = Math.floor(rng() * (rng() < 0.1 ? 60 : 12));
  return Array.from({ length: n }, () => pool[Math.floor(rng() * pool.length)]).join("");
}

// ---- hand-written cases ------------------------------------------------------------------------

const PATH: PathSpec = { source: "a", target: "e", edges: ["ab", "bd", "ce", "cf", "de"] };
const SUM: SumSpec = { target: 13, list: [4, 9, 2, 7, 5] };
const UP: IncreasingSpec = { k: 3, list: [5, 2, 8, 1, 9, 4] };

const CASES: { family: Family; spec: unknown; cases: [answer: string, expected: string, why: string][] }[] = [
  {
    family: pathFamily,
    spec: PATH,
    cases: [
      ["abde", "11111", "the path"],
      ["abdx", "00110", "x is no node: form, end and last hop fail"],
      ["bde", "10111", "starts at b, not the source (only criterion 2 fails)"],
      ["abd", "10111", "ends at d, not the target (only criterion 2 fails)"],
      ["abdbde", "11011", "b and d twice (only criterion 3 fails)"],
      ["ae", "11100", "straight to the target: not an edge (criterion 4 implies 5)"],
      ["abce", "11110", "bc is no edge (only criterion 5 fails)"],
      ["", "00000", "empty"],
      ["zz9!", "00000", "garbage"],
      ["abdeabdeabde", "01010", "too long"],
      ["a b d e", "01000", "spaces"],
      ["a", "00100", "one node"],
    ],
  },
  {
    family: sumFamily,
    spec: SUM,
    cases: [
      ["4 9", "11111", "the pair"],
      ["4,9", "01111", "a comma (only criterion 1 fails)"],
      ["6 7", "10111", "6 is not in the list (only criterion 2 fails)"],
      ["2 11", "11011", "11 is not in the list (only criterion 3 fails)"],
      ["9 4", "11101", "larger first (only criterion 4 fails)"],
      ["4 7", "11110", "4 + 7 = 11 (only criterion 5 fails)"],
      ["4", "01000", "one number"],
      ["", "00000", "empty"],
      ["hello!", "00000", "garbage"],
      ["4 9 2 7 5 4 9 2 7 5", "01111", "too long: the first two numbers are right"],
      ["04 9", "10111", "04 is not how the list writes 4"],
    ],
  },
  {
    family: increasingFamily,
    spec: UP,
    cases: [
      ["2 8 9", "11111", "an increasing subsequence"],
      ["2,8,9", "01111", "commas (only criterion 1 fails)"],
      ["2 3 9", "10111", "3 is not in the list (only criterion 2 fails)"],
      ["2 8", "11011", "two numbers, not three (only criterion 3 fails)"],
      ["5 2 8", "11101", "list order but 5 > 2 (only criterion 4 fails)"],
      ["1 2 9", "11110", "increasing but 1 comes after 2 in the list (only criterion 5 fails)"],
      ["", "00000", "empty"],
      ["hello!", "00000", "garbage"],
      ["5 2 8 1 9 4 5 2", "11000", "too long"],
      ["9 8 2", "11100", "backwards"],
    ],
  },
];

test("sandbox families a: hand-written answers meet the expected criteria", () => {
  for (const { family, spec, cases } of CASES) {
    for (const [answer, expected, why] of cases) {
      const got = family.check(spec, answer);
      assert.equal(got.length, 5, `${family.name} ${JSON.stringify(answer)}: check returned ${got.length} criteria`);
      assert.deepEqual(got, bits(expected), `${family.name} ${JSON.stringify(answer)} (${why}): got ${show(got)}, expected ${expected}`);
    }
  }
});

test("sandbox families a: names, descriptions and five criteria", () => {
  assert.deepEqual(
    FAMILIES.map((f) => f.name),
    ["path", "sum", "increasing"],
    "family names",
  );
  for (const f of FAMILIES) {
    assert.equal(f.criteria.length, 5, `${f.name}: five criteria`);
    assert.ok(f.description.length > 10, `${f.name}: a description`);
  }
});

test("sandbox families a: the reference meets all five criteria on 500 generated tasks", () => {
  for (const f of FAMILIES) {
    for (const [i, t] of tasks(f, 500, 11).entries()) {
      assert.equal(t.family, f.name, `${f.name} task ${i}: family field`);
      const s = score(f, t.spec, t.reference);
      assert.equal(
        s.score,
        5,
        `${f.name} task ${i} ${JSON.stringify(t.instruction)}: reference ${JSON.stringify(t.reference)} scores ${show(s.criteria)}`,
      );
      assert.deepEqual(JSON.parse(JSON.stringify(t.spec)), t.spec, `${f.name} task ${i}: the spec is plain JSON data`);
    }
  }
});

test("sandbox families a: generators are deterministic in the seed and varied", () => {
  for (const f of FAMILIES) {
    const a = tasks(f, 50, 5);
    assert.deepEqual(tasks(f, 50, 5), a, `${f.name}: the same seed gives the same tasks`);
    const b = tasks(f, 50, 6);
    assert.notDeepEqual(
      b.map((t) => t.instruction),
      a.map((t) => t.instruction),
      `${f.name}: another seed gives other tasks`,
    );
    const distinct = new Set(tasks(f, 1000, 7).map((t) => t.instruction)).size;
    assert.ok(distinct >= 950, `${f.name}: only ${distinct} distinct instructions in 1000 draws`);
  }
});

test("sandbox families a: task structure (a real search, no shortcut answers)", () => {
  for (const t of tasks(pathFamily, 300, 3)) {
    const { source, target, edges } = t.spec;
    const nodes = new Set(edges.join(""));
    assert.ok(nodes.size >= 5 && nodes.size <= 7, `path ${t.instruction}: ${nodes.size} nodes, expected 5-7`);
    assert.ok(edges.length >= 5 && edges.length <= 8, `path ${t.instruction}: ${edges.length} edges, expected 5-8`);
    assert.deepEqual([...edges].sort(), edges, `path ${t.instruction}: edges sorted`);
    assert.ok(
      edges.every((e) => e[0] < e[1]),
      `path ${t.instruction}: each edge in alphabetical order`,
    );
    assert.ok(!edges.includes([source, target].sort().join("")), `path ${t.instruction}: source and target are not neighbours`);
    assert.ok(t.reference.length >= 3, `path ${t.instruction}: reference ${t.reference} has at least two hops`);
  }
  for (const t of tasks(sumFamily, 300, 3)) {
    const { target, list } = t.spec;
    assert.equal(new Set(list).size, list.length, `sum ${t.instruction}: distinct numbers`);
    assert.ok(list.length >= 4 && list.length <= 6 && list.every((x) => x >= 1 && x <= 19), `sum ${t.instruction}: 4-6 numbers 1-19`);
    let pairs = 0;
    for (let i = 0; i < list.length; i++) for (let j = i + 1; j < list.length; j++) if (list[i] + list[j] === target) pairs++;
    assert.equal(pairs, 1, `sum ${t.instruction}: exactly one pair adds up to the target`);
  }
  for (const t of tasks(increasingFamily, 300, 3)) {
    const { k, list } = t.spec;
    assert.ok(k === 3 || k === 4, `increasing ${t.instruction}: k is 3 or 4`);
    assert.ok(
      list.length >= 5 && list.length <= 7 && new Set(list).size === list.length,
      `increasing ${t.instruction}: 5-7 distinct numbers`,
    );
    assert.ok(
      increasingFamily.check(t.spec, list.slice(0, k).join(" "))[3] === false,
      `increasing ${t.instruction}: copying the first k numbers does not increase`,
    );
    const sorted = [...list]
      .sort((a, b) => a - b)
      .slice(0, k)
      .join(" ");
    assert.ok(increasingFamily.check(t.spec, sorted)[4] === false, `increasing ${t.instruction}: sorting the smallest k breaks list order`);
  }
});

test("sandbox families a: instructions, answers, traces and corruptions stay in the alphabet and the length limits", () => {
  for (const f of FAMILIES) {
    const rng = mulberry32(21);
    for (const t of tasks(f, 400, 13)) {
      assertLine(t.instruction, MAX_INSTRUCTION, `${f.name} instruction`);
      assertLine(t.reference, MAX_ANSWER, `${f.name} reference`);
      const bad = f.corrupt(t.spec, t.reference, rng, rng());
      assertLine(bad, MAX_ANSWER, `${f.name} corruption of ${t.instruction}`);
      for (const a of [t.reference, bad, fuzz(rng), "", "1 2 3 4 5 6 7 8 9 10 11 12", "123456789 987654321 5", "abcdefghabcdefgh"]) {
        const tr = f.trace(t.spec, a);
        assertLine(tr, MAX_TRACE, `${f.name} trace of ${JSON.stringify(a)} for ${t.instruction}`);
        assert.ok(!tr.includes("  ") && tr.trim() === tr && tr.length > 0, `${f.name} trace ${JSON.stringify(tr)}: single spaces only`);
      }
    }
  }
});

test("sandbox families a: check and trace accept any string without throwing", () => {
  const rng = mulberry32(4);
  const odd = [
    "",
    " ",
    "\n",
    "🙂",
    "é",
    "\u0000",
    "9".repeat(400),
    "a".repeat(100_000),
    "1 ".repeat(5000),
    "ab\nbd",
    "-1 14",
    "4 9\n",
    "NaN Infinity",
  ];
  for (const f of FAMILIES) {
    for (const t of tasks(f, 20, 8)) {
      for (const a of [...odd, ...Array.from({ length: 50 }, () => fuzz(rng))]) {
        const c = f.check(t.spec, a);
        assert.ok(
          c.length === 5 && c.every((x) => typeof x === "boolean"),
          `${f.name} check(${JSON.stringify(a.slice(0, 20))}): five booleans`,
        );
        const tr = f.trace(t.spec, a);
        assertLine(tr, MAX_TRACE, `${f.name} trace of ${JSON.stringify(a.slice(0, 20))}`);
      }
    }
  }
});

// ---- traces ------------------------------------------------------------------------------------

const TRACES: [family: Family, spec: unknown, answer: string, trace: string][] = [
  [pathFamily, PATH, "abde", "1a 2b 3d 4e | ab+ bd+ de+ | a=a+ e=e+"],
  [pathFamily, PATH, "abdbde", "1a 2b 3d 4b! 5d! 6e | ab+ bd+ db+ bd+ de+ | a=a+ e=e+"],
  [pathFamily, PATH, "zz9!", "1z 2z! 3# 4# | zz- z#- ##- | z=a- #=e-"],
  [pathFamily, PATH, "abdeabdeabde", "1a 2b 3d 4e 5a! 6b! 7d! 8e! .. | ab+ bd+ de+ ea- ab+ bd+ de+ | a=a+ e=e+"],
  [pathFamily, PATH, "a", "1a | none | a=a+ a=e-"],
  [pathFamily, PATH, "", "empty"],
  [sumFamily, SUM, "4 9", "nsn+ | 4@1 9@2 | 4<9+ 4+9=13+"],
  [sumFamily, SUM, "9 4", "nsn+ | 9@2 4@1 | 9>4- 9+4=13+"],
  [sumFamily, SUM, "4,9", "nxn- | 4@1 9@2 | 4<9+ 4+9=13+"],
  [sumFamily, SUM, "4", "n- | 4@1 .@- | 4<.- 4+.=.-"],
  [sumFamily, SUM, "4 9 2 7 5 4 9 2 7 5", "nsnsnsns..- | 4@1 9@2 | 4<9+ 4+9=13+"],
  [sumFamily, SUM, "", "empty"],
  [increasingFamily, UP, "2 8 9", "nsnsn+ | 1:2@2 2:8@3 3:9@5 | 3=3+ 2<8<9+ 2<3<5+"],
  [increasingFamily, UP, "2 3 9", "nsnsn+ | 1:2@2 2:3@- 3:9@5 | 3=3+ 2<3<9+ 2<5+"],
  [increasingFamily, UP, "1 2 9", "nsnsn+ | 1:1@4 2:2@2 3:9@5 | 3=3+ 1<2<9+ 4>2<5-"],
  [increasingFamily, UP, "hello!", "xxxxxx- | none | 0=3- .- .-"],
  [increasingFamily, UP, "5 2 8 1 9 4 5 2", "nsnsnsns..+ | 1:5@1 2:2@2 3:8@3 4:1@4 5:9@5 .. | 8=3- 5>2<8>1<9..- 1<2<3<4<5..-"],
  [increasingFamily, UP, "", "empty"],
];

test("sandbox families a: exact traces for hand-written answers", () => {
  for (const [f, spec, answer, expected] of TRACES) {
    assert.equal(f.trace(spec, answer), expected, `${f.name} trace of ${JSON.stringify(answer)}`);
  }
});

test("sandbox families a: a criterion's outcome changes, the trace changes", () => {
  // Hand-written: every answer failing a criterion the reference meets has another trace.
  for (const { family, spec, cases } of CASES) {
    const [ref] = cases[0];
    for (const [answer, expected] of cases.slice(1)) {
      assert.notEqual(
        family.trace(spec, answer),
        family.trace(spec, ref),
        `${family.name}: ${JSON.stringify(answer)} (${expected}) has the reference's trace`,
      );
    }
  }
  // Generated: answers to the same task with different criteria never share a trace.
  for (const f of FAMILIES) {
    const rng = mulberry32(17);
    for (const t of tasks(f, 150, 19)) {
      const byTrace = new Map<string, string>();
      for (let i = 0; i < 30; i++) {
        const a = i === 0 ? t.reference : f.corrupt(t.spec, t.reference, rng, rng());
        const tr = f.trace(t.spec, a);
        const c = show(f.check(t.spec, a));
        const before = byTrace.get(tr);
        assert.ok(
          before === undefined || before === c,
          `${f.name} ${t.instruction}: trace ${JSON.stringify(tr)} stands for ${before} and ${c}`,
        );
        byTrace.set(tr, c);
      }
    }
  }
});

// Readers that derive each criterion from the trace's local steps and the instruction alone,
// without the trace's own +/- signs: the trace is enough to judge (answers within the walk's cap).

function readPath(spec: PathSpec, trace: string): boolean[] | null {
  if (trace === "empty") return [false, false, false, false, false];
  const [walk, hops, ends] = trace.split(" | ");
  if (walk.endsWith("..")) return null;
  const nodes = walk.split(" ").map((s) => s.replace(/^[0-9]+/, ""));
  const letters = nodes.map((s) => s[0]);
  const pairs = hops === "none" ? [] : hops.split(" ").map((h) => h.slice(0, 2));
  const isEdge = (p: string): boolean => spec.edges.includes([...p].sort().join(""));
  const [first, last] = ends.split(" ");
  return [
    letters.length >= 2 && letters.length <= 8 && letters.every((c) => c >= "a" && c <= "h"),
    first[0] === first[2] && first[2] === spec.source && last[0] === last[2] && last[2] === spec.target,
    nodes.every((s) => !s.endsWith("!")),
    pairs.length > 0 && isEdge(pairs[0]),
    pairs.length > 0 && pairs.every(isEdge),
  ];
}

function readSum(spec: SumSpec, trace: string): boolean[] | null {
  if (trace === "empty") return [false, false, false, false, false];
  const [shape, looks, steps] = trace.split(" | ");
  const found = looks.split(" ").map((l) => {
    const [n, p] = l.split("@");
    return p !== "-" && String(spec.list[Number(p) - 1]) === n;
  });
  const [order, sum] = steps.split(" ");
  return [
    shape.slice(0, -1) === "nsn",
    found[0],
    found[1],
    order.slice(0, -1).includes("<") && !order.includes("."),
    sum.slice(0, -1).split("=")[1] === String(spec.target),
  ];
}

function readIncreasing(spec: IncreasingSpec, trace: string): boolean[] | null {
  if (trace === "empty") return [false, false, false, false, false];
  const [shape, walk, steps] = trace.split(" | ");
  if (walk.endsWith("..") || shape.includes("..")) return null;
  const items = walk === "none" ? [] : walk.split(" ");
  const [count, values, positions] = steps.split(" ");
  const chainOk = (c: string): boolean => /^[0-9.]+(<[0-9.]+)+$/.test(c.slice(0, -1));
  return [
    /^n(sn)*$/.test(shape.slice(0, -1)),
    items.length > 0 &&
      items.every((it) => {
        const [n, p] = it.split(":")[1].split("@");
        return p !== "-" && String(spec.list[Number(p) - 1]) === n;
      }),
    count.slice(0, -1).split("=")[0] === String(spec.k),
    chainOk(values),
    chainOk(positions),
  ];
}

test("sandbox families a: each criterion can be read off the trace's local steps", () => {
  const readers: [Family, (spec: never, trace: string) => boolean[] | null][] = [
    [pathFamily, readPath],
    [sumFamily, readSum],
    [increasingFamily, readIncreasing],
  ];
  for (const [f, read] of readers) {
    const rng = mulberry32(23);
    let read_ = 0;
    for (const t of tasks(f, 300, 29)) {
      for (const a of [t.reference, f.corrupt(t.spec, t.reference, rng, rng()), f.corrupt(t.spec, t.reference, rng, rng()), fuzz(rng)]) {
        const tr = f.trace(t.spec, a);
        const got = read(t.spec as never, tr);
        if (got === null) continue;
        read_++;
        assert.deepEqual(
          show(got),
          show(f.check(t.spec, a)),
          `${f.name} ${t.instruction} answer ${JSON.stringify(a)}: trace ${JSON.stringify(tr)} reads otherwise`,
        );
      }
    }
    assert.ok(read_ > 1000, `${f.name}: only ${read_} traces read`);
  }
});

// ---- corruptions -------------------------------------------------------------------------------

test("sandbox families a: corruptions cover every score 0-5", () => {
  for (const f of FAMILIES) {
    const rng = mulberry32(31);
    const gen = tasks(f, 2000, 37);
    const hist = [0, 0, 0, 0, 0, 0];
    const bySeverity: number[][] = [[], []];
    for (const t of gen) {
      const severity = rng();
      const s = score(f, t.spec, f.corrupt(t.spec, t.reference, rng, severity)).score;
      hist[s]++;
      bySeverity[severity < 0.5 ? 0 : 1].push(s);
    }
    for (let s = 0; s <= 5; s++)
      assert.ok(
        hist[s] >= 0.05 * gen.length,
        `${f.name}: score ${s} in only ${hist[s]} of ${gen.length} corruptions (histogram ${hist.join(" ")})`,
      );
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    assert.ok(
      mean(bySeverity[0]) > mean(bySeverity[1]) + 1,
      `${f.name}: more severity, lower scores (${mean(bySeverity[0])} vs ${mean(bySeverity[1])})`,
    );
  }
});

test("sandbox families a: corruptions are deterministic in the rng", () => {
  for (const f of FAMILIES) {
    const [t] = tasks(f, 1, 41);
    const draw = () => {
      const rng = mulberry32(43);
      return Array.from({ length: 20 }, (_, i) => f.corrupt(t.spec, t.reference, rng, i / 19));
    };
    assert.deepEqual(draw(), draw(), `${f.name}: the same rng gives the same corruptions`);
  }
});
