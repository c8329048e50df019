// KV-cache sampling agrees with the full forward; seeds reproduce; n samples share a prompt;
// continuous batching returns the samples of the chunked algorithm it replaced.
import assert from "node:assert/strict";
import { test } from "node:test";
import { generateChunked } from "../../bench/generate-chunked.js";
import { type Kernels, ReferenceKernels } from "../../src/engine/kernels.js";
import { createKernels } from "../../src/engine/ort.js";
import { mulberry32, randn } from "../../src/engine/tensor.js";
import { composedBlocks } from "../../src/model/blocks.js";
import { llamaConfig } from "../../src/model/config.js";
import { fitGroup, type GenerateOptions, generate, kvPool, type Sample, SLOT_GROUP } from "../../src/model/generate.js";
import { createModel, forward, type LlamaModel } from "../../src/model/llama.js";
import { initParams, toNamed } from "../../src/model/params.js";
import { CharTokenizer } from "../../src/tokenizer/char.js";
import { assertClose } from "../helpers.js";

function randomModel(extra: Record<string, unknown> = {}, kernels: Kernels = new ReferenceKernels()) {
  const cfg = llamaConfig({ vocabSize: 23, dim: 16, nLayers: 2, nHeads: 4, nKvHeads: 2, hiddenDim: 24, maxSeqLen: 40, ...extra });
  const params = initParams(cfg, 5);
  const rng = mulberry32(9);
  for (const t of toNamed(cfg, params)) if (t.shape.length === 2) t.data.set(randn(rng, t.data.length, 0.4));
  return createModel(cfg, params, kernels);
}

for (const kind of ["reference", "ort"] as const) {
  test(`KV-cache decoding equals the full forward: greedy tokens are the argmax and log-probs match (${kind} kernels)`, async () => {
    const kernels = kind === "ort" ? await createKernels("ort") : new ReferenceKernels();
    for (const extra of [{}, { qkvBias: true, tieEmbeddings: true }]) {
      const model = randomModel(extra, kernels);
      const prompts = [[1, 2, 3], [4, 5, 6, 7, 8, 9], [10]];
      const out = await generate(model, undefined, prompts, { temperature: 0, maxNewTokens: 12 });
      for (let p = 0; p < prompts.length; p++) {
        const s = out[p][0];
        assert.equal(s.ids.length, 12);
        assert.equal(s.finishReason, "length");
        const seq = [...prompts[p], ...s.ids];
        const T = seq.length;
        const targets = Int32Array.from(seq.slice(1).concat([-1]));
        const f = await forward(model, { tokens: Int32Array.from(seq), targets, B: 1, T }, { returnLogits: true });
        let lp = 0;
        for (let t = prompts[p].length - 1; t < T - 1; t++) {
          const row = f.logits!.subarray(t * 23, (t + 1) * 23);
          assert.equal(row.indexOf(Math.max(...row)), seq[t + 1], `prompt ${p} step ${t}: greedy token is not the argmax`);
          lp += f.logp[t];
        }
        assertClose(s.logprob, lp, `prompt ${p} logprob`, 1e-4, 1e-4);
      }
    }
    await kernels.dispose();
  });
}

test("sampling is reproducible under a seed and independent of batch composition", async () => {
  const model = randomModel();
  const prompts = [
    [1, 2],
    [3, 4, 5],
  ];
  const opts = { temperature: 1, topP: 0.9, n: 3, seed: 7, maxNewTokens: 10 };
  const a = await generate(model, undefined, prompts, opts);
  const b = await generate(model, undefined, prompts, opts);
  assert.deepEqual(a, b);
  // The same samples when each prompt is decoded alone (its own prefill and batch) — the
  // prompt index is part of the seed, so decode the second prompt at index 1 via maxBatch.
  const c = await generate(model, undefined, prompts, { ...opts, maxBatch: 3 });
  assert.deepEqual(c, a);
  const d = await generate(model, undefined, prompts, { ...opts, seed: 8 });
  assert.notDeepEqual(d, a);
  // n samples of one prompt differ from each other
  const ids = a[0].map((s) => s.ids.join(","));
  assert.ok(new Set(ids).size > 1, "new Set(ids).size > 1");
  assert.deepEqual(
    a[1].map((s) => s.sampleIndex),
    [0, 1, 2],
  );
});

