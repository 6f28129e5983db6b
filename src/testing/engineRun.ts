/**
 * @module testing/engineRun
 *
 * Test support: a prompt through the engine with everything a test compares
 * collected on the way: argmax and logits of every position asked for, the
 * last logits, the greedy continuation, gate scores [layer][head][position]
 * and the generation's result.
 */
import type { GenerationResult } from "../engine/generation.js";
import { generate, type Model, type NodeGenerateOptions } from "../index.js";
import { argmax } from "../util/argmax.js";

export interface PromptRun {
  /** Argmax of every position from `logitsFrom` on (prompt and generated). */
  readonly argmax: number[];
  /** Logits of those positions, in order. */
  readonly logits: Float32Array[];
  /** Logits of the prompt's last position. */
  readonly last: Float32Array;
  readonly result: GenerationResult;
  /** [layer][kvHead][position] gate scores, when traced (NaN where not reported). */
  readonly scores: number[][][] | null;
}

export interface PromptRunOptions extends Omit<NodeGenerateOptions, "onLogits" | "onGateScores" | "logitsFrom"> {
  /** Logits from this position on (default 0: every position). */
  readonly logitsFrom?: number;
  /** Collect gate scores. */
  readonly traceGate?: boolean;
}

export async function runPrompt(model: Model, ids: readonly number[], options: PromptRunOptions = {}): Promise<PromptRun> {
  const { traceGate, logitsFrom = 0, ...rest } = options;
  const V = model.config.vocabSize;
  const { numLayers: L, numKvHeads: H } = model.config;
  const byPosition = new Map<number, Float32Array>();
  const total = ids.length + (rest.maxNewTokens ?? 0);
  const scores = traceGate ? Array.from({ length: L }, () => Array.from({ length: H }, () => new Array<number>(total).fill(NaN))) : null;
  const stream = generate(model, [...ids], {
    maxNewTokens: 0,
    temperature: 0,
    ...rest,
    logitsFrom,
    onLogits: (pos0, logits, n) => {
      for (let t = 0; t < n; t++) byPosition.set(pos0 + t, logits.slice(t * V, (t + 1) * V));
    },
    ...(scores
      ? {
          onGateScores: (layer: number, pos0: number, n: number, s: Float32Array) => {
            for (let h = 0; h < H; h++) for (let t = 0; t < n; t++) scores[layer][h][pos0 + t] = s[h * n + t];
          },
        }
      : {}),
  });
  for await (const _ of stream) {
    // collected through the callbacks
  }
  const result = await stream.result;
  const positions = [...byPosition.keys()].sort((a, b) => a - b);
  const logits = positions.map((p) => byPosition.get(p)!);
  return {
    argmax: logits.map((l) => argmax(l)),
    logits,
    last: byPosition.get(ids.length - 1) ?? new Float32Array(0),
    result,
    scores,
  };
}

/** Relative L2 the CPU backends reach on the fixtures (measured 1e-6 to 4e-6): held close, so a wrong epsilon fails. */
export const CPU_LOGITS_TOLERANCE = 2e-5;
