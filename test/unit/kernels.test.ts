import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type Kernels, type MatmulOptions, ReferenceKernels } from "../../src/engine/kernels.js";
import { encodeModel } from "../../src/engine/onnx-proto.js";
import { createKernels, matmulModel, OrtKernels } from "../../src/engine/ort.js";
import { mulberry32 } from "../../src/engine/tensor.js";

const ref = new ReferenceKernels();
const rng = mulberry32(1234);

function rand(n: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = rng() * 2 - 1;
  return x;
}

/** |x − y| ≤ 1e-4 · (|y| + scale), scale = the row's typical magnitude so that near-zero sums
 * (cancellation) do not fail on float32 rounding. */
function assertClose(actual: Float32Array, expected: Float32Array, k: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const scale = Math.sqrt(Math.max(k, 1));
  for (let i = 0; i < expected.length; i++) {
    const tol = 1e-4 * (Math.abs(expected[i]) + scale);
    if (!(Math.abs(actual[i] - expected[i]) <= tol)) {
      assert.fail(`${what}: element ${i}: got ${actual[i]}, expected ${expected[i]}`);
    }
  }
}

const layouts: MatmulOptions[] = [
  { transA: false, transB: false },
  { transA: false, transB: true },
  { transA: true, transB: false },
  { transA: true, transB: true },
];
const label = (o: MatmulOptions) => `${o.transA ? "T" : "N"}${o.transB ? "T" : "N"}${o.alpha !== undefined ? ` α=${o.alpha}` : ""}`;

describe("onnx-proto", () => {
  test("encodes varints, strings and floats as protobuf does", () => {
    const bytes = encodeModel({
      irVersion: 300, // two-byte varint: 0xac 0x02
      opsetImports: [{ domain: "", version: 17 }],
      graph: { name: "g", nodes: [], inputs: [], outputs: [] },
    });
    // ModelProto.ir_version = field 1, varint: key 0x08, then 300 = 0xac 0x02.
    assert.deepEqual([...bytes.subarray(0, 3)], [0x08, 0xac, 0x02]);
    // producer_name = field 2, length-delimited: key 0x12, length 4, "srlm".
    assert.deepEqual([...bytes.subarray(3, 9)], [0x12, 4, 0x73, 0x72, 0x6c, 0x6d]);
    // The model ends with opset_import (field 8): key 0x42, len 2, version (field 2) = 17.
    assert.deepEqual([...bytes.subarray(bytes.length - 4)], [0x42, 2, 0x10, 17]);
  });

  test("matmul models are small and differ by variant", () => {
    const a = matmulModel({ transA: false, transB: true, alpha: 0.125, batched: true });
    const b = matmulModel({ transA: false, transB: true, alpha: 0.25, batched: true });
    assert.ok(a.length > 100 && a.length < 1000, "a.length > 100 && a.length < 1000");
    assert.notDeepEqual(a, b);
  });
});

