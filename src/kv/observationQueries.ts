/**
 * @module kv/observationQueries
 *
 * The last few query rows of every layer, kept for SnapKV-style eviction,
 * which scores cached keys by the attention these queries pay them.
 */

export class ObservationQueries {
  readonly #rows: Float32Array[]; // per layer: [window, Hq * d] ring of the latest query rows
  readonly #count: number[];

  constructor(numLayers: number, readonly window: number, readonly rowWidth: number) {
    this.#rows = Array.from({ length: numLayers }, () => new Float32Array(window * rowWidth));
    this.#count = new Array(numLayers).fill(0);
  }

  /** Appends the rows of a chunk's queries q: [T, Hq * d] (only the last `window` matter). */
  push(layer: number, q: Float32Array, numTokens: number): void {
    const rows = this.#rows[layer];
    for (let t = Math.max(0, numTokens - this.window); t < numTokens; t++) {
      const slot = this.#count[layer] % this.window;
      rows.set(q.subarray(t * this.rowWidth, (t + 1) * this.rowWidth), slot * this.rowWidth);
      this.#count[layer]++;
    }
  }

  /** The kept queries of one KV head's group as [numObs, group, d]. */
  forHead(layer: number, kvHead: number, group: number, headDim: number): { queries: Float32Array; numObs: number } {
    const numObs = Math.min(this.#count[layer], this.window);
    const queries = new Float32Array(numObs * group * headDim);
    const rows = this.#rows[layer];
    for (let o = 0; o < numObs; o++) {
      const from = o * this.rowWidth + kvHead * group * headDim;
      queries.set(rows.subarray(from, from + group * headDim), o * group * headDim);
    }
    return { queries, numObs };
  }
}
