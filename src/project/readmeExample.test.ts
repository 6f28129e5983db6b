/**
 * The README's main command, run as written (minus its `npm ci`): the
 * default model finds the needle in examples/needle.txt with its write gate,
 * and the KV cache holds well under full attention's memory.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PROJECT_ROOT } from "../testing/fixtures.js";

/** The README's main command: the quick start's `npm ci && node dist/cli.js generate ...` line. */
function readmeCommand(): string {
  const readme = readFileSync(join(PROJECT_ROOT, "README.md"), "utf8");
  const line = readme.split("\n").find((l) => l.startsWith("npm ci && node dist/cli.js generate "));
  assert.ok(line, "the README has no `npm ci && node dist/cli.js generate ...` line");
  return line.slice("npm ci && ".length);
}

test("the README's main command finds the needle with a fraction of full attention's KV memory", () => {
  const command = readmeCommand();
  assert.match(command, /< examples\/needle\.txt$/, "the command reads the shipped example");
  assert.match(readFileSync(join(PROJECT_ROOT, "examples/needle.txt"), "utf8"), /The special magic number for red-harbor-72 is: 9742026\./);
  const r = spawnSync("sh", ["-c", command], { cwd: PROJECT_ROOT, encoding: "utf8", timeout: 180_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), "The special magic number for red-harbor-72 is: 9742026.");
  const kv = /^KV cache: (\d+) tokens; .*\(resident ([\d.]+)% of full\)$/m.exec(r.stderr);
  assert.ok(kv, `no KV line in --stats:\n${r.stderr}`);
  assert.ok(Number(kv[1]) > 3000, `a long prompt: ${kv[1]} tokens`);
  const resident = Number(kv[2]);
  assert.ok(resident < 60, `KV resident ${resident}% of full attention`);
  assert.match(r.stderr, /^ {2}overall: 0\.\d+$/m, "the admitted fraction is printed");
});
