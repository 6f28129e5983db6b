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
 * - Groups (when a device binds the page storage in parts, e.g. WebGPU's
 *   2 GiB storage bindings): page ids split into `numGroups` equal ranges,
 *   each with a free list of its own; a (layer, KV head) draws from the group
 *   of its layer ({@link BlockPool.groupOfLayer}), so one layer's pages sit in
 *   one part. With one group (the default) the pool is as described above.
 *   With several, `numFreePages` is numGroups x the fewest free pages of a
 *   group: a step whose pages spread evenly over the groups (every layer the
 *   same, as full attention) fits exactly when the scheduler thinks it does;
 *   SequenceCache checks each group exactly before changing anything.
 */

import { assert, CacheInvariantError, InvalidCacheConfigError, OutOfPagesError } from "./errors.js";

/** Tokens per page. */
export { PAGE_SIZE } from "../backends/stepLayout.js";
import { PAGE_SIZE } from "../backends/stepLayout.js";

/** The reserved page id used to pad block tables; never allocated. */
export const NULL_PAGE = 0;

const NONE = -1;
const STATE_OWNED = 0;
const STATE_FREE = 1;
const STATE_NULL = 2;
/** Checked by free() and about to join the free list. */
const STATE_FREEING = 3;

/** Where a head's pages come from: the pool, or one of its groups. */
export interface PageSource {
  readonly numFreePages: number;
  readonly numUsablePages: number;
  canAllocate(numPages: number): boolean;
  allocateOne(): number;
  free(pages: Iterable<number>): void;
}

/** Fixed pool of page ids with an intrusive LIFO free list (one per group). */
export class BlockPool implements PageSource {
  /** Pages in the pool, the null page included. */
  readonly numPages: number;
  /** Ranges of page ids with free lists of their own (see the module comment). */
  readonly numGroups: number;
  /** Page ids per group (the last group may hold fewer): page p is in group floor(p / pagesPerGroup). */
  readonly pagesPerGroup: number;
  readonly #prev: Int32Array; // [numPages] previous free page, NONE at the head or when owned
  readonly #next: Int32Array; // [numPages] next free page, NONE at the tail or when owned
  readonly #state: Uint8Array; // [numPages] STATE_* of each page
  readonly #head: Int32Array; // [numGroups]
  readonly #tail: Int32Array; // [numGroups]
  readonly #numFreeOf: Int32Array; // [numGroups]
  readonly #groups: PageSource[];
  #numFree = 0;

  /**
   * @param numPages pages in the pool including the reserved null page (at least 2).
   * @param numGroups ranges of page ids allocated apart (default 1).
   */
  constructor(numPages: number, numGroups = 1) {
    if (!Number.isInteger(numPages) || numPages < 2 || numPages > 0x7fffffff / PAGE_SIZE) {
      throw new InvalidCacheConfigError(
        "numPages",
        `KV page pool size must be an integer from 2 to ${Math.floor(0x7fffffff / PAGE_SIZE)} (page 0 is reserved), got ${numPages}`,
      );
    }
    if (!Number.isInteger(numGroups) || numGroups < 1 || numGroups * 2 > numPages) {
      throw new InvalidCacheConfigError("numGroups", `KV page groups must be an integer from 1 to ${Math.floor(numPages / 2)}, got ${numGroups}`);
    }
    this.numPages = numPages;
    this.numGroups = numGroups;
    this.pagesPerGroup = Math.ceil(numPages / numGroups);
    this.#prev = new Int32Array(numPages).fill(NONE);
    this.#next = new Int32Array(numPages).fill(NONE);
    this.#state = new Uint8Array(numPages).fill(STATE_OWNED);
    this.#head = new Int32Array(numGroups).fill(NONE);
    this.#tail = new Int32Array(numGroups).fill(NONE);
    this.#numFreeOf = new Int32Array(numGroups);
    this.#state[NULL_PAGE] = STATE_NULL;
    for (let page = 1; page < numPages; page++) this.#pushTail(page);
    this.#groups = numGroups === 1 ? [this] : Array.from({ length: numGroups }, (_, g) => this.#groupView(g));
  }

  /** The group whose pages layer `layer` (of `numLayers`) uses: floor(layer * numGroups / numLayers). */
  groupOfLayer(layer: number, numLayers: number): number {
    return Math.floor((layer * this.numGroups) / numLayers);
  }

  /** Group g's pages as a source of their own (the pool itself when there is one group). */
  group(g: number): PageSource {
    assert(Number.isInteger(g) && g >= 0 && g < this.numGroups, () => `group ${g} of ${this.numGroups}`);
    return this.#groups[g]!;
  }

  /** Pages that can ever be allocated: all but the null page. */
  get numUsablePages(): number {
    return this.numPages - 1;
  }

