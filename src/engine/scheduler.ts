/**
 * @module engine/scheduler
 *
 * Decides each step (docs/design.md §2): which sequences take part and with
 * how many tokens. Running sequences go first, oldest first: a decode token,
 * or the next chunk of a prompt; then waiting ones are admitted while the
 * token budget, a free slot and the pages their first chunk needs (plus a
 * watermark) allow. Pages are checked step by step, exactly (a step's new
 * tokens land in rings; promotions follow known flags); when they run out,
 * the newest running sequence is preempted: its pages go back to the pool and
 * it recomputes later from its tokens. Check, then commit: the scheduler only
 * counts pages; the planner commits them.
 */
import { InvalidInputError } from "../errors.js";
import type { KvManager } from "../kvcache/kvManager.js";
import { takesLongSteps } from "../kvcache/kvPolicy.js";
import type { SequenceCache } from "../kvcache/sequenceCache.js";
import type { Sequence } from "./sequence.js";

export interface SchedulerLimits {
  /** Tokens (rows) of one step. */
  readonly maxBatchTokens: number;
  /** Sequences in one step (= device table slots). */
  readonly maxSeqs: number;
  /** Rows of one step whose logits are computed. */
  readonly maxLogitRows: number;
  /** Most tokens of one sequence's prompt in one step. */
  readonly prefillChunk: number;
  /** Free pages kept back when admitting a waiting sequence, so running ones can grow. */
  readonly watermarkPages: number;
}

/** One sequence's part of a step. */
export interface Scheduled {
  readonly seq: Sequence;
  readonly numNew: number;
}

export class Scheduler {
  readonly waiting: Sequence[] = [];
  readonly running: Sequence[] = [];
  numPreemptions = 0;

  constructor(
    readonly kv: KvManager,
    readonly limits: SchedulerLimits,
    /** Called when a sequence loses its cache to preemption or can never fit. */
    readonly onPreempt: (seq: Sequence) => void,
    readonly onCannotFit: (seq: Sequence, error: Error) => void,
  ) {}

  get hasWork(): boolean {
    return this.waiting.length > 0 || this.running.length > 0;
  }

  add(seq: Sequence): void {
    seq.status = "waiting";
    this.waiting.push(seq);
  }

  /** Takes a sequence out of the queues (finished or aborted). */
  remove(seq: Sequence): void {
    for (const queue of [this.waiting, this.running]) {
      const i = queue.indexOf(seq);
      if (i >= 0) queue.splice(i, 1);
    }
  }

  /** The next step, or an empty list when nothing can run. */
  schedule(): Scheduled[] {
    const step: Scheduled[] = [];
    let budget = this.limits.maxBatchTokens;
    let logitRows = this.limits.maxLogitRows;
    let freePages = this.kv.blockPool.numFreePages;

    // ---- running sequences, oldest first; the newest give their pages up when pages run out
    for (let i = 0; i < this.running.length && budget > 0; i++) {
      const seq = this.running[i];
      let numNew = this.#chunk(seq, budget, logitRows);
      if (numNew === 0) continue;
      numNew = shortenToFit(seq.cache!, seq.window, numNew, freePages);
      let needed = seq.cache!.numPagesNeeded(numNew);
      while (needed > freePages && this.running.length - 1 > i) {
        const victim = this.running[this.running.length - 1];
        freePages += victim.cache!.numPagesHeld;
        this.#preempt(victim);
      }
      if (needed > freePages) {
        // alone, every other page of the pool is free: it can never run; else it waits for others to finish
        if (step.length === 0 && this.running.length === 1) this.#cannotFit(seq, needed);
        else this.#preempt(seq);
        i--;
        continue;
      }
      freePages -= needed;
      budget -= numNew;
      logitRows -= seq.numLogitRows(numNew);
      step.push({ seq, numNew });
    }

    // ---- waiting sequences, first come first served, while the step and the pool have room
    while (this.waiting.length > 0 && budget > 0 && step.length < this.limits.maxSeqs && this.kv.numFreeSlots > 0) {
      const seq = this.waiting[0];
      let numNew = this.#chunk(seq, budget, logitRows);
      if (numNew === 0) break;
      const cache = this.kv.createCache(seq.window, takesLongSteps(seq.options.policy));
      numNew = shortenToFit(cache, seq.window, numNew, freePages - (this.running.length > 0 ? this.limits.watermarkPages : 0));
      const needed = cache.numPagesNeeded(numNew);
      if (needed > this.kv.blockPool.numUsablePages) {
        this.waiting.shift();
        this.#cannotFit(seq, needed);
        continue;
      }
      const watermark = this.running.length > 0 ? this.limits.watermarkPages : 0;
      if (needed + watermark > freePages) break;
      this.waiting.shift();
      seq.cache = cache;
      seq.slot = this.kv.acquireSlot()!;
      seq.status = "running";
      this.running.push(seq);
      freePages -= needed;
      budget -= numNew;
      logitRows -= seq.numLogitRows(numNew);
      step.push({ seq, numNew });
    }
    return step;
  }

  /** Tokens `seq` feeds next within the budgets: 1 when decoding, else the next chunk of its prompt. */
  #chunk(seq: Sequence, budget: number, logitRows: number): number {
    let n = Math.min(seq.numUncomputed, seq.maxStepTokens, this.limits.prefillChunk, budget);
    const single = seq.singleTokenFrom;
    if (single !== null) n = seq.numComputed >= single ? Math.min(n, 1) : Math.min(n, single - seq.numComputed);
    const from = seq.options.logitsFrom;
    if (from !== null) n = Math.min(n, Math.max(0, from - seq.numComputed) + logitRows);
    // a chunk that would end in a sample needs one logits row left
    if (n > 0 && seq.numLogitRows(n) > logitRows) n = n > 1 && !seq.samplesAfter(n - 1) ? n - 1 : 0;
    return n;
  }

  #preempt(seq: Sequence): void {
    this.remove(seq);
    this.numPreemptions++;
    this.onPreempt(seq);
    seq.status = "waiting";
    this.waiting.unshift(seq);
  }

  #cannotFit(seq: Sequence, needed: number): void {
    this.remove(seq);
    const pool = this.kv.blockPool;
    const held = seq.cache?.numPagesHeld ?? 0;
    // NOTE: a running request holds pages already: what it needs is more of them, beyond the pool
    const needs = held > 0 ? `after ${seq.numComputed} tokens it holds ${held} pages of 16 tokens and its next step needs ${needed} more` : `its next step needs ${needed} pages of 16 tokens`;
    this.onCannotFit(seq, new InvalidInputError(`the KV memory budget is too small for this request: ${needs}, and the pool holds ${pool.numUsablePages}; raise kvMemory (--kv-memory) or shorten the request`));
  }
}

/**
 * A chunk longer than the window (a long step) halved, down to the window at
 * the least, until its pages fit `available`: a long step gives every token
 * leaving the window within it a global slot until its flag is known, so a
 * pool sized for what the policy keeps may hold W-token steps but not a
 * 2048-token one. Shorter chunks than W need no such pages.
 */
function shortenToFit(cache: SequenceCache, window: number, numNew: number, available: number): number {
  while (numNew > window && cache.numPagesNeeded(numNew) > available) numNew = Math.max(window, Math.floor(numNew / 2));
  return numNew;
}
