/**
 * One concept per file, kept small (nano-vllm's habit, tinygrad's sz.py): no
 * source file outside tests grows past the budget. A file that must grow
 * splits its second concept out instead.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { PROJECT_ROOT } from "../testing/fixtures.js";

const BUDGET = 300;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    // NOTE: test code (tests, shared suites, test support) may run longer: a suite reads best in one piece
    const isTestCode = /\.(test|conformance)\.ts$/.test(e.name) || /\/(testing|conformance)\//.test(path);
    return e.name.endsWith(".ts") && !isTestCode && !e.name.endsWith(".generated.ts") ? [path] : [];
  });
}

test(`every source file outside tests holds at most ${BUDGET} lines`, () => {
  const files = sources(join(PROJECT_ROOT, "src"));
  assert.ok(files.length > 100, `only ${files.length} source files found`);
  const over = files
    .map((f) => [relative(PROJECT_ROOT, f), readFileSync(f, "utf8").split("\n").length - 1] as const)
    .filter(([, n]) => n > BUDGET)
    .map(([f, n]) => `${f}: ${n} lines`);
  assert.deepEqual(over, []);
});