test("stop tokens end a sample and are kept in ids", async () => {
  const model = randomModel();
  const greedy = await generate(model, undefined, [[1, 2, 3]], { temperature: 0, maxNewTokens: 8 });
  const third = greedy[0][0].ids[2];
  const stopped = await generate(model, undefined, [[1, 2, 3]], { temperature: 0, maxNewTokens: 8, stopTokens: [third] });
  const s = stopped[0][0];
  assert.equal(s.finishReason, "stop");
  assert.equal(s.ids[s.ids.length - 1], third);
  assert.ok(s.ids.length <= 3, "s.ids.length <= 3");
});

test("generation respects maxSeqLen and rejects bad options", async () => {
  const model = randomModel({ maxSeqLen: 8 });
  const out = await generate(model, undefined, [[1, 2, 3, 4, 5]], { temperature: 0, maxNewTokens: 50 });
  assert.equal(out[0][0].ids.length, 3); // prompt + sample = maxSeqLen
  await assert.rejects(generate(model, undefined, [[1]], { topP: 0 }), /topP/);
  await assert.rejects(generate(model, undefined, [[]]), /empty/);
  await assert.rejects(generate(model, undefined, ["hi"]), /no tokenizer/);
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(generate(model, undefined, [[1]], { signal: ac.signal, maxNewTokens: 5 }), /abort/i);
});

test("stop strings cut the text before the first occurrence; text prompts use the tokenizer", async () => {
  const tok = new CharTokenizer("abcdefghijklmnopqrs");
  const model = randomModel({ vocabSize: tok.vocabSize });
  const [[free]] = await generate(model, tok, ["abc"], { temperature: 0, maxNewTokens: 12, stopTokens: [] });
  assert.equal(free.text, tok.decode(free.ids));
  // stop at a two-character string that the free-running continuation contains
  const stop = free.text.slice(3, 5);
  const at = free.text.indexOf(stop);
  const [[cut]] = await generate(model, tok, ["abc"], { temperature: 0, maxNewTokens: 12, stopTokens: [], stopStrings: [stop, "zz"] });
  assert.equal(cut.finishReason, "stop");
  assert.equal(cut.text, free.text.slice(0, at));
  assert.deepEqual(cut.ids, free.ids.slice(0, at + stop.length), "ids run up to the token that completed the stop string");
  await assert.rejects(generate(model, undefined, [[1]], { stopStrings: ["x"] }), /stopStrings need a tokenizer/);
});

// ---------------------------------------------------------------------------------------------
// Continuous batching against the chunked algorithm (bench/generate-chunked.ts, the code before).
// ---------------------------------------------------------------------------------------------

const tok = new CharTokenizer("abcdefghijklmnopqrs"); // vocab 23, EOS = 2: the random model draws it at varying steps
// Prompts of mixed lengths (1 to 9 tokens).
const mixedPrompts: number[][] = [
  [1, 2, 3],
  [4, 5, 6, 7, 8, 9],
  [10],
  [11, 12, 13, 14],
  [15, 16],
  [17, 18, 19, 20, 21, 22, 1, 2, 4],
  [3, 3],
  [5],
];

/**
 * The model with its kernels wrapped to count decode steps and their widest batch: a decode step
 * calls `mlpForward` once per layer over its active rows; the prefill forward runs the block kernels
 * (kept unwrapped here).
 */
function counted(model: LlamaModel) {
  const inner = model.kernels;
  const kernels = Object.create(inner) as Kernels;
  const stats = { calls: 0, widest: 0 };
  Object.assign(kernels, { blocks: inner.blocks ?? composedBlocks(inner) });
  kernels.mlpForward = (h, wg, wu, wd, N, C, Hm) => {
    stats.calls++;
    stats.widest = Math.max(stats.widest, N);
    return inner.mlpForward(h, wg, wu, wd, N, C, Hm);
  };
  return { model: { ...model, kernels }, steps: () => stats.calls / model.config.nLayers, widest: () => stats.widest };
}

