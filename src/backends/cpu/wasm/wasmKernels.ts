/**
 * @module backends/cpu/wasm/wasmKernels
 *
 * The fast CpuKernels: WebAssembly SIMD kernels (assembly/) on one shared
 * memory, each call split across a KernelThreadPool. Platform-neutral: worker
 * threads come from an injected factory (src/platform/node/ has Node's).
 */
import { ModelTooLargeError } from "../../../errors.js";
import { GATE_NORM_EPS } from "../../../gate/gateMath.js";
import type { KvDType } from "../../backend.js";
import type { CpuKernels, GateShape, WeightDType } from "../kernels.js";
import type { PagedAttentionParams, PagedAttentionPointers } from "../pagedAttention.js";
import { KernelHeap } from "../kernelHeap.js";
import { planMatmul } from "./chunks.js";
import {
  ARGS, CONTROL_BYTES, OP, OP_ADD, OP_GATE, OP_MATMUL_BF16, OP_MATMUL_F32, OP_RMS_NORM, OP_ROPE, OP_SILU_MUL, OP_WRITE_SLOTS,
  KV_DTYPE_CODE, SCRATCH_BASE, SCRATCH_STRIDE,
} from "./controlBlock.js";
import { KernelThreadPool, type KernelWorkerFactory, type KernelWorkerHandle } from "./threadPool.js";
import { compileKernelModule, createKernelMemory, instantiateKernels, resolveKernelVariant, WASM_PAGE_BYTES, type KernelExports, type KernelVariant } from "./wasmModule.js";
import { WasmPagedAttention } from "./wasmPagedAttention.js";

export interface WasmKernelsOptions {
  /** Threads to split each call across, the caller's included (default 1 without a worker factory). */
  readonly numThreads?: number;
  /** Initial memory size in bytes (default 16 MiB). */
  readonly initialBytes?: number;
  /** Most the memory may grow to, in bytes (default 4 GiB; less where the runtime refuses to reserve it). */
  readonly maxBytes?: number;
  /** Starts the numThreads - 1 worker threads; required when numThreads > 1. */
  readonly workerFactory?: KernelWorkerFactory;
  /** Which build of the kernels to run (default "auto": relaxed SIMD where the runtime has it). */
  readonly variant?: KernelVariant | "auto";
}

const ALIGN = 64;
/** Per-thread attention scratch: row state (m, l, acc[headDim]) for a task's rows plus a key block's scores. */
const SCRATCH_BYTES = 256 * 1024;
/** Below this many multiply-adds a matmul runs on the calling thread alone: waking workers costs more. */
const MIN_PARALLEL_MACS = 1 << 16;
/** Below this many floats a light op (norm, SiLU, add, RoPE) runs on the calling thread alone. */
const MIN_PARALLEL_FLOATS = 1 << 14;
/** Shares per thread of a light op: they are uniform, two let a late thread hand half over. */
const LIGHT_CHUNKS_PER_THREAD = 2;
/** Gate tokens per chunk at least: one tile of the fused kernel (assembly/gate.ts). */
const MIN_GATE_TOKENS = 16;

class WasmKernels implements CpuKernels {
  readonly numThreads: number;
  readonly description: string;
  readonly maxBytes: number;
  readonly #memory: WebAssembly.Memory;
  readonly #pool: KernelThreadPool;
  readonly #exports: KernelExports;
  readonly #paged: WasmPagedAttention;
  readonly #heap: KernelHeap;
  #disposed = false;

