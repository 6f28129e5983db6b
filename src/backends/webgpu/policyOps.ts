/**
 * @module backends/webgpu/policyOps
 *
 * The KV policies' ops on the WebGPU backend (docs/design.md §3): the write
 * gate's weights and scores, admission (the step's flags, then the ring's
 * after the attention), Quest's page bounds and page choice,
 * SnapKV's observations and scores. Quest's and SnapKV's records are planned
 * on the host from the shadows of the step's metadata (gpuTensor.ts).
 */
import type { GateWeights } from "../../gate/gateWeights.js";
import type { AttentionBatch, AttentionDims, GateHandle, KvPool, KvTables, Tensor } from "../backend.js";
import { gateLayerFloats, packGateLayer } from "../cpu/gateLayout.js";
import { PAGE_SIZE, SEQ_FIELDS, SEQ_NUM_ROWS, SEQ_QUEST_BUDGET, SEQ_ROW_START, SEQ_SLOT, SEQ_WINDOW, SNAP_FIELDS, SNAP_LAYER, SNAP_NUM_GLOBAL, SNAP_NUM_RING } from "../stepLayout.js";
import type { GpuContext } from "./gpuContext.js";
import { gpuPool, partOfLayer, partsTouched, type GpuPool, type PoolPart } from "./gpuPool.js";
import { deviceWrites, gpu, shadowI32 } from "./gpuTensor.js";
import { gateKernel } from "./kernels/gateKernels.js";
import { admitKernel, pageBoundsKernel, questSelectKernel, writeRingFlagsKernel } from "./kernels/policyKernels.js";
import { snapKvKernel, storeObservationsKernel } from "./kernels/snapKvKernels.js";

interface GpuGate extends GateHandle {
  readonly layers: readonly GPUBuffer[];
}

export class PolicyOps {
  readonly #ctx: GpuContext;

  constructor(ctx: GpuContext) {
    this.#ctx = ctx;
  }

  uploadGate(gate: GateWeights): GateHandle {
    this.#ctx.checkLive();
    const { mem } = this.#ctx;
    const { numKvHeads: H, headDim: d, hiddenPerHead: E } = gate;
    const floats = gateLayerFloats(H, d, E);
    const layers = gate.layers.map((layer, l) => {
      const packed = new Float32Array(floats);
      packGateLayer(layer, packed);
      const b = mem.buffer(floats * 4, `gate layer ${l}`);
      mem.writeRaw(b, 0, new Uint8Array(packed.buffer));
      return b;
    });
    const handle: GpuGate = { gate, layers };
    return handle;
  }

  gateScores(scores: Tensor, offset: number, stride: number, gate: GateHandle, layer: number, kPre: Tensor, kPost: Tensor, row0: number, numRows: number): void {
    if (numRows === 0) return;
    const [s, pre, post] = [gpu(scores), gpu(kPre), gpu(kPost)];
    this.#ctx.checkLive();
    const g = gate as GpuGate;
    const { numKvHeads: H, headDim: d, hiddenPerHead: E } = g.gate;
    if (2 * d > 1024) throw new RangeError(`gateScores: head dim ${d} is larger than the kernel takes (512)`);
    deviceWrites(s);
    this.#ctx.rt.dispatch(gateKernel(), [s.buffer, pre.buffer, post.buffer, g.layers[layer]], numRows * H, [offset, stride, row0, numRows, H, d, E]);
  }

