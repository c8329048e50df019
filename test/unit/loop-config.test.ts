import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { parse as parseYaml } from "yaml";
import { configYaml, loadRunConfig, runConfig, runPresets, setOverride } from "../../src/loop/config.js";

const tmp = await mkdtemp(join(tmpdir(), "srlm-cfg-"));
const file = async (name: string, text: string) => {
  const p = join(tmp, name);
  await writeFile(p, text);
  return p;
};

test("presets validate and carry the paper's defaults", async () => {
  for (const name of Object.keys(runPresets)) {
    const c = await loadRunConfig({ preset: name });
    assert.equal(c.preset, name, `${name}: preset recorded`);
  }
  const c = await loadRunConfig({ preset: "sandbox" });
  assert.equal(c.generate.n, 4, "N = 4");
  assert.equal(c.judge.samples, 3, "K = 3");
  assert.equal(c.dpo.beta, 0.1, "β = 0.1");
  assert.equal(c.iterations, 3, "three iterations");
});

test("file then --set override the preset; the resolved YAML reads back to the same config", async () => {
  const p = await file("a.yaml", "preset: sandbox-tiny\nseed: 7\ndpo:\n  beta: 0.3\n");
  const c = await loadRunConfig({ file: p, set: ["judge.samples=1", "judge.temperature=0", "dpo.loss_type=ipo"] });
  assert.equal(c.seed, 7, "seed from the file");
  assert.equal(c.dpo.beta, 0.3, "beta from the file");
  assert.equal(c.dpo.learning_rate, 1e-3, "learning rate from the preset survives the file's dpo block");
  assert.equal(c.judge.samples, 1, "--set number");
  assert.equal(c.dpo.loss_type, "ipo", "--set string");
  assert.deepEqual(runConfig(parseYaml(configYaml(c))), c, "round trip through config.resolved.yaml");
});

test("errors name the field and the allowed values", async () => {
  await assert.rejects(loadRunConfig({ preset: "sandbox", set: ["method=magic"] }), /method: expected one of "sr", "control"/, "bad enum");
  await assert.rejects(loadRunConfig({ preset: "sandbox", set: ["generate.n=1"] }), /generate\.n:/, "N below 2");
  await assert.rejects(
    loadRunConfig({ preset: "sandbox", set: ["dpo.loss_type=dpo"] }),
    /dpo\.loss_type: expected one of "sigmoid"/,
    "TRL loss names",
  );
  await assert.rejects(
    loadRunConfig({ preset: "sandbox", set: ["generate.tempreature=1"] }),
    /generate: unknown field\(s\) tempreature/,
    "typo in a field",
  );
  await assert.rejects(loadRunConfig({ preset: "nope" }), /unknown preset "nope" \(known: sandbox, sandbox-tiny\)/, "unknown preset");
  await assert.rejects(
    loadRunConfig({ preset: "sandbox", set: ["judge.temperature=0"] }),
    /judge\.samples: greedy judging/,
    "K > 1 greedy judgements are identical",
  );
  const bad = await file("bad.yaml", "seed: [1\n");
  await assert.rejects(
    loadRunConfig({ file: bad }),
    new RegExp(`${bad.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: not valid YAML`),
    "YAML syntax error names the file",
  );
  const list = await file("list.yaml", "- 1\n- 2\n");
  await assert.rejects(loadRunConfig({ file: list }), /expected a mapping/, "top level must be a mapping");
  await assert.rejects(loadRunConfig({ file: join(tmp, "missing.yaml") }), /cannot read config .*missing\.yaml/, "missing file");
});

test("setOverride parses values as YAML and nests keys", () => {
  assert.deepEqual(setOverride("a.b.c=3"), { a: { b: { c: 3 } } }, "number");
  assert.deepEqual(setOverride("x=true"), { x: true }, "boolean");
  assert.deepEqual(setOverride("x=ipo"), { x: "ipo" }, "string");
  assert.deepEqual(setOverride("m={sft: {steps: 5}}"), { m: { sft: { steps: 5 } } }, "flow mapping");
  assert.throws(() => setOverride("novalue"), /expected key=value/, "no =");
  assert.throws(() => setOverride("a..b=1"), /empty key segment/, "empty segment");
});

