/**
 * @module eval/report
 *
 * One result row per (task, length, policy) cell, and the markdown table of a
 * sweep. `accuracy` is the teacher-forced exact match (the figure
 * reference/gate-recipe.md reports); greedy string match sits beside it.
 */
import type { CaseResult } from "./runner.js";

/** A (task, length, policy) cell, as written to results.json. */
export interface CellResult {
  readonly task: string;
  readonly length: number;
  /** Policy label (gate file's base name) and the spec as given. */
  readonly policy: string;
  readonly policy_spec: string;
  readonly cases: number;
  /** Teacher-forced exact match of the answer sentence. */
  readonly accuracy: number;
  readonly teacher_forced_accuracy: number;
  /** Mean RULER string-match-all score of greedy answers; null when greedy decoding was off. */
  readonly greedy_accuracy: number | null;
  /** Cases where greedy decoding ran (the rest were implied by teacher forcing). */
  readonly greedy_runs: number;
  /** Mean over cases, KV cache after the prompt. */
  readonly admitted_fraction: number;
  readonly kv_bytes: number;
  readonly kv_peak_bytes: number;
  readonly full_kv_bytes: number;
  /** kv_bytes / full_kv_bytes. */
  readonly kv_fraction: number;
  readonly prompt_tokens: number;
  readonly seconds: number;
}

export function summarizeCell(task: string, length: number, policy: { label: string; spec: string }, results: readonly CaseResult[]): CellResult {
  const mean = (f: (r: CaseResult) => number) => (results.length === 0 ? 0 : results.reduce((s, r) => s + f(r), 0) / results.length);
  const round = (x: number, digits = 4) => Math.round(x * 10 ** digits) / 10 ** digits;
  const tf = mean((r) => (r.teacherForced ? 1 : 0));
  const greedyOff = results.some((r) => r.greedyScore === null);
  const kvBytes = mean((r) => r.residentBytes);
  const fullBytes = mean((r) => r.fullAttentionBytes);
  return {
    task,
    length,
    policy: policy.label,
    policy_spec: policy.spec,
    cases: results.length,
    accuracy: round(tf),
    teacher_forced_accuracy: round(tf),
    greedy_accuracy: greedyOff ? null : round(mean((r) => r.greedyScore ?? 0)),
    greedy_runs: results.filter((r) => r.greedyRan).length,
    admitted_fraction: round(mean((r) => r.admittedFraction)),
    kv_bytes: Math.round(kvBytes),
    kv_peak_bytes: Math.round(mean((r) => r.peakBytes)),
    full_kv_bytes: Math.round(fullBytes),
    kv_fraction: round(fullBytes > 0 ? kvBytes / fullBytes : 0),
    prompt_tokens: round(mean((r) => r.numPromptTokens), 1),
    seconds: round(results.reduce((s, r) => s + r.ms, 0) / 1000, 1),
  };
}

/** The sweep as a markdown document: a header naming the run, then one row per cell. */
export function markdownReport(cells: readonly CellResult[], header: { model: string; command: string; window: number; seed: number }): string {
  const mib = (b: number) => (b / 2 ** 20).toFixed(2);
  const lines = [
    "# wgkv eval",
    "",
    `model \`${header.model}\`, local window ${header.window}, seed ${header.seed}`,
    "",
    "```",
    header.command,
    "```",
    "",
    "accuracy: teacher-forced exact match of the answer sentence (every answer token is the argmax);",
    "greedy: RULER string match (share of expected values in the greedy answer); admitted: share of",
    "(layer, KV head, token) entries admitted; KV: resident bytes after the prompt, mean over cases.",
    "",
    "| task | length | policy | cases | accuracy | greedy | admitted | KV MiB | KV / full |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const c of cells) {
    const greedy = c.greedy_accuracy === null ? "–" : c.greedy_accuracy.toFixed(3);
    lines.push(
      `| ${c.task} | ${c.length} | ${c.policy} | ${c.cases} | ${c.accuracy.toFixed(3)} | ${greedy} | ${c.admitted_fraction.toFixed(3)} | ${mib(c.kv_bytes)} | ${c.kv_fraction.toFixed(3)} |`,
    );
  }
  return lines.join("\n") + "\n";
}
