/**
 * @module backends/cpu/wasm/threadPool
 *
 * Splits one kernel call across threads that share the wasm memory. The
 * caller (main) and the workers talk through a small shared control block,
 * never postMessage: decode issues dozens of small kernels per token, so a
 * dispatch must cost microseconds.
 *
 * Protocol (Int32 slots of `control`):
 * - main writes OP and the kernel's args, sets PENDING = number of workers,
 *   bumps SEQ and notifies it; it then computes part 0 itself and waits for
 *   PENDING to drop to 0.
 * - a worker waits for SEQ to change, computes part `index` of OP, and
 *   decrements PENDING (notifying main when it was the last).
 * NOTE: args are only rewritten once PENDING is 0, i.e. after every worker
 * has finished reading them. Both sides spin briefly before sleeping in
 * Atomics.wait: back-to-back kernels then skip the futex round trip.
 *
 * Platform-neutral: workers come from an injected KernelWorkerFactory.
 */
import type { KernelExports } from "./wasmModule.js";

// ---- control block layout (Int32 slots) ------------------------------------
export const SEQ = 0;
export const PENDING = 1;
export const OP = 2;
export const FAILED = 3;
export const NUM_PARTS = 4;
export const SCRATCH_BASE = 5;
export const SCRATCH_STRIDE = 6;
/** Kernel args start here; a float arg is read through a Float32Array at its slot. */
export const ARGS = 8;
const MESSAGE = 32;
const MESSAGE_CHARS = 224;
export const CONTROL_BYTES = (MESSAGE + MESSAGE_CHARS) * 4;

export const OP_QUIT = -1;
export const OP_MATMUL_F32 = 1;
export const OP_MATMUL_BF16 = 2;
export const OP_ATTENTION = 3;

/** Polls of a control slot before sleeping in Atomics.wait (tens of microseconds). */
const SPIN_POLLS = 20000;

/** What a worker needs to join the pool; every field can be posted to a worker. */
export interface KernelWorkerInit {
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  readonly control: SharedArrayBuffer;
  /** This worker's part index, 1 .. numThreads - 1 (main computes part 0). */
  readonly index: number;
}

export interface KernelWorkerHandle {
  /** Resolves once the worker has instantiated the kernels and entered its loop. */
  readonly ready: Promise<void>;
  terminate(): void;
}

export type KernelWorkerFactory = (init: KernelWorkerInit) => KernelWorkerHandle;

/** Computes part `part` of the kernel described in the control block. */
export function runPart(exports: KernelExports, ctl: Int32Array, ctlF32: Float32Array, part: number): void {
  const numParts = ctl[NUM_PARTS];
  const a = ARGS;
  switch (ctl[OP]) {
    case OP_MATMUL_F32:
    case OP_MATMUL_BF16: {
      // args: out x w bias M N K splitOverN
      const M = ctl[a + 4], N = ctl[a + 5], K = ctl[a + 6];
      let m0 = 0, m1 = M, n0 = 0, n1 = N;
      // Shares are whole 4-row blocks, so only the last share has a tail.
      if (ctl[a + 7]) [n0, n1] = share(N, part, numParts);
      else [m0, m1] = share(M, part, numParts);
      if (m0 >= m1 || n0 >= n1) return;
      const fn = ctl[OP] === OP_MATMUL_F32 ? exports.matmulF32 : exports.matmulBf16;
      fn(ctl[a], ctl[a + 1], ctl[a + 2], ctl[a + 3], N, K, m0, m1, n0, n1);
      return;
    }
    case OP_ATTENTION:
      // args: out q k v numQueries qPos0 numHeads numKvHeads headDim kvCapacity scale queriesPerTask headsPerTask
      exports.attention(
        ctl[a], ctl[a + 1], ctl[a + 2], ctl[a + 3], ctl[a + 4], ctl[a + 5], ctl[a + 6], ctl[a + 7], ctl[a + 8], ctl[a + 9],
        ctlF32[a + 10], ctl[a + 11], ctl[a + 12], part, numParts, ctl[SCRATCH_BASE] + part * ctl[SCRATCH_STRIDE],
      );
      return;
    default:
      throw new Error(`unknown kernel op ${ctl[OP]}`);
  }
}

/** [begin, end) of part `part` when `total` rows are dealt out in blocks of 4. */
function share(total: number, part: number, numParts: number): [number, number] {
  const blocks = Math.ceil(total / 4);
  const begin = Math.floor((blocks * part) / numParts) * 4;
  const end = Math.floor((blocks * (part + 1)) / numParts) * 4;
  return [Math.min(begin, total), Math.min(end, total)];
}

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

  /** Runs the kernel whose OP and args are in the control block, split in `numParts` (1 = main only). */
  run(numParts: number): void {
    const ctl = this.ctl;
    ctl[NUM_PARTS] = numParts;
    if (numParts === 1) return runPart(this.#exports, ctl, this.ctlF32, 0);
    const numWorkers = numParts - 1;
    Atomics.store(ctl, PENDING, numWorkers);
    Atomics.add(ctl, SEQ, 1);
    Atomics.notify(ctl, SEQ, numWorkers);
    let error: unknown;
    try {
      runPart(this.#exports, ctl, this.ctlF32, 0);
    } catch (e) {
      error = e;
    }
    // NOTE: wait even when part 0 failed: workers still touch the memory.
    for (let polls = 0; ; polls++) {
      const pending = Atomics.load(ctl, PENDING);
      if (pending === 0) break;
      if (polls >= SPIN_POLLS && this.#canBlock) Atomics.wait(ctl, PENDING, pending);
    }
    if (error !== undefined) throw error;
    if (ctl[FAILED]) {
      ctl[FAILED] = 0;
      throw new Error(`kernel worker failed: ${readMessage(ctl)}`);
    }
  }

  dispose(): void {
    Atomics.store(this.ctl, OP, OP_QUIT);
    Atomics.add(this.ctl, SEQ, 1);
    Atomics.notify(this.ctl, SEQ);
    for (const worker of this.#workers) worker.terminate();
  }
}

/** Worker side: serves kernel calls until OP_QUIT. Blocks the calling thread. */
export function runKernelWorkerLoop(exports: KernelExports, control: SharedArrayBuffer, index: number, seen: number): void {
  const ctl = new Int32Array(control);
  const ctlF32 = new Float32Array(control);
  for (;;) {
    let seq: number;
    for (let polls = 0; (seq = Atomics.load(ctl, SEQ)) === seen; polls++) {
      if (polls >= SPIN_POLLS) Atomics.wait(ctl, SEQ, seen);
    }
    seen = seq;
    if (ctl[OP] === OP_QUIT) return;
    if (index < ctl[NUM_PARTS]) {
      try {
        runPart(exports, ctl, ctlF32, index);
      } catch (e) {
        writeMessage(ctl, `worker ${index}: ${e instanceof Error ? e.message : String(e)}`);
        Atomics.store(ctl, FAILED, 1);
      }
      if (Atomics.sub(ctl, PENDING, 1) === 1) Atomics.notify(ctl, PENDING);
    }
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
