/**
 * One transformer block, written out: the attention half and the MLP half, forward and backward,
 * composed from matrix products, the fused attention / SwiGLU cores and TypeScript element-wise ops.
 * This is the readable reference of what onnxruntime's whole-block graphs compute (ort-graphs.ts);
 * the model uses it whenever the kernels have no `blocks` of their own.
 *
 *   attention half:  out = x + o_proj(attn(rope(q_proj(n)), rope(k_proj(n)), v_proj(n))),  n = rmsnorm(x)
 *   MLP half:        out = x + down(silu(gate(n)) · up(n)),                                  n = rmsnorm(x)
 */
import type {
  AttnBlockGrads,
  AttnBlockOut,
  AttnWeights,
  BlockDims,
  BlockKernels,
  Kernels,
  MlpBlockGrads,
  MlpBlockOut,
  MlpWeights,
} from "../engine/kernels.js";
import { savedOf } from "../engine/kernels.js";
import { addBias, addTo, biasBackward, fromGrouped, rmsnormBackward, rmsnormForward, toGrouped } from "../engine/ops.js";

export function composedBlocks(kn: Kernels): BlockKernels {
  return {
    attnForward: (x, w, d, keep) => attnForward(kn, x, w, d, keep),
    attnBackward: (dout, x, saved, w, d) => attnBackward(kn, dout, x, saved, w, d),
    mlpForward: (x, w, d, keep) => mlpForward(kn, x, w, d, keep),
    mlpBackward: (dout, x, saved, w, d) => mlpBackward(kn, dout, x, saved, w, d),
  };
}

async function attnForward(kn: Kernels, x: Float32Array, w: AttnWeights, d: BlockDims, keep: boolean): Promise<AttnBlockOut> {
  const { B, T, C, H, KV, hd } = d;
  const N = B * T;
  const G = H / KV;
  const h = new Float32Array(N * C);
  const rstd = new Float32Array(N);
  rmsnormForward(x, w.inputNorm, N, C, d.eps, h, rstd);
  const qf = await kn.matmul(h, w.wq, N, C, H * hd, { transB: true }); // (N, H·hd)
  const kf = await kn.matmul(h, w.wk, N, C, KV * hd, { transB: true }); // (N, KV·hd)
  const vf = await kn.matmul(h, w.wv, N, C, KV * hd, { transB: true }); // (N, KV·hd)
  if (w.bq) addBias(qf, w.bq, N, H * hd);
  if (w.bk) addBias(kf, w.bk, N, KV * hd);
  if (w.bv) addBias(vf, w.bv, N, KV * hd);

  // Rotate and regroup: q → (B·KV, G·T, hd) with row g·T + t for head h = kv·G + g; k, v → (B·KV, T, hd).
  const q = new Float32Array(N * H * hd);
  const k = new Float32Array(N * KV * hd);
  const v = new Float32Array(N * KV * hd);
  toGrouped(qf, q, B, T, H, G, hd, d.rope);
  toGrouped(kf, k, B, T, KV, 1, hd, d.rope);
  toGrouped(vf, v, B, T, KV, 1, hd);

  // p (B·KV, G·T, T) = causal softmax(q k^T / sqrt(hd)); o (B·KV, G·T, hd) = p v
  const { p, o } = await kn.attention(q, k, v, B * KV, G, T, hd, 1 / Math.sqrt(hd));
  const attn = new Float32Array(N * H * hd); // back to (N, H·hd)
  fromGrouped(o, attn, B, T, H, G, hd);
  const out = await kn.matmul(attn, w.wo, N, H * hd, C, { transB: true }); // (N, C)
  addTo(out, out, x); // residual
  return { out, k, v, saved: keep ? { h, rstd, q, p, attn } : undefined };
}

