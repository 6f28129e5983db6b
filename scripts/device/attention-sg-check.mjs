// The tensor-core prefill attention against the dense reference on the
// attention tests' fixture, variant by variant, on this device: relative
// error, and where the output is NaN (rows the reduce left unwritten, or
// NaN partials) by (row, query head). Tells a kernel bug (the emulated
// dialect fails too) from the compiler's or hardware's (only the real one).
//   node scripts/device/attention-sg-check.mjs
import { createNodeWebGpuBackend } from "../../build/platform/node/webgpu.js";
import { buildPagedFixture, denseAttention } from "../../build/backends/conformance/pagedFixture.js";
import { runAttention } from "../../build/backends/conformance/attention.js";
import { destroyAll } from "../../build/backends/conformance/context.js";

const SEQS = [
  { slot: 2, window: 32, startPos: 150, numRows: 1, admitRates: [0.3, 0.8] },
  { slot: 0, window: 16, startPos: 40, numRows: 9, admitRates: [1, 0.5] },
  { slot: 1, window: 32, startPos: 90, numRows: 1, admitRates: [0.6, 0] },
];
const b = await createNodeWebGpuBackend();
console.log(b.description);
const defaults = { ...b.kernels };
const variants = [{ sgAttentionKeys: 0 }, { sgAttentionKeys: 16 }, { sgAttentionKeys: 16, sgMatrixEmulate: true }, { sgAttentionKeys: 32 }, { sgAttentionKeys: 16, sgAttentionLazyMax: 0 }, { sgAttentionKeys: 16, attentionItems: 1 }, { sgAttentionKeys: 16, sgAttentionSplit: false }, { sgAttentionKeys: 16, sgAttentionSplit: false, sgMatrixEmulate: true }, { sgAttentionKeys: 32, sgAttentionSplit: false }];
for (const [headDim, numHeads, kvDType] of [[16, 2, "f32"], [16, 8, "f16"], [128, 8, "bf16"]]) {
  const f = buildPagedFixture(b, { numLayers: 1, numHeads, numKvHeads: 2, headDim, kvDType, numSlots: 3, maxWindow: 32 }, SEQS, 700);
  const want = denseAttention(f, 0);
  // NOTE: NVIDIA's compiler fails on the emulated kernel at head dim 128 (its fragments held as arrays)
  for (const v of variants.filter((v) => !(v.sgMatrixEmulate && headDim > 32))) {
    Object.assign(b.kernels, defaults, v);
    const got = await runAttention(b, f, 0);
    let num = 0, den = 0;
    const nan = new Map();
    for (let i = 0; i < got.length; i++) {
      if (Number.isNaN(got[i])) { const key = `r${Math.floor(i / (numHeads * headDim))}h${Math.floor(i / headDim) % numHeads}`; nan.set(key, (nan.get(key) ?? 0) + 1); continue; }
      num += (got[i] - want[i]) ** 2; den += want[i] ** 2;
    }
    console.log(`d${headDim} h${numHeads} ${kvDType} ${JSON.stringify(v)}: rel ${Math.sqrt(num / den).toExponential(2)} (finite part); NaN ${[...nan].map(([k, n]) => `${k}:${n}`).join(" ") || "none"}`);
  }
  destroyAll(b, f.tensors);
}
b.dispose();
process.exit(0);
