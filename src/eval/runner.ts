/**
 * @module eval/runner
 *
 * Runs task cases through a model under one KV setting: teacher-forced exact
 * match of the answer sentence, a greedy answer scored by RULER's string
 * match, and the KV cache's admitted fraction and bytes after the prompt.
 */
import { generateAll } from "../engine/generate.js";
import type { Model } from "../engine/model.js";
import type { KvSettings } from "../kv/kvSettings.js";
import type { KvReport } from "../kv/sequenceKv.js";
import { stringMatchAll, TeacherForcing } from "./scoring.js";
import type { TaskCase } from "./task.js";

/**
 * When to run greedy decoding. "misses" skips it where teacher forcing matched
 * and the policy only admits (no selection or eviction): then greedy decoding
 * follows the same visibility rule through the same tokens, so it produces the
 * answer sentence and its end of turn exactly, and scores 1.
 */
export type GreedyMode = "all" | "misses" | "off";
export const GREEDY_MODES: readonly GreedyMode[] = ["all", "misses", "off"];

export interface CaseResult {
  readonly teacherForced: boolean;
  /** Answer tokens right before the first teacher-forced miss. */
  readonly correctPrefix: number;
  /** Greedy answer text; null when greedy decoding was off. */
  readonly greedyText: string | null;
  /** RULER string-match-all score of the greedy answer; null when off. */
  readonly greedyScore: number | null;
  /** True when greedy decoding actually ran (not inferred from teacher forcing). */
  readonly greedyRan: boolean;
  readonly numPromptTokens: number;
  /** KV cache after the prompt. */
  readonly admittedFraction: number;
  readonly residentBytes: number;
  readonly peakBytes: number;
  readonly fullAttentionBytes: number;
  readonly ms: number;
}

export interface RunOptions {
  readonly greedy: GreedyMode;
  /** Tokens generated beyond the answer's length before greedy decoding stops. */
  readonly extraTokens?: number;
}

/** Admitted (layer, KV head, token) entries over all entries. */
export function admittedFraction(report: KvReport): number {
  const heads = report.admittedByHead.flat();
  const total = heads.reduce((a, b) => a + b, 0);
  return heads.length === 0 || report.numTokens === 0 ? 0 : total / (heads.length * report.numTokens);
}

/** True when decoding reads or keeps the cache differently from a prefill (selection or eviction). */
export function actsAtDecode(kv: Partial<KvSettings>): boolean {
  return (kv.selection !== undefined && kv.selection.name !== "all") || (kv.eviction !== undefined && kv.eviction.name !== "none");
}

/** Scores one case under `kv`. */
export async function evaluateCase(model: Model, testCase: TaskCase, kv: Partial<KvSettings>, options: RunOptions): Promise<CaseResult> {
  const t0 = performance.now();
  const prompt = testCase.promptIds;
  const answer = testCase.answerIds;
  const forcing = new TeacherForcing(prompt.length, answer, model.config.vocabSize);
  let report: KvReport;
  const sequence = model.createSequence(prompt.length + answer.length, kv);
  try {
    // NOTE: the prompt goes in large chunks (only its last logits are needed); the
    // answer follows with all-position logits. Chunked prefill computes what one
    // pass over prompt + answer would.
    const last = await model.prefill(prompt, sequence);
    forcing.addRow(last, 0, prompt.length - 1);
    report = sequence.report();
    if (answer.length > 1) await model.prefill(answer.slice(0, -1), sequence, (logits, first, n) => forcing.addLogits(logits, first, n));
  } finally {
    sequence.release();
  }

  const exact = forcing.isExactMatch;
  let greedyText: string | null = null;
  let greedyRan = false;
  if (options.greedy === "all" || (options.greedy === "misses" && (!exact || actsAtDecode(kv)))) {
    const result = await generateAll(model, prompt, { maxNewTokens: answer.length + (options.extraTokens ?? 16), kv });
    greedyText = result.text;
    greedyRan = true;
  } else if (options.greedy === "misses") {
    greedyText = testCase.answerText;
  }
  return {
    teacherForced: exact,
    correctPrefix: forcing.numCorrectPrefix,
    greedyText,
    greedyScore: greedyText === null ? null : stringMatchAll(greedyText, testCase.expected),
    greedyRan,
    numPromptTokens: prompt.length,
    admittedFraction: admittedFraction(report),
    residentBytes: report.residentBytes,
    peakBytes: report.peakBytes,
    fullAttentionBytes: report.fullAttentionBytes,
    ms: performance.now() - t0,
  };
}
