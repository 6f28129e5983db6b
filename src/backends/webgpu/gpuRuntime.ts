/**
 * @module backends/webgpu/gpuRuntime
 *
 * The WebGPU backend's command machinery (docs/design.md §5): pipelines
 * compiled once per kernel source (pipelineCache.ts), one command encoder whose compute pass
 * records the ops of a step, and an argument arena. Every `submitEvery`
 * commands the recorded ones are submitted, so the GPU runs the start of a
 * step while the host records its rest.
 *
 * Arguments: each dispatch appends its parameters (and any host-planned
 * list, e.g. attention's work items) to a host arena at a 256-byte aligned
 * offset; kernels read them from `args` (the binding after the kernel's own in
 * its one bind group, read-only storage with a dynamic offset). At a flush the arena is written with one
 * queue.writeBuffer, which the queue runs before the flushed commands, so
 * one GPU buffer serves every flush (the queue orders a flush's write after
 * the previous flush's commands).
 *
 * Ordering of host writes: queue.writeBuffer runs at the next submit, before
 * commands recorded but not yet submitted; so a write that follows recorded
 * ops either flushes them first (large writes) or travels through the arena
 * and a copy kernel recorded in order (small writes).
 *
 * Reads: where the platform gives a way to idle without polling (`idleFor`),
 * a read idles for most of the wait it expects before it maps (readPacer.ts).
 *
 * Errors: kernels that validate their inputs (embed's ids, scatter's
 * indices) record the first failure in an error buffer; `read` copies it
 * along and rejects with its message (then clears it).
 */
import type { GpuProfiler } from "./gpuProfiler.js";
import { PipelineCache } from "./pipelineCache.js";
import { BindGroupCache, type Binding } from "./bindGroupCache.js";
import type { IdleFor, RecordedWork } from "./readPacer.js";
import { GpuReads, type ReadRange } from "./gpuReads.js";

/** How a kernel binds a tensor: read-only or read-write storage. */
export type Access = "ro" | "rw";

export interface Kernel {
  /** Cache key: the WGSL source itself. */
  readonly code: string;
  readonly bindings: readonly Access[];
  readonly label: string;
}

export type { Binding } from "./bindGroupCache.js";

const ALIGN = 256;
/** Bytes a dispatch may read from its argument window. */
const WINDOW = 1 << 20;

export class GpuRuntime {
  readonly #pipelines: PipelineCache;
  readonly #bindGroups: BindGroupCache;
  #argsBuffer: GPUBuffer;
  /** The arena's window as every bind group's last binding (the dispatch's dynamic offset moves it). */
  #argsBinding: { buffer: GPUBuffer; offset: number; size: number };
  #host = new ArrayBuffer(1 << 16);
  #hostU32 = new Uint32Array(this.#host);
  #hostF32 = new Float32Array(this.#host);
  #used = 0;
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  /** The pipeline set in #pass. */
  #passPipeline: GPUComputePipeline | null = null;
  #numCommands = 0;
  #numDispatches = 0;
  /** The dispatch's dynamic offset into the arguments (setBindGroup's data). */
  readonly #dynamicOffset = new Uint32Array(1);
  /** Buffers to destroy once the commands recorded so far are submitted. */
  #doomed: GPUBuffer[] = [];
  readonly errorBuffer: GPUBuffer;
  /** The first uncaptured device error (a bug), reported by the next read. */
  deviceError: string | null = null;
  readonly window: number;
  /** Commands recorded before a dispatch submits them (0: submit only when read or written). */
  submitEvery = 48;
  /** Times each dispatch when set (gpuProfiler.ts): one pass per dispatch. */
  profiler: GpuProfiler | null = null;
  /** The platform's idle without polling (Node); null: reads map at once. */
  idleFor: IdleFor | null = null;
  /** What was recorded since the last read (the pacer's sign of a step like the last). */
  #sinceRead: RecordedWork = { commands: 0, workgroups: 0 };
  readonly #reads: GpuReads;

