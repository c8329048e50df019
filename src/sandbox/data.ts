/**
 * Seed data of the sandbox: tasks drawn from the families, the held-out evaluation prompts (disjoint
 * from every training prompt), IFT records (instruction → reference answer), EFT records
 * (instruction + answer → gold judgement) balanced over the scores 0–5, and new-task records
 * (few-shot instructions → another instruction) that teach self-instruct.
 *
 * Records use TRL's prompt–completion format plus fields of ours (family, score, source), so the
 * SFT trainer and TRL read the same files.
 */
import { mulberry32 } from "../engine/tensor.js";
import { answerPrompt, judgement, judgePrompt, newTaskPrompt } from "./forms.js";
import type { Family, Rng, Task } from "./task.js";

export interface SandboxTask extends Task {
  /** Stable id: family and index within its split. */
  id: string;
}

export interface IftRecord {
  prompt: string;
  completion: string;
  family: string;
  id: string;
}

export interface EftRecord {
  prompt: string;
  completion: string;
  family: string;
  id: string;
  /** Gold score of the judged answer. */
  score: number;
  /** Where the answer came from: the warm-up model's sample, a graded corruption, or the reference. */
  source: "sample" | "corruption" | "reference";
}

/** Self-instruct seed data: few-shot instructions → one more instruction (same fields as IFT). */
export type NewTaskRecord = IftRecord;

/** A candidate answer to be judged in EFT data. */
export interface EftCandidate {
  task: SandboxTask;
  answer: string;
  source: EftRecord["source"];
}

export function familyByName(families: readonly Family[], name: string): Family {
  const f = families.find((x) => x.name === name);
  if (!f) throw new Error(`unknown sandbox family "${name}" (known: ${families.map((x) => x.name).join(", ")})`);
  return f;
}

/**
 * n tasks, families in turn, no instruction twice and none from `exclude`. Deterministic in
 * (families, n, seed, exclude). Throws if a family cannot produce enough distinct tasks.
 */
export function generateTasks(
  families: readonly Family[],
  n: number,
  seed: number,
  split: string,
  exclude: ReadonlySet<string> = new Set(),
): SandboxTask[] {
  const rng = mulberry32(seed);
  const seen = new Set<string>();
  const out: SandboxTask[] = [];
  const perFamily = new Map<string, number>();
  for (let i = 0; out.length < n; i++) {
    const f = families[i % families.length];
    let task: Task | undefined;
    for (let tries = 0; tries < 200; tries++) {
      const t = f.generate(rng);
      if (!seen.has(t.instruction) && !exclude.has(t.instruction)) {
        task = t;
        break;
      }
    }
    if (!task) throw new Error(`sandbox family "${f.name}": no new distinct task after 200 draws (${out.length} of ${n} made)`);
    seen.add(task.instruction);
    const k = perFamily.get(f.name) ?? 0;
    perFamily.set(f.name, k + 1);
    out.push({ ...task, id: `${split}-${f.name}-${k}` });
  }
  return out;
}

/**
 * The splits: held-out evaluation tasks first (their own seed), then IFT and EFT training tasks that
 * exclude every evaluation instruction and each other.
 */
export function sandboxSplits(
  families: readonly Family[],
  sizes: { eval: number; ift: number; eft: number },
  seed: number,
): { eval: SandboxTask[]; ift: SandboxTask[]; eft: SandboxTask[] } {
  const evalTasks = generateTasks(families, sizes.eval, seed * 3 + 1, "eval");
  const used = new Set(evalTasks.map((t) => t.instruction));
  const ift = generateTasks(families, sizes.ift, seed * 3 + 2, "ift", used);
  for (const t of ift) used.add(t.instruction);
  const eft = generateTasks(families, sizes.eft, seed * 3 + 3, "eft", used);
  return { eval: evalTasks, ift, eft };
}

export function iftRecords(tasks: readonly SandboxTask[]): IftRecord[] {
  return tasks.map((t) => ({ prompt: answerPrompt(t.instruction), completion: t.reference, family: t.family, id: t.id }));
}

