/**
 * @module backends/cpu/pagedAttention.conformance
 *
 * The conformance suite of a paged-attention kernel (pagedAttention.ts's
 * contract): seeded random cases laid out in the kernels' own memory, run
 * through `kernels.pagedAttention` and through the literal reference
 * `referencePagedAttention` reading the very same memory, compared with
 * max abs error / max abs reference <= 1e-5.
 *
 * The cases look like what the engine hands a kernel: a page pool of f32, f16
 * or bf16 pages (16-bit pages rounded with util/halfFloat.ts, so both sides read
 * the same bits), ring pages and global pages at scattered page ids, a ring
 * filled like a real sequence's (position p at offset p mod W, partly or wholly
 * filled), random admit flags, per-head global counts that are mostly not a
 * multiple of 16, chunks of T = 1, 5 and W queries at qPos0 > 0, GQA groups 1-3
 * and head dims 16, 64, 128. Everything a kernel must not read (unused ring
 * offsets, the tail of the last global page, unlisted pages, spare block-table
 * entries) holds large "poison" values, so reading it shows; outputs start as
 * NaN, so an element left unwritten shows; inputs are compared byte for byte
 * after the call, so a stray write shows.
 *
 * Call runPagedAttentionConformance from a *.test.ts file.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "../../util/halfFloat.js";
import type { CpuKernels } from "./kernels.js";
import {
  PAGE_SIZE, referencePagedAttention,
  type KvDType, type PagedAttentionKernel, type PagedAttentionParams, type PagedAttentionPointers,
} from "./pagedAttention.js";
import { jsPagedAttention } from "./pagedAttentionJs.js";

const TOLERANCE = 1e-5;
const KV_DTYPES: readonly KvDType[] = ["f32", "f16", "bf16"];
const GROUPS = [1, 2, 3] as const;
const HEAD_DIMS = [16, 64, 128] as const;
const WINDOWS = [16, 32, 64] as const;
/** Magnitude of values a kernel must never read (representable in f16). */
const POISON = 300;

/** Kernels that implement paged attention natively. */
export type PagedAttentionKernels = CpuKernels & PagedAttentionKernel;

/** Adds the plain TypeScript paged attention (pagedAttentionJs.ts) to a kernel set. */
export function withJsPagedAttention(kernels: CpuKernels): PagedAttentionKernels {
  return Object.assign(kernels, {
    pagedAttention: (ptrs: PagedAttentionPointers, p: PagedAttentionParams) => jsPagedAttention(kernels.buffer(), ptrs, p),
  });
}

/** The shape both kinds of case share. */
export interface CaseShape {
  readonly kvDType: KvDType;
  readonly numKvHeads: number;
  /** Query heads per KV head. */
  readonly group: number;
  readonly headDim: number;
  readonly window: number;
  readonly numQueries: number;
  readonly qPos0: number;
  /** Passed on as PagedAttentionParams.pagesFinite (the case's pages are always finite). */
  readonly pagesFinite?: boolean;
}

/** One random case. */
export interface PagedAttentionCase extends CaseShape {
  /** Global tokens per KV head; length numKvHeads. */
  readonly numGlobal: readonly number[];
  /** Query scale: larger values give peaked softmaxes (the online rescaling path). */
  readonly qGain: number;
  readonly seed: number;
}

