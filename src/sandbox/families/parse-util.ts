/**
 * Helpers for the families' `parse` (self-instruct: a model-written instruction read back into its
 * spec, so the gold scorer can score answers to it).
 *
 * Each family matches its instruction's shape, rebuilds the spec, checks the generator's ranges and
 * its other guarantees, and last requires that the spec writes the very same instruction: one
 * comparison that rejects every spelling the generator never writes (leading zeros, extra spaces).
 */

/** `text` cut at single spaces into numbers written as plain digits without a leading zero, or undefined. */
export function numberList(text: string): number[] | undefined {
  const parts = text.split(" ");
  if (!parts.every((p) => /^[1-9][0-9]*$/.test(p))) return undefined;
  return parts.map(Number);
}

/** Whether `n` is an integer in [lo, hi]. */
export function inRange(n: number, lo: number, hi: number): boolean {
  return Number.isInteger(n) && n >= lo && n <= hi;
}

/** Whether `xs` holds between count[0] and count[1] distinct integers, each in [values[0], values[1]]. */
export function distinctList(xs: readonly number[], count: [number, number], values: [number, number]): boolean {
  return inRange(xs.length, count[0], count[1]) && new Set(xs).size === xs.length && xs.every((x) => inRange(x, values[0], values[1]));
}
