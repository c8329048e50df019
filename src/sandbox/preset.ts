/**
 * Sandbox presets: the model size, data sizes and SFT recipe that make M1 = SFT(IFT + EFT).
 * `sandbox` is the demo's; `sandbox-tiny` is a seconds-long version for CI and tests (its numbers
 * mean nothing). Learning rates are far above TRL's defaults: these models are tiny.
 */
import type { LlamaConfigInput } from "../model/config.js";

export interface SandboxPreset {
  name: string;
  /** Seeds the tasks, the data order and the initial weights. */
  seed: number;
  /** Family names (default: all). */
  families?: string[];
  /**
   * Held-out evaluation prompts, IFT examples, EFT examples, and new-task (self-instruct) examples
   * built from the IFT instructions (absent = 0: M1 does not learn to write tasks).
   */
  sizes: { eval: number; ift: number; eft: number; newTask?: number };
  /** Model shape (vocabSize is the sandbox alphabet's and is filled in). */
  model: Omit<LlamaConfigInput, "vocabSize">;
  /** IFT-only warm-up whose samples seed the EFT data with the model's own kind of mistakes. */
  warmup: { steps: number; learningRate: number; batchSize: number; samplesPerTask: number; temperature: number };
  /** M1: SFT on IFT + EFT, continuing from the warm-up weights. */
  sft: { steps: number; learningRate: number; batchSize: number; warmupSteps: number };
  /** Sampled answers per held-out prompt in the evaluation. */
  evalSamples: number;
}

export const presets: Record<string, SandboxPreset> = {
  sandbox: {
    name: "sandbox",
    seed: 1,
    // Twice as much EFT as IFT: judging is the harder skill to learn (docs/sandbox.md has the runs).
    sizes: { eval: 300, ift: 6000, eft: 12000 },
    // ≈ 0.8M parameters: wide enough to learn the judge traces, small enough for minutes on 2 cores.
    model: { dim: 128, nLayers: 4, nHeads: 4, nKvHeads: 2, hiddenDim: 384, maxSeqLen: 192 },
    warmup: { steps: 600, learningRate: 3e-3, batchSize: 32, samplesPerTask: 1, temperature: 1 },
    sft: { steps: 5000, learningRate: 3e-3, batchSize: 32, warmupSteps: 50 },
    evalSamples: 4,
  },
  "sandbox-tiny": {
    name: "sandbox-tiny",
    seed: 1,
    sizes: { eval: 24, ift: 240, eft: 240 },
    model: { dim: 32, nLayers: 2, nHeads: 2, nKvHeads: 1, hiddenDim: 64, maxSeqLen: 192 },
    warmup: { steps: 10, learningRate: 3e-3, batchSize: 16, samplesPerTask: 1, temperature: 1 },
    sft: { steps: 20, learningRate: 3e-3, batchSize: 16, warmupSteps: 2 },
    evalSamples: 2,
  },
};

export function preset(name: string): SandboxPreset {
  const p = presets[name];
  if (!p) throw new Error(`unknown sandbox preset "${name}" (known: ${Object.keys(presets).join(", ")})`);
  return structuredClone(p);
}
