/**
 * Few-node ONNX graphs for the fused layer kernels (see kernels.ts): the SwiGLU MLP and the causal
 * attention core, forward and backward. Fusing keeps the element-wise work (sigmoid, softmax and
 * their gradients) inside onnxruntime's vectorised, multi-threaded kernels instead of scalar
 * TypeScript loops, and turns ~10 kernel calls into one. All dimensions are symbolic.
 *
 * Weights are graph inputs (not initializers): the same session serves every layer and every step,
 * and onnxruntime-node wraps the Float32Arrays without copying them.
 */
import { type Attribute, DataType, encodeModel, type Node, type ValueInfo } from "./onnx-proto.js";

const MS = "com.microsoft";

function mm(name: string, a: string, b: string, out: string, o: { transA?: boolean; transB?: boolean; alpha?: number } = {}): Node {
  const attributes: Attribute[] = [
    { name: "transA", type: "int", value: o.transA ? 1 : 0 },
    { name: "transB", type: "int", value: o.transB ? 1 : 0 },
    { name: "alpha", type: "float", value: o.alpha ?? 1 },
  ];
  return { opType: "FusedMatMul", domain: MS, name: `mm_${name}`, inputs: [a, b], outputs: [out], attributes };
}

function op(opType: string, inputs: string[], out: string, attributes?: Attribute[]): Node {
  return { opType, name: out, inputs, outputs: [out], attributes };
}

/** Graph inputs: [name, shape] pairs are float32; a ValueInfo passes through (e.g. int64 shape tensors). */
type Input = [string, (string | number)[]] | ValueInfo;

function model(name: string, nodes: Node[], inputs: Input[], outputs: [string, (string | number)[]][]): Uint8Array {
  return encodeModel({
    irVersion: 8,
    opsetImports: [
      { domain: "", version: 17 },
      { domain: MS, version: 1 },
    ],
    graph: {
      name,
      nodes,
      inputs: inputs.map((i) => (Array.isArray(i) ? { name: i[0], shape: i[1] } : i)),
      outputs: outputs.map(([n, shape]) => ({ name: n, shape })),
    },
  });
}

/** act = silu(gate)·up with gate = h Wg^T, up = h Wu^T; `out` = act Wd^T.  (Graph names: h, wg, wu, wd.) */
function mlpNodes(out: string): Node[] {
  return [
    mm("g", "h", "wg", "gate", { transB: true }), // (N, Hm)
    mm("u", "h", "wu", "up", { transB: true }), // (N, Hm)
    op("Sigmoid", ["gate"], "sig"),
    op("Mul", ["gate", "sig"], "silu"),
    op("Mul", ["silu", "up"], "act"),
    mm("d", "act", "wd", out, { transB: true }), // (N, C)
  ];
}

/**
 * MLP backward from dout (N, C):
 *   dWd = dout^T act, dact = dout Wd, s = σ(gate),
 *   dup = dact·gate·s, dgate = dact·up·s·(1 + gate·(1 − s)),
 *   dWg = dgate^T h, dWu = dup^T h, dh = dgate Wg + dup Wu.
 */
function mlpBackwardNodes(): Node[] {
  return [
    mm("dwd", "dout", "act", "dWd", { transA: true }), // (C, Hm)
    mm("dact", "dout", "wd", "dact"), // (N, Hm)
    op("Sigmoid", ["gate"], "s"),
    op("Mul", ["gate", "s"], "silu"),
    op("Mul", ["dact", "silu"], "dup"),
    op("Sub", ["one", "s"], "oms"), // 1 − s
    op("Mul", ["gate", "oms"], "goms"),
    op("Add", ["one", "goms"], "opg"), // 1 + gate(1 − s)
    op("Mul", ["s", "opg"], "dsilu"),
    op("Mul", ["dact", "up"], "dau"),
    op("Mul", ["dau", "dsilu"], "dgate"),
    mm("dwg", "dgate", "h", "dWg", { transA: true }), // (Hm, C)
    mm("dwu", "dup", "h", "dWu", { transA: true }), // (Hm, C)
    mm("dhg", "dgate", "wg", "dhg"), // (N, C)
    mm("dhu", "dup", "wu", "dhu"),
    op("Add", ["dhg", "dhu"], "dh"),
  ];
}

/** p = softmax(scale · q k^T + mask), o = p v over the last axis. (Graph names: q, k, v, mask.) */
function attentionNodes(scale: number): Node[] {
  return [
    mm("s", "q", "k", "s", { transB: true, alpha: scale }),
    op("Add", ["s", "mask"], "sm"),
    op("Softmax", ["sm"], "p", [{ name: "axis", type: "int", value: -1 }]),
    mm("o", "p", "v", "o"),
  ];
}

