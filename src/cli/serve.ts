/**
 * `srlm serve <model-dir>`: an OpenAI-compatible server over the builtin engine (src/serve/server.ts),
 * bound to 127.0.0.1 unless --host says otherwise. It prints one line when it listens
 * (`srlm serve: <name> listening on http://127.0.0.1:<port>/v1`) and stops gracefully on SIGTERM or
 * SIGINT: no new connections, queued requests finished, then exit (a second signal exits at once).
 * `--enable-lora` turns on vLLM's runtime LoRA routes (load/unload an adapter folder by name), which
 * `srlm run` with `engine: openai` uses to serve each iteration's adapter.
 */
import { basename } from "node:path";
import { parseArgs } from "node:util";
import { createKernels, type KernelsKind } from "../engine/ort.js";
import { loadModelFolder } from "../io/model-folder.js";
import { createModel } from "../model/llama.js";
import { SrlmServer } from "../serve/server.js";

export const serveUsage =
  "srlm serve <model-dir> [--host 127.0.0.1] [--port 8000] [--model-name <dir name>] [--max-tokens-limit 1024]\n" +
  "  [--max-body-bytes 1048576] [--max-n 64] [--max-batch 256] [--enable-lora] [--max-loras 4] [--kernels ort|reference] [--quiet]";

export class ServeError extends Error {
  override name = "ServeError";
}

function intOption(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!(Number.isInteger(x) && x >= min)) throw new ServeError(`--${name} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
  return x;
}

export async function serveCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "8000" },
      "model-name": { type: "string" },
      "max-tokens-limit": { type: "string" },
      "max-body-bytes": { type: "string" },
      "max-n": { type: "string" },
      "max-batch": { type: "string" },
      "enable-lora": { type: "boolean", default: false },
      "max-loras": { type: "string" },
      kernels: { type: "string", default: "ort" },
      quiet: { type: "boolean", default: false },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(`usage: ${serveUsage}\n`);
    return;
  }
  if (positionals.length !== 1) throw new ServeError(`expected one model folder\nusage: ${serveUsage}`);
  const kind = values.kernels as KernelsKind;
  if (kind !== "ort" && kind !== "reference") throw new ServeError(`--kernels must be "ort" or "reference", got ${JSON.stringify(kind)}`);
  const port = intOption("port", values.port, 0) as number;
  if (port > 65535) throw new ServeError(`--port must be at most 65535, got ${port}`);
  const dir = positionals[0];
  const folder = await loadModelFolder(dir);
  const kernels = await createKernels(kind);
  const log = values.quiet ? undefined : (line: string) => process.stderr.write(`${line}\n`);
  const server = await SrlmServer.listen(
    {
      model: createModel(folder.config, folder.params, kernels),
      tokenizer: folder.tokenizer,
      eosIds: folder.eosIds,
      chatTemplate: folder.chatTemplate,
    },
    {
      host: values.host,
      port,
      modelName: values["model-name"] ?? basename(dir.replace(/\/+$/, "")),
      maxTokensLimit: intOption("max-tokens-limit", values["max-tokens-limit"], 1),
      maxBodyBytes: intOption("max-body-bytes", values["max-body-bytes"], 1),
      maxN: intOption("max-n", values["max-n"], 1),
      maxBatch: intOption("max-batch", values["max-batch"], 1),
      enableLora: values["enable-lora"],
      maxLoras: intOption("max-loras", values["max-loras"], 1),
      log,
    },
  );
  process.stdout.write(`srlm serve: ${server.modelName} listening on ${server.url}\n`);
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (sig: string) => {
      if (stopping) process.exit(130); // a second signal: do not wait any longer
      stopping = true;
      log?.(`${sig}: finishing queued requests, then exiting`);
      void server.close().then(resolve);
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
  });
  await kernels.dispose();
  const st = server.stats;
  log?.(
    `served ${st.requests} requests (${st.errors} errors), ${st.samples} samples, ${st.completionTokens} tokens, ${st.batches} batches`,
  );
}
