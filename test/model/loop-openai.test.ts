/**
 * The loop with engine openai against `srlm serve` (a child process) on the sandbox-tiny M1: the
 * server runs M1, the builtin engine trains the LoRA adapter in-process, and iteration 2 samples from
 * M2's adapter, hot-loaded into the server through vLLM's runtime LoRA API.
 *
 * The same run on the builtin engine is the reference. Server kind srlm sends one request per sample,
 * seeded so that the server draws the builtin engine's stream for it (requestSeedFor), and the server
 * merges an adapter as the trainer does, so both runs sample the same tokens from the same
 * distributions. The floats are not bit-identical: with onnxruntime kernels a row's logits depend in
 * the last bits on its batch, and the server batches whichever single-sample requests arrive
 * together while the builtin engine decodes a whole chunk at once. So log-probs agree to ~1e-6 and a
 * token could in principle flip where a uniform draw lands within ~1e-6 of a boundary of the
 * cumulative distribution: candidates must agree ≥ 95% (measured: 100%), log-probs within 1e-3.
 *
 * Interruptions: the run is first aborted in the middle of a chunk of iteration 1 and resumed (the
 * journal must give back every sample completed before the abort, and none may be requested twice);
 * then the server is SIGKILLed in the middle of iteration 2, just after it began serving M2's
 * adapter, and restarted on the same port: the run must finish, the restarted server must get the
 * adapter again, and no generation may be lost or redone (the engines' counts and the journal).
 */
