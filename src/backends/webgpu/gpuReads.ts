/**
 * @module backends/webgpu/gpuReads
 *
 * The runtime's reads (gpuRuntime.ts): byte ranges of buffers and the error
 * buffer copied to one staging buffer, submitted with what is recorded, and
 * mapped. Reads map in the order they were made, each once the one before
 * it is done; where the platform can idle without polling, a read idles
 * first for most of the wait it expects from its submit (readPacer.ts).
 * Everything up to the submit happens when `read` is called, so work the
 * caller records after the call runs after the read's copies.
 */
import { ReadPacer, type IdleFor, type RecordedWork } from "./readPacer.js";

/** A range of a buffer to read: starting at a word boundary (offset, default 0), its size rounded up to words. */
export interface ReadRange {
  readonly buffer: GPUBuffer;
  readonly bytes: number;
  readonly offset?: number;
}

/** What the reads take from the runtime. */
export interface ReadingRuntime {
  readonly device: GPUDevice;
  readonly errorBuffer: GPUBuffer;
  readonly idleFor: IdleFor | null;
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void;
  clear(buffer: GPUBuffer, offset: number, bytes: number): void;
  flush(): void;
  takeWork(): RecordedWork;
}

/**
 * Reads of at most this many bytes (a decode step's sampled ids) reuse
 * staging buffers: creating and destroying one per read was host time on
 * every step (a native call each, and dawn.node tracks every buffer it makes).
 */
const POOLED_STAGING_BYTES = 64 << 10;
/** Free pooled staging buffers kept (reads in flight at once take one each). */
const MAX_POOLED_STAGING = 4;

export class GpuReads {
  readonly #rt: ReadingRuntime;
  /** Unmapped staging buffers of POOLED_STAGING_BYTES, free for the next small read. */
  readonly #staging: GPUBuffer[] = [];
  readonly #pacer = new ReadPacer();
  /** The last read's mapping (settled either way): the next read maps after it. */
  #lastRead: Promise<void> = Promise.resolve();

  constructor(rt: ReadingRuntime) {
    this.#rt = rt;
  }

  /**
   * Maps a read's staging buffer once `previous` (the read before it) is done:
   * a read made while another is in flight (the engine's next step, recorded
   * while this one runs) idles and maps after it, so two reads never poll at
   * once and a read never blocks before its caller has the promise.
   */
  async #mapAfter(previous: Promise<void>, staging: GPUBuffer, total: number, work: RecordedWork, submittedAt: number): Promise<void> {
    await previous;
    const idle = this.#rt.idleFor ? this.#pacer.idleMs(work) - (performance.now() - submittedAt) : 0;
    if (idle > 0) await this.#rt.idleFor!(idle);
    await staging.mapAsync(GPUMapMode.READ, 0, total).catch((err: unknown) => {
      this.#pacer.reset();
      throw err;
    });
    this.#pacer.record(work, performance.now() - submittedAt);
  }

  /** Records the copies of `ranges` and the error buffer to a staging buffer, submits, and maps it (see the module's note). */
  async read(ranges: readonly ReadRange[]): Promise<{ data: ArrayBuffer[]; error: Uint32Array }> {
    const offsets: number[] = [];
    let total = 16;
    for (const r of ranges) {
      offsets.push(total);
      total += Math.ceil(r.bytes / 4) * 4;
    }
    const pooled = total <= POOLED_STAGING_BYTES;
    const staging = (pooled ? this.#staging.pop() : undefined) ?? this.#rt.device.createBuffer({ size: pooled ? POOLED_STAGING_BYTES : total, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: "read staging" });
    this.#rt.copy(this.#rt.errorBuffer, 0, staging, 0, 16);
    ranges.forEach((r, i) => this.#rt.copy(r.buffer, r.offset ?? 0, staging, offsets[i], Math.ceil(r.bytes / 4) * 4));
    this.#rt.clear(this.#rt.errorBuffer, 0, 16);
    this.#rt.flush();
    const work = this.#rt.takeWork();
    const submittedAt = performance.now();
    const mapped = this.#mapAfter(this.#lastRead, staging, total, work, submittedAt);
    this.#lastRead = mapped.then(
      () => {},
      () => {},
    );
    let reusable = false;
    try {
      await mapped;
      const all = staging.getMappedRange(0, total);
      const error = new Uint32Array(all.slice(0, 16));
      const data = ranges.map((r, i) => all.slice(offsets[i], offsets[i] + r.bytes));
      staging.unmap();
      reusable = pooled;
      return { data, error };
    } finally {
      // NOTE: a buffer whose mapping failed (device lost) is not reused
      if (reusable && this.#staging.length < MAX_POOLED_STAGING) this.#staging.push(staging);
      else staging.destroy();
    }
  }
}
