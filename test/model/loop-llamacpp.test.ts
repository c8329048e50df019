/**
 * The loop with engine llama.cpp on the sandbox-tiny M1: M1 is exported to GGUF, llama.cpp samples and
 * judges (base GGUF + the LoRA adapter's GGUF), the builtin engine trains the adapter. The same run on
 * the builtin engine is the reference: both sample with the same sampler from the same seeds, and with
 * an F32 GGUF and F32 KV cache llama.cpp's log-probs differ from the builtin's by ~1e-5, so the drawn
 * tokens agree unless a uniform draw lands within ~1e-5 of a boundary of the cumulative distribution
 * (rare: ~1e-5 per token). So the candidates and judgements must agree (≥ 95%, allowing a rare divergence), their
 * log-probs must differ a little (proof that llama.cpp made them) but by < 1e-3, and the held-out
 * gold scores — measured on the builtin engine after training on those candidates — within 0.1.
 * One sequence at a time: with several, node-llama-cpp batches whatever steps are queued together, so
 * the batch shapes (and the last bits of the logits) depend on timing, and on a loaded machine a few
 * long judgements drift apart.
 */
import assert from "node:assert/strict";
import { cp, mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { disposeCpuLlama } from "../../src/engine/llama-cpp.js";
import { createKernels } from "../../src/engine/ort.js";
import { readJsonl } from "../../src/io/jsonl.js";
import { loadRunConfig } from "../../src/loop/config.js";
import { ADAPTER_GGUF } from "../../src/loop/engines.js";
import { type Candidate, type Judgement, runLoop } from "../../src/loop/run.js";
import { llamaCppMissing } from "../llama-cpp-fixtures.js";

const tmp = await mkdtemp(join(tmpdir(), "srlm-loop-llamacpp-"));
after(async () => {
  await disposeCpuLlama();
  await rm(tmp, { recursive: true, force: true });
});

test("engine llama.cpp: same candidates, judgements and metrics as the builtin engine on the same M1 (LoRA DPO, 2 iterations)", {
  skip: llamaCppMissing,
}, async () => {
  const kernels = await createKernels("ort");
  try {
    // Oracle pairs (judge.by gold): the tiny M1's own judgements rarely parse, and a DPO step is needed
    // so that iteration 2 samples from base GGUF + a trained adapter.
    const common = ["iterations=2", "prompts.count=12", "prompts.chunk=12", "lora.r=8", "judge.by=gold"];
    const builtinDir = join(tmp, "builtin");
    const cfgA = await loadRunConfig({ preset: "sandbox-tiny", set: common });
    const a = await runLoop(cfgA, builtinDir, { kernels, progress: false, log: () => {} });
    // The same M1 (its folder copied: the sandbox pipeline skips what exists).
    const llamaDir = join(tmp, "llama");
    await cp(join(builtinDir, "m1"), join(llamaDir, "m1"), { recursive: true });
    const cfgB = await loadRunConfig({
      preset: "sandbox-tiny",
      set: [...common, "engine=llama.cpp", "llama_cpp.exact_kv=true", "llama_cpp.threads=1", "llama_cpp.sequences=1"],
    });
    const b = await runLoop(cfgB, llamaDir, { kernels, progress: false, log: () => {} });

    assert.ok((await stat(join(llamaDir, "m1", "model.gguf"))).size > 0, "M1 exported to GGUF");
    // Iteration 2 sampled from base GGUF + M2's adapter, exported beside the adapter's safetensors.
    assert.ok((await stat(join(llamaDir, "iter-1", "train", "final", ADAPTER_GGUF))).size > 0, "M2's adapter exported and loaded");
    assert.equal(b.finalDir, join(llamaDir, "iter-2", "train", "final"));
    for (const t of [1, 2]) {
      const ca = await readJsonl<Candidate>(join(builtinDir, `iter-${t}`, "candidates.jsonl"));
      const cb = await readJsonl<Candidate>(join(llamaDir, `iter-${t}`, "candidates.jsonl"));
      assert.equal(cb.length, ca.length);
      const same = ca.filter((c, i) => c.text === cb[i].text).length / ca.length;
      let maxDiff = 0;
      for (const [i, c] of ca.entries()) if (c.text === cb[i].text) maxDiff = Math.max(maxDiff, Math.abs(c.logprob - cb[i].logprob));
      process.stderr.write(
        `iteration ${t}: ${(same * 100).toFixed(1)}% identical candidates, max |Δ logprob| ${maxDiff.toExponential(2)}\n`,
      );
      assert.ok(same >= 0.95, `iteration ${t}: only ${(same * 100).toFixed(1)}% of the candidates agree`);
      assert.ok(maxDiff > 0 && maxDiff < 1e-3, `iteration ${t}: max |Δ logprob| ${maxDiff} (0 would mean llama.cpp did not sample)`);
    }
    // Judging through llama.cpp: one iteration judged by the model (no pairs: the tiny judge rarely parses).
    const judged: Judgement[][] = [];
    for (const [name, extra] of [
      ["builtin-judge", []],
      ["llama-judge", ["engine=llama.cpp", "llama_cpp.exact_kv=true", "llama_cpp.threads=1", "llama_cpp.sequences=1"]],
    ] as const) {
      await cp(join(builtinDir, "m1"), join(tmp, name, "m1"), { recursive: true });
      const cfg = await loadRunConfig({ preset: "sandbox-tiny", set: ["iterations=1", "prompts.count=6", "lora.r=8", ...extra] });
      await runLoop(cfg, join(tmp, name), { kernels, progress: false, log: () => {} });
      judged.push(await readJsonl<Judgement>(join(tmp, name, "iter-1", "judgements.jsonl")));
    }
    const [ja, jb] = judged;
    assert.ok(ja.length > 0 && ja.length === jb.length);
    const sameJudgements = ja.filter((j, i) => j.text === jb[i].text).length / ja.length;
    process.stderr.write(`judgements: ${(sameJudgements * 100).toFixed(1)}% identical of ${ja.length}\n`);
    assert.ok(sameJudgements >= 0.95, `only ${(sameJudgements * 100).toFixed(1)}% of the judgements agree`);

    for (const [i, ma] of a.metrics.entries()) {
      const mb = b.metrics[i];
      process.stderr.write(
        `${ma.model}: gold builtin ${ma["eval/gold"]} llama.cpp ${mb["eval/gold"]}, pairs ${ma["pairs/count"]} / ${mb["pairs/count"]}\n`,
      );
      assert.ok(Math.abs((ma["eval/gold"] as number) - (mb["eval/gold"] as number)) <= 0.1, `${ma.model}: eval/gold`);
    }
  } finally {
    await kernels.dispose();
  }
});
