/**
 * Matrix products on onnxruntime-node's MLAS CPU kernels.
 *
 * Each distinct (transA, transB, alpha, batched) gets one cached InferenceSession over a one-node
 * graph built in memory (see onnx-proto.ts) with symbolic dimensions, so any M, K, N (and batch)
 * reuse it. The node is `FusedMatMul` from the `com.microsoft` contrib domain: one op that takes the
 * transposes and the scale as attributes and batches over a leading dimension, and that ORT's CPU
 * provider runs as a single MlasGemmBatch call with the transposes folded into the GEMM — no extra
 * Transpose copies, no separate scaling pass. (Gemm is 2-D only; MatMul would need Transpose nodes.)
 *
 * Copies: input tensors wrap the caller's Float32Array (subarrays with a byteOffset included) without
 * a copy. Outputs are left to ORT to allocate and come back as the result's own Float32Array. A
 * pre-allocated output tensor is accepted by `session.run(feeds, { C: tensor })` (ORT writes into it
 * in place, subarrays too; the shape must match exactly), but `run` still returns a different tensor
 * over a separate buffer. Measured with rounds interleaved (bench/kernels.ts, "output path"), a
 * pre-allocated output — fresh each call, as `Kernels` must return a new array, or even one reused
 * buffer — was never consistently faster than ORT's own allocation, and a fresh one is clearly
 * slower for large outputs (JS zero-fills it first), so ORT allocates.
 *
 * Threads: intra-op = `os.availableParallelism()` by default, inter-op 1, sequential execution.
 * Thread-pool spinning is OFF by default: every session owns its own intra-op pool, and with spinning
 * on, the pool of the session that ran last keeps a core busy while the next session (another layout)
 * runs — measured here at ≈ 2× slower when layouts alternate, which is what a forward/backward does.
 *
 * onnxruntime-node is imported lazily, so importing this module (e.g. for `createKernels("reference")`)
 * does not load the native library.
 */
import os from "node:os";
import type { InferenceSession, Tensor } from "onnxruntime-node";
import type {
  AttentionGrads,
  AttentionOutputs,
  AttnBlockGrads,
  AttnBlockOut,
  AttnWeights,
  BlockDims,
  BlockKernels,
  Kernels,
  MatmulOptions,
  MlpBlockGrads,
  MlpBlockOut,
  MlpGrads,
  MlpOutputs,
  MlpSaved,
  MlpWeights,
} from "./kernels.js";
import { ReferenceKernels, savedOf } from "./kernels.js";
import { encodeModel } from "./onnx-proto.js";
import {
  attentionBackwardGraph,
  attentionForwardGraph,
  attnBlockBackwardGraph,
  attnBlockForwardGraph,
  cachedAttentionGraph,
  mlpBackwardGraph,
  mlpBlockBackwardGraph,
  mlpBlockForwardGraph,
  mlpForwardGraph,
} from "./ort-graphs.js";

export type OrtModule = typeof import("onnxruntime-node");

/** Load onnxruntime-node (CommonJS): depending on the loader its exports sit on `default` or not. */
export async function loadOrt(): Promise<OrtModule> {
  const mod = await import("onnxruntime-node");
  return ((mod as unknown as { default?: OrtModule }).default ?? mod) as OrtModule;
}

export interface OrtKernelsOptions {
  /** Intra-op threads (MLAS GEMM parallelism). Default: os.availableParallelism(). */
  threads?: number;
  /** Let ORT's idle intra-op threads spin (session.intra_op.allow_spinning). Default false; see above. */
  spinning?: boolean;
  /** Most sessions kept; the least recently used one is released past this. Default 64. */
  maxSessions?: number;
}

interface Variant {
  transA: boolean;
  transB: boolean;
  alpha: number;
  batched: boolean;
}

/** The one-node ONNX model for a variant: C = alpha · op(A) @ op(B), symbolic dims. */
export function matmulModel(v: Variant): Uint8Array {
  const pre = v.batched ? ["batch"] : [];
  return encodeModel({
    irVersion: 8,
    opsetImports: [
      { domain: "", version: 17 },
      { domain: "com.microsoft", version: 1 },
    ],
    graph: {
      name: "srlm_matmul",
      nodes: [
        {
          opType: "FusedMatMul",
          domain: "com.microsoft",
          name: "matmul",
          inputs: ["A", "B"],
          outputs: ["C"],
          attributes: [
            { name: "transA", type: "int", value: v.transA ? 1 : 0 },
            { name: "transB", type: "int", value: v.transB ? 1 : 0 },
            { name: "alpha", type: "float", value: v.alpha },
          ],
        },
      ],
      inputs: [
        { name: "A", shape: [...pre, v.transA ? "K" : "M", v.transA ? "M" : "K"] },
        { name: "B", shape: [...pre, v.transB ? "N" : "K", v.transB ? "K" : "N"] },
      ],
      outputs: [{ name: "C", shape: [...pre, "M", "N"] }],
    },
  });
}

