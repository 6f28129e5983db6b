/**
 * The WebGPU backend's attention kernel variants (kernels/attentionKernels.ts,
 * kernels/decodeAttentionKernel.ts) against the dense f64 reference of the
 * conformance fixtures: decode rows and prefill chunks in one call, every
 * page dtype, head dims that reach the decode kernel's vec4 slices (64, 128)
 * and one that does not (16), GQA groups 1 and 4; the variants a benchmark
 * may choose (decode kernel on and off, 2 and 4 keys per team and step, 16
 * lanes per key where subgroups hold them, few and many split-K items) within the suite's tolerance.
 */
import { test } from "node:test";
import { ATTENTION_TOLERANCE, runAttention } from "../conformance/attention.js";
import { destroyAll } from "../conformance/context.js";
import { buildPagedFixture, denseAttention, type FixtureSeq, type FixtureShape } from "../conformance/pagedFixture.js";
import { assertClose } from "../conformance/testData.js";
import { createNodeWebGpuBackend } from "../../platform/node/webgpu.js";
import type { KvDType } from "../backend.js";
import type { KernelChoice } from "./webgpuBackend.js";

const SEQS: readonly FixtureSeq[] = [
  { slot: 2, window: 32, startPos: 150, numRows: 1, admitRates: [0.3, 0.8] }, // decode, ring wrapped
  { slot: 0, window: 16, startPos: 40, numRows: 9, admitRates: [1, 0.5] }, //   a chunk: with group 4, blocks of 8 rows and 1 (the decode kernel, its own keys causal)
  { slot: 1, window: 32, startPos: 90, numRows: 1, admitRates: [0.6, 0] }, //   decode, head 1 without global tokens
];

// NOTE: one test per page dtype, each within the runner's time limit with a cold shader cache (lavapipe
// takes 10-40 s to compile a decode kernel); variants that compile a kernel of their own run for one dtype each
const CASES: Record<KvDType, { shapes: readonly (readonly [number, number])[]; variants: readonly Partial<KernelChoice>[] }> = {
  f32: { shapes: [[16, 2], [64, 8]], variants: [{ decodeAttentionSubgroup: 0 }] },
  f16: { shapes: [[16, 2], [64, 8]], variants: [] },
  // head dim 128: on lavapipe the tiled kernel's tiles shrink to 8 keys and the decode kernel stands aside; GPUs run it
  bf16: { shapes: [[64, 8], [128, 2]], variants: [{ decodeAttentionUnroll: 4 }, { decodeAttentionUnroll: 4, attentionItems: 64 }, { decodeAttentionLanes: 16 }] },
};

for (const [kvDType, { shapes, variants }] of Object.entries(CASES) as [KvDType, (typeof CASES)[KvDType]][]) {
  test(`${kvDType} pages: attention variants match the dense reference`, async () => {
    const b = await createNodeWebGpuBackend();
    try {
      const base: KernelChoice = { ...b.kernels };
      // NOTE: split-K sizes change the plan, not the kernels: every shape gets them
      const all: Partial<KernelChoice>[] = [{}, { attentionItems: 1 }, { attentionItems: 64 }, ...variants];
      let seed = 300 + 10 * Object.keys(CASES).indexOf(kvDType);
      for (const [headDim, numHeads] of shapes) {
        const shape: FixtureShape = { numLayers: 1, numHeads, numKvHeads: 2, headDim, kvDType, numSlots: 3, maxWindow: 32 };
        const f = buildPagedFixture(b, shape, SEQS, seed++);
        const want = denseAttention(f, 0);
        for (const v of all) {
          Object.assign(b.kernels, base, v);
          assertClose(await runAttention(b, f, 0), want, ATTENTION_TOLERANCE, `d${headDim} g${numHeads / 2} ${kvDType} ${JSON.stringify(v)}`);
        }
        destroyAll(b, f.tensors);
      }
      Object.assign(b.kernels, base);
    } finally {
      b.dispose();
    }
  });
}
