/**
 * @module cli/outFolder
 *
 * The folder a command writes its results to (`eval --out`): checked before
 * any work, so a file in its place or an unusable path fails fast with one
 * line naming the flag, and created with the same care.
 */
import { mkdir, stat } from "node:fs/promises";
import { InvalidInputError } from "../errors.js";

/** Refuses a path that exists and is not a folder, or whose parents cannot hold one. */
export async function checkOutFolder(flag: string, path: string): Promise<void> {
  const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return null; // created later
    throw new InvalidInputError(`${flag} ${path}: cannot use it as a folder (${err.code ?? err.message})`);
  });
  if (info && !info.isDirectory()) throw new InvalidInputError(`${flag} ${path}: is a file, not a folder`);
}

/** Creates the folder and its parents. */
export async function makeOutFolder(flag: string, path: string): Promise<void> {
  await mkdir(path, { recursive: true }).catch((err: NodeJS.ErrnoException) => {
    throw new InvalidInputError(`${flag} ${path}: cannot create the folder (${err.code ?? err.message})`);
  });
}
