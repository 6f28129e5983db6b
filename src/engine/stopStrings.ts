/**
 * @module engine/stopStrings
 *
 * Finds stop strings in streamed text and decides how much text is safe to
 * emit: text that could still become the start of a stop string is held back.
 */

export interface StopScan {
  /** Text that may be emitted now. */
  readonly safeLength: number;
  /** Index where a stop string begins in the text, or -1. */
  readonly stopAt: number;
}

/** Scans the full generated text so far for any of `stops`. */
export function scanStops(text: string, stops: readonly string[]): StopScan {
  let stopAt = -1;
  for (const stop of stops) {
    const at = text.indexOf(stop);
    if (at >= 0 && (stopAt < 0 || at < stopAt)) stopAt = at;
  }
  if (stopAt >= 0) return { safeLength: stopAt, stopAt };
  let safeLength = text.length;
  for (const stop of stops) {
    // hold back the longest suffix of text that is a proper prefix of this stop
    for (let n = Math.min(stop.length - 1, text.length); n > 0; n--) {
      if (text.endsWith(stop.slice(0, n))) {
        safeLength = Math.min(safeLength, text.length - n);
        break;
      }
    }
  }
  return { safeLength, stopAt: -1 };
}
