/**
 * @module eval/commonWords
 *
 * RULER's common-words extraction: a numbered list where ten words appear
 * many times (30 each when the budget allows) and the rest a few times (3
 * each); the model must name the ten common ones. The number of rare words
 * fills the budget.
 */
import { Rng } from "./rng.js";
import { assembleCase, contentBudget, fitCount, type TaskCase, type TaskContext, type TaskGenerator } from "./task.js";
import { COMMON_WORDS, makeCodedWords } from "./words.js";

export interface CommonWordsOptions {
  /** Words to find (RULER default 10). */
  readonly numCommon?: number;
  /** Repeats of each common word at most (RULER default 30; lowered when the budget is small). */
  readonly commonRepeats?: number;
  /** Repeats of each rare word (RULER default 3). */
  readonly rareRepeats?: number;
}

const INSTRUCTION = "Below is a numbered list of words. In these words, some appear more often than others. Memorize the ones that appear most often.\n";

export function commonWordsTask(spec: string, options: CommonWordsOptions = {}): TaskGenerator {
  return { spec, generate: (context, length, rng) => generateCwe(spec, options, context, length, rng) };
}

function generateCwe(spec: string, options: CommonWordsOptions, context: TaskContext, length: number, rng: Rng): TaskCase {
  const numCommon = options.numCommon ?? 10;
  const rareRepeats = options.rareRepeats ?? 3;
  const question = `\nQuestion: What are the ${numCommon} most common words in the above list?`;
  const pool: string[] = rng.shuffle(COMMON_WORDS);
  const common = pool.slice(0, numCommon);
  // More rare words than the list holds are made up (RULER draws from a large dictionary).
  const rarePool = [...pool.slice(numCommon), ...makeCodedWords(rng, 4000, new Set(COMMON_WORDS))];
  const listOrderSeed = rng.nextU32();
  // Sized with a placeholder answer of the same shape; the real one follows the list order.
  const answerFor = (words: readonly string[]) => `The ${numCommon} most common words in the list are: ${words.join(", ")}.`;
  const budget = contentBudget(context, spec, length, answerFor(common));

  const build = (commonRepeats: number) => (numRare: number) => {
    const words: string[] = [];
    for (const w of common) for (let r = 0; r < commonRepeats; r++) words.push(w);
    for (const w of rarePool.slice(0, numRare)) for (let r = 0; r < rareRepeats; r++) words.push(w);
    const shuffled = new Rng(listOrderSeed).shuffle(words);
    const text = INSTRUCTION + shuffled.map((w, i) => `${i + 1}. ${w}`).join("\n") + question;
    return { ids: context.tokenizer.encode(text), words: shuffled };
  };
  // Common words must leave room for rare ones: halve their repeats until they take at most half the
  // budget, but keep them more frequent than any rare word.
  const minRepeats = rareRepeats + 1;
  let commonRepeats = Math.max(minRepeats, options.commonRepeats ?? 30);
  while (commonRepeats > minRepeats && build(commonRepeats)(0).ids.length > budget / 2) commonRepeats = Math.max(minRepeats, commonRepeats >> 1);
  const { built } = fitCount(build(commonRepeats), budget, 0, rarePool.length, "common words");
  const ordered = [...new Set(built.words)].filter((w) => common.includes(w));
  return assembleCase(context, { task: spec, length, contentIds: built.ids, answerText: answerFor(ordered), expected: ordered });
}
