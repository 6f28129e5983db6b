/**
 * @module testing/webgpuAttentionVariants
 *
 * Registers one test per page dtype that runs the WebGPU backend's attention
 * under kernel-choice variants against the dense f64 reference of the
 * conformance fixtures: decode rows and prefill chunks in one call
 * (SEQS below), at the given (head dim, query heads) shapes with 2 KV heads.
 * Every shape also runs `base` alone and with two split-K sizes (they change
 * the plan, not the kernels). Used by the attention test files, each of which
 * keeps its kernels' compile time on a cold lavapipe shader cache within
 * the runner's limit.
 */
import { test } from "node:test";
import { ATTENTION_TOLERANCE, runAttention } from "../backends/conformance/attention.js";
import { destroyAll } from "../backends/conformance/context.js";
import { buildPagedFixture, denseAttention, type FixtureSeq, type FixtureShape } from "../backends/conformance/pagedFixture.js";
import { assertClose } from "../backends/conformance/testData.js";
import type { KvDType } from "../backends/backend.js";
import { ADMIT_RANDOM } from "../backends/stepLayout.js";
import type { KernelChoice } from "../backends/webgpu/webgpuBackend.js";
import { createNodeWebGpuBackend } from "../platform/node/webgpu.js";

const SEQS: readonly FixtureSeq[] = [
  { slot: 2, window: 32, startPos: 600, numRows: 1, admitRates: [0.3, 0.8] }, // decode, ring wrapped: ~450 keys, chunks of 128 with one item
  { slot: 0, window: 16, startPos: 40, numRows: 9, admitRates: [1, 0.5] }, //   a chunk: with group 4, blocks of 8 rows and 1 (the decode kernel, its own keys causal)
  { slot: 1, window: 32, startPos: 90, numRows: 1, admitRates: [0.6, 0] }, //   decode, head 1 without global tokens
  { slot: 3, window: 16, startPos: 20, numRows: 20, admitRates: [1, 1] }, //    full attention: a chunk longer than its window
  // gated: a chunk longer than its window, its older keys by the step's flags (41 rows: a last block of 1 row, kept off the decode kernels)
  { slot: 4, window: 16, startPos: 20, numRows: 41, admitRates: [0.5, 0.3], admission: [ADMIT_RANDOM, 0, 0] },
];

export type VariantCases = Partial<Record<KvDType, { shapes: readonly (readonly [number, number])[]; variants: readonly Partial<KernelChoice>[] }>>;

/** One test per dtype of `cases`: `what` names them; seeds start at seedBase; `base` is part of every variant; `tolerance`: relative L2. */
export function testAttentionVariants(what: string, cases: VariantCases, seedBase: number, base: Partial<KernelChoice> = {}, tolerance = ATTENTION_TOLERANCE): void {
  for (const [kvDType, { shapes, variants }] of Object.entries(cases) as [KvDType, NonNullable<VariantCases[KvDType]>][]) {
    test(`${kvDType} pages: ${what} match the dense reference`, async () => {
      const b = await createNodeWebGpuBackend();
      try {
        const defaults: KernelChoice = { ...b.kernels };
        // NOTE: the f32 kernels unless `base` says otherwise (the tensor-core attention has its own tolerance)
        const all = [{}, { attentionItems: 1 }, { attentionItems: 64 }, ...variants].map((v) => ({ sgAttentionKeys: 0, sgAttentionDirectKeys: 0, ...base, ...v }));
        let seed = seedBase + 10 * Object.keys(cases).indexOf(kvDType);
        for (const [headDim, numHeads] of shapes) {
          const shape: FixtureShape = { numLayers: 1, numHeads, numKvHeads: 2, headDim, kvDType, numSlots: 5, maxWindow: 32 };
          const f = buildPagedFixture(b, shape, SEQS, seed++);
          const want = denseAttention(f, 0);
          for (const v of all) {
            Object.assign(b.kernels, defaults, v);
            assertClose(await runAttention(b, f, 0), want, tolerance, `d${headDim} g${numHeads / 2} ${kvDType} ${JSON.stringify(v)}`);
          }
          destroyAll(b, f.tensors);
        }
        Object.assign(b.kernels, defaults);
      } finally {
        b.dispose();
      }
    });
  }
}