/**
 * Attention backward from dO: dP = dO v^T, dS = p·(dP − rowsum(dP·p)), dQ = scale·dS k,
 * dK = scale·dS^T q, dV = p^T dO. The row sum is a product with a ones column (T, 1), which keeps
 * the graph to opset-17 basics.
 */
function attentionBackwardNodes(scale: number, dq: string, dk: string, dv: string): Node[] {
  return [
    mm("dp", "dO", "v", "dP", { transB: true }), // (BK, GT, T)
    op("Mul", ["dP", "p"], "dpp"),
    mm("rs", "dpp", "ones", "rowsum"), // (BK, GT, 1)
    op("Sub", ["dP", "rowsum"], "dpc"),
    op("Mul", ["p", "dpc"], "dS"),
    mm("dq", "dS", "k", dq, { alpha: scale }), // (BK, GT, hd)
    mm("dk", "dS", "q", dk, { transA: true, alpha: scale }), // (BK, T, hd)
    mm("dv", "p", "dO", dv, { transA: true }), // (BK, T, hd)
  ];
}

/** gate = h Wg^T, up = h Wu^T, act = silu(gate)·up, out = act Wd^T.  h (N, C), W* HF (out, in). */
export function mlpForwardGraph(): Uint8Array {
  return model(
    "srlm_mlp_fwd",
    mlpNodes("out"),
    [
      ["h", ["N", "C"]],
      ["wg", ["H", "C"]],
      ["wu", ["H", "C"]],
      ["wd", ["C", "H"]],
    ],
    [
      ["gate", ["N", "H"]],
      ["up", ["N", "H"]],
      ["act", ["N", "H"]],
      ["out", ["N", "C"]],
    ],
  );
}

/** Backward of the MLP from dout (N, C): see mlpBackwardNodes. */
export function mlpBackwardGraph(): Uint8Array {
  return model(
    "srlm_mlp_bwd",
    mlpBackwardNodes(),
    [
      ["dout", ["N", "C"]],
      ["h", ["N", "C"]],
      ["gate", ["N", "H"]],
      ["up", ["N", "H"]],
      ["act", ["N", "H"]],
      ["wg", ["H", "C"]],
      ["wu", ["H", "C"]],
      ["wd", ["C", "H"]],
      ["one", [1]],
    ],
    [
      ["dWg", ["H", "C"]],
      ["dWu", ["H", "C"]],
      ["dWd", ["C", "H"]],
      ["dh", ["N", "C"]],
    ],
  );
}

/**
 * Causal attention core over B·KV blocks of G stacked query heads (row r = g·T + t):
 *   p = softmax(scale · q k^T + mask), o = p v.   q (BK, GT, hd), k, v (BK, T, hd), mask (GT, T).
 */
export function attentionForwardGraph(scale: number): Uint8Array {
  return model(
    "srlm_attn_fwd",
    attentionNodes(scale), // p (BK, GT, T), o (BK, GT, hd)
    [
      ["q", ["BK", "GT", "D"]],
      ["k", ["BK", "T", "D"]],
      ["v", ["BK", "T", "D"]],
      ["mask", ["GT", "T"]],
    ],
    [
      ["p", ["BK", "GT", "T"]],
      ["o", ["BK", "GT", "D"]],
    ],
  );
}

/** Backward of the attention core from dO (BK, GT, hd): see attentionBackwardNodes. */
export function attentionBackwardGraph(scale: number): Uint8Array {
  return model(
    "srlm_attn_bwd",
    attentionBackwardNodes(scale, "dq", "dk", "dv"),
    [
      ["dO", ["BK", "GT", "D"]],
      ["q", ["BK", "GT", "D"]],
      ["k", ["BK", "T", "D"]],
      ["v", ["BK", "T", "D"]],
      ["p", ["BK", "GT", "T"]],
      ["ones", ["T", 1]],
    ],
    [
      ["dq", ["BK", "GT", "D"]],
      ["dk", ["BK", "T", "D"]],
      ["dv", ["BK", "T", "D"]],
    ],
  );
}

/**
 * Decoding attention: one query per head against a KV cache.
 *   o = softmax(scale · q k^T + mask) v.   q (BK, G, hd); k, v (BK, L, hd); mask (BK, 1, L).
 */
export function cachedAttentionGraph(scale: number): Uint8Array {
  return model(
    "srlm_attn_cached",
    attentionNodes(scale), // s, p (BK, G, L); o (BK, G, hd)
    [
      ["q", ["BK", "G", "D"]],
      ["k", ["BK", "L", "D"]],
      ["v", ["BK", "L", "D"]],
      ["mask", ["BK", 1, "L"]],
    ],
    [["o", ["BK", "G", "D"]]],
  );
}

