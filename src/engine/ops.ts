/**
 * Element-wise kernels in plain TypeScript over Float32Array. Each takes its outputs as arguments
 * (callers reuse buffers) and loops with plain indices: no per-element allocation, no closures.
 * Rows are contiguous: a (rows, C) matrix is `rows` runs of C floats.
 */

/** y = w ⊙ x / sqrt(mean(x²) + eps) per row. Saves 1/rms per row in `rstd` for the backward. */
export function rmsnormForward(
  x: Float32Array, // (rows, C)
  w: Float32Array, // (C)
  rows: number,
  C: number,
  eps: number,
  y: Float32Array, // (rows, C) out
  rstd: Float32Array, // (rows) out
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * C;
    let ss = 0;
    for (let i = 0; i < C; i++) ss += x[o + i] * x[o + i];
    const s = 1 / Math.sqrt(ss / C + eps);
    rstd[r] = s;
    for (let i = 0; i < C; i++) y[o + i] = x[o + i] * s * w[i];
  }
}

/**
 * Backward of rmsnorm. With n = x·s (s = rstd), y = w ⊙ n:
 *   dw += Σ_rows dy ⊙ n
 *   dx += s · (w⊙dy − n · mean(w⊙dy ⊙ n))
 * Accumulates into dx and dw.
 */
export function rmsnormBackward(
  dy: Float32Array, // (rows, C)
  x: Float32Array, // (rows, C)
  w: Float32Array, // (C)
  rstd: Float32Array, // (rows)
  rows: number,
  C: number,
  dx: Float32Array, // (rows, C) accumulated
  dw: Float32Array, // (C) accumulated
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * C;
    const s = rstd[r];
    let dot = 0;
    for (let i = 0; i < C; i++) {
      const n = x[o + i] * s;
      const g = dy[o + i] * w[i];
      dot += g * n;
      dw[i] += dy[o + i] * n;
    }
    const m = dot / C;
    for (let i = 0; i < C; i++) {
      dx[o + i] += s * (dy[o + i] * w[i] - x[o + i] * s * m);
    }
  }
}

/** cos/sin tables (maxLen, hd/2) for rotate-half RoPE: angle = pos · theta^(−2i/hd). */
export function ropeTables(maxLen: number, headDim: number, theta: number): { cos: Float32Array; sin: Float32Array } {
  const half = headDim / 2;
  const cos = new Float32Array(maxLen * half);
  const sin = new Float32Array(maxLen * half);
  for (let i = 0; i < half; i++) {
    // HF computes inv_freq in float32; round it the same way so our angles match theirs.
    const invFreq = Math.fround(1 / theta ** ((2 * i) / headDim));
    for (let p = 0; p < maxLen; p++) {
      const a = p * invFreq;
      cos[p * half + i] = Math.cos(a);
      sin[p * half + i] = Math.sin(a);
    }
  }
  return { cos, sin };
}

/**
 * Rotate one head vector (hd floats at `src[so..]`) by position `pos`, writing to `dst[do..]`
 * (may alias). HF rotate_half layout: pairs are (i, i + hd/2). `sign` = +1 forward, −1 for the
 * backward (the transpose of a rotation is the rotation by −angle).
 */
export function ropeRotate(
  src: Float32Array,
  so: number,
  dst: Float32Array,
  dOff: number,
  pos: number,
  half: number,
  cos: Float32Array,
  sin: Float32Array,
  sign: number,
): void {
  const t = pos * half;
  for (let i = 0; i < half; i++) {
    const c = cos[t + i];
    const s = sign * sin[t + i];
    const a = src[so + i];
    const b = src[so + i + half];
    dst[dOff + i] = a * c - b * s;
    dst[dOff + i + half] = b * c + a * s;
  }
}

/** act = silu(gate) ⊙ up, silu(z) = z·σ(z). */
export function swigluForward(gate: Float32Array, up: Float32Array, act: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const z = gate[i];
    act[i] = (z / (1 + Math.exp(-z))) * up[i];
  }
}

