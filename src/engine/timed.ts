import type { AttentionGrads, AttentionOutputs, BlockKernels, Kernels, MatmulOptions, MlpGrads, MlpOutputs, MlpSaved } from "./kernels.js";

/**
 * Wraps kernels to measure how much wall time is spent inside them: the time during which at least
 * one kernel call is in flight (calls issued together with Promise.all overlap, so per-call times
 * would double count). Used by the benchmark to report the share of a step spent in kernels
 * (matrix products and the fused MLP / attention cores).
 */
export class TimedKernels implements Kernels {
  readonly name: string;
  busyMs = 0;
  calls = 0;
  flops = 0;
  /** Wall time per kernel (sequential calls only: concurrent ones overlap). */
  readonly byOp = new Map<string, { ms: number; calls: number; flops: number }>();
  private inFlight = 0;
  private since = 0;

  readonly blocks?: BlockKernels;

  constructor(readonly inner: Kernels) {
    this.name = `timed(${inner.name})`;
    const b = inner.blocks;
    if (b) {
      // FLOPs of the matrix products only (the element-wise work is not counted).
      const attnF = (d: { B: number; T: number; C: number; H: number; KV: number; hd: number }) =>
        2 * d.B * d.T * d.C * (2 * d.H * d.hd + 2 * d.KV * d.hd) + 4 * d.B * d.H * d.T * d.T * d.hd;
      const mlpF = (d: { B: number; T: number; C: number; Hm: number }) => 6 * d.B * d.T * d.C * d.Hm;
      this.blocks = {
        attnForward: (x, w, d, keep) => this.track(attnF(d), () => b.attnForward(x, w, d, keep), "attnBlockForward"),
        attnBackward: (dout, x, s, w, d) => this.track(2 * attnF(d), () => b.attnBackward(dout, x, s, w, d), "attnBlockBackward"),
        mlpForward: (x, w, d, keep) => this.track(mlpF(d), () => b.mlpForward(x, w, d, keep), "mlpBlockForward"),
        mlpBackward: (dout, x, s, w, d) => this.track(2 * mlpF(d), () => b.mlpBackward(dout, x, s, w, d), "mlpBlockBackward"),
      };
    }
  }

  reset(): void {
    this.busyMs = 0;
    this.calls = 0;
    this.flops = 0;
    this.byOp.clear();
  }

  private async track<T>(flops: number, run: () => Promise<T>, op: string): Promise<T> {
    const t0 = performance.now();
    if (this.inFlight++ === 0) this.since = t0;
    this.calls++;
    this.flops += flops;
    try {
      return await run();
    } finally {
      const now = performance.now();
      if (--this.inFlight === 0) this.busyMs += now - this.since;
      const e = this.byOp.get(op) ?? { ms: 0, calls: 0, flops: 0 };
      e.ms += now - t0;
      e.calls++;
      e.flops += flops;
      this.byOp.set(op, e);
    }
  }

  matmul(a: Float32Array, b: Float32Array, m: number, k: number, n: number, opts?: MatmulOptions): Promise<Float32Array> {
    return this.track(2 * m * k * n, () => this.inner.matmul(a, b, m, k, n, opts), "matmul");
  }

  batchedMatmul(
    a: Float32Array,
    b: Float32Array,
    batch: number,
    m: number,
    k: number,
    n: number,
    opts?: MatmulOptions,
  ): Promise<Float32Array> {
    return this.track(2 * batch * m * k * n, () => this.inner.batchedMatmul(a, b, batch, m, k, n, opts), "batchedMatmul");
  }

  mlpForward(h: Float32Array, wg: Float32Array, wu: Float32Array, wd: Float32Array, N: number, C: number, Hm: number): Promise<MlpOutputs> {
    return this.track(6 * N * C * Hm, () => this.inner.mlpForward(h, wg, wu, wd, N, C, Hm), "mlpForward");
  }

  mlpBackward(
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
    return this.track(12 * N * C * Hm, () => this.inner.mlpBackward(dout, h, fwd, wg, wu, wd, N, C, Hm), "mlpBackward");
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
    return this.track(4 * BK * G * T * T * hd, () => this.inner.attention(q, k, v, BK, G, T, hd, scale), "attention");
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
    return this.track(
      8 * BK * G * T * T * hd,
      () => this.inner.attentionBackward(dO, q, k, v, p, BK, G, T, hd, scale),
      "attentionBackward",
    );
  }

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
  ): Promise<Float32Array> {
    return this.track(4 * BK * G * L * hd, () => this.inner.cachedAttention(q, k, v, mask, BK, G, L, hd, scale), "cachedAttention");
  }

  dispose(): Promise<void> {
    return this.inner.dispose();
  }
}
