// The sandbox M1 pipeline end to end on the tiny preset: every stage writes its files, the metrics
// are all there, a second run resumes (skips finished stages) and gives the same metrics, and a
// model that cannot judge yet has its unparsable judgements counted as failures, never guessed.
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { createKernels } from "../../src/engine/ort.js";
import { buildM1 } from "../../src/sandbox/pipeline.js";
import { preset } from "../../src/sandbox/preset.js";

test("sandbox-tiny builds M1, writes every stage, resumes to the same metrics", async () => {
  const dir = await mkdtemp(join(tmpdir(), "srlm-sandbox-"));
  const kernels = await createKernels("ort");
  const lines: string[] = [];
  try {
    const p = preset("sandbox-tiny");
    const r = await buildM1(p, dir, { kernels, progress: false, log: (l) => lines.push(l) });
    assert.deepEqual(
      (await readdir(join(dir, "data"))).sort(),
      ["eft.jsonl", "eft_histogram.json", "eval.jsonl", "ift.jsonl"],
      "data files",
    );
    assert.ok((await readdir(join(dir, "m1", "final"))).includes("model.safetensors"), "M1 weights");
    const m = r.metrics;
    assert.equal(m.tasks, p.sizes.eval, "every held-out prompt evaluated");
    for (const k of ["gold", "exact", "length", "sampledGold", "distinct", "likelihoodPairwiseAccuracy"] as const) {
      assert.ok(Number.isFinite(m[k]), `${k} = ${m[k]}`);
    }
    assert.equal(m.judgeOwn.judged, p.sizes.eval * p.evalSamples, "one judgement per own sample");
    assert.ok(m.judgeOwn.parseFailureRate >= 0 && m.judgeOwn.parseFailureRate <= 1, "parse failure rate is a rate");
    if (m.judgeOwn.parseFailureRate === 1) assert.ok(Number.isNaN(m.judgeOwn.mae), "no parsed judgement → no MAE, not a guess");
    const eftLines = (await readFile(join(dir, "data", "eft.jsonl"), "utf8")).trim().split("\n");
    assert.equal(eftLines.length, p.sizes.eft, "EFT size");
    assert.ok(
      lines.some((l) => /EFT: \d+ judgements/.test(l)),
      "stage log lines",
    );

    const again = await buildM1(p, dir, { kernels, progress: false, log: () => {} });
    assert.deepEqual(again.metrics, m, "resumed run: same metrics");
    assert.ok(again.seconds.sft < r.seconds.sft + 1, "finished stages are not redone");
  } finally {
    await kernels.dispose();
    await rm(dir, { recursive: true, force: true });
  }
});
