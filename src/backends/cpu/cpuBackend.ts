/**
 * @module backends/cpu/cpuBackend
 *
 * The CPU backend: tensors in the kernels' linear memory, every op with
 * arithmetic in CpuKernels (kernels.ts); here only copies, the embedding
 * lookup and RoPE's angle table.
 */
import type { GateWeights } from "../../gate/gateWeights.js";
import { f16BitsToF32 } from "../../util/halfFloat.js";
import type { Backend, DType, GateHandle, HostBlockTables, KvDType, KvPool, RopeTable, Tensor, WeightData } from "../backend.js";
import { CpuKvOps, type CpuKvPool } from "./cpuKvOps.js";
import { cpuGateScores, createCpuGate, type CpuGate } from "./cpuGate.js";
import { RopeAngles } from "./ropeAngles.js";
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
  readonly description: string;
  readonly #kv: CpuKvOps;
  readonly #angles: RopeAngles;
  constructor(readonly kernels: CpuKernels, name = "cpu") {
    this.name = name;
    this.description = kernels.description;
    this.#kv = new CpuKvOps(kernels);
    this.#angles = new RopeAngles(kernels);
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
    const w = cpu(weight);
    this.kernels.rmsNorm(cpu(out).ptr, cpu(x).ptr, w.ptr, rows, w.numel, eps);
  }

  matmul(out: Tensor, x: Tensor, w: Tensor, bias: Tensor | null, numTokens: number): void {
    const wt = cpu(w);
    const [N, K] = wt.shape as [number, number];
    this.kernels.matmul(cpu(out).ptr, cpu(x).ptr, wt.ptr, wt.dtype, bias ? cpu(bias).ptr : 0, numTokens, N, K);
  }

  rope(x: Tensor, table: RopeTable, numTokens: number, numHeads: number, startPos: number): void {
    const cosSin = this.#angles.get(table, startPos, numTokens);
    this.kernels.rope(cpu(x).ptr, cosSin, numTokens, numHeads, table.invFreq.length);
  }

  siluMul(out: Tensor, gate: Tensor, up: Tensor, numTokens: number): void {
    const o = cpu(out);
    this.kernels.siluMul(o.ptr, cpu(gate).ptr, cpu(up).ptr, (o.numel / o.shape[0]) * numTokens);
  }

  copyRow(out: Tensor, x: Tensor, row: number): void {
    const xt = cpu(x);
    const width = xt.numel / xt.shape[0];
    this.#f32(cpu(out), width).set(this.#f32(xt).subarray(row * width, (row + 1) * width));
  }

  addInPlace(x: Tensor, y: Tensor, numTokens: number): void {
    const xt = cpu(x);
    this.kernels.add(xt.ptr, cpu(y).ptr, (xt.numel / xt.shape[0]) * numTokens);
  }

  copyRows(dst: Tensor, src: Tensor, numTokens: number): void {
    const d = cpu(dst);
    const width = d.numel / d.shape[0];
    this.#f32(d, width * numTokens).set(this.#f32(cpu(src), width * numTokens));
  }

  createKvPool(numPages: number, headDim: number, kvDType: KvDType): KvPool {
    return this.#kv.createPool(numPages, headDim, kvDType);
  }

  writeSlots(pool: KvPool, k: Tensor, v: Tensor, slotMapping: Int32Array, numTokens: number): void {
    this.#kv.writeSlots(pool as CpuKvPool, cpu(k), cpu(v), slotMapping, numTokens);
  }

  copySlots(pool: KvPool, from: Int32Array, to: Int32Array): void {
    this.#kv.copySlots(pool as CpuKvPool, from, to);
  }

  async readKeys(pool: KvPool, slots: Int32Array): Promise<Float32Array> {
    return this.#kv.readKeys(pool as CpuKvPool, slots);
  }

  pagedAttention(out: Tensor, q: Tensor, k: Tensor, v: Tensor, pool: KvPool, tables: HostBlockTables, numTokens: number, startPos: number, numHeads: number, window: number): void {
    this.#kv.attention(cpu(out), cpu(q), cpu(k), cpu(v), pool as CpuKvPool, tables, numTokens, startPos, numHeads, window);
  }

  uploadGate(gate: GateWeights): GateHandle {
    return createCpuGate(this.kernels, gate);
  }

  async gateScores(gate: GateHandle, layer: number, kPre: Tensor, kPost: Tensor, numTokens: number): Promise<Float32Array> {
    return cpuGateScores(this.kernels, gate as CpuGate, layer, cpu(kPre).ptr, cpu(kPost).ptr, numTokens);
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
    for (let i = 0; i < n; i++) out[i] = f16BitsToF32(view.getUint16(i * 2, true));
  }
}