function checkDim(name: string, what: string, d: number): void {
  if (!Number.isSafeInteger(d) || d < 0) throw new Error(`${name}: ${what} must be a non-negative integer, got ${d}`);
}

function checkSizes(name: string, a: Float32Array, b: Float32Array, batch: number, m: number, k: number, n: number): void {
  if (!(a instanceof Float32Array)) throw new Error(`${name}: A must be a Float32Array`);
  if (!(b instanceof Float32Array)) throw new Error(`${name}: B must be a Float32Array`);
  checkDim(name, "batch", batch);
  checkDim(name, "M", m);
  checkDim(name, "K", k);
  checkDim(name, "N", n);
  // Same wording as ReferenceKernels.
  if (a.length !== batch * m * k) throw new Error(`${name}: A has ${a.length} elements, expected ${batch}×${m}×${k}`);
  if (b.length !== batch * k * n) throw new Error(`${name}: B has ${b.length} elements, expected ${batch}×${k}×${n}`);
}

const ONE = Float32Array.of(1);

function expectSize(name: string, arrays: Record<string, [Float32Array, number]>): void {
  for (const [what, [a, n]] of Object.entries(arrays)) {
    if (!(a instanceof Float32Array)) throw new Error(`${name}: ${what} must be a Float32Array`);
    if (a.length !== n) throw new Error(`${name}: ${what} has ${a.length} elements, expected ${n}`);
  }
}

export class OrtKernels implements Kernels {
  readonly name = "ort";
  private readonly sessions = new Map<string, Promise<InferenceSession>>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly masks = new Map<string, Float32Array>();
  private readonly ropeFull = new WeakMap<Float32Array, Map<number, { cos: Float32Array; sin: Float32Array }>>();
  private readonly zeros = new Map<number, Float32Array>();
  /** Whole-block kernels: each half of a transformer block is one graph call. */
  readonly blocks: BlockKernels = {
    attnForward: (x, w, d, keep) => this.attnBlockForward(x, w, d, keep),
    attnBackward: (dout, x, saved, w, d) => this.attnBlockBackward(dout, x, saved, w, d),
    mlpForward: (x, w, d, keep) => this.mlpBlockForward(x, w, d, keep),
    mlpBackward: (dout, x, saved, w, d) => this.mlpBlockBackward(dout, x, saved, w, d),
  };
  private readonly onesCache = new Map<number, Float32Array>();
  private disposed = false;

  private constructor(
    private readonly ort: OrtModule,
    private readonly sessionOptions: InferenceSession.SessionOptions,
    private readonly maxSessions: number,
  ) {}

  static async create(opts: OrtKernelsOptions = {}): Promise<OrtKernels> {
    const threads = opts.threads ?? os.availableParallelism();
    if (!Number.isSafeInteger(threads) || threads < 1) throw new Error(`OrtKernels: threads must be ≥ 1, got ${threads}`);
    const ort = await loadOrt();
    const sessionOptions: InferenceSession.SessionOptions = {
      executionProviders: ["cpu"],
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: "sequential",
      graphOptimizationLevel: "all",
      extra: { session: { intra_op: { allow_spinning: opts.spinning ? "1" : "0" } } },
    };
    const k = new OrtKernels(ort, sessionOptions, opts.maxSessions ?? 64);
    // Fail now, not at the first product, if this onnxruntime build lacks FusedMatMul.
    await k.session({ transA: false, transB: false, alpha: 1, batched: false });
    return k;
  }

  /** Number of sessions built so far (for tests). */
  get sessionCount(): number {
    return this.sessions.size;
  }

