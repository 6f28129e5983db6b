/**
 * @module backends/cpu/wasm/wasmPagedAttention
 *
 * The host side of the wasm paged attention: plans a batched call
 * (pagedAttentionPlan.ts), writes its descriptor into kernel memory, runs
 * the tasks on the pool in groups of a few milliseconds (the event loop may
 * run between groups), then the reduce of split rows.
 */
import { readPagedSeqs, validatePagedCall, type PagedAttentionParams, type PagedAttentionPointers } from "../pagedAttention.js";
import { ARGS, OP, OP_PAGED_ATTENTION, OP_PAGED_REDUCE } from "./controlBlock.js";
import { descriptorBytes, PARTIAL_HEAD, planPagedAttention, writeDescriptor } from "./pagedAttentionPlan.js";
import type { KernelThreadPool } from "./threadPool.js";
import type { KernelExports } from "./wasmModule.js";

/**
 * Most (query, head) rows one task holds; they share each key block while it
 * is in L1, and a 16-bit page is widened to f32 once per task, so more rows
 * widen less (at 8K with f16 pages, 24 rows spent 6% of prefill widening;
 * 144 measured 7-15% faster prefill than 24). The planner still cuts prefill
 * into at least four tasks per thread.
 */
const MAX_TASK_ROWS = 144;
/** Below this many multiply-adds a call runs on the calling thread alone: waking workers costs more. */
const MIN_PARALLEL_MACS = 1 << 16;
/** Multiply-adds per thread in one group of tasks (a few milliseconds): the event loop may run between groups. */
const GROUP_MACS_PER_THREAD = 1 << 26;

export interface PagedAttentionHost {
  readonly pool: KernelThreadPool;
  readonly exports: KernelExports;
  /** Bytes of each thread's scratch. */
  readonly scratchBytes: number;
  alloc(numBytes: number): number;
  free(ptr: number): void;
  buffer(): ArrayBufferLike;
}

export class WasmPagedAttention {
  readonly #host: PagedAttentionHost;
  /** Kernel memory for descriptors and partial rows, grown (never shrunk) as calls need. */
  #desc = { ptr: 0, bytes: 0 };
  #partials = { ptr: 0, bytes: 0 };
  readonly #maxRows = new Map<number, number>();

  constructor(host: PagedAttentionHost) {
    this.#host = host;
  }

  run(ptrs: PagedAttentionPointers, p: PagedAttentionParams, maybeYield?: () => Promise<void> | null): void | Promise<void> {
    const host = this.#host;
    let buffer = host.buffer();
    const seqs = readPagedSeqs(buffer, ptrs.seqs, p.numSeqs);
    if (seqs.length === 0) return;
    validatePagedCall(buffer, seqs, p);
    const numGlobal = seqs.map((s) => new Int32Array(buffer, s.numGlobal, p.numKvHeads).slice());
    const plan = planPagedAttention(p, seqs, (s, g) => numGlobal[s][g], host.pool.numThreads, this.#maxTaskRows(p.headDim));
    if (plan.numTasks === 0) return;
    const desc = this.#reserve(this.#desc, descriptorBytes(plan));
    const partials = plan.partialRows ? this.#reserve(this.#partials, plan.partialRows * (p.headDim + PARTIAL_HEAD) * 4) : 0;
    buffer = host.buffer(); // NOTE: re-read after reserving: the memory may have grown
    writeDescriptor(buffer, desc, ptrs, p, plan, partials);

    const parallel = plan.macs >= MIN_PARALLEL_MACS;
    const groupCost = (GROUP_MACS_PER_THREAD * host.pool.numThreads) / (16 * p.headDim * 2);
    const runTasks = (first: number, count: number) => {
      const ctl = host.pool.begin();
      ctl[OP] = OP_PAGED_ATTENTION;
      ctl[ARGS] = desc;
      ctl[ARGS + 1] = first;
      host.pool.run(count, parallel);
    };
    const runReduce = () => {
      if (plan.numReduce === 0) return;
      const ctl = host.pool.begin();
      ctl[OP] = OP_PAGED_REDUCE;
      ctl[ARGS] = desc;
      ctl[ARGS + 1] = 0;
      host.pool.run(plan.numReduce, false);
    };
    if (!maybeYield || plan.macs / (2 * 16 * p.headDim) <= groupCost) {
      runTasks(0, plan.numTasks);
      runReduce();
      return;
    }
    return (async () => {
      for (let first = 0; first < plan.numTasks; ) {
        let count = 0;
        for (let cost = 0; first + count < plan.numTasks && (count === 0 || cost + plan.taskCosts[first + count] <= groupCost); count++) cost += plan.taskCosts[first + count];
        runTasks(first, count);
        first += count;
        const turn = maybeYield();
        if (turn) await turn;
      }
      runReduce();
    })();
  }

  /** A region of at least numBytes (grown geometrically), reused across calls. */
  #reserve(region: { ptr: number; bytes: number }, numBytes: number): number {
    if (numBytes > region.bytes) {
      if (region.ptr) this.#host.free(region.ptr);
      region.bytes = Math.max(numBytes, 2 * region.bytes, 4096);
      region.ptr = this.#host.alloc(region.bytes);
    }
    return region.ptr;
  }

  #maxTaskRows(headDim: number): number {
    let rows = this.#maxRows.get(headDim);
    if (rows === undefined) {
      rows = MAX_TASK_ROWS;
      while (rows > 1 && this.#host.exports.pagedAttentionScratchBytes(rows, headDim) > this.#host.scratchBytes) rows--;
      if (this.#host.exports.pagedAttentionScratchBytes(rows, headDim) > this.#host.scratchBytes) throw new RangeError(`paged attention: head dim ${headDim} is too large for the thread scratch`);
      this.#maxRows.set(headDim, rows);
    }
    return rows;
  }
}
