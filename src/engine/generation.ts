/**
 * @module engine/generation
 *
 * `generate()`'s handle on the engine: a stream of token and text deltas
 * that ends with the generation's result. Iterate it with `for await` and
 * read `result` afterwards (or `await stream.result` alone); `next()` also
 * returns the result as the iterator's final value. Breaking out of the loop,
 * `abort()` or the caller's AbortSignal ends the sequence and frees its pages.
 */
import { WgkvError } from "../errors.js";
import type { KvReport } from "./engineStats.js";
import type { Model } from "./model.js";
import type { KvPolicy } from "../kvcache/kvPolicy.js";
import type { FinishReason, Sequence, SequenceListener, SequenceOptions } from "./sequence.js";
import { TextStream } from "./textStream.js";
import { checkGenerateOptions, type GenerateOptions } from "./generateOptions.js";

export type { GenerateOptions, SamplingOptions } from "./generateOptions.js";

/** One streamed step: the new token and the text it made safe to show. */
export interface GenerationChunk {
  /** The sampled id (-1 for the final text flush). */
  readonly tokenId: number;
  /** Text delta; may be empty while a multi-byte character or possible stop string is pending. */
  readonly text: string;
}

export interface GenerationResult {
  /** Generated ids, including the end-of-sequence id when generation stopped on one. */
  readonly tokenIds: number[];
  readonly text: string;
  readonly finishReason: FinishReason;
  readonly numPromptTokens: number;
  /** Milliseconds from the request to its first token, and from there to the end. */
  readonly prefillMs: number;
  readonly decodeMs: number;
  /** Times the sequence lost its cache to make room and recomputed it. */
  readonly numPreemptions: number;
  /** The KV cache at the end: admitted counts and bytes resident, peak and under full attention. */
  readonly kv: KvReport;
}

/** A running generation: async-iterable chunks, then its result. */
export class GenerationStream implements AsyncIterableIterator<GenerationChunk> {
  /** Settles when the generation ends (rejects when it failed). */
  readonly result: Promise<GenerationResult>;
  readonly #chunks: GenerationChunk[] = [];
  #wake: (() => void) | null = null;
  #settled: { result: GenerationResult } | { error: Error } | null = null;
  #resolve!: (r: GenerationResult) => void;
  #reject!: (e: Error) => void;
  #abort: () => void = () => {};
  #aborted = false;

  constructor() {
    this.result = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // NOTE: a caller that only iterates never awaits `result`; its rejection must not go unhandled
    this.result.catch(() => {});
  }

  /** A stream that ends at once with `error` (bad options found before the engine was reached). */
  static failed(error: unknown): GenerationStream {
    const stream = new GenerationStream();
    stream.fail(error instanceof Error ? error : new WgkvError(String(error)));
    return stream;
  }

  /** Ends the generation now (finish reason "aborted"); its pages return to the pool. */
  abort(): void {
    this.#aborted = true;
    this.#abort();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<GenerationChunk, GenerationResult>> {
    for (;;) {
      if (this.#chunks.length > 0) return { done: false, value: this.#chunks.shift()! };
      if (this.#settled) {
        if ("error" in this.#settled) throw this.#settled.error;
        return { done: true, value: this.#settled.result };
      }
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  /** Called when a `for await` loop is left early: the generation is aborted. */
  async return(): Promise<IteratorResult<GenerationChunk, GenerationResult>> {
    if (!this.#settled) this.abort();
    const result = await this.result.catch(() => null);
    this.#chunks.length = 0;
    return { done: true, value: result as GenerationResult };
  }

  // ---- the engine's side

  /** Connects the stream to the engine's sequence; `abort` ends it. */
  attach(abort: () => void): void {
    this.#abort = abort;
    if (this.#aborted) abort();
  }

  get wasAborted(): boolean {
    return this.#aborted;
  }

  push(chunk: GenerationChunk): void {
    this.#chunks.push(chunk);
    this.#notify();
  }

  settle(result: GenerationResult): void {
    if (this.#settled) return;
    this.#settled = { result };
    this.#resolve(result);
    this.#notify();
  }

  fail(error: Error): void {
    if (this.#settled) return;
    this.#settled = { error };
    this.#reject(error);
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }
}

/**
 * Starts generating from prompt ids on the model's engine. `resolvePolicy` runs
 * first (it may read a gate file); errors end the stream.
 */
export function startGeneration(model: Model, promptIds: readonly number[], options: GenerateOptions, resolvePolicy: () => Promise<KvPolicy> | KvPolicy): GenerationStream {
  const stream = new GenerationStream();
  void (async () => {
    model.checkLive();
    const settings = checkGenerateOptions(options);
    model.validatePrompt(promptIds, settings.maxNewTokens);
    const policy = await resolvePolicy();
    model.checkLive();
    const text = new TextStream(model.tokenizer, options.ignoreEos ? new Set() : model.eosTokenIds, settings.stop);
    const emptyReport: KvReport = { numTokens: 0, numPagesHeld: 0, residentBytes: 0, peakBytes: 0, fullAttentionBytes: 0, numAdmitted: 0, numGlobalTokens: 0, admittedByHead: [] };
    let seq: Sequence | null = null;
    const t0 = performance.now();
    const finish = (reason: FinishReason, report: KvReport | null) => {
      const rest = text.flush();
      if (rest.length > 0) stream.push({ tokenId: -1, text: rest });
      const now = performance.now();
      const first = seq && seq.firstTokenAt > 0 ? seq.firstTokenAt : now;
      stream.settle({
        tokenIds: seq ? seq.generatedIds : [],
        text: text.text,
        finishReason: reason,
        numPromptTokens: promptIds.length,
        prefillMs: first - t0,
        decodeMs: now - first,
        numPreemptions: seq?.numPreemptions ?? 0,
        kv: report ?? emptyReport,
      });
    };
    if (options.signal?.aborted || stream.wasAborted) return finish("aborted", null);
    const listener: SequenceListener = {
      onToken(id) {
        const { delta, stopped } = text.push(id);
        stream.push({ tokenId: id, text: delta });
        return stopped ? "stop" : "continue";
      },
      onLogits: options.onLogits,
      onGateScores: options.onGateScores,
      onPromptProgress: options.onPromptProgress,
      onFinish(reason, report, error) {
        if (error) stream.fail(error);
        else finish(reason, report);
      },
    };
    const eosTokenIds = options.ignoreEos ? new Set<number>() : model.eosTokenIds;
    seq = model.engine.add(promptIds, { ...settings, policy, eosTokenIds }, listener);
    const onAbort = () => model.engine.abort(seq!);
    options.signal?.addEventListener("abort", onAbort, { once: true });
    stream.result.finally(() => options.signal?.removeEventListener("abort", onAbort)).catch(() => {});
    stream.attach(onAbort);
  })().catch((err: unknown) => stream.fail(err instanceof Error ? err : new WgkvError(String(err))));
  return stream;
}

/** Runs a generation to its end and returns its result. */
export async function generateAll(stream: GenerationStream): Promise<GenerationResult> {
  for await (const _ of stream) {
    // the chunks are in the result's text
  }
  return stream.result;
}
