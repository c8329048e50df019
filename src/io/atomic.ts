import { randomBytes } from "node:crypto";
import { open, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

export interface AtomicWriteOptions {
  /** File mode for a newly created file (default 0o644, subject to the umask). */
  mode?: number;
}

/** Flush a directory entry to disk after a rename; best effort (not every platform can open a directory). */
async function fsyncDir(dir: string): Promise<void> {
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    fh = await open(dir, "r");
    await fh.sync();
  } catch {
    // Windows and some file systems refuse to fsync a directory; the rename itself is still atomic.
  } finally {
    await fh?.close().catch(() => {});
  }
}

/**
 * Write `data` (a string as UTF-8, bytes, or a list of byte chunks written back to back) to `path` so that readers see either the old file or the complete new one, never a
 * partial write: the bytes go to a temp file in the same directory, are fsynced, then renamed over
 * `path`. On any failure the temp file is removed and the error rethrown.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array | readonly Uint8Array[],
  opts: AtomicWriteOptions = {},
): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  const chunks: readonly Uint8Array[] = typeof data === "string" ? [Buffer.from(data, "utf8")] : data instanceof Uint8Array ? [data] : data;
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    fh = await open(tmp, "wx", opts.mode ?? 0o644);
    for (const bytes of chunks) {
      let off = 0;
      while (off < bytes.byteLength) {
        const { bytesWritten } = await fh.write(bytes, off, bytes.byteLength - off);
        off += bytesWritten;
      }
    }
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, path);
  } catch (err) {
    await fh?.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fsyncDir(dir);
}

/** `writeFileAtomic` of `JSON.stringify(value, null, space)` plus a trailing newline. */
export async function writeJsonAtomic(path: string, value: unknown, opts: AtomicWriteOptions & { space?: number } = {}): Promise<void> {
  const text = JSON.stringify(value, null, opts.space ?? 2);
  if (text === undefined) throw new TypeError(`writeJsonAtomic(${path}): value is not JSON-serialisable`);
  await writeFileAtomic(path, `${text}\n`, opts);
}
