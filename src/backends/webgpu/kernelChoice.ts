/**
 * @module backends/webgpu/kernelChoice
 *
 * Which kernel variants the WebGPU backend's ops run (kernelVariants.ts
 * lists them): the defaults a device's features allow (kernelCheck.ts then
 * turns off a feature path this device computes wrongly).
 */
import type { WebGpuBackendOptions } from "./gpuContext.js";
import { GPU_TILED, PORTABLE_MATVEC, PORTABLE_TILED, tiledGroups, type MatvecVariant, type TiledVariant } from "./kernels/matmulKernels.js";
import type { SgMatrixDialect, SgMatrixVariant } from "./kernels/matmulSgKernels.js";
import { f16MatmulKStep, type F16MatmulVariant } from "./kernels/matmulF16Kernels.js";

/**
 * The kernel variants ops use (chosen from the device's features at
 * creation; benchmarks and tests set them to compare). sgMatrix null: no
 * tensor-core tiles.
 */
export interface KernelChoice {
  matvec: MatvecVariant;
  tiled: TiledVariant;
  sgMatrix: SgMatrixVariant | null;
  /** Rows from which the subgroup-matrix tiles run (fewer: the f32 tiles). */
  sgMatrixMinRows: number;
  /** Tiles for matmuls whose grid of `sgMatrix` tiles has fewer than `sgMatrixSmallBelow` workgroups (null: `sgMatrix` always). */
  sgMatrixSmall: SgMatrixVariant | null;
  sgMatrixSmallBelow: number;
  /** The subgroup-matrix tiles take x (and f32 weights) as two f16 each: f32's answers for twice the products and fills. */
  sgMatrixSplit: boolean;
  /**
   * Where `sgMatrix` runs a matmul of bf16 weights (not split, K a multiple of 8 and of the variant's K step):
   * x converted to f16 once per matmul input (f16RowsKernel, shared by q/k/v and by gate/up) and these tiles
   * (matmulF16Kernels.ts) on it, instead of `sgMatrix`'s conversion of every x element once per column tile
   * (H200, 8B shapes: 128 against 90 TFLOP/s). null: `sgMatrix` always.
   */
  f16Matmul: F16MatmulVariant | null;
  /** Its tiles for grids of `f16Matmul` tiles under `sgMatrixSmallBelow` workgroups (null: `f16Matmul` always). */
  f16MatmulSmall: F16MatmulVariant | null;
  /** Keys per step of the tensor-core prefill attention (attentionSgKernel.ts: 16 or 32, 16 where 32 does not fit; 0: the f32 tiled kernel). */
  sgAttentionKeys: number;
  /** That kernel's operands each as two f16 (near f32's answers, three products per one); off: rounded once to f16. */
  sgAttentionSplit: boolean;
  /**
   * Keys per step (16 or 32) of the prefill attention over f16 pages on tensor cores that reads its fragments
   * straight from the pages, one subgroup per 16 query vectors (attentionDirectKernel.ts), at `sgAttentionSplit`'s
   * precision; 0: f16 pages go to `sgAttentionKeys`'s kernel.
   */
  sgAttentionDirectKeys: number;
  /** How far a step's max may pass that kernel's running max before it moves and the output is rescaled (8; 0: at every rise, which tests use). */
  sgAttentionLazyMax: number;
  /** Run the subgroup-matrix kernels in the emulated dialect even on tensor cores (tells a kernel's bug from the compiler's or the hardware's). */
  sgMatrixEmulate: boolean;
  /** Merge ops into fewer dispatches (see transformerOps.ts Pending, cacheOps.ts); off: one dispatch per op. */
  fuse: boolean;
  /** With `fuse`: a layer's slot copies and the writeKv after them in one dispatch (cacheOps.ts). */
  fuseCopyWrite: boolean;
  /** Blocks of at most this many query rows (decode: 1) run a kernel shaped for them (0: none). */
  attentionSmallRows: number;
  /** Attention work items wanted per call at least (split-K below it). */
  attentionItems: number;
  /** Key tiles (of 16) a split item takes at least: fewer splits at short context, where an item's setup and merge outweigh its keys. */
  attentionSplitTiles: number;
  /** Subgroup size with which small blocks run decodeAttentionKernel.ts (0: attentionKernels.ts's kernel). */
  decodeAttentionSubgroup: number;
  /** Keys per team and step of that kernel (2 or 4). */
  decodeAttentionUnroll: number;
  /** Invocations per key in that kernel where the shape allows (0: 8, else 4). */
  decodeAttentionLanes: number;
  /** Small blocks run decodeTwoPassKernel.ts instead, where the shape and subgroup size allow. */
  decodeAttentionTwoPass: boolean;
  /** V rows a team of that kernel loads before their math. */
  decodeAttentionValueLoads: number;
  /** Keys each invocation of that kernel scores per chunk (2: more loads in flight, more registers; slower on the H200). */
  decodeAttentionKeysPerInvocation: number;
  /** Parts a K row's loads come in, in that kernel (1: the whole row in flight; more: fewer registers a thread). */
  decodeAttentionKeyParts: number;
  /** Sets of that kernel's chunk arrays (2: by chunk parity; 1: a barrier more a chunk, less workgroup memory). */
  decodeAttentionChunkBuffers: number;
  /** Key tiles whose page ids that kernel holds in workgroup memory at once. */
  decodeAttentionSegTiles: number;
  /** That kernel zeroes the V rows of keys hidden from every query, so each value enters by one FMA a query (off: a select a query). */
  decodeAttentionZeroHidden: boolean;
  /** RMSNorm holds rows of up to 8192 in registers, one trip to memory (off: the loop form, which reads a row twice). */
  normHeld: boolean;
  /**
   * The gate/up pair matvec (two weight rows per team) unrolls half as far as `matvec`, so a thread holds as many
   * loads. Off until measured in whole steps: matvec-bench.mjs alone gave 79 against 137 us (H200, 8B, medians of
   * five with wide spreads).
   */
  matvecPairHalfUnroll: boolean;
  /**
   * With `fuse`, decode's matvecs also take the rmsNorm before them (prologue), the residual add and the RoPE of
   * q and k after them (epilogues): seven dispatches a decode layer where ten (off: for A/B runs in whole steps).
   */
  fuseNormRope: boolean;
}

