/**
 * @module backends/webgpu/transformerOps
 *
 * The transformer's ops on the WebGPU backend (embed, rmsNorm, matmul, rope,
 * siluMul, add, row copies and gathers) and the sampling of the next
 * tokens, with the fusion of consecutive decode ops into fewer dispatches
 * (see Pending). RoPE's angles are computed on the host from the positions'
 * shadow (gpuTensor.ts).
 */
import type { RopeTable, Tensor } from "../backend.js";
import { F, type GpuContext } from "./gpuContext.js";
import { deviceWrites, gpu, shadowI32, type GpuTensor } from "./gpuTensor.js";
import { matvecKernel, matvecVectorised, tiledGroups, tiledMatmulKernel } from "./kernels/matmulKernels.js";
import { sgMatrixMatmulKernel, sgMatrixVectorised } from "./kernels/matmulSgKernels.js";
import { f16MatmulKernel } from "./kernels/matmulF16Kernels.js";
import { f16MatmulTiles, sgMatrixDialect, sgMatrixTiles } from "./kernelChoice.js";
import { F16Rows } from "./f16Rows.js";
import { MatvecGroups, type PendingMatvec, type PendingNorm } from "./matvecGroups.js";
import { matvecWorkgroups } from "./kernels/matvecKernels.js";
import { sampleKernel, SMALL_VOCAB, smallSampleKernel } from "./kernels/sampleKernels.js";
import { addKernel, addRmsNormKernel, embedKernel, gatherRowsKernel, normRounds, rmsNormKernel, ropeKernel, ropePairKernel, siluMulKernel } from "./kernels/transformerKernels.js";

/**
 * An op waiting to see whether the next one fuses with it (decode records
 * ~20 ops per layer; each dispatch costs host time): matvecs of one x merge
 * (q, k, v; gate, up and the siluMul after them) and take the rmsNorm that
 * made x as their prologue, a matvec takes the add of its output to the
 * residual stream as its epilogue, the ropes of q and k merge, and an add
 * merges with the rmsNorm of its result (prefill, where matmuls do not wait).
 */
type Pending =
  | PendingMatvec
  | PendingNorm
  | { readonly kind: "rope"; readonly positions: GpuTensor; readonly rows: number; readonly table: RopeTable; readonly half: number; readonly angles: GPUBuffer; readonly items: { x: GpuTensor; numHeads: number }[] }
  | { readonly kind: "add"; readonly x: GpuTensor; readonly y: GpuTensor; readonly rows: number };

export class TransformerOps {
  readonly #ctx: GpuContext;
  #pending: Pending | null = null;
  #angles: { buffer: GPUBuffer; table: RopeTable | null; positions: Int32Array };
  readonly #groups: MatvecGroups;
  /** The f16 copy of x that the f16-operand matmul tiles read, shared by the matmuls of one x. */
  readonly #f16Rows: F16Rows;

  constructor(ctx: GpuContext) {
    this.#ctx = ctx;
    this.#f16Rows = new F16Rows(ctx);
    this.#groups = new MatvecGroups(ctx);
    this.#angles = { buffer: ctx.mem.buffer(1 << 12, "rope angles"), table: null, positions: new Int32Array(0) };
  }

  embed(out: Tensor, table: Tensor, ids: Tensor, rows: number): void {
    const [o, tab, idt] = [gpu(out), gpu(table), gpu(ids)];
    const { rt, mem } = this.#ctx;
    this.#ctx.checkLive();
    const [vocab, hidden] = tab.shape as [number, number];
    deviceWrites(o);
    for (const part of tab.parts ?? [{ buffer: mem.bind(tab), firstRow: 0, numRows: vocab }]) {
      rt.dispatch(embedKernel(), [o.buffer, part.buffer, idt.buffer, rt.errorBuffer], Math.ceil((rows * hidden) / 256), [rows, hidden, vocab, tab.dtype === "bf16" ? 1 : 0, part.firstRow, part.numRows]);
    }
  }