  admit(flags: Tensor, scores: Tensor | null, offset: number, stride: number, layer: number, batch: AttentionBatch, dims: AttentionDims, numLayers = 1): void {
    const [f, s] = [gpu(flags), scores ? gpu(scores) : null];
    this.#ctx.checkLive();
    deviceWrites(f);
    const buffers = [f.buffer, s ? s.buffer : this.#ctx.mem.dummy, gpu(batch.seqs).buffer];
    const perLayer = batch.numSeqs * dims.numKvHeads;
    this.#ctx.rt.dispatch(admitKernel(), buffers, numLayers * perLayer, [offset, stride, layer, dims.numKvHeads, s ? 1 : 0, perLayer]);
  }

  writeRingFlags(flags: Tensor, stride: number, batch: AttentionBatch, dims: AttentionDims): void {
    const f = gpu(flags);
    this.#ctx.checkLive();
    const ring = gpu(batch.tables.ringFlags);
    deviceWrites(ring);
    const buffers = [f.buffer, gpu(batch.seqs).buffer, ring.buffer];
    const groups = batch.numSeqs * dims.numLayers * dims.numKvHeads;
    this.#ctx.rt.dispatch(writeRingFlagsKernel(), buffers, groups, [stride, dims.numLayers * dims.numKvHeads, batch.tables.maxWindow, groups]);
  }

  updatePageBounds(pool: KvPool, pages: Tensor, first: number, count: number): void {
    if (count === 0) return;
    const [p, list] = [gpuPool(pool), gpu(pages)];
    this.#ctx.checkLive();
    const shadow = list.shadow instanceof Int32Array ? list.shadow : null;
    for (const i of partsTouched(p, shadow, 2 * first, count, 2, 1, 1)) {
      const part = p.parts[i];
      this.#ctx.rt.dispatch(pageBoundsKernel(p.kvDType), [this.#boundsOf(p, part), part.buffer, list.buffer], Math.ceil((count * p.headDim) / 256), [first, count, p.headDim, 0, part.firstPage, part.numPages]);
    }
  }

  /** Quest's bounds of a pool part, made when first used. */
  #boundsOf(p: GpuPool, part: PoolPart): GPUBuffer {
    return (part.bounds ??= this.#ctx.mem.buffer(part.numPages * 2 * p.headDim * 4, "page bounds"));
  }

  questSelect(q: Tensor, pool: KvPool, layer: number, batch: AttentionBatch, dims: AttentionDims): void {
    const sel = batch.selection;
    if (!sel) return;
    const [qt, p] = [gpu(q), gpuPool(pool)];
    this.#ctx.checkLive();
    const { numLayers: L, numKvHeads: H } = dims;
    const seqs = shadowI32(gpu(batch.seqs), "questSelect");
    const numGlobal = shadowI32(gpu(batch.numGlobal), "questSelect");
    const records: number[] = [];
    let scratchWords = 0;
    for (let s = 0; s < batch.numSeqs; s++) {
      const f = s * SEQ_FIELDS;
      const budget = seqs[f + SEQ_QUEST_BUDGET];
      if (budget <= 0 || seqs[f + SEQ_NUM_ROWS] !== 1) continue;
      const slot = seqs[f + SEQ_SLOT], W = seqs[f + SEQ_WINDOW];
      for (let g = 0; g < H; g++) {
        const nG = numGlobal[(s * L + layer) * H + g];
        records.push(seqs[f + SEQ_ROW_START], budget, nG, ((slot * L + layer) * H + g) * batch.tables.rowStride + W / PAGE_SIZE, s * H + g, scratchWords);
        scratchWords += Math.floor(nG / PAGE_SIZE);
      }
    }
    if (records.length === 0) return;
    const part = partOfLayer(p, layer);
    const bounds = this.#boundsOf(p, part);
    const [pages, tokens] = [gpu(sel.pages), gpu(sel.numTokens)];
    deviceWrites(pages, tokens);
    const n = records.length / 6;
    this.#ctx.rt.dispatch(
      questSelectKernel(),
      [qt.buffer, bounds, gpu(batch.tables.blockTables).buffer, pages.buffer, tokens.buffer, this.#ctx.mem.scratchFor(scratchWords * 4 + 16)],
      n,
      [n, dims.numHeads, dims.headDim, dims.numHeads / H, sel.stride, 0, part.firstPage, 0],
      null,
      [Uint32Array.from(records)],
    );
  }

  storeObservations(obs: Tensor, q: Tensor, layer: number, batch: AttentionBatch, dims: AttentionDims): void {
    const [o, qt] = [gpu(obs), gpu(q)];
    this.#ctx.checkLive();
    const [, numLayers, window, width] = o.shape as [number, number, number, number];
    if (width !== dims.numHeads * dims.headDim || numLayers !== dims.numLayers) throw new Error(`storeObservations: ${o.label} has shape [${o.shape}]`);
    deviceWrites(o);
    this.#ctx.rt.dispatch(storeObservationsKernel(), [o.buffer, qt.buffer, gpu(batch.seqs).buffer], batch.numSeqs * window, [numLayers, window, width, layer]);
  }

  snapKvScores(out: Tensor, requests: Tensor, numRequests: number, obs: Tensor, pool: KvPool, tables: KvTables, dims: AttentionDims): void {
    if (numRequests === 0) return;
    const [o, r, ob, p] = [gpu(out), gpu(requests), gpu(obs), gpuPool(pool)];
    this.#ctx.checkLive();
    const req = shadowI32(r, "snapKvScores");
    const bases = new Uint32Array(numRequests);
    let words = 0;
    for (let i = 0; i < numRequests; i++) {
      bases[i] = words;
      words += req[i * SNAP_FIELDS + SNAP_NUM_GLOBAL] * 2 + req[i * SNAP_FIELDS + SNAP_NUM_RING];
    }
    const [, , window, width] = ob.shape as [number, number, number, number];
    deviceWrites(o);
    const scratch = this.#ctx.mem.scratchFor(words * 4 + 16);
    const layersPerPart = dims.numLayers / p.numGroups;
    p.parts.forEach((part, g) => {
      if (p.numGroups > 1 && !Array.from({ length: numRequests }, (_, i) => Math.floor(req[i * SNAP_FIELDS + SNAP_LAYER] / layersPerPart)).includes(g)) return;
      this.#ctx.rt.dispatch(
        snapKvKernel(p.kvDType),
        [o.buffer, r.buffer, ob.buffer, part.buffer, gpu(tables.blockTables).buffer, scratch],
        numRequests,
        [numRequests, dims.numLayers, dims.numHeads, dims.numKvHeads, dims.headDim, window, width, tables.rowStride],
        null,
        [bases, Uint32Array.of(g * layersPerPart, (g + 1) * layersPerPart, part.firstPage)],
      );
    });
  }
}