  constructor(memory: WebAssembly.Memory, exports: KernelExports, pool: KernelThreadPool, heap: KernelHeap, variant: KernelVariant, maxBytes: number) {
    this.description = `wasm ${variant === "relaxed" ? "relaxed SIMD (FMA)" : "SIMD"}, ${pool.numThreads} thread${pool.numThreads > 1 ? "s" : ""}`;
    this.#memory = memory;
    this.#exports = exports;
    this.#pool = pool;
    this.#heap = heap;
    this.maxBytes = maxBytes;
    this.numThreads = pool.numThreads;
    this.#paged = new WasmPagedAttention({
      pool, exports, scratchBytes: SCRATCH_BYTES, alloc: (n) => this.alloc(n), free: (ptr) => this.free(ptr), buffer: () => this.buffer(),
    });
  }

  buffer(): ArrayBufferLike {
    return this.#memory.buffer;
  }

  get usedBytes(): number {
    return this.#heap.top;
  }

  alloc(numBytes: number): number {
    return this.#heap.alloc(numBytes).ptr;
  }

  allocBlock(numBytes: number): { ptr: number; fresh: boolean } {
    return this.#heap.alloc(numBytes);
  }

  free(ptr: number): void {
    this.#heap.free(ptr);
  }

  matmul(out: number, x: number, w: number, wDType: WeightDType, bias: number, M: number, N: number, K: number): void {
    this.#checkLive();
    if (M === 0 || N === 0) return;
    const ctl = this.#pool.begin();
    ctl[OP] = wDType === "f32" ? OP_MATMUL_F32 : OP_MATMUL_BF16;
    ctl[ARGS] = out; ctl[ARGS + 1] = x; ctl[ARGS + 2] = w; ctl[ARGS + 3] = bias;
    ctl[ARGS + 4] = M; ctl[ARGS + 5] = N; ctl[ARGS + 6] = K;
    const numChunks = planMatmul(ctl, M, N, this.numThreads);
    this.#pool.run(numChunks, M * N * K >= MIN_PARALLEL_MACS);
  }

  rmsNorm(out: number, x: number, weight: number, rows: number, dim: number, eps: number): void {
    const ctl = this.#beginLight(OP_RMS_NORM);
    ctl[ARGS] = out; ctl[ARGS + 1] = x; ctl[ARGS + 2] = weight; ctl[ARGS + 3] = rows; ctl[ARGS + 4] = dim;
    this.#pool.ctlF32[ARGS + 5] = eps;
    this.#runLight(rows, rows * dim);
  }

  siluMul(out: number, gate: number, up: number, n: number): void {
    const ctl = this.#beginLight(OP_SILU_MUL);
    ctl[ARGS] = out; ctl[ARGS + 1] = gate; ctl[ARGS + 2] = up; ctl[ARGS + 3] = n;
    this.#runLight(n, n);
  }

  add(x: number, y: number, n: number): void {
    const ctl = this.#beginLight(OP_ADD);
    ctl[ARGS] = x; ctl[ARGS + 1] = y; ctl[ARGS + 2] = n;
    this.#runLight(n, n);
  }

  rope(x: number, cosSin: number, T: number, numHeads: number, half: number): void {
    const ctl = this.#beginLight(OP_ROPE);
    ctl[ARGS] = x; ctl[ARGS + 1] = cosSin; ctl[ARGS + 2] = T; ctl[ARGS + 3] = numHeads; ctl[ARGS + 4] = half;
    this.#runLight(T, T * numHeads * half * 2);
  }

  gateScores(scores: number, kPre: number, kPost: number, layer: number, { T, stride, H, d, E }: GateShape): void {
    this.#checkLive();
    if (T === 0) return;
    if (this.#exports.gateScratchBytes(d, E) > SCRATCH_BYTES) throw new RangeError(`gate: head dim ${d} with ${E} hidden units is too large for the thread scratch`);
    // chunks are (KV head, run of tokens): a few per thread, each at least one tile of tokens
    const tokensPerChunk = Math.max(MIN_GATE_TOKENS, Math.ceil(T / (this.numThreads * LIGHT_CHUNKS_PER_THREAD)));
    const ctl = this.#pool.begin();
    ctl[OP] = OP_GATE;
    ctl[ARGS] = scores; ctl[ARGS + 1] = kPre; ctl[ARGS + 2] = kPost; ctl[ARGS + 3] = layer;
    ctl[ARGS + 4] = T; ctl[ARGS + 5] = H; ctl[ARGS + 6] = d; ctl[ARGS + 7] = E;
    this.#pool.ctlF32[ARGS + 8] = GATE_NORM_EPS;
    ctl[ARGS + 9] = tokensPerChunk;
    ctl[ARGS + 10] = stride;
    this.#pool.run(H * Math.ceil(T / tokensPerChunk), T * H * d * E >= MIN_PARALLEL_MACS);
  }

  writeSlots(pages: number, src: number, slots: number, T: number, H: number, d: number, kvDType: KvDType, specials: number): void {
    if (T === 0) return;
    const ctl = this.#beginLight(OP_WRITE_SLOTS);
    ctl[ARGS] = pages; ctl[ARGS + 1] = src; ctl[ARGS + 2] = slots; ctl[ARGS + 3] = T; ctl[ARGS + 4] = H; ctl[ARGS + 5] = d;
    ctl[ARGS + 6] = KV_DTYPE_CODE[kvDType]; ctl[ARGS + 7] = specials;
    this.#pool.run(H, T * H * d >= MIN_PARALLEL_FLOATS);
  }

  /** WG-KV's paged attention (pagedAttention.ts's contract), split over the pool by wasmPagedAttention.ts. */
  pagedAttention(ptrs: PagedAttentionPointers, p: PagedAttentionParams, maybeYield?: () => Promise<void> | null): void | Promise<void> {
    this.#checkLive();
    return this.#paged.run(ptrs, p, maybeYield);
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#pool.dispose();
  }

  #beginLight(op: number): Int32Array {
    this.#checkLive();
    const ctl = this.#pool.begin();
    ctl[OP] = op;
    return ctl;
  }

  /** Runs a light op over `units` rows, tokens or floats that hold `floats` floats in all. */
  #runLight(units: number, floats: number): void {
    const parallel = floats >= MIN_PARALLEL_FLOATS;
    this.#pool.run(parallel ? Math.max(1, Math.min(units, this.numThreads * LIGHT_CHUNKS_PER_THREAD)) : 1, parallel);
  }

  #checkLive(): void {
    if (this.#disposed) throw new Error("wasm kernels used after dispose()");
  }
}

