/**
 * @module backends/cpu/pagedAttention.conformance
 *
 * The conformance suite of a batched paged-attention kernel
 * (pagedAttention.ts's record contract): seeded random calls laid out in
 * the kernels' own memory (pagedAttentionLayout.ts: scattered pages, poison
 * wherever a kernel must not read, NaN outputs, stray writes detected), run
 * through `kernels.pagedAttention` and through the literal reference
 * `referencePagedAttention` reading the very same bits, compared with
 * max |error| / max |reference| <= 1e-5 (an f32 online softmax against the
 * reference's f64 two-pass one; measured ~2e-7).
 *
 * The calls look like what the engine hands a kernel: f32, f16 or bf16
 * pages (16-bit ones rounded with util/halfFloat.ts), rings partly or wholly
 * filled like a real sequence's (position p at offset p mod W), random admit
 * flags, per-head global counts mostly not a multiple of 16 (ragged heads),
 * chunks of T = 1, 5 and W at qPos0 > 0, GQA groups 1-3, head dims 16, 64
 * and 128, and batches of sequences of different T, windows and positions
 * in one call (a decode row among prefill chunks). A second check builds
 * whole sequences and compares both the kernel and the reference with dense
 * attention under DESIGN.md §3's rule; a third shows the suite fails a
 * kernel that ignores the admit flags.
 *
 * Call runPagedAttentionConformance from a *.test.ts file.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { assertClose, roundToKv, TestRandom } from "../conformance/testData.js";
import type { CpuKernels } from "./kernels.js";
import { PAGE_SIZE, readPagedSeqs, type KvDType, type PagedAttentionParams, type PagedAttentionPointers } from "./pagedAttention.js";
import { jsPagedAttention } from "./pagedAttentionJs.js";
import { layOutBatch, runKernelAndReference, type BatchShape, type PagedAttentionKernels, type SeqContent } from "./pagedAttentionLayout.js";

export type { PagedAttentionKernels };

export const TOLERANCE = 1e-5;
const KV_DTYPES: readonly KvDType[] = ["f32", "f16", "bf16"];
const WINDOWS = [16, 32, 64] as const;

/** Adds the plain TypeScript paged attention (pagedAttentionJs.ts) to a kernel set. */
export function withJsPagedAttention(kernels: CpuKernels): PagedAttentionKernels {
  return Object.assign(kernels, {
    pagedAttention: (ptrs: PagedAttentionPointers, p: PagedAttentionParams) => jsPagedAttention(kernels.buffer(), ptrs, p),
  });
}

/** One sequence of a random call. */
export interface PagedSeqCase {
  readonly window: number;
  readonly numQueries: number;
  readonly qPos0: number;
  /** Global tokens per KV head. */
  readonly numGlobal: readonly number[];
}

/** A random call: its shape, its sequences, a query scale (larger: peaked softmaxes, the online rescaling path). */
export interface PagedBatchCase extends BatchShape {
  readonly seqs: readonly PagedSeqCase[];
  readonly qGain: number;
  readonly seed: number;
}

/** A call of one sequence, as the single-sequence cases are written. */
export function oneSequence(c: BatchShape & PagedSeqCase & { qGain: number; seed: number }): PagedBatchCase {
  const { window, numQueries, qPos0, numGlobal, ...rest } = c;
  return { ...rest, seqs: [{ window, numQueries, qPos0, numGlobal }] };
}

