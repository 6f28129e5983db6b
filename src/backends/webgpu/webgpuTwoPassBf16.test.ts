/**
 * The two-pass decode attention kernel with bf16 pages (webgpuTwoPass.test.ts
 * has f32 and f16; a file of its own keeps each within the runner's limit
 * with a cold shader cache): head dims 64 and 128 (128 on GPUs only:
 * lavapipe's 8-wide subgroups do not hold a 256-byte V row), and chunks of
 * two keys per invocation, in the default lean layout and the earlier one.
 */
import { testAttentionVariants } from "../../testing/webgpuAttentionVariants.js";

testAttentionVariants("two-pass decode attention", {
  bf16: { shapes: [[64, 8], [128, 2]], variants: [{ decodeAttentionKeysPerInvocation: 2 }, { decodeAttentionKeysPerInvocation: 2, decodeAttentionKeyParts: 1, decodeAttentionChunkBuffers: 2, decodeAttentionZeroHidden: false }] },
}, 420, { decodeAttentionTwoPass: true });
