/** Kept out of availableBytes for activations, logits and scratch (a 1B model's step of 512 tokens: about 100 MiB). */
const STEP_RESERVE_BYTES = 256 * 2 ** 20;

/**
 * @module backends/cpu/cpuBackend
 *
 * The CPU backend: tensors in the kernels' linear memory, ops recorded as
 * commands on a queue (commandQueue.ts) that runs them in slices when a step
 * is submitted, and `read` as the one synchronisation. Arithmetic lives in
 * CpuKernels (kernels.ts); the dual cache's ops in cpuKvOps.ts, the policies'
 * in cpuPolicyOps.ts.
 */
import type { GateWeights } from "../../gate/gateWeights.js";
import { decodeFloats, type FloatDType } from "../../util/floats.js";
import {
  DTYPE_BYTES, numElements, type AttentionBatch, type AttentionDims, type Backend, type BackendCounters, type DType, type GateHandle,
  type HostArray, type KvDType, type KvPool, type KvTables, type ReadRequest, type RopeTable, type Tensor, type WeightData,
} from "../backend.js";
import { SAMPLE_FIELDS } from "../stepLayout.js";
import { CommandQueue, type Command } from "./commandQueue.js";
import { cpuGateScores, createCpuGate, type CpuGate } from "./cpuGate.js";
import { CpuKvOps, cpuPool } from "./cpuKvOps.js";
import { CpuPolicyOps } from "./cpuPolicyOps.js";
import { cpu, CpuTensor, hostArrayFits, TensorViews } from "./cpuTensor.js";
import type { CpuKernels } from "./kernels.js";
import { RopeAngles } from "./ropeAngles.js";
import { sampleRows } from "./sampleRow.js";

export { CpuTensor };

const FLOAT_DTYPE: Readonly<Record<WeightData["dtype"], FloatDType>> = { F32: "f32", F16: "f16", BF16: "bf16" };

export class CpuBackend implements Backend {
  readonly name: string;
  readonly description: string;
  readonly counters: BackendCounters = { numReads: 0, numSubmits: 0, numWrites: 0, bytesWritten: 0, bytesRead: 0, attentionMs: 0 };
  readonly #queue = new CommandQueue();
  readonly #views: TensorViews;
  readonly #kv: CpuKvOps;
  readonly #policy: CpuPolicyOps;
  readonly #angles: RopeAngles;
  #disposed = false;

  /** @param hostFreeBytes the memory the host has free (the platform knows it; Infinity where it cannot tell) */
  constructor(readonly kernels: CpuKernels, name = "cpu", readonly hostFreeBytes: () => number = () => Infinity) {
    this.name = name;
    this.description = kernels.description;
    this.#views = new TensorViews(kernels);
    this.#kv = new CpuKvOps(kernels, this.#views);
    this.#policy = new CpuPolicyOps(this.#kv);
    this.#angles = new RopeAngles(kernels);
  }

  /** What a KV pool may take: the memory left, less what a step's buffers need beside it (kvMemory "1" still runs). */
  availableBytes(): number {
    return Math.max(0, Math.min(this.kernels.maxBytes - this.kernels.usedBytes, this.hostFreeBytes()) - STEP_RESERVE_BYTES);
  }

  // ---- memory

  createTensor(shape: readonly number[], dtype: DType, label: string): Tensor {
    this.#checkLive();
    const numel = numElements(shape);
    if (!Number.isSafeInteger(numel) || numel < 0 || shape.some((n) => !Number.isInteger(n) || n < 0)) throw new RangeError(`createTensor ${label}: bad shape [${shape}]`);
    const bytes = numel * DTYPE_BYTES[dtype];
    const { ptr, fresh } = this.kernels.allocBlock(bytes);
    if (!fresh) new Uint8Array(this.kernels.buffer(), ptr, bytes).fill(0);
    return new CpuTensor(ptr, shape, dtype, label);
  }

  destroyTensor(t: Tensor): void {
    const c = cpu(t);
    c.kill();
    this.#record(() => this.kernels.free(c.ptr));
  }

  uploadWeight(data: WeightData, kind: "matrix" | "vector"): Tensor {
    const numel = numElements(data.shape);
    const label = `weight [${data.shape}]`;
    if (data.dtype === "BF16" && kind === "matrix") {
      const t = cpu(this.createTensor(data.shape, "bf16", label));
      new Uint8Array(this.kernels.buffer(), t.ptr, numel * 2).set(data.bytes);
      return t;
    }
    const t = cpu(this.createTensor(data.shape, "f32", label));
    this.#views.f32(t).set(decodeFloats(data.bytes, 0, numel, FLOAT_DTYPE[data.dtype]));
    return t;
  }

  write(t: Tensor, data: HostArray, offset = 0): void {
    const c = cpu(t);
    if (!hostArrayFits(data, c.dtype)) throw new TypeError(`write to ${c.label}: a ${data.constructor.name} does not fit a ${c.dtype} tensor`);
    if (!(Number.isInteger(offset) && offset >= 0 && offset + data.length <= c.numel)) throw new RangeError(`write to ${c.label}: ${data.length} elements at ${offset} overflow its ${c.numel}`);
    const copy = data.slice();
    this.counters.numWrites++;
    this.counters.bytesWritten += copy.byteLength;
    this.#record(() => this.#views.host(c, copy.length, offset).set(copy as never));
  }

