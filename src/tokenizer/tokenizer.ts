/**
 * @module tokenizer/tokenizer
 *
 * The model's tokenizer (`tokenizer.json` + `tokenizer_config.json` through
 * @huggingface/tokenizers) and chat template (from `tokenizer_config.json` or
 * `chat_template.jinja`, rendered within bounds by `./chatTemplate.ts`).
 * Chat messages become ids through {@link TextTokenizer.encodeChat}, where
 * special-token text inside a message stays plain text (`./contentEscape.ts`).
 */
import { Tokenizer } from "@huggingface/tokenizers";
import { causeText, InvalidInputError, ModelLoadError } from "../errors.js";
import { describeFile, type FileSource } from "../io/fileSource.js";
import { ChatTemplate } from "./chatTemplate.js";
import { ContentEscaper } from "./contentEscape.js";

export interface ChatMessage {
  readonly role: "system" | "user" | "assistant" | (string & {});
  readonly content: string;
}

/** Options of {@link TextTokenizer.applyChatTemplate}. */
export interface ChatTemplateOptions {
  /** End with the header of an assistant turn (default true). */
  readonly addGenerationPrompt?: boolean;
}

/** Options of {@link TextTokenizer.encodeChat}. */
export interface EncodeChatOptions extends ChatTemplateOptions {
  /**
   * Let text in the messages spell special tokens (`<|eot_id|>`, any added
   * token) and become them, as plain `encode(applyChatTemplate(...))` does.
   * Only for trusted messages: such text can end a turn and forge the next.
   * Default false: message text is always plain text.
   */
  readonly allowSpecialTokensInContent?: boolean;
}

export class TextTokenizer {
  readonly #tokenizer: Tokenizer;
  readonly #template: ChatTemplate | null;
  readonly #specialTokens: Record<string, string>;
  readonly #templateFile: string;
  readonly #escaper: ContentEscaper;
  /**
   * The most characters one token covers (the longest vocabulary or added-token string), halved for
   * normalizers that compose characters: text of n characters encodes to at least n / this many tokens,
   * known before the work of encoding it (a server refuses a prompt over the context that way).
   */
  readonly maxCharsPerToken: number;
  /** How a vocabulary piece spells its bytes: GPT-2's byte-to-character map, or SentencePiece's ▁ and <0xNN>. */
  readonly #byteLevel: boolean;

  /**
   * `templateFile` names where a chat template would come from, for the error
   * when there is none; `config` is tokenizer_config.json.
   * NOTE: private, so the published declarations never name the tokenizer
   * library's types (whose own .d.ts files fail a NodeNext consumer's check).
   */
  private constructor(
    tokenizer: Tokenizer,
    template: ChatTemplate | null,
    specialTokens: Record<string, string>,
    templateFile = "the model folder",
    config: Readonly<Record<string, unknown>> = {},
    longestToken = Infinity,
    byteLevel = false,
  ) {
    this.maxCharsPerToken = 2 * longestToken;
    this.#byteLevel = byteLevel;
    this.#tokenizer = tokenizer;
    this.#template = template;
    this.#specialTokens = specialTokens;
    this.#templateFile = template?.file ?? templateFile;
    this.#escaper = new ContentEscaper(tokenizer, config);
  }

