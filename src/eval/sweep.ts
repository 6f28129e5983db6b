/**
 * @module eval/sweep
 *
 * A sweep over (task, length, policy): cases are generated once per (task,
 * length) from seeds derived from (seed, task, length, case), so every policy
 * sees the same prompts, and any one cell can be regenerated alone.
 */
import { InvalidInputError } from "../errors.js";
import type { Model } from "../engine/model.js";
import type { KvOptions } from "../engine/kvOptions.js";
import type { TextTokenizer } from "../tokenizer/tokenizer.js";
import { chatFrame } from "./chatFrame.js";
import { corpusHaystack, noiseHaystack, type Haystack, type HaystackKind } from "./haystack.js";
import type { PolicySpec } from "./policySpec.js";
import { summarizeCell, type CellResult } from "./report.js";
import { Rng } from "./rng.js";
import { evaluateCase, type CaseResult, type GreedyMode } from "./runner.js";
import type { TaskCase, TaskContext, TaskGenerator } from "./task.js";

export interface SweepOptions {
  readonly tasks: readonly TaskGenerator[];
  readonly lengths: readonly number[];
  readonly policies: readonly PolicySpec[];
  readonly numCases: number;
  readonly seed: number;
  readonly greedy: GreedyMode;
  /** KV options of a policy, its gate loaded (reads gate files: platform code). */
  readonly resolvePolicy: (policy: PolicySpec) => Promise<KvOptions>;
  /** Cases of a cell run at once (they share the engine's steps; default 4). */
  readonly concurrency?: number;
  /** Progress lines (one per case and per finished cell). */
  readonly log?: (line: string) => void;
  /** Called after each cell, e.g. to rewrite the results files. */
  readonly onCell?: (cell: CellResult, all: readonly CellResult[]) => Promise<void> | void;
}

/** Tokenizer, chat frame and haystacks; `corpusText` is needed only by corpus haystacks. */
export function createTaskContext(tokenizer: TextTokenizer, corpusText: string | null): TaskContext {
  const haystacks = new Map<HaystackKind, Haystack>();
  return {
    tokenizer,
    frame: chatFrame(tokenizer),
    haystack(kind) {
      let h = haystacks.get(kind);
      if (!h) {
        if (kind === "corpus" && corpusText === null) throw new InvalidInputError("a task needs the corpus haystack: pass --corpus FILE");
        h = kind === "corpus" ? corpusHaystack(tokenizer, corpusText!) : noiseHaystack(tokenizer);
        haystacks.set(kind, h);
      }
      return h;
    },
  };
}

/** Case `index` of a task at a length: depends only on (seed, task spec, length, index). */
export function generateCase(context: TaskContext, task: TaskGenerator, length: number, seed: number, index: number): TaskCase {
  return task.generate(context, length, Rng.derive(seed, task.spec, length, index));
}

export async function runSweep(model: Model, context: TaskContext, options: SweepOptions): Promise<CellResult[]> {
  const log = options.log ?? (() => {});
  const settings = new Map<string, KvOptions>();
  for (const policy of options.policies) settings.set(policy.spec, await options.resolvePolicy(policy));
  const cells: CellResult[] = [];
  for (const task of options.tasks) {
    for (const length of options.lengths) {
      const cases = Array.from({ length: options.numCases }, (_, i) => generateCase(context, task, length, options.seed, i));
      for (const policy of options.policies) {
        const tag = `[${task.spec} ${length} ${policy.label}]`;
        const results: CaseResult[] = [];
        const report = (i: number, r: CaseResult) => {
          results.push(r);
          const tf = results.filter((x) => x.teacherForced).length;
          const greedy = r.greedyScore === null ? "" : ` greedy ${r.greedyScore.toFixed(2)}${r.greedyRan ? "" : " (implied)"} "${oneLine(r.greedyText ?? "")}"`;
          log(`${tag} case ${i + 1}/${cases.length}: ${r.teacherForced ? "match" : `miss at answer token ${r.correctPrefix}`}${greedy}; ` +
            `accuracy so far ${tf}/${results.length}; admitted ${r.admittedFraction.toFixed(3)}; ${(r.ms / 1000).toFixed(1)} s`);
        };
        // cases of a cell run a few at a time: their steps share the engine's batches
        const byIndex = new Array<CaseResult>(cases.length);
        let next = 0;
        const worker = async () => {
          for (let i = next++; i < cases.length; i = next++) {
            byIndex[i] = await evaluateCase(model, cases[i], settings.get(policy.spec)!, { greedy: options.greedy });
            report(i, byIndex[i]);
          }
        };
        await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 4) }, worker));
        results.splice(0, results.length, ...byIndex);
        const cell = summarizeCell(task.spec, length, policy, results);
        cells.push(cell);
        log(`${tag} done: accuracy ${cell.accuracy.toFixed(3)}, greedy ${cell.greedy_accuracy?.toFixed(3) ?? "off"}, admitted ${cell.admitted_fraction.toFixed(3)}, KV ${(cell.kv_fraction * 100).toFixed(1)}% of full, ${cell.seconds} s`);
        await options.onCell?.(cell, cells);
      }
    }
  }
  return cells;
}

function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > 80 ? flat.slice(0, 77) + "..." : flat;
}
