/**
 * The heavy operations of the engine: dense matrix products. Everything else (norms, RoPE,
 * activations, softmax) is element-wise TypeScript in ops.ts.
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

export interface Kernels {
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
  /** Release native resources. The kernels must not be used afterwards. */
  dispose(): Promise<void>;
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

  async dispose(): Promise<void> {}
}
