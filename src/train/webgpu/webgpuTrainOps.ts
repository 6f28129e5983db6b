/**
 * @module train/webgpu/webgpuTrainOps
 *
 * The gate trainer's ops (train/trainOps.ts) on WebGPU (docs/design.md §8):
 * WGSL kernels recorded into the inference backend's runtime
 * (backends/webgpu/gpuRuntime.ts: one compute pass, arguments in an arena,
 * `read` the one round trip). Reused from the inference kernels: the tiled
 * matmul (also run transposed for dy · W), embed, rmsNorm, rope, siluMul,
 * add and the gate's GELU; the rest are in this folder. Portable WGSL only
 * (f32, no f16, no subgroups), so it runs on lavapipe and in browsers;
 * correctness first, each output with one writer (no float atomics).
 * Platform-neutral: it takes a GPUDevice.
 */
import type { RopeTable, WeightData } from "../../backends/backend.js";
import { GpuRuntime, type Binding, type Kernel } from "../../backends/webgpu/gpuRuntime.js";
import { PORTABLE_TILED, tiledGroups, tiledMatmulKernel } from "../../backends/webgpu/kernels/matmulKernels.js";
import { inputGradGroups, inputGradKernel } from "./inputGradKernel.js";
import { addKernel, embedKernel, normRounds, rmsNormKernel, ropeKernel, siluMulKernel } from "../../backends/webgpu/kernels/transformerKernels.js";
import type { AttentionDims, GateActivations, GateDims, GateLayerOffsets, TBuf, TMatrix, TrainOps } from "../trainOps.js";
import { attentionDkvKernel, attentionDqKernel, rowDotKernel, rowStatsLayout } from "./attentionBackwardKernels.js";
import { attentionForwardKernel } from "./attentionForwardKernel.js";
import { axpyKernel, copyKernel, fillKernel, siluMulBackwardKernel } from "./elementwiseKernels.js";
import { gateDzKernel, gateParamGradKernel, gateScratchLayout, gateTokenBackwardKernel } from "./gateBackwardKernels.js";
import { gateForwardKernel } from "./gateForwardKernel.js";
import { countAboveKernel, mseKernel, sparsityKernel } from "./lossKernels.js";
import { rmsNormBackwardKernel, rmsNormWeightGradKernel } from "./normKernels.js";
import { GpuTrainMemory, type GpuBuf, type GpuMatrix } from "./gpuTrainMemory.js";

const F = (...indices: number[]) => new Set(indices);
const buf = (b: TBuf) => (b as GpuBuf).buffer;
const groupsOf = (n: number, per: number) => Math.ceil(n / per);

export class WebGpuTrainOps implements TrainOps {
  readonly description: string;
  readonly #rt: GpuRuntime;
  readonly #mem: GpuTrainMemory;
  /** Bound where a kernel's optional input is absent (bias, logG). */
  readonly #dummy: GpuBuf;

  readonly #onDispose: (() => void) | undefined;

  /** `adapter`: the adapter in words, for reports; `onDispose`: releases what the platform holds for the device. */
  constructor(readonly device: GPUDevice, adapter: string, onDispose?: () => void) {
    this.#onDispose = onDispose;
    this.#rt = new GpuRuntime(device);
    this.#mem = new GpuTrainMemory(this.#rt);
    this.description = `webgpu (${adapter}), samples one after another`;
    device.addEventListener("uncapturederror", (e) => {
      this.#rt.deviceError ??= (e as GPUUncapturedErrorEvent).error.message;
    });
    this.#dummy = this.#mem.alloc(4, "dummy");
  }