  async matmul(a: Float32Array, b: Float32Array, m: number, k: number, n: number, opts: MatmulOptions = {}): Promise<Float32Array> {
    checkSizes("matmul", a, b, 1, m, k, n);
    return this.track(this.run(a, b, 1, m, k, n, opts, false));
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
    checkSizes("batchedMatmul", a, b, batch, m, k, n);
    return this.track(this.run(a, b, batch, m, k, n, opts, true));
  }

  async mlpForward(
    h: Float32Array,
    wg: Float32Array,
    wu: Float32Array,
    wd: Float32Array,
    N: number,
    C: number,
    Hm: number,
  ): Promise<MlpOutputs> {
    expectSize("mlpForward", { h: [h, N * C], wGate: [wg, Hm * C], wUp: [wu, Hm * C], wDown: [wd, C * Hm] });
    const r = await this.runGraph("mlp_fwd", mlpForwardGraph, {
      h: this.t(h, [N, C]),
      wg: this.t(wg, [Hm, C]),
      wu: this.t(wu, [Hm, C]),
      wd: this.t(wd, [C, Hm]),
    });
    return { gate: r.gate, up: r.up, act: r.act, out: r.out };
  }

  async mlpBackward(
    dout: Float32Array,
    h: Float32Array,
    fwd: MlpSaved,
    wg: Float32Array,
    wu: Float32Array,
    wd: Float32Array,
    N: number,
    C: number,
    Hm: number,
  ): Promise<MlpGrads> {
    expectSize("mlpBackward", {
      dout: [dout, N * C],
      h: [h, N * C],
      gate: [fwd.gate, N * Hm],
      up: [fwd.up, N * Hm],
      act: [fwd.act, N * Hm],
    });
    const r = await this.runGraph("mlp_bwd", mlpBackwardGraph, {
      dout: this.t(dout, [N, C]),
      h: this.t(h, [N, C]),
      gate: this.t(fwd.gate, [N, Hm]),
      up: this.t(fwd.up, [N, Hm]),
      act: this.t(fwd.act, [N, Hm]),
      wg: this.t(wg, [Hm, C]),
      wu: this.t(wu, [Hm, C]),
      wd: this.t(wd, [C, Hm]),
      one: this.t(ONE, [1]),
    });
    return { dWGate: r.dWg, dWUp: r.dWu, dWDown: r.dWd, dh: r.dh };
  }

  async attention(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    BK: number,
    G: number,
    T: number,
    hd: number,
    scale: number,
  ): Promise<AttentionOutputs> {
    expectSize("attention", { q: [q, BK * G * T * hd], k: [k, BK * T * hd], v: [v, BK * T * hd] });
    const r = await this.runGraph(`attn_fwd:${Math.fround(scale)}`, () => attentionForwardGraph(scale), {
      q: this.t(q, [BK, G * T, hd]),
      k: this.t(k, [BK, T, hd]),
      v: this.t(v, [BK, T, hd]),
      mask: this.t(this.causalMask(G, T), [G * T, T]),
    });
    return { p: r.p, o: r.o };
  }

  async attentionBackward(
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
    expectSize("attentionBackward", {
      dO: [dO, BK * G * T * hd],
      q: [q, BK * G * T * hd],
      k: [k, BK * T * hd],
      v: [v, BK * T * hd],
      p: [p, BK * G * T * T],
    });
    const r = await this.runGraph(`attn_bwd:${Math.fround(scale)}`, () => attentionBackwardGraph(scale), {
      dO: this.t(dO, [BK, G * T, hd]),
      q: this.t(q, [BK, G * T, hd]),
      k: this.t(k, [BK, T, hd]),
      v: this.t(v, [BK, T, hd]),
      p: this.t(p, [BK, G * T, T]),
      ones: this.t(this.ones(T), [T, 1]),
    });
    return { dq: r.dq, dk: r.dk, dv: r.dv };
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
    expectSize("cachedAttention", { q: [q, BK * G * hd], k: [k, BK * L * hd], v: [v, BK * L * hd], mask: [mask, BK * L] });
    const r = await this.runGraph(`attn_cached:${Math.fround(scale)}`, () => cachedAttentionGraph(scale), {
      q: this.t(q, [BK, G, hd]),
      k: this.t(k, [BK, L, hd]),
      v: this.t(v, [BK, L, hd]),
      mask: this.t(mask, [BK, 1, L]),
    });
    return r.o;
  }