/** dgate = dact·up·σ(z)(1 + z(1−σ(z))), dup = dact·silu(z). Overwrites dgate and dup. */
export function swigluBackward(
  dact: Float32Array,
  gate: Float32Array,
  up: Float32Array,
  dgate: Float32Array,
  dup: Float32Array,
  n: number,
): void {
  for (let i = 0; i < n; i++) {
    const z = gate[i];
    const sg = 1 / (1 + Math.exp(-z));
    const d = dact[i];
    dup[i] = d * z * sg;
    dgate[i] = d * up[i] * sg * (1 + z * (1 - sg));
  }
}

/**
 * Per-row log-softmax gathered at the target: logp[r] = x[r, t_r] − logsumexp(x[r, :]).
 * Rows with target < 0 are ignored (logp 0). Saves logsumexp per row in `lse` for the backward.
 */
export function logSoftmaxGather(
  logits: Float32Array, // (rows, V)
  targets: Int32Array, // (rows)
  rows: number,
  V: number,
  logp: Float32Array, // (rows) out
  lse: Float32Array, // (rows) out
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * V;
    let mx = -Infinity;
    for (let v = 0; v < V; v++) if (logits[o + v] > mx) mx = logits[o + v];
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(logits[o + v] - mx);
    const l = mx + Math.log(s);
    lse[r] = l;
    const t = targets[r];
    logp[r] = t >= 0 ? logits[o + t] - l : 0;
  }
}

/**
 * Backward of logSoftmaxGather: dlogits[r, v] = g_r · (1[v = t_r] − softmax(x_r)[v]).
 * Overwrites dlogits; rows with no target or zero gradient get zeros.
 */
export function logSoftmaxGatherBackward(
  dlogp: Float32Array, // (rows)
  logits: Float32Array, // (rows, V)
  lse: Float32Array, // (rows)
  targets: Int32Array, // (rows)
  rows: number,
  V: number,
  dlogits: Float32Array, // (rows, V) out
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * V;
    const g = dlogp[r];
    const t = targets[r];
    if (g === 0 || t < 0) {
      dlogits.fill(0, o, o + V);
      continue;
    }
    const l = lse[r];
    for (let v = 0; v < V; v++) dlogits[o + v] = -g * Math.exp(logits[o + v] - l);
    dlogits[o + t] += g;
  }
}

/**
 * In-place causal softmax over the rows of a batch of (R, T) score blocks, where row r of a block
 * is the query at position r % T (rows of G query heads sharing one kv head are stacked: r = g·T + t).
 * Columns j > t are set to 0.
 */
export function causalSoftmax(scores: Float32Array, blocks: number, R: number, T: number): void {
  for (let b = 0; b < blocks; b++) {
    for (let r = 0; r < R; r++) {
      const o = (b * R + r) * T;
      const t = r % T;
      let mx = -Infinity;
      for (let j = 0; j <= t; j++) if (scores[o + j] > mx) mx = scores[o + j];
      let s = 0;
      for (let j = 0; j <= t; j++) {
        const e = Math.exp(scores[o + j] - mx);
        scores[o + j] = e;
        s += e;
      }
      const inv = 1 / s;
      for (let j = 0; j <= t; j++) scores[o + j] *= inv;
      for (let j = t + 1; j < T; j++) scores[o + j] = 0;
    }
  }
}

/** In place: dP ← P ⊙ (dP − Σ_j dP⊙P) per row (softmax backward; masked entries have P = 0). */
export function softmaxBackwardInPlace(dp: Float32Array, p: Float32Array, rows: number, T: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * T;
    let dot = 0;
    for (let j = 0; j < T; j++) dot += dp[o + j] * p[o + j];
    for (let j = 0; j < T; j++) dp[o + j] = p[o + j] * (dp[o + j] - dot);
  }
}