  /** Free pages; with several groups, numGroups x the fewest free in a group (see the module comment). */
  get numFreePages(): number {
    if (this.numGroups === 1) return this.#numFree;
    let fewest = Infinity;
    for (let g = 0; g < this.numGroups; g++) fewest = Math.min(fewest, this.#numFreeOf[g]!);
    return this.numGroups * fewest;
  }

  get numOwnedPages(): number {
    return this.numUsablePages - this.#numFree;
  }

  /** Free pages of group g. */
  numFreeIn(g: number): number {
    return this.#numFreeOf[g]!;
  }

  /** True if {@link allocate} of `numPages` pages would succeed now. */
  canAllocate(numPages: number): boolean {
    return numPages <= this.numFreePages;
  }

  #groupView(g: number): PageSource {
    const first = g * this.pagesPerGroup;
    const end = Math.min(this.numPages, first + this.pagesPerGroup);
    const numFreeOf = this.#numFreeOf;
    return {
      get numFreePages() {
        return numFreeOf[g]!;
      },
      numUsablePages: end - Math.max(1, first),
      canAllocate: (n: number) => n <= this.#numFreeOf[g]!,
      allocateOne: () => {
        if (this.#numFreeOf[g] === 0) throw new OutOfPagesError(1, 0, end - Math.max(1, first));
        return this.#popHead(g);
      },
      free: (pages: Iterable<number>) => this.#freeChecked(pages, first, end),
    };
  }

  /**
   * Takes `numPages` pages from the head of the free list, in list order.
   * @throws OutOfPagesError if fewer are free; nothing is allocated then.
   */
  allocate(numPages: number): number[] {
    assert(Number.isInteger(numPages) && numPages >= 0, () => `allocate: bad page count ${numPages}`);
    assert(this.numGroups === 1, "allocate: a pool of several groups allocates through group(g)");
    if (!this.canAllocate(numPages)) throw new OutOfPagesError(numPages, this.#numFree, this.numUsablePages);
    const pages: number[] = [];
    for (let i = 0; i < numPages; i++) pages.push(this.#popHead(0));
    return pages;
  }

  /**
   * Takes one page from the head of the free list without allocating an array.
   * @throws OutOfPagesError if none is free.
   */
  allocateOne(): number {
    assert(this.numGroups === 1, "allocateOne: a pool of several groups allocates through group(g)");
    if (this.#numFree === 0) throw new OutOfPagesError(1, 0, this.numUsablePages);
    return this.#popHead(0);
  }

  /**
   * Returns owned pages to the head of the free list: the next allocations
   * take them back in the order given. All or nothing: a page that is not
   * owned (or is listed twice) throws before any page is freed.
   */
  free(pages: Iterable<number>): void {
    this.#freeChecked(pages, 0, this.numPages);
  }

  /**
   * free() of pages that must lie in [first, end) (a group's range).
   * NOTE: pages are marked while checked, so a page listed twice is found without a
   * set (a request's release frees millions of pages at long context); a failed check unmarks them.
   */
  #freeChecked(pages: Iterable<number>, first: number, end: number): void {
    const list = Array.isArray(pages) ? (pages as readonly number[]) : [...pages];
    const state = this.#state;
    for (let i = 0; i < list.length; i++) {
      const page = list[i];
      if (!(Number.isInteger(page) && page >= first && page < end && state[page] === STATE_OWNED)) {
        for (let j = 0; j < i; j++) state[list[j]] = STATE_OWNED;
        const inRange = Number.isInteger(page) && page >= 0 && page < this.numPages;
        if (inRange && (page < first || page >= end)) throw new CacheInvariantError(`free: page ${page} is not in pages [${first}, ${end}) of its group`);
        throw new CacheInvariantError(`free: page ${page} is not owned (${page === NULL_PAGE ? "null page" : "double free or bad id"})`);
      }
      state[page] = STATE_FREEING;
    }
    for (let i = list.length - 1; i >= 0; i--) this.#pushHead(list[i]);
  }

  /** The free list from head (next allocated) to tail. For tests and debugging; allocates. */
  freeQueue(): number[] {
    const order: number[] = [];
    for (let g = 0; g < this.numGroups; g++) for (let page = this.#head[g]!; page !== NONE; page = this.#next[page]) order.push(page);
    return order;
  }

  /** Walks the whole pool and throws a CacheInvariantError on any inconsistency. */
  checkInvariants(): void {
    assert(this.#state[NULL_PAGE] === STATE_NULL, "null page lost its reservation");
    let numListed = 0;
    for (let g = 0; g < this.numGroups; g++) {
      let prev = NONE;
      let numInGroup = 0;
      for (let page = this.#head[g]!; page !== NONE; page = this.#next[page]) {
        assert(numListed++ < this.numPages, "free list has a cycle");
        assert(this.#state[page] === STATE_FREE, () => `page ${page} is on the free list but not marked free`);
        assert(this.#prev[page] === prev, () => `free list link broken at page ${page}`);
        assert(this.#groupOf(page) === g, () => `page ${page} is on group ${g}'s free list`);
        prev = page;
        numInGroup++;
      }
      assert(this.#tail[g] === prev, "free list tail does not match its last page");
      assert(numInGroup === this.#numFreeOf[g], () => `group ${g} free count ${this.#numFreeOf[g]} but ${numInGroup} pages listed`);
    }
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

  #groupOf(page: number): number {
    return Math.floor(page / this.pagesPerGroup);
  }

  #pushTail(page: number): void {
    const g = this.#groupOf(page);
    this.#state[page] = STATE_FREE;
    this.#prev[page] = this.#tail[g]!;
    this.#next[page] = NONE;
    if (this.#tail[g] === NONE) this.#head[g] = page;
    else this.#next[this.#tail[g]!] = page;
    this.#tail[g] = page;
    this.#numFreeOf[g]++;
    this.#numFree++;
  }

  #pushHead(page: number): void {
    const g = this.#groupOf(page);
    this.#state[page] = STATE_FREE;
    this.#prev[page] = NONE;
    this.#next[page] = this.#head[g]!;
    if (this.#head[g] === NONE) this.#tail[g] = page;
    else this.#prev[this.#head[g]!] = page;
    this.#head[g] = page;
    this.#numFreeOf[g]++;
    this.#numFree++;
  }

  #popHead(g: number): number {
    const page = this.#head[g]!;
    assert(page !== NONE, "popHead on an empty free list");
    this.#head[g] = this.#next[page];
    if (this.#head[g] === NONE) this.#tail[g] = NONE;
    else this.#prev[this.#head[g]!] = NONE;
    this.#next[page] = NONE;
    this.#state[page] = STATE_OWNED;
    this.#numFreeOf[g]--;
    this.#numFree--;
    return page;
  }
}