test("prompts.self_instruct: defaults for source self_instruct only, validated like the rest", async () => {
  const c = await loadRunConfig({ preset: "sandbox-tiny", set: ["prompts.source=self_instruct"] });
  assert.deepEqual(
    c.prompts.self_instruct,
    { temperature: 1, top_p: 1, max_new_tokens: 48, attempts: 4 },
    "the block's defaults are filled in for the self_instruct source",
  );
  assert.deepEqual(runConfig(parseYaml(configYaml(c))), c, "round trip through config.resolved.yaml");
  const set = await loadRunConfig({
    preset: "sandbox-tiny",
    set: ["prompts.source=self_instruct", "prompts.self_instruct.attempts=2", "prompts.self_instruct.temperature=0.7"],
  });
  assert.equal(set.prompts.self_instruct?.attempts, 2, "--set attempts");
  assert.equal(set.prompts.self_instruct?.temperature, 0.7, "--set temperature");
  assert.equal(set.prompts.self_instruct?.max_new_tokens, 48, "unset fields keep their defaults");
  const other = await loadRunConfig({ preset: "sandbox" });
  assert.equal(other.prompts.self_instruct, undefined, "other sources carry no self_instruct block");
  assert.doesNotMatch(configYaml(other), /self_instruct/, "so their config.resolved.yaml is unchanged");
  for (const [assignment, want] of [
    ["prompts.self_instruct.attempts=0", /prompts\.self_instruct\.attempts:/],
    ["prompts.self_instruct.top_p=0", /prompts\.self_instruct\.top_p:/],
    ["prompts.self_instruct.max_new_tokens=1.5", /prompts\.self_instruct\.max_new_tokens:/],
    ["prompts.self_instruct.temprature=1", /prompts\.self_instruct: unknown field\(s\) temprature/],
  ] as const) {
    await assert.rejects(loadRunConfig({ preset: "sandbox", set: ["prompts.source=self_instruct", assignment] }), want, assignment);
  }
  await assert.rejects(
    loadRunConfig({ preset: "sandbox", set: ["prompts.source=instruct"] }),
    /prompts\.source: expected one of "sandbox", "file", "self_instruct"/,
    "unknown source lists the known ones",
  );
});

test("method blocks: defaults for their own method only, cream implies soft_label, round trip keeps key order", async () => {
  const sr = await loadRunConfig({ preset: "sandbox-tiny" });
  for (const k of ["cream", "scir", "meta", "temporal"]) assert.ok(!(k in sr), `sr: no ${k} block`);
  const cream = await loadRunConfig({ preset: "sandbox-tiny", set: ["method=cream"] });
  assert.deepEqual(cream.cream, { reward: "judge", consistency: "dyn" }, "cream defaults");
  assert.equal(cream.dpo.loss_type, "soft_label", "cream's loss written into the config");
  assert.deepEqual((await loadRunConfig({ preset: "sandbox-tiny", set: ["method=meta"] })).meta, {
    rho: 0,
    verdicts: "consistent",
    max_new_tokens: 12,
  });
  assert.deepEqual((await loadRunConfig({ preset: "sandbox-tiny", set: ["method=temporal"] })).temporal, { future_from: "future" });
  for (const m of ["spin", "cream", "scir", "meta", "temporal"]) {
    const c = await loadRunConfig({ preset: "sandbox-tiny", set: [`method=${m}`] });
    const again = runConfig(parseYaml(configYaml(c)));
    assert.equal(configYaml(again), configYaml(c), `${m}: config.resolved.yaml reads back to the same text (--resume compares it)`);
  }
  await assert.rejects(
    loadRunConfig({ preset: "sandbox-tiny", set: ["method=sr", "scir.consistency_weight=2"] }),
    /scir: the scir block applies only to method "scir"/,
  );
  await assert.rejects(
    loadRunConfig({ preset: "sandbox-tiny", set: ["method=cream", "dpo.loss_type=ipo"] }),
    /dpo\.loss_type: method "cream" trains with the soft-label loss/,
  );
  await assert.rejects(loadRunConfig({ preset: "sandbox-tiny", set: ["dpo.loss_type=soft_label"] }), /only method "cream" makes/);
  await assert.rejects(loadRunConfig({ preset: "sandbox-tiny", set: ["method=meta", "meta.rho=2"] }), /meta\.rho/);
  await assert.rejects(
    loadRunConfig({ preset: "sandbox-tiny", set: ["method=temporal", "temporal.future_from=past"] }),
    /temporal\.future_from: expected one of "future", "union"/,
  );
});
