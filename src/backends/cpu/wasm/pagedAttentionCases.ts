/**
 * @module backends/cpu/wasm/pagedAttentionCases
 *
 * Cases for a native paged attention beyond the shared suite
 * (pagedAttention.conformance.ts): the chunk sizes the engine produces
 * (decode T = 1, short tails T = 3, T = 16 = one page, whole windows T = W),
 * ragged heads (one KV head without global tokens, another with many, so
 * that a multi-threaded plan splits it along keys), every page dtype, GQA
 * groups 1-3 and head dims 16/64/128, steps of several sequences (decode
 * rows among prefill chunks, long ragged decodes side by side), every f16
 * and bf16 bit pattern, and the `pagesFinite` fast path; each compared with
 * the literal reference reading the same stored bits (1e-5 relative).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { bf16BitsToF32, f16BitsToF32 } from "../../../util/halfFloat.js";
import { assertClose, TestRandom } from "../../conformance/testData.js";
import { checkBatch, layOutRandomBatch, oneSequence, TOLERANCE, type PagedAttentionKernels, type PagedBatchCase } from "../pagedAttention.conformance.js";
import { layOutBatch, runKernelAndReference } from "../pagedAttentionLayout.js";
import {
  PAGED_SEQ_FIELDS, PS_ADM_STRIDE, PS_GLOBAL_STRIDE, PS_GLOBAL_TABLE, PS_NUM_GLOBAL, PS_QPOS0, PS_RING_ADM, PS_RING_STRIDE, PS_RING_TABLE, PS_ROW0, PS_T, PS_W,
  type KvDType, type PagedAttentionParams,
} from "../pagedAttention.js";

const KV_DTYPES: readonly KvDType[] = ["f32", "f16", "bf16"];

export function runWasmPagedAttentionCases(name: string, createKernels: () => Promise<PagedAttentionKernels>): void {
  describe(`${name}: paged attention, engine-shaped cases`, () => {
    let kernels: PagedAttentionKernels;
    const withKernels = (fn: (k: PagedAttentionKernels) => Promise<void> | void) => async () => {
      kernels = await createKernels();
      try {
        await fn(kernels);
      } finally {
        kernels.dispose();
      }
    };

    for (const kvDType of KV_DTYPES) {
      test(`${kvDType} pages: T = 1, 3, 16, W; ragged heads; rings partly and wholly filled`, withKernels(async (k) => {
        for (const c of engineCases(kvDType)) await checkBatch(k, c);
      }));
    }

    test("steps of several sequences: decode rows among prefill chunks, different windows and positions, every page dtype", withKernels(async (k) => {
      for (const c of stepCases()) await checkBatch(k, c);
    }));

    for (const kvDType of ["f16", "bf16"] as const) {
      test(`every ${kvDType} bit pattern is read exactly (subnormals, infinities, NaN)`, withKernels((k) => checkEveryHalf(k, kvDType, false)));
    }

    test("f16 pages known finite (pagesFinite): every finite bit pattern read exactly, a third of the engine cases as before", withKernels(async (k) => {
      checkEveryHalf(k, "f16", true);
      // NOTE: a third keeps the suite fast; the batch cases of the shared suite run pagesFinite too
      for (const c of engineCases("f16").filter((_, i) => i % 3 === 1)) await checkBatch(k, { ...c, pagesFinite: true });
    }));

    test("long ragged decodes (split along keys when threads > 1), alone and side by side, and a whole 256-token window", withKernels(async (k) => {
      for (const c of longCases()) await checkBatch(k, c);
    }));

    // NOTE: the kernel multiplies every key of a block up to the last visible one by its weight, 0 for a key the row
    // must not see, and 0 * infinity is NaN; once the pool saw an infinity written (pagesFinite false) it guards them.
    test("a key the rule hides never affects the output, even when its stored value is infinite (f16 overflow, f32 inf)", withKernels(async (k) => {
      for (const kvDType of ["f16", "f32"] as const) await checkHiddenInfinity(k, kvDType);
    }));

    test("a call longer than a slice runs its tasks in groups, yielding between them, to the same bits as at once", withKernels(async (k) => {
      // NOTE: compared with the same kernel run at once, not with the slow reference: the tasks and the reduce are the same
      const cases: PagedBatchCase[] = [
        // a prefill chunk beside a decode: many tasks, none split
        {
          kvDType: "f16", numKvHeads: 2, group: 3, headDim: 64, qGain: 2, seed: 31, seqs: [
            { window: 256, numQueries: 256, qPos0: 4000, numGlobal: [3000, 2500] },
            { window: 256, numQueries: 1, qPos0: 6000, numGlobal: [5000, 100] },
          ],
        },
        // one decode of 48 query heads on one KV head: one long task, split along keys (then reduced) when threads > 1
        { kvDType: "bf16", numKvHeads: 1, group: 48, headDim: 64, qGain: 1, seed: 32, seqs: [{ window: 256, numQueries: 1, qPos0: 22100, numGlobal: [21800] }] },
      ];
      for (const c of cases) {
        const laid = layOutRandomBatch(k, c);
        const n = laid.numRows * laid.params.numHeads * laid.params.headDim;
        assert.equal(k.pagedAttention(laid.ptrs, laid.params), undefined, "without a yield hook the call runs at once");
        const atOnce = new Float32Array(k.buffer(), laid.ptrs.out, n).slice();
        new Float32Array(k.buffer(), laid.ptrs.out, n).fill(NaN);
        let turns = 0;
        const pending = k.pagedAttention(laid.ptrs, laid.params, () => (turns++, new Promise<void>((resolve) => setImmediate(resolve))));
        assert.ok(pending instanceof Promise, "with a yield hook a long call runs in groups");
        await pending;
        assert.ok(turns >= 1, `${turns} turns of the event loop`);
        const grouped = new Float32Array(k.buffer(), laid.ptrs.out, n);
        assert.ok(atOnce.every((x) => Number.isFinite(x)) && grouped.every((x, i) => Object.is(x, atOnce[i])), `seed ${c.seed}: the grouped run differs`);
      }
    }));
  });
}

function engineCases(kvDType: KvDType): PagedBatchCase[] {
  const random = new TestRandom(7000 + KV_DTYPES.indexOf(kvDType));
  const cases: PagedBatchCase[] = [];
  for (const group of [1, 2, 3]) {
    for (const headDim of [16, 64, 128]) {
      for (const chunk of [1, 3, 16, "W"] as const) {
        for (const fullRing of [false, true]) {
          const window = chunk === "W" ? (headDim === 128 ? 32 : 64) : random.pick([32, 64, 256]);
          const numQueries = chunk === "W" ? window : chunk;
          const qPos0 = fullRing ? window + 1 + random.int(4 * window) : 1 + random.int(window - 1);
          const numKvHeads = 1 + random.int(3);
          // ragged: the first head has no global token, the others some (rarely a whole number of pages)
          const numGlobal = Array.from({ length: numKvHeads }, (_, g) => (g === 0 && numKvHeads > 1 ? 0 : 1 + random.int(120)));
          cases.push(oneSequence({ kvDType, numKvHeads, group, headDim, window, numQueries, qPos0, numGlobal, qGain: 1 + random.int(4), seed: random.int(1 << 30) }));
        }
      }
    }
  }
  return cases;
}

function stepCases(): PagedBatchCase[] {
  return [
    {
      kvDType: "f32", numKvHeads: 2, group: 3, headDim: 64, qGain: 2, seed: 21, seqs: [
        { window: 256, numQueries: 1, qPos0: 900, numGlobal: [40, 600] },
        { window: 64, numQueries: 64, qPos0: 130, numGlobal: [33, 0] },
        { window: 32, numQueries: 3, qPos0: 7, numGlobal: [0, 0] },
        { window: 256, numQueries: 1, qPos0: 300, numGlobal: [0, 44] },
      ],
    },
    {
      kvDType: "f16", numKvHeads: 1, group: 2, headDim: 128, qGain: 1, seed: 22, seqs: [
        { window: 32, numQueries: 16, qPos0: 32, numGlobal: [16] },
        { window: 64, numQueries: 1, qPos0: 1000, numGlobal: [500] },
      ],
    },
    {
      kvDType: "bf16", numKvHeads: 3, group: 1, headDim: 16, qGain: 3, seed: 23, seqs: [
        { window: 16, numQueries: 1, qPos0: 70, numGlobal: [5, 17, 0] },
        { window: 16, numQueries: 1, qPos0: 71, numGlobal: [6, 17, 1] },
        { window: 48, numQueries: 48, qPos0: 0, numGlobal: [0, 0, 0] },
        { window: 16, numQueries: 9, qPos0: 200, numGlobal: [100, 3, 64] },
      ],
    },
  ];
}

function longCases(): PagedBatchCase[] {
  return [
    oneSequence({ kvDType: "f32", numKvHeads: 2, group: 3, headDim: 64, window: 256, numQueries: 1, qPos0: 3000, numGlobal: [0, 2000], qGain: 2, seed: 11 }),
    oneSequence({ kvDType: "f16", numKvHeads: 2, group: 3, headDim: 64, window: 256, numQueries: 1, qPos0: 3000, numGlobal: [1500, 7], qGain: 2, seed: 12 }),
    oneSequence({ kvDType: "bf16", numKvHeads: 3, group: 2, headDim: 128, window: 64, numQueries: 3, qPos0: 2000, numGlobal: [900, 0, 333], qGain: 2, seed: 13 }),
    oneSequence({ kvDType: "f32", numKvHeads: 1, group: 1, headDim: 64, window: 256, numQueries: 256, qPos0: 700, numGlobal: [301], qGain: 1, seed: 14 }),
    oneSequence({ kvDType: "f16", numKvHeads: 2, group: 2, headDim: 64, window: 256, numQueries: 1, qPos0: 5, numGlobal: [0, 0], qGain: 1, seed: 15 }),
    {
      kvDType: "f32", numKvHeads: 2, group: 3, headDim: 64, qGain: 2, seed: 16, seqs: [
        { window: 256, numQueries: 1, qPos0: 2500, numGlobal: [1800, 30] },
        { window: 256, numQueries: 1, qPos0: 1200, numGlobal: [0, 900] },
        { window: 64, numQueries: 2, qPos0: 64, numGlobal: [0, 0] },
      ],
    },
  ];
}

/**
 * A decode at position 32 with W = 16: the ring holds positions 16..31, and
 * position 16 (offset 0, not admitted) is out of its window, so hidden; that
 * token's value is 1e6 (infinity once stored in f16) or infinity. The
 * reference ignores what a query does not see.
 */
