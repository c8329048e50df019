/**
 * AdamW (Loshchilov & Hutter): Adam moments with weight decay decoupled from the gradient,
 * applied to matrices only (norm weights and biases are not decayed, as in nanoGPT/HF practice).
 */
import type { LlamaConfig } from "../model/config.js";
import { type LlamaParams, toNamed } from "../model/params.js";

export interface AdamWConfig {
  /** Learning rate (default 1e-3; the step function may override it per step for schedules). */
  lr: number;
  /** First-moment decay (default 0.9). */
  beta1: number;
  /** Second-moment decay (default 0.999; 0.95 is common for small LMs). */
  beta2: number;
  /** Denominator epsilon (default 1e-8). */
  eps: number;
  /** Decoupled weight decay (default 0.0). */
  weightDecay: number;
}

export const defaultAdamW: AdamWConfig = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };

export interface AdamWState {
  step: number;
  /** Per HF parameter name: first and second moments. */
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
}

/** Fresh optimizer state; moments are allocated on the first step. */
export function adamwInit(): AdamWState {
  return { step: 0, m: new Map(), v: new Map() };
}

/** Global L2 norm of all gradients (tied tensors counted once). */
export function gradNorm(c: LlamaConfig, grads: LlamaParams): number {
  let s = 0;
  for (const t of toNamed(c, grads)) for (let i = 0; i < t.data.length; i++) s += t.data[i] * t.data[i];
  return Math.sqrt(s);
}

/** Scale gradients in place so their global norm is at most maxNorm; returns the norm before clipping. */
export function clipGradNorm(c: LlamaConfig, grads: LlamaParams, maxNorm: number): number {
  const norm = gradNorm(c, grads);
  if (norm > maxNorm && norm > 0) {
    const k = maxNorm / norm;
    for (const t of toNamed(c, grads)) for (let i = 0; i < t.data.length; i++) t.data[i] *= k;
  }
  return norm;
}

/** One AdamW update of `params` from `grads` (both HF-named through toNamed). */
export function adamwStep(c: LlamaConfig, params: LlamaParams, grads: LlamaParams, state: AdamWState, cfg: AdamWConfig, lr = cfg.lr): void {
  state.step++;
  const { beta1: b1, beta2: b2, eps, weightDecay: wd } = cfg;
  const bc1 = 1 - b1 ** state.step;
  const bc2 = 1 - b2 ** state.step;
  const gs = new Map(toNamed(c, grads).map((t) => [t.name, t.data]));
  for (const t of toNamed(c, params)) {
    const g = gs.get(t.name) as Float32Array;
    const w = t.data;
    let m = state.m.get(t.name);
    let v = state.v.get(t.name);
    if (!m || !v) {
      m = new Float32Array(w.length);
      v = new Float32Array(w.length);
      state.m.set(t.name, m);
      state.v.set(t.name, v);
    }
    const decay = t.shape.length >= 2 ? 1 - lr * wd : 1;
    for (let i = 0; i < w.length; i++) {
      const gi = g[i];
      const mi = b1 * m[i] + (1 - b1) * gi;
      const vi = b2 * v[i] + (1 - b2) * gi * gi;
      m[i] = mi;
      v[i] = vi;
      w[i] = w[i] * decay - (lr * (mi / bc1)) / (Math.sqrt(vi / bc2) + eps);
    }
  }
}
