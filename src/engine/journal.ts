/**
 * An append-only journal of completed generations (JSONL), so that an engine restarted in the middle
 * of a `generate` call redoes none of the samples it already received. Each line is one sample keyed
 * by a hash of everything that determines it (model, mode, prompt, sampling settings, seed, sample
 * index); a sample is returned to the caller only after its line is written.
 *
 * Durability: lines are appended with one write() per group of samples and then fdatasync'd (group
 * commit: samples completing while a sync runs share the next one). A killed process (SIGKILL) keeps
 * every line written; a machine that loses power can leave a torn last line, which `open` drops and
 * truncates so later appends start on a line boundary. A line repeated (two processes, or a request
 * answered twice) is harmless: the first one wins.
 */
import { createHash } from "node:crypto";
import { open, readFile, truncate } from "node:fs/promises";

export interface JournalEntry {
  key: string;
  text: string;
  /** Σ log p of the sample's tokens; NaN (stored as null) when the server gave none. */
  logprob: number;
  finishReason: "stop" | "length";
  /** Completion tokens the server counted: a request's count on its first sample, 0 on the others and when unknown. */
  tokens: number;
}

export class JournalError extends Error {
  override name = "JournalError";
}

/** The key of one sample: a SHA-256 of the canonical JSON of its parts (any JSON value). */
export function journalKey(parts: Record<string, unknown>): string {
  const sorted = Object.fromEntries(Object.entries(parts).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return createHash("sha256").update(JSON.stringify(sorted)).digest("hex");
}

interface Pending {
  lines: string[];
  keys: string[];
  waiters: { resolve: () => void; reject: (e: Error) => void }[];
}

export class GenerationJournal {
  private readonly entries = new Map<string, JournalEntry>();
  private pending: Pending = { lines: [], keys: [], waiters: [] };
  private flushing: Promise<void> | undefined;
  private fh: Awaited<ReturnType<typeof open>> | undefined;

  private constructor(readonly path: string) {}

  /** Read the journal at `path` (absent = empty), dropping a torn last line, and open it for appending. */
  static async open(path: string): Promise<GenerationJournal> {
    const j = new GenerationJournal(path);
    let text = "";
    try {
      text = await readFile(path, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
    const end = text.lastIndexOf("\n") + 1;
    if (end < text.length) await truncate(path, Buffer.byteLength(text.slice(0, end), "utf8"));
    const lines = text.slice(0, end).split("\n");
    lines.forEach((line, i) => {
      if (line.length === 0) return;
      let e: JournalEntry;
      try {
        const raw = JSON.parse(line);
        e = { ...raw, logprob: raw.logprob === null ? Number.NaN : raw.logprob };
      } catch (err) {
        throw new JournalError(`${path}:${i + 1}: not a JSON line (${(err as Error).message})`);
      }
      if (typeof e.key !== "string" || typeof e.text !== "string") throw new JournalError(`${path}:${i + 1}: missing "key" or "text"`);
      if (!j.entries.has(e.key)) j.entries.set(e.key, e);
    });
    j.fh = await open(path, "a");
    return j;
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string): JournalEntry | undefined {
    return this.entries.get(key);
  }

  /** Append entries; resolves once they are on disk (fdatasync). Entries already present are skipped. */
  append(entries: readonly JournalEntry[]): Promise<void> {
    if (!this.fh) return Promise.reject(new JournalError(`${this.path}: the journal is closed`));
    const fresh = entries.filter((e) => !this.entries.has(e.key));
    if (fresh.length === 0) return Promise.resolve();
    for (const e of fresh) {
      this.entries.set(e.key, e);
      this.pending.keys.push(e.key);
      this.pending.lines.push(`${JSON.stringify({ ...e, logprob: Number.isFinite(e.logprob) ? e.logprob : null })}\n`);
    }
    const done = new Promise<void>((resolve, reject) => this.pending.waiters.push({ resolve, reject }));
    this.flushing ??= this.flush();
    return done;
  }

  private async flush(): Promise<void> {
    while (this.pending.lines.length > 0) {
      const { lines, keys, waiters } = this.pending;
      this.pending = { lines: [], keys: [], waiters: [] };
      try {
        const fh = this.fh;
        if (!fh) throw new JournalError(`${this.path}: the journal was closed before its lines were written`);
        await fh.write(lines.join(""));
        await fh.datasync();
        for (const w of waiters) w.resolve();
      } catch (e) {
        for (const k of keys) this.entries.delete(k); // not on disk: a retry must write them again
        for (const w of waiters) w.reject(e as Error);
      }
    }
    this.flushing = undefined;
  }

  /** Wait for pending lines, then close the file. */
  async close(): Promise<void> {
    await this.flushing;
    await this.fh?.close();
    this.fh = undefined;
  }
}