  /** device.limits' value, read once (each read of a limit is a native getter). */
  readonly #maxGroupsPerDimension: number;

  constructor(readonly device: GPUDevice) {
    this.#pipelines = new PipelineCache(device);
    this.#bindGroups = new BindGroupCache(device);
    this.#maxGroupsPerDimension = device.limits.maxComputeWorkgroupsPerDimension;
    this.window = Math.min(WINDOW, device.limits.maxStorageBufferBindingSize);
    this.#argsBuffer = this.#createArgsBuffer(4 << 20);
    this.#argsBinding = { buffer: this.#argsBuffer, offset: 0, size: this.window };
    this.#reads = new GpuReads(this);
    this.errorBuffer = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, label: "errors" });
  }

  get numCommands(): number { return this.#numCommands; }
  /** Dispatches recorded since the runtime was made (what the fusions save: tests). */
  get numDispatches(): number { return this.#numDispatches; }

  // ---- arguments

  /** Appends words to the arena; returns their byte offset (aligned) for a dispatch's dynamic offset. */
  #appendArgs(words: ArrayLike<number>, floats: ReadonlySet<number> | null, extra: readonly (Int32Array | Uint32Array | Float32Array)[]): number {
    const extraWords = extra.reduce((n, a) => n + a.length, 0);
    const bytes = (words.length + extraWords) * 4;
    if (bytes > this.window) throw new RangeError(`a dispatch's arguments take ${bytes} bytes, more than the ${this.window}-byte window`);
    const offset = Math.ceil(this.#used / ALIGN) * ALIGN;
    // NOTE: the GPU buffer must hold offset + window; past that, flush what is recorded and start over
    if (offset + this.window > this.#argsBuffer.size) {
      if (this.#numCommands > 0) {
        this.flush();
        return this.#appendArgs(words, floats, extra);
      }
      this.#bindGroups.forget(this.#argsBuffer);
      this.#doomed.push(this.#argsBuffer);
      this.#argsBuffer = this.#createArgsBuffer(2 * (offset + this.window));
      this.#argsBinding = { buffer: this.#argsBuffer, offset: 0, size: this.window };
    }
    if (offset + bytes > this.#host.byteLength) {
      const grown = new ArrayBuffer(Math.max(2 * this.#host.byteLength, offset + bytes));
      new Uint8Array(grown).set(new Uint8Array(this.#host, 0, this.#used));
      this.#host = grown;
      this.#hostU32 = new Uint32Array(grown);
      this.#hostF32 = new Float32Array(grown);
    }
    const u = this.#hostU32, f = this.#hostF32;
    let at = offset / 4;
    for (let i = 0; i < words.length; i++, at++) {
      if (floats?.has(i)) f[at] = words[i];
      else u[at] = words[i] >>> 0;
    }
    for (const a of extra) {
      new Uint8Array(this.#host, at * 4, a.byteLength).set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
      at += a.length;
    }
    this.#used = offset + bytes;
    return offset;
  }

  #createArgsBuffer(size: number): GPUBuffer {
    return this.device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST, label: "arguments" });
  }

  // ---- pipelines and bind groups

  /**
   * What the WGSL compiler says is wrong with `k`, or null (pipelineCache.ts): a kernel that fails to
   * compile must not reach pipeline creation, where dawn.node aborts the process.
   */
  compileError(k: Kernel): Promise<string | null> {
    return this.#pipelines.compileError(k);
  }

  /** Forgets bind groups that name a buffer about to be destroyed. */
  forget(buffer: GPUBuffer): void {
    this.#bindGroups.forget(buffer);
  }

  // ---- recording

  /**
   * Records a dispatch of `groups` workgroups (a linear count, laid out in
   * 2D when it exceeds the per-dimension limit: kernels use wgIndex()).
   * args: words (integers, or f32 at the indices in `floats`), then `extra` arrays.
   */
  dispatch(k: Kernel, buffers: readonly Binding[], groups: number, args: ArrayLike<number>, floats: ReadonlySet<number> | null = null, extra: readonly (Int32Array | Uint32Array | Float32Array)[] = []): void {
    if (groups <= 0) return;
    if (buffers.length !== k.bindings.length) throw new Error(`${k.label}: ${buffers.length} buffers for ${k.bindings.length} bindings`);
    // NOTE: the GPU starts on what is recorded while the host records the rest of the step (else it idles until the read)
    if (this.submitEvery > 0 && this.#numCommands >= this.submitEvery) this.flush();
    const { pipeline, layout } = this.#pipelines.get(k);
    const offset = this.#appendArgs(args, floats, extra);
    if (this.profiler) this.#endPass();
    const pass = this.#computePass(this.profiler?.passFor(k.label));
    // NOTE: a pass keeps its pipeline between dispatches (the same kernel over a weight's or a pool's parts)
    if (pipeline !== this.#passPipeline) pass.setPipeline((this.#passPipeline = pipeline));
    // NOTE: the typed-array form: no array made per dispatch
    this.#dynamicOffset[0] = offset;
    pass.setBindGroup(0, this.#bindGroups.get(layout, buffers, this.#argsBinding), this.#dynamicOffset, 0, 1);
    const max = this.#maxGroupsPerDimension;
    if (groups <= max) pass.dispatchWorkgroups(groups);
    else pass.dispatchWorkgroups(max, Math.ceil(groups / max));
    if (this.profiler) this.#endPass();
    this.#numCommands++;
    this.#numDispatches++;
    this.#sinceRead.commands++;
    this.#sinceRead.workgroups += groups;
  }

  /** Records a buffer copy (sizes and offsets in whole words). */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    if (bytes <= 0) return;
    this.#endPass();
    this.#encoderNow().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
    this.#numCommands++;
    this.#sinceRead.commands++;
  }

  /** Records zeroing a buffer range (whole words). */
  clear(buffer: GPUBuffer, offset: number, bytes: number): void {
    if (bytes <= 0) return;
    this.#endPass();
    this.#encoderNow().clearBuffer(buffer, offset, bytes);
    this.#numCommands++;
    this.#sinceRead.commands++;
  }

  /** Destroys a buffer after the commands recorded so far (queued work may still use it). */
  destroyLater(buffer: GPUBuffer): void {
    this.forget(buffer);
    if (this.#numCommands > 0) this.#doomed.push(buffer);
    else buffer.destroy();
  }

  #encoderNow(): GPUCommandEncoder {
    return (this.#encoder ??= this.device.createCommandEncoder());
  }

  #computePass(descriptor?: GPUComputePassDescriptor): GPUComputePassEncoder {
    return (this.#pass ??= this.#encoderNow().beginComputePass(descriptor));
  }

  #endPass(): void {
    this.#pass?.end();
    this.#pass = null;
    this.#passPipeline = null;
  }

  /** Submits what is recorded (with the arguments it reads). */
  flush(): void {
    this.#endPass();
    if (this.#encoder) {
      if (this.#used > 0) this.device.queue.writeBuffer(this.#argsBuffer, 0, this.#host, 0, Math.ceil(this.#used / 4) * 4);
      const collect = this.profiler?.resolve(this.#encoder);
      this.device.queue.submit([this.#encoder.finish()]);
      collect?.();
    }
    this.#encoder = null;
    this.#used = 0;
    this.#numCommands = 0;
    for (const b of this.#doomed) b.destroy();
    this.#doomed = [];
  }

  /**
   * Copies byte ranges of buffers (and the error buffer) to the host in one
   * round trip (gpuReads.ts). Ranges start at word boundaries (offset, default 0); sizes are rounded up to words.
   */
  readBack(ranges: readonly ReadRange[]): Promise<{ data: ArrayBuffer[]; error: Uint32Array }> {
    return this.#reads.read(ranges);
  }

  /** What was recorded since the last read (the pacer's sign of a step like the last), counted afresh from now. */
  takeWork(): RecordedWork {
    const work = this.#sinceRead;
    this.#sinceRead = { commands: 0, workgroups: 0 };
    return work;
  }
}
