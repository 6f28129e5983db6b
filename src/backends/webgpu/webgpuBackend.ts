/**
 * @module backends/webgpu/webgpuBackend
 *
 * The WebGPU backend (docs/design.md §5, §6): tensors are GPUBuffers (gpuTensor.ts, gpuMemory.ts), ops
 * are WGSL kernels (kernels/) recorded into one compute pass per step (gpuRuntime.ts), `read` is the one
 * round trip. Platform-neutral: it takes a GPUDevice made by the platform (platform/node/webgpu.ts
 * through the `webgpu` package, or navigator.gpu in a browser).
 *
 * Host planning: ops whose shape depends on step metadata (attention's work
 * items, RoPE's angles, Quest's and SnapKV's records) read it from the host
 * shadows of the tensors the engine wrote (gpuTensor.ts), never from the
 * device in the middle of a step.
 *
 * This class holds the backend's state and delegates the ops to files of one concept: transformerOps.ts
 * (with the fusion of decode ops), cacheOps.ts (KV pools, paged attention), policyOps.ts (gate,
 * admission, Quest, SnapKV); kernelChoice.ts picks the kernel variants.
 */
import { GpuProfiler, type KernelTime } from "./gpuProfiler.js";
import type { GateWeights } from "../../gate/gateWeights.js";
import { hostArrayFits } from "../cpu/cpuTensor.js";
import {
  DTYPE_BYTES, type AttentionBatch, type AttentionDims, type Backend, type BackendCounters, type DType, type GateHandle, type HostArray,
  type KvDType, type KvPool, type KvTables, type ReadRequest, type RopeTable, type Tensor, type WeightData,
} from "../backend.js";
import { CacheOps } from "./cacheOps.js";
import type { GpuContext, WebGpuBackendOptions } from "./gpuContext.js";
import { GpuMemory, hostView } from "./gpuMemory.js";
import { GpuRuntime, type Kernel } from "./gpuRuntime.js";
import { ERROR_MESSAGES } from "./kernelAbi.js";
import { gpu, hostWrites } from "./gpuTensor.js";
import { defaultKernels, describeKernels, sgMatrixDialect, subgroupMatrixUsable, type KernelChoice } from "./kernelChoice.js";
import { checkKernels } from "./kernelCheck.js";
import type { SgMatrixDialect } from "./kernels/matmulSgKernels.js";
import { PolicyOps } from "./policyOps.js";
import { TransformerOps } from "./transformerOps.js";

export type { WebGpuBackendOptions } from "./gpuContext.js";
export { SG_MATRIX_SPLIT_TOLERANCE, SG_MATRIX_TOLERANCE, type KernelChoice } from "./kernelChoice.js";

export class WebGpuBackend implements Backend {
  readonly name = "webgpu";
  /** A software renderer (lavapipe, SwiftShader): correct, and far slower than the CPU backend. */
  readonly software: boolean;
  readonly #adapterDescription: string;
  /** Why a feature path was turned off at creation (checkKernels), for the description. */
  #notes: string[] = [];
  readonly counters: BackendCounters = { numReads: 0, numSubmits: 0, numWrites: 0, bytesWritten: 0, bytesRead: 0, attentionMs: 0 };
  readonly #rt: GpuRuntime;
  readonly #device: GPUDevice;
  readonly #options: WebGpuBackendOptions;
  readonly #mem: GpuMemory;
  readonly #ops: TransformerOps;
  readonly #cache: CacheOps;
  readonly #policy: PolicyOps;
  #disposed = false;
  /** The kernel variants in use (see KernelChoice). */
  readonly kernels: KernelChoice;

