/**
 * What the loop needs to know about the world its prompts come from: how a prompt and an answer are
 * put to the model (the text forms), where each iteration's prompts come from, and — in the sandbox
 * only — the gold scorer (oracle pairs and the truly-better diagnostics) and the held-out evaluation.
 */
import type { LlamaModel } from "../model/llama.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";

/** One prompt of an iteration, as written to prompts.jsonl. */
export interface LoopPrompt {
  id: string;
  instruction: string;
  /** Sandbox only: the task family and the spec its gold scorer reads. */
  family?: string;
  spec?: unknown;
}

export interface EvalOptions {
  samples: number;
  seed: number;
  signal?: AbortSignal;
  onProgress?: (stage: string, done: number, total: number) => void;
}

export interface World {
  readonly tokenizer: Tokenizer;
  /** The text the model continues with its answer. */
  answerPrompt(p: LoopPrompt): string;
  /** The text the model continues with its judgement of `answer`. */
  judgePrompt(p: LoopPrompt, answer: string): string;
  /** A generated answer as it is stored, judged and trained on. */
  cleanAnswer(text: string): string;
  /** `count` prompts for iteration `iteration` (deterministic in the arguments). */
  prompts(iteration: number, count: number, seed: number): LoopPrompt[];
  /**
   * Self-instruct: the few-shot prompt from which the model writes new instruction number `index`
   * (examples drawn from the seed instructions; deterministic in the arguments). The model's
   * continuation up to the first line break is the instruction.
   */
  newTaskPrompt(seed: number, index: number): string;
  /** Self-instruct's filter: whether a model-written instruction is a usable prompt (the sandbox: a family parses it). */
  accepts(instruction: string): boolean;
  /** Whether an instruction may not be an iteration prompt: held out for evaluation, or seen by M1 in training. */
  excluded(instruction: string): boolean;
  /** Prompts given as text (a user's file): the sandbox attaches the family and spec it can parse. */
  fromInstructions(items: readonly { id: string; instruction: string }[]): LoopPrompt[];
  /** The gold score of `answer`, or undefined where no truth is known (e.g. an instruction no family parses). */
  gold(p: LoopPrompt, answer: string): number | undefined;
  /**
   * A gold (reference) answer of the prompt, or undefined where none is known (SPIN's chosen side).
   * The sandbox solves the task from its spec and returns the answer only if it meets all five criteria.
   */
  reference(p: LoopPrompt): string | undefined;
  /**
   * Meta-Rewarding: the text the model continues with its verdict on two judgements of `answer`
   * (`first` shown first), parsed by judge/parse.ts `parseVerdict`.
   */
  metaJudgePrompt(p: LoopPrompt, answer: string, first: string, second: string): string;
  /** Seed rows (prompt → completion) M1 was trained on; mixed into the DPO steps. */
  seedData(): Promise<{ prompt: string; completion: string }[]>;
  /**
   * Held-out evaluation as flat `eval/…` metrics, and the full record to keep beside them; absent
   * where the world has no held-out truth (a user's model: eval.json then records only the model).
   */
  evaluate?(model: LlamaModel, o: EvalOptions): Promise<{ flat: Record<string, number>; full: unknown }>;
}
