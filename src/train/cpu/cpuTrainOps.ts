/**
 * @module train/cpu/cpuTrainOps
 *
 * The gate trainer's ops (train/trainOps.ts) on the CPU: WebAssembly SIMD
 * kernels (train/wasm/) for everything that scales with the model or T^2,
 * TypeScript loops for what is O(T) or O(T d). Synchronous and single
 * threaded: samples run in parallel on worker threads instead.
 */
import type { RopeTable, WeightData } from "../../backends/backend.js";
import { decodeFloats } from "../../util/floats.js";
import type { TrainKernels } from "../wasm/trainKernels.js";
import type { AttentionDims, GateActivations, GateDims, GateLayerOffsets, TBuf, TMatrix, TrainOps } from "../trainOps.js";
import { attentionBackward, attentionForward } from "./cpuAttention.js";
import { gateBackward, gateForward } from "./cpuGate.js";
import { CpuMemory, type CpuBuf, type CpuMatrix } from "./cpuMemory.js";

const ptr = (b: TBuf) => (b as CpuBuf).ptr;

export class CpuTrainOps implements TrainOps {
  readonly description: string;
  readonly mem: CpuMemory;

  constructor(readonly kernels: TrainKernels) {
    this.mem = new CpuMemory(kernels);
    this.description = `cpu (wasm ${kernels.variant === "relaxed" ? "relaxed SIMD" : "SIMD"}, 1 thread per sample)`;
  }

