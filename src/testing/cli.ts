/**
 * @module testing/cli
 *
 * Test helpers that run the built `wgkv` command (`dist/cli.js`) and check
 * the project's rule for bad input: exit status 1, one line on stderr naming
 * the file or flag, no stack trace, and no file changed.
 */
import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, cpSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { PROJECT_ROOT } from "./fixtures.js";

export const CLI = join(PROJECT_ROOT, "dist/cli.js");

/** Runs `node dist/cli.js ...args` from the project root. */
export function runCli(args: readonly string[], input = ""): SpawnSyncReturns<string> & { elapsedMs: number } {
  const start = performance.now();
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: PROJECT_ROOT, encoding: "utf8", input, timeout: 120_000 });
  return Object.assign(r, { elapsedMs: performance.now() - start });
}

/** sha256 of every file in a folder (not recursive), by name. */
export function hashDir(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of readdirSync(dir).sort()) {
    if (statSync(join(dir, f)).isFile()) out.set(f, createHash("sha256").update(readFileSync(join(dir, f))).digest("hex"));
  }
  return out;
}

/** A writable copy of a model folder at `to`; `edit` corrupts it. */
export function copyModel(from: string, to: string, edit?: (dir: string) => void): string {
  cpSync(from, to, { recursive: true, dereference: true });
  chmodSync(to, 0o755);
  for (const f of readdirSync(to)) chmodSync(join(to, f), statSync(join(to, f)).isDirectory() ? 0o755 : 0o644);
  edit?.(to);
  return to;
}

export interface ExpectErrorOptions {
  readonly input?: string;
  /** A folder the command must leave unchanged. */
  readonly unchanged?: string;
}

/**
 * Runs the CLI expecting a user error: exit status 1, exactly one non-empty
 * stderr line containing every `mustName` substring, no stack frame, and
 * `unchanged` untouched. Returns the line and how long the command ran.
 */
export function expectCliError(args: readonly string[], mustName: readonly string[], options: ExpectErrorOptions = {}): { line: string; elapsedMs: number } {
  const before = options.unchanged ? hashDir(options.unchanged) : null;
  const r = runCli(args, options.input);
  assert.equal(r.error, undefined, `spawn failed: ${r.error}`);
  assert.equal(r.signal, null, `killed by ${r.signal}`);
  assert.equal(r.status, 1, `expected exit status 1, got ${r.status}; stderr: ${r.stderr}`);
  const lines = r.stderr.replace(/\n$/, "").split("\n");
  assert.equal(lines.length, 1, `stderr is not one line:\n${r.stderr}`);
  const line = lines[0]!;
  assert.match(line, /^wgkv: error: \S/, line);
  assert.doesNotMatch(r.stderr, /^\s+at /m, `stack trace on stderr:\n${r.stderr}`);
  for (const s of mustName) assert.ok(line.includes(s), `stderr does not name ${JSON.stringify(s)}: ${line}`);
  if (before && options.unchanged) assert.deepEqual(hashDir(options.unchanged), before, `the CLI changed ${options.unchanged}`);
  return { line, elapsedMs: r.elapsedMs };
}
