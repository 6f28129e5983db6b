/**
 * @module backends/cpu/kernelHeap
 *
 * The allocator of the kernels' linear memory: 64-byte aligned blocks, a
 * free list kept sorted by address (first fit, neighbours coalesced on
 * free), and a top that grows the memory when no free block fits.
 *
 * Invariants (checked by {@link KernelHeap.checkInvariants}):
 * - every byte in [base, top) is in exactly one live or free block;
 * - free blocks are sorted, never adjacent (adjacent ones are merged), and a
 *   free block never ends at top (it is given back to the top instead).
 * Memory above the highest top ever reached has never been handed out, so it
 * is still zero as the runtime gave it: `alloc` reports such a block as fresh
 * (a KV pool of gigabytes is then never written before use, and the OS backs
 * only the pages the cache touches).
 */

export const HEAP_ALIGN = 64;

export class KernelHeap {
  readonly #live = new Map<number, number>(); // ptr -> bytes
  #freeStarts: number[] = []; // sorted
  #freeSizes: number[] = [];
  #top: number;
  /** The highest top ever reached: memory above it was never handed out. */
  #highWater = 0;

  /** @param base first usable byte (pointer 0 stays reserved as "none"); grow(end) must make [0, end) addressable. */
  constructor(base: number, readonly grow: (end: number) => void) {
    this.#top = align(Math.max(base, HEAP_ALIGN));
  }

  get top(): number {
    return this.#top;
  }

  get numLiveBytes(): number {
    let n = 0;
    for (const bytes of this.#live.values()) n += bytes;
    return n;
  }

  /** Reserves numBytes (rounded up to 64). `fresh` is true when the block was never used before (still zero). */
  alloc(numBytes: number): { ptr: number; fresh: boolean } {
    if (!Number.isSafeInteger(numBytes) || numBytes < 0) throw new RangeError(`alloc: bad size ${numBytes}`);
    const size = Math.max(HEAP_ALIGN, align(numBytes));
    for (let i = 0; i < this.#freeStarts.length; i++) {
      if (this.#freeSizes[i] < size) continue;
      const ptr = this.#freeStarts[i];
      if (this.#freeSizes[i] === size) {
        this.#freeStarts.splice(i, 1);
        this.#freeSizes.splice(i, 1);
      } else {
        this.#freeStarts[i] += size;
        this.#freeSizes[i] -= size;
      }
      this.#live.set(ptr, size);
      return { ptr, fresh: false };
    }
    const ptr = this.#top;
    this.grow(ptr + size);
    this.#top = ptr + size;
    this.#live.set(ptr, size);
    const fresh = ptr >= this.#highWater;
    this.#highWater = Math.max(this.#highWater, this.#top);
    return { ptr, fresh };
  }

  /** Returns a block from alloc(). */
  free(ptr: number): void {
    const size = this.#live.get(ptr);
    if (size === undefined) throw new Error(`free: ${ptr} is not a live block (double free?)`);
    this.#live.delete(ptr);
    let i = 0;
    while (i < this.#freeStarts.length && this.#freeStarts[i] < ptr) i++;
    let start = ptr;
    let end = ptr + size;
    // merge with the previous and next free blocks when they touch
    if (i > 0 && this.#freeStarts[i - 1] + this.#freeSizes[i - 1] === start) {
      i--;
      start = this.#freeStarts[i];
      this.#freeStarts.splice(i, 1);
      this.#freeSizes.splice(i, 1);
    }
    if (i < this.#freeStarts.length && this.#freeStarts[i] === end) {
      end += this.#freeSizes[i];
      this.#freeStarts.splice(i, 1);
      this.#freeSizes.splice(i, 1);
    }
    if (end === this.#top) {
      this.#top = start;
      return;
    }
    this.#freeStarts.splice(i, 0, start);
    this.#freeSizes.splice(i, 0, end - start);
  }

  /** Throws unless the blocks tile [base, top) as the module comment states. */
  checkInvariants(): void {
    for (let i = 0; i < this.#freeStarts.length; i++) {
      const end = this.#freeStarts[i] + this.#freeSizes[i];
      if (i + 1 < this.#freeStarts.length && end >= this.#freeStarts[i + 1]) throw new Error("heap: free blocks overlap or touch");
      if (end >= this.#top) throw new Error("heap: a free block reaches the top");
    }
    for (const [ptr, size] of this.#live) {
      if (ptr + size > this.#top) throw new Error(`heap: live block ${ptr} beyond the top`);
      for (let i = 0; i < this.#freeStarts.length; i++) {
        if (ptr < this.#freeStarts[i] + this.#freeSizes[i] && this.#freeStarts[i] < ptr + size) throw new Error(`heap: live block ${ptr} overlaps a free block`);
      }
    }
  }
}

function align(n: number): number {
  return Math.ceil(n / HEAP_ALIGN) * HEAP_ALIGN;
}
