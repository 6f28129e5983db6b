/**
 * @module backends/webgpu/gpuTensor
 *
 * A WebGPU tensor: one GPUBuffer (its size rounded up to whole 4-byte words,
 * since WGSL addresses storage in words: u8 and 16-bit tensors are packed
 * little-endian into u32), its shape and dtype, and a host shadow of small
 * tensors that only the host writes (step metadata: sequence fields, global
 * counts, positions). The shadow lets the backend plan dispatches (attention
 * work lists, RoPE angles) on the host without reading back; any op that
 * writes the tensor on the device drops it. Every write, host or device,
 * also bumps the tensor's `version`, so a copy made from it (matmul's f16 x)
 * knows when it is stale.
 */
import { DTYPE_BYTES, numElements, type DType, type HostArray, type Tensor } from "../backend.js";

/**
 * Largest tensor (elements) whose host writes are shadowed: step metadata up
 * to long prefill chunks (slot mappings [L, Hkv, T], promotions of a whole
 * chunk); the copy is made at the first host write.
 */
export const SHADOW_LIMIT = 1 << 22;

let nextId = 1;

/** Rows [firstRow, firstRow + numRows) of a weight too large for one storage binding, in a buffer of their own. */
export interface RowPart {
  readonly buffer: GPUBuffer;
  readonly firstRow: number;
  readonly numRows: number;
}

export class GpuTensor implements Tensor {
  readonly numel: number;
  readonly byteLength: number;
  readonly id = nextId++;
  #live = true;
  #shadow: HostArray | null = null;
  #shadowDropped = false;
  /** A matrix weight larger than one storage binding: its rows in parts (`buffer` is the first part's). */
  parts: readonly RowPart[] | null = null;
  /** Bumped at every write recorded (deviceWrites, hostWrites): equal versions, equal contents. */
  version = 0;

  constructor(
    readonly buffer: GPUBuffer,
    readonly shape: readonly number[],
    readonly dtype: DType,
    readonly label: string,
  ) {
    this.numel = numElements(shape);
    this.byteLength = this.numel * DTYPE_BYTES[dtype];
    this.#shadowDropped = !(this.numel <= SHADOW_LIMIT && (dtype === "i32" || dtype === "f32"));
  }

  /** The tensor's contents as the host wrote them (zeros where it did not: tensors start zeroed), while no device op has written it. */
  get shadow(): HostArray | null {
    if (this.#shadowDropped) return null;
    return (this.#shadow ??= this.dtype === "i32" ? new Int32Array(this.numel) : new Float32Array(this.numel));
  }

  /** Set to null when a device op writes the tensor: the host no longer knows it. */
  set shadow(value: null) {
    this.#shadowDropped = true;
    this.#shadow = value;
  }

  get isLive(): boolean {
    return this.#live;
  }

  kill(): void {
    this.#live = false;
  }
}

/** The tensor as a live GpuTensor, or an error naming it. */
export function gpu(t: Tensor): GpuTensor {
  if (!(t instanceof GpuTensor)) throw new Error(`tensor ${t.label} does not belong to the WebGPU backend`);
  if (!t.isLive) throw new Error(`tensor ${t.label} was used after destroyTensor()`);
  return t;
}

/** Bytes of a buffer holding `bytes`: whole words, at least one. */
export function bufferBytes(bytes: number): number {
  return Math.max(4, Math.ceil(bytes / 4) * 4);
}

/** A tensor's shadow as i32, or an error naming what the host cannot know. */
export function shadowI32(t: GpuTensor, what: string): Int32Array {
  if (!(t.shadow instanceof Int32Array)) throw new Error(`${what}: ${t.label} is written on the device, so the host cannot plan from it`);
  return t.shadow;
}

/**
 * Drops the tensors' shadows and bumps their versions: a device op writes
 * them. Every op that writes a tensor calls this as it records the write.
 */
export function deviceWrites(...ts: GpuTensor[]): void {
  for (const t of ts) {
    t.shadow = null;
    t.version++;
  }
}

/** The host writes `data` at element `offset` of `t`: its shadow follows, its version moves on. */
export function hostWrites(t: GpuTensor, data: HostArray, offset: number): void {
  if (t.shadow) t.shadow.set(data as never, offset);
  t.version++;
}
