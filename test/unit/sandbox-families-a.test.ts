import assert from "node:assert/strict";
import { test } from "node:test";
import { mulberry32 } from "../../src/engine/tensor.js";
import { type IncreasingSpec, increasingFamily } from "../../src/sandbox/families/increasing.js";
import { type PathSpec, pathFamily } from "../../src/sandbox/families/path.js";
import { type SumSpec, sumFamily } from "../../src/sandbox/families/sum.js";
import { judgement, judgePrompt, SANDBOX_ALPHABET } from "../../src/sandbox/forms.js";
import type { Family, Rng, Task } from "../../src/sandbox/task.js";
import { score } from "../../src/sandbox/task.js";

const FAMILIES: Family[] = [pathFamily, sumFamily, increasingFamily];
const MAX_INSTRUCTION = 40;
const MAX_ANSWER = 20;
/** Any answer's trace stays under this; the judge example (prompt, trace, bits, score) stays ≤ 188 for answers of ≤ 20 characters. */
const MAX_TRACE = 170;
const MAX_JUDGE = 188;

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
      const short = fuzz(rng).slice(0, MAX_ANSWER);
      for (const a of [
        t.reference,
        bad,
        short,
        "",
        "1 2 3 4 5 6 7 8 9 10 11",
        "1234567 7654321 5",
        "abcdefghabcdefgh",
        "123 456 789 12 345",
      ]) {
        const tr = f.trace(t.spec, a);
        assertLine(tr, MAX_TRACE, `${f.name} trace of ${JSON.stringify(a)} for ${t.instruction}`);
        assert.ok(!tr.includes("  ") && tr.trim() === tr && tr.length > 0, `${f.name} trace ${JSON.stringify(tr)}: single spaces only`);
        const full = judgePrompt(t.instruction, a) + judgement(f, t.spec, a).text;
        assert.ok(full.length <= MAX_JUDGE, `${f.name} judge example of ${full.length} characters: ${JSON.stringify(full)}`);
      }
    }
  }
});

