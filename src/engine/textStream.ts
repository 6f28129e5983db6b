/**
 * @module engine/textStream
 *
 * Turns a sequence's tokens into streamed text: each token's delta, with
 * text that may still become a stop string held back, an incomplete UTF-8
 * character (a trailing U+FFFD the next token may finish) held back, and the
 * text cut before the first stop string.
 *
 * Decoding is incremental: each token decodes a short window, the last
 * CONTEXT_TOKENS ids before an anchor and those after it, and the text is
 * the anchor's text plus what the ids after the anchor add to the window
 * (decoding every id at every token cost O(n) per token, on the decode
 * step's path: 1-2 ms per token after 200 tokens). The context gives the
 * window's start the same neighbours as in the whole text (a decoder's
 * first-token rule, clean-up of " ," and the like, a character split over
 * tokens); where the window's text does not extend what it had at the
 * anchor (clean-up edited text before the anchor), the whole text is decoded
 * once and the anchor moves there. So `text` is what decoding every id
 * gives wherever a decoder's effects reach at most four ids back (byte-level
 * BPE, Metaspace, byte fallback and clean-up all do; tests check both kinds
 * of tokenizer at every token).
 */
import { scanStops } from "./stopStrings.js";
import type { TextTokenizer } from "../tokenizer/tokenizer.js";

/** Ids before the anchor each window decodes again. */
const CONTEXT_TOKENS = 4;

export class TextStream {
  readonly #ids: number[] = [];
  /** The text of ids [0, #anchor), as decoding them all gives it; it never ends in an unfinished character. */
  #anchor = 0;
  #anchorText = "";
  #text = "";
  #emitted = 0;
  #stopped = false;

  constructor(
    readonly tokenizer: TextTokenizer | null,
    readonly eosTokenIds: ReadonlySet<number>,
    readonly stops: readonly string[],
  ) {}

  /** The text so far (cut at a stop string once one was seen). */
  get text(): string {
    return this.#text;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Adds a token; returns the text it made safe to show and whether a stop string ended the text. */
  push(id: number): { delta: string; stopped: boolean } {
    if (!this.tokenizer || this.eosTokenIds.has(id) || this.#stopped) return { delta: "", stopped: this.#stopped };
    this.#ids.push(id);
    const text = this.#decodeNew(this.tokenizer);
    const scan = scanStops(text, this.stops);
    let safe = scan.safeLength;
    while (safe > this.#emitted && scan.stopAt < 0 && text.charCodeAt(safe - 1) === 0xfffd) safe--;
    const delta = text.slice(this.#emitted, Math.max(this.#emitted, safe));
    this.#emitted += delta.length;
    if (scan.stopAt >= 0) {
      this.#text = text.slice(0, scan.stopAt);
      this.#stopped = true;
      return { delta, stopped: true };
    }
    this.#text = text;
    return { delta, stopped: false };
  }

  /** The text of every id: the anchor's text, and what the ids after the anchor add to a window that starts before it. */
  #decodeNew(tokenizer: TextTokenizer): string {
    const ids = this.#ids;
    const from = Math.max(0, this.#anchor - CONTEXT_TOKENS);
    const decode = (a: number, b: number) => (b > a ? tokenizer.decode(ids.slice(a, b), { skipSpecialTokens: true }) : ""); // NOTE: the tokenizer library refuses an empty list
    const head = decode(from, this.#anchor);
    const window = decode(from, ids.length);
    const text = window.startsWith(head) ? this.#anchorText + window.slice(head.length) : decode(0, ids.length);
    if (text.charCodeAt(text.length - 1) !== 0xfffd) {
      this.#anchor = ids.length;
      this.#anchorText = text;
    }
    return text;
  }

  /** At the end: the text held back that is final now (a stop-string prefix that never completed). */
  flush(): string {
    if (this.#stopped) return "";
    const rest = this.#text.slice(this.#emitted);
    this.#emitted = this.#text.length;
    return rest;
  }
}
