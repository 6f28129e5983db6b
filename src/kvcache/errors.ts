/**
 * @module cache/errors
 *
 * The cache's two tiers of failure. Resource and configuration faults are
 * {@link WgkvError}s with actionable messages (the CLI and server print them
 * as they are); broken bookkeeping is a {@link CacheInvariantError} thrown by
 * {@link assert}, which always means a bug in wgkv, never in the input.
 */

import { WgkvError } from "../errors.js";

/** The page pool cannot satisfy an allocation; nothing was allocated. */
export class OutOfPagesError extends WgkvError {
  override readonly name = "OutOfPagesError";
  /** Pages the failed allocation needed. */
  readonly numRequested: number;
  /** Pages that were free when it failed. */
  readonly numFree: number;

  constructor(numRequested: number, numFree: number, numUsablePages: number) {
    super(
      `KV cache out of pages: needed ${numRequested}, only ${numFree} of ${numUsablePages} free ` +
        `(16 tokens of one KV head each). Enlarge the KV page pool, shorten the context or the ` +
        `prefill chunk, run fewer sequences at once, or use a stricter gate (higher tau) so fewer tokens are admitted.`,
    );
    this.numRequested = numRequested;
    this.numFree = numFree;
  }
}

/** A cache setting (window, pool size, head shape) is out of range. */
export class InvalidCacheConfigError extends WgkvError {
  override readonly name = "InvalidCacheConfigError";
  /** The offending setting, e.g. `"window"`. */
  readonly field: string;

  constructor(field: string, message: string) {
    super(message);
    this.field = field;
  }
}

/** Cache bookkeeping is inconsistent: a bug in wgkv (double free, bad index). */
export class CacheInvariantError extends Error {
  override readonly name = "CacheInvariantError";
}

/** Throws a {@link CacheInvariantError} unless `condition` holds. */
export function assert(condition: boolean, message: string | (() => string)): asserts condition {
  if (!condition) throw new CacheInvariantError(typeof message === "string" ? message : message());
}
