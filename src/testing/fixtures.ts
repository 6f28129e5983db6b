/**
 * @module testing/fixtures
 *
 * Test helpers: where the shared fixtures live and how to compare logits.
 */
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The project root (dist/testing/.. /..). */
export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const SHARED = resolve(PROJECT_ROOT, "../shared");
export const DEFAULT_MODEL_DIR = join(PROJECT_ROOT, "models/wgkv-tiny-chat");
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
  return join(SHARED, "fixtures/archs", name);
}

export function readGolden(): Record<string, GoldenEntry> {
  return readJson(join(SHARED, "fixtures/golden-tiny-chat.json"));
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