/** Same samples: ids, text, finish reason and order; log-probs bit-equal (`exact`) or within 1e-4. */
function assertSameSamples(got: Sample[][], want: Sample[][], what: string, exact: boolean): void {
  assert.equal(got.length, want.length, `${what}: number of prompts`);
  for (let p = 0; p < want.length; p++) {
    assert.equal(got[p].length, want[p].length, `${what}: samples of prompt ${p}`);
    for (let i = 0; i < want[p].length; i++) {
      const [g, w] = [got[p][i], want[p][i]];
      const at = `${what}: prompt ${p} sample ${i}`;
      assert.equal(g.promptIndex, p, `${at}: promptIndex`);
      assert.equal(g.sampleIndex, i, `${at}: sampleIndex`);
      assert.deepEqual(g.ids, w.ids, `${at}: ids`);
      assert.equal(g.text, w.text, `${at}: text`);
      assert.equal(g.finishReason, w.finishReason, `${at}: finishReason`);
      if (exact) assert.equal(g.logprob, w.logprob, `${at}: logprob (bit-equal)`);
      else assertClose(g.logprob, w.logprob, `${at}: logprob`, 1e-4, 1e-4);
    }
  }
}

const cases: { name: string; opts: GenerateOptions }[] = [
  { name: "n=3, pool of 7 < n·prompts (many admissions)", opts: { n: 3, maxBatch: 7, temperature: 1, seed: 3, maxNewTokens: 20 } },
  { name: "n=3, one pool for all", opts: { n: 3, temperature: 0.8, topP: 0.9, seed: 4, maxNewTokens: 20 } },
  { name: "n=1, pool of 3", opts: { n: 1, maxBatch: 3, temperature: 1, topK: 8, seed: 5, maxNewTokens: 25 } },
  { name: "n=2, pool of 5 (one slot left over)", opts: { n: 2, maxBatch: 5, temperature: 1, seed: 6, maxNewTokens: 30 } },
  {
    name: "stop strings, n=2, pool of 4",
    opts: { n: 2, maxBatch: 4, temperature: 1, seed: 7, maxNewTokens: 20, stopStrings: ["ab", "q"] },
  },
  { name: "greedy, pool of 2", opts: { temperature: 0, maxBatch: 2, maxNewTokens: 15 } },
  { name: "maxSeqLen bounds the longest prompts", opts: { n: 2, maxBatch: 6, temperature: 1, seed: 8, maxNewTokens: 60 } },
  { name: "one token each: every sample ends at its prefill", opts: { n: 2, maxBatch: 4, seed: 9, maxNewTokens: 1 } },
];

for (const kind of ["reference", "ort"] as const) {
  test(`continuous batching returns the chunked algorithm's samples, mixed lengths (${kind} kernels)`, async () => {
    const kernels = kind === "ort" ? await createKernels("ort") : new ReferenceKernels();
    // Float results: the reference kernels are row-independent, so log-probs are bit-equal; ORT's
    // are not always (see generate.ts), so there ids and texts must agree and log-probs to 1e-4.
    const exact = kind === "reference";
    const model = randomModel({ vocabSize: tok.vocabSize }, kernels);
    let lengths = new Set<number>();
    for (const { name, opts } of cases) {
      const n = opts.n ?? 1;
      const neu = counted(model);
      const old = counted(model);
      const got = await generate(neu.model, tok, mixedPrompts, opts);
      const want = await generateChunked(old.model, tok, mixedPrompts, opts);
      assertSameSamples(got, want, `${name}, vs chunked`, exact);
      // and each prompt decoded alone (its own prefill and batch)
      const alone = await generateChunked(model, tok, mixedPrompts, { ...opts, maxBatch: n });
      assertSameSamples(got, alone, `${name}, vs each prompt alone`, exact);
      assert.ok(neu.widest() <= Math.max(opts.maxBatch ?? 256, n), `${name}: ${neu.widest()} rows decoded together, within maxBatch`);
      assert.ok(neu.steps() <= old.steps(), `${name}: ${neu.steps()} decode steps, chunked ${old.steps()}`);
      for (const [p, ss] of got.entries())
        for (const s of ss) {
          assert.ok(s.ids.length <= (opts.maxNewTokens ?? 64), `${name}: prompt ${p} sample ${s.sampleIndex} within maxNewTokens`);
          assert.ok(mixedPrompts[p].length + s.ids.length <= model.config.maxSeqLen, `${name}: prompt ${p} sample within maxSeqLen`);
        }
      if (name.startsWith("n=3, pool of 7")) {
        lengths = new Set(got.flat().map((s) => s.ids.length));
        assert.ok(neu.steps() < old.steps(), `${name}: continuous batching takes fewer steps (${neu.steps()} vs ${old.steps()})`);
      }
      if (name.startsWith("stop strings"))
        assert.ok(
          got.flat().some((s) => s.finishReason === "stop" && !s.ids.includes(tok.eosId)),
          `${name}: some sample ended on a stop string`,
        );
      if (name.startsWith("maxSeqLen"))
        assert.ok(
          got[5].some((s) => mixedPrompts[5].length + s.ids.length === model.config.maxSeqLen),
          `${name}: the longest prompt reached maxSeqLen`,
        );
    }
    assert.ok(lengths.size >= 6, `mixed sample lengths: ${[...lengths].join(",")}`);
    await kernels.dispose();
  });
}

