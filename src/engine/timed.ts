import type { Kernels, MatmulOptions } from "./kernels.js";

/**
 * Wraps kernels to measure how much wall time is spent inside them: the time during which at least
 * one kernel call is in flight (calls issued together with Promise.all overlap, so per-call times
 * would double count). Used by the benchmark to report the share of a step spent in matmuls.
 */
export class TimedKernels implements Kernels {
  readonly name: string;
  busyMs = 0;
  calls = 0;
  flops = 0;
  private inFlight = 0;
  private since = 0;

  constructor(readonly inner: Kernels) {
    this.name = `timed(${inner.name})`;
  }

  reset(): void {
    this.busyMs = 0;
    this.calls = 0;
    this.flops = 0;
  }

  private async track<T>(flops: number, run: () => Promise<T>): Promise<T> {
    if (this.inFlight++ === 0) this.since = performance.now();
    this.calls++;
    this.flops += flops;
    try {
      return await run();
    } finally {
      if (--this.inFlight === 0) this.busyMs += performance.now() - this.since;
    }
  }

  matmul(a: Float32Array, b: Float32Array, m: number, k: number, n: number, opts?: MatmulOptions): Promise<Float32Array> {
    return this.track(2 * m * k * n, () => this.inner.matmul(a, b, m, k, n, opts));
  }

  batchedMatmul(a: Float32Array, b: Float32Array, batch: number, m: number, k: number, n: number, opts?: MatmulOptions): Promise<Float32Array> {
    return this.track(2 * batch * m * k * n, () => this.inner.batchedMatmul(a, b, batch, m, k, n, opts));
  }

  dispose(): Promise<void> {
    return this.inner.dispose();
  }
}