/** dst += src */
export function addInto(dst: Float32Array, src: Float32Array): void {
  const n = dst.length;
  for (let i = 0; i < n; i++) dst[i] += src[i];
}

/** Row-wise bias add: x (rows, n) += b (n). */
export function addBias(x: Float32Array, b: Float32Array, rows: number, n: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    for (let i = 0; i < n; i++) x[o + i] += b[i];
  }
}

/** Column sums accumulated: db (n) += Σ_rows dy (rows, n). */
export function biasBackward(dy: Float32Array, rows: number, n: number, db: Float32Array): void {
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    for (let i = 0; i < n; i++) db[i] += dy[o + i];
  }
}

/**
 * Rows → grouped heads: src (B·T, nh·hd) row-major per token; dst (B·nh/G, G·T, hd), where the G
 * heads sharing one kv head are stacked (row g·T + t holds head kv·G + g at position t). With `rope`
 * each head vector is rotated by its position (sign +1), as it is copied.
 * Kept out of the async model code: locals in an async function live in its heap context, and
 * these loops run several times faster in a plain function.
 */
export function toGrouped(
  src: Float32Array,
  dst: Float32Array,
  B: number,
  T: number,
  nh: number,
  G: number,
  hd: number,
  rope?: { cos: Float32Array; sin: Float32Array },
  sign = 1,
): void {
  const KV = nh / G;
  const half = hd / 2;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const so = (b * T + t) * nh * hd;
      for (let h = 0; h < nh; h++) {
        const kv = (h / G) | 0;
        const d = (((b * KV + kv) * G + (h - kv * G)) * T + t) * hd;
        const s = so + h * hd;
        if (rope) ropeRotate(src, s, dst, d, t, half, rope.cos, rope.sin, sign);
        else for (let i = 0; i < hd; i++) dst[d + i] = src[s + i];
      }
    }
  }
}

/** Inverse of toGrouped: grouped (B·nh/G, G·T, hd) → rows (B·T, nh·hd), rotating by `sign` when `rope` is given. */
export function fromGrouped(
  src: Float32Array,
  dst: Float32Array,
  B: number,
  T: number,
  nh: number,
  G: number,
  hd: number,
  rope?: { cos: Float32Array; sin: Float32Array },
  sign = -1,
): void {
  const KV = nh / G;
  const half = hd / 2;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const dOff = (b * T + t) * nh * hd;
      for (let h = 0; h < nh; h++) {
        const kv = (h / G) | 0;
        const s = (((b * KV + kv) * G + (h - kv * G)) * T + t) * hd;
        const d = dOff + h * hd;
        if (rope) ropeRotate(src, s, dst, d, t, half, rope.cos, rope.sin, sign);
        else for (let i = 0; i < hd; i++) dst[d + i] = src[s + i];
      }
    }
  }
}

/** out = a + b (out may alias a or b). */
export function addTo(out: Float32Array, a: Float32Array, b: Float32Array): void {
  const n = out.length;
  for (let i = 0; i < n; i++) out[i] = a[i] + b[i];
}

/** x (N, C) = embed[tokens]. */
export function embeddingForward(embed: Float32Array, tokens: Int32Array, N: number, C: number, x: Float32Array): void {
  for (let n = 0; n < N; n++) {
    const s = tokens[n] * C;
    const d = n * C;
    for (let j = 0; j < C; j++) x[d + j] = embed[s + j];
  }
}

/** gEmbed[tokens[n]] += dx[n] (scatter-add). */
export function embeddingBackward(dx: Float32Array, tokens: Int32Array, N: number, C: number, gEmbed: Float32Array): void {
  for (let n = 0; n < N; n++) {
    const d = tokens[n] * C;
    const s = n * C;
    for (let j = 0; j < C; j++) gEmbed[d + j] += dx[s + j];
  }
}
