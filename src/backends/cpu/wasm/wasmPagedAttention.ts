/**
 * @module backends/cpu/wasm/wasmPagedAttention
 *
 * The host side of the wasm paged attention: plans a call
 * (pagedAttentionPlan.ts), writes its descriptor into kernel memory, runs the
 * tasks on the pool, then the reduce of split rows (on the calling thread:
 * there are only a few).
 */
import type { PagedAttentionParams, PagedAttentionPointers } from "../pagedAttention.js";
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

export interface PagedAttentionHost {
  readonly pool: KernelThreadPool;
  readonly exports: KernelExports;
  /** Bytes of each thread's scratch. */
  readonly scratchBytes: number;
  alloc(numBytes: number): number;
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

  run(ptrs: PagedAttentionPointers, p: PagedAttentionParams): void {
    const { numQueries: T, numHeads, numKvHeads, headDim, window: W } = p;
    if (T === 0) return;
    if (T > W) throw new Error(`paged attention: chunk of ${T} queries exceeds the window ${W}`);
    if (numHeads % numKvHeads !== 0) throw new RangeError(`paged attention: numHeads ${numHeads} is not a multiple of numKvHeads ${numKvHeads}`);
    if (W % 16 !== 0) throw new RangeError(`paged attention: window ${W} is not a multiple of 16`);
    const host = this.#host;
    let buffer = host.buffer();
    const numRing = new Int32Array(buffer, ptrs.numRing, numKvHeads);
    const numGlobal = new Int32Array(buffer, ptrs.numGlobal, numKvHeads);
    for (let g = 0; g < numKvHeads; g++) {
      if (!(numRing[g] >= 0 && numRing[g] <= W && numGlobal[g] >= 0)) throw new RangeError(`paged attention: KV head ${g} has ${numRing[g]} ring and ${numGlobal[g]} global tokens`);
    }
    const plan = planPagedAttention(p, numRing, numGlobal, host.pool.numThreads, this.#maxTaskRows(headDim));
    const desc = this.#reserve(this.#desc, descriptorBytes(plan));
    const partials = plan.partialRows ? this.#reserve(this.#partials, plan.partialRows * (headDim + PARTIAL_HEAD) * 4) : 0;
    buffer = host.buffer(); // NOTE: re-read after reserving: the memory may have grown
    writeDescriptor(buffer, desc, ptrs, p, plan, partials);

    let ctl = host.pool.begin();
    ctl[OP] = OP_PAGED_ATTENTION;
    ctl[ARGS] = desc;
    host.pool.run(plan.numTasks, plan.macs >= MIN_PARALLEL_MACS);
    if (plan.numReduce === 0) return;
    ctl = host.pool.begin();
    ctl[OP] = OP_PAGED_REDUCE;
    ctl[ARGS] = desc;
    host.pool.run(plan.numReduce, false);
  }

  /** A region of at least numBytes (grown geometrically), reused across calls. */
  #reserve(region: { ptr: number; bytes: number }, numBytes: number): number {
    if (numBytes > region.bytes) {
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
