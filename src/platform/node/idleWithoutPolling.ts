/**
 * @module platform/node/idleWithoutPolling
 *
 * Node's way for the WebGPU runtime to wait on the GPU without dawn.node's
 * polling (backends/webgpu/readPacer.ts says why): a timer for all but the
 * last few milliseconds, so the event loop stays free through long waits
 * (a prefill chunk's), then Atomics.wait to the end, as timers fire up to a
 * millisecond or more off and the GPU's time is a few milliseconds a step.
 */

/** The stretch at the end that blocks, and what a timer may fire late by. */
const BLOCK_MS = 3;
const TIMER_SLACK_MS = 1;

const cell = new Int32Array(new SharedArrayBuffer(4));
/** False once Atomics.wait refused this thread (runtimes that forbid blocking the main thread): timers only. */
let canBlock = true;

export async function idleWithoutPolling(ms: number): Promise<void> {
  const end = performance.now() + ms;
  const blockMs = canBlock ? BLOCK_MS + TIMER_SLACK_MS : 0;
  if (ms > blockMs) await new Promise((resolve) => setTimeout(resolve, ms - blockMs));
  const left = end - performance.now();
  if (left <= 0 || !canBlock) return;
  try {
    // NOTE: nothing ever notifies `cell`: the wait always runs to its timeout
    Atomics.wait(cell, 0, 0, left);
  } catch {
    canBlock = false;
  }
}