  /** Records a dispatch; refuses a writable buffer bound twice (WebGPU would reject the pass later, at a read far from the cause). */
  #run(k: Kernel, buffers: readonly GPUBuffer[], groups: number, args: number[], floats: ReadonlySet<number> | null = null, extra: readonly Int32Array[] = []): void {
    buffers.forEach((b, i) => {
      const j = buffers.indexOf(b);
      if (j !== i && (k.bindings[i] === "rw" || k.bindings[j] === "rw")) throw new Error(`${k.label}: ${b.label} is both an output and another operand (not supported in place)`);
    });
    this.#rt.dispatch(k, buffers as Binding[], groups, args, floats, extra);
  }

  // ---- memory

  alloc(numel: number, label: string): TBuf {
    return this.#mem.alloc(numel, label);
  }
  free(b: TBuf): void {
    this.#mem.free(b);
  }
  write(b: TBuf, data: Float32Array, offset = 0): void {
    this.#mem.write(b, data, offset);
  }
  read(b: TBuf, numel = b.numel): Promise<Float32Array> {
    return this.#mem.read(b, numel);
  }
  fill(b: TBuf, value: number, numel = b.numel): void {
    this.#run(fillKernel(), [buf(b)], groupsOf(numel, 256), [numel, value], F(1));
  }
  uploadMatrix(data: WeightData, label: string): TMatrix {
    return this.#mem.uploadMatrix(data, label);
  }
  freeMatrix(m: TMatrix): void {
    this.#mem.free(m);
  }

  // ---- elementwise

  add(x: TBuf, y: TBuf, n: number): void {
    this.#run(addKernel(), [buf(x), buf(y)], groupsOf(n, 256), [n]);
  }
  axpy(y: TBuf, x: TBuf, alpha: number, n: number): void {
    this.#run(axpyKernel(), [buf(y), buf(x)], groupsOf(n, 256), [n, alpha], F(1));
  }
  copy(dst: TBuf, src: TBuf, n: number): void {
    this.#run(copyKernel(), [buf(dst), buf(src)], groupsOf(n, 256), [n]);
  }

  // ---- the backbone (frozen)

  embed(out: TBuf, table: TMatrix, ids: Int32Array): void {
    const m = table as GpuMatrix;
    const idBuf = this.#mem.ids(ids);
    this.#run(embedKernel(), [buf(out), m.buffer, idBuf, this.#rt.errorBuffer], groupsOf(ids.length * m.cols, 256), [ids.length, m.cols, m.rows, m.dtype === "bf16" ? 1 : 0, 0, m.rows]);
    this.#mem.freeBuffer(idBuf);
  }

  matmul(out: TBuf, x: TBuf, w: TMatrix, bias: TBuf | null, rows: number): void {
    const m = w as GpuMatrix;
    // args: rows, Np, K, hasBias, Nout, n0 (the whole weight as one part)
    this.#run(tiledMatmulKernel(m.dtype, PORTABLE_TILED), [buf(out), buf(x), m.buffer, buf(bias ?? this.#dummy)], tiledGroups(PORTABLE_TILED, rows, m.rows), [rows, m.rows, m.cols, bias ? 1 : 0, m.rows, 0]);
  }

  matmulInputGrad(dx: TBuf, dy: TBuf, w: TMatrix, rows: number, accumulate: boolean): void {
    // dx [rows, cols] = dy [rows, w.rows] · w [w.rows, cols]
    const m = w as GpuMatrix;
    this.#run(inputGradKernel(m.dtype, accumulate), [buf(dx), buf(dy), m.buffer, buf(this.#dummy)], inputGradGroups(rows, m.cols), [rows, m.cols, m.rows, 0]);
  }

  rmsNorm(out: TBuf, x: TBuf, weight: TBuf, rows: number, dim: number, eps: number): void {
    const inPlace = buf(out) === buf(x);
    this.#run(rmsNormKernel(inPlace, normRounds(dim)), inPlace ? [buf(out), buf(weight)] : [buf(out), buf(x), buf(weight)], rows, [rows, dim, eps], F(2));
  }

  rmsNormBackward(dx: TBuf, dy: TBuf, x: TBuf, weight: TBuf, rows: number, dim: number, eps: number, accumulate: boolean, dWeight: TBuf | null): void {
    const rstd = dWeight ? this.#mem.alloc(rows, "rmsNorm rstd") : this.#dummy;
    this.#run(rmsNormBackwardKernel(), [buf(dx), buf(dy), buf(x), buf(weight), buf(rstd)], rows, [rows, dim, eps, accumulate ? 1 : 0, dWeight ? 1 : 0], F(2));
    if (dWeight) {
      this.#run(rmsNormWeightGradKernel(), [buf(dWeight), buf(dy), buf(x), buf(rstd)], groupsOf(dim, 64), [rows, dim]);
      this.#mem.free(rstd);
    }
  }

  ropeAngles(T: number, table: RopeTable, inverse: boolean): TBuf {
    const b = this.#mem.alloc(T * table.invFreq.length * 2, inverse ? "rope angles (inverse)" : "rope angles");
    this.writeRopeAngles(b, T, table, inverse, 0);
    return b;
  }

  writeRopeAngles(out: TBuf, T: number, table: RopeTable, inverse: boolean, offset: number): void {
    const half = table.invFreq.length;
    const cs = new Float32Array(T * 2 * half);
    for (let t = 0; t < T; t++) {
      for (let i = 0; i < half; i++) {
        // NOTE: the angle is rounded to f32 first, as transformers (and the CPU trainer) compute it
        const angle = Math.fround((offset + t) * table.invFreq[i]!);
        cs[t * 2 * half + i] = Math.cos(angle);
        cs[t * 2 * half + half + i] = inverse ? -Math.sin(angle) : Math.sin(angle);
      }
    }
    this.#mem.write(out, cs);
  }

  rope(x: TBuf, angles: TBuf, T: number, numHeads: number, headDim: number): void {
    const half = headDim / 2;
    this.#run(ropeKernel(), [buf(x), buf(angles)], groupsOf(T * numHeads * half, 256), [T, numHeads, half]);
  }

  siluMul(out: TBuf, gate: TBuf, up: TBuf, n: number): void {
    const inPlace = buf(out) === buf(gate);
    this.#run(siluMulKernel(inPlace), inPlace ? [buf(out), buf(up)] : [buf(out), buf(gate), buf(up)], groupsOf(n, 256), [n]);
  }
  siluMulBackward(dGate: TBuf, dUp: TBuf, dy: TBuf, gate: TBuf, up: TBuf, n: number): void {
    this.#run(siluMulBackwardKernel(), [buf(dGate), buf(dUp), buf(dy), buf(gate), buf(up)], groupsOf(n, 256), [n]);
  }

  // ---- soft-gated attention

  #attnArgs(dims: AttentionDims, gated: boolean): number[] {
    if (dims.numHeads % dims.numKvHeads !== 0) throw new RangeError(`attention: ${dims.numHeads} query heads is not a multiple of ${dims.numKvHeads} KV heads`);
    return [dims.T, dims.numHeads, dims.numKvHeads, dims.window, dims.scale, gated ? 1 : 0];
  }

  attention(out: TBuf, lse: TBuf, q: TBuf, k: TBuf, v: TBuf, logG: TBuf | null, dims: AttentionDims): void {
    const args = this.#attnArgs(dims, logG !== null);
    const bufs = [buf(out), buf(lse), buf(q), buf(k), buf(v), buf(logG ?? this.#dummy)];
    this.#run(attentionForwardKernel(dims.headDim), bufs, dims.T * dims.numHeads, args, F(4));
  }

  attentionBackward(
    dq: TBuf, dk: TBuf, dv: TBuf, dLogG: TBuf | null, dOut: TBuf,
    q: TBuf, k: TBuf, v: TBuf, out: TBuf, lse: TBuf, logG: TBuf | null, dims: AttentionDims,
  ): void {
    const { T, numHeads: Hq, numKvHeads: Hkv, headDim: d } = dims;
    const args = this.#attnArgs(dims, logG !== null);
    const at = rowStatsLayout(T, Hq, Hkv);
    const stats = this.#mem.alloc(at.size, "attention row stats"); // see attentionBackwardKernels.ts
    this.#rt.copy(buf(lse), 0, stats.buffer, at.lse * 4, T * Hq * 4);
    if (logG) this.#rt.copy(buf(logG), 0, stats.buffer, at.logG * 4, Hkv * T * 4);
    this.#run(rowDotKernel(), [stats.buffer, buf(dOut), buf(out)], groupsOf(T * Hq, 64), [T * Hq, d]);
    this.#run(attentionDqKernel(d), [buf(dq), stats.buffer, buf(q), buf(k), buf(v), buf(dOut)], T * Hq, args, F(4));
    this.#run(attentionDkvKernel(d), [buf(dk), buf(dv), stats.buffer, buf(q), buf(k), buf(v), buf(dOut)], T * Hkv, args, F(4));
    if (dLogG) this.#rt.copy(stats.buffer, at.dLogG * 4, buf(dLogG), 0, Hkv * T * 4);
    this.#mem.free(stats);
  }

  // ---- the write gate (trained)

  #gateArgs(at: GateLayerOffsets, dims: GateDims): number[] {
    return [dims.T, dims.numKvHeads, dims.hidden, at.preKeyNorm, at.postKeyNorm, at.w1, at.b1, at.w2, at.b2];
  }

  gate(acts: GateActivations, kPre: TBuf, kPost: TBuf, params: TBuf, at: GateLayerOffsets, dims: GateDims): void {
    const bufs = [buf(acts.x), buf(acts.a), buf(acts.g), buf(acts.logG), buf(kPre), buf(kPost), buf(params)];
    this.#run(gateForwardKernel(dims.headDim), bufs, dims.T * dims.numKvHeads, this.#gateArgs(at, dims));
  }

  gateBackward(
    dKPre: TBuf, dKPost: TBuf, dParams: TBuf, dLogG: TBuf,
    acts: GateActivations, kPre: TBuf, kPost: TBuf, params: TBuf, at: GateLayerOffsets, dims: GateDims,
  ): void {
    const { T, numKvHeads: H, headDim: d, hidden: E } = dims;
    // the token kernel holds da [E] and dx [2d] of its token in workgroup memory
    const shared = (E + 2 * d + 64) * 4;
    if (shared > this.device.limits.maxComputeWorkgroupStorageSize) throw new RangeError(`gate backward: ${E} hidden units need ${shared} bytes of workgroup memory, over the device's ${this.device.limits.maxComputeWorkgroupStorageSize}`);
    const s = gateScratchLayout(T, H, d, E);
    const scratch = this.#mem.alloc(s.size, "gate backward scratch"); // see gateBackwardKernels.ts
    const args = [...this.#gateArgs(at, dims), s.da, s.dx, s.rstd];
    this.#run(gateDzKernel(), [scratch.buffer, buf(acts.g), buf(dLogG)], groupsOf(H * T, 64), [H * T]);
    const tokenBufs = [buf(dKPre), buf(dKPost), scratch.buffer, buf(acts.a), buf(kPre), buf(kPost), buf(params)];
    this.#run(gateTokenBackwardKernel(d, E), tokenBufs, T * H, args);
    const layerSize = 2 * d + H * E * 2 * d + 2 * H * E + H;
    const paramBufs = [buf(dParams), scratch.buffer, buf(acts.a), buf(acts.x), buf(kPre), buf(kPost)];
    this.#run(gateParamGradKernel(d), paramBufs, groupsOf(layerSize, 64), [...args, layerSize]);
    this.#mem.free(scratch);
  }

  // ---- losses

  mse(dy: TBuf, y: TBuf, target: TBuf, n: number, scale: number, stats: TBuf, slot: number): void {
    const inPlace = buf(dy) === buf(y);
    this.#run(mseKernel(inPlace), inPlace ? [buf(dy), buf(target), buf(stats)] : [buf(dy), buf(y), buf(target), buf(stats)], 1, [n, scale, slot], F(1));
  }
  sparsity(dLogG: TBuf, g: TBuf, T: number, numKvHeads: number, window: number, weight: number, stats: TBuf, slot: number): void {
    this.#run(sparsityKernel(), [buf(dLogG), buf(g), buf(stats)], 1, [T, numKvHeads, window, weight, slot], F(3));
  }
  countAbove(g: TBuf, n: number, tau: number, stats: TBuf, slot: number): void {
    this.#run(countAboveKernel(), [buf(g), buf(stats)], 1, [n, tau, slot], F(1));
  }

  /** Destroys every buffer and the device. */
  dispose(): void {
    this.#mem.destroyAll();
    this.device.destroy();
    this.#onDispose?.();
  }
}
