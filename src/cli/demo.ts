/**
 * `npm run demo:engine`: train a tiny Llama from scratch on a pattern
 * (reverse a string of letters), then sample from it — the whole engine in one minute on 2 cores:
 * tokenizer → model → forward/backward on onnxruntime kernels → AdamW → KV-cache sampling →
 * HF checkpoint folder saved and loaded back.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { createKernels } from "../engine/ort.js";
import { mulberry32 } from "../engine/tensor.js";
import { loadHfModel, saveHfModel } from "../io/hf-folder.js";
import { llamaConfig, paramCount } from "../model/config.js";
import { generate } from "../model/generate.js";
import { createModel, type LlamaModel } from "../model/llama.js";
import { initParams } from "../model/params.js";
import { progress } from "../run/progress.js";
import { CharTokenizer } from "../tokenizer/char.js";
import { adamwInit } from "../train/adamw.js";
import { lmStep } from "../train/lm.js";

const { values: args } = parseArgs({
  options: {
    steps: { type: "string", default: "400" },
    out: { type: "string", default: "runs/demo" },
    seed: { type: "string", default: "0" },
  },
});

const LETTERS = "abcdefgh";
const tok = new CharTokenizer(`${LETTERS}=`);
const seed = Number(args.seed);

/** A random string of 3–6 letters. */
function word(rng: () => number): string {
  const n = 3 + Math.floor(rng() * 4);
  let s = "";
  for (let i = 0; i < n; i++) s += LETTERS[Math.floor(rng() * LETTERS.length)];
  return s;
}
const reverse = (s: string) => Array.from(s).reverse().join("");
// Held-out split by a property of the string, so training never sees an evaluation word.
const heldOut = (w: string) => (w.charCodeAt(0) * 7 + w.length * 13 + w.charCodeAt(w.length - 1)) % 10 === 0;

async function exactMatch(model: LlamaModel, words: string[]): Promise<number> {
  const out = await generate(
    model,
    tok,
    words.map((w) => `${w}=`),
    { temperature: 0, maxNewTokens: 8 },
  );
  return out.filter((s, i) => s[0].text === reverse(words[i])).length / words.length;
}

const t0 = performance.now();
const cfg = llamaConfig({
  vocabSize: tok.vocabSize,
  dim: 64, // tiny on purpose: the point is the engine, not the model
  nLayers: 2, // reversal needs one layer to find the mirrored position and one to copy
  nHeads: 4,
  nKvHeads: 2, // grouped-query attention, as in Llama 2/3
  hiddenDim: 192,
  maxSeqLen: 16, // <bos> + 6 letters + "=" + 6 letters + <eos>
});
const kernels = await createKernels("ort");
const model = createModel(cfg, initParams(cfg, seed), kernels);
console.log(`srlm engine demo: a ${(paramCount(cfg) / 1e3).toFixed(0)}K-parameter Llama learns to reverse letters ("abc=" → "cba")`);
console.log(`kernels: ${kernels.name}; config: ${JSON.stringify(cfg)}\n`);

const evalRng = mulberry32(seed + 1000);
const evalWords: string[] = [];
while (evalWords.length < 200) {
  const w = word(evalRng);
  if (heldOut(w)) evalWords.push(w);
}
console.log(`before training: held-out exact match ${(100 * (await exactMatch(model, evalWords))).toFixed(1)}%`);

// Training: "<bos>w=reverse(w)<eos>", loss on the answer and <eos> only (the prompt is masked).
const steps = Number(args.steps);
const B = 64;
const T = cfg.maxSeqLen;
const rng = mulberry32(seed);
const opt = adamwInit();
const optCfg = { lr: 3e-3, beta1: 0.9, beta2: 0.98, eps: 1e-8, weightDecay: 0.01 };
const bar = progress("train", steps);
let avg = 0;
for (let step = 1; step <= steps; step++) {
  const tokens = new Int32Array(B * T).fill(tok.padId);
  const targets = new Int32Array(B * T).fill(-1);
  for (let b = 0; b < B; b++) {
    let w = word(rng);
    while (heldOut(w)) w = word(rng);
    const prompt = tok.encode(`${w}=`);
    const ids = [...prompt, ...tok.encode(reverse(w), { addBos: false }), tok.eosId];
    tokens.set(ids, b * T);
    for (let t = prompt.length - 1; t < ids.length - 1; t++) targets[b * T + t] = ids[t + 1];
  }
  // warm up for 30 steps, then cosine decay to 10%
  const lr = step <= 30 ? (optCfg.lr * step) / 30 : optCfg.lr * (0.1 + 0.45 * (1 + Math.cos((Math.PI * (step - 30)) / (steps - 30))));
  const r = await lmStep(model, { tokens, targets, B, T }, opt, optCfg, { lr });
  avg = step === 1 ? r.loss : 0.95 * avg + 0.05 * r.loss;
  bar.update(step, `loss ${avg.toFixed(3)}`);
}
bar.finish(`loss ${avg.toFixed(3)}`);

console.log(`after training:  held-out exact match ${(100 * (await exactMatch(model, evalWords))).toFixed(1)}%\n`);
const show = evalWords.slice(0, 5);
const samples = await generate(
  model,
  tok,
  show.map((w) => `${w}=`),
  { temperature: 0.8, topP: 0.95, n: 3, seed, maxNewTokens: 8 },
);
for (let i = 0; i < show.length; i++) {
  const texts = samples[i].map((s) => `${s.text}${s.text === reverse(show[i]) ? " ✓" : " ✗"} (logp ${s.logprob.toFixed(2)})`);
  console.log(`  ${show[i]}= → ${texts.join(", ")}`);
}

// Save as a Hugging Face model folder, load it back, check it answers the same.
const dir = path.resolve(args.out, "model");
await saveHfModel(dir, cfg, model.params, { hfConfigExtra: { bos_token_id: tok.bosId, eos_token_id: tok.eosId, pad_token_id: tok.padId } });
await writeFile(path.join(dir, "char_tokenizer.json"), `${JSON.stringify(tok.toJSON(), null, 2)}\n`);
const loaded = await loadHfModel(dir);
const again = createModel(loaded.config, loaded.params, kernels);
const same = (await exactMatch(again, evalWords)) === (await exactMatch(model, evalWords));
console.log(
  `\nsaved ${path.relative(process.cwd(), dir)}/ (config.json, model.safetensors, char_tokenizer.json); reloaded: ${same ? "same answers" : "DIFFERENT answers"}`,
);
console.log(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
await kernels.dispose();
if (!same) process.exitCode = 1;