  get #x() {
    return this.kernels.exports;
  }

  alloc(numel: number, label: string): TBuf {
    return this.mem.alloc(numel, label);
  }
  free(b: TBuf): void {
    this.mem.free(b);
  }
  write(b: TBuf, data: Float32Array, offset = 0): void {
    if (offset + data.length > b.numel) throw new RangeError(`write to ${b.label}: ${data.length} floats at ${offset} overflow its ${b.numel}`);
    this.mem.f32(b, data.length, offset).set(data);
  }
  async read(b: TBuf, numel = b.numel): Promise<Float32Array> {
    return this.mem.f32(b, numel).slice();
  }
  fill(b: TBuf, value: number, numel = b.numel): void {
    this.mem.f32(b, numel).fill(value);
  }
  uploadMatrix(data: WeightData, label: string): TMatrix {
    return this.mem.uploadMatrix(data, label);
  }
  freeMatrix(m: TMatrix): void {
    this.mem.freeMatrix(m);
  }

  add(x: TBuf, y: TBuf, n: number): void {
    this.#x.addRange(ptr(x), ptr(y), 0, n);
  }
  axpy(y: TBuf, x: TBuf, alpha: number, n: number): void {
    this.#x.axpyRange(ptr(y), ptr(x), alpha, 0, n);
  }
  copy(dst: TBuf, src: TBuf, n: number): void {
    const buf = new Float32Array(this.kernels.memory.buffer);
    buf.copyWithin(ptr(dst) / 4, ptr(src) / 4, ptr(src) / 4 + n);
  }

  embed(out: TBuf, table: TMatrix, ids: Int32Array): void {
    const m = table as CpuMatrix;
    const H = m.cols;
    const o = this.mem.f32(out, ids.length * H);
    const bytes = new Uint8Array(this.kernels.memory.buffer);
    const elt = m.dtype === "bf16" ? 2 : 4;
    ids.forEach((id, t) => {
      if (!(id >= 0 && id < m.rows)) throw new RangeError(`embed: token id ${id} out of range [0, ${m.rows})`);
      o.set(decodeFloats(bytes, m.ptr + id * H * elt, H, m.dtype), t * H);
    });
  }

  matmul(out: TBuf, x: TBuf, w: TMatrix, bias: TBuf | null, rows: number): void {
    const m = w as CpuMatrix;
    const fn = m.dtype === "bf16" ? this.#x.matmulBf16 : this.#x.matmulF32;
    fn(ptr(out), ptr(x), m.ptr, bias ? ptr(bias) : 0, m.rows, m.cols, 0, rows, 0, m.rows);
  }

  matmulInputGrad(dx: TBuf, dy: TBuf, w: TMatrix, rows: number, accumulate: boolean): void {
    const m = w as CpuMatrix;
    const fn = m.dtype === "bf16" ? this.#x.matmulBf16 : this.#x.matmulF32;
    // dy · W = dy · (W^T)^T: the forward kernel on the transposed copy
    const target = accumulate ? this.mem.alloc(rows * m.cols, "dx") : (dx as CpuBuf);
    fn(target.ptr, ptr(dy), m.ptrT, 0, m.cols, m.rows, 0, rows, 0, m.cols);
    if (accumulate) {
      this.#x.addRange(ptr(dx), target.ptr, 0, rows * m.cols);
      this.mem.free(target);
    }
  }

  rmsNorm(out: TBuf, x: TBuf, weight: TBuf, rows: number, dim: number, eps: number): void {
    this.#x.rmsNormRows(ptr(out), ptr(x), ptr(weight), dim, eps, 0, rows);
  }

  rmsNormBackward(dx: TBuf, dy: TBuf, x: TBuf, weight: TBuf, rows: number, dim: number, eps: number, accumulate: boolean, dWeight: TBuf | null): void {
    this.#x.rmsNormBackwardRows(ptr(dx), ptr(dy), ptr(x), ptr(weight), dWeight ? ptr(dWeight) : 0, dim, eps, accumulate ? 1 : 0, 0, rows);
  }

  ropeAngles(T: number, table: RopeTable, inverse: boolean): TBuf {
    const b = this.mem.alloc(T * table.invFreq.length * 2, inverse ? "rope angles (inverse)" : "rope angles");
    this.writeRopeAngles(b, T, table, inverse, 0);
    return b;
  }

  writeRopeAngles(b: TBuf, T: number, table: RopeTable, inverse: boolean, offset: number): void {
    const half = table.invFreq.length;
    const out = this.mem.f32(b, T * 2 * half);
    for (let t = 0; t < T; t++) {
      for (let i = 0; i < half; i++) {
        // NOTE: the angle is rounded to f32 first, as transformers (and the CPU backend) compute it.
        const angle = Math.fround((offset + t) * table.invFreq[i]!);
        out[t * 2 * half + i] = Math.cos(angle);
        out[t * 2 * half + half + i] = inverse ? -Math.sin(angle) : Math.sin(angle);
      }
    }
  }

  rope(x: TBuf, angles: TBuf, T: number, numHeads: number, headDim: number): void {
    this.#x.ropeRows(ptr(x), ptr(angles), numHeads, headDim / 2, 0, T);
  }

  siluMul(out: TBuf, gate: TBuf, up: TBuf, n: number): void {
    this.#x.siluMulRange(ptr(out), ptr(gate), ptr(up), 0, n);
  }
  siluMulBackward(dGate: TBuf, dUp: TBuf, dy: TBuf, gate: TBuf, up: TBuf, n: number): void {
    this.#x.siluMulBackwardRange(ptr(dGate), ptr(dUp), ptr(dy), ptr(gate), ptr(up), 0, n);
  }

  attention(out: TBuf, lse: TBuf, q: TBuf, k: TBuf, v: TBuf, logG: TBuf | null, dims: AttentionDims): void {
    attentionForward(this.mem, out, lse, q, k, v, logG, dims);
  }
  attentionBackward(
    dq: TBuf, dk: TBuf, dv: TBuf, dLogG: TBuf | null, dOut: TBuf,
    q: TBuf, k: TBuf, v: TBuf, out: TBuf, lse: TBuf, logG: TBuf | null, dims: AttentionDims,
  ): void {
    attentionBackward(this.mem, dq, dk, dv, dLogG, dOut, q, k, v, out, lse, logG, dims);
  }

  gate(acts: GateActivations, kPre: TBuf, kPost: TBuf, params: TBuf, at: GateLayerOffsets, dims: GateDims): void {
    gateForward(this.mem, acts, kPre, kPost, params, at, dims);
  }
  gateBackward(
    dKPre: TBuf, dKPost: TBuf, dParams: TBuf, dLogG: TBuf,
    acts: GateActivations, kPre: TBuf, kPost: TBuf, params: TBuf, at: GateLayerOffsets, dims: GateDims,
  ): void {
    gateBackward(this.mem, dKPre, dKPost, dParams, dLogG, acts, kPre, kPost, params, at, dims);
  }

  mse(dy: TBuf, y: TBuf, target: TBuf, n: number, scale: number, stats: TBuf, slot: number): void {
    const d = this.mem.f32(dy, n), ys = this.mem.f32(y, n), ts = this.mem.f32(target, n);
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const diff = ys[i]! - ts[i]!;
      sum += diff * diff;
      d[i] = (scale * 2 * diff) / n;
    }
    this.mem.f32(stats)[slot] = sum / n;
  }

  sparsity(dLogG: TBuf, g: TBuf, T: number, numKvHeads: number, window: number, weight: number, stats: TBuf, slot: number): void {
    const d = this.mem.f32(dLogG, numKvHeads * T), gs = this.mem.f32(g, numKvHeads * T);
    let sum = 0;
    for (let h = 0; h < numKvHeads; h++) {
      for (let s = 0; s < T; s++) {
        const o = Math.min(1, window / (T - s)), gt = gs[h * T + s]!;
        sum += o + (1 - o) * (1 - (gt - 1) * (gt - 1));
        d[h * T + s] += weight * (1 - o) * -2 * (gt - 1) * gt;
      }
    }
    this.mem.f32(stats)[slot] += sum;
  }

  countAbove(g: TBuf, n: number, tau: number, stats: TBuf, slot: number): void {
    const gs = this.mem.f32(g, n);
    // NOTE: tau in f32, as the engine's admission compares (docs/design.md §3)
    const t32 = Math.fround(tau);
    let count = 0;
    for (let i = 0; i < n; i++) if (gs[i]! > t32) count++;
    this.mem.f32(stats)[slot] += count;
  }
}