async function attnBackward(
  kn: Kernels,
  dout: Float32Array,
  x: Float32Array,
  fwd: AttnBlockOut,
  w: AttnWeights,
  d: BlockDims,
): Promise<AttnBlockGrads> {
  const { B, T, C, H, KV, hd } = d;
  const s = savedOf(fwd, "attention backward");
  const N = B * T;
  const G = H / KV;
  const dWo = await kn.matmul(dout, s.attn, C, N, H * hd, { transA: true }); // (C, H·hd)
  const dattn = await kn.matmul(dout, w.wo, N, C, H * hd); // (N, H·hd)
  const dO = new Float32Array(N * H * hd); // grouped (B·KV, G·T, hd)
  toGrouped(dattn, dO, B, T, H, G, hd);
  const g = await kn.attentionBackward(dO, s.q, fwd.k, fwd.v, s.p, B * KV, G, T, hd, 1 / Math.sqrt(hd));
  // Un-rotate and ungroup to (N, H·hd) and (N, KV·hd).
  const dq = new Float32Array(N * H * hd);
  const dk = new Float32Array(N * KV * hd);
  const dv = new Float32Array(N * KV * hd);
  fromGrouped(g.dq, dq, B, T, H, G, hd, d.rope, -1);
  fromGrouped(g.dk, dk, B, T, KV, 1, hd, d.rope, -1);
  fromGrouped(g.dv, dv, B, T, KV, 1, hd);
  const dbq = new Float32Array(H * hd);
  const dbk = new Float32Array(KV * hd);
  const dbv = new Float32Array(KV * hd);
  biasBackward(dq, N, H * hd, dbq);
  biasBackward(dk, N, KV * hd, dbk);
  biasBackward(dv, N, KV * hd, dbv);

  const dWq = await kn.matmul(dq, s.h, H * hd, N, C, { transA: true });
  const dWk = await kn.matmul(dk, s.h, KV * hd, N, C, { transA: true });
  const dWv = await kn.matmul(dv, s.h, KV * hd, N, C, { transA: true });
  const dh = await kn.matmul(dq, w.wq, N, H * hd, C);
  const dhk = await kn.matmul(dk, w.wk, N, KV * hd, C);
  const dhv = await kn.matmul(dv, w.wv, N, KV * hd, C);
  addTo(dh, dh, dhk);
  addTo(dh, dh, dhv);
  const dx = dout.slice(); // residual path, plus the norm's backward below
  const dNorm = new Float32Array(C);
  rmsnormBackward(dh, x, w.inputNorm, s.rstd, N, C, dx, dNorm);
  return { dx, dWq, dWk, dWv, dWo, dbq, dbk, dbv, dNorm };
}

async function mlpForward(kn: Kernels, x: Float32Array, w: MlpWeights, d: BlockDims, keep: boolean): Promise<MlpBlockOut> {
  const { B, T, C, Hm } = d;
  const N = B * T;
  const h = new Float32Array(N * C);
  const rstd = new Float32Array(N);
  rmsnormForward(x, w.postNorm, N, C, d.eps, h, rstd);
  const { gate, up, act, out } = await kn.mlpForward(h, w.wGate, w.wUp, w.wDown, N, C, Hm); // out (N, C)
  addTo(out, out, x); // residual
  return { out, saved: keep ? { h, rstd, gate, up, act } : undefined };
}

async function mlpBackward(
  kn: Kernels,
  dout: Float32Array,
  x: Float32Array,
  fwd: MlpBlockOut,
  w: MlpWeights,
  d: BlockDims,
): Promise<MlpBlockGrads> {
  const { B, T, C, Hm } = d;
  const s = savedOf(fwd, "MLP backward");
  const N = B * T;
  const g = await kn.mlpBackward(dout, s.h, s, w.wGate, w.wUp, w.wDown, N, C, Hm);
  const dx = dout.slice(); // residual path, plus the norm's backward below
  const dNorm = new Float32Array(C);
  rmsnormBackward(g.dh, x, w.postNorm, s.rstd, N, C, dx, dNorm);
  return { dx, dWGate: g.dWGate, dWUp: g.dWUp, dWDown: g.dWDown, dNorm };
}
