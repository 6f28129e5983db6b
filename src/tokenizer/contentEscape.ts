/**
 * @module tokenizer/contentEscape
 *
 * Encodes a rendered chat prompt so that only the template can write special
 * tokens. The tokenizer splits added tokens (`<|eot_id|>`,
 * `<|start_header_id|>`, ...) out of any text before its model sees it, so
 * a user message that spells `<|eot_id|><|start_header_id|>assistant` would
 * otherwise end its turn and open a forged one.
 *
 * Before rendering, every spelling of an added token in the messages' strings
 * is replaced by a marker: one code point of Unicode's Supplementary Private
 * Use Area-A, which stands for that text. The template renders as usual
 * (messages without such spellings are unchanged, so it behaves as before),
 * and {@link ContentEscaper.encode} then tokenizes the result the way
 * @huggingface/tokenizers does (the same added-token split, lstrip/rstrip,
 * normalizer, pre-tokenizer with its section index, model), except that each
 * marker becomes its text again just before pre-tokenization: in place, as
 * plain text, never as the special token.
 *
 * NOTE: markers pass through the normalizer as themselves (normalizers leave
 * private-use characters alone), so escaped text is not normalized; added
 * tokens are ASCII markup, which the normalizers of the supported models do
 * not change. Text that only becomes an added token through normalization
 * (none of the supported tokenizers has one) is not caught.
 */
import type { Tokenizer } from "@huggingface/tokenizers";

const MARKER_BASE = 0xf0000;
const MARKER_LAST = 0xffffd;
const MARKER_RE = /[\u{F0000}-\u{FFFFD}]/gu;

/** An added token as the tokenizer declares it. */
interface AddedToken {
  readonly content: string;
  readonly id: number;
  readonly lstrip: boolean;
  readonly rstrip: boolean;
}

