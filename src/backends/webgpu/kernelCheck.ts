/**
 * @module backends/webgpu/kernelCheck
 *
 * Checks the feature paths chosen at creation (kernelChoice.ts) against the
 * portable ones on this device, once, and turns off any that disagrees: a
 * driver or compiler that mishandles an experimental feature then costs
 * speed, not answers. The H200's driver, for one, gave garbage from the
 * tensor-core attention while one of its workgroup variables was a lone u32.
 *
 * - the subgroup-matrix matmul's tiles (and those for small grids) against
 *   the f32 tiles on cases with tails, within SG_MATRIX_TOLERANCE;
 * - the tensor-core prefill attentions (staged, on bf16 pages; direct, on
 *   f16 pages) against the f32 kernel on a paged batch (ring, global pages,
 *   the chunk's own keys, a decode row), within their bound
 *   (SG_ATTENTION_SPLIT_TOLERANCE, or SG_ATTENTION_TOLERANCE for operands
 *   rounded once to f16).
 *
 * Kernels are compiled alone first: a module that fails to compile must not
 * reach pipeline creation, where dawn.node aborts the process.
 */
import type { Backend, Tensor } from "../backend.js";
import { destroyAll } from "../conformance/context.js";
import { buildPagedFixture, type FixtureSeq, type PagedFixture } from "../conformance/pagedFixture.js";
import { relativeError } from "../conformance/testData.js";
import type { Kernel } from "./gpuRuntime.js";
import { SG_MATRIX_SPLIT_TOLERANCE, SG_MATRIX_TOLERANCE, type KernelChoice } from "./kernelChoice.js";
import { SG_ATTENTION_SPLIT_TOLERANCE, SG_ATTENTION_TOLERANCE, sgAttentionKernel, sgAttentionStepKeys } from "./kernels/attentionSgKernel.js";
import { chunkF16Kernel, directAttentionApplies, directAttentionKernel } from "./kernels/attentionDirectKernel.js";
import { sgMatrixMatmulKernel, sgMatrixSharedBytes, type SgMatrixDialect, type SgMatrixVariant } from "./kernels/matmulSgKernels.js";

/** A backend whose kernels the checks can compile alone. */
export interface CheckedBackend extends Backend {
  readonly subgroupMatrixDialect: SgMatrixDialect | null;
  readonly sharedMemoryBytes: number;
  kernelCompileError(k: Kernel): Promise<string | null>;
}

/** Where the attention check looks: head dims tried in order (the first that fits this device), and its bound (tests: small dims, 0 to see it fail). */
export interface AttentionCheck {
  readonly headDims?: readonly number[];
  readonly tolerance?: number;
}

/** Runs every check of a path `kernels` has on; returns a note of what was turned off and why, or null. */
export async function checkKernels(backend: CheckedBackend, kernels: KernelChoice, attention: AttentionCheck = {}): Promise<string | null> {
  const notes: string[] = [];
  if (kernels.sgMatrix) {
    const error = await sgMatmulError(backend, kernels, kernels.sgMatrix);
    if (error) {
      kernels.sgMatrix = null;
      notes.push(`subgroup-matrix matmul off (${error})`);
    }
  }
  if (kernels.sgMatrix && kernels.sgMatrixSmall) {
    const error = await sgMatmulError(backend, kernels, kernels.sgMatrixSmall);
    if (error) {
      kernels.sgMatrixSmall = null;
      notes.push(`subgroup-matrix tiles for small grids off (${error})`);
    }
  }
  if (kernels.sgAttentionKeys > 0) {
    const error = await sgAttentionError(backend, kernels, attention, "staged");
    if (error) {
      kernels.sgAttentionKeys = 0;
      notes.push(`tensor-core attention off (${error})`);
    }
  }
  if (kernels.sgAttentionDirectKeys > 0) {
    const error = await sgAttentionError(backend, kernels, attention, "direct");
    if (error) {
      kernels.sgAttentionDirectKeys = 0;
      notes.push(`direct tensor-core attention off (${error})`);
    }
  }
  return notes.length > 0 ? notes.join("; ") : null;
}

