/**
 * @module platform/node/gateFileRead
 *
 * Reads a gate file from disk for `--gate` and `gate convert`. A gate is
 * megabytes; the whole file is read into memory, so anything that is not a
 * regular file (a FIFO, /dev/zero) or is past any gate's size (a model's
 * weights passed by mistake) is refused before reading it.
 */
import { readFile, stat } from "node:fs/promises";
import { ModelLoadError } from "../../errors.js";

/** Larger than any write gate (Llama-3.1-8B's is about 0.3 GB in f32). */
export const MAX_GATE_FILE_BYTES = 2 ** 31;

/** The file's bytes; one-line ModelLoadErrors name the file for anything else. */
export async function readGateFile(path: string): Promise<Uint8Array> {
  const fail = (why: string): never => {
    throw new ModelLoadError(`${path}: cannot read the gate file (${why})`);
  };
  const info = await stat(path).catch((err: NodeJS.ErrnoException) => fail(err.code === "ENOENT" ? "file is missing" : (err.code ?? err.message)));
  if (!info.isFile()) fail(info.isDirectory() ? "is a folder, not a file" : "not a regular file");
  if (info.size > MAX_GATE_FILE_BYTES) fail(`${info.size} bytes, more than any gate's ${MAX_GATE_FILE_BYTES}; is it a gate?`);
  const bytes = await readFile(path).catch((err: NodeJS.ErrnoException) => fail(err.code ?? err.message));
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