test("sandbox families a: judge examples fit 188 characters over 2000 tasks (reference and 3 corruptions)", () => {
  for (const f of FAMILIES) {
    const rng = mulberry32(47);
    let max = 0;
    let total = 0;
    let n = 0;
    for (const t of tasks(f, 2000, 53)) {
      for (const a of [t.reference, ...[0, 1, 2].map(() => f.corrupt(t.spec, t.reference, rng, rng()))]) {
        const full = judgePrompt(t.instruction, a) + judgement(f, t.spec, a).text;
        assert.ok(inAlphabet(full), `${f.name}: ${JSON.stringify(full)} uses a character outside SANDBOX_ALPHABET`);
        assert.ok(full.length <= MAX_JUDGE, `${f.name} judge example of ${full.length} characters: ${JSON.stringify(full)}`);
        max = Math.max(max, full.length);
        total += full.length;
        n++;
      }
    }
    assert.ok(total / n < 135, `${f.name}: judge examples average ${(total / n).toFixed(1)} characters (max ${max})`);
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

const SUM27: SumSpec = { target: 27, list: [19, 1, 15, 9, 18] };

const TRACES: [family: Family, spec: unknown, answer: string, trace: string][] = [
  [pathFamily, PATH, "abde", "a b:a- d:a-b- e:a-b-d- | ab:ab+ bd:ab-bd+ de:ab-bd-ce-cf-de+ | a=a+ e=e+"],
  [pathFamily, PATH, "adbe", "a d:a- b:a-d- e:a-d-b- | ad:ab-bd-ce-cf-de- | a=a+ e=e+"],
  [pathFamily, PATH, "abdbde", "a b:a- d:a-b- b:a-b+d- d e | ab:ab+ bd:ab-bd+ bd:ab-bd+ bd:ab-bd+ de:ab-bd-ce-cf-de+ | a=a+ e=e+"],
  [pathFamily, PATH, "zz9!", "z z:z+ # # | zz:- | z=a- #=e-"],
  [
    pathFamily,
    PATH,
    "abdeabdeabde",
    "a b:a- d:a-b- e:a-b-d- a:a+b-d-e- b d e .. | ab:ab+ bd:ab-bd+ de:ab-bd-ce-cf-de+ ae:ab-bd-ce-cf-de- | a=a+ e=e+",
  ],
  [pathFamily, PATH, "a", "a | none | a=a+ a=e-"],
  [pathFamily, PATH, "", "empty"],
  [sumFamily, SUM, "4 9", "nsn+ | 4=4+ | 9=4- 9=9+ | 4<9+ 4+9=13 13=13+"],
  [sumFamily, SUM, "9 4", "nsn+ | 9=4- 9=9+ | 4=4+ | 9>4- 9+4=13 13=13+"],
  [sumFamily, SUM, "4,9", "nxn- | 4=4+ | 9=4- 9=9+ | 4<9+ 4+9=13 13=13+"],
  [sumFamily, SUM, "6 7", "nsn+ | 6=4- 6=9- 6=2- 6=7- 6=5- | 7=4- 7=9- 7=2- 7=7+ | 6<7+ 6+7=13 13=13+"],
  [sumFamily, SUM, "4", "n- | 4=4+ | . | .- .-"],
  [sumFamily, SUM, "4 9 2 7 5 4 9 2 7 5", "nsnsns..- | 4=4+ | 9=4- 9=9+ | 4<9+ 4+9=13 13=13+"],
  [sumFamily, SUM, "", "empty"],
  [sumFamily, SUM27, "9 18", "nsn+ | 9=19- 9=1- 9=15- 9=9+ | 18=19- 18=1- 18=15- 18=9- 18=18+ | 9<18+ 9+8=17 0+1+1=2 27=27+"],
  [sumFamily, SUM27, "19 9", "nsn+ | 19=19+ | 9=19- 9=1- 9=15- 9=9+ | 19>9- 9+9=18 1+0+1=2 28=27-"],
  [increasingFamily, UP, "2 8 9", "nsnsn+ | 2<8<9+ | 1:2=5- 2=2+ 2:8=8+ 3:9=1- 9=9+ | 3=3+"],
  [increasingFamily, UP, "2 3 9", "nsnsn+ | 2<3<9+ | 1:2=5- 2=2+ 2:3=8- 3=1- 3=9- 3=4- / 3=5- 3=2- 3:9=8- 9=1- 9=9+ | 3=3+"],
  [increasingFamily, UP, "1 2 9", "nsnsn+ | 1<2<9+ | 1:1=5- 1=2- 1=8- 1=1+ 2:2=9- 2=4- / 2=5- 2=2! 3:9=8- 9=1- 9=9+ | 3=3+"],
  [increasingFamily, UP, "2 2 8", "nsnsn+ | 2=2<8- | 1:2=5- 2=2+ 2:2=8- 2=1- 2=9- 2=4- / 2=5- 2=2! 3:8=8+ | 3=3+"],
  [increasingFamily, UP, "hello!", "xxxxxx- | .- | none | 0=3-"],
  [increasingFamily, UP, "5 2 8 1 9 4 5 2", "nsnsnsns..+ | 5>2<8>1<9..- | 1:5=5+ 2:2=2+ 3:8=8+ 4:1=1+ 5:9=9+ .. | 8=3-"],
  [
    increasingFamily,
    UP,
    "3 6 1 2",
    "nsnsnsn+ | 3<6>1<2- | 1:3=5- 3=2- 3=8- 3=1- 3=9- 3=4- 2:6=5- 6=2- 6=8- 6=1- 6=9- 6=4- 3:1=5- 1=2- 1=8- 1=1+ 4:2=9- 2=4- / 2=5- 2=2! | 4=3-",
  ],
  [
    increasingFamily,
    UP,
    "3 1 2 7",
    "nsnsnsn+ | 3>1<2<7- | 1:3=5- 3=2- 3=8- 3=1- 3=9- 3=4- 2:1=5- 1=2- 1=8- 1=1+ 3:2=9- 2=4- / 2=5- 2=2! .. | 4=3-",
  ],
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

// Readers that derive each criterion from the trace and the instruction alone. They re-do every
// step from the operands written next to it (a mark must be the outcome of its comparison, a scan
// must copy the instruction's list in order, a column sum must add up) and then read the criteria
// off the steps, never off the answer. Traces cut with `..` are skipped (answers past the caps).

const mark = (ok: boolean): string => (ok ? "+" : "-");

function readPath(spec: PathSpec, trace: string): boolean[] | null {
  if (trace === "empty") return [false, false, false, false, false];
  const [walk, hops, ends] = trace.split(" | ");
  if (walk.endsWith("..")) return null;
  const groups = walk.split(" ");
  const nodes = groups.map((g) => g[0]);
  let repeat = false;
  for (const [i, g] of groups.entries()) {
    if (i === 0 || repeat) {
      assert.equal(g.length, 1, `path ${trace}: group ${g} is only the node`);
      continue;
    }
    const marks = g.slice(2);
    assert.equal(g[1], ":", `path ${trace}: group ${g}`);
    assert.equal(marks.length, 2 * i, `path ${trace}: group ${g} compares with the ${i} nodes before`);
    for (let j = 0; j < i; j++) {
      assert.equal(marks[2 * j], nodes[j], `path ${trace}: group ${g} copies the walk in order`);
      if (nodes[j] !== "#") assert.equal(marks[2 * j + 1], mark(nodes[j] === nodes[i]), `path ${trace}: mark in ${g}`);
    }
    repeat = marks.includes("+");
  }
  const isNode = (c: string): boolean => c >= "a" && c <= "h";
  const found: boolean[] = [];
  if (hops !== "none") {
    for (const [i, h] of hops.split(" ").entries()) {
      const [hop, items] = h.split(":");
      assert.equal(hop, [nodes[i], nodes[i + 1]].sort().join(""), `path ${trace}: hop ${i + 1} is the walk's`);
      if (!isNode(hop[0]) || !isNode(hop[1])) {
        assert.equal(items, "-", `path ${trace}: a hop off the graph`);
        found.push(false);
        continue;
      }
      const scanned = items.match(/.../g) ?? [];
      scanned.forEach((it, k) => {
        assert.equal(it.slice(0, 2), spec.edges[k], `path ${trace}: the scan copies the edge list in order`);
        assert.equal(it[2], mark(it.slice(0, 2) === hop), `path ${trace}: mark of ${it}`);
      });
      found.push(scanned.at(-1)?.[2] === "+");
    }
    assert.equal(
      found.length,
      found.includes(false) ? found.indexOf(false) + 1 : nodes.length - 1,
      `path ${trace}: hops up to the first miss`,
    );
  } else assert.ok(nodes.length < 2, `path ${trace}: none only for one node`);
  const [first, last] = ends.split(" ");
  assert.ok(
    first[0] === nodes[0] && last[0] === nodes.at(-1) && first[2] === spec.source && last[2] === spec.target,
    `path ${trace}: ends`,
  );
  assert.ok(first[3] === mark(first[0] === first[2]) && last[3] === mark(last[0] === last[2]), `path ${trace}: end marks`);
  return [
    nodes.length >= 2 && nodes.length <= 8 && nodes.every(isNode),
    first[0] === spec.source && last[0] === spec.target,
    !repeat,
    found.length > 0 && found[0],
    found.length === nodes.length - 1 && found.every(Boolean) && found.length > 0,
  ];
}

/** Re-does a scan `v=x± v=y± …` over `items` from `from`, going round with `/`; returns its outcome. */
function readScan(
  trace: string,
  text: string,
  items: readonly string[],
  from = 0,
  round = false,
): { found: boolean; back: boolean; at: number } {
  const steps = text.split(" ");
  let k = 0;
  let wrapped = false;
  let back = false;
  let at = -1;
  for (const st of steps) {
    if (st === "/") {
      assert.ok(round && from + k === items.length, `${trace}: / where the list ends`);
      wrapped = true;
      continue;
    }
    const [v, rest] = st.split("=");
    const item = rest.slice(0, -1);
    const idx = (from + k) % items.length;
    assert.equal(item, items[idx], `${trace}: step ${st} copies the list in order`);
    assert.ok(v === steps.find((x) => x !== "/")!.split("=")[0], `${trace}: step ${st} repeats the value`);
    const eq = v === item;
    assert.equal(rest.at(-1), eq ? (wrapped ? "!" : "+") : "-", `${trace}: mark of ${st}`);
    if (eq) {
      back = wrapped;
      at = idx;
    }
    k++;
  }
  return { found: at >= 0, back, at };
}

function readSum(spec: SumSpec, trace: string): boolean[] | null {
  if (trace === "empty") return [false, false, false, false, false];
  const [shape, lookA, lookB, steps] = trace.split(" | ");
  if (lookA.endsWith("..") || lookB.endsWith("..")) return null;
  const items = spec.list.map(String);
  const found = [lookA, lookB].map((l) => (l === "." ? false : readScan(trace, l, items).found));
  if (steps === ".- .-") return [shape.slice(0, -1) === "nsn", found[0], found[1], false, false];
  const [order, ...rest] = steps.split(" ");
  const [, a, rel, b] = order.match(/^([0-9.]+)([<=>])([0-9.]+)[+-]$/)!;
  if (a.includes(".") || b.includes(".")) return null;
  assert.equal(
    rel,
    a.length === b.length ? (a < b ? "<" : a > b ? ">" : "=") : Number(a) < Number(b) ? "<" : ">",
    `sum ${trace}: relation`,
  );
  // The columns: units first, each adding the digits of a and b (and the carry) below it.
  const cols = rest.slice(0, -1);
  const [da, db] = [String(Number(a)), String(Number(b))].map((x) => [...x].reverse());
  let carry = 0;
  let total = "";
  cols.forEach((c, i) => {
    const m = c.match(/^([0-9])\+([0-9])(?:\+([01]))?=([0-9]+)$/)!;
    assert.ok(m, `sum ${trace}: column ${c}`);
    assert.ok(
      m[1] === (da[i] ?? "0") && m[2] === (db[i] ?? "0") && Number(m[3] ?? 0) === carry,
      `sum ${trace}: column ${c} adds the right digits`,
    );
    const s = Number(m[1]) + Number(m[2]) + carry;
    assert.equal(Number(m[4]), s, `sum ${trace}: column ${c} adds up`);
    total = i === cols.length - 1 ? String(s) + total : String(s % 10) + total;
    carry = Math.floor(s / 10);
  });
  const [got, target] = rest.at(-1)!.slice(0, -1).split("=");
  assert.ok(got === total && target === String(spec.target), `sum ${trace}: the sum ${got} read off the columns, against the target`);
  return [shape.slice(0, -1) === "nsn", found[0], found[1], rel === "<", got === target];
}

function readIncreasing(spec: IncreasingSpec, trace: string): boolean[] | null {
  if (trace === "empty") return [false, false, false, false, false];
  const [shape, chain, walk, count] = trace.split(" | ");
  if (walk.endsWith("..") || shape.includes("..")) return null;
  const values = chain === ".-" ? [] : chain.slice(0, -1).split(/[<=>]/);
  const rels = chain.slice(0, -1).match(/[<=>]/g) ?? [];
  rels.forEach((r, i) => {
    const [x, y] = [Number(values[i]), Number(values[i + 1])];
    assert.equal(r, x < y ? "<" : x > y ? ">" : "=", `increasing ${trace}: relation ${values[i]}${r}${values[i + 1]}`);
  });
  const groups = walk === "none" ? [] : walk.split(/ ?[0-9]+:/).slice(1);
  const items = spec.list.map(String);
  let from = 0;
  let missing = false;
  let back = false;
  let found = 0;
  for (const [i, g] of groups.entries()) {
    assert.equal(g.replace(/^\/ /, "").split("=")[0], values[i], `increasing ${trace}: scan ${i + 1} is for the chain's number ${i + 1}`);
    const r = readScan(trace, g, items, from, true);
    if (r.found) {
      found++;
      back ||= r.back;
      from = r.at + 1;
    } else {
      missing = true;
      assert.equal(g.split(" ").filter((x) => x !== "/").length, items.length, `increasing ${trace}: a miss goes all the way round`);
    }
  }
  const [n, k] = count.slice(0, -1).split("=");
  assert.equal(Number(n), groups.length, `increasing ${trace}: the count is the last index`);
  assert.equal(k, String(spec.k), `increasing ${trace}: k`);
  return [
    /^n(sn)*$/.test(shape.slice(0, -1)),
    groups.length > 0 && !missing,
    n === k,
    values.length >= 2 && rels.every((r) => r === "<"),
    found >= 2 && !back,
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
