/** A dense row-major float32 tensor. The engine keeps tensors this plain on purpose:
 * every op is an explicit function over Float32Array with its shape written beside it. */
export interface Tensor {
  shape: number[];
  data: Float32Array;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function tensor(shape: number[], data?: Float32Array): Tensor {
  const n = numel(shape);
  if (data && data.length !== n) {
    throw new Error(`tensor: data has ${data.length} elements, shape [${shape.join(", ")}] needs ${n}`);
  }
  return { shape, data: data ?? new Float32Array(n) };
}

/** Mulberry32: a tiny, fast, seedable 32-bit PRNG. Deterministic across platforms. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal samples (Box–Muller) from a uniform source. */
export function randn(rng: () => number, n: number, std = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = Math.max(rng(), 1e-12);
    const u2 = rng();
    const r = Math.sqrt(-2 * Math.log(u1)) * std;
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}
