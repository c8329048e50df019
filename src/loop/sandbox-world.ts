/**
 * The sandbox as the loop's world: prompts are fresh tasks from the families (disjoint from the
 * held-out and seed prompts M1 was built with) or instructions the model writes itself from few-shot
 * IFT instructions, gold is the families' scorer, and the evaluation is evaluate.ts on M1's held-out
 * tasks.
 */
import { access } from "node:fs/promises";
import { join } from "node:path";
import { mulberry32 } from "../engine/tensor.js";
import { readJsonl } from "../io/jsonl.js";
import type { LlamaModel } from "../model/llama.js";
import { type EftRecord, familyByName, generateTasks, type IftRecord, type NewTaskRecord, type SandboxTask } from "../sandbox/data.js";
import { evaluateSandbox, type SandboxMetrics } from "../sandbox/evaluate.js";
import {
  answerPrompt,
  judgePrompt,
  metaJudgePrompt,
  NEW_TASK_SHOTS,
  newTaskPrompt,
  sandboxTokenizer,
  sanitizeAnswer,
} from "../sandbox/forms.js";
import { parseTask } from "../sandbox/parse.js";
import { type Family, score } from "../sandbox/task.js";
import type { EvalOptions, LoopPrompt, World } from "./world.js";

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

/** Flat metric names of a sandbox evaluation (what metrics.jsonl and the report plot). */
export function flatSandboxMetrics(m: SandboxMetrics): Record<string, number> {
  return {
    "eval/gold": m.gold,
    "eval/exact": m.exact,
    "eval/length": m.length,
    "eval/sampled_gold": m.sampledGold,
    "eval/distinct": m.distinct,
    "eval/judge_pairwise": m.judgeOwn.pairwiseAccuracy,
    "eval/likelihood_pairwise": m.likelihoodPairwiseAccuracy,
    "eval/judge_mae": m.judgeOwn.mae,
    "eval/judge_spearman": m.judgeOwn.spearman,
    "eval/judge_best_of_n": m.judgeOwn.bestOfNAccuracy,
    "eval/judge_parse_failures": m.judgeOwn.parseFailureRate,
    "eval/judge_corrupt_pairwise": m.judgeCorrupt.pairwiseAccuracy,
  };
}

/** The sandbox world of an M1 built into `m1Dir` (its data/ holds eval, IFT, EFT and maybe new-task records). */
export async function sandboxWorld(families: readonly Family[], m1Dir: string): Promise<World> {
  const data = join(m1Dir, "data");
  const evalTasks = await readJsonl<SandboxTask>(join(data, "eval.jsonl"));
  const ift = await readJsonl<IftRecord>(join(data, "ift.jsonl"));
  const eft = await readJsonl<EftRecord>(join(data, "eft.jsonl"));
  const newTaskPath = join(data, "new_task.jsonl");
  const newTask = (await exists(newTaskPath)) ? await readJsonl<NewTaskRecord>(newTaskPath) : [];
  // Loop prompts must be new to the model and never held-out ones. IFT records carry the
  // instruction in their prompt ("<instruction>\n>"); EFT tasks are excluded through their prompts.
  const used = new Set<string>(evalTasks.map((t) => t.instruction));
  for (const r of ift) used.add(r.prompt.slice(0, r.prompt.lastIndexOf("\n")));
  for (const r of eft) used.add(r.prompt.slice(0, r.prompt.indexOf("\n")));
  // (New-task records hold IFT instructions only, already in `used`.)
  // Self-instruct's few-shot examples: the IFT instructions, in file order.
  const seedInstructions = ift.map((r) => r.prompt.slice(0, r.prompt.lastIndexOf("\n")));
  const tok = sandboxTokenizer();
  return {
    tokenizer: tok,
    answerPrompt: (p) => answerPrompt(p.instruction),
    judgePrompt: (p, a) => judgePrompt(p.instruction, a),
    cleanAnswer: sanitizeAnswer,
    prompts(iteration, count, seed) {
      const tasks = generateTasks(families, count, seed * 7919 + iteration * 104729 + 11, `iter${iteration}`, used);
      return tasks.map((t) => ({ id: t.id, instruction: t.instruction, family: t.family, spec: t.spec }));
    },
    newTaskPrompt(seed, index) {
      // One PRNG per (seed, index), so an instruction's examples do not depend on the batch it is in.
      const rng = mulberry32((Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0);
      const picked = new Set<number>();
      const shots = Math.min(NEW_TASK_SHOTS, seedInstructions.length);
      while (picked.size < shots) picked.add(Math.floor(rng() * seedInstructions.length));
      return newTaskPrompt([...picked].map((k) => seedInstructions[k]));
    },
    accepts: (instruction) => parseTask(families, instruction) !== undefined,
    excluded: (instruction) => used.has(instruction),
    fromInstructions: (items) =>
      items.map((it) => {
        const t = parseTask(families, it.instruction);
        return t ? { id: it.id, instruction: it.instruction, family: t.family, spec: t.spec } : { id: it.id, instruction: it.instruction };
      }),
    gold(p: LoopPrompt, answer: string) {
      if (p.family === undefined) return undefined;
      return score(familyByName(families, p.family), p.spec, answer).score;
    },
    reference(p: LoopPrompt) {
      if (p.family === undefined) return undefined;
      const f = familyByName(families, p.family);
      const answer = f.solve(p.spec);
      // Fail closed: a "reference" that does not meet every criterion would teach a wrong answer as gold.
      return answer !== undefined && score(f, p.spec, answer).score === 5 ? answer : undefined;
    },
    metaJudgePrompt: (p, answer, first, second) => metaJudgePrompt(p.instruction, answer, first, second),
    seedData: async () => [...ift, ...eft, ...newTask].map((r) => ({ prompt: r.prompt, completion: r.completion })),
    async evaluate(model: LlamaModel, o: EvalOptions) {
      const m = await evaluateSandbox(model, tok, families, evalTasks, {
        samples: o.samples,
        seed: o.seed,
        signal: o.signal,
        onProgress: o.onProgress,
      });
      return { flat: flatSandboxMetrics(m), full: m };
    },
  };
}
