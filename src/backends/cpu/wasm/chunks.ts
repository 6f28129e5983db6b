/**
 * @module backends/cpu/wasm/chunks
 *
 * How each kernel call is cut into chunks that threads claim (threadPool.ts),
 * and how one chunk is run. Args sit in the control block from slot ARGS on:
 *
 *   matmul:    out x w bias M N K splitOverN
 *   paged attention (task or reduce): descriptor (pagedAttentionPlan.ts; the tasks are already ordered costliest first), first entry
 *   rmsNorm:   out x weight rows dim eps(f32)
 *   siluMul:   out gate up n
 *   add:       x y n
 *   rope:      x cosSin T numHeads half
 *   gate:      scores kPre kPost layer T H d E eps(f32) tokensPerChunk stride (scores of token t, head h at h * stride + t)
 *   writeSlots: pages src slots T H d kvDType(0 f32, 1 f16, 2 bf16) specials
 */
import type { KernelExports } from "./wasmModule.js";
import {
  ARGS, NUM_CHUNKS, OP, OP_ADD, OP_GATE, OP_MATMUL_BF16, OP_MATMUL_F32, OP_PAGED_ATTENTION, OP_PAGED_REDUCE, OP_RMS_NORM,
  OP_ROPE, OP_SILU_MUL, OP_WRITE_SLOTS, SCRATCH_BASE, SCRATCH_STRIDE,
} from "./controlBlock.js";

/** Runs chunk `chunk` of the call in the control block on thread `thread` (whose scratch it may use). */
export function runChunk(exports: KernelExports, ctl: Int32Array, ctlF32: Float32Array, chunk: number, thread: number): void {
  const a = ARGS, numChunks = ctl[NUM_CHUNKS];
  const op = ctl[OP];
  if (op === OP_MATMUL_F32 || op === OP_MATMUL_BF16) {
    const M = ctl[a + 4], N = ctl[a + 5], K = ctl[a + 6];
    let m0 = 0, m1 = M, n0 = 0, n1 = N;
    if (ctl[a + 7]) [n0, n1] = share(N, chunk, numChunks, 4);
    else [m0, m1] = share(M, chunk, numChunks, 4);
    if (m0 >= m1 || n0 >= n1) return;
    const fn = op === OP_MATMUL_F32 ? exports.matmulF32 : exports.matmulBf16;
    fn(ctl[a], ctl[a + 1], ctl[a + 2], ctl[a + 3], N, K, m0, m1, n0, n1);
  } else if (op === OP_PAGED_ATTENTION) {
    exports.pagedAttentionTask(ctl[a], ctl[a + 1] + chunk, ctl[SCRATCH_BASE] + thread * ctl[SCRATCH_STRIDE]);
  } else if (op === OP_PAGED_REDUCE) {
    exports.pagedAttentionReduce(ctl[a], ctl[a + 1] + chunk);
  } else if (op === OP_RMS_NORM) {
    const [r0, r1] = share(ctl[a + 3], chunk, numChunks, 1);
    exports.rmsNormRows(ctl[a], ctl[a + 1], ctl[a + 2], ctl[a + 4], ctlF32[a + 5], r0, r1);
  } else if (op === OP_SILU_MUL) {
    const [i0, i1] = share(ctl[a + 3], chunk, numChunks, ELEMENT_ALIGN);
    exports.siluMulRange(ctl[a], ctl[a + 1], ctl[a + 2], i0, i1);
  } else if (op === OP_ADD) {
    const [i0, i1] = share(ctl[a + 2], chunk, numChunks, ELEMENT_ALIGN);
    exports.addRange(ctl[a], ctl[a + 1], i0, i1);
  } else if (op === OP_ROPE) {
    const [t0, t1] = share(ctl[a + 2], chunk, numChunks, 1);
    exports.ropeRows(ctl[a], ctl[a + 1], ctl[a + 3], ctl[a + 4], t0, t1);
  } else if (op === OP_GATE) {
    const T = ctl[a + 4], H = ctl[a + 5], tokensPerChunk = ctl[a + 9];
    const h = chunk % H, t0 = Math.floor(chunk / H) * tokensPerChunk;
    exports.gateScoresTask(
      ctl[a], ctl[a + 1], ctl[a + 2], ctl[a + 3], ctl[a + 10], H, ctl[a + 6], ctl[a + 7], ctlF32[a + 8], h, t0, Math.min(T, t0 + tokensPerChunk),
      ctl[SCRATCH_BASE] + thread * ctl[SCRATCH_STRIDE],
    );
  } else if (op === OP_WRITE_SLOTS) {
    exports.writeSlots(ctl[a], ctl[a + 1], ctl[a + 2], ctl[a + 3], ctl[a + 4], ctl[a + 5], ctl[a + 6], ctl[a + 7], chunk, chunk + 1);
  } else {
    throw new Error(`unknown kernel op ${op}`);
  }
}

/** Element shares start on 64-byte boundaries, so no two threads write one cache line. */
const ELEMENT_ALIGN = 16;

/** [begin, end) of chunk `chunk` of `numChunks` near-equal shares of `total`, cut at multiples of `align`. */
function share(total: number, chunk: number, numChunks: number, align: number): [number, number] {
  const units = Math.ceil(total / align);
  const begin = Math.floor((units * chunk) / numChunks) * align;
  const end = Math.floor((units * (chunk + 1)) / numChunks) * align;
  return [Math.min(begin, total), Math.min(end, total)];
}

/** Chunks per thread for a matmul: a few, so that a slow thread hands its share to the others. */
const MATMUL_CHUNKS_PER_THREAD = 4;

/** Writes a matmul's split into the args; returns its number of chunks. */
export function planMatmul(ctl: Int32Array, M: number, N: number, numThreads: number): number {
  const wanted = numThreads * MATMUL_CHUNKS_PER_THREAD;
  const nBlocks = Math.ceil(N / 4), mBlocks = Math.ceil(M / 4);
  // Split the rows of w unless there are too few of them (large M, small N).
  const splitOverN = nBlocks >= wanted || nBlocks >= mBlocks;
  ctl[ARGS + 7] = splitOverN ? 1 : 0;
  return Math.max(1, Math.min(wanted, splitOverN ? nBlocks : mBlocks));
}
