/**
 * AdamW (Loshchilov & Hutter): Adam moments with weight decay decoupled from the gradient,
 * applied to matrices only (norm weights and biases are not decayed, as in nanoGPT/HF practice).
 *
 * The optimizer works on lists of named tensors, so the same code trains a whole model
 * (`toNamed(config, params)`) or a LoRA adapter (its A and B matrices).
 */
import type { LlamaConfig } from "../model/config.js";
import { type LlamaParams, type NamedTensor, toNamed } from "../model/params.js";

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
  /** Per tensor name: first and second moments. */
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
}

/** Fresh optimizer state; moments are allocated on the first step. */
export function adamwInit(): AdamWState {
  return { step: 0, m: new Map(), v: new Map() };
}

/** Global L2 norm of a list of gradients. */
export function globalNorm(grads: readonly NamedTensor[]): number {
  let s = 0;
  for (const t of grads) s += sumSquares(t.data);
  return Math.sqrt(s);
}

/** Global L2 norm of all gradients (tied tensors counted once). */
export function gradNorm(c: LlamaConfig, grads: LlamaParams): number {
  return globalNorm(toNamed(c, grads));
}

function sumSquares(d: Float32Array): number {
  let s = 0;
  const n = d.length;
  for (let i = 0; i < n; i++) s += d[i] * d[i];
  return s;
}

/** The factor that brings a global norm down to maxNorm (1 when already below or maxNorm ≤ 0 / ∞). */
export function clipScale(norm: number, maxNorm: number): number {
  return maxNorm > 0 && norm > maxNorm && norm > 0 ? maxNorm / norm : 1;
}

/**
 * The factor that brings the gradients' global norm down to maxNorm (1 when already below), and the
 * norm before clipping. Pass the factor to `adamwStep` as `gradScale`: clipping then costs no extra pass.
 */
export function clipFactor(c: LlamaConfig, grads: LlamaParams, maxNorm: number): { norm: number; scale: number } {
  const norm = gradNorm(c, grads);
  return { norm, scale: clipScale(norm, maxNorm) };
}

/** Scale gradients in place so their global norm is at most maxNorm; returns the norm before clipping. */
export function clipGradNorm(c: LlamaConfig, grads: LlamaParams, maxNorm: number): number {
  const { norm, scale } = clipFactor(c, grads, maxNorm);
  if (scale !== 1) for (const t of toNamed(c, grads)) scaleInPlace(t.data, scale);
  return norm;
}

function scaleInPlace(d: Float32Array, k: number): void {
  const n = d.length;
  for (let i = 0; i < n; i++) d[i] *= k;
}

/**
 * One AdamW update of a model's `params` from `grads` (both HF-named through toNamed). `gradScale`
 * multiplies every gradient first (gradient clipping without a separate pass).
 */
export function adamwStep(
  c: LlamaConfig,
  params: LlamaParams,
  grads: LlamaParams,
  state: AdamWState,
  cfg: AdamWConfig,
  lr = cfg.lr,
  gradScale = 1,
): void {
  adamwStepNamed(toNamed(c, params), toNamed(c, grads), state, cfg, lr, gradScale);
}

/**
 * One AdamW update of named tensors from gradients in the same order (names must match). Tensors
 * with two or more dimensions are decayed; vectors (norms, biases) are not.
 */
export function adamwStepNamed(
  params: readonly NamedTensor[],
  grads: readonly NamedTensor[],
  state: AdamWState,
  cfg: AdamWConfig,
  lr = cfg.lr,
  gradScale = 1,
): void {
  if (params.length !== grads.length) throw new Error(`adamw: ${params.length} parameters but ${grads.length} gradients`);
  state.step++;
  const bc1 = 1 - cfg.beta1 ** state.step;
  const bc2 = 1 - cfg.beta2 ** state.step;
  for (const [i, t] of params.entries()) {
    const g = grads[i];
    if (g.name !== t.name || g.data.length !== t.data.length) {
      throw new Error(`adamw: gradient ${i} is "${g.name}" (${g.data.length}), parameter is "${t.name}" (${t.data.length})`);
    }
    let m = state.m.get(t.name);
    let v = state.v.get(t.name);
    if (!m || !v) {
      m = new Float32Array(t.data.length);
      v = new Float32Array(t.data.length);
      state.m.set(t.name, m);
      state.v.set(t.name, v);
    }
    const decay = t.shape.length >= 2 ? 1 - lr * cfg.weightDecay : 1;
    adamwUpdate(t.data, g.data, m, v, cfg.beta1, cfg.beta2, cfg.eps, lr / bc1, 1 / Math.sqrt(bc2), decay, gradScale);
  }
}

/** w ← w·decay − step · m̂ / (sqrt(v̂) + eps), with m̂ = m/bc1 folded into `step` and sqrt(v̂) = sqrt(v)·invSqrtBc2. */
function adamwUpdate(
  w: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  b1: number,
  b2: number,
  eps: number,
  step: number,
  invSqrtBc2: number,
  decay: number,
  gradScale: number,
): void {
  const n = w.length;
  const c1 = 1 - b1;
  const c2 = 1 - b2;
  for (let i = 0; i < n; i++) {
    const gi = g[i] * gradScale;
    const mi = b1 * m[i] + c1 * gi;
    const vi = b2 * v[i] + c2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    w[i] = w[i] * decay - (step * mi) / (Math.sqrt(vi) * invSqrtBc2 + eps);
  }
}
