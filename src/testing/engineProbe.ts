/**
 * @module testing/engineProbe
 *
 * Test support: sequences run on an engine (several at once when given
 * together) with what each one's cache holds captured at its end, before the
 * engine releases it: the global positions of every head, its pages, and the
 * layer-0 keys it stores (read from the CPU backend's pool), besides the
 * logits of every sampled step and the gate scores.
 */
import type { CpuBackend } from "../backends/cpu/cpuBackend.js";
import { cpuPool } from "../backends/cpu/cpuKvOps.js";
import { createKvReader } from "../backends/cpu/pagedAttention.js";
import { PAGE_SIZE } from "../backends/stepLayout.js";
import type { Engine } from "../engine/engine.js";
import type { KvReport } from "../engine/engineStats.js";
import type { Model } from "../engine/model.js";
import type { FinishReason, Sequence } from "../engine/sequence.js";
import type { KvPolicy } from "../kvcache/kvPolicy.js";

export interface ProbeSpec {
  readonly ids: readonly number[];
  readonly policy: KvPolicy;
  readonly maxNewTokens: number;
  /** Feed the prompt from here on one token per step. */
  readonly singleTokenFrom?: number;
}

export interface ProbeRun {
  /** Logits of the prompt's last position, then of each generated position but the last. */
  readonly logits: Float32Array[];
  readonly tokens: number[];
  readonly finishReason: FinishReason;
  readonly report: KvReport;
  /** [layer][kvHead] positions of the global tokens at the end, sorted. */
  readonly globalPositions: number[][][];
  /** [layer][kvHead][position] gate scores (NaN where none). */
  readonly scores: number[][][];
  /** [kvHead] position -> the layer-0 key stored for it (ring and global), prompt positions only. */
  readonly layer0Keys: Map<number, Float32Array>[];
  readonly numPagesHeld: number;
  readonly numPreemptions: number;
}

/** Runs the specs together on `engine` (they share its steps); resolves when all have ended. */
export function probeSequences(model: Model, engine: Engine, specs: readonly ProbeSpec[]): Promise<ProbeRun[]> {
  const { numLayers: L, numKvHeads: H, vocabSize: V, headDim: d } = model.config;
  return Promise.all(
    specs.map(
      (spec) =>
        new Promise<ProbeRun>((resolve, reject) => {
          const total = spec.ids.length + spec.maxNewTokens;
          const logits: Float32Array[] = [];
          const scores = Array.from({ length: L }, () => Array.from({ length: H }, () => new Array<number>(total).fill(NaN)));
          let seq: Sequence;
          seq = engine.add(
            spec.ids,
            {
              maxNewTokens: spec.maxNewTokens,
              sampling: { temperature: 0, topK: 0, topP: 1, seed: 0 },
              policy: spec.policy,
              logitsFrom: spec.ids.length - 1,
              singleTokenFrom: spec.singleTokenFrom ?? null,
              traceGateScores: spec.policy.admission.kind === "gate",
              eosTokenIds: new Set(),
            },
            {
              onToken: () => "continue",
              onLogits: (_pos0, rows, n) => {
                for (let t = 0; t < n; t++) logits.push(rows.slice(t * V, (t + 1) * V));
              },
              onGateScores: (layer, pos0, n, s) => {
                for (let h = 0; h < H; h++) for (let t = 0; t < n; t++) scores[layer][h][pos0 + t] = s[h * n + t];
              },
              onFinish: (finishReason, report, error) => {
                if (error) return reject(error);
                const cache = seq.cache!;
                cache.checkInvariants();
                const globalPositions = Array.from({ length: L }, (_, l) =>
                  Array.from({ length: H }, (_, h) => [...cache.head(l, h).globalPositions].sort((a, b) => a - b)),
                );
                const layer0Keys = Array.from({ length: H }, (_, h) => readLayer0Keys(model, engine, seq, h, spec.ids.length, d));
                resolve({
                  logits, tokens: seq.generatedIds, finishReason, report: report!, globalPositions, scores, layer0Keys,
                  numPagesHeld: cache.numPagesHeld, numPreemptions: seq.numPreemptions,
                });
              },
            },
          );
        }),
    ),
  );
}

/** What head (0, h) of the sequence stores for each prompt position, read from the CPU pool's K pages. */
function readLayer0Keys(model: Model, engine: Engine, seq: Sequence, h: number, numPrompt: number, d: number): Map<number, Float32Array> {
  const backend = model.backend as CpuBackend;
  const pool = cpuPool(engine.kv.storage);
  const keys = createKvReader(backend.kernels.buffer(), pool.kPtr, pool.numPages * PAGE_SIZE * d, pool.kvDType);
  const view = seq.cache!.head(0, h);
  const out = new Map<number, Float32Array>();
  const take = (position: number, slot: number) => {
    if (position < numPrompt) out.set(position, Float32Array.from({ length: d }, (_, i) => keys(slot * d + i)));
  };
  for (let o = 0; o < view.numRingTokens; o++) take(view.ringPositions[o], view.ringPageIds[o >> 4] * PAGE_SIZE + (o & 15));
  for (let g = 0; g < view.numGlobalTokens; g++) take(view.globalPositions[g], view.globalPageIds[g >> 4] * PAGE_SIZE + (g & 15));
  return out;
}