/** The tensor-core matmul tiles devices run by default (H200: the fastest whole prefill of kernelVariants.ts's). */
export const TENSOR_CORE_TILES: SgMatrixVariant = { bm: 128, bn: 128, bk: 32, sgm: 2, sgn: 2, pad: 8 };
/**
 * Half as tall, for grids of fewer than two waves of TENSOR_CORE_TILES on the H200's 132 SMs, where twice the
 * workgroups pay (matmul-bench.mjs, 8B shapes, TFLOP/s: 512 rows q/o 71 against 63, k/v 24 / 20, down 75 / 66;
 * 2048 rows k/v 69 / 63; the larger grids are faster on the large tiles: gate/up at 512 rows 94 against 63).
 * The whole 8B prefill moved within its runs' noise (8K: 4.33 s against 4.29; 32K: 31.9 against 32.4).
 */
export const TENSOR_CORE_SMALL_TILES: SgMatrixVariant = { bm: 64, bn: 128, bk: 32, sgm: 2, sgn: 2, pad: 8 };

/** The f16-operand tiles devices with tensor cores run by default (matmul-f16-bench.mjs, H200, 8B shapes at 2048 and 8192 rows: 128 TFLOP/s, TENSOR_CORE_TILES 90). */
export const TENSOR_CORE_F16_TILES: F16MatmulVariant = { bm: 128, bn: 128, bk: 32, sgm: 2, sgn: 2, pad: 8 };
/** Half as tall for small grids, as TENSOR_CORE_SMALL_TILES is (that measurement is the older kernel's; this one's is not made yet). */
export const TENSOR_CORE_F16_SMALL_TILES: F16MatmulVariant = { bm: 64, bn: 128, bk: 32, sgm: 2, sgn: 2, pad: 8 };

