/**
 * @module backends/webgpu/bindGroupCache
 *
 * Bind groups made once per (layout, bound buffers and ranges) and found
 * again without allocating: a decode step records hundreds of dispatches,
 * and a string key per dispatch (ids joined) cost more host time than the
 * lookup it served (H200 profile of an 8B decode step). Entries are bucketed
 * by a hash of the buffers' ids and ranges and compared binding by binding.
 */

/** A buffer bound to a kernel: a whole buffer, or a byte range of it. */
export type Binding = GPUBuffer | { buffer: GPUBuffer; offset: number; size: number };

interface Entry {
  readonly buffers: readonly GPUBuffer[];
  /** Per binding: offset and size, or -1 and -1 for the whole buffer. */
  readonly ranges: Float64Array;
  readonly group: GPUBindGroup;
  readonly bucket: Entry[];
}

export class BindGroupCache {
  readonly #byLayout = new Map<GPUBindGroupLayout, Map<number, Entry[]>>();
  /** The entries naming each buffer, so a destroyed buffer's groups go with it. */
  readonly #byBuffer = new Map<GPUBuffer, Set<Entry>>();
  readonly #ids = new WeakMap<GPUBuffer, number>();
  #nextId = 1;

  constructor(readonly device: GPUDevice) {}

  /** The bind group of `layout` binding `bindings` in order (binding i at index i), then `last` if given (no array built per call). */
  get(layout: GPUBindGroupLayout, bindings: readonly Binding[], last?: Binding): GPUBindGroup {
    let h = bindings.length;
    for (const b of bindings) h = this.#mix(h, b);
    if (last) h = this.#mix(h, last);
    let buckets = this.#byLayout.get(layout);
    if (!buckets) this.#byLayout.set(layout, (buckets = new Map()));
    let bucket = buckets.get(h);
    if (!bucket) buckets.set(h, (bucket = []));
    for (const e of bucket) if (sameBindings(e, bindings, last)) return e.group;
    return this.#add(layout, last ? [...bindings, last] : bindings, bucket);
  }

  #mix(h: number, b: Binding): number {
    if (b instanceof GPUBuffer) return (Math.imul(h, 31) + this.#id(b)) | 0;
    return (Math.imul((Math.imul(h, 31) + this.#id(b.buffer)) | 0, 31) + b.offset + 7 * b.size) | 0;
  }

  /** Forgets the bind groups that name `buffer` (about to be destroyed). */
  forget(buffer: GPUBuffer): void {
    const entries = this.#byBuffer.get(buffer);
    if (!entries) return;
    for (const e of entries) {
      e.bucket.splice(e.bucket.indexOf(e), 1);
      for (const b of e.buffers) if (b !== buffer) this.#byBuffer.get(b)?.delete(e);
    }
    this.#byBuffer.delete(buffer);
  }

  #add(layout: GPUBindGroupLayout, bindings: readonly Binding[], bucket: Entry[]): GPUBindGroup {
    const group = this.device.createBindGroup({
      layout,
      entries: bindings.map((b, binding) => ({ binding, resource: b instanceof GPUBuffer ? { buffer: b } : { buffer: b.buffer, offset: b.offset, size: b.size } })),
    });
    const ranges = new Float64Array(2 * bindings.length);
    const buffers = bindings.map((b, i) => {
      if (b instanceof GPUBuffer) {
        ranges[2 * i] = ranges[2 * i + 1] = -1;
        return b;
      }
      ranges[2 * i] = b.offset;
      ranges[2 * i + 1] = b.size;
      return b.buffer;
    });
    const entry: Entry = { buffers, ranges, group, bucket };
    bucket.push(entry);
    for (const b of buffers) {
      let set = this.#byBuffer.get(b);
      if (!set) this.#byBuffer.set(b, (set = new Set()));
      set.add(entry);
    }
    return group;
  }

  #id(b: GPUBuffer): number {
    let id = this.#ids.get(b);
    if (id === undefined) this.#ids.set(b, (id = this.#nextId++));
    return id;
  }
}

function sameBindings(e: Entry, bindings: readonly Binding[], last: Binding | undefined): boolean {
  const n = bindings.length;
  if (e.buffers.length !== n + (last ? 1 : 0)) return false;
  for (let i = 0; i < n; i++) if (!sameBinding(e, i, bindings[i])) return false;
  return !last || sameBinding(e, n, last);
}

function sameBinding(e: Entry, i: number, b: Binding): boolean {
  if (b instanceof GPUBuffer) return e.buffers[i] === b && e.ranges[2 * i] === -1;
  return e.buffers[i] === b.buffer && e.ranges[2 * i] === b.offset && e.ranges[2 * i + 1] === b.size;
}
