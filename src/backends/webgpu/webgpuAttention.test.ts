/**
 * The WebGPU backend's attention kernel variants (kernels/attentionKernels.ts,
 * kernels/decodeAttentionKernel.ts) against the dense f64 reference of the
 * conformance fixtures: decode rows and prefill chunks in one call, every
 * page dtype, head dims that reach the decode kernel's vec4 slices (64, 128)
 * and one that does not (16), GQA groups 1 and 4; each variant a benchmark
 * may choose (decode kernel on and off, 2 and 4 keys per team and step, few
 * and many split-K items) within the suite's tolerance.
 */
import { test } from "node:test";
import { ATTENTION_TOLERANCE, runAttention } from "../conformance/attention.js";
import { destroyAll } from "../conformance/context.js";
import { buildPagedFixture, denseAttention, type FixtureSeq, type FixtureShape } from "../conformance/pagedFixture.js";
import { assertClose } from "../conformance/testData.js";
import { createNodeWebGpuBackend } from "../../platform/node/webgpu.js";
import type { KernelChoice } from "./webgpuBackend.js";

const SEQS: readonly FixtureSeq[] = [
  { slot: 2, window: 32, startPos: 150, numRows: 1, admitRates: [0.3, 0.8] }, // decode, ring wrapped
  { slot: 0, window: 16, startPos: 40, numRows: 9, admitRates: [1, 0.5] }, //   a chunk: with group 4, blocks of 8 rows and 1 (the decode kernel, its own keys causal)
  { slot: 1, window: 32, startPos: 90, numRows: 1, admitRates: [0.6, 0] }, //   decode, head 1 without global tokens
];

test("attention variants (decode kernel on/off, keys per step, split-K items) match the dense reference", async () => {
  const b = await createNodeWebGpuBackend();
  try {
    const base: KernelChoice = { ...b.kernels };
    const variants: Partial<KernelChoice>[] = [{}, { decodeAttentionSubgroup: 0 }, { decodeAttentionUnroll: 4 }, { decodeAttentionUnroll: 4, attentionItems: 64 }, { attentionItems: 1 }];
    let seed = 300;
    for (const [headDim, numHeads] of [[16, 2], [64, 8], [128, 2]] as const) {
      for (const kvDType of ["f32", "f16", "bf16"] as const) {
        const shape: FixtureShape = { numLayers: 1, numHeads, numKvHeads: 2, headDim, kvDType, numSlots: 3, maxWindow: 32 };
        const f = buildPagedFixture(b, shape, SEQS, seed++);
        const want = denseAttention(f, 0);
        for (const v of variants) {
          Object.assign(b.kernels, base, v);
          assertClose(await runAttention(b, f, 0), want, ATTENTION_TOLERANCE, `d${headDim} g${numHeads / 2} ${kvDType} ${JSON.stringify(v)}`);
        }
        destroyAll(b, f.tensors);
      }
    }
    Object.assign(b.kernels, base);
  } finally {
    b.dispose();
  }
});
