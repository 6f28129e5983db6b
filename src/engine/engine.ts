/**
 * @module engine/engine
 *
 * The engine loop (docs/design.md §2): schedule a step, plan it, run it on the
 * device with one read, apply what came back, repeat while there is work.
 * Requests join and leave between steps; their forward passes share every
 * step (continuous batching). The loop yields to the event loop between
 * steps, and the CPU backend within them, so timers, I/O and abort signals
 * keep working during a long generation.
 */
import type { Backend } from "../backends/backend.js";
import { yieldToEventLoop } from "../backends/cpu/commandQueue.js";
import { InvalidInputError, WgkvError } from "../errors.js";
import type { EngineStats, KvReport } from "./engineStats.js";
import { KvManager } from "../kvcache/kvManager.js";
import type { StepEntry, StepPlan } from "../kvcache/stepPlan.js";
import { planStep } from "../kvcache/stepPlanner.js";
import type { ModelParts } from "../model/forward.js";
import { ModelRunner, type StepResult } from "./modelRunner.js";
import { chainedEntries, chainsNext, type InFlight } from "./stepChain.js";
import { commitStepResults } from "./stepResults.js";
import { Scheduler, type Scheduled } from "./scheduler.js";
import { Sequence, type FinishReason, type SequenceListener, type SequenceOptions } from "./sequence.js";
import type { EngineConfig } from "./engineConfig.js";

export class Engine {
  readonly kv: KvManager;
  readonly #runner: ModelRunner;
  readonly #scheduler: Scheduler;
  #loop: Promise<void> | null = null;
  #numSteps = 0;
  #numChainedSteps = 0;
  /** The next decode step, recorded while the one being awaited runs (stepChain.ts). */
  #chained: InFlight | null = null;
  /** Whether decode steps chain (config.chainSteps; benchmarks flip it between runs). */
  chainSteps: boolean;
  /** Sequences ended so far (the loop tells a stuck step from one the scheduler cleared). */
  #numFinished = 0;
  #numTokensGenerated = 0;
  #disposed = false;

