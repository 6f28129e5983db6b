/**
 * @module engine/textStream
 *
 * Turns a sequence's tokens into streamed text: each token's delta, with
 * text that may still become a stop string held back, an incomplete UTF-8
 * character (a trailing U+FFFD the next token may finish) held back, and the
 * text cut before the first stop string.
 */
import { scanStops } from "./stopStrings.js";
import type { TextTokenizer } from "../tokenizer/tokenizer.js";

export class TextStream {
  readonly #ids: number[] = [];
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
    const text = this.tokenizer.decode(this.#ids, { skipSpecialTokens: true });
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

  /** At the end: the text held back that is final now (a stop-string prefix that never completed). */
  flush(): string {
    if (this.#stopped) return "";
    const rest = this.#text.slice(this.#emitted);
    this.#emitted = this.#text.length;
    return rest;
  }
}
