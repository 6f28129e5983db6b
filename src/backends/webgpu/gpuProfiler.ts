/**
 * @module backends/webgpu/gpuProfiler
 *
 * GPU time per kernel, from timestamp queries (the `timestamp-query`
 * feature): with a profiler the runtime gives every dispatch its own compute
 * pass whose begin and end write a timestamp, resolves them at each flush
 * and adds each dispatch's time to its kernel's label. For finding where a
 * step's time goes on a real GPU (WGKV_PROFILE=1 in Node); the extra passes
 * cost a little, so timings with a profiler are for comparing kernels, not
 * for the benchmark's figures.
 */

export interface KernelTime {
  readonly label: string;
  readonly count: number;
  /** Sum of the dispatches' GPU time. */
  readonly ms: number;
}

/** Query pairs per flush; dispatches past it in one flush go untimed (counted apart). */
const CAPACITY = 2048; // WebGPU allows 4096 queries per set

export class GpuProfiler {
  readonly #device: GPUDevice;
  readonly #querySet: GPUQuerySet;
  readonly #resolveBuffer: GPUBuffer;
  /** Labels of the pairs written since the last flush, in query order. */
  #labels: string[] = [];
  readonly #totals = new Map<string, { count: number; ns: number }>();
  #pending: Promise<void>[] = [];
  #untimed = 0;

  constructor(device: GPUDevice) {
    this.#device = device;
    this.#querySet = device.createQuerySet({ type: "timestamp", count: 2 * CAPACITY, label: "profiler" });
    this.#resolveBuffer = device.createBuffer({ size: 16 * CAPACITY, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC, label: "profiler resolve" });
  }

  /** The timestamp writes of a pass that holds one dispatch of `label` (undefined when this flush is full). */
  passFor(label: string): GPUComputePassDescriptor | undefined {
    if (this.#labels.length >= CAPACITY) {
      this.#untimed++;
      return undefined;
    }
    const i = this.#labels.push(label) - 1;
    return { timestampWrites: { querySet: this.#querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } };
  }

  /** Records the copy of this flush's timestamps; `collect` after the submit reads them. */
  resolve(encoder: GPUCommandEncoder): (() => void) | null {
    const n = this.#labels.length;
    if (n === 0) return null;
    const labels = this.#labels;
    this.#labels = [];
    const staging = this.#device.createBuffer({ size: 16 * n, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: "profiler staging" });
    encoder.resolveQuerySet(this.#querySet, 0, 2 * n, this.#resolveBuffer, 0);
    encoder.copyBufferToBuffer(this.#resolveBuffer, 0, staging, 0, 16 * n);
    return () => {
      this.#pending.push(
        staging.mapAsync(GPUMapMode.READ).then(() => {
          const t = new BigUint64Array(staging.getMappedRange());
          labels.forEach((label, i) => {
            const entry = this.#totals.get(label) ?? { count: 0, ns: 0 };
            // NOTE: a pass the GPU reordered or a clock reset can give end < begin: counted as 0
            entry.ns += Math.max(0, Number(t[2 * i + 1] - t[2 * i]));
            entry.count++;
            this.#totals.set(label, entry);
          });
          staging.unmap();
          staging.destroy();
        }),
      );
    };
  }

  /** Kernel times so far, the longest first, and then starts over. */
  async take(): Promise<{ kernels: KernelTime[]; untimed: number }> {
    await Promise.all(this.#pending);
    this.#pending = [];
    const kernels = [...this.#totals].map(([label, e]) => ({ label, count: e.count, ms: e.ns / 1e6 })).sort((a, b) => b.ms - a.ms);
    const untimed = this.#untimed;
    this.#totals.clear();
    this.#untimed = 0;
    return { kernels, untimed };
  }

  destroy(): void {
    this.#querySet.destroy();
    this.#resolveBuffer.destroy();
  }
}

/** A profile as text lines: total, then each kernel's share, count and mean time. */
export function formatProfile(p: { kernels: readonly KernelTime[]; untimed: number }): string {
  const total = p.kernels.reduce((s, k) => s + k.ms, 0);
  const lines = [`GPU time ${total.toFixed(2)} ms in ${p.kernels.reduce((s, k) => s + k.count, 0)} dispatches${p.untimed ? ` (+${p.untimed} untimed)` : ""}`];
  for (const k of p.kernels) {
    lines.push(`${((100 * k.ms) / Math.max(total, 1e-9)).toFixed(1).padStart(5)}%  ${k.ms.toFixed(3).padStart(10)} ms  ${String(k.count).padStart(7)} x ${((1000 * k.ms) / k.count).toFixed(1).padStart(8)} us  ${k.label}`);
  }
  return lines.join("\n");
}
