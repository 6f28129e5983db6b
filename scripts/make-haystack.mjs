// Writes data/haystack.txt.br, the haystack text shipped with the package:
// the first 8 MiB of the shared corpus (documents separated by \x1e),
// brotli-compressed so node:zlib reads it with no external tool. 8 MiB is
// exactly what `wgkv eval` reads of its --corpus, so results with the shipped
// file equal those with the whole corpus.
//
//   node scripts/make-haystack.mjs                       # from ../shared/data/corpus.txt.xz
//   node scripts/make-haystack.mjs /path/corpus.txt.xz   # from another copy
//
// Needs the build (dist/) for its xz reader.
import { writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { brotliCompressSync, constants } from "node:zlib";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const CORPUS = resolve(process.argv[2] ?? join(ROOT, "../shared/data/corpus.txt.xz"));
const OUT = join(ROOT, "data/haystack.txt.br");
// NOTE: the same as CORPUS_BYTES in src/cli/eval.ts.
const BYTES = 8 * 2 ** 20;

const { readTextPrefix } = await import(join(ROOT, "dist/platform/node/textFile.js"));
let prefix = await readTextPrefix(CORPUS, BYTES);
// A character cut in two at the end decodes as U+FFFD: drop it.
if (prefix.endsWith("\uFFFD")) prefix = prefix.slice(0, -1);
const text = Buffer.from(prefix, "utf8");
const packed = brotliCompressSync(text, {
  params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_LGWIN]: 24, [constants.BROTLI_PARAM_SIZE_HINT]: text.length },
});
writeFileSync(OUT, packed);
console.log(`make-haystack: ${relative(ROOT, OUT)}: ${text.length} bytes of ${CORPUS}, ${packed.length} compressed`);
