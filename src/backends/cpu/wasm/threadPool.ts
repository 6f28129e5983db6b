/**
 * @module backends/cpu/wasm/threadPool
 *
 * Splits one kernel call across threads that share the wasm memory. The
 * caller (main) and the workers talk through a small shared control block,
 * never postMessage: decode issues dozens of small kernels per token, so a
 * dispatch must cost microseconds.
 *
 * A call is cut into numChunks chunks that every thread, main included,
 * claims one at a time from a shared counter (dynamic scheduling: a thread
 * that the OS descheduled, or that drew costly chunks, simply takes fewer).
 *
 * Protocol (Int32 slots of `control`):
 * - main makes SEQ odd, writes OP, args, NUM_CHUNKS, BASE = NEXT and DONE = 0,
 *   makes SEQ even (a seqlock: workers only trust what they read between two
 *   equal even SEQ values) and notifies the workers. A call too small to
 *   share runs on main alone and leaves SEQ odd, so the workers never wake.
 * - every thread claims chunk i = NEXT - BASE by compare-exchanging NEXT to
 *   NEXT + 1 while i < NUM_CHUNKS, runs it, and increments DONE; main returns
 *   once DONE == NUM_CHUNKS.
 * NOTE: NEXT only ever grows, across calls. A worker that wakes late holds a
 * stale BASE, sees i >= NUM_CHUNKS and claims nothing; a successful claim
 * proves the call is still running, so main cannot be rewriting the args the
 * chunk then reads. Both sides spin briefly before sleeping in Atomics.wait,
 * so back-to-back kernels skip the futex round trip.
 *
 * Platform-neutral: workers come from an injected KernelWorkerFactory.
 */
import type { KernelExports } from "./wasmModule.js";
import { runChunk } from "./chunks.js";
import { BASE, DONE, FAILED, MESSAGE, MESSAGE_CHARS, NEXT, NUM_CHUNKS, OP, OP_QUIT, SEQ } from "./controlBlock.js";

/** Polls of a control slot before sleeping in Atomics.wait (some tens of microseconds). */
const SPIN_POLLS = 20000;

/** What a worker needs to join the pool; every field can be posted to a worker. */
export interface KernelWorkerInit {
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  readonly control: SharedArrayBuffer;
  /** This worker's thread index, 1 .. numThreads - 1 (main is 0); selects its scratch. */
  readonly index: number;
}

export interface KernelWorkerHandle {
  /** Resolves once the worker has instantiated the kernels and entered its loop. */
  readonly ready: Promise<void>;
  terminate(): void;
}

export type KernelWorkerFactory = (init: KernelWorkerInit) => KernelWorkerHandle;

/** Main side: owns the workers and runs one kernel call at a time. */
export class KernelThreadPool {
  readonly ctl: Int32Array;
  readonly ctlF32: Float32Array;
  readonly #exports: KernelExports;
  readonly #workers: readonly KernelWorkerHandle[];
  readonly #canBlock: boolean;

  constructor(exports: KernelExports, control: SharedArrayBuffer, workers: readonly KernelWorkerHandle[]) {
    this.#exports = exports;
    this.ctl = new Int32Array(control);
    this.ctlF32 = new Float32Array(control);
    this.#workers = workers;
    this.#canBlock = canAtomicsWait(this.ctl);
  }

  get numThreads(): number {
    return this.#workers.length + 1;
  }

  /** Opens a call: returns the control block, whose OP and args the caller then writes before run(). */
  begin(): Int32Array {
    // Odd: workers ignore the block until run(). (Already odd if a call was abandoned before run().)
    if ((this.ctl[SEQ] & 1) === 0) Atomics.add(this.ctl, SEQ, 1);
    return this.ctl;
  }

