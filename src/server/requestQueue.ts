/**
 * @module server/requestQueue
 *
 * Admission of requests to the engine: at most `maxRunning` at once (the
 * engine's sequence slots, so the engine batches all of them); beyond that a
 * first-come-first-served queue of at most `maxQueue`, then a 429 with
 * Retry-After. A request that leaves while it waits (its client hung up)
 * takes its place out of the queue; a slot freed goes to the oldest waiter.
 */
import { ApiError, clientGone } from "./errors.js";

interface Waiter {
  readonly resolve: (release: () => void) => void;
  readonly reject: (err: unknown) => void;
}

export class RequestQueue {
  #running = 0;
  readonly #waiting: Waiter[] = [];
  readonly #idleWaiters: (() => void)[] = [];

  constructor(
    readonly maxRunning: number,
    readonly maxQueue: number,
  ) {}

  get numRunning(): number {
    return this.#running;
  }

  get numWaiting(): number {
    return this.#waiting.length;
  }

  /**
   * Resolves with a release function once the request may run; throws a 429
   * ApiError when the queue is full, and the signal's reason when it aborts
   * while waiting.
   */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(clientGone());
    if (this.#running < this.maxRunning && this.#waiting.length === 0) return Promise.resolve(this.#take());
    if (this.#waiting.length >= this.maxQueue) {
      return Promise.reject(
        new ApiError(429, `the server is at capacity: ${this.maxRunning} requests running and ${this.maxQueue} waiting; retry later`, "rate_limit_error", null, "rate_limit_exceeded", { "Retry-After": "1" }),
      );
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve: (release) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(release);
        },
        reject,
      };
      const onAbort = () => {
        const i = this.#waiting.indexOf(waiter);
        if (i >= 0) this.#waiting.splice(i, 1);
        this.#notifyIdle();
        reject(clientGone());
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiting.push(waiter);
    });
  }

  /** Resolves when nothing runs or waits (for draining at shutdown). */
  idle(): Promise<void> {
    if (this.#running === 0 && this.#waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #take(): () => void {
    this.#running++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#running--;
      const next = this.#waiting.shift();
      if (next) next.resolve(this.#take());
      this.#notifyIdle();
    };
  }

  #notifyIdle(): void {
    if (this.#running > 0 || this.#waiting.length > 0) return;
    for (const wake of this.#idleWaiters.splice(0)) wake();
  }
}
