/**
 * The two-pass decode attention kernel (kernels/decodeTwoPassKernel.ts; the
 * default on GPUs) against the dense f64 reference: every page dtype, head
 * dims 16 and 64 (and 128 on GPUs, whose subgroups hold its V rows), GQA
 * groups 1 and 4, few and many split-K items, and V rows loaded in batches
 * smaller than a team's keys of a chunk (the batch loop's later rounds);
 * the default lean layout (K rows in halves, one set of chunk arrays, hidden
 * keys' V rows zeroed so values enter by FMA) and the earlier one.
 * Shapes are few and bf16 pages have a file of their own
 * (webgpuTwoPassBf16.test.ts): lavapipe takes tens of seconds to compile each
 * of this kernel's unrolled shapes with a cold shader cache.
 */
import { testAttentionVariants } from "../../testing/webgpuAttentionVariants.js";

// NOTE: every variant runs the two-pass kernel (software adapters default to the team kernel), so the
// file compiles no team kernel: within the runner's limit with a cold shader cache
testAttentionVariants("two-pass decode attention", {
  // head dim 16: V rows in batches of 2 of a team's 4 keys per chunk take the batch loop twice
  f32: { shapes: [[16, 2]], variants: [{ decodeAttentionValueLoads: 2 }] },
  // the earlier layout (whole K rows, chunk arrays by parity, each value selected by its weight), page ids 2 tiles at a time
  f16: { shapes: [[64, 8]], variants: [{ decodeAttentionKeyParts: 1, decodeAttentionChunkBuffers: 2, decodeAttentionSegTiles: 2, decodeAttentionZeroHidden: false }] },
}, 400, { decodeAttentionTwoPass: true });
