// Finite-difference checks of every element-wise backward in src/engine/ops.ts.
import { test } from "node:test";
import {
  causalSoftmax,
  logSoftmaxGather,
  logSoftmaxGatherBackward,
  rmsnormBackward,
  rmsnormForward,
  ropeRotate,
  ropeTables,
  softmaxBackwardInPlace,
  swigluBackward,
  swigluForward,
} from "../../src/engine/ops.js";
import { assertClose, numericGrad, rand, weightedSum } from "../helpers.js";

test("rmsnorm backward matches finite differences (x and weight)", async () => {
  const rows = 3;
  const C = 7;
  const x = rand(rows * C, 1);
  const w = rand(C, 2, 0.5).map((v) => 1 + v);
  const wy = rand(rows * C, 3);
  const y = new Float32Array(rows * C);
  const rstd = new Float32Array(rows);
  const f = () => {
    rmsnormForward(x, w, rows, C, 1e-5, y, rstd);
    return weightedSum(y, wy);
  };
  f();
  const dx = new Float32Array(rows * C);
  const dw = new Float32Array(C);
  rmsnormBackward(wy, x, w, rstd, rows, C, dx, dw);
  for (let i = 0; i < x.length; i++) assertClose(dx[i], await numericGrad(x, i, f), `dx[${i}]`);
  for (let i = 0; i < C; i++) assertClose(dw[i], await numericGrad(w, i, f), `dw[${i}]`);
});

test("rope backward (rotation by −angle) matches finite differences; rotation keeps the norm", async () => {
  const hd = 8;
  const half = hd / 2;
  const { cos, sin } = ropeTables(16, hd, 10000);
  const x = rand(hd, 4);
  const wy = rand(hd, 5);
  const y = new Float32Array(hd);
  const pos = 11;
  const f = () => {
    ropeRotate(x, 0, y, 0, pos, half, cos, sin, 1);
    return weightedSum(y, wy);
  };
  f();
  let nx = 0;
  let ny = 0;
  for (let i = 0; i < hd; i++) {
    nx += x[i] ** 2;
    ny += y[i] ** 2;
  }
  assertClose(ny, nx, "norm", 1e-5, 1e-6);
  const dx = new Float32Array(hd);
  ropeRotate(wy, 0, dx, 0, pos, half, cos, sin, -1);
  for (let i = 0; i < hd; i++) assertClose(dx[i], await numericGrad(x, i, f), `dx[${i}]`);
  // Position 0 is the identity.
  ropeRotate(x, 0, y, 0, 0, half, cos, sin, 1);
  for (let i = 0; i < hd; i++) assertClose(y[i], x[i], `pos0[${i}]`, 0, 0);
});

test("swiglu backward matches finite differences", async () => {
  const n = 12;
  const gate = rand(n, 6, 2);
  const up = rand(n, 7);
  const wy = rand(n, 8);
  const act = new Float32Array(n);
  const f = () => {
    swigluForward(gate, up, act, n);
    return weightedSum(act, wy);
  };
  const dg = new Float32Array(n);
  const du = new Float32Array(n);
  swigluBackward(wy, gate, up, dg, du, n);
  for (let i = 0; i < n; i++) {
    assertClose(dg[i], await numericGrad(gate, i, f), `dgate[${i}]`);
    assertClose(du[i], await numericGrad(up, i, f), `dup[${i}]`);
  }
});

test("log-softmax gather backward matches finite differences; ignored rows give zero", async () => {
  const rows = 4;
  const V = 9;
  const logits = rand(rows * V, 9, 2);
  const targets = Int32Array.from([3, -1, 0, 8]);
  const wl = Float32Array.from([0.7, 5, -1.3, 2]);
  const logp = new Float32Array(rows);
  const lse = new Float32Array(rows);
  const f = () => {
    logSoftmaxGather(logits, targets, rows, V, logp, lse);
    return weightedSum(logp, wl);
  };
  f();
  assertClose(logp[1], 0, "ignored row", 0, 0);
  const d = new Float32Array(rows * V);
  logSoftmaxGatherBackward(wl, logits, lse, targets, rows, V, d);
  for (let i = 0; i < rows * V; i++) assertClose(d[i], await numericGrad(logits, i, f), `dlogits[${i}]`);
});

test("causal softmax backward matches finite differences; masked entries are exactly 0", async () => {
  const blocks = 2;
  const T = 4;
  const R = 2 * T; // two query heads stacked per block
  const s = rand(blocks * R * T, 10, 1.5);
  const wy = rand(blocks * R * T, 11);
  const p = new Float32Array(s.length);
  const f = () => {
    p.set(s);
    causalSoftmax(p, blocks, R, T);
    return weightedSum(p, wy);
  };
  f();
  for (let b = 0; b < blocks; b++)
    for (let r = 0; r < R; r++) for (let j = (r % T) + 1; j < T; j++) assertClose(p[(b * R + r) * T + j], 0, "masked", 0, 0);
  const ds = Float32Array.from(wy);
  softmaxBackwardInPlace(ds, p, blocks * R, T);
  for (let i = 0; i < s.length; i++) assertClose(ds[i], await numericGrad(s, i, f), `ds[${i}]`);
});