async function checkHiddenInfinity(kernels: PagedAttentionKernels, kvDType: "f16" | "f32"): Promise<void> {
  const random = new TestRandom(41);
  const d = 16, W = 16;
  const ringV = random.floats(W * d);
  ringV.fill(kvDType === "f16" ? 1e6 : Infinity, 0, d);
  const seq = (numQueries: number) => ({
    window: W, numQueries, qPos0: 32, ringK: [random.floats(W * d)], ringV: [ringV], ringAdm: [new Uint8Array(W)],
    globalK: [new Float32Array(0)], globalV: [new Float32Array(0)], kFresh: random.floats(numQueries * d), vFresh: random.floats(numQueries * d),
  });
  const laid = layOutBatch(kernels, { kvDType, numKvHeads: 1, group: 2, headDim: d }, [seq(1)], (_, n) => random.floats(n * 2 * d), random);
  const { actual, expected } = await runKernelAndReference(kernels, laid, "hidden infinity");
  assert.ok(expected.every(Number.isFinite), "the reference ignores the hidden token");
  assertClose(actual, expected, TOLERANCE, `${kvDType} pages: a decode that must not see an infinite value`);
}

/**
 * One query, nothing cached but one global token whose value row holds 256
 * of the 65536 bit patterns; q and every key are zero, so the query weighs
 * that token and its own (zero) value equally: out = v / 2, exact in f32 for
 * every half, subnormals and infinities included.
 */