// ---------------------------------------------------------------------------------------------
// Whole-block graphs: RMSNorm → projections → RoPE → grouped causal attention → o_proj → residual,
// and RMSNorm → SwiGLU MLP → residual, forward and backward. Every element-wise step runs inside
// onnxruntime; TypeScript only passes tensors. Reshape targets come in as int64 inputs.
// ---------------------------------------------------------------------------------------------

const shape = (name: string, rank: number): ValueInfo => ({ name, elemType: DataType.INT64, shape: [rank] });
const ints = (name: string, value: number[]): Attribute => ({ name, type: "ints", value });

/** y = x · rstd · w with rstd = 1/sqrt(mean(x²) + eps) over the last axis. */
function rmsnormNodes(x: string, w: string, h: string, rstd: string, p: string): Node[] {
  return [
    op("Mul", [x, x], `${p}xx`),
    op("ReduceMean", [`${p}xx`], `${p}ms`, [ints("axes", [-1]), { name: "keepdims", type: "int", value: 1 }]),
    op("Add", [`${p}ms`, "eps"], `${p}mse`),
    op("Sqrt", [`${p}mse`], `${p}sq`),
    op("Reciprocal", [`${p}sq`], rstd), // (N, 1)
    op("Mul", [x, rstd], `${p}xn`),
    op("Mul", [`${p}xn`, w], h),
  ];
}

/** dx = dres + rstd·(g − n·mean(g·n)), g = dh·w, n = x·rstd; dw = Σ_rows dh·n (as onesN @ ·). */
function rmsnormBackwardNodes(dres: string, dh: string, x: string, rstd: string, w: string, dx: string, dw: string, p: string): Node[] {
  return [
    op("Mul", [x, rstd], `${p}n`),
    op("Mul", [dh, w], `${p}g`),
    op("Mul", [`${p}g`, `${p}n`], `${p}gn`),
    op("ReduceMean", [`${p}gn`], `${p}dot`, [ints("axes", [-1]), { name: "keepdims", type: "int", value: 1 }]),
    op("Mul", [`${p}n`, `${p}dot`], `${p}ndot`),
    op("Sub", [`${p}g`, `${p}ndot`], `${p}gm`),
    op("Mul", [`${p}gm`, rstd], `${p}dxn`),
    op("Add", [dres, `${p}dxn`], dx),
    op("Mul", [dh, `${p}n`], `${p}dhn`),
    mm(`${p}dw`, "onesN", `${p}dhn`, dw), // (1, C)
  ];
}

/** Rotate-half RoPE on (…, hd): y = x·cos ± rot(x)·sin, rot(x) = [−x₂, x₁]; sign −1 is the inverse. */
function ropeNodes(x: string, y: string, p: string, inverse = false): Node[] {
  return [
    {
      opType: "Split",
      name: `${p}split`,
      inputs: [x],
      outputs: [`${p}a`, `${p}b`],
      attributes: [{ name: "axis", type: "int", value: -1 }],
    },
    op("Neg", [`${p}b`], `${p}nb`),
    op("Concat", [`${p}nb`, `${p}a`], `${p}rot`, [{ name: "axis", type: "int", value: -1 }]),
    op("Mul", [x, "cos"], `${p}xc`),
    op("Mul", [`${p}rot`, "sin"], `${p}rs`),
    op(inverse ? "Sub" : "Add", [`${p}xc`, `${p}rs`], y),
  ];
}

/**
 * Attention half of a block. x (N, C) → out = x + o_proj(attention(rope(q), rope(k), v)).
 * Saved for the backward: h (N, C), rstd (N, 1), q (BK, GT, hd), k, v (BK, T, hd), p (BK, GT, T), attn (N, H·hd).
 * cos, sin: (T, 1, hd) full-width tables; mask (GT, T) additive causal mask.
 */