/**
 * The f16-operand tiles of a matmul of `rows` x `N` x `K` under `c` (c.sgMatrix set, rows >= sgMatrixMinRows),
 * or null where they do not apply: f32 weights, split inputs, or K not whole 8-half loads and K steps.
 */
export function f16MatmulTiles(c: KernelChoice, wType: "f32" | "bf16", rows: number, N: number, K: number): F16MatmulVariant | null {
  const big = c.f16Matmul;
  if (!big || wType !== "bf16" || c.sgMatrixSplit || K % 8 !== 0) return null;
  const v = c.f16MatmulSmall && tiledGroups(big, rows, N) < c.sgMatrixSmallBelow ? c.f16MatmulSmall : big;
  return K % f16MatmulKStep(v) === 0 ? v : null;
}

/** The subgroup-matrix tiles of a matmul of `rows` x `N` under `c` (c.sgMatrix set). */
export function sgMatrixTiles(c: KernelChoice, rows: number, N: number): SgMatrixVariant {
  const big = c.sgMatrix!;
  return c.sgMatrixSmall && tiledGroups(big, rows, N) < c.sgMatrixSmallBelow ? c.sgMatrixSmall : big;
}

/** What the f16 subgroup-matrix matmul may differ by (max |error| / max |output|; matmulSgKernels.ts). */
export const SG_MATRIX_TOLERANCE = 4e-3;
/** The same with its inputs split into two f16 each (sgMatrixSplit). */
export const SG_MATRIX_SPLIT_TOLERANCE = 1e-5;

/** Whether this device can run the subgroup-matrix tiles (their kernel needs f16 and subgroups of exactly 32). */
export function subgroupMatrixUsable(options: WebGpuBackendOptions): boolean {
  const f = options.features ?? new Set<string>();
  const sg = options.subgroupSizes;
  return f.has("chromium-experimental-subgroup-matrix") && f.has("shader-f16") && sg?.min === 32 && sg.max === 32 && options.subgroupMatrix !== undefined;
}

/**
 * The dialect subgroup-matrix kernels compile in on this device: the real
 * one where usable, else the emulation (sgMatrixWgsl.ts: slow, for testing
 * the kernels where no tensor cores exist) where the device has shader-f16;
 * null where neither.
 */
export function sgMatrixDialect(options: WebGpuBackendOptions, kernels?: KernelChoice): SgMatrixDialect | null {
  if (subgroupMatrixUsable(options) && !kernels?.sgMatrixEmulate) return options.subgroupMatrix!;
  return options.features?.has("shader-f16") ? { syntax: "emulated", nonUniform: "" } : null;
}

