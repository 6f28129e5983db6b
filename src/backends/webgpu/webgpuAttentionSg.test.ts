/**
 * The tensor-core prefill attention (kernels/attentionSgKernel.ts) against
 * the dense f64 reference: every page dtype, steps of 16 and 32 keys, the
 * output rescaled lazily and at every rise of the max, GQA groups 1 and 4,
 * with the fixtures' ring, global and chunk tiles, split and not; each
 * operand split into two f16 (the default, within f32's bound) and rounded
 * once (within its f16 bound). Without tensor cores (CI's lavapipe) it runs
 * emulated (kernels/sgMatrixWgsl.ts), slowly: small head dims; the H200 runs
 * the real fragments at head dim 128 as well.
 */
import { testAttentionVariants } from "../../testing/webgpuAttentionVariants.js";
import { SG_ATTENTION_SPLIT_TOLERANCE, SG_ATTENTION_TOLERANCE } from "./kernels/attentionSgKernel.js";

// NOTE: random scores rarely rise 8 above the running max: lazyMax 0 rescales the output at every rise
// NOTE: each kernel compiles for tens of seconds emulated on lavapipe: the page dtypes share all but their reads
testAttentionVariants(
  "tensor-core attention, operands split in two f16 (emulated without tensor cores)",
  {
    f32: { shapes: [[16, 2]], variants: [{ sgAttentionKeys: 32 }, { sgAttentionLazyMax: 0 }] },
    f16: { shapes: [[16, 8]], variants: [] },
    bf16: { shapes: [[32, 2]], variants: [] },
  },
  700,
  { sgAttentionKeys: 16, sgAttentionSplit: true },
  SG_ATTENTION_SPLIT_TOLERANCE,
);
testAttentionVariants(
  "tensor-core attention, operands rounded to f16 (emulated without tensor cores)",
  { bf16: { shapes: [[16, 8]], variants: [{ sgAttentionKeys: 32, sgAttentionLazyMax: 0 }] } },
  800,
  { sgAttentionKeys: 16, sgAttentionSplit: false },
  SG_ATTENTION_TOLERANCE,
);
