/**
 * @module backends/cpu/pagedAttentionLayout
 *
 * Lays a batched paged-attention call (pagedAttention.ts's record contract)
 * out in a kernel set's own memory, runs the kernel and the literal
 * reference `referencePagedAttention` on the very same bytes, and checks
 * that the kernel wrote nothing but its output.
 *
 * What a sequence brings is its content per KV head (ring rows by offset,
 * global rows in list order, admit flags) and its chunk's fresh rows; the
 * layout scatters its pages over a pool whose every other slot holds
 * "poison" (|x| ~ 300, so a read of it shows), gives each sequence its own
 * ring table, admit flags and global counts with per-head strides wider than
 * needed (spare entries name poison pages), puts its global page ids either
 * after its ring pages in one row (the engine's block tables) or in a list
 * of their own (Quest's selection buffers), and assigns the sequences' rows
 * in shuffled order. Outputs start as NaN, so an element left unwritten
 * shows; every input byte and the gap between the outputs are compared
 * after the call, so a stray write shows.
 */
import { f32ToBf16Bits, f32ToF16Bits } from "../../util/halfFloat.js";
import { check, type TestRandom } from "../conformance/testData.js";
import type { CpuKernels } from "./kernels.js";
import {
  PAGE_SIZE, PAGED_SEQ_FIELDS, PS_ADM_STRIDE, PS_FRESH_ADM, PS_FRESH_STRIDE, PS_GLOBAL_STRIDE, PS_GLOBAL_TABLE, PS_NUM_GLOBAL, PS_QPOS0, PS_RING_ADM, PS_RING_STRIDE, PS_RING_TABLE,
  PS_ROW0, PS_T, PS_W, referencePagedAttention, type KvDType, type PagedAttentionKernel, type PagedAttentionParams, type PagedAttentionPointers,
} from "./pagedAttention.js";

/** Magnitude of values a kernel must never read (representable in f16). */
export const POISON = 300;

/** Kernels that implement paged attention natively. */
export type PagedAttentionKernels = CpuKernels & PagedAttentionKernel;

/** One sequence of a call: its chunk and what each KV head holds. */
export interface SeqContent {
  readonly window: number;
  readonly numQueries: number;
  /** Tokens cached before the chunk: the ring holds the last min(qPos0, W), position p at offset p mod W. */
  readonly qPos0: number;
  /** Per KV head: K and V rows of ring offsets 0 .. min(qPos0, W) - 1, f32 [numRing * d]. */
  readonly ringK: readonly Float32Array[];
  readonly ringV: readonly Float32Array[];
  /** Per KV head: admit flags of the W ring offsets (those past numRing are never read). */
  readonly ringAdm: readonly Uint8Array[];
  /** Per KV head: K and V rows of its global tokens in list order, f32 [numGlobal * d]. */
  readonly globalK: readonly Float32Array[];
  readonly globalV: readonly Float32Array[];
  /** The chunk's keys and values, f32 [T, Hkv, d]. */
  readonly kFresh: Float32Array;
  readonly vFresh: Float32Array;
  /** Per KV head: the chunk's admit flags [T] (a chunk longer than W reads its older keys by them); absent: all visible causally. */
  readonly freshAdm?: readonly Uint8Array[];
}

export interface BatchShape {
  readonly kvDType: KvDType;
  readonly numKvHeads: number;
  readonly group: number;
  readonly headDim: number;
  readonly pagesFinite?: boolean;
}

export interface LaidOut {
  readonly ptrs: PagedAttentionPointers;
  readonly params: PagedAttentionParams;
  /** First row of each sequence. */
  readonly rowStart: readonly number[];
  readonly numRows: number;
}

/** Arena per kernel set, reused across calls so memory does not grow with the suite. */
const arenas = new WeakMap<CpuKernels, { ptr: number; bytes: number }>();

/**
 * Writes a call into kernel memory; q is f32 [numRows, Hq, d] in the order
 * of `rowStart` (the caller's rows, built for the returned order).
 */
