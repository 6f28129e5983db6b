/**
 * @module backends/cpu/wasm/pagedAttentionCases
 *
 * Cases for a native paged attention beyond the shared suite
 * (pagedAttention.conformance.ts): the chunk sizes the engine produces
 * (decode T = 1, short tails T = 3, T = 16 = one page, whole windows T = W),
 * ragged heads (one KV head without global tokens, another with many, so that
 * a multi-threaded plan splits it along keys), every page dtype, GQA groups
 * 1-3 and head dims 16/64/128; each compared with the literal reference
 * reading the same stored bits (1e-5 relative).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { f16BitsToF32 } from "../../../util/halfFloat.js";
import { checkCase, Rng, type PagedAttentionCase, type PagedAttentionKernels } from "../pagedAttention.conformance.js";
import type { KvDType, PagedAttentionParams } from "../pagedAttention.js";

const KV_DTYPES: readonly KvDType[] = ["f32", "f16", "bf16"];

export function runWasmPagedAttentionCases(name: string, createKernels: () => Promise<PagedAttentionKernels>): void {
  describe(`${name}: paged attention, engine-shaped cases`, () => {
    for (const kvDType of KV_DTYPES) {
      test(`${kvDType} pages: T = 1, 3, 16, W; ragged heads; rings partly and wholly filled`, async () => {
        const kernels = await createKernels();
        try {
          for (const c of engineCases(kvDType)) checkCase(kernels, c);
        } finally {
          kernels.dispose();
        }
      });
    }

    for (const kvDType of ["f16", "bf16"] as const) {
      test(`every ${kvDType} bit pattern is read exactly (subnormals, infinities, NaN)`, async () => {
        const kernels = await createKernels();
        try {
          checkEveryHalf(kernels, kvDType, false);
        } finally {
          kernels.dispose();
        }
      });
    }

    test("f16 pages known finite (pagesFinite): every finite bit pattern read exactly, engine cases as before", async () => {
      const kernels = await createKernels();
      try {
        checkEveryHalf(kernels, "f16", true);
        for (const c of engineCases("f16")) checkCase(kernels, { ...c, pagesFinite: true });
      } finally {
        kernels.dispose();
      }
    });

    test("long ragged decode (split along keys when threads > 1) and a whole 256-token window", async () => {
      const kernels = await createKernels();
      try {
        for (const c of longCases()) checkCase(kernels, c);
      } finally {
        kernels.dispose();
      }
    });
  });
}

function engineCases(kvDType: KvDType): PagedAttentionCase[] {
  const rng = new Rng(7000 + KV_DTYPES.indexOf(kvDType));
  const cases: PagedAttentionCase[] = [];
  for (const group of [1, 2, 3]) {
    for (const headDim of [16, 64, 128]) {
      for (const chunk of [1, 3, 16, "W"] as const) {
        for (const fullRing of [false, true]) {
          const window = chunk === "W" ? (headDim === 128 ? 32 : 64) : [32, 64, 256][rng.int(3)];
          const numQueries = chunk === "W" ? window : chunk;
          const qPos0 = fullRing ? window + 1 + rng.int(4 * window) : 1 + rng.int(window - 1);
          const numKvHeads = 1 + rng.int(3);
          // ragged: the first head has no global token, the others some (rarely a whole number of pages)
          const numGlobal = Array.from({ length: numKvHeads }, (_, g) => (g === 0 && numKvHeads > 1 ? 0 : 1 + rng.int(120)));
          cases.push({ kvDType, numKvHeads, group, headDim, window, numQueries, qPos0, numGlobal, qGain: 1 + rng.int(4), seed: rng.int(1 << 30) });
        }
      }
    }
  }
  return cases;
}

function longCases(): PagedAttentionCase[] {
  return [
    { kvDType: "f32", numKvHeads: 2, group: 3, headDim: 64, window: 256, numQueries: 1, qPos0: 3000, numGlobal: [0, 2000], qGain: 2, seed: 11 },
    { kvDType: "f16", numKvHeads: 2, group: 3, headDim: 64, window: 256, numQueries: 1, qPos0: 3000, numGlobal: [1500, 7], qGain: 2, seed: 12 },
    { kvDType: "bf16", numKvHeads: 3, group: 2, headDim: 128, window: 64, numQueries: 3, qPos0: 2000, numGlobal: [900, 0, 333], qGain: 2, seed: 13 },
    { kvDType: "f32", numKvHeads: 1, group: 1, headDim: 64, window: 256, numQueries: 256, qPos0: 700, numGlobal: [301], qGain: 1, seed: 14 },
    { kvDType: "f16", numKvHeads: 2, group: 2, headDim: 64, window: 256, numQueries: 1, qPos0: 5, numGlobal: [0, 0], qGain: 1, seed: 15 },
  ];
}

/**
 * One query, zero keys: it attends equally to one global token whose value row
 * holds 256 of the 65536 bit patterns and to its own zero value, so out = v / 2,
 * exactly in f32 for every half, subnormals and infinities included.
 */
function checkEveryHalf(kernels: PagedAttentionKernels, kvDType: "f16" | "bf16", pagesFinite: boolean): void {
  const d = 256;
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  const decode = kvDType === "f16" ? f16BitsToF32 : (bits: number) => ((u32[0] = bits << 16), f32[0]);
  const at = {
    out: kernels.alloc(d * 4), q: kernels.alloc(d * 4), kFresh: kernels.alloc(d * 4), vFresh: kernels.alloc(d * 4),
    kPages: kernels.alloc(16 * d * 2), vPages: kernels.alloc(16 * d * 2), blockTables: kernels.alloc(8),
    numRing: kernels.alloc(4), numGlobal: kernels.alloc(4), ringPositions: kernels.alloc(64), ringAdmitted: kernels.alloc(16),
  };
  const buffer = kernels.buffer();
  new Uint8Array(buffer, at.out, at.ringAdmitted + 16 - at.out).fill(0); // zero q, keys, fresh value, tables
  new Int32Array(buffer, at.numGlobal, 1)[0] = 1;
  const params: PagedAttentionParams = { numQueries: 1, qPos0: 0, numHeads: 1, numKvHeads: 1, headDim: d, scale: 1, window: 16, rowStride: 2, kvDType, pagesFinite };
  // pages known finite hold no all-ones exponent: those patterns are left out (read as 0)
  const skipped = (bits: number) => pagesFinite && (bits & 0x7c00) === 0x7c00;
  const row = new Uint16Array(buffer, at.vPages, d);
  const out = new Float32Array(buffer, at.out, d);
  for (let base = 0; base < 65536; base += d) {
    for (let i = 0; i < d; i++) row[i] = skipped(base + i) ? 0 : base + i;
    kernels.pagedAttention(at, params);
    for (let i = 0; i < d; i++) {
      const want = skipped(base + i) ? 0 : decode(base + i);
      if (!(out[i] * 2 === want || (Number.isNaN(want) && Number.isNaN(out[i])))) assert.fail(`${kvDType} bits 0x${(base + i).toString(16)}: read ${out[i] * 2}, want ${want}`);
    }
  }
}
