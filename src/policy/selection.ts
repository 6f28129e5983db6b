/**
 * @module policy/selection
 *
 * Selection: at read time, which stored global entries does a decode query
 * read? "all", or Quest: per-page min/max key bounds give an upper bound of
 * q.k for every key of a page; the best pages are read within a token budget.
 * The local ring and the partial last global page are always read.
 */
import { InvalidInputError } from "../errors.js";

export const PAGE_SIZE = 16;

/** A head's global pages as the selection sees them. */
export interface GlobalPagesView {
  readonly globalPageIds: readonly number[];
  readonly numGlobalTokens: number;
}

export interface SelectionPolicy {
  readonly name: string;
  /** True when the policy needs keys written to global pages (onGlobalWrite). */
  readonly tracksKeys: boolean;
  /** Called for each key written to a global slot; `appended` is false for eviction moves. */
  onGlobalWrite(slot: number, key: Float32Array, appended: boolean): void;
  /**
   * Chooses the global pages a decode step reads for one KV head, given its
   * query heads' vectors [group, d]. Writes page ids to `outPages` and returns
   * the number of global tokens they hold in order (full pages first, then the
   * partial last page).
   */
  selectPages(view: GlobalPagesView, queries: Float32Array, outPages: Int32Array): number;
}

/** Read every global entry. */
export const selectAll: SelectionPolicy = {
  name: "all",
  tracksKeys: false,
  onGlobalWrite() {},
  selectPages(view, _queries, outPages) {
    const numPages = Math.ceil(view.numGlobalTokens / PAGE_SIZE);
    for (let i = 0; i < numPages; i++) outPages[i] = view.globalPageIds[i];
    return view.numGlobalTokens;
  },
};

/** Quest (Tang et al. 2024) over a pool of `numPages` pages of head dim d. */
export class QuestSelection implements SelectionPolicy {
  readonly name: string;
  readonly tracksKeys = true;
  readonly #budget: number;
  readonly #headDim: number;
  #min: Float32Array; // [numPages, d]
  #max: Float32Array; // [numPages, d]

  constructor(budgetTokens: number, headDim: number, numPages = 0) {
    if (!Number.isInteger(budgetTokens) || budgetTokens <= 0) throw new InvalidInputError(`--selection quest budget must be a positive integer, got ${budgetTokens}`);
    this.name = `quest:${budgetTokens}`;
    this.#budget = budgetTokens;
    this.#headDim = headDim;
    this.#min = new Float32Array(numPages * headDim);
    this.#max = new Float32Array(numPages * headDim);
  }

  onGlobalWrite(slot: number, key: Float32Array, appended: boolean): void {
    const d = this.#headDim;
    const page = Math.floor(slot / PAGE_SIZE);
    this.#ensure(page + 1);
    const base = page * d;
    // NOTE: pages fill from offset 0, so an appended key at offset 0 starts a page afresh;
    // eviction moves only widen bounds (looser bounds stay valid upper bounds).
    if (appended && slot % PAGE_SIZE === 0) {
      this.#min.set(key.subarray(0, d), base);
      this.#max.set(key.subarray(0, d), base);
      return;
    }
    for (let i = 0; i < d; i++) {
      if (key[i] < this.#min[base + i]) this.#min[base + i] = key[i];
      if (key[i] > this.#max[base + i]) this.#max[base + i] = key[i];
    }
  }

  selectPages(view: GlobalPagesView, queries: Float32Array, outPages: Int32Array): number {
    const numFull = Math.floor(view.numGlobalTokens / PAGE_SIZE);
    const partial = view.numGlobalTokens - numFull * PAGE_SIZE;
    const maxFull = Math.floor(Math.max(0, this.#budget - partial) / PAGE_SIZE);
    let numOut = 0;
    if (numFull <= maxFull) {
      for (let i = 0; i < numFull; i++) outPages[numOut++] = view.globalPageIds[i];
    } else {
      const scores = new Float64Array(numFull);
      for (let i = 0; i < numFull; i++) scores[i] = this.#upperBound(view.globalPageIds[i], queries);
      const order = Array.from({ length: numFull }, (_, i) => i).sort((a, b) => scores[b] - scores[a] || a - b);
      const chosen = order.slice(0, maxFull).sort((a, b) => a - b);
      for (const i of chosen) outPages[numOut++] = view.globalPageIds[i];
    }
    if (partial > 0) outPages[numOut++] = view.globalPageIds[numFull];
    return (numOut - (partial > 0 ? 1 : 0)) * PAGE_SIZE + partial;
  }

  /** max over query heads of sum_i max(q_i * min_i, q_i * max_i): no key of the page scores higher. */
  #upperBound(page: number, queries: Float32Array): number {
    const d = this.#headDim;
    const base = page * d;
    let best = -Infinity;
    for (let h = 0; h < queries.length / d; h++) {
      let s = 0;
      for (let i = 0; i < d; i++) {
        const q = queries[h * d + i];
        s += Math.max(q * this.#min[base + i], q * this.#max[base + i]);
      }
      if (s > best) best = s;
    }
    return best;
  }

  #ensure(numPages: number): void {
    if (this.#min.length >= numPages * this.#headDim) return;
    const size = Math.max(numPages, (this.#min.length / this.#headDim) * 2) * this.#headDim;
    const min = new Float32Array(size);
    const max = new Float32Array(size);
    min.set(this.#min);
    max.set(this.#max);
    this.#min = min;
    this.#max = max;
  }
}
