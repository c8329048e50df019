// train_dpo.py's own logic, run by Python against stand-in modules (torch, transformers, datasets,
// peft, trl written below; no real ML stack here): the DPOConfig it builds from dpo_config.yaml, M_t's
// adapter continued plus its frozen reference copy, resume from a checkpoint, the adapter renamed into
// output/ without the reference copy, NaN metrics written as null, and its errors. Skipped where
// python3 with PyYAML and packaging is missing.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { runConfig } from "../../src/loop/config.js";
import { dpoConfigYaml, TRAIN_DPO_PY } from "../../src/loop/trl.js";

const python = spawnSync("python3", ["-c", "import yaml, packaging.version"], { encoding: "utf8" });
const skip = python.status !== 0 ? "python3 with PyYAML and packaging is not installed" : false;

const tmp = await mkdtemp(join(tmpdir(), "srlm-trl-script-"));
after(() => rm(tmp, { recursive: true, force: true }));

/** Stand-ins that record what the script asks of them (one JSON line per call in $STUB_LOG). */
const STUBS: Record<string, string> = {
  "_stub_log.py": `import json, os
def record(event, **kw):
    with open(os.environ["STUB_LOG"], "a") as f:
        f.write(json.dumps({"event": event, **kw}) + "\\n")
`,
  "torch.py": 'bfloat16 = "bfloat16"\nfloat32 = "float32"\n',
  "transformers.py": `from _stub_log import record
__version__ = "4.57.0"
class _Tokenizer:
    pad_token = None
    eos_token = "<|eot_id|>"
class AutoTokenizer:
    @staticmethod
    def from_pretrained(path):
        record("tokenizer", path=path)
        return _Tokenizer()
class AutoModelForCausalLM:
    @staticmethod
    def from_pretrained(path, **kw):
        record("model", path=path, kw={k: str(v) for k, v in kw.items()})
        return object()
`,
  "datasets.py": `import json
from _stub_log import record
def load_dataset(kind, data_files, split):
    rows = [json.loads(line) for line in open(data_files) if line.strip()]
    record("dataset", kind=kind, path=data_files, split=split, rows=len(rows))
    return rows
`,
  "peft.py": `from _stub_log import record
class LoraConfig:
    def __init__(self, **kw):
        self.kw = kw
class PeftModel:
    def __init__(self):
        self.adapters = {}
    @classmethod
    def from_pretrained(cls, model, path, adapter_name="default", is_trainable=False):
        m = cls()
        m.adapters[adapter_name] = {"path": path, "trainable": is_trainable}
        return m
    def load_adapter(self, path, adapter_name, is_trainable=False):
        self.adapters[adapter_name] = {"path": path, "trainable": is_trainable}
    def set_adapter(self, name):
        self.active = name
def get_peft_model(model, config):
    record("get_peft_model", config=config.kw)
    m = PeftModel()
    m.adapters["default"] = {"path": None, "trainable": True}
    return m
`,
  // A TRL without max_prompt_length (as a future version might be): a None value is dropped.
  "trl.py": `import dataclasses, json, os
from _stub_log import record
__version__ = "0.0-stub"
FIELDS = """output_dir seed learning_rate lr_scheduler_type warmup_ratio warmup_steps num_train_epochs max_steps
per_device_train_batch_size gradient_accumulation_steps max_grad_norm weight_decay adam_beta1 adam_beta2 adam_epsilon
logging_steps save_strategy save_steps save_total_limit beta loss_type label_smoothing rpo_alpha max_length bf16
report_to model_adapter_name ref_adapter_name gradient_checkpointing""".split()
DPOConfig = dataclasses.make_dataclass("DPOConfig", [(n, object, dataclasses.field(default=None)) for n in FIELDS])
class _Accelerator:
    is_main_process = True
    def wait_for_everyone(self):
        pass
class _State:
    log_history = [{"loss": 0.69, "rewards/margins": float("nan"), "step": 1}, {"train_loss": 0.69, "step": 1}]
class DPOTrainer:
    def __init__(self, model, args, train_dataset, processing_class=None):
        record("trainer", args=dataclasses.asdict(args), rows=len(train_dataset), pad=processing_class.pad_token,
               adapters=model.adapters, active=getattr(model, "active", None))
        self.model = model
        self.accelerator = _Accelerator()
        self.state = _State()
    def train(self, resume_from_checkpoint=None):
        record("train", resume=resume_from_checkpoint)
    def save_model(self, out):
        for name in self.model.adapters:
            d = out if name == "default" else os.path.join(out, name)
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "adapter_config.json"), "w") as f:
                json.dump({"peft_type": "LORA", "adapter": name}, f)
            open(os.path.join(d, "adapter_model.safetensors"), "wb").close()
`,
};