import assert from "node:assert/strict";
import { cp, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { createKernels } from "../../src/engine/ort.js";
import { readJsonl } from "../../src/io/jsonl.js";
import { readSafetensors } from "../../src/io/safetensors.js";
import { loadRunConfig } from "../../src/loop/config.js";
import { adapterName, GENERATIONS_JOURNAL } from "../../src/loop/engines.js";
import { type Candidate, type Judgement, runLoop } from "../../src/loop/run.js";
import { type ServeChild, startServe } from "../serve-fixtures.js";

const tmp = await mkdtemp(join(tmpdir(), "srlm-loop-openai-"));
const children: ServeChild[] = [];
after(async () => {
  for (const c of children) c.proc.kill("SIGKILL");
  await rm(tmp, { recursive: true, force: true });
});

/** Calls `f` on the child's stderr (all of it so far) whenever more arrives. */
function watch(child: ServeChild, f: (stderr: string) => void): void {
  child.proc.stderr?.on("data", () => f(child.stderr()));
}

const count = (text: string, re: RegExp) => text.match(new RegExp(re.source, "gm"))?.length ?? 0;

/** The engine's summary line at the end of each runLoop (engines.ts openaiModels.dispose). */
function summary(lines: string[]): { requests: number; retried: number; received: number; fromJournal: number; loads: number } {
  const m = lines
    .map((l) =>
      /openai engine: (\d+) requests \((\d+) retried\), (\d+) samples received, (\d+) from the journal, (\d+) adapter loads/.exec(l),
    )
    .find((x) => x !== null);
  assert.ok(m, `no engine summary among: ${lines.join(" | ")}`);
  const [requests, retried, received, fromJournal, loads] = m.slice(1).map(Number);
  return { requests, retried, received, fromJournal, loads };
}

test("engine openai against srlm serve: the builtin engine's candidates and metrics; survives an aborted run and a server SIGKILL mid-iteration", async () => {
  const kernels = await createKernels("ort");
  try {
    // Oracle pairs (judge.by gold): the tiny M1's judgements rarely parse, and a DPO step is needed so
    // that iteration 2 samples from M1 + a trained adapter.
    const common = ["iterations=2", "prompts.count=12", "prompts.chunk=6", "lora.r=8", "judge.by=gold"];
    const builtinDir = join(tmp, "builtin");
    const a = await runLoop(await loadRunConfig({ preset: "sandbox-tiny", set: common }), builtinDir, {
      kernels,
      progress: false,
      log: () => {},
    });

    // The server runs M1's weights; the openai run starts from a copy of the same M1.
    const openaiDir = join(tmp, "openai");
    await cp(join(builtinDir, "m1"), join(openaiDir, "m1"), { recursive: true });
    const m1 = join(builtinDir, "m1", "m1", "final");
    // Not --quiet: the test follows the server's request log lines.
    const serveArgs = ["--model-name", "m1", "--enable-lora"];
    const first = await startServe(m1, ["--port", "0", ...serveArgs]);
    children.push(first);
    const cfgB = await loadRunConfig({
      preset: "sandbox-tiny",
      set: [...common, "engine=openai", `openai.base_urls=${first.url}`, "openai.model=m1", "openai.server=srlm", "openai.concurrency=4"],
    });
    assert.doesNotMatch(JSON.stringify(cfgB), /Bearer/);

    // 1. Abort the run once the server has answered 10 requests (iteration 1, the first chunk of 24 samples).
    const abort = new AbortController();
    watch(first, (err) => {
      if (!abort.signal.aborted && count(err, /^POST \/v1\/completions 200 .*$/) >= 10) abort.abort();
    });
    const log1: string[] = [];
    await assert.rejects(runLoop(cfgB, openaiDir, { kernels, progress: false, log: (l) => log1.push(l), signal: abort.signal }));
    const s1 = summary(log1);
    // The server had answered 10 requests; at most 4 (the concurrency) of those answers were still on their way.
    assert.ok(s1.received >= 6 && s1.received < 24, `aborted in the first chunk: ${s1.received} samples received`);

    // 2. Resume; SIGKILL the server right after it served M2's adapter 4 times, restart it on the same port.
    let restarted: Promise<ServeChild> | undefined;
    watch(first, (err) => {
      const loaded = err.indexOf('loaded LoRA adapter "iter-1-train-final-');
      if (restarted || loaded < 0 || count(err.slice(loaded), /^POST \/v1\/completions 200 .* model=iter-1-train-final-.*$/) < 4) return;
      first.proc.kill("SIGKILL");
      restarted = first.exited.then(() => startServe(m1, ["--port", String(first.port), ...serveArgs]));
      void restarted.then((c) => children.push(c));
    });
    const log2: string[] = [];
    const b = await runLoop(cfgB, openaiDir, { kernels, progress: false, log: (l) => log2.push(l) });
    assert.ok(restarted, "the server was killed during the run");
    const second = await restarted;
    const s2 = summary(log2);

    // The restarted server got M2's adapter again and served the rest of iteration 2 from it.
    const m2 = join(openaiDir, "iter-1", "train", "final");
    const name = await adapterName(m2, openaiDir);
    assert.match(second.stderr(), new RegExp(`loaded LoRA adapter "${name}"`), "adapter re-loaded after the restart");
    const afterRestart = count(second.stderr(), new RegExp(`^POST /v1/completions 200 .* model=${name}$`));
    assert.ok(afterRestart > 0, "the restarted server served the adapter");
    assert.ok(s2.retried > 0, "requests were retried while the server was down");
    assert.ok(s2.loads >= 2, `adapter loaded at first use and after the restart (${s2.loads} loads)`);
    // M2 is not M1: its adapter was trained (B ≠ 0), so sampling the same tokens as the builtin M2 needs it.
    const weights = await readSafetensors(join(m2, "adapter_model.safetensors"));
    const bTensors = [...weights.tensors].filter(([k]) => k.endsWith("lora_B.weight"));
    assert.ok(
      bTensors.some(([, t]) => t.data.some((x) => x !== 0)),
      "M2's adapter is trained",
    );

    // No generation lost or redone: 2 iterations × 12 prompts × 4 candidates, each received from a
    // server exactly once over both processes, each journaled once; the resumed run took back from
    // the journal what the aborted one had received in its unfinished chunk.
    const total = 2 * 12 * 4;
    const keys = (await readFile(join(openaiDir, GENERATIONS_JOURNAL), "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l).key as string);
    assert.equal(keys.length, total, "one journal line per generation");
    assert.equal(new Set(keys).size, total, "no generation journaled twice");
    assert.equal(s1.received + s2.received, total, "every generation received once");
    assert.equal(s2.fromJournal, s1.received, "the resumed run took the aborted run's generations from the journal");
    process.stderr.write(
      `aborted run: ${s1.received} samples; resumed: ${s2.received} received, ${s2.fromJournal} from the journal, ${s2.requests} requests (${s2.retried} retried), ${s2.loads} adapter loads; restarted server served ${afterRestart} adapter requests\n`,
    );

    // The builtin engine's candidates, log-probs and metrics.
    assert.equal(b.finalDir, join(openaiDir, "iter-2", "train", "final"));
    for (const t of [1, 2]) {
      const ca = await readJsonl<Candidate>(join(builtinDir, `iter-${t}`, "candidates.jsonl"));
      const cb = await readJsonl<Candidate>(join(openaiDir, `iter-${t}`, "candidates.jsonl"));
      assert.equal(cb.length, ca.length);
      const same = ca.filter((c, i) => c.text === cb[i].text).length / ca.length;
      let maxDiff = 0;
      for (const [i, c] of ca.entries()) if (c.text === cb[i].text) maxDiff = Math.max(maxDiff, Math.abs(c.logprob - cb[i].logprob));
      process.stderr.write(
        `iteration ${t}: ${(same * 100).toFixed(1)}% identical candidates, max |Δ logprob| ${maxDiff.toExponential(2)}\n`,
      );
      assert.ok(same >= 0.95, `iteration ${t}: only ${(same * 100).toFixed(1)}% of the candidates agree`);
      assert.ok(maxDiff < 1e-3, `iteration ${t}: max |Δ logprob| ${maxDiff}`);
    }
    for (const [i, ma] of a.metrics.entries()) {
      const mb = b.metrics[i];
      assert.equal(mb["pairs/count"], ma["pairs/count"], `${ma.model}: pairs`);
      assert.ok(Math.abs((ma["eval/gold"] as number) - (mb["eval/gold"] as number)) <= 0.1, `${ma.model}: eval/gold`);
    }

    // Judging through the server (base model): one iteration judged by the model, both engines.
    const judged: Judgement[][] = [];
    for (const [dirName, extra] of [
      ["builtin-judge", []],
      ["openai-judge", ["engine=openai", `openai.base_urls=${second.url}`, "openai.model=m1", "openai.server=srlm"]],
    ] as const) {
      await cp(join(builtinDir, "m1"), join(tmp, dirName, "m1"), { recursive: true });
      const cfg = await loadRunConfig({ preset: "sandbox-tiny", set: ["iterations=1", "prompts.count=3", "lora.r=8", ...extra] });
      await runLoop(cfg, join(tmp, dirName), { kernels, progress: false, log: () => {} });
      judged.push(await readJsonl<Judgement>(join(tmp, dirName, "iter-1", "judgements.jsonl")));
    }
    const [ja, jb] = judged;
    assert.ok(ja.length > 0 && ja.length === jb.length);
    const sameJudgements = ja.filter((j, i) => j.text === jb[i].text).length / ja.length;
    process.stderr.write(`judgements: ${(sameJudgements * 100).toFixed(1)}% identical of ${ja.length}\n`);
    assert.ok(sameJudgements >= 0.95, `only ${(sameJudgements * 100).toFixed(1)}% of the judgements agree`);

    second.proc.kill("SIGTERM");
    assert.equal(await second.exited, 0, "graceful exit on SIGTERM");
  } finally {
    await kernels.dispose();
  }
});