  submit(): void {
    this.counters.numSubmits++;
    this.#queue.submit();
  }

  async read(requests: readonly ReadRequest[]): Promise<HostArray[]> {
    this.#checkLive();
    const tensors = requests.map((r) => ({ t: cpu(r.tensor), n: r.numElements ?? r.tensor.numel }));
    for (const { t, n } of tensors) if (!(n >= 0 && n <= t.numel)) throw new RangeError(`read of ${t.label}: ${n} elements of ${t.numel}`);
    this.counters.numReads++;
    if (this.#queue.numRecorded > 0) this.counters.numSubmits++;
    await this.#queue.sync();
    return tensors.map(({ t, n }) => {
      const out = this.#views.host(t, n).slice();
      this.counters.bytesRead += out.byteLength;
      return out;
    });
  }

  // ---- the transformer's ops

  embed(out: Tensor, table: Tensor, ids: Tensor, rows: number): void {
    const [o, tab, idt] = [cpu(out), cpu(table), cpu(ids)];
    const [vocab, hidden] = tab.shape as [number, number];
    this.#record(() => {
      const dst = this.#views.f32(o, rows * hidden);
      const index = this.#views.i32(idt, rows);
      for (let r = 0; r < rows; r++) if (!(index[r] >= 0 && index[r] < vocab)) throw new RangeError(`embed: token id ${index[r]} outside the vocabulary of ${vocab}`);
      if (tab.dtype === "f32") {
        const src = this.#views.f32(tab);
        for (let r = 0; r < rows; r++) dst.set(src.subarray(index[r] * hidden, (index[r] + 1) * hidden), r * hidden);
        return;
      }
      const src = new Uint16Array(this.kernels.buffer(), tab.ptr, tab.numel);
      const bits = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
      for (let r = 0; r < rows; r++) {
        const row = index[r] * hidden;
        for (let i = 0; i < hidden; i++) bits[r * hidden + i] = src[row + i] << 16;
      }
    });
  }

  rmsNorm(out: Tensor, x: Tensor, weight: Tensor, rows: number, eps: number): void {
    const [o, xt, w] = [cpu(out), cpu(x), cpu(weight)];
    this.#record(() => this.kernels.rmsNorm(o.ptr, xt.ptr, w.ptr, rows, w.numel, eps));
  }

  matmul(out: Tensor, x: Tensor, w: Tensor, bias: Tensor | null, rows: number): void {
    const [o, xt, wt, b] = [cpu(out), cpu(x), cpu(w), bias ? cpu(bias) : null];
    const [N, K] = wt.shape as [number, number];
    if (rows * K > xt.numel || rows * N > o.numel) throw new RangeError(`matmul: ${rows} rows of [${K}] -> [${N}] overflow ${xt.label} or ${o.label}`);
    this.#record(() => this.kernels.matmul(o.ptr, xt.ptr, wt.ptr, wt.dtype === "bf16" ? "bf16" : "f32", b ? b.ptr : 0, rows, N, K));
  }

  rope(x: Tensor, positions: Tensor, rows: number, numHeads: number, table: RopeTable): void {
    const [xt, pos] = [cpu(x), cpu(positions)];
    this.#record(() => {
      const cosSin = this.#angles.get(table, this.#views.i32(pos, rows));
      this.kernels.rope(xt.ptr, cosSin, rows, numHeads, table.invFreq.length);
    });
  }

  siluMul(out: Tensor, gate: Tensor, up: Tensor, rows: number): void {
    const [o, g, u] = [cpu(out), cpu(gate), cpu(up)];
    this.#record(() => this.kernels.siluMul(o.ptr, g.ptr, u.ptr, (o.numel / o.shape[0]) * rows));
  }

  add(x: Tensor, y: Tensor, rows: number): void {
    const [xt, yt] = [cpu(x), cpu(y)];
    this.#record(() => this.kernels.add(xt.ptr, yt.ptr, (xt.numel / xt.shape[0]) * rows));
  }

  copyRows(dst: Tensor, src: Tensor, rows: number): void {
    const [d, s] = [cpu(dst), cpu(src)];
    const width = d.numel / d.shape[0];
    this.#record(() => this.#views.f32(d, width * rows).set(this.#views.f32(s, width * rows)));
  }

  gatherRows(out: Tensor, x: Tensor, rowIndex: Tensor, numRows: number): void {
    const [o, xt, idx] = [cpu(out), cpu(x), cpu(rowIndex)];
    const width = xt.numel / xt.shape[0];
    this.#record(() => {
      const src = this.#views.f32(xt);
      const dst = this.#views.f32(o);
      const index = this.#views.i32(idx, numRows);
      for (let i = 0; i < numRows; i++) dst.set(src.subarray(index[i] * width, (index[i] + 1) * width), i * width);
    });
  }

  // ---- the dual cache's ops

  createKvPool(numPages: number, headDim: number, kvDType: KvDType): KvPool {
    this.#checkLive();
    return this.#kv.createPool(numPages, headDim, kvDType);
  }

  destroyKvPool(pool: KvPool): void {
    const p = cpuPool(pool);
    this.#record(() => this.#kv.destroyPool(p));
  }

  writeKv(pool: KvPool, k: Tensor, v: Tensor, slotMapping: Tensor, offset: number, rows: number): void {
    const [p, kt, vt, m] = [cpuPool(pool), cpu(k), cpu(v), cpu(slotMapping)];
    this.#record(() => this.#kv.writeKv(p, kt, vt, m, offset, rows));
  }

  copySlots(pool: KvPool, copies: Tensor, first: number, count: number): void {
    if (count === 0) return;
    const [p, c] = [cpuPool(pool), cpu(copies)];
    this.#record(() => this.#kv.copySlots(p, c, first, count));
  }

  scatter(dst: Tensor, updates: Tensor, count: number): void {
    if (count === 0) return;
    const [d, u] = [cpu(dst), cpu(updates)];
    this.#record(() => this.#kv.scatter(d, u, count));
  }

  pagedAttention(out: Tensor, q: Tensor, k: Tensor, v: Tensor, pool: KvPool, layer: number, batch: AttentionBatch, dims: AttentionDims): void {
    const [o, qt, kt, vt, p] = [cpu(out), cpu(q), cpu(k), cpu(v), cpuPool(pool)];
    this.#record(async (clock) => {
      // NOTE: the time spent yielding inside is not attention's
      let t0 = performance.now();
      const pending = this.#kv.attention(o, qt, kt, vt, p, layer, batch, dims, () => {
        this.counters.attentionMs += performance.now() - t0;
        const turn = clock.maybeYield();
        return turn ? turn.then(() => void (t0 = performance.now())) : ((t0 = performance.now()), null);
      });
      if (pending) await pending;
      this.counters.attentionMs += performance.now() - t0;
    });
  }

  uploadGate(gate: GateWeights): GateHandle {
    this.#checkLive();
    return createCpuGate(this.kernels, gate);
  }

  gateScores(scores: Tensor, offset: number, stride: number, gate: GateHandle, layer: number, kPre: Tensor, kPost: Tensor, row0: number, numRows: number): void {
    if (numRows === 0) return;
    const [s, pre, post] = [cpu(scores), cpu(kPre), cpu(kPost)];
    this.#record(() => cpuGateScores(this.kernels, gate as CpuGate, layer, s, offset, stride, pre, post, row0, numRows));
  }

  admit(flags: Tensor, scores: Tensor | null, offset: number, stride: number, layer: number, batch: AttentionBatch, dims: AttentionDims, numLayers = 1): void {
    const [f, s] = [cpu(flags), scores ? cpu(scores) : null];
    this.#record(() => {
      for (let i = 0; i < numLayers; i++) this.#policy.admit(f, s, offset + i * dims.numKvHeads * stride, stride, layer + i, batch, dims);
    });
  }

  writeRingFlags(flags: Tensor, stride: number, batch: AttentionBatch, dims: AttentionDims): void {
    const f = cpu(flags);
    this.#record(() => this.#policy.writeRingFlags(f, stride, batch, dims));
  }

  updatePageBounds(pool: KvPool, pages: Tensor, first: number, count: number): void {
    if (count === 0) return;
    const [p, list] = [cpuPool(pool), cpu(pages)];
    this.#record(() => this.#policy.updatePageBounds(p, list, first, count));
  }

  questSelect(q: Tensor, pool: KvPool, layer: number, batch: AttentionBatch, dims: AttentionDims): void {
    const [qt, p] = [cpu(q), cpuPool(pool)];
    this.#record(() => this.#policy.questSelect(qt, p, layer, batch, dims));
  }

  storeObservations(obs: Tensor, q: Tensor, layer: number, batch: AttentionBatch, dims: AttentionDims): void {
    const [o, qt] = [cpu(obs), cpu(q)];
    this.#record(() => this.#policy.storeObservations(o, qt, layer, batch, dims));
  }

  snapKvScores(out: Tensor, requests: Tensor, numRequests: number, obs: Tensor, pool: KvPool, tables: KvTables, dims: AttentionDims): void {
    if (numRequests === 0) return;
    const [o, r, ob, p] = [cpu(out), cpu(requests), cpu(obs), cpuPool(pool)];
    this.#record(() => this.#policy.snapKvScores(o, r, numRequests, ob, p, tables, dims));
  }

  sample(ids: Tensor, logits: Tensor, params: Tensor, numRows: number): void {
    const [out, l, p] = [cpu(ids), cpu(logits), cpu(params)];
    const vocab = l.shape[l.shape.length - 1];
    this.#record(() => sampleRows(this.#views.i32(out, numRows), this.#views.f32(l), vocab, this.#views.f32(p, numRows * SAMPLE_FIELDS), numRows));
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.kernels.dispose();
  }

  #record(command: Command): void {
    this.#checkLive();
    this.#queue.record(command);
  }

  #checkLive(): void {
    if (this.#disposed) throw new Error(`the ${this.name} backend was used after dispose()`);
  }
}
