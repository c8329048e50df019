/**
 * Self-instruct: a model-written instruction read back into a task, so the gold scorer can score
 * answers to it. Only instructions some family's generator could have written are accepted.
 */
import type { Family } from "./task.js";

/** The first family (in the given order) whose `parse` accepts `instruction`, with its spec; or undefined. */
export function parseTask(
  families: readonly Family[],
  instruction: string,
): { family: string; instruction: string; spec: unknown } | undefined {
  for (const f of families) {
    const spec = f.parse(instruction);
    if (spec !== undefined) return { family: f.name, instruction, spec };
  }
  return undefined;
}
