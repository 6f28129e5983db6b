/**
 * @module eval/haystack
 *
 * Filler text that needles hide in, as token ids: windows of a text corpus at
 * seeded offsets, or RULER's repeated noise sentences. Needles are spliced in
 * between haystack tokens, as in the default model's golden NIAH prompt.
 */
import type { TextTokenizer } from "../tokenizer/tokenizer.js";
import type { Rng } from "./rng.js";

/** RULER's noise haystack: the same five sentences over and over. */
export const NOISE_TEXT = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";

/** Documents in the corpus file are separated by this character. */
export const DOCUMENT_SEPARATOR = "\x1e";

export type HaystackKind = "corpus" | "noise";

export interface Haystack {
  readonly kind: HaystackKind;
  /** Exactly `numTokens` filler ids; the corpus picks its window with `rng`. */
  tokens(numTokens: number, rng: Rng): number[];
}

/** Repeated noise sentences (no randomness: every case gets the same filler). */
export function noiseHaystack(tokenizer: TextTokenizer): Haystack {
  const first = tokenizer.encode(NOISE_TEXT);
  // NOTE: the leading space makes each repeat tokenize as it does inside running text.
  const period = tokenizer.encode(" " + NOISE_TEXT);
  return {
    kind: "noise",
    tokens(numTokens) {
      const out = [...first];
      while (out.length < numTokens) out.push(...period);
      return out.slice(0, numTokens);
    },
  };
}

/**
 * Windows of `text` (e.g. a prefix of corpus.txt). Document separators become
 * blank lines. A window starts at a random character, and its first token,
 * which may be a fragment, is dropped.
 */
export function corpusHaystack(tokenizer: TextTokenizer, text: string): Haystack {
  const corpus = text.replaceAll(DOCUMENT_SEPARATOR, "\n\n");
  if (corpus.trim().length === 0) throw new Error("the haystack corpus is empty");
  return {
    kind: "corpus",
    tokens(numTokens, rng) {
      let start = rng.int(0, corpus.length - 1);
      if (isLowSurrogate(corpus.charCodeAt(start))) start++; // never split a character
      // NOTE: byte-level BPE averages 3-4 characters per token on this corpus; 6 leaves room.
      for (let chars = numTokens * 6 + 64; ; chars *= 2) {
        const ids = tokenizer.encode(wrappedSlice(corpus, start, chars)).slice(1);
        if (ids.length >= numTokens) return ids.slice(0, numTokens);
        if (chars > corpus.length * 4) throw new Error(`the haystack corpus holds fewer than ${numTokens} tokens`);
      }
    },
  };
}

/** `length` characters from `start`, continuing at the beginning when the end is reached. */
function wrappedSlice(text: string, start: number, length: number): string {
  let out = text.slice(start, start + length);
  while (out.length < length) out += "\n\n" + text.slice(0, length - out.length);
  return out;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

/** A run of ids to splice into the haystack before haystack token `position`. */
export interface Insert {
  readonly position: number;
  readonly ids: readonly number[];
}

/**
 * The haystack with inserts spliced in; returns the ids and where each insert
 * starts in them (in the order the inserts were given).
 */
export function spliceInserts(haystack: readonly number[], inserts: readonly Insert[]): { ids: number[]; starts: number[] } {
  const order = inserts.map((_, i) => i).sort((a, b) => inserts[a].position - inserts[b].position || a - b);
  const ids: number[] = [];
  const starts = new Array<number>(inserts.length);
  let from = 0;
  for (const i of order) {
    const at = Math.max(from, Math.min(haystack.length, inserts[i].position));
    ids.push(...haystack.slice(from, at));
    starts[i] = ids.length;
    ids.push(...inserts[i].ids);
    from = at;
  }
  ids.push(...haystack.slice(from));
  return { ids, starts };
}

/** Haystack token index for a depth in [0, 1] (0: first, 1: after the last token). */
export function depthToPosition(depth: number, haystackLength: number): number {
  return Math.round(Math.min(1, Math.max(0, depth)) * haystackLength);
}
