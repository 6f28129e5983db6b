/**
 * A clone of the repository tests on its own: the reference fixtures are
 * vendored in test-fixtures/, and no test reads the shared folder beside the
 * project. Where that folder is present, the vendored copies must equal it
 * (run `npm run refresh-fixtures` when it changes).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { ARCH_FIXTURES, archDir, FIXTURES_DIR, GOLDEN_FILE, PROJECT_ROOT } from "../testing/fixtures.js";

const SRC = join(PROJECT_ROOT, "src");
const SHARED = join(PROJECT_ROOT, "../shared");
/** Test files that may still name the shared folder, each skipping cleanly without it (none today). */
const ALLOWED = new Set<string>();

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : []));
}

function fixtureFiles(): string[] {
  const archFiles = ARCH_FIXTURES.flatMap((a) => ["config.json", "generation_config.json", "model.safetensors", "reference.json"].map((f) => join(archDir(a), f)));
  return [GOLDEN_FILE, ...archFiles];
}

test("the reference fixtures are inside the repository", () => {
  for (const file of fixtureFiles()) {
    assert.ok(!relative(PROJECT_ROOT, file).startsWith(".."), `${file} is outside the project`);
    assert.ok(existsSync(file), `${relative(PROJECT_ROOT, file)} is missing: run npm run refresh-fixtures`);
  }
});

test("no source or test reads the shared folder beside the project", () => {
  const offenders: string[] = [];
  for (const file of sources(SRC)) {
    const path = relative(SRC, file);
    if (ALLOWED.has(path) || path === "project/selfContained.test.ts") continue;
    const text = readFileSync(file, "utf8");
    if (/\.\.\/shared\b|\bSHARED\b|"shared"/.test(text)) offenders.push(path);
  }
  assert.deepEqual(offenders, []);
});

test("the vendored fixtures equal the shared folder's, where it is beside the project", (t) => {
  if (!existsSync(join(SHARED, "fixtures"))) return t.skip("no ../shared/fixtures here");
  const stale = fixtureFiles().filter((file) => {
    const shared = join(SHARED, "fixtures", relative(FIXTURES_DIR, file));
    return !existsSync(shared) || !readFileSync(shared).equals(readFileSync(file));
  });
  assert.deepEqual(stale.map((f) => relative(PROJECT_ROOT, f)), [], "run npm run refresh-fixtures and commit test-fixtures/");
});