export function layOutBatch(
  kernels: CpuKernels, shape: BatchShape, seqs: readonly SeqContent[], q: (rowStart: readonly number[], numRows: number) => Float32Array, random: TestRandom,
): LaidOut & { outReference: number; inputBytes: () => Uint8Array; gapBytes: () => Uint8Array } {
  const { kvDType, numKvHeads: H, group, headDim: d } = shape;
  const Hq = H * group;
  const elemBytes = kvDType === "f32" ? 4 : 2;

  // ---- pages: every ring and global page of every sequence and head, at scattered ids
  const pagesOf = seqs.map((s) => Array.from({ length: H }, (_, g) => ({ ring: Math.ceil(s.ringK[g].length / d / PAGE_SIZE), global: Math.ceil(s.globalK[g].length / d / PAGE_SIZE) })));
  const numUsed = pagesOf.flat().reduce((n, p) => n + p.ring + p.global, 0);
  const numPages = numUsed + 1 + random.int(numUsed + 2);
  const ids = random.permutation(numPages);
  const spare = ids.slice(numUsed);
  const kValues = Float32Array.from({ length: numPages * PAGE_SIZE * d }, () => POISON * (random.next() < 0.5 ? -1 : 1) * (0.5 + random.next()));
  const vValues = Float32Array.from({ length: numPages * PAGE_SIZE * d }, () => POISON * (random.next() < 0.5 ? -1 : 1) * (0.5 + random.next()));
  let next = 0;
  const pageIds = pagesOf.map((heads) => heads.map((p) => ({ ring: Array.from({ length: p.ring }, () => ids[next++]), global: Array.from({ length: p.global }, () => ids[next++]) })));
  const store = (pages: number[], t: number, k: Float32Array, v: Float32Array, row: number) => {
    const slot = pages[t >> 4] * PAGE_SIZE + (t & 15);
    kValues.set(k.subarray(row * d, (row + 1) * d), slot * d);
    vValues.set(v.subarray(row * d, (row + 1) * d), slot * d);
  };
  seqs.forEach((s, i) => {
    for (let g = 0; g < H; g++) {
      const p = pageIds[i][g];
      for (let o = 0; o < s.ringK[g].length / d; o++) store(p.ring, o, s.ringK[g], s.ringV[g], o);
      for (let t = 0; t < s.globalK[g].length / d; t++) store(p.global, t, s.globalK[g], s.globalV[g], t);
    }
  });

  // ---- per sequence: tables (shared row or own list), counts, flags, with strides wider than needed
  const tables = seqs.map((s, i) => {
    const ringEntries = s.window / PAGE_SIZE;
    const maxGlobalPages = Math.max(0, ...pageIds[i].map((p) => p.global.length));
    const sharedRow = random.next() < 0.5;
    const ringStride = ringEntries + (sharedRow ? maxGlobalPages : 0) + 1 + random.int(3);
    const globalStride = sharedRow ? ringStride : maxGlobalPages + 1 + random.int(3);
    const ring = Int32Array.from({ length: H * ringStride }, () => random.pick(spare));
    const global = sharedRow ? ring : Int32Array.from({ length: H * globalStride }, () => random.pick(spare));
    const globalAt = sharedRow ? ringEntries : 0;
    for (let g = 0; g < H; g++) {
      ring.set(pageIds[i][g].ring, g * ringStride);
      global.set(pageIds[i][g].global, g * globalStride + globalAt);
    }
    const admStride = s.window + random.int(2) * 16 + random.int(5);
    const adm = Uint8Array.from({ length: H * admStride }, () => random.int(2));
    for (let g = 0; g < H; g++) adm.set(s.ringAdm[g], g * admStride);
    const numGlobal = Int32Array.from({ length: H }, (_, g) => s.globalK[g].length / d);
    const freshStride = s.numQueries + random.int(5);
    const fresh = Uint8Array.from({ length: s.freshAdm ? H * freshStride : 0 }, () => random.int(2));
    s.freshAdm?.forEach((flags, g) => fresh.set(flags, g * freshStride));
    return { sharedRow, ring, ringStride, global, globalStride, globalAt, adm, admStride, numGlobal, fresh, freshStride };
  });

  // ---- rows in shuffled order
  const order = random.permutation(seqs.length);
  const rowStart = new Array<number>(seqs.length);
  let numRows = 0;
  for (const i of order) {
    rowStart[i] = numRows;
    numRows += seqs[i].numQueries;
  }
  const qData = q(rowStart, numRows);
  check(qData.length === numRows * Hq * d, "q has the wrong size");
  const kFresh = new Float32Array(numRows * H * d), vFresh = new Float32Array(numRows * H * d);
  seqs.forEach((s, i) => {
    kFresh.set(s.kFresh, rowStart[i] * H * d);
    vFresh.set(s.vFresh, rowStart[i] * H * d);
  });

  // ---- the arena: inputs, then the two outputs, 64-byte gaps between regions
  const regions: [string, number][] = [
    ["kPages", kValues.length * elemBytes], ["vPages", vValues.length * elemBytes], ["q", qData.byteLength], ["kFresh", kFresh.byteLength], ["vFresh", vFresh.byteLength],
    ...tables.flatMap((t, i): [string, number][] => [[`ring${i}`, t.ring.byteLength], [`global${i}`, t.sharedRow ? 0 : t.global.byteLength], [`adm${i}`, t.adm.byteLength], [`numGlobal${i}`, t.numGlobal.byteLength], [`fresh${i}`, t.fresh.byteLength]]),
    ["records", seqs.length * PAGED_SEQ_FIELDS * 4], ["out", qData.byteLength], ["outReference", qData.byteLength],
  ];
  const offsets = new Map<string, number>();
  let total = 0;
  for (const [name, bytes] of regions) {
    offsets.set(name, total);
    total += Math.ceil(bytes / 64) * 64 + 64;
  }
  let arena = arenas.get(kernels);
  if (!arena || arena.bytes < total) {
    if (arena) kernels.free(arena.ptr);
    arena = { ptr: kernels.alloc(total), bytes: total };
    arenas.set(kernels, arena);
  }
  const base = arena.ptr;
  const at = (name: string) => base + offsets.get(name)!;
  const buffer = kernels.buffer(); // after the last alloc: a WebAssembly memory may have grown
  new Uint8Array(buffer, base, total).fill(0xff); // gaps and outputs: NaN bit patterns
  writePages(buffer, at("kPages"), kValues, kvDType);
  writePages(buffer, at("vPages"), vValues, kvDType);
  const put = (name: string, a: Float32Array | Int32Array | Uint8Array) => new Uint8Array(buffer, at(name), a.byteLength).set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  put("q", qData);
  put("kFresh", kFresh);
  put("vFresh", vFresh);
  const records = new Int32Array(seqs.length * PAGED_SEQ_FIELDS).fill(-1);
  tables.forEach((t, i) => {
    put(`ring${i}`, t.ring);
    if (!t.sharedRow) put(`global${i}`, t.global);
    put(`adm${i}`, t.adm);
    put(`numGlobal${i}`, t.numGlobal);
    put(`fresh${i}`, t.fresh);
    const r = i * PAGED_SEQ_FIELDS, s = seqs[i];
    records[r + PS_ROW0] = rowStart[i];
    records[r + PS_T] = s.numQueries;
    records[r + PS_QPOS0] = s.qPos0;
    records[r + PS_W] = s.window;
    records[r + PS_RING_TABLE] = at(`ring${i}`);
    records[r + PS_RING_STRIDE] = t.ringStride;
    records[r + PS_GLOBAL_TABLE] = (t.sharedRow ? at(`ring${i}`) : at(`global${i}`)) + t.globalAt * 4;
    records[r + PS_GLOBAL_STRIDE] = t.globalStride;
    records[r + PS_NUM_GLOBAL] = at(`numGlobal${i}`);
    records[r + PS_RING_ADM] = at(`adm${i}`);
    records[r + PS_ADM_STRIDE] = t.admStride;
    records[r + PS_FRESH_ADM] = s.freshAdm ? at(`fresh${i}`) : 0;
    records[r + PS_FRESH_STRIDE] = t.freshStride;
  });
  put("records", records);
  const ptrs: PagedAttentionPointers = { out: at("out"), q: at("q"), kFresh: at("kFresh"), vFresh: at("vFresh"), kPages: at("kPages"), vPages: at("vPages"), seqs: at("records") };
  const params: PagedAttentionParams = { numSeqs: seqs.length, numHeads: Hq, numKvHeads: H, headDim: d, scale: 1 / Math.sqrt(d), kvDType, pagesFinite: shape.pagesFinite };
  const gapStart = at("out") + qData.byteLength;
  return {
    ptrs, params, rowStart, numRows, outReference: at("outReference"),
    inputBytes: () => new Uint8Array(kernels.buffer(), base, offsets.get("out")!).slice(),
    gapBytes: () => new Uint8Array(kernels.buffer(), gapStart, at("outReference") - gapStart).slice(),
  };
}

