/**
 * @module platform/node/textFile
 *
 * Reads the beginning of a text file, decompressing `.xz` through the
 * system's `xz` tool, for benchmark and evaluation prompts.
 */
import { spawn } from "node:child_process";
import { open } from "node:fs/promises";
import { InvalidInputError } from "../../errors.js";

/** Up to `maxBytes` bytes of the file's (decompressed) text. */
export async function readTextPrefix(path: string, maxBytes: number): Promise<string> {
  if (!path.endsWith(".xz")) {
    const handle = await open(path, "r").catch((err: NodeJS.ErrnoException) => {
      throw new InvalidInputError(`${path}: cannot read the text file (${err.code ?? err.message})`);
    });
    try {
      const buffer = Buffer.alloc(maxBytes);
      const { bytesRead } = await handle.read(buffer, 0, maxBytes, 0);
      return buffer.subarray(0, bytesRead).toString("utf8");
    } finally {
      await handle.close();
    }
  }
  return new Promise((resolve, reject) => {
    const child = spawn("xz", ["-dc", path], { stdio: ["ignore", "pipe", "pipe"] });
    const chunks: Buffer[] = [];
    let size = 0;
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      if (size >= maxBytes) return;
      chunks.push(chunk);
      size += chunk.length;
      if (size >= maxBytes) child.kill();
    });
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", (err) => reject(new InvalidInputError(`${path}: cannot run xz to decompress it (${err.message})`)));
    child.on("close", (code) => {
      if (size === 0 && code !== 0) reject(new InvalidInputError(`${path}: xz failed (${stderr.trim().split("\n")[0] || `exit ${code}`})`));
      else resolve(Buffer.concat(chunks).subarray(0, maxBytes).toString("utf8"));
    });
  });
}
