// `srlm eval alpaca|mt-bench|rewardbench|gsm8k` end to end with a tiny random model as the judge on a
// handful of real records: its judgements do not parse, so every pair must be counted as failed (never
// guessed), the files must be written in their formats, and a second run must judge nothing again.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { evalAlpacaCommand } from "../../src/cli/eval-alpaca.js";
import { evalGsm8kCommand } from "../../src/cli/eval-gsm8k.js";
import { evalRewardBenchCommand } from "../../src/cli/eval-rewardbench.js";
import { type AlpacaAnnotation, readAlpacaOutputs } from "../../src/eval/alpaca.js";
import { saveHfModel } from "../../src/io/hf-folder.js";
import { llamaConfig } from "../../src/model/config.js";
import { initParams } from "../../src/model/params.js";
import { CharTokenizer } from "../../src/tokenizer/char.js";
import { sharedPath } from "../helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "srlm-eval-judge-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

async function tinyJudge(): Promise<string> {
  let ascii = "\n";
  for (let c = 32; c < 127; c++) ascii += String.fromCharCode(c);
  const tok = new CharTokenizer(ascii, { unknown: "unk" });
  const config = llamaConfig({ vocabSize: tok.vocabSize, dim: 16, nLayers: 1, nHeads: 2, hiddenDim: 32, maxSeqLen: 1200 });
  const dir = join(tmp, "judge");
  await saveHfModel(dir, config, initParams(config, 3));
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tok.toJSON()));
  return dir;
}

test("eval alpaca: unparsable judgements are failures; annotations in AlpacaEval's format; rerun resumes", async () => {
  const judge = await tinyJudge();
  const ref = readAlpacaOutputs(sharedPath("data/alpaca_eval/reference_outputs.json"));
  const model = readAlpacaOutputs(sharedPath("data/alpaca_eval/text_davinci_003_outputs.json"));
  const byInstr = new Map(model.map((m) => [m.instruction, m]));
  const size = (i: number) => ref[i].instruction.length + ref[i].output.length + (byInstr.get(ref[i].instruction)?.output.length ?? 0);
  const short = ref
    .map((_, i) => i)
    .filter((i) => size(i) < 500)
    .slice(0, 3);
  const long = ref.findIndex((_, i) => size(i) > 3000); // cannot fit the 1200-token context
  const pick = [...short, long];
  writeFileSync(join(tmp, "ref.json"), JSON.stringify(pick.map((i) => ref[i])));
  writeFileSync(join(tmp, "model.json"), JSON.stringify(pick.map((i) => byInstr.get(ref[i].instruction))));
  const out = join(tmp, "alpaca");
  const args = ["--outputs", join(tmp, "model.json"), "--reference", join(tmp, "ref.json"), "--judge", judge, "--out", out];
  await evalAlpacaCommand([...args, "--max-new-tokens", "12", "--batch", "4"]);
  const ann = JSON.parse(readFileSync(join(out, "annotations.json"), "utf8")) as AlpacaAnnotation[];
  assert.equal(ann.length, 4);
  for (const a of ann) {
    assert.equal(a.generator_1, "gpt4_1106_preview");
    assert.equal(a.generator_2, "text_davinci_003");
    assert.equal(a.annotator, "judge");
    assert.equal(a.preference, null, "a random model cannot write `better: 1`");
    assert.equal(a.judgements?.length, 2);
    assert.deepEqual(
      a.judgements?.map((j) => j.first),
      ["output_1", "output_2"],
    );
    assert.ok(a.judgements?.every((j) => j.verdict === null && j.error));
  }
  assert.match(ann[3].judgements?.[0].error ?? "", /context holds 1200/);
  const board = JSON.parse(readFileSync(join(out, "leaderboard.json"), "utf8"));
  assert.equal(board.n_failed, 4);
  assert.equal(board.n_total, 0);
  assert.equal(board.length_controlled_winrate, null, "no judged pair, no win rate (NaN is written as null)");
  const written = statSync(join(out, "annotations.json")).mtimeMs;
  await evalAlpacaCommand(args);
  assert.equal(statSync(join(out, "annotations.json")).mtimeMs, written, "nothing left to judge, nothing rewritten");
  assert.deepEqual(JSON.parse(readFileSync(join(out, "annotations.json"), "utf8")), ann);
});

test("eval rewardbench and gsm8k: grades and answers written, failures counted", async () => {
  const judge = join(tmp, "judge");
  const pairs = join(tmp, "pairs.jsonl");
  writeFileSync(pairs, `${JSON.stringify({ prompt: "Add 2 and 3.", chosen: "5", rejected: "6" })}\n`);
  await evalRewardBenchCommand(["--pairs", pairs, "--judge", judge, "--out", join(tmp, "rb"), "--max-new-tokens", "8"]);
  const rb = JSON.parse(readFileSync(join(tmp, "rb", "metrics.json"), "utf8"));
  assert.deepEqual([rb.accuracy, rb.n_failed, rb.n_total], [0, 1, 1]);
  const grades = JSON.parse(readFileSync(join(tmp, "rb", "grades.json"), "utf8"));
  assert.equal(grades.length, 2);
  assert.ok(grades.every((g: { rating: unknown; error?: string }) => g.rating === null && g.error));

  const problems = join(tmp, "gsm8k.jsonl");
  writeFileSync(problems, readFileSync(sharedPath("data/gsm8k/test.jsonl"), "utf8").split("\n").slice(0, 2).join("\n"));
  await evalGsm8kCommand(["--problems", problems, "--model", judge, "--out", join(tmp, "gsm"), "--max-new-tokens", "8"]);
  assert.equal(JSON.parse(readFileSync(join(tmp, "gsm", "metrics.json"), "utf8")).n_total, 2);
  assert.equal(readAlpacaOutputs(join(tmp, "gsm", "outputs.json")).length, 2);
});
