// The fused onnxruntime graphs (SwiGLU MLP, causal attention, cached attention) equal the
// reference compositions of matmul + TypeScript element-wise ops.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ReferenceKernels, referenceCachedAttention } from "../../src/engine/kernels.js";
import { createKernels } from "../../src/engine/ort.js";
import { assertAllClose, rand } from "../helpers.js";

const ref = new ReferenceKernels();

test("fused MLP forward and backward equal the reference", async () => {
  const ort = await createKernels("ort");
  for (const [N, C, Hm] of [
    [1, 4, 6],
    [7, 8, 12],
    [33, 16, 40],
  ]) {
    const h = rand(N * C, 1);
    const wg = rand(Hm * C, 2, 0.5);
    const wu = rand(Hm * C, 3, 0.5);
    const wd = rand(C * Hm, 4, 0.5);
    const a = await ort.mlpForward(h, wg, wu, wd, N, C, Hm);
    const b = await ref.mlpForward(h, wg, wu, wd, N, C, Hm);
    for (const k of ["gate", "up", "act", "out"] as const) assertAllClose(a[k], b[k], `${k} ${N}×${C}×${Hm}`);
    const dout = rand(N * C, 5);
    const ga = await ort.mlpBackward(dout, h, a, wg, wu, wd, N, C, Hm);
    const gb = await ref.mlpBackward(dout, h, b, wg, wu, wd, N, C, Hm);
    for (const k of ["dWGate", "dWUp", "dWDown", "dh"] as const) assertAllClose(ga[k], gb[k], `${k} ${N}×${C}×${Hm}`, 1e-4, 1e-5);
  }
  await ort.dispose();
});

test("fused causal attention forward and backward equal the reference (GQA groups, T = 1 included)", async () => {
  const ort = await createKernels("ort");
  for (const [BK, G, T, hd] of [
    [1, 1, 1, 2],
    [3, 2, 5, 4],
    [4, 3, 9, 8],
  ]) {
    const scale = 1 / Math.sqrt(hd);
    const q = rand(BK * G * T * hd, 6);
    const k = rand(BK * T * hd, 7);
    const v = rand(BK * T * hd, 8);
    const a = await ort.attention(q, k, v, BK, G, T, hd, scale);
    const b = await ref.attention(q, k, v, BK, G, T, hd, scale);
    assertAllClose(a.p, b.p, `p ${BK}×${G}×${T}×${hd}`);
    assertAllClose(a.o, b.o, `o ${BK}×${G}×${T}×${hd}`);
    const dO = rand(BK * G * T * hd, 9);
    const ga = await ort.attentionBackward(dO, q, k, v, a.p, BK, G, T, hd, scale);
    const gb = await ref.attentionBackward(dO, q, k, v, b.p, BK, G, T, hd, scale);
    for (const key of ["dq", "dk", "dv"] as const) assertAllClose(ga[key], gb[key], `${key} ${BK}×${G}×${T}×${hd}`, 1e-4, 1e-5);
  }
  await ort.dispose();
});

test("cached (decoding) attention equals the reference, masked positions ignored", async () => {
  const ort = await createKernels("ort");
  const [BK, G, L, hd] = [6, 2, 7, 4];
  const q = rand(BK * G * hd, 10);
  const k = rand(BK * L * hd, 11);
  const v = rand(BK * L * hd, 12);
  const mask = new Float32Array(BK * L);
  for (let b = 0; b < BK; b++) mask.fill(Number.NEGATIVE_INFINITY, b * L + b + 1, (b + 1) * L); // block b sees b + 1 positions
  const a = await ort.cachedAttention(q, k, v, mask, BK, G, L, hd, 0.5);
  assertAllClose(a, referenceCachedAttention(q, k, v, mask, BK, G, L, hd, 0.5), "o");
  // garbage beyond the mask must not matter
  const k2 = k.slice();
  for (let b = 0; b < BK; b++) k2.fill(1e3, (b * L + b + 1) * hd, (b + 1) * L * hd);
  assertAllClose(await ort.cachedAttention(q, k2, v, mask, BK, G, L, hd, 0.5), a, "o with garbage beyond the mask");
  await ort.dispose();
});

test("whole-block onnxruntime graphs equal the composed TypeScript blocks (forward, inference forward, backward)", async () => {
  const { composedBlocks } = await import("../../src/model/blocks.js");
  const { ropeTables } = await import("../../src/engine/ops.js");
  const ort = await createKernels("ort");
  const ortBlocks = ort.blocks!;
  const refBlocks = composedBlocks(ref);
  for (const [B, T, C, H, KV, hd, Hm, bias] of [
    [2, 5, 8, 4, 2, 2, 12, false],
    [3, 7, 12, 3, 1, 4, 20, true],
  ] as [number, number, number, number, number, number, number, boolean][]) {
    const d = { B, T, C, H, KV, hd, Hm, eps: 1e-5, rope: ropeTables(16, hd, 10000) };
    const N = B * T;
    const w = {
      inputNorm: rand(C, 20, 0.2).map((v) => 1 + v),
      wq: rand(H * hd * C, 21, 0.4),
      wk: rand(KV * hd * C, 22, 0.4),
      wv: rand(KV * hd * C, 23, 0.4),
      wo: rand(C * H * hd, 24, 0.4),
      ...(bias ? { bq: rand(H * hd, 25), bk: rand(KV * hd, 26), bv: rand(KV * hd, 27) } : {}),
      postNorm: rand(C, 28, 0.2).map((v) => 1 + v),
      wGate: rand(Hm * C, 29, 0.4),
      wUp: rand(Hm * C, 30, 0.4),
      wDown: rand(C * Hm, 31, 0.4),
    };
    const x = rand(N * C, 32);
    const tag = `B${B} T${T} C${C} H${H}/${KV} bias ${bias}`;
    const a = await ortBlocks.attnForward(x, w, d, true);
    const b = await refBlocks.attnForward(x, w, d, true);
    for (const k of ["out", "k", "v"] as const) assertAllClose(a[k], b[k], `attn ${k} ${tag}`);
    for (const k of ["h", "rstd", "q", "p", "attn"] as const) assertAllClose(a.saved![k], b.saved![k], `attn saved ${k} ${tag}`);
    const lean = await ortBlocks.attnForward(x, w, d, false);
    assertAllClose(lean.out, a.out, `attn inference out ${tag}`);
    const m = await ortBlocks.mlpForward(a.out, w, d, true);
    const mr = await refBlocks.mlpForward(b.out, w, d, true);
    assertAllClose(m.out, mr.out, `mlp out ${tag}`);
    const dout = rand(N * C, 33);
    const mg = await ortBlocks.mlpBackward(dout, a.out, m, w, d);
    const mgr = await refBlocks.mlpBackward(dout, b.out, mr, w, d);
    for (const k of ["dx", "dWGate", "dWUp", "dWDown", "dNorm"] as const) assertAllClose(mg[k], mgr[k], `mlp ${k} ${tag}`, 1e-4, 1e-5);
    const ag = await ortBlocks.attnBackward(mg.dx, x, a, w, d);
    const agr = await refBlocks.attnBackward(mgr.dx, x, b, w, d);
    for (const k of ["dx", "dWq", "dWk", "dWv", "dWo", "dNorm", ...(bias ? (["dbq", "dbk", "dbv"] as const) : [])] as const) {
      assertAllClose(ag[k], agr[k], `attn ${k} ${tag}`, 1e-4, 1e-5);
    }
    await assert.rejects(ortBlocks.attnBackward(dout, x, lean, w, d), /without keeping activations/);
  }
  await ort.dispose();
});