export function runPagedAttentionConformance(name: string, createKernels: () => PagedAttentionKernels | Promise<PagedAttentionKernels>): void {
  describe(`${name}: paged attention conformance`, () => {
    let kernels: PagedAttentionKernels;
    before(async () => {
      kernels = await createKernels();
    });
    after(() => kernels.dispose());

    for (const kvDType of KV_DTYPES) {
      test(`${kvDType} pages: GQA groups 1-3, head dims 16/64/128, T = 1, 5, W, ring partly and wholly filled`, () => {
        for (const c of sweepCases(kvDType)) checkCase(kernels, c);
      });
    }

    test("peaked softmaxes, empty and page-aligned global lists, far positions", () => {
      for (const c of specialCases()) checkCase(kernels, c);
    });

    test("equals dense attention under DESIGN.md §3's rule on a real sequence's ring and shuffled global pages", () => {
      let seed = 77;
      for (const kvDType of KV_DTYPES) {
        for (const [numQueries, qPos0, window] of [[1, 150, 32], [5, 97, 48], [32, 140, 32], [16, 20, 32]] as const) {
          checkDenseRule(kernels, { kvDType, numKvHeads: 2, group: 3, headDim: 16, window, numQueries, qPos0, admitRate: 0.3, seed: seed++ });
        }
      }
    });

    test("the suite sees a wrong answer (a kernel that ignores the admit flags fails it)", () => {
      const ignoreAdmitFlags: PagedAttentionKernels["pagedAttention"] = (ptrs, p) => {
        const adm = new Uint8Array(kernels.buffer(), ptrs.ringAdmitted, p.numKvHeads * p.window);
        const saved = adm.slice();
        adm.fill(1);
        kernels.pagedAttention(ptrs, p);
        adm.set(saved);
      };
      // every other member is the real kernels' (bound, since they hold private state)
      const broken = new Proxy(kernels, {
        get: (target, key) => {
          if (key === "pagedAttention") return ignoreAdmitFlags;
          const value: unknown = Reflect.get(target, key);
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
      const c: PagedAttentionCase = { kvDType: "f32", numKvHeads: 2, group: 2, headDim: 16, window: 32, numQueries: 32, qPos0: 40, numGlobal: [9, 21], qGain: 1, seed: 4242 };
      assert.throws(() => checkCase(broken, c), /relative error/);
      assert.throws(() => checkDenseRule(broken, { kvDType: "f32", numKvHeads: 2, group: 2, headDim: 16, window: 32, numQueries: 32, qPos0: 90, admitRate: 0.3, seed: 4243 }), /dense/);
    });
  });
}

/** The main sweep for one dtype: every group x head dim x chunk size x ring fill. */
function sweepCases(kvDType: KvDType): PagedAttentionCase[] {
  const cases: PagedAttentionCase[] = [];
  const rng = new Rng(1000 + KV_DTYPES.indexOf(kvDType));
  for (const group of GROUPS) {
    for (const headDim of HEAD_DIMS) {
      for (const chunk of ["one", "five", "window"] as const) {
        for (const fullRing of [false, true]) {
          // NOTE: whole-window chunks use the smaller windows to keep the suite fast (the reference is slow)
          const window = chunk !== "window" ? WINDOWS[rng.int(WINDOWS.length)] : headDim === 128 ? 16 : WINDOWS[rng.int(2)];
          const numQueries = chunk === "one" ? 1 : chunk === "five" ? 5 : window;
          // a partly filled ring means fewer than W tokens came before the chunk
          const qPos0 = fullRing ? window + rng.int(3 * window) : 1 + rng.int(window - 1);
          const numKvHeads = 1 + rng.int(headDim === 128 ? 2 : 3);
          const numGlobal = Array.from({ length: numKvHeads }, () => randomGlobalCount(rng));
          cases.push({ kvDType, numKvHeads, group, headDim, window, numQueries, qPos0, numGlobal, qGain: 1 + rng.int(3), seed: rng.int(1 << 30) });
        }
      }
    }
  }
  return cases;
}

function specialCases(): PagedAttentionCase[] {
  return [
    // peaked softmax: the running max changes late, the rescaling must be right
    { kvDType: "f32", numKvHeads: 2, group: 3, headDim: 64, window: 64, numQueries: 5, qPos0: 200, numGlobal: [37, 90], qGain: 12, seed: 1 },
    { kvDType: "bf16", numKvHeads: 1, group: 2, headDim: 128, window: 32, numQueries: 16, qPos0: 77, numGlobal: [45], qGain: 8, seed: 2 },
    // no global tokens at all, and page-aligned global counts
    { kvDType: "f16", numKvHeads: 3, group: 1, headDim: 16, window: 16, numQueries: 16, qPos0: 16, numGlobal: [0, 16, 32], qGain: 1, seed: 3 },
    { kvDType: "f32", numKvHeads: 2, group: 2, headDim: 64, window: 48, numQueries: 1, qPos0: 1, numGlobal: [0, 0], qGain: 1, seed: 4 },
    // far positions (the ring wraps many times), heads of very different lengths
    { kvDType: "f16", numKvHeads: 2, group: 3, headDim: 16, window: 64, numQueries: 64, qPos0: 5003, numGlobal: [1, 250], qGain: 2, seed: 5 },
    { kvDType: "bf16", numKvHeads: 3, group: 2, headDim: 16, window: 256, numQueries: 5, qPos0: 1000, numGlobal: [3, 0, 129], qGain: 1, seed: 6 },
  ];
}

function randomGlobalCount(rng: Rng): number {
  const r = rng.int(10);
  if (r === 0) return 0;
  if (r === 1) return 1 + rng.int(15);
  let n = 17 + rng.int(60);
  if (n % PAGE_SIZE === 0) n++;
  return n;
}

/** Builds the case in kernel memory, runs kernel and reference on it, compares. */
export function checkCase(kernels: PagedAttentionKernels, c: PagedAttentionCase): void {
  const data = randomCaseData(c);
  const { actual, expected } = runBoth(kernels, data, describeCase(c));
  const rel = relativeError(actual, expected);
  // NaN (an output left unwritten, or garbage read) fails this too
  assert.ok(rel <= TOLERANCE, `${describeCase(c)}: relative error ${rel} > ${TOLERANCE}`);
  // outputs are convex combinations of values in [-1, 1]: the reference never read poison
  assert.ok(maxAbs(expected) <= 1 + 1e-6, `${describeCase(c)}: the case is malformed (the reference read poison)`);
}

/** Runs the kernel and the reference on the same memory; returns copies of both outputs. */
function runBoth(kernels: PagedAttentionKernels, data: CaseData, what: string): { actual: Float32Array; expected: Float32Array } {
  const layout = layOut(kernels, data);
  const buffer0 = kernels.buffer();
  const inputsBefore = layout.inputBytes(buffer0);
  const gapBefore = layout.gapBytes(buffer0);
  kernels.pagedAttention(layout.ptrs, data.params);
  const buffer = kernels.buffer();
  assert.ok(bytesEqual(layout.inputBytes(buffer), inputsBefore) && bytesEqual(layout.gapBytes(buffer), gapBefore), `${what}: the kernel wrote outside its output`);
  referencePagedAttention(buffer, { ...layout.ptrs, out: layout.outReference }, data.params);
  const n = layout.outBytes / 4;
  return { actual: new Float32Array(buffer, layout.outKernel, n).slice(), expected: new Float32Array(buffer, layout.outReference, n).slice() };
}

/** max |a - b| / max |b| (NaN when either holds NaN). */
function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let maxErr = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = Math.abs(actual[i] - expected[i]);
    maxErr = Number.isNaN(e) ? NaN : Math.max(maxErr, e);
  }
  return maxErr / maxAbs(expected);
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Number.isNaN(a[i]) ? NaN : Math.max(m, Math.abs(a[i]));
  return m;
}

function describeCase(c: PagedAttentionCase): string {
  return `paged attention ${JSON.stringify(c)}`;
}

/** Everything a case puts in kernel memory, as plain host arrays. */
interface CaseData {
  readonly params: PagedAttentionParams;
  readonly numPages: number;
  readonly kValues: Float32Array; // [numPages * 16, d] before rounding to kvDType
  readonly vValues: Float32Array;
  readonly q: Float32Array; //       [T, Hq, d]
  readonly kFresh: Float32Array; //  [T, Hkv, d]
  readonly vFresh: Float32Array;
  readonly blockTables: Int32Array; // [Hkv, rowStride]
  readonly numRing: Int32Array;
  readonly numGlobal: Int32Array;
  readonly ringPositions: Int32Array; // [Hkv, W]
  readonly ringAdmitted: Uint8Array; //  [Hkv, W]
}

interface Layout {
  readonly ptrs: PagedAttentionPointers;
  readonly outKernel: number;
  readonly outReference: number;
  readonly outBytes: number;
  /** Copy of every byte before the outputs: the inputs and the gaps between them. */
  inputBytes(buffer: ArrayBufferLike): Uint8Array;
  /** Copy of the gap between the two outputs. */
  gapBytes(buffer: ArrayBufferLike): Uint8Array;
}

/** Arena per kernel set, reused across cases so memory does not grow with the suite. */
const arenas = new WeakMap<CpuKernels, { ptr: number; bytes: number }>();

/** Writes a case into kernel memory: inputs first, then the two outputs (NaN-filled), 64-byte gaps between. */
function layOut(kernels: CpuKernels, data: CaseData): Layout {
  const { kvDType } = data.params;
  const pageBytes = data.kValues.length * (kvDType === "f32" ? 4 : 2);
  const outBytes = data.q.byteLength;
  const sizes = {
    kPages: pageBytes, vPages: pageBytes, q: data.q.byteLength, kFresh: data.kFresh.byteLength, vFresh: data.vFresh.byteLength,
    blockTables: data.blockTables.byteLength, numRing: data.numRing.byteLength, numGlobal: data.numGlobal.byteLength,
    ringPositions: data.ringPositions.byteLength, ringAdmitted: data.ringAdmitted.byteLength, outKernel: outBytes, outReference: outBytes,
  };
  const offsets = {} as Record<keyof typeof sizes, number>;
  let total = 0;
  for (const key of Object.keys(sizes) as (keyof typeof sizes)[]) {
    offsets[key] = total;
    total += Math.ceil(sizes[key] / 64) * 64 + 64;
  }
  let arena = arenas.get(kernels);
  if (!arena || arena.bytes < total) {
    arena = { ptr: kernels.alloc(total), bytes: total };
    arenas.set(kernels, arena);
  }
  const base = arena.ptr;
  const ptr = (key: keyof typeof sizes) => base + offsets[key];
  const buffer = kernels.buffer(); // after the last alloc: a WebAssembly memory may have grown
  new Uint8Array(buffer, base, total).fill(0xff); // gaps and outputs hold NaN bit patterns
  writePages(buffer, ptr("kPages"), data.kValues, kvDType);
  writePages(buffer, ptr("vPages"), data.vValues, kvDType);
  for (const key of ["q", "kFresh", "vFresh", "blockTables", "numRing", "numGlobal", "ringPositions", "ringAdmitted"] as const) {
    const a = data[key];
    new Uint8Array(buffer, ptr(key), a.byteLength).set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  }
  const ptrs: PagedAttentionPointers = {
    out: ptr("outKernel"), q: ptr("q"), kFresh: ptr("kFresh"), vFresh: ptr("vFresh"), kPages: ptr("kPages"), vPages: ptr("vPages"),
    blockTables: ptr("blockTables"), numRing: ptr("numRing"), numGlobal: ptr("numGlobal"), ringPositions: ptr("ringPositions"), ringAdmitted: ptr("ringAdmitted"),
  };
  const gapStart = ptr("outKernel") + outBytes;
  return {
    ptrs, outKernel: ptr("outKernel"), outReference: ptr("outReference"), outBytes,
    inputBytes: (buf) => new Uint8Array(buf, base, offsets.outKernel).slice(),
    gapBytes: (buf) => new Uint8Array(buf, gapStart, ptr("outReference") - gapStart).slice(),
  };
}

/** A random case: scattered pages, poison wherever a kernel must not read. */
function randomCaseData(c: PagedAttentionCase): CaseData {
  const rng = new Rng(c.seed);
  const { numKvHeads: Hkv, group, headDim: d, window: W, numQueries: T, qPos0, kvDType } = c;
  const Hq = Hkv * group;
  assert.ok(T <= W && W % PAGE_SIZE === 0 && qPos0 > 0 && c.numGlobal.length === Hkv, "bad case");
  const ringEntries = W / PAGE_SIZE;
  const numRing = Math.min(qPos0, W);
  const numRingPages = Math.ceil(numRing / PAGE_SIZE);
  const globalPages = c.numGlobal.map((n) => Math.ceil(n / PAGE_SIZE));
  const rowStride = ringEntries + Math.max(...globalPages) + 1 + rng.int(3);
  const numUsed = Hkv * numRingPages + globalPages.reduce((a, b) => a + b, 0);
  const numPages = numUsed + 2 + rng.int(numUsed + 1);

  // scattered page ids: a random permutation, the first numUsed of which are listed
  const pageIds = rng.permutation(numPages);
  const unused = pageIds.slice(numUsed);
  let nextPage = 0;
  const blockTables = new Int32Array(Hkv * rowStride);
  for (let i = 0; i < blockTables.length; i++) blockTables[i] = unused[rng.int(unused.length)]; // spare entries: poison pages

  // every slot starts as poison; the slots a kernel may read get values in [-1, 1)
  const kValues = new Float32Array(numPages * PAGE_SIZE * d);
  const vValues = new Float32Array(numPages * PAGE_SIZE * d);
  for (let i = 0; i < kValues.length; i++) {
    kValues[i] = POISON * (rng.next() < 0.5 ? -1 : 1) * (0.5 + rng.next());
    vValues[i] = POISON * (rng.next() < 0.5 ? -1 : 1) * (0.5 + rng.next());
  }
  const fillSlot = (slot: number) => {
    for (let i = 0; i < d; i++) {
      kValues[slot * d + i] = rng.uniform();
      vValues[slot * d + i] = rng.uniform();
    }
  };

  const numRingArr = new Int32Array(Hkv);
  const numGlobal = Int32Array.from(c.numGlobal);
  const ringPositions = new Int32Array(Hkv * W).fill(-1);
  const ringAdmitted = new Uint8Array(Hkv * W);
  for (let h = 0; h < Hkv; h++) {
    const row = h * rowStride;
    for (let i = 0; i < numRingPages; i++) blockTables[row + i] = pageIds[nextPage++];
    for (let i = 0; i < globalPages[h]; i++) blockTables[row + ringEntries + i] = pageIds[nextPage++];
    numRingArr[h] = numRing;
    // the ring of a real sequence: the last numRing positions before qPos0, position p at offset p mod W
    const admitRate = rng.next();
    for (let p = qPos0 - numRing; p < qPos0; p++) {
      const o = p % W;
      ringPositions[h * W + o] = p;
      ringAdmitted[h * W + o] = rng.next() < admitRate ? 1 : 0;
      fillSlot(blockTables[row + (o >> 4)] * PAGE_SIZE + (o & 15));
    }
    for (let o = numRing; o < W; o++) ringAdmitted[h * W + o] = rng.int(2); // never read
    for (let t = 0; t < c.numGlobal[h]; t++) fillSlot(blockTables[row + ringEntries + (t >> 4)] * PAGE_SIZE + (t & 15));
  }
  const q = new Float32Array(T * Hq * d).map(() => rng.uniform() * c.qGain);
  const kFresh = new Float32Array(T * Hkv * d).map(() => rng.uniform());
  const vFresh = new Float32Array(T * Hkv * d).map(() => rng.uniform());
  const params: PagedAttentionParams = {
    numQueries: T, qPos0, numHeads: Hq, numKvHeads: Hkv, headDim: d, scale: 1 / Math.sqrt(d), window: W, rowStride, kvDType, pagesFinite: c.pagesFinite,
  };
  return { params, numPages, kValues, vValues, q, kFresh, vFresh, blockTables, numRing: numRingArr, numGlobal, ringPositions, ringAdmitted };
}

/** A case built from a whole sequence, so the answer also follows from the dense visibility rule. */
export interface SequenceCase extends CaseShape {
  readonly admitRate: number;
  readonly seed: number;
}

/**
 * Positions 0..qPos0+T-1 with random keys, values and admit flags: the ring
 * holds the last min(qPos0, W) positions before the chunk, the global pages the
 * admitted older ones in shuffled order (page order must not matter); the
 * kernel's output must equal dense attention with the mask "j <= i and
 * (i - j < W or j admitted)", stored keys and values read at page precision.
 */
export function checkDenseRule(kernels: PagedAttentionKernels, c: SequenceCase): void {
  const rng = new Rng(c.seed);
  const { numKvHeads: Hkv, group, headDim: d, window: W, numQueries: T, qPos0, kvDType } = c;
  const Hq = Hkv * group;
  const N = qPos0 + T;
  const round = roundTo(kvDType);
  const keys = Array.from({ length: Hkv }, () => new Float32Array(N * d).map(() => rng.uniform()));
  const values = Array.from({ length: Hkv }, () => new Float32Array(N * d).map(() => rng.uniform()));
  const admitted = Array.from({ length: Hkv }, () => Array.from({ length: N }, () => rng.next() < c.admitRate));
  const ringStart = Math.max(0, qPos0 - W);
  const globalLists = admitted.map((flags) => rng.permutation(ringStart).filter((p) => flags[p]));
  const ringEntries = W / PAGE_SIZE;
  const numRingPages = Math.ceil((qPos0 - ringStart) / PAGE_SIZE);
  const maxGlobalPages = Math.max(...globalLists.map((l) => Math.ceil(l.length / PAGE_SIZE)));
  const rowStride = ringEntries + maxGlobalPages + 1;
  const numUsed = Hkv * numRingPages + globalLists.reduce((a, l) => a + Math.ceil(l.length / PAGE_SIZE), 0);
  const numPages = numUsed + 1;
  const pageIds = rng.permutation(numPages);
  const poisonPage = pageIds[numUsed];
  let nextPage = 0;

  const kValues = new Float32Array(numPages * PAGE_SIZE * d).map(() => POISON * (rng.next() < 0.5 ? -1 : 1));
  const vValues = new Float32Array(numPages * PAGE_SIZE * d).map(() => POISON * (rng.next() < 0.5 ? -1 : 1));
  const store = (h: number, p: number, slot: number) => {
    kValues.set(keys[h].subarray(p * d, (p + 1) * d), slot * d);
    vValues.set(values[h].subarray(p * d, (p + 1) * d), slot * d);
  };
  const blockTables = new Int32Array(Hkv * rowStride).fill(poisonPage);
  const ringPositions = new Int32Array(Hkv * W).fill(-1);
  const ringAdmitted = new Uint8Array(Hkv * W);
  for (let h = 0; h < Hkv; h++) {
    const row = h * rowStride;
    for (let i = 0; i < numRingPages; i++) blockTables[row + i] = pageIds[nextPage++];
    for (let p = ringStart; p < qPos0; p++) {
      const o = p % W;
      ringPositions[h * W + o] = p;
      ringAdmitted[h * W + o] = admitted[h][p] ? 1 : 0;
      store(h, p, blockTables[row + (o >> 4)] * PAGE_SIZE + (o & 15));
    }
    const list = globalLists[h];
    for (let i = 0; i < Math.ceil(list.length / PAGE_SIZE); i++) blockTables[row + ringEntries + i] = pageIds[nextPage++];
    list.forEach((p, t) => store(h, p, blockTables[row + ringEntries + (t >> 4)] * PAGE_SIZE + (t & 15)));
  }
  const kFresh = new Float32Array(T * Hkv * d);
  const vFresh = new Float32Array(T * Hkv * d);
  for (let r = 0; r < T; r++) {
    for (let h = 0; h < Hkv; h++) {
      kFresh.set(keys[h].subarray((qPos0 + r) * d, (qPos0 + r + 1) * d), (r * Hkv + h) * d);
      vFresh.set(values[h].subarray((qPos0 + r) * d, (qPos0 + r + 1) * d), (r * Hkv + h) * d);
    }
  }
  const q = new Float32Array(T * Hq * d).map(() => rng.uniform() * 2);
  const scale = 1 / Math.sqrt(d);
  const params: PagedAttentionParams = { numQueries: T, qPos0, numHeads: Hq, numKvHeads: Hkv, headDim: d, scale, window: W, rowStride, kvDType };
  const data: CaseData = {
    params, numPages, kValues, vValues, q, kFresh, vFresh, blockTables,
    numRing: new Int32Array(Hkv).fill(qPos0 - ringStart), numGlobal: Int32Array.from(globalLists, (l) => l.length), ringPositions, ringAdmitted,
  };
  const what = `paged attention vs the dense rule ${JSON.stringify(c)}`;
  const { actual, expected } = runBoth(kernels, data, what);

  // dense attention with the visibility rule, f64; keys before the chunk come from pages
  const dense = new Float64Array(T * Hq * d);
  for (let r = 0; r < T; r++) {
    const i = qPos0 + r;
    for (let hq = 0; hq < Hq; hq++) {
      const h = Math.floor(hq / group);
      const qRow = q.subarray((r * Hq + hq) * d, (r * Hq + hq + 1) * d);
      const visible: number[] = [];
      for (let j = 0; j <= i; j++) if (i - j < W || admitted[h][j]) visible.push(j);
      const at = (a: Float32Array, j: number, k: number) => (j < qPos0 ? round(a[j * d + k]) : a[j * d + k]);
      const s = visible.map((j) => {
        let dot = 0;
        for (let k = 0; k < d; k++) dot += qRow[k] * at(keys[h], j, k);
        return dot * scale;
      });
      const max = Math.max(...s);
      const w = s.map((x) => Math.exp(x - max));
      const sum = w.reduce((a, b) => a + b, 0);
      for (let k = 0; k < d; k++) {
        let acc = 0;
        visible.forEach((j, n) => (acc += w[n] * at(values[h], j, k)));
        dense[(r * Hq + hq) * d + k] = acc / sum;
      }
    }
  }
  const relRef = relativeError(expected, dense);
  assert.ok(relRef <= TOLERANCE, `${what}: the reference differs from dense by ${relRef}`);
  const rel = relativeError(actual, dense);
  assert.ok(rel <= TOLERANCE, `${what}: the kernel differs from dense by ${rel}`);
}

/** x as stored in a page of `dtype` and read back. */
function roundTo(dtype: KvDType): (x: number) => number {
  if (dtype === "f32") return Math.fround;
  if (dtype === "f16") return (x) => f16BitsToF32(f32ToF16Bits(x));
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  return (x) => {
    u[0] = f32ToBf16Bits(x) << 16;
    return f[0];
  };
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

/** Seeded generator (mulberry32). */
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    this.#s = (this.#s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(this.#s ^ (this.#s >>> 15), 1 | this.#s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  }
  /** Uniform in [-1, 1). */
  uniform(): number {
    return this.next() * 2 - 1;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** A random permutation of 0..n-1. */
  permutation(n: number): number[] {
    const out = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }
}
