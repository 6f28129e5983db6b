/**
 * @module server/bodyLimit
 *
 * The request body, read whole up to `maxBytes` before a handler parses it.
 * A body over the limit is answered 413 only after the rest of it has been
 * read and dropped: a server that answers mid-upload and closes the socket
 * makes the client's next write fail, and the client then sees a reset
 * connection (a network error that the openai client retries) instead of the
 * 413. Reading on is bounded by `drainBytes`; a body declared or found longer
 * than that is cut off, its 413 sent with `Connection: close`.
 */
import type { MiddlewareHandler } from "hono";
import { ApiError } from "./errors.js";

/** Bodies over the limit are read and dropped up to this size (bytes) before the 413. */
export function defaultDrainBytes(maxBytes: number): number {
  return Math.max(16 * maxBytes, 64 * 2 ** 20);
}

export function limitBody(maxBytes: number, drainBytes = defaultDrainBytes(maxBytes)): MiddlewareHandler {
  const tooLarge = (close: boolean) =>
    new ApiError(413, `the request body is over ${maxBytes} bytes`, "invalid_request_error", null, "request_too_large", close ? { Connection: "close" } : {});
  return async (c, next) => {
    const body = c.req.raw.body;
    if (!body) return next();
    const declared = Number(c.req.header("content-length") ?? NaN);
    if (declared > drainBytes) {
      await body.cancel().catch(() => undefined);
      throw tooLarge(true);
    }
    const reader = body.getReader();
    const kept: Uint8Array<ArrayBuffer>[] = []; // a request body's chunks are never shared memory
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size <= maxBytes) kept.push(value as Uint8Array<ArrayBuffer>);
      else if (size > drainBytes) {
        await reader.cancel().catch(() => undefined);
        throw tooLarge(true);
      }
    }
    if (size > maxBytes) throw tooLarge(false);
    c.req.raw = new Request(c.req.raw, { body: new Blob(kept) });
    return next();
  };
}
