/**
 * @module platform/node/haystack
 *
 * The haystack text shipped with the package (`data/haystack.txt.br`): 8 MiB
 * of the project's corpus (mail, prose, Python and JavaScript sources;
 * documents separated by \x1e), brotli-compressed. `wgkv eval` draws its
 * haystacks from it by default and `wgkv bench --text haystack` takes its
 * prompts from it.
 */
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The name that stands for the shipped haystack where a text file is expected. */
export const HAYSTACK_NAME = "haystack";

/** The shipped haystack file (dist/platform/node/../../../data). */
export const HAYSTACK_FILE = resolve(dirname(fileURLToPath(import.meta.url)), "../../../data/haystack.txt.br");

/** The file a text flag names: {@link HAYSTACK_NAME} is the shipped haystack, anything else a path. */
export function resolveTextFile(name: string): string {
  return name === HAYSTACK_NAME ? HAYSTACK_FILE : name;
}
