/**
 * The tensor-core prefill attention over f16 pages that reads its fragments
 * straight from the pages (kernels/attentionDirectKernel.ts) against the
 * dense f64 reference, q and p split in two f16 (the default, within f32's
 * bound): ring, global and chunk tiles with fewer than 16 valid keys (their
 * values staged with zeros), the chunk's own keys split too, GQA group 4,
 * steps of 16 and 32 keys, the output rescaled lazily and at every rise of
 * the max. Emulated without
 * tensor cores (CI's lavapipe), where a split kernel compiles for minutes:
 * one here, the rest in webgpuAttentionDirectShapes.test.ts.
 */
import { testAttentionVariants } from "../../testing/webgpuAttentionVariants.js";
import { SG_ATTENTION_SPLIT_TOLERANCE } from "./kernels/attentionSgKernel.js";

testAttentionVariants(
  "direct tensor-core attention, q and p split in two f16 (emulated without tensor cores)",
  { f16: { shapes: [[16, 8]], variants: [{ sgAttentionLazyMax: 0 }, { sgAttentionDirectKeys: 32 }] } },
  900,
  { sgAttentionDirectKeys: 16, sgAttentionSplit: true },
  SG_ATTENTION_SPLIT_TOLERANCE,
);
