/**
 * @module tokenizer/tokenizer
 *
 * The model's tokenizer (`tokenizer.json` + `tokenizer_config.json` through
 * @huggingface/tokenizers) and chat template (from `tokenizer_config.json` or
 * `chat_template.jinja`, rendered by @huggingface/jinja).
 */
import { Template } from "@huggingface/jinja";
import { Tokenizer } from "@huggingface/tokenizers";
import { causeText, ModelLoadError } from "../errors.js";
import { describeFile, type FileSource } from "../io/fileSource.js";

export interface ChatMessage {
  readonly role: "system" | "user" | "assistant" | (string & {});
  readonly content: string;
}

export class TextTokenizer {
  readonly #tokenizer: Tokenizer;
  readonly #template: Template | null;
  readonly #specialTokens: Record<string, string>;
  readonly #templateFile: string;

  /** `templateFile` names where the chat template came from (or the model folder), for error messages. */
  constructor(tokenizer: Tokenizer, template: Template | null, specialTokens: Record<string, string>, templateFile = "the model folder") {
    this.#tokenizer = tokenizer;
    this.#template = template;
    this.#specialTokens = specialTokens;
    this.#templateFile = templateFile;
  }

  /** Token ids of `text`; special-token text such as `<|eot_id|>` maps to its id. */
  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    return this.#tokenizer.encode(text, { add_special_tokens: options.addSpecialTokens ?? false }).ids;
  }

  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    return this.#tokenizer.decode([...ids], { skip_special_tokens: options.skipSpecialTokens ?? false });
  }

  get hasChatTemplate(): boolean {
    return this.#template !== null;
  }

  /** Renders the chat template; the result already holds the BOS text where the template adds it. */
  applyChatTemplate(messages: readonly ChatMessage[], options: { addGenerationPrompt?: boolean } = {}): string {
    if (!this.#template) {
      throw new ModelLoadError(`${this.#templateFile}: no chat template (neither a chat_template in tokenizer_config.json nor chat_template.jinja)`);
    }
    try {
      return this.#template.render({
        messages,
        add_generation_prompt: options.addGenerationPrompt ?? true,
        ...this.#specialTokens,
      });
    } catch (err) {
      throw new ModelLoadError(`${this.#templateFile}: the chat template failed to render (${causeText(err)})`);
    }
  }
}

type Json = Record<string, unknown>;

export async function loadTokenizer(source: FileSource): Promise<TextTokenizer> {
  const tokenizerJson = await readJson(source, "tokenizer.json");
  const config = (await source.exists("tokenizer_config.json")) ? await readJson(source, "tokenizer_config.json") : {};
  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(tokenizerJson, config);
  } catch (err) {
    throw new ModelLoadError(`${describeFile(source, "tokenizer.json")}: cannot build the tokenizer (${causeText(err)})`);
  }
  let templateText: string | null = null;
  let templateFile = source.label;
  if (typeof config.chat_template === "string") {
    templateText = config.chat_template;
    templateFile = describeFile(source, "tokenizer_config.json");
  } else if (await source.exists("chat_template.jinja")) {
    templateText = await source.readText("chat_template.jinja");
    templateFile = describeFile(source, "chat_template.jinja");
  }
  let template: Template | null = null;
  if (templateText !== null) {
    try {
      template = new Template(templateText);
    } catch (err) {
      throw new ModelLoadError(`${templateFile}: cannot parse the chat template (${causeText(err)})`);
    }
  }
  return new TextTokenizer(tokenizer, template, specialTokenStrings(config), templateFile);
}

/** bos_token, eos_token, ... as plain strings, for the template's context. */
function specialTokenStrings(config: Json): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of ["bos_token", "eos_token", "pad_token", "unk_token"]) {
    const value = config[key];
    if (typeof value === "string") out[key] = value;
    else if (value && typeof value === "object" && typeof (value as Json).content === "string") out[key] = (value as Json).content as string;
  }
  return out;
}

async function readJson(source: FileSource, name: string): Promise<Json> {
  if (!(await source.exists(name))) throw new ModelLoadError(`${describeFile(source, name)}: file is missing`);
  try {
    const value = JSON.parse(await source.readText(name));
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("expected a JSON object");
    return value as Json;
  } catch (err) {
    throw new ModelLoadError(`${describeFile(source, name)}: not valid JSON (${causeText(err)})`);
  }
}
