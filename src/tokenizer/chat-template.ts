/**
 * Chat templates (Jinja, as in Hugging Face `apply_chat_template`) rendered with @huggingface/jinja.
 *
 * A model folder's template is looked up, in order, in `chat_template.jinja`, `chat_template.json`
 * (`{"chat_template": "..."}`), and the `chat_template` field of `tokenizer_config.json` (a string,
 * or a list of `{name, template}` from which "default" — or the only entry — is used).
 * bos_token/eos_token come from tokenizer_config.json.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Template } from "@huggingface/jinja";
import { readJsonFile, specialTokenText } from "./hf.js";

export interface ChatMessage {
  role: string;
  content: string;
}

export interface RenderOptions {
  /** Append the assistant-turn opener so the model continues as the assistant (default true). */
  addGenerationPrompt?: boolean;
  /** Extra template variables (e.g. `tools`, `date_string`). */
  extra?: Record<string, unknown>;
}

export class ChatTemplate {
  private readonly template: Template;

  constructor(
    readonly source: string,
    readonly text: string,
    readonly bosToken = "",
    readonly eosToken = "",
  ) {
    try {
      this.template = new Template(text);
    } catch (e) {
      throw new Error(`${source}: cannot parse the chat template: ${(e as Error).message}`);
    }
  }

  /** Load a folder's template (see the module comment); errors when the folder has none. */
  static fromDir(dir: string): ChatTemplate {
    const cfgPath = join(dir, "tokenizer_config.json");
    const cfg = readJsonFile(cfgPath, true) ?? {};
    const bos = specialTokenText(cfg.bos_token) ?? "";
    const eos = specialTokenText(cfg.eos_token) ?? "";
    const jinjaPath = join(dir, "chat_template.jinja");
    if (existsSync(jinjaPath)) return new ChatTemplate(jinjaPath, readFileSync(jinjaPath, "utf8"), bos, eos);
    const jsonPath = join(dir, "chat_template.json");
    const j = readJsonFile(jsonPath, true);
    if (j && typeof j.chat_template === "string") return new ChatTemplate(jsonPath, j.chat_template, bos, eos);
    const t = cfg.chat_template;
    if (typeof t === "string") return new ChatTemplate(`${cfgPath} (chat_template)`, t, bos, eos);
    if (Array.isArray(t)) {
      const list = t as { name?: unknown; template?: unknown }[];
      const pick = list.find((x) => x?.name === "default") ?? (list.length === 1 ? list[0] : undefined);
      if (pick && typeof pick.template === "string")
        return new ChatTemplate(`${cfgPath} (chat_template "${String(pick.name)}")`, pick.template, bos, eos);
      throw new Error(
        `${cfgPath}: chat_template is a list without a "default" entry (names: ${list.map((x) => String(x?.name)).join(", ")})`,
      );
    }
    throw new Error(
      `${dir}: no chat template found (looked for chat_template.jinja, chat_template.json, and a "chat_template" field in tokenizer_config.json)`,
    );
  }

  render(messages: readonly ChatMessage[], opts: RenderOptions = {}): string {
    try {
      return this.template.render({
        ...opts.extra,
        messages: messages.map((m) => ({ ...m })),
        add_generation_prompt: opts.addGenerationPrompt ?? true,
        bos_token: this.bosToken,
        eos_token: this.eosToken,
      });
    } catch (e) {
      throw new Error(`${this.source}: rendering the chat template failed: ${(e as Error).message}`);
    }
  }
}

/** Render `messages` with the chat template of the model folder `dir`. */
export function renderChat(dir: string, messages: readonly ChatMessage[], opts: RenderOptions = {}): string {
  return ChatTemplate.fromDir(dir).render(messages, opts);
}
