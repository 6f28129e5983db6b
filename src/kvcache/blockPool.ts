/**
 * @module cache/blockPool
 *
 * A fixed pool of KV pages. A page holds {@link PAGE_SIZE} tokens of K (and,
 * in a twin buffer, V) for one KV head of one layer; the backend buffers are
 * shaped [numPages, PAGE_SIZE, headDim] and a token's place in them is its
 * slot, `pageId * PAGE_SIZE + offset` (vLLM's slot mapping). The pool only
 * hands out and takes back page ids: it knows nothing of sequences, heads or
 * the admission gate.
 *
 * Invariants (checked by {@link BlockPool.checkInvariants}):
 * - Page {@link NULL_PAGE} (0) is reserved and never allocated or freed. Flat
 *   block tables pad with it, so a kernel may read a padded entry without a
 *   bounds check; it never holds data anyone reads.
 * - Every other page is either free (on the free list) or owned (allocated
 *   and not yet freed), never both: numFreePages + numOwnedPages = numPages - 1.
 * - The free list is a doubly-linked list threaded through two Int32Arrays
 *   indexed by page id (intrusive), so allocate/free move links and never
 *   allocate memory; `prev`/`next` of each free page agree with its neighbours.
 * - LIFO order: {@link BlockPool.allocate} takes from the head and
 *   {@link BlockPool.free} puts pages back at the head, so the pages freed
 *   last are reused first (those of one call in the order given). The pool is
 *   sized for the worst case (every token admitted) but the OS backs only
 *   pages that were written: reusing warm pages keeps a process's resident
 *   memory at what its sequences hold. (First-in-first-out reuse walked each
 *   new sequence onto untouched pages; after a few gated sequences the whole
 *   worst-case pool was resident.) The order also makes page ids predictable
 *   (tests pin them).
 */

import { assert, InvalidCacheConfigError, OutOfPagesError } from "./errors.js";

/** Tokens per page. */
export { PAGE_SIZE } from "../backends/stepLayout.js";
import { PAGE_SIZE } from "../backends/stepLayout.js";

/** The reserved page id used to pad block tables; never allocated. */
export const NULL_PAGE = 0;

const NONE = -1;
const STATE_OWNED = 0;
const STATE_FREE = 1;
const STATE_NULL = 2;

/** Fixed pool of page ids with an intrusive LIFO free list. */
export class BlockPool {
  /** Pages in the pool, the null page included. */
  readonly numPages: number;
  readonly #prev: Int32Array; // [numPages] previous free page, NONE at the head or when owned
  readonly #next: Int32Array; // [numPages] next free page, NONE at the tail or when owned
  readonly #state: Uint8Array; // [numPages] STATE_* of each page
  #head = NONE;
  #tail = NONE;
  #numFree = 0;

  /** @param numPages pages in the pool including the reserved null page (at least 2). */
  constructor(numPages: number) {
    if (!Number.isInteger(numPages) || numPages < 2 || numPages > 0x7fffffff / PAGE_SIZE) {
      throw new InvalidCacheConfigError(
        "numPages",
        `KV page pool size must be an integer from 2 to ${Math.floor(0x7fffffff / PAGE_SIZE)} (page 0 is reserved), got ${numPages}`,
      );
    }
    this.numPages = numPages;
    this.#prev = new Int32Array(numPages).fill(NONE);
    this.#next = new Int32Array(numPages).fill(NONE);
    this.#state = new Uint8Array(numPages).fill(STATE_OWNED);
    this.#state[NULL_PAGE] = STATE_NULL;
    for (let page = 1; page < numPages; page++) this.#pushTail(page);
  }

  /** Pages that can ever be allocated: all but the null page. */
  get numUsablePages(): number {
    return this.numPages - 1;
  }

  get numFreePages(): number {
    return this.#numFree;
  }

  get numOwnedPages(): number {
    return this.numUsablePages - this.#numFree;
  }

  /** True if {@link allocate} of `numPages` pages would succeed now. */
  canAllocate(numPages: number): boolean {
    return numPages <= this.#numFree;
  }