describe("OrtKernels equal ReferenceKernels", () => {
  let ort: OrtKernels;
  before(async () => {
    ort = await OrtKernels.create();
  });
  after(async () => {
    await ort.dispose();
  });

  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [3, 5, 7],
    [17, 33, 9],
    [1, 64, 48],
  ];
  for (const [m, k, n] of shapes) {
    for (const layout of layouts) {
      for (const alpha of [undefined, 0.125, -2.5]) {
        const opts = { ...layout, ...(alpha !== undefined ? { alpha } : {}) };
        test(`matmul ${m}×${k}×${n} ${label(opts)}`, async () => {
          const a = rand(m * k);
          const b = rand(k * n);
          assertClose(await ort.matmul(a, b, m, k, n, opts), await ref.matmul(a, b, m, k, n, opts), k, "matmul");
        });
      }
    }
  }

  for (const [batch, m, k, n] of [
    [6, 3, 5, 7],
    [6, 17, 33, 9],
    [1, 4, 8, 2],
    [4, 1, 1, 1],
  ]) {
    for (const layout of layouts) {
      const opts = { ...layout, alpha: 0.3 };
      test(`batchedMatmul ${batch}×${m}×${k}×${n} ${label(opts)}`, async () => {
        const a = rand(batch * m * k);
        const b = rand(batch * k * n);
        assertClose(
          await ort.batchedMatmul(a, b, batch, m, k, n, opts),
          await ref.batchedMatmul(a, b, batch, m, k, n, opts),
          k,
          "batchedMatmul",
        );
      });
    }
  }

  test("subarray inputs (byteOffset ≠ 0) read the right elements", async () => {
    const [m, k, n] = [5, 6, 4];
    const poolA = rand(1000);
    const poolB = rand(1000);
    for (const layout of layouts) {
      const a = poolA.subarray(37, 37 + m * k);
      const b = poolB.subarray(501, 501 + k * n);
      assert.notEqual(a.byteOffset, 0);
      const got = await ort.matmul(a, b, m, k, n, layout);
      assertClose(got, await ref.matmul(a, b, m, k, n, layout), k, `subarray ${label(layout)}`);
      // Batched over a subarray too.
      const ab = poolA.subarray(3, 3 + 3 * m * k);
      const bb = poolB.subarray(7, 7 + 3 * k * n);
      assertClose(
        await ort.batchedMatmul(ab, bb, 3, m, k, n, layout),
        await ref.batchedMatmul(ab, bb, 3, m, k, n, layout),
        k,
        `batched subarray ${label(layout)}`,
      );
    }
  });

  test("outputs are fresh arrays and inputs are untouched", async () => {
    const a = rand(12);
    const b = rand(12);
    const a0 = a.slice();
    const b0 = b.slice();
    const c1 = await ort.matmul(a, b, 3, 4, 3);
    const c2 = await ort.matmul(a, b, 3, 4, 3);
    assert.notEqual(c1, c2);
    assert.notEqual(c1.buffer, c2.buffer);
    c1[0] = 1e9;
    assert.notEqual(c2[0], 1e9);
    assert.deepEqual(a, a0);
    assert.deepEqual(b, b0);
  });

  test("many calls in a row reuse cached sessions", async () => {
    const fresh = await OrtKernels.create({ threads: 1 });
    try {
      const a = rand(8 * 16);
      const b = rand(16 * 8);
      const expected = await ref.matmul(a, b, 8, 16, 8, { transB: true, alpha: 0.5 });
      for (let i = 0; i < 200; i++) {
        const c = await fresh.matmul(a, b, 8, 16, 8, { transB: true, alpha: 0.5 });
        if (i % 50 === 0) assertClose(c, expected, 16, `call ${i}`);
      }
      // Different sizes, same variant: same session (symbolic dims).
      await fresh.matmul(rand(3 * 16), rand(16 * 5), 3, 16, 5, { transB: true, alpha: 0.5 });
      // The create() probe (NN, α=1, unbatched) plus NT α=0.5.
      assert.equal(fresh.sessionCount, 2);
      await fresh.batchedMatmul(rand(2 * 3 * 4), rand(2 * 4 * 5), 2, 3, 4, 5, { transB: false });
      assert.equal(fresh.sessionCount, 3);
    } finally {
      await fresh.dispose();
    }
  });

  test("the session cache is bounded (LRU) and evicted sessions stay correct", async () => {
    const small = await OrtKernels.create({ threads: 1, maxSessions: 2 });
    try {
      const a = rand(4 * 5);
      const b = rand(5 * 3);
      const alphas = [0.5, 1.5, 2.5, 0.5, 3.5, 1.5];
      const got = await Promise.all(alphas.map((alpha) => small.matmul(a, b, 4, 5, 3, { alpha })));
      assert.ok(small.sessionCount <= 2, "small.sessionCount <= 2");
      for (let i = 0; i < alphas.length; i++) {
        assertClose(got[i], await ref.matmul(a, b, 4, 5, 3, { alpha: alphas[i] }), 5, `alpha ${alphas[i]}`);
      }
    } finally {
      await small.dispose();
    }
  });

  test("concurrent calls (Promise.all) each get their own right answer", async () => {
    const jobs = Array.from({ length: 12 }, (_, i) => {
      const m = 2 + i;
      const k = 3 + ((i * 5) % 11);
      const n = 1 + ((i * 3) % 7);
      const opts = layouts[i % 4];
      const a = rand(m * k);
      const b = rand(k * n);
      return { m, k, n, opts, a, b };
    });
    const got = await Promise.all(jobs.map((j) => ort.matmul(j.a, j.b, j.m, j.k, j.n, j.opts)));
    for (let i = 0; i < jobs.length; i++) {
      const j = jobs[i];
      assertClose(got[i], await ref.matmul(j.a, j.b, j.m, j.k, j.n, j.opts), j.k, `job ${i}`);
    }
  });

  test("empty products", async () => {
    assert.equal((await ort.matmul(new Float32Array(0), new Float32Array(0), 0, 3, 0)).length, 0);
    assert.deepEqual(await ort.matmul(new Float32Array(0), new Float32Array(0), 2, 0, 3), new Float32Array(6));
    assert.equal((await ort.batchedMatmul(new Float32Array(0), new Float32Array(0), 0, 2, 3, 4)).length, 0);
  });

  test("bad sizes are rejected with a clear message", async () => {
    await assert.rejects(ort.matmul(new Float32Array(5), new Float32Array(6), 2, 3, 2), {
      message: "matmul: A has 5 elements, expected 1×2×3",
    });
    await assert.rejects(ort.matmul(new Float32Array(6), new Float32Array(7), 2, 3, 2, { transB: true }), {
      message: "matmul: B has 7 elements, expected 1×3×2",
    });
    await assert.rejects(ort.batchedMatmul(new Float32Array(12), new Float32Array(11), 2, 2, 3, 2), {
      message: "batchedMatmul: B has 11 elements, expected 2×3×2",
    });
    await assert.rejects(ort.matmul(new Float32Array(6), new Float32Array(6), 2.5, 3, 2), /M must be a non-negative integer/);
    await assert.rejects(ort.matmul(new Float32Array(6), new Float32Array(6), 2, 3, 2, { alpha: Number.NaN }), /alpha/);
    // Still usable afterwards.
    assert.equal((await ort.matmul(rand(6), rand(6), 2, 3, 2)).length, 4);
  });
});

describe("createKernels", () => {
  test("reference and ort", async () => {
    const r: Kernels = await createKernels("reference");
    assert.equal(r.name, "reference");
    const o: Kernels = await createKernels("ort", { threads: 1 });
    assert.equal(o.name, "ort");
    const a = rand(6);
    const b = rand(6);
    assertClose(await o.matmul(a, b, 2, 3, 2), await r.matmul(a, b, 2, 3, 2), 3, "factory");
    await o.dispose();
    await assert.rejects(o.matmul(a, b, 2, 3, 2), /after dispose/);
    await r.dispose();
  });
});