  private async attnBlockForward(x: Float32Array, w: AttnWeights, d: BlockDims, keep: boolean): Promise<AttnBlockOut> {
    const { B, T, C, H, KV, hd } = d;
    const N = B * T;
    const G = H / KV;
    expectSize("attnForward", { x: [x, N * C] });
    const scale = 1 / Math.sqrt(hd);
    const { cos, sin } = this.ropeTables(d);
    const r = await this.runGraph(`attn_block_fwd:${keep}:${Math.fround(scale)}`, () => attnBlockForwardGraph(scale, keep), {
      x: this.t(x, [N, C]),
      wn: this.t(w.inputNorm, [C]),
      wq: this.t(w.wq, [H * hd, C]),
      wk: this.t(w.wk, [KV * hd, C]),
      wv: this.t(w.wv, [KV * hd, C]),
      wo: this.t(w.wo, [C, H * hd]),
      bq: this.t(w.bq ?? this.zerosOf(H * hd), [H * hd]),
      bk: this.t(w.bk ?? this.zerosOf(KV * hd), [KV * hd]),
      bv: this.t(w.bv ?? this.zerosOf(KV * hd), [KV * hd]),
      cos: this.t(cos, [T, 1, hd]),
      sin: this.t(sin, [T, 1, hd]),
      mask: this.t(this.causalMask(G, T), [G * T, T]),
      eps: this.t(Float32Array.of(d.eps), [1]),
      sQ: this.shape([B, T, H, hd]),
      sQg: this.shape([B, T, KV, G, hd]),
      sQflat: this.shape([B * KV, G * T, hd]),
      sK: this.shape([B, T, KV, hd]),
      sKflat: this.shape([B * KV, T, hd]),
      sO5: this.shape([B, KV, G, T, hd]),
      sN: this.shape([N, H * hd]),
    });
    return { out: r.out, k: r.k, v: r.v, saved: keep ? { h: r.h, rstd: r.rstd, q: r.q, p: r.p, attn: r.attn } : undefined };
  }

  private async attnBlockBackward(
    dout: Float32Array,
    x: Float32Array,
    fwd: AttnBlockOut,
    w: AttnWeights,
    d: BlockDims,
  ): Promise<AttnBlockGrads> {
    const s = savedOf(fwd, "attention backward");
    const { B, T, C, H, KV, hd } = d;
    const N = B * T;
    const G = H / KV;
    expectSize("attnBackward", { dout: [dout, N * C], x: [x, N * C] });
    const scale = 1 / Math.sqrt(hd);
    const { cos, sin } = this.ropeTables(d);
    const r = await this.runGraph(`attn_block_bwd:${Math.fround(scale)}`, () => attnBlockBackwardGraph(scale), {
      dout: this.t(dout, [N, C]),
      x: this.t(x, [N, C]),
      rstd: this.t(s.rstd, [N, 1]),
      h: this.t(s.h, [N, C]),
      wn: this.t(w.inputNorm, [C]),
      wq: this.t(w.wq, [H * hd, C]),
      wk: this.t(w.wk, [KV * hd, C]),
      wv: this.t(w.wv, [KV * hd, C]),
      wo: this.t(w.wo, [C, H * hd]),
      q: this.t(s.q, [B * KV, G * T, hd]),
      k: this.t(fwd.k, [B * KV, T, hd]),
      v: this.t(fwd.v, [B * KV, T, hd]),
      p: this.t(s.p, [B * KV, G * T, T]),
      attn: this.t(s.attn, [N, H * hd]),
      cos: this.t(cos, [T, 1, hd]),
      sin: this.t(sin, [T, 1, hd]),
      ones: this.t(this.ones(T), [T, 1]),
      onesN: this.t(this.ones(N), [1, N]),
      sQ: this.shape([B, T, H, hd]),
      sQg: this.shape([B, T, KV, G, hd]),
      sQflat: this.shape([B * KV, G * T, hd]),
      sK4t: this.shape([B, KV, T, hd]),
      sO5: this.shape([B, KV, G, T, hd]),
      sN: this.shape([N, H * hd]),
      sNK: this.shape([N, KV * hd]),
    });
    return { dx: r.dx, dWq: r.dWq, dWk: r.dWk, dWv: r.dWv, dWo: r.dWo, dbq: r.dbq, dbk: r.dbk, dbv: r.dbv, dNorm: r.dwn };
  }

