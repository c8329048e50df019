/** Mean and its standard error (sd/√n, n − 1 denominator; NaN when n < 2). */
export function rawMean(xs: readonly number[]): { mean: number; standardError: number; n: number } {
  const n = xs.length;
  const mean = n > 0 ? xs.reduce((s, x) => s + x, 0) / n : Number.NaN;
  const ss = xs.reduce((s, x) => s + (x - mean) ** 2, 0);
  return { mean, standardError: n > 1 ? Math.sqrt(ss / (n - 1) / n) : Number.NaN, n };
}
