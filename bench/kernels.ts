/**
 * Microbenchmark of the matmul kernels (onnxruntime-node FusedMatMul via OrtKernels).
 *
 *   npx tsx bench/kernels.ts [--threads N] [--quick] [--only square,llama,sandbox,attention,overhead,output,spinning]
 *
 * Prints GFLOP/s (best of several rounds, so that other processes on the machine disturb it less)
 * for 512³ in all four layouts, the matmul shapes of a ~10M-parameter Llama step and of a sandbox
 * step, batched attention shapes, and the per-call overhead of a tiny product. Then compares, on raw
 * onnxruntime sessions, letting ORT allocate the output against passing a pre-allocated output
 * tensor, and thread-pool spinning on against off when layouts alternate.
 */
import os from "node:os";
import type { MatmulOptions } from "../src/engine/kernels.js";
import { loadOrt, matmulModel, OrtKernels } from "../src/engine/ort.js";

const args = process.argv.slice(2);
const threadsArg = args.indexOf("--threads");
const threads = threadsArg >= 0 ? Number(args[threadsArg + 1]) : os.availableParallelism();
const quick = args.includes("--quick");
const onlyArg = args.indexOf("--only");
const only = onlyArg >= 0 ? new Set(args[onlyArg + 1].split(",")) : null;
const want = (section: string) => only === null || only.has(section);
const ROUNDS = quick ? 3 : 7;
/** Target time of one round, ms. */
const ROUND_MS = quick ? 60 : 150;

function fill(n: number, seed: number): Float32Array {
  const x = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = s / 4294967296 - 0.5;
  }
  return x;
}

/** Best per-call time in ms over ROUNDS rounds of `reps` calls (reps sized from a trial call). */
async function time(f: () => Promise<unknown>): Promise<number> {
  await f();
  await f();
  const t0 = performance.now();
  await f();
  const once = Math.max(performance.now() - t0, 0.001);
  const reps = Math.max(2, Math.min(20000, Math.round(ROUND_MS / once)));
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < ROUNDS; r++) {
    const t = performance.now();
    for (let i = 0; i < reps; i++) await f();
    best = Math.min(best, (performance.now() - t) / reps);
  }
  return best;
}

/** Like `time`, for several functions whose rounds are interleaved, so that a busy spell on the
 * machine hits all of them alike. */
async function timeInterleaved(fs: (() => Promise<unknown>)[]): Promise<number[]> {
  const reps: number[] = [];
  for (const f of fs) {
    await f();
    await f();
    const t0 = performance.now();
    await f();
    reps.push(Math.max(2, Math.min(20000, Math.round(ROUND_MS / 2 / Math.max(performance.now() - t0, 0.001)))));
  }
  const best = fs.map(() => Number.POSITIVE_INFINITY);
  for (let r = 0; r < 2 * ROUNDS; r++) {
    for (let j = 0; j < fs.length; j++) {
      const t = performance.now();
      for (let i = 0; i < reps[j]; i++) await fs[j]();
      best[j] = Math.min(best[j], (performance.now() - t) / reps[j]);
    }
  }
  return best;
}

const layouts: [string, MatmulOptions][] = [
  ["NN", {}],
  ["NT", { transB: true }],
  ["TN", { transA: true }],
  ["TT", { transA: true, transB: true }],
];

const rows: string[][] = [];
function report(what: string, shape: string, layout: string, ms: number, flops: number): void {
  const row = [what, shape, layout, `${(ms * 1000).toFixed(1)} µs`, `${(flops / ms / 1e6).toFixed(1)}`];
  rows.push(row);
  console.log(row[0].padEnd(26), row[1].padEnd(18), row[2].padEnd(6), row[3].padStart(12), `${row[4].padStart(7)} GFLOP/s`);
}

async function bench2d(k: OrtKernels, what: string, m: number, kk: number, n: number, lays = layouts): Promise<void> {
  const a = fill(m * kk, 1);
  const b = fill(kk * n, 2);
  for (const [name, opts] of lays) {
    const ms = await time(() => k.matmul(a, b, m, kk, n, opts));
    report(what, `${m}×${kk}×${n}`, name, ms, 2 * m * kk * n);
  }
}

async function benchBatched(k: OrtKernels, what: string, batch: number, m: number, kk: number, n: number, lays = layouts): Promise<void> {
  const a = fill(batch * m * kk, 3);
  const b = fill(batch * kk * n, 4);
  for (const [name, opts] of lays) {
    const ms = await time(() => k.batchedMatmul(a, b, batch, m, kk, n, { ...opts, alpha: 0.125 }));
    report(what, `${batch}×${m}×${kk}×${n}`, name, ms, 2 * batch * m * kk * n);
  }
}

/** The products of one linear layer y = x Wᵀ (HF weight (out, in)): forward NT, dX = dY W (NN),
 * dW = dYᵀ X (TN). */
async function linearStep(k: OrtKernels, what: string, m: number, inF: number, outF: number): Promise<void> {
  const x = fill(m * inF, 5);
  const w = fill(outF * inF, 6);
  const dy = fill(m * outF, 7);
  const fwd = await time(() => k.matmul(x, w, m, inF, outF, { transB: true }));
  report(what, `${m}×${inF}→${outF}`, "fwd NT", fwd, 2 * m * inF * outF);
  const dx = await time(() => k.matmul(dy, w, m, outF, inF));
  report(what, `${m}×${inF}→${outF}`, "dX NN", dx, 2 * m * inF * outF);
  const dw = await time(() => k.matmul(dy, x, outF, m, inF, { transA: true }));
  report(what, `${m}×${inF}→${outF}`, "dW TN", dw, 2 * m * inF * outF);
}

