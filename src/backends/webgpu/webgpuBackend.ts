/**
 * @module backends/webgpu/webgpuBackend
 *
 * The WebGPU backend (docs/design.md §5, §6): tensors are GPUBuffers
 * (gpuTensor.ts), ops are WGSL kernels (kernels/) recorded into one compute
 * pass per step (gpuRuntime.ts), `read` is the one round trip. Platform-
 * neutral: it takes a GPUDevice made by the platform (platform/node/webgpu.ts
 * through the `webgpu` package, or navigator.gpu in a browser).
 *
 * Host planning: ops whose shape depends on step metadata (attention's work
 * items, RoPE's angles, Quest's and SnapKV's records) read it from the host
 * shadows of the tensors the engine wrote (gpuTensor.ts), never from the
 * device in the middle of a step.
 */
import type { GateWeights } from "../../gate/gateWeights.js";
import { f16BitsToF32 } from "../../util/halfFloat.js";
import {
  DTYPE_BYTES, numElements, type AttentionBatch, type AttentionDims, type Backend, type BackendCounters, type DType, type GateHandle, type HostArray,
  type KvDType, type KvPool, type KvTables, type ReadRequest, type RopeTable, type Tensor, type WeightData,
} from "../backend.js";
import { PAGE_SIZE, SEQ_FIELDS, SEQ_NUM_ROWS, SEQ_QUEST_BUDGET, SEQ_ROW_START, SEQ_SLOT, SEQ_WINDOW, SNAP_FIELDS, SNAP_LAYER, SNAP_NUM_GLOBAL, SNAP_NUM_RING } from "../stepLayout.js";
import { gateLayerFloats, packGateLayer } from "../cpu/gateLayout.js";
import { hostArrayFits } from "../cpu/cpuTensor.js";
import { planAttention } from "./attentionPlan.js";
import { chooseGroups, partOfLayer, partsTouched, pagePairBytes, type GpuPool, type PoolPart } from "./gpuPool.js";
import { bufferBytes, gpu, GpuTensor, shadowI32, type RowPart } from "./gpuTensor.js";
import { ERROR_MESSAGES, GpuRuntime, type Binding } from "./gpuRuntime.js";
import { attentionKernel, attentionReduceKernel, attentionShape, NUM_THREADS, type AttentionShape } from "./kernels/attentionKernels.js";
import { gateKernel } from "./kernels/gateKernels.js";
import { copySlotsKernel, scatterKernel, writeKvKernel } from "./kernels/kvKernels.js";
import { matvecKernel, matvecVectorised, PORTABLE_MATVEC, PORTABLE_TILED, tiledGroups, tiledMatmulKernel, type MatvecVariant, type TiledVariant } from "./kernels/matmulKernels.js";
import { DEFAULT_SG_MATRIX, sgMatrixMatmulKernel, type SgMatrixSyntax, type SgMatrixVariant } from "./kernels/matmulSgKernels.js";
import { admitKernel, pageBoundsKernel, questSelectKernel, snapKvKernel, storeObservationsKernel } from "./kernels/policyKernels.js";
import { sampleKernel, SMALL_VOCAB, smallSampleKernel } from "./kernels/sampleKernels.js";
import { addKernel, addRmsNormKernel, embedKernel, gatherRowsKernel, rmsNormKernel, ropeKernel, ropePairKernel, siluMulKernel, writeBytesKernel } from "./kernels/transformerKernels.js";
import { matvecFamilyKernel } from "./kernels/matvecKernels.js";

export interface WebGpuBackendOptions {
  /** Bytes the backend may allocate (the platform's estimate of GPU memory). */
  readonly memoryBytes: number;
  /** What the adapter is, for reports. */
  readonly adapterDescription: string;
  /** Attention items wanted per call at least (split-K below it); default 512. */
  readonly targetWorkgroups?: number;
  /** Optional features the device was made with (shader-f16, subgroups, ...). */
  readonly features?: ReadonlySet<string>;
  /** Sample every vocabulary with the parallel kernel (tests of that kernel on small rows). */
  readonly largeVocabSampling?: boolean;
  /** Releases what the platform holds for the device (called by dispose). */
  readonly onDispose?: () => void;
  /** Bytes of one storage binding the backend uses at most (default: the device's limit); tests split pools and weights with less. */
  readonly maxBindingBytes?: number;
  /** Subgroup sizes of the adapter (adapter.info), where it says. */
  readonly subgroupSizes?: { readonly min: number; readonly max: number };
  /** How the device spells subgroup-matrix loads (probed by the platform), when it has the feature. */
  readonly subgroupMatrixSyntax?: SgMatrixSyntax;
}

interface PendingMatvec {
  readonly kind: "matvec";
  readonly x: GpuTensor;
  readonly rows: number;
  readonly K: number;
  readonly wType: "f32" | "bf16";
  readonly items: { out: GpuTensor; w: GpuTensor; bias: GpuTensor | null }[];
}

/**
 * An op waiting to see whether the next one fuses with it (decode records
 * ~20 ops per layer; each dispatch costs host time): matvecs of one x merge
 * (q, k, v; gate, up and the siluMul after them), the ropes of q and k
 * merge, an add merges with the rmsNorm of its result.
 */
type Pending =
  | PendingMatvec
  | { readonly kind: "rope"; readonly positions: GpuTensor; readonly rows: number; readonly table: RopeTable; readonly half: number; readonly angles: GPUBuffer; readonly items: { x: GpuTensor; numHeads: number }[] }
  | { readonly kind: "add"; readonly x: GpuTensor; readonly y: GpuTensor; readonly rows: number };

/**
 * The kernel variants ops use (chosen from the device's features at
 * creation; benchmarks and tests set them to compare). sgMatrix null: no
 * tensor-core tiles.
 */
export interface KernelChoice {
  matvec: MatvecVariant;
  tiled: TiledVariant;
  sgMatrix: SgMatrixVariant | null;
  /** Rows from which the subgroup-matrix tiles run (fewer: the f32 tiles). */
  sgMatrixMinRows: number;
  /** Merge ops into fewer dispatches (see Pending); off: one dispatch per op. */
  fuse: boolean;
  /** Blocks of at most this many query rows (decode: 1) run a kernel shaped for them (0: none). */
  attentionSmallRows: number;
  /** Attention work items wanted per call at least (split-K below it). */
  attentionItems: number;
}

