import { causalSoftmax, softmaxBackwardInPlace, swigluBackward, swigluForward } from "./ops.js";

/**
 * The heavy operations of the engine: dense matrix products, and two fused layer cores that are
 * matrix products with element-wise work in between (the SwiGLU MLP; causal attention's
 * scores → softmax → weighted values), forward and backward. Norms, RoPE and the head's
 * log-softmax stay element-wise TypeScript in ops.ts.
 *
 * Two implementations share this interface: `ReferenceKernels` (plain TypeScript, the truth for
 * tests) and `OrtKernels` (onnxruntime-node's MLAS CPU kernels, see ort.ts), which is what runs.
 */
export interface MatmulOptions {
  /** Use A^T: A is stored (K, M) instead of (M, K). */
  transA?: boolean;
  /** Use B^T: B is stored (N, K) instead of (K, N). A Linear layer's HF weight (out, in) is B^T. */
  transB?: boolean;
  /** Scale of the product (attention uses 1/sqrt(head_dim)). Default 1. */
  alpha?: number;
}

export interface MlpOutputs {
  gate: Float32Array; // (N, Hm) h Wg^T
  up: Float32Array; // (N, Hm) h Wu^T
  act: Float32Array; // (N, Hm) silu(gate)·up
  out: Float32Array; // (N, C) act Wd^T
}

/** What the MLP backward needs from its forward. */
export type MlpSaved = Pick<MlpOutputs, "gate" | "up" | "act">;

export interface MlpGrads {
  dWGate: Float32Array; // (Hm, C)
  dWUp: Float32Array; // (Hm, C)
  dWDown: Float32Array; // (C, Hm)
  dh: Float32Array; // (N, C)
}

export interface AttentionOutputs {
  p: Float32Array; // (BK, G·T, T) attention probabilities (0 above the diagonal)
  o: Float32Array; // (BK, G·T, hd)
}

export interface AttentionGrads {
  dq: Float32Array; // (BK, G·T, hd)
  dk: Float32Array; // (BK, T, hd)
  dv: Float32Array; // (BK, T, hd)
}

/** The weights of a block's attention half (a LayerParams fits). Linear weights (out, in). */
export interface AttnWeights {
  inputNorm: Float32Array; // (C)
  wq: Float32Array; // (H·hd, C)
  wk: Float32Array; // (KV·hd, C)
  wv: Float32Array; // (KV·hd, C)
  wo: Float32Array; // (C, H·hd)
  bq?: Float32Array;
  bk?: Float32Array;
  bv?: Float32Array;
}

/** The weights of a block's MLP half (a LayerParams fits). */
export interface MlpWeights {
  postNorm: Float32Array; // (C)
  wGate: Float32Array; // (Hm, C)
  wUp: Float32Array; // (Hm, C)
  wDown: Float32Array; // (C, Hm)
}

export interface BlockDims {
  B: number;
  T: number;
  C: number;
  H: number;
  KV: number;
  hd: number;
  Hm: number;
  eps: number;
  /** RoPE tables (maxLen, hd/2) from ropeTables(). */
  rope: { cos: Float32Array; sin: Float32Array };
}

/** out = x + o_proj(attention(...)); k, v feed a KV cache; `saved` (when kept) feeds the backward. */
export interface AttnBlockOut {
  out: Float32Array; // (N, C)
  k: Float32Array; // (B·KV, T, hd) post-RoPE keys
  v: Float32Array; // (B·KV, T, hd)
  saved?: {
    h: Float32Array; // (N, C) normed input
    rstd: Float32Array; // (N)
    q: Float32Array; // (B·KV, G·T, hd) post-RoPE queries, grouped
    p: Float32Array; // (B·KV, G·T, T) attention probabilities
    attn: Float32Array; // (N, H·hd) before o_proj
  };
}

export interface AttnBlockGrads {
  dx: Float32Array; // (N, C), residual path included
  dWq: Float32Array;
  dWk: Float32Array;
  dWv: Float32Array;
  dWo: Float32Array;
  dbq: Float32Array; // (H·hd)
  dbk: Float32Array; // (KV·hd)
  dbv: Float32Array;
  dNorm: Float32Array; // (C)
}

