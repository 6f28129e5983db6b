/**
 * @module cli/outFolder
 *
 * Where a command writes its results (`eval --out` folders, `inspect --out`,
 * `train-gate --out` files): checked before any work, so a file in its place
 * or a folder that takes no new file fails fast with one line naming the flag
 * rather than after minutes of work; files are written whole (a temporary
 * file beside them, renamed over), so a failed write never leaves half a result.
 */
import { mkdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { InvalidInputError } from "../errors.js";

/** One line naming the flag, the path and the system's reason. */
function cannotWrite(flag: string, path: string, err: unknown): InvalidInputError {
  const e = err as NodeJS.ErrnoException;
  return new InvalidInputError(`${flag} ${path}: cannot write there (${e.code ?? e.message})`);
}

/** Whether `folder` takes a new file: one is made and removed. */
async function probeFolder(flag: string, path: string, folder: string): Promise<void> {
  const probe = join(folder, `.wgkv-write-check-${process.pid}`);
  await writeFile(probe, "").catch((err: unknown) => {
    throw cannotWrite(flag, path, err);
  });
  await rm(probe, { force: true });
}

/** Refuses before any work a file path whose folder is missing or takes no new file, or that is a folder. */
export async function checkOutFile(flag: string, path: string): Promise<void> {
  const folder = dirname(path);
  const info = await stat(folder).catch(() => null);
  if (!info?.isDirectory()) throw new InvalidInputError(`${flag} ${path}: the folder ${folder} does not exist`);
  if ((await stat(path).catch(() => null))?.isDirectory()) throw new InvalidInputError(`${flag} ${path}: is a folder; give a file name`);
  await probeFolder(flag, path, folder);
}

/** Writes a result whole: into a temporary file beside `path`, then renamed over it; failures are one line naming the flag. */
export async function writeOutFile(flag: string, path: string, data: string | Uint8Array): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw cannotWrite(flag, path, err);
  }
}

/** Refuses a path that exists and is not a folder, or whose parents cannot hold one. */
export async function checkOutFolder(flag: string, path: string): Promise<void> {
  const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return null; // created later
    throw new InvalidInputError(`${flag} ${path}: cannot use it as a folder (${err.code ?? err.message})`);
  });
  if (info && !info.isDirectory()) throw new InvalidInputError(`${flag} ${path}: is a file, not a folder`);
  if (info) await probeFolder(flag, path, path);
}

/** Creates the folder and its parents. */
export async function makeOutFolder(flag: string, path: string): Promise<void> {
  await mkdir(path, { recursive: true }).catch((err: NodeJS.ErrnoException) => {
    throw new InvalidInputError(`${flag} ${path}: cannot create the folder (${err.code ?? err.message})`);
  });
}
