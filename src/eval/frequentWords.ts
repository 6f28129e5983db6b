/**
 * @module eval/frequentWords
 *
 * RULER's frequent-words extraction: a run of made-up "coded" words whose
 * frequencies follow a Zipf law (exponent 2), broken up by "...." fillers; the
 * model must name the three most frequent words. The number of words fills
 * the budget.
 */
import { Rng } from "./rng.js";
import { assembleCase, contentBudget, fitCount, type TaskCase, type TaskContext, type TaskGenerator } from "./task.js";
import { makeCodedWords } from "./words.js";

export interface FrequentWordsOptions {
  /** Zipf exponent (RULER default 2). */
  readonly alpha?: number;
  /** Distinct coded words (ranks of the Zipf law). */
  readonly vocabulary?: number;
}

const INSTRUCTION = "Read the following coded text and track the frequency of each coded word. Find the three most frequently appeared coded words. ";
const QUESTION = "\n\nQuestion: Do not provide any explanation. Please ignore the dots '....'. What are the three most frequently appeared words in the above coded text?";

export function frequentWordsTask(spec: string, options: FrequentWordsOptions = {}): TaskGenerator {
  return { spec, generate: (context, length, rng) => generateFwe(spec, options, context, length, rng) };
}

function generateFwe(spec: string, options: FrequentWordsOptions, context: TaskContext, length: number, rng: Rng): TaskCase {
  const alpha = options.alpha ?? 2;
  const vocabulary = makeCodedWords(rng, options.vocabulary ?? 1000);
  const textSeed = rng.nextU32();
  const answerFor = (top: readonly string[]) => `The three most frequently appeared words are: ${top.join(", ")}.`;
  const budget = contentBudget(context, spec, length, answerFor(vocabulary.slice(0, 3)));

  const build = (numWords: number) => {
    const words = zipfWords(new Rng(textSeed), vocabulary, numWords, alpha);
    const text = INSTRUCTION + words.join(" ") + QUESTION;
    return { ids: context.tokenizer.encode(text), words };
  };
  const { built } = fitCount(build, budget, 10, 100_000, "coded words");
  const top = topWords(built.words, 3);
  return assembleCase(context, { task: spec, length, contentIds: built.ids, answerText: answerFor(top), expected: top });
}

/**
 * `numWords` words drawn from a Zipf law over `vocabulary` (rank r has weight
 * r^-alpha) with a "...." after about every tenth word. The top three ranks get
 * distinct counts: ties are broken by moving one draw to the higher rank.
 */
export function zipfWords(rng: Rng, vocabulary: readonly string[], numWords: number, alpha: number): string[] {
  const weights = vocabulary.map((_, r) => (r + 1) ** -alpha);
  const total = weights.reduce((a, b) => a + b, 0);
  const cumulative: number[] = [];
  let acc = 0;
  for (const w of weights) cumulative.push((acc += w / total));
  const ranks = Array.from({ length: numWords }, () => {
    const u = rng.next();
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid] > u) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  });
  separateTopCounts(ranks, 4);
  const out: string[] = [];
  ranks.forEach((r, i) => {
    out.push(vocabulary[r]);
    if (i % 10 === 9 && rng.next() < 0.5) out.push("....");
  });
  return out;
}

/**
 * Makes the counts of ranks 0..k-1 strictly decreasing and above every other
 * rank's, by moving draws of ranks >= k (the tail) up; only the tail shrinks,
 * so a rank once fixed stays fixed.
 */
function separateTopCounts(ranks: number[], k: number): void {
  const counts = new Map<number, number>();
  for (const r of ranks) counts.set(r, (counts.get(r) ?? 0) + 1);
  const countOf = (r: number) => counts.get(r) ?? 0;
  let cursor = 0; // next draw to inspect for a tail rank
  for (let r = k - 1; r >= 0; r--) {
    let above = 0;
    for (const [s, n] of counts) if (s > r && n > above) above = n;
    while (countOf(r) <= above && cursor < ranks.length) {
      const s = ranks[cursor];
      if (s >= k) {
        counts.set(s, countOf(s) - 1);
        counts.set(r, countOf(r) + 1);
        ranks[cursor] = r;
      }
      cursor++;
    }
  }
}

/** The `k` most frequent words (ignoring "...."), most frequent first. */
export function topWords(words: readonly string[], k: number): string[] {
  const counts = new Map<string, number>();
  for (const w of words) if (w !== "....") counts.set(w, (counts.get(w) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, k).map(([w]) => w);
}