/**
 * The CPU backend's one memory cannot hold what was asked (a KV pool, batch or model too large for it):
 * the user's settings, said in one line with what to change.
 */
function outOfMemory(end: number, maxBytes: number, cause?: unknown): ModelTooLargeError {
  const gib = (n: number) => `${(n / 2 ** 30).toFixed(2)} GiB`;
  return new ModelTooLargeError(
    `the CPU backend's memory cannot grow to ${gib(end)} (its limit is ${gib(maxBytes)}, one WebAssembly memory${cause ? ", or the host refused" : ""}): lower --kv-memory, --max-seqs or --max-batch-tokens, or use --backend webgpu`,
    { cause },
  );
}

/** Grows the memory so that [0, end) is addressable: at least geometrically, so many small allocations grow it rarely. */
function growMemory(memory: WebAssembly.Memory, end: number, maxBytes: number): void {
  const size = memory.buffer.byteLength;
  if (end <= size) return;
  if (end > maxBytes) throw outOfMemory(end, maxBytes);
  const wanted = Math.min(maxBytes, Math.max(end, Math.min(size * 2, size + (256 << 20))));
  const pages = Math.ceil((wanted - size) / WASM_PAGE_BYTES);
  const minPages = Math.ceil((end - size) / WASM_PAGE_BYTES);
  try {
    memory.grow(pages);
  } catch {
    try {
      memory.grow(minPages);
    } catch (cause) {
      throw outOfMemory(end, maxBytes, cause);
    }
  }
}

/** Creates the wasm kernels; numThreads > 1 needs a workerFactory. */
export async function createWasmKernels(options: WasmKernelsOptions = {}): Promise<CpuKernels> {
  const numThreads = options.numThreads ?? 1;
  if (!Number.isInteger(numThreads) || numThreads < 1) throw new RangeError(`numThreads must be a positive integer, got ${numThreads}`);
  if (numThreads > 1 && !options.workerFactory) throw new Error("createWasmKernels: numThreads > 1 needs a workerFactory");
  const variant = resolveKernelVariant(options.variant);
  const module = await compileKernelModule(variant);
  const { memory, maxBytes } = createKernelMemory(options.initialBytes ?? 16 << 20, options.maxBytes ?? 4 * 2 ** 30);
  const exports = await instantiateKernels(module, memory);
  // NOTE: pointer 0 is reserved to mean "none" (e.g. no bias).
  const heap = new KernelHeap(ALIGN, (end) => growMemory(memory, end, maxBytes));
  const scratch = heap.alloc(SCRATCH_BYTES * numThreads).ptr;
  const control = new SharedArrayBuffer(CONTROL_BYTES);
  const ctl = new Int32Array(control);
  ctl[SCRATCH_BASE] = scratch;
  ctl[SCRATCH_STRIDE] = SCRATCH_BYTES;
  const workers: KernelWorkerHandle[] = [];
  try {
    for (let index = 1; index < numThreads; index++) workers.push(options.workerFactory!({ module, memory, control, index }));
    await Promise.all(workers.map((w) => w.ready));
  } catch (e) {
    for (const w of workers) w.terminate();
    throw e;
  }
  return new WasmKernels(memory, exports, new KernelThreadPool(exports, control, workers), heap, variant, maxBytes);
}
