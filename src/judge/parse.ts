/**
 * Parsing a judgement's score, fail-closed: the score is the LAST line-anchored `Score: <n>`; if that
 * is not an integer in [min, max] the judgement fails to parse. A failure is counted by the caller
 * and never replaced by a guess (an earlier valid score line does not rescue a bad last one).
 */
export type ParsedScore = { ok: true; score: number } | { ok: false; reason: string };

const SCORE_LINE = /^[ \t]*Score:[ \t]*(.*?)[ \t]*$/gm;

export function parseScore(text: string, min = 0, max = 5): ParsedScore {
  let last: string | undefined;
  for (const m of text.matchAll(SCORE_LINE)) last = m[1];
  if (last === undefined) return { ok: false, reason: "no line starting with 'Score:'" };
  if (!/^[+-]?\d+$/.test(last)) return { ok: false, reason: `the last 'Score:' line holds ${JSON.stringify(last)}, not an integer` };
  const score = Number(last);
  if (score < min || score > max) return { ok: false, reason: `score ${score} is outside [${min}, ${max}]` };
  return { ok: true, score };
}

/**
 * A meta-judge's verdict (Meta-Rewarding: which of two judgements of the same answer is better),
 * fail-closed like parseScore: the LAST line-anchored `better: <x>`, where x must be exactly `1` (the
 * first judgement shown) or `2` (the second). Anything else — no such line, another value, a bad last
 * line after a good one — fails, is counted by the caller, and is never guessed.
 */
export type ParsedVerdict = { ok: true; better: 1 | 2 } | { ok: false; reason: string };

const VERDICT_LINE = /^[ \t]*better:[ \t]*(.*?)[ \t]*$/gm;

export function parseVerdict(text: string): ParsedVerdict {
  let last: string | undefined;
  for (const m of text.matchAll(VERDICT_LINE)) last = m[1];
  if (last === undefined) return { ok: false, reason: "no line starting with 'better:'" };
  if (last !== "1" && last !== "2") return { ok: false, reason: `the last 'better:' line holds ${JSON.stringify(last)}, not 1 or 2` };
  return { ok: true, better: last === "1" ? 1 : 2 };
}
