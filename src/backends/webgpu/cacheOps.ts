/**
 * @module backends/webgpu/cacheOps
 *
 * The dual cache's ops on the WebGPU backend (docs/design.md §4-6): KV pools
 * in parts of one storage binding each (gpuPool.ts), writes and copies of
 * their slots, scatters into step tensors, and paged attention, whose work
 * items are planned on the host (attentionPlan.ts) from the shadows of the
 * step's metadata (and the step's admit flags copied into scratch where a
 * chunk longer than its window reads its keys by them).
 *
 * Fusion: a layer's slot copies (promotions) wait to see whether its
 * writeKv follows on the same pool part; short lists of both (decode) then
 * take one dispatch (copyThenWriteKvKernel), the same bits as two.
 */
import { decodeAttentionKernel, decodeAttentionLanes } from "./kernels/decodeAttentionKernel.js";
import { decodeTwoPassKernel, twoPassApplies, twoPassSharedBytes } from "./kernels/decodeTwoPassKernel.js";
import type { AttentionBatch, AttentionDims, KvDType, KvPool, Tensor } from "../backend.js";
import { PAGE_SIZE } from "../stepLayout.js";
import { chunkByFlags, planAttention, PlanScratch } from "./attentionPlan.js";
import { F, type GpuContext } from "./gpuContext.js";
import { chooseGroups, gpuPool, pagePairBytes, partOfLayer, partsTouched, type GpuPool, type PoolPart } from "./gpuPool.js";
import { deviceWrites, gpu, shadowI32, type GpuTensor } from "./gpuTensor.js";
import { attentionKernel, attentionShape, NUM_THREADS, type AttentionShape } from "./kernels/attentionKernels.js";
import { SG_ATTENTION_QUERIES, sgAttentionKernel, sgAttentionStepKeys } from "./kernels/attentionSgKernel.js";
import { chunkF16Kernel, chunkF16PartElements, DIRECT_ATTENTION_QUERIES, directAttentionApplies, directAttentionKernel } from "./kernels/attentionDirectKernel.js";
import { sgMatrixDialect } from "./kernelChoice.js";
import { attentionReduceKernel } from "./kernels/attentionReduceKernel.js";
import { copySlotsKernel, copyThenWriteKvKernel, scatterKernel, writeKvKernel } from "./kernels/kvKernels.js";
import type { Kernel } from "./gpuRuntime.js";

/** Copies and rows a fused copy-then-write takes at most (each item scans the other list). */
const MAX_FUSED_COPIES = 64;
const MAX_FUSED_ROWS = 64;

interface PendingCopies {
  readonly pool: GpuPool;
  readonly copies: GpuTensor;
  readonly first: number;
  readonly count: number;
  /** The one pool part holding them. */
  readonly part: number;
}

export class CacheOps {
  readonly #ctx: GpuContext;
  /** Slot copies waiting to see whether writeKv follows (see the module's header). */
  #pendingCopies: PendingCopies | null = null;
  readonly #smallKernels = new Map<string, Kernel>();
  /** The attention plans' arrays, reused (a plan's lists are copied into the arguments as it is dispatched). */
  readonly #planScratch = new PlanScratch();
  /** The step's own keys and values as f16 halves, for the direct tensor-core attention (chunkF16Kernel): grows, never shrinks. */
  #chunkF16: GPUBuffer | null = null;

  constructor(ctx: GpuContext) {
    this.#ctx = ctx;
  }

  createKvPool(numPages: number, headDim: number, kvDType: KvDType, numLayers = 1): KvPool {
    this.#ctx.checkLive();
    if (headDim % 2 !== 0) throw new RangeError(`createKvPool: head dim ${headDim} must be even`);
    const { mem } = this.#ctx;
    const limit = mem.bindingLimit;
    const numGroups = chooseGroups(numPages, headDim, kvDType, numLayers, limit);
    if (numGroups === null) {
      const perLayer = (numPages / numLayers) * pagePairBytes(headDim, kvDType);
      throw new RangeError(`KV memory of ${(perLayer / 2 ** 20).toFixed(0)} MiB per layer exceeds this device's largest storage binding (${(limit / 2 ** 20).toFixed(0)} MiB); lower --kv-memory`);
    }
    const wordsPerRow = kvDType === "f32" ? headDim : headDim / 2;
    const pagesPerGroup = Math.ceil(numPages / numGroups);
    const parts: PoolPart[] = [];
    for (let g = 0; g < numGroups; g++) {
      const firstPage = g * pagesPerGroup, n = Math.min(pagesPerGroup, numPages - firstPage);
      const sideWords = n * PAGE_SIZE * wordsPerRow;
      parts.push({ buffer: mem.buffer(2 * sideWords * 4, `KV pages ${g}`), firstPage, numPages: n, vBase: sideWords, bounds: null });
    }
    const pool: GpuPool = { numPages, headDim, kvDType, numBytes: numPages * pagePairBytes(headDim, kvDType), numGroups, numLayers, pagesPerGroup, wordsPerRow, parts };
    return pool;
  }

