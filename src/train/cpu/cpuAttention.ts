/**
 * @module train/cpu/cpuAttention
 *
 * Soft-gated causal attention and its backward on the CPU: per KV head and
 * block of BLOCK query tokens, the scores of the block's G * BLOCK query rows
 * against the keys they can see ([0, i1), causal) come from the matmul
 * kernel; wasm kernels turn them into probabilities (forward), or rebuild the
 * probabilities from the saved log-normalizers and turn dP into dS (backward,
 * flash-attention style: no T x T matrix is kept between passes). Causality
 * costs half of T^2 up to one block.
 *
 * Layouts inside: a KV head's queries as [T * G, d] rows (token-major, the G
 * query heads of the group interleaved), so a block of tokens is one
 * contiguous run of rows; keys and values as [T, d] per KV head.
 */
import type { AttentionDims, TBuf } from "../trainOps.js";
import type { CpuBuf, CpuMemory } from "./cpuMemory.js";

/** Query tokens per block: G * BLOCK rows per matmul (192 for GQA 3:1). */
const BLOCK = 64;

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
    const S = s.get(BLOCK * G * T, "scores"); //     [G * BLOCK, T] (row stride: the block's key count)
    const vt = s.get(d * T, "vT"); //               [d, nk]
    swapAxes(mem, qg, q, T, Hkv, G * d);
    swapAxes(mem, kh, k, T, Hkv, d);
    swapAxes(mem, vh, v, T, Hkv, d);
    for (let h = 0; h < Hkv; h++) {
      const qh = qg.ptr + h * T * G * d * 4, kp = kh.ptr + h * T * d * 4, vp = vh.ptr + h * T * d * 4, oh = og.ptr + h * T * G * d * 4;
      const gate = logG ? ptr(logG) + h * T * 4 : 0;
      for (let i0 = 0; i0 < T; i0 += BLOCK) {
        const nk = Math.min(T, i0 + BLOCK), rows = (nk - i0) * G;
        x.matmulF32(S.ptr, qh + i0 * G * d * 4, kp, 0, nk, d, 0, rows, 0, nk);
        x.attnSoftmaxRows(S.ptr, rows, G, i0, nk, dims.scale, dims.window, gate, ptr(lse) + (h * T * G + i0 * G) * 4);
        x.transpose(vt.ptr, vp, nk, d, d, nk);
        x.matmulF32(oh + i0 * G * d * 4, S.ptr, vt.ptr, 0, d, nk, 0, rows, 0, d);
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
    const D = s.get(Hkv * T * G, "D"); //            [Hkv, T * G]   dO · O per row
    const dqg = s.get(T * G * Hkv * d, "dqg"); //    [Hkv, T * G, d]
    const dkh = s.get(T * Hkv * d, "dkh"); //        [Hkv, T, d]
    const dvh = s.get(T * Hkv * d, "dvh");
    const P = s.get(BLOCK * G * T, "P"); //          [G * BLOCK, nk]
    const dS = s.get(BLOCK * G * T, "dS"); //        [G * BLOCK, nk]
    const tr = s.get(BLOCK * G * T, "blockT"); //    [nk, G * BLOCK]  dS^T, then P^T
    const kt = s.get(d * T, "kT"); //               [d, nk]
    const rowsT = s.get(d * BLOCK * G, "rowsT"); //  [d, G * BLOCK]  the block's q^T, then dO^T
    const tmp = s.get(T * d, "tmp"); //             [nk, d]
    swapAxes(mem, qg, q, T, Hkv, G * d);
    swapAxes(mem, dog, dOut, T, Hkv, G * d);
    swapAxes(mem, kh, k, T, Hkv, d);
    swapAxes(mem, vh, v, T, Hkv, d);
    {
      // D = rowwise dO · O (softmax's backward needs it once per row); og goes into dqg's place first
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
      for (let i0 = 0; i0 < T; i0 += BLOCK) {
        const nk = Math.min(T, i0 + BLOCK), rows = (nk - i0) * G;
        const qb = qh + i0 * G * d * 4, dob = doh + i0 * G * d * 4;
        // P again, from the scores and the saved log-normalizers
        x.matmulF32(P.ptr, qb, kp, 0, nk, d, 0, rows, 0, nk);
        x.attnProbsRows(P.ptr, rows, G, i0, nk, dims.scale, dims.window, gate, ptr(lse) + (h * T * G + i0 * G) * 4);
        // dP = dO v^T, then dS = P (dP - D) in place (and the gate's share)
        x.matmulF32(dS.ptr, dob, vp, 0, nk, d, 0, rows, 0, nk);
        x.attnScoreGradRows(P.ptr, dS.ptr, rows, G, i0, nk, dims.window, D.ptr + (h * T * G + i0 * G) * 4, dGate);
        // dQ (block) = dS k: unscaled here, scaled once at the end
        x.transpose(kt.ptr, kp, nk, d, d, nk);
        x.matmulF32(dqh + i0 * G * d * 4, dS.ptr, kt.ptr, 0, d, nk, 0, rows, 0, d);
        // dK[0, nk) += scale dS^T q
        x.transpose(tr.ptr, dS.ptr, rows, nk, nk, rows);
        x.transpose(rowsT.ptr, qb, rows, d, d, rows);
        x.matmulF32(tmp.ptr, tr.ptr, rowsT.ptr, 0, d, rows, 0, nk, 0, d);
        x.axpyRange(dkp, tmp.ptr, dims.scale, 0, nk * d);
        // dV[0, nk) += P^T dO
        x.transpose(tr.ptr, P.ptr, rows, nk, nk, rows);
        x.transpose(rowsT.ptr, dob, rows, d, d, rows);
        x.matmulF32(tmp.ptr, tr.ptr, rowsT.ptr, 0, d, rows, 0, nk, 0, d);
        x.addRange(dvp, tmp.ptr, 0, nk * d);
      }
    }
    const dqv = mem.f32(dqg);
    for (let i = 0; i < dqv.length; i++) dqv[i] *= dims.scale;
    swapAxes(mem, dq, dqg, Hkv, T, G * d);
    swapAxes(mem, dk, dkh, Hkv, T, d);
    swapAxes(mem, dv, dvh, Hkv, T, d);
  } finally {
    s.dispose();
  }
}