  constructor(device: GPUDevice, options: WebGpuBackendOptions) {
    this.#device = device;
    this.#options = options;
    this.software = options.software === true;
    this.kernels = defaultKernels(options);
    this.#rt = new GpuRuntime(device);
    if (options.profile && device.features.has("timestamp-query")) this.#rt.profiler = new GpuProfiler(device);
    this.#rt.idleFor = options.idleFor ?? null;
    this.#adapterDescription = options.adapterDescription;
    device.addEventListener("uncapturederror", (e) => {
      this.#rt.deviceError ??= (e as GPUUncapturedErrorEvent).error.message;
    });
    this.#mem = new GpuMemory(device, this.#rt, options);
    const ctx: GpuContext = { device, rt: this.#rt, mem: this.#mem, kernels: this.kernels, options, checkLive: (settle) => this.#checkLive(settle) };
    this.#ops = new TransformerOps(ctx);
    this.#cache = new CacheOps(ctx);
    this.#policy = new PolicyOps(ctx);
  }

  get description(): string {
    return `WebGPU ${this.#adapterDescription}; ${describeKernels(this.kernels, this.subgroupMatrixEmulated)}${this.#notes.length ? `; ${this.#notes.join("; ")}` : ""}`;
  }

  /** Checks the feature paths chosen at creation on this device, once, and turns off any that disagrees (kernelCheck.ts). */
  async checkKernels(): Promise<void> {
    const note = await checkKernels(this, this.kernels);
    if (note) this.#notes.push(note);
  }

  // ---- memory

  availableBytes(): number { return this.#mem.availableBytes(); }

  createTensor(shape: readonly number[], dtype: DType, label: string): Tensor {
    this.#checkLive();
    return this.#mem.createTensor(shape, dtype, label);
  }

  destroyTensor(t: Tensor): void {
    this.#checkLive();
    this.#mem.destroyTensor(t);
  }

  uploadWeight(data: WeightData, kind: "matrix" | "vector"): Tensor {
    this.#checkLive();
    return this.#mem.uploadWeight(data, kind);
  }

  write(t: Tensor, data: HostArray, offset = 0): void {
    this.#checkLive();
    const g = gpu(t);
    if (!hostArrayFits(data, g.dtype)) throw new TypeError(`write to ${g.label}: a ${data.constructor.name} does not fit a ${g.dtype} tensor`);
    if (!(Number.isInteger(offset) && offset >= 0 && offset + data.length <= g.numel)) throw new RangeError(`write to ${g.label}: ${data.length} elements at ${offset} overflow its ${g.numel}`);
    this.counters.numWrites++;
    this.counters.bytesWritten += data.byteLength;
    hostWrites(g, data, offset);
    this.#mem.writeRaw(g.buffer, offset * DTYPE_BYTES[g.dtype], new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }

  submit(): void {
    this.#checkLive();
    this.counters.numSubmits++;
    this.#rt.flush();
  }

  async read(requests: readonly ReadRequest[]): Promise<HostArray[]> {
    this.#checkLive();
    const tensors = requests.map((r) => ({ t: gpu(r.tensor), n: r.numElements ?? r.tensor.numel }));
    for (const { t, n } of tensors) if (!(Number.isInteger(n) && n >= 0 && n <= t.numel)) throw new RangeError(`read of ${t.label}: ${n} elements of ${t.numel}`);
    this.counters.numReads++;
    if (this.#rt.numCommands > 0) this.counters.numSubmits++;
    const { data, error } = await this.#rt.readBack(tensors.map(({ t, n }) => ({ buffer: t.buffer, bytes: n * DTYPE_BYTES[t.dtype] })));
    const deviceError = this.#rt.deviceError;
    this.#rt.deviceError = null;
    if (deviceError) throw new Error(`WebGPU: ${deviceError.split("\n")[0]}`);
    if (error[0] !== 0) throw new RangeError((ERROR_MESSAGES[error[0]] ?? ((v: number) => `kernel error ${error[0]} (${v})`))(error[1] | 0));
    return tensors.map(({ t, n }, i) => {
      this.counters.bytesRead += n * DTYPE_BYTES[t.dtype];
      return hostView(data[i], t.dtype, n);
    });
  }

  // ---- the transformer's ops (transformerOps.ts)

  embed(out: Tensor, table: Tensor, ids: Tensor, rows: number): void {
    this.#ops.embed(out, table, ids, rows);
  }

  rmsNorm(out: Tensor, x: Tensor, weight: Tensor, rows: number, eps: number): void {
    this.#ops.rmsNorm(out, x, weight, rows, eps);
  }

  matmul(out: Tensor, x: Tensor, w: Tensor, bias: Tensor | null, rows: number): void {
    this.#ops.matmul(out, x, w, bias, rows);
  }

  rope(x: Tensor, positions: Tensor, rows: number, numHeads: number, table: RopeTable): void {
    this.#ops.rope(x, positions, rows, numHeads, table);
  }

  siluMul(out: Tensor, gate: Tensor, up: Tensor, rows: number): void {
    this.#ops.siluMul(out, gate, up, rows);
  }

  add(x: Tensor, y: Tensor, rows: number): void { this.#ops.add(x, y, rows); }

  copyRows(dst: Tensor, src: Tensor, rows: number): void { this.#ops.copyRows(dst, src, rows); }

  gatherRows(out: Tensor, x: Tensor, rowIndex: Tensor, numRows: number): void { this.#ops.gatherRows(out, x, rowIndex, numRows); }

  sample(ids: Tensor, logits: Tensor, params: Tensor, numRows: number): void { this.#ops.sample(ids, logits, params, numRows); }

  // ---- the dual cache's ops (cacheOps.ts)

  createKvPool(numPages: number, headDim: number, kvDType: KvDType, numLayers = 1): KvPool {
    return this.#cache.createKvPool(numPages, headDim, kvDType, numLayers);
  }

  destroyKvPool(pool: KvPool): void { this.#cache.destroyKvPool(pool); }

  /** Bits of K and V of pages [first, first + count) as stored (u32 words, [count, 16, wordsPerRow] each): tests and diagnostics. */
  readKvPages(pool: KvPool, first: number, count: number): Promise<{ k: Uint32Array; v: Uint32Array }> {
    return this.#cache.readKvPages(pool, first, count);
  }

  writeKv(pool: KvPool, k: Tensor, v: Tensor, slotMapping: Tensor, offset: number, rows: number): void {
    this.#cache.writeKv(pool, k, v, slotMapping, offset, rows);
  }

  copySlots(pool: KvPool, copies: Tensor, first: number, count: number): void {
    this.#cache.copySlots(pool, copies, first, count);
  }

  scatter(dst: Tensor, updates: Tensor, count: number): void { this.#cache.scatter(dst, updates, count); }

  pagedAttention(out: Tensor, q: Tensor, k: Tensor, v: Tensor, pool: KvPool, layer: number, batch: AttentionBatch, dims: AttentionDims): void {
    this.#cache.pagedAttention(out, q, k, v, pool, layer, batch, dims);
  }

  // ---- the KV policies' ops (policyOps.ts)

  uploadGate(gate: GateWeights): GateHandle { return this.#policy.uploadGate(gate); }

  gateScores(scores: Tensor, offset: number, stride: number, gate: GateHandle, layer: number, kPre: Tensor, kPost: Tensor, row0: number, numRows: number): void {
    this.#policy.gateScores(scores, offset, stride, gate, layer, kPre, kPost, row0, numRows);
  }

  admit(flags: Tensor, scores: Tensor | null, offset: number, stride: number, layer: number, batch: AttentionBatch, dims: AttentionDims, numLayers = 1): void {
    this.#policy.admit(flags, scores, offset, stride, layer, batch, dims, numLayers);
  }

  writeRingFlags(flags: Tensor, stride: number, batch: AttentionBatch, dims: AttentionDims): void { this.#policy.writeRingFlags(flags, stride, batch, dims); }

  updatePageBounds(pool: KvPool, pages: Tensor, first: number, count: number): void {
    this.#policy.updatePageBounds(pool, pages, first, count);
  }

  questSelect(q: Tensor, pool: KvPool, layer: number, batch: AttentionBatch, dims: AttentionDims): void {
    this.#policy.questSelect(q, pool, layer, batch, dims);
  }

  storeObservations(obs: Tensor, q: Tensor, layer: number, batch: AttentionBatch, dims: AttentionDims): void {
    this.#policy.storeObservations(obs, q, layer, batch, dims);
  }

  snapKvScores(out: Tensor, requests: Tensor, numRequests: number, obs: Tensor, pool: KvPool, tables: KvTables, dims: AttentionDims): void {
    this.#policy.snapKvScores(out, requests, numRequests, obs, pool, tables, dims);
  }

  /**
   * 2048 tokens a step where the tensor-core matmul runs: its 128 x 128 tiles fill the H200's 132 SMs only from
   * about 2048 rows (k/v projections of an 8B model: 25 TFLOP/s at 512 rows, 78 at 2048; matmul-f16-bench.mjs).
   */
  readonly queuesReads = true;
  get preferredStepTokens(): number | undefined {
    return this.kernels.sgMatrix && this.subgroupMatrixUsable ? 2048 : undefined;
  }

  /** Whether the subgroup-matrix tiles can run here on tensor cores (kernels.sgMatrix turns them on). */
  get subgroupMatrixUsable(): boolean {
    return subgroupMatrixUsable(this.#options);
  }

  /** How subgroup-matrix kernels compile here (kernelChoice.ts sgMatrixDialect): real, emulated, or null. */
  get subgroupMatrixDialect(): SgMatrixDialect | null {
    return sgMatrixDialect(this.#options, this.kernels);
  }

  /** What the WGSL compiler says is wrong with kernel `k`, or null (gpuRuntime.ts compileError). */
  kernelCompileError(k: Kernel): Promise<string | null> { return this.#rt.compileError(k); }

  get sharedMemoryBytes(): number { return this.#device.limits.maxComputeWorkgroupStorageSize; }

  /** Whether the subgroup-matrix tiles run here emulated (sgMatrixWgsl.ts; tests of their kernels on devices without tensor cores). */
  get subgroupMatrixEmulated(): boolean {
    return sgMatrixDialect(this.#options, this.kernels)?.syntax === "emulated";
  }

  /** Commands recorded before they are submitted mid-step (gpuRuntime.ts; 0: only at reads and writes). */
  get submitEvery(): number { return this.#rt.submitEvery; }
  /** Dispatches recorded so far (fusion tests). */
  get numDispatches(): number { return this.#rt.numDispatches; }

  set submitEvery(n: number) {
    if (!(Number.isInteger(n) && n >= 0)) throw new RangeError(`submitEvery must be a whole number >= 0, got ${n}`);
    this.#rt.submitEvery = n;
  }

  /** Whether reads idle through most of their expected wait before mapping (readPacer.ts; where the platform gave a way). */
  get paceReads(): boolean { return this.#rt.idleFor !== null; }

  set paceReads(on: boolean) {
    this.#rt.idleFor = on ? (this.#options.idleFor ?? null) : null;
  }

  /** GPU time per kernel since the last call, when the backend was made with `profile` (else null). */
  async takeProfile(): Promise<{ kernels: KernelTime[]; untimed: number } | null> {
    if (!this.#rt.profiler) return null;
    this.#rt.flush();
    return this.#rt.profiler.take();
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#mem.destroyAll();
    this.#device.destroy();
    this.#options.onDispose?.();
  }

  /**
   * Throws after dispose; records what waits for fusion first: slot copies always (an op that takes
   * them takes them before it asks), the transformer's op unless the caller may fuse with it.
   */
  #checkLive(settle = true): void {
    if (this.#disposed) throw new Error(`the ${this.name} backend was used after dispose()`);
    // NOTE: optional: the op files are made after the context that calls this
    this.#cache?.settle();
    if (settle) this.#ops.settle();
  }
}
