// The README's examples run as written (so the documentation cannot rot).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";

const root = path.resolve(import.meta.dirname, "../..");
const blocks = [...readFileSync(path.join(root, "README.md"), "utf8").matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);

/** Run README block `i` with its "./src/…" imports pointed at this checkout and "runs/…" at a temp dir. */
function runBlock(i: number): string {
  assert.ok(blocks[i], `README.md has ${i + 1} \`\`\`ts blocks`);
  const out = mkdtempSync(path.join(os.tmpdir(), "srlm-readme-"));
  const code = blocks[i]
    .replaceAll('"./src/', `"${pathToFileURL(path.join(root, "src")).href}/`)
    .replace(/"runs\/([\w-]+)"/g, (_, name: string) => JSON.stringify(path.join(out, name)));
  const file = path.join(out, "example.mts"); // .mts: ESM (top-level await) outside the package
  writeFileSync(file, code);
  try {
    return execFileSync(process.execPath, ["--import", "tsx", file], { cwd: root, encoding: "utf8", timeout: 120_000, stdio: "pipe" });
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

test("the README's engine example runs and prints the stories260K continuation", () => {
  assert.match(runBlock(0), /^, there was a little girl named Lily\./, "printed text");
});

test("the README's training example runs: SFT, then LoRA DPO separating every pair", () => {
  assert.match(runBlock(1), /^1\n/, "reward accuracy on the pairs after DPO is 1");
});