/** out = x + mlp(rmsnorm(x)); `saved` (when kept) feeds the backward. */
export interface MlpBlockOut {
  out: Float32Array; // (N, C)
  saved?: {
    h: Float32Array; // (N, C)
    rstd: Float32Array; // (N)
    gate: Float32Array; // (N, Hm)
    up: Float32Array; // (N, Hm)
    act: Float32Array; // (N, Hm)
  };
}

export interface MlpBlockGrads {
  dx: Float32Array; // (N, C), residual path included
  dWGate: Float32Array;
  dWUp: Float32Array;
  dWDown: Float32Array;
  dNorm: Float32Array; // (C)
}

/**
 * Whole halves of a transformer block as single kernels. Kernels that have them (onnxruntime: one
 * graph call per half, all element-wise work vectorised) expose `blocks`; otherwise the model
 * composes the same computation from the finer kernels (src/model/blocks.ts), which is also the
 * readable reference.
 */
/** The saved activations of a block half; a clear error when the forward did not keep them. */
export function savedOf<T>(o: { saved?: T }, what: string): T {
  if (!o.saved) throw new Error(`${what}: the forward ran without keeping activations (pass keep = true / train: true)`);
  return o.saved;
}

export interface BlockKernels {
  /** `keep`: also return what the backward needs (training); without it only out, k, v. */
  attnForward(x: Float32Array, w: AttnWeights, d: BlockDims, keep: boolean): Promise<AttnBlockOut>;
  attnBackward(dout: Float32Array, x: Float32Array, saved: AttnBlockOut, w: AttnWeights, d: BlockDims): Promise<AttnBlockGrads>;
  mlpForward(x: Float32Array, w: MlpWeights, d: BlockDims, keep: boolean): Promise<MlpBlockOut>;
  mlpBackward(dout: Float32Array, x: Float32Array, saved: MlpBlockOut, w: MlpWeights, d: BlockDims): Promise<MlpBlockGrads>;
}

export interface Kernels {
  /** Whole-block kernels, when this implementation has them (see BlockKernels). */
  readonly blocks?: BlockKernels;
  readonly name: string;
  /** C (M, N) = alpha · op(A) @ op(B), op(A) (M, K), op(B) (K, N). Returns a new array. */
  matmul(a: Float32Array, b: Float32Array, m: number, k: number, n: number, opts?: MatmulOptions): Promise<Float32Array>;
  /**
   * Batched: for each of `batch` independent products, C[i] (M, N) = alpha · op(A[i]) @ op(B[i]).
   * A is (batch, M, K) (or (batch, K, M) with transA), B is (batch, K, N) (or (batch, N, K) with transB).
   */
  batchedMatmul(
    a: Float32Array,
    b: Float32Array,
    batch: number,
    m: number,
    k: number,
    n: number,
    opts?: MatmulOptions,
  ): Promise<Float32Array>;
  /** SwiGLU MLP forward. h (N, C); wGate, wUp (Hm, C); wDown (C, Hm) in HF (out, in) layout. */
  mlpForward(
    h: Float32Array,
    wGate: Float32Array,
    wUp: Float32Array,
    wDown: Float32Array,
    N: number,
    C: number,
    Hm: number,
  ): Promise<MlpOutputs>;
  /** SwiGLU MLP backward from dout (N, C), given the forward's saved gate/up/act. */
  mlpBackward(
    dout: Float32Array,
    h: Float32Array,
    fwd: MlpSaved,
    wGate: Float32Array,
    wUp: Float32Array,
    wDown: Float32Array,
    N: number,
    C: number,
    Hm: number,
  ): Promise<MlpGrads>;
  /**
   * Causal attention over BK blocks (batch × kv heads), each with G query heads stacked so that row
   * g·T + t is head g at position t: p = softmax(scale · q k^T) restricted to columns ≤ t, o = p v.
   * q (BK, G·T, hd); k, v (BK, T, hd).
   */
  attention(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    BK: number,
    G: number,
    T: number,
    hd: number,
    scale: number,
  ): Promise<AttentionOutputs>;
  /** Backward of `attention` from dO (BK, G·T, hd). */
  attentionBackward(
    dO: Float32Array,
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    p: Float32Array,
    BK: number,
    G: number,
    T: number,
    hd: number,
    scale: number,
  ): Promise<AttentionGrads>;
  /**
   * One query per head against a KV cache (decoding): for each of BK blocks (slot × kv head) with G
   * query heads, o = softmax(scale · q k^T + mask) v over the cache's L positions.
   * q (BK, G, hd); k, v (BK, L, hd); mask (BK, L) additive: 0 for filled positions, −∞ beyond.
   */
  cachedAttention(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    mask: Float32Array,
    BK: number,
    G: number,
    L: number,
    hd: number,
    scale: number,
  ): Promise<Float32Array>;
  /** Release native resources. The kernels must not be used afterwards. */
  dispose(): Promise<void>;
}