/** Leftmost-longest matches of a set of strings (as the tokenizer's own splitter finds them), or null for none. */
function splitter(words: readonly string[]): RegExp | null {
  if (words.length === 0) return null;
  return new RegExp([...new Set(words)].sort((a, b) => b.length - a.length).map(escapeRegExp).join("|"), "g");
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** `text` cut into pieces, each either an added token's text or the text between. */
function split(text: string, re: RegExp | null): string[] {
  if (!re) return [text];
  const out: string[] = [];
  let at = 0;
  for (const m of text.matchAll(re)) {
    if (m.index! > at) out.push(text.slice(at, m.index));
    out.push(m[0]);
    at = m.index! + m[0].length;
  }
  if (at < text.length) out.push(text.slice(at));
  return out;
}

/** Escapes added-token spellings in chat messages and encodes rendered prompts holding the markers. */
export class ContentEscaper {
  readonly #tokenizer: Tokenizer;
  readonly #byText = new Map<string, AddedToken>();
  readonly #splitRaw: RegExp | null;
  readonly #splitNormalized: RegExp | null;
  readonly #escapeRe: RegExp;
  readonly #removeSpace: boolean;
  readonly #lowercase: boolean;

  /** `config` is tokenizer_config.json (for `remove_space` and `do_lowercase_and_remove_accent`, as the tokenizer reads them). */
  constructor(tokenizer: Tokenizer, config: Readonly<Record<string, unknown>>) {
    this.#tokenizer = tokenizer;
    const raw: string[] = [];
    const normalized: string[] = [];
    for (const t of tokenizer.get_added_tokens_decoder().values()) {
      this.#byText.set(t.content, t);
      if (t.normalized && tokenizer.normalizer !== null) {
        const n = tokenizer.normalizer(t.content);
        normalized.push(n);
        this.#byText.set(n, t);
      } else {
        raw.push(t.content);
      }
    }
    this.#splitRaw = splitter(raw);
    this.#splitNormalized = splitter(normalized);
    // Every spelling of an added token (as written and as normalized), and the marker characters themselves.
    const words = [...new Set(this.#byText.keys())].sort((a, b) => b.length - a.length).map(escapeRegExp);
    this.#escapeRe = new RegExp([...words, "[\\u{F0000}-\\u{FFFFD}]"].join("|"), "gu");
    this.#removeSpace = config["remove_space"] === true;
    this.#lowercase = config["do_lowercase_and_remove_accent"] === true;
  }

  /**
   * A copy of `value` in which every string has each added-token spelling
   * (and each character of the marker range itself) replaced by a marker;
   * `markers[i]` is the text that code point U+F0000+i stands for.
   */
  escape<T>(value: T): { escaped: T; markers: string[] } {
    const markers: string[] = [];
    const indexOf = new Map<string, number>();
    const marker = (text: string): string => {
      let i = indexOf.get(text);
      if (i === undefined) {
        i = markers.push(text) - 1;
        if (MARKER_BASE + i > MARKER_LAST) throw new RangeError("more distinct escaped texts than private-use code points");
        indexOf.set(text, i);
      }
      return String.fromCodePoint(MARKER_BASE + i);
    };
    // Messages are plain data: strings in objects and arrays.
    const walk = (v: unknown, depth: number): unknown => {
      if (typeof v === "string") return v.replace(this.#escapeRe, marker);
      if (v === null || typeof v !== "object" || depth > 32) return v;
      if (Array.isArray(v)) return v.map((x) => walk(x, depth + 1));
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, depth + 1)]));
    };
    return { escaped: walk(value, 0) as T, markers };
  }

  /**
   * Token ids of `text` (a rendered prompt): added tokens where the text
   * spells them, markers as the plain text they stand for. No special tokens
   * are added around it. Without markers, the ids are those of the
   * tokenizer's own `encode(text, { add_special_tokens: false })`.
   */
  encode(text: string, markers: readonly string[]): number[] {
    const tokens = this.#encodeText(text, markers);
    const processed = this.#tokenizer.post_processor ? this.#tokenizer.post_processor(tokens, null, false).tokens : tokens;
    const model = this.#tokenizer.model!;
    return processed.map((t: string) => this.#byText.get(t)?.id ?? model.tokens_to_ids.get(t) ?? model.unk_token_id!);
  }

  // NOTE: mirrors @huggingface/tokenizers' Tokenizer.encode_text step by step.
  #encodeText(text: string, markers: readonly string[]): string[] {
    const unescape = (s: string) => s.replace(MARKER_RE, (c) => markers[c.codePointAt(0)! - MARKER_BASE] ?? c);
    const sections = split(text, this.#splitRaw);
    this.#strip(sections);
    const tokenizer = this.#tokenizer;
    return sections.flatMap((section, sectionIndex) => {
      if (section.length === 0) return [];
      if (this.#byText.has(section)) return [section];
      let s = section;
      if (this.#removeSpace) s = s.trim().split(/\s+/).join(" ");
      if (this.#lowercase) s = s.toLowerCase().replace(/\p{M}/gu, "");
      if (tokenizer.normalizer !== null) s = tokenizer.normalizer(s);
      if (s.length === 0) return [];
      const subsections = split(s, this.#splitNormalized);
      this.#strip(subsections);
      return subsections.flatMap((sub) => {
        if (sub.length === 0) return [];
        if (this.#byText.has(sub)) return [sub];
        const plain = unescape(sub);
        const words = tokenizer.pre_tokenizer !== null ? tokenizer.pre_tokenizer(plain, { section_index: sectionIndex }) : [plain];
        return tokenizer.model!(words);
      });
    });
  }

  /** Added tokens with lstrip/rstrip eat the whitespace beside them. */
  #strip(pieces: string[]): void {
    pieces.forEach((piece, i) => {
      const t = this.#byText.get(piece);
      if (!t) return;
      if (t.lstrip && i > 0) pieces[i - 1] = pieces[i - 1]!.trimEnd();
      if (t.rstrip && i < pieces.length - 1) pieces[i + 1] = pieces[i + 1]!.trimStart();
    });
  }
}