  destroyKvPool(pool: KvPool): void {
    for (const part of gpuPool(pool).parts) {
      this.#ctx.mem.free(part.buffer);
      if (part.bounds) this.#ctx.mem.free(part.bounds);
    }
  }

  /** Bits of K and V of pages [first, first + count) as stored (u32 words, [count, 16, wordsPerRow] each): tests and diagnostics. */
  async readKvPages(pool: KvPool, first: number, count: number): Promise<{ k: Uint32Array; v: Uint32Array }> {
    this.#ctx.checkLive();
    const p = gpuPool(pool);
    const rowWords = PAGE_SIZE * p.wordsPerRow;
    const k = new Uint32Array(count * rowWords), v = new Uint32Array(count * rowWords);
    for (let i = 0; i < count; ) {
      const page = first + i;
      const part = p.parts[Math.floor(page / p.pagesPerGroup)];
      const n = Math.min(count - i, part.firstPage + part.numPages - page);
      const at = (page - part.firstPage) * rowWords * 4, bytes = n * rowWords * 4;
      const { data } = await this.#ctx.rt.readBack([{ buffer: part.buffer, offset: at, bytes }, { buffer: part.buffer, offset: part.vBase * 4 + at, bytes }]);
      k.set(new Uint32Array(data[0]), i * rowWords);
      v.set(new Uint32Array(data[1]), i * rowWords);
      i += n;
    }
    return { k, v };
  }

  writeKv(pool: KvPool, k: Tensor, v: Tensor, slotMapping: Tensor, offset: number, rows: number): void {
    const [p, kt, vt, m] = [gpuPool(pool), gpu(k), gpu(v), gpu(slotMapping)];
    // NOTE: taken before checkLive, which records whatever waits
    const pending = this.#pendingCopies;
    this.#pendingCopies = null;
    this.#ctx.checkLive();
    const d = p.headDim, H = kt.numel / kt.shape[0] / d;
    const wpr = p.wordsPerRow;
    const shadow = m.shadow instanceof Int32Array ? m.shadow : null;
    const parts = partsTouched(p, shadow, offset, 1, 0, H * rows, PAGE_SIZE);
    const args = (part: PoolPart) => [rows, H, wpr, d, offset, part.vBase, part.firstPage * PAGE_SIZE, part.numPages * PAGE_SIZE];
    if (pending && (pending.pool !== p || parts.length !== 1 || parts[0] !== pending.part || rows * H > MAX_FUSED_ROWS)) this.#recordCopies(pending);
    else if (pending) {
      const part = p.parts[pending.part];
      const items = (pending.count + rows * H) * wpr;
      this.#ctx.rt.dispatch(copyThenWriteKvKernel(p.kvDType), [part.buffer, kt.buffer, vt.buffer, m.buffer, pending.copies.buffer], Math.ceil(items / 256), [...args(part), pending.first, pending.count]);
      return;
    }
    for (const i of parts) {
      const part = p.parts[i];
      this.#ctx.rt.dispatch(writeKvKernel(p.kvDType), [part.buffer, kt.buffer, vt.buffer, m.buffer], Math.ceil((rows * H * wpr) / 256), args(part));
    }
  }