type Matmuls = Pick<Kernels, "matmul" | "batchedMatmul">;

/** The fused cores written as products plus TypeScript element-wise ops: the reference semantics. */
export async function composedMlpForward(
  kn: Matmuls,
  h: Float32Array,
  wGate: Float32Array,
  wUp: Float32Array,
  wDown: Float32Array,
  N: number,
  C: number,
  Hm: number,
): Promise<MlpOutputs> {
  const gate = await kn.matmul(h, wGate, N, C, Hm, { transB: true });
  const up = await kn.matmul(h, wUp, N, C, Hm, { transB: true });
  const act = new Float32Array(N * Hm);
  swigluForward(gate, up, act, N * Hm);
  const out = await kn.matmul(act, wDown, N, Hm, C, { transB: true });
  return { gate, up, act, out };
}

export async function composedMlpBackward(
  kn: Matmuls,
  dout: Float32Array,
  h: Float32Array,
  fwd: MlpSaved,
  wGate: Float32Array,
  wUp: Float32Array,
  wDown: Float32Array,
  N: number,
  C: number,
  Hm: number,
): Promise<MlpGrads> {
  const dWDown = await kn.matmul(dout, fwd.act, C, N, Hm, { transA: true });
  const dact = await kn.matmul(dout, wDown, N, C, Hm);
  const dgate = new Float32Array(N * Hm);
  const dup = new Float32Array(N * Hm);
  swigluBackward(dact, fwd.gate, fwd.up, dgate, dup, N * Hm);
  const dWGate = await kn.matmul(dgate, h, Hm, N, C, { transA: true });
  const dWUp = await kn.matmul(dup, h, Hm, N, C, { transA: true });
  const dh = await kn.matmul(dgate, wGate, N, Hm, C);
  const dhu = await kn.matmul(dup, wUp, N, Hm, C);
  for (let i = 0; i < dh.length; i++) dh[i] += dhu[i];
  return { dWGate, dWUp, dWDown, dh };
}

export async function composedAttention(
  kn: Matmuls,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  BK: number,
  G: number,
  T: number,
  hd: number,
  scale: number,
): Promise<AttentionOutputs> {
  const p = await kn.batchedMatmul(q, k, BK, G * T, hd, T, { transB: true, alpha: scale });
  causalSoftmax(p, BK, G * T, T);
  const o = await kn.batchedMatmul(p, v, BK, G * T, T, hd);
  return { p, o };
}

export function referenceCachedAttention(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  mask: Float32Array,
  BK: number,
  G: number,
  L: number,
  hd: number,
  scale: number,
): Float32Array {
  const o = new Float32Array(BK * G * hd);
  const sc = new Float64Array(L);
  for (let b = 0; b < BK; b++) {
    for (let g = 0; g < G; g++) {
      const qo = (b * G + g) * hd;
      let mx = -Infinity;
      for (let j = 0; j < L; j++) {
        let d = 0;
        const ko = (b * L + j) * hd;
        for (let i = 0; i < hd; i++) d += q[qo + i] * k[ko + i];
        sc[j] = d * scale + mask[b * L + j];
        if (sc[j] > mx) mx = sc[j];
      }
      let sum = 0;
      for (let j = 0; j < L; j++) {
        sc[j] = Math.exp(sc[j] - mx);
        sum += sc[j];
      }
      for (let j = 0; j < L; j++) {
        const w = sc[j] / sum;
        if (w === 0) continue;
        const vo = (b * L + j) * hd;
        for (let i = 0; i < hd; i++) o[qo + i] += w * v[vo + i];
      }
    }
  }
  return o;
}

