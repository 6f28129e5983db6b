/**
 * @module eval/task
 *
 * What a long-context task case is, and what generators need to build one.
 * Every case is sized so that prompt + answer fit the token budget.
 */
import { InvalidInputError } from "../errors.js";
import type { TextTokenizer } from "../tokenizer/tokenizer.js";
import { frameAnswer, frameOverhead, framePrompt, type ChatFrame } from "./chatFrame.js";
import type { Haystack, HaystackKind } from "./haystack.js";
import type { Rng } from "./rng.js";

/** One generated prompt with its expected answer. */
export interface TaskCase {
  /** Task spec it came from, e.g. "niah" or "niah_multikey:uuids". */
  readonly task: string;
  /** Token budget: promptIds.length + answerIds.length <= length. */
  readonly length: number;
  readonly promptIds: readonly number[];
  /** The answer sentence's ids followed by the end-of-turn id (what teacher forcing checks). */
  readonly answerIds: readonly number[];
  readonly answerText: string;
  /** Strings a greedy answer must contain (RULER's string match). */
  readonly expected: readonly string[];
  /** Prompt positions where the needles (or planted statements) start. */
  readonly needleStarts: readonly number[];
}

/** Tokenizer, chat frame and haystacks shared by all generators of a run. */
export interface TaskContext {
  readonly tokenizer: TextTokenizer;
  readonly frame: ChatFrame;
  haystack(kind: HaystackKind): Haystack;
}

export interface TaskGenerator {
  /** The spec this generator was parsed from. */
  readonly spec: string;
  /** The haystack its cases draw from, if any (the corpus must then be loaded). */
  readonly haystack?: HaystackKind;
  /** A case that fits `length` tokens; the same rng state gives the same case. */
  generate(context: TaskContext, length: number, rng: Rng): TaskCase;
}

/** Ids of a user content + answer pair wrapped in the chat frame. */
export function assembleCase(
  context: TaskContext,
  fields: { task: string; length: number; contentIds: readonly number[]; answerText: string; expected: readonly string[]; needleStarts?: readonly number[] },
): TaskCase {
  const offset = context.frame.userPrefix.length;
  return {
    task: fields.task,
    length: fields.length,
    promptIds: framePrompt(context.frame, fields.contentIds),
    answerIds: frameAnswer(context.frame, context.tokenizer, fields.answerText),
    answerText: fields.answerText,
    expected: fields.expected,
    needleStarts: (fields.needleStarts ?? []).map((p) => p + offset),
  };
}

/** Tokens left for content once the frame and the answer are counted; throws if none. */
export function contentBudget(context: TaskContext, task: string, length: number, answerText: string, fixedContent = 0): number {
  const answer = frameAnswer(context.frame, context.tokenizer, answerText).length;
  const budget = length - frameOverhead(context.frame) - answer - fixedContent;
  if (budget < 1) throw new InvalidInputError(`--lengths ${length} is too short for task ${task}`);
  return budget;
}

/**
 * The largest n in [min, max] whose content fits `budget` tokens, with that
 * content. `build` must grow with n. Exponential then binary search, so long
 * prompts are tokenized O(log n) times.
 */
export function fitCount<T extends { ids: readonly number[] }>(build: (n: number) => T, budget: number, min: number, max: number, what: string): { n: number; built: T } {
  let best = build(min);
  if (best.ids.length > budget) throw new InvalidInputError(`--lengths: ${budget} tokens cannot hold even ${min} ${what}`);
  let lo = min;
  let hi = min + 1;
  while (hi <= max) {
    const trial = build(hi);
    if (trial.ids.length > budget) break;
    best = trial;
    lo = hi;
    hi = Math.min(max + 1, lo * 2);
    if (lo === max) return { n: lo, built: best };
  }
  hi = Math.min(hi, max + 1);
  // Invariant: build(lo) fits, build(hi) does not (or hi is past max).
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    const trial = build(mid);
    if (trial.ids.length <= budget) {
      lo = mid;
      best = trial;
    } else hi = mid;
  }
  return { n: lo, built: best };
}
