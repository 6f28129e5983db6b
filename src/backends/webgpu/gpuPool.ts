/**
 * @module backends/webgpu/gpuPool
 *
 * The KV page pool on the GPU, in parts (docs/design.md §4, §5). A storage
 * binding is limited (2 GiB on the H200; 128 MiB on lavapipe), so a pool
 * larger than one binding is split into groups of layers
 * (backend.ts KvPool.numGroups): group g holds page ids
 * [g * pagesPerGroup, (g + 1) * pagesPerGroup), in a buffer of its own
 * (K pages, then V pages at word vBase), and the engine's block pool keeps
 * every page of layer l in group floor(l * G / L). Kernels address a part
 * with page ids relative to its first page.
 *
 * A part's buffer: u32 words [2, numPages, 16, wordsPerRow] (K then V; f32 one
 * element per word, f16/bf16 two). Quest's bounds, when used, are a buffer
 * per part: f32 [numPages, 2, d] (min then max).
 */
import type { KvDType, KvPool } from "../backend.js";
import { PAGE_SIZE } from "../stepLayout.js";

export interface PoolPart {
  readonly buffer: GPUBuffer;
  readonly firstPage: number;
  readonly numPages: number;
  /** Word where the part's V pages start. */
  readonly vBase: number;
  bounds: GPUBuffer | null;
}

export interface GpuPool extends KvPool {
  readonly numGroups: number;
  readonly numLayers: number;
  readonly pagesPerGroup: number;
  /** u32 words per stored row of d elements. */
  readonly wordsPerRow: number;
  readonly parts: readonly PoolPart[];
}

/** Bytes of K and V of one page. */
export function pagePairBytes(headDim: number, kvDType: KvDType): number {
  return 2 * PAGE_SIZE * headDim * (kvDType === "f32" ? 4 : 2);
}

/**
 * The fewest groups (a divisor of numLayers, so groups hold as many layers
 * each) whose parts fit `limitBytes` each; null when even one layer per
 * group does not.
 */
export function chooseGroups(numPages: number, headDim: number, kvDType: KvDType, numLayers: number, limitBytes: number): number | null {
  const bytes = pagePairBytes(headDim, kvDType);
  for (let g = 1; g <= numLayers; g++) {
    if (numLayers % g !== 0 || 2 * g > numPages) continue;
    if (Math.ceil(numPages / g) * bytes <= limitBytes) return g;
  }
  return null;
}

/** The part holding layer `layer`'s pages. */
export function partOfLayer(pool: GpuPool, layer: number): PoolPart {
  if (pool.numGroups === 1) return pool.parts[0];
  if (!(layer >= 0 && layer < pool.numLayers)) throw new RangeError(`layer ${layer} of a KV pool made for ${pool.numLayers} layers`);
  return pool.parts[Math.floor((layer * pool.numGroups) / pool.numLayers)];
}

/** The part holding page `page`. */
export function partOfPage(pool: GpuPool, page: number): number {
  return Math.floor(page / pool.pagesPerGroup);
}

/**
 * Which parts a list of slots (or pages) touches, from its host shadow:
 * `ids[first + i * stride + j]` for i < count, j < width; negative ids are
 * skipped. All parts when the host does not know the list.
 */
export function partsTouched(pool: GpuPool, ids: Int32Array | null, first: number, count: number, stride: number, width: number, perPage: number): readonly number[] {
  if (pool.parts.length === 1) return onlyPart(0);
  if (!ids) return pool.parts.map((_, i) => i);
  // NOTE: a list usually lies in one part (a layer's pages share a group): that case allocates nothing
  // (writeKv and copySlots ask for every layer at every decode step)
  const pagesPerPart = pool.pagesPerGroup * perPage;
  let one = -1;
  let more: Set<number> | null = null;
  for (let i = 0; i < count; i++) {
    for (let j = 0; j < width; j++) {
      const id = ids[first + i * stride + j];
      if (id < 0) continue;
      const part = Math.floor(id / pagesPerPart);
      if (one < 0) one = part;
      else if (part !== one) (more ??= new Set([one])).add(part);
    }
  }
  if (more) return [...more].sort((x, y) => x - y);
  return one < 0 ? NO_PARTS : onlyPart(one);
}

const NO_PARTS: readonly number[] = Object.freeze([]);
const singleParts: (readonly number[])[] = [];
/** [part], one frozen list per part. */
function onlyPart(part: number): readonly number[] {
  return (singleParts[part] ??= Object.freeze([part]));
}

/** The pool as the WebGPU backend's, or an error. */
export function gpuPool(pool: KvPool): GpuPool {
  if (!("parts" in pool)) throw new Error("KV pool does not belong to the WebGPU backend");
  return pool as GpuPool;
}
