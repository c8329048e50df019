/**
 * JSON Lines: one JSON value per line. Writes are atomic (the whole file at once); reads name the
 * file and line of any bad record, and a zod schema, when given, validates each record.
 */
import { readFile } from "node:fs/promises";
import type { z } from "zod";
import { writeFileAtomic } from "./atomic.js";

export async function writeJsonl(path: string, records: Iterable<unknown>): Promise<void> {
  const lines: string[] = [];
  for (const r of records) lines.push(JSON.stringify(r));
  await writeFileAtomic(path, lines.length ? `${lines.join("\n")}\n` : "");
}

export async function readJsonl<T = unknown>(path: string, schema?: z.ZodType<T>): Promise<T[]> {
  const text = await readFile(path, "utf8");
  return parseJsonl(text, path, schema);
}

export function parseJsonl<T = unknown>(text: string, source: string, schema?: z.ZodType<T>): T[] {
  const out: T[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      throw new Error(`${source}:${i + 1}: not valid JSON (${(e as Error).message})`);
    }
    if (schema) {
      const r = schema.safeParse(value);
      if (!r.success) {
        const msgs = r.error.issues.map((is) => `${is.path.join(".") || "(record)"}: ${is.message}`);
        throw new Error(`${source}:${i + 1}: ${msgs.join("; ")}`);
      }
      out.push(r.data);
    } else out.push(value as T);
  }
  return out;
}