  /** Token ids of `text`; special-token text such as `<|eot_id|>` maps to its id. */
  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    return this.#tokenizer.encode(text, { add_special_tokens: options.addSpecialTokens ?? false }).ids;
  }

  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    return this.#tokenizer.decode([...ids], { skip_special_tokens: options.skipSpecialTokens ?? false });
  }

  /**
   * The bytes one token stands for, from its vocabulary piece: a token may hold part of a character
   * (byte-level BPE splits 東 over three tokens), which its decoded text cannot show (logprobs need them).
   */
  tokenBytes(id: number): Uint8Array {
    const piece = this.#tokenizer.id_to_token(id);
    if (piece === undefined) return utf8Encoder.encode(this.decode([id]));
    if (this.#byteLevel) {
      const bytes = [...piece].map((ch) => unicodeToByte().get(ch));
      if (bytes.every((b) => b !== undefined)) return Uint8Array.from(bytes as number[]);
    } else {
      const byte = /^<0x([0-9A-Fa-f]{2})>$/.exec(piece);
      if (byte) return Uint8Array.of(parseInt(byte[1], 16));
      return utf8Encoder.encode(piece.replaceAll("\u2581", " "));
    }
    return utf8Encoder.encode(piece);
  }

  get hasChatTemplate(): boolean {
    return this.#template !== null;
  }

  /**
   * Renders the chat template; the result already holds the BOS text where the
   * template adds it. Special-token text in the messages is copied as is: to
   * tokenize a chat, use {@link encodeChat}.
   */
  applyChatTemplate(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    return this.#render(messages, options);
  }

  /**
   * Token ids of a chat: the template rendered over `messages` and tokenized,
   * BOS included where the template writes it. Special tokens come only from
   * the template: text in a message that spells one (`<|eot_id|>`,
   * `<|start_header_id|>`, any added token) is encoded as the plain text it
   * is, unless `allowSpecialTokensInContent`.
   */
  encodeChat(messages: readonly ChatMessage[], options: EncodeChatOptions = {}): number[] {
    if (options.allowSpecialTokensInContent) return this.encode(this.#render(messages, options), { addSpecialTokens: false });
    if (this.#template?.writesPrivateUseMarkers) {
      throw new ModelLoadError(`${this.#templateFile}: the chat template writes characters of U+F0000-U+FFFFD, which wgkv reserves to keep message text plain; pass allowSpecialTokensInContent for trusted messages`);
    }
    let escaped: { escaped: readonly ChatMessage[]; markers: string[] };
    try {
      escaped = this.#escaper.escape(messages);
    } catch (err) {
      throw new InvalidInputError(`chat messages: ${causeText(err)}`);
    }
    return this.#escaper.encode(this.#render(escaped.escaped, options), escaped.markers);
  }

  #render(messages: readonly ChatMessage[], options: ChatTemplateOptions): string {
    if (!this.#template) {
      throw new ModelLoadError(`${this.#templateFile}: no chat template (neither a chat_template in tokenizer_config.json nor chat_template.jinja)`);
    }
    const text = this.#template.render({
      ...this.#specialTokens,
      messages,
      add_generation_prompt: options.addGenerationPrompt ?? true,
    });
    // NOTE: a template that writes nothing (a variable it expects and does not get) is the template's fault, not the messages'
    if (text === "") throw new ModelLoadError(`${this.#templateFile}: the chat template rendered an empty prompt for ${messages.length} message(s)`);
    return text;
  }

  /** Reads a model folder's tokenizer files (see {@link loadTokenizer}). */
  static async load(source: FileSource): Promise<TextTokenizer> {
    const p = await loadTokenizerParts(source);
    return new TextTokenizer(p.tokenizer, p.template, p.specialTokens, p.templateFile, p.config, p.longestToken, p.byteLevel);
  }
}

type Json = Record<string, unknown>;

/** The tokenizer of a model folder: tokenizer.json, tokenizer_config.json and its chat template. */
export function loadTokenizer(source: FileSource): Promise<TextTokenizer> {
  return TextTokenizer.load(source);
}