export function attnBlockForwardGraph(scale: number, keep = true): Uint8Array {
  const outputs: [string, (string | number)[]][] = [
    ["h", ["N", "C"]],
    ["rstd", ["N", 1]],
    ["q", ["BK", "GT", "D"]],
    ["k", ["BK", "T", "D"]],
    ["v", ["BK", "T", "D"]],
    ["p", ["BK", "GT", "T"]],
    ["attn", ["N", "HD"]],
    ["out", ["N", "C"]],
  ];
  // Inference returns only what a KV cache and the next half need: nothing else is copied out.
  const wanted = keep ? outputs : outputs.filter(([n]) => n === "k" || n === "v" || n === "out");
  return model(
    "srlm_attn_block_fwd",
    [
      ...rmsnormNodes("x", "wn", "h", "rstd", "n1"),
      mm("q", "h", "wq", "qf", { transB: true }),
      op("Add", ["qf", "bq"], "qb"),
      mm("k", "h", "wk", "kf", { transB: true }),
      op("Add", ["kf", "bk"], "kb"),
      mm("v", "h", "wv", "vf", { transB: true }),
      op("Add", ["vf", "bv"], "vb"),
      op("Reshape", ["qb", "sQ"], "q4"), // (B, T, H, hd)
      ...ropeNodes("q4", "qr", "rq"),
      op("Reshape", ["qr", "sQg"], "qg5"), // (B, T, KV, G, hd)
      op("Transpose", ["qg5"], "qt", [ints("perm", [0, 2, 3, 1, 4])]), // (B, KV, G, T, hd)
      op("Reshape", ["qt", "sQflat"], "q"), // (BK, GT, hd)
      op("Reshape", ["kb", "sK"], "k4"), // (B, T, KV, hd)
      ...ropeNodes("k4", "kr", "rk"),
      op("Transpose", ["kr"], "kt", [ints("perm", [0, 2, 1, 3])]), // (B, KV, T, hd)
      op("Reshape", ["kt", "sKflat"], "k"),
      op("Reshape", ["vb", "sK"], "v4"),
      op("Transpose", ["v4"], "vt", [ints("perm", [0, 2, 1, 3])]),
      op("Reshape", ["vt", "sKflat"], "v"),
      ...attentionNodes(scale), // p (BK, GT, T), o (BK, GT, hd)
      op("Reshape", ["o", "sO5"], "o5"), // (B, KV, G, T, hd)
      op("Transpose", ["o5"], "ot", [ints("perm", [0, 3, 1, 2, 4])]), // (B, T, KV, G, hd)
      op("Reshape", ["ot", "sN"], "attn"), // (N, H·hd)
      mm("y", "attn", "wo", "y", { transB: true }),
      op("Add", ["x", "y"], "out"),
    ],
    [
      ["x", ["N", "C"]],
      ["wn", ["C"]],
      ["wq", ["HD", "C"]],
      ["wk", ["KD", "C"]],
      ["wv", ["KD", "C"]],
      ["wo", ["C", "HD"]],
      ["bq", ["HD"]],
      ["bk", ["KD"]],
      ["bv", ["KD"]],
      ["cos", ["T", 1, "D"]],
      ["sin", ["T", 1, "D"]],
      ["mask", ["GT", "T"]],
      ["eps", [1]],
      shape("sQ", 4),
      shape("sQg", 5),
      shape("sQflat", 3),
      shape("sK", 4),
      shape("sKflat", 3),
      shape("sO5", 5),
      shape("sN", 2),
    ],
    wanted,
  );
}