  constructor(
    readonly backend: Backend,
    readonly model: ModelParts,
    readonly config: EngineConfig,
  ) {
    this.chainSteps = config.chainSteps;
    this.kv = new KvManager(backend, model.dims, {
      numPages: config.numPages, kvDType: config.kvDType, numSlots: config.maxSeqs, maxWindow: config.maxWindow, maxContext: config.maxContext,
    });
    this.#runner = new ModelRunner(backend, model, this.kv, {
      maxRows: config.maxBatchTokens, maxSeqs: config.maxSeqs, maxLogitRows: config.maxLogitRows, observationWindow: config.observationWindow,
    });
    this.#scheduler = new Scheduler(
      this.kv,
      { maxBatchTokens: config.maxBatchTokens, maxSeqs: config.maxSeqs, maxLogitRows: config.maxLogitRows, prefillChunk: config.prefillChunk, watermarkPages: config.watermarkPages },
      (seq) => this.#dropCache(seq, true),
      (seq, error) => this.#finish(seq, "aborted", error),
    );
  }

  /** Starts a sequence; its results go to `listener`. The prompt must be valid for the model (Model.validatePrompt). */
  add(promptIds: readonly number[], options: SequenceOptions, listener: SequenceListener): Sequence {
    this.#checkLive();
    if (options.policy.window > this.config.maxWindow) {
      throw new InvalidInputError(`window ${options.policy.window} exceeds this engine's largest window ${this.config.maxWindow} (load the model with a larger maxWindow)`);
    }
    if (promptIds.length + options.maxNewTokens > this.config.maxContext) {
      throw new InvalidInputError(`prompt of ${promptIds.length} tokens + ${options.maxNewTokens} new tokens exceeds this engine's context of ${this.config.maxContext}`);
    }
    const seq = new Sequence(promptIds, options, listener);
    this.#scheduler.add(seq);
    this.#kick();
    return seq;
  }

  /**
   * Ends a sequence and returns its pages and slot to the pool at once, even
   * while a step that includes it runs: the device may still write those pages,
   * but nothing can take them before that step's read returns, since the next
   * step is planned only then; its results for the sequence are dropped.
   */
  abort(seq: Sequence): void {
    if (seq.status === "finished") return;
    seq.abortRequested = true;
    this.#finish(seq, "aborted");
  }

  /** The KV report of a live or just-finished sequence. */
  report(seq: Sequence): KvReport | null {
    return seq.cache ? { ...seq.cache.stats(), admittedByHead: seq.cache.numAdmittedByHead() } : null;
  }

  stats(): EngineStats {
    const pool = this.kv.blockPool;
    return {
      numWaiting: this.#scheduler.waiting.length,
      numRunning: this.#scheduler.running.length,
      numUsablePages: pool.numUsablePages,
      numFreePages: pool.numFreePages,
      pageBytes: this.config.pageBytes,
      numPreemptions: this.#scheduler.numPreemptions,
      numSteps: this.#numSteps,
      numChainedSteps: this.#numChainedSteps,
      numTokensGenerated: this.#numTokensGenerated,
    };
  }

  /** Resolves when no sequence is left. */
  async idle(): Promise<void> {
    while (this.#loop) await this.#loop;
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const seq of [...this.#scheduler.waiting, ...this.#scheduler.running]) {
      this.#finish(seq, "aborted", new WgkvError("the model was disposed while this generation ran"));
    }
    this.#runner.dispose();
    this.kv.dispose();
  }

  #kick(): void {
    if (this.#loop) return;
    this.#loop = this.#run().catch((err: unknown) => {
      // NOTE: a bug outside a step must not become an unhandled rejection (it would end a server):
      // the waiting and running requests end with it, and the engine takes new ones
      const error = err instanceof Error ? err : new Error(String(err));
      for (const seq of [...this.#scheduler.waiting, ...this.#scheduler.running]) this.#finish(seq, "aborted", error);
    }).finally(() => {
      this.#loop = null;
      // a sequence added while the loop wound down
      if (this.#scheduler.hasWork && !this.#disposed) this.#kick();
    });
  }

  async #run(): Promise<void> {
    while ((this.#scheduler.hasWork || this.#chained) && !this.#disposed) {
      let step = this.#chained;
      this.#chained = null;
      if (!step) {
        const finishedBefore = this.#numFinished;
        const scheduled = this.#scheduler.schedule();
        if (scheduled.length === 0) {
          // NOTE: the scheduler ends requests that can never fit itself (then the next try may run the rest);
          // else with nothing running every page and slot is free, so the first waiting
          // sequence fits unless it never will; a running one always gets a token.
          const stuck = this.#scheduler.running[0] ?? this.#scheduler.waiting[0];
          if (stuck && this.#numFinished === finishedBefore) {
            this.#finish(stuck, "aborted", new InvalidInputError("the KV memory budget cannot hold this request's next step; raise kvMemory (--kv-memory)"));
          }
          continue;
        }
        step = this.#launch(scheduled.map(({ seq }) => seq), () => this.#entries(scheduled), 0);
        if (!step) continue;
      }
      if (this.chainSteps && chainsNext(this.backend, step, this.#scheduler.running, this.#scheduler.waiting.length, this.kv.blockPool)) {
        const prev = step;
        this.#chained = this.#launch(prev.seqs, () => chainedEntries(prev), prev.seqs.length);
        if (this.#chained) this.#numChainedSteps++;
      }
      await this.#land(step);
      await yieldToEventLoop();
    }
    // NOTE: disposed with a step in flight: its read still settles (and its errors are nobody's)
    await this.#chained?.result.catch(() => {});
    this.#chained = null;
  }

  #entries(scheduled: readonly Scheduled[]): StepEntry[] {
    return scheduled.map(({ seq, numNew }) => {
      const s = seq.options.sampling;
      const entry: StepEntry = {
        cache: seq.cache!,
        slot: seq.slot,
        policy: seq.options.policy,
        ids: seq.tokenIds.slice(seq.numComputed, seq.numComputed + numNew),
        sample: seq.samplesAfter(numNew) ? { temperature: s.temperature, topK: s.topK, topP: s.topP, minP: s.minP, u: s.temperature > 0 ? seq.random() : 0 } : null,
        logitsFrom: seq.options.logitsFrom,
        drops: seq.pendingDrops,
      };
      seq.pendingDrops = [];
      return entry;
    });
  }

  /**
   * Plans a step of `seqs` (`entries` in their order) and records it with its read; null if planning failed
   * (the sequences end with the error). idsFromSampled: rows whose ids the last step's samples give (stepChain.ts).
   */
  #launch(seqs: readonly Sequence[], entries: () => StepEntry[], idsFromSampled: number): InFlight | null {
    try {
      const all = entries();
      const bySeq = new Map(all.map((e, i) => [e, seqs[i]]));
      const plan = planStep(all, {
        numLayers: this.model.dims.numLayers, numKvHeads: this.model.dims.numKvHeads, tableRowStride: this.kv.tables.rowStride, observationWindow: this.config.observationWindow,
      });
      const inPlanOrder = plan.entries.map((e) => bySeq.get(e)!);
      if (idsFromSampled > 0 && plan.outputs.some((o, i) => o.rowStart !== i || o.sampleIndex !== i)) throw new Error("a chained step's rows must follow the last step's samples");
      const result = this.#runner.run(plan, inPlanOrder.some((seq) => seq.options.traceGateScores), idsFromSampled);
      // NOTE: a step left in flight at dispose is awaited without a handler: this one keeps its rejection handled
      result.catch(() => {});
      return { plan, seqs: inPlanOrder, result };
    } catch (err) {
      // NOTE: a bug in planning a step: the sequences in it end with the error, the engine goes on
      const error = err instanceof Error ? err : new Error(String(err));
      for (const seq of seqs) this.#finish(seq, "aborted", error);
      return null;
    }
  }

  /** Awaits a step's read and applies it to every sequence in it. */
  async #land(step: InFlight): Promise<void> {
    let result: StepResult;
    try {
      result = await step.result;
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      for (const seq of step.seqs) this.#finish(seq, "aborted", error);
      return;
    }
    this.#numSteps++;
    step.seqs.forEach((seq, i) => {
      try {
        this.#apply(seq, step.plan, i, result);
      } catch (err) {
        this.#finish(seq, "aborted", err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  /** What a step's results mean for one sequence: its flags, reports, sampled token and whether it is done. */
  #apply(seq: Sequence, plan: StepPlan, i: number, result: StepResult): void {
    if (seq.status === "finished") return;
    const out = plan.outputs[i];
    const fail = (err: unknown) => this.#finish(seq, "aborted", err instanceof Error ? err : new Error(String(err)));
    try {
      commitStepResults(seq, out, plan, result, this.model.dims, this.model.config.vocabSize);
    } catch (err) {
      return fail(err);
    }
    if (out.sampleIndex >= 0) {
      const id = result.sampled[out.sampleIndex];
      if (id < 0) {
        return fail(new WgkvError(`the model produced non-finite logits (NaN) at position ${seq.tokenIds.length - 1}: its weights or config hold invalid values`));
      }
      seq.tokenIds.push(id);
      this.#numTokensGenerated++;
      if (seq.firstTokenAt === 0) seq.firstTokenAt = performance.now();
      let action: "continue" | "stop";
      try {
        action = seq.listener.onToken(id);
      } catch (err) {
        return fail(err);
      }
      if (seq.options.eosTokenIds.has(id)) return this.#finish(seq, "eos");
      if (action === "stop") return this.#finish(seq, "stop");
      if (seq.numGenerated >= seq.options.maxNewTokens) return this.#finish(seq, "length");
    } else if (seq.numUncomputed === 0 && seq.numGenerated >= seq.options.maxNewTokens) {
      return this.#finish(seq, "length");
    }
    if (seq.abortRequested) this.#finish(seq, "aborted");
  }

  #finish(seq: Sequence, reason: FinishReason, error?: Error): void {
    if (seq.status === "finished") return;
    this.#scheduler.remove(seq);
    this.#numFinished++;
    seq.status = "finished";
    seq.finishReason = reason;
    seq.finishedAt = performance.now();
    // NOTE: a step recorded ahead for it is dropped: its token never counts (the cache is as after the last step applied)
    if (seq.cache && this.#chained?.seqs.includes(seq) && seq.cache.numPendingSteps > 0) seq.cache.undoLastAppend();
    try {
      seq.listener.onFinish(reason, this.report(seq), error);
    } finally {
      this.#dropCache(seq, false);
    }
  }

  /** Returns a sequence's pages and slot to the pool (preemption or end). */
  #dropCache(seq: Sequence, preempted: boolean): void {
    if (seq.cache) seq.cache.release();
    if (seq.slot >= 0) this.kv.releaseSlot(seq.slot);
    seq.cache = null;
    seq.slot = -1;
    seq.pendingDrops = [];
    if (preempted) {
      seq.numComputed = 0;
      seq.numPreemptions++;
    }
  }

  #checkLive(): void {
    if (this.#disposed) throw new WgkvError("the model was used after dispose()");
  }
}
