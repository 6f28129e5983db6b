/**
 * The direct tensor-core attention over f16 pages (kernels/attentionDirectKernel.ts)
 * with every operand rounded once to f16, against the dense f64 reference:
 * head dim 32 (two fragments per row of queries and of the output), GQA
 * group 1, steps of 16 and 32 keys (two tiles, each its own source), the
 * output rescaled lazily and at every rise of the max. Emulated without
 * tensor cores (CI's lavapipe).
 */
import { testAttentionVariants } from "../../testing/webgpuAttentionVariants.js";
import { SG_ATTENTION_TOLERANCE } from "./kernels/attentionSgKernel.js";

testAttentionVariants(
  "direct tensor-core attention, operands rounded to f16 (emulated without tensor cores)",
  { f16: { shapes: [[32, 2]], variants: [{ sgAttentionDirectKeys: 32, sgAttentionLazyMax: 0 }] } },
  950,
  { sgAttentionDirectKeys: 16, sgAttentionSplit: false },
  SG_ATTENTION_TOLERANCE,
);