  rmsNorm(out: Tensor, x: Tensor, weight: Tensor, rows: number, eps: number): void {
    const [o, xt, w] = [gpu(out), gpu(x), gpu(weight)];
    this.#ctx.checkLive(false);
    deviceWrites(o);
    const inPlace = o === xt;
    const p = this.#pending;
    if (p?.kind === "add" && p.x === xt && p.rows === rows && p.y !== o && p.y !== w) {
      this.#pending = null;
      this.#ctx.rt.dispatch(addRmsNormKernel(inPlace, this.#normRounds(w.numel)), inPlace ? [xt.buffer, p.y.buffer, w.buffer] : [xt.buffer, p.y.buffer, o.buffer, w.buffer], rows, [rows, w.numel, eps], F(2));
      return;
    }
    this.settle();
    // NOTE: a decode norm waits for the matvecs that read it (their prologue)
    if (this.#ctx.kernels.fuse && this.#ctx.kernels.fuseNormRope && !inPlace && rows <= 8 && o !== w) {
      this.#pending = { kind: "norm", x: xt, out: o, w, rows, eps };
      return;
    }
    this.#ctx.rt.dispatch(rmsNormKernel(inPlace, this.#normRounds(w.numel)), inPlace ? [o.buffer, w.buffer] : [o.buffer, xt.buffer, w.buffer], rows, [rows, w.numel, eps], F(2));
  }


