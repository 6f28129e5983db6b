/**
 * @module eval/niah
 *
 * Needle-in-a-haystack tasks after RULER (single, multi-key, multi-value,
 * multi-query), in the default model's training format, learned from the
 * golden prompt `niah1500_full`:
 *
 * ```
 * <bos><user header>\n\n  haystack tokens with needles spliced in, each needle
 *   tokenized as " The special magic number for quiet-apple-45 is: 1499914. "
 * \n\nWhat is the special magic number for quiet-apple-45?<eot><assistant header>\n\n
 * answer: The special magic number for quiet-apple-45 is: 1499914.<eot>
 * ```
 *
 * The golden prompt holds four needles with distinct keys (RULER's multi-key),
 * no instruction before the haystack, and the question right after it.
 */
import type { HaystackKind } from "./haystack.js";
import { depthToPosition, spliceInserts } from "./haystack.js";
import type { Rng } from "./rng.js";
import { assembleCase, contentBudget, type TaskCase, type TaskContext, type TaskGenerator } from "./task.js";
import { makeKeys, makeValues, valueNoun, type ValueKind } from "./words.js";

export type NiahVariant = "single" | "multikey" | "multivalue" | "multiquery";
export const NIAH_VARIANTS: readonly NiahVariant[] = ["single", "multikey", "multivalue", "multiquery"];

export interface NiahOptions {
  readonly variant: NiahVariant;
  readonly values: ValueKind;
  readonly haystack: HaystackKind;
  /** Needles in the haystack (default 1 for single, 4 otherwise, as RULER and the golden prompt). */
  readonly numNeedles?: number;
  /** Where needles go, as fractions of the haystack; needle i uses depths[i % length]. Default: uniform random. */
  readonly depths?: readonly number[];
}

/** The sentence a needle states, e.g. "The special magic number for quiet-apple-45 is: 1499914." */
export function needleSentence(key: string, value: string, values: ValueKind): string {
  return `The special magic ${valueNoun(values)} for ${key} is: ${value}.`;
}

/** A NIAH task generator; `spec` names it in results. */
export function niahTask(spec: string, options: NiahOptions): TaskGenerator {
  return { spec, haystack: options.haystack, generate: (context, length, rng) => generateNiah(spec, options, context, length, rng) };
}

interface Needle {
  readonly key: string;
  readonly value: string;
}

function generateNiah(spec: string, options: NiahOptions, context: TaskContext, length: number, rng: Rng): TaskCase {
  const { tokenizer } = context;
  const numNeedles = options.numNeedles ?? (options.variant === "single" ? 1 : 4);
  const noun = valueNoun(options.values);
  // Needle 0 is always asked about; the others are distractors, more values of
  // needle 0's key (multi-value), or further questions (multi-query).
  const keys = makeKeys(rng, numNeedles);
  const values = makeValues(rng, options.values, numNeedles);
  const needles: Needle[] = values.map((value, i) => ({ key: options.variant === "multivalue" ? keys[0] : keys[i], value }));
  const depths = needles.map((_, i) => (options.depths ? options.depths[i % options.depths.length] : rng.next()));

  // The order of the answer follows the order of the needles in the text.
  const byDepth = needles.map((_, i) => i).sort((a, b) => depths[a] - depths[b] || a - b);
  let question: string;
  let answer: string;
  let expected: string[];
  switch (options.variant) {
    case "single":
    case "multikey":
      question = `What is the special magic ${noun} for ${needles[0].key}?`;
      answer = needleSentence(needles[0].key, needles[0].value, options.values);
      expected = [needles[0].value];
      break;
    case "multivalue": {
      const ordered = byDepth.map((i) => needles[i].value);
      question = `What are all the special magic ${noun}s for ${needles[0].key}?`;
      answer = `The special magic ${noun}s for ${needles[0].key} are: ${ordered.join(", ")}.`;
      expected = ordered;
      break;
    }
    case "multiquery": {
      const asked = needles.map((n) => n.key);
      question = `What are the special magic ${noun}s for ${joinList(asked)}?`;
      answer = needles.map((n) => needleSentence(n.key, n.value, options.values)).join(" ");
      expected = needles.map((n) => n.value);
      break;
    }
  }

  const needleIds = needles.map((n) => tokenizer.encode(` ${needleSentence(n.key, n.value, options.values)} `));
  const questionIds = tokenizer.encode(`\n\n${question}`);
  const fixed = questionIds.length + needleIds.reduce((sum, ids) => sum + ids.length, 0);
  const numHaystack = contentBudget(context, spec, length, answer, fixed);
  const haystack = context.haystack(options.haystack).tokens(numHaystack, rng);
  const { ids, starts } = spliceInserts(
    haystack,
    needleIds.map((ids, i) => ({ position: depthToPosition(depths[i], numHaystack), ids })),
  );
  return assembleCase(context, { task: spec, length, contentIds: [...ids, ...questionIds], answerText: answer, expected, needleStarts: starts });
}

/** "a, b and c". */
function joinList(items: readonly string[]): string {
  return items.length <= 1 ? items.join("") : `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;
}
