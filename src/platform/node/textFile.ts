/**
 * @module platform/node/textFile
 *
 * Reads the beginning of a text file for benchmark and evaluation prompts,
 * decompressing `.br` and `.gz` through node:zlib and `.xz` through a
 * WebAssembly decoder (xz-decompress), so no external tool is needed.
 * Only as much is decompressed as is asked for.
 */
import { open, stat, type FileHandle } from "node:fs/promises";
import { Readable } from "node:stream";
import { createBrotliDecompress, createGunzip } from "node:zlib";
import { causeText, InvalidInputError } from "../../errors.js";

type Format = "plain" | "brotli" | "gzip" | "xz";

function formatOf(path: string): Format {
  if (path.endsWith(".br")) return "brotli";
  if (path.endsWith(".gz")) return "gzip";
  if (path.endsWith(".xz")) return "xz";
  return "plain";
}

/** Up to `maxBytes` bytes of the file's (decompressed) text. */
export async function readTextPrefix(path: string, maxBytes: number): Promise<string> {
  const cannotRead = (err: NodeJS.ErrnoException) => {
    throw new InvalidInputError(`${path}: cannot read the text file (${err.code ?? err.message})`);
  };
  // NOTE: opening a FIFO waits for a writer (forever, if none comes), and a pipe cannot be read from offset 0
  const info = await stat(path).catch(cannotRead);
  if (!info.isFile()) throw new InvalidInputError(`${path}: cannot read the text file (${info.isDirectory() ? "EISDIR" : "not a regular file: a pipe, socket or device"})`);
  const handle = await open(path, "r").catch(cannotRead);
  const format = formatOf(path);
  try {
    const bytes = format === "plain" ? await readPlain(handle, maxBytes) : await readCompressed(handle, format, maxBytes);
    return bytes.subarray(0, maxBytes).toString("utf8");
  } catch (err) {
    const { code, syscall } = err as NodeJS.ErrnoException;
    // A failed system call (e.g. read: EISDIR) is about the file; anything else is the decoder refusing its bytes.
    if (syscall !== undefined) throw new InvalidInputError(`${path}: cannot read the text file (${code ?? syscall})`, { cause: err });
    throw new InvalidInputError(`${path}: cannot decompress it as ${format} (${causeText(err)})`, { cause: err });
  } finally {
    await handle.close();
  }
}

async function readPlain(handle: FileHandle, maxBytes: number): Promise<Buffer> {
  const buffer = Buffer.alloc(maxBytes);
  const { bytesRead } = await handle.read(buffer, 0, maxBytes, 0);
  return buffer.subarray(0, bytesRead);
}

async function readCompressed(handle: FileHandle, format: Exclude<Format, "plain">, maxBytes: number): Promise<Buffer> {
  const source = handle.createReadStream({ autoClose: false });
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of await decompress(source, format)) {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= maxBytes) break; // leaving the loop stops the decompressor
    }
  } finally {
    source.destroy();
  }
  return Buffer.concat(chunks);
}

/** The decompressed bytes of `source`, as chunks. */
async function decompress(source: Readable, format: Exclude<Format, "plain">): Promise<AsyncIterable<Uint8Array>> {
  if (format === "xz") {
    // NOTE: loaded on first use: the decoder is a 25 kB bundle few runs need.
    const { default: xz } = await import("xz-decompress");
    return chunksOf(new xz.XzReadableStream(Readable.toWeb(source) as unknown as ReadableStream<Uint8Array>));
  }
  const inflate = format === "brotli" ? createBrotliDecompress() : createGunzip();
  source.on("error", (err) => inflate.destroy(err));
  return source.pipe(inflate);
}

async function* chunksOf(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}