  /** Runs the call written since begin() as numChunks chunks, on every thread if `parallel`, else on this one. */
  run(numChunks: number, parallel: boolean): void {
    const ctl = this.ctl;
    ctl[NUM_CHUNKS] = numChunks;
    if (!parallel || this.#workers.length === 0) {
      // SEQ stays odd: the workers sleep on, and the next begin() reuses the open call.
      for (let i = 0; i < numChunks; i++) runChunk(this.#exports, ctl, this.ctlF32, i, 0);
      return;
    }
    ctl[BASE] = Atomics.load(ctl, NEXT);
    ctl[DONE] = 0;
    Atomics.add(ctl, SEQ, 1); // even: the call is readable
    Atomics.notify(ctl, SEQ);
    const error = claimChunks(this.#exports, ctl, this.ctlF32, 0, ctl[BASE], numChunks);
    // NOTE: wait even when a chunk failed here: workers may still be writing memory.
    for (let polls = 0; ; polls++) {
      const done = Atomics.load(ctl, DONE);
      if (done === numChunks) break;
      if (polls >= SPIN_POLLS && this.#canBlock) Atomics.wait(ctl, DONE, done);
    }
    const workerFailed = ctl[FAILED] !== 0;
    ctl[FAILED] = 0;
    if (error !== undefined) throw error;
    if (workerFailed) throw new Error(`kernel worker failed: ${readMessage(ctl)}`);
  }

  dispose(): void {
    this.begin();
    this.ctl[OP] = OP_QUIT;
    Atomics.add(this.ctl, SEQ, 1);
    Atomics.notify(this.ctl, SEQ);
    for (const worker of this.#workers) worker.terminate();
  }
}

/** Claims and runs chunks of the current call until none is left; returns main's first error. */
function claimChunks(exports: KernelExports, ctl: Int32Array, ctlF32: Float32Array, thread: number, base: number, numChunks: number): unknown {
  let error: unknown;
  for (;;) {
    const next = Atomics.load(ctl, NEXT);
    const chunk = (next - base) | 0;
    if (chunk < 0 || chunk >= numChunks) return error;
    if (Atomics.compareExchange(ctl, NEXT, next, (next + 1) | 0) !== next) continue;
    try {
      runChunk(exports, ctl, ctlF32, chunk, thread);
    } catch (e) {
      error ??= e;
      // A worker reports before counting the chunk done, so main sees it in this call.
      if (thread !== 0) {
        writeMessage(ctl, `thread ${thread}: ${e instanceof Error ? e.message : String(e)}`);
        Atomics.store(ctl, FAILED, 1);
      }
    }
    if (Atomics.add(ctl, DONE, 1) + 1 === numChunks) Atomics.notify(ctl, DONE);
  }
}

/** Worker side: serves kernel calls until OP_QUIT. Blocks the calling thread. */
export function runKernelWorkerLoop(exports: KernelExports, control: SharedArrayBuffer, thread: number): void {
  const ctl = new Int32Array(control);
  const ctlF32 = new Float32Array(control);
  let seen = Atomics.load(ctl, SEQ);
  for (let polls = 0; ; polls++) {
    const seq = Atomics.load(ctl, SEQ);
    if (seq === seen || (seq & 1) === 1) {
      if (polls >= SPIN_POLLS) Atomics.wait(ctl, SEQ, seq);
      continue;
    }
    const op = ctl[OP], base = ctl[BASE], numChunks = ctl[NUM_CHUNKS];
    if (Atomics.load(ctl, SEQ) !== seq) continue; // torn read: main is writing the next call
    seen = seq;
    polls = 0;
    if (op === OP_QUIT) return;
    claimChunks(exports, ctl, ctlF32, thread, base, numChunks);
  }
}

/** False on threads that may not block (a browser's main thread): those only spin. */
function canAtomicsWait(ctl: Int32Array): boolean {
  try {
    Atomics.wait(ctl, FAILED, 1, 0);
    return true;
  } catch {
    return false;
  }
}

function writeMessage(ctl: Int32Array, message: string): void {
  const n = Math.min(message.length, MESSAGE_CHARS - 1);
  for (let i = 0; i < n; i++) ctl[MESSAGE + i] = message.charCodeAt(i);
  ctl[MESSAGE + n] = 0;
}

function readMessage(ctl: Int32Array): string {
  let s = "";
  for (let i = MESSAGE; i < MESSAGE + MESSAGE_CHARS && ctl[i] !== 0; i++) s += String.fromCharCode(ctl[i]);
  return s;
}
