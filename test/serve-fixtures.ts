// A tiny model folder for the server and OpenAI-engine tests (random weights, the sandbox's character
// tokenizer), and `srlm serve` as a child process that a test can SIGKILL and restart.
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { saveHfModel } from "../src/io/hf-folder.js";
import { llamaConfig } from "../src/model/config.js";
import { initParams } from "../src/model/params.js";
import { CharTokenizer } from "../src/tokenizer/char.js";

export const tinyTok = new CharTokenizer("abcdefghijklmnopqrstuvwxyz0123456789 =+-:;>\n");

/** Write a 2-layer, 32-wide model with the character tokenizer into `dir`. */
export async function writeTinyModel(dir: string, seed = 3): Promise<void> {
  const config = llamaConfig({ vocabSize: tinyTok.vocabSize, dim: 32, nLayers: 2, nHeads: 2, nKvHeads: 1, hiddenDim: 64, maxSeqLen: 96 });
  const params = initParams(config, seed);
  // Larger output weights than the init's std 0.02, so that samples vary in length (EOS gets likely at times).
  for (let i = 0; i < params.lmHead.length; i++) params.lmHead[i] *= 40;
  await saveHfModel(dir, config, params, { extraFiles: { "tokenizer.json": tinyTok.toJSON() as unknown as Record<string, unknown> } });
}

const root = join(import.meta.dirname, "..");

export interface ServeChild {
  proc: ChildProcess;
  port: number;
  url: string;
  /** Everything the child wrote to stderr so far. */
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Start `srlm serve <dir> …args` and resolve once it prints its listening line. */
export function startServe(dir: string, args: string[] = []): Promise<ServeChild> {
  const proc = spawn(process.execPath, ["--import", "tsx", join(root, "src/cli/srlm.ts"), "serve", dir, ...args], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  proc.stderr?.on("data", (d) => {
    err += d;
  });
  const exited = new Promise<number | null>((resolve) => proc.on("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`srlm serve did not start within 30 s; stderr: ${err}`));
    }, 30_000);
    proc.stdout?.on("data", (d) => {
      out += d;
      const m = /listening on (http:\/\/[^\s]+:(\d+)\/v1)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, port: Number(m[2]), url: m[1], stderr: () => err, exited });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`srlm serve exited with ${code} before listening; stderr: ${err}`));
    });
  });
}