/** Backward of attnBlockForwardGraph from dout (N, C); dx includes the residual path. */
export function attnBlockBackwardGraph(scale: number): Uint8Array {
  return model(
    "srlm_attn_block_bwd",
    [
      mm("dwo", "dout", "attn", "dWo", { transA: true }), // (C, H·hd)
      mm("dattn", "dout", "wo", "dattn"), // (N, H·hd)
      op("Reshape", ["dattn", "sQg"], "dog5"),
      op("Transpose", ["dog5"], "dot5", [ints("perm", [0, 2, 3, 1, 4])]),
      op("Reshape", ["dot5", "sQflat"], "dO"), // (BK, GT, hd)
      ...attentionBackwardNodes(scale, "dQ", "dK", "dV"), // dQ (BK, GT, hd), dK, dV (BK, T, hd)
      op("Reshape", ["dQ", "sO5"], "dq5"), // (B, KV, G, T, hd)
      op("Transpose", ["dq5"], "dqt", [ints("perm", [0, 3, 1, 2, 4])]), // (B, T, KV, G, hd)
      op("Reshape", ["dqt", "sQ"], "dqr"), // (B, T, H, hd)
      ...ropeNodes("dqr", "dq4", "iq", true),
      op("Reshape", ["dq4", "sN"], "dq"), // (N, H·hd)
      op("Reshape", ["dK", "sK4t"], "dk4t"), // (B, KV, T, hd)
      op("Transpose", ["dk4t"], "dkr", [ints("perm", [0, 2, 1, 3])]), // (B, T, KV, hd)
      ...ropeNodes("dkr", "dk4", "ik", true),
      op("Reshape", ["dk4", "sNK"], "dk"),
      op("Reshape", ["dV", "sK4t"], "dv4t"),
      op("Transpose", ["dv4t"], "dvr", [ints("perm", [0, 2, 1, 3])]),
      op("Reshape", ["dvr", "sNK"], "dv"),
      mm("dbq", "onesN", "dq", "dbq"), // (1, H·hd)
      mm("dbk", "onesN", "dk", "dbk"),
      mm("dbv", "onesN", "dv", "dbv"),
      mm("dwq", "dq", "h", "dWq", { transA: true }),
      mm("dwk", "dk", "h", "dWk", { transA: true }),
      mm("dwv", "dv", "h", "dWv", { transA: true }),
      mm("dhq", "dq", "wq", "dhq"),
      mm("dhk", "dk", "wk", "dhk"),
      mm("dhv", "dv", "wv", "dhv"),
      op("Add", ["dhq", "dhk"], "dhqk"),
      op("Add", ["dhqk", "dhv"], "dh"),
      ...rmsnormBackwardNodes("dout", "dh", "x", "rstd", "wn", "dx", "dwn", "b1"),
    ],
    [
      ["dout", ["N", "C"]],
      ["x", ["N", "C"]],
      ["rstd", ["N", 1]],
      ["h", ["N", "C"]],
      ["wn", ["C"]],
      ["wq", ["HD", "C"]],
      ["wk", ["KD", "C"]],
      ["wv", ["KD", "C"]],
      ["wo", ["C", "HD"]],
      ["q", ["BK", "GT", "D"]],
      ["k", ["BK", "T", "D"]],
      ["v", ["BK", "T", "D"]],
      ["p", ["BK", "GT", "T"]],
      ["attn", ["N", "HD"]],
      ["cos", ["T", 1, "D"]],
      ["sin", ["T", 1, "D"]],
      ["ones", ["T", 1]],
      ["onesN", [1, "N"]],
      shape("sQ", 4),
      shape("sQg", 5),
      shape("sQflat", 3),
      shape("sK4t", 4),
      shape("sO5", 5),
      shape("sN", 2),
      shape("sNK", 2),
    ],
    [
      ["dx", ["N", "C"]],
      ["dWq", ["HD", "C"]],
      ["dWk", ["KD", "C"]],
      ["dWv", ["KD", "C"]],
      ["dWo", ["C", "HD"]],
      ["dbq", [1, "HD"]],
      ["dbk", [1, "KD"]],
      ["dbv", [1, "KD"]],
      ["dwn", [1, "C"]],
    ],
  );
}

/** MLP half of a block: out = x2 + down(silu(gate(h2))·up(h2)), h2 = rmsnorm(x2). */
export function mlpBlockForwardGraph(keep = true): Uint8Array {
  const outputs: [string, (string | number)[]][] = [
    ["h", ["N", "C"]],
    ["rstd", ["N", 1]],
    ["gate", ["N", "H"]],
    ["up", ["N", "H"]],
    ["act", ["N", "H"]],
    ["out", ["N", "C"]],
  ];
  return model(
    "srlm_mlp_block_fwd",
    [...rmsnormNodes("x", "wn", "h", "rstd", "n2"), ...mlpNodes("m"), op("Add", ["x", "m"], "out")],
    [
      ["x", ["N", "C"]],
      ["wn", ["C"]],
      ["wg", ["H", "C"]],
      ["wu", ["H", "C"]],
      ["wd", ["C", "H"]],
      ["eps", [1]],
    ],
    keep ? outputs : outputs.filter(([n]) => n === "out"),
  );
}

/** Backward of mlpBlockForwardGraph from dout (N, C); dx includes the residual path. */
export function mlpBlockBackwardGraph(): Uint8Array {
  return model(
    "srlm_mlp_block_bwd",
    [...mlpBackwardNodes(), ...rmsnormBackwardNodes("dout", "dh", "x", "rstd", "wn", "dx", "dwn", "b2")],
    [
      ["dout", ["N", "C"]],
      ["x", ["N", "C"]],
      ["rstd", ["N", 1]],
      ["h", ["N", "C"]],
      ["wn", ["C"]],
      ["gate", ["N", "H"]],
      ["up", ["N", "H"]],
      ["act", ["N", "H"]],
      ["wg", ["H", "C"]],
      ["wu", ["H", "C"]],
      ["wd", ["C", "H"]],
      ["one", [1]],
      ["onesN", [1, "N"]],
    ],
    [
      ["dx", ["N", "C"]],
      ["dWg", ["H", "C"]],
      ["dWu", ["H", "C"]],
      ["dWd", ["C", "H"]],
      ["dwn", [1, "C"]],
    ],
  );
}
