/**
 * @module eval/runner
 *
 * Runs task cases through a model under one KV setting: teacher-forced exact
 * match of the answer sentence, a greedy answer scored by RULER's string
 * match, and the KV cache's admitted fraction and bytes after the prompt.
 */
import { generateAll, startGeneration } from "../engine/generation.js";
import type { KvReport } from "../engine/engineStats.js";
import { resolveKvOptions, type KvOptions } from "../engine/kvOptions.js";
import type { Model } from "../engine/model.js";
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
export function actsAtDecode(kv: KvOptions): boolean {
  const name = (p: string | { name: string } | undefined) => (typeof p === "object" ? p.name : p);
  return (name(kv.selection) ?? "all") !== "all" || (name(kv.eviction) ?? "none") !== "none";
}

/** Scores one case under `kv`. */
export async function evaluateCase(model: Model, testCase: TaskCase, kv: KvOptions, options: RunOptions): Promise<CaseResult> {
  const t0 = performance.now();
  const prompt = testCase.promptIds;
  const answer = testCase.answerIds;
  const forcing = new TeacherForcing(prompt.length, answer, model.config.vocabSize);
  // NOTE: prompt and answer go in as one prompt; only the logits from the prompt's last
  // position on come back. Chunked prefill computes what one pass over both would.
  const scored = await generateAll(
    startGeneration(model, [...prompt, ...answer.slice(0, -1)], {
      maxNewTokens: 0,
      logitsFrom: prompt.length - 1,
      onLogits: (first, logits, n) => forcing.addLogits(logits, first, n),
    }, () => resolveKvOptions(kv, model)),
  );
  const report: KvReport = scored.kv;
  const exact = forcing.isExactMatch;
  let greedyText: string | null = null;
  let greedyRan = false;
  if (options.greedy === "all" || (options.greedy === "misses" && (!exact || actsAtDecode(kv)))) {
    const result = await generateAll(startGeneration(model, prompt, { maxNewTokens: answer.length + (options.extraTokens ?? 16), temperature: 0 }, () => resolveKvOptions(kv, model)));
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