test("continuous batching: progress counts, result order, and abort between steps", async () => {
  const model = randomModel({ vocabSize: tok.vocabSize });
  const opts: GenerateOptions = { n: 3, maxBatch: 7, temperature: 1, seed: 3, maxNewTokens: 20 };
  const seen: { samplesDone: number; samplesTotal: number; tokens: number }[] = [];
  const out = await generate(model, tok, mixedPrompts, { ...opts, onProgress: (p) => seen.push(p) });
  const total = mixedPrompts.length * 3;
  const tokens = out.flat().reduce((a, s) => a + s.ids.length, 0);
  assert.ok(seen.length > 0, "onProgress was called");
  assert.ok(
    seen.every((p) => p.samplesTotal === total),
    "samplesTotal is the number of samples",
  );
  for (let i = 1; i < seen.length; i++) {
    assert.ok(seen[i].samplesDone >= seen[i - 1].samplesDone, `samplesDone never decreases (call ${i})`);
    assert.ok(seen[i].tokens > seen[i - 1].tokens, `tokens grow at every call (call ${i})`);
  }
  assert.deepEqual(seen.at(-1), { samplesDone: total, samplesTotal: total, tokens }, "the last call counts every sample and token");
  let oldLast: unknown;
  await generateChunked(model, tok, mixedPrompts, { ...opts, onProgress: (p) => (oldLast = p) });
  assert.deepEqual(seen.at(-1), oldLast, "the last call equals the chunked algorithm's");

  // abort after the second sample finished: no further step runs
  const ac = new AbortController();
  let calls = 0;
  let after = 0;
  await assert.rejects(
    generate(model, tok, mixedPrompts, {
      ...opts,
      signal: ac.signal,
      onProgress: (p) => {
        calls++;
        if (ac.signal.aborted) after++;
        if (p.samplesDone >= 2) ac.abort();
      },
    }),
    /abort/i,
    "an abort rejects",
  );
  assert.ok(calls > 1 && calls < seen.length, `aborted midway (${calls} of ${seen.length} progress calls)`);
  assert.equal(after, 0, "no step runs after the abort");
});

