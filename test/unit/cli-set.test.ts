// `--set key=value` overrides name the field and keep its type.
import assert from "node:assert/strict";
import { test } from "node:test";
import { setPath } from "../../src/cli/sandbox-sft.js";
import { preset } from "../../src/sandbox/preset.js";

test("--set overwrites an existing preset field, parsing JSON values", () => {
  const p = preset("sandbox");
  setPath(p as unknown as Record<string, unknown>, "sft.steps=4000");
  setPath(p as unknown as Record<string, unknown>, "name=mine");
  assert.equal(p.sft.steps, 4000, "number field");
  assert.equal(p.name, "mine", "string field (not JSON)");
  assert.equal(preset("sandbox").sft.steps !== 4000, true, "presets are copies");
});

test("--set refuses unknown fields and wrong types, naming them", () => {
  const p = preset("sandbox") as unknown as Record<string, unknown>;
  assert.throws(
    () => setPath(p, "sft.stepz=1"),
    /"sft.stepz" is not a preset field \(fields here: steps, learningRate/,
    "unknown field lists the known ones",
  );
  assert.throws(() => setPath(p, "sft.steps=many"), /"sft.steps" is a number/, "type mismatch");
  assert.throws(() => setPath(p, "sft.steps"), /expected key=value/, "no value");
});
