/**
 * Helpers shared by the families "path", "sum" and "increasing": how their traces show an answer's
 * numbers and shape, and the scan that replaces a lookup.
 *
 * A SCAN is how these traces check that a value occurs in a list of the instruction without looking
 * it up: the list is copied item by item, in order (which a small model does well), and each copy is
 * written right after the value it is compared with, with the outcome behind it:
 *
 *   9 in `19 1 15 9`  →  `9=19- 9=1- 9=15- 9=9+`
 *
 * so every step compares two neighbours of the trace. The scan stops at the first `+`.
 */

export const sign = (ok: boolean): string => (ok ? "+" : "-");

/** The answer's numbers: its runs of ASCII digits, as written. */
export function numberRuns(answer: string): string[] {
  return answer.match(/[0-9]+/g) ?? [];
}

/** A number as the trace shows it: up to 3 digits, longer ones cut with a `.`. */
export function showNumber(run: string | undefined): string {
  if (run === undefined) return ".";
  return run.length <= 3 ? run : `${run.slice(0, 3)}.`;
}

/** The answer's shape: `n` per run of digits, `s` per space, `x` per other character; `..` after `cap` signs. */
export function shapeOf(answer: string, cap: number): string {
  let out = "";
  let prevDigit = false;
  for (const c of answer) {
    const digit = c >= "0" && c <= "9";
    if (!(digit && prevDigit)) out += digit ? "n" : c === " " ? "s" : "x";
    prevDigit = digit;
    if (out.length > cap) return `${out.slice(0, cap)}..`;
  }
  return out;
}

/** `<`, `=` or `>`: how a compares with b. */
export function relation(a: number, b: number): string {
  return a < b ? "<" : a > b ? ">" : "=";
}

/** 1-based position of `run` in `list` (exact spelling), or 0. */
export function positionIn(list: readonly number[], run: string | undefined): number {
  return run === undefined ? 0 : list.map(String).indexOf(run) + 1;
}

/** The scan of `value` (as the trace shows it) over `items`, up to the first match: `9=19- 9=9+`. */
export function scan(value: string, items: readonly string[], equal: (item: string) => boolean): { text: string; found: boolean } {
  const steps: string[] = [];
  for (const item of items) {
    const eq = equal(item);
    steps.push(`${value}=${item}${sign(eq)}`);
    if (eq) return { text: steps.join(" "), found: true };
  }
  return { text: steps.join(" "), found: false };
}

/** Total length of the judge example (forms.ts: prompt, trace, bits, score) for a trace. */
export function judgeLength(instruction: string, answer: string, trace: string): number {
  // `${instruction}\n>${answer}\n?` + trace + `\n${5 bits}\nScore: k`
  return instruction.length + 2 + answer.length + 2 + trace.length + 1 + 5 + 9;
}

/** The longest judge example (characters) the traces keep to: the context is 192 tokens. */
export const MAX_JUDGE = 188;
