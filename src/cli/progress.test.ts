/**
 * Progress output: a bar redrawn in place on a terminal, a plain line per
 * tenth otherwise, nothing with --quiet; and `wgkv generate` on a long prompt
 * reports its reading (plain lines when stderr is a pipe), silent with --quiet.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createProgress } from "./progress.js";
import { runCli } from "../testing/cli.js";
import { PROJECT_ROOT } from "../testing/fixtures.js";

function fakeStream(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, stream: { isTTY, write: (s: string) => (writes.push(s), true) } as unknown as NodeJS.WriteStream };
}

test("a terminal gets one bar redrawn in place, ending with a newline", () => {
  const { writes, stream } = fakeStream(true);
  const p = createProgress("loading", { stream, format: (n) => `${n} MiB` });
  p.update(0, 100);
  p.update(100, 100);
  p.end();
  assert.ok(writes.length >= 2);
  assert.ok(writes.slice(0, -1).every((w) => w.startsWith("\r") && !w.includes("\n")));
  assert.match(writes.at(-2)!, /^\rloading \[#{30}\] 100% 100 MiB\/100 MiB/);
  assert.equal(writes.at(-1), "\n");
});

test("a pipe gets a plain line per tenth; --quiet gets nothing", () => {
  const { writes, stream } = fakeStream(false);
  const p = createProgress("eval", { stream });
  for (let i = 0; i <= 20; i++) p.update(i, 20);
  p.end();
  assert.equal(writes.length, 11);
  assert.equal(writes[0], "eval: 0% (0 of 20)\n");
  assert.equal(writes[10], "eval: 100% (20 of 20)\n");
  assert.ok(writes.every((w) => !w.includes("\r")));
  const quiet = fakeStream(true);
  const q = createProgress("x", { stream: quiet.stream, quiet: true });
  q.update(1, 2);
  q.end();
  assert.deepEqual(quiet.writes, []);
});

test("generate reports reading a long prompt, and --quiet silences it", () => {
  const needle = readFileSync(join(PROJECT_ROOT, "examples/needle.txt"), "utf8");
  const args = ["generate", "--threads", "1", "--max-tokens", "1"];
  const loud = runCli(args, needle);
  assert.equal(loud.status, 0, loud.stderr);
  const lines = loud.stderr.trim().split("\n");
  assert.match(lines[0], /^reading the prompt: \d+% \(\d+ tokens of \d+ tokens\)$/);
  assert.match(lines.at(-1)!, /^reading the prompt: 100% \((\d+) tokens of \1 tokens\)$/);
  const quiet = runCli([...args, "--quiet"], needle);
  assert.equal(quiet.status, 0);
  assert.equal(quiet.stderr, "");
  assert.equal(quiet.stdout, loud.stdout);
});
