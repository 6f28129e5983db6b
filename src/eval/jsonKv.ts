/**
 * @module eval/jsonKv
 *
 * JSON key-value retrieval (RULER's kv task, from "Lost in the Middle"): a
 * JSON object of UUID keys and UUID values, one pair per line; the model must
 * return the value of one key. The number of pairs fills the budget; the
 * queried pair sits at a chosen or random depth.
 */
import { InvalidInputError } from "../errors.js";
import type { Rng } from "./rng.js";
import { assembleCase, contentBudget, fitCount, type TaskCase, type TaskContext, type TaskGenerator } from "./task.js";
import { makeUuid } from "./words.js";

export interface JsonKvOptions {
  /** Where the queried pair goes, as a fraction of the pairs (default: uniform random). */
  readonly depth?: number;
}

const INSTRUCTION = "Extract the value corresponding to the specified key in the JSON object below.\n\nJSON data:\n";

export function jsonKvTask(spec: string, options: JsonKvOptions = {}): TaskGenerator {
  return { spec, generate: (context, length, rng) => generateKv(spec, options, context, length, rng) };
}

function generateKv(spec: string, options: JsonKvOptions, context: TaskContext, length: number, rng: Rng): TaskCase {
  const depth = options.depth ?? rng.next();
  // A pair of UUIDs is ~50 tokens; draw more pairs than any budget up to 1M tokens needs, lazily.
  const pairs: [string, string][] = [];
  const pairAt = (i: number) => {
    while (pairs.length <= i) pairs.push([makeUuid(rng), makeUuid(rng)]);
    return pairs[i];
  };
  const answerFor = (key: string, value: string) => `The value for key ${key} is: ${value}.`;
  const probe = pairAt(0);
  const budget = contentBudget(context, spec, length, answerFor(probe[0], probe[1]));

  const build = (numPairs: number) => {
    const chosen = Array.from({ length: numPairs }, (_, i) => pairAt(i));
    // NOTE: pair 0 is the queried one; it moves to its depth so every n keeps it.
    const order = chosen.slice(1);
    order.splice(Math.round(depth * (numPairs - 1)), 0, chosen[0]);
    const lines = order.map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`);
    const text = `${INSTRUCTION}{${lines.join(",\n ")}}\n\nKey: ${JSON.stringify(chosen[0][0])}\nCorresponding value:`;
    return { ids: context.tokenizer.encode(text) };
  };
  const { n, built } = fitCount(build, budget, 1, 20_000, "JSON pairs");
  if (n < 2) throw new InvalidInputError(`--lengths ${length} is too short for task ${spec}`);
  const [key, value] = pairAt(0);
  return assembleCase(context, { task: spec, length, contentIds: built.ids, answerText: answerFor(key, value), expected: [value] });
}