test("more slots than one cache group: strides grow and shrink, samples stay the chunked algorithm's", async () => {
  for (const kind of ["reference", "ort"] as const) {
    const kernels = kind === "ort" ? await createKernels("ort") : new ReferenceKernels();
    const model = randomModel({ vocabSize: tok.vocabSize, maxSeqLen: 96 }, kernels);
    const inner = model.kernels;
    const strides = new Set<number>();
    const k = Object.create(inner) as Kernels;
    const groupsSeen = new Set<number>();
    k.cachedAttention = (q, kk, v, mask, BK, G, L, hd, scale) => {
      strides.add(L);
      groupsSeen.add(kk.buffer.byteLength);
      return inner.cachedAttention(q, kk, v, mask, BK, G, L, hd, scale);
    };
    const rng = mulberry32(21);
    // enough prompts that the pool of SLOT_GROUP + 20 slots fills: two groups, the second of 20 slots
    const count = SLOT_GROUP / 2 + 40;
    const prompts = Array.from({ length: count }, () =>
      Array.from({ length: 1 + Math.floor(rng() * 12) }, () => 3 + Math.floor(rng() * 20)),
    );
    const opts: GenerateOptions = { n: 2, maxBatch: SLOT_GROUP + 20, temperature: 1, seed: 11, maxNewTokens: 70, stopTokens: [10] };
    const got = await generate({ ...model, kernels: k }, tok, prompts, opts);
    const want = await generateChunked(model, tok, prompts, opts);
    assertSameSamples(got, want, `${kind}: two groups`, kind === "reference");
    const lengths = got.flat().map((s) => s.ids.length);
    assert.ok(
      Math.max(...lengths) > 40 && Math.min(...lengths) < 10,
      `${kind}: mixed lengths ${Math.min(...lengths)}…${Math.max(...lengths)}`,
    );
    assert.ok(strides.size >= 4, `${kind}: attention ran over several strides (${[...strides].join(",")})`);
    assert.ok(groupsSeen.size === 2, `${kind}: attention ran in both groups (${[...groupsSeen].join(",")} slots)`);
    await kernels.dispose();
  }
});

test("fitGroup re-lays a group's rows at a new stride and keeps every filled position", () => {
  const KV = 2;
  const hd = 4;
  const maxLen = 50;
  const pool = kvPool(2, SLOT_GROUP + 3, KV, hd, maxLen);
  assert.equal(pool.k[0].length, 2, "two groups");
  assert.equal(pool.k[0][1].length, 3 * KV * maxLen * hd, "the last group holds the remaining 3 slots");
  const value = (l: number, r: number, t: number, i: number) => l * 1e6 + r * 1e3 + t * 10 + i; // r = slot·KV + kv head
  const fill = (g: number, L: number, upTo: number) => {
    for (let l = 0; l < 2; l++)
      for (let r = 0; r < pool.k[l][g].length / (maxLen * hd); r++)
        for (let t = 0; t < upTo; t++)
          for (let i = 0; i < hd; i++) {
            pool.k[l][g][(r * L + t) * hd + i] = value(l, r, t, i);
            pool.v[l][g][(r * L + t) * hd + i] = -value(l, r, t, i);
          }
  };
  const check = (g: number, L: number, upTo: number, what: string) => {
    for (let l = 0; l < 2; l++)
      for (let r = 0; r < pool.k[l][g].length / (maxLen * hd); r++)
        for (let t = 0; t < upTo; t++)
          for (let i = 0; i < hd; i++) {
            assert.equal(pool.k[l][g][(r * L + t) * hd + i], value(l, r, t, i), `${what}: key layer ${l} row ${r} position ${t}`);
            assert.equal(pool.v[l][g][(r * L + t) * hd + i], -value(l, r, t, i), `${what}: value layer ${l} row ${r} position ${t}`);
          }
  };
  fitGroup(pool, 0, 10);
  assert.equal(pool.L[0], 16, "first fit: the next multiple of 16");
  assert.equal(pool.L[1], 0, "the other group untouched");
  fill(0, 16, 10);
  fitGroup(pool, 0, 16);
  assert.equal(pool.L[0], 16, "no change while it fits");
  fitGroup(pool, 0, 17);
  assert.equal(pool.L[0], 32, "grows to 32");
  check(0, 32, 10, "after growing");
  fill(0, 32, 17);
  fitGroup(pool, 0, 49);
  assert.equal(pool.L[0], maxLen, "grows at most to maxLen");
  check(0, maxLen, 17, "after growing to maxLen");
  fitGroup(pool, 0, 19);
  assert.equal(pool.L[0], maxLen, "no shrink by less than 32");
  fitGroup(pool, 0, 17);
  assert.equal(pool.L[0], 32, "shrinks once 32 too long");
  check(0, 32, 17, "after shrinking");
  fitGroup(pool, 0, 0);
  assert.equal(pool.L[0], 32, "an empty group keeps its stride");
  fitGroup(pool, 1, 5);
  fill(1, 16, 5);
  fitGroup(pool, 1, 40);
  check(1, 48, 5, "the last, smaller group after growing");
});