async function loadTokenizerParts(source: FileSource) {
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
  // NOTE: transformers gives a chat_template.jinja file priority over tokenizer_config.json's entry
  if (await source.exists("chat_template.jinja")) {
    templateText = await source.readText("chat_template.jinja");
    templateFile = describeFile(source, "chat_template.jinja");
  } else if (config.chat_template != null) {
    templateFile = describeFile(source, "tokenizer_config.json");
    templateText = configTemplate(config.chat_template, templateFile);
  }
  const template = templateText === null ? null : new ChatTemplate(templateText, templateFile);
  const specialTokens = specialTokenStrings(config, describeFile(source, "tokenizer_config.json"));
  for (const key of ["bos_token", "eos_token"]) {
    // NOTE: templates write these strings into the prompt: one that is not a token would be spelled out as text
    const text = specialTokens[key];
    if (text !== undefined && tokenizer.token_to_id(text) === undefined) {
      throw new ModelLoadError(`${describeFile(source, "tokenizer_config.json")}: field "${key}" is ${JSON.stringify(text.slice(0, 80))}, which is not a token of tokenizer.json`);
    }
  }
  return { tokenizer, template, specialTokens, templateFile, config, longestToken: longestTokenOf(tokenizerJson), byteLevel: usesByteLevel(tokenizerJson.decoder) };
}

/** Whether tokenizer.json's decoder (or one in its sequence) is ByteLevel: pieces spell bytes through GPT-2's map. */
function usesByteLevel(decoder: unknown): boolean {
  if (typeof decoder !== "object" || decoder === null) return false;
  const d = decoder as Json;
  return d.type === "ByteLevel" || (Array.isArray(d.decoders) && d.decoders.some(usesByteLevel));
}

const utf8Encoder = new TextEncoder();
let byteOfChar: Map<string, number> | undefined;

/** The inverse of GPT-2's bytes_to_unicode: printable bytes stand for themselves, the others for U+0100 on, in order. */
function unicodeToByte(): Map<string, number> {
  if (!byteOfChar) {
    byteOfChar = new Map();
    let next = 256;
    for (let b = 0; b < 256; b++) {
      const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      byteOfChar.set(String.fromCharCode(printable ? b : next++), b);
    }
  }
  return byteOfChar;
}

/** Characters of the longest token string in tokenizer.json: vocabulary keys (BPE, WordPiece) or pieces (Unigram), and added tokens. */
function longestTokenOf(json: Json): number {
  let longest = 1;
  const take = (piece: unknown) => typeof piece === "string" && (longest = Math.max(longest, piece.length));
  const vocab = (json.model as Json | undefined)?.vocab;
  if (Array.isArray(vocab)) for (const entry of vocab) take(Array.isArray(entry) ? entry[0] : entry);
  else if (vocab && typeof vocab === "object") for (const key of Object.keys(vocab)) take(key);
  if (Array.isArray(json.added_tokens)) for (const t of json.added_tokens) take((t as Json | null)?.content);
  return longest;
}

/**
 * tokenizer_config.json's chat_template: a string, or (older Mistral, Hermes, Cohere folders) a list of named
 * templates, of which chat uses the one named "default", as transformers does.
 */
function configTemplate(value: unknown, file: string): string {
  if (typeof value === "string") return value;
  if (Array.isArray(value)) {
    const named = value.filter((t): t is Json => typeof t === "object" && t !== null && typeof (t as Json).name === "string");
    const chosen = named.find((t) => t.name === "default");
    if (chosen && typeof chosen.template === "string") return chosen.template;
    throw new ModelLoadError(`${file}: field "chat_template" lists templates named ${JSON.stringify(named.map((t) => t.name))} but none named "default" with a template string`);
  }
  throw new ModelLoadError(`${file}: field "chat_template" must be a string or a list of named templates, got ${typeof value}`);
}

/** bos_token, eos_token, ... as plain strings, for the template's context. */
function specialTokenStrings(config: Json, file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of ["bos_token", "eos_token", "pad_token", "unk_token"]) {
    const value = config[key];
    if (typeof value === "string") out[key] = value;
    else if (value && typeof value === "object" && typeof (value as Json).content === "string") out[key] = (value as Json).content as string;
    else if (value != null) throw new ModelLoadError(`${file}: field "${key}" must be a token string or {"content": string}, got ${JSON.stringify(value).slice(0, 80)}`);
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
