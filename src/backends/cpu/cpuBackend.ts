/**
 * @module backends/cpu/cpuBackend
 *
 * The CPU backend: tensors in the kernels' linear memory, the heavy ops
 * (matmul, attention) in CpuKernels, the light elementwise ones in plain
 * TypeScript over views of that memory.
 */
import type { Backend, DType, KvLayerStore, RopeTable, Tensor, WeightData } from "../backend.js";
import type { CpuKernels } from "./kernels.js";

/** A CPU tensor: a pointer into the kernels' memory plus its shape. */
export class CpuTensor implements Tensor {
  readonly numel: number;
  constructor(
    readonly ptr: number,
    readonly shape: readonly number[],
    readonly dtype: DType,
  ) {
    this.numel = shape.reduce((a, b) => a * b, 1);
  }
}

function cpu(t: Tensor): CpuTensor {
  if (!(t instanceof CpuTensor)) throw new Error("tensor does not belong to the CPU backend");
  return t;
}

export class CpuBackend implements Backend {
  readonly name: string;
  constructor(readonly kernels: CpuKernels, name = "cpu") {
    this.name = name;
  }

  #f32(t: CpuTensor, numel = t.numel): Float32Array {
    return new Float32Array(this.kernels.buffer(), t.ptr, numel);
  }

  uploadWeight(data: WeightData, kind: "matrix" | "vector"): Tensor {
    const numel = data.shape.reduce((a, b) => a * b, 1);
    if (data.dtype === "BF16" && kind === "matrix") {
      const t = new CpuTensor(this.kernels.alloc(numel * 2), data.shape, "bf16");
      new Uint8Array(this.kernels.buffer(), t.ptr, numel * 2).set(data.bytes);
      return t;
    }
    const t = new CpuTensor(this.kernels.alloc(numel * 4), data.shape, "f32");
    decodeToF32(data, this.#f32(t));
    return t;
  }

  createTensor(shape: readonly number[]): Tensor {
    const numel = shape.reduce((a, b) => a * b, 1);
    const t = new CpuTensor(this.kernels.alloc(numel * 4), shape, "f32");
    this.#f32(t).fill(0);
    return t;
  }

  async read(t: Tensor, numElements?: number): Promise<Float32Array> {
    const c = cpu(t);
    return this.#f32(c, numElements ?? c.numel).slice();
  }

  embed(out: Tensor, table: Tensor, ids: Int32Array): void {
    const o = cpu(out);
    const tab = cpu(table);
    const [, hidden] = tab.shape as [number, number];
    const dst = this.#f32(o, ids.length * hidden);
    if (tab.dtype === "f32") {
      const src = this.#f32(tab);
      for (let t = 0; t < ids.length; t++) dst.set(src.subarray(ids[t] * hidden, (ids[t] + 1) * hidden), t * hidden);
      return;
    }
    const src = new Uint16Array(this.kernels.buffer(), tab.ptr, tab.numel);
    const bits = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
    for (let t = 0; t < ids.length; t++) {
      const row = ids[t] * hidden;
      for (let i = 0; i < hidden; i++) bits[t * hidden + i] = src[row + i] << 16;
    }
  }

  rmsNorm(out: Tensor, x: Tensor, weight: Tensor, rows: number, eps: number): void {
    const w = this.#f32(cpu(weight));
    const dim = w.length;
    const xs = this.#f32(cpu(x), rows * dim);
    const os = this.#f32(cpu(out), rows * dim);
    for (let r = 0; r < rows; r++) {
      const base = r * dim;
      let sumSq = 0;
      for (let i = 0; i < dim; i++) sumSq += xs[base + i] * xs[base + i];
      // NOTE: HF computes mean(x^2) in f32 and multiplies by rsqrt; fround keeps us on the same side.
      const inv = Math.fround(1 / Math.sqrt(Math.fround(Math.fround(sumSq) / dim) + eps));
      for (let i = 0; i < dim; i++) os[base + i] = w[i] * Math.fround(xs[base + i] * inv);
    }
  }

  matmul(out: Tensor, x: Tensor, w: Tensor, bias: Tensor | null, numTokens: number): void {
    const wt = cpu(w);
    const [N, K] = wt.shape as [number, number];
    this.kernels.matmul(cpu(out).ptr, cpu(x).ptr, wt.ptr, wt.dtype, bias ? cpu(bias).ptr : 0, numTokens, N, K);
  }

  rope(x: Tensor, table: RopeTable, numTokens: number, numHeads: number, startPos: number): void {
    const half = table.invFreq.length;
    const dim = half * 2;
    const xs = this.#f32(cpu(x), numTokens * numHeads * dim);
    const cos = new Float32Array(half);
    const sin = new Float32Array(half);
    for (let t = 0; t < numTokens; t++) {
      const pos = startPos + t;
      for (let i = 0; i < half; i++) {
        // NOTE: the angle is rounded to f32 first, as transformers computes it.
        const angle = Math.fround(pos * table.invFreq[i]);
        cos[i] = Math.cos(angle);
        sin[i] = Math.sin(angle);
      }
      for (let h = 0; h < numHeads; h++) {
        const base = (t * numHeads + h) * dim;
        for (let i = 0; i < half; i++) {
          const a = xs[base + i];
          const b = xs[base + half + i];
          xs[base + i] = a * cos[i] - b * sin[i];
          xs[base + half + i] = b * cos[i] + a * sin[i];
        }
      }
    }
  }

  siluMul(out: Tensor, gate: Tensor, up: Tensor, numTokens: number): void {
    const o = cpu(out);
    const n = (o.numel / o.shape[0]) * numTokens;
    const os = this.#f32(o, n);
    const gs = this.#f32(cpu(gate), n);
    const us = this.#f32(cpu(up), n);
    for (let i = 0; i < n; i++) {
      const g = gs[i];
      os[i] = (g / (1 + Math.exp(-g))) * us[i];
    }
  }

  copyRow(out: Tensor, x: Tensor, row: number): void {
    const xt = cpu(x);
    const width = xt.numel / xt.shape[0];
    this.#f32(cpu(out), width).set(this.#f32(xt).subarray(row * width, (row + 1) * width));
  }

  addInPlace(x: Tensor, y: Tensor, numTokens: number): void {
    const xt = cpu(x);
    const n = (xt.numel / xt.shape[0]) * numTokens;
    const xs = this.#f32(xt, n);
    const ys = this.#f32(cpu(y), n);
    for (let i = 0; i < n; i++) xs[i] += ys[i];
  }

  createKvStore(numKvHeads: number, capacity: number, headDim: number): KvLayerStore {
    return {
      k: this.createTensor([numKvHeads, capacity, headDim]),
      v: this.createTensor([numKvHeads, capacity, headDim]),
      capacity,
    };
  }

  writeKv(store: KvLayerStore, k: Tensor, v: Tensor, numTokens: number, startPos: number): void {
    const [numKvHeads, capacity, headDim] = store.k.shape as [number, number, number];
    for (const [src, dst] of [
      [cpu(k), cpu(store.k)],
      [cpu(v), cpu(store.v)],
    ] as const) {
      const s = this.#f32(src, numTokens * numKvHeads * headDim);
      const d = this.#f32(dst);
      for (let t = 0; t < numTokens; t++) {
        for (let h = 0; h < numKvHeads; h++) {
          const from = (t * numKvHeads + h) * headDim;
          d.set(s.subarray(from, from + headDim), (h * capacity + startPos + t) * headDim);
        }
      }
    }
  }

  attention(out: Tensor, q: Tensor, store: KvLayerStore, numTokens: number, startPos: number, numHeads: number): void {
    const [numKvHeads, capacity, headDim] = store.k.shape as [number, number, number];
    this.kernels.attention(cpu(out).ptr, cpu(q).ptr, cpu(store.k).ptr, cpu(store.v).ptr, {
      numQueries: numTokens,
      qPos0: startPos,
      numHeads,
      numKvHeads,
      headDim,
      kvCapacity: capacity,
      scale: 1 / Math.sqrt(headDim),
    });
  }

  dispose(): void {
    this.kernels.dispose();
  }
}

/** Converts stored little-endian F32/F16/BF16 bytes to f32. */
export function decodeToF32(data: WeightData, out: Float32Array): void {
  const { bytes } = data;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = out.length;
  if (data.dtype === "F32") {
    for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
  } else if (data.dtype === "BF16") {
    const bits = new Uint32Array(out.buffer, out.byteOffset, n);
    for (let i = 0; i < n; i++) bits[i] = view.getUint16(i * 2, true) << 16;
  } else {
    for (let i = 0; i < n; i++) out[i] = f16ToF32(view.getUint16(i * 2, true));
  }
}

/** IEEE half to float, including subnormals, infinities and NaN. */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}
