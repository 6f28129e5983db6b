/**
 * @module platform/node/fileSource
 *
 * FileSource over a local folder. File-system failures (permission denied,
 * a file removed while loading) become one-line ModelLoadErrors naming the file,
 * and so does a text file too large to be a config, tokenizer or template.
 */
import { open, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { ModelLoadError } from "../../errors.js";
import { describeFile, type FileSource } from "../../io/fileSource.js";

/** tokenizer.json is the largest text file of a model folder, tens of megabytes at most. */
export const MAX_TEXT_BYTES = 256 * 1024 * 1024;

export function createFolderSource(folder: string): FileSource {
  const source: FileSource = {
    label: folder,
    async exists(name) {
      try {
        return (await stat(join(folder, name))).isFile();
      } catch {
        return false;
      }
    },
    async size(name) {
      return guard(name, async () => (await stat(join(folder, name))).size);
    },
    async readRange(name, offset, length) {
      return guard(name, async () => {
        const handle = await open(join(folder, name), "r");
        try {
          const out = new Uint8Array(length);
          let filled = 0;
          while (filled < length) {
            const { bytesRead } = await handle.read(out, filled, length - filled, offset + filled);
            if (bytesRead === 0) break;
            filled += bytesRead;
          }
          return filled === length ? out : out.subarray(0, filled);
        } finally {
          await handle.close();
        }
      });
    },
    async readText(name) {
      return guard(name, async () => {
        // NOTE: text files (configs, tokenizer.json, templates) are read whole: refuse sizes no such file has.
        const size = (await stat(join(folder, name))).size;
        if (size > MAX_TEXT_BYTES) throw new ModelLoadError(`${describeFile(source, name)}: ${size} bytes, more than the ${MAX_TEXT_BYTES} a text file of a model may have`);
        return readFile(join(folder, name), "utf8");
      });
    },
  };

  /** Runs a file-system call; a Node system error becomes "<file>: cannot read (<code>: ...)". */
  async function guard<T>(name: string, read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException | null)?.code;
      if (typeof code !== "string") throw err;
      const why = code === "ENOENT" ? "file is missing" : code === "EACCES" || code === "EPERM" ? "permission denied" : code === "EISDIR" ? "is a folder, not a file" : code;
      throw new ModelLoadError(`${describeFile(source, name)}: cannot read (${why})`, { cause: err });
    }
  }

  return source;
}
