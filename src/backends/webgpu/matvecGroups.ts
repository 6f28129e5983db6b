/**
 * @module backends/webgpu/matvecGroups
 *
 * Decode's matvecs as transformerOps.ts fuses them (docs/design.md §5): the
 * waiting matvecs of one x, recorded as one dispatch (matvecKernels.ts' forms),
 * with what they took from the ops around them: the rmsNorm that made x
 * (prologue), the residual add of their output, the RoPE of q and k
 * (epilogues); and whether a fusion fits the device's limits.
 */
import type { RopeTable } from "../backend.js";
import { F, type GpuContext } from "./gpuContext.js";
import type { GpuTensor } from "./gpuTensor.js";
import { matvecVectorised, type MatvecVariant } from "./kernels/matmulKernels.js";
import { matvecFamilyKernel, matvecScratchBytes, matvecWorkgroups, teamRows } from "./kernels/matvecKernels.js";
import { normRounds } from "./kernels/transformerKernels.js";

/** An rmsNorm out = norm(x) * w whose output only matvecs read next. */
export interface PendingNorm {
  readonly kind: "norm";
  readonly x: GpuTensor;
  readonly out: GpuTensor;
  readonly w: GpuTensor;
  readonly rows: number;
  readonly eps: number;
}

export interface PendingMatvec {
  readonly kind: "matvec";
  /** The matvecs' input (with `norm`: the norm's output, which the dispatch computes in its prologue). */
  readonly x: GpuTensor;
  readonly rows: number;
  readonly K: number;
  readonly wType: "f32" | "bf16";
  readonly items: { out: GpuTensor; w: GpuTensor; bias: GpuTensor | null }[];
  readonly norm: PendingNorm | null;
  /** The tensor an add after the one matvec adds its output to (the residual stream). */
  residual: GpuTensor | null;
  /** RoPE of the first `segs` outputs (q, then k), rotated as they are stored. */
  rope: { readonly positions: GpuTensor; readonly table: RopeTable; readonly half: number; readonly angles: GPUBuffer; segs: number } | null;
}

export class MatvecGroups {
  readonly #ctx: GpuContext;
  readonly #halves = new WeakMap<MatvecVariant, MatvecVariant>();
  /** Most matvecs one dispatch merges: each binds out, w and bias, beside x and the args (SwiftShader in Chromium allows 10 storage bindings). */
  readonly maxItems: number;

  constructor(ctx: GpuContext) {
    this.#ctx = ctx;
    this.maxItems = Math.min(3, Math.floor((ctx.device.limits.maxStorageBuffersPerShaderStage - 2) / 3));
  }

  /** Whether matvecs of `rows` rows of [K] fit the norm prologue's workgroup copy of x, `segments` of them its bindings. */
  normFits(rows: number, K: number, segments: number): boolean {
    return K % 8 === 0 && rows * K * 4 + matvecScratchBytes(rows) <= this.#ctx.device.limits.maxComputeWorkgroupStorageSize && this.bindingsFit(segments, 2);
  }

  /** Whether a matvec dispatch of `segments` segments and `extra` fused bindings fits the stage's storage bindings (the arguments' included). */
  bindingsFit(segments: number, extra: number): boolean {
    return 3 * segments + 2 + extra <= this.#ctx.device.limits.maxStorageBuffersPerShaderStage;
  }

  /** Whether rope(x) can rotate the next output of the waiting matvecs as they store it (transformerOps' pending matvec). */
  ropeFuses(p: PendingMatvec, x: GpuTensor, positions: GpuTensor, rows: number, numHeads: number, table: RopeTable): boolean {
    const v = this.#ctx.kernels.matvec;
    const next = p.items[p.rope?.segs ?? 0];
    const half = table.invFreq.length;
    return (
      next?.out === x &&
      next.w.shape[0] === numHeads * 2 * half &&
      p.rows === rows &&
      !p.residual &&
      (!p.rope || (p.rope.positions === positions && p.rope.table === table)) &&
      teamRows(v, matvecVectorised(p.wType, p.K)) === 1 &&
      (256 / v.tpr) % 2 === 0 &&
      this.bindingsFit(p.items.length, (p.norm ? 2 : 0) + 1)
    );
  }

  /** The variant with half the unroll (at least 1), made once per variant (not an object per dispatch). */
  #halfUnroll(v: MatvecVariant): MatvecVariant {
    let half = this.#halves.get(v);
    if (!half) this.#halves.set(v, (half = { ...v, unroll: Math.max(1, v.unroll >> 1) }));
    return half;
  }

  /** One dispatch of the waiting matvecs: their rows concatenated, or gate and up with siluMul's epilogue; with the norm before them and the add after them. */
  record(p: PendingMatvec, form: "segments" | "silu pair"): void {
    const { rows, K, wType } = p;
    const v = this.#ctx.kernels.matvec;
    const dummy = this.#ctx.mem.dummy;
    const outs = p.items.map((i) => i.out.buffer), ws = p.items.map((i) => i.w.buffer), bs = p.items.map((i) => (i.bias ? i.bias.buffer : dummy));
    const args = [rows, K, 0, p.items[0].w.shape[0]];
    for (const i of p.items) args.push(i.w.shape[0], i.bias ? 1 : 0);
    const rowCounts = form === "silu pair" ? [p.items[0].w.shape[0]] : p.items.map((i) => i.w.shape[0]);
    // NOTE: the pair's teams read two weight rows: unroll / 2 keeps a thread's loads in flight (and registers) as one row's
    const variant = form === "silu pair" && this.#ctx.kernels.matvecPairHalfUnroll ? this.#halfUnroll(v) : v;
    const vectorised = matvecVectorised(wType, K);
    const { norm, residual, rope } = p;
    const kernel = matvecFamilyKernel(wType, rows, vectorised, variant, p.items.length, form, norm ? K : 0, norm ? (this.#ctx.kernels.normHeld ? normRounds(K) : 0) : 0, residual !== null, rope ? rope.half : 0, rope ? rope.segs : 0);
    const buffers = [...outs, norm ? norm.x.buffer : p.x.buffer, ...ws, ...bs];
    if (norm) {
      buffers.push(norm.w.buffer, norm.out.buffer);
      args.push(norm.eps);
    }
    if (residual) buffers.push(residual.buffer);
    if (rope) buffers.push(rope.angles);
    this.#ctx.rt.dispatch(kernel, buffers, matvecWorkgroups(variant, vectorised, rowCounts), args, norm ? F(args.length - 1) : null);
  }
}