/** Runs the kernel, then the reference on the same memory; returns copies of both outputs. */
export async function runKernelAndReference(kernels: PagedAttentionKernels, laid: ReturnType<typeof layOutBatch>, what: string): Promise<{ actual: Float32Array; expected: Float32Array }> {
  const inputsBefore = laid.inputBytes(), gapBefore = laid.gapBytes();
  // NOTE: a yield hook that always yields: a kernel that runs in groups must still finish and reduce
  const pending = kernels.pagedAttention(laid.ptrs, laid.params, () => Promise.resolve());
  if (pending) await pending;
  check(bytesEqual(laid.inputBytes(), inputsBefore) && bytesEqual(laid.gapBytes(), gapBefore), `${what}: the kernel wrote outside its output`);
  const buffer = kernels.buffer();
  referencePagedAttention(buffer, { ...laid.ptrs, out: laid.outReference }, laid.params);
  const n = laid.numRows * laid.params.numHeads * laid.params.headDim;
  return { actual: new Float32Array(buffer, laid.ptrs.out, n).slice(), expected: new Float32Array(buffer, laid.outReference, n).slice() };
}

/** Stores f32 values as kvDType pages, 16-bit ones rounded to nearest even. */
function writePages(buffer: ArrayBufferLike, ptr: number, values: Float32Array, dtype: KvDType): void {
  if (dtype === "f32") {
    new Float32Array(buffer, ptr, values.length).set(values);
    return;
  }
  const bits = new Uint16Array(buffer, ptr, values.length);
  const encode = dtype === "f16" ? f32ToF16Bits : f32ToBf16Bits;
  for (let i = 0; i < values.length; i++) bits[i] = encode(values[i]);
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