interface GpuGate extends GateHandle {
  readonly layers: readonly GPUBuffer[];
}

const F = (...indices: number[]) => new Set(indices);
/** What the f16 subgroup-matrix matmul may differ by (max |error| / max |output|; matmulSgKernels.ts). */
export const SG_MATRIX_TOLERANCE = 4e-3;
const SMALL_WRITE = 1 << 16;

export class WebGpuBackend implements Backend {
  readonly name = "webgpu";
  readonly #adapterDescription: string;
  /** Why a feature path was turned off at creation (checkKernels), for the description. */
  #notes: string[] = [];
  readonly counters: BackendCounters = { numReads: 0, numSubmits: 0, numWrites: 0, bytesWritten: 0, bytesRead: 0, attentionMs: 0 };
  readonly #rt: GpuRuntime;
  readonly #device: GPUDevice;
  readonly #options: WebGpuBackendOptions;
  readonly #dummy: GPUBuffer;
  #usedBytes = 0;
  #disposed = false;
  #scratch: GPUBuffer;
  #angles: { buffer: GPUBuffer; table: RopeTable | null; positions: Int32Array } ;
  readonly #live = new Set<GPUBuffer>();
  #pending: Pending | null = null;
  /** The kernel variants in use (see KernelChoice). */
  readonly kernels: KernelChoice;

  constructor(device: GPUDevice, options: WebGpuBackendOptions) {
    this.#device = device;
    this.#options = options;
    this.kernels = defaultKernels(options);
    this.#rt = new GpuRuntime(device);
    this.#adapterDescription = options.adapterDescription;
    device.addEventListener("uncapturederror", (e) => {
      this.#rt.deviceError ??= (e as GPUUncapturedErrorEvent).error.message;
    });
    this.#dummy = this.#buffer(16, "dummy");
    this.#scratch = this.#buffer(1 << 16, "scratch");
    this.#angles = { buffer: this.#buffer(1 << 12, "rope angles"), table: null, positions: new Int32Array(0) };
  }