export async function composedAttentionBackward(
  kn: Matmuls,
  dO: Float32Array,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  p: Float32Array,
  BK: number,
  G: number,
  T: number,
  hd: number,
  scale: number,
): Promise<AttentionGrads> {
  const GT = G * T;
  const dS = await kn.batchedMatmul(dO, v, BK, GT, hd, T, { transB: true });
  const dv = await kn.batchedMatmul(p, dO, BK, T, GT, hd, { transA: true });
  softmaxBackwardInPlace(dS, p, BK * GT, T);
  const dq = await kn.batchedMatmul(dS, k, BK, GT, T, hd, { alpha: scale });
  const dk = await kn.batchedMatmul(dS, q, BK, T, GT, hd, { transA: true, alpha: scale });
  return { dq, dk, dv };
}

function checkSizes(name: string, a: Float32Array, b: Float32Array, batch: number, m: number, k: number, n: number): void {
  if (a.length !== batch * m * k) throw new Error(`${name}: A has ${a.length} elements, expected ${batch}×${m}×${k}`);
  if (b.length !== batch * k * n) throw new Error(`${name}: B has ${b.length} elements, expected ${batch}×${k}×${n}`);
}

/** Plain TypeScript kernels: slow (≈ 1–2 GFLOP/s) but obviously right. Used as the reference in tests. */
export class ReferenceKernels implements Kernels {
  readonly name = "reference";

  async matmul(a: Float32Array, b: Float32Array, m: number, k: number, n: number, opts: MatmulOptions = {}): Promise<Float32Array> {
    return this.batchedMatmul(a, b, 1, m, k, n, opts);
  }

  async batchedMatmul(
    a: Float32Array,
    b: Float32Array,
    batch: number,
    m: number,
    k: number,
    n: number,
    opts: MatmulOptions = {},
  ): Promise<Float32Array> {
    checkSizes("matmul", a, b, batch, m, k, n);
    const { transA = false, transB = false, alpha = 1 } = opts;
    const c = new Float32Array(batch * m * n);
    // Strides for op(A)[i, p] and op(B)[p, j] so one loop serves all four layouts.
    const aRow = transA ? 1 : k;
    const aCol = transA ? m : 1;
    const bRow = transB ? 1 : n;
    const bCol = transB ? k : 1;
    for (let bi = 0; bi < batch; bi++) {
      const ao = bi * m * k;
      const bo = bi * k * n;
      const co = bi * m * n;
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let p = 0; p < k; p++) s += a[ao + i * aRow + p * aCol] * b[bo + p * bRow + j * bCol];
          c[co + i * n + j] = alpha * s;
        }
      }
    }
    return c;
  }

  mlpForward(
    h: Float32Array,
    wGate: Float32Array,
    wUp: Float32Array,
    wDown: Float32Array,
    N: number,
    C: number,
    Hm: number,
  ): Promise<MlpOutputs> {
    return composedMlpForward(this, h, wGate, wUp, wDown, N, C, Hm);
  }

  mlpBackward(
    dout: Float32Array,
    h: Float32Array,
    fwd: MlpSaved,
    wGate: Float32Array,
    wUp: Float32Array,
    wDown: Float32Array,
    N: number,
    C: number,
    Hm: number,
  ): Promise<MlpGrads> {
    return composedMlpBackward(this, dout, h, fwd, wGate, wUp, wDown, N, C, Hm);
  }

  attention(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    BK: number,
    G: number,
    T: number,
    hd: number,
    scale: number,
  ): Promise<AttentionOutputs> {
    return composedAttention(this, q, k, v, BK, G, T, hd, scale);
  }

  attentionBackward(
    dO: Float32Array,
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    p: Float32Array,
    BK: number,
    G: number,
    T: number,
    hd: number,
    scale: number,
  ): Promise<AttentionGrads> {
    return composedAttentionBackward(this, dO, q, k, v, p, BK, G, T, hd, scale);
  }

  async cachedAttention(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    mask: Float32Array,
    BK: number,
    G: number,
    L: number,
    hd: number,
    scale: number,
  ): Promise<Float32Array> {
    return referenceCachedAttention(q, k, v, mask, BK, G, L, hd, scale);
  }

  async dispose(): Promise<void> {}
}
