/**
 * @module train/cpu/cpuAttention
 *
 * Soft-gated causal attention and its backward on the CPU: per KV head and
 * block of BLOCK query tokens, the scores of the block's G * BLOCK query rows
 * against the keys they can see ([0, i1), causal) come from a matrix product
 * (wasm/assembly/gemm.ts, whose leading dimensions let a block read a prefix
 * of the keys); wasm kernels turn them into probabilities (forward), or
 * rebuild the probabilities from the saved log-normalizers and turn dP into
 * dS (backward, flash-attention style: no T x T matrix is kept between
 * passes). Causality costs half of T^2 up to one block.
 *
 * Layouts inside: a KV head's queries as [T * G, d] rows (token-major, the G
 * query heads of the group interleaved), so a block of tokens is one
 * contiguous run of rows; keys and values as [T, d] per KV head.
 */
import type { AttentionDims, TBuf } from "../trainOps.js";
import type { CpuBuf, CpuMemory } from "./cpuMemory.js";

/** Query tokens per block: G * BLOCK rows per matmul (192 for GQA 3:1). */
const BLOCK = 64;

/**
 * Row stride for n columns read down the rows (transposed keys and values, score blocks): a multiple
 * of 4 floats that is not a multiple of a large power of two, since a column block read down rows
 * 2^k floats apart falls into a few cache sets and thrashes L1.
 */
const paddedStride = (n: number) => ((n + 3) & ~3) + 20;

/** dst [B, A, C] = src [A, B, C]: between [T, heads, ...] and [heads, T, ...]. */
export function swapAxes(mem: CpuMemory, dst: TBuf, src: TBuf, A: number, B: number, C: number): void {
  const s = mem.f32(src, A * B * C), d = mem.f32(dst, A * B * C);
  for (let a = 0; a < A; a++) for (let b = 0; b < B; b++) d.set(s.subarray((a * B + b) * C, (a * B + b + 1) * C), (b * A + a) * C);
}

interface Layout {
  readonly T: number;
  readonly Hkv: number;
  readonly G: number;
  readonly d: number;
}

function layout(dims: AttentionDims): Layout {
  const { T, numHeads, numKvHeads: Hkv, headDim: d } = dims;
  if (numHeads % Hkv !== 0) throw new RangeError(`attention: ${numHeads} query heads is not a multiple of ${Hkv} KV heads`);
  return { T, Hkv, G: numHeads / Hkv, d };
}

