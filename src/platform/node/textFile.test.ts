/**
 * Text files for haystacks and benchmark prompts: plain, brotli, gzip and xz
 * read the same, with no external tool, only as far as asked; the shipped
 * haystack is readable; bad files get one line naming the file.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { brotliCompressSync, gzipSync } from "node:zlib";
import { InvalidInputError } from "../../errors.js";
import { FIXTURES_DIR } from "../../testing/fixtures.js";
import { HAYSTACK_FILE, HAYSTACK_NAME, resolveTextFile } from "./haystack.js";
import { readTextPrefix } from "./textFile.js";

/** What test-fixtures/text/sample.txt.xz holds (made with `xz -9`). */
const SAMPLE = "First document: the quick brown fox.\x1eSecond document: été €.\n";
const SAMPLE_XZ = join(FIXTURES_DIR, "text/sample.txt.xz");

let tmp = "";
before(() => {
  tmp = mkdtempSync(join(tmpdir(), "wgkv-text-test-"));
});
after(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test("plain, .br, .gz and .xz files read the same text", async () => {
  const files = { "sample.txt": SAMPLE, "sample.txt.br": brotliCompressSync(SAMPLE), "sample.txt.gz": gzipSync(SAMPLE) };
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(tmp, name), bytes);
  for (const file of [...Object.keys(files).map((n) => join(tmp, n)), SAMPLE_XZ]) {
    assert.equal(await readTextPrefix(file, 1000), SAMPLE, file);
    assert.equal(await readTextPrefix(file, 5), "First", `${file}: a prefix`);
  }
});

test(".xz needs no xz program: it reads with an empty PATH", () => {
  const url = new URL("./textFile.js", import.meta.url).href;
  const script = `const { readTextPrefix } = await import(${JSON.stringify(url)}); process.stdout.write(await readTextPrefix(${JSON.stringify(SAMPLE_XZ)}, 1000));`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", env: { PATH: "" }, timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, SAMPLE);
});

test("the shipped haystack holds 8 MiB of documents and is named by the word haystack", async () => {
  assert.equal(resolveTextFile(HAYSTACK_NAME), HAYSTACK_FILE);
  assert.equal(resolveTextFile("my/haystack.txt"), "my/haystack.txt");
  const text = await readTextPrefix(HAYSTACK_FILE, 16 * 2 ** 20);
  assert.equal(Buffer.byteLength(text), 8 * 2 ** 20);
  assert.ok(text.split("\x1e").length > 1000, "documents are separated by \\x1e");
});

test("missing, unreadable and corrupt files get one line naming the file", async () => {
  const cases: [string, string | Buffer, RegExp][] = [
    ["bad.txt.br", "not brotli", /bad\.txt\.br: cannot decompress it as brotli/],
    ["bad.txt.gz", "not gzip", /bad\.txt\.gz: cannot decompress it as gzip/],
    ["bad.txt.xz", "not xz", /bad\.txt\.xz: cannot decompress it as xz/],
  ];
  for (const [name, bytes, message] of cases) {
    writeFileSync(join(tmp, name), bytes);
    await assert.rejects(readTextPrefix(join(tmp, name), 100), (err: Error) => err instanceof InvalidInputError && message.test(err.message) && !err.message.includes("\n"));
  }
  await assert.rejects(readTextPrefix(join(tmp, "none.txt.xz"), 100), /none\.txt\.xz: cannot read the text file \(ENOENT\)/);
  await assert.rejects(readTextPrefix(tmp, 100), new RegExp(`${tmp}: cannot read the text file \\(EISDIR\\)`));
  const fifo = join(tmp, "pipe.txt");
  execFileSync("mkfifo", [fifo]);
  await assert.rejects(readTextPrefix(fifo, 100), /pipe\.txt: cannot read the text file \(not a regular file: a pipe, socket or device\)/);
});