/** What the WGSL compiler says of `make()`'s kernel ("" when it compiles; a generator's refusal counts). */
async function compileError(backend: CheckedBackend, make: () => Kernel): Promise<string> {
  try {
    return ((await backend.kernelCompileError(make())) ?? "").split("\n")[0];
  } catch (err) {
    // NOTE: a variant this device's compiler cannot take (several subgroups, no directive for them)
    return (err as Error).message;
  }
}

/** The subgroup-matrix matmul's compile errors, else how it differs from the f32 tiles: "" when within its bound. */
async function sgMatmulError(backend: CheckedBackend, kernels: KernelChoice, sg: SgMatrixVariant): Promise<string> {
  const dialect = backend.subgroupMatrixDialect;
  if (!dialect) return "no shader-f16";
  for (const wType of ["bf16", "f32"] as const) {
    for (const vectorised of [true, false]) {
      // NOTE: a pipeline past the device's workgroup memory must not be created either
      const bytes = sgMatrixSharedBytes(wType, sg, vectorised, kernels.sgMatrixSplit);
      if (bytes > backend.sharedMemoryBytes) return `${bytes} bytes of workgroup memory, the device has ${backend.sharedMemoryBytes}`;
      const error = await compileError(backend, () => sgMatrixMatmulKernel(wType, sg, dialect, vectorised, kernels.sgMatrixSplit));
      if (error) return error;
    }
  }
  // NOTE: K with a tail of single weights (the element-wise fill) and K of whole vec4s (the vec4 fill)
  for (const K of [3 * sg.bk + 5, 3 * sg.bk + 8]) {
    const error = await compareWithTiles(backend, kernels, sg, kernels.sgMatrixMinRows + 37, 2 * sg.bn + 19, K);
    if (error) return error;
  }
  return "";
}

/** The subgroup-matrix tiles `sg` (alone) against the f32 tiles on one random case: "" when within its bound, else what differs. */
async function compareWithTiles(backend: Backend, kernels: KernelChoice, sg: SgMatrixVariant, rows: number, N: number, K: number): Promise<string> {
  const chosen = { sgMatrix: kernels.sgMatrix, sgMatrixSmall: kernels.sgMatrixSmall };
  let seed = 12345 + K;
  const random = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  const wBits = new Uint16Array(N * K).map(() => new Uint32Array(Float32Array.of(random() * 0.1).buffer)[0] >>> 16);
  const w = backend.uploadWeight({ dtype: "BF16", shape: [N, K], bytes: new Uint8Array(wBits.buffer) }, "matrix");
  const x = backend.createTensor([rows, K], "f32", "check x");
  backend.write(x, Float32Array.from({ length: rows * K }, random));
  const [got, want] = [backend.createTensor([rows, N], "f32", "check out"), backend.createTensor([rows, N], "f32", "check reference")];
  try {
    Object.assign(kernels, { sgMatrix: sg, sgMatrixSmall: null });
    backend.matmul(got, x, w, null, rows);
    kernels.sgMatrix = null;
    backend.matmul(want, x, w, null, rows);
    const [a, b] = (await backend.read([{ tensor: got }, { tensor: want }])) as Float32Array[];
    const error = relativeError(a, b);
    return error <= (kernels.sgMatrixSplit ? SG_MATRIX_SPLIT_TOLERANCE : SG_MATRIX_TOLERANCE) ? "" : `K ${K}: error ${error.toExponential(1)} of the largest output`;
  } catch (err) {
    return String((err as Error).message).split("\n")[0];
  } finally {
    Object.assign(kernels, chosen);
    for (const t of [w, x, got, want]) backend.destroyTensor(t);
  }
}

