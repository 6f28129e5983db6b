/**
 * The haystack text shipped with the package: `eval` draws its corpus
 * haystacks from it by default, `bench --text haystack` takes its prompt from
 * it, and both read compressed text files of their own through node:zlib.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { PROJECT_ROOT } from "../testing/fixtures.js";

const CLI = join(PROJECT_ROOT, "dist/cli.js");
let tmp = "";
before(() => {
  tmp = mkdtempSync(join(tmpdir(), "wgkv-haystack-test-"));
});
after(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function cli(args: string[]) {
  // NOTE: run from a temporary folder, so nothing is found relative to the project's parent.
  return spawnSync(process.execPath, [CLI, ...args], { cwd: tmp, encoding: "utf8", timeout: 120_000 });
}

test("eval's --corpus defaults to the shipped haystack", () => {
  const help = cli(["eval", "--help"]);
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout.replace(/\s+/g, " "), /--corpus <file> .*the one shipped with wgkv \(default: "haystack"\)/);
  const out = join(tmp, "eval-default");
  const r = cli(["eval", "--tasks", "niah", "--lengths", "256", "--cases", "1", "--policies", "full", "--threads", "1", "--out", out]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(readFileSync(join(out, "results.md"), "utf8"), /\| niah \| 256 \| full \| 1 \|/);
});

test("eval reads a gzip corpus of its own", () => {
  const corpus = join(tmp, "corpus.txt.gz");
  writeFileSync(corpus, gzipSync(Array.from({ length: 400 }, (_, i) => `Document ${i} says little of note, and says it at length.`).join("\x1e")));
  const r = cli(["eval", "--tasks", "niah", "--lengths", "256", "--cases", "1", "--policies", "full", "--threads", "1", "--corpus", corpus, "--out", join(tmp, "eval-gz")]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /\| niah \| 256 \| full \| 1 \|/);
});

test("bench --text haystack takes its prompt from the shipped haystack", () => {
  const r = cli(["bench", "--context", "64", "--decode", "1", "--repeat", "1", "--threads", "1", "--text", "haystack", "--json"]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { context: number }[])[0].context, 64);
});

test("a missing --text or --corpus file gets one line naming it", () => {
  const bench = cli(["bench", "--context", "64", "--decode", "1", "--repeat", "1", "--text", "no-such.txt.br"]);
  assert.equal(bench.status, 1);
  assert.equal(bench.stderr, "wgkv: error: no-such.txt.br: cannot read the text file (ENOENT)\n");
  const evalRun = cli(["eval", "--lengths", "256", "--cases", "1", "--policies", "full", "--corpus", "no-such.txt.xz", "--out", join(tmp, "eval-missing")]);
  assert.equal(evalRun.status, 1);
  assert.equal(evalRun.stderr, "wgkv: error: no-such.txt.xz: cannot read the text file (ENOENT)\n");
});