function checkEveryHalf(kernels: PagedAttentionKernels, kvDType: "f16" | "bf16", pagesFinite: boolean): void {
  const d = 256;
  const decode = kvDType === "f16" ? f16BitsToF32 : bf16BitsToF32;
  const bytes = { out: d * 4, q: d * 4, kFresh: d * 4, vFresh: d * 4, kPages: 16 * d * 2, vPages: 16 * d * 2, ring: 4, global: 4, numGlobal: 4, adm: 16, seqs: PAGED_SEQ_FIELDS * 4 };
  const at = Object.fromEntries(Object.entries(bytes).map(([name, n]) => [name, kernels.alloc(n)])) as Record<keyof typeof bytes, number>;
  const buffer = kernels.buffer();
  for (const [name, n] of Object.entries(bytes)) new Uint8Array(buffer, at[name as keyof typeof bytes], n).fill(0); // zero q, keys, values, tables
  new Int32Array(buffer, at.numGlobal, 1)[0] = 1; // the global table's one entry names page 0
  const record = new Int32Array(buffer, at.seqs, PAGED_SEQ_FIELDS);
  record[PS_ROW0] = 0;
  record[PS_T] = 1;
  record[PS_QPOS0] = 0;
  record[PS_W] = 16;
  record[PS_RING_TABLE] = at.ring;
  record[PS_RING_STRIDE] = 1;
  record[PS_GLOBAL_TABLE] = at.global;
  record[PS_GLOBAL_STRIDE] = 1;
  record[PS_NUM_GLOBAL] = at.numGlobal;
  record[PS_RING_ADM] = at.adm;
  record[PS_ADM_STRIDE] = 16;
  const params: PagedAttentionParams = { numSeqs: 1, numHeads: 1, numKvHeads: 1, headDim: d, scale: 1, kvDType, pagesFinite };
  const ptrs = { out: at.out, q: at.q, kFresh: at.kFresh, vFresh: at.vFresh, kPages: at.kPages, vPages: at.vPages, seqs: at.seqs };
  // pages known finite hold no all-ones exponent: those patterns are left out (read as 0)
  const skipped = (bits: number) => pagesFinite && (bits & 0x7c00) === 0x7c00;
  const row = new Uint16Array(buffer, at.vPages, d);
  const out = new Float32Array(buffer, at.out, d);
  for (let base = 0; base < 65536; base += d) {
    for (let i = 0; i < d; i++) row[i] = skipped(base + i) ? 0 : base + i;
    const pending = kernels.pagedAttention(ptrs, params);
    assert.equal(pending, undefined, "a call this small runs synchronously");
    for (let i = 0; i < d; i++) {
      const want = skipped(base + i) ? 0 : decode(base + i);
      if (!(out[i] * 2 === want || (Number.isNaN(want) && Number.isNaN(out[i])))) assert.fail(`${kvDType} bits 0x${(base + i).toString(16)}: read ${out[i] * 2}, want ${want}`);
    }
  }
  for (const ptr of Object.values(at)) kernels.free(ptr);
}