/** The checked batch: a chunk over a wrapped ring and global pages, a chunk with no history, a decode row. */
const ATTENTION_SEQS: readonly FixtureSeq[] = [
  { slot: 0, window: 32, startPos: 150, numRows: 24, admitRates: [0.5, 0.9] },
  { slot: 1, window: 16, startPos: 0, numRows: 16, admitRates: [1, 1] },
  { slot: 2, window: 32, startPos: 90, numRows: 1, admitRates: [0.6, 0] },
];

/**
 * A tensor-core attention's compile errors, else how it differs from the
 * f32 kernel: "" when within its bound. Groups of 4 and head dim 128 (the
 * usual shape) where the kernel fits this device, else 64. "staged" runs on
 * bf16 pages (attentionSgKernel.ts), "direct" on f16 (attentionDirectKernel.ts).
 */
async function sgAttentionError(backend: CheckedBackend, kernels: KernelChoice, { headDims = [128, 64], tolerance }: AttentionCheck, path: "staged" | "direct"): Promise<string> {
  const dialect = backend.subgroupMatrixDialect;
  if (!dialect) return "no shader-f16";
  const group = 4, kvDType = path === "staged" ? ("bf16" as const) : ("f16" as const);
  const split = kernels.sgAttentionSplit;
  const bound = tolerance ?? (split ? SG_ATTENTION_SPLIT_TOLERANCE : SG_ATTENTION_TOLERANCE);
  const fits = (d: number) => (path === "staged" ? sgAttentionStepKeys(kernels.sgAttentionKeys, d, group, split, backend.sharedMemoryBytes) > 0 : directAttentionApplies(d, group));
  const headDim = headDims.find(fits);
  // NOTE: the kernel fits no shape here, so it never runs
  if (headDim === undefined) return "";
  const error =
    path === "staged"
      ? await compileError(backend, () => sgAttentionKernel({ headDim, group, kvDType, stepKeys: sgAttentionStepKeys(kernels.sgAttentionKeys, headDim, group, split, backend.sharedMemoryBytes), split }, dialect))
      : (await compileError(backend, () => chunkF16Kernel())) || (await compileError(backend, () => directAttentionKernel({ headDim, group, stepKeys: kernels.sgAttentionDirectKeys, split }, dialect)));
  if (error) return error;
  const [keys, directKeys] = [kernels.sgAttentionKeys, kernels.sgAttentionDirectKeys];
  let f: PagedFixture | null = null;
  const outs: Tensor[] = [];
  try {
    // NOTE: inside the try: a device whose limits cannot hold the batch (tests shrink them) loses the kernel, not its creation
    f = buildPagedFixture(backend, { numLayers: 1, numHeads: 2 * group, numKvHeads: 2, headDim, kvDType, numSlots: 3, maxWindow: 32 }, ATTENTION_SEQS, 4242);
    for (const i of [0, 1]) outs.push(backend.createTensor([f.numRows, f.dims.numHeads * headDim], "f32", `check attention ${i}`));
    backend.pagedAttention(outs[0], f.q, f.k, f.v, f.pool, 0, f.batch, f.dims);
    kernels.sgAttentionKeys = 0;
    kernels.sgAttentionDirectKeys = 0;
    backend.pagedAttention(outs[1], f.q, f.k, f.v, f.pool, 0, f.batch, f.dims);
    const [got, want] = (await backend.read(outs.map((tensor) => ({ tensor })))) as Float32Array[];
    const rel = relativeError(got, want);
    // NOTE: NaN fails too
    return rel <= bound ? "" : `head dim ${headDim}: error ${rel.toExponential(1)} of the largest output`;
  } catch (err) {
    return String((err as Error).message).split("\n")[0];
  } finally {
    kernels.sgAttentionKeys = keys;
    kernels.sgAttentionDirectKeys = directKeys;
    destroyAll(backend, [...(f?.tensors ?? []), ...outs]);
  }
}