  /**
   * Takes `numPages` pages from the head of the free list, in list order.
   * @throws OutOfPagesError if fewer are free; nothing is allocated then.
   */
  allocate(numPages: number): number[] {
    assert(Number.isInteger(numPages) && numPages >= 0, () => `allocate: bad page count ${numPages}`);
    if (!this.canAllocate(numPages)) throw new OutOfPagesError(numPages, this.#numFree, this.numUsablePages);
    const pages: number[] = [];
    for (let i = 0; i < numPages; i++) pages.push(this.#popHead());
    return pages;
  }

  /**
   * Takes one page from the head of the free list without allocating an array.
   * @throws OutOfPagesError if none is free.
   */
  allocateOne(): number {
    if (this.#numFree === 0) throw new OutOfPagesError(1, 0, this.numUsablePages);
    return this.#popHead();
  }

  /** Returns owned pages to the head of the free list: the next allocations take them back in the order given. */
  free(pages: Iterable<number>): void {
    const list = [...pages];
    const seen = new Set<number>();
    for (const page of list) {
      assert(
        Number.isInteger(page) && page >= 0 && page < this.numPages && this.#state[page] === STATE_OWNED && !seen.has(page),
        () => `free: page ${page} is not owned (${page === NULL_PAGE ? "null page" : "double free or bad id"})`,
      );
      seen.add(page);
    }
    for (let i = list.length - 1; i >= 0; i--) this.#pushHead(list[i]);
  }

  /** The free list from head (next allocated) to tail. For tests and debugging; allocates. */
  freeQueue(): number[] {
    const order: number[] = [];
    for (let page = this.#head; page !== NONE; page = this.#next[page]) order.push(page);
    return order;
  }

  /** Walks the whole pool and throws a CacheInvariantError on any inconsistency. */
  checkInvariants(): void {
    assert(this.#state[NULL_PAGE] === STATE_NULL, "null page lost its reservation");
    let numListed = 0;
    let prev = NONE;
    for (let page = this.#head; page !== NONE; page = this.#next[page]) {
      assert(numListed++ < this.numPages, "free list has a cycle");
      assert(this.#state[page] === STATE_FREE, () => `page ${page} is on the free list but not marked free`);
      assert(this.#prev[page] === prev, () => `free list link broken at page ${page}`);
      prev = page;
    }
    assert(this.#tail === prev, "free list tail does not match its last page");
    assert(numListed === this.#numFree, () => `free count ${this.#numFree} but ${numListed} pages listed`);
    let numMarkedFree = 0;
    let numOwned = 0;
    for (let page = 0; page < this.numPages; page++) {
      if (this.#state[page] === STATE_FREE) numMarkedFree++;
      else if (this.#state[page] === STATE_OWNED) {
        numOwned++;
        assert(this.#prev[page] === NONE && this.#next[page] === NONE, () => `owned page ${page} still linked`);
      }
    }
    assert(numMarkedFree === numListed, "a page is marked free but not on the free list");
    assert(numMarkedFree + numOwned === this.numUsablePages, "free + owned pages do not add up to the pool");
  }

  // ---- intrusive list

  #pushTail(page: number): void {
    this.#state[page] = STATE_FREE;
    this.#prev[page] = this.#tail;
    this.#next[page] = NONE;
    if (this.#tail === NONE) this.#head = page;
    else this.#next[this.#tail] = page;
    this.#tail = page;
    this.#numFree++;
  }

  #pushHead(page: number): void {
    this.#state[page] = STATE_FREE;
    this.#prev[page] = NONE;
    this.#next[page] = this.#head;
    if (this.#head === NONE) this.#tail = page;
    else this.#prev[this.#head] = page;
    this.#head = page;
    this.#numFree++;
  }

  #popHead(): number {
    const page = this.#head;
    assert(page !== NONE, "popHead on an empty free list");
    this.#head = this.#next[page];
    if (this.#head === NONE) this.#tail = NONE;
    else this.#prev[this.#head] = NONE;
    this.#next[page] = NONE;
    this.#state[page] = STATE_OWNED;
    this.#numFree--;
    return page;
  }
}