  copySlots(pool: KvPool, copies: Tensor, first: number, count: number): void {
    if (count === 0) return;
    const [p, c] = [gpuPool(pool), gpu(copies)];
    this.#ctx.checkLive();
    const shadow = c.shadow instanceof Int32Array ? c.shadow : null;
    const parts = partsTouched(p, shadow, 2 * first, count, 2, 1, PAGE_SIZE);
    const pending = { pool: p, copies: c, first, count, part: parts[0] };
    if (this.#ctx.kernels.fuse && this.#ctx.kernels.fuseCopyWrite && parts.length === 1 && count <= MAX_FUSED_COPIES) this.#pendingCopies = pending;
    else this.#recordCopies(pending, parts);
  }

  /** Records the copies that wait for a writeKv, alone (the backend calls it before any other op). */
  settle(): void {
    const pending = this.#pendingCopies;
    this.#pendingCopies = null;
    if (pending) this.#recordCopies(pending);
  }

  #recordCopies({ pool: p, copies: c, first, count, part }: PendingCopies, parts: readonly number[] = [part]): void {
    const wpr = p.wordsPerRow;
    for (const i of parts) {
      const part = p.parts[i];
      this.#ctx.rt.dispatch(copySlotsKernel(), [part.buffer, c.buffer], Math.ceil((count * wpr) / 256), [first, count, wpr, part.vBase, part.firstPage * PAGE_SIZE, part.numPages * PAGE_SIZE]);
    }
  }

  scatter(dst: Tensor, updates: Tensor, count: number): void {
    if (count === 0) return;
    const [d, u] = [gpu(dst), gpu(updates)];
    this.#ctx.checkLive();
    deviceWrites(d);
    const { rt } = this.#ctx;
    rt.dispatch(scatterKernel(d.dtype === "u8"), [d.buffer, u.buffer, rt.errorBuffer], Math.ceil(count / 256), [count, d.numel]);
  }

  /**
   * The step's own keys and values (k, v f32 [rows, Hkv * d]) as f16 halves (chunkF16Kernel), recorded now, and the
   * elements of each of the copy's four parts. A grown buffer replaces the old only after the commands recorded so far.
   */
  #chunkF16Of(k: GpuTensor, v: GpuTensor, numKvHeads: number, headDim: number): [GPUBuffer, number] {
    const rows = k.shape[0], partElements = chunkF16PartElements(rows, numKvHeads, headDim);
    const bytes = 4 * partElements * 2;
    if (!this.#chunkF16 || this.#chunkF16.size < bytes) {
      if (this.#chunkF16) this.#ctx.mem.free(this.#chunkF16);
      this.#chunkF16 = this.#ctx.mem.buffer(bytes, "attention chunk f16");
    }
    const words = (rows * numKvHeads * headDim) / 2;
    this.#ctx.rt.dispatch(chunkF16Kernel(), [this.#chunkF16, k.buffer, v.buffer], Math.ceil(words / 256), [words, partElements / 2]);
    return [this.#chunkF16, partElements];
  }

  #attentionShape(dims: AttentionDims, kvDType: KvDType, minQueries?: number): AttentionShape {
    return attentionShape(dims.headDim, dims.numHeads / dims.numKvHeads, kvDType, this.#ctx.device.limits.maxComputeWorkgroupStorageSize, minQueries);
  }

  /** The kernel of blocks of few query vectors, chosen once per shape and kernel choice (decode asks every layer). */
  #smallBlockKernel(small: AttentionShape, tileKeys: number, vBase: number): Kernel {
    const c = this.#ctx.kernels;
    const key = `${small.headDim} ${small.group} ${small.kvDType} ${small.numQueries} ${tileKeys} ${vBase % 4} ${c.decodeAttentionSubgroup} ${c.decodeAttentionUnroll} ${c.decodeAttentionLanes} ${c.decodeAttentionTwoPass} ${c.decodeAttentionValueLoads} ${c.decodeAttentionKeysPerInvocation} ${c.decodeAttentionKeyParts} ${c.decodeAttentionChunkBuffers} ${c.decodeAttentionSegTiles} ${c.decodeAttentionZeroHidden}`;
    let k = this.#smallKernels.get(key);
    if (!k) this.#smallKernels.set(key, (k = this.#chooseSmallBlockKernel(small, tileKeys, vBase)));
    return k;
  }

