/**
 * @module kv/sequenceKv
 *
 * One sequence's KV cache as the transformer sees it: for every layer of a
 * chunk, gate the new keys, attend over ring + global pages + the chunk,
 * then commit (promote leaving tokens, write the new ones). Eviction runs
 * after each chunk. Bookkeeping is SequenceCache's; bytes live in the pool.
 */
import type { Backend, HostBlockTables, KvPool, Tensor } from "../backends/backend.js";
import { PAGE_SIZE } from "../cache/blockPool.js";
import type { BlockTableView } from "../cache/blockTable.js";
import type { CacheStats, SequenceCache } from "../cache/sequenceCache.js";
import type { ModelConfig } from "../model/config.js";
import type { KvSettings } from "./kvSettings.js";
import { ObservationQueries } from "./observationQueries.js";

/** Per-layer, per-head figures for --stats and the forward JSON. */
export interface KvReport extends CacheStats {
  /** Tokens the admission admitted, [layer][kvHead], over all positions. */
  readonly admittedByHead: number[][];
}

/** Receives every layer's gate scores [Hkv, T] for positions startPos.. (tracing and tests). */
export type GateScoreListener = (layer: number, startPos: number, numTokens: number, scores: Float32Array) => void;

export class SequenceKv {
  /** Set to observe the write gate's scores as they are computed. */
  onGateScores: GateScoreListener | null = null;
  /** Wall-clock milliseconds spent in the attention kernel (benchmarks). */
  attentionMs = 0;
  readonly #flags: Uint8Array; //            [Hkv, T] admit flags of the current chunk
  readonly #tables: HostBlockTables;
  readonly #observed: ObservationQueries | null;
  #numAdmitted: number[][];
  #released = false;

