/**
 * @module testing/fixtures
 *
 * Test helpers: where the reference fixtures live and how to compare logits.
 *
 * The fixtures are vendored in test-fixtures/ (copied from the shared folder
 * by scripts/refresh-fixtures.mjs), so a clone tests on its own.
 */
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The project root (build/testing/../..). */
export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
/** The vendored reference fixtures. */
export const FIXTURES_DIR = join(PROJECT_ROOT, "test-fixtures");
/** The default model's references: full attention and WG-KV, short chat and NIAH prompts. */
export const GOLDEN_FILE = join(FIXTURES_DIR, "golden-tiny-chat.json");
export const DEFAULT_MODEL_DIR = join(PROJECT_ROOT, "models/wgkv-tiny-chat");
// NOTE: scripts/refresh-fixtures.mjs copies the same list.
export const ARCH_FIXTURES = ["llama3-scaled", "qwen2", "qwen3", "mistral"] as const;

export interface ArchReference {
  input_ids: number[];
  argmax: number[];
  last_logits: number[];
  logits_norm: number[];
  greedy_ids: number[];
}

export interface GoldenEntry {
  prompt_ids: number[];
  window: number | null;
  last_logits: number[];
  top5_ids: number[][];
  top5_logits: number[][];
  greedy_ids: number[];
  greedy_text: string;
  gate_scores?: number[][][];
  admitted?: number[][];
}

export function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, "utf8")) as T;
}

export function archDir(name: string): string {
  return join(FIXTURES_DIR, "archs", name);
}

export function readGolden(): Record<string, GoldenEntry> {
  return readJson(GOLDEN_FILE);
}

/** ||a - b|| / ||b|| */
export function relativeL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}
