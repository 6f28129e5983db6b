/**
 * @module eval/variableTracking
 *
 * RULER's variable tracking: a chain of assignments ("VAR QPXJT = 41230.",
 * then "VAR LMOWA = VAR QPXJT.", ...) is planted in order through the
 * haystack, with distractor chains of other values; the model must list every
 * variable that ends up holding the queried value.
 */
import type { HaystackKind } from "./haystack.js";
import { depthToPosition, spliceInserts, type Insert } from "./haystack.js";
import type { Rng } from "./rng.js";
import { assembleCase, contentBudget, type TaskCase, type TaskContext, type TaskGenerator } from "./task.js";

export interface VariableTrackingOptions {
  readonly haystack: HaystackKind;
  /** Chains in the text; chain 0 is asked about (RULER default 1). */
  readonly numChains?: number;
  /** Assignments after the first in each chain (RULER default 4). */
  readonly numHops?: number;
}

export function variableTrackingTask(spec: string, options: VariableTrackingOptions): TaskGenerator {
  return { spec, haystack: options.haystack, generate: (context, length, rng) => generateVt(spec, options, context, length, rng) };
}

function generateVt(spec: string, options: VariableTrackingOptions, context: TaskContext, length: number, rng: Rng): TaskCase {
  const { tokenizer } = context;
  const numChains = options.numChains ?? 1;
  const numHops = options.numHops ?? 4;
  const names = distinctNames(rng, numChains * (numHops + 1));
  const chainValues = new Set<string>();
  while (chainValues.size < numChains) chainValues.add(String(rng.int(10_000, 99_999)));
  const values = [...chainValues];

  const statements: { text: string; chain: number }[] = [];
  for (let c = 0; c < numChains; c++) {
    const chain = names.slice(c * (numHops + 1), (c + 1) * (numHops + 1));
    statements.push({ text: `VAR ${chain[0]} = ${values[c]}.`, chain: c });
    for (let h = 1; h <= numHops; h++) statements.push({ text: `VAR ${chain[h]} = VAR ${chain[h - 1]}.`, chain: c });
  }
  const asked = names.slice(0, numHops + 1);
  const question = `Find all variables that are assigned the value ${values[0]} in the text above.`;
  const answer = `The variables assigned the value ${values[0]} are: ${asked.join(", ")}.`;

  const statementIds = statements.map((s) => tokenizer.encode(` ${s.text} `));
  const questionIds = tokenizer.encode(`\n\n${question}`);
  const fixed = questionIds.length + statementIds.reduce((sum, ids) => sum + ids.length, 0);
  const numHaystack = contentBudget(context, spec, length, answer, fixed);
  // NOTE: each chain's statements must appear in chain order, so its depths are sorted.
  const depths: number[] = [];
  for (let c = 0; c < numChains; c++) {
    const chainDepths = Array.from({ length: numHops + 1 }, () => rng.next()).sort((a, b) => a - b);
    depths.push(...chainDepths);
  }
  const haystack = context.haystack(options.haystack).tokens(numHaystack, rng);
  const inserts: Insert[] = statementIds.map((ids, i) => ({ position: depthToPosition(depths[i], numHaystack), ids }));
  const { ids, starts } = spliceInserts(haystack, inserts);
  return assembleCase(context, {
    task: spec,
    length,
    contentIds: [...ids, ...questionIds],
    answerText: answer,
    expected: asked,
    needleStarts: starts.filter((_, i) => statements[i].chain === 0),
  });
}

/** Distinct five-letter upper-case variable names. */
function distinctNames(rng: Rng, count: number): string[] {
  const names = new Set<string>();
  while (names.size < count) names.add(Array.from({ length: 5 }, () => String.fromCharCode(65 + rng.int(0, 25))).join(""));
  return [...names];
}