/** The kernels a device with these options runs by default. */
export function defaultKernels(options: WebGpuBackendOptions): KernelChoice {
  const f = options.features ?? new Set<string>();
  const sg = options.subgroupSizes;
  // NOTE: a team of 32 threads per row is whole subgroups where subgroups have at most 32 invocations
  const subgroups = f.has("subgroups") && sg !== undefined && sg.max <= 32 && 32 % sg.max === 0 && 32 % sg.min === 0;
  const tensorCores = subgroupMatrixUsable(options) && options.subgroupMatrix!.nonUniform !== "";
  return {
    matvec: subgroups ? { tpr: 32, unroll: 4, subgroups: true } : PORTABLE_MATVEC,
    tiled: options.software === false ? GPU_TILED : PORTABLE_TILED,
    // NOTE: tensor cores where a workgroup may hold several subgroups with their own operands
    // (H200, 8B prefill of 8K: 21.7 s on the f32 tiles, 11.6 on these)
    sgMatrix: tensorCores ? TENSOR_CORE_TILES : null,
    sgMatrixMinRows: 64,
    sgMatrixSmall: tensorCores ? TENSOR_CORE_SMALL_TILES : null,
    sgMatrixSmallBelow: 264,
    // NOTE: off until its cost is measured on the H200 (the attention's split cost 5-13% of the prefill)
    sgMatrixSplit: false,
    // NOTE: for bf16 weights (f32 ones keep `sgMatrix`); "workgroup" tiles, since "storage" ones need f16 weights, which are not stored
    f16Matmul: tensorCores ? TENSOR_CORE_F16_TILES : null,
    f16MatmulSmall: tensorCores ? TENSOR_CORE_F16_SMALL_TILES : null,
    // NOTE: with the tensor-core tiles (H200, 8B prefill of 8K, full attention: 4.3 s against 11.6 on the f32 attention;
    // head dim 128 split takes 16 keys a step, 32 not fitting 48 KiB)
    sgAttentionKeys: tensorCores ? 32 : 0,
    // NOTE: near f32's answers (a greedy id of the mistral fixture flipped with operands rounded once) for 5-13% more time
    sgAttentionSplit: true,
    sgAttentionDirectKeys: tensorCores ? 16 : 0,
    sgAttentionLazyMax: 8,
    sgMatrixEmulate: false,
    fuse: true,
    fuseCopyWrite: true,
    attentionSmallRows: 1,
    attentionItems: options.targetWorkgroups ?? 512,
    // NOTE: 2 on software adapters, so that the tests' short contexts still split
    attentionSplitTiles: options.software === false ? 16 : 2,
    // NOTE: the decode kernel's teams and merge are laid out for one known subgroup size
    decodeAttentionSubgroup: f.has("subgroups") && sg !== undefined && sg.min === sg.max && sg.min >= 4 ? sg.min : 0,
    decodeAttentionUnroll: 2,
    // NOTE: 16 lanes hold half the registers of 8 at head dim 128 (H200, 8B full attention at 128K, runs taking turns: 31-39 against 38-40 ms)
    decodeAttentionLanes: options.software === false ? 16 : 0,
    // NOTE: H200, one layer's decode attention alone (scripts/device/attention-bench.mjs), 8B at 128K: 270 against 431 us, 400K: 813 against 1004
    decodeAttentionTwoPass: options.software === false,
    decodeAttentionValueLoads: 8,
    decodeAttentionKeysPerInvocation: 1,
    // NOTE: the lean layout (H200, one layer alone, 8B full attention at 128K 231 against 272 us, 400K 638 / 763;
    // whole 8B steps at 400K 25.7 against 29.2 ms a token, WG-KV 10.8 / 11.4)
    decodeAttentionKeyParts: 2,
    decodeAttentionChunkBuffers: 1,
    decodeAttentionSegTiles: 64,
    decodeAttentionZeroHidden: true,
    normHeld: true,
    matvecPairHalfUnroll: false,
    fuseNormRope: true,
  };
}

/** The kernels of `c` in words (the backend's description); `emulated`: the subgroup-matrix kernels run emulated. */
export function describeKernels(c: KernelChoice, emulated: boolean): string {
  const matvec = `matvec ${c.matvec.tpr} threads/row${c.matvec.subgroups ? " (subgroups)" : ""}`;
  const small = c.sgMatrixSmall ? ` (${c.sgMatrixSmall.bm}x${c.sgMatrixSmall.bn} for small grids)` : "";
  const tiles = c.sgMatrix ? `${c.sgMatrixSplit ? "split-f16" : "f16"} tensor-core tiles ${c.sgMatrix.bm}x${c.sgMatrix.bn}${small}${emulated ? " (emulated)" : ""}` : `f32 tiles ${c.tiled.bm}x${c.tiled.bn}`;
  const paths = [c.sgAttentionKeys > 0 ? "staged" : "", c.sgAttentionDirectKeys > 0 ? "direct on f16 pages" : ""].filter(Boolean).join(" and ");
  const attention = paths ? `, tensor-core prefill attention (${paths}; ${c.sgAttentionSplit ? "operands split in two f16" : "f16"}${emulated ? ", emulated" : ""})` : "";
  return `${matvec}, ${tiles}${attention}`;
}