  /** Rounds a norm of `dim` holds in registers (0: the loop form). */
  #normRounds(dim: number): number {
    return this.#ctx.kernels.normHeld ? normRounds(dim) : 0;
  }

  matmul(out: Tensor, x: Tensor, w: Tensor, bias: Tensor | null, rows: number): void {
    const [o, xt, wt, b] = [gpu(out), gpu(x), gpu(w), bias ? gpu(bias) : null];
    const { rt, mem, kernels: c } = this.#ctx;
    this.#ctx.checkLive(false);
    const [N, K] = wt.shape as [number, number];
    if (rows * K > xt.numel || rows * N > o.numel) throw new RangeError(`matmul: ${rows} rows of [${K}] -> [${N}] overflow ${xt.label} or ${o.label}`);
    if (o === xt) throw new Error(`matmul: out ${o.label} must not be x`);
    if (rows === 0) return;
    const wType = wt.dtype === "bf16" ? "bf16" : "f32";
    if (c.fuse && rows <= 8 && !wt.parts) {
      const p = this.#pending;
      const item = { out: o, w: wt, bias: b };
      const joins = p?.kind === "matvec" && p.x === xt && p.rows === rows && p.K === K && p.wType === wType && !p.residual && !p.rope && p.items.length < this.#groups.maxItems && !p.items.some((i) => i.out === o);
      if (joins && (!p.norm || (o !== p.norm.x && this.#groups.normFits(rows, K, p.items.length + 1)))) p.items.push(item);
      // NOTE: out must not be the norm's input, which other workgroups may still be reading
      else if (p?.kind === "norm" && p.out === xt && p.rows === rows && p.w.numel === K && o !== p.x && this.#groups.normFits(rows, K, 1)) {
        this.#pending = { kind: "matvec", x: xt, rows, K, wType, items: [item], norm: p, residual: null, rope: null };
      } else {
        this.settle();
        this.#pending = { kind: "matvec", x: xt, rows, K, wType, items: [item], norm: null, residual: null, rope: null };
      }
      deviceWrites(o);
      return;
    }
    this.settle();
    deviceWrites(o);
    for (const part of wt.parts ?? [{ buffer: mem.bind(wt), firstRow: 0, numRows: N }]) {
      const buffers = [o.buffer, xt.buffer, part.buffer, b ? b.buffer : mem.dummy];
      const args = [rows, part.numRows, K, b ? 1 : 0, N, part.firstRow];
      if (rows <= 8) {
        const vectorised = matvecVectorised(wType, K);
        rt.dispatch(matvecKernel(wType, rows, vectorised, c.matvec), buffers, matvecWorkgroups(c.matvec, vectorised, [part.numRows]), [rows, K, part.firstRow, N, part.numRows, b ? 1 : 0]);
      } else if (c.sgMatrix && rows >= c.sgMatrixMinRows) {
        const dialect = sgMatrixDialect(this.#ctx.options, c);
        if (!dialect) throw new Error("matmul: the subgroup-matrix tiles need shader-f16, which this device lacks");
        // NOTE: bf16 weights take x converted to f16 once (all parts, and the next matmuls of this x), not once per column tile
        const f16 = f16MatmulTiles(c, wType, rows, part.numRows, K);
        if (f16) {
          const x16 = this.#f16Rows.of(xt, rows, K);
          rt.dispatch(f16MatmulKernel("bf16", f16, dialect), [o.buffer, x16, part.buffer, b ? b.buffer : mem.dummy], tiledGroups(f16, rows, part.numRows), args);
        } else {
          const tiles = sgMatrixTiles(c, rows, part.numRows);
          rt.dispatch(sgMatrixMatmulKernel(wType, tiles, dialect, sgMatrixVectorised(wType, K), c.sgMatrixSplit), buffers, tiledGroups(tiles, rows, part.numRows), args);
        }
      } else {
        rt.dispatch(tiledMatmulKernel(wType, c.tiled), buffers, tiledGroups(c.tiled, rows, part.numRows), args);
      }
    }
  }

  rope(x: Tensor, positions: Tensor, rows: number, numHeads: number, table: RopeTable): void {
    const [xt, pos] = [gpu(x), gpu(positions)];
    this.#ctx.checkLive(false);
    if (rows === 0) return;
    const half = table.invFreq.length;
    const p = this.#pending;
    // NOTE: q and k rotated by the q/k/v matvecs' stores (their pending dispatch: nothing was written since)
    if (p?.kind === "matvec" && this.#ctx.kernels.fuseNormRope && this.#groups.ropeFuses(p, xt, pos, rows, numHeads, table)) {
      p.rope ??= { positions: pos, table, half, angles: this.#ropeAngles(table, shadowI32(pos, "rope").subarray(0, rows)), segs: 0 };
      p.rope.segs++;
      deviceWrites(xt);
      return;
    }
    if (p?.kind === "rope" && p.positions === pos && p.rows === rows && p.table === table && p.items[0].x !== xt) {
      // NOTE: nothing was written since the first rope (writes settle), so its angles hold
      this.#pending = null;
      deviceWrites(xt);
      const [a] = p.items;
      this.#ctx.rt.dispatch(ropePairKernel(), [a.x.buffer, xt.buffer, p.angles], Math.ceil((rows * (a.numHeads + numHeads) * half) / 256), [rows, a.numHeads, numHeads, half]);
      return;
    }
    this.settle();
    const angles = this.#ropeAngles(table, shadowI32(pos, "rope").subarray(0, rows));
    deviceWrites(xt);
    if (this.#ctx.kernels.fuse) {
      this.#pending = { kind: "rope", positions: pos, rows, table, half, angles, items: [{ x: xt, numHeads }] };
      return;
    }
    this.#ctx.rt.dispatch(ropeKernel(), [xt.buffer, angles], Math.ceil((rows * numHeads * half) / 256), [rows, numHeads, half]);
  }

  /** cos, sin f32 [rows, 2, half] of the rows' positions, as the CPU computes them; kept while the positions stay. */
  #ropeAngles(table: RopeTable, positions: Int32Array): GPUBuffer {
    const a = this.#angles;
    if (a.table === table && a.positions.length === positions.length && a.positions.every((p, i) => p === positions[i])) return a.buffer;
    const half = table.invFreq.length;
    const out = new Float32Array(positions.length * 2 * half);
    for (let t = 0; t < positions.length; t++) {
      for (let i = 0; i < half; i++) {
        // NOTE: the angle is rounded to f32 first, as transformers computes it
        const angle = Math.fround(positions[t] * table.invFreq[i]);
        out[t * 2 * half + i] = Math.cos(angle);
        out[t * 2 * half + half + i] = Math.sin(angle);
      }
    }
    const { mem } = this.#ctx;
    if (out.byteLength > a.buffer.size) {
      mem.free(a.buffer);
      a.buffer = mem.buffer(2 * out.byteLength, "rope angles");
    }
    mem.writeRaw(a.buffer, 0, new Uint8Array(out.buffer));
    a.table = table;
    a.positions = positions.slice();
    return a.buffer;
  }

  siluMul(out: Tensor, gate: Tensor, up: Tensor, rows: number): void {
    const [o, g, u] = [gpu(out), gpu(gate), gpu(up)];
    this.#ctx.checkLive(false);
    const p = this.#pending;
    if (p?.kind === "matvec" && p.items.length === 2 && p.rows === rows && o === g && p.items[0].out === g && p.items[1].out === u && p.items[0].w.shape[0] === p.items[1].w.shape[0]) {
      this.#pending = null;
      this.#groups.record(p, "silu pair");
      return;
    }
    this.settle();
    const n = (o.numel / o.shape[0]) * rows;
    deviceWrites(o);
    const inPlace = o === g;
    this.#ctx.rt.dispatch(siluMulKernel(inPlace), inPlace ? [o.buffer, u.buffer] : [o.buffer, g.buffer, u.buffer], Math.ceil(n / 256), [n]);
  }

  add(x: Tensor, y: Tensor, rows: number): void {
    const [xt, yt] = [gpu(x), gpu(y)];
    this.#ctx.checkLive(false);
    deviceWrites(xt);
    const p = this.#pending;
    // NOTE: x must be neither the matvec's input nor its output, which other workgroups read or write
    if (p?.kind === "matvec" && this.#ctx.kernels.fuseNormRope && p.items.length === 1 && p.items[0].out === yt && p.rows === rows && !p.norm && !p.residual && !p.rope && xt !== p.x && xt !== yt && this.#groups.bindingsFit(1, 1)) {
      p.residual = xt;
      return;
    }
    this.settle();
    this.#pending = { kind: "add", x: xt, y: yt, rows };
    if (!this.#ctx.kernels.fuse) this.settle();
  }

  copyRows(dst: Tensor, src: Tensor, rows: number): void {
    const [d, s] = [gpu(dst), gpu(src)];
    this.#ctx.checkLive();
    deviceWrites(d);
    this.#ctx.rt.copy(s.buffer, 0, d.buffer, 0, (d.numel / d.shape[0]) * rows * 4);
  }

  gatherRows(out: Tensor, x: Tensor, rowIndex: Tensor, numRows: number): void {
    const [o, xt, idx] = [gpu(out), gpu(x), gpu(rowIndex)];
    this.#ctx.checkLive();
    const width = xt.numel / xt.shape[0];
    deviceWrites(o);
    this.#ctx.rt.dispatch(gatherRowsKernel(), [o.buffer, xt.buffer, idx.buffer], Math.ceil((numRows * width) / 256), [numRows, width]);
  }

  sample(ids: Tensor, logits: Tensor, params: Tensor, numRows: number): void {
    if (numRows === 0) return;
    const [out, l, p] = [gpu(ids), gpu(logits), gpu(params)];
    this.#ctx.checkLive();
    deviceWrites(out);
    const V = l.shape[l.shape.length - 1];
    const kernel = V <= SMALL_VOCAB && !this.#ctx.options.largeVocabSampling ? smallSampleKernel() : sampleKernel();
    this.#ctx.rt.dispatch(kernel, [out.buffer, this.#ctx.mem.bind(l), p.buffer], numRows, [numRows, V]);
  }

  // ---- fusion: an op that may merge with the next one waits in #pending until the next op says

  /** Records the waiting op as it is (alone, or merged with its like). */
  settle(): void {
    const p = this.#pending;
    if (!p) return;
    this.#pending = null;
    const { rt } = this.#ctx;
    if (p.kind === "norm") {
      rt.dispatch(rmsNormKernel(false, this.#normRounds(p.w.numel)), [p.out.buffer, p.x.buffer, p.w.buffer], p.rows, [p.rows, p.w.numel, p.eps], F(2));
    } else if (p.kind === "add") {
      const n = (p.x.numel / p.x.shape[0]) * p.rows;
      rt.dispatch(addKernel(), [p.x.buffer, p.y.buffer], Math.ceil(n / 256), [n]);
    } else if (p.kind === "rope") {
      const [a] = p.items;
      rt.dispatch(ropeKernel(), [a.x.buffer, p.angles], Math.ceil((p.rows * a.numHeads * p.half) / 256), [p.rows, a.numHeads, p.half]);
    } else {
      this.#groups.record(p, "segments");
    }
  }


}