  private async mlpBlockForward(x: Float32Array, w: MlpWeights, d: BlockDims, keep: boolean): Promise<MlpBlockOut> {
    const { B, T, C, Hm } = d;
    const N = B * T;
    expectSize("mlpBlockForward", { x: [x, N * C] });
    const r = await this.runGraph(`mlp_block_fwd:${keep}`, () => mlpBlockForwardGraph(keep), {
      x: this.t(x, [N, C]),
      wn: this.t(w.postNorm, [C]),
      wg: this.t(w.wGate, [Hm, C]),
      wu: this.t(w.wUp, [Hm, C]),
      wd: this.t(w.wDown, [C, Hm]),
      eps: this.t(Float32Array.of(d.eps), [1]),
    });
    return { out: r.out, saved: keep ? { h: r.h, rstd: r.rstd, gate: r.gate, up: r.up, act: r.act } : undefined };
  }

  private async mlpBlockBackward(
    dout: Float32Array,
    x: Float32Array,
    fwd: MlpBlockOut,
    w: MlpWeights,
    d: BlockDims,
  ): Promise<MlpBlockGrads> {
    const s = savedOf(fwd, "MLP backward");
    const { B, T, C, Hm } = d;
    const N = B * T;
    expectSize("mlpBlockBackward", { dout: [dout, N * C], x: [x, N * C] });
    const r = await this.runGraph("mlp_block_bwd", mlpBlockBackwardGraph, {
      dout: this.t(dout, [N, C]),
      x: this.t(x, [N, C]),
      rstd: this.t(s.rstd, [N, 1]),
      h: this.t(s.h, [N, C]),
      wn: this.t(w.postNorm, [C]),
      gate: this.t(s.gate, [N, Hm]),
      up: this.t(s.up, [N, Hm]),
      act: this.t(s.act, [N, Hm]),
      wg: this.t(w.wGate, [Hm, C]),
      wu: this.t(w.wUp, [Hm, C]),
      wd: this.t(w.wDown, [C, Hm]),
      one: this.t(ONE, [1]),
      onesN: this.t(this.ones(N), [1, N]),
    });
    return { dx: r.dx, dWGate: r.dWg, dWUp: r.dWu, dWDown: r.dWd, dNorm: r.dwn };
  }

  /** Full-width RoPE tables (T, hd) for the rotate-half form x·cos + rot(x)·sin, from the model's (maxLen, hd/2). */
  private ropeTables(d: BlockDims): { cos: Float32Array; sin: Float32Array } {
    let byT = this.ropeFull.get(d.rope.cos);
    if (!byT) {
      byT = new Map();
      this.ropeFull.set(d.rope.cos, byT);
    }
    let r = byT.get(d.T);
    if (!r) {
      const half = d.hd / 2;
      const cos = new Float32Array(d.T * d.hd);
      const sin = new Float32Array(d.T * d.hd);
      for (let t = 0; t < d.T; t++) {
        for (let i = 0; i < half; i++) {
          const c = d.rope.cos[t * half + i];
          const s = d.rope.sin[t * half + i];
          cos[t * d.hd + i] = c;
          cos[t * d.hd + half + i] = c;
          sin[t * d.hd + i] = s;
          sin[t * d.hd + half + i] = s;
        }
      }
      r = { cos, sin };
      byT.set(d.T, r);
    }
    return r;
  }

  private zerosOf(n: number): Float32Array {
    let z = this.zeros.get(n);
    if (!z) {
      z = new Float32Array(n);
      if (this.zeros.size > 64) this.zeros.clear();
      this.zeros.set(n, z);
    }
    return z;
  }

  private shape(dims: number[]): Tensor {
    return new this.ort.Tensor("int64", BigInt64Array.from(dims.map(BigInt)), [dims.length]);
  }

  /** Additive causal mask (G·T, T): 0 where column j ≤ row's position t = r mod T, −∞ above. */
  private causalMask(G: number, T: number): Float32Array {
    const key = `${G}x${T}`;
    let m = this.masks.get(key);
    if (!m) {
      m = new Float32Array(G * T * T);
      for (let r = 0; r < G * T; r++) m.fill(Number.NEGATIVE_INFINITY, r * T + (r % T) + 1, (r + 1) * T);
      if (this.masks.size > 64) this.masks.clear();
      this.masks.set(key, m);
    }
    return m;
  }

  private ones(T: number): Float32Array {
    let o = this.onesCache.get(T);
    if (!o) {
      o = new Float32Array(T).fill(1);
      if (this.onesCache.size > 64) this.onesCache.clear();
      this.onesCache.set(T, o);
    }
    return o;
  }