async function setup(
  name: string,
  trl: Record<string, unknown> = {},
): Promise<{ dir: string; run: () => { status: number | null; stderr: string } }> {
  const stubs = join(tmp, "stubs");
  await mkdir(stubs, { recursive: true });
  for (const [file, text] of Object.entries(STUBS)) await writeFile(join(stubs, file), text);
  const dir = join(tmp, name, "trl");
  await mkdir(dir, { recursive: true });
  const cfg = runConfig({ model: { path: "/models/m" }, prompts: { source: "file", path: "p.jsonl" }, trainer: "trl", trl });
  await writeFile(
    join(dir, "dpo_config.yaml"),
    dpoConfigYaml(cfg, 1, { runDir: "r", modelPath: "/models/m", initAdapter: "/runs/r/m1/adapter", maxSeqLen: 512 }),
  );
  await writeFile(
    join(dir, "train.jsonl"),
    '{"prompt": "p", "chosen": "a", "rejected": "b"}\n{"prompt": "q", "chosen": "c", "rejected": "d"}\n',
  );
  await writeFile(join(dir, "train_dpo.py"), TRAIN_DPO_PY);
  const log = join(dir, "stub.jsonl");
  // From another folder: the script finds dpo_config.yaml beside itself and resolves its paths there.
  const run = () =>
    spawnSync("python3", [join(dir, "train_dpo.py")], {
      cwd: tmp,
      encoding: "utf8",
      env: { ...process.env, PYTHONPATH: stubs, STUB_LOG: log },
    });
  return { dir, run };
}

const events = async (dir: string) =>
  (await readFile(join(dir, "stub.jsonl"), "utf8"))
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown> & { event: string });

test("train_dpo.py: continues M_t's adapter against its frozen copy, saves output/ and metrics.jsonl", { skip }, async () => {
  const { dir, run } = await setup("ok", { config: { gradient_checkpointing: true } });
  const r = run();
  assert.equal(r.status, 0, r.stderr);
  const ev = await events(dir);
  const model = ev.find((e) => e.event === "model");
  assert.deepEqual(model, { event: "model", path: "/models/m", kw: { dtype: "bfloat16" } }, "bf16 model, transformers ≥ 4.56 spelling");
  const trainer = ev.find((e) => e.event === "trainer") as unknown as Record<string, unknown> & { args: Record<string, unknown> };
  assert.deepEqual(trainer.adapters, {
    default: { path: "/runs/r/m1/adapter", trainable: true },
    reference: { path: "/runs/r/m1/adapter", trainable: false },
  });
  assert.equal(trainer.active, "default");
  assert.equal(trainer.pad, "<|eot_id|>", "pad token = EOS when the tokenizer has none");
  assert.equal(trainer.rows, 2);
  assert.equal(trainer.args.model_adapter_name, "default");
  assert.equal(trainer.args.ref_adapter_name, "reference");
  assert.equal(trainer.args.output_dir, join(dir, "checkpoints"), "relative to dpo_config.yaml");
  assert.equal(trainer.args.adam_epsilon, 1e-8, "a float, not the string 1e-8");
  assert.equal(trainer.args.gradient_checkpointing, true, "trl.config passed through");
  assert.equal(trainer.args.max_length, 512);
  assert.ok(!("max_prompt_length" in trainer.args), "a None field this TRL lacks is dropped");
  assert.deepEqual(
    ev.find((e) => e.event === "train"),
    { event: "train", resume: null },
  );
  assert.ok(existsSync(join(dir, "output", "adapter_model.safetensors")));
  assert.equal(JSON.parse(await readFile(join(dir, "output", "adapter_config.json"), "utf8")).adapter, "default");
  assert.ok(!existsSync(join(dir, "output", "reference")), "the reference copy is not kept");
  assert.ok(!existsSync(join(dir, "output.tmp")));
  const metrics = (await readFile(join(dir, "metrics.jsonl"), "utf8"))
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.deepEqual(metrics[0], { loss: 0.69, "rewards/margins": null, step: 1 }, "NaN written as null (JSON)");

  // A relaunch resumes from the newest checkpoint and replaces output/.
  await mkdir(join(dir, "checkpoints", "checkpoint-2"), { recursive: true });
  const again = run();
  assert.equal(again.status, 0, again.stderr);
  assert.deepEqual((await events(dir)).filter((e) => e.event === "train").at(-1), { event: "train", resume: true });
});

test("train_dpo.py: an unknown DPOConfig field, and a missing ML stack, are named errors", { skip }, async () => {
  const { run } = await setup("unknown", { config: { not_a_field: 3 } });
  const r = run();
  assert.equal(r.status, 2);
  assert.match(r.stderr, /DPOConfig of TRL 0\.0-stub has no field\(s\) not_a_field/);
  const { dir } = await setup("nostack");
  // -S and no stubs: not even torch imports.
  const bare = spawnSync("python3", ["-S", join(dir, "train_dpo.py")], { encoding: "utf8", env: { PATH: process.env.PATH ?? "" } });
  assert.equal(bare.status, 3);
  assert.match(bare.stderr, /No module named 'torch'\. The TRL trainer needs torch transformers datasets peft trl accelerate pyyaml/);
});
