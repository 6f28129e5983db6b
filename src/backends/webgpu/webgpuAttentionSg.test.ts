/**
 * The tensor-core prefill attention (kernels/attentionSgKernel.ts) against
 * the dense f64 reference, within its f16 tolerance: every page dtype,
 * steps of 16 and 32 keys, the output rescaled lazily and at every rise of
 * the max, GQA groups 1 and 4, with the fixtures' ring,
 * global and chunk tiles, split and not. Without tensor cores (CI's
 * lavapipe) it runs emulated (kernels/sgMatrixWgsl.ts), slowly: small head
 * dims; the H200 runs the real fragments at head dim 128 as well.
 */
import { testAttentionVariants } from "../../testing/webgpuAttentionVariants.js";
import { SG_ATTENTION_TOLERANCE } from "./kernels/attentionSgKernel.js";

// NOTE: random scores rarely rise 8 above the running max: lazyMax 0 rescales the output at every rise
const STEPS = [{ sgAttentionKeys: 32 }, { sgAttentionLazyMax: 0 }, { sgAttentionKeys: 32, sgAttentionLazyMax: 0 }, { sgAttentionRescaleEvery: true }];
testAttentionVariants(
  "tensor-core attention (emulated without tensor cores)",
  {
    f32: { shapes: [[16, 2]], variants: STEPS },
    f16: { shapes: [[16, 8]], variants: STEPS },
    bf16: { shapes: [[32, 2]], variants: STEPS },
  },
  700,
  { sgAttentionKeys: 16 },
  SG_ATTENTION_TOLERANCE,
);
