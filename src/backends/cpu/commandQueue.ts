/**
 * @module backends/cpu/commandQueue
 *
 * The CPU backend's device queue. Ops and writes are recorded as commands;
 * `submit` hands the recorded ones to a serial executor and `sync` waits
 * for everything handed over. The executor runs commands on the calling
 * thread in slices of about {@link SLICE_MS}, and between slices lets the
 * event loop run (timers, I/O, abort signals): kernels are synchronous, and
 * a step of a long prefill takes far longer than a UI frame or a server's
 * latency budget. A long command (attention over a long context) yields
 * inside itself through {@link SliceClock.maybeYield}.
 */

/** Milliseconds of kernels between two turns of the event loop. */
export const SLICE_MS = 8;

/** Lets a long command hand the thread back to the event loop between its parts. */
export interface SliceClock {
  /** A promise to await when the slice is used up (then the event loop runs), else null. */
  maybeYield(): Promise<void> | null;
}

/** A recorded command: synchronous, or asynchronous when it yields inside. */
export type Command = (clock: SliceClock) => void | Promise<void>;

export class CommandQueue implements SliceClock {
  #recorded: Command[] = [];
  #tail: Promise<void> = Promise.resolve();
  #sliceStart = 0;
  /** The first error of a command since the last sync: the rest of that submission is skipped. */
  #error: unknown = null;

  record(command: Command): void {
    this.#recorded.push(command);
  }

  get numRecorded(): number {
    return this.#recorded.length;
  }

  /** Hands the recorded commands to the executor, after those handed over before. */
  submit(): void {
    if (this.#recorded.length === 0) return;
    const commands = this.#recorded;
    this.#recorded = [];
    this.#tail = this.#tail.then(() => this.#run(commands));
  }

  /** Submits what is recorded and waits until every command has run; rethrows a command's error. */
  async sync(): Promise<void> {
    this.submit();
    await this.#tail;
    const error = this.#error;
    this.#error = null;
    if (error !== null) throw error;
  }

  maybeYield(): Promise<void> | null {
    if (performance.now() - this.#sliceStart < SLICE_MS) return null;
    return yieldToEventLoop().then(() => {
      this.#sliceStart = performance.now();
    });
  }

  async #run(commands: readonly Command[]): Promise<void> {
    this.#sliceStart = performance.now();
    for (const command of commands) {
      if (this.#error !== null) return;
      try {
        const pending = command(this);
        if (pending) await pending;
      } catch (err) {
        this.#error = err;
        return;
      }
      const turn = this.maybeYield();
      if (turn) await turn;
    }
  }
}

/**
 * Resolves after the event loop has had a turn: timers and I/O callbacks run
 * first (a resolved promise would not let them). Node has setImmediate;
 * browsers get a MessageChannel task (setTimeout(0) is clamped to 4 ms).
 */
export function yieldToEventLoop(): Promise<void> {
  const g = globalThis as { setImmediate?: (fn: () => void) => unknown; MessageChannel?: typeof MessageChannel };
  if (typeof g.setImmediate === "function") return new Promise((resolve) => g.setImmediate!(resolve));
  if (typeof g.MessageChannel === "function") {
    return new Promise((resolve) => {
      const channel = new g.MessageChannel!();
      channel.port1.onmessage = () => {
        channel.port1.close();
        resolve();
      };
      channel.port2.postMessage(null);
    });
  }
  return new Promise((resolve) => setTimeout(resolve, 0));
}