/** Buffers in the per-KV-head layouts; freed together. */
class Scratch {
  readonly #mem: CpuMemory;
  readonly #bufs: CpuBuf[] = [];
  constructor(mem: CpuMemory) {
    this.#mem = mem;
  }
  get(numel: number, label: string): CpuBuf {
    const b = this.#mem.alloc(numel, label);
    this.#bufs.push(b);
    return b;
  }
  dispose(): void {
    for (const b of this.#bufs) this.#mem.free(b);
  }
}

const ptr = (b: TBuf) => (b as CpuBuf).ptr;

export function attentionForward(mem: CpuMemory, out: TBuf, lse: TBuf, q: TBuf, k: TBuf, v: TBuf, logG: TBuf | null, dims: AttentionDims): void {
  const { T, Hkv, G, d } = layout(dims);
  const x = mem.kernels.exports;
  const s = new Scratch(mem);
  try {
    const qg = s.get(T * G * Hkv * d, "qg"); //      [Hkv, T * G, d]
    const kh = s.get(T * Hkv * d, "kh"); //          [Hkv, T, d]
    const vh = s.get(T * Hkv * d, "vh");
    const og = s.get(T * G * Hkv * d, "og"); //      [Hkv, T * G, d]
    const ld = paddedStride(T);
    const kt = s.get(d * ld, "kT"); //              [d, T]  one KV head's keys, transposed (row stride ld)
    const S = s.get(BLOCK * G * ld, "scores"); //    [G * BLOCK, nk] (row stride ls)
    swapAxes(mem, qg, q, T, Hkv, G * d);
    swapAxes(mem, kh, k, T, Hkv, d);
    swapAxes(mem, vh, v, T, Hkv, d);
    for (let h = 0; h < Hkv; h++) {
      const qh = qg.ptr + h * T * G * d * 4, kp = kh.ptr + h * T * d * 4, vp = vh.ptr + h * T * d * 4, oh = og.ptr + h * T * G * d * 4;
      const gate = logG ? ptr(logG) + h * T * 4 : 0;
      x.transpose(kt.ptr, kp, T, d, d, ld);
      for (let i0 = 0; i0 < T; i0 += BLOCK) {
        const nk = Math.min(T, i0 + BLOCK), rows = (nk - i0) * G, ls = paddedStride(nk);
        x.gemmNN(S.ptr, ls, qh + i0 * G * d * 4, d, kt.ptr, ld, rows, nk, d, 1, 0);
        x.attnSoftmaxRows(S.ptr, ls, rows, G, i0, nk, dims.scale, dims.window, gate, ptr(lse) + (h * T * G + i0 * G) * 4);
        x.gemmNN(oh + i0 * G * d * 4, d, S.ptr, ls, vp, d, rows, d, nk, 1, 0);
      }
    }
    swapAxes(mem, out, og, Hkv, T, G * d);
  } finally {
    s.dispose();
  }
}

export function attentionBackward(
  mem: CpuMemory, dq: TBuf, dk: TBuf, dv: TBuf, dLogG: TBuf | null, dOut: TBuf,
  q: TBuf, k: TBuf, v: TBuf, out: TBuf, lse: TBuf, logG: TBuf | null, dims: AttentionDims,
): void {
  const { T, Hkv, G, d } = layout(dims);
  const x = mem.kernels.exports;
  const s = new Scratch(mem);
  try {
    const qg = s.get(T * G * Hkv * d, "qg"); //      [Hkv, T * G, d]
    const dog = s.get(T * G * Hkv * d, "dOg"); //    [Hkv, T * G, d]
    const kh = s.get(T * Hkv * d, "kh"); //          [Hkv, T, d]
    const vh = s.get(T * Hkv * d, "vh");
    const ld = paddedStride(T);
    const kt = s.get(d * ld, "kT"); //              [d, T]  one KV head's keys, transposed (row stride ld)
    const vt = s.get(d * ld, "vT"); //              [d, T]  and values
    const D = s.get(Hkv * T * G, "D"); //            [Hkv, T * G]   dO · O per row
    const dqg = s.get(T * G * Hkv * d, "dqg"); //    [Hkv, T * G, d]
    const dkh = s.get(T * Hkv * d, "dkh"); //        [Hkv, T, d]
    const dvh = s.get(T * Hkv * d, "dvh");
    const P = s.get(BLOCK * G * ld, "P"); //         [G * BLOCK, nk] (row stride ls)
    const dS = s.get(BLOCK * G * ld, "dS"); //       [G * BLOCK, nk] (row stride ls)
    swapAxes(mem, qg, q, T, Hkv, G * d);
    swapAxes(mem, dog, dOut, T, Hkv, G * d);
    swapAxes(mem, kh, k, T, Hkv, d);
    swapAxes(mem, vh, v, T, Hkv, d);
    {
      // D = rowwise dO · O (softmax's backward needs it once per row); O goes into dqg's place first
      swapAxes(mem, dqg, out, T, Hkv, G * d);
      const o = mem.f32(dqg), g = mem.f32(dog), dd = mem.f32(D);
      for (let r = 0; r < Hkv * T * G; r++) {
        let acc = 0;
        for (let i = r * d; i < (r + 1) * d; i++) acc += o[i]! * g[i]!;
        dd[r] = acc;
      }
    }
    if (dLogG) mem.f32(dLogG, Hkv * T).fill(0);
    for (let h = 0; h < Hkv; h++) {
      const qh = qg.ptr + h * T * G * d * 4, doh = dog.ptr + h * T * G * d * 4, dqh = dqg.ptr + h * T * G * d * 4;
      const kp = kh.ptr + h * T * d * 4, vp = vh.ptr + h * T * d * 4, dkp = dkh.ptr + h * T * d * 4, dvp = dvh.ptr + h * T * d * 4;
      const gate = logG ? ptr(logG) + h * T * 4 : 0;
      const dGate = dLogG && logG ? ptr(dLogG) + h * T * 4 : 0;
      x.transpose(kt.ptr, kp, T, d, d, ld);
      x.transpose(vt.ptr, vp, T, d, d, ld);
      for (let i0 = 0; i0 < T; i0 += BLOCK) {
        const nk = Math.min(T, i0 + BLOCK), rows = (nk - i0) * G, ls = paddedStride(nk);
        const qb = qh + i0 * G * d * 4, dob = doh + i0 * G * d * 4;
        // P again, from the scores and the saved log-normalizers
        x.gemmNN(P.ptr, ls, qb, d, kt.ptr, ld, rows, nk, d, 1, 0);
        x.attnProbsRows(P.ptr, ls, rows, G, i0, nk, dims.scale, dims.window, gate, ptr(lse) + (h * T * G + i0 * G) * 4);
        // dP = dO v^T, then dS = P (dP - D) in place (and the gate's share)
        x.gemmNN(dS.ptr, ls, dob, d, vt.ptr, ld, rows, nk, d, 1, 0);
        x.attnScoreGradRows(P.ptr, dS.ptr, ls, rows, G, i0, nk, dims.window, D.ptr + (h * T * G + i0 * G) * 4, dGate);
        // dQ (block) = scale dS k;  dK[0, nk) += scale dS^T q;  dV[0, nk) += P^T dO
        x.gemmNN(dqh + i0 * G * d * 4, d, dS.ptr, ls, kp, d, rows, d, nk, dims.scale, 0);
        x.gemmTN(dkp, d, dS.ptr, ls, qb, d, nk, d, rows, dims.scale, 1);
        x.gemmTN(dvp, d, P.ptr, ls, dob, d, nk, d, rows, 1, 1);
      }
    }
    swapAxes(mem, dq, dqg, Hkv, T, G * d);
    swapAxes(mem, dk, dkh, Hkv, T, d);
    swapAxes(mem, dv, dvh, Hkv, T, d);
  } finally {
    s.dispose();
  }
}