  constructor(
    readonly config: ModelConfig,
    readonly settings: KvSettings,
    readonly backend: Backend,
    readonly pool: KvPool,
    readonly cache: SequenceCache,
    /** Releases the sequence's pages when it ends. */
    readonly onRelease: () => void,
  ) {
    const { numKvHeads: H, numLayers } = config;
    const W = settings.window;
    this.#flags = new Uint8Array(H * W);
    const rowStride = W / PAGE_SIZE + Math.ceil(config.maxPositions / PAGE_SIZE) + 1;
    this.#tables = {
      rowStride,
      blockTables: new Int32Array(H * rowStride),
      numRing: new Int32Array(H),
      numGlobal: new Int32Array(H),
      ringPositions: new Int32Array(H * W),
      ringAdmitted: new Uint8Array(H * W),
    };
    this.#numAdmitted = Array.from({ length: numLayers }, () => new Array(H).fill(0));
    const obs = settings.eviction.observationWindow;
    this.#observed = obs > 0 ? new ObservationQueries(numLayers, obs, config.numHeads * config.headDim) : null;
  }

  get numTokens(): number {
    return this.cache.numTokens;
  }

  /** Largest chunk one step may hold: the window (so a chunk's own keys are always local). */
  get maxChunk(): number {
    return this.settings.window;
  }

  /** Checks before a chunk that the pool can take it even if every token is admitted. */
  canAppend(numTokens: number): boolean {
    return this.cache.canAllocate(numTokens);
  }

  /**
   * One layer of a chunk at positions startPos..: out = attention(q) over what
   * is visible, then the chunk's k, v (kPre: keys before RoPE, for the gate) enter the cache.
   */
  async attend(layer: number, out: Tensor, q: Tensor, k: Tensor, v: Tensor, kPre: Tensor | null, numTokens: number, startPos: number): Promise<void> {
    if (this.#released) throw new Error("a KV sequence was used after release()");
    const { admission, selection, gate, window } = this.settings;
    const H = this.config.numKvHeads;
    const T = numTokens;
    const gateScores = admission.needsGateScores ? await this.backend.gateScores(gate!, layer, kPre!, k, T) : null;
    if (gateScores && this.onGateScores) this.onGateScores(layer, startPos, T, gateScores);
    const flags = this.#flags.subarray(0, H * T);
    admission.decide({ layer, numKvHeads: H, numTokens: T, startPos, gateScores }, flags);

    const queries = T === 1 && selection.tracksKeys ? await this.backend.read(q, this.config.numHeads * this.config.headDim) : null;
    this.#fillTables(layer, queries);
    const t0 = performance.now();
    this.backend.pagedAttention(out, q, k, v, this.pool, this.#tables, T, startPos, this.config.numHeads, window);
    this.attentionMs += performance.now() - t0;
    if (this.#observed) this.#observed.push(layer, await this.backend.read(q, T * this.config.numHeads * this.config.headDim), T);

    const { slotMapping, promotions } = this.cache.allocateLayer(layer, T, flags);
    // NOTE: promotions first: a promoted token leaves the very ring slot a new token takes.
    if (promotions.numCopies > 0) {
      this.backend.copySlots(this.pool, promotions.fromSlots, promotions.toSlots);
      if (selection.tracksKeys) await this.#trackGlobal(promotions.toSlots, true);
    }
    this.backend.writeSlots(this.pool, k, v, slotMapping, T);
    for (let h = 0; h < H; h++) for (let t = 0; t < T; t++) this.#numAdmitted[layer][h] += flags[h * T + t];
  }

  /** After all layers of a chunk: trims global caches over the eviction budget. */
  async endChunk(): Promise<void> {
    const { eviction, selection } = this.settings;
    if (!this.#observed) return;
    const { numLayers, numKvHeads: H, headDim: d, numHeads } = this.config;
    const group = numHeads / H;
    for (let l = 0; l < numLayers; l++) {
      for (let h = 0; h < H; h++) {
        const view = this.cache.head(l, h);
        if (!eviction.shouldEvict(view.numGlobalTokens)) continue;
        const globalKeys = await this.backend.readKeys(this.pool, globalSlots(view));
        const otherKeys = await this.backend.readKeys(this.pool, ringSlots(view));
        const { queries, numObs } = this.#observed.forHead(l, h, group, d);
        const drops = eviction.chooseDrops({ headDim: d, globalKeys, globalPositions: view.globalPositions, otherKeys, queries, numObs, group, scale: 1 / Math.sqrt(d) });
        const moves = this.cache.dropGlobal(l, h, drops);
        if (moves.numCopies > 0) {
          this.backend.copySlots(this.pool, moves.fromSlots, moves.toSlots);
          if (selection.tracksKeys) await this.#trackGlobal(moves.toSlots, false);
        }
      }
    }
  }

  report(): KvReport {
    return { ...this.cache.stats(), admittedByHead: this.#numAdmitted.map((row) => [...row]) };
  }

  /** Returns the sequence's pages and its reservation to the pool; later calls do nothing. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.cache.release();
    this.onRelease();
  }

  /** Block tables of one layer; a decode step's global pages go through selection. */
  #fillTables(layer: number, queries: Float32Array | null): void {
    const t = this.#tables;
    const { numKvHeads: H, headDim: d, numHeads } = this.config;
    const W = this.settings.window;
    const ringEntries = W / PAGE_SIZE;
    const group = numHeads / H;
    for (let h = 0; h < H; h++) {
      const view = this.cache.head(layer, h);
      const row = t.blockTables.subarray(h * t.rowStride, (h + 1) * t.rowStride);
      for (let i = 0; i < view.ringPageIds.length; i++) row[i] = view.ringPageIds[i];
      t.numRing[h] = view.numRingTokens;
      t.ringPositions.set(view.ringPositions, h * W);
      t.ringAdmitted.set(view.ringAdmitted, h * W);
      const groupQueries = queries ? queries.subarray(h * group * d, (h + 1) * group * d) : new Float32Array(0);
      t.numGlobal[h] = queries
        ? this.settings.selection.selectPages(view, groupQueries, row.subarray(ringEntries))
        : copyGlobalPages(view, row.subarray(ringEntries));
    }
  }

  async #trackGlobal(slots: Int32Array, appended: boolean): Promise<void> {
    const d = this.config.headDim;
    const keys = await this.backend.readKeys(this.pool, slots);
    for (let i = 0; i < slots.length; i++) this.settings.selection.onGlobalWrite(slots[i], keys.subarray(i * d, (i + 1) * d), appended);
  }
}

function copyGlobalPages(view: BlockTableView, out: Int32Array): number {
  const numPages = Math.ceil(view.numGlobalTokens / PAGE_SIZE);
  for (let i = 0; i < numPages; i++) out[i] = view.globalPageIds[i];
  return view.numGlobalTokens;
}

function globalSlots(view: BlockTableView): Int32Array {
  const slots = new Int32Array(view.numGlobalTokens);
  for (let g = 0; g < slots.length; g++) slots[g] = view.globalPageIds[g >> 4] * PAGE_SIZE + (g & 15);
  return slots;
}

function ringSlots(view: BlockTableView): Int32Array {
  const slots = new Int32Array(view.numRingTokens);
  for (let r = 0; r < slots.length; r++) slots[r] = view.ringPageIds[r >> 4] * PAGE_SIZE + (r & 15);
  return slots;
}
