/**
 * A stand-in for TRL in the loop's tests (no Python stack here): `trl.command` points at this file, so
 * launch.sh runs `node --import tsx test/fake-trl-trainer.ts --fake_flag 1 train_dpo.py dpo_config.yaml` in
 * iter-<t>/trl/. It checks what srlm handed over (the script, the config's paths, train.jsonl in TRL's
 * standard format, the env launch.sh exported), prints tqdm-style progress, and "trains": M_t's
 * adapter with small nonzero B added, saved in PEFT's layout to output/ the way train_dpo.py does it
 * (output.tmp/ renamed into place), with TRL-named metrics. Each launch appends a line to calls.txt.
 *
 * SRLM_FAKE_TRL_FAIL=1 in the environment makes it fail after printing a traceback-like tail.
 */
import { appendFileSync, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { parse as parseYaml } from "yaml";
import { loadLoraAdapter, saveLoraAdapter } from "../src/io/peft.js";
import { fromHfConfig } from "../src/model/config.js";

function fail(msg: string): never {
  process.stderr.write(`fake trainer: ${msg}\n`);
  process.exit(9);
}

// Like a launcher: its own arguments (trl.launch_args) first, then the script and its config file.
const args = process.argv.slice(2);
const [script, configFile] = args.slice(-2);
if (args.slice(0, -2).join(" ") !== "--fake_flag 1")
  fail(`expected the launcher arguments "--fake_flag 1", got "${args.slice(0, -2).join(" ")}"`);
if (script !== "train_dpo.py" || !existsSync(script)) fail(`expected train_dpo.py as the script, got ${script}`);
if (!readFileSync(script, "utf8").includes("DPOTrainer")) fail("train_dpo.py does not run DPOTrainer");
const cfg = parseYaml(readFileSync(configFile, "utf8")) as {
  model_name_or_path: string;
  init_adapter: string;
  train_file: string;
  output_adapter: string;
  metrics_file: string;
  lora: { r: number };
  dpo: Record<string, unknown>;
};
const here = process.cwd();
const at = (p: string) => (isAbsolute(p) ? p : join(here, p));
if (process.env.SRLM_FAKE_TRL_FROM_CONFIG !== "exported") fail("launch.sh did not export trl.env");

const rows = readFileSync(at(cfg.train_file), "utf8")
  .split("\n")
  .filter((l) => l.trim() !== "")
  .map((l) => JSON.parse(l) as Record<string, unknown>);
if (rows.length === 0) fail("train.jsonl is empty");
for (const r of rows) {
  const keys = Object.keys(r).join(",");
  if (keys !== "prompt,chosen,rejected") fail(`train.jsonl row has keys ${keys}`);
  if (typeof r.prompt !== "string" || typeof r.chosen !== "string" || typeof r.rejected !== "string")
    fail("train.jsonl is not TRL's standard format");
}
if (typeof cfg.dpo.beta !== "number" || typeof cfg.dpo.learning_rate !== "number")
  fail("dpo_config.yaml has no numeric beta / learning_rate");
appendFileSync(join(here, "calls.txt"), `${rows.length} pairs\n`);

const steps = 2;
process.stderr.write("Map: 100%|██████████| 4/4 [00:00<00:00, 900 examples/s]\n");
for (let s = 0; s <= steps; s++) process.stderr.write(`${Math.round((100 * s) / steps)}%|          | ${s}/${steps} [00:00<00:00]\r`);
process.stderr.write("\n");
if (process.env.SRLM_FAKE_TRL_FAIL === "1") {
  process.stderr.write('Traceback (most recent call last):\n  File "train_dpo.py", line 1\nRuntimeError: fake trainer: failing as asked\n');
  process.exit(1);
}

const model = fromHfConfig(JSON.parse(readFileSync(join(cfg.model_name_or_path, "config.json"), "utf8")));
const adapter = await loadLoraAdapter(cfg.init_adapter, model);
if (adapter.config.r !== cfg.lora.r) fail(`M_t's adapter has r = ${adapter.config.r}, dpo_config.yaml says ${cfg.lora.r}`);
let k = 0;
for (const layer of adapter.layers) {
  for (const pair of Object.values(layer)) {
    if (!pair) continue;
    for (let i = 0; i < pair.B.length; i++) pair.B[i] += 0.05 * Math.sin(++k);
  }
}
const out = at(cfg.output_adapter);
const tmp = `${out}.tmp`;
rmSync(tmp, { recursive: true, force: true });
await saveLoraAdapter(tmp, model, adapter, { baseModel: cfg.model_name_or_path });
rmSync(out, { recursive: true, force: true });
renameSync(tmp, out);
const metrics = [
  {
    loss: Math.LN2, // DPO's loss at a zero margin
    "rewards/chosen": 0.01,
    "rewards/rejected": -0.01,
    "rewards/margins": 0.02,
    "rewards/accuracies": 0.5,
    epoch: 0.5,
    step: 1,
  },
  { loss: 0.65, "rewards/chosen": 0.05, "rewards/rejected": -0.05, "rewards/margins": 0.1, "rewards/accuracies": 1, epoch: 1, step: 2 },
  { train_runtime: 0.1, train_loss: 0.67, epoch: 1, step: 2 },
];
writeFileSync(at(cfg.metrics_file), `${metrics.map((m) => JSON.stringify(m)).join("\n")}\n`);
process.stdout.write(`fake trainer: saved ${out}\n`);
