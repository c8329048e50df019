import assert from "node:assert/strict";
import path from "node:path";
import { mulberry32, randn } from "../src/engine/tensor.js";

/** Path to a file in ../shared (real data and models; never copied into the repo). */
export function sharedPath(...parts: string[]): string {
  return path.resolve(import.meta.dirname, "../../shared", ...parts);
}

export function rand(n: number, seed: number, std = 1): Float32Array {
  return randn(mulberry32(seed), n, std);
}

/**
 * Central finite difference of a scalar function f with respect to x[i], evaluated in float64
 * outside and float32 inside. eps is relatively large because the model stores float32.
 */
export async function numericGrad(x: Float32Array, i: number, f: () => Promise<number> | number, eps = 1e-2): Promise<number> {
  const old = x[i];
  x[i] = old + eps;
  const fp = await f();
  x[i] = old - eps;
  const fm = await f();
  x[i] = old;
  return (fp - fm) / (2 * eps);
}

/** Assert |a − b| ≤ atol + rtol·max(|a|, |b|), naming the entry. */
export function assertClose(a: number, b: number, what: string, rtol = 2e-2, atol = 1e-3): void {
  const tol = atol + rtol * Math.max(Math.abs(a), Math.abs(b));
  assert.ok(Math.abs(a - b) <= tol, `${what}: analytic ${a} vs numeric ${b} (tol ${tol.toExponential(2)})`);
}

export function assertAllClose(a: ArrayLike<number>, b: ArrayLike<number>, what: string, rtol = 1e-4, atol = 1e-5): void {
  assert.equal(a.length, b.length, `${what}: length ${a.length} vs ${b.length}`);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < a.length; i++) {
    const err = Math.abs(a[i] - b[i]) - (atol + rtol * Math.abs(b[i]));
    if (!(err <= worst)) {
      worst = err;
      at = i;
    }
  }
  assert.ok(at < 0, `${what}: entry ${at} differs: ${a[at]} vs ${b[at]}`);
}

/** Σ w·y in float64. */
export function weightedSum(y: ArrayLike<number>, w: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < y.length; i++) s += w[i] * y[i];
  return s;
}
