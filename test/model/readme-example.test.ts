// The README's engine example runs as written (so the documentation cannot rot).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";

const root = path.resolve(import.meta.dirname, "../..");

test("the README's engine example runs and prints the stories260K continuation", () => {
  const readme = readFileSync(path.join(root, "README.md"), "utf8");
  const block = /```ts\n([\s\S]*?)```/.exec(readme);
  assert.ok(block, "README.md has a ```ts block");
  // Point its "./src/…" imports at this checkout and its output folder at a temp dir.
  const out = mkdtempSync(path.join(os.tmpdir(), "srlm-readme-"));
  const code = block[1]
    .replaceAll('"./src/', `"${pathToFileURL(path.join(root, "src")).href}/`)
    .replaceAll('"runs/my-model"', JSON.stringify(path.join(out, "my-model")));
  const file = path.join(out, "example.mts"); // .mts: ESM (top-level await) outside the package
  writeFileSync(file, code);
  try {
    const stdout = execFileSync(process.execPath, ["--import", "tsx", file], { cwd: root, encoding: "utf8", timeout: 120_000 });
    assert.match(stdout, /^, there was a little girl named Lily\./, "printed text");
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