async function main(): Promise<void> {
  console.log(
    `onnxruntime-node FusedMatMul, ${threads} intra-op thread(s), ${os.availableParallelism()} CPU(s), ${os.cpus()[0]?.model ?? "?"}`,
  );
  console.log(
    `load average ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(" ")} (numbers are best-of-${ROUNDS})\n`,
  );
  const k = await OrtKernels.create({ threads });

  if (want("square")) await bench2d(k, "square", 512, 512, 512);

  if (want("llama")) {
    // ~10M-param Llama (dim 384, hidden 1024, vocab 512), M = 1024 rows (batch 8 × 128).
    await linearStep(k, "llama10M q/o proj", 1024, 384, 384);
    await linearStep(k, "llama10M mlp up/gate", 1024, 384, 1024);
    await linearStep(k, "llama10M mlp down", 1024, 1024, 384);
    await linearStep(k, "llama10M lm head", 1024, 384, 512);
  }

  if (want("sandbox")) {
    // Sandbox (dim 128, hidden 384, vocab 100), M = 3072 rows (batch 64 × 48).
    await linearStep(k, "sandbox qkvo proj", 3072, 128, 128);
    await linearStep(k, "sandbox mlp up/gate", 3072, 128, 384);
    await linearStep(k, "sandbox mlp down", 3072, 384, 128);
    await linearStep(k, "sandbox lm head", 3072, 128, 100);
  }

  // Attention, batch × heads = 48, seq 128, head_dim 64: scores Q Kᵀ (NT) and P V (NN), plus backward.
  if (want("attention")) await benchBatched(k, "attention", 48, 128, 64, 128);

  if (want("overhead")) {
    // Per-call overhead.
    const a = fill(8, 8);
    const b = fill(64, 9);
    const tiny = await time(() => k.matmul(a, b, 1, 8, 8));
    report("overhead", "1×8×8", "NN", tiny, 128);
    const tinyB = await time(() => k.batchedMatmul(a, b, 1, 1, 8, 8));
    report("overhead batched", "1×1×8×8", "NN", tinyB, 128);
  }
  await k.dispose();

  if (want("output")) await outputPaths(threads);
  if (want("spinning")) await spinning(threads);
}

/** Raw ORT: output allocated by ORT vs a pre-allocated output tensor passed in `fetches`. */
async function outputPaths(threads: number): Promise<void> {
  const ort = await loadOrt();
  const s = await ort.InferenceSession.create(matmulModel({ transA: false, transB: false, alpha: 1, batched: false }), {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
    extra: { session: { intra_op: { allow_spinning: "0" } } },
  });
  console.log("\noutput path (raw session): ORT-allocated vs pre-allocated output tensor");
  for (const [m, kk, n] of [
    [1, 8, 8],
    [64, 128, 384],
    [512, 512, 512],
    [3072, 128, 384],
    [2048, 4, 2048],
  ]) {
    const a = fill(m * kk, 1);
    const b = fill(kk * n, 2);
    const A = () => new ort.Tensor("float32", a, [m, kk]);
    const B = () => new ort.Tensor("float32", b, [kk, n]);
    const fixed = new Float32Array(m * n);
    const [plain, reused, fresh] = await timeInterleaved([
      async () => (await s.run({ A: A(), B: B() })).C.data,
      () => s.run({ A: A(), B: B() }, { C: new ort.Tensor("float32", fixed, [m, n]) }),
      () => s.run({ A: A(), B: B() }, { C: new ort.Tensor("float32", new Float32Array(m * n), [m, n]) }),
    ]);
    console.log(
      `${`${m}×${kk}×${n}`.padEnd(14)} ORT-allocated ${(plain * 1000).toFixed(1).padStart(9)} µs   pre-allocated (reused) ${(reused * 1000).toFixed(1).padStart(9)} µs   pre-allocated (new each call) ${(fresh * 1000).toFixed(1).padStart(9)} µs`,
    );
  }
  await s.release();
}

/** Three layouts alternating (as a linear layer's forward/backward does), spinning on vs off. */
async function spinning(threads: number): Promise<void> {
  console.log("\nthread-pool spinning, NT/NN/TN alternating, 1024×384×1024 (per product)");
  for (const spin of [false, true]) {
    const k = await OrtKernels.create({ threads, spinning: spin });
    const [m, kk, n] = [1024, 384, 1024];
    const x = fill(m * kk, 1);
    const w = fill(n * kk, 2);
    const dy = fill(m * n, 3);
    const ms = await time(async () => {
      await k.matmul(x, w, m, kk, n, { transB: true });
      await k.matmul(dy, w, m, n, kk);
      await k.matmul(dy, x, n, m, kk, { transA: true });
    });
    console.log(
      `spinning ${spin ? "on " : "off"}: ${((ms / 3) * 1000).toFixed(0)} µs, ${((3 * 2 * m * kk * n) / ms / 1e6).toFixed(1)} GFLOP/s`,
    );
    await k.dispose();
  }
}

await main();
