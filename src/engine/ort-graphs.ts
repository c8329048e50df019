/**
 * Few-node ONNX graphs for the fused layer kernels (see kernels.ts): the SwiGLU MLP and the causal
 * attention core, forward and backward. Fusing keeps the element-wise work (sigmoid, softmax and
 * their gradients) inside onnxruntime's vectorised, multi-threaded kernels instead of scalar
 * TypeScript loops, and turns ~10 kernel calls into one. All dimensions are symbolic.
 *
 * Weights are graph inputs (not initializers): the same session serves every layer and every step,
 * and onnxruntime-node wraps the Float32Arrays without copying them.
 */
import { type Attribute, encodeModel, type Node } from "./onnx-proto.js";

const MS = "com.microsoft";

function mm(name: string, a: string, b: string, out: string, o: { transA?: boolean; transB?: boolean; alpha?: number } = {}): Node {
  const attributes: Attribute[] = [
    { name: "transA", type: "int", value: o.transA ? 1 : 0 },
    { name: "transB", type: "int", value: o.transB ? 1 : 0 },
    { name: "alpha", type: "float", value: o.alpha ?? 1 },
  ];
  return { opType: "FusedMatMul", domain: MS, name, inputs: [a, b], outputs: [out], attributes };
}

function op(opType: string, inputs: string[], out: string, attributes?: Attribute[]): Node {
  return { opType, name: out, inputs, outputs: [out], attributes };
}

function model(name: string, nodes: Node[], inputs: [string, (string | number)[]][], outputs: [string, (string | number)[]][]): Uint8Array {
  return encodeModel({
    irVersion: 8,
    opsetImports: [
      { domain: "", version: 17 },
      { domain: MS, version: 1 },
    ],
    graph: {
      name,
      nodes,
      inputs: inputs.map(([n, shape]) => ({ name: n, shape })),
      outputs: outputs.map(([n, shape]) => ({ name: n, shape })),
    },
  });
}

/** gate = h Wg^T, up = h Wu^T, act = silu(gate)·up, out = act Wd^T.  h (N, C), W* HF (out, in). */
export function mlpForwardGraph(): Uint8Array {
  return model(
    "srlm_mlp_fwd",
    [
      mm("g", "h", "wg", "gate", { transB: true }), // (N, Hm)
      mm("u", "h", "wu", "up", { transB: true }), // (N, Hm)
      op("Sigmoid", ["gate"], "sig"),
      op("Mul", ["gate", "sig"], "silu"),
      op("Mul", ["silu", "up"], "act"),
      mm("d", "act", "wd", "out", { transB: true }), // (N, C)
    ],
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

/**
 * Backward of the MLP from dout (N, C):
 *   dWd = dout^T act, dact = dout Wd, s = σ(gate),
 *   dup = dact·gate·s, dgate = dact·up·s·(1 + gate·(1 − s)),
 *   dWg = dgate^T h, dWu = dup^T h, dh = dgate Wg + dup Wu.
 */
export function mlpBackwardGraph(): Uint8Array {
  return model(
    "srlm_mlp_bwd",
    [
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
    ],
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
    [
      mm("s", "q", "k", "s", { transB: true, alpha: scale }), // (BK, GT, T)
      op("Add", ["s", "mask"], "sm"),
      op("Softmax", ["sm"], "p", [{ name: "axis", type: "int", value: -1 }]),
      mm("o", "p", "v", "o"), // (BK, GT, hd)
    ],
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

/**
 * Backward of the attention core from dO (BK, GT, hd):
 *   dP = dO v^T, dS = p·(dP − rowsum(dP·p)), dq = scale·dS k, dk = scale·dS^T q, dv = p^T dO.
 * The row sum is a product with a ones column (T, 1), which keeps the graph to opset-17 basics.
 */
export function attentionBackwardGraph(scale: number): Uint8Array {
  return model(
    "srlm_attn_bwd",
    [
      mm("dp", "dO", "v", "dP", { transB: true }), // (BK, GT, T)
      op("Mul", ["dP", "p"], "dpp"),
      mm("rs", "dpp", "ones", "rowsum"), // (BK, GT, 1)
      op("Sub", ["dP", "rowsum"], "dpc"),
      op("Mul", ["p", "dpc"], "dS"),
      mm("dq", "dS", "k", "dq", { alpha: scale }), // (BK, GT, hd)
      mm("dk", "dS", "q", "dk", { transA: true, alpha: scale }), // (BK, T, hd)
      mm("dv", "p", "dO", "dv", { transA: true }), // (BK, T, hd)
    ],
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
    [
      mm("s", "q", "k", "s", { transB: true, alpha: scale }), // (BK, G, L)
      op("Add", ["s", "mask"], "sm"),
      op("Softmax", ["sm"], "p", [{ name: "axis", type: "int", value: -1 }]),
      mm("o", "p", "v", "o"), // (BK, G, hd)
    ],
    [
      ["q", ["BK", "G", "D"]],
      ["k", ["BK", "L", "D"]],
      ["v", ["BK", "L", "D"]],
      ["mask", ["BK", 1, "L"]],
    ],
    [["o", ["BK", "G", "D"]]],
  );
}