  get description(): string {
    const c = this.kernels;
    const matvec = `matvec ${c.matvec.tpr} threads/row${c.matvec.subgroups ? " (subgroups)" : ""}`;
    const tiles = c.sgMatrix ? `f16 subgroup-matrix tiles ${c.sgMatrix.bm}x${c.sgMatrix.bn}` : `f32 tiles ${c.tiled.bm}x${c.tiled.bn}`;
    return `WebGPU ${this.#adapterDescription}; ${matvec}, ${tiles}${this.#notes.length ? `; ${this.#notes.join("; ")}` : ""}`;
  }

  /**
   * Checks the feature paths chosen at creation against the portable ones on
   * this device, once, and turns off any that disagrees (a driver or
   * compiler that mishandles an experimental feature): the subgroup-matrix
   * matmul against the f32 tiles on a case with tails, within its bound.
   */
  async checkKernels(): Promise<void> {
    const sg = this.kernels.sgMatrix;
    if (!sg) return;
    const [rows, N, K] = [this.kernels.sgMatrixMinRows + 37, 2 * sg.bn + 19, 3 * sg.bk + 5];
    let seed = 12345;
    const random = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
    const wBits = new Uint16Array(N * K).map(() => (new Uint32Array(Float32Array.of(random() * 0.1).buffer)[0] >>> 16));
    const w = this.uploadWeight({ dtype: "BF16", shape: [N, K], bytes: new Uint8Array(wBits.buffer) }, "matrix");
    const x = this.createTensor([rows, K], "f32", "check x");
    this.write(x, Float32Array.from({ length: rows * K }, random));
    const [got, want] = [this.createTensor([rows, N], "f32", "check out"), this.createTensor([rows, N], "f32", "check reference")];
    let error = "";
    try {
      this.matmul(got, x, w, null, rows);
      this.kernels.sgMatrix = null;
      this.matmul(want, x, w, null, rows);
      this.kernels.sgMatrix = sg;
      const [a, b] = (await this.read([{ tensor: got }, { tensor: want }])) as Float32Array[];
      let maxErr = 0, maxRef = 0;
      for (let i = 0; i < a.length; i++) {
        maxErr = Math.max(maxErr, Math.abs(a[i] - b[i]));
        maxRef = Math.max(maxRef, Math.abs(b[i]));
      }
      if (!(maxErr <= SG_MATRIX_TOLERANCE * maxRef)) error = `error ${(maxErr / maxRef).toExponential(1)} of the largest output`;
    } catch (err) {
      error = String((err as Error).message).split("\n")[0];
    } finally {
      for (const t of [w, x, got, want]) this.destroyTensor(t);
    }
    if (error) {
      this.kernels.sgMatrix = null;
      this.#notes.push(`subgroup-matrix matmul off (${error})`);
    }
  }

  availableBytes(): number {
    return Math.max(0, this.#options.memoryBytes - this.#usedBytes);
  }

  #buffer(bytes: number, label: string): GPUBuffer {
    const size = Math.ceil(Math.max(16, bytes) / 16) * 16;
    if (size > this.#device.limits.maxBufferSize) throw new RangeError(`${label}: ${size} bytes exceed the device's largest buffer (${this.#device.limits.maxBufferSize})`);
    const b = this.#device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, label });
    this.#usedBytes += size;
    this.#live.add(b);
    return b;
  }

  #free(b: GPUBuffer): void {
    if (!this.#live.delete(b)) return;
    this.#usedBytes -= b.size;
    this.#rt.destroyLater(b);
  }

  /** A binding of a tensor that must fit one storage binding. */
  #bind(t: GpuTensor): GPUBuffer {
    if (t.buffer.size > this.#device.limits.maxStorageBufferBindingSize) throw new RangeError(`${t.label}: ${t.buffer.size} bytes exceed the device's storage binding limit`);
    return t.buffer;
  }

  /** Drops a tensor's shadow: a device op writes it. */
  #deviceWrites(...ts: GpuTensor[]): void {
    for (const t of ts) t.shadow = null;
  }

  // ---- memory

  createTensor(shape: readonly number[], dtype: DType, label: string): Tensor {
    this.#checkLive();
    const numel = numElements(shape);
    if (!Number.isSafeInteger(numel) || numel < 0 || shape.some((n) => !Number.isInteger(n) || n < 0)) throw new RangeError(`createTensor ${label}: bad shape [${shape}]`);
    return new GpuTensor(this.#buffer(bufferBytes(numel * DTYPE_BYTES[dtype]), label), shape, dtype, label);
  }

  destroyTensor(t: Tensor): void {
    this.#checkLive();
    const g = gpu(t);
    g.kill();
    for (const part of g.parts ?? [{ buffer: g.buffer }]) this.#free(part.buffer);
  }

  uploadWeight(data: WeightData, kind: "matrix" | "vector"): Tensor {
    this.#checkLive();
    const numel = numElements(data.shape);
    const label = `weight [${data.shape}]`;
    const keepBf16 = data.dtype === "BF16" && kind === "matrix";
    const elementBytes = keepBf16 ? 2 : 4;
    const [rows, width] = data.shape.length === 2 ? (data.shape as [number, number]) : [1, numel];
    if (numel * elementBytes > this.#bindingLimit && kind === "matrix" && rows > 1) return this.#uploadInParts(data, keepBf16, rows, width, label);
    const t = gpu(this.createTensor(data.shape, keepBf16 ? "bf16" : "f32", label));
    this.#writeRaw(t.buffer, 0, keepBf16 ? data.bytes.subarray(0, numel * 2) : widenToF32(data, 0, numel));
    return t;
  }

  /**
   * A matrix larger than one storage binding, in parts of whole rows (each
   * starting on a word): matmul and embed dispatch once per part.
   */
  #uploadInParts(data: WeightData, keepBf16: boolean, rows: number, width: number, label: string): Tensor {
    const elementBytes = keepBf16 ? 2 : 4;
    let rowsPerPart = Math.floor(this.#bindingLimit / (width * elementBytes));
    if (keepBf16 && width % 2 === 1) rowsPerPart -= rowsPerPart % 2;
    if (rowsPerPart < 1) throw new RangeError(`${label}: one row is larger than the device's storage binding limit`);
    const parts: RowPart[] = [];
    for (let first = 0; first < rows; first += rowsPerPart) {
      const n = Math.min(rowsPerPart, rows - first);
      const buffer = this.#buffer(bufferBytes(n * width * elementBytes), `${label} rows ${first}..${first + n}`);
      const bytes = keepBf16 ? data.bytes.subarray(first * width * 2, (first + n) * width * 2) : widenToF32(data, first * width, n * width);
      this.#writeRaw(buffer, 0, bytes);
      parts.push({ buffer, firstRow: first, numRows: n });
    }
    // NOTE: the tensor's own buffer is the first part's; destroyTensor frees every part
    const t = new GpuTensor(parts[0].buffer, data.shape, keepBf16 ? "bf16" : "f32", label);
    t.parts = parts;
    return t;
  }

  /** Host bytes into a buffer at a byte offset, in order with the ops recorded so far. */
  #writeRaw(buffer: GPUBuffer, byteOffset: number, bytes: Uint8Array): void {
    const aligned = byteOffset % 4 === 0 && bytes.byteLength % 4 === 0;
    if (aligned && (this.#rt.numCommands === 0 || bytes.byteLength > SMALL_WRITE)) {
      if (this.#rt.numCommands > 0) this.#rt.flush();
      // NOTE: writeBuffer copies the data at the call
      this.#device.queue.writeBuffer(buffer, byteOffset, bytes.buffer, bytes.byteOffset, bytes.byteLength);
      return;
    }
    // in order with the recorded ops, through the argument window (whole words of source bytes)
    const chunk = Math.floor((this.#rt.window - 64) / 4) * 4;
    for (let at = 0; at < bytes.byteLength; at += chunk) {
      const part = bytes.subarray(at, Math.min(bytes.byteLength, at + chunk));
      const words = new Uint32Array(Math.ceil(part.byteLength / 4));
      new Uint8Array(words.buffer).set(part);
      const first = byteOffset + at;
      const numWords = Math.floor((first + part.byteLength - 1) / 4) - Math.floor(first / 4) + 1;
      this.#rt.dispatch(writeBytesKernel(), [buffer], Math.ceil(numWords / 256), [first, part.byteLength, 0, 0], null, [words]);
    }
  }

  write(t: Tensor, data: HostArray, offset = 0): void {
    this.#checkLive();
    const g = gpu(t);
    if (!hostArrayFits(data, g.dtype)) throw new TypeError(`write to ${g.label}: a ${data.constructor.name} does not fit a ${g.dtype} tensor`);
    if (!(Number.isInteger(offset) && offset >= 0 && offset + data.length <= g.numel)) throw new RangeError(`write to ${g.label}: ${data.length} elements at ${offset} overflow its ${g.numel}`);
    this.counters.numWrites++;
    this.counters.bytesWritten += data.byteLength;
    if (g.shadow) g.shadow.set(data as never, offset);
    this.#writeRaw(g.buffer, offset * DTYPE_BYTES[g.dtype], new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }

  submit(): void {
    this.#checkLive();
    this.counters.numSubmits++;
    this.#rt.flush();
  }

  async read(requests: readonly ReadRequest[]): Promise<HostArray[]> {
    this.#checkLive();
    const tensors = requests.map((r) => ({ t: gpu(r.tensor), n: r.numElements ?? r.tensor.numel }));
    for (const { t, n } of tensors) if (!(Number.isInteger(n) && n >= 0 && n <= t.numel)) throw new RangeError(`read of ${t.label}: ${n} elements of ${t.numel}`);
    this.counters.numReads++;
    if (this.#rt.numCommands > 0) this.counters.numSubmits++;
    const { data, error } = await this.#rt.readBack(tensors.map(({ t, n }) => ({ buffer: t.buffer, bytes: n * DTYPE_BYTES[t.dtype] })));
    const deviceError = this.#rt.deviceError;
    this.#rt.deviceError = null;
    if (deviceError) throw new Error(`WebGPU: ${deviceError.split("\n")[0]}`);
    if (error[0] !== 0) throw new RangeError((ERROR_MESSAGES[error[0]] ?? ((v: number) => `kernel error ${error[0]} (${v})`))(error[1] | 0));
    return tensors.map(({ t, n }, i) => {
      this.counters.bytesRead += n * DTYPE_BYTES[t.dtype];
      return hostView(data[i], t.dtype, n);
    });
  }

  // ---- the transformer's ops

  embed(out: Tensor, table: Tensor, ids: Tensor, rows: number): void {
    const [o, tab, idt] = [gpu(out), gpu(table), gpu(ids)];
    this.#checkLive();
    const [vocab, hidden] = tab.shape as [number, number];
    this.#deviceWrites(o);
    for (const part of tab.parts ?? [{ buffer: this.#bind(tab), firstRow: 0, numRows: vocab }]) {
      this.#rt.dispatch(embedKernel(), [o.buffer, part.buffer, idt.buffer, this.#rt.errorBuffer], Math.ceil((rows * hidden) / 256), [rows, hidden, vocab, tab.dtype === "bf16" ? 1 : 0, part.firstRow, part.numRows]);
    }
  }

  rmsNorm(out: Tensor, x: Tensor, weight: Tensor, rows: number, eps: number): void {
    const [o, xt, w] = [gpu(out), gpu(x), gpu(weight)];
    this.#checkLive(false);
    this.#deviceWrites(o);
    const inPlace = o === xt;
    const p = this.#pending;
    if (p?.kind === "add" && p.x === xt && p.rows === rows && p.y !== o && p.y !== w) {
      this.#pending = null;
      this.#rt.dispatch(addRmsNormKernel(inPlace), inPlace ? [xt.buffer, p.y.buffer, w.buffer] : [xt.buffer, p.y.buffer, o.buffer, w.buffer], rows, [rows, w.numel, eps], F(2));
      return;
    }
    this.#settle();
    this.#rt.dispatch(rmsNormKernel(inPlace), inPlace ? [o.buffer, w.buffer] : [o.buffer, xt.buffer, w.buffer], rows, [rows, w.numel, eps], F(2));
  }

  matmul(out: Tensor, x: Tensor, w: Tensor, bias: Tensor | null, rows: number): void {
    const [o, xt, wt, b] = [gpu(out), gpu(x), gpu(w), bias ? gpu(bias) : null];
    this.#checkLive(false);
    const [N, K] = wt.shape as [number, number];
    if (rows * K > xt.numel || rows * N > o.numel) throw new RangeError(`matmul: ${rows} rows of [${K}] -> [${N}] overflow ${xt.label} or ${o.label}`);
    if (o === xt) throw new Error(`matmul: out ${o.label} must not be x`);
    if (rows === 0) return;
    const wType = wt.dtype === "bf16" ? "bf16" : "f32";
    const c = this.kernels;
    if (c.fuse && rows <= 8 && !wt.parts) {
      const p = this.#pending;
      const item = { out: o, w: wt, bias: b };
      if (p?.kind === "matvec" && p.x === xt && p.rows === rows && p.K === K && p.wType === wType && p.items.length < 3 && !p.items.some((i) => i.out === o)) p.items.push(item);
      else {
        this.#settle();
        this.#pending = { kind: "matvec", x: xt, rows, K, wType, items: [item] };
      }
      this.#deviceWrites(o);
      return;
    }
    this.#settle();
    this.#deviceWrites(o);
    for (const part of wt.parts ?? [{ buffer: this.#bind(wt), firstRow: 0, numRows: N }]) {
      const buffers = [o.buffer, xt.buffer, part.buffer, b ? b.buffer : this.#dummy];
      const args = [rows, part.numRows, K, b ? 1 : 0, N, part.firstRow];
      if (rows <= 8) {
        const vectorised = matvecVectorised(wType, K);
        this.#rt.dispatch(matvecKernel(wType, rows, vectorised, c.matvec), buffers, Math.ceil(part.numRows / (256 / c.matvec.tpr)), [rows, K, part.firstRow, N, part.numRows, b ? 1 : 0]);
      } else if (c.sgMatrix && rows >= c.sgMatrixMinRows) {
        this.#rt.dispatch(sgMatrixMatmulKernel(wType, c.sgMatrix, this.#options.subgroupMatrixSyntax ?? "new", 32), buffers, tiledGroups(c.sgMatrix, rows, part.numRows), args);
      } else {
        this.#rt.dispatch(tiledMatmulKernel(wType, c.tiled), buffers, tiledGroups(c.tiled, rows, part.numRows), args);
      }
    }
  }

  rope(x: Tensor, positions: Tensor, rows: number, numHeads: number, table: RopeTable): void {
    const [xt, pos] = [gpu(x), gpu(positions)];
    this.#checkLive(false);
    if (rows === 0) return;
    const half = table.invFreq.length;
    const p = this.#pending;
    if (p?.kind === "rope" && p.positions === pos && p.rows === rows && p.table === table && p.items[0].x !== xt) {
      // NOTE: nothing was written since the first rope (writes settle), so its angles hold
      this.#pending = null;
      this.#deviceWrites(xt);
      const [a] = p.items;
      this.#rt.dispatch(ropePairKernel(), [a.x.buffer, xt.buffer, p.angles], Math.ceil((rows * (a.numHeads + numHeads) * half) / 256), [rows, a.numHeads, numHeads, half]);
      return;
    }
    this.#settle();
    const angles = this.#ropeAngles(table, shadowI32(pos, "rope").subarray(0, rows));
    this.#deviceWrites(xt);
    if (this.kernels.fuse) {
      this.#pending = { kind: "rope", positions: pos, rows, table, half, angles, items: [{ x: xt, numHeads }] };
      return;
    }
    this.#rt.dispatch(ropeKernel(), [xt.buffer, angles], Math.ceil((rows * numHeads * half) / 256), [rows, numHeads, half]);
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
    if (out.byteLength > a.buffer.size) {
      this.#free(a.buffer);
      a.buffer = this.#buffer(2 * out.byteLength, "rope angles");
    }
    this.#writeRaw(a.buffer, 0, new Uint8Array(out.buffer));
    a.table = table;
    a.positions = positions.slice();
    return a.buffer;
  }

  siluMul(out: Tensor, gate: Tensor, up: Tensor, rows: number): void {
    const [o, g, u] = [gpu(out), gpu(gate), gpu(up)];
    this.#checkLive(false);
    const p = this.#pending;
    if (p?.kind === "matvec" && p.items.length === 2 && p.rows === rows && o === g && p.items[0].out === g && p.items[1].out === u && p.items[0].w.shape[0] === p.items[1].w.shape[0]) {
      this.#pending = null;
      this.#matvecGroup(p, "silu pair");
      return;
    }
    this.#settle();
    const n = (o.numel / o.shape[0]) * rows;
    this.#deviceWrites(o);
    const inPlace = o === g;
    this.#rt.dispatch(siluMulKernel(inPlace), inPlace ? [o.buffer, u.buffer] : [o.buffer, g.buffer, u.buffer], Math.ceil(n / 256), [n]);
  }

  add(x: Tensor, y: Tensor, rows: number): void {
    const [xt, yt] = [gpu(x), gpu(y)];
    this.#checkLive();
    this.#deviceWrites(xt);
    this.#pending = { kind: "add", x: xt, y: yt, rows };
    if (!this.kernels.fuse) this.#settle();
  }

  copyRows(dst: Tensor, src: Tensor, rows: number): void {
    const [d, s] = [gpu(dst), gpu(src)];
    this.#checkLive();
    this.#deviceWrites(d);
    this.#rt.copy(s.buffer, 0, d.buffer, 0, (d.numel / d.shape[0]) * rows * 4);
  }

  gatherRows(out: Tensor, x: Tensor, rowIndex: Tensor, numRows: number): void {
    const [o, xt, idx] = [gpu(out), gpu(x), gpu(rowIndex)];
    this.#checkLive();
    const width = xt.numel / xt.shape[0];
    this.#deviceWrites(o);
    this.#rt.dispatch(gatherRowsKernel(), [o.buffer, xt.buffer, idx.buffer], Math.ceil((numRows * width) / 256), [numRows, width]);
  }

  // ---- the dual cache's ops

  /** Bytes one storage binding may hold. */
  get #bindingLimit(): number {
    const l = this.#device.limits;
    return Math.min(this.#options.maxBindingBytes ?? Infinity, l.maxStorageBufferBindingSize, l.maxBufferSize);
  }

  createKvPool(numPages: number, headDim: number, kvDType: KvDType, numLayers = 1): KvPool {
    this.#checkLive();
    if (headDim % 2 !== 0) throw new RangeError(`createKvPool: head dim ${headDim} must be even`);
    const limit = this.#bindingLimit;
    const numGroups = chooseGroups(numPages, headDim, kvDType, numLayers, limit);
    if (numGroups === null) {
      const perLayer = (numPages / numLayers) * pagePairBytes(headDim, kvDType);
      throw new RangeError(`KV memory of ${(perLayer / 2 ** 20).toFixed(0)} MiB per layer exceeds this device's largest storage binding (${(limit / 2 ** 20).toFixed(0)} MiB); lower --kv-memory`);
    }
    const wordsPerRow = kvDType === "f32" ? headDim : headDim / 2;
    const pagesPerGroup = Math.ceil(numPages / numGroups);
    const parts: PoolPart[] = [];
    for (let g = 0; g < numGroups; g++) {
      const firstPage = g * pagesPerGroup, n = Math.min(pagesPerGroup, numPages - firstPage);
      const sideWords = n * PAGE_SIZE * wordsPerRow;
      parts.push({ buffer: this.#buffer(2 * sideWords * 4, `KV pages ${g}`), firstPage, numPages: n, vBase: sideWords, bounds: null });
    }
    const pool: GpuPool = { numPages, headDim, kvDType, numBytes: numPages * pagePairBytes(headDim, kvDType), numGroups, numLayers, pagesPerGroup, wordsPerRow, parts };
    return pool;
  }

  destroyKvPool(pool: KvPool): void {
    for (const part of gpuPool(pool).parts) {
      this.#free(part.buffer);
      if (part.bounds) this.#free(part.bounds);
    }
  }

  /** Bits of K and V of pages [first, first + count) as stored (u32 words, [count, 16, wordsPerRow] each): tests and diagnostics. */
  async readKvPages(pool: KvPool, first: number, count: number): Promise<{ k: Uint32Array; v: Uint32Array }> {
    this.#checkLive();
    const p = gpuPool(pool);
    const rowWords = PAGE_SIZE * p.wordsPerRow;
    const k = new Uint32Array(count * rowWords), v = new Uint32Array(count * rowWords);
    for (let i = 0; i < count; ) {
      const page = first + i;
      const part = p.parts[Math.floor(page / p.pagesPerGroup)];
      const n = Math.min(count - i, part.firstPage + part.numPages - page);
      const at = (page - part.firstPage) * rowWords * 4, bytes = n * rowWords * 4;
      const { data } = await this.#rt.readBack([{ buffer: part.buffer, offset: at, bytes }, { buffer: part.buffer, offset: part.vBase * 4 + at, bytes }]);
      k.set(new Uint32Array(data[0]), i * rowWords);
      v.set(new Uint32Array(data[1]), i * rowWords);
      i += n;
    }
    return { k, v };
  }

  writeKv(pool: KvPool, k: Tensor, v: Tensor, slotMapping: Tensor, offset: number, rows: number): void {
    const [p, kt, vt, m] = [gpuPool(pool), gpu(k), gpu(v), gpu(slotMapping)];
    this.#checkLive();
    const d = p.headDim, H = kt.numel / kt.shape[0] / d;
    const wpr = p.wordsPerRow;
    const shadow = m.shadow instanceof Int32Array ? m.shadow : null;
    for (const i of partsTouched(p, shadow, offset, 1, 0, H * rows, PAGE_SIZE)) {
      const part = p.parts[i];
      this.#rt.dispatch(writeKvKernel(p.kvDType), [part.buffer, kt.buffer, vt.buffer, m.buffer], Math.ceil((rows * H * wpr) / 256), [rows, H, wpr, d, offset, part.vBase, part.firstPage * PAGE_SIZE, part.numPages * PAGE_SIZE]);
    }
  }

  copySlots(pool: KvPool, copies: Tensor, first: number, count: number): void {
    if (count === 0) return;
    const [p, c] = [gpuPool(pool), gpu(copies)];
    this.#checkLive();
    const wpr = p.wordsPerRow;
    const shadow = c.shadow instanceof Int32Array ? c.shadow : null;
    for (const i of partsTouched(p, shadow, 2 * first, count, 2, 1, PAGE_SIZE)) {
      const part = p.parts[i];
      this.#rt.dispatch(copySlotsKernel(), [part.buffer, c.buffer], Math.ceil((count * wpr) / 256), [first, count, wpr, part.vBase, part.firstPage * PAGE_SIZE, part.numPages * PAGE_SIZE]);
    }
  }

  scatter(dst: Tensor, updates: Tensor, count: number): void {
    if (count === 0) return;
    const [d, u] = [gpu(dst), gpu(updates)];
    this.#checkLive();
    this.#deviceWrites(d);
    this.#rt.dispatch(scatterKernel(d.dtype === "u8"), [d.buffer, u.buffer, this.#rt.errorBuffer], Math.ceil(count / 256), [count, d.numel]);
  }

  /** The scratch buffer with room for `bytes` (its contents are not kept across growth). */
  #scratchFor(bytes: number): GPUBuffer {
    if (bytes > this.#scratch.size) {
      this.#free(this.#scratch);
      this.#scratch = this.#buffer(Math.max(bytes, 2 * this.#scratch.size), "scratch");
    }
    return this.#scratch;
  }

  #attentionShape(dims: AttentionDims, kvDType: KvDType, minQueries?: number): AttentionShape {
    return attentionShape(dims.headDim, dims.numHeads / dims.numKvHeads, kvDType, this.#device.limits.maxComputeWorkgroupStorageSize, minQueries);
  }

  pagedAttention(out: Tensor, q: Tensor, k: Tensor, v: Tensor, pool: KvPool, layer: number, batch: AttentionBatch, dims: AttentionDims): void {
    const [o, qt, kt, vt, p] = [gpu(out), gpu(q), gpu(k), gpu(v), gpuPool(pool)];
    this.#checkLive();
    if (dims.numHeads % dims.numKvHeads !== 0) throw new RangeError(`paged attention: numHeads ${dims.numHeads} is not a multiple of numKvHeads ${dims.numKvHeads}`);
    if (batch.numSeqs === 0) return;
    const shape = this.#attentionShape(dims, p.kvDType);
    const c = this.kernels;
    const smallWanted = c.attentionSmallRows * shape.group;
    const smallShape = smallWanted > 0 && smallWanted < shape.numQueries ? this.#attentionShape(dims, p.kvDType, smallWanted) : null;
    const seqs = shadowI32(gpu(batch.seqs), "pagedAttention");
    const numGlobal = shadowI32(gpu(batch.numGlobal), "pagedAttention");
    const d = dims.headDim, H = dims.numKvHeads;
    // NOTE: Quest's choice is copied beside the partials, so the kernel binds one scratch buffer
    const sel = batch.selection;
    let questWords = 0;
    if (sel) questWords = gpu(sel.pages).numel + gpu(sel.numTokens).numel;
    const input = {
      seqs, numSeqs: batch.numSeqs, numGlobal, layer, numLayers: dims.numLayers, numKvHeads: H, rowStride: batch.tables.rowStride, maxWindow: batch.tables.maxWindow,
      quest: null, targetWorkgroups: c.attentionItems, smallQueries: smallShape ? smallShape.numQueries : 0,
    };
    const probe = planAttention(input, shape);
    const partialWords = probe.numPartials * (d + 2);
    const quest = sel ? { pagesWord: partialWords, countsWord: partialWords + gpu(sel.pages).numel, stride: sel.stride } : null;
    const plan = quest ? planAttention({ ...input, quest }, shape) : probe;
    const scratch = this.#scratchFor((partialWords + questWords) * 4);
    if (sel && quest) {
      this.#rt.copy(gpu(sel.pages).buffer, 0, scratch, quest.pagesWord * 4, gpu(sel.pages).numel * 4);
      this.#rt.copy(gpu(sel.numTokens).buffer, 0, scratch, quest.countsWord * 4, gpu(sel.numTokens).numel * 4);
    }
    const tables = gpu(batch.tables.blockTables), flags = gpu(batch.tables.ringFlags);
    const part = partOfLayer(p, layer);
    const buffers = [qt.buffer, kt.buffer, vt.buffer, part.buffer, tables.buffer, flags.buffer, scratch];
    const args = (n: number) => [n, dims.numHeads, H, part.vBase, 1 / Math.sqrt(d), part.firstPage, 0, 0];
    this.#rt.dispatch(attentionKernel(shape), buffers, plan.numItems, args(plan.numItems), F(4), [plan.items]);
    if (smallShape) this.#rt.dispatch(attentionKernel(smallShape), buffers, plan.numSmallItems, args(plan.numSmallItems), F(4), [plan.smallItems]);
    this.#deviceWrites(o);
    this.#rt.dispatch(attentionReduceKernel(), [scratch, o.buffer], plan.numReduce, [plan.numReduce, dims.numHeads, d, shape.group], null, [plan.reduce]);
    void NUM_THREADS;
  }

  uploadGate(gate: GateWeights): GateHandle {
    this.#checkLive();
    const { numKvHeads: H, headDim: d, hiddenPerHead: E } = gate;
    const floats = gateLayerFloats(H, d, E);
    const layers = gate.layers.map((layer, l) => {
      const packed = new Float32Array(floats);
      packGateLayer(layer, packed);
      const b = this.#buffer(floats * 4, `gate layer ${l}`);
      this.#writeRaw(b, 0, new Uint8Array(packed.buffer));
      return b;
    });
    const handle: GpuGate = { gate, layers };
    return handle;
  }

  gateScores(scores: Tensor, offset: number, stride: number, gate: GateHandle, layer: number, kPre: Tensor, kPost: Tensor, row0: number, numRows: number): void {
    if (numRows === 0) return;
    const [s, pre, post] = [gpu(scores), gpu(kPre), gpu(kPost)];
    this.#checkLive();
    const g = gate as GpuGate;
    const { numKvHeads: H, headDim: d, hiddenPerHead: E } = g.gate;
    if (2 * d > 1024) throw new RangeError(`gateScores: head dim ${d} is larger than the kernel takes (512)`);
    this.#deviceWrites(s);
    this.#rt.dispatch(gateKernel(), [s.buffer, pre.buffer, post.buffer, g.layers[layer]], numRows * H, [offset, stride, row0, numRows, H, d, E]);
  }

  admit(flags: Tensor, scores: Tensor | null, offset: number, stride: number, layer: number, batch: AttentionBatch, dims: AttentionDims): void {
    const [f, s] = [gpu(flags), scores ? gpu(scores) : null];
    this.#checkLive();
    const ring = gpu(batch.tables.ringFlags);
    const seqs = gpu(batch.seqs);
    this.#deviceWrites(f, ring);
    this.#rt.dispatch(admitKernel(), [f.buffer, s ? s.buffer : this.#dummy, seqs.buffer, ring.buffer], batch.numSeqs * dims.numKvHeads, [offset, stride, layer, dims.numLayers, dims.numKvHeads, batch.tables.maxWindow, s ? 1 : 0]);
  }

  updatePageBounds(pool: KvPool, pages: Tensor, first: number, count: number): void {
    if (count === 0) return;
    const [p, list] = [gpuPool(pool), gpu(pages)];
    this.#checkLive();
    const shadow = list.shadow instanceof Int32Array ? list.shadow : null;
    for (const i of partsTouched(p, shadow, 2 * first, count, 2, 1, 1)) {
      const part = p.parts[i];
      this.#rt.dispatch(pageBoundsKernel(p.kvDType), [this.#boundsOf(p, part), part.buffer, list.buffer], Math.ceil((count * p.headDim) / 256), [first, count, p.headDim, 0, part.firstPage, part.numPages]);
    }
  }

  /** Quest's bounds of a pool part, made when first used. */
  #boundsOf(p: GpuPool, part: PoolPart): GPUBuffer {
    return (part.bounds ??= this.#buffer(part.numPages * 2 * p.headDim * 4, "page bounds"));
  }

  questSelect(q: Tensor, pool: KvPool, layer: number, batch: AttentionBatch, dims: AttentionDims): void {
    const sel = batch.selection;
    if (!sel) return;
    const [qt, p] = [gpu(q), gpuPool(pool)];
    this.#checkLive();
    const { numLayers: L, numKvHeads: H } = dims;
    const seqs = shadowI32(gpu(batch.seqs), "questSelect");
    const numGlobal = shadowI32(gpu(batch.numGlobal), "questSelect");
    const records: number[] = [];
    let scratchWords = 0;
    for (let s = 0; s < batch.numSeqs; s++) {
      const f = s * SEQ_FIELDS;
      const budget = seqs[f + SEQ_QUEST_BUDGET];
      if (budget <= 0 || seqs[f + SEQ_NUM_ROWS] !== 1) continue;
      const slot = seqs[f + SEQ_SLOT], W = seqs[f + SEQ_WINDOW];
      for (let g = 0; g < H; g++) {
        const nG = numGlobal[(s * L + layer) * H + g];
        records.push(seqs[f + SEQ_ROW_START], budget, nG, ((slot * L + layer) * H + g) * batch.tables.rowStride + W / PAGE_SIZE, s * H + g, scratchWords);
        scratchWords += Math.floor(nG / PAGE_SIZE);
      }
    }
    if (records.length === 0) return;
    const part = partOfLayer(p, layer);
    const bounds = this.#boundsOf(p, part);
    const [pages, tokens] = [gpu(sel.pages), gpu(sel.numTokens)];
    this.#deviceWrites(pages, tokens);
    const n = records.length / 6;
    this.#rt.dispatch(
      questSelectKernel(),
      [qt.buffer, bounds, gpu(batch.tables.blockTables).buffer, pages.buffer, tokens.buffer, this.#scratchFor(scratchWords * 4 + 16)],
      n,
      [n, dims.numHeads, dims.headDim, dims.numHeads / H, sel.stride, 0, part.firstPage, 0],
      null,
      [Uint32Array.from(records)],
    );
  }

  storeObservations(obs: Tensor, q: Tensor, layer: number, batch: AttentionBatch, dims: AttentionDims): void {
    const [o, qt] = [gpu(obs), gpu(q)];
    this.#checkLive();
    const [, numLayers, window, width] = o.shape as [number, number, number, number];
    if (width !== dims.numHeads * dims.headDim || numLayers !== dims.numLayers) throw new Error(`storeObservations: ${o.label} has shape [${o.shape}]`);
    this.#deviceWrites(o);
    this.#rt.dispatch(storeObservationsKernel(), [o.buffer, qt.buffer, gpu(batch.seqs).buffer], batch.numSeqs * window, [numLayers, window, width, layer]);
  }

  snapKvScores(out: Tensor, requests: Tensor, numRequests: number, obs: Tensor, pool: KvPool, tables: KvTables, dims: AttentionDims): void {
    if (numRequests === 0) return;
    const [o, r, ob, p] = [gpu(out), gpu(requests), gpu(obs), gpuPool(pool)];
    this.#checkLive();
    const req = shadowI32(r, "snapKvScores");
    const bases = new Uint32Array(numRequests);
    let words = 0;
    for (let i = 0; i < numRequests; i++) {
      bases[i] = words;
      words += req[i * SNAP_FIELDS + SNAP_NUM_GLOBAL] * 2 + req[i * SNAP_FIELDS + SNAP_NUM_RING];
    }
    const [, , window, width] = ob.shape as [number, number, number, number];
    this.#deviceWrites(o);
    const scratch = this.#scratchFor(words * 4 + 16);
    const layersPerPart = dims.numLayers / p.numGroups;
    p.parts.forEach((part, g) => {
      if (p.numGroups > 1 && !Array.from({ length: numRequests }, (_, i) => Math.floor(req[i * SNAP_FIELDS + SNAP_LAYER] / layersPerPart)).includes(g)) return;
      this.#rt.dispatch(
        snapKvKernel(p.kvDType),
        [o.buffer, r.buffer, ob.buffer, part.buffer, gpu(tables.blockTables).buffer, scratch],
        numRequests,
        [numRequests, dims.numLayers, dims.numHeads, dims.numKvHeads, dims.headDim, window, width, tables.rowStride],
        null,
        [bases, Uint32Array.of(g * layersPerPart, (g + 1) * layersPerPart, part.firstPage)],
      );
    });
  }

  sample(ids: Tensor, logits: Tensor, params: Tensor, numRows: number): void {
    if (numRows === 0) return;
    const [out, l, p] = [gpu(ids), gpu(logits), gpu(params)];
    this.#checkLive();
    this.#deviceWrites(out);
    const V = l.shape[l.shape.length - 1];
    this.#rt.dispatch(V <= SMALL_VOCAB && !this.#options.largeVocabSampling ? smallSampleKernel() : sampleKernel(), [out.buffer, this.#bind(l), p.buffer], numRows, [numRows, V]);
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const b of this.#live) b.destroy();
    this.#live.clear();
    this.#device.destroy();
    this.#options.onDispose?.();
  }

  /** Throws after dispose; records what waits for fusion first, unless the caller may fuse with it. */
  #checkLive(settle = true): void {
    if (this.#disposed) throw new Error(`the ${this.name} backend was used after dispose()`);
    if (settle) this.#settle();
  }

  // ---- fusion: an op that may merge with the next one waits in #pending until the next op says

  /** Records the waiting op as it is (alone, or merged with its like). */
  #settle(): void {
    const p = this.#pending;
    if (!p) return;
    this.#pending = null;
    if (p.kind === "add") {
      const n = (p.x.numel / p.x.shape[0]) * p.rows;
      this.#rt.dispatch(addKernel(), [p.x.buffer, p.y.buffer], Math.ceil(n / 256), [n]);
    } else if (p.kind === "rope") {
      const [a] = p.items;
      this.#rt.dispatch(ropeKernel(), [a.x.buffer, p.angles], Math.ceil((p.rows * a.numHeads * p.half) / 256), [p.rows, a.numHeads, p.half]);
    } else {
      this.#matvecGroup(p, "segments");
    }
  }

  /** One dispatch of the waiting matvecs: their rows concatenated, or gate and up with siluMul's epilogue. */
  #matvecGroup(p: PendingMatvec, form: "segments" | "silu pair"): void {
    const { rows, K, wType } = p;
    const v = this.kernels.matvec;
    const outs = p.items.map((i) => i.out.buffer), ws = p.items.map((i) => i.w.buffer), bs = p.items.map((i) => (i.bias ? i.bias.buffer : this.#dummy));
    const args = [rows, K, 0, p.items[0].w.shape[0]];
    for (const i of p.items) args.push(i.w.shape[0], i.bias ? 1 : 0);
    const total = form === "silu pair" ? p.items[0].w.shape[0] : p.items.reduce((n, i) => n + i.w.shape[0], 0);
    const kernel = matvecFamilyKernel(wType, rows, matvecVectorised(wType, K), v, p.items.length, form);
    this.#rt.dispatch(kernel, [...outs, p.x.buffer, ...ws, ...bs], Math.ceil(total / (256 / v.tpr)), args);
  }
}

/** The kernels a device with these options runs by default. */
function defaultKernels(options: WebGpuBackendOptions): KernelChoice {
  const f = options.features ?? new Set<string>();
  const sg = options.subgroupSizes;
  // NOTE: a team of 32 threads per row is whole subgroups where subgroups have at most 32 invocations
  const subgroups = f.has("subgroups") && sg !== undefined && sg.max <= 32 && 32 % sg.max === 0 && 32 % sg.min === 0;
  const sgMatrix = f.has("chromium-experimental-subgroup-matrix") && f.has("shader-f16") && sg?.min === 32 && sg.max === 32 && options.subgroupMatrixSyntax !== undefined;
  return {
    matvec: subgroups ? { tpr: 32, unroll: 4, subgroups: true } : PORTABLE_MATVEC,
    tiled: PORTABLE_TILED,
    sgMatrix: sgMatrix ? DEFAULT_SG_MATRIX : null,
    sgMatrixMinRows: 64,
    fuse: true,
    attentionSmallRows: 1,
    attentionItems: options.targetWorkgroups ?? 512,
  };
}

/** Elements [first, first + n) of a weight as f32 bytes (bf16 and f16 widened exactly). */
function widenToF32(data: WeightData, first: number, n: number): Uint8Array {
  const out = new Float32Array(n);
  const view = new DataView(data.bytes.buffer, data.bytes.byteOffset, data.bytes.byteLength);
  if (data.dtype === "F32") for (let i = 0; i < n; i++) out[i] = view.getFloat32((first + i) * 4, true);
  else if (data.dtype === "BF16") {
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) bits[i] = view.getUint16((first + i) * 2, true) << 16;
  } else for (let i = 0; i < n; i++) out[i] = f16BitsToF32(view.getUint16((first + i) * 2, true));
  return new Uint8Array(out.buffer);
}

function gpuPool(pool: KvPool): GpuPool {
  if (!("parts" in pool)) throw new Error("KV pool does not belong to the WebGPU backend");
  return pool as GpuPool;
}

/** The first n elements of read-back bytes as the dtype's host array. */
function hostView(bytes: ArrayBuffer, dtype: DType, n: number): HostArray {
  switch (dtype) {
    case "f32":
      return new Float32Array(bytes, 0, n);
    case "i32":
      return new Int32Array(bytes, 0, n);
    case "u32":
      return new Uint32Array(bytes, 0, n);
    case "u8":
      return new Uint8Array(bytes, 0, n);
    case "f16":
    case "bf16":
      return new Uint16Array(bytes, 0, n);
  }
}