/**
 * n new-task records from the IFT tasks: each prompt lists `shots` IFT instructions drawn at random
 * (so their families mix), and the completion is another IFT instruction, the tasks taken in a
 * seeded order (wrapping around when n exceeds them). Only IFT instructions appear, so the model never
 * sees a held-out one here. Deterministic in (tasks, n, shots, seed).
 */
export function newTaskRecords(tasks: readonly SandboxTask[], n: number, shots: number, seed: number): NewTaskRecord[] {
  if (n === 0) return [];
  if (tasks.length < shots + 1)
    throw new Error(`newTaskRecords: ${shots} shots and a completion need ${shots + 1} tasks, got ${tasks.length}`);
  const rng = mulberry32(seed);
  const targets = order(tasks.length, rng);
  return Array.from({ length: n }, (_, i) => {
    const target = targets[i % tasks.length];
    const picked = new Set<number>([target]);
    const examples: string[] = [];
    while (examples.length < shots) {
      const k = Math.floor(rng() * tasks.length);
      if (picked.has(k)) continue;
      picked.add(k);
      examples.push(tasks[k].instruction);
    }
    const t = tasks[target];
    return { prompt: newTaskPrompt(examples), completion: t.instruction, family: t.family, id: `new-${i}` };
  });
}

export function eftRecord(families: readonly Family[], c: EftCandidate): EftRecord {
  const f = familyByName(families, c.task.family);
  const j = judgement(f, c.task.spec, c.answer);
  return {
    prompt: judgePrompt(c.task.instruction, c.answer),
    completion: j.text,
    family: c.task.family,
    id: c.task.id,
    score: j.scored.score,
    source: c.source,
  };
}

/**
 * EFT records balanced over the scores 0–5: each score gets up to ⌈n/6⌉ records, filled first from
 * the model's own samples (the mistakes the judge must learn to see), then from graded corruptions
 * of the tasks' references, then (score 5) from references. Returns the records and the histogram
 * of scores by source.
 */
export function balancedEft(
  families: readonly Family[],
  tasks: readonly SandboxTask[],
  samples: readonly EftCandidate[],
  n: number,
  seed: number,
): { records: EftRecord[]; histogram: Record<EftRecord["source"], number[]> } {
  const rng = mulberry32(seed);
  const quota = Math.ceil(n / 6);
  const buckets: EftRecord[][] = [[], [], [], [], [], []];
  const histogram: Record<EftRecord["source"], number[]> = {
    sample: [0, 0, 0, 0, 0, 0],
    corruption: [0, 0, 0, 0, 0, 0],
    reference: [0, 0, 0, 0, 0, 0],
  };
  const add = (c: EftCandidate) => {
    const r = eftRecord(families, c);
    if (buckets[r.score].length >= quota) return;
    buckets[r.score].push(r);
    histogram[r.source][r.score]++;
  };
  // Own samples first, in a seeded order, one per (task, answer).
  const seen = new Set<string>();
  for (const i of order(samples.length, rng)) {
    const c = samples[i];
    const key = `${c.task.id}\u0000${c.answer}`;
    if (seen.has(key)) continue;
    seen.add(key);
    add(c);
  }
  // Then corruptions, drawn until every bucket is full (or a generous budget runs out).
  const budget = 50 * n;
  for (let k = 0; k < budget && buckets.some((b) => b.length < quota); k++) {
    const task = tasks[Math.floor(rng() * tasks.length)];
    const f = familyByName(families, task.family);
    const low = buckets.findIndex((b) => b.length < quota);
    // Aim the damage at the emptiest low scores: more damage for lower scores.
    const severity = low <= 4 && rng() < 0.5 ? Math.min(1, (5 - low) / 5 + (rng() - 0.5) * 0.3) : rng();
    const answer = f.corrupt(task.spec, task.reference, rng, Math.max(0, severity));
    add({ task, answer, source: answer === task.reference ? "reference" : "corruption" });
  }
  for (const task of tasks) {
    if (buckets[5].length >= quota) break;
    add({ task, answer: task.reference, source: "reference" });
  }
  const records = buckets.flat();
  return { records: order(records.length, rng).map((i) => records[i]), histogram };
}

function order(n: number, rng: Rng): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}
