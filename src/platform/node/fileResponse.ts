/**
 * @module platform/node/fileResponse
 *
 * A file on disk as an HTTP response with byte ranges (RFC 9110 §14): the
 * browser's FileSource reads a model's weights a tensor at a time with
 * `Range: bytes=a-b`. One range per request (a multi-range request gets
 * the whole file, which the RFC allows); a range past the end is 416. HEAD
 * answers the headers only, without opening the file.
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { Readable } from "node:stream";

/** The bytes [start, end] (inclusive) a Range header asks of a file of `size` bytes; null: the whole file; "unsatisfiable": 416. */
export function parseRange(header: string | null | undefined, size: number): { start: number; end: number } | null | "unsatisfiable" {
  if (!header) return null;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  // NOTE: other units and lists of ranges are ignored: the whole file is a valid answer to them
  if (!m || (m[1] === "" && m[2] === "")) return null;
  if (m[1] === "") {
    // a suffix: the last N bytes
    const n = Number(m[2]);
    if (n === 0) return "unsatisfiable";
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (!Number.isSafeInteger(start) || start >= size) return "unsatisfiable";
  if (end < start) return null;
  return { start, end };
}

/** The file at `path` answering `request` (GET or HEAD, with or without Range); `contentType` as given. */
export async function fileResponse(path: string, request: Request, contentType = "application/octet-stream"): Promise<Response> {
  const info = await stat(path);
  const size = info.size;
  const headers = new Headers({ "content-type": contentType, "accept-ranges": "bytes", "cache-control": "no-cache", "last-modified": info.mtime.toUTCString() });
  const range = parseRange(request.headers.get("range"), size);
  if (range === "unsatisfiable") {
    headers.set("content-range", `bytes */${size}`);
    return new Response(null, { status: 416, headers });
  }
  const { start, end } = range ?? { start: 0, end: size - 1 };
  const length = size === 0 ? 0 : end - start + 1;
  headers.set("content-length", String(length));
  if (range) headers.set("content-range", `bytes ${start}-${end}/${size}`);
  const status = range ? 206 : 200;
  if (request.method === "HEAD" || length === 0) return new Response(null, { status, headers });
  const body = Readable.toWeb(createReadStream(path, { start, end })) as ReadableStream<Uint8Array>;
  return new Response(body, { status, headers });
}