  /** The bandwidth-shaped decode kernel where it applies, else the general one. */
  #chooseSmallBlockKernel(small: AttentionShape, tileKeys: number, vBase: number): Kernel {
    const c = this.#ctx.kernels;
    const { decodeAttentionSubgroup: sg, decodeAttentionUnroll: unroll, decodeAttentionLanes: wanted, decodeAttentionTwoPass: twoPass, decodeAttentionValueLoads: valueLoads } = c;
    // NOTE: both decode kernels read 16-key tiles and V pages at a vec4 boundary, with one known subgroup size
    if (sg === 0 || tileKeys !== 16 || vBase % 4 !== 0) return attentionKernel(small);
    const block = { headDim: small.headDim, group: small.group, kvDType: small.kvDType, numQueries: small.numQueries, subgroupSize: sg };
    if (twoPass && twoPassApplies(small.headDim, small.kvDType, sg)) {
      // NOTE: chunks of one key per invocation where two do not fit workgroup memory (large GQA groups)
      const limit = this.#ctx.device.limits.maxComputeWorkgroupStorageSize;
      for (const k of new Set([c.decodeAttentionKeysPerInvocation, 1])) {
        const shape = { ...block, valueLoads, keysPerInvocation: k, keyParts: c.decodeAttentionKeyParts, chunkBuffers: c.decodeAttentionChunkBuffers, segTiles: c.decodeAttentionSegTiles, zeroHidden: c.decodeAttentionZeroHidden };
        if (twoPassSharedBytes(shape) <= limit) return decodeTwoPassKernel(shape);
      }
    }
    const lanes = decodeAttentionLanes(small.headDim, small.kvDType, sg, wanted);
    return lanes === 0 ? attentionKernel(small) : decodeAttentionKernel({ ...block, lanes, unroll });
  }

  /**
   * The byte range of the step's admit flags of `layer` ([L, Hkv, numRows] u8) when some chunk of the
   * batch reads its keys by them (attentionPlan.ts chunkByFlags), else null: most steps copy nothing.
   */
  #admittedBytes(batch: AttentionBatch, seqs: Int32Array, layer: number, dims: AttentionDims): { first: number; count: number } | null {
    let needed = false;
    for (let s = 0; s < batch.numSeqs && !needed; s++) needed = chunkByFlags(seqs, s);
    if (!needed || !batch.admitted) return null;
    const { flags, numRows } = batch.admitted;
    const count = dims.numKvHeads * numRows, first = layer * count;
    if (flags.numel < dims.numLayers * count) throw new RangeError(`paged attention: ${flags.label} holds ${flags.numel} flags, fewer than [${dims.numLayers}, ${dims.numKvHeads}, ${numRows}]`);
    return { first, count };
  }

  pagedAttention(out: Tensor, q: Tensor, k: Tensor, v: Tensor, pool: KvPool, layer: number, batch: AttentionBatch, dims: AttentionDims): void {
    const [o, qt, kt, vt, p] = [gpu(out), gpu(q), gpu(k), gpu(v), gpuPool(pool)];
    this.#ctx.checkLive();
    if (dims.numHeads % dims.numKvHeads !== 0) throw new RangeError(`paged attention: numHeads ${dims.numHeads} is not a multiple of numKvHeads ${dims.numKvHeads}`);
    if (batch.numSeqs === 0) return;
    const { rt, mem, kernels: c } = this.#ctx;
    const group = dims.numHeads / dims.numKvHeads;
    const direct = c.sgAttentionDirectKeys > 0 && p.kvDType === "f16" && directAttentionApplies(dims.headDim, group);
    const stepKeys = direct ? 0 : sgAttentionStepKeys(c.sgAttentionKeys, dims.headDim, group, c.sgAttentionSplit, this.#ctx.device.limits.maxComputeWorkgroupStorageSize);
    const dialect = stepKeys > 0 || direct ? sgMatrixDialect(this.#ctx.options, c) : null;
    // NOTE: the tensor-core kernels take blocks of 64 (16 reading pages directly) query vectors in tiles of 16 keys
    const numQueries = direct ? DIRECT_ATTENTION_QUERIES : SG_ATTENTION_QUERIES;
    const shape = dialect ? { headDim: dims.headDim, group, kvDType: p.kvDType, tileKeys: 16, numQueries } : this.#attentionShape(dims, p.kvDType);
    const smallWanted = c.attentionSmallRows * shape.group;
    const smallShape = smallWanted > 0 && smallWanted < shape.numQueries ? this.#attentionShape(dims, p.kvDType, smallWanted) : null;
    const seqs = shadowI32(gpu(batch.seqs), "pagedAttention");
    const numGlobal = shadowI32(gpu(batch.numGlobal), "pagedAttention");
    const d = dims.headDim, H = dims.numKvHeads;
    // NOTE: Quest's choice is copied beside the partials, so the kernel binds one scratch buffer
    const sel = batch.selection;
    let questWords = 0;
    if (sel) questWords = gpu(sel.pages).numel + gpu(sel.numTokens).numel;
    // NOTE: the step's flags of the layer are copied beside them where a chunk reads by them (its kernels bind nothing more)
    const flagBytes = this.#admittedBytes(batch, seqs, layer, dims);
    const input = {
      seqs, numSeqs: batch.numSeqs, numGlobal, layer, numLayers: dims.numLayers, numKvHeads: H, rowStride: batch.tables.rowStride, maxWindow: batch.tables.maxWindow,
      quest: null, targetWorkgroups: c.attentionItems, minSplitTiles: c.attentionSplitTiles, smallQueries: smallShape ? smallShape.numQueries : 0,
      admitted: flagBytes ? { byteBase: 0, numRows: batch.admitted!.numRows } : null,
    };
    const probe = planAttention(input, shape, this.#planScratch);
    const partialWords = probe.numPartials * (d + 2);
    const quest = sel ? { pagesWord: partialWords, countsWord: partialWords + gpu(sel.pages).numel, stride: sel.stride } : null;
    // the flags' aligned words at admittedWord; their first byte `skew` bytes in
    const admittedWord = partialWords + questWords;
    const skew = flagBytes ? flagBytes.first % 4 : 0;
    const admitted = flagBytes ? { byteBase: admittedWord * 4 + skew, numRows: batch.admitted!.numRows } : null;
    // NOTE: the second plan reuses the probe's arrays: only the probe's partial count is read
    const plan = quest || admitted ? planAttention({ ...input, quest, admitted }, shape, this.#planScratch) : probe;
    const copyBytes = flagBytes ? Math.ceil((skew + flagBytes.count) / 4) * 4 : 0;
    const scratch = mem.scratchFor((partialWords + questWords) * 4 + copyBytes);
    if (sel && quest) {
      rt.copy(gpu(sel.pages).buffer, 0, scratch, quest.pagesWord * 4, gpu(sel.pages).numel * 4);
      rt.copy(gpu(sel.numTokens).buffer, 0, scratch, quest.countsWord * 4, gpu(sel.numTokens).numel * 4);
    }
    if (flagBytes) rt.copy(gpu(batch.admitted!.flags).buffer, flagBytes.first - skew, scratch, admittedWord * 4, copyBytes);
    const tables = gpu(batch.tables.blockTables), flags = gpu(batch.tables.ringFlags);
    const part = partOfLayer(p, layer);
    const buffers = [qt.buffer, kt.buffer, vt.buffer, part.buffer, tables.buffer, flags.buffer, scratch];
    // NOTE: arg 6 is read by the tensor-core kernels only, arg 7 by the direct one (elements of each part of the chunk's f16 copy)
    const args = (n: number, chunkPart = 0) => [n, dims.numHeads, H, part.vBase, 1 / Math.sqrt(d), part.firstPage, c.sgAttentionLazyMax, chunkPart];
    if (dialect && direct) {
      // NOTE: the chunk's own keys and values made f16 first
      if (plan.numItems > 0) {
        const [chunk, partElements] = this.#chunkF16Of(kt, vt, H, d);
        const kernel = directAttentionKernel({ headDim: d, group, stepKeys: c.sgAttentionDirectKeys, split: c.sgAttentionSplit }, dialect);
        rt.dispatch(kernel, [qt.buffer, chunk, part.buffer, tables.buffer, flags.buffer, scratch], plan.numItems, args(plan.numItems, partElements), F(4, 6), [plan.items]);
      }
    } else {
      const blocks = dialect ? sgAttentionKernel({ headDim: d, group, kvDType: p.kvDType, stepKeys, split: c.sgAttentionSplit }, dialect) : attentionKernel(shape);
      rt.dispatch(blocks, buffers, plan.numItems, args(plan.numItems), F(4, 6), [plan.items]);
    }
    if (smallShape) rt.dispatch(this.#smallBlockKernel(smallShape, shape.tileKeys, part.vBase), buffers, plan.numSmallItems, args(plan.numSmallItems), F(4, 6), [plan.smallItems]);
    deviceWrites(o);
    // NOTE: one workgroup per (block, query vector): the widest block sets the grid
    const vmax = Math.max(smallShape?.numQueries ?? 0, shape.numQueries);
    rt.dispatch(attentionReduceKernel(), [scratch, o.buffer], plan.numReduce * vmax, [plan.numReduce, dims.numHeads, d, shape.group, vmax], null, [plan.reduce]);
    void NUM_THREADS;
  }
}
