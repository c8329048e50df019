// Score parsing is fail-closed: the last line-anchored "Score: <n>" decides; anything else fails.
import assert from "node:assert/strict";
import { test } from "node:test";
import { mulberry32 } from "../../src/engine/tensor.js";
import { parseScore } from "../../src/judge/parse.js";

test("parseScore takes the last anchored Score line", () => {
  assert.deepEqual(parseScore("ab+ bc+\n+++-+\nScore: 4"), { ok: true, score: 4 }, "plain");
  assert.deepEqual(parseScore("Score: 2\nsecond thoughts\nScore: 3"), { ok: true, score: 3 }, "last wins");
  assert.deepEqual(parseScore("  Score:5  "), { ok: true, score: 5 }, "spaces around are fine");
  assert.deepEqual(parseScore("Score: 0"), { ok: true, score: 0 }, "zero");
});

test("parseScore fails closed and says why", () => {
  const bad: [string, RegExp][] = [
    ["", /no line/],
    ["the Score: 4", /no line/], // not anchored at a line start
    ["Score: 4\nScore: x", /not an integer/], // a bad last line is not rescued by an earlier one
    ["Score: 6", /outside/],
    ["Score: -1", /outside/],
    ["Score: 4.5", /not an integer/],
    ["Score: 4 points", /not an integer/],
    ["Score:", /not an integer/],
    ["score: 4", /no line/],
  ];
  for (const [text, why] of bad) {
    const r = parseScore(text);
    assert.equal(r.ok, false, `${JSON.stringify(text)} must not parse`);
    if (!r.ok) assert.match(r.reason, why, `${JSON.stringify(text)}: reason "${r.reason}"`);
  }
});

test("parseScore property: any text ending in a valid score line parses to it; random text never throws", () => {
  const rng = mulberry32(9);
  const chars = "abc019 :+-\nScore";
  for (let i = 0; i < 2000; i++) {
    let noise = "";
    const len = Math.floor(rng() * 40);
    for (let j = 0; j < len; j++) noise += chars[Math.floor(rng() * chars.length)];
    const k = Math.floor(rng() * 6);
    const r = parseScore(`${noise}\nScore: ${k}`);
    assert.deepEqual(r, { ok: true, score: k }, `noise ${JSON.stringify(noise)} then Score: ${k}`);
    const free = parseScore(noise);
    if (free.ok) assert.ok(free.score >= 0 && free.score <= 5, `in range: ${JSON.stringify(noise)}`);
  }
});
