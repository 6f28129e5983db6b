/**
 * @module backends/webgpu/readPacer
 *
 * Idling through most of a read's expected wait before mapping (docs/design.md §5).
 *
 * Why: dawn.node (Node's `webgpu` package) learns that a `mapAsync` is done by
 * polling Dawn's events from `setImmediate`, with a new native function per
 * poll, for as long as the map is pending. A decode step's read waits
 * milliseconds for the GPU; the polls' garbage was nearly all a decode's
 * allocation and its collection 2.3-2.8 ms a token on the H200's host
 * (lavapipe, default model: 1.2 s of collection in 128 steps, 30 ms when idle
 * before mapping). Where the platform can idle without polling (Node: a timer,
 * then Atomics.wait for the last stretch), the runtime idles for what it
 * expects the GPU still needs, then maps.
 *
 * What it expects: the shortest wait of the last reads after the same work
 * (as many commands, workgroups within 10%: consecutive decode steps), less
 * a margin; nothing after other work (a prefill chunk after decode steps, the
 * first read). The shortest, as a wait the host lengthened (a collection or
 * the idle itself) would otherwise lengthen the next idle past the GPU's
 * time (H200, 8B at 8K: the previous wait alone made steps ~0.5 ms slower).
 * An idle too long costs its excess once: that read's wait is the idle, so
 * the next expects it less the margin, and the idle settles under the GPU's time.
 */

/** Idles the calling thread for `ms` without polling the GPU (the platform's way). */
export type IdleFor = (ms: number) => Promise<void>;

/** The work recorded between two reads: what tells one decode step's read from another kind. */
export interface RecordedWork {
  commands: number;
  workgroups: number;
}

/** Expected waits shorter than this are polled (idling costs more than it saves). */
const MIN_IDLE_MS = 0.5;
/** What the idle leaves to polling: at least this much, or this fraction of the expected wait. */
const MARGIN_MS = 0.25;
const MARGIN_FRACTION = 0.1;
/** Work within this fraction of the previous read's counts as the same. */
const SAME_WORK = 0.1;
/** Waits remembered: the last reads after the same work. */
const WAITS_KEPT = 8;

export class ReadPacer {
  /** The work of the last read, and the waits (ms) of the reads after the same work, oldest first. */
  #work: RecordedWork | null = null;
  #waits: number[] = [];

  /** Milliseconds to idle before mapping a read after `work` (0: map at once). */
  idleMs(work: RecordedWork): number {
    if (!this.#same(work)) return 0;
    const shortest = Math.min(...this.#waits);
    const idle = shortest - Math.max(MARGIN_MS, MARGIN_FRACTION * shortest);
    return idle >= MIN_IDLE_MS ? idle : 0;
  }

  /** The wait from a read's submit to its data, idle included. */
  record(work: RecordedWork, waitMs: number): void {
    if (!this.#same(work)) this.#waits = [];
    this.#work = { commands: work.commands, workgroups: work.workgroups };
    this.#waits.push(waitMs);
    if (this.#waits.length > WAITS_KEPT) this.#waits.shift();
  }

  /** Forgets the waits (a read that failed says nothing about the next). */
  reset(): void {
    this.#work = null;
    this.#waits = [];
  }

  #same(work: RecordedWork): boolean {
    const last = this.#work;
    return last !== null && last.commands === work.commands && Math.abs(work.workgroups - last.workgroups) <= SAME_WORK * last.workgroups;
  }
}