export function runPagedAttentionConformance(name: string, createKernels: () => PagedAttentionKernels | Promise<PagedAttentionKernels>): void {
  describe(`${name}: paged attention conformance`, () => {
    let kernels: PagedAttentionKernels;
    before(async () => {
      kernels = await createKernels();
    });
    after(() => kernels.dispose());

    for (const kvDType of KV_DTYPES) {
      test(`${kvDType} pages, one sequence: GQA groups 1-3, head dims 16/64/128, T = 1, 5, W, ring partly and wholly filled`, async () => {
        for (const c of sweepCases(kvDType)) await checkBatch(kernels, c);
      });
      test(`${kvDType} pages, batches: sequences of different T, windows, positions and global counts in one call`, async () => {
        for (const c of batchCases(kvDType)) await checkBatch(kernels, c);
      });
    }

    test("peaked softmaxes, empty and page-aligned global lists, far positions", async () => {
      for (const c of specialCases()) await checkBatch(kernels, c);
    });

    test("equals dense attention under DESIGN.md §3's rule on real sequences' rings, shuffled global pages and a chunk longer than W", async () => {
      let seed = 77;
      for (const kvDType of KV_DTYPES) {
        // NOTE: [70, 30, 32] is a chunk longer than its window: its older keys follow their flags
        const seqs = [[1, 150, 32], [5, 97, 48], [32, 140, 32], [16, 20, 32], [70, 30, 32]].map(([numQueries, qPos0, window]) => ({ numQueries, qPos0, window, admitRate: 0.3 }));
        await checkDenseRule(kernels, { kvDType, numKvHeads: 2, group: 3, headDim: 16, seqs, seed: seed++ });
        for (const s of seqs) await checkDenseRule(kernels, { kvDType, numKvHeads: 2, group: 3, headDim: 16, seqs: [s], seed: seed++ });
      }
    });

    test("the suite sees a wrong answer (a kernel that ignores the admit flags fails it)", async () => {
      const ignoreAdmitFlags: PagedAttentionKernels["pagedAttention"] = (ptrs, p, maybeYield) => {
        const buffer = kernels.buffer();
        const saved = readPagedSeqs(buffer, ptrs.seqs, p.numSeqs).map((s) => {
          const flags = new Uint8Array(buffer, s.ringAdm, p.numKvHeads * s.admStride);
          const copy = flags.slice();
          flags.fill(1);
          return () => flags.set(copy);
        });
        const done = () => saved.forEach((restore) => restore());
        const pending = kernels.pagedAttention(ptrs, p, maybeYield);
        if (!pending) return done();
        return pending.then(done);
      };
      // every other member is the real kernels' (bound, since they hold private state)
      const broken = new Proxy(kernels, {
        get: (target, key) => {
          if (key === "pagedAttention") return ignoreAdmitFlags;
          const value: unknown = Reflect.get(target, key);
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
      const c = oneSequence({ kvDType: "f32", numKvHeads: 2, group: 2, headDim: 16, window: 32, numQueries: 32, qPos0: 40, numGlobal: [9, 21], qGain: 1, seed: 4242 });
      // NOTE: the flags are ignored during the kernel only; the reference reads the real ones
      await assert.rejects(checkBatch(broken, c), /relative error/);
      await assert.rejects(checkDenseRule(broken, { kvDType: "f32", numKvHeads: 2, group: 2, headDim: 16, seqs: [{ numQueries: 32, qPos0: 90, window: 32, admitRate: 0.3 }], seed: 4243 }), /dense/);
    });
  });
}

/** The main sweep for one dtype: every group x head dim x chunk size x ring fill. */
function sweepCases(kvDType: KvDType): PagedBatchCase[] {
  const cases: PagedBatchCase[] = [];
  const random = new TestRandom(1000 + KV_DTYPES.indexOf(kvDType));
  for (const group of [1, 2, 3]) {
    for (const headDim of [16, 64, 128]) {
      for (const chunk of ["one", "five", "window"] as const) {
        for (const fullRing of [false, true]) {
          // NOTE: whole-window chunks use the smaller windows to keep the suite fast (the reference is slow)
          const window = chunk !== "window" ? random.pick(WINDOWS) : headDim === 128 ? 16 : random.pick(WINDOWS.slice(0, 2));
          const numQueries = chunk === "one" ? 1 : chunk === "five" ? 5 : window;
          // a partly filled ring means fewer than W tokens came before the chunk
          const qPos0 = fullRing ? window + random.int(3 * window) : 1 + random.int(window - 1);
          const numKvHeads = 1 + random.int(headDim === 128 ? 2 : 3);
          const numGlobal = Array.from({ length: numKvHeads }, () => randomGlobalCount(random));
          cases.push(oneSequence({ kvDType, numKvHeads, group, headDim, window, numQueries, qPos0, numGlobal, qGain: 1 + random.int(3), seed: random.int(1 << 30) }));
        }
      }
    }
  }
  return cases;
}

/** Batches of 2-5 sequences: decode rows among prefill chunks, each with its own window and position. */
function batchCases(kvDType: KvDType): PagedBatchCase[] {
  const random = new TestRandom(1100 + KV_DTYPES.indexOf(kvDType));
  return Array.from({ length: 8 }, (_, i) => {
    const numKvHeads = 1 + random.int(3), group = 1 + random.int(3), headDim = random.pick([16, 64]);
    const seqs = Array.from({ length: 2 + random.int(4) }, (_, s) => {
      const window = random.pick(WINDOWS);
      const numQueries = s === 0 ? 1 : random.pick([1, 3, 16, window]);
      const qPos0 = random.next() < 0.5 ? random.int(window) : window + random.int(4 * window);
      return { window, numQueries, qPos0, numGlobal: Array.from({ length: numKvHeads }, () => (qPos0 < window ? 0 : randomGlobalCount(random))) };
    });
    return { kvDType, numKvHeads, group, headDim, pagesFinite: kvDType === "f16" && i % 2 === 1, seqs, qGain: 1 + random.int(3), seed: random.int(1 << 30) };
  });
}

function specialCases(): PagedBatchCase[] {
  return [
    // peaked softmax: the running max changes late, the rescaling must be right
    oneSequence({ kvDType: "f32", numKvHeads: 2, group: 3, headDim: 64, window: 64, numQueries: 5, qPos0: 200, numGlobal: [37, 90], qGain: 12, seed: 1 }),
    oneSequence({ kvDType: "bf16", numKvHeads: 1, group: 2, headDim: 128, window: 32, numQueries: 16, qPos0: 77, numGlobal: [45], qGain: 8, seed: 2 }),
    // no global tokens at all, and page-aligned global counts
    oneSequence({ kvDType: "f16", numKvHeads: 3, group: 1, headDim: 16, window: 16, numQueries: 16, qPos0: 16, numGlobal: [0, 16, 32], qGain: 1, seed: 3 }),
    oneSequence({ kvDType: "f32", numKvHeads: 2, group: 2, headDim: 64, window: 48, numQueries: 1, qPos0: 1, numGlobal: [0, 0], qGain: 1, seed: 4 }),
    // nothing cached: the chunk attends to itself only
    oneSequence({ kvDType: "f32", numKvHeads: 2, group: 2, headDim: 16, window: 32, numQueries: 19, qPos0: 0, numGlobal: [0, 0], qGain: 1, seed: 7 }),
    // far positions (the ring wraps many times), heads of very different lengths
    oneSequence({ kvDType: "f16", numKvHeads: 2, group: 3, headDim: 16, window: 64, numQueries: 64, qPos0: 5003, numGlobal: [1, 250], qGain: 2, seed: 5 }),
    oneSequence({ kvDType: "bf16", numKvHeads: 3, group: 2, headDim: 16, window: 256, numQueries: 5, qPos0: 1000, numGlobal: [3, 0, 129], qGain: 1, seed: 6 }),
  ];
}

function randomGlobalCount(random: TestRandom): number {
  const r = random.int(10);
  if (r === 0) return 0;
  if (r === 1) return 1 + random.int(15);
  let n = 17 + random.int(60);
  if (n % PAGE_SIZE === 0) n++;
  return n;
}

/** A sequence with random rows everywhere a kernel may read. */
function randomContent(random: TestRandom, s: PagedSeqCase, H: number, d: number): SeqContent {
  const numRing = Math.min(s.qPos0, s.window);
  const rows = (n: number) => Array.from({ length: H }, () => random.floats(n * d));
  const admitRates = Array.from({ length: H }, () => random.next());
  return {
    window: s.window, numQueries: s.numQueries, qPos0: s.qPos0,
    ringK: rows(numRing), ringV: rows(numRing),
    ringAdm: admitRates.map((rate) => Uint8Array.from({ length: s.window }, () => (random.next() < rate ? 1 : 0))),
    globalK: s.numGlobal.map((n) => random.floats(n * d)), globalV: s.numGlobal.map((n) => random.floats(n * d)),
    kFresh: random.floats(s.numQueries * H * d), vFresh: random.floats(s.numQueries * H * d),
  };
}

/** A random call laid out in the kernels' memory. */
export function layOutRandomBatch(kernels: PagedAttentionKernels, c: PagedBatchCase): ReturnType<typeof layOutBatch> {
  const random = new TestRandom(c.seed);
  const { numKvHeads: H, group, headDim: d } = c;
  const seqs = c.seqs.map((s) => randomContent(random, s, H, d));
  return layOutBatch(kernels, c, seqs, (_, numRows) => random.floats(numRows * H * group * d, c.qGain), random);
}

/** Lays the call out, runs kernel and reference on it, compares. */
export async function checkBatch(kernels: PagedAttentionKernels, c: PagedBatchCase): Promise<void> {
  const laid = layOutRandomBatch(kernels, c);
  const what = `paged attention ${JSON.stringify(c)}`;
  const { actual, expected } = await runKernelAndReference(kernels, laid, what);
  // NaN (an output left unwritten, or garbage read) fails this too
  assertClose(actual, expected, TOLERANCE, what);
  // outputs are convex combinations of values in [-1, 1]: the reference never read poison
  assert.ok(expected.every((x) => Math.abs(x) <= 1 + 1e-6), `${what}: the case is malformed (the reference read poison)`);
}

/** A call built from whole sequences, so the answer also follows from the dense visibility rule. */
export interface DenseBatchCase extends BatchShape {
  readonly seqs: readonly { readonly window: number; readonly numQueries: number; readonly qPos0: number; readonly admitRate: number }[];
  readonly seed: number;
}

/**
 * Positions 0 .. qPos0 + T - 1 of each sequence with random keys, values and
 * admit flags: the ring holds the last min(qPos0, W) positions before the
 * chunk, the global pages the admitted older ones in shuffled order (page
 * order must not matter); kernel and reference must equal dense attention
 * with the mask "j <= i and (i - j < W or j admitted)", cached keys and
 * values read at page precision.
 */
export async function checkDenseRule(kernels: PagedAttentionKernels, c: DenseBatchCase): Promise<void> {
  const random = new TestRandom(c.seed);
  const { numKvHeads: H, group, headDim: d, kvDType } = c;
  const Hq = H * group;
  const round = roundToKv(kvDType);
  const histories = c.seqs.map((s) => {
    const N = s.qPos0 + s.numQueries;
    const keys = Array.from({ length: H }, () => random.floats(N * d));
    const values = Array.from({ length: H }, () => random.floats(N * d));
    const admitted = Array.from({ length: H }, () => Array.from({ length: N }, () => random.next() < s.admitRate));
    const ringStart = Math.max(0, s.qPos0 - s.window);
    const globalLists = admitted.map((flags) => random.permutation(ringStart).filter((p) => flags[p]));
    return { keys, values, admitted, ringStart, globalLists };
  });
  const rowsOf = (a: Float32Array, positions: readonly number[]) => {
    const out = new Float32Array(positions.length * d);
    positions.forEach((p, i) => out.set(a.subarray(p * d, (p + 1) * d), i * d));
    return out;
  };
  const contents: SeqContent[] = c.seqs.map((s, i) => {
    const h = histories[i];
    const numRing = s.qPos0 - h.ringStart;
    const ringPositions = Array.from({ length: numRing }, (_, o) => o + s.window * Math.floor((s.qPos0 - 1 - o) / s.window));
    const fresh = (pick: (g: number) => Float32Array) => {
      const out = new Float32Array(s.numQueries * H * d);
      for (let r = 0; r < s.numQueries; r++) for (let g = 0; g < H; g++) out.set(pick(g).subarray((s.qPos0 + r) * d, (s.qPos0 + r + 1) * d), (r * H + g) * d);
      return out;
    };
    return {
      window: s.window, numQueries: s.numQueries, qPos0: s.qPos0,
      ringK: h.keys.map((k) => rowsOf(k, ringPositions)), ringV: h.values.map((v) => rowsOf(v, ringPositions)),
      // offsets past the ring's tokens are never read: random
      ringAdm: h.admitted.map((flags) => Uint8Array.from({ length: s.window }, (_, o) => (o < numRing ? Number(flags[ringPositions[o]]) : random.int(2)))),
      globalK: h.keys.map((k, g) => rowsOf(k, h.globalLists[g])), globalV: h.values.map((v, g) => rowsOf(v, h.globalLists[g])),
      kFresh: fresh((g) => h.keys[g]), vFresh: fresh((g) => h.values[g]),
      freshAdm: h.admitted.map((flags) => Uint8Array.from({ length: s.numQueries }, (_, r) => Number(flags[s.qPos0 + r]))),
    };
  });
  let q: Float32Array = new Float32Array(0);
  const laid = layOutBatch(kernels, c, contents, (_, numRows) => (q = random.floats(numRows * Hq * d, 2)), random);
  const what = `paged attention vs the dense rule ${JSON.stringify(c)}`;
  const { actual, expected } = await runKernelAndReference(kernels, laid, what);

  // dense attention with the visibility rule, f64; keys before the chunk come from pages
  const dense = new Float64Array(laid.numRows * Hq * d);
  c.seqs.forEach((s, i) => {
    const h = histories[i];
    for (let r = 0; r < s.numQueries; r++) {
      const pos = s.qPos0 + r;
      for (let hq = 0; hq < Hq; hq++) {
        const g = Math.floor(hq / group);
        const qBase = ((laid.rowStart[i] + r) * Hq + hq) * d;
        const visible: number[] = [];
        for (let j = 0; j <= pos; j++) if (pos - j < s.window || h.admitted[g][j]) visible.push(j);
        const at = (a: Float32Array, j: number, k: number) => (j < s.qPos0 ? round(a[j * d + k]) : a[j * d + k]);
        const scores = visible.map((j) => {
          let dot = 0;
          for (let k = 0; k < d; k++) dot += q[qBase + k] * at(h.keys[g], j, k);
          return dot / Math.sqrt(d);
        });
        const max = Math.max(...scores);
        const w = scores.map((x) => Math.exp(x - max));
        const sum = w.reduce((a, b) => a + b, 0);
        for (let k = 0; k < d; k++) {
          let acc = 0;
          visible.forEach((j, n) => (acc += w[n] * at(h.values[g], j, k)));
          dense[qBase + k] = acc / sum;
        }
      }
    }
  });
  assertClose(expected, dense, TOLERANCE, `${what}: the reference`);
  assertClose(actual, dense, TOLERANCE, `${what}: the kernel`);
}