  private t(data: Float32Array, dims: number[]): Tensor {
    return new this.ort.Tensor("float32", data, dims);
  }

  private async runGraph(key: string, build: () => Uint8Array, feeds: Record<string, Tensor>): Promise<Record<string, Float32Array>> {
    if (this.disposed) throw new Error("OrtKernels: used after dispose()");
    const session = await this.cachedSession(key, build);
    const out = await this.track(session.run(feeds));
    const res: Record<string, Float32Array> = {};
    for (const [name, t] of Object.entries(out)) res[name] = t.data as Float32Array;
    return res;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await Promise.allSettled([...this.inFlight]);
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of await Promise.allSettled(sessions)) {
      if (s.status === "fulfilled") await s.value.release();
    }
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inFlight.add(p);
    const done = () => this.inFlight.delete(p);
    p.then(done, done);
    return p;
  }

  private async run(
    a: Float32Array,
    b: Float32Array,
    batch: number,
    m: number,
    k: number,
    n: number,
    opts: MatmulOptions,
    batched: boolean,
  ): Promise<Float32Array> {
    if (this.disposed) throw new Error("OrtKernels: used after dispose()");
    const transA = opts.transA ?? false;
    const transB = opts.transB ?? false;
    const alpha = opts.alpha ?? 1;
    if (typeof alpha !== "number" || !Number.isFinite(alpha)) throw new Error(`matmul: alpha must be a finite number, got ${alpha}`);
    // Empty products: nothing for ORT to do (and zero-size tensors are its least-tested path).
    if (batch === 0 || m === 0 || n === 0 || k === 0) return new Float32Array(batch * m * n);

    const session = await this.session({ transA, transB, alpha, batched });
    const { Tensor } = this.ort;
    const pre = batched ? [batch] : [];
    // The Tensor wraps the typed array as is; the native side reads buffer + byteOffset, no copy.
    const A: Tensor = new Tensor("float32", a, [...pre, transA ? k : m, transA ? m : k]);
    const B: Tensor = new Tensor("float32", b, [...pre, transB ? n : k, transB ? k : n]);
    const out = await session.run({ A, B });
    const c = out.C;
    if (!c || !(c.data instanceof Float32Array) || c.data.length !== batch * m * n) {
      throw new Error(`OrtKernels: unexpected output for ${batch}×${m}×${k}×${n}`);
    }
    return c.data;
  }

  private session(v: Variant): Promise<InferenceSession> {
    // alpha is stored as a float32 attribute, so key on its float32 value.
    const key = `${v.transA ? "T" : "N"}${v.transB ? "T" : "N"}${v.batched ? "b" : ""}:${Math.fround(v.alpha)}`;
    return this.cachedSession(key, () => matmulModel(v));
  }

  /** The session for `key`, built from `build()` on first use; least recently used evicted past the cap. */
  private cachedSession(key: string, build: () => Uint8Array): Promise<InferenceSession> {
    let s = this.sessions.get(key);
    if (s) {
      // Refresh LRU position (Map keeps insertion order).
      this.sessions.delete(key);
      this.sessions.set(key, s);
      return s;
    }
    s = this.ort.InferenceSession.create(build(), this.sessionOptions);
    this.sessions.set(key, s);
    s.catch(() => this.sessions.get(key) === s && this.sessions.delete(key));
    if (this.sessions.size > this.maxSessions) this.evictOldest();
    return s;
  }

  private evictOldest(): void {
    const [key, old] = this.sessions.entries().next().value as [string, Promise<InferenceSession>];
    this.sessions.delete(key);
    // Runs already queued on it must finish first; release once nothing is in flight on it.
    const pending = [...this.inFlight];
    void Promise.allSettled(pending)
      .then(() => old)
      .then((s) => s.release())
      .catch(() => {});
  }
}

export type KernelsKind = "ort" | "reference";

/** The kernels the engine runs on: "ort" (default, onnxruntime-node) or "reference" (plain TS). */
export async function createKernels(kind: KernelsKind = "ort", opts: OrtKernelsOptions = {}): Promise<Kernels> {
  switch (kind) {
    case "ort":
      return OrtKernels.create(opts);
    case "reference":
      return new ReferenceKernels();
    default:
      throw new Error(`createKernels: unknown kind ${String(kind)} (expected "ort" or "reference")`);
  }
}
